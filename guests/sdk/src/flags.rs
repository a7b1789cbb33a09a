//! Reading a driver's create flags (`list<flag-value>` in the contract).
//!
//! The helpers take `(name, values)` pairs so they work with the exported `flag-value`
//! record of any driver: `flags::Flags::new(flags.iter().map(|f| (&f.name, &f.values)))`.

use crate::{Error, Result};
use std::collections::BTreeMap;
use std::str::FromStr;

/// The create flags given to `set-config`, by name.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    values: BTreeMap<String, Vec<String>>,
}

impl Flags {
    /// Collect `(name, values)` pairs.
    pub fn new<'a, N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Flags
    where
        N: AsRef<str> + 'a,
        V: AsRef<[String]> + 'a,
    {
        let values = pairs
            .into_iter()
            .map(|(n, v)| (n.as_ref().to_string(), v.as_ref().to_vec()))
            .collect();
        Flags { values }
    }

    /// The last value of flag `name` (none if absent or given without values).
    pub fn text(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last()).cloned()
    }

    /// The value of flag `name`, trimmed, or an error when it is absent or empty.
    pub fn required_text(&self, name: &str, message: &str) -> Result<String> {
        match self.text(name) {
            Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
            _ => Err(Error::InvalidInput(message.to_string())),
        }
    }

    /// Flag `name` parsed as a number (none when absent or empty).
    pub fn int<T: FromStr>(&self, name: &str) -> Result<Option<T>> {
        match self.text(name) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                Error::InvalidInput(format!(
                    "--{name} expects a whole number in range, got {v:?}"
                ))
            }),
        }
    }

    /// Flag `name` as a boolean (`true`/`false`/`1`/`0`/`yes`/`no`; absent: false).
    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.text(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) => match v.as_str() {
                "" | "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(Error::InvalidInput(format!(
                    "--{name} expects true or false, got {v:?}"
                ))),
            },
        }
    }

    /// Every value of a list flag `name` (empty when absent).
    pub fn list(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Flags {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Flags::new([
            ("ip", v(&[" 10.0.0.1 "])),
            ("port", v(&["22"])),
            ("bad", v(&["x"])),
            ("on", v(&["true"])),
            ("off", v(&["0"])),
            ("many", v(&["a", "b"])),
            ("empty", v(&[""])),
        ])
    }

    #[test]
    fn reads_values() {
        let f = flags();
        assert_eq!(
            f.required_text("ip", "need ip").ok().as_deref(),
            Some("10.0.0.1")
        );
        assert!(
            matches!(f.required_text("empty", "need it"), Err(Error::InvalidInput(m)) if m == "need it")
        );
        assert!(f.required_text("nope", "x").is_err());
        assert_eq!(f.int::<u16>("port").ok().flatten(), Some(22));
        assert_eq!(f.int::<u16>("nope").ok().flatten(), None);
        assert!(matches!(f.int::<u16>("bad"), Err(Error::InvalidInput(m)) if m.contains("--bad")));
        assert_eq!(f.bool("on").ok(), Some(true));
        assert_eq!(f.bool("off").ok(), Some(false));
        assert_eq!(f.bool("nope").ok(), Some(false));
        assert!(f.bool("bad").is_err());
        assert_eq!(f.list("many"), vec!["a", "b"]);
        assert_eq!(f.text("many").as_deref(), Some("b"));
    }
}
