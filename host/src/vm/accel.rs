//! Choosing how QEMU runs a guest: KVM when it really works, else TCG (emulation).
//!
//! `/dev/kvm` being there is not enough: on machines without working nested
//! virtualisation a KVM guest hangs early in the kernel's boot (measured here: a real-mode
//! boot sector still runs under KVM, the Debian cloud kernel prints nothing). So [`probe`]
//! boots the image's own kernel with no root file system (`panic=-1`) and waits a few
//! seconds for its first console line; [`choose`] uses it for `auto` and falls back to TCG
//! with a warning.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::qemu::{Accel, QEMU};

/// What the user asked for (`--qemu-accel kvm|tcg|auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM if it works, else TCG with a warning.
    Auto,
    /// KVM, or an error saying why not.
    Kvm,
    /// TCG.
    Tcg,
}

impl std::str::FromStr for AccelChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(AccelChoice::Auto),
            "kvm" => Ok(AccelChoice::Kvm),
            "tcg" => Ok(AccelChoice::Tcg),
            other => Err(format!(
                "unknown accelerator {other:?}: use kvm, tcg or auto"
            )),
        }
    }
}

/// The accelerator to use, and the warning to show when `auto` fell back to TCG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The accelerator.
    pub accel: Accel,
    /// Why KVM is not used although it was worth trying (shown as a warning).
    pub fallback: Option<String>,
}

/// The kernel's first console line starts so.
const PROBE_LINE: &str = "Linux version";

/// How long KVM may take to print the kernel's first line before it counts as hung (well
/// under a second where KVM works; TCG takes about one).
pub const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether QEMU with `accel` runs `kernel`: boot it with no disk and wait up to `timeout`
/// for its first line on the serial console. The QEMU process is always ended.
pub fn probe(accel: Accel, kernel: &Path, timeout: Duration) -> Result<bool> {
    let dir = tempfile_dir()?;
    let result = probe_in(dir.as_path(), accel, kernel, timeout);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A private scratch directory for one probe.
fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "dmw-accel-probe-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    crate::store::set_mode(&dir, 0o700)?;
    Ok(dir)
}

fn probe_in(dir: &Path, accel: Accel, kernel: &Path, timeout: Duration) -> Result<bool> {
    let serial = dir.join("serial.log");
    let accel_name = match accel {
        Accel::Tcg => "tcg",
        Accel::Kvm => "kvm",
    };
    let mut child = Command::new(QEMU)
        .args([
            "-accel",
            accel_name,
            "-machine",
            "pc",
            "-m",
            "256",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-append",
            "console=ttyS0 panic=-1",
            "-kernel",
        ])
        .arg(kernel)
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| {
            format!("cannot run {QEMU}: install the Debian package qemu-system-x86")
        })?;
    let started = Instant::now();
    let seen = loop {
        let text = std::fs::read_to_string(&serial).unwrap_or_default();
        if text.contains(PROBE_LINE) {
            break true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break false;
        }
        if started.elapsed() >= timeout {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    Ok(seen)
}

/// Decide the accelerator for a choice, probing KVM with `kernel` (see the module
/// documentation).
pub fn choose(choice: AccelChoice, kernel: &Path) -> Result<Decision> {
    let kvm_device = Path::new("/dev/kvm");
    match choice {
        AccelChoice::Tcg => Ok(Decision {
            accel: Accel::Tcg,
            fallback: None,
        }),
        AccelChoice::Kvm | AccelChoice::Auto if !kvm_device.exists() => {
            if choice == AccelChoice::Kvm {
                bail!("--qemu-accel kvm: this machine has no /dev/kvm; use --qemu-accel tcg");
            }
            Ok(Decision {
                accel: Accel::Tcg,
                fallback: None,
            })
        }
        AccelChoice::Kvm | AccelChoice::Auto => {
            if probe(Accel::Kvm, kernel, KVM_PROBE_TIMEOUT)? {
                return Ok(Decision {
                    accel: Accel::Kvm,
                    fallback: None,
                });
            }
            if choice == AccelChoice::Kvm {
                bail!(
                    "--qemu-accel kvm: /dev/kvm is there but a KVM guest did not run within {}s (nested virtualisation not working?); use --qemu-accel tcg",
                    KVM_PROBE_TIMEOUT.as_secs()
                );
            }
            Ok(Decision {
                accel: Accel::Tcg,
                fallback: Some(format!(
                    "/dev/kvm is there but a KVM guest did not run within {}s; using TCG (emulation, slower)",
                    KVM_PROBE_TIMEOUT.as_secs()
                )),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_tcg_needs_no_probe() {
        assert_eq!("auto".parse(), Ok(AccelChoice::Auto));
        assert_eq!("kvm".parse(), Ok(AccelChoice::Kvm));
        assert_eq!("tcg".parse(), Ok(AccelChoice::Tcg));
        assert!("hvf".parse::<AccelChoice>().is_err());
        assert_eq!(
            choose(AccelChoice::Tcg, Path::new("/nonexistent")).expect("tcg"),
            Decision {
                accel: Accel::Tcg,
                fallback: None
            }
        );
    }
}
