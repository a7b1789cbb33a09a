//! `dmw version`: dmw's version, or a machine's engine version.

use std::time::Duration;

use super::machine_info::{NameOutputArgs, expect_one, one_name};
use super::output::{Output, print_json};
use super::{CliError, CliResult};
use crate::app::App;

/// `dmw version X.Y.Z, build <commit>`.
pub fn version_line() -> String {
    format!(
        "{} version {}",
        crate::text::personality::name(),
        version_number()
    )
}

/// `X.Y.Z, build <commit>` (Docker Machine's `version.FullVersion()`).
pub fn version_number() -> String {
    format!(
        "{}, build {}",
        super::VERSION,
        option_env!("DMW_GIT_COMMIT").unwrap_or("dev")
    )
}

/// The `Client` object of `version --output json`.
fn client_json() -> serde_json::Value {
    serde_json::json!({
        "Version": super::VERSION,
        "GitCommit": option_env!("DMW_GIT_COMMIT").unwrap_or("dev"),
    })
}

/// Run `dmw version [NAME]`.
pub async fn run(app: &App, a: NameOutputArgs) -> CliResult {
    expect_one(&a.extra)?;
    let Some(name) = one_name(app, a.name)? else {
        match a.output {
            Output::Text => println!("{}", version_line()),
            Output::Json => print_json(&serde_json::json!({ "Client": client_json() })),
        }
        return Ok(());
    };
    let record = app.store.load(&name)?;
    let version = crate::usecase::machine::query_engine(app, &record, Duration::from_secs(20))
        .await
        .map_err(|e| {
            CliError::new(format!(
                "machine \"{name}\": cannot get the Docker version: {e:#}"
            ))
        })?;
    match a.output {
        Output::Text => println!("{version}"),
        Output::Json => print_json(&serde_json::json!({
            "Client": client_json(),
            "Server": { "Machine": name, "Version": version },
        })),
    }
    Ok(())
}
