//! `--output text|json`, shared by the commands that scripts read (`ls`, `inspect`, `status`,
//! `version`). JSON field names are Docker-style CamelCase (see README "Output for scripts").

use super::CliError;
use crate::cli::render::template::{GoTemplate, TemplateError};

/// What a command prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Docker Machine's text output.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Prints a JSON value indented with four spaces (as `inspect` does).
pub fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", crate::cli::render::template::pretty_json(v));
}

/// A template error as a command failure that says which flag to fix.
pub fn template_error(flag: &str, e: TemplateError) -> CliError {
    CliError::new(format!(
        "{e}\nCheck the {flag} value: Go template syntax, e.g. '{{{{.Name}}}}' (see README, \"Output for scripts\")."
    ))
}

/// Whether a `--format` value asks for JSON (`json`, which as a template would only print
/// the word `json`).
pub fn format_is_json(format: Option<&str>) -> bool {
    format.is_some_and(|f| f.trim() == "json")
}

/// Parses an `inspect`-style `--format` template (a newline is appended when printing).
pub fn parse_template(flag: &str, text: &str) -> Result<GoTemplate, CliError> {
    GoTemplate::parse(text).map_err(|e| template_error(flag, e))
}
