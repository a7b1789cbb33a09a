//! A running recipe plugin ([`Instance`] of the recipe bindings): typed calls with
//! deadlines.

use std::time::Duration;

use anyhow::Result;

use super::instance::Instance;
use crate::sandbox::contract::v0_1::recipe::RecipePlugin;
use crate::sandbox::contract::v0_1::recipe::exports::dmw::plugin::recipe as wit;

pub use wit::{EngineConfig, InstallMethod, OsInfo, RecipeInfo};

/// Limit for quick calls.
const QUICK: Duration = Duration::from_secs(60);
/// Limit for installing or upgrading an engine (package downloads).
const INSTALL: Duration = Duration::from_secs(30 * 60);
/// Limit for configuring and restarting an engine.
const CONFIGURE: Duration = Duration::from_secs(10 * 60);

/// One instance of a recipe plugin.
pub type Recipe = Instance<RecipePlugin>;

macro_rules! step_call {
    ($(#[$doc:meta])* $method:ident, $call:ident, $label:literal, $limit:expr, $($arg:ident : $ty:ty),*) => {
        $(#[$doc])*
        pub async fn $method(&mut self, $($arg: $ty),*) -> Result<()> {
            self.answer($label, $limit, |b, s| b.dmw_plugin_recipe().$call(s, $($arg),*)).await
        }
    };
}

impl Instance<RecipePlugin> {
    /// Name and description.
    pub async fn info(&mut self) -> Result<RecipeInfo> {
        self.call("info", QUICK, |b, s| b.dmw_plugin_recipe().call_info(s))
            .await
    }

    /// How well it fits `os` (0: not at all).
    pub async fn applies(&mut self, os: &OsInfo) -> Result<u32> {
        self.call("applies", QUICK, |b, s| {
            b.dmw_plugin_recipe().call_applies(s, os)
        })
        .await
    }

    step_call!(
        /// Set the hostname.
        set_hostname, call_set_hostname, "set-hostname", QUICK, name: &str);
    step_call!(
        /// Install the engine.
        install_engine, call_install_engine, "install-engine", INSTALL, config: &EngineConfig);
    step_call!(
        /// Configure TLS and restart the engine.
        configure_engine, call_configure_engine, "configure-engine", CONFIGURE, config: &EngineConfig);
    step_call!(
        /// Upgrade the engine.
        upgrade_engine, call_upgrade_engine, "upgrade-engine", INSTALL, config: &EngineConfig);
    step_call!(
        /// Restart the engine.
        restart_engine, call_restart_engine, "restart-engine", CONFIGURE,);
}
