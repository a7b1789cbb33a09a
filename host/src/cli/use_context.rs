//! `dmw use`: point the docker CLI at a machine through its docker context.

use super::{CliError, CliResult};
use crate::app::App;
use crate::state::context;

/// Arguments of `use`.
#[derive(clap::Args)]
pub struct UseArgs {
    /// Machine name
    #[arg(required_unless_present = "unset")]
    name: Option<String>,
    /// Switch the docker CLI back to its default context
    #[arg(short = 'u', long, conflicts_with = "name")]
    unset: bool,
    /// Use the leader of the Swarm-mode cluster NAME belongs to
    #[arg(long, conflicts_with = "unset")]
    swarm: bool,
}

/// Run `dmw use NAME` (or `dmw use -u`, or `dmw use --swarm NAME`).
pub fn run(app: &App, a: UseArgs) -> CliResult {
    let dir = context::docker_config_dir()?;
    let Some(mut name) = a.name.filter(|_| !a.unset) else {
        context::switch(&dir, None)?;
        println!("The docker CLI now uses its default context.");
        return Ok(());
    };
    if a.swarm {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?;
        name = rt
            .block_on(crate::usecase::swarm::leader(app, &name))
            .map_err(|e| CliError::new(format!("Error: {e:#}")))?;
    }
    let record = app.store.load(&name)?;
    if let Some(ep) = &record.endpoint
        && let Err(why) = ep.check()
    {
        return Err(CliError::new(format!(
            "machine \"{name}\": its record holds {why}; `dmw rm {name}` removes it"
        )));
    }
    if !context::exists(&dir, &name) {
        let url = record.url().ok_or_else(|| {
            CliError::new(match &record.engine_url {
                Some(typed) => format!(
                    "machine \"{name}\" records the URL {:?}, which is not a tcp://HOST:PORT engine URL; a docker context cannot use it",
                    crate::text::sanitize::stored_text(typed)
                ),
                None => format!("machine \"{name}\" has no address yet"),
            })
        })?;
        context::write(&dir, &name, &url, &app.store.machine_dir(&name))?;
    } else if !context::is_ours(&dir, &name) {
        return Err(CliError::new(format!(
            "a docker context named \"{name}\" exists and was not written by dmw; switch with `docker context use {name}` if it is the one you mean"
        )));
    }
    context::switch(&dir, Some(&name))?;
    println!(
        "The docker CLI now uses machine \"{name}\" (docker context \"{name}\"); `dmw use -u` switches back."
    );
    Ok(())
}
