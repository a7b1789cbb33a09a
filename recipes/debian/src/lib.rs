//! The `debian` recipe: Debian, Ubuntu and their derivatives (Mint, Pop!_OS, Raspbian…).
//! Installs Docker Engine with apt (Debian's `docker.io`, Docker's repository, or an
//! install script) and runs it under systemd with mutual TLS.

dmw_guest::generate!("recipe-plugin");

mod apt;

use dmw_guest::engine;
use dmw_guest::{Result, run_root};
use exports::dmw::plugin::recipe::{EngineConfig, Guest, InstallMethod, OsInfo, RecipeInfo};

/// The Debian-family recipe.
struct Debian;

/// The method `auto` stands for here: Docker publishes packages for Debian, Ubuntu and
/// Raspbian (and their derivatives through `ID_LIKE`), so its repository.
fn resolve(method: InstallMethod) -> InstallMethod {
    match method {
        InstallMethod::Auto => InstallMethod::Repo,
        m => m,
    }
}

impl Guest for Debian {
    fn info() -> RecipeInfo {
        RecipeInfo {
            name: "debian".into(),
            description: "Debian, Ubuntu and derivatives (apt, systemd)".into(),
        }
    }

    fn applies(os: OsInfo) -> u32 {
        dmw_guest::family_score(
            &os.id,
            &os.id_like,
            &["debian", "ubuntu"],
            &["debian", "ubuntu"],
        )
    }

    fn set_hostname(name: String) -> Result<()> {
        run_root(&engine::hostname_script(&name)?).map(drop)
    }

    fn install_engine(config: EngineConfig) -> Result<()> {
        if engine::keep_installed()? {
            return Ok(());
        }
        match resolve(config.install_method) {
            InstallMethod::None => return engine::require_dockerd().map(drop),
            InstallMethod::Distro => apt::install_distro()?,
            InstallMethod::Repo | InstallMethod::Auto => {
                apt::install_repo(&config.os.fields, &config.repo_url)?
            }
            InstallMethod::Script => apt::install_script(&config.install_url)?,
        }
        engine::installed_dockerd().map(drop)
    }

    dmw_guest::systemd_engine_methods!(apt::upgrade_installed());
}

export!(Debian);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
