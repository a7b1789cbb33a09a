//! Running the engine under OpenRC: its options in /etc/conf.d/docker, enabling and
//! restarting the service, and waiting (with the sdk's [`ServiceWatch`]) until it listens.

use dmw_guest::engine::{self, DaemonConfig, ServiceWatch};
use dmw_guest::{Error, Result, run_root, sh_quote};

/// The OpenRC service of the engine.
pub const SERVICE: &str = "docker";
/// Where Alpine's /etc/init.d/docker reads its settings (`DOCKER_OPTS`, `DOCKERD_BINARY`).
pub const CONF_PATH: &str = "/etc/conf.d/docker";
/// The dockerd that /etc/init.d/docker runs when `DOCKERD_BINARY` is unset.
const DEFAULT_DOCKERD: &str = "/usr/bin/dockerd";
/// Prints the service's state word (`started`, `stopped`, `crashed`...) from
/// `rc-service docker status` (" * status: started").
pub const STATE: &str = "rc-service docker status 2>&1 | sed -n 's/.*status: *//p' | tail -n 1";
/// The service's status and the end of dockerd's log, for error messages.
pub const DIAGNOSTICS: &str = "rc-service docker status 2>&1; \
    echo \"--- tail -n 30 /var/log/docker.log ---\"; tail -n 30 /var/log/docker.log 2>&1";

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
    text.push_str(&engine::shell_exports(cfg.env)?);
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

/// Restart the engine and wait until it listens on `port` with TLS; stops early when
/// OpenRC reports the service stopped or crashed.
pub fn restart_and_wait(port: u16) -> Result<()> {
    let advice = format!(
        "Fix the cause the log below shows (a conflicting /etc/docker/daemon.json, a bad engine \
         option, another program on port {port}...), then provision the machine again."
    );
    engine::restart_service_and_wait(
        &format!("rc-service {SERVICE} restart"),
        port,
        &ServiceWatch {
            service: "the docker service",
            state_command: STATE,
            stopped: &[("stopped", "stopped"), ("crashed", "crashed")],
            diagnostics: DIAGNOSTICS,
            reset: "",
            advice: &advice,
        },
    )
}
