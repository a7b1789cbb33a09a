//! `dmw inspect`: the machine record as JSON.

use serde::Serialize;

use super::{CliError, CliResult, name_or_default};
use crate::app::App;

/// Arguments of `inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// Machine name (default: "default")
    name: Option<String>,
}

/// Run `dmw inspect` (indented with four spaces, as Docker Machine).
pub fn run(app: &App, a: InspectArgs) -> CliResult {
    let name = name_or_default(app, a.name)?;
    let record = app.store.load(&name)?;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    record
        .serialize(&mut ser)
        .map_err(|e| CliError::new(format!("cannot encode machine \"{name}\": {e}")))?;
    println!("{}", String::from_utf8_lossy(&out));
    Ok(())
}
