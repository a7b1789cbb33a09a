//! Two hosts boot in parallel and answer SSH as root, `dmw` (sudo) and `nosudo`.

use std::time::Instant;

use dmw_testbed::{Host, Options, Testbed, require_root_or_skip};

fn check_users(h: &Host) {
    let ssh = |user: &str, cmd: &str| {
        h.ssh_ok(user, cmd)
            .unwrap_or_else(|e| panic!("{}: {e}", h.name()))
    };
    assert_eq!(ssh("dmw", "whoami").trim(), "dmw");
    assert_eq!(ssh("dmw", "sudo -n id -u").trim(), "0");
    assert_eq!(ssh("nosudo", "whoami").trim(), "nosudo");
    let out = h.ssh("nosudo", "sudo -n true").expect("ssh");
    assert!(!out.success(), "nosudo must not have sudo: {out:?}");
}

#[test]
fn two_hosts_boot_and_answer_ssh() {
    if !require_root_or_skip("two_hosts_boot_and_answer_ssh") {
        return;
    }
    let started = Instant::now();
    let tb = Testbed::boot(2, &Options::default()).expect("boot two hosts");
    eprintln!("two hosts answered SSH after {:.1?}", started.elapsed());
    assert_ne!(tb[0].addr(), tb[1].addr());
    assert_ne!(tb[0].name(), tb[1].name());
    for h in tb.iter() {
        assert_eq!(
            h.ssh_ok("root", "hostname").expect("hostname").trim(),
            h.name()
        );
        let state = h.ssh("root", "systemctl is-system-running").expect("ssh");
        assert!(
            ["running", "degraded"].contains(&state.stdout.trim()),
            "{}: {state:?}",
            h.name()
        );
        let os = h.ssh_ok("root", "cat /etc/os-release").expect("os-release");
        assert!(os.lines().any(|l| l == "ID=debian"), "{os}");
        assert!(os.lines().any(|l| l == "VERSION_ID=\"12\""), "{os}");
        check_users(h);
    }
    // Hosts reach each other.
    let ping = format!("timeout 5 bash -c 'echo > /dev/tcp/{}/22'", tb[1].addr());
    tb[0].ssh_ok("root", &ping).expect("host 0 reaches host 1");
}

#[test]
fn bullseye_host_boots() {
    if !require_root_or_skip("bullseye_host_boots") {
        return;
    }
    let opts = Options {
        suite: "bullseye".into(),
        ..Options::default()
    };
    let h = Host::boot(&opts).expect("boot a bullseye host");
    let os = h.ssh_ok("root", "cat /etc/os-release").expect("os-release");
    assert!(os.lines().any(|l| l == "VERSION_ID=\"11\""), "{os}");
    check_users(&h);
}
