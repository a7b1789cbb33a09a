//! The walking skeleton, end to end: create → env → docker run → ls → rm.

use dmw_testbed::{Options, Testbed, require_root_or_skip};

use crate::support::{Dmw, docker_hosts, docker_run_ok, ls_row};

fn chain(user: &str, test: &str) {
    if !require_root_or_skip(test) {
        return;
    }
    let bed = Testbed::boot(1, &Options::default()).expect("boot a host");
    let host = &bed.hosts()[0];
    assert!(
        !host
            .ssh("root", "command -v dockerd")
            .expect("ssh")
            .success(),
        "the host must start without Docker"
    );
    let dmw = Dmw::new();
    let args = Dmw::create_args(host, user, "h1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = dmw.ok(&args);
    assert!(out.contains("Docker is up and running!"), "{out}");
    assert!(out.contains("Provisioning with debian..."), "{out}");

    docker_run_ok(&dmw, "h1");

    // Provisioning again changes nothing, and says so: the engine is not even restarted.
    let started = || {
        host.ssh_ok(
            "root",
            "systemctl show -p ActiveEnterTimestamp docker.service",
        )
        .expect("ssh")
    };
    let before = started();
    let again = dmw.ok(&["provision", "h1"]);
    assert!(
        again.contains("not installing it") && again.contains("not restarting it"),
        "{again}"
    );
    assert!(again.contains("Machine \"h1\" was provisioned."), "{again}");
    assert_eq!(
        started(),
        before,
        "the engine was restarted by a provision that changed nothing"
    );
    docker_run_ok(&dmw, "h1");

    let url = format!("tcp://{}:2376", host.addr());
    let ls = dmw.ok(&["ls"]);
    let row = ls_row(&ls, "h1").unwrap_or_else(|| panic!("h1 not in ls:\n{ls}"));
    assert_eq!(row[1], "-", "{ls}");
    assert_eq!(row[2], "generic", "{ls}");
    assert_eq!(row[3], "Running", "{ls}");
    assert_eq!(row[4], url, "{ls}");
    assert!(row[5].starts_with("v20.10"), "docker version column: {ls}");
    assert!(
        ls.starts_with("NAME   ACTIVE   DRIVER    STATE     URL"),
        "{ls}"
    );

    assert_eq!(dmw.ok(&["ip", "h1"]).trim(), host.addr().to_string());
    assert_eq!(dmw.ok(&["url", "h1"]).trim(), url);
    assert_eq!(dmw.ok(&["status", "h1"]).trim(), "Running");
    assert!(dmw.ok(&["version", "h1"]).starts_with("20.10"));
    assert_eq!(
        dmw.ok(&["ssh", "h1", "hostname"]).trim(),
        "h1",
        "recipe set the hostname"
    );
    let config = dmw.ok(&["config", "h1"]);
    assert!(
        config.starts_with("--tlsverify\n--tlscacert=\"")
            && config.ends_with(&format!("-H={url}\n")),
        "{config}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&dmw.ok(&["inspect", "h1"])).expect("inspect is JSON");
    assert_eq!(inspect["status"], "ready");
    assert_eq!(inspect["endpoint"]["ssh_user"], user);

    // The provisioning log has every remote command, and no private key.
    let log = std::fs::read_to_string(dmw.machine_dir("h1").join("provision.log"))
        .expect("provision.log");
    assert!(
        log.lines().any(|l| l.contains("SSH $ (root)")
            && l.contains(" install ")
            && l.contains("docker.io")),
        "log lacks the install command:\n{}",
        log.lines()
            .filter(|l| l.contains("SSH $"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        !log.contains("PRIVATE KEY"),
        "a private key leaked into the log"
    );

    // The active machine is marked once DOCKER_HOST points at it.
    let active = dmw
        .command(&["ls"])
        .env("DOCKER_HOST", &url)
        .output()
        .expect("ls");
    let active = String::from_utf8_lossy(&active.stdout).into_owned();
    assert_eq!(
        ls_row(&active, "h1").map(|r| r[1].clone()),
        Some("*".to_string()),
        "{active}"
    );

    // A docker context was written: the docker CLI reaches the machine with no environment.
    let ps = dmw.docker(&["--context", "h1", "ps"]);
    assert_eq!(ps.code, 0, "docker --context h1 ps: {ps:?}");
    assert!(dmw.ok(&["use", "h1"]).contains("now uses machine \"h1\""));
    let ver = dmw.docker(&["version", "--format", "{{.Server.Version}}"]);
    assert!(
        ver.code == 0 && ver.stdout.starts_with("20.10"),
        "plain `docker` after `dmw use`: {ver:?}"
    );

    let rm = dmw.ok(&["rm", "-y", "h1"]);
    assert!(rm.contains("Successfully removed h1"), "{rm}");
    assert_eq!(dmw.ok(&["ls", "-q"]), "");
    assert!(!dmw.machine_dir("h1").exists());
    let contexts = dmw.docker(&["context", "ls", "--format", "{{.Name}}"]);
    assert!(
        !contexts.stdout.lines().any(|l| l.trim() == "h1"),
        "rm removes the context: {contexts:?}"
    );
    let current = dmw.docker(&["context", "show"]);
    assert_eq!(
        current.stdout.trim(),
        "default",
        "rm of the current context switches the CLI back: {current:?}"
    );
}

#[test]
fn chain_as_root() {
    chain("root", "chain_as_root");
}

#[test]
fn chain_as_sudo_user() {
    chain("dmw", "chain_as_sudo_user");
}

#[test]
fn two_machines_at_once() {
    if !require_root_or_skip("two_machines_at_once") {
        return;
    }
    let bed = docker_hosts(2);
    let dmw = Dmw::new();
    let children: Vec<_> = bed
        .hosts()
        .iter()
        .zip(["m1", "m2"])
        .map(|(h, name)| {
            let args = Dmw::create_args(h, "root", name);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            dmw.command(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "create failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ls = dmw.ok(&["ls"]);
    for (h, name) in bed.hosts().iter().zip(["m1", "m2"]) {
        let row = ls_row(&ls, name).unwrap_or_else(|| panic!("{name} missing:\n{ls}"));
        assert_eq!(row[3], "Running", "{ls}");
        assert_eq!(row[4], format!("tcp://{}:2376", h.addr()), "{ls}");
        assert!(row[5].starts_with('v'), "{ls}");
        docker_run_ok(&dmw, name);
    }
    dmw.ok(&["rm", "-y", "m1", "m2"]);
}

/// sudoers with `Defaults requiretty` (EL7's default): root commands need a PTY.
#[test]
fn sudo_that_requires_a_tty() {
    if !require_root_or_skip("sudo_that_requires_a_tty") {
        return;
    }
    let bed = docker_hosts(1);
    let host = &bed.hosts()[0];
    host.ssh_ok("root", "echo 'Defaults:dmw requiretty' > /etc/sudoers.d/zz-requiretty && chmod 0440 /etc/sudoers.d/zz-requiretty")
        .expect("require a tty for sudo");
    let plain = host.ssh("dmw", "sudo -n true").expect("ssh");
    assert!(
        !plain.success() && plain.stderr.contains("tty"),
        "sudo must now refuse without a tty: {plain:?}"
    );
    let dmw = Dmw::new();
    let args = Dmw::create_args(host, "dmw", "tty1");
    dmw.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    docker_run_ok(&dmw, "tty1");
    let key = host
        .ssh_ok("root", "cat /etc/docker/server-key.pem | head -1")
        .expect("key installed");
    assert!(
        key.contains("PRIVATE KEY"),
        "the server key was uploaded intact: {key}"
    );
}
