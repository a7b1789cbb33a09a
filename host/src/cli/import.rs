//! `dmw import [PATH]`: adopt the generic and none machines of a Docker Machine store.

use std::path::PathBuf;
use std::sync::Arc;

use super::{CliError, CliResult};
use crate::app::App;
use crate::text::report::Reporter;
use crate::usecase::import::{self, Plan, docker_machine};

/// Arguments of `import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// Docker Machine's storage path (default: $MACHINE_STORAGE_PATH, else ~/.docker/machine)
    path: Option<PathBuf>,
    /// Print what would be imported or skipped, and change nothing
    #[arg(long)]
    dry_run: bool,
    /// Do not write docker contexts for the imported machines
    #[arg(long)]
    no_docker_context: bool,
}

/// Run `dmw import`.
pub async fn run(app: &App, a: ImportArgs) -> CliResult {
    let source = match a.path {
        Some(p) => p,
        None => docker_machine::default_root()?,
    };
    let source = std::path::absolute(&source).unwrap_or(source);
    let plans = import::plan(&app.store, &source)?;
    if plans.is_empty() {
        println!("No machines in {}", source.display());
        return Ok(());
    }
    let verb = if a.dry_run {
        "Would import"
    } else {
        "Importing"
    };
    println!(
        "{verb} from Docker Machine store {} into {}:",
        source.display(),
        app.store.root().display()
    );
    let report = Arc::new(Reporter::quiet(app.debug));
    let mut failed = Vec::new();
    let mut imported = 0;
    for plan in &plans {
        match plan {
            Plan::Skip {
                name,
                driver,
                reason,
            } => {
                let driver = if driver.is_empty() { "?" } else { driver };
                println!("  {name} ({driver}): skipped: {reason}");
            }
            Plan::Import(c) if a.dry_run => {
                println!(
                    "  {} ({}, {}): would be imported",
                    c.name, c.driver, c.summary
                );
            }
            Plan::Import(c) => match import::apply(app, &source, c, report.clone()).await {
                Ok(()) => {
                    imported += 1;
                    println!("  {} ({}, {}): imported", c.name, c.driver, c.summary);
                    if !a.no_docker_context {
                        crate::state::context::write_for_machine(&app.store, &c.name, &report);
                    }
                }
                Err(e) => {
                    println!("  {} ({}): failed: {e:#}", c.name, c.driver);
                    failed.push(c.name.clone());
                }
            },
        }
    }
    if !a.dry_run && imported > 0 {
        println!(
            "Imported machines keep the certificates Docker Machine made for them; their SSH host key is pinned on first connection. `dmw ls` shows them, `dmw env NAME` connects the docker CLI."
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(format!(
            "Error: import failed for {}; nothing was written for them and {} is unchanged",
            failed.join(", "),
            source.display()
        )))
    }
}
