//! The create pipeline: driver checks, the machine at the provider, its SSH key and
//! endpoint, the first login, then the recipe steps (`steps.rs`).

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};

use super::steps::bootstrap_certs;
use super::{Run, StepFailure, machine_key};
use crate::app::App;
use crate::net::ssh::HostKeyPolicy;
use crate::sandbox::capabilities::SshLink;
use crate::sandbox::plugin::driver::SshDetails;
use crate::sandbox::plugin::{Driver, Source};
use crate::state::store::{
    DriverRef, Endpoint, EngineOptions, MachineRecord, MachineStatus, StepError,
};
use crate::text::report::Reporter;
use crate::text::validate::{check_engine_values, check_ssh_values};
use crate::usecase::wait::{SSH_WAIT_ENV, SSH_WAIT_SECS, wait_env, wait_for_ssh};

/// The `--url` the user typed for the built-in none driver (its only flag), as typed; a
/// value with control characters is not taken (it is printed by `ls`, `url` and `inspect`).
fn recorded_url(req: &CreateRequest) -> Option<String> {
    if !matches!(&req.driver_source, Source::Builtin(b) if b.name == "none") {
        return None;
    }
    let url = req
        .driver_flags
        .iter()
        .find(|f| f.name == "url")?
        .values
        .first()?
        .clone();
    // Only a value the user typed (a declared default is the plugin's text, not theirs).
    (!url.is_empty() && !url.chars().any(char::is_control) && req.typed_values.contains(&url))
        .then_some(url)
}

/// What `create` was asked for.
pub struct CreateRequest {
    /// Machine name (already validated).
    pub name: String,
    /// Where the driver came from.
    pub driver_source: Source,
    /// Create flags for the driver.
    pub driver_flags: Vec<crate::sandbox::plugin::driver::FlagValue>,
    /// Engine options.
    pub engine: EngineOptions,
    /// Extra certificate SANs.
    pub tls_sans: Vec<String>,
    /// `--recipe`, overriding detection.
    pub recipe: Option<Source>,
    /// The values the user gave the driver's flags (command line or the driver's own
    /// environment variables): the only paths the driver may name as the SSH key.
    pub typed_values: Vec<String>,
    /// The driver's `http` settings for this machine (a driver granted `http`).
    pub http: Option<crate::net::http::HttpSettings>,
    /// `--no-provision`: stop once the machine exists at the provider (no SSH, no engine).
    pub no_provision: bool,
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
            let name =
                crate::text::sanitize::plugin_text(&i.name, crate::text::sanitize::NAME_LIMIT);
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
    record.http = req.http.clone();
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
            // Nothing the driver started through `process` (before its `create`) outlives it.
            if let Err(e) =
                crate::sandbox::capabilities::process::kill_all(&app.store.machine(&req.name))
            {
                report.warn(&format!(
                    "a process started for the machine may still run: {e:#}"
                ));
            }
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

impl Run<'_> {
    pub(super) async fn create(
        &mut self,
        driver: &mut Driver,
        req: &CreateRequest,
    ) -> Result<(), StepFailure> {
        let name = req.name.clone();
        self.configure_driver(driver, req).await?;
        let choice = machine_key::KeyChoice {
            driver: &self.record.driver.name,
            builtin: matches!(req.driver_source, Source::Builtin(_)),
            keys: driver.granted("keys"),
            typed: &req.typed_values,
            store_root: self.app.store.root(),
        };
        let precheck = async {
            driver.pre_create_check().await?;
            let ep = driver.ssh_endpoint().await?;
            // A cloud driver learns the address only when it creates the machine: an empty
            // one is fine here (it is checked after create, with the engine's).
            let address = match ep.address.as_str() {
                "" => "0.0.0.0",
                a => a,
            };
            check_ssh_values(choice.driver, address, &ep.user, ep.port)?;
            let key = machine_key::choose(ep.key_path.as_deref(), &choice)?;
            Ok::<_, anyhow::Error>((ep.key_path, key))
        };
        let (key_path, key) = precheck.await.map_err(|e| self.pre_create_failure(e))?;
        self.save("save machine")?;
        if key == machine_key::MachineKey::Generated {
            let key_file = self.app.store.machine(&name).ssh_key();
            let public = machine_key::generate(&key_file, &format!("dmw {name}"))
                .map_err(|e| self.fail("create SSH key", e))?;
            // The public half is lent only to a driver granted `keys` (to register it at its
            // provider); the private half never leaves the machine's directory.
            driver.offer_public_key(&public);
            self.record.generated_key = true;
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

        if req.no_provision {
            // Nothing connects to the machine: its record says it is not provisioned, so
            // `ls` and the power commands never wait for an engine that was not installed.
            self.record.status = MachineStatus::Unprovisioned;
            self.record.error = None;
            self.record.never_provisioned = true;
            self.save("save machine")?;
            self.report.step(&format!(
                "Machine created at the provider, not provisioned (--no-provision): `dmw provision {name}` waits for SSH and installs Docker"
            ));
            return Ok(());
        }

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
        self.report
            .info(&crate::text::personality::create_done_hint(&name));
        Ok(())
    }

    /// The first steps of every create: save the record, make the CA and client certificate
    /// if needed, give the driver its flags, then announce the pre-create checks.
    pub(super) async fn configure_driver(
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
    pub(super) fn pre_create_failure(&self, e: anyhow::Error) -> StepFailure {
        StepFailure {
            exit_code: 3,
            ..self.fail(
                "pre-create check",
                anyhow!("Error with pre-create check: \"{e:#}\""),
            )
        }
    }

    /// Call the driver's `create` (from here on `rm` must ask the provider) and keep the
    /// state it stored.
    async fn call_create(&mut self, driver: &mut Driver) -> Result<(), StepFailure> {
        self.report.step("Creating machine...");
        self.provider_called = true;
        // What the driver stores while it creates (the ids of what it made) reaches the
        // record at once: a create killed midway leaves them for `rm` to find.
        let (store, name) = (self.app.store.clone(), self.record.name.clone());
        driver.set_store_journal(Arc::new(move |kv| {
            if let Ok(mut record) = store.load(&name) {
                record.driver_state = kv.clone();
                let _ = store.save(&record);
            }
        }));
        driver
            .create()
            .await
            .map_err(|e| self.fail("create machine", e))?;
        self.record.driver_state = driver.state_kv();
        Ok(())
    }

    /// Make the machine at the provider; returns its address and engine port.
    pub(super) async fn create_at_provider(
        &mut self,
        driver: &mut Driver,
    ) -> Result<(String, u16), StepFailure> {
        self.call_create(driver).await?;
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
    pub(super) async fn record_engine(
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
        if let Some(url) = recorded_url(req) {
            // The built-in none driver: the URL is the user's own text, kept as typed
            // (Docker Machine accepted any); dmw reaches it only when it is tcp://HOST:PORT.
            self.call_create(driver).await?;
            self.record.endpoint = Endpoint::of_engine_url(&url);
            self.record.engine_url = Some(url);
        } else {
            let (address, engine_port) = self.create_at_provider(driver).await?;
            self.record.endpoint = Some(Endpoint {
                address,
                engine_port,
                ssh_address: String::new(),
                ssh_port: 0,
                ssh_user: String::new(),
            });
        }
        self.copy_client_certs()
            .map_err(|e| self.fail("copy client certificates", e))?;
        self.record.mark_ready();
        self.save("save machine")?;
        if crate::text::personality::docker_machine() {
            // Docker Machine's none driver stopped here with its usual closing line.
            self.report
                .info(&crate::text::personality::create_done_hint(&name));
        } else {
            self.report.info(&format!(
                "Machine \"{name}\" records the engine at {}: dmw does not provision it or log into it. Its engine must trust the CA {} for `dmw env {name}` to work.",
                self.record.shown_url().unwrap_or_default(),
                self.app.store.certs().ca_cert().display()
            ));
        }
        Ok(())
    }

    /// Copy the driver's SSH key into the machine directory and record the endpoint.
    pub(super) fn import_endpoint(
        &mut self,
        address: &str,
        engine_port: u16,
        ep: &SshDetails,
        key: &machine_key::MachineKey,
    ) -> Result<Endpoint> {
        // Checked again where the endpoint is recorded, whatever path led here.
        check_engine_values(&self.record.driver.name, address, engine_port)?;
        check_ssh_values(&self.record.driver.name, &ep.address, &ep.user, ep.port)?;
        let dir = self.app.store.machine(&self.record.name);
        if let machine_key::MachineKey::UserFile(key_src) = key {
            let key = std::fs::read(key_src)
                .with_context(|| format!("cannot read SSH key {}", key_src.display()))?;
            crate::state::store::write_private(&dir.ssh_key(), &key)?;
            let pub_src = key_src.with_extension(match key_src.extension() {
                Some(ext) => format!("{}.pub", ext.to_string_lossy()),
                None => "pub".into(),
            });
            if let Ok(pub_key) = std::fs::read(&pub_src) {
                crate::state::store::write_atomic(&dir.ssh_public_key(), &pub_key, 0o644)?;
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
}
