//! Power actions on a machine through its driver — start, stop, restart, kill — with
//! Docker Machine's already-in-state guard, a wait for the state the action leads to and,
//! once a machine is up again, a wait for its engine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::app::App;
use crate::sandbox::plugin::Driver;
use crate::sandbox::plugin::driver::{MachineState, state_name};
use crate::state::store::MachineRecord;
use crate::text::report::Reporter;

/// Environment variable: how long to wait for a machine to reach a state, in seconds
/// (default 180, Docker Machine's 60 attempts × 3 s).
pub const STATE_WAIT_ENV: &str = "DMW_STATE_TIMEOUT";

/// How often the driver's state is asked while waiting.
const POLL: Duration = Duration::from_secs(1);

/// A power action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start a stopped machine.
    Start,
    /// Stop it gracefully.
    Stop,
    /// Restart it (start it if stopped).
    Restart,
    /// Stop it at once.
    Kill,
}

impl Action {
    /// The progress line's verb: `Starting`, `Stopping`, …
    fn doing(self) -> &'static str {
        match self {
            Action::Start => "Starting",
            Action::Stop => "Stopping",
            Action::Restart => "Restarting",
            Action::Kill => "Killing",
        }
    }

    /// The outcome's word: `started`, `stopped`, …
    fn done(self) -> &'static str {
        match self {
            Action::Start => "started",
            Action::Stop => "stopped",
            Action::Restart => "restarted",
            Action::Kill => "killed",
        }
    }

    /// The state the machine is in once the action is done.
    fn target(self) -> MachineState {
        match self {
            Action::Start | Action::Restart => MachineState::Running,
            Action::Stop | Action::Kill => MachineState::Stopped,
        }
    }
}

/// A machine the provider brought up at another address than its record held (a cloud
/// server without a reserved IP powered on again, a new DHCP lease): the record holds the
/// new one now; its server certificate still names the old one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    /// The address the record held.
    pub from: String,
    /// The address the driver reports now.
    pub to: String,
}

/// Run `action` on machine `name`, whose lock the caller holds, then save what the driver
/// learnt. A machine that comes up again is waited for until its engine answers — unless
/// it came up at a new address ([`Moved`], returned): its certificate does not name that
/// address, so the caller re-issues it (`usecase::readdress`, `provision::upgrade`).
pub async fn run_locked(
    app: &App,
    name: &str,
    action: Action,
    report: Arc<Reporter>,
) -> Result<Option<Moved>> {
    let mut record = app.store.load(name)?;
    // An engine-only machine may have no endpoint (a `--url` that is not tcp://); its
    // driver answers every action with Docker Machine's "hosts without a driver" error.
    if record.endpoint.is_none() && !record.engine_only {
        bail!(
            "machine \"{name}\" has no address yet (its create did not get that far); remove it with `dmw rm {name}`"
        );
    }
    let mut driver = app.machine_driver(&record, report.clone()).await?;
    let result = act(app, &mut driver, &mut record, action, &report).await;
    // The driver's state changed even if the action failed half-way: keep it.
    record.driver_state = driver.state_kv();
    app.store.save(&record)?;
    result
}

async fn act(
    app: &App,
    driver: &mut Driver,
    record: &mut MachineRecord,
    action: Action,
    report: &Reporter,
) -> Result<Option<Moved>> {
    let name = record.name.clone();
    let now = driver
        .state()
        .await
        .map_err(|e| anyhow!("error getting state for host {name}: {e:#}"))?;
    if action != Action::Restart && now == action.target() {
        bail!(
            "Machine \"{name}\" is already {}.",
            state_name(now).to_lowercase()
        );
    }
    report.info(&format!("{} \"{name}\"...", action.doing()));
    match action {
        Action::Start => driver.start().await?,
        Action::Stop => driver.stop().await?,
        Action::Kill => driver.kill().await?,
        Action::Restart if now == MachineState::Stopped => driver.start().await?,
        Action::Restart => driver.restart().await?,
    }
    record.driver_state = driver.state_kv();
    wait_for_state(
        driver,
        action.target(),
        crate::usecase::wait::wait_env(STATE_WAIT_ENV, 180),
    )
    .await
    .map_err(|e| anyhow!("machine \"{name}\": {e:#}"))?;
    let moved = if action.target() == MachineState::Running {
        refresh_address(driver, record).await?
    } else {
        None
    };
    if let Some(m) = &moved {
        report.info(&format!(
            "Machine \"{name}\" came up at a new address {} (was {})",
            m.to, m.from
        ));
    }
    // Only a provisioned machine has an engine to wait for (a `--no-provision` one has
    // none, and dmw must not connect to it); one at a new address is not waited for here:
    // its certificate does not name the address yet.
    if action.target() == MachineState::Running && !record.never_provisioned && moved.is_none() {
        report.info("Waiting for the Docker engine to answer...");
        let limit = crate::usecase::wait::wait_env(
            crate::usecase::wait::ENGINE_WAIT_ENV,
            crate::usecase::wait::ENGINE_WAIT_SECS,
        );
        let version = crate::usecase::wait::wait_for_engine(&app.store, record, limit)
            .await
            .map_err(|e| anyhow!("machine \"{name}\" is up but its engine is not: {e:#}"))?;
        record.docker_version = Some(version);
    }
    report.info(&format!("Machine \"{name}\" was {}.", action.done()));
    Ok(moved)
}

/// Poll the driver until the machine is in `want`.
async fn wait_for_state(driver: &mut Driver, want: MachineState, limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let last = driver.state().await;
        match &last {
            Ok(s) if *s == want => return Ok(()),
            _ if start.elapsed() >= limit => {
                let seen = match last {
                    Ok(s) => state_name(s).to_string(),
                    Err(e) => format!("{e:#}"),
                };
                bail!(
                    "it did not become {} within {}s (last seen: {seen}); raise {STATE_WAIT_ENV} if the provider is slow",
                    state_name(want),
                    limit.as_secs()
                );
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

/// A started machine may have a new address (Docker Machine only warned): record it and
/// return the move when the engine URL's address changed.
async fn refresh_address(driver: &mut Driver, record: &mut MachineRecord) -> Result<Option<Moved>> {
    let address = driver.address().await?;
    let ssh = driver.ssh_endpoint().await?;
    let Some(ep) = record.endpoint.as_mut() else {
        return Ok(None);
    };
    // Driver output is untrusted: a bad address is refused, the record keeps the old one.
    crate::text::validate::check_engine_values(&record.driver.name, &address, ep.engine_port)
        .with_context(|| format!("machine \"{}\": after start", record.name))?;
    if !record.engine_only {
        crate::text::validate::check_ssh_values(
            &record.driver.name,
            &ssh.address,
            &ssh.user,
            ssh.port,
        )
        .with_context(|| format!("machine \"{}\": after start", record.name))?;
    }
    let moved = (ep.address != address).then(|| Moved {
        from: ep.address.clone(),
        to: address.clone(),
    });
    ep.address = address;
    ep.ssh_address = ssh.address;
    ep.ssh_port = ssh.port;
    Ok(moved)
}
