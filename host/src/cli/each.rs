//! Multi-machine commands (start stop restart kill upgrade provision regenerate-certs rm):
//! one action per machine, run in parallel in a bounded pool; each machine's lines are
//! printed together, in the order the names were given, and the command fails if any did.

use std::future::Future;
use std::sync::Arc;

use futures::stream::{self, StreamExt};

use super::{CliError, CliResult};
use crate::app::App;
use crate::text::report::Reporter;

/// How many machines a multi-machine command works on at once.
pub const POOL: usize = 8;

/// Run `action(name, reporter)` for every name (duplicates once). With one machine its
/// progress streams live; with several, each machine's lines are held and printed when its
/// turn comes, followed by its error (on stderr) if it failed.
pub async fn for_each<F, Fut>(app: &App, names: Vec<String>, action: F) -> CliResult
where
    F: Fn(String, Arc<Reporter>) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut unique: Vec<String> = Vec::with_capacity(names.len());
    for n in names {
        if !unique.contains(&n) {
            unique.push(n);
        }
    }
    let live = unique.len() == 1;
    let mut results = stream::iter(unique)
        .map(|name| {
            let base = if live {
                Reporter::new(app.debug)
            } else {
                Reporter::held(app.debug)
            };
            // Only a real machine's directory gets a log (never a path made of a bad name).
            let report = if app.store.exists(&name) {
                Arc::new(base.with_log_file(&app.store.machine(&name).provision_log()))
            } else {
                Arc::new(base)
            };
            let work = action(name, report.clone());
            async move { (work.await, report) }
        })
        .buffered(POOL);
    let mut failed = 0usize;
    while let Some((result, report)) = results.next().await {
        for line in report.take_lines() {
            println!("{line}");
        }
        if let Err(message) = result {
            eprintln!("{}", crate::text::personality::localize(&message));
            failed += 1;
        }
    }
    if failed == 0 {
        Ok(())
    } else {
        // Each failure was printed in its place; only the exit code is left to give.
        Err(CliError {
            message: String::new(),
            code: 1,
        })
    }
}
