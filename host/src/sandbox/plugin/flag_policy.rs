//! Which create flags, and which environment variables behind them, a driver may declare.
//!
//! A driver's `create-flags` are hostile input: they join dmw's own command line, and an
//! `env-var` fallback reads the user's environment. The rules:
//! - the driver's name (from `info`) is a short lower-case word, not one of dmw's own words;
//!   a driver loaded from a file may not take a built-in driver's name;
//! - flag names are `[a-z0-9-]`, start with the driver's name and a dash (`--acme-region`),
//!   and never reuse dmw's own flags or prefixes (`--tls-san`, `--engine-…`, `--swarm-…`);
//!   built-in drivers keep Docker Machine's historic names (the none driver's `--url`);
//! - an environment variable is `[A-Z0-9_]`, starts with the driver's name in upper case
//!   and an underscore (`ACME_REGION`) or is one the driver declared (`env-var OS_PASSWORD`
//!   in its permissions, approved by the user for a file), and is never one of dmw's,
//!   Docker's or the system's (`DMW_…`, `DOCKER_…`, `MACHINE_…`, `HOME`, `PATH`, …).
//!
//! - a flag whose value names a file the host reads (`file FLAG`, `http-cacert FLAG`) has no
//!   default: the host reads only files the user names, so a default would be the plugin
//!   choosing which of the user's files to read (`/proc/self/environ`, the CA key).
//!
//! A declaration that breaks a rule makes the whole driver unusable, with a message that
//! names the flag and the rule: a silently dropped flag would hide an attempt.

use super::declaration::Declaration;
use super::driver::Flag;

/// Words that are dmw's own: a driver may not take them as its name, and no driver flag
/// may equal them or start with them followed by a dash.
const RESERVED: &[&str] = &[
    "dmw",
    "docker",
    "machine",
    "driver",
    "recipe",
    "engine",
    "tls",
    "swarm",
    "no-docker-context",
    "no-provision",
    "help",
    "version",
    "storage-path",
    "debug",
    "native-ssh",
    "name",
];

/// Environment variable prefixes no driver may read, whatever its name.
const RESERVED_ENV_PREFIXES: &[&str] = &["DMW_", "DOCKER_", "MACHINE_", "SSH_", "XDG_", "LC_"];

/// Environment variables no driver may read, whatever it declares: the system's and the
/// ones dmw's own HTTP sender reads.
const RESERVED_ENV_NAMES: &[&str] = &[
    "HOME",
    "PATH",
    "USER",
    "LOGNAME",
    "SHELL",
    "PWD",
    "TERM",
    "TMPDIR",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
];

/// The longest flag name, environment variable name or driver name accepted.
const MAX_NAME: usize = 64;
/// The longest flag default accepted.
const MAX_DEFAULT: usize = 1024;

/// Check a driver's name and flag declarations; `builtin` drivers keep their historic
/// unprefixed names but follow every other rule; `declared` is what it declared (and was
/// granted): its environment variables outside its prefix, its file and CA bundle flags.
/// Every broken rule is listed (one per line), so one run shows all that a driver reaches
/// for.
pub fn check(
    driver: &str,
    flags: &[Flag],
    builtin: bool,
    declared: &Declaration,
) -> Result<(), String> {
    check_driver_name(driver, builtin)?;
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for f in flags {
        if let Err(e) = check_flag(driver, f, builtin, &declared.env_vars) {
            problems.push(e);
        } else if let Err(e) = check_file_default(driver, f, declared) {
            problems.push(e);
        } else if !seen.insert(f.name.as_str()) {
            problems.push(format!(
                "driver {driver} declares the flag --{} twice",
                f.name
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\nThis driver cannot be used: its flags break the rules above (its author must change them).",
            problems.join("\n")
        ))
    }
}

/// Whether `flag` is one of dmw's own words or under one of its prefixes (`--engine-…`), so
/// no driver may declare it.
pub fn is_reserved(flag: &str) -> bool {
    RESERVED
        .iter()
        .any(|w| flag == *w || flag.starts_with(&format!("{w}-")))
}

/// The environment variable prefix of a driver: `acme-cloud` → `ACME_CLOUD_`.
pub fn env_prefix(driver: &str) -> String {
    format!("{}_", driver.to_ascii_uppercase().replace('-', "_"))
}

/// The flags of `declared` whose value names a file the host reads: its `file` flags and
/// its `http-cacert` flag.
pub fn file_flags(declared: &Declaration) -> impl Iterator<Item = &str> {
    declared
        .files
        .iter()
        .map(String::as_str)
        .chain(declared.http_cacert.as_deref())
}

/// A flag naming a file the host reads may have no default: the file must be the user's
/// choice.
fn check_file_default(driver: &str, f: &Flag, declared: &Declaration) -> Result<(), String> {
    let default = f.default.as_deref().unwrap_or("").trim();
    if default.is_empty() || !file_flags(declared).any(|n| n == f.name) {
        return Ok(());
    }
    Err(format!(
        "driver {driver} declares the default {:?} for --{}, a flag whose value names a local file dmw reads; dmw reads only files you name, so such a flag may have no default",
        crate::text::sanitize::plugin_text(default, 200),
        f.name
    ))
}

/// Whether `name` can name a driver (and prefix its flags): 1-32 characters of a-z, 0-9
/// and `-`, starting with a letter, not ending with `-`.
pub fn is_driver_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn check_driver_name(name: &str, builtin: bool) -> Result<(), String> {
    if !is_driver_name(name) {
        return Err(format!(
            "the driver calls itself {name:?}; a driver's name must be 1-32 characters of a-z, 0-9 and -, starting with a letter"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "the driver calls itself \"{name}\", which is one of dmw's own words; rename the driver"
        ));
    }
    if !builtin && super::builtin::driver(name).is_some() {
        return Err(format!(
            "the driver file calls itself \"{name}\", the name of dmw's built-in driver; rename the driver"
        ));
    }
    Ok(())
}

fn check_flag(
    driver: &str,
    f: &Flag,
    builtin: bool,
    declared_env: &[String],
) -> Result<(), String> {
    let name = f.name.as_str();
    let charset_ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !charset_ok {
        return Err(format!(
            "driver {driver} declares the flag {name:?}; flag names must be 1-{MAX_NAME} characters of a-z, 0-9 and -"
        ));
    }
    if is_reserved(name) {
        let word = RESERVED
            .iter()
            .find(|w| name == **w || name.starts_with(&format!("{w}-")))
            .unwrap_or(&name);
        return Err(format!(
            "driver {driver} declares the flag --{name}, which is dmw's own (--{word}…); a driver's flags must start with --{driver}-"
        ));
    }
    if !builtin && !name.starts_with(&format!("{driver}-")) {
        return Err(format!(
            "driver {driver} declares the flag --{name}; a driver's flags must start with --{driver}-"
        ));
    }
    if let Some(var) = &f.env_var {
        check_env_var(driver, name, var, builtin, declared_env)?;
    }
    // A default is shown in `create --help` and becomes the value the driver gets: one
    // line of printable text, like a value the user could type.
    if let Some(default) = &f.default
        && (default.chars().any(char::is_control) || default.len() > MAX_DEFAULT)
    {
        return Err(format!(
            "driver {driver} declares the default {:?} for --{name}; a default must be at most {MAX_DEFAULT} bytes of printable text",
            crate::text::sanitize::plugin_text(default, 80)
        ));
    }
    Ok(())
}

fn check_env_var(
    driver: &str,
    flag: &str,
    var: &str,
    builtin: bool,
    declared_env: &[String],
) -> Result<(), String> {
    let charset_ok = !var.is_empty()
        && var.len() <= MAX_NAME
        && var.starts_with(|c: char| c.is_ascii_uppercase())
        && var
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !charset_ok {
        return Err(format!(
            "driver {driver} wants --{flag} to read the environment variable {var:?}; variable names must be A-Z, 0-9 and _"
        ));
    }
    let prefix = env_prefix(driver);
    let declared = declared_env.iter().any(|d| d == var);
    if RESERVED_ENV_PREFIXES.iter().any(|p| var.starts_with(p))
        || RESERVED_ENV_NAMES.contains(&var)
        || (!builtin && !declared && !var.starts_with(&prefix))
    {
        return Err(format!(
            "driver {driver} wants --{flag} to read the environment variable {var}; a driver may only read variables that start with {prefix} or that it declares (env-var), never dmw's, Docker's or the system's"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::plugin::driver::FlagKind;

    /// A default with control characters (or too long) is refused: it would reach the
    /// terminal in `create --help` and the driver as a value nobody typed.
    #[test]
    fn a_default_must_be_one_line_of_printable_text() {
        let with_default = |default: &str| Flag {
            name: "acme-region".into(),
            usage: "u".into(),
            kind: FlagKind::Text,
            default: Some(default.into()),
            env_var: None,
        };
        let none = Declaration::default();
        assert!(check("acme", &[with_default("eu-1")], false, &none).is_ok());
        let e = check("acme", &[with_default("eu\u{1b}[2J")], false, &none).expect_err("escape");
        assert!(
            e.contains("--acme-region") && e.contains("printable"),
            "{e}"
        );
        assert!(check("acme", &[with_default("a\nb")], false, &none).is_err());
        assert!(check("acme", &[with_default(&"x".repeat(2000))], false, &none).is_err());
    }

    fn env(vars: &[&str]) -> Declaration {
        Declaration {
            env_vars: vars.iter().map(|v| v.to_string()).collect(),
            ..Declaration::default()
        }
    }

    fn flag(name: &str, env: Option<&str>) -> Flag {
        Flag {
            name: name.into(),
            usage: "u".into(),
            kind: FlagKind::Text,
            default: None,
            env_var: env.map(Into::into),
        }
    }

    #[test]
    fn prefixed_flags_and_variables_pass() {
        let flags = [
            flag("acme-region", Some("ACME_REGION")),
            flag("acme-token", None),
        ];
        assert_eq!(check("acme", &flags, false, &env(&[])), Ok(()));
        assert_eq!(env_prefix("acme-cloud"), "ACME_CLOUD_");
    }

    #[test]
    fn dmw_flags_and_prefixes_are_refused() {
        for name in ["tls-san", "engine-opt", "swarm-master", "driver", "help"] {
            let err = check("acme", &[flag(name, None)], false, &env(&[])).expect_err(name);
            assert!(err.contains("dmw's own"), "{err}");
            // Built-ins may not take them either.
            assert!(check("generic", &[flag(name, None)], true, &env(&[])).is_err());
        }
    }

    #[test]
    fn unprefixed_or_odd_flags_are_refused() {
        for name in [
            "region", "ACME-x", "acme_x", "acme-", "", "acme x", "-acme-x",
        ] {
            assert!(
                check("acme", &[flag(name, None)], false, &env(&[])).is_err(),
                "{name:?}"
            );
        }
        // The none driver's historic --url stays.
        assert_eq!(check("none", &[flag("url", None)], true, &env(&[])), Ok(()));
        let dup = [flag("acme-a", None), flag("acme-a", None)];
        assert!(check("acme", &dup, false, &env(&[])).is_err());
    }

    #[test]
    fn foreign_environment_variables_are_refused() {
        for var in [
            "GITHUB_TOKEN",
            "HOME",
            "PATH",
            "DMW_DRIVER",
            "AWS_SECRET_ACCESS_KEY",
            "acme_x",
            "ACME-X",
        ] {
            let err = check("acme", &[flag("acme-x", Some(var))], false, &env(&[])).expect_err(var);
            assert!(err.contains("environment variable"), "{err}");
        }
        for var in ["DOCKER_HOST", "MACHINE_STORAGE_PATH", "SSH_AUTH_SOCK"] {
            assert!(
                check("generic", &[flag("generic-x", Some(var))], true, &env(&[])).is_err(),
                "{var}"
            );
        }
    }

    #[test]
    fn declared_environment_variables_pass_but_never_the_systems() {
        let declared = env(&["OS_PASSWORD", "HOME"]);
        let ok = [flag("acme-password", Some("OS_PASSWORD"))];
        assert_eq!(check("acme", &ok, false, &declared), Ok(()));
        assert!(check("acme", &ok, false, &env(&[])).is_err(), "undeclared");
        let home = [flag("acme-home", Some("HOME"))];
        assert!(check("acme", &home, false, &declared).is_err());
        assert!(check("generic", &home, true, &declared).is_err());
        let proxy = [flag("acme-proxy", Some("HTTPS_PROXY"))];
        assert!(check("acme", &proxy, true, &env(&["HTTPS_PROXY"])).is_err());
    }

    #[test]
    fn driver_names_are_checked() {
        assert!(
            check("generic", &[], false, &env(&[])).is_err(),
            "a file may not pose as a built-in"
        );
        assert_eq!(check("generic", &[], true, &env(&[])), Ok(()));
        for name in ["dmw", "docker", "Acme", "a b", "", "acme-", "x\u{1b}"] {
            assert!(check(name, &[], false, &env(&[])).is_err(), "{name:?}");
        }
    }

    #[test]
    fn file_flags_may_have_no_default() {
        let declared = Declaration {
            files: vec!["acme-userdata".into()],
            http_cacert: Some("acme-cacert".into()),
            ..Declaration::default()
        };
        let with_default = |name: &str, default: &str| Flag {
            default: Some(default.into()),
            ..flag(name, None)
        };
        for (name, default) in [
            ("acme-userdata", "/proc/self/environ"),
            ("acme-userdata", ".dmw/certs/ca-key.pem"),
            ("acme-cacert", "/etc/shadow"),
        ] {
            let err =
                check("acme", &[with_default(name, default)], false, &declared).expect_err(name);
            assert!(
                err.contains(&format!("--{name}")) && err.contains(default),
                "{err}"
            );
            // Built-ins follow the rule too.
            assert!(check("acme", &[with_default(name, default)], true, &declared).is_err());
        }
        // No default, an empty one, or a default on a flag that names no file: fine.
        let fine = [
            flag("acme-userdata", None),
            with_default("acme-cacert", ""),
            with_default("acme-region", "/not/a/file/flag"),
        ];
        assert_eq!(check("acme", &fine, false, &declared), Ok(()));
    }
}
