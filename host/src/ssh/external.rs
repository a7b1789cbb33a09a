//! The system's OpenSSH client (and programs built on it, like sshfs): finding programs on
//! PATH and the options that log in with the machine's key and pinned host key.

use std::path::{Path, PathBuf};

use super::{HostKeyPolicy, Target, sh_quote};

/// The first executable called `name` on `$PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// OpenSSH's `StrictHostKeyChecking` value for a host-key policy: `yes` for a pinned key,
/// `accept-new` where the key is pinned on first use (an imported machine).
pub fn strict_host_key_checking(policy: HostKeyPolicy) -> &'static str {
    match policy {
        HostKeyPolicy::TrustOnFirstUse => "accept-new",
        _ => "yes",
    }
}

/// `ssh` arguments (before `user@host`) that use only the machine's key and accept only
/// its pinned host key (or pin it, under `TrustOnFirstUse`).
pub fn ssh_args(t: &Target, policy: HostKeyPolicy) -> Vec<String> {
    let mut a: Vec<String> = [
        "-F",
        "/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "LogLevel=quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push("-o".into());
    a.push(format!(
        "StrictHostKeyChecking={}",
        strict_host_key_checking(policy)
    ));
    a.push("-o".into());
    a.push(format!(
        "UserKnownHostsFile={}",
        sh_quote(&t.known_hosts.display().to_string())
    ));
    a.push("-i".into());
    a.push(t.key_path.display().to_string());
    a.push("-p".into());
    a.push(t.port.to_string());
    a
}

/// An ssh_config for `t` (for programs that take `-F`, like sshfs): every host name
/// maps to the machine, with its user, port, key and pinned known_hosts file.
pub fn config_text(t: &Target, policy: HostKeyPolicy) -> String {
    let q = |p: &Path| format!("\"{}\"", p.display());
    format!(
        "Host *\n  HostName {}\n  Port {}\n  User {}\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  StrictHostKeyChecking {}\n  BatchMode yes\n  PasswordAuthentication no\n  LogLevel quiet\n  ServerAliveInterval 15\n",
        t.address,
        t.port,
        t.user,
        q(&t.key_path),
        q(&t.known_hosts),
        strict_host_key_checking(policy)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_quotes_paths_with_spaces() {
        let t = Target {
            address: "10.0.0.2".into(),
            port: 2222,
            user: "dmw".into(),
            key_path: "/s p/id_rsa".into(),
            known_hosts: "/s p/known_hosts".into(),
        };
        let c = config_text(&t, HostKeyPolicy::RequirePinned);
        assert!(c.contains("IdentityFile \"/s p/id_rsa\"\n"), "{c}");
        assert!(c.contains("Port 2222\n") && c.contains("StrictHostKeyChecking yes"));
        assert!(
            ssh_args(&t, HostKeyPolicy::RequirePinned)
                .contains(&"StrictHostKeyChecking=yes".to_string())
        );
        assert!(
            config_text(&t, HostKeyPolicy::TrustOnFirstUse)
                .contains("StrictHostKeyChecking accept-new")
        );
    }

    #[test]
    fn finds_sh_not_nonsense() {
        assert!(find_program("sh").is_some());
        assert!(find_program("no-such-program-dmw").is_none());
    }
}
