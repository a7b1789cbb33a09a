//! Which program the user ran. Invoked as `docker-machine` (a link or copy of the binary
//! by that name) or with `DMW_COMPAT=docker-machine` (for `alias docker-machine=dmw`), dmw
//! prints Docker Machine 0.16.2's exact texts where a script may match them; otherwise
//! dmw's own. The two differ only in words, never in what happens or the exit code.
//!
//! Commands quoted in messages are written `` `dmw CMD` `` or `"dmw CMD"`; [`localize`]
//! puts the invoked name there, so hints name the program the user actually ran.

use std::sync::OnceLock;

/// The environment variable that selects Docker Machine's texts under another name.
pub const COMPAT_ENV: &str = "DMW_COMPAT";

/// The program name whose texts [`COMPAT_ENV`] and a link of that name select.
pub const DOCKER_MACHINE: &str = "docker-machine";

/// How dmw was invoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Personality {
    /// The command name to print in usage lines and hints.
    pub name: String,
    /// Whether Docker Machine 0.16.2's texts are printed.
    pub docker_machine: bool,
    /// `argv[0]` as given (Docker Machine echoed it in create's closing hint).
    pub argv0: String,
}

impl Personality {
    /// The personality of a process whose `argv[0]` is `argv0` and whose `DMW_COMPAT` is
    /// `compat`.
    pub fn from_invocation(argv0: &str, compat: Option<&str>) -> Personality {
        let base = std::path::Path::new(argv0)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let base = base.strip_suffix(".exe").unwrap_or(base);
        if base == DOCKER_MACHINE || compat.is_some_and(|c| c.trim() == DOCKER_MACHINE) {
            return Personality {
                name: DOCKER_MACHINE.into(),
                docker_machine: true,
                argv0: argv0.into(),
            };
        }
        // Any other name (a link `machine`, say) is used as it is when it is a plain word;
        // anything odd falls back to `dmw`.
        let plain = !base.is_empty()
            && base.len() <= 64
            && base
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        Personality {
            name: if plain { base.into() } else { "dmw".into() },
            docker_machine: false,
            argv0: argv0.into(),
        }
    }
}

static CURRENT: OnceLock<Personality> = OnceLock::new();

/// Set the process's personality (once, at start; later calls are ignored).
pub fn init(p: Personality) {
    let _ = CURRENT.set(p);
}

/// The process's personality (`dmw` when [`init`] was not called, as in unit tests).
pub fn current() -> &'static Personality {
    CURRENT.get_or_init(|| Personality {
        name: "dmw".into(),
        docker_machine: false,
        argv0: "dmw".into(),
    })
}

/// The name to print where a command is named.
pub fn name() -> &'static str {
    &current().name
}

/// The closing line of a successful `create`, with `argv[0]` as Docker Machine printed it
/// (an `argv[0]` with control characters prints as the invoked name).
pub fn create_done_hint(machine: &str) -> String {
    let p = current();
    if p.docker_machine {
        let argv0 = if p.argv0.chars().any(char::is_control) {
            p.name.as_str()
        } else {
            p.argv0.as_str()
        };
        format!(
            "To see how to connect your Docker Client to the Docker Engine running on this virtual machine, run: {argv0} env {machine}"
        )
    } else {
        format!(
            "To see how to connect your Docker Client to the Docker Engine running on this machine, run: {} env {machine}",
            p.name
        )
    }
}

/// Whether Docker Machine's texts are printed.
pub fn docker_machine() -> bool {
    current().docker_machine
}

/// `text` with each quoted `dmw ` command (`` `dmw `` or `"dmw `) naming the invoked program.
pub fn localize(text: &str) -> String {
    localize_as(text, name())
}

/// [`localize`] for program name `name`.
pub fn localize_as(text: &str, name: &str) -> String {
    if name == "dmw" || !text.contains("dmw ") {
        return text.to_string();
    }
    text.replace("`dmw ", &format!("`{name} "))
        .replace("\"dmw ", &format!("\"{name} "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_argv0_and_env() {
        let p = Personality::from_invocation("/usr/local/bin/docker-machine", None);
        assert!(p.docker_machine);
        assert_eq!(p.name, "docker-machine");
        let p = Personality::from_invocation("dmw", Some("docker-machine"));
        assert!(p.docker_machine);
        assert_eq!(p.name, "docker-machine");
        let p = Personality::from_invocation("/opt/dmw", Some("no"));
        assert!(!p.docker_machine);
        assert_eq!(p.name, "dmw");
        let p = Personality::from_invocation("/x/machine", None);
        assert_eq!(p.name, "machine");
        let p = Personality::from_invocation("/x/a\u{1b}[2J", None);
        assert_eq!(p.name, "dmw");
    }

    #[test]
    fn localizes_quoted_commands() {
        assert_eq!(
            localize_as("run `dmw ls`; Use \"dmw create\" to add", "docker-machine"),
            "run `docker-machine ls`; Use \"docker-machine create\" to add"
        );
        assert_eq!(localize_as("dmws `dmw ls`", "dmw"), "dmws `dmw ls`");
        assert_eq!(localize_as("a dmw b", "docker-machine"), "a dmw b");
    }
}
