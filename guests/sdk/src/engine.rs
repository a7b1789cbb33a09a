//! Docker Engine setup shared by every recipe family: the dockerd systemd drop-in with
//! TLS, the hostname commands, finding dockerd, and waiting until the engine listens.

use crate::cmd::{output_root, sh_quote};
use crate::{Error, InstalledCerts, Result, debug, host};
use std::time::Duration;

/// Where Docker Machine and dmw put the engine's TLS files on the target.
pub const CERT_DIR: &str = "/etc/docker";
/// The drop-in dmw writes for a systemd-managed engine.
pub const DROPIN_PATH: &str = "/etc/systemd/system/docker.service.d/10-dmw.conf";
/// How many times [`wait_listening`] looks for the port.
pub const LISTEN_ATTEMPTS: u32 = 60;
/// How long [`wait_listening`] waits between looks.
pub const LISTEN_INTERVAL: Duration = Duration::from_secs(1);

/// How dockerd gets its local unix socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnixSocket<'a> {
    /// From systemd socket activation (`-H fd://`, the unit has a `.socket` companion).
    Activated,
    /// dockerd binds this path itself (`-H unix://<path>`).
    Path(&'a str),
}

/// Everything the dockerd command line of the drop-in is made from.
#[derive(Clone, Copy, Debug)]
pub struct DaemonConfig<'a> {
    /// Absolute path of dockerd on the target.
    pub dockerd: &'a str,
    /// TCP port of the TLS endpoint.
    pub port: u16,
    /// The local socket.
    pub unix_socket: UnixSocket<'a>,
    /// Where the CA, server certificate and key are on the target.
    pub tls: &'a InstalledCerts,
    /// `--storage-driver` (empty: dockerd's default).
    pub storage_driver: &'a str,
    /// Labels `k=v`.
    pub labels: &'a [String],
    /// Insecure registries.
    pub insecure_registries: &'a [String],
    /// Registry mirrors.
    pub registry_mirrors: &'a [String],
    /// Extra flags `flag=value` or `flag` (a leading `--` is optional).
    pub extra_flags: &'a [String],
    /// Environment `K=V`.
    pub env: &'a [String],
}

/// Reject values that would break out of one line of a unit file.
fn one_line(what: &str, value: &str) -> Result<()> {
    if value.chars().any(|c| c.is_control()) {
        return Err(Error::InvalidInput(format!(
            "{what} {value:?} contains a line break or control character; remove it"
        )));
    }
    Ok(())
}

/// One word of an `ExecStart=` command line, quoted for systemd (specifiers and `$` escaped).
pub fn systemd_word(s: &str) -> String {
    let escaped = s.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && !escaped
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'));
    if plain {
        escaped
    } else {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Whether `name` is a valid environment variable name.
fn env_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The dockerd arguments (after the program) for `cfg`.
pub fn dockerd_args(cfg: &DaemonConfig) -> Result<Vec<String>> {
    if cfg.port == 0 {
        return Err(Error::InvalidInput("the engine port must not be 0".into()));
    }
    let mut args = vec![
        "-H".to_string(),
        format!("tcp://0.0.0.0:{}", cfg.port),
        "-H".into(),
    ];
    match cfg.unix_socket {
        UnixSocket::Activated => args.push("fd://".into()),
        UnixSocket::Path(p) => args.push(format!("unix://{p}")),
    }
    args.push("--tlsverify".into());
    for (flag, path) in [
        ("--tlscacert", &cfg.tls.ca_path),
        ("--tlscert", &cfg.tls.cert_path),
        ("--tlskey", &cfg.tls.key_path),
    ] {
        one_line("certificate path", path)?;
        args.push(flag.into());
        args.push(path.clone());
    }
    if !cfg.storage_driver.trim().is_empty() {
        one_line("storage driver", cfg.storage_driver)?;
        args.push("--storage-driver".into());
        args.push(cfg.storage_driver.trim().into());
    }
    for label in cfg.labels {
        one_line("engine label", label)?;
        if !label.contains('=') || label.starts_with('=') {
            return Err(Error::InvalidInput(format!(
                "engine label {label:?} must have the form key=value"
            )));
        }
        args.push("--label".into());
        args.push(label.clone());
    }
    for (flag, values, what) in [
        (
            "--insecure-registry",
            cfg.insecure_registries,
            "insecure registry",
        ),
        ("--registry-mirror", cfg.registry_mirrors, "registry mirror"),
    ] {
        for v in values {
            one_line(what, v)?;
            args.push(flag.into());
            args.push(v.clone());
        }
    }
    for opt in cfg.extra_flags {
        one_line("engine option", opt)?;
        let opt = opt.trim().trim_start_matches("--");
        if opt.is_empty() || opt.starts_with('=') {
            return Err(Error::InvalidInput(format!(
                "engine option {opt:?} must have the form flag=value or flag"
            )));
        }
        args.push(format!("--{opt}"));
    }
    Ok(args)
}

/// The systemd drop-in that makes `cfg.dockerd` serve TLS on `cfg.port`.
pub fn systemd_dropin(cfg: &DaemonConfig) -> Result<String> {
    one_line("dockerd path", cfg.dockerd)?;
    if !cfg.dockerd.starts_with('/') {
        return Err(Error::InvalidInput(format!(
            "the dockerd path {:?} is not absolute",
            cfg.dockerd
        )));
    }
    let mut exec = systemd_word(cfg.dockerd);
    for arg in dockerd_args(cfg)? {
        exec.push(' ');
        exec.push_str(&systemd_word(&arg));
    }
    let mut text = format!(
        "# Written by dmw: Docker Engine with mutual TLS on port {}.\n\
         # dmw rewrites this file when it provisions the machine.\n\
         [Service]\nExecStart=\nExecStart={exec}\n",
        cfg.port
    );
    for var in cfg.env {
        one_line("engine environment variable", var)?;
        let name = var.split('=').next().unwrap_or_default();
        if !var.contains('=') || !env_name_ok(name) {
            return Err(Error::InvalidInput(format!(
                "engine environment {var:?} must have the form NAME=value"
            )));
        }
        let value = var
            .replace('%', "%%")
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        text.push_str(&format!("Environment=\"{value}\"\n"));
    }
    Ok(text)
}

/// Check that `name` is a valid hostname (letters, digits, `-` and `.`, at most 253).
pub fn validate_hostname(name: &str) -> Result<()> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(Error::InvalidInput(format!(
            "{name:?} is not a valid hostname: use letters, digits, '-' and '.', \
             at most 63 characters between dots"
        )));
    }
    Ok(())
}

/// A root shell script that sets the hostname to `name` now and at boot, and maps it to
/// 127.0.1.1 in /etc/hosts unless it is already there (idempotent; Docker Machine §6.4).
pub fn hostname_script(name: &str) -> Result<String> {
    validate_hostname(name)?;
    let q = sh_quote(name);
    let re = name.replace('.', "\\.");
    Ok(format!(
        "set -e\n\
         hostname {q} 2>/dev/null || hostnamectl set-hostname {q}\n\
         printf '%s\\n' {q} > /etc/hostname\n\
         if ! grep -Eq '^[^#]*[[:space:]]{re}([[:space:]]|$)' /etc/hosts 2>/dev/null; then\n\
         \x20 if grep -Eq '^127\\.0\\.1\\.1[[:space:]]' /etc/hosts; then\n\
         \x20   sed 's/^127\\.0\\.1\\.1[[:space:]].*/127.0.1.1 {name}/' /etc/hosts > /etc/hosts.dmw-new\n\
         \x20   cat /etc/hosts.dmw-new > /etc/hosts\n\
         \x20   rm -f /etc/hosts.dmw-new\n\
         \x20 else\n\
         \x20   printf '127.0.1.1 %s\\n' {q} >> /etc/hosts\n\
         \x20 fi\n\
         fi\n"
    ))
}

/// A shell script printing dockerd's absolute path (empty output: not installed).
pub const FIND_DOCKERD: &str = "p=$(command -v dockerd 2>/dev/null) || p=; \
    if [ -z \"$p\" ]; then for c in /usr/bin/dockerd /usr/sbin/dockerd /usr/local/bin/dockerd \
    /usr/local/sbin/dockerd; do if [ -x \"$c\" ]; then p=$c; break; fi; done; fi; \
    printf '%s\\n' \"$p\"";

/// dockerd's absolute path on the target, if it is installed (looked up as root).
pub fn find_dockerd() -> Result<Option<String>> {
    let out = output_root(FIND_DOCKERD)?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((out.exit_code == 0 && path.starts_with('/')).then_some(path))
}

/// Whether `listing` (from `ss -tln`, `netstat -tln` or /proc/net/tcp{,6}) shows a TCP
/// socket listening on `port`.
pub fn listening_on(listing: &str, port: u16) -> bool {
    let suffix = format!(":{port}");
    let hex = format!(":{port:04X}");
    listing.lines().any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        match cols.as_slice() {
            // /proc/net/tcp: "sl local rem st ...", LISTEN is state 0A.
            [sl, local, _, st, ..] if sl.ends_with(':') => {
                local.to_ascii_uppercase().ends_with(&hex) && *st == "0A"
            }
            // ss -tln: "LISTEN 0 4096 *:2376 *:*"; netstat -tln: "tcp6 0 0 :::2376 :::* LISTEN".
            [_, _, _, local, ..] => local.ends_with(&suffix),
            _ => false,
        }
    })
}

/// The command that lists listening TCP sockets and the state of `unit`.
fn listing_command(unit: &str) -> String {
    format!(
        "if command -v ss >/dev/null 2>&1; then ss -tln; \
         elif command -v netstat >/dev/null 2>&1; then netstat -tln; \
         else cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; fi; \
         echo \"dmw-unit-state $(systemctl is-active {} 2>/dev/null)\"",
        sh_quote(unit)
    )
}

/// What systemd says about `unit` and its recent log, for error messages.
pub fn unit_diagnostics(unit: &str) -> String {
    let u = sh_quote(unit);
    let cmd = format!(
        "systemctl status {u} --no-pager -l 2>&1 | head -n 12; echo; \
         echo \"--- journalctl -u {unit} -n 30 ---\"; journalctl -u {u} -n 30 --no-pager 2>&1"
    );
    match output_root(&cmd) {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
        Err(e) => format!("(could not read the unit's status: {})", e.message()),
    }
}

/// Wait until something listens on TCP `port` ([`LISTEN_ATTEMPTS`] × [`LISTEN_INTERVAL`]);
/// stops early when `unit` has failed. The error carries `unit`'s status and journal.
pub fn wait_listening(port: u16, unit: &str) -> Result<()> {
    let command = listing_command(unit);
    let mut state = String::new();
    for attempt in 1..=LISTEN_ATTEMPTS {
        let out = output_root(&command)?;
        let text = String::from_utf8_lossy(&out.stdout);
        if listening_on(&text, port) {
            debug(&format!("the engine listens on port {port}"));
            return Ok(());
        }
        state = text
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("dmw-unit-state"))
            .unwrap_or("")
            .trim()
            .to_string();
        // systemd gave up restarting it: waiting longer cannot help.
        if state == "failed" {
            break;
        }
        if attempt < LISTEN_ATTEMPTS {
            host::sleep(LISTEN_INTERVAL);
        }
    }
    let why = if state == "failed" {
        format!("{unit} failed to start")
    } else {
        let secs = LISTEN_INTERVAL.as_secs() * u64::from(LISTEN_ATTEMPTS);
        let state = if state.is_empty() { "unknown" } else { &state };
        format!("nothing listens on port {port} after {secs} s ({unit} is {state})")
    };
    Err(Error::Failed(format!(
        "Docker Engine did not come up with TLS on port {port}: {why}.\n\
         {}\n\
         Fix the cause shown above (a conflicting /etc/docker/daemon.json, a bad \
         engine option, another program on port {port}...), then provision the machine again.",
        unit_diagnostics(unit)
    )))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::mock;

    fn certs() -> InstalledCerts {
        InstalledCerts {
            ca_path: "/etc/docker/ca.pem".into(),
            cert_path: "/etc/docker/server.pem".into(),
            key_path: "/etc/docker/server-key.pem".into(),
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dropin_matches_docker_machine_shape() {
        let tls = certs();
        let (labels, insecure, mirrors, extra, env) = (
            strings(&["provider=generic", "team=a b"]),
            strings(&["reg.local:5000"]),
            strings(&["https://mirror.local"]),
            strings(&["log-level=debug", "--ipv6", "data-root=/srv/$x%y"]),
            strings(&["HTTP_PROXY=http://p:3128", "QUOTE=a\"b%c"]),
        );
        let cfg = DaemonConfig {
            dockerd: "/usr/sbin/dockerd",
            port: 2376,
            unix_socket: UnixSocket::Path("/var/run/docker.sock"),
            tls: &tls,
            storage_driver: "overlay2",
            labels: &labels,
            insecure_registries: &insecure,
            registry_mirrors: &mirrors,
            extra_flags: &extra,
            env: &env,
        };
        let text = systemd_dropin(&cfg).expect("valid");
        let expected = "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H tcp://0.0.0.0:2376 \
            -H unix:///var/run/docker.sock --tlsverify --tlscacert /etc/docker/ca.pem \
            --tlscert /etc/docker/server.pem --tlskey /etc/docker/server-key.pem \
            --storage-driver overlay2 --label provider=generic --label \"team=a b\" \
            --insecure-registry reg.local:5000 --registry-mirror https://mirror.local \
            --log-level=debug --ipv6 --data-root=/srv/$$x%%y\n\
            Environment=\"HTTP_PROXY=http://p:3128\"\nEnvironment=\"QUOTE=a\\\"b%%c\"\n";
        assert!(text.ends_with(expected), "{text}");

        let cfg = DaemonConfig {
            unix_socket: UnixSocket::Activated,
            storage_driver: "",
            labels: &[],
            insecure_registries: &[],
            registry_mirrors: &[],
            extra_flags: &[],
            env: &[],
            ..cfg
        };
        let text = systemd_dropin(&cfg).expect("valid");
        assert!(text.ends_with("ExecStart=/usr/sbin/dockerd -H tcp://0.0.0.0:2376 -H fd:// --tlsverify --tlscacert /etc/docker/ca.pem --tlscert /etc/docker/server.pem --tlskey /etc/docker/server-key.pem\n"), "{text}");
    }

    #[test]
    fn dropin_rejects_injection() {
        let tls = certs();
        let bad = strings(&["a=b\nExecStartPre=/bin/evil"]);
        let base = DaemonConfig {
            dockerd: "/usr/bin/dockerd",
            port: 2376,
            unix_socket: UnixSocket::Activated,
            tls: &tls,
            storage_driver: "",
            labels: &[],
            insecure_registries: &[],
            registry_mirrors: &[],
            extra_flags: &[],
            env: &[],
        };
        assert!(
            systemd_dropin(&DaemonConfig {
                labels: &bad,
                ..base
            })
            .is_err()
        );
        assert!(systemd_dropin(&DaemonConfig { env: &bad, ..base }).is_err());
        assert!(
            systemd_dropin(&DaemonConfig {
                extra_flags: &bad,
                ..base
            })
            .is_err()
        );
        let nolabel = strings(&["novalue"]);
        assert!(
            systemd_dropin(&DaemonConfig {
                labels: &nolabel,
                ..base
            })
            .is_err()
        );
        let badenv = strings(&["1X=y"]);
        assert!(
            systemd_dropin(&DaemonConfig {
                env: &badenv,
                ..base
            })
            .is_err()
        );
        assert!(
            systemd_dropin(&DaemonConfig {
                dockerd: "dockerd",
                ..base
            })
            .is_err()
        );
        assert!(systemd_dropin(&DaemonConfig { port: 0, ..base }).is_err());
    }

    #[test]
    fn hostnames() {
        assert!(validate_hostname("n1").is_ok());
        assert!(validate_hostname("web-1.example.com").is_ok());
        for bad in ["", "-a", "a-", "a..b", "a b", "a;b", "a_b", &"x".repeat(64)] {
            assert!(validate_hostname(bad).is_err(), "{bad}");
        }
        let s = hostname_script("web.example").expect("valid");
        assert!(s.contains(
            "hostname web.example 2>/dev/null || hostnamectl set-hostname web.example\n"
        ));
        assert!(s.contains("printf '%s\\n' web.example > /etc/hostname\n"));
        assert!(s.contains("[[:space:]]web\\.example([[:space:]]|$)' /etc/hosts"));
        assert!(s.contains("s/^127\\.0\\.1\\.1[[:space:]].*/127.0.1.1 web.example/"));
        assert!(s.contains("printf '127.0.1.1 %s\\n' web.example >> /etc/hosts"));
    }

    #[test]
    fn listening_parsers() {
        let ss = "State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n\
                  LISTEN 0      128          0.0.0.0:22        0.0.0.0:*\n\
                  LISTEN 0      4096               *:2376            *:*\n";
        assert!(listening_on(ss, 2376));
        assert!(listening_on(ss, 22));
        assert!(!listening_on(ss, 23760));
        assert!(!listening_on(ss, 376));
        let netstat = "Active Internet connections (only servers)\n\
                       Proto Recv-Q Send-Q Local Address Foreign Address State\n\
                       tcp6       0      0 :::2376                 :::*                    LISTEN\n";
        assert!(listening_on(netstat, 2376));
        let proc = "  sl  local_address rem_address   st tx_queue rx_queue\n\
                    0: 00000000:0016 00000000:0000 0A 00000000:00000000\n\
                    1: 0100007F:0948 0100007F:9C40 01 00000000:00000000\n";
        assert!(listening_on(proc, 22));
        assert!(
            !listening_on(proc, 2376),
            "an established connection is not a listener"
        );
        let proc6 = "   0: 00000000000000000000000000000000:0948 00000000000000000000000000000000:0000 0A 0\n";
        assert!(listening_on(proc6, 2376));
    }

    #[test]
    fn wait_listening_succeeds_and_fails_with_journal() {
        mock::reset();
        let mut n = 0;
        mock::on_exec(move |cmd, _| {
            n += 1;
            let listing = if n >= 3 {
                "LISTEN 0 4096 *:2376 *:*\n"
            } else {
                ""
            };
            assert!(cmd.contains("ss -tln"));
            Ok((
                0,
                format!("{listing}dmw-unit-state activating\n"),
                String::new(),
            ))
        });
        assert!(wait_listening(2376, "docker.service").is_ok());
        assert_eq!(mock::sleeps().len(), 2);

        mock::reset();
        mock::on_exec(|cmd, _| {
            Ok(if cmd.contains("journalctl") {
                (
                    0,
                    "dockerd: unable to configure the Docker daemon".into(),
                    String::new(),
                )
            } else {
                (0, "dmw-unit-state failed\n".into(), String::new())
            })
        });
        let err = wait_listening(2376, "docker.service").expect_err("must fail");
        let Error::Failed(m) = err else {
            panic!("kind")
        };
        assert!(m.contains("docker.service failed to start"), "{m}");
        assert!(m.contains("unable to configure the Docker daemon"), "{m}");
        assert!(mock::sleeps().len() < 3, "stops early when the unit failed");

        mock::reset();
        mock::on_exec(|_, _| Ok((0, "dmw-unit-state activating\n".into(), String::new())));
        let Err(Error::Failed(m)) = wait_listening(2376, "docker.service") else {
            panic!("kind")
        };
        assert!(
            m.contains("after 60 s (docker.service is activating)"),
            "{m}"
        );
        assert_eq!(mock::sleeps().len(), 59);
    }

    #[test]
    fn finds_dockerd() {
        mock::reset();
        mock::on_exec(|_, _| Ok((0, "/usr/sbin/dockerd\n".into(), String::new())));
        assert_eq!(
            find_dockerd().ok().flatten().as_deref(),
            Some("/usr/sbin/dockerd")
        );
        mock::on_exec(|_, _| Ok((0, "\n".into(), String::new())));
        assert_eq!(find_dockerd().ok().flatten(), None);
    }
}
