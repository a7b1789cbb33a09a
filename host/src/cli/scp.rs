//! `dmw scp`: copy files to, from and between machines (native SFTP, no local scp/rsync).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;

use super::{CliError, CliResult};
use crate::app::App;
use crate::net::transfer::{self, Location, Options, Remote, Side};

/// Arguments of `scp`.
#[derive(clap::Args)]
pub struct ScpArgs {
    /// Copy files recursively (required to copy directories)
    #[arg(short = 'r', long)]
    recursive: bool,
    /// Reduce amount of data sent over network by sending only the differences
    #[arg(short = 'd', long)]
    delta: bool,
    /// Disables the progress meter and the summary line
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Sources then the destination, each a local path or `[user@]machine:[path]`
    #[arg(value_name = "PATH")]
    paths: Vec<String>,
}

/// Run `dmw scp`.
pub async fn run(app: &App, a: ScpArgs) -> CliResult {
    if a.paths.len() < 2 {
        return Err(CliError::new("Error: Improper number of arguments."));
    }
    let locations: Vec<Location> = a.paths.iter().map(|p| Location::parse(p)).collect();
    let mut remotes: BTreeMap<(String, Option<String>), Arc<Remote>> = BTreeMap::new();
    let mut sides = Vec::new();
    for loc in &locations {
        match loc {
            Location::Local(p) => sides.push((Side::Local, p.clone())),
            Location::Remote {
                machine,
                user,
                path,
            } => {
                let key = (machine.clone(), user.clone());
                let remote = match remotes.get(&key) {
                    Some(r) => r.clone(),
                    None => {
                        let r = Arc::new(connect(app, machine, user.as_deref()).await?);
                        remotes.insert(key, r.clone());
                        r
                    }
                };
                sides.push((Side::Remote(remote), path.clone()));
            }
        }
    }
    let Some(dest) = sides.pop() else {
        return Err(CliError::new("Error: Improper number of arguments."));
    };
    let opts = Options {
        recursive: a.recursive,
        delta: a.delta,
        progress: !a.quiet && std::io::stderr().is_terminal(),
        debug: app.debug,
    };
    let result = transfer::copy(&sides, &dest, opts).await;
    for r in remotes.values() {
        r.close().await;
    }
    let sum = result.map_err(|e| CliError::new(format!("Error: {e:#}")))?;
    if !a.quiet || app.debug {
        let mut line = format!(
            "{} file(s), {} bytes, {} bytes sent",
            sum.files, sum.bytes_total, sum.bytes_sent
        );
        if a.delta {
            line.push_str(&format!(
                " (delta: {} file(s) unchanged)",
                sum.files_unchanged
            ));
        }
        eprintln!("{line}");
    }
    Ok(())
}

async fn connect(app: &App, machine: &str, user: Option<&str>) -> Result<Remote, CliError> {
    let record = app.store.load(machine)?;
    app.store.check_keys_readable(machine)?;
    let mut target = super::ssh_target_or_error(app, &record, "Error")?;
    if let Some(u) = user {
        target.user = u.to_string();
    }
    Remote::connect(machine, &target, app.host_key_policy(&record))
        .await
        .map_err(|e| CliError::new(format!("Error: {e:#}")))
}
