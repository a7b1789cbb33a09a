//! The plugin contract as the host sees it: the bindings generated from `wit/`, one module
//! per supported WIT version. A neutral room: the runtime (`plugin`) and the capabilities
//! both build on it, and neither reaches into the other for it.
//!
//! `v0_1` is generated from `wit/` (package `dmw:plugin@0.1.3`). When a breaking
//! version appears, the released WIT is frozen under `wit/v0.1/`, a new module is
//! generated from `wit/`, and the loader picks the module from the version a
//! component's exports carry (see `check_api` and `api_compatible` in `plugin/api.rs`).

/// Bindings for `dmw:plugin@0.1.x`.
pub mod v0_1 {
    /// The `driver-plugin` world.
    pub mod driver {
        wasmtime::component::bindgen!({
            world: "driver-plugin",
            path: "../wit",
            imports: { default: async | trappable },
            exports: { default: async },
        });
    }

    /// The `recipe-plugin` world; shares the import interfaces of the driver world.
    pub mod recipe {
        wasmtime::component::bindgen!({
            world: "recipe-plugin",
            path: "../wit",
            imports: { default: async | trappable },
            exports: { default: async },
            with: {
                "dmw:plugin/types": super::driver::dmw::plugin::types,
                "dmw:plugin/log": super::driver::dmw::plugin::log,
                "dmw:plugin/store": super::driver::dmw::plugin::store,
                "dmw:plugin/ssh": super::driver::dmw::plugin::ssh,
            },
        });
    }

    pub use driver::dmw::plugin::{files, log, process, ssh, store, types, vm};
    pub use driver::exports::dmw::plugin::driver::FlagValue;
    pub use recipe::dmw::plugin::certs;
}
