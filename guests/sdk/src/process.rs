//! Local programs the driver declared (the `process` capability; declare it and every
//! program: `permissions! { capability "process"; program "qemu-img"; }`). The host runs
//! them without a shell, with an empty environment (PATH and LANG only), in the driver's
//! own directory of the machine ([`crate::files`]); detached processes are known by the
//! handle names the driver gives them. In native unit tests these calls are unsupported.

use std::time::Duration;

use crate::{Error, ExecOutput, Result};

pub use crate::bindings::dmw::plugin::process::Signal;

#[cfg(target_arch = "wasm32")]
use crate::bindings::dmw::plugin::process as wit;

#[cfg(not(target_arch = "wasm32"))]
fn native() -> Error {
    Error::Unsupported("the process capability is not available in native tests".into())
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Run `program` with `args`, waiting at most `timeout`; its output whatever its exit
/// status (exit code -1 and `timed out` at the end of stderr when it was killed at the timeout).
pub fn run(program: &str, args: &[&str], timeout: Duration) -> Result<ExecOutput> {
    #[cfg(target_arch = "wasm32")]
    return wit::run(program, &owned(args), millis(timeout));
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (program, owned(args), millis(timeout));
        Err(native())
    }
}

/// [`run`], failing unless the program exits 0; its standard output as text.
pub fn run_ok(program: &str, args: &[&str], timeout: Duration) -> Result<String> {
    let out = run(program, args, timeout)?;
    if out.exit_code != 0 {
        let err = String::from_utf8_lossy(&out.stderr);
        let err: String = err.trim().chars().take(2000).collect();
        return Err(Error::Failed(format!(
            "{program} failed (exit code {}): {err}",
            out.exit_code
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Start `program` detached under `handle` (its output goes to `HANDLE.log` in the
/// driver's directory); its pid.
pub fn spawn(handle: &str, program: &str, args: &[&str]) -> Result<u32> {
    #[cfg(target_arch = "wasm32")]
    return wit::spawn(handle, program, &owned(args));
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (handle, program, owned(args));
        Err(native())
    }
}

/// Whether the process started under `handle` still runs.
pub fn running(handle: &str) -> Result<bool> {
    #[cfg(target_arch = "wasm32")]
    return wit::running(handle);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = handle;
        Err(native())
    }
}

/// Send `sig` to the process under `handle` (nothing if it no longer runs).
pub fn signal(handle: &str, sig: Signal) -> Result<()> {
    #[cfg(target_arch = "wasm32")]
    return wit::send_signal(handle, sig);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (handle, sig);
        Err(native())
    }
}

/// Wait up to `timeout` for the process under `handle` to end; true when it has.
pub fn wait(handle: &str, timeout: Duration) -> Result<bool> {
    #[cfg(target_arch = "wasm32")]
    return wit::wait(handle, millis(timeout));
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (handle, millis(timeout));
        Err(native())
    }
}

/// Kill the process under `handle`, wait until it is gone, and forget the handle.
pub fn kill(handle: &str) -> Result<()> {
    #[cfg(target_arch = "wasm32")]
    return wit::kill(handle);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = handle;
        Err(native())
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    #[cfg(target_arch = "wasm32")]
    return wit::free_port();
    #[cfg(not(target_arch = "wasm32"))]
    Err(native())
}
