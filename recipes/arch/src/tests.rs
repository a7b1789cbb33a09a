//! The recipe against the sdk's scripted host.

use super::*;
use dmw_guest::{Error, mock};

dmw_guest::recipe_test_fixtures!();

fn config(method: InstallMethod) -> EngineConfig {
    EngineConfig {
        env: vec!["HTTP_PROXY=http://proxy:3128".into()],
        ..engine_config(os_info("arch", &[]), method)
    }
}

/// An Arch machine: upstream's units (docker.socket, `-H fd://`); `synced`: whether its
/// package databases know docker.
fn arch_host(installed: bool, synced: bool) {
    let (mut installed, mut synced) = (installed, synced);
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
        if cmd == "pacman --noconfirm --noprogressbar -Sy" {
            synced = true;
            return ok(":: Synchronizing package databases...\n");
        }
        if cmd == "pacman --noconfirm --noprogressbar -S --needed docker" {
            if !synced {
                return Ok((1, String::new(), "error: target not found: docker\n".into()));
            }
            if installed {
                return ok(
                    "warning: docker-1:27.3.1-1 is up to date -- skipping\n there is nothing to do\n",
                );
            }
            installed = true;
            return ok("");
        }
        if cmd == "pacman -Q docker" {
            return if installed {
                ok("docker 1:27.3.1-1\n")
            } else {
                Ok((
                    1,
                    String::new(),
                    "error: package 'docker' was not found\n".into(),
                ))
            };
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

#[test]
fn applies_scores() {
    assert_eq!(Arch::applies(os_info("arch", &[])), 100);
    assert_eq!(Arch::applies(os_info("manjaro", &["arch"])), 50);
    assert_eq!(Arch::applies(os_info("endeavouros", &["arch"])), 50);
    assert_eq!(Arch::applies(os_info("debian", &[])), 0);
    assert_eq!(Arch::applies(os_info("archlabs", &[])), 0);
}

#[test]
fn installs_from_the_local_databases_without_syncing() {
    mock::reset();
    arch_host(false, true);
    Arch::install_engine(config(InstallMethod::Distro)).expect("install");
    let c = cmds();
    assert!(c.contains(&"pacman --noconfirm --noprogressbar -S --needed docker".to_string()));
    assert!(!c.iter().any(|c| c.contains("-Sy")), "{c:?}");
    assert!(
        mock::logs()
            .iter()
            .all(|(l, _)| !matches!(l, dmw_guest::Level::Warn))
    );
}

#[test]
fn syncs_only_when_the_databases_lack_docker_and_warns() {
    mock::reset();
    arch_host(false, false);
    Arch::install_engine(config(InstallMethod::Distro)).expect("install");
    let c = cmds();
    assert!(c.contains(&"pacman --noconfirm --noprogressbar -Sy".to_string()));
    assert!(!c.iter().any(|c| c.contains("-Syu")));
    assert!(
        mock::logs()
            .iter()
            .any(|(l, m)| matches!(l, dmw_guest::Level::Warn) && m.contains("pacman -Syu"))
    );
}

#[test]
fn lock_is_waited_out_and_other_failures_are_reported() {
    mock::reset();
    let mut n = 0;
    mock::on_exec(move |cmd, _| {
        if cmd.contains("-S --needed") {
            n += 1;
            if n == 1 {
                return Ok((1, String::new(), "error: failed to init transaction (unable to lock database)\nerror: could not lock database: File exists\n".into()));
            }
            return Ok((
                1,
                String::new(),
                "error: failed to commit transaction (conflicting files)\n".into(),
            ));
        }
        Ok((0, "\n".into(), String::new()))
    });
    let err = Arch::install_engine(config(InstallMethod::Distro)).expect_err("conflict");
    assert!(err.message().contains("conflicting files"));
    assert_eq!(mock::sleeps().len(), 1);
}

#[test]
fn repo_is_refused() {
    mock::reset();
    let err = Arch::install_engine(config(InstallMethod::Repo)).expect_err("refused");
    assert!(matches!(err, Error::Unsupported(_)));
    assert!(err.message().contains("distro"));
    assert!(mock::commands().is_empty());
}

#[test]
fn configure_keeps_socket_activation() {
    mock::reset();
    arch_host(true, true);
    Arch::configure_engine(config(InstallMethod::Distro)).expect("configure");
    let up = &mock::uploads()[0];
    assert!(
        up.contents
            .contains("ExecStart=/usr/bin/dockerd -H tcp://0.0.0.0:2376 -H fd:// --tlsverify"),
        "{}",
        up.contents
    );
    assert!(
        up.contents
            .contains("Environment=\"HTTP_PROXY=http://proxy:3128\"")
    );
    let c = cmds();
    let pos = |n: &str| c.iter().position(|c| c.contains(n)).unwrap_or(usize::MAX);
    assert!(pos("systemctl enable docker.socket") < pos("systemctl restart docker.service"));
}

#[test]
fn upgrade_never_syncs_and_says_how() {
    mock::reset();
    arch_host(true, true);
    Arch::upgrade_engine(config(InstallMethod::Distro)).expect("upgrade");
    let c = cmds();
    assert!(!c.iter().any(|c| c.contains("-Sy")));
    assert!(mock::logs().iter().any(|(_, m)| m.contains("pacman -Syu")));
    assert!(
        c.iter()
            .any(|c| c.contains("systemctl restart docker.service"))
    );
    mock::reset();
    arch_host(false, true);
    assert!(Arch::upgrade_engine(config(InstallMethod::Distro)).is_err());
}

#[test]
fn auto_installs_archs_package() {
    mock::reset();
    arch_host(false, true);
    Arch::install_engine(config(InstallMethod::Auto)).expect("auto");
    assert!(cmds().contains(&"pacman --noconfirm --noprogressbar -S --needed docker".to_string()));
}
