//! A running driver plugin: typed calls with deadlines.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, anyhow};
use wasmtime::Store;

use super::{HostState, with_deadline};
use crate::capabilities::store::StoreCtx;
use crate::contract::v0_1::driver::DriverPlugin;
use crate::contract::v0_1::driver::exports::dmw::plugin::driver as wit;
use crate::contract::v0_1::types;

pub use wit::{DriverInfo, Flag, FlagKind, FlagValue, MachineState, SshDetails};

/// Limit for quick calls (info, flags, state, address).
const QUICK: Duration = Duration::from_secs(60);
/// Limit for calls that talk to a provider (create, start, stop, remove).
const SLOW: Duration = Duration::from_secs(30 * 60);

/// One instance of a driver plugin.
pub struct Driver {
    store: Store<HostState>,
    bindings: DriverPlugin,
    name: String,
}

/// A driver's answer: either the call failed in the host (trap, timeout) or the plugin said no.
fn plugin_err(name: &str, func: &str, e: types::Error) -> anyhow::Error {
    anyhow!("{}", crate::plugin::describe_error(name, func, &e))
}

/// The calls that end things: never refused for the plugin directory's quota (so a
/// machine whose directory is full can still be stopped and removed).
pub(crate) const ENDING_CALLS: &[&str] = &["stop", "kill", "remove"];

macro_rules! unit_call {
    ($(#[$doc:meta])* $method:ident, $call:ident, $label:literal, $limit:expr) => {
        $(#[$doc])*
        pub async fn $method(&mut self) -> Result<()> {
            if !ENDING_CALLS.contains(&$label) {
                self.check_quota($label)?;
            }
            let name = self.name.clone();
            let r = with_deadline(&name, $label, $limit, self.bindings.dmw_plugin_driver().$call(&mut self.store)).await?;
            r.map_err(|e| plugin_err(&name, $label, e))
        }
    };
}

impl Driver {
    pub(super) fn new(store: Store<HostState>, bindings: DriverPlugin) -> Driver {
        let name = store.data().lent.plugin().to_string();
        Driver {
            store,
            bindings,
            name,
        }
    }

    /// Use `name` (the driver's own, from `info`; made inert and short, as plugin text)
    /// in messages from now on.
    pub fn rename(&mut self, name: &str) {
        let name = crate::sanitize::plugin_text(name, crate::sanitize::NAME_LIMIT);
        self.name = name.clone();
        self.store.data_mut().lent.rename(&name);
    }

    /// What the driver declared, as granted (its secret flags, declared environment
    /// variables, HTTP hosts and TLS flags).
    pub fn declaration(&self) -> &crate::plugin::declaration::Declaration {
        &self.store.data().declaration
    }

    /// Whether the driver is built in, or a file byte for byte a built-in driver (decided on
    /// the bytes that were loaded).
    pub fn is_builtin(&self) -> bool {
        self.store.data().builtin
    }

    /// The driver's name (its own, from `info`, once [`Driver::rename`] was called).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Send the driver's log messages to `report` from now on.
    pub fn set_report(&mut self, report: std::sync::Arc<crate::report::Reporter>) {
        let lent = &mut self.store.data_mut().lent;
        if let Some(http) = lent.get_mut::<crate::capabilities::http::HttpCtx>() {
            http.set_report(report.clone());
        }
        if let Some(log) = lent.get_mut::<crate::capabilities::log::LogCtx>() {
            log.report = report;
        }
    }

    /// Whether the instance was granted `capability`.
    pub fn granted(&self, capability: &str) -> bool {
        self.store.data().granted.iter().any(|c| c == capability)
    }

    /// Send the driver's HTTP requests through `sender` (its allowed hosts and TLS settings
    /// for this machine) from now on; nothing for a driver not granted `http`.
    pub fn set_http(&mut self, sender: std::sync::Arc<crate::net::Sender>) {
        let lent = &mut self.store.data_mut().lent;
        if let Some(files) = lent.get_mut::<crate::capabilities::files::FilesCtx>() {
            files.set_http(sender.clone());
        }
        if let Some(http) = lent.get_mut::<crate::capabilities::http::HttpCtx>() {
            http.set_sender(sender);
        }
    }

    /// The values the user typed for the driver's flags on this command: the files among
    /// them may be the machine's VM image, kernel or initramfs (`vm`); nothing for a
    /// driver not granted `vm`.
    pub fn name_user_paths(&mut self, typed: &[String]) {
        if let Some(vm) = self
            .store
            .data_mut()
            .lent
            .get_mut::<crate::capabilities::vm::VmCtx>()
        {
            vm.name_user_paths(typed);
        }
    }

    /// Offer the driver the machine's public SSH key, made by the host for it (lent to a
    /// driver granted `keys`). A key offered before stays.
    pub fn offer_public_key(&mut self, key: &str) {
        let _ = self.store.data().public_key.set(key.to_string());
    }

    /// The instance's store data (tests).
    #[cfg(test)]
    pub(crate) fn store_data(&self) -> &HostState {
        self.store.data()
    }

    /// The driver's key-value state (to persist in the machine record).
    pub fn state_kv(&self) -> BTreeMap<String, String> {
        self.store
            .data()
            .lent
            .get::<StoreCtx>()
            .map(|s| s.kv.clone())
            .unwrap_or_default()
    }

    /// The machine and the plugin's directory of it, when the driver has one (lent `files`
    /// or `process`).
    fn plugin_dir(&self) -> Option<(String, std::path::PathBuf)> {
        let lent = &self.store.data().lent;
        if let Some(files) = lent.get::<crate::capabilities::files::FilesCtx>() {
            return Some((files.machine().to_string(), files.dir().to_path_buf()));
        }
        lent.get::<crate::capabilities::process::ProcessCtx>()
            .map(|p| (p.machine().to_string(), p.plugin_dir()))
    }

    /// Refuse `call` when the plugin's directory of the machine is over its quota
    /// ([`crate::sandbox::quota`]).
    fn check_quota(&self, call: &str) -> Result<()> {
        match self.plugin_dir() {
            Some((machine, dir)) => crate::sandbox::quota::check(&machine, &dir, call),
            None => Ok(()),
        }
    }

    /// Name and description.
    pub async fn info(&mut self) -> Result<DriverInfo> {
        with_deadline(
            &self.name.clone(),
            "info",
            QUICK,
            self.bindings.dmw_plugin_driver().call_info(&mut self.store),
        )
        .await
    }

    /// The flags it adds to `create`.
    pub async fn create_flags(&mut self) -> Result<Vec<Flag>> {
        with_deadline(
            &self.name.clone(),
            "create-flags",
            QUICK,
            self.bindings
                .dmw_plugin_driver()
                .call_create_flags(&mut self.store),
        )
        .await
    }

    /// Hand it the create flags.
    pub async fn set_config(&mut self, machine: &str, flags: &[FlagValue]) -> Result<()> {
        self.check_quota("set-config")?;
        let name = self.name.clone();
        let r = with_deadline(
            &name,
            "set-config",
            QUICK,
            self.bindings
                .dmw_plugin_driver()
                .call_set_config(&mut self.store, machine, flags),
        )
        .await?;
        r.map_err(|e| plugin_err(&name, "set-config", e))
    }

    unit_call!(
        /// Check that create can work.
        pre_create_check, call_pre_create_check, "pre-create-check", QUICK);
    unit_call!(
        /// Make the machine.
        create, call_create, "create", SLOW);
    unit_call!(
        /// Start the machine.
        start, call_start, "start", SLOW);
    unit_call!(
        /// Stop the machine.
        stop, call_stop, "stop", SLOW);
    unit_call!(
        /// Restart the machine.
        restart, call_restart, "restart", SLOW);
    unit_call!(
        /// Kill the machine.
        kill, call_kill, "kill", SLOW);
    unit_call!(
        /// Delete the machine at the provider.
        remove, call_remove, "remove", SLOW);

    /// The machine's state.
    pub async fn state(&mut self) -> Result<MachineState> {
        self.check_quota("state")?;
        let name = self.name.clone();
        let r = with_deadline(
            &name,
            "state",
            QUICK,
            self.bindings
                .dmw_plugin_driver()
                .call_state(&mut self.store),
        )
        .await?;
        r.map_err(|e| plugin_err(&name, "state", e))
    }

    /// The machine's address.
    pub async fn address(&mut self) -> Result<String> {
        self.check_quota("address")?;
        let name = self.name.clone();
        let r = with_deadline(
            &name,
            "address",
            QUICK,
            self.bindings
                .dmw_plugin_driver()
                .call_address(&mut self.store),
        )
        .await?;
        r.map_err(|e| plugin_err(&name, "address", e))
    }

    /// How to reach it over SSH.
    pub async fn ssh_endpoint(&mut self) -> Result<SshDetails> {
        self.check_quota("ssh-endpoint")?;
        let name = self.name.clone();
        let r = with_deadline(
            &name,
            "ssh-endpoint",
            QUICK,
            self.bindings
                .dmw_plugin_driver()
                .call_ssh_endpoint(&mut self.store),
        )
        .await?;
        r.map_err(|e| plugin_err(&name, "ssh-endpoint", e))
    }

    /// The engine port.
    pub async fn engine_port(&mut self) -> Result<u16> {
        with_deadline(
            &self.name.clone(),
            "engine-port",
            QUICK,
            self.bindings
                .dmw_plugin_driver()
                .call_engine_port(&mut self.store),
        )
        .await
    }
}

/// The Docker Machine name of a state.
pub fn state_name(s: MachineState) -> &'static str {
    match s {
        MachineState::None => "",
        MachineState::Running => "Running",
        MachineState::Paused => "Paused",
        MachineState::Saved => "Saved",
        MachineState::Stopped => "Stopped",
        MachineState::Stopping => "Stopping",
        MachineState::Starting => "Starting",
        MachineState::Error => "Error",
    }
}
