//! The waits shared by create, the re-runs and the power actions: for SSH to log in, for
//! the engine to answer over mutual TLS, and how long each may take (environment variables).

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use crate::net::ssh::{SshError, Target};
use crate::sandbox::capabilities::SshLink;
use crate::state::store::{MachineRecord, Store};

/// Environment variable: how long to wait for SSH, in seconds (default `SSH_WAIT_SECS`).
pub const SSH_WAIT_ENV: &str = "DMW_SSH_TIMEOUT";
/// How long to wait for SSH by default, in seconds: create and every re-run alike.
pub const SSH_WAIT_SECS: u64 = 180;
/// Environment variable: how long to wait for the engine to answer over TLS, in seconds
/// (default `ENGINE_WAIT_SECS`).
pub const ENGINE_WAIT_ENV: &str = "DMW_ENGINE_TIMEOUT";
/// How long to wait for the engine by default, in seconds.
pub const ENGINE_WAIT_SECS: u64 = 90;

/// A duration in seconds from environment variable `var`, else `default_secs`.
pub fn wait_env(var: &str, default_secs: u64) -> Duration {
    Duration::from_secs(
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default_secs),
    )
}

/// Retry logging in until it works, the deadline passes, or the error cannot improve by waiting.
pub async fn wait_for_ssh(link: &SshLink, limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        match link.session().await {
            Ok(_) => return Ok(()),
            Err(e @ (SshError::Unreachable { .. } | SshError::Session { .. })) => {
                if start.elapsed() >= limit {
                    let t: &Target = link.target();
                    bail!(
                        "Too many retries waiting for SSH to be available: {}:{} did not accept an SSH login within {}s. Last error: {e}. Check the address and port, that sshd runs there, and that no firewall blocks it.",
                        t.address,
                        t.port,
                        limit.as_secs()
                    );
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Wait until the engine answers `GET /version` over mutual TLS; returns its version.
pub async fn wait_for_engine(
    store: &Store,
    record: &MachineRecord,
    limit: Duration,
) -> Result<String> {
    let url = record
        .url()
        .ok_or_else(|| anyhow!("the machine has no address"))?;
    let tls = crate::net::engine_api::ClientTls::load(store.machine(&record.name).path())?;
    let start = Instant::now();
    loop {
        match crate::net::engine_api::version(&url, &tls, Duration::from_secs(10)).await {
            Ok(v) => return Ok(v.version),
            Err(e) if start.elapsed() >= limit => {
                bail!(
                    "the Docker engine at {url} did not answer over mutual TLS within {}s: {e}",
                    limit.as_secs()
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}
