//! The capabilities the host lends to plugins: one module per WIT interface.
//!
//! Each module owns its context type (e.g. `log::LogCtx`, `ssh::SshCtx`), implements its
//! generated `Host` trait on [`Granted`] of that context, and exports a [`Capability`]: its
//! name, how it links its interface into a linker (through a projection from any state
//! that implements [`CapabilityView`] — wasmtime-wasi's `WasiView` pattern: no capability
//! names the runtime's state type) and how it builds its context from what the command
//! [`Offer`]s. The grants policy (`plugin::grants`) lists them; the runtime lends an
//! instance the contexts of the capabilities its grant names. A capability that was not lent (not granted, or
//! nothing to lend: `ssh` before the machine has an address) answers `denied`, naming
//! itself, instead of acting.

pub mod certs;
pub mod files;
pub mod forms;
pub mod http;
pub mod keys;
pub mod log;
pub mod process;
pub mod ssh;
pub mod store;
pub mod vm;

pub use certs::CertGrant;
pub use ssh::{SimulatedMachine, SshLink};

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use wasmtime::component::{HasData, Linker};

use crate::sandbox::contract::v0_1::types;
use crate::text::report::Reporter;

/// What an embedder's per-instance state gives the capabilities: the contexts lent to the
/// instance, and wasi:http's view (the `http` capability answers `wasi:http` through it).
/// The runtime implements it for its own state; capabilities are written against it.
pub trait CapabilityView: wasmtime_wasi_http::WasiHttpView + Send + 'static {
    /// The capability contexts lent to this instance.
    fn lent(&mut self) -> &mut Lent;
}

/// One capability: its name in declarations and grants, how its interface is linked into
/// a linker of state `T`, how its context is built from an [`Offer`] and what, if anything,
/// it lends through WASI.
pub struct Capability<T: 'static> {
    /// The name a plugin declares and a grant names (the WIT interface's name).
    pub name: &'static str,
    /// Link the interface into a linker, through a projection from `T`'s [`Lent`].
    pub link: fn(&mut Linker<T>) -> wasmtime::Result<()>,
    /// Put this capability's context into `lent`, when the offer has what it needs.
    pub lend: fn(&Offer, &mut Lent),
    /// What it lends through WASI once lent (the `files` capability: the plugin's
    /// directory as a preopen); WASI grants nothing else.
    pub wasi: fn(&Lent, &mut wasmtime_wasi::WasiCtxBuilder) -> anyhow::Result<()>,
}

/// The WASI step of a capability that lends nothing through WASI.
pub fn no_wasi(_: &Lent, _: &mut wasmtime_wasi::WasiCtxBuilder) -> anyhow::Result<()> {
    Ok(())
}

impl<T: 'static> Clone for Capability<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: 'static> Copy for Capability<T> {}

/// The capabilities every plugin gets: `log` and `store`.
pub const fn always<T: CapabilityView>() -> [Capability<T>; 2] {
    [log::capability(), store::capability()]
}

/// Every other capability this host provides, lent only when granted.
pub const fn provided<T: CapabilityView>() -> [Capability<T>; 7] {
    [
        ssh::capability(),
        certs::capability(),
        keys::capability(),
        http::capability(),
        process::capability(),
        files::capability(),
        vm::capability(),
    ]
}

/// What a command offers a plugin instance; its grant decides which capabilities get it.
pub struct Offer {
    /// Plugin name, for messages.
    pub plugin: String,
    /// Progress output and the machine's provisioning log (`log`).
    pub report: Arc<Reporter>,
    /// The plugin's key-value state for this machine (`store`).
    pub kv: BTreeMap<String, String>,
    /// SSH to the machine, when known (`ssh`).
    pub ssh: Option<Arc<SshLink>>,
    /// Server-certificate issuing for the machine (`certs`).
    pub certs: Option<Arc<CertGrant>>,
    /// The machine's public SSH key made by the host for it, once made (set during
    /// `create` through `Driver::offer_public_key`; empty for a key file of the user's).
    pub public_key: Arc<OnceLock<String>>,
    /// The HTTP sender for the machine (`http`): its allowed hosts and TLS settings.
    pub http: Option<Arc<crate::net::http::Sender>>,
    /// The directory of the one machine the command works on, once it exists (`process`
    /// keeps its records there, `files` lends its `driver/` directory).
    pub machine_dir: Option<crate::state::store::MachineDir>,
    /// Where `dmw image build` keeps images (`files` lists them).
    pub image_cache: Option<std::path::PathBuf>,
    /// The local programs the plugin declared (set by the runtime from its grant; `process`).
    pub programs: Vec<String>,
    /// The argument forms of the programs declared with them (`process`).
    pub program_args: Vec<forms::ProgramArgs>,
}

impl Offer {
    /// An offer of only `log` and `store`.
    pub fn new(plugin: &str, report: Arc<Reporter>, kv: BTreeMap<String, String>) -> Offer {
        Offer {
            plugin: crate::text::sanitize::plugin_text(plugin, crate::text::sanitize::NAME_LIMIT),
            report,
            kv,
            ssh: None,
            certs: None,
            public_key: Arc::default(),
            http: None,
            machine_dir: None,
            image_cache: None,
            programs: Vec::new(),
            program_args: Vec::new(),
        }
    }
}

/// The capability contexts lent to one plugin instance, one per capability, each present
/// only when granted (and offered).
pub struct Lent {
    plugin: String,
    contexts: HashMap<TypeId, Box<dyn Any + Send>>,
}

impl Lent {
    /// Nothing lent yet to plugin `plugin`.
    pub fn new(plugin: &str) -> Lent {
        Lent {
            plugin: plugin.to_string(),
            contexts: HashMap::new(),
        }
    }

    /// Lend a capability context.
    pub fn insert<C: Send + 'static>(&mut self, ctx: C) {
        self.contexts.insert(TypeId::of::<C>(), Box::new(ctx));
    }

    /// The context of type `C`, if it was lent.
    pub fn get<C: 'static>(&self) -> Option<&C> {
        self.contexts.get(&TypeId::of::<C>())?.downcast_ref()
    }

    /// The context of type `C`, if it was lent, to change.
    pub fn get_mut<C: 'static>(&mut self) -> Option<&mut C> {
        self.contexts.get_mut(&TypeId::of::<C>())?.downcast_mut()
    }

    /// The plugin's name, for messages.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Use `name` in messages from now on.
    pub fn rename(&mut self, name: &str) {
        self.plugin = name.to_string();
    }

    /// Capability `C`'s view of this instance.
    pub fn granted<C: 'static>(&mut self) -> Granted<'_, C> {
        let ctx = self
            .contexts
            .get_mut(&TypeId::of::<C>())
            .and_then(|c| c.downcast_mut());
        Granted {
            ctx,
            plugin: &self.plugin,
        }
    }
}

/// What a capability's host functions work on: its context when lent, and the plugin's
/// name for the `denied` answer.
pub struct Granted<'a, C> {
    /// The context, when lent.
    pub ctx: Option<&'a mut C>,
    /// The plugin's name, for messages.
    pub plugin: &'a str,
}

impl<C> Granted<'_, C> {
    /// The `denied` error naming `capability`.
    pub fn denied(&self, capability: &str) -> types::Error {
        types::Error::Denied(format!(
            "plugin {} has no {capability} access here",
            self.plugin
        ))
    }
}

/// Links capability context `C`'s interface: its `HasData` (wasmtime bindgen's per-interface
/// `add_to_linker::<T, Lend<C>>(linker, project::<T, C>)`).
pub struct Lend<C>(PhantomData<C>);

impl<C: 'static> HasData for Lend<C> {
    type Data<'a> = Granted<'a, C>;
}

/// The projection from an instance's state to capability context `C`.
pub fn project<T: CapabilityView, C: 'static>(state: &mut T) -> Granted<'_, C> {
    state.lent().granted::<C>()
}
