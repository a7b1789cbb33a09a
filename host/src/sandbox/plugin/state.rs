//! The store data of one plugin instance: the empty WASI sandbox (or the plugin's own
//! directory), the capabilities lent to it, its limits and its call counters; the views
//! through which WASI, wasi:http and the capabilities reach it.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::calls::CallWatch;
use super::declaration;
use super::limits::PluginLimiter;
use crate::sandbox::capabilities::Lent;

/// Store data of one plugin instance: the WASI sandbox (nothing granted) and the capabilities.
pub struct HostState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limits: PluginLimiter,
    /// The capability contexts lent to this instance (by [`grants::lend`]).
    pub lent: Lent,
    /// The machine's public key, shared with the instance's offer (set during `create`).
    pub(crate) public_key: Arc<std::sync::OnceLock<String>>,
    /// What the plugin declared, as granted (secret flags, declared environment variables).
    pub declaration: declaration::Declaration,
    /// Whether it is a built-in driver or byte for byte one ([`grants::Grant::builtin`]).
    pub builtin: bool,
    /// The capabilities granted (beyond log and store).
    pub granted: Vec<String>,
    /// wasi:http's own state (field size limits).
    pub(super) http_ctx: wasmtime_wasi_http::WasiHttpCtx,
    /// The hooks of an instance not granted `http`.
    pub(super) no_http: crate::sandbox::capabilities::http::NoHttp,
    /// Host calls made so far, counted by the store's call hook (see [`Runtime::new_store`]).
    pub(super) host_calls: u64,
    pub(super) watch: CallWatch,
}

impl HostState {
    /// The plugin's directory of the machine gone over its quota during a driver call
    /// that fills it (not one that ends things: `dmw rm` always works); checked at each
    /// epoch check, about once a second while the plugin runs.
    pub(super) fn over_quota(&self) -> Result<(), String> {
        let Some(files) = self
            .lent
            .get::<crate::sandbox::capabilities::files::FilesCtx>()
        else {
            return Ok(());
        };
        let Some(func) = super::calls::current_call() else {
            return Ok(());
        };
        if super::calls::ENDING_CALLS.contains(&func.as_str()) {
            return Ok(());
        }
        crate::sandbox::quota::check_during(files.machine(), files.dir(), &func)
            .map_err(|e| format!("{e:#}"))
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for HostState {
    /// `wasi:http` answered by the `http` capability ([`crate::sandbox::capabilities::http::view`]).
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        crate::sandbox::capabilities::http::view(
            &mut self.lent,
            &mut self.no_http,
            &mut self.table,
            &mut self.http_ctx,
        )
    }
}

impl crate::sandbox::capabilities::CapabilityView for HostState {
    fn lent(&mut self) -> &mut Lent {
        &mut self.lent
    }
}

impl crate::sandbox::contract::v0_1::types::Host for HostState {}
