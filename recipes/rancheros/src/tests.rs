//! The recipe against the sdk's scripted host.

use super::*;
use dmw_guest::mock;

dmw_guest::recipe_test_fixtures!();

fn os(id: &str) -> OsInfo {
    OsInfo {
        version_id: "v1.5.8".into(),
        pretty_name: "RancherOS v1.5.8".into(),
        ..os_info(id, &[])
    }
}

fn config(method: InstallMethod) -> EngineConfig {
    EngineConfig {
        install_url: String::new(),
        labels: vec!["provider=generic".into(), "team=a \"b\"".into()],
        insecure_registries: vec!["reg.local:5000".into()],
        extra_flags: vec!["log-level=debug".into()],
        env: vec!["HTTP_PROXY=http://p:3128".into()],
        ..engine_config(os("rancheros"), method)
    }
}

/// A RancherOS machine whose engine listens once restarted.
fn machine(legacy: bool) {
    let mut restarted = false;
    mock::on_exec(move |cmd, root| {
        assert!(root, "every recipe command runs as root: {cmd}");
        let ok = |s: &str| Ok((0, s.to_string(), String::new()));
        if cmd == RESTART {
            restarted = true;
        }
        if cmd == engine::LISTING {
            return ok(if restarted {
                "Proto Recv-Q Send-Q Local Address Foreign Address State\n\
                 tcp        0      0 :::2376                 :::*                    LISTEN\n"
            } else {
                ""
            });
        }
        if cmd == LEGACY_OPTIONS && legacy {
            return ok("moved\n");
        }
        ok("")
    });
}

#[test]
fn applies_scores() {
    assert_eq!(RancherOs::applies(os("rancheros")), 100);
    assert_eq!(RancherOs::applies(os("RancherOS")), 100);
    assert_eq!(RancherOs::applies(os("debian")), 0);
}

#[test]
fn configure_merges_the_engine_options() {
    mock::reset();
    machine(true);
    RancherOs::configure_engine(config(InstallMethod::Distro)).expect("configure");
    let ups = mock::uploads();
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].path, DMW_CONFIG);
    let yml = &ups[0].contents;
    assert!(yml.starts_with("#cloud-config\n"), "{yml}");
    assert!(
        yml.contains("rancher:\n  docker:\n    tls: false\n"),
        "{yml}"
    );
    assert!(
        yml.contains(
            "    extra_args: [\"-H\", \"tcp://0.0.0.0:2376\", \"--tlsverify\", \"--tlscacert\", \
             \"/var/lib/rancher/conf/ca.pem\", \"--tlscert\", \"/var/lib/rancher/conf/server.pem\", \
             \"--tlskey\", \"/var/lib/rancher/conf/server-key.pem\", \"--label\", \
             \"provider=generic\", \"--label\", \"team=a \\\"b\\\"\", \"--insecure-registry\", \
             \"reg.local:5000\", \"--log-level=debug\"]\n"
        ),
        "{yml}"
    );
    assert!(
        !yml.contains("unix://"),
        "RancherOS binds the socket itself"
    );
    assert!(!yml.contains("storage_driver"), "default kept");
    assert!(yml.contains("    environment: [\"HTTP_PROXY=http://p:3128\"]\n"));
    let cmds: Vec<String> = mock::commands().into_iter().map(|(c, _)| c).collect();
    let pos = |n: &str| cmds.iter().position(|c| c == n).unwrap_or(usize::MAX);
    assert!(pos("ros config merge -i /var/lib/rancher/conf/dmw-docker.yml") < pos(RESTART));
    assert!(pos(RESTART) < cmds.iter().rposition(|c| c == engine::LISTING).unwrap_or(0));
    assert!(
        mock::logs()
            .iter()
            .any(|(_, m)| m.contains("docker.dmw-disabled"))
    );
    assert_eq!(
        mock::store().get("engine-port").map(String::as_str),
        Some("2376")
    );
}

#[test]
fn storage_drivers() {
    mock::reset();
    machine(false);
    let mut c = config(InstallMethod::Distro);
    c.storage_driver = "overlay".into();
    RancherOs::configure_engine(c).expect("overlay is fine");
    assert!(
        mock::uploads()[0]
            .contents
            .contains("    storage_driver: \"overlay\"\n")
    );
    mock::reset();
    let mut c = config(InstallMethod::Distro);
    c.storage_driver = "devicemapper".into();
    let err = RancherOs::configure_engine(c).expect_err("refused");
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.starts_with("Unsupported storage driver: devicemapper")),
        "{err:?}"
    );
    assert!(
        mock::commands().is_empty(),
        "refused before touching the machine"
    );
}

#[test]
fn install_and_upgrade() {
    mock::reset();
    machine(false);
    RancherOs::install_engine(config(InstallMethod::Distro)).expect("shipped");
    RancherOs::install_engine(config(InstallMethod::Auto)).expect("auto is the shipped engine");
    assert!(matches!(
        RancherOs::install_engine(config(InstallMethod::Repo)),
        Err(Error::Unsupported(m)) if m.contains("ros engine switch")
    ));
    assert!(matches!(
        RancherOs::upgrade_engine(config(InstallMethod::Distro)),
        Err(Error::Unsupported(m)) if m.contains("ros os upgrade")
    ));
    mock::reset();
    mock::on_exec(|_, _| Ok((1, String::new(), String::new())));
    let err = RancherOs::install_engine(config(InstallMethod::None)).expect_err("not rancheros");
    assert!(err.message().contains("system-docker"));
}

#[test]
fn times_out_with_the_engine_log() {
    mock::reset();
    mock::on_exec(|cmd, _| {
        Ok(if cmd == DIAGNOSTICS {
            (0, "level=fatal msg=\"bad flag\"".into(), String::new())
        } else {
            (0, String::new(), String::new())
        })
    });
    let err = RancherOs::restart_engine().expect_err("times out");
    assert!(err.message().contains("bad flag"), "{}", err.message());
    assert!(
        err.message()
            .contains("nothing listens on port 2376 after 60 s")
    );
    assert_eq!(mock::sleeps().len() as u32, engine::LISTEN_ATTEMPTS - 1);
}

#[test]
fn hostname_is_set_and_kept_in_cloud_config() {
    mock::reset();
    RancherOs::set_hostname("web-1".into()).expect("hostname");
    assert!(mock::commands()[0].0.contains("hostname web-1 "));
    let ups = mock::uploads();
    assert_eq!(ups[0].path, HOSTNAME_CONFIG);
    assert_eq!(ups[0].contents, "#cloud-config\nhostname: web-1\n");
    assert!(RancherOs::set_hostname("a b".into()).is_err());
}
