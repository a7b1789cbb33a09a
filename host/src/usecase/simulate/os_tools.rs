//! What an OS ships, for `dmw recipe plan`: whether `command -v TOOL` finds a tool on a fresh
//! machine of that OS family and version, so a plan follows the branch a recipe would really
//! take there (CentOS 7 has `yum` and no `dnf`; RHEL 8+ has both; Amazon Linux 2 has
//! `amazon-linux-extras`). Tools this table does not decide for an OS are assumed present,
//! and the plan says so.

use crate::sandbox::plugin::recipe::OsInfo;

/// Every tool the table decides: the package managers. (Recipes probe them with a bare
/// `command -v TOOL >/dev/null 2>&1`, whose answer is the tool's presence.)
pub const TOOLS: &[&str] = &[
    "apt-get",
    "dnf",
    "yum",
    "amazon-linux-extras",
    "zypper",
    "pacman",
    "apk",
];

/// Tools whose presence the plan decides otherwise (the engine: `--engine-present`).
pub const ENGINE_TOOLS: &[&str] = &["docker", "dockerd"];

/// The major version of `VERSION_ID` (`"7"` → 7, `"2023"` → 2023, `""` → 0).
fn major(os: &OsInfo) -> u32 {
    os.version_id
        .split('.')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Whether the OS is `id` or like it.
fn is(os: &OsInfo, ids: &[&str]) -> bool {
    ids.contains(&os.id.as_str()) || os.id_like.iter().any(|l| ids.contains(&l.as_str()))
}

/// The tools of [`TOOLS`] a fresh machine of this OS has, or None when the OS is not one the
/// table knows (then nothing is decided).
pub fn shipped(os: &OsInfo) -> Option<Vec<&'static str>> {
    let v = major(os);
    let tools: Vec<&'static str> = if os.id == "amzn" {
        match v {
            2 => vec!["yum", "amazon-linux-extras"],
            2023.. => vec!["dnf", "yum"],
            _ => return None,
        }
    } else if os.id == "fedora" {
        vec!["dnf", "yum"]
    } else if is(os, &["rhel", "centos", "fedora"]) {
        match v {
            6 | 7 => vec!["yum"],
            8.. => vec!["dnf", "yum"],
            _ => return None,
        }
    } else if is(os, &["debian", "ubuntu"]) {
        return Some(vec!["apt-get"]);
    } else if is(os, &["suse", "opensuse", "sles"]) {
        return Some(vec!["zypper"]);
    } else if is(os, &["arch"]) {
        return Some(vec!["pacman"]);
    } else if os.id == "alpine" {
        return Some(vec!["apk"]);
    } else {
        return None;
    };
    Some(tools)
}

/// The tool a `command -v TOOL` probe asks about, if the command is such a probe.
pub fn probed_tool(command: &str) -> Option<&str> {
    let rest = &command[command.find("command -v ")? + "command -v ".len()..];
    rest.split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|')
        .next()
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, like: &[&str], version: &str) -> OsInfo {
        OsInfo {
            id: id.into(),
            id_like: like.iter().map(|s| s.to_string()).collect(),
            version_id: version.into(),
            version_codename: String::new(),
            pretty_name: String::new(),
            fields: Vec::new(),
        }
    }

    #[test]
    fn el_versions_differ() {
        let c7 = shipped(&os("centos", &["rhel", "fedora"], "7")).expect("known");
        assert!(c7.contains(&"yum") && !c7.contains(&"dnf"));
        let r9 = shipped(&os("rhel", &["fedora"], "9.3")).expect("known");
        assert!(r9.contains(&"yum") && r9.contains(&"dnf"));
        let a2 = shipped(&os("amzn", &["centos", "rhel", "fedora"], "2")).expect("known");
        assert!(a2.contains(&"amazon-linux-extras") && !a2.contains(&"dnf"));
        let a23 = shipped(&os("amzn", &["fedora"], "2023")).expect("known");
        assert!(a23.contains(&"dnf") && !a23.contains(&"amazon-linux-extras"));
        assert_eq!(shipped(&os("debian", &[], "12")), Some(vec!["apt-get"]));
        assert_eq!(shipped(&os("plan9", &[], "4")), None);
    }

    #[test]
    fn probes_are_recognised() {
        assert_eq!(probed_tool("command -v dnf >/dev/null 2>&1"), Some("dnf"));
        assert_eq!(
            probed_tool("if command -v restorecon; then x; fi"),
            Some("restorecon")
        );
        assert_eq!(probed_tool("dnf install -y docker"), None);
    }
}
