//! The `alpine` recipe: Alpine Linux (and derivatives such as postmarketOS). Installs Alpine's
//! `docker` package with apk (community repository) or runs an install script, and runs the
//! engine under OpenRC with mutual TLS, its options in /etc/conf.d/docker. Docker Machine
//! had no Alpine support; this follows its generic (non-systemd) provisioner's layout.

dmw_guest::generate!("recipe-plugin");

mod apk;
mod openrc;

use dmw_guest::engine::{self, CERT_DIR, UnixSocket};
use dmw_guest::{Result, info, run_root};
use exports::dmw::plugin::recipe::{EngineConfig, Guest, InstallMethod, OsInfo, RecipeInfo};

/// The Alpine recipe.
struct Alpine;

impl Guest for Alpine {
    fn info() -> RecipeInfo {
        RecipeInfo {
            name: "alpine".into(),
            description: "Alpine Linux (apk, OpenRC)".into(),
        }
    }

    fn applies(os: OsInfo) -> u32 {
        dmw_guest::family_score(&os.id, &os.id_like, &["alpine"], &["alpine"])
    }

    fn set_hostname(name: String) -> Result<()> {
        // The sdk's script uses only POSIX sh, `hostname` and grep/sed/printf/cat as busybox
        // has them (hostnamectl is only its fallback); /etc/hostname is what Alpine's
        // hostname service reads at boot.
        run_root(&engine::hostname_script(&name)?).map(drop)
    }

    fn install_engine(config: EngineConfig) -> Result<()> {
        // Docker publishes nothing for Alpine: `auto` is Alpine's own package.
        let method = dmw_guest::own_packages_method!(
            config.install_method,
            "the `repo` install method cannot work on Alpine Linux: Docker publishes no \
                 packages for it. Use --engine-install-method distro (Alpine's own docker \
                 package, from the community repository)."
        )?;
        if engine::keep_installed()? {
            return Ok(());
        }
        match method {
            InstallMethod::None => return engine::require_dockerd().map(drop),
            InstallMethod::Distro => apk::install_distro()?,
            InstallMethod::Script => engine::install_script(
                &config.install_url,
                "Docker's get.docker.com does not support Alpine Linux; the `distro` method \
                 uses Alpine's own docker package",
                || Ok(()),
            )?,
            InstallMethod::Repo | InstallMethod::Auto => {}
        }
        engine::installed_dockerd().map(drop)
    }

    fn configure_engine(config: EngineConfig) -> Result<()> {
        let dockerd = engine::require_dockerd()?;
        openrc::require_service()?;
        engine::check_daemon_json()?;
        let tls = engine::install_certs(CERT_DIR)?;
        let conf = openrc::conf_d(&dmw_guest::engine_options!(config).daemon(
            &dockerd,
            UnixSocket::Path("/var/run/docker.sock"),
            &tls,
        ))?;
        info("Setting Docker configuration on the remote daemon...");
        dmw_guest::host::upload(openrc::CONF_PATH, conf.as_bytes(), 0o644)?;
        openrc::enable()?;
        engine::remember_port(config.port);
        openrc::restart_and_wait(config.port)
    }

    fn upgrade_engine(config: EngineConfig) -> Result<()> {
        engine::upgrade_and_restart(
            matches!(config.install_method, InstallMethod::None),
            config.port,
            apk::upgrade_installed,
            openrc::restart_and_wait,
        )
    }

    fn restart_engine() -> Result<()> {
        engine::restart_on_stored_port(openrc::restart_and_wait)
    }
}

export!(Alpine);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
