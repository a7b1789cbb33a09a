//! Fifty dmw processes at once on one store (none-driver machines, no hosts needed):
//! creates, a name created ten times at once, listings, inspections and removals. No
//! record is lost, duplicated or corrupt, the CA is made once, no command hangs, and
//! nothing is left behind.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::Dmw;

/// Longest one command may take while fifty run (a bound, not a benchmark).
const BOUND: Duration = Duration::from_secs(120);

/// Start `args` on `dmw`'s store, output kept.
fn start(dmw: &Dmw, args: &[String]) -> Child {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    dmw.command(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dmw")
}

/// Wait for every child within [`BOUND`]: (args, exit code, stderr) of each.
fn finish(children: Vec<(Vec<String>, Child)>) -> Vec<(Vec<String>, i32, String)> {
    let started = Instant::now();
    let mut done = Vec::new();
    for (args, mut child) in children {
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let out = child.wait_with_output().expect("output");
                done.push((
                    args,
                    status.code().unwrap_or(-1),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                ));
                break;
            }
            if started.elapsed() > BOUND {
                let _ = child.kill();
                panic!("dmw {args:?} did not finish within {BOUND:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    done
}

fn create(name: &str) -> Vec<String> {
    ["create", "-d", "none", "--url", "tcp://127.0.0.1:1", name]
        .map(String::from)
        .to_vec()
}

fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[test]
fn fifty_processes_on_one_store_lose_nothing() {
    let dmw = Dmw::new();
    let names: Vec<String> = (0..30).map(|i| format!("c{i}")).collect();

    // Round 1: thirty creates, one name created ten times, ten listings — at once, on a
    // store that has no CA yet.
    let mut jobs: Vec<Vec<String>> = names.iter().map(|n| create(n)).collect();
    jobs.extend((0..10).map(|_| create("dup")));
    jobs.extend((0..10).map(|_| words(&["ls", "-t", "1"])));
    let children = jobs
        .into_iter()
        .map(|a| (a.clone(), start(&dmw, &a)))
        .collect();
    let done = finish(children);
    let mut dup_created = 0;
    for (args, code, stderr) in &done {
        match (args[0].as_str(), args.last().map(String::as_str)) {
            ("create", Some("dup")) => {
                if *code == 0 {
                    dup_created += 1;
                } else {
                    assert!(stderr.contains("already exists"), "{args:?}: {stderr}");
                }
            }
            _ => assert_eq!(*code, 0, "{args:?}: {stderr}"),
        }
    }
    assert_eq!(dup_created, 1, "exactly one create of the same name wins");
    let mut expected: Vec<String> = names.clone();
    expected.push("dup".into());
    expected.sort();
    let mut listed: Vec<String> = dmw
        .ok(&["ls", "-q", "-t", "1"])
        .lines()
        .map(String::from)
        .collect();
    listed.sort();
    assert_eq!(listed, expected, "no record lost or duplicated");
    // The CA was made once: every machine holds the store's CA.
    let ca = std::fs::read(dmw.storage.join("certs").join("ca.pem")).expect("the CA");
    for name in &expected {
        assert_eq!(
            std::fs::read(dmw.machine_dir(name).join("ca.pem")).expect("machine CA"),
            ca,
            "{name} holds another CA"
        );
        assert!(
            dmw.ok(&["inspect", "-f", "{{.Name}}", name]).trim() == name,
            "{name} reads back"
        );
    }

    // Round 2: thirty removals, ten inspections of machines being removed, ten listings.
    let mut jobs: Vec<Vec<String>> = names.iter().map(|n| words(&["rm", "-y", n])).collect();
    jobs.extend(names.iter().take(10).map(|n| words(&["inspect", n])));
    jobs.extend((0..10).map(|_| words(&["ls", "-t", "1"])));
    let children = jobs
        .into_iter()
        .map(|a| (a.clone(), start(&dmw, &a)))
        .collect();
    for (args, code, stderr) in finish(children) {
        match args[0].as_str() {
            // Before or after its removal: the record, or "does not exist".
            "inspect" => assert!(
                code == 0 || stderr.contains("does not exist"),
                "{args:?}: {stderr}"
            ),
            _ => assert_eq!(code, 0, "{args:?}: {stderr}"),
        }
    }
    assert_eq!(dmw.ok(&["ls", "-q"]).trim(), "dup");
    let left: Vec<String> = std::fs::read_dir(dmw.storage.join("machines"))
        .expect("machines")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec!["dup".to_string()], "nothing else left behind");
}
