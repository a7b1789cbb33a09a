//! A tiny Docker image, built locally (no registry is reachable from the tests).

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::deps::ensure_packages;
use crate::rootfs::CACHE_DIR;
use crate::util::{Lock, cmd, remove_tree, run};

/// Bump when the image's contents change.
const IMAGE_FORMAT: u32 = 1;

/// Path of a cached tarball of a busybox rootfs, for `docker import FILE NAME`.
///
/// It holds the static /bin/busybox of Debian's busybox-static package and a
/// symlink per applet (`sh`, `echo`, `sleep`, …), so `docker run --rm NAME echo ok` works.
pub fn image_tarball() -> io::Result<PathBuf> {
    let dir = Path::new(CACHE_DIR).join("image");
    let tarball = dir.join(format!("busybox-{IMAGE_FORMAT}.tar"));
    if tarball.exists() {
        return Ok(tarball);
    }
    ensure_packages()?;
    let _lock = Lock::acquire(&dir.join("image.lock"))?;
    if tarball.exists() {
        return Ok(tarball);
    }
    let work = dir.join(".tmp");
    remove_tree(&work)?;
    let root = work.join("root");
    fs::create_dir_all(root.join("bin"))?;
    for d in ["etc", "proc", "sys", "dev", "tmp"] {
        fs::create_dir_all(root.join(d))?;
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;

    let files = run(&mut cmd("dpkg", &["-L", "busybox-static"]))?;
    let busybox = files
        .lines()
        .find(|l| l.ends_with("bin/busybox"))
        .ok_or_else(|| io::Error::other("busybox-static ships no bin/busybox"))?;
    fs::copy(busybox, root.join("bin/busybox"))?;
    let applets = run(&mut cmd(busybox, &["--list"]))?;
    for applet in applets.lines().map(str::trim) {
        if !applet.is_empty() && applet != "busybox" && !applet.contains('/') {
            symlink("busybox", root.join("bin").join(applet))?;
        }
    }
    let tmp_tar = work.join("image.tar");
    run(&mut cmd(
        "tar",
        &[
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "-C",
            &root.to_string_lossy(),
            "-cf",
            &tmp_tar.to_string_lossy(),
            ".",
        ],
    ))?;
    fs::rename(&tmp_tar, &tarball)?;
    remove_tree(&work)?;
    Ok(tarball)
}
