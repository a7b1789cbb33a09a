//! The driver's own directory for the machine (the `files` capability; declare it:
//! `permissions! { capability "files"; }`), seen at [`DIR`] through WASI: use `std::fs`
//! there. Nothing else of the file system is visible. Programs run through
//! [`crate::process`] start in this directory, so they take its files by relative name.
//! Also here: dmw's image cache (the images `dmw image build` made, verified downloads).

use std::time::Duration;

use crate::Result;

#[cfg(target_arch = "wasm32")]
use crate::bindings::dmw::plugin::files as wit;

/// Where the driver sees its directory.
pub const DIR: &str = "/files";

/// The path of `name` in the driver's directory, for `std::fs`.
pub fn path(name: &str) -> String {
    format!("{DIR}/{name}")
}

/// Send one QMP command (a JSON object, e.g. `{"execute":"query-status"}`; only
/// `query-status`, `query-name`, `query-version`, `system_powerdown`, `system_reset`, `stop`,
/// `cont` and `quit`, without arguments) to the QEMU monitor on the unix socket `socket` in
/// the driver's directory, for a driver that starts QEMU through [`crate::process`] (a VM
/// run through [`crate::vm`] is the host's); the reply as JSON text (`{"return":...}` or
/// `{"error":...}`).
pub fn qmp(socket: &str, command: &str, timeout: Duration) -> Result<String> {
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    #[cfg(target_arch = "wasm32")]
    return wit::qmp(socket, command, ms);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (socket, command, ms);
        Err(crate::Error::Unsupported(
            "the files capability is not available in native tests".into(),
        ))
    }
}

/// The images `dmw image build` made (host paths of their directories), newest first.
pub fn built_images() -> Vec<String> {
    #[cfg(target_arch = "wasm32")]
    return wit::built_images();
    #[cfg(not(target_arch = "wasm32"))]
    Vec::new()
}

/// Download `url` into dmw's cache (by the host, once; only from hosts the driver declared
/// with `http_host`), verified against `checksum` (`sha512:HEX`, `sha256:HEX`, the URL of a
/// checksum file, or empty for the `SHA512SUMS` beside the file); the cached file's host
/// path, to pass to declared programs.
pub fn cached_download(url: &str, checksum: &str) -> Result<String> {
    #[cfg(target_arch = "wasm32")]
    return wit::cached_download(url, checksum);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (url, checksum);
        Err(crate::Error::Unsupported(
            "the files capability is not available in native tests".into(),
        ))
    }
}
