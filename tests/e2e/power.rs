//! start / stop / restart / kill / upgrade through a driver (the recording test driver,
//! whose power actions take the host's real engine down and up), multi-machine commands
//! run in parallel with ordered output, and regenerate-certs / provision on real hosts.

use dmw_testbed::{Host, require_root_or_skip};

use crate::support::{Dmw, Run, docker_hosts, docker_run_ok, ls_row};

/// The recording driver (tests/plugins/recording-driver), built by host/build.rs.
const RECORDING: &str = env!("DMW_TEST_RECORDING_DRIVER");

/// `dmw create` with the recording driver for a testbed host that has docker.io.
fn create_recording(dmw: &Dmw, host: &Host, name: &str) {
    let addr = host.addr().to_string();
    let key = host.key_path().display().to_string();
    dmw.ok(&[
        "create",
        "--driver",
        RECORDING,
        "--recording-ip-address",
        &addr,
        "--recording-ssh-key",
        &key,
        "--engine-install-method",
        "distro",
        name,
    ]);
}

/// The calls the recording driver saw, from the machine's record.
fn calls(dmw: &Dmw, name: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(&dmw.ok(&["inspect", name])).expect("inspect is JSON");
    json["driver_state"]["calls"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Whether the host's engine service is active.
fn engine_active(host: &Host) -> bool {
    host.ssh("root", "systemctl is-active --quiet docker.service")
        .expect("ssh")
        .success()
}

fn fails_with(r: &Run, text: &str) {
    assert_ne!(r.code, 0, "expected a failure: {}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(text),
        "stderr should say {text:?}:\nstdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn power_actions_go_through_the_driver_in_parallel_and_in_order() {
    if !require_root_or_skip("power_actions_go_through_the_driver_in_parallel_and_in_order") {
        return;
    }
    let bed = docker_hosts(2);
    let (a, b) = (&bed.hosts()[0], &bed.hosts()[1]);
    let dmw = Dmw::new();
    create_recording(&dmw, a, "p1");
    create_recording(&dmw, b, "p2");

    // Already in the state asked for: Docker Machine's message, non-zero, no driver call.
    fails_with(
        &dmw.run(&["start", "p1"]),
        "Machine \"p1\" is already running.",
    );
    assert_eq!(calls(&dmw, "p1"), "create");

    // Two machines at once; each machine's lines together, in the order given.
    let out = dmw.ok(&["stop", "p2", "p1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "Stopping \"p2\"...",
            "Machine \"p2\" was stopped.",
            "Stopping \"p1\"...",
            "Machine \"p1\" was stopped.",
        ],
        "{out}"
    );
    assert!(!engine_active(a) && !engine_active(b), "engines stopped");
    assert_eq!(dmw.ok(&["status", "p1"]).trim(), "Stopped");
    let ls = dmw.ok(&["ls"]);
    assert_eq!(ls_row(&ls, "p2").expect("p2 in ls")[3], "Stopped", "{ls}");
    fails_with(
        &dmw.run(&["kill", "p1"]),
        "Machine \"p1\" is already stopped.",
    );

    // One missing name fails the command but not the others, and is reported in its place.
    let r = dmw.run(&["start", "p1", "nosuch", "p2"]);
    fails_with(&r, "Docker machine \"nosuch\" does not exist.");
    assert!(
        r.stdout.contains("Machine \"p1\" was started."),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Machine \"p2\" was started."),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.find("\"p1\" was started") < r.stdout.find("Starting \"p2\""),
        "order: {}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("may have new IP addresses"),
        "the closing hint is for a command that succeeded: {}",
        r.stdout
    );
    assert!(engine_active(a) && engine_active(b), "engines started");
    docker_run_ok(&dmw, "p1");

    // Restart of a running machine restarts it; of a stopped one, starts it. Both wait for
    // the engine before saying done.
    let out = dmw.ok(&["restart", "p1"]);
    assert!(out.contains("Machine \"p1\" was restarted."), "{out}");
    assert!(
        out.contains("Restarted machines may have new IP addresses."),
        "{out}"
    );
    dmw.ok(&["kill", "p2"]);
    assert!(!engine_active(b));
    let out = dmw.ok(&["restart", "p2"]);
    assert!(out.contains("Machine \"p2\" was restarted."), "{out}");
    assert!(engine_active(b));
    docker_run_ok(&dmw, "p2");

    assert_eq!(calls(&dmw, "p1"), "create,stop,start,restart");
    assert_eq!(calls(&dmw, "p2"), "create,stop,start,kill,start");

    // upgrade starts a stopped machine first, then upgrades through the recipe.
    dmw.ok(&["stop", "p2"]);
    let out = dmw.ok(&["upgrade", "p2"]);
    assert!(
        out.contains("Starting machine so machine can be upgraded..."),
        "{out}"
    );
    assert!(out.contains("Upgrading docker..."), "{out}");
    assert!(
        out.contains("Machine \"p2\" was upgraded: Docker "),
        "{out}"
    );
    docker_run_ok(&dmw, "p2");

    dmw.ok(&["rm", "-y", "p1", "p2"]);
    let out = dmw.ok(&["ls", "-q"]);
    assert!(out.trim().is_empty(), "{out}");
}

#[test]
fn regenerate_certs_and_provision_apply_for_real() {
    if !require_root_or_skip("regenerate_certs_and_provision_apply_for_real") {
        return;
    }
    let bed = docker_hosts(1);
    let host = &bed.hosts()[0];
    let dmw = Dmw::new();
    let args = Dmw::create_args(host, "root", "c1");
    dmw.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let read = |path: std::path::PathBuf| std::fs::read_to_string(&path).expect("read pem");
    let certs = dmw.machine_dir("c1").join("../../certs");
    let ca = || read(certs.join("ca.pem"));
    let server = || read(dmw.machine_dir("c1").join("server.pem"));
    let (ca0, server0) = (ca(), server());

    // The generic driver cannot start, stop or kill: its own words, nothing changes.
    fails_with(
        &dmw.run(&["stop", "c1"]),
        "generic driver does not support stop",
    );
    fails_with(
        &dmw.run(&["kill", "c1"]),
        "generic driver does not support kill",
    );

    // Answering no to the prompt changes nothing.
    let mut no = dmw.command(&["regenerate-certs", "c1"]);
    no.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = no.spawn().expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"n\n").expect("answer");
    }
    let r: Run = child.wait_with_output().expect("wait").into();
    // Exit 0, as Docker Machine: declining is not a failure.
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Aborted"), "{r:?}");
    assert!(
        r.stdout.contains("Regenerate TLS machine certs?"),
        "{}",
        r.stdout
    );
    assert_eq!(server(), server0);

    // Server certificate only: new server cert, same CA, docker still connects.
    let out = dmw.ok(&["regenerate-certs", "-f", "c1"]);
    assert!(out.contains("Regenerating TLS certificates"), "{out}");
    assert_ne!(server(), server0, "a new server certificate");
    assert_eq!(ca(), ca0, "the CA is kept without --client-certs");
    docker_run_ok(&dmw, "c1");

    // --client-certs really replaces the CA and the client certificate (Docker Machine
    // kept valid ones); env and the docker context both work with the new ones.
    let out = dmw.ok(&["regenerate-certs", "--force", "--client-certs", "c1"]);
    assert!(out.contains("Regenerating local certificates"), "{out}");
    assert_ne!(ca(), ca0, "a new CA");
    assert_eq!(read(dmw.machine_dir("c1").join("ca.pem")), ca());
    docker_run_ok(&dmw, "c1");
    let ctx = dmw.docker(&["--context", "c1", "ps"]);
    assert_eq!(ctx.code, 0, "docker context refreshed: {}", ctx.stderr);

    // provision after editing the stored options applies them: a new engine label.
    let record_path = dmw.machine_dir("c1").join("config.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).expect("record"))
            .expect("record JSON");
    record["engine"]["labels"] = serde_json::json!(["tier=edited"]);
    std::fs::write(&record_path, record.to_string()).expect("write record");
    dmw.ok(&["provision", "c1"]);
    let labels = dmw.with_env("c1", "docker info --format '{{json .Labels}}'");
    assert_eq!(labels.code, 0, "{}", labels.stderr);
    assert!(labels.stdout.contains("tier=edited"), "{}", labels.stdout);
    dmw.ok(&["rm", "-y", "c1"]);
}

#[test]
fn multi_machine_commands_name_what_is_missing() {
    let dmw = Dmw::new();
    for cmd in [
        "start",
        "stop",
        "restart",
        "kill",
        "upgrade",
        "provision",
        "regenerate-certs",
    ] {
        let r = dmw.run(
            &[cmd, "-f"]
                .into_iter()
                .filter(|a| cmd == "regenerate-certs" || *a != "-f")
                .collect::<Vec<_>>(),
        );
        assert_eq!(r.code, 1, "{cmd}: {r:?}");
        assert_eq!(
            r.stderr.trim(),
            "Error: No machine name(s) specified and no \"default\" machine exists",
            "{cmd}"
        );
        let r = dmw.run(&[cmd, "ghost"]);
        assert_eq!(r.code, 1, "{cmd}: {r:?}");
        assert!(
            r.stderr.contains(
                "Docker machine \"ghost\" does not exist. Use \"dmw ls\" to list machines. Use \"dmw create\" to add a new one."
            ),
            "{cmd}: {r:?}"
        );
    }
    let r = dmw.run(&["rm", "-y"]);
    assert_eq!(
        r.stderr.trim(),
        "Error: Expected to get one or more machine names as arguments"
    );
    assert!(r.stdout.starts_with("Remove a machine"), "{r:?}");
    let r = dmw.run(&["rm", "-y", "ghost"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        "Error removing host \"ghost\": Docker machine \"ghost\" does not exist. Use \"dmw ls\" to list machines. Use \"dmw create\" to add a new one."
    );
    // A name that cannot be a machine never becomes a path.
    let r = dmw.run(&["stop", "../../escape"]);
    assert_eq!(r.code, 1);
    assert!(!dmw.machine_dir("x").join("../../../escape").exists());
}
