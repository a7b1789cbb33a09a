//! Output for scripts: `ls --filter/--format/--output json`, `inspect --format`,
//! `status`/`version --output json`, and the error messages of the read-only commands.
//!
//! The first tests need no host: machine records are written with the library (`Store`),
//! pointing at 127.0.0.1 only — a closed port (Stopped), a listener that never answers
//! (Timeout), a failed create (Error) and an unreadable record. The last one checks state
//! and label filters, `ActiveHost` and the DM inspect paths against a real running machine.

use std::net::TcpListener;
use std::time::Instant;

use dmw::state::store::{
    DriverRef, Endpoint, EngineOptions, MachineRecord, MachineStatus, StepError, Store,
    SwarmMembership,
};
use dmw_testbed::require_root_or_skip;

use crate::support::{Dmw, Run, docker_hosts};

/// A port on 127.0.0.1 with nothing listening.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Writes a ready generic machine at 127.0.0.1 (engine and SSH ports as given), with the
/// store's client certificates copied in so the engine query really dials.
fn ready_machine(store: &Store, name: &str, engine_port: u16, ssh_port: u16, labels: &[&str]) {
    let mut r = MachineRecord::new(
        name,
        DriverRef::builtin("generic"),
        EngineOptions {
            labels: labels.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
    );
    for (k, v) in [
        ("ip-address", "127.0.0.1".to_string()),
        ("ssh-port", ssh_port.to_string()),
        ("engine-port", engine_port.to_string()),
    ] {
        r.driver_state.insert(k.into(), v);
    }
    r.endpoint = Some(Endpoint {
        address: "127.0.0.1".into(),
        engine_port,
        ssh_address: "127.0.0.1".into(),
        ssh_port,
        ssh_user: "root".into(),
    });
    r.status = MachineStatus::Ready;
    store.save(&r).expect("save record");
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::copy(store.certs_dir().join(f), store.machine_dir(name).join(f))
            .expect("copy cert");
    }
}

/// The hostless store used by the golden tests; the returned listener must stay alive (it
/// is the never-answering engine of `slow`).
fn hostless_store(dmw: &Dmw) -> TcpListener {
    let store = Store::new(&dmw.storage);
    dmw::net::tls::bootstrap(&store.certs_dir(), "tester").expect("certificates");
    let hang = TcpListener::bind("127.0.0.1:0").expect("bind");
    let hang_port = hang.local_addr().expect("addr").port();
    ready_machine(
        &store,
        "web1",
        closed_port(),
        closed_port(),
        &["env=prod", "tier=web"],
    );
    ready_machine(&store, "web10", closed_port(), closed_port(), &["env=prod"]);
    ready_machine(&store, "web2", closed_port(), closed_port(), &["env=dev"]);
    ready_machine(&store, "Zed", closed_port(), closed_port(), &[]);
    ready_machine(&store, "slow", hang_port, closed_port(), &["env=prod"]);
    let mut failed = MachineRecord::new(
        "failed",
        DriverRef::builtin("generic"),
        EngineOptions::default(),
    );
    failed.status = MachineStatus::Error;
    failed.error = Some(StepError {
        step: "wait for SSH".into(),
        message: "connection refused".into(),
    });
    store.save(&failed).expect("save");
    std::fs::create_dir_all(store.machine_dir("broken")).expect("mkdir");
    std::fs::write(store.machine_dir("broken").join("config.json"), b"{").expect("write");
    hang
}

fn fails_with(r: &Run, stderr: &str) {
    assert_eq!(r.code, 1, "exit code: {r:?}");
    assert_eq!(r.stderr, format!("{stderr}\n"), "{r:?}");
    assert_eq!(r.stdout, "", "nothing on stdout: {r:?}");
}

#[test]
fn ls_golden_table_formats_and_filters_without_hosts() {
    let dmw = Dmw::new();
    let _hang = hostless_store(&dmw);
    let broken_path = dmw.machine_dir("broken").join("config.json");

    let t = Instant::now();
    let table = dmw.ok(&["ls", "-t", "1"]);
    assert!(t.elapsed().as_secs() < 5, "ls waited {:?}", t.elapsed());
    let expected = format!(
        concat!(
            "NAME     ACTIVE   DRIVER      STATE     URL   SWARM   DOCKER    ERRORS\n",
            "broken   -        not found   Error                             machine \"broken\": cannot read {}: EOF while parsing an object at line 1 column 1; fix the file, or `dmw rm -f broken` removes the record (not the machine at its provider)\n",
            "failed   -        generic     Error                             wait for SSH failed: connection refused\n",
            "slow              generic     Timeout                           \n",
            "web1     -        generic     Stopped                 Unknown   \n",
            "web2     -        generic     Stopped                 Unknown   \n",
            "web10    -        generic     Stopped                 Unknown   \n",
            "Zed      -        generic     Stopped                 Unknown   \n",
        ),
        broken_path.display()
    );
    assert_eq!(table, expected);

    // A template, with the Docker Machine `table` header and `\t` escapes.
    assert_eq!(
        dmw.ok(&[
            "ls",
            "-t",
            "1",
            "--filter",
            "driver=generic",
            "--format",
            r"table {{.Name}}\t{{.State}}\t{{.EngineOptions.Labels}}\t{{.ActiveHost}}",
        ]),
        concat!(
            "NAME     STATE     LABELS                ACTIVE_HOST\n",
            "failed   Error     []                    false\n",
            "slow     Timeout   [env=prod]            false\n",
            "web1     Stopped   [env=prod tier=web]   false\n",
            "web2     Stopped   [env=dev]             false\n",
            "web10    Stopped   [env=prod]            false\n",
            "Zed      Stopped   []                    false\n",
        )
    );
    // Without `table`: no header, no tabwriter; functions; `json`.
    assert_eq!(
        dmw.ok(&[
            "ls",
            "--filter",
            "name=^web",
            "--format",
            r"{{upper .Name}}:{{json .EngineOptions.Labels}}",
        ]),
        "WEB1:[\"env=prod\",\"tier=web\"]\nWEB2:[\"env=dev\"]\nWEB10:[\"env=prod\"]\n"
    );

    // Filters: same key OR-ed, different keys AND-ed, quiet mode, state only when asked.
    let q = |args: &[&str]| {
        let mut all = vec!["ls", "-q", "-t", "1"];
        all.extend_from_slice(args);
        dmw.ok(&all)
    };
    assert_eq!(q(&[]), "broken\nfailed\nslow\nweb1\nweb2\nweb10\nZed\n");
    assert_eq!(q(&["--filter", "name=^web1"]), "web1\nweb10\n");
    assert_eq!(
        q(&["--filter", "name=0$", "--filter", "name=^Z"]),
        "web10\nZed\n"
    );
    assert_eq!(q(&["--filter", "label=env=PROD"]), "slow\nweb1\nweb10\n");
    assert_eq!(
        q(&[
            "--filter",
            "label=env=prod",
            "--filter",
            "label=env=dev",
            "--filter",
            "name=^web"
        ]),
        "web1\nweb2\nweb10\n"
    );
    assert_eq!(q(&["--filter", "DRIVER=not found"]), "broken\n");
    assert_eq!(q(&["--filter", "state=error"]), "broken\nfailed\n");
    assert_eq!(
        q(&["--filter", "state=Stopped", "--filter", "label=env=prod"]),
        "web1\nweb10\n"
    );
    assert_eq!(q(&["--filter", "state=timeout"]), "slow\n");
    assert_eq!(q(&["--filter", "state=Running"]), "");
    assert_eq!(q(&["--filter", "swarm="]).lines().count(), 7);
    assert_eq!(q(&["--filter", "swarm=master"]), "");
    // The default table with a filter keeps the full layout.
    let stopped = dmw.ok(&["ls", "--filter", "state=Stopped", "--filter", "name=web2"]);
    assert_eq!(
        stopped,
        concat!(
            "NAME   ACTIVE   DRIVER    STATE     URL   SWARM   DOCKER    ERRORS\n",
            "web2   -        generic   Stopped                 Unknown   \n",
        )
    );

    // JSON for scripts: the template's field names; `--format json` is the same document.
    let json = dmw.ok(&[
        "ls",
        "-o",
        "json",
        "-t",
        "1",
        "--filter",
        "name=^(web1|slow)$",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("ls -o json is JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(2), "{json}");
    assert_eq!(v[0]["Name"], "slow");
    assert_eq!(v[0]["State"], "Timeout");
    assert_eq!(v[0]["Active"], "");
    assert_eq!(v[0]["ResponseTime"], "1s");
    assert_eq!(v[1]["Name"], "web1");
    assert_eq!(v[1]["DriverName"], "generic");
    assert_eq!(v[1]["State"], "Stopped");
    assert_eq!(v[1]["DockerVersion"], "Unknown");
    assert_eq!(v[1]["ActiveHost"], false);
    assert_eq!(
        v[1]["EngineOptions"]["Labels"],
        serde_json::json!(["env=prod", "tier=web"])
    );
    let via_format = dmw.ok(&["ls", "--format", "json", "--filter", "name=^web2$"]);
    let v: serde_json::Value = serde_json::from_str(&via_format).expect("--format json");
    assert_eq!(v[0]["Name"], "web2");
    assert_eq!(
        dmw.ok(&["ls", "-o", "json", "--filter", "name=none"]),
        "[]\n"
    );
}

/// Writes `name` in the swarm `cluster` as `role` (a ready machine on closed ports).
fn swarm_member(store: &Store, name: &str, cluster: &str, role: &str) {
    ready_machine(store, name, closed_port(), closed_port(), &[]);
    let mut r = store.load(name).expect("load");
    r.swarm = Some(SwarmMembership {
        cluster: cluster.into(),
        cluster_id: format!("id-{cluster}"),
        node_id: format!("node-{name}"),
        role: role.into(),
        advertise_addr: "127.0.0.1".into(),
    });
    store.save(&r).expect("save");
}

#[test]
fn ls_golden_swarm_column_without_hosts() {
    let dmw = Dmw::new();
    let store = Store::new(&dmw.storage);
    dmw::net::tls::bootstrap(&store.certs_dir(), "tester").expect("certificates");
    swarm_member(&store, "m1", "m1", "manager");
    swarm_member(&store, "m2", "m1", "manager");
    swarm_member(&store, "w1", "m1", "worker");
    swarm_member(&store, "lab", "lab", "manager");
    ready_machine(&store, "solo", closed_port(), closed_port(), &[]);

    assert_eq!(
        dmw.ok(&["ls", "-t", "1"]),
        concat!(
            "NAME   ACTIVE   DRIVER    STATE     URL   SWARM           DOCKER    ERRORS\n",
            "lab    -        generic   Stopped         lab (manager)   Unknown   \n",
            "m1     -        generic   Stopped         m1 (manager)    Unknown   \n",
            "m2     -        generic   Stopped         m1 (manager)    Unknown   \n",
            "solo   -        generic   Stopped                         Unknown   \n",
            "w1     -        generic   Stopped         m1              Unknown   \n",
        )
    );
    assert_eq!(
        dmw.ok(&["ls", "-q", "--filter", "swarm=m1"]),
        "m1\nm2\nw1\n"
    );
    assert_eq!(
        dmw.ok(&["ls", "-t", "1", "--format", "table {{.Name}}\t{{.Swarm}}"]),
        concat!(
            "NAME   SWARM\n",
            "lab    lab (manager)\n",
            "m1     m1 (manager)\n",
            "m2     m1 (manager)\n",
            "solo   \n",
            "w1     m1\n",
        )
    );
}

#[test]
fn golden_error_messages_without_hosts() {
    let dmw = Dmw::new();
    let _hang = hostless_store(&dmw);
    let not_exist = "Docker machine \"nope\" does not exist. Use \"dmw ls\" to list machines. Use \"dmw create\" to add a new one.";
    for cmd in ["inspect", "status", "url", "ip", "env", "version"] {
        fails_with(&dmw.run(&[cmd, "nope"]), not_exist);
    }
    // `config` wraps its errors as Docker Machine does.
    fails_with(
        &dmw.run(&["config", "nope"]),
        &format!("Error running connection boilerplate: {not_exist}"),
    );
    let no_name = "Error: No machine name(s) specified and no \"default\" machine exists";
    for cmd in ["inspect", "status", "url", "ip", "config", "env"] {
        fails_with(&dmw.run(&[cmd]), no_name);
    }

    // ip of many machines: each answer or error in the order given, exit 1.
    let r = dmw.run(&["ip", "web1", "nope", "web2"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stdout, "127.0.0.1\n127.0.0.1\n", "{r:?}");
    assert_eq!(r.stderr.trim(), not_exist, "{r:?}");

    for cmd in ["inspect", "status", "url", "version"] {
        fails_with(
            &dmw.run(&[cmd, "web1", "web2"]),
            "Error: Expected one machine name as an argument",
        );
    }

    // ls: Docker Machine's filter errors, then ours for what it did not check.
    fails_with(
        &dmw.run(&["ls", "--filter", "driver"]),
        "Unsupported filter syntax",
    );
    fails_with(
        &dmw.run(&["ls", "--filter", "colour=red"]),
        "Unsupported filter key 'colour'",
    );
    let r = dmw.run(&["ls", "--filter", "name=web[", "-q"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .starts_with("error parsing regexp in filter \"name=web[\": "),
        "{r:?}"
    );
    fails_with(
        &dmw.run(&["ls", "--filter", "label=env"]),
        "label filter \"label=env\" must be label=KEY=VALUE",
    );
    let hint = "Check the --format value: Go template syntax, e.g. '{{.Name}}' (see README, \"Output for scripts\").";
    fails_with(
        &dmw.run(&["ls", "--format", "{{.Name"]),
        &format!("template parsing error: unclosed action (no closing }}}}): {{{{.Name\n{hint}"),
    );
    fails_with(
        &dmw.run(&["ls", "--format", "{{if}}x{{end}}"]),
        &format!("template parsing error: missing value for if\n{hint}"),
    );
    fails_with(
        &dmw.run(&["ls", "--format", "{{nosuch .Name}}"]),
        &format!("template parsing error: function nosuch not defined\n{hint}"),
    );
    fails_with(
        &dmw.run(&["ls", "-t", "1", "--format", "{{.Nmae}}"]),
        &format!(
            "template error: can't evaluate field Nmae (ls fields: .Name .Active .ActiveHost .ActiveSwarm .DriverName .State .URL .SwarmOptions .Swarm .EngineOptions .Error .DockerVersion .ResponseTime)\n{hint}"
        ),
    );
    fails_with(
        &dmw.run(&["ls", "--format", "{{.Name}}", "-o", "json"]),
        "--format TEMPLATE and --output json cannot be combined: pick one",
    );

    // inspect --format: DM's data shape is a map, so an unknown key prints <no value>.
    assert_eq!(
        dmw.ok(&[
            "inspect",
            "-f",
            "{{.Driver.IPAddress}} {{.DriverName}} {{.Nope}}",
            "web1"
        ]),
        "127.0.0.1 generic <no value>\n"
    );
    assert_eq!(
        dmw.ok(&[
            "inspect",
            "--format",
            "{{json .HostOptions.EngineOptions.Labels}}",
            "web1"
        ]),
        "[\"env=prod\",\"tier=web\"]\n"
    );
    assert_eq!(
        dmw.ok(&[
            "inspect",
            "-f",
            "{{.name}} {{.endpoint.address}} {{.engine.labels}}",
            "web1"
        ]),
        "web1 127.0.0.1 [env=prod tier=web]\n"
    );
    let plain = dmw.ok(&["inspect", "web1"]);
    assert_eq!(dmw.ok(&["inspect", "-o", "json", "web1"]), plain);
    assert_eq!(dmw.ok(&["inspect", "-f", "json", "web1"]), plain);
    let doc: serde_json::Value = serde_json::from_str(&plain).expect("inspect is JSON");
    let via_template: serde_json::Value =
        serde_json::from_str(&dmw.ok(&["inspect", "-f", "{{json .}}", "web1"])).expect("json .");
    assert_eq!(doc, via_template);
    assert!(
        plain.starts_with("{\n    \"config_version\": 1,\n    \"name\": \"web1\","),
        "{plain}"
    );
    fails_with(
        &dmw.run(&["inspect", "-f", "{{.Name", "web1"]),
        &format!("template parsing error: unclosed action (no closing }}}}): {{{{.Name\n{hint}"),
    );
    fails_with(
        &dmw.run(&["inspect", "-f", "{{join .Name \",\"}}", "web1"]),
        &format!("template error: join: expected a list, got web1\n{hint}"),
    );
    fails_with(&dmw.run(&["inspect", "-f", "{{.Name}}", "nope"]), not_exist);

    // status / version for scripts.
    let v: serde_json::Value =
        serde_json::from_str(&dmw.ok(&["status", "-o", "json", "web2"])).expect("status json");
    assert_eq!(v, serde_json::json!({"Name": "web2", "State": "Stopped"}));
    assert_eq!(dmw.ok(&["status", "web2"]), "Stopped\n");
    let v: serde_json::Value =
        serde_json::from_str(&dmw.ok(&["version", "-o", "json"])).expect("version json");
    let line = dmw.ok(&["version"]);
    let version = v["Client"]["Version"].as_str().unwrap_or_default();
    assert!(
        !version.is_empty() && line.starts_with(&format!("dmw version {version}, build ")),
        "{v} {line}"
    );
    let r = dmw.run(&["version", "-o", "json", "web2"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .starts_with("machine \"web2\": cannot get the Docker version: "),
        "{r:?}"
    );
    let r = dmw.run(&["status", "-o", "yaml", "web2"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("invalid value 'yaml'"), "{r:?}");
}

#[test]
fn ls_filters_and_formats_against_a_running_machine() {
    if !require_root_or_skip("ls_filters_and_formats_against_a_running_machine") {
        return;
    }
    let bed = docker_hosts(1);
    let host = &bed.hosts()[0];
    let dmw = Dmw::new();
    let mut args = Dmw::create_args(host, "root", "live");
    args.splice(1..1, ["--engine-label".to_string(), "env=e2e".into()]);
    dmw.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let url = dmw.ok(&["url", "live"]).trim().to_string();

    assert_eq!(dmw.ok(&["ls", "-q", "--filter", "state=running"]), "live\n");
    assert_eq!(dmw.ok(&["ls", "-q", "--filter", "state=Stopped"]), "");
    assert_eq!(dmw.ok(&["ls", "-q", "--filter", "label=env=E2E"]), "live\n");
    assert_eq!(dmw.ok(&["ls", "-q", "--filter", "label=env=prod"]), "");

    // ACTIVE and ActiveHost follow $DOCKER_HOST.
    let fmt = "{{.Name}} {{.Active}} {{.ActiveHost}} {{.State}} {{.URL}}";
    let out = dmw
        .command(&["ls", "--format", fmt])
        .env("DOCKER_HOST", &url)
        .output()
        .expect("ls");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("live * true Running {url}\n"),
        "{out:?}"
    );
    assert_eq!(
        dmw.ok(&["ls", "--format", fmt]),
        format!("live - false Running {url}\n")
    );

    // JSON documents agree with the text commands and with the docker CLI.
    let v: serde_json::Value =
        serde_json::from_str(&dmw.ok(&["ls", "-o", "json"])).expect("ls json");
    assert_eq!(v[0]["State"], "Running");
    assert_eq!(v[0]["URL"], url.as_str());
    let engine = dmw.ok(&["version", "live"]).trim().to_string();
    assert_eq!(v[0]["DockerVersion"], format!("v{engine}"));
    let docker = dmw.with_env("live", "docker version --format '{{.Server.Version}}'");
    assert_eq!(docker.stdout.trim(), engine, "{docker:?}");
    let v: serde_json::Value =
        serde_json::from_str(&dmw.ok(&["version", "-o", "json", "live"])).expect("version json");
    assert_eq!(v["Server"]["Version"], engine.as_str());
    assert_eq!(v["Server"]["Machine"], "live");
    let v: serde_json::Value =
        serde_json::from_str(&dmw.ok(&["status", "-o", "json", "live"])).expect("status json");
    assert_eq!(v["State"], "Running");

    // Docker Machine's inspect paths.
    assert_eq!(
        dmw.ok(&["inspect", "-f", "{{.Driver.IPAddress}}:{{.Driver.SSHPort}} {{.DriverName}} {{.HostOptions.EngineOptions.Labels}}", "live"]),
        format!("{}:{} generic [env=e2e]\n", host.addr(), host.ssh_port())
    );
    assert_eq!(dmw.ok(&["ip", "live"]).trim(), host.addr().to_string());
    let ca = dmw.ok(&[
        "inspect",
        "-f",
        "{{.HostOptions.AuthOptions.CaCertPath}}",
        "live",
    ]);
    assert!(std::path::Path::new(ca.trim()).is_file(), "CaCertPath {ca}");
    let key = dmw.ok(&["inspect", "-f", "{{.Driver.SSHKeyPath}}", "live"]);
    assert!(
        std::path::Path::new(key.trim()).is_file(),
        "SSHKeyPath {key}"
    );
    dmw.ok(&["rm", "-y", "live"]);
}
