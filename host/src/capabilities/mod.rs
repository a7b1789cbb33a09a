//! The capabilities the host lends to plugins: one module per WIT interface.
//!
//! A plugin instance gets a [`PluginCtx`]; a capability that was not granted
//! (e.g. `certs` for a driver, `ssh` before the machine has an address) answers
//! with a `denied` error instead of acting.

mod certs;
mod log;
mod ssh;
mod store;

pub use certs::CertGrant;
pub use ssh::{SimulatedMachine, SshLink};

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::plugin::bindings::v0_1::types;
use crate::report::Reporter;

/// What one plugin instance may use, and its private state.
pub struct PluginCtx {
    /// Plugin name, for messages.
    pub plugin: String,
    /// Progress output and the machine's provisioning log.
    pub report: Arc<Reporter>,
    /// The plugin's key-value state for this machine (`store` interface).
    pub kv: BTreeMap<String, String>,
    /// SSH to the machine, when granted and known.
    pub ssh: Option<Arc<SshLink>>,
    /// Server-certificate issuing, when granted.
    pub certs: Option<Arc<CertGrant>>,
    /// What the grants policy allows this plugin (`plugin::grants`); `keys` decides whether
    /// the host lends a driver the machine's public key.
    pub grant: crate::plugin::grants::Grant,
}

impl PluginCtx {
    /// A context with only `log` and `store`.
    pub fn new(plugin: &str, report: Arc<Reporter>, kv: BTreeMap<String, String>) -> PluginCtx {
        PluginCtx {
            plugin: crate::sanitize::plugin_text(plugin, crate::sanitize::NAME_LIMIT),
            report,
            kv,
            ssh: None,
            certs: None,
            grant: Default::default(),
        }
    }

    fn denied(&self, capability: &str) -> types::Error {
        types::Error::Denied(format!(
            "plugin {} has no {capability} access here",
            self.plugin
        ))
    }
}

impl types::Host for crate::plugin::HostState {}
