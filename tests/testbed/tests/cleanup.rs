//! Nothing of a host remains after it is dropped, or after its process was SIGKILLed and a new boot ran.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use dmw_testbed::{Host, Options, clean_stale, leftovers, require_root_or_skip};

fn netns_list() -> String {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_gone(name: &str) {
    let left = leftovers(name);
    assert!(left.is_empty(), "{name} left: {left:?}");
    assert!(
        !netns_list().split_whitespace().any(|w| w == name),
        "{name} still in `ip netns list`"
    );
}

// One test, so that no other boot in this binary cleans the killed process's leftovers early.
#[test]
fn no_leftovers_after_drop_or_kill() {
    if !require_root_or_skip("no_leftovers_after_drop_or_kill") {
        return;
    }
    // Dropped normally.
    let h = Host::boot(&Options::default()).expect("boot");
    let name = h.name().to_string();
    assert!(!leftovers(&name).is_empty());
    drop(h);
    assert_gone(&name);

    // The owning process is SIGKILLed: its host stays behind until the next boot or clean.
    let mut child = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .args(["up", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run testbed up");
    let stdout = child.stdout.take().expect("stdout");
    let line = BufReader::new(stdout)
        .lines()
        .next()
        .expect("testbed up printed nothing")
        .expect("read");
    let name = line.split_whitespace().next().expect("name").to_string();
    child.kill().expect("SIGKILL testbed");
    child.wait().expect("wait");
    let left = leftovers(&name);
    assert!(
        !left.is_empty(),
        "nothing left after SIGKILL: the test proves nothing"
    );
    assert!(left.iter().any(|l| l.starts_with("process")), "{left:?}");

    let removed = clean_stale().expect("clean stale");
    assert!(removed.contains(&name), "{removed:?}");
    assert_gone(&name);

    // And a new boot cleans such leftovers by itself.
    let mut child = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .args(["up", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run testbed up");
    let line = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .next()
        .expect("testbed up printed nothing")
        .expect("read");
    let name = line.split_whitespace().next().expect("name").to_string();
    child.kill().expect("SIGKILL testbed");
    child.wait().expect("wait");
    let stale_pids: Vec<u32> = leftovers(&name)
        .iter()
        .filter_map(|l| l.strip_prefix("process ")?.parse().ok())
        .collect();
    assert!(!stale_pids.is_empty(), "no process left after SIGKILL");
    let h = Host::boot(&Options::default()).expect("boot");
    for pid in stale_pids {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            state.is_empty() || state.contains(") Z "),
            "stale process {pid} survived: {state}"
        );
    }
    if h.name() != name {
        assert_gone(&name); // (the new host may have taken over the freed name)
    }
    drop(h);
}
