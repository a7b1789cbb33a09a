//! What every command works with: the store, the plugin runtime (started on first use) and
//! the global flags.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};

use crate::net::ssh::{HostKeyPolicy, Target};
use crate::sandbox::capabilities::{Offer, SshLink};
use crate::sandbox::plugin::{self, Driver, Kind, Runtime, Source};
use crate::state::store::{MachineRecord, Store};
use crate::text::report::Reporter;

/// Shared state of one dmw invocation.
pub struct App {
    /// The machine store.
    pub store: Store,
    /// `--debug`.
    pub debug: bool,
    /// `--native-ssh`: interactive shells through russh instead of the system ssh.
    pub native_ssh: bool,
    runtime: OnceLock<Runtime>,
}

impl App {
    /// An app over `store`.
    pub fn new(store: Store, debug: bool) -> App {
        App {
            store,
            debug,
            native_ssh: false,
            runtime: OnceLock::new(),
        }
    }

    /// The plugin runtime, started on first use (commands that need no plugin never pay for it).
    pub fn runtime(&self) -> Result<&Runtime> {
        if let Some(r) = self.runtime.get() {
            return Ok(r);
        }
        let mut r = Runtime::new(&self.store.cache_dir())?;
        r.set_debug(self.debug);
        r.set_grants_file(self.store.grants_file());
        Ok(self.runtime.get_or_init(|| r))
    }

    /// The SSH coordinates stored for a machine.
    pub fn ssh_target(&self, record: &MachineRecord) -> Option<Target> {
        if record.engine_only {
            return None;
        }
        let ep = record.endpoint.as_ref()?;
        let dir = self.store.machine(&record.name);
        Some(Target {
            address: ep.ssh_address.clone(),
            port: ep.ssh_port,
            user: ep.ssh_user.clone(),
            key_path: dir.ssh_key(),
            known_hosts: dir.known_hosts(),
        })
    }

    /// How to check a machine's SSH host key: pinned at create; a machine imported from
    /// Docker Machine (whose store keeps no host key) or created with `--no-provision` pins
    /// it on its first connection.
    pub fn host_key_policy(&self, record: &MachineRecord) -> HostKeyPolicy {
        let known_hosts = self.store.machine(&record.name).known_hosts();
        // First contact: an imported machine, one created with `--no-provision`, or one
        // whose create stopped before SSH first answered (no key pinned yet: it is learnt
        // at the first login, as create would have). A ready machine's pin is required.
        let first_contact = record.imported.is_some()
            || record.never_provisioned
            || record.status != crate::state::store::MachineStatus::Ready;
        if first_contact && !known_hosts.exists() {
            HostKeyPolicy::TrustOnFirstUse
        } else {
            HostKeyPolicy::RequirePinned
        }
    }

    /// An SSH link to a provisioned machine (its host key must already be pinned, see
    /// `host_key_policy`).
    pub fn ssh_link(&self, record: &MachineRecord, report: Arc<Reporter>) -> Option<Arc<SshLink>> {
        let policy = self.host_key_policy(record);
        self.ssh_target(record)
            .map(|t| Arc::new(SshLink::new(t, policy, report)))
    }

    /// Instantiate a machine's driver with its stored state (and SSH, when the machine has an address).
    pub async fn machine_driver(
        &self,
        record: &MachineRecord,
        report: Arc<Reporter>,
    ) -> Result<Driver> {
        let source = Source::from_reference(&record.driver.source, Kind::Driver)
            .with_context(|| format!("machine \"{}\"", record.name))?;
        let (component, grant) = self.runtime()?.load_granted(&source, Kind::Driver)?;
        let mut offer = Offer::new(
            &record.driver.name,
            report.clone(),
            record.driver_state.clone(),
        );
        offer.ssh = self.ssh_link(record, report.clone());
        if grant.has("http")
            && let Some(settings) = &record.http
        {
            // A CA bundle that went away since create must not keep `rm` from working:
            // without it the system's roots apply (a private CA then fails TLS, clearly).
            let root = self.store.root();
            let sender = crate::net::http::Sender::new(settings.clone(), root).or_else(|e| {
                report.warn(&format!(
                    "machine \"{}\": {e:#}; its driver's HTTP requests trust the system's roots only",
                    record.name
                ));
                crate::net::http::Sender::new(
                    crate::net::http::HttpSettings {
                        cacert: None,
                        ..settings.clone()
                    },
                    root,
                )
            })?;
            offer.http = Some(Arc::new(sender));
        }
        offer.machine_dir = Some(self.store.machine(&record.name));
        offer.image_cache = Some(self.store.images_dir());
        if record.generated_key
            && let Ok(public) =
                std::fs::read_to_string(self.store.machine(&record.name).ssh_public_key())
        {
            let _ = offer.public_key.set(public.trim().to_string());
        }
        self.runtime()?.driver(&component, &grant, offer).await
    }

    /// Instantiate a driver from a source with empty state (for `create`), for no machine
    /// yet (enough for its flags): `process` and `files` answer `denied`.
    pub async fn new_driver(&self, source: &Source, report: Arc<Reporter>) -> Result<Driver> {
        self.fresh_driver(source, report, None).await
    }

    /// Instantiate a driver from a source with empty state for machine `name`, whose
    /// directory was claimed (`create`): lent `process` and `files` when granted.
    pub async fn new_machine_driver(
        &self,
        source: &Source,
        report: Arc<Reporter>,
        name: &str,
    ) -> Result<Driver> {
        self.fresh_driver(source, report, Some(name)).await
    }

    async fn fresh_driver(
        &self,
        source: &Source,
        report: Arc<Reporter>,
        machine: Option<&str>,
    ) -> Result<Driver> {
        let (component, grant) = self.runtime()?.load_granted(source, Kind::Driver)?;
        let label = match source {
            Source::Builtin(b) => b.name.to_string(),
            Source::File(p) | Source::Installed { path: p, .. } => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "driver".into()),
        };
        let mut offer = Offer::new(&label, report, BTreeMap::new());
        if let Some(name) = machine {
            offer.machine_dir = Some(self.store.machine(name));
            offer.image_cache = Some(self.store.images_dir());
        }
        let mut driver = self.runtime()?.driver(&component, &grant, offer).await?;
        let info = driver.info().await?;
        driver.rename(&info.name);
        Ok(driver)
    }
}

/// Re-exported for commands that name plugin kinds.
pub use plugin::Kind as PluginKind;
