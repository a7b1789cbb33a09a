//! The amazonec2 driver's API lifecycle against moto's EC2 (PyPI `moto[server]`), with
//! moto checking every SigV4 signature: a wrong secret is refused (AuthFailure) and leaves
//! nothing; `dmw create --no-provision` makes the key pair, security group and instance;
//! status, stop, start and restart go through the API; rm leaves nothing in moto.
//!
//! moto invents instance addresses (54.214.x.y) that belong to no host of ours, so they
//! must never be contacted. dmw and moto run in a network namespace of their own whose only
//! way out is a veth pair that leads nowhere, behind an iptables rule that rejects and counts every packet
//! not on loopback: the test asserts the count is zero, then shows that the rule does count
//! a connection attempt.

use std::process::{Child, Command, Stdio};

use crate::support::{Dmw, Run, files_containing};

/// A network namespace with loopback, a default route into a dead-end veth pair and an
/// iptables rule that rejects and counts everything not on loopback.
struct Netns {
    name: String,
    moto: Option<Child>,
}

fn ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Netns {
    fn new() -> Netns {
        let name = format!("dmwmoto{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ok(
            Command::new("ip").args(["netns", "add", &name]),
            "ip netns add",
        );
        let ns = Netns { name, moto: None };
        for args in [
            "ip link set lo up",
            "ip link add out0 type veth peer name out1",
            "ip addr add 198.51.100.1/24 dev out0",
            "ip link set out1 up",
            "ip link set out0 up",
            "ip route add default dev out0",
            "iptables -w -A OUTPUT ! -o lo -j REJECT",
        ] {
            let argv: Vec<&str> = args.split(' ').collect();
            ok(&mut ns.cmd(argv[0], &argv[1..]), args);
        }
        ns
    }

    /// `program args` inside the namespace.
    fn cmd(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]).args(args);
        c
    }

    /// `c` (a `dmw` command with its environment) inside the namespace.
    fn wrap(&self, c: &Command) -> Command {
        let mut w = Command::new("ip");
        w.args(["netns", "exec", &self.name])
            .arg(c.get_program())
            .args(c.get_args());
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => w.env(k, v),
                None => w.env_remove(k),
            };
        }
        w
    }

    /// Packets that tried to leave through anything but loopback.
    fn outbound_packets(&self) -> u64 {
        let table = ok(
            &mut self.cmd("iptables", &["-w", "-L", "OUTPUT", "-v", "-n", "-x"]),
            "iptables -L",
        );
        table
            .lines()
            .find(|l| l.contains("REJECT"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no REJECT rule in:\n{table}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(mut moto) = self.moto.take() {
            let _ = moto.kill();
            let _ = moto.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A dmw command in the namespace, with `env` added.
fn dmw_in(ns: &Netns, dmw: &Dmw, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = ns.wrap(&dmw.command(args));
    c.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run dmw").into()
}

fn must(r: Run, what: &str) -> String {
    assert_eq!(r.code, 0, "{what} failed:\n{}\n{}", r.stdout, r.stderr);
    r.stdout
}

#[test]
fn amazonec2_moto() {
    if !dmw_testbed::require_root_or_skip("amazonec2_moto") {
        return;
    }
    let mut ns = Netns::new();
    let venv = super::venv_python().display().to_string();
    let moto_server = dmw_testbed::venv_program("moto_server")
        .display()
        .to_string();
    let endpoint = "http://127.0.0.1:5000";
    // Three unauthenticated calls make the IAM user, its key and its policy; every call
    // after them must be signed with that key.
    ns.moto = Some(
        ns.cmd(&moto_server, &["-H", "127.0.0.1", "-p", "5000"])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {moto_server} (made by scripts/setup): {e}")),
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/e2e/clouds/ec2_moto.py"
    );
    let py = |args: &[&str]| -> serde_json::Value {
        let mut all = vec![script];
        all.extend_from_slice(args);
        let out = ok(
            ns.cmd(&venv, &all).env("CHECK_ENDPOINT", endpoint),
            &format!("ec2_moto.py {}", args[0]),
        );
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let setup = py(&["setup"]);
    let field = |k: &str| setup[k].as_str().expect(k).to_string();
    let (key, secret, vpc, subnet, ami) = (
        field("access_key"),
        field("secret_key"),
        field("vpc"),
        field("subnet"),
        field("ami"),
    );
    // moto really checks signatures: boto3 with a wrong secret is refused.
    assert_eq!(py(&["try-bad-secret", &key])["code"], "AuthFailure");

    let dmw = Dmw::new();
    let userdata = dmw.storage.with_file_name("user-data.yml");
    std::fs::write(&userdata, "#cloud-config\npackages: []\n").expect("user data");
    let userdata = userdata.display().to_string();
    let create = |name: &str, secret: &str, extra: &[&str]| {
        let mut args = vec![
            "create",
            "--driver",
            "amazonec2",
            "--amazonec2-endpoint",
            endpoint,
            "--amazonec2-vpc-id",
            &vpc,
            "--amazonec2-subnet-id",
            &subnet,
            "--amazonec2-ami",
            &ami,
            "--amazonec2-tags",
            "team,dmw,env,e2e",
            "--amazonec2-userdata",
            &userdata,
            "--no-provision",
        ];
        args.extend_from_slice(extra);
        args.push(name);
        dmw_in(
            &ns,
            &dmw,
            &args,
            &[
                ("AWS_ACCESS_KEY_ID", key.as_str()),
                ("AWS_SECRET_ACCESS_KEY", secret),
            ],
        )
    };

    // A wrong secret: moto's own words, the step, nothing made or kept.
    let bad_secret = "wrongwrongwrongwrongwrongwrongwrongwrong";
    let r = create("bad", bad_secret, &[]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("Error creating machine \"bad\"")
            && r.stderr.contains("pre-create check")
            && r.stderr
                .contains("AuthFailure: AWS was not able to validate"),
        "{r:?}"
    );
    assert!(!r.stderr.contains(bad_secret) && !r.stdout.contains(bad_secret));
    assert!(!dmw.machine_dir("bad").exists());

    let r = create("ec2a", &secret, &[]);
    let stdout = must(r, "create --no-provision");
    assert!(
        stdout.contains("Instance i-") && stdout.contains("not provisioned (--no-provision)"),
        "{stdout}"
    );
    let status = |dmw: &Dmw| must(dmw_in(&ns, dmw, &["status", "ec2a"], &[]), "status");
    assert_eq!(status(&dmw).trim(), "Running");
    let ls = must(dmw_in(&ns, &dmw, &["ls"], &[]), "ls");
    assert!(ls.contains("--no-provision"), "{ls}");
    must(dmw_in(&ns, &dmw, &["stop", "ec2a"], &[]), "stop");
    assert_eq!(status(&dmw).trim(), "Stopped");
    must(dmw_in(&ns, &dmw, &["start", "ec2a"], &[]), "start");
    assert_eq!(status(&dmw).trim(), "Running");
    must(dmw_in(&ns, &dmw, &["restart", "ec2a"], &[]), "restart");
    assert_eq!(status(&dmw).trim(), "Running");

    // The secret: only in the 0600 record; never in the log.
    let record = dmw.machine_dir("ec2a").join("config.json");
    assert_eq!(
        files_containing(&dmw.storage, &secret),
        vec![record.clone()]
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&record)
        .expect("record")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let log = std::fs::read_to_string(dmw.machine_dir("ec2a").join("provision.log")).expect("log");
    assert!(!log.contains("Waiting for SSH"), "{log}");
    assert!(log.contains(&format!("POST {endpoint}/ → 200")), "{log}");

    let rm = must(dmw_in(&ns, &dmw, &["rm", "-y", "ec2a"], &[]), "rm");
    assert!(
        rm.contains("Removed at EC2: instance i-")
            && rm.contains("key pair ec2a")
            && rm.contains("security group sg-"),
        "{rm}"
    );
    // A spot instance: the request is recorded, and rm cancels it with the instance.
    let spot = must(
        create("ec2spot", &secret, &["--amazonec2-request-spot-instance"]),
        "create a spot instance",
    );
    assert!(spot.contains("Requesting a spot instance"), "{spot}");
    assert_eq!(
        must(dmw_in(&ns, &dmw, &["status", "ec2spot"], &[]), "status").trim(),
        "Running"
    );
    let rm = must(dmw_in(&ns, &dmw, &["rm", "-y", "ec2spot"], &[]), "rm spot");
    assert!(
        rm.contains("Removed at EC2: instance i-") && rm.contains("spot request sir-"),
        "{rm}"
    );
    let left = py(&["leftovers", &key, &secret]);
    assert_eq!(left["left"], serde_json::json!([]), "left in moto: {left}");

    // No packet left loopback: moto's invented addresses were never contacted.
    assert_eq!(
        ns.outbound_packets(),
        0,
        "dmw tried to reach a non-loopback address"
    );
    // The trap counts: one connection attempt to such an address shows up.
    let _ = ns
        .cmd("bash", &["-c", "exec 3<>/dev/tcp/54.214.1.2/22"])
        .stderr(Stdio::null())
        .status();
    assert!(
        ns.outbound_packets() >= 1,
        "the iptables trap does not count"
    );
}
