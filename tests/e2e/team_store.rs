//! Teams: two members (two HOMEs, two identities) sharing one machine store, on S3 — moto's
//! S3 server, which enforces conditional writes (checked with boto3, AWS's own client, in
//! `team_store_s3.py`) — and on a three-member etcd cluster (Debian's etcd-server; its keys
//! read with etcdctl): the full chain on a real host, keys only recipients can read, lock
//! contention, a lock taken over after `kill -9`, concurrent creates that make one CA and
//! one machine per name, an etcd member down and the leader killed under a held lock.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use dmw_testbed::{Options, Testbed, require_root_or_skip};

use crate::support::{Dmw, docker_run_ok, ls_row, unreachable_create};

const CREDS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "AKIDTEAM"),
    ("AWS_SECRET_ACCESS_KEY", "team-secret"),
];

/// A backend the tests can start and read raw.
trait Backend {
    /// The store URL of `prefix`.
    fn url(&self, prefix: &str) -> String;
    /// Every object of store `prefix` whose key (relative to it) starts with `under`,
    /// read with the backend's own client: (relative key, bytes).
    fn raw(&self, prefix: &str, under: &str) -> Vec<(String, Vec<u8>)>;
    /// Write `key` of store `prefix` unconditionally, as anyone with write access can.
    fn write_raw(&self, prefix: &str, key: &str, bytes: &[u8]);
}

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// moto's S3 server on a free loopback port, with one bucket.
struct S3 {
    child: Child,
    endpoint: String,
}

const BUCKET: &str = "team-fleet";

impl S3 {
    fn start() -> S3 {
        let port = free_port();
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
        let out = s3.py(&["wait"]);
        // moto answers a lost create-once and a stale compare-and-swap with 412.
        assert_eq!(
            out["conditional"],
            serde_json::json!(["PreconditionFailed", "PreconditionFailed"]),
            "{out}"
        );
        s3
    }

    /// Run team_store_s3.py with boto3.
    fn py(&self, args: &[&str]) -> serde_json::Value {
        self.py_in(args, b"")
    }

    /// Run team_store_s3.py with boto3, `input` on its stdin.
    fn py_in(&self, args: &[&str], input: &[u8]) -> serde_json::Value {
        use std::io::Write as _;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e/team_store_s3.py");
        let mut child = Command::new(crate::clouds::venv_python())
            .arg(script)
            .args(args)
            .envs(CREDS)
            .env("S3_ENDPOINT", &self.endpoint)
            .env("S3_BUCKET", BUCKET)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python");
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input).expect("stdin");
        }
        let out = child.wait_with_output().expect("python");
        assert!(
            out.status.success(),
            "team_store_s3.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }
}

impl Backend for S3 {
    fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}?endpoint={}", self.endpoint)
    }

    fn raw(&self, prefix: &str, under: &str) -> Vec<(String, Vec<u8>)> {
        let all = self.py(&["dump", &format!("{prefix}/{under}")]);
        all.as_array()
            .expect("list")
            .iter()
            .map(|o| {
                let key = o["key"].as_str().expect("key");
                (
                    key.strip_prefix(&format!("{prefix}/"))
                        .unwrap_or(key)
                        .to_string(),
                    b64(o["body"].as_str().expect("body")),
                )
            })
            .collect()
    }

    fn write_raw(&self, prefix: &str, key: &str, bytes: &[u8]) {
        self.put(&format!("{prefix}/{key}"), bytes);
    }
}

impl S3 {
    fn put(&self, key: &str, bytes: &[u8]) {
        self.py_in(&["put", key], bytes);
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A three-member etcd cluster on loopback, each member with its own data directory.
struct Etcd {
    _dir: tempfile::TempDir,
    members: Vec<Member>,
}

struct Member {
    client: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl Etcd {
    fn start() -> Etcd {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let args = vec![
                format!("--name=m{i}"),
                format!("--data-dir={}", dir.path().join(format!("m{i}")).display()),
                format!("--listen-client-urls=http://127.0.0.1:{client}"),
                format!("--advertise-client-urls=http://127.0.0.1:{client}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-cluster={cluster}"),
                "--initial-cluster-state=new".into(),
                "--initial-cluster-token=dmw-e2e".into(),
                "--election-timeout=1000".into(),
                "--heartbeat-interval=100".into(),
            ];
            members.push(Member {
                client: *client,
                args,
                child: None,
            });
        }
        let mut etcd = Etcd { _dir: dir, members };
        for i in 0..3 {
            etcd.start_member(i);
        }
        etcd.wait_healthy();
        etcd
    }

    fn start_member(&mut self, i: usize) {
        let m = &mut self.members[i];
        m.child = Some(
            Command::new("etcd")
                .args(&m.args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start etcd (Debian's etcd-server, installed by scripts/setup)"),
        );
    }

    fn kill_member(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// etcdctl, the official client, against every member.
    fn ctl(&self, args: &[&str]) -> std::process::Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoints()))
            .args(args)
            .output()
            .expect("etcdctl (etcd-client, installed by scripts/setup)")
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.ctl(&["endpoint", "health"]).status.success() {
            assert!(Instant::now() < deadline, "etcd never became healthy");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The index of the current leader.
    fn leader(&self) -> usize {
        let out = self.ctl(&["endpoint", "status", "-w", "json"]);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        for s in status.as_array().into_iter().flatten() {
            let (member, leader) = (&s["Status"]["header"]["member_id"], &s["Status"]["leader"]);
            if member == leader {
                let ep = s["Endpoint"].as_str().expect("endpoint");
                return self
                    .members
                    .iter()
                    .position(|m| ep.ends_with(&format!(":{}", m.client)))
                    .expect("a member");
            }
        }
        panic!("no leader in {status}");
    }
}

impl Backend for Etcd {
    fn url(&self, prefix: &str) -> String {
        format!("etcd://{}/{prefix}", self.endpoints())
    }

    fn raw(&self, prefix: &str, under: &str) -> Vec<(String, Vec<u8>)> {
        let root = format!("/dmw/{prefix}/");
        let out = self.ctl(&["get", "--prefix", &format!("{root}{under}"), "-w", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        v["kvs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|kv| {
                let key = String::from_utf8(b64(kv["key"].as_str().expect("key"))).expect("utf8");
                (
                    key.strip_prefix(&root).unwrap_or(&key).to_string(),
                    kv["value"].as_str().map(b64).unwrap_or_default(),
                )
            })
            .collect()
    }

    fn write_raw(&self, prefix: &str, key: &str, bytes: &[u8]) {
        use std::io::Write as _;
        let mut child = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoints()))
            .args(["put", &format!("/dmw/{prefix}/{key}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("etcdctl");
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(bytes).expect("stdin");
        }
        assert!(child.wait().expect("etcdctl").success());
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill_member(i);
        }
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

/// Alice's store with Bob outside its recipients.
fn two_members(url: &str) -> (Dmw, Dmw, String) {
    let (alice, bob) = (member(url), member(url));
    let first = alice.ok(&["store", "init"]);
    assert!(first.contains("Secrets are encrypted to you"), "{first}");
    let key = outside_key(&bob);
    (alice, bob, key)
}

/// Wait until `key` of store `prefix` exists (or not).
fn wait_key(b: &dyn Backend, prefix: &str, key: &str, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let has = b.raw(prefix, key).iter().any(|(k, _)| k == key);
        if has == present {
            return;
        }
        assert!(Instant::now() < deadline, "{key} present={has}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Hold the lock of `name` (lifetime `ttl` seconds) in a create that waits for an SSH port
/// that never answers.
fn stuck_create(m: &Dmw, key: &str, name: &str, ttl: &str) -> Child {
    unreachable_create(m, key, name)
        .env("DMW_SSH_TIMEOUT", "300")
        .env("DMW_LOCK_TTL", ttl)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("create")
}

/// Bob's mutating command on `name` while another process holds it: told who.
fn told_who_holds(bob: &Dmw, name: &str) {
    let r = bob.run(&["rm", "-y", name]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("{name} is being provisioned by tester@"))
            && r.stderr.contains("(command: create)")
            && r.stderr.contains(&format!("dmw store unlock {name}")),
        "{r:?}"
    );
}

/// Bob's rm after the holder was killed: waits for the lock to expire, takes it over.
fn rm_takes_over(bob: &Dmw, name: &str) {
    let r = bob
        .command(&["rm", "-y", name])
        .env("DMW_LOCK_TIMEOUT", "30")
        .output()
        .expect("rm");
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    assert!(
        stderr.contains("had expired and was taken over"),
        "{stderr}"
    );
}

/// The chain shared by both backends, on store `prefix` of `b`.
fn fleet_of_two(b: &dyn Backend, prefix: &str, host: &dmw_testbed::Host) {
    let (alice, bob, bob_key) = two_members(&b.url(prefix));
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

    // Nothing in the backend holds a private key or the SSH key in clear.
    let ssh_key = std::fs::read_to_string(host.key_path()).expect("host key");
    let ssh_line = ssh_key.lines().nth(1).expect("a line of the SSH key");
    let objects = b.raw(prefix, "");
    let keys: Vec<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
    for want in [
        "certs/ca-key.pem",
        "machines/h1/config.json",
        "machines/h1/id_ssh",
        "machines/h1/server-key.pem",
    ] {
        assert!(keys.contains(&want), "{want} missing: {keys:?}");
    }
    for (k, body) in &objects {
        let text = String::from_utf8_lossy(body);
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains(ssh_line),
            "{k} holds a key in clear"
        );
        if k.ends_with("key.pem") || k.ends_with("/id_ssh") {
            assert!(body.starts_with(b"age-encryption.org/v1\n"), "{k}");
        }
    }

    let added = alice.ok(&["store", "recipients", "add", &bob_key]);
    assert!(added.contains("2 recipient(s)"), "{added}");
    docker_run_ok(&bob, "h1");

    // Anyone who can write the backend can add a recipient: no secret is encrypted to it
    // until a member approves it.
    let eve_key = outside_key(&member(&b.url(prefix)));
    let (_, list) = b
        .raw(prefix, "recipients")
        .into_iter()
        .next()
        .expect("recipients");
    let mut forged = list.clone();
    forged.extend_from_slice(format!("{eve_key}\n").as_bytes());
    b.write_raw(prefix, "recipients", &forged);
    let r = alice.run(&["create", "-d", "none", "--url", "tcp://127.0.0.1:1", "n2"]);
    assert!(
        r.stderr
            .contains("gained 1 key(s) that this computer has not approved")
            && r.stderr.contains("dmw store recipients approve"),
        "{r:?}"
    );
    assert!(
        b.raw(prefix, "machines/n2/").is_empty(),
        "nothing of n2 reached the backend"
    );
    alice.ok(&["rm", "-y", "n2"]);
    b.write_raw(prefix, "recipients", &list);

    // While Alice's create of "stuck" runs, Bob is told who has it and sees it Creating;
    // once her process is killed with -9, its lock expires and Bob's rm takes it over.
    let key = host.key_path().display().to_string();
    let mut stuck = stuck_create(&alice, &key, "stuck", "3");
    wait_key(b, prefix, "machines/stuck/config.json", true);
    told_who_holds(&bob, "stuck");
    let ls = bob.ok(&["ls"]);
    let row = ls_row(&ls, "stuck").unwrap_or_else(|| panic!("{ls}"));
    assert!(row.join(" ").contains("Creating"), "{ls}");
    stuck.kill().expect("kill -9");
    let _ = stuck.wait();
    rm_takes_over(&bob, "stuck");
    assert!(ls_row(&alice.ok(&["ls"]), "stuck").is_none());

    // Bob removes h1; Alice's next command no longer has it, and neither has the backend.
    bob.ok(&["rm", "-y", "h1"]);
    assert!(ls_row(&alice.ok(&["ls"]), "h1").is_none());
    let left: Vec<String> = b
        .raw(prefix, "machines/")
        .into_iter()
        .chain(b.raw(prefix, "locks/"))
        .map(|(k, _)| k)
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn two_members_share_a_fleet_on_s3() {
    if !require_root_or_skip("two_members_share_a_fleet_on_s3") {
        return;
    }
    let bed = Testbed::boot(1, &Options::default()).expect("boot a host");
    let s3 = S3::start();
    fleet_of_two(&s3, "fleet", &bed.hosts()[0]);
}

#[test]
fn two_members_share_a_fleet_on_a_three_member_etcd() {
    if !require_root_or_skip("two_members_share_a_fleet_on_a_three_member_etcd") {
        return;
    }
    let bed = Testbed::boot(1, &Options::default()).expect("boot a host");
    let etcd = Etcd::start();
    fleet_of_two(&etcd, "fleet", &bed.hosts()[0]);
}

/// One member down, then the leader killed while a lock is held: the store keeps working,
/// and the lock is held or expired, never held twice.
#[test]
fn etcd_members_and_the_leader_die_under_a_held_lock() {
    if which("etcd").is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("etcd is missing: scripts/setup installs etcd-server");
        }
        eprintln!("skipping: no etcd (run scripts/setup)");
        return;
    }
    let mut etcd = Etcd::start();
    let (alice, bob, bob_key) = two_members(&etcd.url("ha"));
    alice.ok(&["store", "recipients", "add", &bob_key]);

    // A member that is not the leader goes down: every command still works.
    let leader = etcd.leader();
    let other = (leader + 1) % 3;
    etcd.kill_member(other);
    alice.ok(&["create", "-d", "none", "--url", "tcp://127.0.0.1:1", "n1"]);
    assert!(ls_row(&bob.ok(&["ls"]), "n1").is_some());
    etcd.start_member(other);
    etcd.wait_healthy();

    // Alice holds the lock of "stuck"; the leader is killed; the cluster elects another.
    let key_file = crate::failures::fresh_key(&alice);
    // A lifetime of 10 s (renewed every 3.3 s) outlasts an election (about 1 s here).
    let mut stuck = stuck_create(&alice, &key_file, "stuck", "10");
    wait_key(&etcd, "ha", "locks/stuck", true);
    let leader = etcd.leader();
    etcd.kill_member(leader);
    // Alice keeps renewing through the other members: Bob never gets the lock while she
    // lives, for three lifetimes of it; during the election he may get no answer at all.
    let until = Instant::now() + Duration::from_secs(30);
    let mut told = 0;
    while Instant::now() < until {
        let r = bob.run(&["rm", "-y", "stuck"]);
        assert_ne!(r.code, 0, "two holders: {r:?}");
        if r.stderr.contains("stuck is being provisioned by tester@") {
            told += 1;
        } else {
            assert!(r.stderr.contains("no etcd member answered"), "{r:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(told > 10, "the lock was seen held {told} times");
    stuck.kill().expect("kill -9");
    let _ = stuck.wait();
    rm_takes_over(&bob, "stuck");
    assert!(ls_row(&alice.ok(&["ls"]), "stuck").is_none());
    bob.ok(&["rm", "-y", "n1"]);
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
    let (alice, bob, bob_key) = two_members(&s3.url("race"));
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

    // A file store's machines move in with `store push URL`; a name taken is skipped.
    let local = Dmw::new();
    for name in ["p1", "same"] {
        local.ok(&["create", "-d", "none", "--url", "tcp://127.0.0.1:1", name]);
    }
    let from = local.storage.display().to_string();
    let out = alice.ok(&["store", "push", &s3.url("race"), "--from", &from]);
    assert!(
        out.contains("Copied p1")
            && out.contains("Skipped same: the shared store has a machine of that name"),
        "{out}"
    );
    let ls = bob.ok(&["ls", "-q"]);
    assert_eq!(
        ls.split_whitespace().collect::<Vec<_>>(),
        ["p1", "r1", "r2", "same"]
    );

    // ... and move out with `store pull --into`: what a member can read, keys included.
    let out_dir = Dmw::new();
    let into = out_dir.storage.display().to_string();
    let out = bob.ok(&["store", "pull", "--into", &into]);
    assert!(
        out.contains("Copied the CA") && out.contains("Copied r2"),
        "{out}"
    );
    let ls = out_dir.ok(&["ls", "-q"]);
    assert_eq!(
        ls.split_whitespace().collect::<Vec<_>>(),
        ["p1", "r1", "r2", "same"]
    );
    assert!(out_dir.machine_dir("r1").join("key.pem").is_file());
    let carol = member(&s3.url("race"));
    outside_key(&carol);
    let out = carol.ok(&["store", "pull", "--into", &into]);
    assert!(
        out.contains("Skipped r1: its private keys are not readable with your store identity"),
        "{out}"
    );
}

/// The path of `program` on PATH.
fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|f| f.is_file())
    })
}
