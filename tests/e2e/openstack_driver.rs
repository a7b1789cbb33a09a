//! The OpenStack driver as a user's file (`dmw create --driver ./openstack.wasm`) against
//! the local OpenStack (tests/e2e/clouds/openstack.rs), whose servers are real testbed
//! hosts: create → provision → `docker run` → ls/stop/start/restart → rm, with the
//! machine's fixed IP and again with a floating IP from a pool; after `rm` nothing the
//! driver made is left at the cloud, and the password is only in the 0600 record.

use crate::clouds::openstack::{Config, OpenStack};
use crate::support::{
    Dmw, Run, assert_secret_only_in_record, docker_run_ok, files_containing, ls_row,
};

/// The OpenStack driver's component, built with the guests (also built into dmw).
const DRIVER: &str = env!("DMW_TEST_OPENSTACK_DRIVER");

fn create(dmw: &Dmw, cloud: &OpenStack, name: &str, extra: &[&str]) -> Run {
    create_with_password(dmw, cloud, name, extra, &cloud.config().password)
}

fn create_with_password(
    dmw: &Dmw,
    cloud: &OpenStack,
    name: &str,
    extra: &[&str],
    password: &str,
) -> Run {
    let auth = cloud.auth_url();
    let defaults = [
        ("--openstack-auth-url", auth.as_str()),
        ("--openstack-username", "demo"),
        ("--openstack-tenant-name", "demo"),
        ("--openstack-flavor-name", "m1.small"),
        ("--openstack-image-name", "debian-12"),
        ("--openstack-net-name", "private"),
        ("--openstack-sec-groups", "default,docker-machine"),
        ("--openstack-active-timeout", "300"),
        ("--engine-install-method", "distro"),
    ];
    // A flag in `extra` replaces its default (and a flavor/image id its name).
    let family = |f: &str| {
        f.rsplit_once('-')
            .map_or(f.to_string(), |(a, _)| a.to_string())
    };
    let mut args = vec!["create", "--driver", DRIVER];
    for (flag, value) in &defaults {
        if !extra
            .iter()
            .any(|e| e.starts_with("--") && family(e) == family(flag))
        {
            args.extend_from_slice(&[flag, value]);
        }
    }
    args.extend_from_slice(extra);
    args.push(name);
    // The password comes from Docker Machine's environment variable.
    dmw.command(&args)
        .env("OS_PASSWORD", password)
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
    let started = std::time::Instant::now();
    let r = create(&dmw, &cloud, "os1", &[]);
    ok(&r, "create os1");
    eprintln!(
        "openstack: one create (fixed IP, distro engine) took {:?}",
        started.elapsed()
    );
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
    assert_secret_only_in_record(&dmw, "os1", &password);

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

    // 2. A floating IP from the pool: a new one for this machine, released by rm. This one
    // authenticates with an application credential (secret from OS_*), and passes user
    // data (a file the host reads), a config drive and an availability zone.
    let (ac_id, _, ac_secret) = cloud.config().app_credential.clone();
    let user_data = tempfile::NamedTempFile::new().expect("user data file");
    std::fs::write(
        user_data.path(),
        "#cloud-config\nruncmd: [touch /tmp/dmw]\n",
    )
    .expect("write");
    let user_data_path = user_data.path().display().to_string();
    let auth = cloud.auth_url();
    let r: Run = dmw
        .command(&[
            "create",
            "--driver",
            DRIVER,
            "--openstack-auth-url",
            &auth,
            "--openstack-application-credential-id",
            &ac_id,
            "--openstack-flavor-id",
            "2",
            "--openstack-image-id",
            crate::clouds::openstack::DEBIAN_IMAGE,
            "--openstack-net-id",
            crate::clouds::openstack::PRIVATE_NET,
            "--openstack-floatingip-pool",
            "public",
            "--openstack-user-data-file",
            &user_data_path,
            "--openstack-config-drive",
            "--openstack-availability-zone",
            "nova",
            "--engine-install-method",
            "distro",
            "os2",
        ])
        .env("OS_APPLICATION_CREDENTIAL_SECRET", &ac_secret)
        .output()
        .expect("run dmw")
        .into();
    ok(&r, "create os2");
    assert!(
        !r.stdout.contains(&ac_secret) && !r.stderr.contains(&ac_secret),
        "{r:?}"
    );
    outputs.push(r);
    let server = cloud.servers()[0].clone();
    assert_eq!(
        server.user_data.as_deref(),
        Some("#cloud-config\nruncmd: [touch /tmp/dmw]\n")
    );
    assert!(
        server.config_drive && server.availability_zone == "nova",
        "{server:?}"
    );
    assert_secret_only_in_record(&dmw, "os2", &ac_secret);
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

#[test]
fn openstack_services_on_other_hosts_come_from_the_keystone_catalog() {
    if !dmw_testbed::require_root_or_skip(
        "openstack_services_on_other_hosts_come_from_the_keystone_catalog",
    ) {
        return;
    }
    // Keystone on 127.0.0.1, Nova, Glance and Neutron on 127.0.0.2 (only in the catalog).
    let cloud = OpenStack::start(Config {
        services_on: Some("127.0.0.2".into()),
        ..Config::default()
    });
    let services = cloud.services.as_ref().expect("services listener");
    let dmw = Dmw::new();
    ok(
        &dmw.run(&["plugin", "install", "--yes", DRIVER]),
        "plugin install",
    );
    let r = create(&dmw, &cloud, "cat1", &[]);
    ok(&r, "create cat1");
    let log = std::fs::read_to_string(dmw.machine_dir("cat1").join("provision.log")).expect("log");
    assert!(
        log.contains(&format!(
            "the Keystone service catalog allows {}",
            services.url
        )),
        "{log}"
    );
    let on_services = services.request_lines();
    assert!(
        on_services
            .iter()
            .any(|l| l.starts_with("POST /compute/v2.1/servers "))
            && on_services.iter().any(|l| l.contains("/image/v2/images"))
            && on_services.iter().all(|l| !l.contains("/identity/")),
        "{on_services:?}"
    );
    let on_keystone = cloud.http.request_lines();
    assert!(
        on_keystone.iter().all(|l| l.contains("/identity/")),
        "{on_keystone:?}"
    );
    // Later commands authenticate again and reach the services the same way.
    ok(&dmw.run(&["stop", "cat1"]), "stop cat1");
    assert_eq!(state(&dmw, "cat1"), "Stopped");
    ok(&dmw.run(&["rm", "-y", "cat1"]), "rm cat1");
    assert_eq!(cloud.leftovers(), Vec::<String>::new());
}

/// A create that failed: exit `code`, Docker Machine's first line naming the machine and
/// `step`, and each of `needles` (the provider's own words, what to do next).
fn failed(r: &Run, name: &str, step: &str, code: i32, needles: &[&str]) {
    assert_eq!(r.code, code, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "Error creating machine \"{name}\": {step} failed: "
        )),
        "{r:?}"
    );
    for n in needles {
        assert!(r.stderr.contains(n), "{n:?} not in {r:?}");
    }
}

#[test]
fn openstack_errors_name_the_step_and_the_clouds_words_and_leave_nothing() {
    // No server boots here: every create fails before a host is needed.
    let cloud = OpenStack::start(Config {
        max_servers: 1,
        boot_fault: Some("No valid host was found. There are not enough hosts available.".into()),
        throttle_keypairs: 1,
        ..Config::default()
    });
    let dmw = Dmw::new();
    dmw.ok(&["plugin", "install", "--yes", DRIVER]);

    // Bad credentials: Keystone's 401, before anything is made; the wrong password is not shown.
    let wrong = "not-the-Password-42";
    let r = create_with_password(&dmw, &cloud, "e1", &[], wrong);
    failed(
        &r,
        "e1",
        "pre-create check",
        3,
        &[
            "machine e1: authenticate at Keystone: the API answered 401: The request you have made requires authentication.",
        ],
    );
    assert!(
        !r.stdout.contains(wrong) && !r.stderr.contains(wrong),
        "{r:?}"
    );
    assert!(!dmw.machine_dir("e1").exists());

    // An image that does not exist: refused before anything is made.
    let r = create(&dmw, &cloud, "e2", &["--openstack-image-name", "debian-99"]);
    failed(
        &r,
        "e2",
        "pre-create check",
        3,
        &["no image called \"debian-99\"", "--openstack-image-name"],
    );
    assert!(!dmw.machine_dir("e2").exists());
    assert_eq!(cloud.leftovers(), Vec::<String>::new());

    // A flavor id that does not exist: Nova's 400 after the key pair was imported (the
    // first import was answered 429 with Retry-After and retried); rm deletes the key pair.
    let r = create(&dmw, &cloud, "e3", &["--openstack-flavor-id", "999"]);
    failed(
        &r,
        "e3",
        "create machine",
        1,
        &[
            "machine e3: create the server",
            "the API answered 400: Flavor 999 could not be found.",
            "`dmw rm e3`",
        ],
    );
    let lines = cloud.http.request_lines();
    let imports: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("POST /compute/v2.1/os-keypairs"))
        .collect();
    assert_eq!(imports.len(), 2, "{lines:?}");
    assert!(
        imports[0].ends_with("429") && imports[1].ends_with("201"),
        "{imports:?}"
    );
    assert_eq!(cloud.keypairs().len(), 1);
    let rm = dmw.ok(&["rm", "-y", "e3"]);
    assert!(rm.contains("key pair dmw-e3-"), "{rm}");
    assert_eq!(cloud.leftovers(), Vec::<String>::new());

    // A server that goes to ERROR: Nova's fault in the message; rm deletes server and key pair.
    let r = create(&dmw, &cloud, "e4", &[]);
    failed(
        &r,
        "e4",
        "create machine",
        1,
        &[
            "machine e4: wait for the server",
            "went to ERROR: No valid host was found. There are not enough hosts available.",
            "`dmw rm e4`",
        ],
    );
    assert_eq!(cloud.servers().len(), 1);
    // Quota: the project already has its one server.
    let r = create(&dmw, &cloud, "e5", &[]);
    failed(
        &r,
        "e5",
        "create machine",
        1,
        &[
            "the API answered 403: Quota exceeded for instances: Requested 1, but already used 1 of 1 instances",
        ],
    );
    let rm = dmw.ok(&["rm", "-y", "e4", "e5"]);
    assert!(
        rm.contains("server ")
            && rm.contains("key pair dmw-e4-")
            && rm.contains("key pair dmw-e5-"),
        "{rm}"
    );
    assert_eq!(cloud.leftovers(), Vec::<String>::new());
}

#[test]
fn openstack_five_machines_at_once_each_with_its_own_floating_ip() {
    if !dmw_testbed::require_root_or_skip(
        "openstack_five_machines_at_once_each_with_its_own_floating_ip",
    ) {
        return;
    }
    let cloud = OpenStack::start(Config::default());
    let dmw = Dmw::new();
    dmw.ok(&["plugin", "install", "--yes", DRIVER]);
    let names = ["p1", "p2", "p3", "p4", "p5"];
    let started = std::time::Instant::now();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| {
                let (dmw, cloud) = (&dmw, &cloud);
                s.spawn(move || create(dmw, cloud, n, &["--openstack-floatingip-pool", "public"]))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("create thread"))
            .collect()
    });
    let took = started.elapsed();
    for (n, r) in names.iter().zip(&runs) {
        ok(r, &format!("create {n}"));
    }
    eprintln!("openstack: five creates at once (floating IPs, distro engine) took {took:?}");
    // Each machine got a new floating IP of its own (never a shared "free" one).
    let mut fips: Vec<String> = cloud
        .floating_ips()
        .iter()
        .map(|f| f.address.to_string())
        .collect();
    fips.sort();
    fips.dedup();
    assert_eq!(fips.len(), 5, "{fips:?}");
    let mut ips: Vec<String> = names
        .iter()
        .map(|n| dmw.ok(&["ip", n]).trim().to_string())
        .collect();
    ips.sort();
    assert_eq!(ips, fips);
    for n in names {
        docker_run_ok(&dmw, n);
    }
    let mut rm = vec!["rm", "-y"];
    rm.extend_from_slice(&names);
    dmw.ok(&rm);
    assert_eq!(cloud.leftovers(), Vec::<String>::new());
}
