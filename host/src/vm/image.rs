//! Cloud-style Debian images built locally from a package mirror (`dmw image build`), for
//! sites that reach a Debian mirror but cannot download a cloud image.
//!
//! debootstrap makes a root file system with Debian's cloud kernel, cloud-init and
//! openssh-server; it is configured for a VM (root on `/dev/vda`, DHCP on the virtio NIC
//! through systemd-networkd, cloud-init reading only the NoCloud seed), packed into an ext4
//! file system with `mkfs.ext4 -d` (no mounts) and converted to qcow2. The kernel and
//! initramfs are kept beside the disk for direct kernel boot (the disk has no bootloader).
//!
//! Images are cached under a cache root (`<storage>/cache/images` for the CLI) in a
//! directory named after the suite and a hash of every input ([`ImageSpec::key`]); a
//! directory with its final name is always complete (it is built under `.tmp-KEY` while
//! holding `KEY.lock`, then renamed), so a second build is a cache hit.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// Bump when the way an image is built or configured changes: old cache entries are ignored.
pub const BUILDER_VERSION: u32 = 1;

/// The default Debian suite.
pub const DEFAULT_SUITE: &str = "bookworm";

/// The default package mirror.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// The packages debootstrap adds to its minbase variant.
pub const BASE_PACKAGES: &[&str] = &[
    "systemd-sysv",
    "openssh-server",
    "dbus",
    "iproute2",
    "sudo",
    "ca-certificates",
    "curl",
    "procps",
];

/// The packages then installed with apt in the chroot (debootstrap's own configuration
/// pass fails on cloud-init's Python dependencies): the cloud kernel, cloud-init, and
/// systemd-resolved for the DNS servers DHCP hands out.
pub const VM_PACKAGES: &[&str] = &[
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "cloud-init",
    "systemd-resolved",
];

/// Units masked in the image: timers that grab the dpkg lock or load a small VM.
const MASKED_UNITS: &[&str] = &[
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "man-db.timer",
    "systemd-networkd-wait-online.service",
];

/// The size of the image's ext4 file system (sparse; each VM's overlay may be larger).
const DISK_SIZE: &str = "2G";

/// File names inside an image directory.
pub const DISK_FILE: &str = "disk.qcow2";
/// The kernel, for `-kernel`.
pub const KERNEL_FILE: &str = "vmlinuz";
/// The initramfs, for `-initrd`.
pub const INITRD_FILE: &str = "initrd.img";

/// What an image is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// The Debian suite (`bookworm`).
    pub suite: String,
    /// The package mirror URL (`http://deb.debian.org/debian`).
    pub mirror: String,
    /// Extra Debian packages installed with the VM packages (`--package`, e.g. `docker.io`
    /// for machines that must not download the engine).
    pub packages: Vec<String>,
}

impl Default for ImageSpec {
    fn default() -> ImageSpec {
        ImageSpec {
            suite: DEFAULT_SUITE.into(),
            mirror: DEFAULT_MIRROR.into(),
            packages: Vec::new(),
        }
    }
}

/// A built image: a qcow2 disk without a bootloader, with its kernel and initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The image's directory (in the cache).
    pub dir: PathBuf,
    /// The root disk (qcow2, ext4 without a partition table: `root=/dev/vda`).
    pub disk: PathBuf,
    /// The kernel.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
}

impl Image {
    fn in_dir(dir: PathBuf) -> Image {
        Image {
            disk: dir.join(DISK_FILE),
            kernel: dir.join(KERNEL_FILE),
            initrd: dir.join(INITRD_FILE),
            dir,
        }
    }
}

impl ImageSpec {
    /// Check the suite name and the mirror URL (both reach debootstrap's command line).
    pub fn validate(&self) -> Result<()> {
        if self.suite.is_empty()
            || self.suite.len() > 32
            || !self.suite.chars().all(|c| c.is_ascii_alphanumeric())
        {
            bail!("the Debian suite {:?} is not a suite name", self.suite);
        }
        let m = &self.mirror;
        let scheme_ok = m.starts_with("http://") || m.starts_with("https://");
        let chars_ok = m
            .chars()
            .all(|c| c.is_ascii_graphic() && !"\"'\\`$<>|;".contains(c));
        if !scheme_ok || !chars_ok || m.len() > 512 {
            bail!("the mirror {m:?} is not an http(s) URL");
        }
        if self.packages.len() > 32 {
            bail!("at most 32 extra packages");
        }
        for p in &self.packages {
            // Debian's rule for package names (policy 5.6.1).
            let ok = p.len() >= 2
                && p.len() <= 64
                && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
            if !ok {
                bail!("{p:?} is not a Debian package name");
            }
        }
        Ok(())
    }

    /// The cache key: suite and a hash over every input (suite, mirror, packages, masked
    /// units, builder version).
    pub fn key(&self) -> String {
        let inputs = format!(
            "builder {BUILDER_VERSION}\nsuite {}\nmirror {}\npackages {BASE_PACKAGES:?} {VM_PACKAGES:?}\nmasked {MASKED_UNITS:?}\nsize {DISK_SIZE}\n",
            self.suite, self.mirror
        );
        // Extra packages join the inputs only when there are any: the default image keeps
        // its key (and its cache entry).
        let inputs = if self.packages.is_empty() {
            inputs
        } else {
            format!("{inputs}extra {:?}\n", self.packages)
        };
        let hash = hex::encode(Sha256::digest(inputs.as_bytes()));
        format!("{}-{}", self.suite, &hash[..16])
    }
}

/// The cached image for `spec` under `cache_root`, if it was built.
pub fn cached(spec: &ImageSpec, cache_root: &Path) -> Option<Image> {
    let dir = cache_root.join(spec.key());
    dir.is_dir().then(|| Image::in_dir(dir))
}

/// The image for `spec`, built into `cache_root` unless it is there already (root only:
/// debootstrap needs it). `progress` gets one line per step.
pub fn build(spec: &ImageSpec, cache_root: &Path, progress: &mut dyn FnMut(&str)) -> Result<Image> {
    spec.validate()?;
    if let Some(image) = cached(spec, cache_root) {
        progress(&format!("image {} is cached", spec.key()));
        return Ok(image);
    }
    for (program, package) in [
        ("debootstrap", "debootstrap"),
        ("mkfs.ext4", "e2fsprogs"),
        ("qemu-img", "qemu-utils"),
    ] {
        if which(program).is_none() {
            bail!(
                "building an image needs {program}: install the Debian package {package} (apt-get install {package})"
            );
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "building an image needs root (debootstrap installs packages in a chroot): run it with sudo"
        );
    }
    fs::create_dir_all(cache_root)
        .with_context(|| format!("cannot create {}", cache_root.display()))?;
    let key = spec.key();
    let _lock = lock(&cache_root.join(format!("{key}.lock")))?;
    if let Some(image) = cached(spec, cache_root) {
        progress(&format!("image {key} is cached (built by another process)"));
        return Ok(image);
    }
    let tmp = cache_root.join(format!(".tmp-{key}"));
    remove_tree(&tmp)?; // a crashed build's leftovers (we hold the lock)
    fs::create_dir_all(&tmp)?;
    let started = Instant::now();
    if let Err(e) = build_into(spec, cache_root, &tmp, progress) {
        let _ = remove_tree(&tmp);
        return Err(e.context(format!("building the image {key}")));
    }
    let done = cache_root.join(&key);
    fs::rename(&tmp, &done).with_context(|| format!("cannot rename into {}", done.display()))?;
    progress(&format!(
        "image {key} built in {:.0?}: {}",
        started.elapsed(),
        done.display()
    ));
    Ok(Image::in_dir(done))
}

/// Copy an image's files into the directory `out` (created if missing); returns `out`.
pub fn export(image: &Image, out: &Path) -> Result<PathBuf> {
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for from in [&image.disk, &image.kernel, &image.initrd] {
        let name = from.file_name().unwrap_or_default();
        fs::copy(from, out.join(name))
            .with_context(|| format!("cannot copy {} to {}", from.display(), out.display()))?;
    }
    Ok(out.to_path_buf())
}

fn build_into(
    spec: &ImageSpec,
    cache_root: &Path,
    out: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let rootfs = out.join("rootfs");
    let debs = cache_root.join("debs");
    fs::create_dir_all(&debs)?;
    progress(&format!(
        "debootstrap {} from {} with {} (a few minutes)",
        spec.suite,
        spec.mirror,
        BASE_PACKAGES.join(", ")
    ));
    let log = out.join("debootstrap.log");
    run_logged(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--cache-dir={}", debs.display()))
            .arg(format!("--include={}", BASE_PACKAGES.join(",")))
            .arg(&spec.suite)
            .arg(&rootfs)
            .arg(&spec.mirror),
        &log,
    )
    .map_err(|e| {
        // debootstrap's own log inside the tree says which package failed.
        let inner = tail(&rootfs.join("debootstrap/debootstrap.log"), 25);
        if inner.is_empty() {
            e
        } else {
            e.context(format!("debootstrap.log:\n{inner}"))
        }
    })?;
    progress(&format!(
        "installing {} (a few minutes)",
        VM_PACKAGES
            .iter()
            .copied()
            .chain(spec.packages.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    install_vm_packages(&rootfs, &spec.packages)?;
    progress("configuring the root file system (fstab, DHCP, cloud-init NoCloud)");
    configure(&rootfs)?;
    progress("copying the kernel and initramfs");
    copy_boot_file(&rootfs, "vmlinuz-", &out.join(KERNEL_FILE))?;
    copy_boot_file(&rootfs, "initrd.img-", &out.join(INITRD_FILE))?;
    progress(&format!(
        "making the ext4 file system ({DISK_SIZE}, sparse)"
    ));
    let raw = out.join("disk.raw");
    run_logged(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "dmwroot", "-d"])
            .arg(&rootfs)
            .arg(&raw)
            .arg(DISK_SIZE),
        &out.join("mkfs.log"),
    )?;
    remove_tree(&rootfs)?;
    progress("converting to qcow2");
    run_logged(
        Command::new("qemu-img")
            .args(["convert", "-f", "raw", "-O", "qcow2"])
            .arg(&raw)
            .arg(out.join(DISK_FILE)),
        &out.join("qemu-img.log"),
    )?;
    fs::remove_file(&raw)?;
    for log in ["debootstrap.log", "chroot.log", "mkfs.log", "qemu-img.log"] {
        let _ = fs::remove_file(out.join(log));
    }
    fs::write(
        out.join("inputs.txt"),
        format!(
            "builder {BUILDER_VERSION}\nsuite {}\nmirror {}\npackages {} {} {}\n",
            spec.suite,
            spec.mirror,
            BASE_PACKAGES.join(" "),
            VM_PACKAGES.join(" "),
            spec.packages.join(" ")
        ),
    )?;
    Ok(())
}

/// Install [`VM_PACKAGES`] and `extra` with apt in the chroot (nothing mounted; services
/// kept from starting by policy-rc.d; the host's resolv.conf lent for the downloads).
fn install_vm_packages(root: &Path, extra: &[String]) -> Result<()> {
    let resolv = root.join("etc/resolv.conf");
    write(
        &resolv,
        &fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    )?;
    let policy = root.join("usr/sbin/policy-rc.d");
    write(&policy, "#!/bin/sh\nexit 101\n")?;
    fs::set_permissions(&policy, fs::Permissions::from_mode(0o755))?;
    chroot(root, &["apt-get", "-q", "update"])?;
    let mut args = vec!["apt-get", "-q", "install", "-y", "--no-install-recommends"];
    args.extend_from_slice(VM_PACKAGES);
    args.extend(extra.iter().map(String::as_str));
    chroot(root, &args)?;
    fs::remove_file(&policy)?;
    // systemd-resolved's stub, as its package would have linked it.
    if resolv.symlink_metadata().is_ok() {
        fs::remove_file(&resolv)?;
    }
    symlink("../run/systemd/resolve/stub-resolv.conf", &resolv)?;
    Ok(())
}

/// The last `n` lines of a file ("" if it cannot be read).
fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Configure a fresh root file system for a VM booted with `root=/dev/vda`.
fn configure(root: &Path) -> Result<()> {
    write(
        &root.join("etc/fstab"),
        "/dev/vda / ext4 errors=remount-ro 0 1\n",
    )?;
    // DHCP on every wired NIC (virtio: enp0s*/ens*; eth* with net.ifnames=0).
    write(
        &root.join("etc/systemd/network/10-dhcp.network"),
        "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n",
    )?;
    chroot(
        root,
        &[
            "systemctl",
            "enable",
            "systemd-networkd",
            "systemd-resolved",
        ],
    )?;
    // cloud-init: only the NoCloud seed (no slow probing of cloud metadata services),
    // and the network is systemd-networkd's (above), not cloud-init's.
    write(
        &root.join("etc/cloud/cloud.cfg.d/90-dmw.cfg"),
        "datasource_list: [ NoCloud, None ]\nnetwork:\n  config: disabled\n",
    )?;
    // Each VM gets its own identity: machine id, SSH host keys (cloud-init makes them).
    write(&root.join("etc/machine-id"), "")?;
    let dbus_id = root.join("var/lib/dbus/machine-id");
    if dbus_id.symlink_metadata().is_ok() {
        fs::remove_file(&dbus_id)?;
    }
    for entry in fs::read_dir(root.join("etc/ssh"))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with("ssh_host_") {
            fs::remove_file(entry.path())?;
        }
    }
    write(&root.join("etc/hostname"), "localhost\n")?;
    for unit in MASKED_UNITS {
        let path = root.join("etc/systemd/system").join(unit);
        if path.symlink_metadata().is_ok() {
            fs::remove_file(&path)?;
        }
        symlink("/dev/null", &path)?;
    }
    chroot(root, &["apt-get", "clean"])?;
    let lists = root.join("var/lib/apt/lists");
    if lists.is_dir() {
        for entry in fs::read_dir(&lists)? {
            let entry = entry?;
            if entry.file_type()?.is_file() && entry.file_name() != "lock" {
                fs::remove_file(entry.path())?;
            }
        }
    }
    Ok(())
}

/// Copy the one `boot/PREFIX*` file of the root file system to `to`, readable by all
/// (Debian keeps kernels mode 0600; QEMU may run as another user).
fn copy_boot_file(root: &Path, prefix: &str, to: &Path) -> Result<()> {
    let boot = root.join("boot");
    let mut found: Vec<PathBuf> = fs::read_dir(&boot)
        .with_context(|| format!("cannot read {}", boot.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    found.sort();
    let Some(file) = found.pop() else {
        bail!("the root file system has no /boot/{prefix}*");
    };
    fs::copy(&file, to).with_context(|| format!("cannot copy {}", file.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o644))?;
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    if path.symlink_metadata().is_ok() {
        fs::remove_file(path)?;
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Run a command in the chroot `root`, its output in `chroot.log` beside `root`.
fn chroot(root: &Path, args: &[&str]) -> Result<()> {
    let log = root.with_file_name("chroot.log");
    run_logged(
        Command::new("chroot")
            .arg(root)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("DEBIAN_FRONTEND", "noninteractive"),
        &log,
    )
    .with_context(|| format!("in the chroot: {}", args.join(" ")))
}

/// Run `cmd` with its output in `log`; on failure the error quotes the log's last lines.
fn run_logged(cmd: &mut Command, log: &Path) -> Result<()> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let file = fs::File::create(log)?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    if !status.success() {
        bail!("{program} failed ({status}):\n{}", tail(log, 15));
    }
    Ok(())
}

/// The path of `program` on PATH (or in the sbin directories, which a user's PATH may lack).
pub(crate) fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Remove a directory tree if present (debootstrap trees hold device nodes and read-only
/// directories that `remove_dir_all` handles as root).
fn remove_tree(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", dir.display())),
    }
}

/// An exclusive lock held while the returned file is open.
fn lock(path: &Path) -> Result<fs::File> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open lock {}", path.display()))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; released when the file closes.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("cannot lock {}", path.display()));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_every_input() {
        let a = ImageSpec::default();
        let mut b = a.clone();
        b.mirror = "http://mirror.example/debian".into();
        let mut c = a.clone();
        c.suite = "trixie".into();
        assert_eq!(a.key(), ImageSpec::default().key());
        assert_ne!(a.key(), b.key());
        assert_ne!(a.key(), c.key());
        assert!(a.key().starts_with("bookworm-"));
    }

    #[test]
    fn validate_rejects_bad_suite_and_mirror() {
        let bad = |suite: &str, mirror: &str| {
            ImageSpec {
                suite: suite.into(),
                mirror: mirror.into(),
                packages: vec![],
            }
            .validate()
            .is_err()
        };
        let with = |p: &str| ImageSpec {
            packages: vec![p.into()],
            ..ImageSpec::default()
        };
        assert!(with("docker.io").validate().is_ok());
        assert!(with("x;rm").validate().is_err());
        assert!(with("-y").validate().is_err());
        assert_ne!(with("docker.io").key(), ImageSpec::default().key());
        assert!(!bad("bookworm", DEFAULT_MIRROR));
        assert!(bad("../x", DEFAULT_MIRROR));
        assert!(bad("", DEFAULT_MIRROR));
        assert!(bad("bookworm", "ftp://x"));
        assert!(bad("bookworm", "http://x/$(id)"));
        assert!(bad("bookworm", "http://x y"));
    }

    #[test]
    fn cached_finds_only_complete_directories() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let spec = ImageSpec::default();
        assert!(cached(&spec, tmp.path()).is_none());
        fs::create_dir_all(tmp.path().join(format!(".tmp-{}", spec.key()))).expect("mkdir");
        assert!(cached(&spec, tmp.path()).is_none());
        fs::create_dir_all(tmp.path().join(spec.key())).expect("mkdir");
        let image = cached(&spec, tmp.path()).expect("cached");
        assert_eq!(image.disk, tmp.path().join(spec.key()).join(DISK_FILE));
    }
}
