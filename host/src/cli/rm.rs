//! `dmw rm`: delete machines at their provider and remove their records.

use std::collections::HashSet;
use std::sync::Arc;

use super::{CliError, CliResult, confirm, each};
use crate::app::App;
use crate::report::Reporter;
use crate::store::LoadError;

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
        if !crate::personality::docker_machine() {
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
        remove_one(app, &name, a.force, end_cluster, &report).await?;
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
        let Ok(Some(others)) = crate::swarm::last_manager_with_others(app, name).await else {
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

/// Removes one machine; `end_cluster` lets it leave as the last manager of a swarm that
/// still has other nodes (the user said yes).
async fn remove_one(
    app: &App,
    name: &str,
    force: bool,
    end_cluster: bool,
    report: &Arc<Reporter>,
) -> Result<(), String> {
    let record = match app.store.load(name) {
        Ok(r) => r,
        Err(e @ LoadError::NotFound(_)) => {
            return Err(format!("Error removing host \"{name}\": {e}"));
        }
        Err(e @ LoadError::Corrupt { .. }) => {
            if !force && app.store.machine(name).record().exists() {
                return Err(format!(
                    "Error removing host \"{name}\": {e}; use -f to remove the local record anyway"
                ));
            }
            return app
                .store
                .remove(name)
                .map_err(|e| format!("Error removing host \"{name}\": {e:#}"));
        }
    };
    let _lock = app
        .store
        .lock(name)
        .map_err(|e| format!("Error removing host \"{name}\": {e:#}"))?;
    if record.swarm.is_some() {
        // The cluster must not keep a dead node: leave (drained, demoted) and be removed
        // from the managers' list first.
        if end_cluster {
            report.warn(&format!(
                "\"{name}\" is the last manager of its swarm: the cluster ends for its other nodes"
            ));
        }
        if let Err(e) = crate::swarm::leave(app, name, force || end_cluster, report).await {
            if !force {
                return Err(format!(
                    "Error removing host \"{name}\": leaving its swarm failed: {e:#}\nUse -f to remove it anyway."
                ));
            }
            report.warn(&format!(
                "\"{name}\" could not leave its swarm ({e:#}); removing it as asked (-f)"
            ));
        }
    }
    let removed = match app.machine_driver(&record, report.clone()).await {
        Ok(mut d) => d.remove().await,
        Err(e) => Err(e),
    };
    if let Err(e) = removed {
        if !force {
            return Err(format!(
                "Error removing host \"{name}\": {e:#}\nUse -f to remove the local record anyway."
            ));
        }
        report.warn(&format!(
            "the driver could not remove \"{name}\" ({e:#}); removing the local record as asked (-f)"
        ));
    }
    // Processes the host started for the driver (`process`) end with the machine, whatever
    // the driver did: nothing it started outlives `rm`.
    if let Err(e) = crate::capabilities::process::kill_all(&app.store.machine(name)) {
        if !force {
            return Err(format!(
                "Error removing host \"{name}\": a process started for it may still run: {e:#}\nUse -f to remove the local record anyway."
            ));
        }
        report.warn(&format!(
            "a process started for \"{name}\" may still run ({e:#}); removing the local record as asked (-f)"
        ));
    }
    app.store
        .remove(name)
        .map_err(|e| format!("Error removing host \"{name}\": {e:#}"))?;
    if let Err(e) =
        crate::context::docker_config_dir().and_then(|dir| crate::context::remove(&dir, name))
    {
        report.warn(&format!(
            "the docker context of \"{name}\" was not removed: {e:#}"
        ));
    }
    Ok(())
}
