//! Hostile plugin output (issue 9, findings 2, 3 and 10): a driver's answers are attacks on
//! the host — shell injection through `dmw env`, ssh_config injection through the SSH
//! user, terminal escapes and forged log lines. Each test checks that the harm did not
//! happen and that the user got a clear error. No testbed host: every attack is stopped
//! before SSH.

use std::process::Command;

use crate::failures::fresh_key;
use crate::support::{Dmw, Run, dmw_bin, shell_quote};

/// The hostile driver built with the guests (tests/plugins/hostile-output-driver).
const HOSTILE: &str = env!("DMW_TEST_HOSTILE_OUTPUT_DRIVER");

/// `dmw create` with the hostile driver in `mode`, `file` as the injected command's target.
fn create_hostile(dmw: &Dmw, mode: &str, file: &str, name: &str) -> Run {
    let key = fresh_key(dmw);
    dmw.command(&[
        "create",
        "--driver",
        HOSTILE,
        "--hostile-output-mode",
        mode,
        "--hostile-output-file",
        file,
        "--hostile-output-key",
        &key,
        name,
    ])
    .env("DMW_SSH_TIMEOUT", "0")
    .output()
    .expect("run dmw")
    .into()
}

/// `sh -c 'eval "$(dmw env NAME)"'` as a user would run it; returns its result.
fn eval_env(dmw: &Dmw, name: &str) -> std::process::Output {
    let script = format!(
        "eval \"$({} -s {} env {name})\"",
        shell_quote(dmw_bin()),
        shell_quote(&dmw.storage.display().to_string())
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("SHELL", "/bin/sh")
        .env("DOCKER_CONFIG", dmw.docker_config())
        .output()
        .expect("run sh")
}

/// A file path the attack would create, in the test's directory.
fn target_file(dmw: &Dmw, what: &str) -> std::path::PathBuf {
    dmw.storage
        .parent()
        .expect("storage has a parent")
        .join(format!("pwned-{what}"))
}

/// No byte of `bytes` can drive a terminal: no ESC, BEL, CR, C1 CSI, nor bidi override.
fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for (bad, label) in [
        ('\x1b', "ESC"),
        ('\x07', "BEL"),
        ('\r', "CR"),
        ('\u{9b}', "C1 CSI"),
        ('\u{202e}', "bidi override"),
    ] {
        assert!(!text.contains(bad), "{what} holds {label}: {text:?}");
    }
    assert!(!bytes.contains(&0x9b), "{what} holds a raw 0x9b byte");
}

#[test]
fn security_address_injection_is_refused_and_env_runs_nothing() {
    let dmw = Dmw::new();
    let file = target_file(&dmw, "address");
    let r = create_hostile(&dmw, "address-injection", &file.display().to_string(), "m1");
    assert_eq!(r.code, 1, "{r:?}");
    let first = r.stderr.lines().next().unwrap_or("");
    assert!(
        first.starts_with("Error creating machine \"m1\": create machine failed: driver hostile-output returned address \"127.0.0.1/$(touch "),
        "{r:?}"
    );
    assert!(
        first.contains("which is not an IP address or DNS name"),
        "{r:?}"
    );
    let out = eval_env(&dmw, "m1");
    assert!(!file.exists(), "the injected command ran: {out:?}");
    let env = dmw.run(&["env", "m1"]);
    assert_ne!(env.code, 0, "env of a refused machine must fail: {env:?}");
    assert!(env.stdout.is_empty(), "{env:?}");
    // The record does not hold the hostile address (its error quotes it, escaped).
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dmw.machine_dir("m1").join("config.json")).expect("record"),
    )
    .expect("json");
    assert!(record["endpoint"].is_null(), "{record}");
}

#[test]
fn security_env_refuses_a_stored_hostile_address() {
    // A record written before addresses were checked (or edited): env must not print it.
    let dmw = Dmw::new();
    dmw.ok(&[
        "create",
        "--driver",
        "none",
        "--url",
        "tcp://127.0.0.1:1",
        "old",
    ]);
    let file = target_file(&dmw, "stored");
    let path = dmw.machine_dir("old").join("config.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("record")).expect("json");
    record["endpoint"]["address"] = format!("127.0.0.1/$(touch {})", file.display()).into();
    std::fs::write(&path, record.to_string()).expect("write record");
    let out = eval_env(&dmw, "old");
    assert!(!file.exists(), "the injected command ran");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("machine \"old\": its record holds address \"127.0.0.1/$(touch"),
        "{err}"
    );
    for cmd in ["config", "use"] {
        let r = dmw.run(&[cmd, "old"]);
        assert_ne!(r.code, 0, "{cmd}: {r:?}");
        assert!(
            r.stderr.contains("not an IP address or DNS name"),
            "{cmd}: {r:?}"
        );
    }
    assert!(!file.exists());
}

#[test]
fn security_user_injection_is_refused() {
    let dmw = Dmw::new();
    let file = target_file(&dmw, "user");
    let r = create_hostile(&dmw, "user-injection", &file.display().to_string(), "m2");
    assert_eq!(r.code, 3, "refused in the pre-create check: {r:?}");
    let first = r.stderr.lines().next().unwrap_or("");
    assert!(
        first.starts_with("Error creating machine \"m2\": pre-create check failed: "),
        "{r:?}"
    );
    assert!(
        first.contains(
            "driver hostile-output returned SSH user \"root\\n  ProxyCommand sh -c 'touch "
        ),
        "{r:?}"
    );
    assert!(first.contains("which is not a valid user name"), "{r:?}");
    // Nothing was recorded that `mount` or `ssh` could use: a pre-create failure keeps nothing.
    assert!(!dmw.machine_dir("m2").exists(), "a record was kept");
    let r = dmw.run(&["mount", "m2:/", "/nonexistent"]);
    assert_ne!(r.code, 0);
    assert!(!file.exists(), "the injected command ran");
}

#[test]
fn security_terminal_escapes_and_forged_lines_are_inert() {
    let dmw = Dmw::new();
    let file = target_file(&dmw, "terminal");
    let out = dmw
        .command(&[
            "--debug",
            "create",
            "--driver",
            HOSTILE,
            "--hostile-output-mode",
            "terminal",
            "--hostile-output-file",
            &file.display().to_string(),
            "m3",
        ])
        .output()
        .expect("run dmw");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_terminal_safe("create stdout", &out.stdout);
    assert_terminal_safe("create stderr", &out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The plugin's lines are shown, inert and prefixed with its name.
    assert!(stdout.contains("(hostile-output) \\x1b]52;c;"), "{stdout}");
    assert!(
        !stdout
            .lines()
            .any(|l| l.trim() == "Docker is up and running!"),
        "a forged success line: {stdout}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("Error creating machine \"m3\": create machine failed: ")),
        "{stderr}"
    );
    // The kept record's error, as `ls` shows it, is inert too.
    let ls = dmw.command(&["ls"]).output().expect("ls");
    assert_terminal_safe("ls stdout", &ls.stdout);
    assert!(String::from_utf8_lossy(&ls.stdout).contains("create machine failed"));
    assert!(stderr.contains("\\x1b]0;owned title\\x07"), "{stderr}");
    assert!(
        !stderr
            .lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "a forged line: {stderr}"
    );

    // provision.log: every line is an entry of the host's, none forged.
    let log = std::fs::read_to_string(dmw.machine_dir("m3").join("provision.log")).expect("log");
    assert_terminal_safe("provision.log", log.as_bytes());
    for line in log.lines() {
        assert!(
            !line.starts_with("2026-01-01T00:00:00Z"),
            "forged provision.log line: {line:?}\n{log}"
        );
        let tag = line.split(' ').nth(1).unwrap_or("");
        assert!(
            !(tag == "STEP" && line.contains("Docker is up and running!")),
            "forged step: {line:?}"
        );
    }
    assert!(
        log.contains("(hostile-output) working\\n2026-01-01T00:00:00Z STEP"),
        "{log}"
    );

    // The stored error, shown again by ls, inspect and status, stays inert.
    for args in [&["ls"][..], &["inspect", "m3"], &["status", "m3"]] {
        let r = dmw.command(args).output().expect("run dmw");
        assert_terminal_safe(&format!("{args:?} stdout"), &r.stdout);
        assert_terminal_safe(&format!("{args:?} stderr"), &r.stderr);
    }
    assert!(!file.exists());
}

/// Finding 13: a secret flag's value never reaches the terminal, provision.log or the stored
/// error, even when the driver repeats it; it stays only in the machine's 0600 record.
#[test]
fn security_secret_flag_values_are_redacted() {
    use std::os::unix::fs::PermissionsExt;
    let dmw = Dmw::new();
    let secret = "hunter2-dmw-secret-value";
    let out = dmw
        .command(&[
            "--debug",
            "create",
            "--driver",
            HOSTILE,
            "--hostile-output-mode",
            "secret-echo",
            "--hostile-output-password",
            secret,
            "m5",
        ])
        .output()
        .expect("run dmw");
    let run: Run = out.into();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("login as admin:<redacted> failed"),
        "{run:?}"
    );
    assert!(
        !run.stdout.contains(secret) && !run.stderr.contains(secret),
        "{run:?}"
    );
    let ls = dmw.run(&["ls"]);
    assert!(!ls.stdout.contains(secret), "{ls:?}");
    let holders = crate::support::files_containing(&dmw.storage, secret);
    let record = dmw.machine_dir("m5").join("config.json");
    assert_eq!(
        holders,
        vec![record.clone()],
        "only the record may hold the secret"
    );
    let mode = std::fs::metadata(&record)
        .expect("record")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&record).expect("record");
    assert!(
        text.contains("<redacted>"),
        "the stored error is redacted: {text}"
    );
}
