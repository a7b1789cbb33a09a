//! The recipe against the sdk's scripted host.

use super::*;
use dmw_guest::mock;

dmw_guest::recipe_test_fixtures!();

fn os(id: &str) -> OsInfo {
    OsInfo {
        version_id: "19.03.12".into(),
        pretty_name: "Boot2Docker 19.03.12 (TCL 10.1)".into(),
        ..os_info(id, &[])
    }
}

fn config(method: InstallMethod) -> EngineConfig {
    EngineConfig {
        install_url: String::new(),
        labels: vec!["provider=virtualbox".into()],
        insecure_registries: vec!["reg.local:5000".into()],
        registry_mirrors: vec!["https://mirror.local".into()],
        extra_flags: vec!["log-level=debug".into()],
        env: vec!["HTTP_PROXY=http://p:3128".into(), "A=it's".into()],
        ..engine_config(os("boot2docker"), method)
    }
}

/// A boot2docker machine whose engine listens once restarted.
fn machine() {
    let mut restarted = false;
    mock::on_exec(move |cmd, root| {
        assert!(root, "every recipe command runs as root: {cmd}");
        let ok = |s: &str| Ok((0, s.to_string(), String::new()));
        if cmd == RESTART {
            restarted = true;
        }
        if cmd.contains("command -v dockerd") {
            return ok("/usr/local/bin/dockerd\n");
        }
        if cmd == engine::LISTING {
            return ok(if restarted {
                "tcp        0      0 :::2376                 :::*                    LISTEN\n"
            } else {
                ""
            });
        }
        ok("")
    });
}

#[test]
fn applies_scores() {
    assert_eq!(Boot2Docker::applies(os("boot2docker")), 100);
    assert_eq!(Boot2Docker::applies(os("tinycore")), 0);
}

#[test]
fn configure_writes_docker_machines_profile() {
    mock::reset();
    machine();
    Boot2Docker::configure_engine(config(InstallMethod::Distro)).expect("configure");
    let ups = mock::uploads();
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].path, PROFILE);
    let expected = "EXTRA_ARGS='\n--label provider=virtualbox\n--insecure-registry reg.local:5000\n\
        --registry-mirror https://mirror.local\n--log-level=debug\n'\n\
        CACERT=/var/lib/boot2docker/ca.pem\nDOCKER_HOST='-H tcp://0.0.0.0:2376'\n\
        DOCKER_STORAGE=overlay2\nDOCKER_TLS=auto\nSERVERKEY=/var/lib/boot2docker/server-key.pem\n\
        SERVERCERT=/var/lib/boot2docker/server.pem\n\n\
        export HTTP_PROXY=http://p:3128\nexport A='it'\\''s'\n";
    assert!(ups[0].contents.ends_with(expected), "{}", ups[0].contents);
    let cmds: Vec<String> = mock::commands().into_iter().map(|(c, _)| c).collect();
    assert_eq!(cmds.first().map(String::as_str), Some(RESTART));
    assert_eq!(
        mock::store().get("engine-port").map(String::as_str),
        Some("2376")
    );
    Boot2Docker::restart_engine().expect("restart");
}

#[test]
fn options_that_the_init_script_would_split_are_refused() {
    mock::reset();
    let mut c = config(InstallMethod::Distro);
    c.labels = vec!["team=a b".into()];
    let err = Boot2Docker::configure_engine(c).expect_err("space");
    assert!(matches!(&err, Error::InvalidInput(m) if m.contains("splits EXTRA_ARGS")));
    let mut c = config(InstallMethod::Distro);
    c.extra_flags = vec!["data-root=$HOME".into()];
    assert!(Boot2Docker::configure_engine(c).is_err());
    let mut c = config(InstallMethod::Distro);
    c.env = vec!["1BAD=x".into()];
    assert!(Boot2Docker::configure_engine(c).is_err());
    assert!(mock::uploads().is_empty() && mock::commands().is_empty());
}

#[test]
fn install_and_upgrade() {
    mock::reset();
    machine();
    Boot2Docker::install_engine(config(InstallMethod::None)).expect("shipped");
    Boot2Docker::install_engine(config(InstallMethod::Auto)).expect("auto is the shipped engine");
    assert!(matches!(
        Boot2Docker::install_engine(config(InstallMethod::Script)),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        Boot2Docker::upgrade_engine(config(InstallMethod::Distro)),
        Err(Error::Unsupported(m)) if m.contains("newer boot2docker ISO")
    ));
}

#[test]
fn hostname() {
    mock::reset();
    Boot2Docker::set_hostname("web-1".into()).expect("hostname");
    assert_eq!(mock::commands()[0].0, "/usr/bin/sethostname web-1");
    let ups = mock::uploads();
    assert_eq!(ups[0].path, HOSTNAME_FILE);
    assert_eq!(ups[0].contents, "web-1\n");
    assert!(Boot2Docker::set_hostname("x;y".into()).is_err());
}
