//! The `suse` recipe: openSUSE Leap, Tumbleweed, SLES and SLED. Installs SUSE's `docker`
//! package with zypper (or runs an install script) and runs the engine under systemd with
//! mutual TLS. As Docker Machine did, it picks the btrfs storage driver when Docker's data
//! directory is on btrfs (openSUSE's and SLES's default root file system).

dmw_guest::generate!("recipe-plugin");

mod zypper;

use dmw_guest::engine::{self, systemd};
use dmw_guest::{Error, Result, info, output_root, run_root};
use exports::dmw::plugin::recipe::{EngineConfig, Guest, InstallMethod, OsInfo, RecipeInfo};

/// The `ID`s this recipe knows exactly.
const IDS: [&str; 5] = [
    "opensuse-leap",
    "opensuse-tumbleweed",
    "opensuse",
    "sles",
    "sled",
];

/// Prints how Docker's data directory should be stored: `prior-overlay2` when an engine has
/// already stored images there with overlay2 (switching would hide them), else the file
/// system type of /var/lib/docker, or of /var/lib before the engine first ran.
pub const STORAGE_PROBE: &str = "if [ -d /var/lib/docker/image/overlay2 ]; then echo prior-overlay2; \
    else stat -f -c %T /var/lib/docker 2>/dev/null || stat -f -c %T /var/lib; fi";

/// The SUSE-family recipe.
struct Suse;

/// The OS's ID, lower case.
fn id(os: &OsInfo) -> String {
    os.id.trim().to_ascii_lowercase()
}

/// Whether the OS is transactional (MicroOS, SLE Micro): its root file system is read-only
/// and packages go in with `transactional-update` and a reboot.
fn transactional(os: &OsInfo) -> bool {
    let micro = |s: &str| {
        let s = s.trim().to_ascii_lowercase();
        s.contains("microos") || s == "sle-micro" || s == "sl-micro"
    };
    micro(&os.id) || os.id_like.iter().any(|l| micro(l))
}

/// The `--storage-driver` to use: the user's, else btrfs when the data directory is on btrfs
/// (Docker Machine's SUSE rule), else dockerd's default (overlay2).
pub fn storage_driver(requested: &str) -> Result<String> {
    if !requested.trim().is_empty() {
        return Ok(requested.trim().to_string());
    }
    let out = output_root(STORAGE_PROBE)?;
    let fs = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(match fs.as_str() {
        "btrfs" if out.exit_code == 0 => {
            info("/var/lib/docker is on btrfs: using the btrfs storage driver");
            "btrfs".into()
        }
        "prior-overlay2" => {
            info("the engine already stores images with overlay2 in /var/lib/docker; keeping it");
            String::new()
        }
        _ => String::new(),
    })
}

impl Guest for Suse {
    fn info() -> RecipeInfo {
        RecipeInfo {
            name: "suse".into(),
            description: "openSUSE Leap and Tumbleweed, SLES, SLED (zypper, systemd)".into(),
        }
    }

    fn applies(os: OsInfo) -> u32 {
        dmw_guest::family_score(&os.id, &os.id_like, &IDS, &["suse", "opensuse"])
    }

    fn set_hostname(name: String) -> Result<()> {
        run_root(&engine::hostname_script(&name)?).map(drop)
    }

    fn install_engine(config: EngineConfig) -> Result<()> {
        // Docker publishes nothing usable for SUSE: `auto` is SUSE's own package.
        let method = dmw_guest::own_packages_method!(
            config.install_method,
            "the `repo` install method cannot work on SUSE: Docker publishes no openSUSE \
                 packages, and its SLES repository has only IBM Z (s390x) packages. Use \
                 --engine-install-method distro (SUSE's own docker package; on SLES it comes \
                 from the Containers Module)."
        )?;
        if engine::keep_installed()? {
            return Ok(());
        }
        match method {
            InstallMethod::None => return engine::require_dockerd().map(drop),
            InstallMethod::Distro if transactional(&config.os) => {
                return Err(Error::Unsupported(format!(
                    "{} is a transactional system (read-only root): zypper cannot install \
                     packages on it directly. Run `transactional-update pkg install docker` on \
                     the machine, reboot it, then provision again with \
                     --engine-install-method none",
                    if config.os.pretty_name.is_empty() {
                        &config.os.id
                    } else {
                        &config.os.pretty_name
                    }
                )));
            }
            InstallMethod::Distro => zypper::install_distro(&id(&config.os))?,
            InstallMethod::Script => engine::install_script(
                &config.install_url,
                "Docker's get.docker.com supports SLES only on IBM Z; the `distro` method \
                 uses SUSE's own docker package",
                || Ok(()),
            )?,
            InstallMethod::Repo | InstallMethod::Auto => {}
        }
        engine::installed_dockerd().map(drop)
    }

    fn configure_engine(config: EngineConfig) -> Result<()> {
        let storage = storage_driver(&config.storage_driver)?;
        let opts = engine::EngineOptions {
            storage_driver: &storage,
            ..dmw_guest::engine_options!(config)
        };
        systemd::configure(&opts)
    }

    fn upgrade_engine(config: EngineConfig) -> Result<()> {
        if matches!(config.install_method, InstallMethod::None) {
            return Err(engine::unmanaged_upgrade());
        }
        if transactional(&config.os) {
            return Err(Error::Unsupported(
                "this is a transactional system (read-only root): upgrade the engine with \
                 `transactional-update pkg update docker` on the machine and reboot it"
                    .into(),
            ));
        }
        info("Upgrading docker...");
        zypper::upgrade_installed()?;
        systemd::restart_and_wait(engine::stored_port(config.port)?)
    }

    fn restart_engine() -> Result<()> {
        systemd::restart_and_wait(engine::stored_port(engine::DEFAULT_PORT)?)
    }
}

export!(Suse);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
