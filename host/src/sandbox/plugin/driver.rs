//! A running driver plugin ([`Instance`] of the driver bindings): typed calls with
//! deadlines, refused while the plugin's directory is over its quota.

use std::time::Duration;

use anyhow::Result;

#[cfg(test)]
use super::HostState;
use super::calls::ENDING_CALLS;
use super::instance::Instance;
use crate::sandbox::contract::v0_1::driver::DriverPlugin;
use crate::sandbox::contract::v0_1::driver::exports::dmw::plugin::driver as wit;

pub use wit::{DriverInfo, Flag, FlagKind, FlagValue, MachineState, SshDetails};

/// Limit for quick calls (info, flags, state, address).
const QUICK: Duration = Duration::from_secs(60);
/// Limit for calls that talk to a provider (create, start, stop, remove).
const SLOW: Duration = Duration::from_secs(30 * 60);

/// One instance of a driver plugin.
pub type Driver = Instance<DriverPlugin>;

/// A driver call without arguments that answers `result<$ret, error>`: refused while the
/// plugin's directory is over its quota (but for the calls that end things).
macro_rules! driver_call {
    ($(#[$doc:meta])* $method:ident, $call:ident, $label:literal, $limit:expr, $ret:ty) => {
        $(#[$doc])*
        pub async fn $method(&mut self) -> Result<$ret> {
            if !ENDING_CALLS.contains(&$label) {
                self.check_quota($label)?;
            }
            self.answer($label, $limit, |b, s| b.dmw_plugin_driver().$call(s)).await
        }
    };
}

impl Instance<DriverPlugin> {
    /// Send the driver's HTTP requests through `sender` (its allowed hosts and TLS settings
    /// for this machine) from now on; nothing for a driver not granted `http`.
    pub fn set_http(&mut self, sender: std::sync::Arc<crate::net::http::Sender>) {
        let lent = &mut self.data_mut().lent;
        if let Some(files) = lent.get_mut::<crate::sandbox::capabilities::files::FilesCtx>() {
            files.set_http(sender.clone());
        }
        if let Some(http) = lent.get_mut::<crate::sandbox::capabilities::http::HttpCtx>() {
            http.set_sender(sender);
        }
    }

    /// The values the user typed for the driver's flags on this command: the files among
    /// them may be the machine's VM image, kernel or initramfs (`vm`); nothing for a
    /// driver not granted `vm`.
    pub fn name_user_paths(&mut self, typed: &[String]) {
        if let Some(vm) = self
            .data_mut()
            .lent
            .get_mut::<crate::sandbox::capabilities::vm::VmCtx>()
        {
            vm.name_user_paths(typed);
        }
    }

    /// Offer the driver the machine's public SSH key, made by the host for it (lent to a
    /// driver granted `keys`). A key offered before stays.
    pub fn offer_public_key(&mut self, key: &str) {
        let _ = self.data().public_key.set(key.to_string());
    }

    /// The instance's store data (tests).
    #[cfg(test)]
    pub(crate) fn store_data(&self) -> &HostState {
        self.data()
    }

    /// The machine and the plugin's directory of it, when the driver has one (lent `files`
    /// or `process`).
    fn plugin_dir(&self) -> Option<(String, std::path::PathBuf)> {
        let lent = &self.data().lent;
        if let Some(files) = lent.get::<crate::sandbox::capabilities::files::FilesCtx>() {
            return Some((files.machine().to_string(), files.dir().to_path_buf()));
        }
        lent.get::<crate::sandbox::capabilities::process::ProcessCtx>()
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
        self.call("info", QUICK, |b, s| b.dmw_plugin_driver().call_info(s))
            .await
    }

    /// The flags it adds to `create`.
    pub async fn create_flags(&mut self) -> Result<Vec<Flag>> {
        self.call("create-flags", QUICK, |b, s| {
            b.dmw_plugin_driver().call_create_flags(s)
        })
        .await
    }

    /// Hand it the create flags.
    pub async fn set_config(&mut self, machine: &str, flags: &[FlagValue]) -> Result<()> {
        self.check_quota("set-config")?;
        self.answer("set-config", QUICK, |b, s| {
            b.dmw_plugin_driver().call_set_config(s, machine, flags)
        })
        .await
    }

    driver_call!(
        /// Check that create can work.
        pre_create_check, call_pre_create_check, "pre-create-check", QUICK, ());
    driver_call!(
        /// Make the machine.
        create, call_create, "create", SLOW, ());
    driver_call!(
        /// Start the machine.
        start, call_start, "start", SLOW, ());
    driver_call!(
        /// Stop the machine.
        stop, call_stop, "stop", SLOW, ());
    driver_call!(
        /// Restart the machine.
        restart, call_restart, "restart", SLOW, ());
    driver_call!(
        /// Kill the machine.
        kill, call_kill, "kill", SLOW, ());
    driver_call!(
        /// Delete the machine at the provider.
        remove, call_remove, "remove", SLOW, ());

    driver_call!(
        /// The machine's state.
        state, call_state, "state", QUICK, MachineState);

    driver_call!(
        /// The machine's address.
        address, call_address, "address", QUICK, String);

    driver_call!(
        /// How to reach it over SSH.
        ssh_endpoint, call_ssh_endpoint, "ssh-endpoint", QUICK, SshDetails);

    /// The engine port.
    pub async fn engine_port(&mut self) -> Result<u16> {
        self.call("engine-port", QUICK, |b, s| {
            b.dmw_plugin_driver().call_engine_port(s)
        })
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
