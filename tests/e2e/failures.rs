//! Bad input and broken hosts: each failure names the machine and the step, exits non-zero,
//! and never touches other machines. A failure before the driver's `create` leaves nothing
//! behind (the corrected command can run again with the same name); a later one leaves a
//! record that `ls` shows, `create` of that name explains, and `rm` removes.

use std::path::Path;

use dmw_testbed::{Host, Options, Testbed, require_root_or_skip};

use crate::support::{Dmw, Run, SmallStore, docker_hosts, ls_row, unreachable_create};

/// A crash-on-demand driver built with the guests (tests/plugins/crashy-driver).
const CRASHY: &str = env!("DMW_TEST_CRASHY_DRIVER");

/// Create a record that must survive every failure around it.
fn bystander(dmw: &Dmw) -> Vec<u8> {
    let r = unreachable_create(dmw, &fresh_key(dmw), "bystander")
        .env("DMW_SSH_TIMEOUT", "0")
        .output()
        .expect("create bystander");
    assert_ne!(r.status.code(), Some(0));
    std::fs::read(dmw.machine_dir("bystander").join("config.json")).expect("bystander record")
}

/// Check a failed create: exit code, message naming machine and step, record in `ls`, `rm` works.
fn assert_failed(
    dmw: &Dmw,
    r: &Run,
    name: &str,
    step: &str,
    needle: &str,
    code: i32,
    recorded: bool,
) {
    assert_eq!(r.code, code, "exit code of create {name}: {r:?}");
    let first = r.stderr.lines().next().unwrap_or("");
    assert!(
        first.starts_with(&format!(
            "Error creating machine \"{name}\": {step} failed: "
        )),
        "message must name the machine and the step {step:?}: {r:?}"
    );
    assert!(
        r.stderr.contains(needle),
        "message must contain {needle:?}: {r:?}"
    );
    let ls = dmw.ok(&["ls"]);
    match ls_row(&ls, name) {
        Some(row) if recorded => {
            assert_eq!(row[3], "Error", "{ls}");
            assert!(
                ls.contains(&format!("{step} failed")),
                "ls shows the error:\n{ls}"
            );
            let rm = dmw.ok(&["rm", "-y", name]);
            assert!(rm.contains(&format!("Successfully removed {name}")), "{rm}");
            assert!(ls_row(&dmw.ok(&["ls"]), name).is_none());
        }
        None if !recorded => {
            assert!(
                !dmw.machine_dir(name).exists(),
                "nothing may be left of {name} after a failure before the provider step"
            );
            // Past the name check the directory was claimed, then released: the user is told.
            assert!(
                step == "validate name"
                    || r.stderr
                        .contains("Nothing was created and nothing was kept"),
                "{r:?}"
            );
        }
        other => panic!("record of {name}: expected recorded={recorded}, got {other:?}\n{ls}"),
    }
}

fn create(dmw: &Dmw, args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut c = dmw.command(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("run dmw").into()
}

fn generic(host: &Host, user: &str, key: &Path, name: &str) -> Vec<String> {
    let mut a = Dmw::create_args(host, user, name);
    let i = a
        .iter()
        .position(|x| x == "--generic-ssh-key")
        .expect("key flag")
        + 1;
    a[i] = key.display().to_string();
    a
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn failures_without_a_host() {
    let dmw = Dmw::new();
    let before = bystander(&dmw);

    let r = create(
        &dmw,
        &[
            "create",
            "--driver",
            "generic",
            "--generic-ip-address",
            "127.0.0.1",
            "bad_name",
        ],
        &[],
    );
    assert_failed(
        &dmw,
        &r,
        "bad_name",
        "validate name",
        "Invalid hostname specified. Allowed hostname chars are: 0-9a-zA-Z . -",
        1,
        false,
    );

    let r = create(&dmw, &["create", "--driver", "nosuch", "n1"], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("driver \"nosuch\" not found") && r.stderr.contains("n1"),
        "{r:?}"
    );
    assert!(
        !dmw.machine_dir("n1").exists(),
        "an unknown driver leaves nothing"
    );

    // The existing record is the one to keep: no new record, nothing changed.
    let r = create(
        &dmw,
        &[
            "create",
            "--driver",
            "generic",
            "--generic-ip-address",
            "127.0.0.1",
            "bystander",
        ],
        &[],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.starts_with("Error creating machine \"bystander\": check name failed: Docker machine \"bystander\" already exists: its create failed at step \"wait for SSH\""),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("`dmw provision bystander` resumes it")
            && r.stderr.contains("`dmw rm bystander` removes it"),
        "both ways on are offered: {r:?}"
    );

    let r = create(&dmw, &["create", "--driver", "generic", "n2"], &[]);
    assert_failed(
        &dmw,
        &r,
        "n2",
        "configure driver",
        "generic driver requires the --generic-ip-address option",
        1,
        false,
    );

    // A bad flag value, then the corrected command with the same name.
    let r = create(&dmw, &["create", "--driver", "none", "n3"], &[]);
    assert_failed(
        &dmw,
        &r,
        "n3",
        "configure driver",
        "--url option is required when no driver is selected",
        1,
        false,
    );
    dmw.ok(&[
        "create",
        "--driver",
        "none",
        "--url",
        "tcp://127.0.0.1:2376",
        "--no-docker-context",
        "n3",
    ]);
    assert!(ls_row(&dmw.ok(&["ls"]), "n3").is_some());
    dmw.ok(&["rm", "-y", "n3"]);

    // A closed port on loopback: nothing answers.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
        .to_string();
    let key = fresh_key(&dmw);
    let r = create(
        &dmw,
        &[
            "create",
            "--driver",
            "generic",
            "--generic-ip-address",
            "127.0.0.1",
            "--generic-ssh-port",
            &port,
            "--generic-ssh-key",
            &key,
            "unreach",
        ],
        &[("DMW_SSH_TIMEOUT", "3")],
    );
    assert_failed(
        &dmw,
        &r,
        "unreach",
        "wait for SSH",
        "did not accept an SSH login within 3s",
        1,
        true,
    );

    // Plugins that trap, spin or eat memory are stopped and reported; the host survives.
    for (mode, step, needle) in [
        ("panic", "configure driver", "crashed in set-config"),
        ("spin", "pre-create check", "computed for more than"),
        (
            "oom",
            "pre-create check",
            "ran out of memory in pre-create-check",
        ),
    ] {
        let name = format!("crash-{mode}");
        let r = create(
            &dmw,
            &["create", "--driver", CRASHY, "--crashy-mode", mode, &name],
            &[],
        );
        let code = if step == "pre-create check" { 3 } else { 1 };
        assert_failed(&dmw, &r, &name, step, needle, code, false);
    }

    assert_eq!(
        std::fs::read(dmw.machine_dir("bystander").join("config.json")).expect("bystander"),
        before,
        "bystander record changed"
    );
}

/// A new ed25519 key pair (that no host knows) in the test's store directory.
pub fn fresh_key(dmw: &Dmw) -> String {
    let dir = dmw
        .storage
        .parent()
        .expect("storage has a parent")
        .join("keys");
    std::fs::create_dir_all(&dir).expect("key dir");
    let key = dir.join(format!("id_{}", std::process::id()));
    if !key.exists() {
        let st = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen (openssh-client) is needed");
        assert!(st.success());
    }
    key.display().to_string()
}

#[test]
fn failures_on_real_hosts() {
    if !require_root_or_skip("failures_on_real_hosts") {
        return;
    }
    let plain = Testbed::boot(1, &Options::default()).expect("boot host");
    let bare = Testbed::boot(
        1,
        &Options {
            no_os_release: true,
            ..Options::default()
        },
    )
    .expect("boot host without os-release");
    let host = &plain.hosts()[0];
    let dmw = Dmw::new();
    let before = bystander(&dmw);
    let good_key = host.key_path().to_path_buf();

    let wrong_key = fresh_key(&dmw);
    let r = create(
        &dmw,
        &strs(&generic(host, "root", Path::new(&wrong_key), "wrongkey")),
        &[],
    );
    assert_failed(
        &dmw,
        &r,
        "wrongkey",
        "wait for SSH",
        "refused the SSH key",
        1,
        true,
    );

    let r = create(
        &dmw,
        &strs(&generic(host, "nobody-here", &good_key, "wronguser")),
        &[],
    );
    assert_failed(
        &dmw,
        &r,
        "wronguser",
        "wait for SSH",
        "nobody-here@",
        1,
        true,
    );

    let r = create(
        &dmw,
        &strs(&generic(host, "nosudo", &good_key, "nosudo")),
        &[],
    );
    assert_failed(
        &dmw,
        &r,
        "nosudo",
        "check sudo",
        "cannot run sudo without a password",
        1,
        true,
    );

    let bare_host = &bare.hosts()[0];
    let r = create(
        &dmw,
        &strs(&generic(bare_host, "root", &good_key, "noosrel")),
        &[],
    );
    assert_failed(&dmw, &r, "noosrel", "detect OS", "--recipe", 1, true);

    // An OS no recipe claims: the error lists what was detected.
    bare_host
        .ssh_ok("root", "printf 'ID=plan9\\nVERSION_ID=4\\nPRETTY_NAME=\"Plan 9 from Bell Labs\"\\n' > /etc/os-release")
        .expect("write os-release");
    let r = create(
        &dmw,
        &strs(&generic(bare_host, "root", &good_key, "plan9")),
        &[],
    );
    assert_failed(&dmw, &r, "plan9", "choose recipe", "ID=\"plan9\"", 1, true);
    assert!(
        r.stderr.contains("Plan 9 from Bell Labs") && r.stderr.contains("--recipe"),
        "{r:?}"
    );

    assert_eq!(
        std::fs::read(dmw.machine_dir("bystander").join("config.json")).expect("bystander"),
        before,
        "bystander record changed"
    );
    // No failure left anything on the hosts' side that breaks a later good create.
    dmw.ok(&["rm", "-y", "bystander"]);
}

#[test]
fn engine_that_never_listens() {
    if !require_root_or_skip("engine_that_never_listens") {
        return;
    }
    let bed = docker_hosts(1);
    let host = &bed.hosts()[0];
    let dmw = Dmw::new();
    let mut args = Dmw::create_args(host, "root", "deaf");
    let name = args.pop().expect("name");
    args.extend([
        "--engine-opt".to_string(),
        "no-such-dockerd-flag=1".to_string(),
        name,
    ]);
    let r = create(&dmw, &strs(&args), &[]);
    assert_failed(
        &dmw,
        &r,
        "deaf",
        "configure engine",
        "no-such-dockerd-flag",
        1,
        true,
    );
}

#[test]
fn a_failed_pre_create_check_leaves_nothing_and_the_corrected_create_works() {
    if !require_root_or_skip(
        "a_failed_pre_create_check_leaves_nothing_and_the_corrected_create_works",
    ) {
        return;
    }
    let bed = docker_hosts(1);
    let host = &bed.hosts()[0];
    let dmw = Dmw::new();
    let good = Dmw::create_args(host, "root", "again");
    let r = create(
        &dmw,
        &strs(&generic(host, "root", Path::new("/nonexistent"), "again")),
        &[],
    );
    assert_failed(
        &dmw,
        &r,
        "again",
        "pre-create check",
        "/nonexistent",
        3,
        false,
    );
    assert_eq!(dmw.ok(&["ls", "-q"]).trim(), "", "ls is empty");
    dmw.ok(&strs(&good));
    let ls = dmw.ok(&["ls"]);
    assert_eq!(
        ls_row(&ls, "again").map(|r| r[3].clone()),
        Some("Running".into()),
        "{ls}"
    );
}

/// A hand-broken record (truncated, or a field of the wrong type) is one machine's error:
/// `ls` lists it with what is wrong and the way on, every other machine lists and works,
/// `rm` without -f refuses and names `rm -f`, which removes it and only it.
#[test]
fn a_broken_record_is_listed_with_its_fix_and_rm_f_removes_it_alone() {
    let dmw = Dmw::new();
    for name in ["good", "cut", "typed"] {
        dmw.ok(&["create", "-d", "none", "--url", "tcp://127.0.0.1:1", name]);
    }
    let good_before = std::fs::read(dmw.machine_dir("good").join("config.json")).expect("good");
    let cut = dmw.machine_dir("cut").join("config.json");
    let text = std::fs::read(&cut).expect("cut");
    std::fs::write(&cut, &text[..text.len() / 2]).expect("truncate");
    std::fs::write(
        dmw.machine_dir("typed").join("config.json"),
        br#"{"name": 5}"#,
    )
    .expect("retype");

    let ls = dmw.ok(&["ls"]);
    for broken in ["cut", "typed"] {
        let row = ls_row(&ls, broken).unwrap_or_else(|| panic!("{broken} listed: {ls}"));
        let line = row.join(" ");
        assert!(line.contains("Error"), "{line}");
        assert!(
            line.contains(&format!(
                "fix the file, or `dmw rm -f {broken}` removes the record"
            )),
            "{line}"
        );
    }
    assert!(
        ls_row(&ls, "good").is_some_and(|r| r.join(" ").contains("Running")),
        "{ls}"
    );
    assert_eq!(dmw.ok(&["url", "good"]).trim(), "tcp://127.0.0.1:1");

    let r = dmw.run(&["rm", "-y", "cut"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("Error removing host \"cut\": machine \"cut\": cannot read"),
        "{r:?}"
    );
    assert!(r.stderr.contains("`dmw rm -f cut`"), "{r:?}");
    assert!(dmw.machine_dir("cut").exists(), "kept without -f");

    for broken in ["cut", "typed"] {
        dmw.ok(&["rm", "-f", "-y", broken]);
        assert!(!dmw.machine_dir(broken).exists(), "{broken} removed");
    }
    let ls = dmw.ok(&["ls", "-q"]);
    assert_eq!(ls.trim(), "good");
    assert_eq!(
        std::fs::read(dmw.machine_dir("good").join("config.json")).expect("good"),
        good_before,
        "the other record was not touched"
    );
}

/// `kill -9` of dmw while create waits for SSH: the per-machine lock dies with the process
/// (nothing blocks the next command), `ls` says the create was interrupted and how to go
/// on, `dmw provision` resumes it (here it fails again at the same step, which the record
/// now names) and `rm` removes it at once.
#[test]
fn a_create_killed_while_waiting_for_ssh_is_resumable_and_leaves_no_lock() {
    let dmw = Dmw::new();
    let key = fresh_key(&dmw);
    let mut child = unreachable_create(&dmw, &key, "killed")
        .env("DMW_SSH_TIMEOUT", "300")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start create");
    // Until the create holds the machine (its lock) with an address recorded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // "Creating" alone is not enough: the row says so before the driver's address is
    // saved, and a kill in that window is the other interruption (nothing to resume).
    let has_address = || {
        std::fs::read_to_string(dmw.machine_dir("killed").join("config.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .is_some_and(|record| record["endpoint"].is_object())
    };
    loop {
        let ls = dmw.ok(&["ls"]);
        if ls_row(&ls, "killed").is_some_and(|r| r.join(" ").contains("Creating")) && has_address()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never Creating with an address: {ls}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");

    let ls = dmw.ok(&["ls"]);
    let row = ls_row(&ls, "killed").expect("listed").join(" ");
    assert!(row.contains("Error"), "{row}");
    assert!(
        row.contains("create was interrupted before it finished: `dmw provision killed` resumes it, `dmw rm killed` removes it"),
        "{row}"
    );

    let t = std::time::Instant::now();
    let r = dmw
        .command(&["provision", "killed"])
        .env("DMW_SSH_TIMEOUT", "1")
        .output()
        .expect("provision");
    assert_ne!(r.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("wait for SSH failed"), "{stderr}");
    assert!(
        t.elapsed().as_secs() < 30,
        "provision was blocked: {:?}",
        t.elapsed()
    );
    let row = ls_row(&dmw.ok(&["ls"]), "killed")
        .expect("listed")
        .join(" ");
    assert!(
        row.contains("wait for SSH failed"),
        "the record names the step: {row}"
    );

    let t = std::time::Instant::now();
    dmw.ok(&["rm", "-y", "killed"]);
    assert!(
        t.elapsed().as_secs() < 10,
        "rm was blocked: {:?}",
        t.elapsed()
    );
    assert!(!dmw.machine_dir("killed").exists());
}

/// The store's file system full (a 2 MiB tmpfs): create fails naming the machine, the step
/// and the cause, keeps nothing, touches no other record; once space is freed the same
/// command works.
#[test]
fn a_full_store_fails_create_clearly_and_keeps_every_other_record() {
    if !require_root_or_skip("a_full_store_fails_create_clearly_and_keeps_every_other_record") {
        return;
    }
    let dmw = Dmw::new();
    let _mounted = SmallStore::mount(&dmw, "2m");
    dmw.ok(&[
        "create",
        "-d",
        "none",
        "--url",
        "tcp://127.0.0.1:1",
        "first",
    ]);
    let first = std::fs::read(dmw.machine_dir("first").join("config.json")).expect("first");

    let fill = SmallStore::fill(&dmw);
    let r = dmw.run(&[
        "create",
        "-d",
        "none",
        "--url",
        "tcp://127.0.0.1:2",
        "second",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("Error creating machine \"second\": ")
            && r.stderr.contains("No space left on device"),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains("the store's file system is full; free space there"),
        "{r:?}"
    );
    assert!(!dmw.machine_dir("second").exists(), "nothing kept");
    assert_eq!(
        std::fs::read(dmw.machine_dir("first").join("config.json")).expect("first"),
        first,
        "the other record was not touched"
    );
    let ls = dmw.ok(&["ls", "-q"]);
    assert_eq!(ls.trim(), "first");

    std::fs::remove_file(&fill).expect("free space");
    dmw.ok(&[
        "create",
        "-d",
        "none",
        "--url",
        "tcp://127.0.0.1:2",
        "second",
    ]);
    assert_eq!(dmw.ok(&["ls", "-q"]).split_whitespace().count(), 2);
}

/// Certificates that end within 30 days are told by `ls` and `env` with the command that
/// renews them, and `regenerate-certs` renews them (short-lived ones made with
/// DMW_CERT_DAYS; for a none machine only its client certificates are dmw's).
#[test]
fn certificates_ending_soon_are_told_and_regenerate_certs_renews_them() {
    let dmw = Dmw::new();
    let r = dmw
        .command(&["create", "-d", "none", "--url", "tcp://127.0.0.1:1", "soon"])
        .env("DMW_CERT_DAYS", "10")
        .output()
        .expect("create");
    assert_eq!(r.status.code(), Some(0), "{r:?}");
    let warning = "the client certificate expires on ";
    let renew = "(in 9 days): `dmw regenerate-certs --client-certs soon` renews it";
    let row = ls_row(&dmw.ok(&["ls"]), "soon").expect("listed").join(" ");
    assert!(row.contains(warning) && row.contains(renew), "{row}");
    let env = dmw.run(&["env", "soon"]);
    assert!(
        env.stderr
            .contains(&format!("WARNING: machine \"soon\": {warning}")),
        "{env:?}"
    );

    dmw.ok(&["regenerate-certs", "--client-certs", "-f", "soon"]);
    let row = ls_row(&dmw.ok(&["ls"]), "soon").expect("listed").join(" ");
    assert!(!row.contains(warning), "renewed: {row}");
    let env = dmw.run(&["env", "soon"]);
    assert!(!env.stderr.contains("WARNING"), "{env:?}");
}
