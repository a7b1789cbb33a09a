//! Fifty dmw processes at once on one store: creates, a name created many times at once,
//! listings, inspections, provisionings and removals — of none-driver machines (no hosts
//! needed) and of generic machines on real testbed hosts. No record is lost, duplicated or
//! corrupt, the CA is made once, no command hangs, every machine provisioned works, and
//! nothing is left behind.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Dmw, docker_hosts, docker_run_ok};

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
    finish_within(children, BOUND)
}

/// Wait for every child within `bound`: (args, exit code, stderr) of each.
fn finish_within(
    children: Vec<(Vec<String>, Child)>,
    bound: Duration,
) -> Vec<(Vec<String>, i32, String)> {
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
            if started.elapsed() > bound {
                let _ = child.kill();
                panic!("dmw {args:?} did not finish within {bound:?}");
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

/// Start every job on `dmw`'s store at once and wait for them within `bound`.
fn run_all(dmw: &Dmw, jobs: Vec<Vec<String>>, bound: Duration) -> Vec<(Vec<String>, i32, String)> {
    let children = jobs
        .into_iter()
        .map(|a| (a.clone(), start(dmw, &a)))
        .collect();
    finish_within(children, bound)
}

/// The machines `ls -q` lists, sorted.
fn listed(dmw: &Dmw) -> Vec<String> {
    let mut names: Vec<String> = dmw
        .ok(&["ls", "-q", "-t", "1"])
        .lines()
        .map(String::from)
        .collect();
    names.sort();
    names
}

/// Every machine holds the store's CA (it was made once) and reads back.
fn one_ca(dmw: &Dmw, names: &[String]) {
    let ca = std::fs::read(dmw.storage.join("certs").join("ca.pem")).expect("the CA");
    for name in names {
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
    assert_eq!(listed(&dmw), expected, "no record lost or duplicated");
    // The CA was made once: every machine holds the store's CA.
    one_ca(&dmw, &expected);

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

/// Fifty processes at once with generic machines on three real hosts among none-driver
/// ones: three generic creates (one name raced by two more creates of it), creates, listings
/// and inspections; then each generic machine provisioned twice at once (the second waits
/// for the first's lock), removals and listings. Every generic machine ends a working
/// Docker host, the CA is made once, nothing is lost or left behind.
#[test]
fn fifty_processes_with_machines_on_real_hosts_lose_nothing() {
    if !dmw_testbed::require_root_or_skip(
        "fifty_processes_with_machines_on_real_hosts_lose_nothing",
    ) {
        return;
    }
    // Provisioning real hosts while forty-seven other commands run on two cores.
    const REAL_BOUND: Duration = Duration::from_secs(600);
    let bed = docker_hosts(3);
    let dmw = Dmw::new();
    let generic: Vec<String> = (0..3).map(|i| format!("g{i}")).collect();
    let none: Vec<String> = (0..36).map(|i| format!("n{i}")).collect();

    // Round 1: 3 + 2 racing generic creates, 36 none creates, 5 listings, 4 inspections.
    let mut jobs: Vec<Vec<String>> = bed
        .hosts()
        .iter()
        .zip(&generic)
        .map(|(h, n)| Dmw::create_args(h, "root", n))
        .collect();
    jobs.extend((0..2).map(|_| Dmw::create_args(&bed.hosts()[0], "root", "g0")));
    jobs.extend(none.iter().map(|n| create(n)));
    jobs.extend((0..5).map(|_| words(&["ls", "-t", "1"])));
    jobs.extend((0..4).map(|_| words(&["inspect", "g1"])));
    assert_eq!(jobs.len(), 50);
    let mut g0_created = 0;
    for (args, code, stderr) in run_all(&dmw, jobs, REAL_BOUND) {
        match (args[0].as_str(), args.last().map(String::as_str)) {
            ("create", Some("g0")) if code == 0 => g0_created += 1,
            ("create", Some("g0")) => {
                assert!(stderr.contains("already exists"), "{args:?}: {stderr}")
            }
            // Before its create claimed the name, or after.
            ("inspect", _) => assert!(
                code == 0 || stderr.contains("does not exist"),
                "{args:?}: {stderr}"
            ),
            _ => assert_eq!(code, 0, "{args:?}: {stderr}"),
        }
    }
    assert_eq!(g0_created, 1, "exactly one create of the same name wins");
    let mut expected: Vec<String> = generic.iter().chain(&none).cloned().collect();
    expected.sort();
    assert_eq!(listed(&dmw), expected, "no record lost or duplicated");
    one_ca(&dmw, &expected);

    // Round 2: every generic machine provisioned twice at once, 36 removals, 8 listings.
    let mut jobs: Vec<Vec<String>> = generic
        .iter()
        .chain(&generic)
        .map(|n| words(&["provision", n]))
        .collect();
    jobs.extend(none.iter().map(|n| words(&["rm", "-y", n])));
    jobs.extend((0..8).map(|_| words(&["ls", "-t", "1"])));
    assert_eq!(jobs.len(), 50);
    for (args, code, stderr) in run_all(&dmw, jobs, REAL_BOUND) {
        assert_eq!(code, 0, "{args:?}: {stderr}");
    }
    assert_eq!(
        listed(&dmw),
        generic,
        "the removed are gone, the others kept"
    );
    for name in &generic {
        docker_run_ok(&dmw, name);
        dmw.ok(&["rm", "-y", name]);
    }
    let left = std::fs::read_dir(dmw.storage.join("machines"))
        .expect("machines")
        .count();
    assert_eq!(left, 0, "nothing left behind");
}
