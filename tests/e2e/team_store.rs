//! Teams: two members (two HOMEs, two identities) sharing one machine store on S3 —
//! moto's S3 server, which enforces conditional writes (checked with boto3, AWS's own
//! client, in `team_store_s3.py`): the full chain on a real host, keys that only
//! recipients can read, lock contention, a lock taken over after `kill -9`, concurrent
//! creates that make one CA and one machine per name.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dmw_testbed::{Options, Testbed, require_root_or_skip};

use crate::support::{Dmw, docker_run_ok, ls_row, unreachable_create};

/// moto's S3 server on a free loopback port, with one bucket.
struct S3 {
    child: Child,
    endpoint: String,
}

const BUCKET: &str = "team-fleet";
const CREDS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "AKIDTEAM"),
    ("AWS_SECRET_ACCESS_KEY", "team-secret"),
];

impl S3 {
    fn start() -> S3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let moto = dmw_testbed::venv_program("moto_server");
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {} (made by scripts/setup): {e}", moto.display()));
        let s3 = S3 {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let out = s3.py(&["wait"], "");
        // moto answers a lost create-once and a stale compare-and-swap with 412.
        assert_eq!(
            out["conditional"],
            serde_json::json!(["PreconditionFailed", "PreconditionFailed"]),
            "{out}"
        );
        s3
    }

    /// The store URL of `prefix`.
    fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}?endpoint={}", self.endpoint)
    }

    /// Run team_store_s3.py with boto3 (`secrets` for `dump`).
    fn py(&self, args: &[&str], secrets: &str) -> serde_json::Value {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/team_store_s3.py");
        let out = Command::new(crate::clouds::venv_python())
            .arg(script)
            .args(args)
            .envs(CREDS)
            .env("S3_ENDPOINT", &self.endpoint)
            .env("S3_BUCKET", BUCKET)
            .env("SECRETS", secrets)
            .output()
            .expect("python");
        assert!(
            out.status.success(),
            "team_store_s3.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }

    /// Every object under `prefix`, as boto3 reads it (`secrets`: texts none may hold).
    fn dump(&self, prefix: &str, secrets: &str) -> Vec<serde_json::Value> {
        match self.py(&["dump", prefix], secrets) {
            serde_json::Value::Array(a) => a,
            other => panic!("not a list: {other}"),
        }
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A member of the store at `url`.
fn member(url: &str) -> Dmw {
    Dmw::member(url, &CREDS)
}

/// `dmw store init` for a member who is not a recipient yet: the key to add.
fn outside_key(m: &Dmw) -> String {
    let out = m.ok(&["store", "init"]);
    let key = out
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("dmw store recipients add "))
        .unwrap_or_else(|| panic!("no key to add in: {out}"));
    assert!(key.starts_with("age1pq1"), "{key}");
    key.to_string()
}

/// Wait until `key` exists (or not) in the bucket.
fn wait_object(s3: &S3, key: &str, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let has = s3
            .dump(key, "")
            .iter()
            .any(|o| o["key"].as_str() == Some(key));
        if has == present {
            return;
        }
        assert!(Instant::now() < deadline, "{key} present={has}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_members_share_a_fleet_on_s3() {
    if !require_root_or_skip("two_members_share_a_fleet_on_s3") {
        return;
    }
    let bed = Testbed::boot(1, &Options::default()).expect("boot a host");
    let host = &bed.hosts()[0];
    let s3 = S3::start();
    let url = s3.url("fleet");
    let (alice, bob) = (member(&url), member(&url));
    let first = alice.ok(&["store", "init"]);
    assert!(first.contains("Secrets are encrypted to you"), "{first}");
    let bob_key = outside_key(&bob);

    let args = Dmw::create_args(host, "root", "h1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = alice.ok(&args);
    assert!(out.contains("Docker is up and running!"), "{out}");
    docker_run_ok(&alice, "h1");

    // Bob lists and inspects it, but cannot use its keys until he is a recipient.
    let ls = bob.ok(&["ls"]);
    let row = ls_row(&ls, "h1").unwrap_or_else(|| panic!("bob's ls: {ls}"));
    assert_eq!(row[3], "Running", "{ls}");
    assert!(bob.ok(&["inspect", "h1"]).contains("\"DriverName\""));
    let r = bob.run(&["env", "h1"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("your store identity is not one of them")
            && r.stderr.contains("dmw store recipients add"),
        "{r:?}"
    );

    // Nothing in the bucket holds a private key or the SSH key in clear.
    let ssh_key = std::fs::read_to_string(host.key_path()).expect("host key");
    let ssh_line = ssh_key
        .lines()
        .nth(1)
        .expect("a line of the SSH key")
        .to_string();
    let objects = s3.dump("fleet/", &ssh_line);
    let keys: Vec<&str> = objects.iter().filter_map(|o| o["key"].as_str()).collect();
    for want in [
        "fleet/certs/ca-key.pem",
        "fleet/machines/h1/config.json",
        "fleet/machines/h1/id_ssh",
        "fleet/machines/h1/server-key.pem",
    ] {
        assert!(keys.contains(&want), "{want} missing: {keys:?}");
    }
    for o in &objects {
        assert_eq!(o["pem_private"], false, "{o}");
        assert_eq!(o["secret"], false, "{o}");
        let k = o["key"].as_str().unwrap_or_default();
        if k.ends_with("key.pem") || k.ends_with("/id_ssh") {
            assert_eq!(o["age"], true, "{o}");
        }
    }

    let added = alice.ok(&["store", "recipients", "add", &bob_key]);
    assert!(added.contains("2 recipient(s)"), "{added}");
    docker_run_ok(&bob, "h1");

    // While Alice's create of "stuck" runs (its SSH never answers), Bob is told who has it;
    // once her process is killed with -9, its lock expires and Bob's rm takes it over.
    let key = host.key_path().display().to_string();
    let mut stuck = unreachable_create(&alice, &key, "stuck")
        .env("DMW_SSH_TIMEOUT", "300")
        .env("DMW_LOCK_TTL", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("create stuck");
    wait_object(&s3, "fleet/machines/stuck/config.json", true);
    let r = bob.run(&["rm", "-y", "stuck"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("stuck is being provisioned by tester@")
            && r.stderr.contains("(command: create)")
            && r.stderr.contains("dmw store unlock stuck"),
        "{r:?}"
    );
    let ls = bob.ok(&["ls"]);
    let row = ls_row(&ls, "stuck").unwrap_or_else(|| panic!("{ls}"));
    assert!(
        row.join(" ").contains("Creating"),
        "another member's create shows: {ls}"
    );
    stuck.kill().expect("kill -9");
    let _ = stuck.wait();
    let r = bob
        .command(&["rm", "-y", "stuck"])
        .env("DMW_LOCK_TIMEOUT", "30")
        .output()
        .expect("rm");
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    assert!(
        stderr.contains("had expired and was taken over"),
        "{stderr}"
    );
    assert!(ls_row(&alice.ok(&["ls"]), "stuck").is_none());

    // Bob removes it; Alice's next command no longer has it, and neither has the bucket.
    bob.ok(&["rm", "-y", "h1"]);
    assert!(ls_row(&alice.ok(&["ls"]), "h1").is_none());
    let left: Vec<String> = s3
        .dump("fleet/machines/", "")
        .iter()
        .chain(s3.dump("fleet/locks/", "").iter())
        .filter_map(|o| o["key"].as_str().map(str::to_string))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn concurrent_creates_on_s3_make_one_ca_and_one_machine_per_name() {
    if !dmw_testbed::venv_program("moto_server").exists() {
        if std::env::var_os("CI").is_some() {
            panic!("moto_server is missing: scripts/setup installs it");
        }
        eprintln!("skipping: no moto_server (run scripts/setup)");
        return;
    }
    let s3 = S3::start();
    let url = s3.url("race");
    let (alice, bob) = (member(&url), member(&url));
    alice.ok(&["store", "init"]);
    let bob_key = outside_key(&bob);
    alice.ok(&["store", "recipients", "add", &bob_key]);

    let create = |m: &Dmw, name: &str| {
        m.command(&["create", "-d", "none", "--url", "tcp://127.0.0.1:1", name])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("create")
    };
    let runs = vec![
        ("r1", create(&alice, "r1")),
        ("r2", create(&bob, "r2")),
        ("same", create(&alice, "same")),
        ("same", create(&bob, "same")),
    ];
    let mut same_ok = 0;
    for (name, child) in runs {
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if name == "same" {
            if out.status.success() {
                same_ok += 1;
            } else {
                assert!(
                    stderr.contains("already exists")
                        || stderr.contains("same is being provisioned by"),
                    "{stderr}"
                );
            }
        } else {
            assert!(out.status.success(), "{name}: {stderr}");
        }
    }
    assert_eq!(same_ok, 1, "exactly one create of the same name wins");

    // One CA for the team: every machine's ca.pem, in both working copies, is the store's.
    let ls = bob.ok(&["ls", "-q"]);
    assert_eq!(
        ls.split_whitespace().collect::<Vec<_>>(),
        ["r1", "r2", "same"]
    );
    alice.ok(&["ls"]);
    let mut cas = std::collections::BTreeSet::new();
    for m in [&alice, &bob] {
        let shared = m.home().expect("home").join(".dmw/shared");
        for copy in std::fs::read_dir(&shared).expect("working copy") {
            let copy = copy.expect("entry").path();
            cas.insert(std::fs::read(copy.join("certs/ca.pem")).expect("ca"));
            for name in ["r1", "r2", "same"] {
                cas.insert(
                    std::fs::read(copy.join("machines").join(name).join("ca.pem"))
                        .unwrap_or_else(|e| panic!("{name}: {e}")),
                );
            }
        }
    }
    assert_eq!(cas.len(), 1, "one CA, not {}", cas.len());
}
