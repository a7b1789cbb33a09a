//! `ls` items (Docker Machine's `HostListItem` fields) and their output: the default table,
//! a Go template (`--format`, with Docker Machine's `table` prefix) or JSON.
//!
//! Template handling follows Docker Machine's `parseFormat`: a leading `table` is stripped
//! and turns on a header row (the same template run on the header names) and the `ls`
//! tabwriter; the rest is trimmed of spaces, the two-character sequences `\t` and `\n`
//! become a tab and a newline, and a newline is appended.

use std::time::Duration;

use serde_json::{Value as Json, json};

use super::dm_view::{engine_options, swarm_options};
use super::table::{LsRow, render_ls_table, tabwrite};
use super::template::{GoTemplate, ObjectKind, TemplateError, from_json, go_duration, pretty_json};
use crate::state::store::EngineOptions;
use crate::usecase::machine::Observed;

/// Docker Machine's default `ls` format (what `dmw ls` prints without `--format`).
pub const LS_DEFAULT_FORMAT: &str = "table {{ .Name }}\\t{{ .Active }}\\t{{ .DriverName}}\\t{{ .State }}\\t{{ .URL }}\\t{{ .Swarm }}\\t{{ .DockerVersion }}\\t{{ .Error}}";

/// Every `--format` field and its header in `table` mode.
pub const LS_FIELDS: [(&str, &str); 13] = [
    ("Name", "NAME"),
    ("Active", "ACTIVE"),
    ("ActiveHost", "ACTIVE_HOST"),
    ("ActiveSwarm", "ACTIVE_SWARM"),
    ("DriverName", "DRIVER"),
    ("State", "STATE"),
    ("URL", "URL"),
    ("SwarmOptions", "SWARM_OPTIONS"),
    ("Swarm", "SWARM"),
    ("EngineOptions", "ENGINE_OPTIONS"),
    ("Error", "ERRORS"),
    ("DockerVersion", "DOCKER"),
    ("ResponseTime", "RESPONSE"),
];

/// One machine as `ls` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LsItem {
    /// Machine name.
    pub name: String,
    /// `-`, `*`, or empty for a timed-out machine.
    pub active: String,
    /// Running and its URL is `$DOCKER_HOST`.
    pub active_host: bool,
    /// The swarm master `$DOCKER_HOST` points at (never: dmw has no swarm).
    pub active_swarm: bool,
    /// Driver name.
    pub driver_name: String,
    /// `Running`, `Stopped`, `Error`, `Timeout`, …
    pub state: String,
    /// Engine URL, empty unless running.
    pub url: String,
    /// The Swarm-mode cluster's name, ` (manager)` appended on managers; empty outside one.
    pub swarm: String,
    /// Error text, one line.
    pub error: String,
    /// `v<version>`, `Unknown`, or empty.
    pub docker_version: String,
    /// How long the query took.
    pub response_time: Duration,
    /// Engine options from the record (empty when the record cannot be read).
    pub engine: EngineOptions,
}

impl LsItem {
    /// The item for an observed machine; `docker_host` is `$DOCKER_HOST`.
    pub fn new(o: &Observed, engine: EngineOptions, docker_host: Option<&str>) -> LsItem {
        let active_host =
            o.is_running() && docker_host.is_some_and(|h| !h.is_empty() && h == o.url);
        let active = if o.state == "Timeout" {
            ""
        } else if active_host {
            "*"
        } else {
            "-"
        };
        LsItem {
            name: o.name.clone(),
            active: active.into(),
            active_host,
            active_swarm: false,
            driver_name: o.driver.clone(),
            state: o.state.clone(),
            url: o.url.clone(),
            swarm: String::new(),
            error: o.error.clone(),
            docker_version: o.docker.clone(),
            response_time: round_ms(o.response_time),
            engine,
        }
    }

    /// The item's fields by their `--format` names (also the `--output json` object).
    pub fn to_json(&self) -> Json {
        json!({
            "Name": self.name,
            "Active": self.active,
            "ActiveHost": self.active_host,
            "ActiveSwarm": self.active_swarm,
            "DriverName": self.driver_name,
            "State": self.state,
            "URL": self.url,
            "SwarmOptions": swarm_options(),
            "Swarm": self.swarm,
            "EngineOptions": engine_options(&self.engine),
            "Error": self.error,
            "DockerVersion": self.docker_version,
            "ResponseTime": go_duration(self.response_time),
        })
    }

    fn row(&self) -> LsRow {
        LsRow {
            name: self.name.clone(),
            active: self.active.clone(),
            driver: self.driver_name.clone(),
            state: self.state.clone(),
            url: self.url.clone(),
            swarm: self.swarm.clone(),
            docker: self.docker_version.clone(),
            error: self.error.clone(),
        }
    }
}

/// Rounds to whole milliseconds (half away from zero), as Docker Machine measures.
fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(
        u64::try_from(d.as_micros().saturating_add(500) / 1000).unwrap_or(u64::MAX),
    )
}

/// How `ls` prints its items.
pub enum LsFormat {
    /// Docker Machine's default table.
    Default,
    /// A Go template, with a header row and tabwriter when it began with `table`.
    Template {
        /// The parsed template.
        template: GoTemplate,
        /// Whether the `table` prefix was given.
        table: bool,
    },
    /// A JSON array of item objects (`--output json`, `--format json`).
    Json,
}

impl LsFormat {
    /// Parses a `--format` value: empty means the default table, `json` means JSON.
    pub fn parse(format: &str) -> Result<LsFormat, TemplateError> {
        if format.is_empty() {
            return Ok(LsFormat::Default);
        }
        if format.trim() == "json" {
            return Ok(LsFormat::Json);
        }
        let (table, rest) = match format.strip_prefix("table") {
            Some(rest) => (true, rest),
            None => (false, format),
        };
        let text = rest
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n")
            + "\n";
        Ok(LsFormat::Template {
            template: GoTemplate::parse(&text)?,
            table,
        })
    }

    /// Renders the items (already filtered and sorted). Nothing is returned on a template
    /// error, so no partial output reaches the terminal.
    pub fn render(&self, items: &[LsItem]) -> Result<String, TemplateError> {
        match self {
            LsFormat::Default => Ok(render_ls_table(
                &items.iter().map(LsItem::row).collect::<Vec<_>>(),
            )),
            LsFormat::Json => {
                let all: Vec<Json> = items.iter().map(LsItem::to_json).collect();
                Ok(pretty_json(&all) + "\n")
            }
            LsFormat::Template { template, table } => {
                let mut text = String::new();
                if *table {
                    text.push_str(&template.render(&header_data())?);
                }
                for item in items {
                    let data = from_json(&item.to_json(), ObjectKind::Struct);
                    text.push_str(&template.render(&data).map_err(with_fields)?);
                }
                Ok(if *table { tabwrite(&text) } else { text })
            }
        }
    }
}

/// The data the header row is rendered from: each field's header name. Docker Machine
/// uses plain strings, so `.EngineOptions.Labels` fails on its header; here the nested
/// objects are maps of their own field names upper-cased (`LABELS`), so such columns work.
fn header_data() -> gtmpl::Value {
    let nested = |v: Json| match v {
        Json::Object(m) => Json::Object(
            m.keys()
                .map(|k| (k.clone(), Json::String(upper_snake(k))))
                .collect(),
        ),
        other => other,
    };
    let headers: serde_json::Map<String, Json> = LS_FIELDS
        .iter()
        .map(|(k, h)| {
            let v = match *k {
                "EngineOptions" => nested(engine_options(&EngineOptions::default())),
                "SwarmOptions" => nested(swarm_options()),
                _ => Json::String(h.to_string()),
            };
            (k.to_string(), v)
        })
        .collect();
    from_json(&Json::Object(headers), ObjectKind::Map)
}

/// `InsecureRegistry` → `INSECURE_REGISTRY`.
fn upper_snake(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_uppercase());
    }
    out
}

/// Adds the list of valid fields to an unknown-field error.
fn with_fields(e: TemplateError) -> TemplateError {
    match e {
        TemplateError::Exec(m) if m.starts_with("can't evaluate field") => {
            let fields: Vec<String> = LS_FIELDS.iter().map(|(k, _)| format!(".{k}")).collect();
            TemplateError::Exec(format!("{m} (ls fields: {})", fields.join(" ")))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(name: &str, driver: &str, state: &str, url: &str, docker: &str) -> Observed {
        Observed {
            name: name.into(),
            driver: driver.into(),
            state: state.into(),
            url: url.into(),
            docker: docker.into(),
            error: String::new(),
            response_time: Duration::from_millis(12),
        }
    }

    fn items() -> Vec<LsItem> {
        let engine = EngineOptions {
            labels: vec!["env=prod".into(), "team=web".into()],
            ..Default::default()
        };
        let mut stopped = observed("db2", "generic", "Stopped", "", "Unknown");
        stopped.response_time = Duration::from_micros(1500);
        let mut timeout = observed("slow10", "generic", "Timeout", "", "");
        timeout.response_time = Duration::from_secs(2);
        let mut broken = observed("zz", "not found", "Error", "", "");
        broken.error = "machine \"zz\": cannot read config.json: EOF".into();
        let host = Some("tcp://10.0.0.5:2376");
        vec![
            LsItem::new(
                &observed(
                    "web1",
                    "generic",
                    "Running",
                    "tcp://10.0.0.5:2376",
                    "v20.10.24",
                ),
                engine.clone(),
                host,
            ),
            LsItem::new(&stopped, EngineOptions::default(), host),
            LsItem::new(&timeout, engine, host),
            LsItem::new(&broken, EngineOptions::default(), host),
        ]
    }

    #[test]
    fn default_format_through_the_template_equals_the_table() {
        let items = items();
        let via_template = LsFormat::parse(LS_DEFAULT_FORMAT)
            .and_then(|f| f.render(&items))
            .map_err(|e| e.to_string());
        let default = LsFormat::parse("")
            .and_then(|f| f.render(&items))
            .map_err(|e| e.to_string());
        assert_eq!(via_template, default);
        assert_eq!(
            default.as_deref(),
            Ok(concat!(
                "NAME     ACTIVE   DRIVER      STATE     URL                   SWARM   DOCKER      ERRORS\n",
                "web1     *        generic     Running   tcp://10.0.0.5:2376           v20.10.24   \n",
                "db2      -        generic     Stopped                                 Unknown     \n",
                "slow10            generic     Timeout                                             \n",
                "zz       -        not found   Error                                               machine \"zz\": cannot read config.json: EOF\n",
            ))
        );
    }

    #[test]
    fn golden_custom_formats() {
        let items = items();
        let cases: [(&str, &str); 7] = [
            (
                "{{.Name}}: {{.State}}",
                "web1: Running\ndb2: Stopped\nslow10: Timeout\nzz: Error\n",
            ),
            (
                "table {{.Name}}\\t{{.ActiveHost}}\\t{{.ResponseTime}}",
                concat!(
                    "NAME     ACTIVE_HOST   RESPONSE\n",
                    "web1     true          12ms\n",
                    "db2      false         2ms\n",
                    "slow10   false         2s\n",
                    "zz       false         12ms\n",
                ),
            ),
            (
                "  {{.Name}} {{.EngineOptions.Labels}}  ",
                "web1 [env=prod team=web]\ndb2 []\nslow10 [env=prod team=web]\nzz []\n",
            ),
            (
                "{{.Name}}{{range .EngineOptions.Labels}} {{.}}{{end}}",
                "web1 env=prod team=web\ndb2\nslow10 env=prod team=web\nzz\n",
            ),
            (
                "{{.Name}}\\n{{.DriverName}} {{.ActiveSwarm}} {{.SwarmOptions.IsSwarm}}",
                "web1\ngeneric false false\ndb2\ngeneric false false\nslow10\ngeneric false false\nzz\nnot found false false\n",
            ),
            (
                "table {{.Name}}\\t{{.EngineOptions.Labels}}\\t{{.SwarmOptions.IsSwarm}}",
                concat!(
                    "NAME     LABELS                IS_SWARM\n",
                    "web1     [env=prod team=web]   false\n",
                    "db2      []                    false\n",
                    "slow10   [env=prod team=web]   false\n",
                    "zz       []                    false\n",
                ),
            ),
            (
                "table {{.Name}} {{upper .State}}",
                "NAME STATE\nweb1 RUNNING\ndb2 STOPPED\nslow10 TIMEOUT\nzz ERROR\n",
            ),
        ];
        for (format, want) in cases {
            let got = LsFormat::parse(format)
                .and_then(|f| f.render(&items))
                .map_err(|e| e.to_string());
            assert_eq!(got.as_deref(), Ok(want), "format {format:?}");
        }
    }

    #[test]
    fn json_output_uses_the_template_field_names() {
        let out = LsFormat::parse("json")
            .and_then(|f| f.render(&items()[..1]))
            .map_err(|e| e.to_string());
        let v: Json = out
            .as_deref()
            .ok()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        assert_eq!(v[0]["Name"], "web1");
        assert_eq!(v[0]["ActiveHost"], true);
        assert_eq!(v[0]["DockerVersion"], "v20.10.24");
        assert_eq!(
            v[0]["EngineOptions"]["Labels"],
            json!(["env=prod", "team=web"])
        );
        assert_eq!(v[0]["ResponseTime"], "12ms");
        let keys: Vec<&String> = v[0]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys.len(), LS_FIELDS.len());
        for (f, _) in LS_FIELDS {
            assert!(keys.iter().any(|k| *k == f), "{f}");
        }
    }

    #[test]
    fn template_errors() {
        let e = LsFormat::parse("{{.Name")
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_err_and(|m| m.starts_with("template parsing error: ")),
            "{e:?}"
        );
        let e = LsFormat::parse("{{.Nmae}}")
            .and_then(|f| f.render(&items()))
            .map_err(|e| e.to_string());
        assert_eq!(
            e,
            Err("template error: can't evaluate field Nmae (ls fields: .Name .Active .ActiveHost .ActiveSwarm .DriverName .State .URL .SwarmOptions .Swarm .EngineOptions .Error .DockerVersion .ResponseTime)".into())
        );
        // No machines: nothing to run the item template on, only the header.
        let e = LsFormat::parse("table {{.Nmae}}")
            .and_then(|f| f.render(&[]))
            .map_err(|e| e.to_string());
        assert_eq!(e.as_deref(), Ok("<no value>\n"));
    }
}
