//! `ls --filter KEY=VALUE`: Docker Machine's keys and matching rules.
//!
//! Values given for the same key are OR-ed, different keys are AND-ed. Keys are
//! case-insensitive. `driver`, `state`, `swarm` and label values compare case-insensitively;
//! `name` is an unanchored regular expression (Go RE2 syntax as far as `regex-lite` has it:
//! no Unicode classes such as `\pL`).

use regex_lite::Regex;

/// A filter that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// No `=` in the filter.
    #[error("Unsupported filter syntax")]
    Syntax,
    /// A key Docker Machine does not know.
    #[error("Unsupported filter key '{0}'")]
    Key(String),
    /// `name=` with a bad regular expression.
    #[error("error parsing regexp in filter \"name={pattern}\": {reason}")]
    Regex {
        /// The pattern given.
        pattern: String,
        /// Why it does not compile.
        reason: String,
    },
    /// `label=` without `key=value`.
    #[error("label filter \"label={0}\" must be label=KEY=VALUE")]
    Label(String),
}

/// Parsed `--filter` options.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    driver: Vec<String>,
    state: Vec<String>,
    name: Vec<Regex>,
    swarm: Vec<String>,
    label: Vec<(String, String)>,
}

/// What the filters look at for one machine, apart from its state.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Machine name.
    pub name: &'a str,
    /// Driver name (`not found` for an unreadable record).
    pub driver: &'a str,
    /// Engine labels, `key=value` each (`--engine-label`).
    pub labels: &'a [String],
    /// Name of the machine's Swarm-mode cluster (empty outside one).
    pub swarm: &'a str,
}

impl Filters {
    /// Parses the `--filter` values.
    pub fn parse(args: &[String]) -> Result<Filters, FilterError> {
        let mut f = Filters::default();
        for arg in args {
            let Some((key, value)) = arg.split_once('=') else {
                return Err(FilterError::Syntax);
            };
            match key.to_lowercase().as_str() {
                "driver" => f.driver.push(value.into()),
                "state" => f.state.push(value.into()),
                "swarm" => f.swarm.push(value.into()),
                "name" => f.name.push(Regex::new(value).map_err(|e| {
                    FilterError::Regex {
                        pattern: value.into(),
                        reason: e
                            .to_string()
                            .lines()
                            .last()
                            .unwrap_or_default()
                            .trim()
                            .into(),
                    }
                })?),
                "label" => {
                    let Some((k, v)) = value.split_once('=') else {
                        return Err(FilterError::Label(value.into()));
                    };
                    f.label.push((k.into(), v.into()));
                }
                other => return Err(FilterError::Key(other.into())),
            }
        }
        Ok(f)
    }

    /// Whether matching needs the machine's live state (a `state=` filter).
    pub fn needs_state(&self) -> bool {
        !self.state.is_empty()
    }

    /// Whether the machine passes every filter except `state`.
    pub fn matches(&self, c: &Candidate<'_>) -> bool {
        let any = |vals: &[String], have: &str| {
            vals.is_empty() || vals.iter().any(|v| v.eq_ignore_ascii_case(have))
        };
        any(&self.driver, c.driver)
            && any(&self.swarm, c.swarm)
            && (self.name.is_empty() || self.name.iter().any(|r| r.is_match(c.name)))
            && (self.label.is_empty()
                || self.label.iter().any(|(k, v)| {
                    c.labels.iter().any(|l| {
                        let (lk, lv) = l.split_once('=').unwrap_or((l.as_str(), ""));
                        lk == k && lv.eq_ignore_ascii_case(v)
                    })
                }))
    }

    /// Whether a state (`Running`, `Stopped`, `Timeout`, …) passes the `state` filter.
    pub fn matches_state(&self, state: &str) -> bool {
        self.state.is_empty() || self.state.iter().any(|s| s.eq_ignore_ascii_case(state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Filters, FilterError> {
        Filters::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn cand<'a>(name: &'a str, driver: &'a str, labels: &'a [String]) -> Candidate<'a> {
        Candidate {
            name,
            driver,
            labels,
            swarm: "",
        }
    }

    #[test]
    fn errors_are_docker_machines() {
        assert_eq!(
            parse(&["driver"]).map(|_| ()).map_err(|e| e.to_string()),
            Err("Unsupported filter syntax".into())
        );
        assert_eq!(
            parse(&["colour=red"])
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err("Unsupported filter key 'colour'".into())
        );
        let e = parse(&["name=[a"]).map(|_| ()).map_err(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_err_and(|m| m.starts_with("error parsing regexp in filter \"name=[a\": ")),
            "{e:?}"
        );
        assert_eq!(
            parse(&["label=env"]).map(|_| ()).map_err(|e| e.to_string()),
            Err("label filter \"label=env\" must be label=KEY=VALUE".into())
        );
    }

    #[test]
    fn same_key_ors_different_keys_and() {
        let labels = vec!["env=Prod".to_string(), "team=a=b".to_string()];
        let none: Vec<String> = Vec::new();
        let f = parse(&["DRIVER=Generic", "driver=none", "name=^web-\\d+$"]).unwrap_or_default();
        assert!(f.matches(&cand("web-1", "generic", &none)));
        assert!(f.matches(&cand("web-22", "none", &none)));
        assert!(!f.matches(&cand("web-x", "generic", &none)));
        assert!(!f.matches(&cand("web-1", "virtualbox", &none)));
        assert!(!f.needs_state());

        // Unanchored like Go's MatchString.
        let f = parse(&["name=eb"]).unwrap_or_default();
        assert!(f.matches(&cand("web-1", "generic", &none)));

        // Label: exact key, value without case; the value may itself contain '='.
        let f = parse(&["label=env=prod"]).unwrap_or_default();
        assert!(f.matches(&cand("a", "generic", &labels)));
        assert!(!f.matches(&cand("a", "generic", &none)));
        let f = parse(&["label=ENV=prod"]).unwrap_or_default();
        assert!(!f.matches(&cand("a", "generic", &labels)));
        let f = parse(&["label=team=a=b", "label=env=dev"]).unwrap_or_default();
        assert!(f.matches(&cand("a", "generic", &labels)));

        // Swarm: dmw machines have no swarm master, so only `swarm=` matches.
        assert!(
            parse(&["swarm="])
                .unwrap_or_default()
                .matches(&cand("a", "g", &none))
        );
        assert!(
            !parse(&["swarm=m"])
                .unwrap_or_default()
                .matches(&cand("a", "g", &none))
        );

        let f = parse(&["state=running", "state=Timeout"]).unwrap_or_default();
        assert!(f.needs_state());
        assert!(f.matches_state("Running") && f.matches_state("Timeout"));
        assert!(!f.matches_state("Stopped"));
        assert!(Filters::default().matches_state("Error"));
    }
}
