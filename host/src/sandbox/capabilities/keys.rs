//! `keys`: the machine's public SSH key, made by the host, for a driver granted `keys` to
//! register at its provider. The private half never leaves the machine's directory.

use std::sync::{Arc, OnceLock};

use wasmtime::component::Linker;

use super::{Capability, CapabilityView, Granted, Lend, Lent, Offer, project};
use crate::sandbox::contract::v0_1::driver::dmw::plugin::keys::{self as wit, Host};

/// The `keys` capability (declared by the driver, granted by the user).
pub const fn capability<T: CapabilityView>() -> Capability<T> {
    Capability {
        name: "keys",
        link: add_to_linker::<T>,
        lend,
        wasi: super::no_wasi,
    }
}

/// The machine's public key, as the command knows it.
pub struct KeysCtx {
    /// Set once the host made the machine's key pair (during `create`); unset for a key
    /// file of the user's.
    pub public_key: Arc<OnceLock<String>>,
}

/// Link `keys` through [`KeysCtx`].
pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Lend<KeysCtx>>(linker, project::<T, KeysCtx>)
}

fn lend(offer: &Offer, lent: &mut Lent) {
    lent.insert(KeysCtx {
        public_key: offer.public_key.clone(),
    });
}

impl Host for Granted<'_, KeysCtx> {
    async fn machine_public_key(&mut self) -> wasmtime::Result<String> {
        let Some(ctx) = &self.ctx else {
            // No error channel in this function: the call fails, naming the capability.
            return Err(wasmtime::Error::msg(format!(
                "plugin {} has no keys access here",
                self.plugin
            )));
        };
        Ok(ctx.public_key.get().cloned().unwrap_or_default())
    }
}
