//! `dmw inspect`: the machine record as JSON, with Docker Machine's field paths as aliases,
//! or a Go template over that JSON (`--format`).

use super::output::{Output, format_is_json, parse_template, print_json, template_error};
use super::{CliError, CliResult, name_or_default};
use crate::app::App;
use crate::cli::render::dm_view::InspectView;
use crate::cli::render::template::{ObjectKind, from_json};

/// Arguments of `inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// Format the output using the given Go template (`json` = the JSON document)
    #[arg(short = 'f', long, value_name = "TEMPLATE")]
    format: Option<String>,
    /// Output format (the default text output is JSON too)
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Machine name (default: "default")
    name: Option<String>,
    /// More names: an error, as in Docker Machine.
    #[arg(hide = true)]
    extra: Vec<String>,
}

/// Run `dmw inspect` (indented with four spaces, as Docker Machine).
pub fn run(app: &App, a: InspectArgs) -> CliResult {
    super::machine_info::expect_one(&a.extra)?;
    let template = match a.format.as_deref().filter(|f| !format_is_json(Some(f))) {
        Some(_) if a.output == Output::Json => {
            return Err(CliError::new(
                "--format TEMPLATE and --output json cannot be combined: pick one",
            ));
        }
        Some(text) if !text.is_empty() => Some(parse_template("--format", text)?),
        _ => None,
    };
    let name = name_or_default(app, a.name)?;
    let record = app.store.load(&name)?.for_display();
    let view = InspectView::new(&record, app.store.root());
    let Some(template) = template else {
        print_json(&view);
        return Ok(());
    };
    let json = serde_json::to_value(&view)
        .map_err(|e| CliError::new(format!("cannot encode machine \"{name}\": {e}")))?;
    let out = template
        .render(&from_json(&json, ObjectKind::Map))
        .map_err(|e| template_error("--format", e))?;
    println!("{out}");
    Ok(())
}
