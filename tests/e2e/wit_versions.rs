//! Plugins built against an older WIT version keep working: the checked-in 0.1.0 driver and
//! recipe (tests/plugins/wit-0.1.0, never rebuilt) create a machine the docker CLI can use.

use dmw_testbed::require_root_or_skip;

use crate::support::{Dmw, docker_hosts, docker_run_ok, ls_row};

/// The directory of the checked-in 0.1.0 components.
fn fixture(file: &str) -> String {
    format!(
        "{}/../tests/plugins/wit-0.1.0/{file}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn wit_0_1_0_driver_and_recipe_create_a_working_machine() {
    if !require_root_or_skip("wit_0_1_0_driver_and_recipe_create_a_working_machine") {
        return;
    }
    let bed = docker_hosts(1);
    let host = &bed.hosts()[0];
    let dmw = Dmw::new();
    let driver = fixture("recording-driver.wasm");
    let recipe = fixture("debian-recipe.wasm");
    let key = host.key_path().display().to_string();
    dmw.ok(&[
        "create",
        "--driver",
        &driver,
        "--recipe",
        &recipe,
        "--recording-ip-address",
        &host.addr().to_string(),
        "--recording-ssh-key",
        &key,
        "--engine-install-method",
        "distro",
        "--no-docker-context",
        "old",
    ]);
    let ls = dmw.ok(&["ls"]);
    assert_eq!(
        ls_row(&ls, "old").map(|r| r[3].clone()),
        Some("Running".to_string()),
        "{ls}"
    );
    docker_run_ok(&dmw, "old");
    dmw.ok(&["rm", "-y", "old"]);
}
