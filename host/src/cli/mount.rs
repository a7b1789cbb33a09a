//! `dmw mount`: mount a machine's directory locally with sshfs (or unmount it with -u).

use std::path::PathBuf;

use super::{CliError, CliResult};
use crate::app::App;
use crate::net::transfer::{Location, mount};

/// Arguments of `mount`.
#[derive(clap::Args)]
pub struct MountArgs {
    /// Unmount instead of mount
    #[arg(short = 'u', long)]
    unmount: bool,
    /// `[machine:][path]` (machine defaults to "default")
    #[arg(value_name = "MACHINE:PATH")]
    source: String,
    /// Where to mount (defaults to the remote path)
    mountpoint: Option<PathBuf>,
}

/// Run `dmw mount`.
pub fn run(app: &App, a: MountArgs) -> CliResult {
    let (machine, path) = match Location::parse(&a.source) {
        Location::Remote { machine, path, .. } => (machine, path),
        Location::Local(p) => ("default".to_string(), p),
    };
    let mountpoint = a.mountpoint.unwrap_or_else(|| PathBuf::from(&path));
    if a.unmount {
        return mount::unmount(&mountpoint).map_err(|e| CliError::new(format!("Error: {e:#}")));
    }
    let record = app.store.load(&machine)?;
    let target = super::ssh_target_or_error(app, &record, "Error")?;
    let config = app.store.machine(&machine).sshfs_config();
    mount::mount(
        &machine,
        &target,
        app.host_key_policy(&record),
        &path,
        &mountpoint,
        &config,
    )
    .map_err(|e| CliError::new(format!("Error: machine \"{machine}\": {e:#}")))
}
