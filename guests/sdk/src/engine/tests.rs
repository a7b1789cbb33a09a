//! Native tests of the engine helpers against the sdk's scripted host.

use super::script::script_command;
use super::service::{RETRY_PAUSE, cause_line, poll_command, poll_state};
use super::*;
use crate::{Level, mock};

fn certs() -> InstalledCerts {
    InstalledCerts {
        ca_path: "/etc/docker/ca.pem".into(),
        cert_path: "/etc/docker/server.pem".into(),
        key_path: "/etc/docker/server-key.pem".into(),
        fresh: true,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A config with no options, for `tls`.
fn bare(tls: &InstalledCerts) -> DaemonConfig<'_> {
    DaemonConfig {
        dockerd: "/usr/bin/dockerd",
        port: 2376,
        unix_socket: UnixSocket::Activated,
        tls,
        storage_driver: "",
        labels: &[],
        insecure_registries: &[],
        registry_mirrors: &[],
        extra_flags: &[],
        raw_args: &[],
        env: &[],
    }
}

fn cmds() -> Vec<String> {
    mock::commands().into_iter().map(|(c, _)| c).collect()
}

#[test]
fn dropin_matches_docker_machine_shape() {
    let tls = certs();
    let (labels, insecure, mirrors, extra, env) = (
        strings(&["provider=generic", "team=a b"]),
        strings(&["reg.local:5000"]),
        strings(&["https://mirror.local"]),
        strings(&["log-level=debug", "--ipv6", "data-root=/srv/$x%y"]),
        strings(&["HTTP_PROXY=http://p:3128", "QUOTE=a\"b%c"]),
    );
    let cfg = DaemonConfig {
        dockerd: "/usr/sbin/dockerd",
        unix_socket: UnixSocket::Path("/var/run/docker.sock"),
        storage_driver: "overlay2",
        labels: &labels,
        insecure_registries: &insecure,
        registry_mirrors: &mirrors,
        extra_flags: &extra,
        env: &env,
        ..bare(&tls)
    };
    let text = systemd_dropin(&cfg).expect("valid");
    let expected = "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H tcp://0.0.0.0:2376 \
        -H unix:///var/run/docker.sock --tlsverify --tlscacert /etc/docker/ca.pem \
        --tlscert /etc/docker/server.pem --tlskey /etc/docker/server-key.pem \
        --storage-driver overlay2 --label provider=generic --label \"team=a b\" \
        --insecure-registry reg.local:5000 --registry-mirror https://mirror.local \
        --log-level=debug --ipv6 --data-root=/srv/$$x%%y\n\
        Environment=\"HTTP_PROXY=http://p:3128\"\nEnvironment=\"QUOTE=a\\\"b%%c\"\n";
    assert!(text.ends_with(expected), "{text}");

    let text = systemd_dropin(&DaemonConfig {
        dockerd: "/usr/sbin/dockerd",
        ..bare(&tls)
    })
    .expect("valid");
    assert!(text.ends_with("ExecStart=/usr/sbin/dockerd -H tcp://0.0.0.0:2376 -H fd:// --tlsverify --tlscacert /etc/docker/ca.pem --tlscert /etc/docker/server.pem --tlskey /etc/docker/server-key.pem\n"), "{text}");
}

#[test]
fn raw_args_end_the_line_unquoted() {
    let tls = certs();
    let extra = strings(&["exec-opt=native.cgroupdriver=systemd"]);
    let raw = strings(&["$OPTIONS", "$DOCKER_STORAGE_OPTIONS", "\"--label=a b\""]);
    let cfg = DaemonConfig {
        extra_flags: &extra,
        raw_args: &raw,
        env: &["A=b".to_string()],
        ..bare(&tls)
    };
    let text = systemd_dropin(&cfg).expect("valid");
    assert!(
        text.contains(
            "--tlskey /etc/docker/server-key.pem --exec-opt=native.cgroupdriver=systemd \
             $OPTIONS $DOCKER_STORAGE_OPTIONS \"--label=a b\"\nEnvironment=\"A=b\"\n"
        ),
        "{text}"
    );
    let args = dockerd_args(&cfg).expect("valid");
    assert_eq!(args.last().map(String::as_str), Some("\"--label=a b\""));
    let bad = strings(&["$OPTIONS\nExecStartPre=/bin/evil"]);
    assert!(
        systemd_dropin(&DaemonConfig {
            raw_args: &bad,
            ..bare(&tls)
        })
        .is_err()
    );
}

#[test]
fn argument_groups() {
    let tls = certs();
    let labels = strings(&["a=b"]);
    let extra = strings(&["debug"]);
    let raw = strings(&["$X"]);
    let cfg = DaemonConfig {
        unix_socket: UnixSocket::Inherited,
        storage_driver: " overlay2 ",
        labels: &labels,
        extra_flags: &extra,
        raw_args: &raw,
        ..bare(&tls)
    };
    let listeners = listener_args(&cfg).expect("valid");
    assert_eq!(
        listeners,
        strings(&[
            "-H",
            "tcp://0.0.0.0:2376",
            "--tlsverify",
            "--tlscacert",
            "/etc/docker/ca.pem",
            "--tlscert",
            "/etc/docker/server.pem",
            "--tlskey",
            "/etc/docker/server-key.pem",
        ]),
        "an inherited socket gets no -H"
    );
    let options = option_args(&cfg).expect("valid");
    assert_eq!(
        options,
        strings(&["--storage-driver", "overlay2", "--label", "a=b", "--debug"])
    );
    let all = dockerd_args(&cfg).expect("valid");
    assert_eq!(all.len(), listeners.len() + options.len() + 1);
    assert!(all.starts_with(&listeners) && all.ends_with(&strings(&["--debug", "$X"])));
}

#[test]
fn dropin_rejects_injection() {
    let tls = certs();
    let bad = strings(&["a=b\nExecStartPre=/bin/evil"]);
    let base = bare(&tls);
    assert!(
        systemd_dropin(&DaemonConfig {
            labels: &bad,
            ..base
        })
        .is_err()
    );
    assert!(systemd_dropin(&DaemonConfig { env: &bad, ..base }).is_err());
    assert!(
        systemd_dropin(&DaemonConfig {
            extra_flags: &bad,
            ..base
        })
        .is_err()
    );
    let nolabel = strings(&["novalue"]);
    assert!(
        systemd_dropin(&DaemonConfig {
            labels: &nolabel,
            ..base
        })
        .is_err()
    );
    let badenv = strings(&["1X=y"]);
    assert!(
        systemd_dropin(&DaemonConfig {
            env: &badenv,
            ..base
        })
        .is_err()
    );
    assert!(
        systemd_dropin(&DaemonConfig {
            dockerd: "dockerd",
            ..base
        })
        .is_err()
    );
    assert!(systemd_dropin(&DaemonConfig { port: 0, ..base }).is_err());
}

#[test]
fn environment() {
    assert!(env_name_ok("HTTP_PROXY") && env_name_ok("_x1"));
    assert!(!env_name_ok("") && !env_name_ok("1X") && !env_name_ok("A-B"));
    assert_eq!(env_var("A=b=c").ok(), Some(("A", "b=c")));
    assert_eq!(env_var("A=").ok(), Some(("A", "")));
    for bad in ["A", "=x", "1A=x", "A=x\ny"] {
        assert!(
            matches!(env_var(bad), Err(Error::InvalidInput(m)) if m.contains("NAME=value")),
            "{bad}"
        );
    }
    assert_eq!(
        shell_exports(&strings(&["HTTP_PROXY=http://p:3128", "A=it's"])).ok(),
        Some("export HTTP_PROXY=http://p:3128\nexport A='it'\\''s'\n".into())
    );
    assert!(shell_exports(&strings(&["BAD"])).is_err());
}

#[test]
fn hostnames() {
    assert!(validate_hostname("n1").is_ok());
    assert!(validate_hostname("web-1.example.com").is_ok());
    for bad in ["", "-a", "a-", "a..b", "a b", "a;b", "a_b", &"x".repeat(64)] {
        assert!(validate_hostname(bad).is_err(), "{bad}");
    }
    let s = hostname_script("web.example").expect("valid");
    assert!(
        s.contains("hostname web.example 2>/dev/null || hostnamectl set-hostname web.example\n")
    );
    assert!(s.contains("printf '%s\\n' web.example > /etc/hostname\n"));
    assert!(s.contains("[[:space:]]web\\.example([[:space:]]|$)' /etc/hosts"));
    assert!(s.contains("s/^127\\.0\\.1\\.1[[:space:]].*/127.0.1.1 web.example/"));
    assert!(s.contains("printf '127.0.1.1 %s\\n' web.example >> /etc/hosts"));
    assert!(!s.contains("sysconfig"));

    let el = hostname_script_with(
        "web-1",
        HostnameOptions {
            sysconfig_network: true,
        },
    )
    .expect("valid");
    assert!(el.starts_with(&hostname_script("web-1").expect("valid")));
    assert!(el.contains("sed -i 's/^HOSTNAME=.*/HOSTNAME=web-1/' /etc/sysconfig/network\n"));
    assert!(el.contains("printf '%s\\n' HOSTNAME=web-1 >> /etc/sysconfig/network\n"));
    assert!(
        hostname_script_with(
            "a b",
            HostnameOptions {
                sysconfig_network: true
            }
        )
        .is_err()
    );
}

#[test]
fn listening_parsers() {
    let ss = "State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n\
              LISTEN 0      128          0.0.0.0:22        0.0.0.0:*\n\
              LISTEN 0      4096               *:2376            *:*\n";
    assert!(listening_on(ss, 2376));
    assert!(listening_on(ss, 22));
    assert!(!listening_on(ss, 23760));
    assert!(!listening_on(ss, 376));
    let netstat = "Active Internet connections (only servers)\n\
                   Proto Recv-Q Send-Q Local Address Foreign Address State\n\
                   tcp6       0      0 :::2376                 :::*                    LISTEN\n";
    assert!(listening_on(netstat, 2376));
    let proc = "  sl  local_address rem_address   st tx_queue rx_queue\n\
                0: 00000000:0016 00000000:0000 0A 00000000:00000000\n\
                1: 0100007F:0948 0100007F:9C40 01 00000000:00000000\n";
    assert!(listening_on(proc, 22));
    assert!(
        !listening_on(proc, 2376),
        "an established connection is not a listener"
    );
    let proc6 =
        "   0: 00000000000000000000000000000000:0948 00000000000000000000000000000000:0000 0A 0\n";
    assert!(listening_on(proc6, 2376));
    assert!(!listening_on("dmw-unit-state active\n", 2376));
}

#[test]
fn systemd_poll_is_unchanged() {
    let poll = systemd::with_watch("docker.service", 2376, poll_command);
    assert!(poll.starts_with("if command -v ss >/dev/null 2>&1; then ss -tln;"));
    assert!(
        poll.ends_with(
            "; echo \"dmw-unit-state $(systemctl is-active docker.service 2>/dev/null)\""
        )
    );
    assert_eq!(poll_state("LISTEN x\ndmw-unit-state failed\n"), "failed");
    assert_eq!(poll_state("dmw-unit-state\n"), "");
    assert_eq!(poll_state("nothing"), "");
}

#[test]
fn wait_listening_succeeds_and_fails_with_journal() {
    mock::reset();
    let mut n = 0;
    mock::on_exec(move |cmd, _| {
        n += 1;
        let listing = if n >= 3 {
            "LISTEN 0 4096 *:2376 *:*\n"
        } else {
            ""
        };
        assert!(cmd.contains("ss -tln"));
        Ok((
            0,
            format!("{listing}dmw-unit-state activating\n"),
            String::new(),
        ))
    });
    assert!(wait_listening(2376, "docker.service").is_ok());
    assert_eq!(mock::sleeps().len(), 2);

    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.contains("journalctl") {
            (
                0,
                "dockerd: unable to configure the Docker daemon".into(),
                String::new(),
            )
        } else {
            (0, "dmw-unit-state failed\n".into(), String::new())
        })
    });
    let err = wait_listening(2376, "docker.service").expect_err("must fail");
    let Error::Failed(m) = err else {
        panic!("kind")
    };
    assert!(m.contains("docker.service failed to start"), "{m}");
    assert!(m.contains("unable to configure the Docker daemon"), "{m}");
    assert!(
        m.contains("then provision the machine again.\ndockerd: unable"),
        "the advice before the log: {m}"
    );
    assert!(mock::sleeps().len() < 3, "stops early when the unit failed");

    mock::reset();
    mock::on_exec(|_, _| Ok((0, "dmw-unit-state activating\n".into(), String::new())));
    let Err(Error::Failed(m)) = wait_listening(2376, "docker.service") else {
        panic!("kind")
    };
    assert!(
        m.contains("after 60 s (docker.service is activating)"),
        "{m}"
    );
    assert_eq!(mock::sleeps().len(), 59);
}

#[test]
fn service_wait_for_other_init_systems() {
    // sysvinit/OpenRC-like: a state command and states that stop the wait.
    let watch = ServiceWatch {
        service: "the docker service",
        state_command: "rc-service docker status 2>&1 | sed -n 's/.*status: *//p'",
        stopped: &[("stopped", "stopped"), ("crashed", "crashed")],
        diagnostics: "tail -n 30 /var/log/docker.log",
        reset: "",
        advice: "Fix it.",
    };
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.starts_with("tail") {
            (0, "failed to load listeners".into(), "tail: warning".into())
        } else {
            assert!(cmd.contains("echo \"dmw-unit-state $(rc-service docker status"));
            (0, "dmw-unit-state crashed\n".into(), String::new())
        })
    });
    let Err(Error::Failed(m)) = wait_service_listening(2376, &watch) else {
        panic!("kind")
    };
    assert!(m.contains(": the docker service crashed.\n"), "{m}");
    assert!(
        m.contains("Fix it.\nfailed to load listeners\ntail: warning"),
        "{m}"
    );
    assert!(mock::sleeps().is_empty());

    // No service manager to ask: the poll is the listing alone; only a time-out ends it.
    let watch = ServiceWatch {
        service: "the engine",
        state_command: "",
        stopped: &[],
        diagnostics: "cat /var/log/docker.log",
        reset: "",
        advice: "Fix it.",
    };
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd == LISTING {
            (0, String::new(), String::new())
        } else {
            (0, "level=fatal".into(), String::new())
        })
    });
    let Err(Error::Failed(m)) = wait_service_listening(2376, &watch) else {
        panic!("kind")
    };
    assert!(
        m.contains("nothing listens on port 2376 after 60 s.\nFix it.\nlevel=fatal"),
        "{m}"
    );
    assert_eq!(mock::sleeps().len() as u32, LISTEN_ATTEMPTS - 1);

    // A restart that fails twice (once more after a pause) reports the diagnostics.
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd == "service docker restart" {
            (1, String::new(), "Starting docker: [FAILED]".into())
        } else {
            (0, "docker dead but pid file exists".into(), String::new())
        })
    });
    let err = restart_service_and_wait("service docker restart", 2376, &watch).expect_err("fails");
    assert!(err.message().contains("Fix it.\nssh command error"));
    assert!(
        err.message()
            .contains("[FAILED]\ndocker dead but pid file exists")
    );
    let restarts = mock::commands()
        .iter()
        .filter(|(c, _)| c == "service docker restart")
        .count();
    assert_eq!(restarts, 2, "tried once more");
    assert_eq!(mock::sleeps(), vec![RETRY_PAUSE]);
}

/// A restart that fails once (what the engine needs is not up yet on a fresh host) is
/// retried after a pause, past systemd's start limit, saying why; the second one works.
#[test]
fn a_failed_restart_is_retried_once_saying_why() {
    mock::reset();
    let restarts = std::rc::Rc::new(std::cell::Cell::new(0));
    let r = restarts.clone();
    mock::on_exec(move |cmd, _| {
        Ok(if cmd.contains("systemctl restart docker.service") {
            r.set(r.get() + 1);
            if r.get() == 1 {
                (1, String::new(), "Job for docker.service failed".into())
            } else {
                (0, String::new(), String::new())
            }
        } else if cmd.contains("journalctl") {
            (
                0,
                concat!(
                    "Dec 07 10:00:01 h dockerd[812]: time=\"2026-12-07T10:00:01Z\" level=error msg=\"grpc: addrConn.createTransport failed to connect\" module=grpc\n",
                    "Dec 07 10:00:01 h dockerd[812]: failed to start daemon: error while opening volume store metadata database: timeout\n",
                    "Dec 07 10:00:01 h systemd[1]: docker.service: Main process exited, code=exited, status=1/FAILURE\n",
                )
                .into(),
                String::new(),
            )
        } else if cmd.contains("ss -tln") {
            (0, "LISTEN 0 4096 *:2376 *:*\n".into(), String::new())
        } else {
            (0, String::new(), String::new())
        })
    });
    super::systemd::restart_and_wait(2376).expect("second restart works");
    assert_eq!(restarts.get(), 2);
    let cmds: Vec<String> = mock::commands().into_iter().map(|(c, _)| c).collect();
    let reset = cmds
        .iter()
        .position(|c| c == "systemctl reset-failed docker.service")
        .expect("reset-failed before the retry");
    assert!(
        cmds[reset + 1].contains("systemctl restart docker.service"),
        "{cmds:?}"
    );
    let warned = mock::logs()
        .into_iter()
        .any(|(_, m)| {
            m == "docker.service did not start (failed to start daemon: error while opening volume store metadata database: timeout); trying once more in 5 s"
        });
    assert!(warned, "{:?}", mock::logs());
}

#[test]
fn the_cause_line_is_dockerds_fatal_line_not_grpc_noise() {
    let log = concat!(
        "× docker.service - Docker Application Container Engine\n",
        "Dec 07 10:00:01 h dockerd[9]: time=\"x\" level=error msg=\"grpc: failed to dial\" module=grpc\n",
        "Dec 07 10:00:01 h dockerd[9]: unable to configure the Docker daemon with file /etc/docker/daemon.json: the following directives don't match any configuration option: bogus\n",
        "Dec 07 10:00:02 h systemd[1]: Failed to start docker.service.\n",
    );
    assert_eq!(
        cause_line(log).as_deref(),
        Some(
            "unable to configure the Docker daemon with file /etc/docker/daemon.json: the following directives don't match any configuration option: bogus"
        )
    );
    // No fatal line: the last error that is not gRPC's.
    let log = "dockerd[9]: time=\"x\" level=error msg=\"failed to mount overlay: invalid argument\"\ndockerd[9]: level=error msg=\"x\" module=grpc\n";
    assert_eq!(
        cause_line(log).as_deref(),
        Some("time=\"x\" level=error msg=\"failed to mount overlay: invalid argument\"")
    );
    assert_eq!(cause_line("systemd[1]: Stopped docker.service.\n"), None);
    // Neither: dockerd's last line that is not routine.
    let log = "dockerd[9]: time=\"x\" level=info msg=\"Starting up\"\ndockerd[9]: failed to load listeners: listen tcp 0.0.0.0:2376: bind: address already in use\nsystemd[1]: docker.service: Failed.\n";
    assert_eq!(
        cause_line(log).as_deref(),
        Some("failed to load listeners: listen tcp 0.0.0.0:2376: bind: address already in use")
    );
}

#[test]
fn systemd_configure_flow() {
    // docker.socket exists and the unit uses fd://: keep socket activation.
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.contains("ss -tln") {
            (0, "LISTEN 0 4096 *:2377 *:*\n".into(), String::new())
        } else {
            (0, String::new(), String::new())
        })
    });
    assert_eq!(systemd::prepare_socket().ok(), Some(UnixSocket::Activated));
    systemd::apply("[Service]\n", 2377, &certs()).expect("applied");
    let c = cmds();
    assert!(c[0].contains("systemctl cat docker.socket") && c[0].contains("grep -q 'fd://'"));
    assert_eq!(
        c[1],
        "systemctl unmask docker.socket && systemctl enable docker.socket"
    );
    assert_eq!(
        c[2],
        "rm -f /etc/systemd/system/docker.service.d/10-machine.conf && systemctl daemon-reload && systemctl enable docker.service"
    );
    assert_eq!(
        c[3],
        "systemctl daemon-reload && systemctl restart docker.service"
    );
    assert!(c[4].contains("ss -tln"));
    let ups = mock::uploads();
    assert_eq!((ups[0].path.as_str(), ups[0].mode), (DROPIN_PATH, 0o644));
    assert_eq!(
        mock::store().get(PORT_KEY).map(String::as_str),
        Some("2377")
    );

    // No socket unit (SUSE, CentOS 7): dockerd binds the socket; nothing is enabled.
    mock::reset();
    mock::on_exec(|_, _| Ok((1, String::new(), String::new())));
    assert_eq!(
        systemd::prepare_socket().ok(),
        Some(UnixSocket::Path("/var/run/docker.sock"))
    );
    assert_eq!(mock::commands().len(), 1);

    // A failed restart carries the journal and the advice.
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd.contains("systemctl restart") {
            (1, String::new(), "Job for docker.service failed".into())
        } else if cmd.contains("journalctl") {
            (0, "failed to start daemon: bad cert".into(), String::new())
        } else {
            (0, String::new(), String::new())
        })
    });
    let err = systemd::restart_and_wait(2376).expect_err("fails");
    let m = err.message();
    assert!(
        m.starts_with(
            "docker.service did not start: failed to start daemon: bad cert\nFix the cause the log below shows"
        ),
        "{m}"
    );
    assert!(
        m.contains("Job for docker.service failed\nfailed to start daemon: bad cert"),
        "{m}"
    );
    assert!(!cmds().iter().any(|c| c.contains("ss -tln")));
}

#[test]
fn finds_dockerd() {
    mock::reset();
    mock::on_exec(|_, _| Ok((0, "/usr/sbin/dockerd\n".into(), String::new())));
    assert_eq!(
        find_dockerd().ok().flatten().as_deref(),
        Some("/usr/sbin/dockerd")
    );
    assert_eq!(require_dockerd().ok().as_deref(), Some("/usr/sbin/dockerd"));
    assert_eq!(keep_installed().ok(), Some(true));
    assert!(
        mock::logs()
            .iter()
            .any(|(_, m)| m.contains("already installed"))
    );
    assert_eq!(
        installed_dockerd().ok().as_deref(),
        Some("/usr/sbin/dockerd")
    );
    mock::on_exec(|_, _| Ok((0, "\n".into(), String::new())));
    assert_eq!(find_dockerd().ok().flatten(), None);
    assert_eq!(keep_installed().ok(), Some(false));
    assert!(matches!(require_dockerd(), Err(Error::Failed(m)) if m.contains("not installed")));
    assert!(matches!(installed_dockerd(), Err(Error::Failed(m)) if m.contains("still not found")));
    assert!(FIND_DOCKERD.contains("/usr/bin/dockerd-current"));
    assert!(matches!(unmanaged_upgrade(), Error::Unsupported(_)));
}

/// The dockerd-current fallback works in a real shell (a fake PATH without dockerd).
#[test]
fn find_dockerd_script_runs() {
    let Ok(out) = std::process::Command::new("sh")
        .arg("-c")
        .arg(FIND_DOCKERD)
        .env("PATH", "/nonexistent")
        .output()
    else {
        return;
    };
    let path = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(path.is_empty() || path.trim().starts_with('/'), "{path}");
}

#[test]
fn daemon_json_conflict() {
    mock::reset();
    mock::on_exec(|_, _| Ok((1, String::new(), String::new())));
    assert!(check_daemon_json().is_ok());
    mock::on_exec(|_, _| Ok((0, String::new(), String::new())));
    assert!(matches!(check_daemon_json(), Err(Error::Failed(m)) if m.contains("\"hosts\"")));
    assert!(cmds()[0].contains("grep -q '\"hosts\"' /etc/docker/daemon.json"));
}

#[test]
fn ports_and_certs() {
    mock::reset();
    assert_eq!(stored_port(2377).ok(), Some(2377));
    remember_port(2400);
    assert_eq!(stored_port(2377).ok(), Some(2400));
    remember_port(0);
    assert_eq!(stored_port(2377).ok(), Some(DEFAULT_PORT));
    assert!(
        mock::logs()
            .iter()
            .any(|(l, m)| *l == Level::Warn && m.contains("port is 0"))
    );
    let tls = install_certs("/var/lib/boot2docker").expect("certs");
    assert_eq!(tls.ca_path, "/var/lib/boot2docker/ca.pem");
}

#[test]
fn urls() {
    assert!(check_url("u", "https://get.docker.com").is_ok());
    assert!(check_url("u", "http://mirror.local/linux/").is_ok());
    for bad in [
        "ftp://x",
        "https://a b",
        "https://x/'y",
        "https://x/\"",
        "get.docker.com",
        "https://x\n",
    ] {
        assert!(
            matches!(check_url("the URL", bad), Err(Error::InvalidInput(m)) if m.starts_with("the URL")),
            "{bad}"
        );
    }
}

#[test]
fn script_is_downloaded_then_run() {
    mock::reset();
    let mut prepared = false;
    install_script("", "", || {
        prepared = true;
        Ok(())
    })
    .expect("ran");
    assert!(prepared);
    let c = cmds();
    assert_eq!(c.len(), 1);
    assert!(c[0].starts_with("f=$(mktemp /tmp/dmw-install-docker.XXXXXX) || exit 1;"));
    assert!(c[0].contains("curl -fsSL https://get.docker.com -o \"$f\" && sh \"$f\""));
    assert!(c[0].contains("wget -q -O \"$f\" https://get.docker.com && sh \"$f\""));
    assert!(c[0].ends_with("rm -f \"$f\"; exit $rc"));
    assert!(!c[0].contains("| sh"));

    // A bad URL is refused before `prepare` or anything on the machine.
    mock::reset();
    let err = install_script("ftp://x y", "", || panic!("not prepared")).expect_err("bad url");
    assert!(matches!(err, Error::InvalidInput(_)));
    assert!(mock::commands().is_empty());

    // A failing script's error carries the hint.
    mock::reset();
    mock::on_exec(|_, _| Ok((1, String::new(), "ERROR: Unsupported distribution".into())));
    let err =
        install_script("https://get.docker.com/", "use `distro`", || Ok(())).expect_err("fails");
    assert!(
        err.message()
            .starts_with("the Docker install script failed (use `distro`): ssh command error"),
        "{}",
        err.message()
    );
}

/// The script really runs: downloads with wget when there is no curl, runs the file with sh,
/// removes it; and says so when neither tool exists. Uses a PATH holding only fakes.
#[test]
fn script_command_runs_in_a_shell() {
    use std::process::Command;
    let dir = std::env::temp_dir().join(format!("dmw-script-test-{}", std::process::id()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("temp dir");
    for tool in ["mktemp", "rm", "sh"] {
        let Ok(out) = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
        else {
            return;
        };
        let real = String::from_utf8_lossy(&out.stdout).trim().to_string();
        std::os::unix::fs::symlink(real, bin.join(tool)).expect("symlink");
    }
    let run = |bin: &std::path::Path| {
        Command::new(bin.join("sh"))
            .arg("-c")
            .arg(script_command("https://example.invalid/install.sh"))
            .env("PATH", bin)
            .output()
            .expect("sh runs")
    };
    let out = run(&bin);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither curl nor wget"));

    // wget -q -O FILE URL: the fake writes a script that prints a marker.
    let wget = bin.join("wget");
    std::fs::write(&wget, "#!/bin/sh\nprintf 'echo ran-by-sh\\n' > \"$3\"\n").expect("fake");
    let chmod = Command::new("chmod").arg("+x").arg(&wget).status();
    assert!(chmod.map(|s| s.success()).unwrap_or(false));
    let out = run(&bin);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran-by-sh\n");
    let _ = std::fs::remove_dir_all(&dir);
}
