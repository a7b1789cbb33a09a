//! The OpenStack driver as a user's file (`dmw create --driver ./openstack.wasm`) against
//! the local OpenStack (tests/e2e/clouds/openstack.rs), whose servers are real testbed
//! hosts: create → provision → `docker run` → ls/stop/start/restart → rm, with the
//! machine's fixed IP and again with a floating IP from a pool; after `rm` nothing the
//! driver made is left at the cloud, and the password is only in the 0600 record.

use std::os::unix::fs::PermissionsExt;

use crate::clouds::openstack::{Config, OpenStack};
use crate::support::{Dmw, Run, docker_run_ok, files_containing, ls_row};

/// The OpenStack driver's component, built with the guests (also built into dmw).
const DRIVER: &str = env!("DMW_TEST_OPENSTACK_DRIVER");

fn create(dmw: &Dmw, cloud: &OpenStack, name: &str, extra: &[&str]) -> Run {
    let auth = cloud.auth_url();
    let mut args = vec![
        "create",
        "--driver",
        DRIVER,
        "--openstack-auth-url",
        &auth,
        "--openstack-username",
        "demo",
        "--openstack-tenant-name",
        "demo",
        "--openstack-flavor-name",
        "m1.small",
        "--openstack-image-name",
        "debian-12",
        "--openstack-net-name",
        "private",
        "--openstack-sec-groups",
        "default,docker-machine",
        "--openstack-active-timeout",
        "300",
        "--engine-install-method",
        "distro",
    ];
    args.extend_from_slice(extra);
    args.push(name);
    // The password comes from Docker Machine's environment variable.
    dmw.command(&args)
        .env("OS_PASSWORD", &cloud.config().password)
        .output()
        .expect("run dmw")
        .into()
}

fn ok(r: &Run, what: &str) {
    assert_eq!(
        r.code, 0,
        "{what} failed:\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
}

fn state(dmw: &Dmw, name: &str) -> String {
    let ls = dmw.ok(&["ls"]);
    let row = ls_row(&ls, name).unwrap_or_else(|| panic!("{name} not in ls:\n{ls}"));
    row.get(3).cloned().unwrap_or_default()
}

#[test]
fn openstack_driver_by_path_end_to_end() {
    if !dmw_testbed::require_root_or_skip("openstack_driver_by_path_end_to_end") {
        return;
    }
    let cloud = OpenStack::start(Config::default());
    let password = cloud.config().password.clone();
    let dmw = Dmw::new();
    let mut outputs = Vec::new();
    let install = dmw.run(&["plugin", "install", "--yes", DRIVER]);
    ok(&install, "plugin install");
    outputs.push(install);

    // 1. The machine's fixed address.
    let r = create(&dmw, &cloud, "os1", &[]);
    ok(&r, "create os1");
    assert!(
        r.stdout.contains("Imported key pair dmw-os1-") && r.stdout.contains("is ACTIVE at"),
        "{r:?}"
    );
    outputs.push(r);
    let servers = cloud.servers();
    assert_eq!(servers.len(), 1, "{servers:?}");
    let fixed = servers[0].addr.expect("booted").to_string();
    assert_eq!(
        servers[0].security_groups,
        vec!["default".to_string(), "docker-machine".to_string()]
    );
    assert_eq!(dmw.ok(&["ip", "os1"]).trim(), fixed);
    docker_run_ok(&dmw, "os1");
    assert_eq!(state(&dmw, "os1"), "Running");

    // The password: only in the machine's record (0600), in no output, log or other file.
    let holders = files_containing(&dmw.storage, &password);
    let record = dmw.machine_dir("os1").join("config.json");
    assert_eq!(holders, vec![record.clone()], "{holders:?}");
    let mode = std::fs::metadata(&record)
        .expect("record")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let inspect = dmw.ok(&["inspect", "os1"]);
    assert!(!inspect.contains(&password), "{inspect}");

    for (op, want, status) in [
        ("stop", "Stopped", "SHUTOFF"),
        ("start", "Running", "ACTIVE"),
        ("restart", "Running", "ACTIVE"),
    ] {
        let r = dmw.run(&[op, "os1"]);
        ok(&r, op);
        outputs.push(r);
        assert_eq!(state(&dmw, "os1"), want, "after {op}");
        assert_eq!(cloud.servers()[0].status, status, "after {op}");
    }
    docker_run_ok(&dmw, "os1");
    let rm = dmw.run(&["rm", "-y", "os1"]);
    ok(&rm, "rm os1");
    assert!(
        rm.stdout.contains("Removed at OpenStack: server ")
            && rm.stdout.contains("key pair dmw-os1-"),
        "{rm:?}"
    );
    outputs.push(rm);
    assert_eq!(cloud.leftovers(), Vec::<String>::new());

    // 2. A floating IP from the pool: a new one for this machine, released by rm.
    let r = create(
        &dmw,
        &cloud,
        "os2",
        &["--openstack-floatingip-pool", "public"],
    );
    ok(&r, "create os2");
    outputs.push(r);
    let fips = cloud.floating_ips();
    assert_eq!(fips.len(), 1, "{fips:?}");
    let floating = fips[0].address.to_string();
    let fixed = cloud.servers()[0].addr.expect("booted").to_string();
    assert_ne!(floating, fixed);
    assert_eq!(
        dmw.ok(&["ip", "os2"]).trim(),
        floating,
        "the floating IP is used"
    );
    docker_run_ok(&dmw, "os2");
    let rm = dmw.run(&["rm", "-y", "os2"]);
    ok(&rm, "rm os2");
    assert!(
        rm.stdout.contains(&format!("floating IP {floating}")),
        "{rm:?}"
    );
    outputs.push(rm);
    assert_eq!(cloud.leftovers(), Vec::<String>::new());

    for r in &outputs {
        assert!(
            !r.stdout.contains(&password) && !r.stderr.contains(&password),
            "the password was shown: {r:?}"
        );
    }
    assert!(files_containing(&dmw.storage, &password).is_empty());
    // Every API call went to the cloud's own address; Keystone v2 and Nova's image proxy
    // were never used.
    let lines = cloud.http.request_lines();
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("/v2.0/tenants") && !l.contains("/images/detail")),
        "{lines:?}"
    );
}
