//! `dmw import` of a Docker Machine store, and the `none` driver, against a real engine:
//! the test makes the store the way Docker Machine would have (its own CA, client and server
//! certificates, dockerd with --tlsverify on 2376, config.json per machine), imports it,
//! and the docker CLI reaches the engine with the imported machines' certificates.

use std::path::Path;
use std::process::Command;

use dmw_testbed::{Host, require_root_or_skip};

use crate::support::{Dmw, docker_hosts, ls_row, shell_quote};

/// Run a shell script locally (openssl), requiring success.
fn sh(script: &str) {
    let out = Command::new("bash")
        .arg("-ec")
        .arg(script)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{script}\nfailed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Docker Machine's certificates: CA, client certificate (certs/), and a server certificate
/// for `ip` (machines/NAME/), RSA 2048 with PKCS#1 keys, O= only, as its cert package makes.
fn make_certs(store: &Path, machine: &str, ip: &str) {
    let certs = store.join("certs");
    let m = store.join("machines").join(machine);
    std::fs::create_dir_all(&certs).expect("certs dir");
    std::fs::create_dir_all(&m).expect("machine dir");
    let q = |p: &Path| shell_quote(&p.display().to_string());
    sh(&format!(
        r#"cd {certs}
openssl genrsa -traditional -out ca-key.pem 2048 2>/dev/null
openssl req -x509 -new -key ca-key.pem -days 1080 -subj /O=dmuser -out ca.pem \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,digitalSignature,keyEncipherment,keyAgreement
openssl genrsa -traditional -out key.pem 2048 2>/dev/null
openssl req -new -key key.pem -subj /O=dmuser.bootstrap -out client.csr
printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 1080 -extfile client.ext -out cert.pem 2>/dev/null
cd {m}
openssl genrsa -traditional -out server-key.pem 2048 2>/dev/null
openssl req -new -key server-key.pem -subj /O=dmuser.{machine} -out server.csr
printf 'extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment,keyAgreement\nsubjectAltName=IP:{ip},DNS:localhost\n' > server.ext
openssl x509 -req -in server.csr -CA {certs}/ca.pem -CAkey {certs}/ca-key.pem -CAcreateserial -days 1080 -extfile server.ext -out server.pem 2>/dev/null
cp {certs}/ca.pem {certs}/cert.pem {certs}/key.pem .
rm -f server.csr server.ext {certs}/client.csr {certs}/client.ext
chmod 600 {certs}/ca-key.pem {certs}/key.pem key.pem server-key.pem"#,
        certs = q(&certs),
        m = q(&m),
    ));
}

/// What Docker Machine's provisioner leaves on the host: the CA and server certificate in
/// /etc/docker and dockerd listening with --tlsverify on 2376 (a systemd drop-in).
fn install_engine_tls(host: &Host, m: &Path) {
    for (file, remote) in [
        ("ca.pem", "/etc/docker/ca.pem"),
        ("server.pem", "/etc/docker/server.pem"),
        ("server-key.pem", "/etc/docker/server-key.pem"),
    ] {
        host.push(&m.join(file), remote).expect("push cert");
    }
    host.ssh_ok(
        "root",
        r#"set -e
mkdir -p /etc/systemd/system/docker.service.d
dockerd=$(command -v dockerd)
cat > /etc/systemd/system/docker.service.d/10-machine.conf <<UNIT
[Service]
ExecStart=
ExecStart=$dockerd -H tcp://0.0.0.0:2376 -H fd:// --tlsverify --tlscacert /etc/docker/ca.pem --tlscert /etc/docker/server.pem --tlskey /etc/docker/server-key.pem --label provider=generic
UNIT
systemctl daemon-reload
systemctl restart docker
for i in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker info >/dev/null || { journalctl -u docker --no-pager | tail -20 >&2; exit 1; }"#,
    )
    .expect("configure dockerd with TLS");
}

/// A config.json as Docker Machine 0.16 writes it (ConfigVersion 3).
fn config_json(store: &Path, name: &str, driver_name: &str, driver: serde_json::Value) -> String {
    let s = store.display().to_string();
    let m = format!("{s}/machines/{name}");
    let doc = serde_json::json!({
        "ConfigVersion": 3,
        "Driver": driver,
        "DriverName": driver_name,
        "HostOptions": {
            "Driver": "", "Memory": 0, "Disk": 0,
            "EngineOptions": {
                "ArbitraryFlags": [], "Dns": null, "GraphDir": "", "Env": [], "Ipv6": false,
                "InsecureRegistry": [], "Labels": [], "LogLevel": "", "StorageDriver": "",
                "SelinuxEnabled": false, "TlsVerify": true, "RegistryMirror": [],
                "InstallURL": "https://get.docker.com"
            },
            "SwarmOptions": {
                "IsSwarm": false, "Address": "", "Discovery": "", "Agent": false, "Master": false,
                "Host": "tcp://0.0.0.0:3376", "Image": "swarm:latest", "Strategy": "spread",
                "Heartbeat": 0, "Overcommit": 0, "ArbitraryFlags": [], "ArbitraryJoinFlags": [],
                "Env": null, "IsExperimental": false
            },
            "AuthOptions": {
                "CertDir": format!("{s}/certs"), "CaCertPath": format!("{s}/certs/ca.pem"),
                "CaPrivateKeyPath": format!("{s}/certs/ca-key.pem"), "CaCertRemotePath": "",
                "ServerCertPath": format!("{m}/server.pem"), "ServerKeyPath": format!("{m}/server-key.pem"),
                "ClientKeyPath": format!("{s}/certs/key.pem"), "ServerCertRemotePath": "",
                "ServerKeyRemotePath": "", "ClientCertPath": format!("{s}/certs/cert.pem"),
                "ServerCertSANs": [], "StorePath": m
            }
        },
        "Name": name
    });
    serde_json::to_string_pretty(&doc).expect("json")
}

fn write_machine(store: &Path, name: &str, json: &str) {
    let dir = store.join("machines").join(name);
    std::fs::create_dir_all(&dir).expect("machine dir");
    std::fs::write(dir.join("config.json"), json).expect("config.json");
}

#[test]
fn import_docker_machine_store_and_none_driver() {
    if !require_root_or_skip("import_docker_machine_store_and_none_driver") {
        return;
    }
    let bed = docker_hosts(1);
    let host = &bed.hosts()[0];
    let ip = host.addr().to_string();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("docker machine");
    let s = store.display().to_string();

    // generic machine dm1: Docker Machine's certs, its SSH key, its engine configuration.
    make_certs(&store, "dm1", &ip);
    let m1 = store.join("machines/dm1");
    // Docker Machine's own key format: RSA 2048, PEM (PKCS#1), authorized on the host.
    sh(&format!(
        "ssh-keygen -q -t rsa -b 2048 -m PEM -N '' -f {}",
        shell_quote(&m1.join("id_rsa").display().to_string())
    ));
    let public = std::fs::read_to_string(m1.join("id_rsa.pub")).expect("public key");
    host.ssh_ok(
        "root",
        &format!(
            "echo {} >> /root/.ssh/authorized_keys",
            shell_quote(public.trim())
        ),
    )
    .expect("authorize key");
    install_engine_tls(host, &m1);
    let generic = serde_json::json!({
        "IPAddress": ip, "MachineName": "dm1", "SSHUser": "root", "SSHPort": host.ssh_port(),
        "SSHKeyPath": format!("{s}/machines/dm1/id_rsa"), "StorePath": s,
        "SwarmMaster": false, "SwarmHost": "", "SwarmDiscovery": "",
        "EnginePort": 2376, "SSHKey": ""
    });
    write_machine(
        &store,
        "dm1",
        &config_json(&store, "dm1", "generic", generic),
    );
    // none machine dmnone: the same engine by URL; Docker Machine gave it no machine certs.
    let url = format!("tcp://{ip}:2376");
    let none = serde_json::json!({"IPAddress": "", "MachineName": "dmnone", "SSHUser": "",
        "SSHPort": 0, "SSHKeyPath": "", "StorePath": s, "SwarmMaster": false, "SwarmHost": "",
        "SwarmDiscovery": "", "URL": url});
    write_machine(
        &store,
        "dmnone",
        &config_json(&store, "dmnone", "none", none),
    );
    // none machine dmsock: a URL dmw cannot dial (Docker Machine recorded any text).
    let sock = serde_json::json!({"IPAddress": "", "MachineName": "dmsock", "SSHUser": "",
        "SSHPort": 0, "SSHKeyPath": "", "StorePath": s, "SwarmMaster": false, "SwarmHost": "",
        "SwarmDiscovery": "", "URL": "unix:///var/run/docker.sock"});
    write_machine(
        &store,
        "dmsock",
        &config_json(&store, "dmsock", "none", sock),
    );
    // virtualbox machine vb: not importable.
    let vb = serde_json::json!({"IPAddress": "192.168.99.100", "MachineName": "vb",
        "SSHUser": "docker", "SSHPort": 22, "CPU": 1, "Memory": 1024});
    write_machine(&store, "vb", &config_json(&store, "vb", "virtualbox", vb));

    let dmw = Dmw::new();
    // --dry-run says what would happen and writes nothing.
    let dry = dmw.ok(&["import", "--dry-run", &s]);
    assert!(
        dry.contains("dm1 (generic,") && dry.contains("would be imported"),
        "{dry}"
    );
    assert!(dry.contains("dmnone (none,"), "{dry}");
    assert!(
        dry.contains("vb (virtualbox): skipped: driver \"virtualbox\" is not built into dmw"),
        "{dry}"
    );
    assert_eq!(dmw.ok(&["ls", "-q"]), "", "dry run wrote machines");

    // MACHINE_STORAGE_PATH is the default source.
    let out = dmw
        .command(&["import"])
        .env("MACHINE_STORAGE_PATH", &store)
        .output()
        .expect("dmw import");
    let run: crate::support::Run = out.into();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("dm1 (generic, root@"), "{run:?}");
    assert!(run.stdout.contains(": imported"), "{run:?}");
    assert!(run.stdout.contains("dmnone (none, tcp://"), "{run:?}");
    assert!(run.stdout.contains("vb (virtualbox): skipped"), "{run:?}");
    assert!(
        run.stdout
            .contains("dmsock (none, unix:///var/run/docker.sock): imported"),
        "{run:?}"
    );
    assert_eq!(dmw.ok(&["ls", "-q"]), "dm1\ndmnone\ndmsock\n");
    // Its URL is kept as it was and it is Running, as Docker Machine's none driver said.
    assert_eq!(dmw.ok(&["url", "dmsock"]), "unix:///var/run/docker.sock\n");
    assert_eq!(dmw.ok(&["status", "dmsock"]).trim(), "Running");
    assert!(!dmw.machine_dir("vb").exists());
    // The SSH key and Docker Machine's TLS material were copied; its CA key was not.
    for f in [
        "id_ssh",
        "ca.pem",
        "cert.pem",
        "key.pem",
        "server.pem",
        "server-key.pem",
    ] {
        assert!(dmw.machine_dir("dm1").join(f).is_file(), "dm1 lacks {f}");
    }
    assert!(!dmw.machine_dir("dm1").join("ca-key.pem").exists());
    assert_eq!(
        std::fs::read(dmw.machine_dir("dm1").join("ca.pem")).expect("ca"),
        std::fs::read(store.join("certs/ca.pem")).expect("dm ca"),
        "the imported machine keeps Docker Machine's CA"
    );

    // ls: both running with the engine's version (TLS with Docker Machine's client cert).
    let ls = dmw.ok(&["ls"]);
    for name in ["dm1", "dmnone"] {
        let row = ls_row(&ls, name).unwrap_or_else(|| panic!("{name} not in {ls}"));
        assert_eq!(row[3], "Running", "{ls}");
        assert_eq!(row[4], url, "{ls}");
        assert!(row[5].starts_with('v'), "{ls}");
    }
    assert_eq!(ls_row(&ls, "dmnone").expect("row")[2], "none", "{ls}");

    // The docker CLI reaches the engine through both machines' environments.
    for name in ["dm1", "dmnone"] {
        let r = dmw.with_env(
            name,
            "docker version --format '{{.Server.Version}}' && docker ps --format '{{.ID}}' && echo DONE",
        );
        assert_eq!(r.code, 0, "docker through {name}: {r:?}");
        assert!(r.stdout.trim_end().ends_with("DONE"), "{r:?}");
    }
    // A none machine's ip is its URL's host:port, as Docker Machine printed it.
    assert_eq!(
        dmw.ok(&["ip", "dm1", "dmnone"]),
        format!("{ip}\n{ip}:2376\n")
    );
    assert_eq!(dmw.ok(&["url", "dmnone"]).trim(), url);
    assert_eq!(dmw.ok(&["status", "dmnone"]).trim(), "Running");

    // SSH: the host key is pinned on first connection, then required.
    let known_hosts = dmw.machine_dir("dm1").join("known_hosts");
    assert!(!known_hosts.exists());
    assert_eq!(dmw.ok(&["ssh", "dm1", "echo", "hi"]).trim(), "hi");
    assert!(known_hosts.is_file(), "host key not pinned");
    assert_eq!(dmw.ok(&["ssh", "dm1", "echo", "again"]).trim(), "again");
    let r = dmw.run(&["ssh", "dmnone", "true"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("machine \"dmnone\" uses the none driver: it has no SSH access"),
        "{r:?}"
    );
    let r = dmw.run(&["provision", "dmnone"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no SSH access"), "{r:?}");

    // Importing again: existing names are skipped, nothing changes.
    let again = dmw.ok(&["import", &s]);
    assert!(
        again.contains("dm1 (generic): skipped: a dmw machine named \"dm1\" already exists"),
        "{again}"
    );

    // Import made no dmw CA. `provision` makes one and moves the imported machine to it:
    // the engine gets a server certificate from dmw's CA, the machine directory dmw's
    // client certificate.
    assert!(
        !dmw.storage.join("certs/ca.pem").exists(),
        "import made a CA"
    );
    let out = dmw.ok(&["provision", "dm1"]);
    assert!(out.contains("Machine \"dm1\" was provisioned."), "{out}");
    assert_eq!(
        std::fs::read(dmw.machine_dir("dm1").join("ca.pem")).expect("ca"),
        std::fs::read(dmw.storage.join("certs/ca.pem")).expect("dmw ca"),
        "after provision the machine uses dmw's CA"
    );
    // dmw's drop-in now configures the engine: Docker Machine's, which would win, is gone,
    // and the engine carries dmw's provider label.
    let dropins = host
        .ssh_ok("root", "ls /etc/systemd/system/docker.service.d/")
        .expect("ssh");
    assert_eq!(dropins.trim(), "10-dmw.conf", "drop-ins after provision");
    let labels = dmw.with_env("dm1", "docker info --format '{{json .Labels}}'");
    assert!(labels.stdout.contains("provider=generic"), "{labels:?}");
    // A none machine created directly records the URL and uses the store's certificates,
    // which this engine now trusts.
    let out = dmw.ok(&["create", "--driver", "none", "--url", &url, "n2"]);
    assert!(!out.contains("SSH"), "{out}");
    for name in ["dm1", "n2"] {
        let r = dmw.with_env(name, "docker ps --format '{{.ID}}' && echo DONE");
        assert_eq!(r.code, 0, "docker through {name} after provision: {r:?}");
    }
    // env --no-proxy adds the none machine's ip, which is the URL's host:port as in Docker
    // Machine, to what NO_PROXY held.
    let out = dmw
        .command(&["env", "--no-proxy", "n2"])
        .env("SHELL", "/bin/bash")
        .env_remove("no_proxy")
        .env("NO_PROXY", "localhost")
        .output()
        .expect("dmw env");
    let env: crate::support::Run = out.into();
    assert_eq!(env.code, 0, "{env:?}");
    assert!(
        env.stdout
            .contains(&format!("export NO_PROXY=\"localhost,{ip}:2376\"\n")),
        "{env:?}"
    );
    assert_eq!(dmw.ok(&["ip", "n2"]), format!("{ip}:2376\n"));
    let ls = dmw.ok(&["ls"]);
    let row = ls_row(&ls, "n2").unwrap_or_else(|| panic!("{ls}"));
    assert_eq!(
        (row[2].as_str(), row[3].as_str()),
        ("none", "Running"),
        "{ls}"
    );
    assert!(row[5].starts_with('v'), "{ls}");

    // In a store whose CA the engine does not trust, the URL still answers TCP: Running,
    // DOCKER Unknown, the TLS failure in ERRORS, and env refuses.
    let other = Dmw::new();
    other.ok(&["create", "--driver", "none", "--url", &url, "n3"]);
    let ls = other.ok(&["ls"]);
    let row = ls_row(&ls, "n3").unwrap_or_else(|| panic!("{ls}"));
    assert_eq!(row[3], "Running", "{ls}");
    assert_eq!(row[5], "Unknown", "{ls}");
    assert!(row[6].contains("Unable to query docker version"), "{ls}");
    let r = other.run(&["env", "n3"]);
    assert_ne!(
        r.code, 0,
        "env must refuse an engine that rejects the store's certificates"
    );
    assert!(r.stderr.contains("Error checking TLS connection"), "{r:?}");

    // rm only forgets the records; the engine keeps running.
    dmw.ok(&["rm", "-y", "dmnone", "dmsock", "n2", "dm1"]);
    assert_eq!(dmw.ok(&["ls", "-q"]), "");
    host.ssh_ok("root", "docker info >/dev/null")
        .expect("engine still up");
}
