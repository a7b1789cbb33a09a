//! What an approved `process` program may do (issue 18, proof 2: a driver approved for
//! the qemu driver's programs ran `qemu-img convert` on the user's files and
//! `qemu-system-x86_64 -incoming exec:CMD`, because arguments passed unchecked).
//!
//! - `a_program_with_argument_forms_runs_only_in_them`: the hostile fixture
//!   tests/plugins/hostile-args-driver declares `touch made-by-plugin` and
//!   `echo said: <a value>`; approved with a plain `--yes` (no full trust needed), it tries
//!   `touch MARKER` outside its directory, longer and optioned forms, an option where a
//!   value goes: each is `denied` by the host, the marker is never made, and its declared
//!   forms run. Before: dmw had no argument forms — the declaration was refused as a bad
//!   entry, and a program declared at all ran with any arguments (`touch MARKER` made the
//!   marker).
//! - `a_program_with_any_arguments_is_shown_and_approved_as_full_trust`: the hostile
//!   process fixture (printenv, ln, sleep with any arguments): `plugin inspect` opens with
//!   a FULL TRUST warning and says "runs printenv with any arguments: it can do anything you
//!   can"; `plugin install --yes` refuses without `--full-trust`; the interactive install
//!   asks a second question that only the words "full trust" answer; `plugin inspect
//!   builtin:qemu` asks no full trust (its VM is the host's, through `vm`). Before: inspect said
//!   "local program printenv", like any other ask, and `--yes` approved it.

use crate::support::Dmw;

/// The hostile argument driver (tests/plugins/hostile-args-driver).
const HOSTILE_ARGS: &str = env!("DMW_TEST_HOSTILE_ARGS_DRIVER");
/// The hostile process driver (tests/plugins/hostile-process-driver).
const HOSTILE_PROCESS: &str = env!("DMW_TEST_HOSTILE_PROCESS_DRIVER");

#[test]
fn a_program_with_argument_forms_runs_only_in_them() {
    let dmw = Dmw::new();
    let text = dmw.ok(&["plugin", "inspect", HOSTILE_ARGS]);
    assert!(
        text.contains("programs:    runs the local program touch only as `touch made-by-plugin`; runs the local program echo only as `echo said: <a value>`")
            && !text.contains("FULL TRUST"),
        "{text}"
    );
    let json = dmw.ok(&["plugin", "inspect", "-o", "json", HOSTILE_ARGS]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["full_trust"], serde_json::json!([]), "{json}");
    assert_eq!(
        v["declaration"]["program_args"][1],
        serde_json::json!({"program": "echo", "args": ["said:", "*"]}),
        "{json}"
    );
    // Forms only: a plain --yes approves it.
    dmw.ok(&["plugin", "install", "--yes", HOSTILE_ARGS]);
    let marker = dmw.storage.with_file_name("marker-outside");
    let r = dmw.run(&[
        "create",
        "-d",
        "hostile-args",
        "--hostile-args-marker",
        &marker.display().to_string(),
        "a1",
    ]);
    assert_eq!(r.code, 3, "the check fails with its report: {r:?}");
    assert!(
        r.stderr.contains("HOSTILE-CONTAINED") && !r.stderr.contains("HOSTILE-BREACH"),
        "{r:?}"
    );
    assert!(!marker.exists(), "a program ran outside its declared forms");
}

#[test]
fn a_program_with_any_arguments_is_shown_and_approved_as_full_trust() {
    let dmw = Dmw::new();
    let text = dmw.ok(&["plugin", "inspect", HOSTILE_PROCESS]);
    assert!(
        text.starts_with("WARNING — FULL TRUST: this driver runs printenv and ln and sleep and setsid with any arguments. A program run with any arguments can do anything you can")
            && text.contains("programs:    runs printenv with any arguments: it can do anything you can (FULL TRUST)"),
        "{text}"
    );
    let json = dmw.ok(&["plugin", "inspect", "-o", "json", HOSTILE_PROCESS]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(
        v["full_trust"],
        serde_json::json!(["printenv", "ln", "sleep", "setsid"]),
        "{json}"
    );
    // --yes alone is no approval of full trust.
    let r = dmw.run(&["plugin", "install", "--yes", HOSTILE_PROCESS]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("runs printenv and ln and sleep and setsid with any arguments: it can do anything you can (FULL TRUST). Nothing was installed")
            && r.stderr.contains("--full-trust"),
        "{r:?}"
    );
    assert!(
        dmw.ok(&["plugin", "ls"]).lines().count() == 1,
        "nothing installed"
    );
    // Interactively: "y" to the asks, then only the words "full trust" approve it.
    let r = dmw.run_with_stdin(&["plugin", "install", HOSTILE_PROCESS], "y\ny\n");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("Type \"full trust\" to give it that")
            && r.stderr.contains("Nothing was installed"),
        "{r:?}"
    );
    // The built-in qemu driver runs no program itself: its VM is the host's (`vm`), so no
    // full trust is asked (before the `vm` capability it declared qemu-system-x86_64 and
    // qemu-img with any arguments, and inspect opened with this warning).
    let qemu = dmw.ok(&["plugin", "inspect", "builtin:qemu"]);
    assert!(
        !qemu.contains("FULL TRUST")
            && qemu
                .contains("capability vm (runs one local virtual machine per machine under QEMU")
            && !qemu.contains("qemu-img"),
        "{qemu}"
    );
    let r = dmw.run_with_stdin(&["plugin", "install", HOSTILE_PROCESS], "y\nfull trust\n");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(dmw.ok(&["plugin", "ls"]).contains("hostile-process"));
}
