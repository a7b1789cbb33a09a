//! Installs the machine packages the testbed needs, once per process.

use std::io;
use std::process::Command;
use std::sync::OnceLock;

use crate::util::{cmd, run};

/// Debian packages the testbed uses on the machine.
pub const PACKAGES: &[&str] = &[
    "systemd-container", // systemd-nspawn
    "debootstrap",
    "openssh-client", // ssh, scp, ssh-keygen
    "iproute2",       // ip netns, veth
    "iptables",       // NAT for the hosts
    "busybox-static", // the tiny Docker image
    "util-linux",     // nsenter, mount
    "tar",
];

/// Installs whatever of [`PACKAGES`] is missing (`apt-get update` then `apt-get install -y`).
///
/// Runs at most once per process; later calls return the first result.
pub fn ensure_packages() -> io::Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| install_missing().map_err(|e| e.to_string()))
        .clone()
        .map_err(io::Error::other)
}

fn missing() -> io::Result<Vec<&'static str>> {
    // dpkg-query exits non-zero when a package is unknown; stdout still lists the known ones.
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${db:Status-Abbrev}\n"])
        .args(PACKAGES)
        .output()
        .map_err(|e| io::Error::other(format!("cannot run dpkg-query (is this Debian?): {e}")))?;
    let listed = String::from_utf8_lossy(&out.stdout);
    let installed: Vec<&str> = listed
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("ii"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    Ok(PACKAGES
        .iter()
        .copied()
        .filter(|p| !installed.contains(p))
        .collect())
}

fn install_missing() -> io::Result<()> {
    let need = missing()?;
    if need.is_empty() {
        return Ok(());
    }
    eprintln!("dmw-testbed: installing {}", need.join(" "));
    let apt = |args: &[&str]| {
        let mut c = cmd("apt-get", &["-q", "-o", "DPkg::Lock::Timeout=300"]);
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut c).map_err(|e| io::Error::other(format!("installing {need:?}: {e}")))
    };
    apt(&["update"])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(&need);
    apt(&install)?;
    Ok(())
}
