//! The machine's local VM, run by the host under QEMU (the `vm` capability; declare it:
//! `permissions! { capability "vm"; }`). The driver gives typed values — the image, the
//! disk size, memory, CPUs, forwarded ports — and the host builds QEMU's command line,
//! keeps the VM's files where the driver cannot reach them, and speaks QEMU's monitor.
//! In native unit tests these calls are unsupported.

use std::time::Duration;

use crate::Result;

pub use crate::bindings::dmw::plugin::vm::{Accel, Boot, Forward};

#[cfg(target_arch = "wasm32")]
use crate::bindings::dmw::plugin::vm as wit;

#[cfg(not(target_arch = "wasm32"))]
fn native<T>() -> Result<T> {
    Err(crate::Error::Unsupported(
        "the vm capability is not available in native tests".into(),
    ))
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// The format (`qcow2` or `raw`) of an image the VM could be made over (a path from
/// [`crate::files::cached_download`], [`crate::files::built_images`] or one the user
/// typed), or why it cannot be used.
pub fn inspect_disk(path: &str) -> Result<String> {
    #[cfg(target_arch = "wasm32")]
    return wit::inspect_disk(path);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = path;
        native()
    }
}

/// Make the VM's disk: an overlay of `size` over `disk`, with the kernel and initramfs
/// to boot (if the image brings no bootloader) and the NoCloud seed image.
pub fn create_disk(
    disk: &str,
    size: &str,
    kernel: Option<&str>,
    initrd: Option<&str>,
    seed: &[u8],
) -> Result<()> {
    #[cfg(target_arch = "wasm32")]
    return wit::create_disk(disk, size, kernel, initrd, seed);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (disk, size, kernel, initrd, seed);
        native()
    }
}

/// Take over the disk an older dmw made in the driver's own directory (`overlay`, a file
/// name there), with the kernel and initramfs it booted and a fresh seed.
pub fn adopt_disk(
    overlay: &str,
    kernel: Option<&str>,
    initrd: Option<&str>,
    seed: &[u8],
) -> Result<()> {
    #[cfg(target_arch = "wasm32")]
    return wit::adopt_disk(overlay, kernel, initrd, seed);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (overlay, kernel, initrd, seed);
        native()
    }
}

/// Whether the VM's disk was made.
pub fn has_disk() -> bool {
    #[cfg(target_arch = "wasm32")]
    return wit::has_disk();
    #[cfg(not(target_arch = "wasm32"))]
    false
}

/// Whether KVM runs a guest here: `None` when it does, else why not.
pub fn probe_kvm() -> Result<Option<String>> {
    #[cfg(target_arch = "wasm32")]
    return wit::probe_kvm();
    #[cfg(not(target_arch = "wasm32"))]
    native()
}

/// Start the VM and wait until QEMU's monitor answers; QEMU's pid.
pub fn start(boot: &Boot) -> Result<u32> {
    #[cfg(target_arch = "wasm32")]
    return wit::start(boot);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = boot;
        native()
    }
}

/// Whether the VM's QEMU runs.
pub fn running() -> Result<bool> {
    #[cfg(target_arch = "wasm32")]
    return wit::running();
    #[cfg(not(target_arch = "wasm32"))]
    native()
}

/// The VM's run state (`running`, `paused`, `shutdown`, …).
pub fn status() -> Result<String> {
    #[cfg(target_arch = "wasm32")]
    return wit::status();
    #[cfg(not(target_arch = "wasm32"))]
    native()
}

/// Press the VM's power button (ACPI).
pub fn powerdown() -> Result<()> {
    #[cfg(target_arch = "wasm32")]
    return wit::powerdown();
    #[cfg(not(target_arch = "wasm32"))]
    native()
}

/// Ask QEMU to end at once (SIGTERM).
pub fn terminate() -> Result<()> {
    #[cfg(target_arch = "wasm32")]
    return wit::terminate();
    #[cfg(not(target_arch = "wasm32"))]
    native()
}

/// Wait up to `timeout` for QEMU to end; true when it has.
pub fn wait(timeout: Duration) -> Result<bool> {
    #[cfg(target_arch = "wasm32")]
    return wit::wait(millis(timeout));
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = millis(timeout);
        native()
    }
}

/// End QEMU at once and wait until it is gone.
pub fn kill() -> Result<()> {
    #[cfg(target_arch = "wasm32")]
    return wit::kill();
    #[cfg(not(target_arch = "wasm32"))]
    native()
}

/// The serial console's size and its last `max` bytes as text.
pub fn console(max: u32) -> (u64, String) {
    #[cfg(target_arch = "wasm32")]
    return wit::console(max);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = max;
        (0, String::new())
    }
}

/// QEMU's last error lines, if any.
pub fn qemu_errors() -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    let errors = wit::qemu_errors();
    #[cfg(not(target_arch = "wasm32"))]
    let errors = String::new();
    (!errors.is_empty()).then_some(errors)
}

/// A TCP port on 127.0.0.1 that was free a moment ago, to forward.
pub fn free_port() -> Result<u16> {
    #[cfg(target_arch = "wasm32")]
    return wit::free_port();
    #[cfg(not(target_arch = "wasm32"))]
    native()
}

/// End QEMU and delete the VM's files.
pub fn destroy() -> Result<()> {
    #[cfg(target_arch = "wasm32")]
    return wit::destroy();
    #[cfg(not(target_arch = "wasm32"))]
    native()
}
