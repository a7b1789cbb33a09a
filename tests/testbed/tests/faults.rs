//! Fault handles (sshd, link, restart, address) and the host variants (port, no os-release).

use std::time::Duration;

use dmw_testbed::{Host, Options, require_root_or_skip};

fn answers(h: &Host) -> bool {
    h.ssh("root", "true").expect("run ssh").success()
}

#[test]
fn fault_handles() {
    if !require_root_or_skip("fault_handles") {
        return;
    }
    let h = Host::boot(&Options::default()).expect("boot");

    h.stop_sshd().expect("stop sshd");
    assert!(!answers(&h), "ssh works with sshd stopped");
    h.start_sshd().expect("start sshd");
    assert!(answers(&h));

    h.cut_link().expect("cut link");
    assert!(!answers(&h), "ssh works with the link cut");
    h.restore_link().expect("restore link");
    h.wait_ssh(Duration::from_secs(20))
        .expect("ssh after restoring the link");

    let addr = h.addr();
    h.restart().expect("restart");
    assert_eq!(h.addr(), addr);
    assert!(answers(&h));
    // Containers share the kernel (same boot_id): check that PID 1 is new instead.
    let pid1_age = h
        .ssh_ok("root", "ps -o etimes= -p 1")
        .expect("age of PID 1");
    assert!(
        pid1_age.trim().parse::<u64>().expect("etimes") < 60,
        "PID 1 was not restarted"
    );

    let new = h.change_addr().expect("change address");
    assert_ne!(new, addr);
    assert_eq!(h.addr(), new);
    h.wait_ssh(Duration::from_secs(20))
        .expect("ssh at the new address");
    let seen = h
        .ssh_ok("root", "ip -4 -o addr show dev eth0")
        .expect("ip addr");
    assert!(seen.contains(&format!("{new}/")), "{seen}");
}

#[test]
fn port_and_no_os_release_variants() {
    if !require_root_or_skip("port_and_no_os_release_variants") {
        return;
    }
    let opts = Options {
        ssh_port: 2222,
        no_os_release: true,
        ..Options::default()
    };
    let h = Host::boot(&opts).expect("boot");
    assert_eq!(h.ssh_port(), 2222);
    assert!(answers(&h));
    let out = h
        .ssh(
            "root",
            "test -e /etc/os-release || test -e /usr/lib/os-release",
        )
        .expect("ssh");
    assert!(!out.success(), "os-release still present");
    let listening = h.ssh_ok("root", "ss -Htln").expect("ss");
    assert!(listening.contains(":2222"), "{listening}");
    assert!(!listening.contains(":22 "), "{listening}");
}
