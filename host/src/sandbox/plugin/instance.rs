//! One running plugin instance, a driver or a recipe: its store, its generated bindings
//! and the name it goes by in messages — and what every instance answers the same way
//! (its declaration and grant, its key-value state, its calls under a deadline).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use anyhow::{Result, anyhow};
use wasmtime::Store;

use super::{HostState, describe_error, with_deadline};
use crate::sandbox::capabilities::store::StoreCtx;
use crate::sandbox::contract::v0_1::types;

/// A running plugin whose exports are the bindings `B` (a driver's or a recipe's).
pub struct Instance<B> {
    store: Store<HostState>,
    bindings: B,
    name: String,
}

impl<B> Instance<B> {
    /// An instance of the plugin in `store`, named as its grant names it.
    pub(super) fn new(store: Store<HostState>, bindings: B) -> Instance<B> {
        let name = store.data().lent.plugin().to_string();
        Instance {
            store,
            bindings,
            name,
        }
    }

    /// Use `name` (the plugin's own, from `info`; made inert and short, as plugin text)
    /// in messages from now on.
    pub fn rename(&mut self, name: &str) {
        let name = crate::text::sanitize::plugin_text(name, crate::text::sanitize::NAME_LIMIT);
        self.name = name.clone();
        self.store.data_mut().lent.rename(&name);
    }

    /// The plugin's name in messages (its own, from `info`, once [`Instance::rename`] was
    /// called).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the plugin declared, as granted (its secret flags, declared environment
    /// variables, HTTP hosts and TLS flags).
    pub fn declaration(&self) -> &super::declaration::Declaration {
        &self.store.data().declaration
    }

    /// Whether the plugin is built in, or a file byte for byte a built-in driver (decided
    /// on the bytes that were loaded).
    pub fn is_builtin(&self) -> bool {
        self.store.data().builtin
    }

    /// Whether the instance was granted `capability`.
    pub fn granted(&self, capability: &str) -> bool {
        self.store.data().granted.iter().any(|c| c == capability)
    }

    /// The plugin's key-value state (a driver's is kept in the machine record).
    pub fn state_kv(&self) -> BTreeMap<String, String> {
        self.store
            .data()
            .lent
            .get::<StoreCtx>()
            .map(|s| s.kv.clone())
            .unwrap_or_default()
    }

    /// Write the plugin's key-value state through `journal` after each change from now on
    /// (a driver's, into its machine record while it creates the machine).
    pub fn set_store_journal(&mut self, journal: crate::sandbox::capabilities::store::Journal) {
        if let Some(store) = self.store.data_mut().lent.get_mut::<StoreCtx>() {
            store.journal = Some(journal);
        }
    }

    /// Send the plugin's log messages (and its HTTP request lines) to `report` from now on.
    pub fn set_report(&mut self, report: std::sync::Arc<crate::text::report::Reporter>) {
        let lent = &mut self.store.data_mut().lent;
        if let Some(http) = lent.get_mut::<crate::sandbox::capabilities::http::HttpCtx>() {
            http.set_report(report.clone());
        }
        if let Some(log) = lent.get_mut::<crate::sandbox::capabilities::log::LogCtx>() {
            log.report = report;
        }
    }

    /// The instance's store data.
    pub(super) fn data(&self) -> &HostState {
        self.store.data()
    }

    /// The instance's store data, to change what was lent.
    pub(super) fn data_mut(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    /// Run export `func` under `limit` (the deadline, the host-call cap, the compute
    /// rule: [`with_deadline`]); `call` starts it on the bindings and the store.
    pub(super) async fn call<'a, T, F>(
        &'a mut self,
        func: &str,
        limit: Duration,
        call: impl FnOnce(&'a B, &'a mut Store<HostState>) -> F,
    ) -> Result<T>
    where
        F: Future<Output = wasmtime::Result<T>>,
    {
        let name = self.name.clone();
        with_deadline(&name, func, limit, call(&self.bindings, &mut self.store)).await
    }

    /// [`Instance::call`] of an export that answers `result<T, error>`: the plugin's own
    /// error becomes the host's, made inert and bounded ([`describe_error`]).
    pub(super) async fn answer<'a, T, F>(
        &'a mut self,
        func: &str,
        limit: Duration,
        call: impl FnOnce(&'a B, &'a mut Store<HostState>) -> F,
    ) -> Result<T>
    where
        F: Future<Output = wasmtime::Result<std::result::Result<T, types::Error>>>,
    {
        let name = self.name.clone();
        self.call(func, limit, call)
            .await?
            .map_err(|e| anyhow!("{}", describe_error(&name, func, &e)))
    }
}
