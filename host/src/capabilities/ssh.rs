//! `ssh`: commands and uploads on the machine being worked on, through a host-owned session.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::plugin::HostState;
use crate::plugin::bindings::v0_1::ssh::Host;
use crate::plugin::bindings::v0_1::types::{Error, ExecOutput};
use crate::report::Reporter;
use crate::ssh::{HostKeyPolicy, Output, Session, SshError, Target};

/// A lazily opened SSH session to one machine, shared by the plugins working on it.
pub struct SshLink {
    target: Target,
    policy: HostKeyPolicy,
    session: Mutex<Option<Arc<Session>>>,
    report: Arc<Reporter>,
}

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

impl SshLink {
    /// A link to `target`; nothing is opened until first use.
    pub fn new(target: Target, policy: HostKeyPolicy, report: Arc<Reporter>) -> SshLink {
        SshLink {
            target,
            policy,
            session: Mutex::new(None),
            report,
        }
    }

    /// The machine's SSH coordinates.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The open session, connecting first if needed.
    pub async fn session(&self) -> Result<Arc<Session>, SshError> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let s = Arc::new(Session::connect(&self.target, self.policy, CONNECT_TIMEOUT).await?);
        *guard = Some(s.clone());
        Ok(s)
    }

    /// Forget the session (after the machine rebooted or the link broke).
    pub async fn reset(&self) {
        if let Some(s) = self.session.lock().await.take() {
            s.close().await;
        }
    }

    /// Run a command (as root if `root`), recording it and its result in the provisioning log.
    pub async fn exec(&self, command: &str, root: bool) -> Result<Output, SshError> {
        let session = self.session().await?;
        let result = if root {
            session.exec_root(command).await
        } else {
            session.exec(command).await
        };
        if matches!(result, Err(SshError::Session { .. })) {
            // The connection may have dropped (reboot, link cut): open a new one next time.
            self.reset().await;
        }
        self.report.remote(command, root, &result);
        result
    }

    /// Upload a file as root; only its path, size and mode are logged.
    pub async fn upload(&self, path: &str, contents: &[u8], mode: u32) -> Result<(), SshError> {
        let session = self.session().await?;
        let result = session.upload(path, contents, mode).await;
        self.report.upload(path, contents.len(), mode, &result);
        result
    }
}

fn to_wit(e: SshError) -> Error {
    match e {
        SshError::Unreachable { .. } => Error::Unreachable(e.to_string()),
        SshError::NoSudo { .. } => Error::Denied(e.to_string()),
        _ => Error::Failed(e.to_string()),
    }
}

fn to_output(o: Output) -> ExecOutput {
    ExecOutput {
        exit_code: o.code,
        stdout: o.stdout,
        stderr: o.stderr,
    }
}

impl HostState {
    fn link(&mut self) -> Result<Arc<SshLink>, Error> {
        self.ctx.host_calls += 1;
        self.ctx.ssh.clone().ok_or_else(|| self.ctx.denied("ssh"))
    }
}

impl Host for HostState {
    async fn exec(&mut self, command: String) -> wasmtime::Result<Result<ExecOutput, Error>> {
        let link = match self.link() {
            Ok(l) => l,
            Err(e) => return Ok(Err(e)),
        };
        Ok(link
            .exec(&command, false)
            .await
            .map(to_output)
            .map_err(to_wit))
    }

    async fn exec_root(&mut self, command: String) -> wasmtime::Result<Result<ExecOutput, Error>> {
        let link = match self.link() {
            Ok(l) => l,
            Err(e) => return Ok(Err(e)),
        };
        Ok(link
            .exec(&command, true)
            .await
            .map(to_output)
            .map_err(to_wit))
    }

    async fn upload(
        &mut self,
        path: String,
        contents: Vec<u8>,
        mode: u32,
    ) -> wasmtime::Result<Result<(), Error>> {
        let link = match self.link() {
            Ok(l) => l,
            Err(e) => return Ok(Err(e)),
        };
        Ok(link.upload(&path, &contents, mode).await.map_err(to_wit))
    }

    async fn reachable(&mut self, timeout_ms: u32) -> wasmtime::Result<bool> {
        let Ok(link) = self.link() else {
            return Ok(false);
        };
        let t = link.target();
        Ok(crate::ssh::reachable(
            &t.address,
            t.port,
            Duration::from_millis(timeout_ms.min(60_000) as u64),
        )
        .await)
    }
}
