//! Native tests: the recipe against the sdk's scripted host.

use super::*;
use dmw_guest::mock;

dmw_guest::recipe_test_fixtures!();

fn os(id: &str, version: &str, like: &[&str]) -> OsInfo {
    OsInfo {
        version_id: version.into(),
        pretty_name: format!("{id} {version}"),
        fields: vec![("ID".into(), id.into())],
        ..os_info(id, like)
    }
}

fn config(os: OsInfo, method: InstallMethod) -> EngineConfig {
    engine_config(os, method)
}

/// A machine with dnf (or yum), dockerd appearing at `dockerd` once a package is installed.
fn host(dnf: bool, dockerd: &'static str, installed: bool) {
    let mut installed = installed;
    let mut restarted = false;
    mock::on_exec(move |cmd, root| {
        assert!(root, "every recipe command runs as root: {cmd}");
        assert!(!cmd.contains("| sh"), "never pipe into sh: {cmd}");
        assert!(!cmd.contains(" update"), "never a full update: {cmd}");
        let ok = |s: &str| Ok((0, s.to_string(), String::new()));
        if cmd.contains("command -v dockerd") {
            return ok(if installed { dockerd } else { "\n" });
        }
        if cmd == "command -v dnf >/dev/null 2>&1" {
            return Ok((if dnf { 0 } else { 1 }, String::new(), String::new()));
        }
        if cmd.contains(" install -y") {
            installed = true;
        }
        if cmd.contains("daemon.json") || cmd.contains("systemctl cat docker.socket") {
            return Ok((1, String::new(), String::new()));
        }
        if cmd.contains("getenforce") {
            return ok("Enforcing\n");
        }
        if cmd.contains("systemctl restart docker.service") {
            restarted = true;
        }
        if cmd.contains("ss -tln") {
            return ok(if restarted {
                "LISTEN 0 4096 *:2376 *:*\n"
            } else {
                "dmw-unit-state inactive\n"
            });
        }
        ok("")
    });
}

#[test]
fn applies_scores() {
    assert_eq!(
        Rhel::applies(os("rocky", "9.4", &["rhel", "centos", "fedora"])),
        100
    );
    assert_eq!(Rhel::applies(os("centos", "7", &["rhel", "fedora"])), 100);
    assert_eq!(Rhel::applies(os("centos", "6.10", &["rhel", "fedora"])), 0);
    assert_eq!(Rhel::applies(os("fedora", "40", &[])), 100);
    assert_eq!(
        Rhel::applies(os("amzn", "2", &["centos", "rhel", "fedora"])),
        100
    );
    assert_eq!(Rhel::applies(os("amzn", "2023", &["fedora"])), 100);
    assert_eq!(Rhel::applies(os("amzn", "2018.03", &["rhel", "fedora"])), 0);
    assert_eq!(
        Rhel::applies(os("eurolinux", "9", &["rhel", "fedora", "centos"])),
        50
    );
    assert_eq!(Rhel::applies(os("nobara", "40", &["fedora"])), 50);
    assert_eq!(Rhel::applies(os("debian", "12", &[])), 0);
    let mut fcos = os("fedora", "40", &[]);
    fcos.fields.push(("VARIANT_ID".into(), "coreos".into()));
    assert_eq!(Rhel::applies(fcos), 0);
}

#[test]
fn repo_locations() {
    let t = |id: &str, v: &str, like: &[&str]| target(&os(id, v, like)).expect("target");
    let loc = |tg: &Target, url: &str| pkg::repo_location(tg, url).ok();
    let base = "https://download.docker.com/linux";
    assert_eq!(
        loc(&t("rocky", "9.4", &["rhel"]), ""),
        Some((format!("{base}/centos"), 9))
    );
    assert_eq!(
        loc(&t("rhel", "9.4", &["fedora"]), ""),
        Some((format!("{base}/rhel"), 9))
    );
    assert_eq!(
        loc(&t("rhel", "7.9", &["fedora"]), ""),
        Some((format!("{base}/centos"), 7))
    );
    assert_eq!(
        loc(&t("fedora", "40", &[]), "http://mirror.local/linux/"),
        Some(("http://mirror.local/linux/fedora".into(), 40))
    );
    assert!(matches!(
        pkg::repo_location(&t("amzn", "2", &[]), ""),
        Err(Error::Unsupported(_))
    ));
    assert!(pkg::repo_location(&t("rocky", "9", &[]), "ftp://x").is_err());
    assert!(target(&os("rocky", "", &[])).is_err());
    let file = pkg::repo_file("https://download.docker.com/linux/centos", 9);
    assert!(file.contains("baseurl=https://download.docker.com/linux/centos/9/$basearch/stable\n"));
    assert!(file.contains("gpgkey=file:///etc/pki/rpm-gpg/docker-ce.gpg\n"));
}

#[test]
fn distro_method_per_os() {
    mock::reset();
    host(false, "/usr/bin/dockerd-current\n", false);
    Rhel::install_engine(config(os("centos", "7", &["rhel"]), InstallMethod::Distro))
        .expect("centos 7");
    assert!(cmds().contains(&"yum install -y docker".to_string()));

    mock::reset();
    host(true, "/usr/bin/dockerd\n", false);
    Rhel::install_engine(config(os("fedora", "40", &[]), InstallMethod::Distro)).expect("fedora");
    assert!(cmds().contains(&"dnf install -y moby-engine".to_string()));

    mock::reset();
    host(true, "/usr/bin/dockerd\n", false);
    let err = Rhel::install_engine(config(
        os("almalinux", "9.4", &["rhel"]),
        InstallMethod::Distro,
    ))
    .expect_err("EL9 has no docker");
    assert!(matches!(&err, Error::Unsupported(m) if m.contains("--engine-install-method repo")));
    assert!(!cmds().iter().any(|c| c.contains("install -y")));
}

#[test]
fn repo_method_imports_the_key_and_writes_the_repo() {
    mock::reset();
    host(true, "/usr/bin/dockerd\n", false);
    let mut cfg = config(os("rocky", "9.4", &["rhel"]), InstallMethod::Repo);
    cfg.repo_url = "http://mirror.local/linux".into();
    Rhel::install_engine(cfg).expect("repo");
    let c = cmds();
    assert!(c.iter().any(|c| c.contains(
        "curl -fsSL http://mirror.local/linux/centos/gpg -o /etc/pki/rpm-gpg/docker-ce.gpg.new"
    )));
    assert!(c.contains(&"dnf install -y docker-ce docker-ce-cli containerd.io".to_string()));
    let ups = mock::uploads();
    assert_eq!(ups[0].path, "/etc/yum.repos.d/docker-ce.repo");
    assert!(
        ups[0]
            .contents
            .contains("baseurl=http://mirror.local/linux/centos/9/$basearch/stable")
    );
}

#[test]
fn repo_method_explains_conflicts() {
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.contains("command -v dockerd") {
            (0, "\n".into(), String::new())
        } else if cmd.contains("install -y docker-ce") {
            (
                1,
                String::new(),
                "Error:\n Problem: problem with installed package podman-4.9\n  - package containerd.io conflicts with runc".into(),
            )
        } else {
            (0, String::new(), String::new())
        })
    });
    let err = Rhel::install_engine(config(os("rhel", "9.4", &["fedora"]), InstallMethod::Repo))
        .expect_err("conflict");
    assert!(
        err.message().contains("remove -y podman runc buildah"),
        "{}",
        err.message()
    );
}

#[test]
fn configure_centos7_docker_keeps_its_runtime_flags_and_relabels() {
    mock::reset();
    host(false, "/usr/bin/dockerd-current\n", true);
    Rhel::configure_engine(config(os("centos", "7", &["rhel"]), InstallMethod::Distro))
        .expect("configure");
    let ups = mock::uploads();
    assert_eq!(ups[0].path, engine::DROPIN_PATH);
    let text = &ups[0].contents;
    assert!(text.contains("ExecStart=/usr/bin/dockerd-current -H tcp://0.0.0.0:2376 -H unix:///var/run/docker.sock --tlsverify"), "{text}");
    assert!(text.contains("--add-runtime=docker-runc=/usr/libexec/docker/docker-runc-current"));
    assert!(
        text.contains(" $OPTIONS $DOCKER_STORAGE_OPTIONS $DOCKER_NETWORK_OPTIONS $ADD_REGISTRY")
    );
    assert!(text.contains("ExecStart=\n"));
    let c = cmds();
    let pos = |n: &str| c.iter().position(|x| x.contains(n)).unwrap_or(usize::MAX);
    assert!(pos("restorecon -R /etc/docker") < pos("systemctl daemon-reload && systemctl enable"));
    assert!(pos("systemctl restart docker.service") < pos("ss -tln"));
    Rhel::restart_engine().expect("restart");
}

#[test]
fn dropin_variables() {
    assert_eq!(
        unit_variables(false).join(" "),
        "$OPTIONS $DOCKER_STORAGE_OPTIONS $DOCKER_NETWORK_OPTIONS"
    );
    assert_eq!(
        unit_variables(true).join(" "),
        "$OPTIONS $DOCKER_STORAGE_OPTIONS $DOCKER_NETWORK_OPTIONS $ADD_REGISTRY $BLOCK_REGISTRY \
         $INSECURE_REGISTRY $REGISTRIES"
    );
    let tls = dmw_guest::InstalledCerts {
        ca_path: "/etc/docker/ca.pem".into(),
        cert_path: "/etc/docker/server.pem".into(),
        key_path: "/etc/docker/server-key.pem".into(),
        fresh: true,
    };
    let dropin = engine::systemd_dropin(&DaemonConfig {
        dockerd: "/usr/bin/dockerd",
        port: 2376,
        unix_socket: engine::UnixSocket::Activated,
        tls: &tls,
        storage_driver: "",
        labels: &[],
        insecure_registries: &[],
        registry_mirrors: &[],
        extra_flags: &[],
        raw_args: &unit_variables(false),
        env: &["A=b".to_string()],
    })
    .expect("valid");
    assert!(dropin.ends_with(
        "--tlskey /etc/docker/server-key.pem $OPTIONS $DOCKER_STORAGE_OPTIONS \
         $DOCKER_NETWORK_OPTIONS\nEnvironment=\"A=b\"\n"
    ));
}

#[test]
fn auto_is_docker_repo_except_on_amazon_linux() {
    let t = |id: &str, v: &str| target(&os(id, v, &[])).expect("target");
    assert_eq!(auto_method(&t("rocky", "9.4")), InstallMethod::Repo);
    assert_eq!(auto_method(&t("centos", "7")), InstallMethod::Repo);
    assert_eq!(auto_method(&t("fedora", "40")), InstallMethod::Repo);
    assert_eq!(auto_method(&t("amzn", "2023")), InstallMethod::Distro);

    mock::reset();
    host(true, "/usr/bin/dockerd\n", false);
    Rhel::install_engine(config(os("amzn", "2023", &["fedora"]), InstallMethod::Auto))
        .expect("amazon");
    assert!(cmds().contains(&"dnf install -y docker".to_string()));
    assert!(!cmds().iter().any(|c| c.contains("docker-ce")));

    mock::reset();
    host(true, "/usr/bin/dockerd\n", false);
    Rhel::install_engine(config(
        os("almalinux", "9.4", &["rhel"]),
        InstallMethod::Auto,
    ))
    .expect("el9");
    assert!(cmds().contains(&"dnf install -y docker-ce docker-ce-cli containerd.io".to_string()));

    // An engine already there is kept, whatever the OS.
    mock::reset();
    host(true, "/usr/bin/dockerd\n", true);
    Rhel::install_engine(config(os("rocky", "9", &[]), InstallMethod::Auto)).expect("kept");
    assert!(!cmds().iter().any(|c| c.contains("install -y")));
}

#[test]
fn upgrade_touches_only_installed_engine_packages() {
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.starts_with("rpm -q") {
            (
                4,
                "docker-ce\ndocker-ce-cli\ncontainerd.io\npackage moby-engine is not installed\n"
                    .into(),
                String::new(),
            )
        } else if cmd.contains("ss -tln") {
            (0, "LISTEN 0 4096 *:2376 *:*\n".into(), String::new())
        } else {
            (0, String::new(), String::new())
        })
    });
    Rhel::upgrade_engine(config(os("rocky", "9", &[]), InstallMethod::Repo)).expect("upgrade");
    assert!(cmds().contains(&"dnf upgrade -y docker-ce docker-ce-cli containerd.io".to_string()));
    assert!(matches!(
        Rhel::upgrade_engine(config(os("rocky", "9", &[]), InstallMethod::None)),
        Err(Error::Unsupported(_))
    ));
}

#[test]
fn none_requires_an_engine_and_script_never_pipes() {
    mock::reset();
    host(true, "/usr/bin/dockerd\n", false);
    let err =
        Rhel::install_engine(config(os("rocky", "9", &[]), InstallMethod::None)).expect_err("none");
    assert!(err.message().contains("not installed"));
    mock::reset();
    host(true, "/usr/bin/dockerd\n", false);
    let err = Rhel::install_engine(config(os("rocky", "9", &[]), InstallMethod::Script))
        .expect_err("the mock script installs nothing");
    assert!(err.message().contains("still not found"));
    assert!(
        cmds()
            .iter()
            .any(|c| c.contains("curl -fsSL https://get.docker.com -o \"$f\" && sh \"$f\""))
    );
}
