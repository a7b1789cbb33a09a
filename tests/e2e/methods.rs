//! Every install method that can run here, for real: distro on Debian 11, none with and
//! without an engine, script and repo from local stand-ins of get.docker.com and
//! download.docker.com.

use std::net::IpAddr;

use dmw_testbed::{Options, Testbed, require_root_or_skip};

use crate::http::FileServer;
use crate::support::{Dmw, docker_hosts, docker_run_ok};

fn args_with(host: &dmw_testbed::Host, user: &str, name: &str, extra: &[&str]) -> Vec<String> {
    let mut a = Dmw::create_args(host, user, name);
    let name = a.pop().expect("name");
    let i = a
        .iter()
        .position(|x| x == "--engine-install-method")
        .expect("method flag");
    a.drain(i..i + 2);
    a.extend(extra.iter().map(|s| s.to_string()));
    a.push(name);
    a
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn bullseye_distro_as_sudo_user() {
    if !require_root_or_skip("bullseye_distro_as_sudo_user") {
        return;
    }
    let bed = Testbed::boot(
        1,
        &Options {
            suite: "bullseye".into(),
            ..Options::default()
        },
    )
    .expect("boot bullseye");
    let host = &bed.hosts()[0];
    let dmw = Dmw::new();
    let out = dmw.ok(&strs(&args_with(
        host,
        "dmw",
        "b11",
        &["--engine-install-method", "distro"],
    )));
    assert!(out.contains("Provisioning with debian..."), "{out}");
    docker_run_ok(&dmw, "b11");
    let os = dmw.ok(&["inspect", "b11"]);
    assert!(os.contains("Debian GNU/Linux 11 (bullseye)"), "{os}");
}

#[test]
fn none_method_uses_or_requires_an_existing_engine() {
    if !require_root_or_skip("none_method_uses_or_requires_an_existing_engine") {
        return;
    }
    let with = docker_hosts(1);
    let without = Testbed::boot(1, &Options::default()).expect("boot bare host");
    let dmw = Dmw::new();
    dmw.ok(&strs(&args_with(
        &with.hosts()[0],
        "root",
        "has-engine",
        &["--engine-install-method", "none"],
    )));
    docker_run_ok(&dmw, "has-engine");
    let r = dmw.run(&strs(&args_with(
        &without.hosts()[0],
        "root",
        "no-engine",
        &["--engine-install-method", "none"],
    )));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("\"no-engine\": install engine failed")
            && r.stderr.contains("not installed"),
        "{r:?}"
    );
    let log = without.hosts()[0]
        .ssh_ok("root", "command -v dockerd || echo absent")
        .expect("ssh");
    assert_eq!(
        log.trim(),
        "absent",
        "method none must not install anything"
    );
}

#[test]
fn script_method_from_a_local_server() {
    if !require_root_or_skip("script_method_from_a_local_server") {
        return;
    }
    let bed = Testbed::boot(1, &Options::default()).expect("boot host");
    let host = &bed.hosts()[0];
    let site = tempfile::tempdir().expect("tempdir");
    // A stand-in for get.docker.com: installs the engine from the OS's packages.
    std::fs::write(
        site.path().join("install.sh"),
        "#!/bin/sh\nset -e\napt-get update -q\nDEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io\ntouch /var/tmp/dmw-install-script-ran\n",
    )
    .expect("write script");
    let server = FileServer::start(site.path(), IpAddr::V4(host.gateway()));
    let url = format!("{}/install.sh", server.url);
    let dmw = Dmw::new();
    dmw.ok(&strs(&args_with(
        host,
        "dmw",
        "scripted",
        &[
            "--engine-install-method",
            "script",
            "--engine-install-url",
            &url,
        ],
    )));
    assert_eq!(
        server.requests(),
        vec!["/install.sh"],
        "the script was fetched once"
    );
    assert!(
        host.ssh("root", "test -e /var/tmp/dmw-install-script-ran")
            .expect("ssh")
            .success(),
        "the script ran"
    );
    docker_run_ok(&dmw, "scripted");
}

#[test]
fn repo_method_from_a_local_signed_repository() {
    if !require_root_or_skip("repo_method_from_a_local_signed_repository") {
        return;
    }
    let bed = Testbed::boot(1, &Options::default()).expect("boot host");
    let host = &bed.hosts()[0];
    let site = tempfile::tempdir().expect("tempdir");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/e2e/fixtures/make-docker-repo.sh"
    );
    let key = tempfile::tempdir().expect("tempdir");
    let publish = |version: &str| {
        let st = std::process::Command::new("bash")
            .arg(script)
            .arg(site.path())
            .arg("bookworm")
            .arg(version)
            .arg(key.path())
            .status()
            .expect("make repo");
        assert!(
            st.success(),
            "building the stand-in repository failed (needs dpkg-deb, apt-ftparchive, gpg)"
        );
    };
    publish("5:99.0.0-1~dmw.test");
    let server = FileServer::start(site.path(), IpAddr::V4(host.gateway()));
    let dmw = Dmw::new();
    dmw.ok(&strs(&args_with(
        host,
        "root",
        "from-repo",
        &[
            "--engine-install-method",
            "repo",
            "--engine-repo-url",
            &server.url,
        ],
    )));
    let reqs = server.requests();
    assert!(
        reqs.iter().any(|r| r == "/debian/gpg"),
        "the signing key was fetched: {reqs:?}"
    );
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("/debian/dists/bookworm/")),
        "apt read the repository: {reqs:?}"
    );
    let pkgs = host
        .ssh_ok(
            "root",
            "dpkg-query -W -f='${Package} ${Version}\\n' docker-ce docker-ce-cli containerd.io",
        )
        .expect("dpkg-query");
    assert!(pkgs.contains("docker-ce 5:99.0.0-1~dmw.test"), "{pkgs}");
    docker_run_ok(&dmw, "from-repo");

    // Docker publishes a newer engine: `upgrade` installs it from the repository, restarts
    // the engine and waits for it.
    publish("5:99.0.1-1~dmw.test");
    let out = dmw.ok(&["upgrade", "from-repo"]);
    assert!(out.contains("Upgrading docker..."), "{out}");
    assert!(out.contains("Machine \"from-repo\" was upgraded"), "{out}");
    let pkgs = host
        .ssh_ok("root", "dpkg-query -W -f='${Version}' docker-ce")
        .expect("dpkg-query");
    assert_eq!(
        pkgs, "5:99.0.1-1~dmw.test",
        "the newer docker-ce is installed"
    );
    docker_run_ok(&dmw, "from-repo");
}
