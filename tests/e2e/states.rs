//! What `ls` and `status` say when a machine goes away and comes back.

use std::time::Instant;

use dmw_testbed::require_root_or_skip;

use crate::support::{Dmw, docker_hosts, ls_row};

#[test]
fn ls_follows_the_machine_state() {
    if !require_root_or_skip("ls_follows_the_machine_state") {
        return;
    }
    let bed = docker_hosts(1);
    let host = &bed.hosts()[0];
    let dmw = Dmw::new();
    let args = Dmw::create_args(host, "root", "s1");
    dmw.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // Unreachable link: the query cannot finish, so the row says Timeout within --timeout.
    host.cut_link().expect("cut link");
    let t = Instant::now();
    let ls = dmw.ok(&["ls", "--timeout", "2"]);
    let took = t.elapsed();
    let row = ls_row(&ls, "s1").unwrap_or_else(|| panic!("{ls}"));
    assert_eq!(
        row.get(1).map(String::as_str),
        Some("generic"),
        "ACTIVE is empty on timeout: {ls}"
    );
    assert_eq!(row.get(2).map(String::as_str), Some("Timeout"), "{ls}");
    assert!(
        took.as_secs() < 10,
        "ls must give up at --timeout, took {took:?}"
    );
    host.restore_link().expect("restore link");

    // Host down: the engine does not answer, the driver says Stopped, the URL is blank.
    host.stop().expect("stop host");
    let ls = dmw.ok(&["ls"]);
    let row = ls_row(&ls, "s1").unwrap_or_else(|| panic!("{ls}"));
    assert_eq!(row[3], "Stopped", "{ls}");
    assert_eq!(row[4], "Unknown", "URL blank, DOCKER Unknown: {ls}");
    assert_eq!(dmw.ok(&["status", "s1"]).trim(), "Stopped");

    // Back up: dockerd comes back with its TLS configuration (enabled at boot).
    host.start().expect("start host");
    let mut last = String::new();
    for _ in 0..60 {
        last = dmw.ok(&["ls"]);
        if ls_row(&last, "s1").is_some_and(|r| r[3] == "Running" && r[5].starts_with('v')) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let row = ls_row(&last, "s1").unwrap_or_else(|| panic!("{last}"));
    assert_eq!(row[3], "Running", "engine back after reboot: {last}");
    assert!(row[5].starts_with('v'), "{last}");
    dmw.ok(&["rm", "-y", "s1"]);
}
