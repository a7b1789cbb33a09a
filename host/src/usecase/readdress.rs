//! Power actions that follow a machine to a new address: start, stop, restart and kill
//! through [`super::power`] and, when the provider brought the machine up at another
//! address (a cloud server without a reserved IP powered on again, a VM's new DHCP lease),
//! its server certificate re-issued for that address through [`super::provision`] and the
//! engine waited for — where Docker Machine only warned and left a certificate the docker
//! CLI refuses.

use std::sync::Arc;

use anyhow::{Result, anyhow};

use super::power::{self, Action};
use crate::app::App;
use crate::text::report::Reporter;

/// Run `action` on machine `name` holding its lock; a machine that came up at a new address
/// gets a server certificate naming it (a provisioned machine dmw holds the certificates
/// of); its docker context is refreshed (a context that cannot be is a warning).
pub async fn run(app: &App, name: &str, action: Action, report: Arc<Reporter>) -> Result<()> {
    let _lock = app.store.lock_existing(name)?;
    let moved = power::run_locked(app, name, action, report.clone()).await?;
    if let Some(moved) = moved {
        let record = app.store.load(name)?;
        if !record.engine_only && !record.never_provisioned {
            report.info(&format!(
                "Its certificate names {}, not {}: issuing a new one",
                moved.from, moved.to
            ));
            super::provision::regenerate_certs_locked(app, name, report.clone())
                .await
                .map_err(|f| {
                    anyhow!(
                        "machine \"{name}\" came up at a new address {} but its certificate could not be re-issued ({}: {:#}); `dmw regenerate-certs {name}` tries again",
                        moved.to,
                        f.step,
                        f.error
                    )
                })?;
        }
    }
    if matches!(action, Action::Start | Action::Restart)
        && let Err(e) = crate::state::context::refresh_machine(&app.store, name)
    {
        report.warn(&format!(
            "the docker context of \"{name}\" was not updated: {e:#}"
        ));
    }
    Ok(())
}
