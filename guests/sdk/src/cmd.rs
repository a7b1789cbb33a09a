//! Running commands on the target and waiting for things to happen there.

use crate::{Error, ExecOutput, Result, debug, host};
use std::time::Duration;

/// How many trailing lines of a failed command's output go into its error.
const TAIL_LINES: usize = 20;

/// Quote `s` as one POSIX shell word (single quotes; `'` becomes `'\''`); shared with the
/// host (crate `dmw-text`), so both sides quote alike.
pub use dmw_text::sh_quote;

/// The last `n` non-empty lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The error for `command` having exited with a non-zero status, in Docker Machine's shape:
/// the command, the exit status and the last lines of its stderr (or stdout if stderr is empty).
pub fn command_error(command: &str, out: &ExecOutput) -> Error {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = if stderr.trim().is_empty() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        stderr.into_owned()
    };
    let status = if out.exit_code < 0 {
        "killed by a signal".to_string()
    } else {
        format!("exit status {}", out.exit_code)
    };
    Error::Failed(format!(
        "ssh command error:\ncommand : {command}\nerr     : {status}\noutput  : {}",
        tail(&text, TAIL_LINES)
    ))
}

/// stdout of `out` as text when it exited 0, else [`command_error`].
fn stdout_if_ok(command: &str, out: ExecOutput) -> Result<String> {
    if out.exit_code == 0 {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(command_error(command, &out))
    }
}

/// Run `command` as the SSH user and return its raw output whatever its exit status.
pub fn output(command: &str) -> Result<ExecOutput> {
    debug(&format!("running: {command}"));
    host::exec(command)
}

/// Run `command` as root and return its raw output whatever its exit status.
pub fn output_root(command: &str) -> Result<ExecOutput> {
    debug(&format!("running as root: {command}"));
    host::exec_root(command)
}

/// Run `command` as the SSH user; its stdout on exit 0, else an error naming it.
pub fn run(command: &str) -> Result<String> {
    stdout_if_ok(command, output(command)?)
}

/// Run `command` as root; its stdout on exit 0, else an error naming it.
pub fn run_root(command: &str) -> Result<String> {
    stdout_if_ok(command, output_root(command)?)
}

/// Whether `command` (a probe, as the SSH user) exits 0.
pub fn status(command: &str) -> Result<bool> {
    Ok(output(command)?.exit_code == 0)
}

/// Whether `command` (a probe, as root) exits 0.
pub fn status_root(command: &str) -> Result<bool> {
    Ok(output_root(command)?.exit_code == 0)
}

/// How many times the package-manager helpers try a command while another program holds
/// the package database's lock (apt/dpkg, zypper, pacman, apk).
pub const LOCK_ATTEMPTS: u32 = 30;
/// The pause between those tries.
pub const LOCK_INTERVAL: Duration = Duration::from_secs(5);

/// Run `command` as root, up to `attempts` times `interval` apart while it fails and
/// `retry_if` says the failure is passing (e.g. a held package-manager lock); the output of
/// its last run, whatever its exit status, for callers that read the exit code themselves.
pub fn output_root_retrying(
    command: &str,
    attempts: u32,
    interval: Duration,
    retry_if: impl Fn(&ExecOutput) -> bool,
) -> Result<ExecOutput> {
    let mut attempt = 1;
    loop {
        let out = output_root(command)?;
        if out.exit_code == 0 || attempt >= attempts || !retry_if(&out) {
            return Ok(out);
        }
        debug(&format!(
            "`{command}` failed (attempt {attempt} of {attempts}); retrying in {} s",
            interval.as_secs()
        ));
        attempt += 1;
        host::sleep(interval);
    }
}

/// Run `command` as root, retrying like [`output_root_retrying`]; its stdout on exit 0,
/// else an error naming it.
pub fn run_root_retrying(
    command: &str,
    attempts: u32,
    interval: Duration,
    retry_if: impl Fn(&ExecOutput) -> bool,
) -> Result<String> {
    stdout_if_ok(
        command,
        output_root_retrying(command, attempts, interval, retry_if)?,
    )
}

/// Call `probe` up to `attempts` times, `interval` apart, until it returns `Ok(true)`.
///
/// Host errors of kind `unreachable` or `failed` count as "not yet" (the last one is kept
/// for the final error); `denied`, `invalid-input` and `unsupported` stop at once.
pub fn wait_until(
    what: &str,
    attempts: u32,
    interval: Duration,
    mut probe: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let mut last_error: Option<Error> = None;
    for attempt in 1..=attempts.max(1) {
        match probe() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e @ (Error::Unreachable(_) | Error::Failed(_))) => last_error = Some(e),
            Err(e) => return Err(e),
        }
        if attempt < attempts {
            host::sleep(interval);
        }
    }
    let waited = interval.as_secs_f64() * f64::from(attempts.saturating_sub(1));
    let mut message =
        format!("timed out waiting for {what} ({attempts} attempts over {waited:.0} s)");
    if let Some(e) = last_error {
        message.push_str(&format!("; last error: {}", e.message()));
    }
    Err(Error::Failed(message))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::mock;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("abc-1.2/x"), "abc-1.2/x");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(sh_quote("a\nb"), "'a\nb'");
    }

    #[test]
    fn error_shape() {
        let out = ExecOutput {
            exit_code: 100,
            stdout: b"ignored".to_vec(),
            stderr: (1..=30)
                .map(|i| format!("line {i}\n"))
                .collect::<String>()
                .into_bytes(),
        };
        let Error::Failed(m) = command_error("apt-get update", &out) else {
            panic!("not failed")
        };
        assert!(m.starts_with("ssh command error:\ncommand : apt-get update\nerr     : exit status 100\noutput  : line 11\n"));
        assert!(m.ends_with("line 30"));
        let out = ExecOutput {
            exit_code: -1,
            stdout: b"out".to_vec(),
            stderr: vec![],
        };
        let Error::Failed(m) = command_error("x", &out) else {
            panic!("not failed")
        };
        assert!(m.contains("killed by a signal") && m.ends_with("output  : out"));
    }

    #[test]
    fn run_and_status() {
        mock::reset();
        mock::on_exec(|cmd, _| {
            Ok(if cmd == "true" {
                (0, "yes\n".into(), String::new())
            } else {
                (1, String::new(), "no".into())
            })
        });
        assert_eq!(run("true").ok().as_deref(), Some("yes\n"));
        assert!(
            matches!(run_root("false"), Err(Error::Failed(m)) if m.contains("command : false"))
        );
        assert_eq!(status("true").ok(), Some(true));
        assert_eq!(status_root("false").ok(), Some(false));
        assert_eq!(mock::commands().iter().filter(|(_, root)| *root).count(), 2);
    }

    #[test]
    fn retries_only_passing_failures() {
        mock::reset();
        let mut n = 0;
        mock::on_exec(move |_, _| {
            n += 1;
            Ok(if n < 3 {
                (100, String::new(), "Could not get lock".into())
            } else {
                (0, "ok".into(), String::new())
            })
        });
        let lock =
            |o: &ExecOutput| String::from_utf8_lossy(&o.stderr).contains("Could not get lock");
        assert_eq!(
            run_root_retrying("apt", 5, Duration::from_secs(2), lock)
                .ok()
                .as_deref(),
            Some("ok")
        );
        assert_eq!(mock::sleeps().len(), 2);
        mock::reset();
        mock::on_exec(|_, _| Ok((1, String::new(), "other".into())));
        assert!(run_root_retrying("apt", 5, Duration::from_secs(2), lock).is_err());
        assert_eq!(mock::commands().len(), 1);
    }

    #[test]
    fn retrying_output_returns_the_last_run() {
        mock::reset();
        mock::on_exec(|_, _| Ok((7, String::new(), "System management is locked".into())));
        let locked = |o: &ExecOutput| o.exit_code == 7;
        let out = output_root_retrying("zypper refresh", 3, LOCK_INTERVAL, locked).expect("ran");
        assert_eq!(out.exit_code, 7, "the caller sees the last failure");
        assert_eq!(mock::commands().len(), 3);
        assert_eq!(mock::sleeps(), vec![LOCK_INTERVAL; 2]);
        mock::reset();
        mock::on_exec(|_, _| Ok((104, String::new(), "not found".into())));
        let out = output_root_retrying("zypper install x", 3, LOCK_INTERVAL, locked).expect("ran");
        assert_eq!(out.exit_code, 104);
        assert!(mock::sleeps().is_empty(), "other failures are not retried");
    }

    #[test]
    fn waiting() {
        mock::reset();
        let mut n = 0;
        assert!(
            wait_until("x", 5, Duration::from_secs(1), || {
                n += 1;
                Ok(n == 3)
            })
            .is_ok()
        );
        assert_eq!(mock::sleeps().len(), 2);
        let r = wait_until("the engine", 3, Duration::from_secs(2), || {
            Err(Error::Unreachable("down".into()))
        });
        assert!(
            matches!(r, Err(Error::Failed(m)) if m.contains("the engine") && m.contains("last error: down"))
        );
        let r = wait_until("x", 3, Duration::from_secs(1), || {
            Err(Error::Denied("no".into()))
        });
        assert!(matches!(r, Err(Error::Denied(_))));
    }
}
