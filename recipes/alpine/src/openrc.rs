//! Running the engine under OpenRC: its options in /etc/conf.d/docker, enabling and
//! restarting the service, and waiting until it listens. The OpenRC-aware wait and the
//! conf.d writer are candidates for dmw-guest's `engine` (next to the systemd ones).

use dmw_guest::engine::{self, DaemonConfig, LISTEN_ATTEMPTS, LISTEN_INTERVAL};
use dmw_guest::{Error, Result, command_error, debug, host, output_root, run_root, sh_quote};

/// The OpenRC service of the engine.
pub const SERVICE: &str = "docker";
/// Where Alpine's /etc/init.d/docker reads its settings (`DOCKER_OPTS`, `DOCKERD_BINARY`).
pub const CONF_PATH: &str = "/etc/conf.d/docker";
/// The dockerd that /etc/init.d/docker runs when `DOCKERD_BINARY` is unset.
const DEFAULT_DOCKERD: &str = "/usr/bin/dockerd";
/// Where Alpine's service writes dockerd's output.
const LOG_PATH: &str = "/var/log/docker.log";
/// Separates the socket listing from the service status in the poll's output.
const STATUS_MARK: &str = "dmw-service-status";

/// Whether `name` is a valid environment variable name.
fn env_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `s` inside double quotes for sh (`\`, `"`, `$` and backquote escaped).
fn double_quoted(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// The contents of /etc/conf.d/docker for `cfg` (its `unix_socket` should be a path: OpenRC
/// has no socket activation).
///
/// OpenRC sources the file as sh, then runs `eval ... -- $command_args` with
/// `command_args="${DOCKER_OPTS}"`, so each dockerd argument is quoted once for that `eval`
/// and the whole value once more for the sourcing. The environment becomes `export K=V`
/// lines, which the service's shell passes to dockerd.
pub fn conf_d(cfg: &DaemonConfig) -> Result<String> {
    let args = engine::dockerd_args(cfg)?;
    let opts = args
        .iter()
        .map(|a| sh_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let mut text = format!(
        "# Written by dmw: Docker Engine with mutual TLS on port {}.\n\
         # dmw rewrites this file when it provisions the machine; /etc/init.d/docker reads it.\n\
         DOCKER_OPTS={}\n",
        cfg.port,
        double_quoted(&opts)
    );
    if cfg.dockerd != DEFAULT_DOCKERD {
        if !cfg.dockerd.starts_with('/') || cfg.dockerd.chars().any(|c| c.is_control()) {
            return Err(Error::InvalidInput(format!(
                "the dockerd path {:?} is not an absolute path on one line",
                cfg.dockerd
            )));
        }
        text.push_str(&format!("DOCKERD_BINARY={}\n", sh_quote(cfg.dockerd)));
    }
    for var in cfg.env {
        let (name, value) = var.split_once('=').unwrap_or((var.as_str(), ""));
        if !var.contains('=') || !env_name_ok(name) || var.chars().any(|c| c.is_control()) {
            return Err(Error::InvalidInput(format!(
                "engine environment {var:?} must have the form NAME=value on one line"
            )));
        }
        text.push_str(&format!("export {name}={}\n", sh_quote(value)));
    }
    Ok(text)
}

/// Fail with advice when the machine has no OpenRC service for the engine.
pub fn require_service() -> Result<()> {
    if dmw_guest::status_root(&format!("[ -x /etc/init.d/{SERVICE} ]"))? {
        return Ok(());
    }
    Err(Error::Failed(format!(
        "the machine has no OpenRC service /etc/init.d/{SERVICE} to run the engine: install \
         it with `apk add docker-openrc` (the docker package brings it), then provision again"
    )))
}

/// Enable the engine in the default runlevel (idempotent).
pub fn enable() -> Result<()> {
    run_root(&format!(
        "[ -e /etc/runlevels/default/{SERVICE} ] || rc-update add {SERVICE} default"
    ))
    .map(drop)
}

/// The service's status and the end of dockerd's log, for error messages.
pub fn diagnostics() -> String {
    let cmd = format!(
        "rc-service {SERVICE} status 2>&1; echo \"--- tail -n 30 {LOG_PATH} ---\"; \
         tail -n 30 {LOG_PATH} 2>&1"
    );
    match output_root(&cmd) {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
        Err(e) => format!("(could not read the service's status: {})", e.message()),
    }
}

/// The poll: listening TCP sockets (busybox netstat, else /proc), then the service status.
pub fn listing_command() -> String {
    format!(
        "netstat -tln 2>/dev/null || cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; \
         echo {STATUS_MARK}; rc-service {SERVICE} status 2>&1"
    )
}

/// The sockets part of a poll's output and the service's state (`started`, `stopped`,
/// `crashed`…; empty when unknown).
pub fn parse_poll(text: &str) -> (&str, String) {
    let (listing, status) = text.split_once(STATUS_MARK).unwrap_or((text, ""));
    let state = status
        .lines()
        .filter_map(|l| l.split_once("status:"))
        .map(|(_, s)| s.trim().to_string())
        .next_back()
        .unwrap_or_default();
    (listing, state)
}

/// Restart the engine and wait until it listens on `port` with TLS.
pub fn restart_and_wait(port: u16) -> Result<()> {
    dmw_guest::info("Restarting docker...");
    let command = format!("rc-service {SERVICE} restart");
    let out = output_root(&command)?;
    if out.exit_code != 0 {
        return Err(Error::Failed(format!(
            "{}\n{}\nFix the cause shown above (a conflicting /etc/docker/daemon.json, a bad \
             engine option...), then provision the machine again.",
            command_error(&command, &out).message(),
            diagnostics()
        )));
    }
    wait_listening(port)
}

/// Wait until something listens on TCP `port` (the sdk's attempts and interval); stops early
/// when OpenRC reports the service stopped or crashed. The error carries [`diagnostics`].
pub fn wait_listening(port: u16) -> Result<()> {
    let command = listing_command();
    let mut state = String::new();
    for attempt in 1..=LISTEN_ATTEMPTS {
        let out = output_root(&command)?;
        let text = String::from_utf8_lossy(&out.stdout);
        let (listing, now) = parse_poll(&text);
        if engine::listening_on(listing, port) {
            debug(&format!("the engine listens on port {port}"));
            return Ok(());
        }
        state = now;
        if state == "stopped" || state == "crashed" {
            break;
        }
        if attempt < LISTEN_ATTEMPTS {
            host::sleep(LISTEN_INTERVAL);
        }
    }
    let why = match state.as_str() {
        "stopped" | "crashed" => format!("the {SERVICE} service {state}"),
        _ => {
            let secs = LISTEN_INTERVAL.as_secs() * u64::from(LISTEN_ATTEMPTS);
            let state = if state.is_empty() { "unknown" } else { &state };
            format!(
                "nothing listens on port {port} after {secs} s (the {SERVICE} service is {state})"
            )
        }
    };
    Err(Error::Failed(format!(
        "Docker Engine did not come up with TLS on port {port}: {why}.\n{}\n\
         Fix the cause shown above (a conflicting /etc/docker/daemon.json, a bad engine \
         option, another program on port {port}...), then provision the machine again.",
        diagnostics()
    )))
}
