//! `ip`, `url`, `status`, `active`: small questions about machines.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};

use super::output::{Output, print_json};
use super::{CliError, CliResult, name_or_default, names_or_default};
use crate::app::App;
use crate::sandbox::plugin::driver::state_name;
use crate::text::report::Reporter;
use crate::usecase::machine::observe;

/// Arguments of a command on one machine.
#[derive(clap::Args)]
pub struct NameArgs {
    /// Machine name (default: "default")
    pub(super) name: Option<String>,
    /// More names: an error, as in Docker Machine.
    #[arg(hide = true)]
    pub(super) extra: Vec<String>,
}

/// Arguments of `status` and `version`: one machine, and the output format.
#[derive(clap::Args)]
pub struct NameOutputArgs {
    /// Output format (`json`: an object with Docker-style field names, for scripts)
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub(super) output: Output,
    /// Machine name (default: "default")
    pub(super) name: Option<String>,
    /// More names: an error, as in Docker Machine.
    #[arg(hide = true)]
    pub(super) extra: Vec<String>,
}

/// Docker Machine's error when a one-machine command gets more names.
pub(super) fn expect_one(extra: &[String]) -> Result<(), CliError> {
    if extra.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(
            "Error: Expected one machine name as an argument",
        ))
    }
}

/// Arguments of a command on many machines.
#[derive(clap::Args)]
pub struct NamesArgs {
    /// Machine names (default: "default")
    names: Vec<String>,
}

/// Arguments of `active`.
#[derive(clap::Args)]
pub struct ActiveArgs {
    /// Timeout in seconds, default to 10s
    #[arg(short = 't', long, default_value_t = 10)]
    timeout: u64,
}

/// Run `dmw ip`: the stored address of each machine, in the order given.
pub fn ip(app: &App, a: NamesArgs) -> CliResult {
    let names = names_or_default(app, a.names)?;
    // The store answers at once, so no pool is needed; like the other multi-machine
    // commands, each machine's answer or error comes in the order given.
    let mut failed = false;
    for name in names {
        let answer = match app.store.load(&name) {
            Ok(r) => r.shown_ip().ok_or_else(|| {
                format!("Error getting IP address: machine \"{name}\" has no address yet")
            }),
            Err(e) => Err(e.to_string()),
        };
        match answer {
            Ok(address) => println!("{address}"),
            Err(e) => {
                eprintln!("{}", crate::text::personality::localize(&e));
                failed = true;
            }
        }
    }
    if failed {
        Err(CliError {
            message: String::new(),
            code: 1,
        })
    } else {
        Ok(())
    }
}

/// Run `dmw url`.
pub fn url(app: &App, a: NameArgs) -> CliResult {
    expect_one(&a.extra)?;
    let name = name_or_default(app, a.name)?;
    let record = app.store.load(&name)?;
    println!("{}", record.shown_url().unwrap_or_default());
    Ok(())
}

/// Run `dmw status`: the driver's view of the machine.
pub async fn status(app: &App, a: NameOutputArgs) -> CliResult {
    expect_one(&a.extra)?;
    let name = name_or_default(app, a.name)?;
    let record = app.store.load(&name)?;
    let state =
        if record.engine_only && record.status != crate::state::store::MachineStatus::Ready {
            // A recorded engine whose create did not finish (as `ls` shows it).
            "Error"
        } else if record.engine_only {
            // Docker Machine's none driver: always Running; reachability only with --debug.
            if app.debug {
                match crate::usecase::machine::engine_answers_tcp(&record, Duration::from_secs(10))
                    .await
                {
                    Ok(()) => eprintln!("machine \"{name}\": its engine URL accepts connections"),
                    Err(e) => eprintln!(
                        "machine \"{name}\": {}",
                        crate::text::sanitize::stored_text(&e)
                    ),
                }
            }
            "Running"
        } else if record.endpoint.is_none() {
            "Error"
        } else {
            let mut driver = app
                .machine_driver(&record, Arc::new(Reporter::quiet(app.debug)))
                .await?;
            let state = driver.state().await.map_err(|e| {
                CliError::new(format!("error getting state for host {name}: {e:#}"))
            })?;
            state_name(state)
        };
    match a.output {
        Output::Text => println!("{state}"),
        Output::Json => print_json(&serde_json::json!({ "Name": name, "State": state })),
    }
    Ok(())
}

/// Run `dmw active`: the running machine that `$DOCKER_HOST` points at.
pub async fn active(app: &App, a: ActiveArgs) -> CliResult {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    if host.is_empty() {
        return Err(CliError::new("No active host found"));
    }
    let candidates: Vec<String> = app
        .store
        .list()?
        .into_iter()
        .filter(|n| {
            app.store
                .load(n)
                .ok()
                .and_then(|r| r.shown_url())
                .is_some_and(|u| u == host)
        })
        .collect();
    let timeout = Duration::from_secs(a.timeout.max(1));
    let observed: Vec<_> = stream::iter(candidates.iter())
        .map(|n| observe(app, n, timeout))
        .buffered(8)
        .collect()
        .await;
    if let Some(o) = observed.iter().find(|o| o.is_running()) {
        println!("{}", o.name);
        return Ok(());
    }
    if observed.iter().any(|o| o.state == "Timeout") {
        return Err(CliError::new("Error getting active host: timeout"));
    }
    Err(CliError::new("No active host found"))
}

/// Used by `version NAME`.
pub(super) fn one_name(app: &App, name: Option<String>) -> Result<Option<String>, CliError> {
    match name {
        None => Ok(None),
        Some(n) => name_or_default(app, Some(n)).map(Some),
    }
}
