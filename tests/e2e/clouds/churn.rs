//! Cloud churn without leaks (the autoscaling users' case): create/rm cycles against the
//! local OpenStack, DigitalOcean and EC2, several at a time, while the cloud injects faults
//! (500, 503 and 429 with Retry-After, dropped connections, lost answers, late answers —
//! `server::Faults`) and some creates are killed (`kill -9`) at a random moment. Afterwards
//! every record left is one `rm` removes cleanly, and the cloud holds nothing — no server,
//! key pair, floating IP, security group or testbed host — that no record explains.
//!
//! CI runs a short pass per provider; `DMW_CHURN_CYCLES=100 DMW_CHURN_PARALLEL=10` is the
//! soak (BENCHMARKS.md has its figures). `DMW_CHURN_SEED` repeats a run.

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::digitalocean::{self, DigitalOcean};
use super::ec2::{self, Ec2};
use super::openstack::{self, OpenStack};
use super::server::Faults;
use crate::support::Dmw;

/// Share of the cloud's answers that fail during the churn.
const FAULTS_PER_MILLE: u32 = 100;
/// Share of creates killed at a random moment.
const KILLS_PER_MILLE: u64 = 200;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A machine name's create arguments.
type CreateArgs = Box<dyn Fn(&str) -> Vec<String> + Send + Sync>;
/// What the cloud still holds, one line each.
type Leftovers = Box<dyn Fn() -> Vec<String> + Send + Sync>;

/// One provider under churn: the create arguments for a machine name, the environment its
/// credentials come from, and what the cloud still holds.
struct Provider {
    name: &'static str,
    args: CreateArgs,
    env: Vec<(String, String)>,
    leftovers: Leftovers,
    faults: Faults,
}

/// What a churn run did.
#[derive(Debug, Default)]
struct Figures {
    cycles: u64,
    created: u64,
    failed_creates: u64,
    killed: u64,
    rm_retries: u64,
    left_after_churn: u64,
}

/// A small deterministic generator for the kill decisions and moments.
fn mix(seed: u64, i: u64) -> u64 {
    let mut x = seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn spawn(dmw: &Dmw, p: &Provider, args: &[String]) -> Child {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut c = dmw.command(&args);
    for (k, v) in &p.env {
        c.env(k, v);
    }
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dmw")
}

/// `rm -y NAME` until it works (a user runs it again after a fault), at most `tries`
/// times; returns how many extra runs it took, or the last output if it never worked.
fn remove(dmw: &Dmw, p: &Provider, name: &str, tries: u32) -> Result<u64, String> {
    let mut last = String::new();
    for attempt in 0..tries {
        let out = spawn(dmw, p, &["rm".into(), "-y".into(), name.into()])
            .wait_with_output()
            .expect("rm");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() || stderr.contains("does not exist") {
            return Ok(u64::from(attempt));
        }
        last = format!(
            "{}{stderr}",
            String::from_utf8_lossy(&out.stdout).into_owned()
        );
    }
    Err(last)
}

/// `cycles` create/rm cycles, `parallel` at a time, then the checks.
fn churn(p: Provider, cycles: u64, parallel: u64, seed: u64) -> Figures {
    let dmw = Arc::new(Dmw::new());
    let p = Arc::new(p);
    let mut figures = Figures {
        cycles,
        ..Figures::default()
    };
    let started = Instant::now();
    let mut next = 0;
    while next < cycles {
        let wave: Vec<u64> = (next..(next + parallel).min(cycles)).collect();
        next += wave.len() as u64;
        let handles: Vec<_> = wave
            .into_iter()
            .map(|i| {
                let (dmw, p) = (dmw.clone(), p.clone());
                std::thread::spawn(move || {
                    let name = format!("{}{i}", p.name);
                    let roll = mix(seed, i);
                    let kill = roll % 1000 < KILLS_PER_MILLE;
                    let mut child = spawn(&dmw, &p, &(p.args)(&name));
                    let mut killed = false;
                    if kill {
                        // Somewhere between before the driver's create and its wait.
                        let at = Duration::from_millis(200 + (roll >> 10) % 6000);
                        let deadline = Instant::now() + at;
                        while Instant::now() < deadline {
                            if child.try_wait().expect("wait").is_some() {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        if child.try_wait().expect("wait").is_none() {
                            child.kill().expect("kill -9");
                            killed = true;
                        }
                    }
                    let out = child.wait_with_output().expect("create");
                    let created = out.status.success();
                    // The user removes what they asked for, whatever happened (again after
                    // a fault, as a user would).
                    let rm = remove(&dmw, &p, &name, 3);
                    eprintln!(
                        "churn {name}: create {}{}, rm {:?}",
                        if created { "ok" } else { "failed" },
                        if killed { " (killed)" } else { "" },
                        rm.as_ref()
                            .map_err(|e| e.lines().last().unwrap_or("").to_string())
                    );
                    if !created && !killed {
                        eprintln!(
                            "churn {name}: {}",
                            String::from_utf8_lossy(&out.stderr)
                                .lines()
                                .next()
                                .unwrap_or("")
                        );
                    }
                    (created, killed, rm)
                })
            })
            .collect();
        for h in handles {
            let (created, killed, rm) = h.join().expect("cycle thread");
            figures.created += u64::from(created);
            figures.failed_creates += u64::from(!created && !killed);
            figures.killed += u64::from(killed);
            if let Ok(extra) = rm {
                figures.rm_retries += extra;
            }
        }
    }
    // The faults stop: every record left must be one `rm` removes cleanly.
    p.faults.set_per_mille(0);
    let left = dmw.ok(&["ls", "-q"]);
    for name in left.lines().filter(|l| !l.is_empty()) {
        figures.left_after_churn += 1;
        remove(&dmw, &p, name, 1)
            .unwrap_or_else(|e| panic!("{}: rm {name} after the churn failed: {e}", p.name));
    }
    assert_eq!(dmw.ok(&["ls", "-q"]), "", "{}: records left", p.name);
    // The cloud deletes asynchronously here and there: give it a moment to settle.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut leftovers = (p.leftovers)();
    while !leftovers.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        leftovers = (p.leftovers)();
    }
    eprintln!(
        "churn {}: {figures:?}, {} faults injected, {:.0} s",
        p.name,
        p.faults.injected().len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        leftovers.is_empty(),
        "{}: the cloud holds what no record explains: {leftovers:?}\nfaults: {:?}",
        p.name,
        p.faults.injected()
    );
    figures
}

fn cycles() -> (u64, u64, u64) {
    (
        env_number("DMW_CHURN_CYCLES", 8),
        env_number("DMW_CHURN_PARALLEL", 4),
        env_number("DMW_CHURN_SEED", 0x5eed),
    )
}

#[test]
fn churn_digitalocean_leaks_nothing() {
    if !dmw_testbed::require_root_or_skip("churn_digitalocean_leaks_nothing") {
        return;
    }
    let (n, parallel, seed) = cycles();
    let faults = Faults::new(FAULTS_PER_MILLE, seed);
    let cloud = DigitalOcean::start(digitalocean::Config {
        max_droplets: 64,
        faults: faults.clone(),
        ..digitalocean::Config::default()
    });
    let api = cloud.url();
    let token = cloud.config().token.clone();
    let cloud = Arc::new(cloud);
    let c = cloud.clone();
    churn(
        Provider {
            name: "do",
            args: Box::new(move |name| {
                [
                    "create",
                    "--driver",
                    "digitalocean",
                    "--digitalocean-api-url",
                    &api,
                    "--no-provision",
                    name,
                ]
                .map(String::from)
                .to_vec()
            }),
            env: vec![("DIGITALOCEAN_ACCESS_TOKEN".into(), token)],
            leftovers: Box::new(move || c.leftovers()),
            faults,
        },
        n,
        parallel,
        seed,
    );
}

#[test]
fn churn_amazonec2_leaks_nothing() {
    if !dmw_testbed::require_root_or_skip("churn_amazonec2_leaks_nothing") {
        return;
    }
    let (n, parallel, seed) = cycles();
    let faults = Faults::new(FAULTS_PER_MILLE, seed);
    let cloud = Ec2::start(ec2::Config {
        max_instances: 64,
        faults: faults.clone(),
        ..ec2::Config::default()
    });
    let endpoint = cloud.url();
    let (key, secret) = (
        cloud.config().access_key.clone(),
        cloud.config().secret_key.clone(),
    );
    let cloud = Arc::new(cloud);
    let c = cloud.clone();
    churn(
        Provider {
            name: "ec",
            args: Box::new(move |name| {
                [
                    "create",
                    "--driver",
                    "amazonec2",
                    "--amazonec2-endpoint",
                    &endpoint,
                    "--amazonec2-ami",
                    "ami-0d3a1c000000deb12",
                    "--no-provision",
                    name,
                ]
                .map(String::from)
                .to_vec()
            }),
            env: vec![
                ("AWS_ACCESS_KEY_ID".into(), key),
                ("AWS_SECRET_ACCESS_KEY".into(), secret),
            ],
            leftovers: Box::new(move || c.leftovers()),
            faults,
        },
        n,
        parallel,
        seed,
    );
}

#[test]
fn churn_openstack_leaks_nothing() {
    if !dmw_testbed::require_root_or_skip("churn_openstack_leaks_nothing") {
        return;
    }
    let (n, parallel, seed) = cycles();
    let faults = Faults::new(FAULTS_PER_MILLE, seed);
    let cloud = OpenStack::start(openstack::Config {
        max_servers: 64,
        faults: faults.clone(),
        ..openstack::Config::default()
    });
    let auth = cloud.auth_url();
    let password = cloud.config().password.clone();
    let cloud = Arc::new(cloud);
    let c = cloud.clone();
    churn(
        Provider {
            name: "os",
            args: Box::new(move |name| {
                [
                    "create",
                    "--driver",
                    "openstack",
                    "--openstack-auth-url",
                    &auth,
                    "--openstack-username",
                    "demo",
                    "--openstack-tenant-name",
                    "demo",
                    "--openstack-flavor-name",
                    "m1.small",
                    "--openstack-image-name",
                    "debian-12",
                    "--openstack-net-name",
                    "private",
                    "--openstack-floatingip-pool",
                    "public",
                    "--no-provision",
                    name,
                ]
                .map(String::from)
                .to_vec()
            }),
            env: vec![("OS_PASSWORD".into(), password)],
            leftovers: Box::new(move || c.leftovers()),
            faults,
        },
        n,
        parallel,
        seed,
    );
}
