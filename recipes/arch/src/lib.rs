//! The `arch` recipe: Arch Linux and its derivatives (Manjaro, EndeavourOS…). Installs Arch's
//! `docker` package with pacman (never a full `pacman -Syu`: see [`pacman`]) or runs an install
//! script, and runs the engine under systemd with mutual TLS.

dmw_guest::generate!("recipe-plugin");

mod pacman;

use dmw_guest::engine;
use dmw_guest::{Result, run_root};
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
        dmw_guest::family_score(&os.id, &os.id_like, &["arch"], &["arch"])
    }

    fn set_hostname(name: String) -> Result<()> {
        run_root(&engine::hostname_script(&name)?).map(drop)
    }

    fn install_engine(config: EngineConfig) -> Result<()> {
        // Docker publishes nothing for Arch: `auto` is Arch's own package.
        let method = dmw_guest::own_packages_method!(
            config.install_method,
            "the `repo` install method cannot work on Arch Linux: Docker publishes no \
                 packages for it. Use --engine-install-method distro (Arch's own docker \
                 package, from [extra])."
        )?;
        if engine::keep_installed()? {
            return Ok(());
        }
        match method {
            InstallMethod::None => return engine::require_dockerd().map(drop),
            InstallMethod::Distro => pacman::install_distro()?,
            InstallMethod::Script => engine::install_script(
                &config.install_url,
                "Docker's get.docker.com does not support Arch Linux; the `distro` method uses \
                 Arch's own docker package",
                || Ok(()),
            )?,
            InstallMethod::Repo | InstallMethod::Auto => {}
        }
        engine::installed_dockerd().map(drop)
    }

    dmw_guest::systemd_engine_methods!(pacman::upgrade_installed());
}

export!(Arch);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
