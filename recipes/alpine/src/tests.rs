//! The recipe against the sdk's scripted host.

use super::*;
use dmw_guest::engine::DaemonConfig;
use dmw_guest::{Error, mock};

dmw_guest::recipe_test_fixtures!();

fn config(method: InstallMethod) -> EngineConfig {
    EngineConfig {
        labels: vec!["provider=generic".into(), "team=a b".into()],
        extra_flags: vec!["data-root=/srv/$x".into()],
        env: vec!["HTTP_PROXY=http://proxy:3128".into()],
        ..engine_config(os_info("alpine", &[]), method)
    }
}

/// An Alpine 3.19 machine with busybox netstat and OpenRC; `community`: whether the
/// community repository is enabled.
fn alpine_host(installed: bool, community: bool) {
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
        if cmd == apk::INSTALL {
            if !community {
                return Ok((1, "fetch https://dl-cdn.alpinelinux.org/alpine/v3.19/main/x86_64/APKINDEX.tar.gz\n".into(),
                    "ERROR: unable to select packages:\n  docker (no such package):\n    required by: world[docker]\n".into()));
            }
            installed = true;
            return ok("OK: 312 MiB in 60 packages\n");
        }
        if cmd == "apk info -e docker" {
            return if installed {
                ok("docker\n")
            } else {
                Ok((1, String::new(), String::new()))
            };
        }
        if cmd.contains("daemon.json") {
            return Ok((1, String::new(), String::new()));
        }
        if cmd == "rc-service docker restart" {
            restarted = true;
            return ok(" * Starting Docker Daemon ... [ ok ]\n");
        }
        if cmd.contains("netstat -tln") {
            return ok(if restarted {
                "Active Internet connections (only servers)\ntcp        0      0 :::2376                 :::*                    LISTEN\ndmw-unit-state started\n"
            } else {
                "dmw-unit-state stopped\n"
            });
        }
        ok("")
    });
}

#[test]
fn applies_scores() {
    assert_eq!(Alpine::applies(os_info("alpine", &[])), 100);
    assert_eq!(Alpine::applies(os_info("postmarketos", &["alpine"])), 50);
    assert_eq!(Alpine::applies(os_info("debian", &[])), 0);
}

#[test]
fn installs_with_apk() {
    mock::reset();
    alpine_host(false, true);
    Alpine::install_engine(config(InstallMethod::Distro)).expect("install");
    assert!(cmds().contains(&"apk add --no-cache docker".to_string()));
    assert!(
        !cmds()
            .iter()
            .any(|c| c.starts_with("apk upgrade") || c.contains("| sh"))
    );
}

#[test]
fn missing_community_repo_is_explained() {
    mock::reset();
    alpine_host(false, false);
    let err = Alpine::install_engine(config(InstallMethod::Distro)).expect_err("no package");
    assert!(
        err.message().contains("/etc/apk/repositories"),
        "{}",
        err.message()
    );
    assert!(err.message().contains("community"));
    assert!(err.message().contains("unable to select packages"));
}

#[test]
fn configure_writes_conf_d_and_waits_for_openrc() {
    mock::reset();
    alpine_host(true, true);
    Alpine::configure_engine(config(InstallMethod::Distro)).expect("configure");
    let ups = mock::uploads();
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].path, "/etc/conf.d/docker");
    let text = &ups[0].contents;
    assert!(text.contains("DOCKER_OPTS=\"-H tcp://0.0.0.0:2376 -H unix:///var/run/docker.sock --tlsverify --tlscacert /etc/docker/ca.pem --tlscert /etc/docker/server.pem --tlskey /etc/docker/server-key.pem --label provider=generic --label 'team=a b' '--data-root=/srv/\\$x'\"\n"), "{text}");
    assert!(text.contains("export HTTP_PROXY=http://proxy:3128\n"));
    assert!(!text.contains("DOCKERD_BINARY"));
    let c = cmds();
    let pos = |n: &str| c.iter().position(|c| c.contains(n)).unwrap_or(usize::MAX);
    assert!(pos("rc-update add docker default") < pos("rc-service docker restart"));
    assert!(pos("rc-service docker restart") < pos("netstat -tln"));
    assert!(!c.iter().any(|c| c.contains("systemctl")));
    assert_eq!(
        mock::store().get("engine-port").map(String::as_str),
        Some("2376")
    );
}

#[test]
fn conf_d_survives_sh_and_eval() {
    // Source the file with sh and eval DOCKER_OPTS as OpenRC does; the words must come back.
    let tls = dmw_guest::InstalledCerts {
        ca_path: "/etc/docker/ca.pem".into(),
        cert_path: "/etc/docker/server.pem".into(),
        key_path: "/etc/docker/server-key.pem".into(),
        fresh: true,
    };
    let labels = vec!["it's=a \"b\" `c` \\d".to_string()];
    let extra = vec!["data-root=/srv/$x".to_string()];
    let env = vec!["A_B=x y$z".to_string()];
    let text = openrc::conf_d(&DaemonConfig {
        dockerd: "/usr/local/bin/dockerd",
        port: 2376,
        unix_socket: UnixSocket::Path("/var/run/docker.sock"),
        tls: &tls,
        storage_driver: "",
        labels: &labels,
        insecure_registries: &[],
        registry_mirrors: &[],
        extra_flags: &extra,
        raw_args: &[],
        env: &env,
    })
    .expect("valid");
    let script = format!(
        "{text}\ncommand_args=\"${{DOCKER_OPTS}}\"\neval printf '%s\\\\n' $command_args\n\
         printf '%s\\n' \"$DOCKERD_BINARY\" \"$A_B\"\n"
    );
    // Debian's dash, and busybox ash (Alpine's /bin/sh) when the test machine has it.
    let shells: [&[&str]; 2] = [&["sh"], &["busybox", "sh"]];
    for shell in shells {
        let Ok(out) = std::process::Command::new(shell[0])
            .args(&shell[1..])
            .arg("-c")
            .arg(&script)
            .output()
        else {
            continue;
        };
        let words = String::from_utf8_lossy(&out.stdout).into_owned();
        let words: Vec<&str> = words.lines().collect();
        assert!(
            words.contains(&"it's=a \"b\" `c` \\d"),
            "{shell:?}: {words:?}"
        );
        assert!(
            words.contains(&"--data-root=/srv/$x"),
            "{shell:?}: {words:?}"
        );
        assert!(
            words.ends_with(&["/usr/local/bin/dockerd", "x y$z"]),
            "{shell:?}: {words:?}"
        );
    }
}

#[test]
fn engine_that_crashes_stops_the_wait_with_its_log() {
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.contains("command -v dockerd") {
            (0, "/usr/bin/dockerd\n".into(), String::new())
        } else if cmd.contains("daemon.json") {
            (1, String::new(), String::new())
        } else if cmd.contains("netstat -tln") {
            (0, "dmw-unit-state crashed\n".into(), String::new())
        } else if cmd.contains("tail -n 30 /var/log/docker.log") {
            (
                0,
                "failed to load listeners: open /etc/docker/server.pem: no such file".into(),
                String::new(),
            )
        } else {
            (0, String::new(), String::new())
        })
    });
    let err = Alpine::configure_engine(config(InstallMethod::Distro)).expect_err("crashed");
    assert!(
        err.message().contains("docker service crashed"),
        "{}",
        err.message()
    );
    assert!(err.message().contains("failed to load listeners"));
    assert!(
        mock::sleeps().is_empty(),
        "a crashed service is not waited for"
    );
}

#[test]
fn upgrade_only_docker_then_restart() {
    mock::reset();
    alpine_host(true, true);
    Alpine::upgrade_engine(config(InstallMethod::Distro)).expect("upgrade");
    let c = cmds();
    assert!(c.contains(&"apk upgrade --no-cache docker".to_string()));
    assert!(c.iter().any(|c| c == "rc-service docker restart"));
    mock::reset();
    alpine_host(false, true);
    assert!(Alpine::upgrade_engine(config(InstallMethod::Distro)).is_err());
}

#[test]
fn missing_service_and_repo_are_explained() {
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.contains("command -v dockerd") {
            (0, "/usr/local/bin/dockerd\n".into(), String::new())
        } else if cmd.contains("/etc/init.d/docker") {
            (1, String::new(), String::new())
        } else {
            (0, String::new(), String::new())
        })
    });
    let err = Alpine::configure_engine(config(InstallMethod::None)).expect_err("no service");
    assert!(err.message().contains("apk add docker-openrc"));
    let err = Alpine::install_engine(config(InstallMethod::Repo)).expect_err("no repo");
    assert!(matches!(err, Error::Unsupported(_)));
}

#[test]
fn state_command_reads_openrc_status() {
    // Run the state pipeline in a real shell with a stand-in for rc-service.
    for (status, state) in [
        (" * status: started", "started"),
        (" * status: crashed", "crashed"),
        (" * service docker is not in any runlevel", ""),
    ] {
        let script = format!("rc_service() {{ echo '{status}'; }}\n{}", openrc::STATE)
            .replace("rc-service docker", "rc_service docker");
        let Ok(out) = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
        else {
            return;
        };
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            state,
            "{status}"
        );
    }
}

#[test]
fn auto_installs_alpines_package() {
    mock::reset();
    alpine_host(false, true);
    Alpine::install_engine(config(InstallMethod::Auto)).expect("auto");
    assert!(cmds().contains(&"apk add --no-cache docker".to_string()));
}
