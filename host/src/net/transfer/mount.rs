//! Mount a machine's directory locally with the system's `sshfs`, logging in with the
//! machine's key and pinned host key; unmount with `fusermount3`/`fusermount`/`umount`.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use crate::net::ssh::Target;
use crate::net::ssh::external::{config_text, find_program};

/// Mount `remote_path` of machine `name` (at `t`) on `mountpoint`. `config` is where the
/// ssh_config for sshfs is written (kept: sshfs reconnects with it).
pub fn mount(
    name: &str,
    t: &Target,
    policy: crate::net::ssh::HostKeyPolicy,
    remote_path: &str,
    mountpoint: &Path,
    config: &Path,
) -> Result<()> {
    let Some(sshfs) = find_program("sshfs") else {
        bail!(
            "You must have a copy of the sshfs binary locally to use the mount feature (on Debian or Ubuntu: apt-get install sshfs)"
        );
    };
    if !mountpoint.is_dir() {
        bail!(
            "mount point {} is not a directory; create it first (mkdir -p {})",
            mountpoint.display(),
            crate::net::ssh::sh_quote(&mountpoint.display().to_string())
        );
    }
    let text = config_text(t, policy).map_err(|e| anyhow::anyhow!("machine \"{name}\": {e}"))?;
    std::fs::write(config, text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", config.display()))?;
    let out = Command::new(sshfs)
        .arg("-F")
        .arg(config)
        .arg(format!("{name}:{remote_path}"))
        .arg(mountpoint)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run sshfs: {e}"))?;
    if !out.status.success() {
        bail!(
            "sshfs could not mount {name}:{remote_path} on {} (exit {}): {}",
            mountpoint.display(),
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Unmount a FUSE mount point.
pub fn unmount(mountpoint: &Path) -> Result<()> {
    let (prog, args): (_, &[&str]) = if let Some(p) = find_program("fusermount3") {
        (p, &["-u"])
    } else if let Some(p) = find_program("fusermount") {
        (p, &["-u"])
    } else if let Some(p) = find_program("umount") {
        (p, &[])
    } else {
        bail!(
            "You must have a copy of the fusermount binary locally to use the unmount option (on Debian or Ubuntu: apt-get install fuse3)"
        );
    };
    let out = Command::new(&prog)
        .args(args)
        .arg(mountpoint)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", prog.display()))?;
    if !out.status.success() {
        bail!(
            "{} could not unmount {} (exit {}): {}",
            prog.display(),
            mountpoint.display(),
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
