//! Waiting until the engine listens, for any init system: systemd (see
//! [`super::systemd::wait_listening`]), sysvinit (el6), OpenRC (alpine), and hosts whose
//! engine runs without a service manager dmw can ask (rancheros, boot2docker).

use crate::cmd::{command_error, output_root};
use crate::{Error, Result, debug, host, info, warn};
use std::time::Duration;

/// How many times [`wait_service_listening`] looks for the port.
pub const LISTEN_ATTEMPTS: u32 = 60;
/// How long [`wait_service_listening`] waits between looks.
pub const LISTEN_INTERVAL: Duration = Duration::from_secs(1);
/// Lists the listening TCP sockets: `ss`, else `netstat`, else the kernel's tables.
pub const LISTING: &str = "if command -v ss >/dev/null 2>&1; then ss -tln; \
    elif command -v netstat >/dev/null 2>&1; then netstat -tln; \
    else cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; fi";
/// How long a failed restart waits before its one retry (what the engine needs may still be
/// coming up on a freshly booted host: containerd, the network, a mount).
pub const RETRY_PAUSE: Duration = Duration::from_secs(5);
/// Starts the line of a poll's output that carries the service's state.
pub const STATE_MARK: &str = "dmw-unit-state";

/// How to watch the engine's service while waiting for it to listen, and what to say when
/// it does not.
#[derive(Clone, Copy, Debug)]
pub struct ServiceWatch<'a> {
    /// The service as messages name it: `docker.service`, `the docker service`.
    pub service: &'a str,
    /// A root shell command printing the service's state as one word (`active`, `crashed`);
    /// empty when the host has no service manager to ask.
    pub state_command: &'a str,
    /// States after which waiting cannot help, each with how the error says it (`failed` →
    /// `failed to start`: "docker.service failed to start").
    pub stopped: &'a [(&'a str, &'a str)],
    /// A root shell command whose output explains a failure (status, log tail).
    pub diagnostics: &'a str,
    /// A root shell command run before a failed restart is retried, so the service manager
    /// tries again (systemd: `reset-failed`, past a start limit); empty when none is needed.
    pub reset: &'a str,
    /// The last line of the errors: what the user should do.
    pub advice: &'a str,
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

/// The poll: [`LISTING`], then (with a state command) a line `dmw-unit-state <state>`.
pub fn poll_command(watch: &ServiceWatch) -> String {
    if watch.state_command.trim().is_empty() {
        LISTING.to_string()
    } else {
        format!(
            "{LISTING}; echo \"{STATE_MARK} $({})\"",
            watch.state_command
        )
    }
}

/// The state in a poll's output: the rest of its last `dmw-unit-state` line (empty if none).
pub fn poll_state(output: &str) -> String {
    output
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(STATE_MARK))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// The output of the root command `command` (stdout, then any stderr), for error messages.
pub fn diagnostics(command: &str) -> String {
    match output_root(command) {
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
            let err = String::from_utf8_lossy(&out.stderr);
            if !err.trim().is_empty() {
                text.push('\n');
                text.push_str(err.trim_end());
            }
            text
        }
        Err(e) => format!("(could not read the service's status: {})", e.message()),
    }
}

/// Wait until something listens on TCP `port` ([`LISTEN_ATTEMPTS`] × [`LISTEN_INTERVAL`]);
/// stops early when the service reaches a state of `watch.stopped`. The error carries
/// `watch.advice`, then the output of `watch.diagnostics`.
pub fn wait_service_listening(port: u16, watch: &ServiceWatch) -> Result<()> {
    let command = poll_command(watch);
    let mut state = String::new();
    let mut stopped = None;
    for attempt in 1..=LISTEN_ATTEMPTS {
        let out = output_root(&command)?;
        let text = String::from_utf8_lossy(&out.stdout);
        if listening_on(&text, port) {
            debug(&format!("the engine listens on port {port}"));
            return Ok(());
        }
        state = poll_state(&text);
        stopped = watch.stopped.iter().find(|(s, _)| *s == state);
        // The service manager gave up on it: waiting longer cannot help.
        if stopped.is_some() {
            break;
        }
        if attempt < LISTEN_ATTEMPTS {
            host::sleep(LISTEN_INTERVAL);
        }
    }
    let why = match stopped {
        Some((_, how)) => format!("{} {how}", watch.service),
        None => {
            let secs = LISTEN_INTERVAL.as_secs() * u64::from(LISTEN_ATTEMPTS);
            let mut why = format!("nothing listens on port {port} after {secs} s");
            if !watch.state_command.trim().is_empty() {
                let state = if state.is_empty() { "unknown" } else { &state };
                why.push_str(&format!(" ({} is {state})", watch.service));
            }
            why
        }
    };
    // The advice before the long status and log, which a bounded message may cut.
    Err(Error::Failed(format!(
        "Docker Engine did not come up with TLS on port {port}: {why}.\n{}\n{}",
        watch.advice,
        diagnostics(watch.diagnostics)
    )))
}

/// The line of an engine's log that says why it did not start: dockerd's fatal line
/// (`failed to start daemon: …`, `unable to configure the Docker daemon …`, `level=fatal`),
/// else its last error that is not gRPC's reconnect noise, else its last line that is not
/// routine (`failed to load listeners: …`); the journal's
/// `date host dockerd[pid]: ` prefix taken off. `None` when the log says nothing of use.
pub fn cause_line(log: &str) -> Option<String> {
    let body = |line: &str| -> String {
        let line = line.trim();
        let text = match line.find("]: ") {
            Some(i) if line[..i].contains('[') => &line[i + 3..],
            _ => line,
        };
        text.chars().take(400).collect()
    };
    let fatal = |l: &&&str| {
        let l = l.to_ascii_lowercase();
        l.contains("failed to start daemon")
            || l.contains("unable to configure the docker daemon")
            || l.contains("error starting daemon")
            || l.contains("level=fatal")
    };
    let error = |l: &&&str| {
        let lower = l.to_ascii_lowercase();
        lower.contains("level=error") && !lower.contains("grpc") && !lower.contains("module=grpc")
    };
    // Else dockerd's last word that is not routine (`failed to load listeners: …`).
    let said = |l: &&&str| {
        let lower = l.to_ascii_lowercase();
        lower.contains("dockerd[")
            && !["grpc", "level=info", "level=warn", "level=debug"]
                .iter()
                .any(|w| lower.contains(w))
    };
    let lines: Vec<&str> = log.lines().collect();
    lines
        .iter()
        .rev()
        .find(fatal)
        .or_else(|| lines.iter().rev().find(error))
        .or_else(|| lines.iter().rev().find(said))
        .map(|l| body(l))
}

/// Run the root command `restart`, then [`wait_service_listening`]. A restart that fails is
/// tried once more after [`RETRY_PAUSE`] (saying why it failed: the log's [`cause_line`]),
/// as a freshly booted host may not have what the engine needs yet; a second failure's error
/// starts with that cause and `watch.advice`, then carries the output of
/// `watch.diagnostics`.
pub fn restart_service_and_wait(restart: &str, port: u16, watch: &ServiceWatch) -> Result<()> {
    info("Restarting docker...");
    let mut out = output_root(restart)?;
    if out.exit_code != 0 {
        let log = diagnostics(watch.diagnostics);
        warn(&format!(
            "{} did not start ({}); trying once more in {} s",
            watch.service,
            cause_line(&log).unwrap_or_else(|| "its log says no more".into()),
            RETRY_PAUSE.as_secs()
        ));
        host::sleep(RETRY_PAUSE);
        if !watch.reset.trim().is_empty() {
            // Its own result does not matter: the restart's does.
            let _ = output_root(watch.reset)?;
        }
        out = output_root(restart)?;
    }
    if out.exit_code != 0 {
        let log = diagnostics(watch.diagnostics);
        let cause = cause_line(&log)
            .map(|c| format!("{} did not start: {c}\n", watch.service))
            .unwrap_or_default();
        // The advice before the long status and log, which a bounded message may cut.
        return Err(Error::Failed(format!(
            "{cause}{}\n{}\n{log}",
            watch.advice,
            command_error(restart, &out).message()
        )));
    }
    wait_service_listening(port, watch)
}
