//! The provisioning pipeline: from a name and a driver to a Docker engine answering over
//! mutual TLS. Every step is named; a failure is recorded in the machine's record (which
//! `ls` shows and `rm` removes) and never touches other machines.

pub mod machine_key;
pub mod os_release;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::app::App;
use crate::capabilities::{CertGrant, PluginCtx, SshLink};
use crate::plugin::driver::SshDetails;
use crate::plugin::recipe::{EngineConfig, InstallMethod, OsInfo};
use crate::plugin::{Driver, Kind, Recipe, Source, builtin};
use crate::report::Reporter;
use crate::ssh::{HostKeyPolicy, SshError, Target};
use crate::store::{DriverRef, Endpoint, EngineOptions, MachineRecord, MachineStatus, StepError};

/// Environment variable: how long to wait for SSH, in seconds (default `SSH_WAIT_SECS`).
pub const SSH_WAIT_ENV: &str = "DMW_SSH_TIMEOUT";
/// How long to wait for SSH by default, in seconds: create and every re-run alike.
pub const SSH_WAIT_SECS: u64 = 180;
/// Environment variable: how long to wait for the engine to answer over TLS, in seconds (default 90).
pub const ENGINE_WAIT_ENV: &str = "DMW_ENGINE_TIMEOUT";

/// A failed pipeline step.
#[derive(Debug)]
pub struct StepFailure {
    /// Machine name.
    pub machine: String,
    /// Step name, e.g. `wait for SSH`.
    pub step: &'static str,
    /// What went wrong.
    pub error: anyhow::Error,
    /// Process exit code (3 for a failed pre-create check, as Docker Machine).
    pub exit_code: i32,
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "machine \"{}\": {} failed: {:#}",
            self.machine, self.step, self.error
        )
    }
}

/// What `create` was asked for.
pub struct CreateRequest {
    /// Machine name (already validated).
    pub name: String,
    /// Where the driver came from.
    pub driver_source: Source,
    /// Create flags for the driver.
    pub driver_flags: Vec<crate::plugin::driver::FlagValue>,
    /// Engine options.
    pub engine: EngineOptions,
    /// Extra certificate SANs.
    pub tls_sans: Vec<String>,
    /// `--recipe`, overriding detection.
    pub recipe: Option<Source>,
    /// The values the user gave the driver's flags (command line or the driver's own
    /// environment variables): the only paths the driver may name as the SSH key.
    pub typed_values: Vec<String>,
}

/// The subject organisation of certificates: `$USER` (or `unknown`), as Docker Machine.
pub fn cert_org() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Bootstrap the CA and client certificate, reporting what was created.
pub fn bootstrap_certs(app: &App, report: &Reporter) -> Result<()> {
    let certs = app.store.certs_dir();
    let done = crate::tls::bootstrap(&certs, &cert_org())?;
    if let Some(ca) = done.ca {
        report.info(&format!("Creating CA: {}", ca.path.display()));
    }
    if let Some(client) = done.client {
        report.info(&format!(
            "Creating client certificate: {}",
            client.path.display()
        ));
    }
    Ok(())
}

/// Run `create` for a claimed machine directory, recording the outcome in its record.
pub async fn create(
    app: &App,
    mut driver: Driver,
    req: CreateRequest,
    report: Arc<Reporter>,
) -> Result<(), StepFailure> {
    let (info_name, provisions) = driver
        .info()
        .await
        .map(|i| {
            let name = crate::sanitize::plugin_text(&i.name, crate::sanitize::NAME_LIMIT);
            (name, i.provisions)
        })
        .unwrap_or_else(|_| ("unknown".into(), true));
    let mut record = MachineRecord::new(
        &req.name,
        DriverRef {
            name: info_name,
            source: req.driver_source.reference(),
        },
        req.engine.clone(),
    );
    record.tls_sans = req.tls_sans.clone();
    record.engine_only = !provisions;
    let mut run = Run {
        app,
        record: &mut record,
        report: report.clone(),
        provider_called: false,
    };
    let result = if provisions {
        run.create(&mut driver, &req).await
    } else {
        run.record_engine(&mut driver, &req).await
    };
    let provider_called = run.provider_called;
    match result {
        Ok(()) => Ok(()),
        Err(f) if !provider_called => {
            // Nothing was made at the provider: nothing is kept, so the corrected command
            // can run again with the same name (Docker Machine saved only after its checks).
            report.error(&f.to_string());
            if let Err(e) = app.store.remove(&req.name) {
                report.warn(&format!("cannot remove the machine's directory: {e:#}"));
            }
            Err(f)
        }
        Err(f) => {
            record.driver_state = driver.state_kv();
            record.status = MachineStatus::Error;
            record.error = Some(StepError {
                step: f.step.to_string(),
                message: report.scrub(&format!("{:#}", f.error)),
            });
            report.error(&f.to_string());
            // Saving the failure is best effort: the error itself is what the user must see.
            let _ = app.store.save(&record);
            Err(f)
        }
    }
}

/// Run the recipe again on a machine with its stored options (`dmw provision`): detect the
/// OS, install (kept when present), configure (unchanged configuration: no restart), verify.
pub async fn reprovision(app: &App, name: &str, report: Arc<Reporter>) -> Result<(), StepFailure> {
    let (mut record, endpoint, link) = connect(app, name, &report).await?;
    let recipe = match &record.recipe {
        Some(r) => Some(
            Source::from_reference(&r.source, Kind::Recipe)
                .map_err(|e| failure(name, "load recipe", e))?,
        ),
        None => None,
    };
    let mut run = Run {
        app,
        record: &mut record,
        report: report.clone(),
        provider_called: false,
    };
    let result = run.provision(&link, &endpoint, recipe.as_ref()).await;
    link.reset().await;
    finish(app, &mut record, &report, result)
}

/// Issue the machine a new server certificate and install it (`dmw regenerate-certs`):
/// the kept one is dropped and the recipe runs again, which restarts the engine.
pub async fn regenerate_certs(
    app: &App,
    name: &str,
    report: Arc<Reporter>,
) -> Result<(), StepFailure> {
    let dir = app.store.machine(name);
    if !app.store.exists(name) {
        return Err(failure(
            name,
            "load machine",
            crate::store::LoadError::NotFound(name.to_string()).into(),
        ));
    }
    report.info("Regenerating TLS certificates");
    for file in [dir.server_cert(), dir.server_key()] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(failure(
                    name,
                    "regenerate certificates",
                    anyhow!("cannot remove {}: {e}", file.display()),
                ));
            }
        }
    }
    reprovision(app, name, report).await
}

/// Upgrade the engine through the machine's recipe (`dmw upgrade`), starting the machine
/// first if it is not running; returns the engine versions before and after.
pub async fn upgrade(
    app: &App,
    name: &str,
    report: Arc<Reporter>,
) -> Result<(Option<String>, String), StepFailure> {
    let record = app
        .store
        .load(name)
        .map_err(|e| failure(name, "load machine", e.into()))?;
    if record.endpoint.is_some() {
        let mut driver = app
            .machine_driver(&record, report.clone())
            .await
            .map_err(|e| failure(name, "start machine", e))?;
        let state = driver
            .state()
            .await
            .map_err(|e| failure(name, "start machine", e))?;
        if state != crate::plugin::driver::MachineState::Running {
            report.info("Starting machine so machine can be upgraded...");
            drop(driver);
            crate::power::run(app, name, crate::power::Action::Start, report.clone())
                .await
                .map_err(|e| failure(name, "start machine", e))?;
        }
    }
    let (mut record, endpoint, link) = connect(app, name, &report).await?;
    let before = record.docker_version.clone();
    let mut run = Run {
        app,
        record: &mut record,
        report: report.clone(),
        provider_called: false,
    };
    let result = run.upgrade(&link, &endpoint).await;
    link.reset().await;
    finish(app, &mut record, &report, result)?;
    let after = record.docker_version.clone().unwrap_or_default();
    Ok((before, after))
}

/// A failure of `step` on machine `name`.
fn failure(name: &str, step: &'static str, error: anyhow::Error) -> StepFailure {
    StepFailure {
        machine: name.to_string(),
        step,
        error,
        exit_code: 1,
    }
}

/// Load a provisioned machine and log in over SSH (pinned host key) with root rights.
async fn connect(
    app: &App,
    name: &str,
    report: &Arc<Reporter>,
) -> Result<(MachineRecord, Endpoint, Arc<SshLink>), StepFailure> {
    let record = app
        .store
        .load(name)
        .map_err(|e| failure(name, "load machine", e.into()))?;
    if let Some(why) = record.no_ssh_reason() {
        return Err(failure(
            name,
            "load machine",
            anyhow!("{why}; there is nothing to provision"),
        ));
    }
    let Some(endpoint) = record.endpoint.clone() else {
        return Err(failure(
            name,
            "load machine",
            anyhow!(
                "it has no address yet (its create did not get that far); remove it with `dmw rm {name}`"
            ),
        ));
    };
    // An imported machine may be the first thing in this store: make the CA it moves to.
    bootstrap_certs(app, report).map_err(|e| failure(name, "bootstrap certificates", e))?;
    let target = app
        .ssh_target(&record)
        .ok_or_else(|| failure(name, "wait for SSH", anyhow!("no SSH endpoint")))?;
    let link = Arc::new(SshLink::new(
        target,
        app.host_key_policy(&record),
        report.clone(),
    ));
    report.step("Waiting for SSH to be available...");
    wait_for_ssh(&link, wait_env(SSH_WAIT_ENV, SSH_WAIT_SECS))
        .await
        .map_err(|e| failure(name, "wait for SSH", e))?;
    let session = link
        .session()
        .await
        .map_err(|e| failure(name, "wait for SSH", e.into()))?;
    session
        .check_root()
        .await
        .map_err(|e| failure(name, "check sudo", e.into()))?;
    Ok((record, endpoint, link))
}

/// Record a re-run's failure in the machine's record (which `ls` shows).
fn finish(
    app: &App,
    record: &mut MachineRecord,
    report: &Reporter,
    result: Result<(), StepFailure>,
) -> Result<(), StepFailure> {
    if let Err(f) = &result {
        record.status = MachineStatus::Error;
        record.error = Some(StepError {
            step: f.step.to_string(),
            message: report.scrub(&format!("{:#}", f.error)),
        });
        report.error(&f.to_string());
        let _ = app.store.save(record);
    }
    result
}

struct Run<'a> {
    app: &'a App,
    record: &'a mut MachineRecord,
    report: Arc<Reporter>,
    /// Whether the driver's `create` was called: from then on something may exist at the
    /// provider, so a failure keeps the record.
    provider_called: bool,
}

impl Run<'_> {
    fn fail(&self, step: &'static str, error: anyhow::Error) -> StepFailure {
        StepFailure {
            machine: self.record.name.clone(),
            step,
            error,
            exit_code: 1,
        }
    }

    fn save(&self, step: &'static str) -> Result<(), StepFailure> {
        self.app
            .store
            .save(self.record)
            .map_err(|e| self.fail(step, e))
    }

    async fn create(
        &mut self,
        driver: &mut Driver,
        req: &CreateRequest,
    ) -> Result<(), StepFailure> {
        let name = req.name.clone();
        self.configure_driver(driver, req).await?;
        let choice = machine_key::KeyChoice {
            driver: &self.record.driver.name,
            builtin: matches!(req.driver_source, Source::Builtin(_)),
            typed: &req.typed_values,
            store_root: self.app.store.root(),
        };
        let precheck = async {
            driver.pre_create_check().await?;
            let ep = driver.ssh_endpoint().await?;
            check_ssh_values(choice.driver, &ep)?;
            let key = machine_key::choose(ep.key_path.as_deref(), &choice)?;
            Ok::<_, anyhow::Error>((ep.key_path, key))
        };
        let (key_path, key) = precheck.await.map_err(|e| self.pre_create_failure(e))?;
        self.save("save machine")?;
        if key == machine_key::MachineKey::Generated {
            let key_file = self.app.store.machine(&name).ssh_key();
            let public = machine_key::generate(&key_file, &format!("dmw {name}"))
                .map_err(|e| self.fail("create SSH key", e))?;
            driver
                .ctx()
                .kv
                .insert(machine_key::PUBLIC_KEY_STORE_KEY.to_string(), public);
        }

        let (address, engine_port) = self.create_at_provider(driver).await?;
        // Where to log in is asked again now that the machine exists; the key stays the
        // one decided before `create`.
        let endpoint = driver
            .ssh_endpoint()
            .await
            .map_err(|e| self.fail("create machine", e))?;
        if endpoint.key_path.as_deref().filter(|p| !p.is_empty())
            != key_path.as_deref().filter(|p| !p.is_empty())
        {
            return Err(self.fail(
                "import SSH key",
                anyhow!(
                    "driver {} named a different SSH key after create than before it",
                    self.record.driver.name
                ),
            ));
        }
        let endpoint = self
            .import_endpoint(&address, engine_port, &endpoint, &key)
            .map_err(|e| self.fail("import SSH key", e))?;
        self.save("save machine")?;

        self.report.step("Waiting for SSH to be available...");
        let target = self
            .app
            .ssh_target(self.record)
            .ok_or_else(|| self.fail("wait for SSH", anyhow!("no SSH endpoint")))?;
        let link = Arc::new(SshLink::new(
            target,
            HostKeyPolicy::TrustOnFirstUse,
            self.report.clone(),
        ));
        wait_for_ssh(&link, wait_env(SSH_WAIT_ENV, SSH_WAIT_SECS))
            .await
            .map_err(|e| self.fail("wait for SSH", e))?;
        let session = link
            .session()
            .await
            .map_err(|e| self.fail("wait for SSH", e.into()))?;
        session
            .check_root()
            .await
            .map_err(|e| self.fail("check sudo", e.into()))?;

        self.provision(&link, &endpoint, req.recipe.as_ref())
            .await?;
        link.reset().await;
        self.report.step("Docker is up and running!");
        self.report.info(&format!(
            "To see how to connect your Docker Client to the Docker Engine running on this machine, run: dmw env {name}"
        ));
        Ok(())
    }

    /// The first steps of every create: save the record, make the CA and client certificate
    /// if needed, give the driver its flags, then announce the pre-create checks.
    async fn configure_driver(
        &mut self,
        driver: &mut Driver,
        req: &CreateRequest,
    ) -> Result<(), StepFailure> {
        self.save("save machine")?;
        bootstrap_certs(self.app, &self.report)
            .map_err(|e| self.fail("bootstrap certificates", e))?;
        driver
            .set_config(&req.name, &req.driver_flags)
            .await
            .map_err(|e| self.fail("configure driver", e))?;
        self.record.driver_state = driver.state_kv();
        self.report.step("Running pre-create checks...");
        Ok(())
    }

    /// A failed pre-create check, in Docker Machine's words and with its exit code 3.
    fn pre_create_failure(&self, e: anyhow::Error) -> StepFailure {
        StepFailure {
            exit_code: 3,
            ..self.fail(
                "pre-create check",
                anyhow!("Error with pre-create check: \"{e:#}\""),
            )
        }
    }

    /// Make the machine at the provider; returns its address and engine port.
    async fn create_at_provider(
        &mut self,
        driver: &mut Driver,
    ) -> Result<(String, u16), StepFailure> {
        self.report.step("Creating machine...");
        self.provider_called = true;
        driver
            .create()
            .await
            .map_err(|e| self.fail("create machine", e))?;
        self.record.driver_state = driver.state_kv();
        let address = driver
            .address()
            .await
            .map_err(|e| self.fail("create machine", e))?;
        let engine_port = driver
            .engine_port()
            .await
            .map_err(|e| self.fail("create machine", e))?;
        check_engine_values(&self.record.driver.name, &address, engine_port)
            .map_err(|e| self.fail("create machine", e))?;
        Ok((address, engine_port))
    }

    /// `create` for a driver that does not provision (`none`): record the engine's URL and
    /// give the machine directory the store's client certificates. No SSH, no recipe.
    async fn record_engine(
        &mut self,
        driver: &mut Driver,
        req: &CreateRequest,
    ) -> Result<(), StepFailure> {
        let name = req.name.clone();
        self.configure_driver(driver, req).await?;
        driver
            .pre_create_check()
            .await
            .map_err(|e| self.pre_create_failure(e))?;
        let (address, engine_port) = self.create_at_provider(driver).await?;
        self.record.endpoint = Some(Endpoint {
            address,
            engine_port,
            ssh_address: String::new(),
            ssh_port: 0,
            ssh_user: String::new(),
        });
        self.copy_client_certs()
            .map_err(|e| self.fail("copy client certificates", e))?;
        self.record.status = MachineStatus::Ready;
        self.record.error = None;
        self.save("save machine")?;
        self.report.info(&format!(
            "Machine \"{name}\" records the engine at {}: dmw does not provision it or log into it. Its engine must trust the CA {} for `dmw env {name}` to work.",
            self.record.url().unwrap_or_default(),
            self.app.store.certs().ca_cert().display()
        ));
        Ok(())
    }

    /// Copy the driver's SSH key into the machine directory and record the endpoint.
    fn import_endpoint(
        &mut self,
        address: &str,
        engine_port: u16,
        ep: &SshDetails,
        key: &machine_key::MachineKey,
    ) -> Result<Endpoint> {
        // Checked again where the endpoint is recorded, whatever path led here.
        check_engine_values(&self.record.driver.name, address, engine_port)?;
        check_ssh_values(&self.record.driver.name, ep)?;
        let dir = self.app.store.machine(&self.record.name);
        if let machine_key::MachineKey::UserFile(key_src) = key {
            let key = std::fs::read(key_src)
                .with_context(|| format!("cannot read SSH key {}", key_src.display()))?;
            crate::store::write_private(&dir.ssh_key(), &key)?;
            let pub_src = key_src.with_extension(match key_src.extension() {
                Some(ext) => format!("{}.pub", ext.to_string_lossy()),
                None => "pub".into(),
            });
            if let Ok(pub_key) = std::fs::read(&pub_src) {
                crate::store::write_atomic(&dir.ssh_public_key(), &pub_key, 0o644)?;
            }
        }
        let endpoint = Endpoint {
            address: address.to_string(),
            engine_port,
            ssh_address: ep.address.clone(),
            ssh_port: ep.port,
            ssh_user: ep.user.clone(),
        };
        self.record.endpoint = Some(endpoint.clone());
        Ok(endpoint)
    }

    /// Detect the OS, choose the recipe, install and configure the engine, verify it.
    async fn provision(
        &mut self,
        link: &Arc<SshLink>,
        endpoint: &Endpoint,
        recipe_override: Option<&Source>,
    ) -> Result<(), StepFailure> {
        self.report
            .step("Detecting operating system of created instance...");
        let os = detect_os(link)
            .await
            .map_err(|e| self.fail("detect OS", e))?;
        self.record.os = Some(if os.pretty_name.is_empty() {
            os.id.clone()
        } else {
            os.pretty_name.clone()
        });

        let (source, recipe_name) =
            choose_recipe(self.app, &os, recipe_override, self.report.clone())
                .await
                .map_err(|e| self.fail("choose recipe", e))?;
        self.record.recipe = Some(DriverRef {
            name: recipe_name.clone(),
            source: source.reference(),
        });
        self.save("save machine")?;
        self.report
            .step(&format!("Provisioning with {recipe_name}..."));

        let mut recipe = self
            .recipe_instance(&source, &recipe_name, link, endpoint)
            .await
            .map_err(|e| self.fail("load recipe", e))?;
        let config = self.engine_config(&os, endpoint);
        let name = self.record.name.clone();
        recipe
            .set_hostname(&name)
            .await
            .map_err(|e| self.fail("set hostname", e))?;
        recipe
            .install_engine(&config)
            .await
            .map_err(|e| self.fail("install engine", e))?;
        self.report
            .step("Copying certs to the local machine directory...");
        self.copy_client_certs()
            .map_err(|e| self.fail("copy client certificates", e))?;
        recipe
            .configure_engine(&config)
            .await
            .map_err(|e| self.fail("configure engine", e))?;
        self.record.recipe_state = recipe.state_kv();

        self.verify_engine().await
    }

    /// Upgrade the engine with the stored recipe and options, then verify it answers.
    async fn upgrade(
        &mut self,
        link: &Arc<SshLink>,
        endpoint: &Endpoint,
    ) -> Result<(), StepFailure> {
        let os = detect_os(link)
            .await
            .map_err(|e| self.fail("detect OS", e))?;
        let Some(stored) = self.record.recipe.clone() else {
            return Err(self.fail(
                "load recipe",
                anyhow!(
                    "the machine was never provisioned; run `dmw provision {}`",
                    self.record.name
                ),
            ));
        };
        let source = Source::from_reference(&stored.source, Kind::Recipe)
            .map_err(|e| self.fail("load recipe", e))?;
        let mut recipe = self
            .recipe_instance(&source, &stored.name, link, endpoint)
            .await
            .map_err(|e| self.fail("load recipe", e))?;
        let config = self.engine_config(&os, endpoint);
        recipe
            .upgrade_engine(&config)
            .await
            .map_err(|e| self.fail("upgrade engine", e))?;
        self.record.recipe_state = recipe.state_kv();
        self.verify_engine().await
    }

    /// The engine configuration from the stored options.
    fn engine_config(&self, os: &OsInfo, endpoint: &Endpoint) -> EngineConfig {
        engine_config(
            &self.record.engine,
            os,
            &self.record.driver.name,
            endpoint.engine_port,
        )
    }

    /// Wait until the engine answers over mutual TLS, then record the machine as ready.
    async fn verify_engine(&mut self) -> Result<(), StepFailure> {
        self.report.step("Checking connection to Docker...");
        let version = wait_for_engine(self.app, self.record, wait_env(ENGINE_WAIT_ENV, 90))
            .await
            .map_err(|e| self.fail("check engine", e))?;
        self.record.docker_version = Some(version);
        self.record.status = MachineStatus::Ready;
        self.record.error = None;
        self.save("save machine")
    }

    async fn recipe_instance(
        &self,
        source: &Source,
        name: &str,
        link: &Arc<SshLink>,
        endpoint: &Endpoint,
    ) -> Result<Recipe> {
        let runtime = self.app.runtime()?;
        let component = runtime.load(source, Kind::Recipe)?;
        let mut ctx = PluginCtx::new(name, self.report.clone(), self.record.recipe_state.clone());
        ctx.ssh = Some(link.clone());
        let sans = server_sans(&endpoint.address, &self.record.name, &self.record.tls_sans)?;
        ctx.certs = Some(Arc::new(CertGrant {
            certs_dir: self.app.store.certs_dir(),
            org: format!("{}.{}", cert_org(), self.record.name),
            sans,
            ssh: link.clone(),
            machine_dir: Some(self.app.store.machine(&self.record.name)),
            simulated_fresh: true,
        }));
        runtime.recipe(&component, ctx).await
    }

    /// Put ca.pem, cert.pem and key.pem in the machine directory (its DOCKER_CERT_PATH).
    fn copy_client_certs(&self) -> Result<()> {
        let certs = self.app.store.certs_dir();
        let dir = self.app.store.machine_dir(&self.record.name);
        for (file, mode) in crate::store::layout::CLIENT_TLS_FILES {
            let bytes = std::fs::read(certs.join(file))
                .with_context(|| format!("cannot read {}", certs.join(file).display()))?;
            crate::store::write_atomic(&dir.join(file), &bytes, mode)?;
        }
        Ok(())
    }
}

/// The names the machine's server certificate is issued for: the validated address the
/// engine is reached at, the machine's name (when it is a DNS name), `localhost`, and the
/// user's own `--tls-san` values. Anything that is not an IP address or DNS name (a
/// wildcard, say) is refused.
pub fn server_sans(address: &str, machine: &str, extra: &[String]) -> Result<Vec<String>> {
    if let Some(p) = crate::validate::address_problem(address) {
        bail!("the machine's {p}, cannot be named in its certificate");
    }
    let mut sans = vec![address.to_string()];
    if crate::validate::dns_name(machine).is_ok() {
        sans.push(machine.to_string());
    }
    sans.push("localhost".to_string());
    for san in extra {
        check_tls_san(san)?;
        sans.push(san.clone());
    }
    Ok(sans)
}

/// Refuses a `--tls-san` value that is not an IP address or DNS name (wildcards included).
pub fn check_tls_san(san: &str) -> Result<()> {
    if let Err(why) = crate::validate::address(san) {
        bail!(
            "--tls-san {san:?} is not an IP address or DNS name ({why}); the CA issues certificates only for exact names"
        );
    }
    Ok(())
}

/// Refuses an engine address or port from driver `driver` that is not an IP address or
/// DNS name, or port 0 (driver output is untrusted: it ends up in shells and certificates).
pub fn check_engine_values(driver: &str, address: &str, engine_port: u16) -> Result<()> {
    if let Some(p) = crate::validate::address_problem(address) {
        bail!("driver {driver} returned {p}");
    }
    if let Err(why) = crate::validate::port(engine_port) {
        bail!("driver {driver} returned engine port {engine_port}: {why}");
    }
    Ok(())
}

/// Refuses an SSH endpoint from driver `driver` whose address, user or port is not valid
/// (it ends up in ssh_config files and ssh's arguments).
pub fn check_ssh_values(driver: &str, ep: &SshDetails) -> Result<()> {
    if let Some(p) = crate::validate::address_problem(&ep.address) {
        bail!("driver {driver} returned SSH {p}");
    }
    if let Some(p) = crate::validate::ssh_user_problem(&ep.user) {
        bail!("driver {driver} returned {p}");
    }
    if let Err(why) = crate::validate::port(ep.port) {
        bail!("driver {driver} returned SSH port {}: {why}", ep.port);
    }
    Ok(())
}

/// A duration in seconds from environment variable `var`, else `default_secs`.
pub fn wait_env(var: &str, default_secs: u64) -> Duration {
    Duration::from_secs(
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default_secs),
    )
}

/// Retry logging in until it works, the deadline passes, or the error cannot improve by waiting.
pub async fn wait_for_ssh(link: &SshLink, limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        match link.session().await {
            Ok(_) => return Ok(()),
            Err(e @ (SshError::Unreachable { .. } | SshError::Session { .. })) => {
                if start.elapsed() >= limit {
                    let t: &Target = link.target();
                    bail!(
                        "Too many retries waiting for SSH to be available: {}:{} did not accept an SSH login within {}s. Last error: {e}. Check the address and port, that sshd runs there, and that no firewall blocks it.",
                        t.address,
                        t.port,
                        limit.as_secs()
                    );
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Read the OS description over SSH.
pub async fn detect_os(link: &SshLink) -> Result<OsInfo> {
    let out = link.exec(os_release::DETECT_COMMAND, false).await?;
    if out.code != 0 {
        bail!(
            "the machine has no /etc/os-release, /usr/lib/os-release or /etc/*-release file to identify its OS; pass --recipe ./my-recipe.wasm to choose a recipe yourself"
        );
    }
    Ok(os_release::parse_detection(&out.stdout_text()))
}

/// Pick the recipe: `--recipe` if given, else the built-in with the highest score (ties: name).
pub async fn choose_recipe(
    app: &App,
    os: &OsInfo,
    over: Option<&Source>,
    report: Arc<Reporter>,
) -> Result<(Source, String)> {
    let runtime = app.runtime()?;
    if let Some(source) = over {
        let component = runtime.load(source, Kind::Recipe)?;
        let mut r = runtime
            .recipe(
                &component,
                PluginCtx::new("recipe", report.clone(), Default::default()),
            )
            .await?;
        let name = r.info().await?.name;
        if r.applies(os).await? == 0 {
            report.warn(&format!(
                "recipe {name} says it does not apply to {} {}; using it as asked",
                os.id, os.version_id
            ));
        }
        return Ok((source.clone(), name));
    }
    let mut best: Option<(u32, String, Source)> = None;
    for b in builtin::RECIPES {
        let component = runtime.load(&Source::Builtin(*b), Kind::Recipe)?;
        let mut r = runtime
            .recipe(
                &component,
                PluginCtx::new(b.name, report.clone(), Default::default()),
            )
            .await?;
        let score = r.applies(os).await?;
        report.debug(&format!(
            "recipe {} scores {score} for {} {}",
            b.name, os.id, os.version_id
        ));
        if score > 0 {
            let better = match &best {
                None => true,
                Some((s, n, _)) => score > *s || (score == *s && b.name < n.as_str()),
            };
            if better {
                best = Some((score, b.name.to_string(), Source::Builtin(*b)));
            }
        }
    }
    match best {
        Some((_, name, source)) => Ok((source, name)),
        None => {
            let names: Vec<&str> = builtin::RECIPES.iter().map(|b| b.name).collect();
            bail!(
                "OS type not recognized: detected ID={:?} ID_LIKE={:?} VERSION_ID={:?} ({}); no built-in recipe ({}) claims it. Pass --recipe ./my-recipe.wasm to use your own (see docs/writing-a-recipe.md)",
                os.id,
                os.id_like.join(" "),
                os.version_id,
                if os.pretty_name.is_empty() {
                    "no PRETTY_NAME"
                } else {
                    &os.pretty_name
                },
                names.join(", ")
            )
        }
    }
}

/// The recipe's engine configuration from the stored options.
pub fn engine_config(o: &EngineOptions, os: &OsInfo, driver: &str, port: u16) -> EngineConfig {
    let install_method = match o.install_method {
        crate::store::InstallMethod::Auto => InstallMethod::Auto,
        crate::store::InstallMethod::Repo => InstallMethod::Repo,
        crate::store::InstallMethod::Distro => InstallMethod::Distro,
        crate::store::InstallMethod::Script => InstallMethod::Script,
        crate::store::InstallMethod::None => InstallMethod::None,
    };
    let mut labels = o.labels.clone();
    labels.push(format!("provider={driver}"));
    EngineConfig {
        os: os.clone(),
        install_method,
        install_url: o.install_url.clone(),
        repo_url: o.repo_url.clone(),
        port,
        storage_driver: o.storage_driver.clone(),
        labels,
        insecure_registries: o.insecure_registries.clone(),
        registry_mirrors: o.registry_mirrors.clone(),
        extra_flags: o.opts.clone(),
        env: o.env.clone(),
    }
}

/// Wait until the engine answers `GET /version` over mutual TLS; returns its version.
pub async fn wait_for_engine(app: &App, record: &MachineRecord, limit: Duration) -> Result<String> {
    let url = record
        .url()
        .ok_or_else(|| anyhow!("the machine has no address"))?;
    let tls = crate::engine_api::ClientTls::load(app.store.machine(&record.name).path())?;
    let start = Instant::now();
    loop {
        match crate::engine_api::version(&url, &tls, Duration::from_secs(10)).await {
            Ok(v) => return Ok(v.version),
            Err(e) if start.elapsed() >= limit => {
                bail!(
                    "the Docker engine at {url} did not answer over mutual TLS within {}s: {e}",
                    limit.as_secs()
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_sans_are_the_address_the_name_localhost_and_the_users() {
        let sans = server_sans("10.0.0.2", "m1", &["docker.example.com".into()]).expect("sans");
        assert_eq!(sans, ["10.0.0.2", "m1", "localhost", "docker.example.com"]);
        // A machine name that is no DNS name is left out, not issued.
        let sans = server_sans("10.0.0.2", "m1-", &[]).expect("sans");
        assert_eq!(sans, ["10.0.0.2", "localhost"]);
        let e = server_sans("10.0.0.2", "m1", &["*.example.com".into()]).unwrap_err();
        assert!(e.to_string().contains("wildcards are not allowed"), "{e}");
        let e = server_sans("*.example.com", "m1", &[]).unwrap_err();
        assert!(
            e.to_string().contains("cannot be named in its certificate"),
            "{e}"
        );
        assert!(check_tls_san("1.2.3.4").is_ok());
        assert!(check_tls_san("a b").is_err());
    }

    #[test]
    fn driver_values_are_checked() {
        let e = check_engine_values("x", "127.0.0.1/$(id>F)", 2376).unwrap_err();
        assert_eq!(
            e.to_string(),
            "driver x returned address \"127.0.0.1/$(id>F)\", which is not an IP address or DNS name (the character '/' is not allowed)"
        );
        assert!(check_engine_values("x", "10.0.0.2", 0).is_err());
        let ep = SshDetails {
            address: "10.0.0.2".into(),
            port: 22,
            user: "root\n  ProxyCommand sh -c 'id'".into(),
            key_path: None,
        };
        let e = check_ssh_values("x", &ep).unwrap_err();
        assert!(
            e.to_string().contains("which is not a valid user name"),
            "{e}"
        );
        let ok = SshDetails {
            user: "root".into(),
            ..ep
        };
        assert!(check_ssh_values("x", &ok).is_ok());
        assert!(check_ssh_values("x", &SshDetails { port: 0, ..ok }).is_err());
    }
}
