//! `dmw start|stop|restart|kill NAME...`: power actions through each machine's driver.

use super::{CliResult, each, names_or_default};
use crate::app::App;
use crate::usecase::power::Action;
use crate::usecase::readdress;

/// Arguments of `start`, `stop`, `restart` and `kill`.
#[derive(clap::Args)]
pub struct PowerArgs {
    /// Machine names (default: "default")
    names: Vec<String>,
}

/// Run one power action on every named machine, in parallel.
pub async fn run(app: &App, action: Action, a: PowerArgs) -> CliResult {
    let names = names_or_default(app, a.names)?;
    each::for_each(app, names, |name, report| async move {
        readdress::run(app, &name, action, report)
            .await
            .map_err(|e| format!("{e:#}"))
    })
    .await?;
    match action {
        Action::Start => println!(
            "Started machines may have new IP addresses. You may need to re-run the `dmw env` command."
        ),
        Action::Restart => println!(
            "Restarted machines may have new IP addresses. You may need to re-run the `dmw env` command."
        ),
        Action::Stop | Action::Kill => {}
    }
    Ok(())
}
