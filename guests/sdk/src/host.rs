//! Thin wrappers over the host's imports.
//!
//! On wasm32 they call the host; elsewhere (native unit tests) they call [`crate::mock`].
//! Helpers and plugins call these instead of the raw bindings so they stay testable.

use crate::{ExecOutput, InstalledCerts, Level, Result};
use std::time::Duration;

#[cfg(target_arch = "wasm32")]
use crate::bindings::dmw::plugin::{certs, keys, log as wlog, ssh, store as wstore};

/// Write one log message at `level`.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    wlog::write(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    crate::mock::log(level, message);
}

/// Run `command` with `sh -c` as the SSH user; the output whatever the exit status.
pub fn exec(command: &str) -> Result<ExecOutput> {
    #[cfg(target_arch = "wasm32")]
    return ssh::exec(command);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::mock::exec(command, false);
}

/// Run `command` with `sh -c` as root; the output whatever the exit status.
pub fn exec_root(command: &str) -> Result<ExecOutput> {
    #[cfg(target_arch = "wasm32")]
    return ssh::exec_root(command);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::mock::exec(command, true);
}

/// Write `contents` to `path` on the target as root with `mode` (atomic; parents created).
pub fn upload(path: &str, contents: &[u8], mode: u32) -> Result<()> {
    #[cfg(target_arch = "wasm32")]
    return ssh::upload(path, contents, mode);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::mock::upload(path, contents, mode);
}

/// Whether the machine's SSH port accepts TCP connections within `timeout_ms`.
pub fn reachable(timeout_ms: u32) -> bool {
    #[cfg(target_arch = "wasm32")]
    return ssh::reachable(timeout_ms);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::mock::reachable(timeout_ms);
}

/// Issue a server certificate and upload it with the CA certificate into `directory`.
pub fn install_server_cert(directory: &str) -> Result<InstalledCerts> {
    #[cfg(target_arch = "wasm32")]
    return certs::install_server_cert(directory);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::mock::install_server_cert(directory);
}

/// The machine's public SSH key made by the host (`keys`); empty for a key file of the user's.
pub fn machine_public_key() -> String {
    #[cfg(target_arch = "wasm32")]
    return keys::machine_public_key();
    #[cfg(not(target_arch = "wasm32"))]
    return crate::mock::machine_public_key();
}

/// The value stored under `key`.
pub fn store_get(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return wstore::get(key);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::mock::store_get(key);
}

/// Store `value` under `key`.
pub fn store_set(key: &str, value: &str) {
    #[cfg(target_arch = "wasm32")]
    wstore::set(key, value);
    #[cfg(not(target_arch = "wasm32"))]
    crate::mock::store_set(key, value);
}

/// Remove `key` from the store.
pub fn store_delete(key: &str) {
    #[cfg(target_arch = "wasm32")]
    wstore::delete(key);
    #[cfg(not(target_arch = "wasm32"))]
    crate::mock::store_delete(key);
}

/// Wait `duration` (WASI monotonic clock on wasm; recorded, not slept, in tests).
pub fn sleep(duration: Duration) {
    #[cfg(target_arch = "wasm32")]
    std::thread::sleep(duration);
    #[cfg(not(target_arch = "wasm32"))]
    crate::mock::sleep(duration);
}
