//! The permission model: a plugin file that declares more than the default grant stops
//! before it runs until the user approves it (`dmw plugin install`, pinned by sha256); an
//! approved file that changed is refused until approved again; `plugin inspect` shows what a
//! plugin asks for and which environment variables it reads, without running it with any
//! capability.

use crate::support::{Dmw, Run};

/// A driver that declares the `keys` capability (tests/plugins/keys-driver).
const KEYS: &str = env!("DMW_TEST_KEYS_DRIVER");

fn run(dmw: &Dmw, args: &[&str]) -> Run {
    dmw.command(args)
        .env("DMW_SSH_TIMEOUT", "0")
        .output()
        .expect("run dmw")
        .into()
}

#[test]
fn a_plugin_asking_for_more_runs_only_once_approved_and_unchanged() {
    let dmw = Dmw::new();
    let dir = dmw.storage.with_file_name("plugins");
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("keys.wasm");
    std::fs::copy(KEYS, &file).expect("copy");
    let path = file.display().to_string();

    // Used by path: stops before it runs, saying what it asks for and how to allow it.
    let r = run(&dmw, &["create", "-d", &path, "k1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("asks for more than dmw grants a plugin used by path")
            && r.stderr.contains("capability keys")
            && r.stderr.contains(&format!("dmw plugin install {path}")),
        "{r:?}"
    );
    assert!(!dmw.machine_dir("k1").exists());

    // Inspect: plain words and JSON, without approving anything.
    let text = dmw.ok(&["plugin", "inspect", &path]);
    assert!(
        text.contains("asks for:    capability keys")
            && text.contains("environment: reads KEYS_PORT")
            && text.contains("usable here: no"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&dmw.ok(&["plugin", "inspect", "-o", "json", &path])).expect("json");
    assert_eq!(json["asks_beyond_default"][0], "capability keys", "{json}");
    assert_eq!(json["kind"], "driver");
    let builtin = dmw.ok(&["plugin", "inspect", "builtin:generic"]);
    assert!(
        builtin.contains("asks for:    none") && builtin.contains("GENERIC_SSH_KEY"),
        "{builtin}"
    );

    // Approved: usable by name, and granted `keys` (it sees the machine's public key).
    let out = dmw.ok(&["plugin", "install", "--yes", &path]);
    assert!(out.contains("Installed driver \"keys\""), "{out}");
    assert!(dmw.ok(&["plugin", "ls"]).contains(&path));
    let r = run(&dmw, &["create", "-d", "keys", "--no-docker-context", "k2"]);
    assert!(
        r.stderr.contains("wait for SSH failed"),
        "got past the provider step: {r:?}"
    );
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dmw.machine_dir("k2").join("config.json")).expect("record"),
    )
    .expect("json");
    let machine_pub =
        std::fs::read_to_string(dmw.machine_dir("k2").join("id_ssh.pub")).expect("pub");
    assert_eq!(
        record["driver_state"]["seen-public-key"]
            .as_str()
            .map(str::trim),
        Some(machine_pub.trim()),
        "{record}"
    );

    // The file changes (a custom section appended: still a valid component): refused by
    // name and by path until approved again.
    let mut bytes = std::fs::read(&file).expect("read");
    bytes.extend_from_slice(&[0, 4, 3, b'x', b'y', b'z']);
    std::fs::write(&file, &bytes).expect("change");
    for driver in ["keys", path.as_str()] {
        let r = run(&dmw, &["create", "-d", driver, "k3"]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(
            r.stderr.contains("changed since you installed it"),
            "{driver}: {r:?}"
        );
        assert!(!dmw.machine_dir("k3").exists());
    }

    // Withdrawn: the name is gone.
    dmw.ok(&["plugin", "rm", "keys"]);
    let r = run(&dmw, &["create", "-d", "keys", "k4"]);
    assert!(r.stderr.contains("driver \"keys\" not found"), "{r:?}");
}
