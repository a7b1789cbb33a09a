//! On-disk cache of compiled components, keyed by the wasm's hash and the engine's settings.
//!
//! A `.cwasm` file is native code that wasmtime maps and runs without verifying it, so the
//! cache is only used in a directory private to the user (created 0700, owned by the user,
//! not writable by group or others; otherwise plugins are compiled in memory every run), and
//! each entry is only loaded when its bytes match the digest recorded beside it when it was
//! compiled (bound to the entry's key, so entries swapped or copied between plugins are
//! recompiled, not run). Anyone who can write the private directory already owns the
//! account; the digest catches swapped, copied and damaged entries.

use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{Result, anyhow};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// What [`load_or_compile`] tells its caller.
pub trait CompileNotes {
    /// `dir` cannot be trusted: the component is compiled in memory, for this reason.
    fn untrusted(&mut self, why: &str);
    /// The component is not in the cache: it is being compiled now (it may take a while).
    fn compiling(&mut self);
    /// The compile that [`CompileNotes::compiling`] announced ended.
    fn compiled(&mut self, took: std::time::Duration);
}

/// Load a compiled component from `dir`, or compile `wasm` and store it there. When `dir`
/// cannot be trusted, compile in memory and say why through `notes`, which also hears when
/// a compile starts and ends.
pub fn load_or_compile(
    engine: &Engine,
    dir: &Path,
    wasm: &[u8],
    notes: &mut dyn CompileNotes,
) -> Result<Component> {
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let key = format!(
        "{}-{:016x}",
        hex::encode(Sha256::digest(wasm)),
        compat.finish()
    );
    let trusted = match private_dir(dir) {
        Ok(()) => true,
        Err(why) => {
            notes.untrusted(&format!(
                "not using the plugin cache {}: {why}; compiling in memory",
                dir.display()
            ));
            false
        }
    };
    let path = dir.join(format!("{key}.cwasm"));
    let digest_path = dir.join(format!("{key}.sha256"));
    if trusted
        && let Ok(bytes) = fs::read(&path)
        && let Ok(recorded) = fs::read_to_string(&digest_path)
        && recorded.trim() == entry_digest(&key, &bytes)
    {
        // SAFETY: these bytes are the ones whose digest was recorded when this module
        // wrote them from `Engine::precompile_component` of the same wasmtime build and
        // settings (the compatibility hash is in the key), in a directory private to the
        // user; they are deserialized from memory, so the checked bytes are the ones used.
        if let Ok(component) = unsafe { Component::deserialize(engine, &bytes) } {
            return Ok(component);
        }
    }
    notes.compiling();
    let started = std::time::Instant::now();
    let compiled = engine
        .precompile_component(wasm)
        .map_err(|e| anyhow!("{e}"))?;
    notes.compiled(started.elapsed());
    if trusted {
        // A failed cache write only costs the next run a compile. The digest is written
        // last: an entry without its digest is never loaded.
        let _ = crate::state::store::write_private(&path, &compiled).and_then(|()| {
            crate::state::store::write_private(
                &digest_path,
                entry_digest(&key, &compiled).as_bytes(),
            )
        });
    }
    // SAFETY: `compiled` was produced just above by this engine.
    unsafe { Component::deserialize(engine, &compiled) }.map_err(|e| anyhow!("{e}"))
}

/// The digest recorded for a cache entry: its bytes, bound to its key.
fn entry_digest(key: &str, compiled: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"dmw-cwasm-v1\0");
    h.update(key.as_bytes());
    h.update(b"\0");
    h.update(compiled);
    hex::encode(h.finalize())
}

/// Create `dir` (0700) if needed and check that only the current user can write it.
fn private_dir(dir: &Path) -> std::result::Result<(), String> {
    if let Err(e) = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        return Err(format!("cannot create it: {e}"));
    }
    let meta = fs::symlink_metadata(dir).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_dir() {
        return Err("it is not a directory".into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(format!("it is owned by uid {}, not by you", meta.uid()));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "it is writable by group or others (mode {mode:04o})"
        ));
    }
    if mode & 0o077 != 0 {
        // Ours and not writable by others, but readable: made private (older dmw made it 0755).
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_or_foreign_dir_is_not_trusted() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("cache/plugins");
        private_dir(&dir).expect("a new dir is private");
        let mode = fs::metadata(&dir).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o700);

        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        private_dir(&dir).expect("ours and not writable by others");
        assert_eq!(fs::metadata(&dir).expect("meta").mode() & 0o777, 0o700);

        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).expect("chmod");
        let why = private_dir(&dir).expect_err("world-writable");
        assert!(why.contains("writable by group or others"), "{why}");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).expect("chmod");
        assert!(private_dir(&dir).is_err(), "group-writable");

        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).expect("symlink");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod");
        let why = private_dir(&link).expect_err("a symlink");
        assert!(why.contains("not a directory"), "{why}");
    }

    #[test]
    fn the_digest_binds_the_key() {
        assert_ne!(entry_digest("a", b"code"), entry_digest("b", b"code"));
        assert_ne!(entry_digest("a", b"code"), entry_digest("a", b"c0de"));
    }
}
