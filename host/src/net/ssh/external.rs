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
///
/// The address and user are checked again here ([`crate::text::validate`]) and no value may
/// hold a control character or a quote: a line break would start a new option (a
/// `ProxyCommand` runs a local command). Paths are double-quoted, `%` doubled.
pub fn config_text(t: &Target, policy: HostKeyPolicy) -> Result<String, String> {
    if let Some(p) = crate::text::validate::address_problem(&t.address) {
        return Err(format!("cannot write an ssh_config for {p}"));
    }
    if let Some(p) = crate::text::validate::ssh_user_problem(&t.user) {
        return Err(format!("cannot write an ssh_config for {p}"));
    }
    crate::text::validate::port(t.port)
        .map_err(|why| format!("cannot write an ssh_config: {why}"))?;
    let q = |p: &Path| {
        let s = p.display().to_string();
        if s.chars().any(|c| c.is_control() || c == '"' || c == '\'') {
            Err(format!(
                "cannot write an ssh_config naming the path {s:?}: it holds a quote or control character"
            ))
        } else {
            Ok(format!("\"{}\"", s.replace('%', "%%")))
        }
    };
    Ok(format!(
        "Host *\n  HostName {}\n  Port {}\n  User {}\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  StrictHostKeyChecking {}\n  BatchMode yes\n  PasswordAuthentication no\n  LogLevel quiet\n  ServerAliveInterval 15\n",
        t.address,
        t.port,
        t.user,
        q(&t.key_path)?,
        q(&t.known_hosts)?,
        strict_host_key_checking(policy)
    ))
}

/// ssh options that take an argument (OpenSSH's getopt string), for [`destination_args`].
const SSH_OPTS_WITH_ARG: &str = "BbcDEeFIiJLlmOoPpQRSWw";

/// The arguments of the system `ssh` from the destination on: `extra` split into its
/// leading ssh options and the remote command, then `-l USER [options] -- HOST [command]`.
/// The user and host never share an argument (`user@host`) and come after `--`/`-l`, so
/// neither can be read as an option. Refuses an address or user that is not valid.
pub fn destination_args(t: &Target, extra: &[String]) -> Result<Vec<String>, String> {
    if let Some(p) = crate::text::validate::address_problem(&t.address) {
        return Err(format!("refusing to run ssh for {p}"));
    }
    if let Some(p) = crate::text::validate::ssh_user_problem(&t.user) {
        return Err(format!("refusing to run ssh for {p}"));
    }
    let mut opts = Vec::new();
    let mut i = 0;
    while i < extra.len() {
        let a = &extra[i];
        if a == "--" {
            i += 1;
            break;
        }
        let Some(flags) = a.strip_prefix('-').filter(|f| !f.is_empty()) else {
            break;
        };
        opts.push(a.clone());
        i += 1;
        // The first flag taking an argument ends the cluster: the rest, or the next word, is it.
        for (pos, f) in flags.char_indices() {
            if SSH_OPTS_WITH_ARG.contains(f) {
                if pos + f.len_utf8() == flags.len()
                    && let Some(v) = extra.get(i)
                {
                    opts.push(v.clone());
                    i += 1;
                }
                break;
            }
        }
    }
    let mut out = vec!["-l".to_string(), t.user.clone()];
    out.extend(opts);
    out.push("--".into());
    out.push(t.address.clone());
    out.extend(extra[i..].iter().cloned());
    Ok(out)
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
        let c = config_text(&t, HostKeyPolicy::RequirePinned).expect("config");
        assert!(c.contains("IdentityFile \"/s p/id_rsa\"\n"), "{c}");
        assert!(c.contains("Port 2222\n") && c.contains("StrictHostKeyChecking yes"));
        assert!(
            ssh_args(&t, HostKeyPolicy::RequirePinned)
                .contains(&"StrictHostKeyChecking=yes".to_string())
        );
        assert!(
            config_text(&t, HostKeyPolicy::TrustOnFirstUse)
                .expect("config")
                .contains("StrictHostKeyChecking accept-new")
        );
    }

    fn target(user: &str, address: &str) -> Target {
        Target {
            address: address.into(),
            port: 22,
            user: user.into(),
            key_path: "/k/id_rsa".into(),
            known_hosts: "/k/known_hosts".into(),
        }
    }

    #[test]
    fn config_refuses_line_breaks_and_quotes() {
        let p = HostKeyPolicy::RequirePinned;
        let e = config_text(
            &target("root\n  ProxyCommand sh -c 'touch /tmp/x'", "10.0.0.2"),
            p,
        )
        .unwrap_err();
        assert!(e.contains("not a valid user name"), "{e}");
        for user in ["ro\"ot", "root\r", "-oProxyCommand=x", "a b"] {
            assert!(
                config_text(&target(user, "10.0.0.2"), p).is_err(),
                "{user:?}"
            );
        }
        for addr in [
            "10.0.0.2\n  ProxyCommand x",
            "h\"q",
            "h x",
            "-oProxyCommand=x",
        ] {
            assert!(config_text(&target("root", addr), p).is_err(), "{addr:?}");
        }
        let mut t = target("root", "10.0.0.2");
        t.key_path = "/k\"/id".into();
        assert!(config_text(&t, p).is_err());
        t.key_path = "/k\n  ProxyCommand x/id".into();
        assert!(config_text(&t, p).is_err());
        t.key_path = "/k%d/id".into();
        let c = config_text(&t, p).expect("config");
        assert!(c.contains("IdentityFile \"/k%%d/id\"\n"), "{c}");
        assert_eq!(
            c.lines()
                .filter(|l| l.trim_start().starts_with("User "))
                .count(),
            1
        );
    }

    #[test]
    fn system_ssh_gets_user_and_host_as_their_own_arguments() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let t = target("docker", "10.0.0.2");
        assert_eq!(
            destination_args(&t, &[]).expect("args"),
            s(&["-l", "docker", "--", "10.0.0.2"])
        );
        assert_eq!(
            destination_args(&t, &s(&["-L", "8080:localhost:80", "-tv", "uptime", "-a"]))
                .expect("args"),
            s(&[
                "-l",
                "docker",
                "-L",
                "8080:localhost:80",
                "-tv",
                "--",
                "10.0.0.2",
                "uptime",
                "-a"
            ])
        );
        assert_eq!(
            destination_args(&t, &s(&["-oBatchMode=yes", "--", "-x"])).expect("args"),
            s(&["-l", "docker", "-oBatchMode=yes", "--", "10.0.0.2", "-x"])
        );
        assert!(destination_args(&target("-oProxyCommand=x", "10.0.0.2"), &[]).is_err());
        assert!(destination_args(&target("root", "-oProxyCommand=x"), &[]).is_err());
    }

    #[test]
    fn finds_sh_not_nonsense() {
        assert!(find_program("sh").is_some());
        assert!(find_program("no-such-program-dmw").is_none());
    }
}
