//! Transcript tests: the recipe against the sdk's scripted host.

use super::*;
use dmw_guest::{Error, mock};

dmw_guest::recipe_test_fixtures!();

fn config(method: InstallMethod) -> EngineConfig {
    let os = OsInfo {
        version_id: "12".into(),
        fields: vec![
            ("ID".into(), "debian".into()),
            ("VERSION_ID".into(), "12".into()),
            ("VERSION_CODENAME".into(), "bookworm".into()),
        ],
        ..os_info("debian", &[])
    };
    engine_config(os, method)
}

/// A Debian 12 machine: dockerd at /usr/sbin once installed, docker.socket present.
fn debian_host(installed: bool) {
    let mut installed = installed;
    let mut restarted = false;
    mock::on_exec(move |cmd, root| {
        assert!(root, "every recipe command runs as root: {cmd}");
        let ok = |s: &str| Ok((0, s.to_string(), String::new()));
        if cmd.contains("command -v dockerd") {
            return ok(if installed {
                "/usr/sbin/dockerd\n"
            } else {
                "\n"
            });
        }
        if cmd.contains("apt-get") && cmd.contains("install") {
            installed = true;
        }
        if cmd.contains("daemon.json") {
            return Ok((1, String::new(), String::new()));
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
        if cmd.contains("/sys/module/apparmor") {
            return ok("docker.io ca-certificates\n");
        }
        ok("")
    });
}

#[test]
fn applies_scores() {
    assert_eq!(Debian::applies(os_info("debian", &[])), 100);
    assert_eq!(Debian::applies(os_info("ubuntu", &["debian"])), 100);
    assert_eq!(
        Debian::applies(os_info("linuxmint", &["ubuntu", "debian"])),
        50
    );
    assert_eq!(Debian::applies(os_info("raspbian", &["debian"])), 50);
    assert_eq!(Debian::applies(os_info("fedora", &[])), 0);
    assert_eq!(
        Debian::applies(os_info("rocky", &["rhel", "centos", "fedora"])),
        0
    );
}

#[test]
fn install_skips_when_present_and_uses_docker_io() {
    mock::reset();
    debian_host(true);
    Debian::install_engine(config(InstallMethod::Distro)).expect("skip");
    assert!(!mock::commands().iter().any(|(c, _)| c.contains("apt-get")));

    mock::reset();
    debian_host(false);
    Debian::install_engine(config(InstallMethod::Distro)).expect("install");
    let cmds: Vec<String> = mock::commands().into_iter().map(|(c, _)| c).collect();
    assert!(cmds.iter().any(|c| c.ends_with("apt-get -q -y -o DPkg::Lock::Timeout=60 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold update")));
    assert!(
        cmds.iter()
            .any(|c| c.ends_with("install --no-install-recommends docker.io ca-certificates"))
    );
    assert!(
        !cmds
            .iter()
            .any(|c| c.contains("upgrade") || c.contains("dist-upgrade"))
    );

    mock::reset();
    debian_host(false);
    let err =
        Debian::install_engine(config(InstallMethod::None)).expect_err("none needs an engine");
    assert!(err.message().contains("not installed"));
}

#[test]
fn configure_keeps_socket_activation_and_waits() {
    mock::reset();
    debian_host(true);
    Debian::configure_engine(config(InstallMethod::Distro)).expect("configure");
    let ups = mock::uploads();
    assert_eq!(ups.len(), 1);
    assert_eq!(
        ups[0].path,
        "/etc/systemd/system/docker.service.d/10-dmw.conf"
    );
    assert_eq!(ups[0].mode, 0o644);
    assert!(ups[0].contents.contains("ExecStart=\nExecStart=/usr/sbin/dockerd -H tcp://0.0.0.0:2376 -H fd:// --tlsverify --tlscacert /etc/docker/ca.pem"), "{}", ups[0].contents);
    assert!(ups[0].contents.contains("--label provider=generic"));
    let cmds: Vec<String> = mock::commands().into_iter().map(|(c, _)| c).collect();
    let pos = |needle: &str| {
        cmds.iter()
            .position(|c| c.contains(needle))
            .unwrap_or(usize::MAX)
    };
    assert!(
        pos("systemctl enable docker.socket")
            < pos(
                "rm -f /etc/systemd/system/docker.service.d/10-machine.conf && systemctl daemon-reload && systemctl enable docker.service"
            )
    );
    assert!(pos("systemctl daemon-reload && systemctl restart docker.service") < pos("ss -tln"));
    assert!(
        !cmds
            .iter()
            .any(|c| c.contains("mask docker.socket") && !c.contains("unmask"))
    );
    assert_eq!(
        mock::store().get("engine-port").map(String::as_str),
        Some("2376")
    );
    // Idempotent: a second run does the same and succeeds.
    Debian::configure_engine(config(InstallMethod::Distro)).expect("configure again");
    Debian::restart_engine().expect("restart");
}

#[test]
fn configure_without_socket_unit_binds_the_socket_itself() {
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.contains("command -v dockerd") {
            (0, "/usr/bin/dockerd\n".into(), String::new())
        } else if cmd.contains("systemctl cat docker.socket") || cmd.contains("daemon.json") {
            (1, String::new(), String::new())
        } else if cmd.contains("ss -tln") {
            (0, "LISTEN 0 4096 [::]:2376 [::]:*\n".into(), String::new())
        } else {
            (0, String::new(), String::new())
        })
    });
    Debian::configure_engine(config(InstallMethod::None)).expect("configure");
    assert!(
        mock::uploads()[0]
            .contents
            .contains("/usr/bin/dockerd -H tcp://0.0.0.0:2376 -H unix:///var/run/docker.sock")
    );
}

#[test]
fn configure_reports_the_journal_when_dockerd_fails() {
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.contains("command -v dockerd") {
            (0, "/usr/sbin/dockerd\n".into(), String::new())
        } else if cmd.contains("daemon.json") {
            (1, String::new(), String::new())
        } else if cmd.contains("systemctl restart") {
            (1, String::new(), "Job for docker.service failed".into())
        } else if cmd.contains("journalctl") {
            (
                0,
                "dockerd[1]: failed to load listeners: bad cert".into(),
                String::new(),
            )
        } else {
            (0, String::new(), String::new())
        })
    });
    let err = Debian::configure_engine(config(InstallMethod::Distro)).expect_err("fails");
    assert!(
        err.message().contains("Job for docker.service failed"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("failed to load listeners"),
        "{}",
        err.message()
    );
}

#[test]
fn hostname_runs_the_script_as_root() {
    mock::reset();
    Debian::set_hostname("web-1".into()).expect("hostname");
    assert!(mock::commands()[0].0.contains("hostname web-1 "));
    assert!(Debian::set_hostname("bad name; rm -rf /".into()).is_err());
}

fn fields(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn repo_targets() {
    let f = |text: &str| apt::repo_target(&fields(text));
    assert_eq!(
        f("ID=debian\nVERSION_CODENAME=bookworm").ok(),
        Some(("debian".into(), "bookworm".into()))
    );
    assert_eq!(
        f("ID=ubuntu\nVERSION_CODENAME=noble").ok(),
        Some(("ubuntu".into(), "noble".into()))
    );
    assert_eq!(
        f("ID=linuxmint\nID_LIKE=ubuntu debian\nVERSION_CODENAME=wilma\nUBUNTU_CODENAME=noble")
            .ok(),
        Some(("ubuntu".into(), "noble".into()))
    );
    assert!(f("ID=debian").is_err());
    assert!(f("ID=fedora").is_err());
    assert_eq!(
        apt::repo_base("", "debian"),
        "https://download.docker.com/linux/debian"
    );
    assert_eq!(
        apt::repo_base("http://mirror.test/linux/", "ubuntu"),
        "http://mirror.test/linux/ubuntu"
    );
}

#[test]
fn repo_method_adds_the_signed_source() {
    mock::reset();
    let mut installed = false;
    mock::on_exec(move |cmd, _| {
        assert!(!cmd.contains("os-release"), "the host gives the OS: {cmd}");
        Ok(if cmd.contains("command -v dockerd") {
            (
                0,
                if installed {
                    "/usr/bin/dockerd\n"
                } else {
                    "\n"
                }
                .into(),
                String::new(),
            )
        } else {
            if cmd.contains("install --no-install-recommends docker-ce") {
                installed = true;
            }
            (0, String::new(), String::new())
        })
    });
    Debian::install_engine(config(InstallMethod::Repo)).expect("repo");
    let cmds: Vec<String> = mock::commands().into_iter().map(|(c, _)| c).collect();
    let add = cmds
        .iter()
        .find(|c| c.contains("sources.list.d/docker.list"))
        .expect("source added");
    assert!(add.contains("curl -fsSL https://download.docker.com/linux/debian/gpg -o /etc/apt/keyrings/docker.asc.new"));
    assert!(add.contains("signed-by=/etc/apt/keyrings/docker.asc] %s"));
    assert!(add.contains("'https://download.docker.com/linux/debian bookworm stable'"));
    assert!(cmds.iter().any(|c| {
        c.ends_with("install --no-install-recommends docker-ce docker-ce-cli containerd.io")
    }));

    // A mirror from --engine-repo-url keeps Docker's layout.
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.contains("command -v dockerd") {
            (0, "/usr/bin/dockerd\n".into(), String::new())
        } else {
            (0, String::new(), String::new())
        })
    });
    let mut cfg = config(InstallMethod::Repo);
    cfg.repo_url = "http://mirror.test/linux/".into();
    // dockerd is "present" for the mock, so force the install path through apt directly.
    apt::install_repo(&cfg.os.fields, &cfg.repo_url).expect("mirror");
    let cmds: Vec<String> = mock::commands().into_iter().map(|(c, _)| c).collect();
    assert!(cmds.iter().any(
        |c| c.contains("curl -fsSL http://mirror.test/linux/debian/gpg")
            && c.contains("'http://mirror.test/linux/debian bookworm stable'")
    ));
}

#[test]
fn script_method_and_lock_retries() {
    mock::reset();
    let mut calls = 0;
    mock::on_exec(move |cmd, _| {
        if cmd.contains("apt-get") && cmd.ends_with(" update") {
            calls += 1;
            if calls == 1 {
                return Ok((
                    100,
                    String::new(),
                    "E: Could not get lock /var/lib/apt/lists/lock".into(),
                ));
            }
        }
        Ok((
            if cmd == "command -v curl >/dev/null 2>&1" {
                1
            } else {
                0
            },
            String::new(),
            String::new(),
        ))
    });
    let err =
        Debian::install_engine(config(InstallMethod::Script)).expect_err("dockerd never appears");
    assert!(err.message().contains("still not found"));
    let cmds: Vec<String> = mock::commands().into_iter().map(|(c, _)| c).collect();
    assert!(
        cmds.iter()
            .any(|c| c.contains("curl -fsSL https://get.docker.com -o \"$f\" && sh \"$f\""))
    );
    assert_eq!(mock::sleeps().len(), 1, "one retry for the held lock");
    let mut bad = config(InstallMethod::Script);
    bad.install_url = "ftp://x y".into();
    mock::reset();
    assert!(matches!(
        Debian::install_engine(bad),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn auto_uses_dockers_repository_and_keeps_an_engine() {
    mock::reset();
    debian_host(true);
    Debian::install_engine(config(InstallMethod::Auto)).expect("kept");
    assert!(!mock::commands().iter().any(|(c, _)| c.contains("apt-get")));

    mock::reset();
    debian_host(false);
    Debian::install_engine(config(InstallMethod::Auto)).expect("repo");
    let cmds: Vec<String> = mock::commands().into_iter().map(|(c, _)| c).collect();
    assert!(
        cmds.iter()
            .any(|c| c.contains("sources.list.d/docker.list"))
    );
    assert!(cmds.iter().any(|c| {
        c.ends_with("install --no-install-recommends docker-ce docker-ce-cli containerd.io")
    }));
}

#[test]
fn upgrade_touches_only_installed_engine_packages() {
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.contains("dpkg-query") {
            (
                0,
                "docker.io installed\ndocker-ce not-installed\n".into(),
                String::new(),
            )
        } else if cmd.contains("ss -tln") {
            (0, "LISTEN 0 4096 *:2376 *:*\n".into(), String::new())
        } else {
            (0, String::new(), String::new())
        })
    });
    Debian::upgrade_engine(config(InstallMethod::Distro)).expect("upgrade");
    let cmds: Vec<String> = mock::commands().into_iter().map(|(c, _)| c).collect();
    assert!(
        cmds.iter()
            .any(|c| c.ends_with("install --only-upgrade docker.io"))
    );
    assert!(matches!(
        Debian::upgrade_engine(config(InstallMethod::None)),
        Err(Error::Unsupported(_))
    ));
}
