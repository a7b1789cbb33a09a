//! Waiting for the engine to listen on a host without systemd (netstat -tln).
//!
//! The sdk's `engine::wait_listening` asks systemd about the unit; RancherOS and boot2docker
//! have none. This belongs in the sdk (`engine::wait_listening_with(port, diagnostics)`).

use dmw_guest::engine::{LISTEN_ATTEMPTS, LISTEN_INTERVAL, listening_on};
use dmw_guest::{Error, Result, debug, host, output_root};

/// Lists the listening TCP sockets: netstat, else ss, else the kernel's tables.
pub const LISTING: &str = "if command -v netstat >/dev/null 2>&1; then netstat -tln; \
    elif command -v ss >/dev/null 2>&1; then ss -tln; \
    else cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; fi";

/// Wait until something listens on TCP `port` ([`LISTEN_ATTEMPTS`] × [`LISTEN_INTERVAL`]).
/// On time-out the error carries the output of `diagnostics` (a root command) and `advice`.
pub fn wait_listening(port: u16, diagnostics: &str, advice: &str) -> Result<()> {
    for attempt in 1..=LISTEN_ATTEMPTS {
        let out = output_root(LISTING)?;
        if listening_on(&String::from_utf8_lossy(&out.stdout), port) {
            debug(&format!("the engine listens on port {port}"));
            return Ok(());
        }
        if attempt < LISTEN_ATTEMPTS {
            host::sleep(LISTEN_INTERVAL);
        }
    }
    let details = match output_root(diagnostics) {
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
            let err = String::from_utf8_lossy(&out.stderr);
            if !err.trim().is_empty() {
                text.push('\n');
                text.push_str(err.trim_end());
            }
            text
        }
        Err(e) => format!("(could not read the engine's log: {})", e.message()),
    };
    let secs = LISTEN_INTERVAL.as_secs() * u64::from(LISTEN_ATTEMPTS);
    Err(Error::Failed(format!(
        "Docker Engine did not come up with TLS on port {port}: nothing listens there after \
         {secs} s.\n{details}\n{advice}"
    )))
}
