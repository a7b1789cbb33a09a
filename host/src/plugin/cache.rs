//! On-disk cache of compiled components, keyed by the wasm's hash and the engine's settings.

use std::hash::{Hash, Hasher};
use std::path::Path;

use anyhow::{Result, anyhow};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Load a compiled component from `dir`, or compile `wasm` and store it there.
pub fn load_or_compile(engine: &Engine, dir: &Path, wasm: &[u8]) -> Result<Component> {
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let key = format!(
        "{}-{:016x}",
        hex::encode(Sha256::digest(wasm)),
        compat.finish()
    );
    let path = dir.join(format!("{key}.cwasm"));
    if path.exists() {
        // SAFETY: the file was written by this module from `Engine::precompile_component`
        // of the same wasmtime build and settings (the compatibility hash is in its name),
        // in a directory private to the user.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok(component);
        }
    }
    let compiled = engine
        .precompile_component(wasm)
        .map_err(|e| anyhow!("{e}"))?;
    if std::fs::create_dir_all(dir).is_ok() {
        // A failed cache write only costs the next run a compile.
        let _ = crate::store::write_private(&path, &compiled);
    }
    // SAFETY: `compiled` was produced just above by this engine.
    unsafe { Component::deserialize(engine, &compiled) }.map_err(|e| anyhow!("{e}"))
}
