//! The recipe against the sdk's scripted host.

use super::*;
use dmw_guest::mock;

dmw_guest::recipe_test_fixtures!();

fn config(id: &str, method: InstallMethod) -> EngineConfig {
    engine_config(os_info(id, &["suse", "opensuse"]), method)
}

/// An openSUSE machine: dockerd at /usr/bin once installed, `fs` under /var/lib, SUSE's unit
/// (no socket activation).
fn suse_host(installed: bool, fs: &'static str) {
    let mut installed = installed;
    let mut restarted = false;
    mock::on_exec(move |cmd, root| {
        assert!(root, "every recipe command runs as root: {cmd}");
        let ok = |s: &str| Ok((0, s.to_string(), String::new()));
        if cmd.contains("command -v dockerd") {
            return ok(if installed {
                "/usr/bin/dockerd\n"
            } else {
                "\n"
            });
        }
        if cmd.contains("zypper --non-interactive install docker") {
            installed = true;
        }
        if cmd.contains("daemon.json") || cmd.contains("systemctl cat docker.socket") {
            return Ok((1, String::new(), String::new()));
        }
        if cmd.contains("stat -f -c %T") {
            return ok(&format!("{fs}\n"));
        }
        if cmd.contains("systemctl restart docker.service") {
            restarted = true;
        }
        if cmd.contains("ss -tln") {
            return ok(if restarted {
                "LISTEN 0 4096 *:2376 *:*\ndmw-unit-state active\n"
            } else {
                "dmw-unit-state inactive\n"
            });
        }
        if cmd.starts_with("rpm -q") {
            return Ok((
                3,
                "docker\npackage docker-ce is not installed\n".into(),
                String::new(),
            ));
        }
        ok("")
    });
}

#[test]
fn applies_scores() {
    assert_eq!(
        Suse::applies(os_info("opensuse-leap", &["suse", "opensuse"])),
        100
    );
    assert_eq!(
        Suse::applies(os_info("opensuse-tumbleweed", &["opensuse", "suse"])),
        100
    );
    assert_eq!(Suse::applies(os_info("sles", &["suse"])), 100);
    assert_eq!(Suse::applies(os_info("sled", &[])), 100);
    assert_eq!(
        Suse::applies(os_info(
            "opensuse-microos",
            &["suse", "opensuse", "microos"]
        )),
        50
    );
    assert_eq!(Suse::applies(os_info("gecko", &["opensuse"])), 50);
    assert_eq!(Suse::applies(os_info("debian", &[])), 0);
    assert_eq!(Suse::applies(os_info("fedora", &[])), 0);
}

#[test]
fn distro_installs_only_docker_after_a_refresh() {
    mock::reset();
    suse_host(false, "xfs");
    Suse::install_engine(config("opensuse-leap", InstallMethod::Distro)).expect("install");
    let c = cmds();
    let refresh = c
        .iter()
        .position(|c| c == "zypper --non-interactive refresh");
    let install = c
        .iter()
        .position(|c| c == "zypper --non-interactive install docker");
    assert!(
        refresh.is_some() && install.is_some() && refresh < install,
        "{c:?}"
    );
    assert!(
        !c.iter()
            .any(|c| c.contains(" up") || c.contains(" dup") || c.contains("| sh"))
    );

    mock::reset();
    suse_host(true, "xfs");
    Suse::install_engine(config("opensuse-leap", InstallMethod::Distro)).expect("skip");
    assert!(!cmds().iter().any(|c| c.contains("zypper")));
}

#[test]
fn repo_is_refused_before_anything_runs() {
    mock::reset();
    suse_host(false, "xfs");
    let err = Suse::install_engine(config("sles", InstallMethod::Repo)).expect_err("refused");
    assert!(matches!(err, Error::Unsupported(_)));
    assert!(err.message().contains("--engine-install-method distro"));
    assert!(mock::commands().is_empty());
}

#[test]
fn missing_package_explains_the_containers_module() {
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.contains("install docker") {
            (
                104,
                "'docker' not found in package names. Trying capabilities.\n".into(),
                "No provider of 'docker' found.\n".into(),
            )
        } else if cmd.contains("command -v dockerd") {
            (0, "\n".into(), String::new())
        } else {
            (0, String::new(), String::new())
        })
    });
    let err = Suse::install_engine(config("sles", InstallMethod::Distro)).expect_err("missing");
    assert!(
        err.message()
            .contains("SUSEConnect -p sle-module-containers"),
        "{}",
        err.message()
    );
    let err =
        Suse::install_engine(config("opensuse-leap", InstallMethod::Distro)).expect_err("missing");
    assert!(err.message().contains("zypper repos"), "{}", err.message());
}

#[test]
fn lock_is_waited_out() {
    mock::reset();
    let mut locked = 2;
    let mut installed = false;
    mock::on_exec(move |cmd, _| {
        if cmd.contains("command -v dockerd") {
            return Ok((
                0,
                if installed {
                    "/usr/bin/dockerd\n"
                } else {
                    "\n"
                }
                .into(),
                String::new(),
            ));
        }
        if cmd == "zypper --non-interactive refresh" && locked > 0 {
            locked -= 1;
            return Ok((7, String::new(), "System management is locked by the application with pid 812 (zypper).\nClose this application before trying again.\n".into()));
        }
        if cmd.contains("install docker") {
            installed = true;
        }
        Ok((0, String::new(), String::new()))
    });
    Suse::install_engine(config("opensuse-tumbleweed", InstallMethod::Distro)).expect("install");
    assert_eq!(mock::sleeps().len(), 2);
}

#[test]
fn transactional_systems_are_told_what_to_do() {
    mock::reset();
    suse_host(false, "btrfs");
    let mut c = config("opensuse-microos", InstallMethod::Distro);
    c.os.id_like = vec!["suse".into(), "microos".into()];
    let err = Suse::install_engine(c).expect_err("read-only root");
    assert!(
        err.message()
            .contains("transactional-update pkg install docker")
    );
}

#[test]
fn configure_picks_btrfs_on_btrfs() {
    mock::reset();
    suse_host(true, "btrfs");
    Suse::configure_engine(config("opensuse-tumbleweed", InstallMethod::Distro))
        .expect("configure");
    let ups = mock::uploads();
    assert_eq!(ups.len(), 1);
    assert_eq!(
        ups[0].path,
        "/etc/systemd/system/docker.service.d/10-dmw.conf"
    );
    assert!(ups[0].contents.contains("ExecStart=/usr/bin/dockerd -H tcp://0.0.0.0:2376 -H unix:///var/run/docker.sock --tlsverify"), "{}", ups[0].contents);
    assert!(
        ups[0]
            .contents
            .contains("--storage-driver btrfs --label provider=generic")
    );
    let c = cmds();
    let pos = |n: &str| c.iter().position(|c| c.contains(n)).unwrap_or(usize::MAX);
    assert!(pos("systemctl enable docker.service") < pos("systemctl restart docker.service"));
    assert!(pos("systemctl restart docker.service") < pos("ss -tln"));
    assert_eq!(
        mock::store().get("engine-port").map(String::as_str),
        Some("2376")
    );

    // ext4 (stat says ext2/ext3): dockerd's default; a user's choice always wins.
    mock::reset();
    suse_host(true, "ext2/ext3");
    Suse::configure_engine(config("opensuse-leap", InstallMethod::Distro)).expect("configure");
    assert!(!mock::uploads()[0].contents.contains("--storage-driver"));
    mock::reset();
    suse_host(true, "btrfs");
    let mut c = config("opensuse-leap", InstallMethod::Distro);
    c.storage_driver = "overlay2".into();
    Suse::configure_engine(c).expect("configure");
    assert!(
        mock::uploads()[0]
            .contents
            .contains("--storage-driver overlay2")
    );
    assert!(!cmds().iter().any(|c| c.contains("stat -f")));
    mock::reset();
    suse_host(true, "prior-overlay2");
    Suse::configure_engine(config("opensuse-leap", InstallMethod::Distro)).expect("configure");
    assert!(!mock::uploads()[0].contents.contains("--storage-driver"));
}

#[test]
fn configure_reports_the_journal_when_dockerd_fails() {
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.contains("command -v dockerd") {
            (0, "/usr/bin/dockerd\n".into(), String::new())
        } else if cmd.contains("daemon.json") || cmd.contains("systemctl cat") {
            (1, String::new(), String::new())
        } else if cmd.contains("systemctl restart") {
            (1, String::new(), "Job for docker.service failed".into())
        } else if cmd.contains("journalctl") {
            (
                0,
                "dockerd[1]: failed to start daemon: error initializing graphdriver".into(),
                String::new(),
            )
        } else {
            (0, String::new(), String::new())
        })
    });
    let err = Suse::configure_engine(config("sles", InstallMethod::Distro)).expect_err("fails");
    assert!(err.message().contains("Job for docker.service failed"));
    assert!(err.message().contains("error initializing graphdriver"));
}

#[test]
fn upgrade_touches_only_installed_engine_packages() {
    mock::reset();
    suse_host(true, "btrfs");
    Suse::upgrade_engine(config("opensuse-leap", InstallMethod::Distro)).expect("upgrade");
    let c = cmds();
    assert!(
        c.iter()
            .any(|c| c == "zypper --non-interactive update docker"),
        "{c:?}"
    );
    assert!(
        !c.iter()
            .any(|c| c.contains("zypper --non-interactive up ") || c.contains("dup"))
    );
    assert!(matches!(
        Suse::upgrade_engine(config("opensuse-leap", InstallMethod::None)),
        Err(Error::Unsupported(_))
    ));
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.starts_with("rpm -q") {
            (
                4,
                "package docker is not installed\npackage docker-ce is not installed\n".into(),
                String::new(),
            )
        } else {
            (0, String::new(), String::new())
        })
    });
    let err = Suse::upgrade_engine(config("sles", InstallMethod::Distro)).expect_err("none");
    assert!(err.message().contains("no Docker Engine package"));
}

#[test]
fn script_method_downloads_then_runs() {
    mock::reset();
    let mut installed = false;
    mock::on_exec(move |cmd, _| {
        if cmd.contains("command -v dockerd") {
            return Ok((
                0,
                if installed {
                    "/usr/bin/dockerd\n"
                } else {
                    "\n"
                }
                .into(),
                String::new(),
            ));
        }
        if cmd.contains("dmw-install-docker") {
            installed = true;
        }
        Ok((0, String::new(), String::new()))
    });
    Suse::install_engine(config("sles", InstallMethod::Script)).expect("script");
    let c = cmds();
    assert!(c.iter().any(
        |c| c.contains("curl -fsSL https://get.docker.com -o \"$f\"") && c.contains("sh \"$f\"")
    ));
    assert!(!c.iter().any(|c| c.contains("| sh")));
}

#[test]
fn hostname_and_restart() {
    mock::reset();
    suse_host(true, "btrfs");
    Suse::set_hostname("web-1".into()).expect("hostname");
    assert!(cmds()[0].contains("hostname web-1 "));
    assert!(Suse::set_hostname("bad name".into()).is_err());
    Suse::restart_engine().expect("restart");
    assert!(
        cmds()
            .iter()
            .any(|c| c.contains("systemctl restart docker.service"))
    );
}

#[test]
fn auto_installs_suses_package() {
    mock::reset();
    suse_host(false, "xfs");
    Suse::install_engine(config("sles", InstallMethod::Auto)).expect("auto");
    assert!(cmds().contains(&"zypper --non-interactive install docker".to_string()));
    let mut c = config("opensuse-microos", InstallMethod::Auto);
    c.os.id_like = vec!["suse".into(), "microos".into()];
    mock::reset();
    suse_host(false, "btrfs");
    let err = Suse::install_engine(c).expect_err("read-only root");
    assert!(err.message().contains("transactional-update"));
}
