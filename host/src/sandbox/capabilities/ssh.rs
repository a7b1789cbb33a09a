//! `ssh`: commands and uploads on the machine being worked on, through a host-owned session.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use wasmtime::component::Linker;

use super::{Capability, CapabilityView, Granted, Lend, Lent, Offer, project};
use crate::net::ssh::{HostKeyPolicy, Output, Session, SshError, Target};
use crate::sandbox::contract::v0_1::ssh::{self as wit, Host};
use crate::sandbox::contract::v0_1::types::{Error, ExecOutput};
use crate::text::report::Reporter;

/// A machine that answers commands without SSH (`simulate::Machine`: transcripts and
/// `dmw recipe plan`); a trait, so the capabilities do not depend on the simulator.
pub trait SimulatedMachine: Send + Sync {
    /// Answer a command (as root if `root`).
    fn exec(&self, command: &str, root: bool) -> Output;
    /// Record a file written as root.
    fn upload(&self, path: &str, contents: &[u8], mode: u32);
}

/// The machine the plugins of one command work on: a real one over SSH (opened on first
/// use and shared), or a simulated one (transcript tests, `dmw recipe plan`).
pub struct SshLink {
    target: Target,
    backend: Backend,
    report: Arc<Reporter>,
}

enum Backend {
    Ssh {
        policy: HostKeyPolicy,
        session: Mutex<Option<Arc<Session>>>,
    },
    Simulated(Arc<dyn SimulatedMachine>),
}

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

impl SshLink {
    /// A link to `target`; nothing is opened until first use.
    pub fn new(target: Target, policy: HostKeyPolicy, report: Arc<Reporter>) -> SshLink {
        SshLink {
            target,
            backend: Backend::Ssh {
                policy,
                session: Mutex::new(None),
            },
            report,
        }
    }

    /// A link to a simulated machine logged in as `user`.
    pub fn simulated(
        machine: Arc<dyn SimulatedMachine>,
        user: &str,
        report: Arc<Reporter>,
    ) -> SshLink {
        let target = Target {
            address: "simulated".into(),
            port: 22,
            user: user.into(),
            key_path: Default::default(),
            known_hosts: Default::default(),
        };
        SshLink {
            target,
            backend: Backend::Simulated(machine),
            report,
        }
    }

    /// Whether the machine is simulated (no real host, no key material needed).
    pub fn is_simulated(&self) -> bool {
        matches!(self.backend, Backend::Simulated(_))
    }

    /// The machine's SSH coordinates.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The open session, connecting first if needed.
    pub async fn session(&self) -> Result<Arc<Session>, SshError> {
        let (policy, session) = match &self.backend {
            Backend::Ssh { policy, session } => (*policy, session),
            Backend::Simulated(_) => {
                return Err(SshError::Session {
                    addr: "simulated".into(),
                    reason: "a simulated machine has no SSH session".into(),
                });
            }
        };
        let mut guard = session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let s = Arc::new(Session::connect(&self.target, policy, CONNECT_TIMEOUT).await?);
        *guard = Some(s.clone());
        Ok(s)
    }

    /// Forget the session (after the machine rebooted or the link broke).
    pub async fn reset(&self) {
        if let Backend::Ssh { session, .. } = &self.backend
            && let Some(s) = session.lock().await.take()
        {
            s.close().await;
        }
    }

    /// Run a command (as root if `root`), recording it and its result in the provisioning log.
    pub async fn exec(&self, command: &str, root: bool) -> Result<Output, SshError> {
        let result = match &self.backend {
            Backend::Simulated(m) => Ok(m.exec(command, root)),
            Backend::Ssh { .. } => {
                let session = self.session().await?;
                let r = if root {
                    session.exec_root(command).await
                } else {
                    session.exec(command).await
                };
                if matches!(r, Err(SshError::Session { .. })) {
                    // The connection may have dropped (reboot, link cut): open a new one next time.
                    self.reset().await;
                }
                r
            }
        };
        self.report.remote(command, root, &result);
        result
    }

    /// Upload a file as root; only its path, size and mode are logged.
    pub async fn upload(&self, path: &str, contents: &[u8], mode: u32) -> Result<(), SshError> {
        let result = match &self.backend {
            Backend::Simulated(m) => {
                m.upload(path, contents, mode);
                Ok(())
            }
            Backend::Ssh { .. } => self.session().await?.upload(path, contents, mode).await,
        };
        self.report.upload(path, contents.len(), mode, &result);
        result
    }

    /// Whether the machine's SSH port accepts connections within `timeout`.
    pub async fn reachable(&self, timeout: Duration) -> bool {
        match &self.backend {
            Backend::Simulated(_) => true,
            Backend::Ssh { .. } => {
                crate::net::ssh::reachable(&self.target.address, self.target.port, timeout).await
            }
        }
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

/// The `ssh` capability (every plugin has it by default, to the machine being worked on).
pub const fn capability<T: CapabilityView>() -> Capability<T> {
    Capability {
        name: "ssh",
        link: add_to_linker::<T>,
        lend,
        wasi: super::no_wasi,
    }
}

/// The one machine a plugin may reach.
pub struct SshCtx {
    /// The link to it.
    pub link: Arc<SshLink>,
}

/// Link `ssh` through [`SshCtx`].
pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Lend<SshCtx>>(linker, project::<T, SshCtx>)
}

fn lend(offer: &Offer, lent: &mut Lent) {
    if let Some(link) = &offer.ssh {
        lent.insert(SshCtx { link: link.clone() });
    }
}

impl Granted<'_, SshCtx> {
    fn link(&self) -> Result<Arc<SshLink>, Error> {
        match &self.ctx {
            Some(c) => Ok(c.link.clone()),
            None => Err(self.denied("ssh")),
        }
    }
}

impl Host for Granted<'_, SshCtx> {
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
        Ok(link
            .reachable(Duration::from_millis(timeout_ms.min(60_000) as u64))
            .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::capabilities::Lent;
    use crate::usecase::simulate::Machine;
    use crate::usecase::simulate::transcript::Transcript;

    #[tokio::test]
    async fn reachable_asks_the_link_so_a_simulated_machine_is_reachable() {
        let report = Arc::new(Reporter::quiet(false));
        let machine = Arc::new(Machine::new(&Transcript::default()));
        let link = SshLink::simulated(machine, "root", report.clone());
        let mut lent = Lent::new("test");
        lent.insert(SshCtx {
            link: Arc::new(link),
        });
        // The simulated machine's address is the literal "simulated": a TCP probe of it
        // would fail; the link knows the machine answers.
        let reachable = Host::reachable(&mut lent.granted::<SshCtx>(), 5_000)
            .await
            .expect("host call");
        assert!(reachable);
    }
}
