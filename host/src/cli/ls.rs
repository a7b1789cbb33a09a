//! `dmw ls`: every machine with its live state, queried in parallel; filters, Go templates
//! and JSON output (logic in `render::{filter, listing}`).

use std::time::Duration;

use futures::stream::{self, StreamExt};

use super::output::{Output, format_is_json, template_error};
use super::{CliError, CliResult};
use crate::app::App;
use crate::cli::render::filter::{Candidate, Filters};
use crate::cli::render::listing::{LsFormat, LsItem};
use crate::state::store::EngineOptions;
use crate::usecase::machine::{Observed, observe};

/// How many machines are queried at once.
const PARALLEL: usize = 32;

/// Driver shown for a machine whose record cannot be read.
const NOT_FOUND: &str = "not found";

/// Arguments of `ls`.
#[derive(clap::Args)]
pub struct LsArgs {
    /// Enable quiet mode (print only machine names)
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Filter output based on conditions provided (driver, state, name, swarm, label=KEY=VALUE)
    #[arg(long, value_name = "KEY=VALUE")]
    filter: Vec<String>,
    /// Timeout in seconds for each machine's query
    #[arg(short = 't', long, default_value_t = 10)]
    timeout: u64,
    /// Pretty-print machines using a Go template (`table ...` adds a header; `json` = JSON)
    #[arg(short = 'f', long, value_name = "TEMPLATE")]
    format: Option<String>,
    /// Output format
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// Run `dmw ls`.
pub async fn run(app: &App, a: LsArgs) -> CliResult {
    let filters = Filters::parse(&a.filter).map_err(|e| CliError::new(e.to_string()))?;
    let format = match (a.output, a.format.as_deref()) {
        (Output::Json, Some(f)) if !format_is_json(Some(f)) => {
            return Err(CliError::new(
                "--format TEMPLATE and --output json cannot be combined: pick one",
            ));
        }
        (Output::Json, _) => LsFormat::Json,
        (Output::Text, f) => {
            LsFormat::parse(f.unwrap_or_default()).map_err(|e| template_error("--format", e))?
        }
    };
    let timeout = Duration::from_secs(a.timeout.max(1));

    // Everything but the state is known from the records.
    let mut candidates: Vec<(String, EngineOptions, String)> = Vec::new();
    for name in app.store.list()? {
        let (driver, engine, swarm) = match app.store.load(&name) {
            Ok(r) => (r.driver.name, r.engine, r.swarm),
            Err(_) => (NOT_FOUND.to_string(), EngineOptions::default(), None),
        };
        let c = Candidate {
            name: &name,
            driver: &driver,
            labels: &engine.labels,
            swarm: swarm.as_ref().map(|m| m.cluster.as_str()).unwrap_or(""),
        };
        if filters.matches(&c) {
            let column = swarm.map(|m| m.column()).unwrap_or_default();
            candidates.push((name, engine, column));
        }
    }

    if a.quiet && !filters.needs_state() {
        for (name, _, _) in candidates {
            println!("{name}");
        }
        return Ok(());
    }
    let observed: Vec<Observed> = stream::iter(candidates.iter())
        .map(|(n, _, _)| observe(app, n, timeout))
        .buffered(PARALLEL)
        .collect()
        .await;
    let kept = observed
        .into_iter()
        .zip(candidates)
        .filter(|(o, _)| filters.matches_state(&o.state));
    if a.quiet {
        for (o, _) in kept {
            println!("{}", o.name);
        }
        return Ok(());
    }
    let docker_host = std::env::var("DOCKER_HOST").ok();
    let items: Vec<LsItem> = kept
        .map(|(o, (_, engine, swarm))| {
            let mut item = LsItem::new(&o, engine, docker_host.as_deref());
            item.swarm = swarm;
            item
        })
        .collect();
    let out = format
        .render(&items)
        .map_err(|e| template_error("--format", e))?;
    print!("{out}");
    Ok(())
}
