//! `dmw provision`: run the recipe again on machines, with their stored options.

use std::sync::Arc;

use super::{CliError, CliResult, names_or_default};
use crate::app::App;
use crate::provision::{self, LOG_FILE};
use crate::report::Reporter;

/// Arguments of `provision`.
#[derive(clap::Args)]
pub struct ProvisionArgs {
    /// Machine names (default: "default")
    names: Vec<String>,
}

/// Run `dmw provision NAME...`: one machine after another, in the order given; exits
/// non-zero if any failed.
pub async fn run(app: &App, a: ProvisionArgs) -> CliResult {
    let mut errors = Vec::new();
    for name in names_or_default(app, a.names)? {
        if !app.store.exists(&name) {
            errors.push(crate::store::LoadError::NotFound(name).to_string());
            continue;
        }
        let _lock = app.store.lock(&name)?;
        let log = app.store.machine_dir(&name).join(LOG_FILE);
        let report = Arc::new(Reporter::new(app.debug).with_log_file(&log));
        match provision::reprovision(app, &name, report).await {
            Ok(()) => println!("Machine \"{name}\" was provisioned."),
            Err(f) => errors.push(format!(
                "Error provisioning machine \"{name}\": {} failed: {:#}",
                f.step, f.error
            )),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(errors.join("\n")))
    }
}
