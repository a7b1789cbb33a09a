//! A driver's create flags: declaring them ([`Flag`], [`flag`]) and reading the values
//! given to `set-config` ([`Flags`]: text, required text, numbers, ports, booleans, lists).
//!
//! [`Flags`] takes `(name, values)` pairs so it also works with the exported `flag-value`
//! record of any driver: `flags::Flags::new(flags.iter().map(|f| (&f.name, &f.values)))`;
//! a driver written with [`crate::driver::Driver`] gets it ready-made.
//!
//! Flag names must start with the driver's name and a dash (`--acme-region`) and
//! environment variables with its name in upper case and an underscore (`ACME_REGION`):
//! the host refuses a driver that declares anything else (docs/writing-a-driver.md).

use crate::{Error, Result};
use std::collections::BTreeMap;
use std::str::FromStr;

/// The kind of value a create flag takes (the contract's `flag-kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagKind {
    /// A string (`--x value`).
    Text,
    /// An integer (`--x 22`).
    Integer,
    /// A boolean switch (`--x`).
    Boolean,
    /// A string that may be given many times (`--x a --x b`).
    TextList,
}

/// A flag the driver adds to `dmw create` (the contract's `flag`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flag {
    /// Name without dashes, starting with the driver's name: `acme-region`.
    pub name: String,
    /// One line of help.
    pub usage: String,
    /// Kind of value.
    pub kind: FlagKind,
    /// Default value as text (none: no default).
    pub default: Option<String>,
    /// Environment variable read when the flag is absent: `ACME_REGION`.
    pub env_var: Option<String>,
}

impl Flag {
    /// A flag of `kind` without default or environment variable.
    pub fn new(name: &str, usage: &str, kind: FlagKind) -> Flag {
        Flag {
            name: name.into(),
            usage: usage.into(),
            kind,
            default: None,
            env_var: None,
        }
    }

    /// A text flag.
    pub fn text(name: &str, usage: &str) -> Flag {
        Flag::new(name, usage, FlagKind::Text)
    }

    /// An integer flag.
    pub fn integer(name: &str, usage: &str) -> Flag {
        Flag::new(name, usage, FlagKind::Integer)
    }

    /// A boolean switch.
    pub fn boolean(name: &str, usage: &str) -> Flag {
        Flag::new(name, usage, FlagKind::Boolean)
    }

    /// A text flag that may be given many times.
    pub fn text_list(name: &str, usage: &str) -> Flag {
        Flag::new(name, usage, FlagKind::TextList)
    }

    /// The same flag with default `value`.
    pub fn default_value(mut self, value: impl Into<String>) -> Flag {
        self.default = Some(value.into());
        self
    }

    /// The same flag, read from environment variable `var` when absent.
    pub fn env(mut self, var: &str) -> Flag {
        self.env_var = Some(var.into());
        self
    }
}

/// One create flag in one call: `flag("acme-port", "SSH port", FlagKind::Integer,
/// Some("22"), "ACME_PORT")`.
pub fn flag(name: &str, usage: &str, kind: FlagKind, default: Option<&str>, env: &str) -> Flag {
    Flag {
        name: name.into(),
        usage: usage.into(),
        kind,
        default: default.map(Into::into),
        env_var: Some(env.into()),
    }
}

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

    /// A port flag's value: absent or empty → `default`, else a number in 1..=65535.
    pub fn port(&self, name: &str, default: u16) -> Result<u16> {
        match self.int::<u32>(name)? {
            None => Ok(default),
            Some(p) if (1..=65535).contains(&p) => Ok(p as u16),
            Some(p) => Err(Error::InvalidInput(format!(
                "--{name} must be a TCP port between 1 and 65535, got {p}"
            ))),
        }
    }

    /// Flags with one value each, from `(name, value)` pairs (for tests).
    pub fn of(pairs: &[(&str, &str)]) -> Flags {
        Flags::new(pairs.iter().map(|(n, v)| (*n, vec![v.to_string()])))
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
    fn declares_flags() {
        let f = Flag::integer("acme-port", "SSH port")
            .default_value("22")
            .env("ACME_PORT");
        assert_eq!(
            f,
            flag(
                "acme-port",
                "SSH port",
                FlagKind::Integer,
                Some("22"),
                "ACME_PORT"
            )
        );
        let t = Flag::text_list("acme-tag", "Tags");
        assert_eq!(
            (t.kind, t.default, t.env_var),
            (FlagKind::TextList, None, None)
        );
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
        assert_eq!(f.port("port", 2376).ok(), Some(22));
        assert_eq!(f.port("nope", 2376).ok(), Some(2376));
        assert_eq!(f.port("empty", 2376).ok(), Some(2376));
        let big = Flags::of(&[("p", "70000"), ("z", "0")]);
        assert!(
            matches!(big.port("p", 1), Err(Error::InvalidInput(m)) if m == "--p must be a TCP port between 1 and 65535, got 70000")
        );
        assert!(big.port("z", 1).is_err());
        assert!(f.port("bad", 1).is_err());
        assert_eq!(f.text("many").as_deref(), Some("b"));
    }
}
