//! `dmw ls`: every machine with its live state, queried in parallel.

use std::time::Duration;

use futures::stream::{self, StreamExt};

use super::CliResult;
use crate::app::App;
use crate::machine::{Observed, observe};
use crate::render::{LsRow, render_ls_table};

/// How many machines are queried at once.
const PARALLEL: usize = 32;

/// Arguments of `ls`.
#[derive(clap::Args)]
pub struct LsArgs {
    /// Enable quiet mode (print only machine names)
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Timeout in seconds for each machine's query
    #[arg(short = 't', long, default_value_t = 10)]
    timeout: u64,
}

/// The ACTIVE column: `*` for the running machine that `$DOCKER_HOST` points at.
pub fn active_mark(o: &Observed, docker_host: Option<&str>) -> String {
    if o.state == "Timeout" {
        return String::new();
    }
    if o.is_running() && docker_host.is_some_and(|h| !h.is_empty() && h == o.url) {
        "*".into()
    } else {
        "-".into()
    }
}

/// Run `dmw ls`.
pub async fn run(app: &App, a: LsArgs) -> CliResult {
    let names = app.store.list()?;
    if a.quiet {
        for n in names {
            println!("{n}");
        }
        return Ok(());
    }
    let timeout = Duration::from_secs(a.timeout.max(1));
    let observed: Vec<Observed> = stream::iter(names.iter())
        .map(|n| observe(app, n, timeout))
        .buffered(PARALLEL)
        .collect()
        .await;
    let docker_host = std::env::var("DOCKER_HOST").ok();
    let rows: Vec<LsRow> = observed
        .iter()
        .map(|o| LsRow {
            name: o.name.clone(),
            active: active_mark(o, docker_host.as_deref()),
            driver: o.driver.clone(),
            state: o.state.clone(),
            url: o.url.clone(),
            swarm: String::new(),
            docker: o.docker.clone(),
            error: o.error.clone(),
        })
        .collect();
    print!("{}", render_ls_table(&rows));
    Ok(())
}
