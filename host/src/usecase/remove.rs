//! Removing a machine (`dmw rm`), below the CLI: the swarm it leaves, the driver's
//! `remove`, the processes the host started for it, its record and its docker context, in
//! that order, under its lock.

use std::sync::Arc;

use crate::app::App;
use crate::state::store::LoadError;
use crate::text::report::Reporter;

/// Remove machine `name` holding its lock: leave its swarm, delete it at its provider
/// (the driver's `remove`), end every process the host started for it, delete its record
/// and its docker context. `end_cluster` lets it leave as the last manager of a swarm that
/// still has other nodes (the user said yes); `force` goes on past each failure with a
/// warning. The error is the message to show.
pub async fn remove(
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
                // The error names `rm -f` already.
                return Err(format!("Error removing host \"{name}\": {e}"));
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
        if let Err(e) = crate::usecase::swarm::leave(app, name, force || end_cluster, report).await
        {
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
    if let Err(e) = crate::sandbox::capabilities::process::kill_all(&app.store.machine(name)) {
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
    if let Err(e) = crate::state::context::docker_config_dir()
        .and_then(|dir| crate::state::context::remove(&dir, name))
    {
        report.warn(&format!(
            "the docker context of \"{name}\" was not removed: {e:#}"
        ));
    }
    Ok(())
}
