//! The `arch` recipe: Arch Linux and its derivatives (Manjaro, EndeavourOS…). Installs Arch's
//! `docker` package with pacman (never a full `pacman -Syu`: see [`pacman`]) or runs an install
//! script, and runs the engine under systemd with mutual TLS.

dmw_guest::generate!("recipe-plugin");

#[path = "../../suse/src/common.rs"]
mod common;
mod pacman;
#[path = "../../suse/src/systemd.rs"]
mod systemd;

use dmw_guest::engine::{self, CERT_DIR, DaemonConfig};
use dmw_guest::{Error, Result, info, run_root};
use exports::dmw::plugin::recipe::{EngineConfig, Guest, InstallMethod, OsInfo, RecipeInfo};

/// The Arch-family recipe.
struct Arch;

impl Guest for Arch {
    fn info() -> RecipeInfo {
        RecipeInfo {
            name: "arch".into(),
            description: "Arch Linux, Manjaro, EndeavourOS and derivatives (pacman, systemd)"
                .into(),
        }
    }

    fn applies(os: OsInfo) -> u32 {
        let arch = |s: &str| s.trim().eq_ignore_ascii_case("arch");
        if arch(&os.id) {
            100
        } else if os.id_like.iter().any(|l| arch(l)) {
            50
        } else {
            0
        }
    }

    fn set_hostname(name: String) -> Result<()> {
        run_root(&engine::hostname_script(&name)?).map(drop)
    }

    fn install_engine(config: EngineConfig) -> Result<()> {
        if matches!(config.install_method, InstallMethod::Repo) {
            return Err(Error::Unsupported(
                "the `repo` install method cannot work on Arch Linux: Docker publishes no \
                 packages for it. Use --engine-install-method distro (Arch's own docker \
                 package, from [extra])."
                    .into(),
            ));
        }
        if let Some(path) = engine::find_dockerd()? {
            info(&format!(
                "Docker Engine is already installed ({path}); not installing it"
            ));
            return Ok(());
        }
        match config.install_method {
            InstallMethod::None => return common::require_dockerd().map(drop),
            InstallMethod::Distro => pacman::install_distro()?,
            InstallMethod::Script => common::install_script(
                &config.install_url,
                "Docker's get.docker.com does not support Arch Linux; the `distro` method uses \
                 Arch's own docker package",
            )?,
            InstallMethod::Repo => {}
        }
        common::installed_dockerd().map(drop)
    }

    fn configure_engine(config: EngineConfig) -> Result<()> {
        let dockerd = common::require_dockerd()?;
        common::check_daemon_json()?;
        info("Copying certs to the remote machine...");
        let tls = dmw_guest::host::install_server_cert(CERT_DIR)?;
        // Arch ships upstream's units: docker.service runs `dockerd -H fd://` and Requires=
        // docker.socket, so socket activation is kept for the local socket.
        let unix_socket = systemd::prepare_socket()?;
        let dropin = engine::systemd_dropin(&DaemonConfig {
            dockerd: &dockerd,
            port: config.port,
            unix_socket,
            tls: &tls,
            storage_driver: &config.storage_driver,
            labels: &config.labels,
            insecure_registries: &config.insecure_registries,
            registry_mirrors: &config.registry_mirrors,
            extra_flags: &config.extra_flags,
            env: &config.env,
        })?;
        systemd::apply(&dropin, config.port)
    }

    fn upgrade_engine(config: EngineConfig) -> Result<()> {
        if matches!(config.install_method, InstallMethod::None) {
            return Err(Error::Unsupported(
                "the engine's install method is `none`: dmw does not manage its packages; \
                 upgrade Docker Engine on the machine yourself"
                    .into(),
            ));
        }
        info("Upgrading docker...");
        pacman::upgrade_installed()?;
        systemd::restart_and_wait(common::stored_port(config.port)?)
    }

    fn restart_engine() -> Result<()> {
        systemd::restart_and_wait(common::stored_port(common::DEFAULT_PORT)?)
    }
}

export!(Arch);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
