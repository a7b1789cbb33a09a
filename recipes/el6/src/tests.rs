//! Native tests: the recipe against the sdk's scripted host.

use super::*;
use dmw_guest::mock;

dmw_guest::recipe_test_fixtures!();

fn os(id: &str, version: &str) -> OsInfo {
    OsInfo {
        version_id: version.into(),
        pretty_name: format!("{id} release {version}"),
        fields: vec![("DMW_RELEASE_FILE".into(), "/etc/centos-release".into())],
        ..os_info(id, &["rhel", "fedora"])
    }
}

fn config(method: InstallMethod) -> EngineConfig {
    EngineConfig {
        install_url: String::new(),
        env: vec!["HTTP_PROXY=http://p:3128".into()],
        ..engine_config(os("centos", "6.10"), method)
    }
}

/// A CentOS 6 machine without EPEL; docker-io appears once installed.
fn centos6(installed: bool) {
    let mut installed = installed;
    let mut restarted = false;
    mock::on_exec(move |cmd, root| {
        assert!(root, "{cmd}");
        assert!(!cmd.contains("systemctl"), "no systemd on EL6: {cmd}");
        let ok = |s: &str| Ok((0, s.to_string(), String::new()));
        if cmd.contains("command -v docker") {
            return ok(if installed { "/usr/bin/docker\n" } else { "\n" });
        }
        if cmd == "rpm -q --quiet epel-release" {
            return Ok((1, String::new(), String::new()));
        }
        if cmd == "yum install -y docker-io" {
            installed = true;
        }
        if cmd.contains("getenforce") {
            return ok("Enforcing\n");
        }
        if cmd == "service docker restart" {
            restarted = true;
        }
        if cmd.contains("netstat -tln") {
            return ok(if restarted {
                "tcp 0 0 :::2376 :::* LISTEN\ndmw-unit-state running\n"
            } else {
                "dmw-unit-state stopped\n"
            });
        }
        ok("")
    });
}

#[test]
fn applies_only_to_el6() {
    assert_eq!(El6::applies(os("centos", "6.10")), 100);
    assert_eq!(El6::applies(os("rhel", "6.9")), 100);
    assert_eq!(El6::applies(os("ol", "6")), 100);
    assert_eq!(El6::applies(os("centos", "7")), 0);
    assert_eq!(El6::applies(os("fedora", "6")), 0);
}

#[test]
fn distro_installs_epel_then_docker_io() {
    mock::reset();
    centos6(false);
    El6::install_engine(config(InstallMethod::Distro)).expect("install");
    let c = cmds();
    let pos = |n: &str| c.iter().position(|x| x == n).unwrap_or(usize::MAX);
    assert!(pos("yum install -y epel-release") < pos("yum install -y docker-io"));
    assert!(!c.iter().any(|x| x.contains("update")));
}

#[test]
fn docker_io_missing_explains_the_archive() {
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd == "yum install -y docker-io" {
            (
                1,
                String::new(),
                "No package docker-io available.\nError: Nothing to do\n".into(),
            )
        } else if cmd.contains("command -v docker") {
            (0, "\n".into(), String::new())
        } else {
            (0, String::new(), String::new())
        })
    });
    let err = El6::install_engine(config(InstallMethod::Distro)).expect_err("missing");
    assert!(
        err.message().contains("archives.fedoraproject.org"),
        "{}",
        err.message()
    );
}

#[test]
fn repo_is_refused() {
    mock::reset();
    centos6(false);
    let err = El6::install_engine(config(InstallMethod::Repo)).expect_err("repo");
    assert!(matches!(&err, Error::Unsupported(m) if m.contains("distro")));
}

#[test]
fn configure_writes_other_args_and_uses_the_init_script() {
    mock::reset();
    centos6(true);
    El6::configure_engine(config(InstallMethod::Distro)).expect("configure");
    let ups = mock::uploads();
    assert_eq!(ups[0].path, SYSCONFIG);
    assert!(
        ups[0].contents.contains(
            "other_args='-H tcp://0.0.0.0:2376 -H unix:///var/run/docker.sock --tlsverify \
         --tlscacert /etc/docker/ca.pem --tlscert /etc/docker/server.pem \
         --tlskey /etc/docker/server-key.pem --label provider=generic'\n"
        ),
        "{}",
        ups[0].contents
    );
    assert!(
        ups[0]
            .contents
            .contains("export HTTP_PROXY=http://p:3128\n")
    );
    let c = cmds();
    let pos = |n: &str| c.iter().position(|x| x.contains(n)).unwrap_or(usize::MAX);
    assert!(pos("restorecon -R /etc/docker") < pos("service docker restart"));
    assert!(pos("chkconfig docker on") < pos("service docker restart"));
    assert!(pos("service docker restart") < pos("netstat -tln"));
    El6::restart_engine().expect("restart");
}

#[test]
fn unsafe_options_are_refused() {
    mock::reset();
    centos6(true);
    let mut cfg = config(InstallMethod::Distro);
    cfg.labels.push("team=a b".into());
    assert!(matches!(
        El6::configure_engine(cfg),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn dead_daemon_stops_the_wait_with_its_log() {
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.contains("netstat -tln") {
            (0, "dmw-unit-state dead\n".into(), String::new())
        } else if cmd.contains("tail -n 30 /var/log/docker") {
            (
                0,
                "docker dead but pid file exists\ncould not read CA certificate".into(),
                String::new(),
            )
        } else {
            (0, String::new(), String::new())
        })
    });
    let err = wait_listening(2376).expect_err("dead");
    assert!(
        err.message()
            .contains("the docker daemon died after starting")
    );
    assert!(err.message().contains("could not read CA certificate"));
    assert!(mock::sleeps().is_empty());
}

#[test]
fn state_command_maps_lsb_codes() {
    // Run the state command in a real shell with a stand-in `service` exiting with each code.
    for (code, state) in [
        (0, "running"),
        (1, "dead"),
        (2, "dead"),
        (3, "stopped"),
        (4, "stopped"),
    ] {
        let script = format!("service() {{ return {code}; }}\n{STATE}");
        let Ok(out) = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
        else {
            return;
        };
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), state, "{code}");
    }
}

#[test]
fn auto_installs_epel_docker_io() {
    mock::reset();
    centos6(false);
    El6::install_engine(config(InstallMethod::Auto)).expect("auto");
    assert!(cmds().contains(&"yum install -y docker-io".to_string()));
}

#[test]
fn hostname_also_sets_sysconfig_network() {
    mock::reset();
    El6::set_hostname("web-1".into()).expect("hostname");
    assert!(cmds()[0].contains("s/^HOSTNAME=.*/HOSTNAME=web-1/"));
}
