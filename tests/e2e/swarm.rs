//! Swarm mode from dmw machines on three real testbed hosts: one `create --swarm-manager`,
//! two `create --swarm --swarm-join` at once, the cluster seen through `dmw env --swarm`,
//! `dmw swarm ls`, `ls`'s SWARM column and filter, a three-replica service with one task on
//! each node, and `rm` of a worker leaving the cluster first.
//!
//! Measured on the testbed (tests/README.md): hosts reach each other's 2377/tcp, init and
//! join work, the kernel has vxlan/overlay so the ingress network exists, but it has no
//! `ip_vs`, so the routing mesh does not answer: the service publishes in **host mode**,
//! and the test checks each node answers on its own address.

use std::thread;
use std::time::{Duration, Instant};

use crate::support::{Dmw, docker_hosts, ls_row, shell_quote};

/// `docker ARGS` through `eval "$(dmw env --swarm NAME)"`.
fn swarm_docker(dmw: &Dmw, cluster: &str, script: &str) -> crate::support::Run {
    dmw.with_env(&format!("--swarm {cluster}"), script)
}

#[test]
fn three_hosts_make_one_swarm() {
    if !dmw_testbed::require_root_or_skip("three_hosts_make_one_swarm") {
        return;
    }
    let tb = docker_hosts(3);
    let dmw = Dmw::new();
    let mut args = Dmw::create_args(&tb[0], "root", "m1");
    args.insert(1, "--swarm-master".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = dmw.ok(&args);
    assert!(out.contains("leads the new swarm"), "{out}");

    // Two workers at once.
    let started = Instant::now();
    let workers: Vec<_> = [("w1", 1usize), ("w2", 2)]
        .into_iter()
        .map(|(name, i)| {
            let mut args = Dmw::create_args(&tb[i], "root", name);
            args.splice(1..1, ["--swarm".into(), "--swarm-join".into(), "m1".into()]);
            let cmd = dmw.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
            thread::spawn(move || {
                let mut cmd = cmd;
                crate::support::Run::from(cmd.output().expect("dmw create"))
            })
        })
        .collect();
    for (w, name) in workers.into_iter().zip(["w1", "w2"]) {
        let r = w.join().expect("thread");
        assert_eq!(r.code, 0, "create {name}: {r:?}");
        assert!(
            !r.stdout.contains("SWMTKN") && !r.stderr.contains("SWMTKN"),
            "{r:?}"
        );
    }
    eprintln!("two workers created and joined in {:?}", started.elapsed());
    for name in ["m1", "w1", "w2"] {
        let log = std::fs::read_to_string(dmw.machine_dir(name).join("provision.log"))
            .unwrap_or_default();
        let record =
            std::fs::read_to_string(dmw.machine_dir(name).join("config.json")).expect("record");
        assert!(!log.contains("SWMTKN") && !record.contains("SWMTKN"));
    }

    // Three Ready nodes through the leader.
    let r = swarm_docker(
        &dmw,
        "w1",
        "docker node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let ready = r.stdout.lines().filter(|l| l.contains(" Ready")).count();
    assert_eq!(ready, 3, "{}", r.stdout);
    // create sets each host's name to the machine's.
    assert!(r.stdout.contains("m1 Ready Leader"), "{}", r.stdout);

    let sls = dmw.ok(&["swarm", "ls", "m1"]);
    assert!(sls.starts_with("SWARM m1"), "{sls}");
    for (m, role) in [
        ("m1", "manager (leader)"),
        ("w1", "worker"),
        ("w2", "worker"),
    ] {
        let line = sls
            .lines()
            .find(|l| l.split_whitespace().next() == Some(m))
            .unwrap_or_else(|| panic!("{m} missing in {sls}"));
        assert!(line.contains(role) && line.contains("ready"), "{line}");
    }

    // ls: SWARM column, filter, template; inspect.
    let ls = dmw.ok(&["ls"]);
    assert_eq!(
        ls_row(&ls, "m1").expect("m1 row")[5],
        "m1 (manager)",
        "{ls}"
    );
    assert_eq!(ls_row(&ls, "w1").expect("w1 row")[5], "m1", "{ls}");
    let mut filtered: Vec<String> = dmw
        .ok(&["ls", "-q", "--filter", "swarm=m1"])
        .lines()
        .map(str::to_owned)
        .collect();
    filtered.sort();
    assert_eq!(filtered, ["m1", "w1", "w2"]);
    assert_eq!(
        dmw.ok(&["ls", "--filter", "name=w2", "--format", "{{.Swarm}}"]),
        "m1\n"
    );
    assert_eq!(
        dmw.ok(&[
            "inspect",
            "--format",
            "{{.HostOptions.SwarmOptions.Master}}",
            "m1"
        ]),
        "true\n"
    );

    // A three-replica service: one task on each node (host-mode publishing).
    let tar = dmw_testbed::image_tarball().expect("image tarball");
    for name in ["m1", "w1", "w2"] {
        let r = dmw.with_env(
            name,
            &format!(
                "docker import {} dmw-test/bb:1 >/dev/null",
                shell_quote(&tar.display().to_string())
            ),
        );
        assert_eq!(r.code, 0, "import on {name}: {r:?}");
    }
    let r = swarm_docker(
        &dmw,
        "m1",
        "docker service create --detach --quiet --name web --replicas 3 --publish mode=host,published=8080,target=8080 dmw-test/bb:1 httpd -f -p 8080 -h / >/dev/null",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(90);
    let running = loop {
        let r = swarm_docker(
            &dmw,
            "m1",
            "docker service ps web --filter desired-state=running --format '{{.Node}} {{.CurrentState}}'",
        );
        let mut nodes: Vec<String> = r
            .stdout
            .lines()
            .filter(|l| l.contains("Running"))
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect();
        nodes.sort();
        nodes.dedup();
        if nodes.len() == 3 || Instant::now() > deadline {
            break nodes;
        }
        thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(
        running,
        ["m1", "w1", "w2"],
        "tasks not running on every node"
    );
    for h in tb.iter() {
        let got = tb[0]
            .ssh_ok(
                "root",
                &format!("curl -sf -m 5 http://{}:8080/etc/hostname", h.addr()),
            )
            .unwrap_or_default();
        assert!(
            !got.trim().is_empty(),
            "no answer from the task on {}",
            h.addr()
        );
    }

    // A worker leaves (drained, removed from the node list).
    dmw.ok(&["swarm", "leave", "w2"]);
    assert_eq!(node_names(&dmw), ["m1", "w1"]);

    // Failure path: w2's engine cannot reach m1's 2377/tcp (the rule cuts exactly that
    // link inside w2's host; dmw still reaches both engines).
    let block = format!(
        "iptables -w -I OUTPUT -p tcp -d {} --dport 2377 -j REJECT --reject-with tcp-reset",
        tb[0].addr()
    );
    let out = tb[2].exec(&block).expect("exec");
    assert!(out.success(), "{out:?}");
    let before = [record(&dmw, "m1"), record(&dmw, "w2")];
    let r = dmw.run(&["swarm", "join", "w2", "--manager", "m1", "--as", "manager"]);
    assert_ne!(r.code, 0, "{r:?}");
    for needle in ["\"w2\"", "\"m1\"", "2377"] {
        assert!(r.stderr.contains(needle), "{needle} missing: {r:?}");
    }
    assert!(!r.stderr.contains("SWMTKN") && !r.stdout.contains("SWMTKN"));
    eprintln!("join without 2377: {}", r.stderr.trim());
    assert_eq!([record(&dmw, "m1"), record(&dmw, "w2")], before);
    let out = tb[2].exec(&block.replace(" -I ", " -D ")).expect("exec");
    assert!(out.success(), "{out:?}");
    // w2's engine is not left joining in the background.
    let r = dmw.with_env("w2", "docker info --format '{{.Swarm.LocalNodeState}}'");
    assert_eq!(r.stdout.trim(), "inactive", "{r:?}");

    // Three managers: w2 joins as one, w1 leaves and comes back as one.
    dmw.ok(&["swarm", "join", "w2", "--manager", "m1", "--as", "manager"]);
    dmw.ok(&["swarm", "leave", "w1"]);
    dmw.ok(&["swarm", "join", "w1", "--manager", "w2", "--as", "manager"]);
    let sls = dmw.ok(&["swarm", "ls", "m1"]);
    assert_eq!(sls.matches("manager").count(), 3, "{sls}");

    // With w2 unreachable, w1 leaving would leave one reachable manager of two: refused.
    tb[2].cut_link().expect("cut link");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !swarm_docker(
        &dmw,
        "m1",
        "docker node ls --format '{{.Hostname}} {{.ManagerStatus}}'",
    )
    .stdout
    .contains("w2 Unreachable")
    {
        assert!(Instant::now() < deadline, "w2 never became unreachable");
        thread::sleep(Duration::from_millis(500));
    }
    let refused = dmw.run(&["swarm", "leave", "w1"]);
    tb[2].restore_link().expect("restore link");
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("quorum"), "{refused:?}");
    assert_eq!(
        dmw.ok(&["ls", "--filter", "name=w1", "--format", "{{.Swarm}}"]),
        "m1 (manager)\n"
    );

    // With all three reachable again, w2 leaves: demoted first, quorum kept.
    let deadline = Instant::now() + Duration::from_secs(60);
    let left = loop {
        let r = dmw.run(&["swarm", "leave", "w2"]);
        if r.code == 0 || Instant::now() > deadline {
            break r;
        }
        thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(left.code, 0, "{left:?}");
    assert!(left.stdout.contains("Demoting \"w2\""), "{left:?}");
    assert_eq!(node_names(&dmw), ["m1", "w1"]);

    // rm of a manager (quorum remains) demotes it and removes its node.
    dmw.ok(&["swarm", "join", "w2", "--manager", "m1"]);
    let out = dmw.ok(&["rm", "-y", "w1"]);
    assert!(out.contains("Successfully removed w1"), "{out}");
    assert_eq!(node_names(&dmw), ["m1", "w2"]);

    // The last manager of a cluster with a worker does not leave without --force, and
    // `rm` asks first: "n" keeps everything, `-y` removes it.
    let r = dmw.run(&["swarm", "leave", "m1"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("last manager"), "{r:?}");
    let r = dmw.run_with_stdin(&["rm", "m1"], "y\nn\n");
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("last manager of the swarm \"m1\", which has 1 other node(s)"),
        "{r:?}"
    );
    assert_eq!(node_names(&dmw), ["m1", "w2"]);
    let out = dmw.ok(&["rm", "-y", "m1"]);
    assert!(out.contains("Successfully removed m1"), "{out}");
    dmw.ok(&["swarm", "leave", "w2"]);
    assert_eq!(dmw.ok(&["ls", "--format", "{{.Name}}:{{.Swarm}}"]), "w2:\n");
}

/// The host names in the leader's `docker node ls`, sorted.
fn node_names(dmw: &Dmw) -> Vec<String> {
    let r = swarm_docker(dmw, "m1", "docker node ls --format '{{.Hostname}}'");
    assert_eq!(r.code, 0, "{r:?}");
    let mut names: Vec<String> = r.stdout.lines().map(str::to_owned).collect();
    names.sort();
    names
}

/// A machine's record as stored.
fn record(dmw: &Dmw, name: &str) -> String {
    std::fs::read_to_string(dmw.machine_dir(name).join("config.json")).expect("record")
}

/// Imports the test image on `names` (one after another) and runs a three-replica service
/// through the engine `dmw env ENV` points at; returns once a task runs on each node.
fn service_on_every_node(dmw: &Dmw, env: &str, names: &[&str]) {
    let tar = dmw_testbed::image_tarball().expect("image tarball");
    for name in names {
        let r = dmw.with_env(
            name,
            &format!(
                "docker import {} dmw-test/bb:1 >/dev/null",
                shell_quote(&tar.display().to_string())
            ),
        );
        assert_eq!(r.code, 0, "import on {name}: {r:?}");
    }
    let r = dmw.with_env(
        env,
        "docker service create --detach --quiet --name web --replicas 3 --publish mode=host,published=8080,target=8080 dmw-test/bb:1 httpd -f -p 8080 -h / >/dev/null",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = dmw.with_env(
            env,
            "docker service ps web --filter desired-state=running --format '{{.Node}} {{.CurrentState}}'",
        );
        let mut nodes: Vec<&str> = r
            .stdout
            .lines()
            .filter(|l| l.contains("Running"))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        nodes.sort();
        nodes.dedup();
        if nodes.len() == 3 {
            return;
        }
        assert!(Instant::now() < deadline, "tasks not running: {}", r.stdout);
        thread::sleep(Duration::from_millis(250));
    }
}

/// `dmw ARGS` for each of `args` at once; every one must succeed.
fn parallel(dmw: &Dmw, args: Vec<Vec<String>>) {
    let runs: Vec<_> = args
        .into_iter()
        .map(|a| {
            let mut cmd = dmw.command(&a.iter().map(String::as_str).collect::<Vec<_>>());
            thread::spawn(move || crate::support::Run::from(cmd.output().expect("dmw")))
        })
        .collect();
    for r in runs {
        let r = r.join().expect("thread");
        assert_eq!(r.code, 0, "{r:?}");
    }
}

/// The BENCHMARKS.md figures: three bare docker hosts to a three-node cluster with a
/// service on every node, three ways, each on fresh hosts (boot not counted), then
/// `dmw swarm ls` latency. Run with
/// `cargo test -p dmw --test e2e -- --ignored swarm_benchmark --nocapture`.
#[test]
#[ignore = "benchmark: prints timings for BENCHMARKS.md"]
fn swarm_benchmark() {
    if !dmw_testbed::require_root_or_skip("swarm_benchmark") {
        return;
    }
    let names = ["m1", "w1", "w2"];
    let create = |tb: &dmw_testbed::Testbed, name: &str, swarm: &[&str]| {
        let i = names.iter().position(|n| *n == name).unwrap_or(0);
        let mut args = Dmw::create_args(&tb.hosts()[i], "root", name);
        args.splice(1..1, swarm.iter().map(|s| s.to_string()));
        args
    };

    // (a) create --swarm-manager, then both workers' create --swarm --swarm-join at once.
    let tb = docker_hosts(3);
    let dmw = Dmw::new();
    let t = Instant::now();
    parallel(&dmw, vec![create(&tb, "m1", &["--swarm-manager"])]);
    parallel(
        &dmw,
        ["w1", "w2"]
            .iter()
            .map(|n| create(&tb, n, &["--swarm", "--swarm-join", "m1"]))
            .collect(),
    );
    let cluster_a = t.elapsed();
    service_on_every_node(&dmw, "--swarm m1", &names);
    let total_a = t.elapsed();
    let mut ls: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            dmw.ok(&["swarm", "ls", "m1"]);
            t.elapsed()
        })
        .collect();
    ls.sort();
    drop(tb);

    // (b) three plain creates at once, then `dmw swarm init` and `dmw swarm join` (both
    // workers at once).
    let tb = docker_hosts(3);
    let dmw = Dmw::new();
    let t = Instant::now();
    parallel(&dmw, names.iter().map(|n| create(&tb, n, &[])).collect());
    dmw.ok(&["swarm", "init", "m1"]);
    dmw.ok(&["swarm", "join", "w1", "w2", "--manager", "m1"]);
    let cluster_b = t.elapsed();
    service_on_every_node(&dmw, "--swarm m1", &names);
    let total_b = t.elapsed();
    drop(tb);

    // (c) Docker Machine style by hand: three creates one after another, then `docker swarm
    // init`, `join-token` and `docker swarm join` through each machine's env.
    let tb = docker_hosts(3);
    let dmw = Dmw::new();
    let t = Instant::now();
    for n in names {
        parallel(&dmw, vec![create(&tb, n, &[])]);
    }
    let m1 = tb.hosts()[0].addr();
    let r = dmw.with_env(
        "m1",
        &format!("docker swarm init --advertise-addr {m1} >/dev/null && docker swarm join-token -q worker"),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let token = r.stdout.trim().to_owned();
    for n in ["w1", "w2"] {
        let r = dmw.with_env(
            n,
            &format!("docker swarm join --token {token} {m1}:2377 >/dev/null"),
        );
        assert_eq!(r.code, 0, "join {n}: exit {}", r.code);
    }
    let cluster_c = t.elapsed();
    // By hand the cluster is not in dmw's records: the user points at m1 itself.
    service_on_every_node(&dmw, "m1", &names);
    let total_c = t.elapsed();
    drop(tb);

    eprintln!(
        "BENCH (a) create --swarm-manager + 2 x create --swarm-join at once: cluster {cluster_a:.1?}, with the service running {total_a:.1?}"
    );
    eprintln!(
        "BENCH (b) 3 creates at once + swarm init + swarm join (2 at once): cluster {cluster_b:.1?}, with the service running {total_b:.1?}"
    );
    eprintln!(
        "BENCH (c) 3 serial creates + docker swarm init/join-token/join by hand: cluster {cluster_c:.1?}, with the service running {total_c:.1?}"
    );
    eprintln!(
        "BENCH dmw swarm ls m1 (3 nodes, 20 runs): min {:.1?}, median {:.1?}, max {:.1?}",
        ls[0],
        ls[ls.len() / 2],
        ls[ls.len() - 1]
    );
}
