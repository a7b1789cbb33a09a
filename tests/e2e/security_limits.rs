//! Issue 9, findings 5 and 6: a hostile driver (tests/plugins/hostile-limits-driver) that
//! loops on host calls or pushes huge values through them is stopped within its limits,
//! with a clear error, bounded memory and a bounded machine directory. No testbed host:
//! the driver fails before anything is contacted.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Dmw, Run, dmw_bin, ls_row};

/// The hostile driver built with the guests.
const HOSTILE: &str = env!("DMW_TEST_HOSTILE_LIMITS_DRIVER");

/// Most memory one `dmw` run may take here (KiB).
const MAX_RSS_KIB: i64 = 400 << 10;

/// Most bytes of a machine's record.
const MAX_RECORD: u64 = 2 << 20;

/// One `dmw` run: its output, how long it took and its peak memory.
struct Measured {
    run: Run,
    elapsed: Duration,
    max_rss_kib: i64,
}

/// Run `dmw ARGS` with `envs`, measuring its time and peak RSS (wait4 of that child).
#[allow(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which also gives its rusage"
)]
fn measured(dmw: &Dmw, args: &[&str], envs: &[(&str, &str)]) -> Measured {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut c = Command::new(dmw_bin());
    c.arg("-s").arg(&dmw.storage).args(args);
    c.env_remove("DOCKER_HOST")
        .env_remove(CALL_TIMEOUT_ENV)
        .env("SHELL", "/bin/bash")
        .env("USER", "tester")
        .env("DOCKER_CONFIG", dmw.docker_config())
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("stdout file"))
        .stderr(File::create(&err).expect("stderr file"));
    for (k, v) in envs {
        c.env(k, v);
    }
    let started = Instant::now();
    let child = c.spawn().expect("run dmw");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, not waited for yet (`child` is never waited on).
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let elapsed = started.elapsed();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let text = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).expect("output")).into_owned();
    Measured {
        run: Run {
            code,
            stdout: text(&out),
            stderr: text(&err),
        },
        elapsed,
        max_rss_kib: usage.ru_maxrss,
    }
}

/// The variable that lowers the plugin call limits (see host/src/sandbox/plugin/calls.rs).
const CALL_TIMEOUT_ENV: &str = "DMW_PLUGIN_CALL_TIMEOUT";

/// Check the bounds every hostile run must keep: memory, and the machine directory.
fn assert_bounded(dmw: &Dmw, name: &str, m: &Measured) {
    assert!(
        m.max_rss_kib < MAX_RSS_KIB,
        "dmw took {} MiB: {:?}",
        m.max_rss_kib >> 10,
        m.run
    );
    let dir = dmw.machine_dir(name);
    if let Ok(meta) = std::fs::metadata(dir.join("config.json")) {
        assert!(
            meta.len() < MAX_RECORD,
            "config.json is {} bytes",
            meta.len()
        );
    }
    if let Ok(meta) = std::fs::metadata(dir.join("provision.log")) {
        assert!(
            meta.len() < 8 << 20,
            "provision.log is {} bytes",
            meta.len()
        );
    }
}

fn create(dmw: &Dmw, mode: &str, name: &str, envs: &[(&str, &str)]) -> Measured {
    measured(
        dmw,
        &[
            "create",
            "--driver",
            HOSTILE,
            "--hostile-limits-mode",
            mode,
            name,
        ],
        envs,
    )
}

#[test]
fn a_loop_of_host_calls_is_stopped_by_the_host_call_cap() {
    let dmw = Dmw::new();
    // The real limits: the host-call cap (1,000,000) ends it long before the 60 s limit.
    let m = create(&dmw, "host-call-loop", "loop", &[]);
    assert_eq!(m.run.code, 3, "{:?}", m.run);
    assert!(
        m.run.stderr.contains(
            "plugin hostile-limits made more than 1000000 host calls in pre-create-check"
        ),
        "{:?}",
        m.run
    );
    assert!(m.elapsed < Duration::from_secs(60), "took {:?}", m.elapsed);
    assert_bounded(&dmw, "loop", &m);
}

#[test]
fn ls_and_rm_of_a_machine_whose_driver_loops_are_bounded() {
    let dmw = Dmw::new();
    let m = create(&dmw, "state-loop", "spinner", &[]);
    assert_eq!(m.run.code, 1, "{:?}", m.run);
    // Make it a machine that `ls` asks the driver about, as a finished create would leave it.
    let path = dmw.machine_dir("spinner").join("config.json");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("record")).expect("json");
    record["status"] = "ready".into();
    record["error"] = serde_json::Value::Null;
    std::fs::write(&path, serde_json::to_vec(&record).expect("json")).expect("write record");

    let limit = 5;
    let env = [(CALL_TIMEOUT_ENV, "5")];
    let m = measured(&dmw, &["ls"], &env);
    assert!(
        m.elapsed < Duration::from_secs(limit + 5),
        "ls took {:?}: {:?}",
        m.elapsed,
        m.run
    );
    let row = ls_row(&m.run.stdout, "spinner").unwrap_or_else(|| panic!("{:?}", m.run));
    assert!(
        m.run.stdout.contains("did not finish state within") || row[3] == "Timeout",
        "{:?}",
        m.run
    );
    assert_bounded(&dmw, "spinner", &m);

    let m = measured(&dmw, &["rm", "-f", "-y", "spinner"], &env);
    assert!(
        m.elapsed < Duration::from_secs(limit + 5),
        "rm took {:?}: {:?}",
        m.elapsed,
        m.run
    );
    assert_eq!(m.run.code, 0, "{:?}", m.run);
    assert!(
        m.run.stdout.contains(
            "the driver could not remove \"spinner\" (plugin hostile-limits did not finish remove within 5s)"
        ),
        "{:?}",
        m.run
    );
    assert!(!dmw.machine_dir("spinner").exists());
    assert!(m.max_rss_kib < MAX_RSS_KIB);
}

#[test]
fn huge_store_values_are_refused_and_the_record_stays_small() {
    let dmw = Dmw::new();
    let m = create(&dmw, "big-store", "hoarder", &[]);
    assert_eq!(m.run.code, 1, "{:?}", m.run);
    assert!(
        m.run.stderr.contains(
            "plugin hostile-limits failed in create: store.set refused: the value of \"big-0\" is 67108864 bytes, over the limit of 64 KiB per value"
        ),
        "{:?}",
        m.run
    );
    assert!(m.elapsed < Duration::from_secs(60), "took {:?}", m.elapsed);
    assert_bounded(&dmw, "hoarder", &m);
    let ls = measured(&dmw, &["ls"], &[]);
    assert!(
        ls.elapsed < Duration::from_secs(5),
        "ls took {:?}",
        ls.elapsed
    );
    let row = ls_row(&ls.run.stdout, "hoarder").unwrap_or_else(|| panic!("{:?}", ls.run));
    assert_eq!(row[3], "Error");
}

#[test]
fn huge_logs_are_bounded() {
    let dmw = Dmw::new();
    let m = create(&dmw, "big-log", "talker", &[]);
    assert_ne!(m.run.code, 0, "{:?}", m.run);
    assert!(m.elapsed < Duration::from_secs(60), "took {:?}", m.elapsed);
    assert_bounded(&dmw, "talker", &m);
    assert!(
        m.run.stdout.len() + m.run.stderr.len() < 8 << 20,
        "{} bytes of output",
        m.run.stdout.len() + m.run.stderr.len()
    );
}

#[test]
fn an_oversized_record_keeps_ls_fast_and_rm_f_removes_it() {
    let dmw = Dmw::new();
    let dir = dmw.machine_dir("bloated");
    std::fs::create_dir_all(&dir).expect("machine dir");
    let f = File::create(dir.join("config.json")).expect("record");
    f.set_len(512 << 20).expect("sparse 512 MiB record");
    let m = measured(&dmw, &["ls"], &[]);
    assert!(
        m.elapsed < Duration::from_secs(5),
        "ls took {:?}",
        m.elapsed
    );
    assert!(
        m.run.stdout.contains("bloated") || m.run.stderr.contains("bloated"),
        "{:?}",
        m.run
    );
    assert!(
        format!("{}{}", m.run.stdout, m.run.stderr).contains("more than the 4 MiB"),
        "{:?}",
        m.run
    );
    assert!(m.max_rss_kib < MAX_RSS_KIB);
    let m = measured(&dmw, &["rm", "-f", "-y", "bloated"], &[]);
    assert_eq!(m.run.code, 0, "{:?}", m.run);
    assert!(!dir.exists());
}

/// Finding 6, remote output: a recipe runs `head -c 1G /dev/zero` on a real host; the host
/// stops the command at its 16 MiB output cap with a clear error, and stays small.
#[test]
fn a_flood_of_remote_output_is_cut_at_the_cap() {
    if !dmw_testbed::require_root_or_skip("a_flood_of_remote_output_is_cut_at_the_cap") {
        return;
    }
    let bed = crate::support::docker_hosts(1);
    let host = &bed.hosts()[0];
    let dmw = Dmw::new();
    let mut args = Dmw::create_args(host, "root", "flood");
    let name = args.pop().expect("name");
    args.extend([
        "--recipe".to_string(),
        env!("DMW_TEST_HOSTILE_OUTPUT_RECIPE").to_string(),
        "--no-docker-context".to_string(),
        name,
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let m = measured(&dmw, &args, &[]);
    assert_eq!(m.run.code, 1, "{:?}", m.run);
    assert!(
        m.run.stderr.contains("install engine failed")
            && m.run.stderr.contains("command output exceeded 16 MiB"),
        "{:?}",
        m.run
    );
    assert!(
        !m.run.stderr.contains("handed back"),
        "the host buffered it: {:?}",
        m.run
    );
    assert_bounded(&dmw, "flood", &m);
}
