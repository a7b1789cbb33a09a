//! A running recipe plugin: typed calls with deadlines.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, anyhow};
use wasmtime::Store;

use super::{HostState, with_deadline};
use crate::capabilities::store::StoreCtx;
use crate::contract::v0_1::recipe::RecipePlugin;
use crate::contract::v0_1::recipe::exports::dmw::plugin::recipe as wit;

pub use wit::{EngineConfig, InstallMethod, OsInfo, RecipeInfo};

/// Limit for quick calls.
const QUICK: Duration = Duration::from_secs(60);
/// Limit for installing or upgrading an engine (package downloads).
const INSTALL: Duration = Duration::from_secs(30 * 60);
/// Limit for configuring and restarting an engine.
const CONFIGURE: Duration = Duration::from_secs(10 * 60);

/// One instance of a recipe plugin.
pub struct Recipe {
    store: Store<HostState>,
    bindings: RecipePlugin,
    name: String,
}

macro_rules! step_call {
    ($(#[$doc:meta])* $method:ident, $call:ident, $label:literal, $limit:expr, $($arg:ident : $ty:ty),*) => {
        $(#[$doc])*
        pub async fn $method(&mut self, $($arg: $ty),*) -> Result<()> {
            let name = self.name.clone();
            let r = with_deadline(&name, $label, $limit, self.bindings.dmw_plugin_recipe().$call(&mut self.store, $($arg),*)).await?;
            r.map_err(|e| anyhow!("{}", crate::plugin::describe_error(&name, $label, &e)))
        }
    };
}

impl Recipe {
    pub(super) fn new(store: Store<HostState>, bindings: RecipePlugin) -> Recipe {
        let name = store.data().lent.plugin().to_string();
        Recipe {
            store,
            bindings,
            name,
        }
    }

    /// The recipe's key-value state.
    pub fn state_kv(&self) -> BTreeMap<String, String> {
        self.store
            .data()
            .lent
            .get::<StoreCtx>()
            .map(|s| s.kv.clone())
            .unwrap_or_default()
    }

    /// Name and description.
    pub async fn info(&mut self) -> Result<RecipeInfo> {
        with_deadline(
            &self.name.clone(),
            "info",
            QUICK,
            self.bindings.dmw_plugin_recipe().call_info(&mut self.store),
        )
        .await
    }

    /// How well it fits `os` (0: not at all).
    pub async fn applies(&mut self, os: &OsInfo) -> Result<u32> {
        with_deadline(
            &self.name.clone(),
            "applies",
            QUICK,
            self.bindings
                .dmw_plugin_recipe()
                .call_applies(&mut self.store, os),
        )
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
