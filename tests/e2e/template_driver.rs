//! The driver template (guest-drivers/template), loaded by path as a user's own driver
//! would be: `dmw create --driver ./x.wasm`, once approved with `dmw plugin install`. Its flags join the command line (and their
//! environment variables are read), its checks fail with its own messages at the steps
//! and exit codes of Docker Machine, and a good configuration reaches the driver's
//! `create`. No testbed host is needed: the machine's SSH port is a closed port on
//! loopback.

use crate::support::{Dmw, Run, ls_row};

/// The template driver, built with the guests.
const TEMPLATE: &str = env!("DMW_TEST_TEMPLATE_DRIVER");

fn create(dmw: &Dmw, args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut c = dmw.command(&["create", "--driver", TEMPLATE]);
    c.args(args).env("DMW_SSH_TIMEOUT", "3");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("run dmw").into()
}

/// A create that failed before the provider step: `code`, the message naming the
/// machine, the step and `needle`, and nothing kept.
fn refused(dmw: &Dmw, r: &Run, name: &str, step: &str, needle: &str, code: i32) {
    assert_eq!(r.code, code, "{r:?}");
    assert!(
        r.stderr.starts_with(&format!(
            "Error creating machine \"{name}\": {step} failed: "
        )),
        "{r:?}"
    );
    assert!(r.stderr.contains(needle), "{needle:?}: {r:?}");
    assert!(!dmw.machine_dir(name).exists(), "nothing kept of {name}");
}

#[test]
fn template_driver_loads_by_path_and_checks_its_flags() {
    let dmw = Dmw::new();

    // It declares `keys` (it reads the machine's public key): by path it stops until the
    // user approves it.
    let r = create(&dmw, &["t0"], &[]);
    refused(
        &dmw,
        &r,
        "t0",
        "load driver",
        &format!("dmw plugin install {TEMPLATE}"),
        1,
    );
    dmw.ok(&["plugin", "install", "--yes", TEMPLATE]);

    let r = create(&dmw, &["t1"], &[]);
    refused(
        &dmw,
        &r,
        "t1",
        "configure driver",
        "template driver requires the --template-host option",
        1,
    );

    // Its environment variables stand in for its flags.
    let r = create(
        &dmw,
        &["t2"],
        &[
            ("TEMPLATE_HOST", "127.0.0.1"),
            ("TEMPLATE_SSH_PORT", "70000"),
        ],
    );
    refused(
        &dmw,
        &r,
        "t2",
        "configure driver",
        "--template-ssh-port must be a TCP port between 1 and 65535, got 70000",
        1,
    );

    // Its pre-create check, with Docker Machine's exit code 3.
    let r = create(
        &dmw,
        &[
            "--template-host",
            "127.0.0.1",
            "--template-ssh-port",
            "2376",
            "t3",
        ],
        &[],
    );
    refused(
        &dmw,
        &r,
        "t3",
        "pre-create check",
        "--template-ssh-port and --template-engine-port must differ",
        3,
    );
}

#[test]
fn template_driver_reaches_create_and_gets_a_key_pair_from_the_host() {
    let dmw = Dmw::new();
    // Approved once (it declares `keys`), as its user would.
    dmw.ok(&["plugin", "install", "--yes", TEMPLATE]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
        .to_string();
    let r = create(
        &dmw,
        &[
            "--template-host",
            "127.0.0.1",
            "--template-ssh-port",
            &port,
            "t4",
        ],
        &[],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("Using the existing machine at 127.0.0.1")
            || r.stderr.contains("Using the existing machine at 127.0.0.1"),
        "the driver's create ran: {r:?}"
    );
    assert!(
        r.stderr
            .starts_with("Error creating machine \"t4\": wait for SSH failed: "),
        "{r:?}"
    );
    // No key was named: the host made a pair and gave the driver (granted `keys`) the public half.
    let record = std::fs::read_to_string(dmw.machine_dir("t4").join("config.json"))
        .expect("the record is kept after the provider step");
    assert!(
        !record.contains("dmw:ssh-public-key"),
        "lent through keys, not the store: {record}"
    );
    let machine_pub =
        std::fs::read_to_string(dmw.machine_dir("t4").join("id_ssh.pub")).expect("pub");
    assert!(machine_pub.starts_with("ssh-ed25519 "), "{machine_pub}");
    assert!(
        r.stdout.contains(machine_pub.trim()) || r.stderr.contains(machine_pub.trim()),
        "the driver read it in create (keys.machine-public-key): {r:?}"
    );
    let ls = dmw.ok(&["ls"]);
    assert_eq!(
        ls_row(&ls, "t4").map(|row| row[3].clone()).as_deref(),
        Some("Error"),
        "{ls}"
    );
    dmw.ok(&["rm", "-y", "t4"]);
    assert!(!dmw.machine_dir("t4").exists());
}
