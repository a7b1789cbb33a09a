//! Plugins written in Python, built with `dmw plugin build` (componentize-py from the venv
//! scripts/setup makes): the template recipe (recipes/template-python) provisions a real
//! host of the OS it is written for to a working Docker engine and re-provisions it without
//! a restart, and `dmw plugin declare` writes permissions into it that inspect and install
//! treat exactly as a Rust plugin's; the template driver (guest-drivers/template-python)
//! creates, lists and removes a machine on a real host.

use dmw_testbed::require_root_or_skip;

use crate::support::{Dmw, docker_hosts, docker_run_ok, ls_row};

/// `dmw plugin build` of the Python plugin in `folder` (from the repository's root) into
/// `out`.
fn build_python(dmw: &Dmw, folder: &str, out: &std::path::Path) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(folder);
    let built = dmw
        .command(&["plugin", "build", &dir.display().to_string(), "-o"])
        .arg(out)
        .env(
            "DMW_COMPONENTIZE_PY",
            dmw_testbed::venv_program("componentize-py"),
        )
        .output()
        .expect("dmw plugin build");
    assert!(built.status.success(), "{built:?}");
}

#[test]
fn a_python_recipe_provisions_a_real_host() {
    if !require_root_or_skip("a_python_recipe_provisions_a_real_host") {
        return;
    }
    let dmw = Dmw::new();
    let wasm = dmw.storage.with_file_name("acme.wasm");
    build_python(&dmw, "recipes/template-python", &wasm);

    // A host of the golden image the recipe is written for (its engine already there).
    let bed = docker_hosts(1);
    let host = &bed.hosts()[0];
    let os_release = host.root_dir().join("etc/os-release");
    let _ = std::fs::remove_file(&os_release);
    std::fs::write(
        &os_release,
        "ID=acme\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"9\"\nPRETTY_NAME=\"ACME Golden Image 9\"\n",
    )
    .expect("os-release");

    let mut args = Dmw::create_args(host, "root", "py1");
    args.splice(
        args.len() - 1..args.len() - 1,
        ["--recipe".to_string(), wasm.display().to_string()],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = dmw.ok(&args);
    for said in [
        "(acme) Docker Engine is already installed (",
        "Copying certs to the remote machine...",
        "Restarting docker...",
        "Docker is up and running!",
    ] {
        assert!(out.contains(said), "{said:?} not in:\n{out}");
    }
    let row = ls_row(&dmw.ok(&["ls"]), "py1").expect("listed");
    assert_eq!(row[3], "Running", "{row:?}");
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dmw.machine_dir("py1").join("config.json")).expect("record"),
    )
    .expect("json");
    assert_eq!(record["recipe"]["name"], "acme", "{record}");
    docker_run_ok(&dmw, "py1");
    // Run again: the same drop-in and certificates, no restart (as the Rust recipes).
    let again = dmw.ok(&["provision", "py1"]);
    assert!(
        again.contains("already runs with this configuration and these certificates"),
        "{again}"
    );
    dmw.ok(&["rm", "-y", "py1"]);

    // Permissions written into it: inspect and install read them as a Rust plugin's.
    let perms = dmw.storage.with_file_name("perms.toml");
    std::fs::write(
        &perms,
        "capabilities = [\"process\"]\n[[programs]]\nname = \"true\"\n",
    )
    .expect("perms");
    let declared = dmw.storage.with_file_name("acme-declared.wasm");
    let said = dmw.ok(&[
        "plugin",
        "declare",
        &perms.display().to_string(),
        &wasm.display().to_string(),
        "-o",
        &declared.display().to_string(),
    ]);
    assert!(said.contains("declares: process, program true"), "{said}");
    let inspect = dmw.ok(&["plugin", "inspect", &declared.display().to_string()]);
    assert!(
        inspect.contains("asks for:    capability process, runs true with any arguments")
            && inspect.contains("FULL TRUST"),
        "{inspect}"
    );
    let refused = dmw.run(&["plugin", "install", "-y", &declared.display().to_string()]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("--full-trust"), "{refused:?}");
    // The undeclared original still loads with the default grant.
    assert!(
        dmw.ok(&["plugin", "inspect", &wasm.display().to_string()])
            .contains("usable here: yes")
    );
}

#[test]
fn a_python_driver_creates_lists_and_removes_a_machine() {
    if !require_root_or_skip("a_python_driver_creates_lists_and_removes_a_machine") {
        return;
    }
    let dmw = Dmw::new();
    let wasm = dmw.storage.with_file_name("existing.wasm");
    build_python(&dmw, "guest-drivers/template-python", &wasm);
    let bed = docker_hosts(1);
    let host = &bed.hosts()[0];
    let out = dmw.ok(&[
        "create",
        "--driver",
        &wasm.display().to_string(),
        "--existing-host",
        &host.addr().to_string(),
        "--existing-ssh-port",
        &host.ssh_port().to_string(),
        "--existing-ssh-key",
        &host.key_path().display().to_string(),
        "--engine-install-method",
        "distro",
        "pyd",
    ]);
    assert!(
        out.contains(&format!(
            "(existing) Using the existing machine at {}",
            host.addr()
        )) && out.contains("Docker is up and running!"),
        "{out}"
    );
    let row = ls_row(&dmw.ok(&["ls"]), "pyd").expect("listed");
    assert_eq!(
        (row[2].as_str(), row[3].as_str()),
        ("existing", "Running"),
        "{row:?}"
    );
    docker_run_ok(&dmw, "pyd");
    // What the driver does not do is said in its words.
    let stop = dmw.run(&["stop", "pyd"]);
    assert!(
        stop.code != 0
            && stop
                .stderr
                .contains("existing driver does not support stop"),
        "{stop:?}"
    );
    dmw.ok(&["rm", "-y", "pyd"]);
    assert!(!dmw.machine_dir("pyd").exists());
}
