//! The argument forms of a declared program (`program NAME ["info", "*"]` in a plugin's
//! declaration): what `process` runs a program with, and how a form reads in words. The
//! declaration parser (`plugin::declaration`) reads them; `process` enforces them.

/// One form a declared program may be run in: a pattern for each argument.
///
/// The grammar, one pattern an argument: a literal matches exactly that argument; `*`
/// matches one argument that does not start with `-` (a value, never an option);
/// `PREFIX*` one argument that starts with PREFIX (`--output=*`, `-*` for any option);
/// `**`, only as the last pattern, any number of further arguments (anything). No pattern
/// matches an argument holding `*` literally but a literal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProgramArgs {
    /// The program, as declared by `program`.
    pub program: String,
    /// The argument patterns.
    pub args: Vec<String>,
}

/// Whether `args` match the argument patterns `patterns` (see [`ProgramArgs`]).
pub fn args_match(patterns: &[String], args: &[String]) -> bool {
    match patterns.split_first() {
        None => args.is_empty(),
        Some((p, _)) if p == "**" => true,
        Some((p, rest)) => match args.split_first() {
            None => false,
            Some((a, more)) => arg_matches(p, a) && args_match(rest, more),
        },
    }
}

fn arg_matches(pattern: &str, arg: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => !arg.starts_with('-'),
        Some(prefix) => arg.starts_with(prefix),
        None => pattern == arg,
    }
}

/// A form in words: the program, then each pattern (`<a value>` for `*`, `<PREFIX…>` for
/// `PREFIX*`, `<any further arguments>` for `**`).
pub fn describe_form(form: &ProgramArgs) -> String {
    let mut words = vec![form.program.clone()];
    for p in &form.args {
        words.push(match p.strip_suffix('*') {
            Some("*") => "<any further arguments>".to_string(),
            Some("") => "<a value>".to_string(),
            Some(prefix) => format!("<{prefix}…>"),
            None if p.is_empty() || p.contains(char::is_whitespace) => format!("{p:?}"),
            None => p.clone(),
        });
    }
    words.join(" ")
}
