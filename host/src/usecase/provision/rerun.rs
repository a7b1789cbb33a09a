//! Re-runs of the recipe on an existing machine, with its stored options: `dmw provision`,
//! `dmw upgrade` and `dmw regenerate-certs`.

use std::sync::Arc;

use anyhow::anyhow;

use super::recipe_choice::detect_os;
use super::steps::bootstrap_certs;
use super::{Run, StepFailure};
use crate::app::App;
use crate::sandbox::capabilities::SshLink;
use crate::sandbox::plugin::{Kind, Source};
use crate::state::store::{Endpoint, MachineRecord, MachineStatus, StepError};
use crate::text::report::Reporter;
use crate::usecase::wait::{SSH_WAIT_ENV, SSH_WAIT_SECS, wait_env, wait_for_ssh};

/// The machine's lock, for the re-runs: a failure is a [`StepFailure`] of [`LOCK_STEP`].
fn lock(app: &App, name: &str) -> Result<crate::state::store::MachineLock, StepFailure> {
    app.store
        .lock_existing(name)
        .map_err(|e| failure(name, super::LOCK_STEP, e))
}

/// Run the recipe again on a machine with its stored options (`dmw provision`), holding its
/// lock: detect the OS, install (kept when present), configure (unchanged configuration: no
/// restart), verify.
pub async fn reprovision(app: &App, name: &str, report: Arc<Reporter>) -> Result<(), StepFailure> {
    let _lock = lock(app, name)?;
    reprovision_locked(app, name, report).await
}

/// [`reprovision`] of a machine whose host key changed, once the user checked the new
/// one: the key its sshd offers now must have the fingerprint `accepted` (`SHA256:…`); it
/// is pinned as the machine's only key, then the recipe runs again. A key with another
/// fingerprint is refused and nothing is pinned.
pub async fn reprovision_accepting_host_key(
    app: &App,
    name: &str,
    accepted: &str,
    report: Arc<Reporter>,
) -> Result<(), StepFailure> {
    const STEP: &str = "accept host key";
    let _lock = lock(app, name)?;
    let record = app
        .store
        .load(name)
        .map_err(|e| failure(name, "load machine", e.into()))?;
    let target = app
        .ssh_target(&record)
        .ok_or_else(|| failure(name, STEP, anyhow!("it has no SSH endpoint")))?;
    let key = crate::net::ssh::offered_host_key(&target, std::time::Duration::from_secs(20))
        .await
        .map_err(|e| failure(name, STEP, e.into()))?;
    let offered = crate::net::ssh::fingerprint(&key);
    if offered != accepted.trim() {
        return Err(failure(
            name,
            STEP,
            anyhow!(
                "{}:{} offers the host key {offered}, not {}: nothing was pinned",
                target.address,
                target.port,
                crate::text::sanitize::plugin_text(accepted, 100)
            ),
        ));
    }
    crate::net::ssh::repin(&target, &key).map_err(|e| failure(name, STEP, e.into()))?;
    report.info(&format!("Host key {offered} pinned for \"{name}\""));
    reprovision_locked(app, name, report).await
}

/// [`reprovision`] with the lock held.
async fn reprovision_locked(
    app: &App,
    name: &str,
    report: Arc<Reporter>,
) -> Result<(), StepFailure> {
    let (mut record, endpoint, link) = match connect(app, name, &report).await {
        Ok(connected) => connected,
        Err(f) => return Err(unfinished_failed(app, name, &report, f)),
    };
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

/// Issue the machine a new server certificate and install it (`dmw regenerate-certs`),
/// holding its lock: the kept one is dropped and the recipe runs again, which restarts the
/// engine; its docker context is refreshed (a context that cannot be is a warning).
pub async fn regenerate_certs(
    app: &App,
    name: &str,
    report: Arc<Reporter>,
) -> Result<(), StepFailure> {
    if !app.store.exists(name) {
        return Err(failure(
            name,
            "load machine",
            crate::state::store::LoadError::NotFound(name.to_string()).into(),
        ));
    }
    let _lock = lock(app, name)?;
    regenerate_certs_locked(app, name, report).await
}

/// [`regenerate_certs`] with the lock held (`usecase::readdress` re-issues the certificate
/// of a machine that came up at a new address so).
pub async fn regenerate_certs_locked(
    app: &App,
    name: &str,
    report: Arc<Reporter>,
) -> Result<(), StepFailure> {
    let dir = app.store.machine(name);
    report.info("Regenerating TLS certificates");
    // A machine dmw only knows by its engine URL (the none driver): its client
    // certificates are dmw's to renew, its engine's server certificate is not.
    if app.store.load(name).is_ok_and(|r| r.engine_only) {
        super::steps::copy_client_certs(&app.store, name)
            .map_err(|e| failure(name, "copy client certificates", e))?;
        report.info(&format!(
            "machine \"{name}\" uses the none driver: its client certificates were renewed; the engine's own server certificate is not dmw's to renew"
        ));
        return Ok(());
    }
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
    reprovision_locked(app, name, report.clone()).await?;
    if let Err(e) = crate::state::context::refresh_machine(&app.store, name) {
        report.warn(&format!(
            "the docker context of \"{name}\" was not updated: {e:#}"
        ));
    }
    Ok(())
}

/// Upgrade the engine through the machine's recipe (`dmw upgrade`), holding its lock; a
/// machine that is not running is started first (as Docker Machine did). Returns the engine
/// versions before and after.
pub async fn upgrade(
    app: &App,
    name: &str,
    report: Arc<Reporter>,
) -> Result<(Option<String>, String), StepFailure> {
    let _lock = lock(app, name)?;
    start_for_upgrade(app, name, report.clone()).await?;
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

/// Start a machine that is not running so it can be upgraded (its lock held).
async fn start_for_upgrade(
    app: &App,
    name: &str,
    report: Arc<Reporter>,
) -> Result<(), StepFailure> {
    let record = app
        .store
        .load(name)
        .map_err(|e| failure(name, "load machine", e.into()))?;
    if record.endpoint.is_none() {
        // `connect` explains a machine without an address.
        return Ok(());
    }
    let mut driver = app
        .machine_driver(&record, report.clone())
        .await
        .map_err(|e| failure(name, "start machine", e))?;
    let state = driver
        .state()
        .await
        .map_err(|e| failure(name, "start machine", e))?;
    if state != crate::sandbox::plugin::driver::MachineState::Running {
        report.info("Starting machine so machine can be upgraded...");
        drop(driver);
        let moved = crate::usecase::power::run_locked(
            app,
            name,
            crate::usecase::power::Action::Start,
            report.clone(),
        )
        .await
        .map_err(|e| failure(name, "start machine", e))?;
        // Its certificate must name the new address before the engine can be reached.
        if moved.is_some() {
            regenerate_certs_locked(app, name, report).await?;
        }
    }
    Ok(())
}

/// A failure of `step` on machine `name`.
fn failure(name: &str, step: &'static str, error: anyhow::Error) -> StepFailure {
    StepFailure::new(name, step, error)
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
/// A `provision` that failed before the recipe ran (no SSH, no address): a machine whose
/// create never finished (interrupted, or failed) keeps the step in its record, as create
/// would have, so `ls` says where it stands; a working machine's record is left as it is.
fn unfinished_failed(app: &App, name: &str, report: &Reporter, f: StepFailure) -> StepFailure {
    if let Ok(mut record) = app.store.load(name)
        && matches!(
            record.status,
            MachineStatus::Creating | MachineStatus::Error
        )
    {
        record.status = MachineStatus::Error;
        record.error = Some(StepError {
            step: f.step.to_string(),
            message: report.scrub(&format!("{:#}", f.error)),
        });
        let _ = app.store.save(&record);
    }
    f
}

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

impl Run<'_> {
    /// Upgrade the engine with the stored recipe and options, then verify it answers.
    pub(super) async fn upgrade(
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
}
