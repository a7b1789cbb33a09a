//! Go `text/template` formats (`ls --format`, `inspect --format`) through the `gtmpl` crate.
//!
//! - Functions: Go's built-ins (`eq`, `len`, `index`, `printf`, …, from gtmpl), Docker
//!   Machine's `json` and `prettyjson` (its `inspect` functions, offered everywhere here), and
//!   the docker CLI's `join`, `split`, `lower`, `upper` and `title`.
//! - Printing follows Go's `fmt` default format rather than gtmpl's: a list prints as
//!   `[a b]`, a map as `map[k:v]` (keys sorted), nil as `<nil>`, a missing map key as
//!   `<no value>`. gtmpl prints composite values with Rust's debug format, so every action
//!   that prints its pipeline gets a final `| __goprint` (see [`add_print_stage`]).
//! - Data: [`from_json`] turns JSON into template values; objects become *structs*
//!   (a missing field is an error, as for Docker Machine's `ls` items) or *maps* (a missing
//!   key prints `<no value>`, as for its `inspect` data, a `map[string]interface{}`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use gtmpl::error::ExecError;
use gtmpl::{Context, Func, FuncError, Template, Value};

/// Name of the function appended to printing actions.
const PRINT_FUNC: &str = "__goprint";

/// A template that failed to parse or to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The text is not a valid template.
    #[error("template parsing error: {0}")]
    Parse(String),
    /// The template ran into data it cannot handle (e.g. an unknown field).
    #[error("template error: {0}")]
    Exec(String),
}

/// A parsed Go template.
pub struct GoTemplate {
    inner: Template,
}

/// How JSON objects appear to templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// Like a Go struct: an unknown field is an error.
    Struct,
    /// Like a Go map: an unknown key yields `<no value>`.
    Map,
}

impl GoTemplate {
    /// Parses `text` with all functions this module offers.
    pub fn parse(text: &str) -> Result<GoTemplate, TemplateError> {
        let mut inner = Template::default();
        let funcs: [(&str, Func); 8] = [
            ("json", json),
            ("prettyjson", prettyjson),
            ("join", join),
            ("split", split),
            ("lower", lower),
            ("upper", upper),
            ("title", title),
            (PRINT_FUNC, go_print),
        ];
        inner.add_funcs(&funcs);
        let rewritten = add_print_stage(text)?;
        inner.parse(rewritten).map_err(|e| {
            TemplateError::Parse(match e {
                // gtmpl's line numbers count from its own start, not the user's text.
                gtmpl::error::ParseError::WithContext(_, msg) => clean_message(msg.trim()),
                other => clean_message(&other.to_string()),
            })
        })?;
        Ok(GoTemplate { inner })
    }

    /// Executes the template on `data`.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        self.inner
            .render(&Context::from(data.clone()))
            .map_err(|e| TemplateError::Exec(exec_message(&e)))
    }
}

fn exec_message(e: &ExecError) -> String {
    match e {
        ExecError::NoFiledFor(field, _) => format!("can't evaluate field {field}"),
        ExecError::OnlyMapsAndObjectsHaveFields => {
            "can't evaluate a field of a value that is not a struct or map".into()
        }
        ExecError::InvalidRange(v) => format!("range can't iterate over {}", go_format(v)),
        other => clean_message(&other.to_string()),
    }
}

/// Hides the internal print stage from error texts.
fn clean_message(s: &str) -> String {
    s.replace(&format!(" | {PRINT_FUNC}"), "")
}

/// Rewrites a template for gtmpl so it behaves as Go's `text/template`:
///
/// - appends `| __goprint` to every action that prints a pipeline, so values print as Go
///   prints them (control actions, comments and variable declarations are left alone);
/// - turns `{{range P}}A{{else}}B{{end}}` into `{{if P}}{{range P}}A{{end}}{{else}}B{{end}}`:
///   gtmpl runs a range's `else` branch even when the range was not empty.
///
/// Quoted strings, raw strings and char literals inside actions may contain `}}`.
pub fn add_print_stage(text: &str) -> Result<String, TemplateError> {
    let segments = tokenize(text)?;
    // For each `range` that has an `else`: the range's index and the else's index.
    let mut range_else: Vec<(usize, usize)> = Vec::new();
    let mut stack: Vec<(String, usize, Option<usize>)> = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        let Segment::Action(whole) = seg else {
            continue;
        };
        let keyword = first_word(split_action(whole).1.trim());
        match keyword.as_str() {
            "if" | "with" | "range" | "block" | "define" => stack.push((keyword, i, None)),
            "else" => {
                if let Some(top) = stack.last_mut() {
                    top.2.get_or_insert(i);
                }
            }
            // gtmpl allows 100 000 nested template calls, far more than the stack holds.
            "template"
                if stack
                    .iter()
                    .any(|(kw, _, _)| kw == "define" || kw == "block") =>
            {
                return Err(TemplateError::Parse(
                    "{{template}} inside {{define}} or {{block}} is not supported (it could recurse without end)".into(),
                ));
            }
            "end" => {
                if let Some((kw, open, Some(els))) = stack.pop()
                    && kw == "range"
                {
                    range_else.push((open, els));
                }
            }
            _ => {}
        }
    }
    let mut out = String::with_capacity(text.len() + 32);
    for (i, seg) in segments.iter().enumerate() {
        match seg {
            Segment::Text(t) => out.push_str(t),
            Segment::Action(whole) => {
                if range_else.iter().any(|(o, _)| *o == i) {
                    let (_, body, _) = split_action(whole);
                    let pipeline = body.trim().trim_start_matches("range");
                    let cond = match pipeline.split_once(":=") {
                        Some((decl, rest)) if decl.trim_start().starts_with('$') => rest,
                        _ => pipeline,
                    };
                    out.push_str(&format!("{{{{if {}}}}}{whole}", cond.trim()));
                } else if range_else.iter().any(|(_, e)| *e == i) {
                    let (open, _, close) = split_action(whole);
                    out.push_str(&format!("{open}end}}}}{{{{else{close}"));
                } else {
                    out.push_str(&rewrite_action(whole));
                }
            }
        }
    }
    Ok(out)
}

/// A piece of template text: plain text or one `{{…}}` action (delimiters included).
enum Segment<'a> {
    Text(&'a str),
    Action(&'a str),
}

fn tokenize(text: &str) -> Result<Vec<Segment<'_>>, TemplateError> {
    let mut segments = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            segments.push(Segment::Text(&rest[..start]));
        }
        let action = &rest[start..];
        let end = action_end(action).ok_or_else(|| {
            TemplateError::Parse(format!(
                "unclosed action (no closing }}}}): {}",
                action.trim_end().chars().take(40).collect::<String>()
            ))
        })?;
        segments.push(Segment::Action(&action[..end]));
        rest = &action[end..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Text(rest));
    }
    Ok(segments)
}

/// An action's opening delimiter (with its trim marker), body, and closing delimiter.
fn split_action(whole: &str) -> (&str, &str, &str) {
    let (open, body) = match whole.strip_prefix("{{- ") {
        Some(b) => ("{{- ", b),
        None => ("{{", whole.get(2..).unwrap_or_default()),
    };
    match body.strip_suffix(" -}}") {
        Some(b) => (open, b, " -}}"),
        None => (
            open,
            body.get(..body.len().saturating_sub(2)).unwrap_or_default(),
            "}}",
        ),
    }
}

fn first_word(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Byte length of the action starting at `s` (which begins with `{{`), up to and including `}}`.
fn action_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 2;
    if s[2..].starts_with("/*") {
        let close = s[4..].find("*/")? + 4 + 2;
        return s[close..].find("}}").map(|p| close + p + 2);
    }
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => {
                let q = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
                i += 1;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Some(i + 2),
            _ => i += 1,
        }
    }
    None
}

fn rewrite_action(whole: &str) -> String {
    let (open, body, close) = split_action(whole);
    let trimmed = body.trim();
    const KEYWORDS: [&str; 10] = [
        "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
    ];
    if trimmed.is_empty()
        || trimmed.starts_with("/*")
        || KEYWORDS.contains(&first_word(trimmed).as_str())
        || is_declaration(trimmed)
    {
        return whole.to_string();
    }
    format!("{open}{} | {PRINT_FUNC}{close}", body.trim_end())
}

/// `$x := …` or `$x = …`.
fn is_declaration(action: &str) -> bool {
    let Some(rest) = action.strip_prefix('$') else {
        return false;
    };
    let rest = rest.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
    let rest = rest.trim_start();
    rest.starts_with(":=") || (rest.starts_with('=') && !rest.starts_with("=="))
}

/// Converts JSON to a template value; objects become structs or maps (see [`ObjectKind`]).
pub fn from_json(v: &serde_json::Value, kind: ObjectKind) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(|x| from_json(x, kind)).collect()),
        serde_json::Value::Object(o) => {
            let m: HashMap<String, Value> = o
                .iter()
                .map(|(k, x)| (k.clone(), from_json(x, kind)))
                .collect();
            match kind {
                ObjectKind::Struct => Value::Object(m),
                ObjectKind::Map => Value::Map(m),
            }
        }
    }
}

/// Converts a template value back to JSON (keys sorted, as Go marshals maps).
pub fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                serde_json::Value::from(u)
            } else if let Some(i) = n.as_i64() {
                serde_json::Value::from(i)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(serde_json::Value::Number)
                    .unwrap_or(serde_json::Value::Null)
            }
        }
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Object(m) | Value::Map(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            serde_json::Value::Object(
                sorted
                    .into_iter()
                    .map(|(k, x)| (k.clone(), to_json(x)))
                    .collect(),
            )
        }
    }
}

/// Go's `fmt.Sprint` default format of a value.
pub fn go_format(v: &Value) -> String {
    match v {
        Value::NoValue => "<no value>".into(),
        Value::Nil => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Function(_) => "<func>".into(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_format_nested).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            format!(
                "{{{}}}",
                sorted
                    .values()
                    .map(|x| go_format_nested(x))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
        Value::Map(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            format!(
                "map[{}]",
                sorted
                    .iter()
                    .map(|(k, x)| format!("{k}:{}", go_format_nested(x)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

/// Inside a composite value Go prints a nil interface as `<nil>` and never `<no value>`.
fn go_format_nested(v: &Value) -> String {
    match v {
        Value::NoValue => "<nil>".into(),
        other => go_format(other),
    }
}

/// Go's `time.Duration.String()`: `1.5s`, `2m3.004s`, `12.345ms`, `800µs`, `0s`.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", fraction(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", fraction(ns, 1_000_000));
    }
    let secs = ns / 1_000_000_000;
    let sub = ns % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let s = fraction(s * 1_000_000_000 + sub, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

/// `n / unit` with the fraction's trailing zeros removed.
fn fraction(n: u128, unit: u128) -> String {
    let whole = n / unit;
    let frac = n % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = unit.to_string().len() - 1;
    let f = format!("{frac:0digits$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

fn one_arg<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, FuncError> {
    match args {
        [v] => Ok(v),
        _ => Err(FuncError::ExactlyXArgs(name.into(), 1)),
    }
}

fn string_arg(name: &str, v: &Value) -> Result<String, FuncError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(FuncError::Generic(format!(
            "{name}: expected a string, got {}",
            go_format(other)
        ))),
    }
}

fn go_print(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(go_format(one_arg(PRINT_FUNC, args)?)))
}

fn json(args: &[Value]) -> Result<Value, FuncError> {
    let v = to_json(one_arg("json", args)?);
    Ok(Value::String(v.to_string()))
}

fn prettyjson(args: &[Value]) -> Result<Value, FuncError> {
    let v = to_json(one_arg("prettyjson", args)?);
    Ok(Value::String(pretty_json(&v)))
}

/// JSON indented with four spaces, as Docker Machine's `inspect` prints it.
pub fn pretty_json<T: serde::Serialize>(v: &T) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    match v.serialize(&mut ser) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(e) => format!("<cannot encode: {e}>"),
    }
}

fn join(args: &[Value]) -> Result<Value, FuncError> {
    let [list, sep] = args else {
        return Err(FuncError::ExactlyXArgs("join".into(), 2));
    };
    let sep = string_arg("join", sep)?;
    let Value::Array(items) = list else {
        return Err(FuncError::Generic(format!(
            "join: expected a list, got {}",
            go_format(list)
        )));
    };
    Ok(Value::String(
        items.iter().map(go_format).collect::<Vec<_>>().join(&sep),
    ))
}

fn split(args: &[Value]) -> Result<Value, FuncError> {
    let [s, sep] = args else {
        return Err(FuncError::ExactlyXArgs("split".into(), 2));
    };
    let s = string_arg("split", s)?;
    let sep = string_arg("split", sep)?;
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep.as_str())
            .map(|p| Value::String(p.into()))
            .collect()
    };
    Ok(Value::Array(parts))
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        string_arg("lower", one_arg("lower", args)?)?.to_lowercase(),
    ))
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        string_arg("upper", one_arg("upper", args)?)?.to_uppercase(),
    ))
}

/// Go's `strings.Title`: upper-cases the first letter of each word.
fn title(args: &[Value]) -> Result<Value, FuncError> {
    let s = string_arg("title", one_arg("title", args)?)?;
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    for c in s.chars() {
        if at_start && c.is_alphanumeric() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_start = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(tmpl: &str, data: serde_json::Value, kind: ObjectKind) -> Result<String, TemplateError> {
        GoTemplate::parse(tmpl)?.render(&from_json(&data, kind))
    }

    #[test]
    fn go_printing_of_values() {
        let data = json!({"L": ["a", "b"], "M": {"y": 2, "x": "1"}, "N": null, "B": true, "E": []});
        let out = run(
            "{{.L}}|{{.M}}|{{.N}}|{{.B}}|{{.E}}|{{.Missing}}",
            data,
            ObjectKind::Map,
        );
        assert_eq!(
            out.as_deref(),
            Ok("[a b]|map[x:1 y:2]|<nil>|true|[]|<no value>")
        );
    }

    #[test]
    fn functions() {
        let data = json!({"Name": "dev-1", "Labels": ["a=b", "c=d"], "S": "x,y", "Empty": []});
        let cases = [
            ("{{json .Labels}}", r#"["a=b","c=d"]"#),
            ("{{join .Labels \";\"}}", "a=b;c=d"),
            (
                "{{upper .Name}} {{lower \"AbC\"}} {{title \"hello wide world\"}}",
                "DEV-1 abc Hello Wide World",
            ),
            ("{{split .S \",\"}}", "[x y]"),
            ("{{index (split .S \",\") 1}}", "y"),
            ("{{range .Labels}}<{{.}}>{{end}}", "<a=b><c=d>"),
            ("{{if eq .Name \"dev-1\"}}yes{{else}}no{{end}}", "yes"),
            ("{{$n := .Name}}{{$n}}", "dev-1"),
            ("{{- .Name -}} !", "dev-1!"),
            ("{{/* a comment }} */}}ok", "ok"),
            ("{{printf \"%s}}\" .Name}}", "dev-1}}"),
            ("{{len .Labels}}", "2"),
            (
                "{{range $i, $l := .Labels}}{{$i}}={{$l}};{{end}}",
                "0=a=b;1=c=d;",
            ),
            (
                "{{if eq .Name \"x\"}}x{{else if eq .Name \"dev-1\"}}d{{end}}",
                "d",
            ),
            ("a {{- /* c */ -}} b", "ab"),
            ("{{with .Labels}}{{index . 0}}{{end}}", "a=b"),
            ("{{(index .Labels 1)}}", "c=d"),
            ("{{.Labels | len}}", "2"),
            ("{{range .Labels}}[{{.}}]{{else}}none{{end}}", "[a=b][c=d]"),
            ("{{range .Empty}}[{{.}}]{{- else -}} none {{end}}", "none "),
            ("{{range $i, $l := .Labels}}{{$i}}{{else}}none{{end}}", "01"),
            (
                "{{range .Labels}}{{if eq . \"x\"}}x{{else}}-{{end}}{{else}}none{{end}}",
                "--",
            ),
            (
                "{{if .Name}}{{range .Empty}}x{{else}}e{{end}}{{else}}n{{end}}",
                "e",
            ),
        ];
        for (tmpl, want) in cases {
            assert_eq!(
                run(tmpl, data.clone(), ObjectKind::Struct).as_deref(),
                Ok(want),
                "{tmpl}"
            );
        }
        let pretty = run("{{prettyjson .Labels}}", data, ObjectKind::Map);
        assert_eq!(pretty.as_deref(), Ok("[\n    \"a=b\",\n    \"c=d\"\n]"));
    }

    #[test]
    fn errors_name_the_problem() {
        let data = json!({"Name": "x"});
        let e = run("{{.Name", data.clone(), ObjectKind::Struct);
        assert!(
            matches!(&e, Err(TemplateError::Parse(m)) if m.contains("unclosed action")),
            "{e:?}"
        );
        let e = run("{{.Name}", data.clone(), ObjectKind::Struct);
        assert!(matches!(e, Err(TemplateError::Parse(_))), "{e:?}");
        let e = run("{{nosuchfunc .Name}}", data.clone(), ObjectKind::Struct);
        assert!(
            matches!(&e, Err(TemplateError::Parse(m)) if m.contains("nosuchfunc")),
            "{e:?}"
        );
        let e = run(
            "{{define \"a\"}}{{template \"a\"}}{{end}}{{template \"a\"}}",
            data.clone(),
            ObjectKind::Struct,
        );
        assert!(
            matches!(&e, Err(TemplateError::Parse(m)) if m.contains("could recurse")),
            "{e:?}"
        );
        let e = run("{{.Nmae}}", data.clone(), ObjectKind::Struct);
        assert_eq!(
            e,
            Err(TemplateError::Exec("can't evaluate field Nmae".into()))
        );
        assert_eq!(
            e.map_err(|e| e.to_string()),
            Err("template error: can't evaluate field Nmae".into())
        );
        let e = run("{{join .Name \",\"}}", data, ObjectKind::Struct);
        assert!(
            matches!(&e, Err(TemplateError::Exec(m)) if m.contains("join: expected a list")),
            "{e:?}"
        );
    }

    #[test]
    fn durations_print_like_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(999), "999ns"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_nanos(12_345_678), "12.345678ms"),
            (Duration::from_micros(800), "800µs"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(123_004), "2m3.004s"),
            (Duration::from_secs(3723), "1h2m3s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn json_round_trip_sorts_keys() {
        let data = json!({"b": [1, -2, 1.5], "a": {"z": null, "y": false}});
        let v = from_json(&data, ObjectKind::Map);
        assert_eq!(
            to_json(&v).to_string(),
            r#"{"a":{"y":false,"z":null},"b":[1,-2,1.5]}"#
        );
    }
}
