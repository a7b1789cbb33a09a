//! The cached Debian root filesystems the hosts boot from, and the test SSH key.
//!
//! Layout under [`CACHE_DIR`]:
//! - `id_ed25519`, `id_ed25519.pub`: the test keypair (no passphrase), made once;
//! - `rootfs/SUITE-base-HASH/`: debootstrap + configuration, HASH over every input;
//! - `rootfs/SUITE-docker-HASH/`: the same plus Debian's docker.io;
//! - `debs/`: debootstrap's package cache; `image/`: the busybox image tarball.
//!
//! A rootfs is built in `rootfs/.tmp-NAME` under a lock file and renamed into
//! place when complete, so a directory with a final name is always whole.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::util::{Lock, cmd, fnv64, remove_tree, run, write_file};

/// Where the testbed keeps what it builds once (rootfs trees, key, image).
pub const CACHE_DIR: &str = "/var/cache/dmw-testbed";

/// Bump when the way a rootfs is built or configured changes: old caches are then ignored.
const FORMAT: u32 = 1;

/// Packages debootstrap adds to the minbase variant.
const PACKAGES: &[&str] = &[
    "openssh-server",
    "iproute2",
    "ca-certificates",
    "curl",
    "sudo",
    "systemd-sysv",
    "dbus",
    "procps",
];

/// Units masked in the hosts: timers that would grab the dpkg lock or load the machine,
/// and units that only slow a container's boot down.
const MASKED_UNITS: &[&str] = &[
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "man-db.timer",
    "getty@tty1.service",
    "console-getty.service",
    "systemd-networkd-wait-online.service",
    "systemd-pstore.service",
];

/// The Debian mirror (the machine reaches it directly, no proxy).
const MIRROR: &str = "http://deb.debian.org/debian";

/// Path of the test private key (ed25519, no passphrase, mode 0600), creating the pair once.
pub fn test_key() -> io::Result<PathBuf> {
    let key = Path::new(CACHE_DIR).join("id_ed25519");
    if key.exists() {
        return Ok(key);
    }
    let _lock = Lock::acquire(&Path::new(CACHE_DIR).join("key.lock"))?;
    if key.exists() {
        return Ok(key);
    }
    let tmp = Path::new(CACHE_DIR).join("id_ed25519.tmp");
    let tmp_pub = tmp.with_extension("tmp.pub");
    for p in [&tmp, &tmp_pub] {
        let _ = fs::remove_file(p);
    }
    let tmp_s = tmp.to_string_lossy();
    run(&mut cmd(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "dmw-testbed",
            "-f",
            &tmp_s,
        ],
    ))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
    // The public half first: the private key's presence means "the pair is complete".
    fs::rename(&tmp_pub, key.with_extension("pub"))?;
    fs::rename(&tmp, &key)?;
    Ok(key)
}

/// Path of the cached rootfs for `suite` (e.g. "bookworm"), with docker.io if `docker`; builds it once.
pub fn rootfs(suite: &str, docker: bool) -> io::Result<PathBuf> {
    if suite.is_empty() || !suite.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(io::Error::other(format!("bad Debian suite name {suite:?}")));
    }
    let key = test_key()?;
    let pubkey = fs::read_to_string(key.with_extension("pub"))?;
    let base_inputs = format!(
        "format {FORMAT}\nsuite {suite}\npackages {PACKAGES:?}\nmasked {MASKED_UNITS:?}\nkey {pubkey}"
    );
    let base_name = format!("{suite}-base-{:016x}", fnv64(&base_inputs));
    let base = cached(&base_name, |dir| build_base(dir, suite, &pubkey))?;
    if !docker {
        return Ok(base);
    }
    let docker_inputs = format!("{base_inputs}\n+ docker.io --no-install-recommends");
    let docker_name = format!("{suite}-docker-{:016x}", fnv64(&docker_inputs));
    cached(&docker_name, |dir| {
        run(&mut cmd(
            "cp",
            &[
                "-a",
                "--reflink=auto",
                &base.to_string_lossy(),
                &dir.to_string_lossy(),
            ],
        ))?;
        install_docker(dir)
    })
}

/// Returns `rootfs/NAME`, running `build` into a temporary directory first if it is missing.
fn cached(name: &str, build: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<PathBuf> {
    let dir = Path::new(CACHE_DIR).join("rootfs");
    let done = dir.join(name);
    if done.is_dir() {
        return Ok(done);
    }
    let _lock = Lock::acquire(&dir.join(format!("{name}.lock")))?;
    if done.is_dir() {
        return Ok(done); // another process built it while we waited
    }
    let tmp = dir.join(format!(".tmp-{name}"));
    remove_tree(&tmp)?; // a crashed build's leftovers (we hold the lock: nobody uses them)
    eprintln!(
        "dmw-testbed: building rootfs {name} (once; cached in {})",
        dir.display()
    );
    let started = std::time::Instant::now();
    if let Err(e) = build(&tmp) {
        let _ = remove_tree(&tmp);
        return Err(io::Error::other(format!("building rootfs {name}: {e}")));
    }
    fs::rename(&tmp, &done)?;
    eprintln!(
        "dmw-testbed: rootfs {name} built in {:.0?}",
        started.elapsed()
    );
    Ok(done)
}

/// Runs a command inside `root` with chroot.
fn chroot(root: &Path, args: &[&str]) -> io::Result<String> {
    let mut c = cmd("chroot", &[&root.to_string_lossy()]);
    c.args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    run(&mut c)
}

fn build_base(root: &Path, suite: &str, pubkey: &str) -> io::Result<()> {
    let debs = Path::new(CACHE_DIR).join("debs");
    fs::create_dir_all(&debs)?;
    run(&mut cmd(
        "debootstrap",
        &[
            "--variant=minbase",
            &format!("--cache-dir={}", debs.display()),
            &format!("--include={}", PACKAGES.join(",")),
            suite,
            &root.to_string_lossy(),
            MIRROR,
        ],
    ))?;
    configure(root, pubkey)
}

/// One-time configuration of a fresh rootfs: users, keys, sshd, units.
fn configure(root: &Path, pubkey: &str) -> io::Result<()> {
    // Users: root and dmw (passwordless sudo) and nosudo (no sudo at all), all with the test key.
    // The password "*" disables password login without marking the account locked.
    for user in ["dmw", "nosudo"] {
        chroot(root, &["useradd", "-m", "-s", "/bin/bash", user])?;
        chroot(root, &["usermod", "-p", "*", user])?;
    }
    write_file(
        &root.join("etc/sudoers.d/dmw-testbed"),
        "dmw ALL=(ALL:ALL) NOPASSWD: ALL\n",
    )?;
    fs::set_permissions(
        root.join("etc/sudoers.d/dmw-testbed"),
        fs::Permissions::from_mode(0o440),
    )?;
    for (user, home) in [
        ("root", "/root"),
        ("dmw", "/home/dmw"),
        ("nosudo", "/home/nosudo"),
    ] {
        let ssh_dir = root.join(home.trim_start_matches('/')).join(".ssh");
        write_file(&ssh_dir.join("authorized_keys"), pubkey)?;
        fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700))?;
        chroot(
            root,
            &[
                "chown",
                "-R",
                &format!("{user}:{user}"),
                &format!("{home}/.ssh"),
            ],
        )?;
    }

    // sshd: key-only root login; host keys are made per host at boot (see host.rs).
    let sshd_config = root.join("etc/ssh/sshd_config");
    let config = fs::read_to_string(&sshd_config)?;
    if !config.contains("Include /etc/ssh/sshd_config.d/*.conf") {
        fs::write(
            &sshd_config,
            format!("Include /etc/ssh/sshd_config.d/*.conf\n{config}"),
        )?;
    }
    write_file(
        &root.join("etc/ssh/sshd_config.d/dmw-testbed.conf"),
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n",
    )?;
    for entry in fs::read_dir(root.join("etc/ssh"))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with("ssh_host_") {
            fs::remove_file(entry.path())?;
        }
    }

    // An empty machine-id: systemd makes a fresh one at each boot, so hosts differ.
    write_file(&root.join("etc/machine-id"), "")?;
    let dbus_id = root.join("var/lib/dbus/machine-id");
    if dbus_id.symlink_metadata().is_ok() {
        fs::remove_file(&dbus_id)?;
    }
    for unit in MASKED_UNITS {
        let path = root.join("etc/systemd/system").join(unit);
        if path.symlink_metadata().is_ok() {
            fs::remove_file(&path)?;
        }
        symlink("/dev/null", &path)?;
    }
    clean_apt(root)
}

/// Drops downloaded packages and package lists: hosts run `apt-get update` themselves.
fn clean_apt(root: &Path) -> io::Result<()> {
    chroot(root, &["apt-get", "clean"])?;
    let lists = root.join("var/lib/apt/lists");
    for entry in fs::read_dir(&lists)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && entry.file_name() != "lock" {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Installs Debian's docker.io into a configured rootfs (in a chroot, nothing mounted).
fn install_docker(root: &Path) -> io::Result<()> {
    let resolv = root.join("etc/resolv.conf");
    write_file(&resolv, &fs::read_to_string("/etc/resolv.conf")?)?;
    // Keep maintainer scripts from trying to start services in the chroot.
    let policy = root.join("usr/sbin/policy-rc.d");
    write_file(&policy, "#!/bin/sh\nexit 101\n")?;
    fs::set_permissions(&policy, fs::Permissions::from_mode(0o755))?;
    chroot(root, &["apt-get", "-q", "update"])?;
    chroot(
        root,
        &[
            "apt-get",
            "-q",
            "install",
            "-y",
            "--no-install-recommends",
            "docker.io",
        ],
    )?;
    fs::remove_file(&policy)?;
    fs::remove_file(&resolv)?;
    clean_apt(root)
}
