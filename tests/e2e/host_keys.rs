//! A machine whose SSH host key changed (rebuilt, or someone in the middle): every SSH
//! path of dmw stops before sending anything, shows the pinned and the offered
//! fingerprints and the one command that accepts the new key; that command pins only the
//! key the user names, then provisions.

use dmw_testbed::require_root_or_skip;

use crate::support::{Dmw, docker_hosts, docker_run_ok};

#[test]
fn a_changed_host_key_stops_every_ssh_path_until_the_user_accepts_the_new_one() {
    if !require_root_or_skip(
        "a_changed_host_key_stops_every_ssh_path_until_the_user_accepts_the_new_one",
    ) {
        return;
    }
    let bed = docker_hosts(1);
    let host = &bed.hosts()[0];
    let dmw = Dmw::new();
    let args = Dmw::create_args(host, "root", "hk");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    dmw.ok(&args);

    // New host keys, as a rebuilt machine has.
    host.ssh_ok(
        "root",
        "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh",
    )
    .expect("new host keys");
    let new_key = host
        .ssh_ok("root", "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")
        .expect("fingerprint");
    let new_fp = new_key
        .split_whitespace()
        .nth(1)
        .expect("fingerprint field");
    assert!(new_fp.starts_with("SHA256:"), "{new_key}");

    let changed = |r: &crate::support::Run, what: &str| {
        assert_ne!(r.code, 0, "{what}: {r:?}");
        assert!(
            r.stderr.contains("changed since it was pinned")
                && r.stderr.contains(&format!("offered now {new_fp}"))
                && r.stderr.contains("pinned SHA256:")
                && r.stderr.contains(&format!(
                    "`dmw provision --accept-host-key {new_fp} hk` pins it"
                )),
            "{what}: {r:?}"
        );
    };
    changed(
        &dmw.run(&["--native-ssh", "ssh", "hk", "true"]),
        "native ssh",
    );
    changed(&dmw.run(&["provision", "hk"]), "provision");
    let local = dmw.storage.with_file_name("payload");
    std::fs::write(&local, b"x").expect("payload");
    changed(
        &dmw.run(&["scp", &local.display().to_string(), "hk:/tmp/payload"]),
        "scp",
    );
    // The system ssh refuses too (OpenSSH's own words).
    let r = dmw.run(&["ssh", "hk", "true"]);
    assert_ne!(r.code, 0, "system ssh: {r:?}");
    assert!(
        host.ssh("root", "test -e /tmp/payload")
            .is_ok_and(|o| !o.success()),
        "nothing was sent"
    );

    // A key the machine does not offer is not pinned.
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let r = dmw.run(&["provision", "--accept-host-key", wrong, "hk"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "offers the host key {new_fp}, not {wrong}: nothing was pinned"
        )),
        "{r:?}"
    );
    changed(
        &dmw.run(&["--native-ssh", "ssh", "hk", "true"]),
        "still refused",
    );

    // The key the user checked is pinned, and the machine is provisioned again.
    let out = dmw.ok(&["provision", "--accept-host-key", new_fp, "hk"]);
    assert!(
        out.contains(&format!("Host key {new_fp} pinned for \"hk\"")),
        "{out}"
    );
    assert_eq!(
        dmw.ok(&["--native-ssh", "ssh", "hk", "echo", "ok"]).trim(),
        "ok"
    );
    docker_run_ok(&dmw, "hk");
    dmw.ok(&["rm", "-y", "hk"]);
}
