//! A machine whose address changed (a cloud server stopped and started, a new DHCP
//! lease): once its record holds the new address (as a provider's `start` records it),
//! SSH still works — the same host key at the new address is the same machine — `ls` and
//! `env` say the certificate does not name the new address (not a bare x509 error), and
//! `regenerate-certs` re-issues it.

use dmw_testbed::require_root_or_skip;

use crate::support::{Dmw, docker_hosts, docker_run_ok, ls_row};

#[test]
fn a_new_address_is_told_and_regenerate_certs_re_issues_the_certificate() {
    if !require_root_or_skip("a_new_address_is_told_and_regenerate_certs_re_issues_the_certificate")
    {
        return;
    }
    let bed = docker_hosts(1);
    let host = &bed.hosts()[0];
    let dmw = Dmw::new();
    let args = Dmw::create_args(host, "root", "moved");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    dmw.ok(&args);

    let new = host.change_addr().expect("new address").to_string();
    // What a provider's `start` does: record the address the driver reports now.
    let path = dmw.machine_dir("moved").join("config.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("record")).expect("json");
    record["endpoint"]["address"] = serde_json::json!(new);
    record["endpoint"]["ssh_address"] = serde_json::json!(new);
    std::fs::write(&path, record.to_string()).expect("write record");

    let told = format!(
        "its server certificate does not name its address {new} (the address changed since it was issued): `dmw regenerate-certs moved` re-issues it"
    );
    let row = ls_row(&dmw.ok(&["ls"]), "moved").expect("listed").join(" ");
    assert!(row.contains(&told), "{row}");
    let env = dmw.run(&["env", "moved"]);
    assert!(env.stderr.contains(&told), "{env:?}");
    // The same host key at the new address: SSH works without a prompt or a new pin.
    assert_eq!(
        dmw.ok(&["--native-ssh", "ssh", "moved", "echo", "same"])
            .trim(),
        "same"
    );

    dmw.ok(&["regenerate-certs", "-f", "moved"]);
    let row = ls_row(&dmw.ok(&["ls"]), "moved").expect("listed").join(" ");
    assert!(!row.contains("does not name"), "{row}");
    assert!(row.contains(&format!("tcp://{new}:2376")), "{row}");
    docker_run_ok(&dmw, "moved");
    dmw.ok(&["rm", "-y", "moved"]);
}
