//! `dmw rm`: delete machines at their provider and remove their records.

use std::collections::HashSet;

use super::{CliError, CliResult, confirm, each};
use crate::app::App;

/// Arguments of `rm`.
#[derive(clap::Args)]
pub struct RmArgs {
    /// Machine names
    names: Vec<String>,
    /// Remove local configuration even if machine cannot be removed, also implies an automatic yes (`-y`)
    #[arg(short = 'f', long)]
    force: bool,
    /// Assumes automatic yes to proceed with remove, without prompting further user confirmation
    #[arg(short = 'y')]
    yes: bool,
}

/// Run `dmw rm`.
pub async fn run(app: &App, a: RmArgs) -> CliResult {
    if a.names.is_empty() {
        // Docker Machine showed the command's help first.
        super::print_command_help("rm");
        return Err(CliError::new(
            "Error: Expected to get one or more machine names as arguments",
        ));
    }
    println!("About to remove {}", a.names.join(", "));
    println!("WARNING: This action will delete both local reference and remote instance.");
    if !(a.yes || a.force || confirm("Are you sure?")) {
        // A "no" is not a failure: Docker Machine exited 0 and said nothing more.
        if !crate::text::personality::docker_machine() {
            eprintln!("Aborted: nothing was removed");
        }
        return Ok(());
    }
    let ending = if a.force {
        HashSet::new()
    } else {
        clusters_ended(app, &a.names, a.yes).await?
    };
    let ending = &ending;
    each::for_each(app, a.names, |name, report| async move {
        let end_cluster = ending.contains(&name);
        crate::usecase::remove::remove(app, &name, a.force, end_cluster, &report).await?;
        report.info(&format!("Successfully removed {name}"));
        Ok(())
    })
    .await
}

/// The machines among `names` that are the last manager of a swarm with other nodes:
/// removing one ends that cluster, so each is asked about first unless `yes` (declining
/// aborts the whole `rm`). A machine whose engine does not answer is not counted here; its
/// leave then fails and `rm` says to use `-f`.
async fn clusters_ended(
    app: &App,
    names: &[String],
    yes: bool,
) -> Result<HashSet<String>, CliError> {
    let mut ending = HashSet::new();
    for name in names {
        let Ok(record) = app.store.load(name) else {
            continue;
        };
        let Some(m) = record.swarm.filter(|m| m.is_manager()) else {
            continue;
        };
        let Ok(Some(others)) = crate::usecase::swarm::last_manager_with_others(app, name).await
        else {
            continue;
        };
        if !yes
            && !confirm(&format!(
                "\"{name}\" is the last manager of the swarm \"{}\", which has {others} other node(s): removing it ends the cluster for them. Remove it anyway?",
                m.cluster
            ))
        {
            return Err(CliError::new("Aborted: nothing was removed"));
        }
        ending.insert(name.clone());
    }
    Ok(ending)
}
