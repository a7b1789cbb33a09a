//! `dmw version`: dmw's version, or a machine's engine version.

use std::time::Duration;

use super::machine_info::{NameArgs, one_name};
use super::{CliError, CliResult};
use crate::app::App;

/// `dmw version X.Y.Z, build <commit>`.
pub fn version_line() -> String {
    format!(
        "dmw version {}, build {}",
        super::VERSION,
        option_env!("DMW_GIT_COMMIT").unwrap_or("dev")
    )
}

/// Run `dmw version [NAME]`.
pub async fn run(app: &App, a: NameArgs) -> CliResult {
    let Some(name) = one_name(app, a)? else {
        println!("{}", version_line());
        return Ok(());
    };
    let record = app.store.load(&name)?;
    let version = crate::machine::query_engine(app, &record, Duration::from_secs(20))
        .await
        .map_err(|e| {
            CliError::new(format!(
                "machine \"{name}\": cannot get the Docker version: {e:#}"
            ))
        })?;
    println!("{version}");
    Ok(())
}
