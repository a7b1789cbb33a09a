//! A systemd-managed engine: dmw's drop-in for docker.service, the docker.socket choice,
//! enabling, restarting and waiting until the engine listens. Shared by the debian, rhel,
//! suse, arch and coreos recipes.

use super::service::{ServiceWatch, restart_service_and_wait, wait_service_listening};
use super::{DaemonConfig, UnixSocket, env_var, listener_args, one_line, option_args, raw_args};
use crate::cmd::{output_root, run_root, sh_quote, status_root};
use crate::{Error, InstalledCerts, Result, host, info};

/// The drop-in dmw writes for a systemd-managed engine.
pub const DROPIN_PATH: &str = "/etc/systemd/system/docker.service.d/10-dmw.conf";
/// The drop-in Docker Machine wrote: it sorts after [`DROPIN_PATH`], so its `ExecStart=`
/// would win over dmw's on a machine adopted with `dmw import`. dmw removes it.
pub const DOCKER_MACHINE_DROPIN_PATH: &str = "/etc/systemd/system/docker.service.d/10-machine.conf";
/// The systemd unit of the engine.
pub const UNIT: &str = "docker.service";
/// The socket unit that upstream's packaging (and most distributions') ships next to it.
pub const SOCKET_UNIT: &str = "docker.socket";
/// The local socket dockerd binds itself when it is not socket-activated.
pub const DOCKER_SOCK: &str = "/var/run/docker.sock";

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

/// The systemd drop-in that makes `cfg.dockerd` serve TLS on `cfg.port`: every argument is
/// quoted for systemd except [`DaemonConfig::raw_args`], which end the line as given.
pub fn systemd_dropin(cfg: &DaemonConfig) -> Result<String> {
    one_line("dockerd path", cfg.dockerd)?;
    if !cfg.dockerd.starts_with('/') {
        return Err(Error::InvalidInput(format!(
            "the dockerd path {:?} is not absolute",
            cfg.dockerd
        )));
    }
    let mut exec = systemd_word(cfg.dockerd);
    for arg in listener_args(cfg)?.into_iter().chain(option_args(cfg)?) {
        exec.push(' ');
        exec.push_str(&systemd_word(&arg));
    }
    for arg in raw_args(cfg)? {
        if !arg.trim().is_empty() {
            exec.push(' ');
            exec.push_str(arg.trim());
        }
    }
    let mut text = format!(
        "# Written by dmw: Docker Engine with mutual TLS on port {}.\n\
         # dmw rewrites this file when it provisions the machine.\n\
         [Service]\nExecStart=\nExecStart={exec}\n",
        cfg.port
    );
    for var in cfg.env {
        env_var(var)?;
        let value = var
            .replace('%', "%%")
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        text.push_str(&format!("Environment=\"{value}\"\n"));
    }
    Ok(text)
}

/// How dockerd should get its local socket. The package's own unit decides: when it starts
/// dockerd with `-H fd://` and a docker.socket exists (upstream's, Debian's, Fedora's and
/// Arch's units, where docker.service Requires= the socket, so it cannot be disabled), keep
/// socket activation and make sure the socket is enabled; otherwise (SUSE's unit, CentOS 7's
/// docker) dockerd binds /var/run/docker.sock itself.
pub fn prepare_socket() -> Result<UnixSocket<'static>> {
    let activated = status_root(&format!(
        "systemctl cat {SOCKET_UNIT} >/dev/null 2>&1 && systemctl cat {UNIT} 2>/dev/null | grep -q 'fd://'"
    ))?;
    if activated {
        run_root(&format!(
            "systemctl unmask {SOCKET_UNIT} && systemctl enable {SOCKET_UNIT}"
        ))?;
        Ok(UnixSocket::Activated)
    } else {
        Ok(UnixSocket::Path(DOCKER_SOCK))
    }
}

/// Upload `dropin` (from [`systemd_dropin`]) to [`DROPIN_PATH`].
pub fn upload_dropin(dropin: &str) -> Result<()> {
    info("Setting Docker configuration on the remote daemon...");
    host::upload(DROPIN_PATH, dropin.as_bytes(), 0o644)
}

/// Reload systemd, enable the engine at boot, remember `port`, restart the engine and wait
/// until it listens there (after [`upload_dropin`]).
pub fn enable_and_restart(port: u16) -> Result<()> {
    run_root(&format!(
        "rm -f {DOCKER_MACHINE_DROPIN_PATH} && systemctl daemon-reload && systemctl enable {UNIT}"
    ))?;
    super::remember_port(port);
    restart_and_wait(port)
}

/// Whether the engine already runs with exactly this drop-in and certificates (re-running a
/// recipe on a provisioned machine): then says so, and nothing needs to change.
pub fn unchanged(dropin: &str, tls: &InstalledCerts, port: u16) -> Result<bool> {
    if tls.fresh {
        return Ok(false);
    }
    let current = output_root(&format!("cat {DROPIN_PATH} 2>/dev/null"))?;
    if current.exit_code != 0 || current.stdout != dropin.as_bytes() {
        return Ok(false);
    }
    if !status_root(&format!("systemctl is-active --quiet {UNIT}"))? {
        return Ok(false);
    }
    super::remember_port(port);
    info(
        "Docker Engine already runs with this configuration and these certificates; not restarting it",
    );
    Ok(true)
}

/// [`upload_dropin`], then [`enable_and_restart`] — unless nothing changed ([`unchanged`]).
pub fn apply(dropin: &str, port: u16, tls: &InstalledCerts) -> Result<()> {
    if unchanged(dropin, tls, port)? {
        return Ok(());
    }
    upload_dropin(dropin)?;
    enable_and_restart(port)
}

/// The configure step of a systemd recipe: find dockerd, refuse a conflicting daemon.json,
/// install the certificates in [`CERT_DIR`](super::CERT_DIR), write the drop-in (keeping
/// socket activation where the unit uses it), open the engine and Swarm ports in an active
/// firewall ([`super::firewall`]), enable, restart and wait until it listens.
pub fn configure(opts: &super::EngineOptions) -> Result<()> {
    let dockerd = super::require_dockerd()?;
    super::check_daemon_json()?;
    let tls = super::install_certs(super::CERT_DIR)?;
    let unix_socket = prepare_socket()?;
    let dropin = systemd_dropin(&opts.daemon(&dockerd, unix_socket, &tls))?;
    super::firewall::open_engine_and_swarm_ports(opts.port)?;
    apply(&dropin, opts.port, &tls)
}

/// What systemd says about `unit` and its recent log, for error messages.
pub fn unit_diagnostics(unit: &str) -> String {
    super::diagnostics(&diagnostics_command(unit))
}

/// The command behind [`unit_diagnostics`].
fn diagnostics_command(unit: &str) -> String {
    let u = sh_quote(unit);
    format!(
        "systemctl status {u} --no-pager -l 2>&1 | head -n 12; echo; \
         echo \"--- journalctl -u {unit} -n 30 ---\"; journalctl -u {u} -n 30 --no-pager 2>&1"
    )
}

/// The advice that ends a systemd engine's start-up errors.
fn advice(port: u16) -> String {
    format!(
        "Fix the cause the log below shows (a conflicting /etc/docker/daemon.json, a bad engine option, \
         another program on port {port}...), then provision the machine again."
    )
}

/// Run `body` with the [`ServiceWatch`] of systemd `unit` for `port`.
pub(crate) fn with_watch<T>(unit: &str, port: u16, body: impl FnOnce(&ServiceWatch) -> T) -> T {
    let state = format!("systemctl is-active {} 2>/dev/null", sh_quote(unit));
    let diagnostics = diagnostics_command(unit);
    let reset = format!("systemctl reset-failed {}", sh_quote(unit));
    let advice = advice(port);
    body(&ServiceWatch {
        service: unit,
        state_command: &state,
        stopped: &[("failed", "failed to start")],
        diagnostics: &diagnostics,
        reset: &reset,
        advice: &advice,
    })
}

/// Wait until something listens on TCP `port` ([`super::LISTEN_ATTEMPTS`] ×
/// [`super::LISTEN_INTERVAL`]); stops early when `unit` has failed. The error carries
/// `unit`'s status and journal.
pub fn wait_listening(port: u16, unit: &str) -> Result<()> {
    with_watch(unit, port, |watch| wait_service_listening(port, watch))
}

/// Restart the engine (`daemon-reload`, `restart docker.service`) and wait until it listens
/// on `port` with TLS; a failed restart's error carries the unit's status and journal.
pub fn restart_and_wait(port: u16) -> Result<()> {
    let command = format!("systemctl daemon-reload && systemctl restart {UNIT}");
    with_watch(UNIT, port, |watch| {
        restart_service_and_wait(&command, port, watch)
    })
}
