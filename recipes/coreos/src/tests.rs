//! The recipe against the sdk's scripted host.

use super::*;
use dmw_guest::mock;

dmw_guest::recipe_test_fixtures!();

/// Flatcar's stock docker.service (3xxx).
const FLATCAR_UNIT: &str = "[Unit]\nDescription=Docker Application Container Engine\n\
    After=containerd.service docker.socket network-online.target\n\
    Requires=containerd.service docker.socket\n\n[Service]\nType=notify\n\
    EnvironmentFile=-/run/flannel/flannel_docker_opts.env\n\
    Environment=DOCKER_SELINUX=--selinux-enabled=true\n\
    ExecStart=/usr/bin/dockerd --host=fd:// --containerd=/var/run/docker/libcontainerd/docker-containerd.sock $DOCKER_SELINUX $DOCKER_OPTS $DOCKER_CGROUPS $DOCKER_OPT_BIP $DOCKER_OPT_MTU $DOCKER_OPT_IPMASQ\n\
    ExecReload=/bin/kill -s HUP $MAINPID\n\n[Install]\nWantedBy=multi-user.target\n";

/// Fedora CoreOS's moby-engine docker.service.
const FCOS_UNIT: &str = "[Service]\nType=notify\nEnvironmentFile=-/etc/sysconfig/docker\n\
    ExecStart=/usr/bin/dockerd \\\n          --host=fd:// \\\n          \
    --exec-opt native.cgroupdriver=systemd \\\n          $OPTIONS\nExecReload=/bin/kill -s HUP $MAINPID\n";

/// Container Linux with torcx.
const TORCX_UNIT: &str = "[Service]\nEnvironmentFile=/run/metadata/torcx\n\
    ExecStart=/usr/bin/env PATH=${TORCX_BINDIR}:${PATH} ${TORCX_BINDIR}/dockerd --host=fd:// $DOCKER_OPTS\n";

fn os(id: &str, fields: &[(&str, &str)]) -> OsInfo {
    OsInfo {
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..os_info(id, &[])
    }
}

fn config(os: OsInfo, method: InstallMethod) -> EngineConfig {
    EngineConfig {
        install_url: String::new(),
        ..engine_config(os, method)
    }
}

/// A machine whose probe answers `probe` and whose engine listens once restarted.
fn machine(probe: &'static str) {
    let mut restarted = false;
    mock::on_exec(move |cmd, root| {
        assert!(root, "every recipe command runs as root: {cmd}");
        let ok = |s: &str| Ok((0, s.to_string(), String::new()));
        if cmd.contains("dmw-unit-file") {
            return ok(probe);
        }
        if cmd.contains("daemon.json") {
            return Ok((1, String::new(), String::new()));
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
        ok("")
    });
}

fn probe_output(dockerd: &str, unit: &str) -> &'static str {
    Box::leak(format!("{dockerd}dmw-unit-file\n{unit}").into_boxed_str())
}

#[test]
fn applies_scores() {
    assert_eq!(CoreOs::applies(os("flatcar", &[])), 100);
    assert_eq!(CoreOs::applies(os("coreos", &[])), 100);
    assert_eq!(
        CoreOs::applies(os("fedora", &[("VARIANT_ID", "coreos")])),
        100
    );
    assert_eq!(
        CoreOs::applies(os("fedora", &[("VARIANT_ID", "workstation")])),
        0
    );
    assert_eq!(CoreOs::applies(os("fedora", &[])), 0);
    let mut like = os("mycorp", &[]);
    like.id_like = vec!["flatcar".into()];
    assert_eq!(CoreOs::applies(like), 50);
    assert_eq!(CoreOs::applies(os("debian", &[])), 0);
}

#[test]
fn unit_parsing_keeps_os_options_and_drops_hosts() {
    let f = unit::exec_start(FLATCAR_UNIT).expect("flatcar");
    assert_eq!(f.program, "/usr/bin/dockerd");
    assert_eq!(
        f.kept.join(" "),
        "--containerd=/var/run/docker/libcontainerd/docker-containerd.sock $DOCKER_SELINUX \
         $DOCKER_OPTS $DOCKER_CGROUPS $DOCKER_OPT_BIP $DOCKER_OPT_MTU $DOCKER_OPT_IPMASQ"
    );
    let f = unit::exec_start(FCOS_UNIT).expect("fcos");
    assert_eq!(f.program, "/usr/bin/dockerd");
    assert_eq!(
        f.kept.join(" "),
        "--exec-opt native.cgroupdriver=systemd $OPTIONS"
    );
    let f = unit::exec_start(TORCX_UNIT).expect("torcx");
    assert_eq!(f.program, "${TORCX_BINDIR}/dockerd");
    assert_eq!(f.kept, vec!["$DOCKER_OPTS".to_string()]);
    let f = unit::exec_start(
        "[Service]\nExecStart=-/usr/bin/dockerd -H fd:// -H=tcp://x --debug \"--label=a b\"\n",
    )
    .expect("quoted");
    assert_eq!(
        f.kept,
        vec!["--debug".to_string(), "\"--label=a b\"".into()]
    );
    assert!(unit::exec_start("[Unit]\nExecStart=/x\n").is_none());
    assert!(unit::exec_start("").is_none());
}

#[test]
fn repo_and_script_are_refused_upgrade_explains() {
    mock::reset();
    let err = CoreOs::install_engine(config(os("flatcar", &[]), InstallMethod::Repo))
        .expect_err("repo refused");
    assert!(matches!(&err, Error::Unsupported(m) if m.contains("immutable")));
    assert!(
        mock::commands().is_empty(),
        "refused before touching the machine"
    );
    let err = CoreOs::install_engine(config(
        os("fedora", &[("VARIANT_ID", "coreos")]),
        InstallMethod::Script,
    ))
    .expect_err("script refused");
    assert!(err.message().contains("rpm-ostree"));
    let err = CoreOs::upgrade_engine(config(os("flatcar", &[]), InstallMethod::Distro))
        .expect_err("upgrade refused");
    assert!(matches!(&err, Error::Unsupported(m) if m.contains("update the OS")));
}

#[test]
fn install_accepts_the_shipped_engine() {
    mock::reset();
    machine(probe_output(
        "dmw-dockerd /usr/bin/dockerd /usr/bin/dockerd\n",
        FLATCAR_UNIT,
    ));
    CoreOs::install_engine(config(os("flatcar", &[]), InstallMethod::Distro)).expect("distro");
    CoreOs::install_engine(config(os("flatcar", &[]), InstallMethod::None)).expect("none");
    CoreOs::install_engine(config(os("flatcar", &[]), InstallMethod::Auto)).expect("auto");
    mock::reset();
    machine(probe_output("", ""));
    let err = CoreOs::install_engine(config(os("flatcar", &[]), InstallMethod::Distro))
        .expect_err("no dockerd");
    assert!(
        err.message().contains("not on the machine"),
        "{}",
        err.message()
    );
}

#[test]
fn configure_flatcar_keeps_stock_options() {
    mock::reset();
    machine(probe_output(
        "dmw-dockerd /usr/bin/dockerd /usr/bin/dockerd\n",
        FLATCAR_UNIT,
    ));
    CoreOs::configure_engine(config(os("flatcar", &[]), InstallMethod::Distro)).expect("ok");
    let ups = mock::uploads();
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].path, engine::DROPIN_PATH);
    let text = &ups[0].contents;
    assert!(
        text.contains(
            "ExecStart=\nExecStart=/usr/bin/dockerd -H tcp://0.0.0.0:2376 -H fd:// --tlsverify \
             --tlscacert /etc/docker/ca.pem --tlscert /etc/docker/server.pem --tlskey \
             /etc/docker/server-key.pem --label provider=generic \
             --containerd=/var/run/docker/libcontainerd/docker-containerd.sock $DOCKER_SELINUX \
             $DOCKER_OPTS $DOCKER_CGROUPS $DOCKER_OPT_BIP $DOCKER_OPT_MTU $DOCKER_OPT_IPMASQ\n"
        ),
        "{text}"
    );
    assert!(!text.contains("PATH="));
    let cmds: Vec<String> = mock::commands().into_iter().map(|(c, _)| c).collect();
    let pos = |n: &str| {
        cmds.iter()
            .position(|c| c.contains(n))
            .unwrap_or(usize::MAX)
    };
    assert!(pos("systemctl enable docker.socket") < pos("systemctl restart docker.service"));
    assert!(pos("systemctl restart docker.service") < pos("ss -tln"));
    assert_eq!(
        mock::store().get("engine-port").map(String::as_str),
        Some("2376")
    );
    CoreOs::restart_engine().expect("restart");
}

#[test]
fn configure_fcos_and_torcx() {
    mock::reset();
    machine(probe_output(
        "dmw-dockerd /usr/bin/dockerd /usr/bin/dockerd\n",
        FCOS_UNIT,
    ));
    CoreOs::configure_engine(config(
        os("fedora", &[("VARIANT_ID", "coreos")]),
        InstallMethod::Distro,
    ))
    .expect("fcos");
    assert!(
        mock::uploads()[0]
            .contents
            .contains("--label provider=generic --exec-opt native.cgroupdriver=systemd $OPTIONS\n")
    );

    mock::reset();
    machine(probe_output(
        "dmw-dockerd /usr/bin/dockerd /run/torcx/unpack/docker/bin/dockerd\n",
        TORCX_UNIT,
    ));
    CoreOs::configure_engine(config(os("coreos", &[]), InstallMethod::Distro)).expect("torcx");
    let text = &mock::uploads()[0].contents;
    assert!(
        text.contains("ExecStart=/usr/bin/dockerd -H tcp://0.0.0.0:2376"),
        "{text}"
    );
    assert!(
        text.contains("Environment=\"PATH=/run/torcx/bin:"),
        "{text}"
    );
    assert!(text.contains(" $DOCKER_OPTS\n"), "{text}");
}

#[test]
fn hostname_uses_hostnamectl() {
    mock::reset();
    CoreOs::set_hostname("web-1".into()).expect("hostname");
    assert_eq!(mock::commands()[0].0, "hostnamectl set-hostname web-1");
    assert!(CoreOs::set_hostname("bad name".into()).is_err());
}
