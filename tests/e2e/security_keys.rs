//! Hostile plugins against the user's keys and environment (security findings 1, 4, 8):
//! a driver may not pick the key file the host logs in with, never gets the user's own
//! keys offered to an sshd it chose, and cannot read environment variables or take over
//! flags that are not its own. No testbed host is needed: the "attacker's sshd" is a
//! recording server on 127.0.0.1.

use std::path::Path;

use crate::ssh_probe::{SshProbe, public_key_of};
use crate::support::{Dmw, Run};

/// The driver that chooses keys (tests/plugins/hostile-keys-driver).
const HOSTILE_KEYS: &str = env!("DMW_TEST_HOSTILE_KEYS_DRIVER");
/// The driver that reaches for others' flags and variables (tests/plugins/hostile-flags-driver).
const HOSTILE_FLAGS: &str = env!("DMW_TEST_HOSTILE_FLAGS_DRIVER");

/// A home directory with an SSH key of the user's own in `~/.ssh/id_ed25519`.
fn home_with_user_key(dmw: &Dmw) -> std::path::PathBuf {
    let home = dmw.storage.with_file_name("home");
    std::fs::create_dir_all(home.join(".ssh")).expect("~/.ssh");
    let key = home.join(".ssh/id_ed25519");
    if !key.exists() {
        let st = std::process::Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "user's own key",
                "-f",
            ])
            .arg(&key)
            .status()
            .expect("ssh-keygen");
        assert!(st.success());
    }
    home
}

fn create(dmw: &Dmw, home: &Path, args: &[&str]) -> Run {
    dmw.command(args)
        .env("HOME", home)
        .env("DMW_SSH_TIMEOUT", "3")
        .output()
        .expect("run dmw")
        .into()
}

#[test]
fn a_driver_cannot_choose_the_key_file() {
    let dmw = Dmw::new();
    let home = home_with_user_key(&dmw);
    let probe = SshProbe::start();
    let port = probe.addr.port().to_string();

    // 1. A path the driver picked itself (its flag's default, never typed by the user),
    //    here holding a real private key of the user's.
    let victim_dir = Path::new("/tmp/dmw-hostile-victim");
    std::fs::create_dir_all(victim_dir).expect("victim dir");
    std::fs::copy(home.join(".ssh/id_ed25519"), victim_dir.join("id_ed25519")).expect("victim");
    let r = create(
        &dmw,
        &home,
        &[
            "create",
            "-d",
            HOSTILE_KEYS,
            "--hostile-keys-port",
            &port,
            "k1",
        ],
    );
    assert_eq!(r.code, 3, "refused as a pre-create check: {r:?}");
    assert!(
        r.stderr.contains("machine \"k1\"")
            && r.stderr.contains("/tmp/dmw-hostile-victim/id_ed25519")
            && r.stderr.contains("not given on the command line"),
        "{r:?}"
    );

    // 2. The CA key (and any other file of the store), even when the user typed it.
    let ca_key = dmw.storage.join("certs/ca-key.pem");
    assert!(ca_key.exists(), "the first create made the CA");
    let ca = ca_key.display().to_string();
    let r = create(
        &dmw,
        &home,
        &[
            "create",
            "-d",
            HOSTILE_KEYS,
            "--hostile-keys-port",
            &port,
            "--hostile-keys-file",
            &ca,
            "k2",
        ],
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("inside dmw's store"), "{r:?}");

    // Neither attempt reached the attacker's sshd, and no key was copied anywhere.
    assert_eq!(probe.seen().connections, 0, "{:?}", probe.seen());
    for name in ["k1", "k2"] {
        assert!(
            !dmw.machine_dir(name).join("id_ssh").exists(),
            "{name} got a key"
        );
    }
}

#[test]
fn a_driver_that_names_no_key_gets_a_new_one_never_the_users() {
    let dmw = Dmw::new();
    let home = home_with_user_key(&dmw);
    let user_key = public_key_of(&home.join(".ssh/id_ed25519.pub"));
    let probe = SshProbe::start();
    let port = probe.addr.port().to_string();

    let r = create(
        &dmw,
        &home,
        &[
            "create",
            "-d",
            HOSTILE_KEYS,
            "--hostile-keys-mode",
            "no-key",
            "--hostile-keys-port",
            &port,
            "k3",
        ],
    );
    // The probe rejects every login: create fails after the provider step.
    assert_ne!(r.code, 0, "{r:?}");
    let machine_pub = dmw.machine_dir("k3").join("id_ssh.pub");
    let machine_key = public_key_of(&machine_pub);
    let seen = probe.seen();
    assert!(seen.connections > 0, "dmw tried the endpoint: {r:?}");
    assert!(!seen.keys.is_empty(), "a key was offered: {seen:?}");
    assert!(
        seen.keys.iter().all(|k| *k == machine_key),
        "only the machine's own key may be offered, saw {seen:?}"
    );
    assert!(!seen.keys.contains(&user_key), "the user's key was offered");

    // Not granted `keys`, the driver did not even see the public half; the private half
    // stays in the machine's directory.
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dmw.machine_dir("k3").join("config.json")).expect("record"),
    )
    .expect("json");
    let text = record.to_string();
    assert!(
        record["driver_state"]["seen-public-key"].is_null(),
        "{text}"
    );
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains("ssh-ed25519"),
        "{text}"
    );
    let private = std::fs::read_to_string(dmw.machine_dir("k3").join("id_ssh")).expect("key");
    assert!(private.contains("OPENSSH PRIVATE KEY"));
}

#[test]
fn a_driver_cannot_read_foreign_variables_or_take_dmw_flags() {
    let dmw = Dmw::new();
    let secret = "ghp_dmwHostileTestSecret0123456789";
    let run = |args: &[&str]| -> Run {
        dmw.command(args)
            .env("GITHUB_TOKEN", secret)
            .output()
            .expect("run dmw")
            .into()
    };
    let r = run(&["create", "-d", HOSTILE_FLAGS, "f1"]);
    assert_eq!(r.code, 1, "{r:?}");
    for needle in [
        "GITHUB_TOKEN",
        "HOME",
        "--tls-san",
        "--engine-opt",
        "cannot be used",
    ] {
        assert!(r.stderr.contains(needle), "{needle} not named: {r:?}");
    }
    // --help is refused the same way: it never prints `[env: GITHUB_TOKEN=...]`.
    let help = run(&["create", "-d", HOSTILE_FLAGS, "--help"]);
    for out in [&r.stdout, &r.stderr, &help.stdout, &help.stderr] {
        assert!(!out.contains(secret), "the secret leaked: {out}");
    }
    assert!(!dmw.machine_dir("f1").exists(), "nothing is recorded");
    let holders = crate::support::files_containing(&dmw.storage, secret);
    assert!(
        holders.is_empty(),
        "these files hold the secret: {holders:?}"
    );
}

#[test]
fn wasi_grants_a_driver_nothing() {
    let dmw = Dmw::new();
    let home = home_with_user_key(&dmw);
    let probe = SshProbe::start();
    let port = probe.addr.port().to_string();
    // A first create makes the CA, whose key the sandboxed driver then tries to read.
    let _ = create(
        &dmw,
        &home,
        &[
            "create",
            "-d",
            HOSTILE_KEYS,
            "--hostile-keys-port",
            &port,
            "s0",
        ],
    );
    let ca = dmw.storage.join("certs/ca-key.pem").display().to_string();
    let r = create(
        &dmw,
        &home,
        &[
            "create",
            "-d",
            HOSTILE_KEYS,
            "--hostile-keys-mode",
            "sandbox",
            "--hostile-keys-port",
            &port,
            "--hostile-keys-file",
            &ca,
            "s1",
        ],
    );
    // The sandbox check passes (nothing was reachable); the create then stops at the key
    // the driver named (inside the store), before any connection.
    assert!(!r.stderr.contains("sandbox escaped"), "{r:?}");
    assert!(r.stderr.contains("inside dmw's store"), "{r:?}");
    assert_eq!(
        probe.seen().connections,
        0,
        "the driver reached 127.0.0.1:{port}"
    );
}
