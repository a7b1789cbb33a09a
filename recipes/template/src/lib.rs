//! A recipe template for ops teams: "acme", a company's golden image of a RHEL-like OS
//! (`ID=acme`) whose Docker Engine comes from an internal yum mirror. Copy this crate,
//! rename it, and change the marked places; docs/writing-a-recipe.md walks through it.
//! Everything generic (finding dockerd, certificates, the systemd drop-in, waiting for the
//! engine, readable errors) comes from the `dmw-guest` SDK.

dmw_guest::generate!("recipe-plugin");

use dmw_guest::engine;
use dmw_guest::{Error, Result, info, run_root};
use exports::dmw::plugin::recipe::{EngineConfig, Guest, InstallMethod, OsInfo, RecipeInfo};

/// CHANGE: the os-release `ID` your machines carry.
const OS_ID: &str = "acme";

/// CHANGE: where your engine packages live when `--engine-repo-url` is not given.
const DEFAULT_MIRROR: &str = "https://mirror.acme.example/docker-ce";

/// CHANGE: the packages that make up your engine.
const PACKAGES: &str = "docker-ce docker-ce-cli containerd.io";

/// The recipe.
struct Acme;

/// The yum repository file pointing at the mirror (`repo_url` overrides the default).
fn repo_file(repo_url: &str) -> String {
    let base = match repo_url.trim().trim_end_matches('/') {
        "" => DEFAULT_MIRROR,
        url => url,
    };
    format!(
        "[acme-docker]\nname=Docker Engine (ACME mirror)\nbaseurl={base}/$basearch\nenabled=1\ngpgcheck=1\ngpgkey={base}/gpg\n"
    )
}

impl Guest for Acme {
    fn info() -> RecipeInfo {
        RecipeInfo {
            name: "acme".into(),
            description: "ACME golden image (template recipe)".into(),
        }
    }

    /// Claim only our own image, and claim it above the built-in rhel recipe (which scores
    /// an `ID_LIKE=rhel` match 50).
    fn applies(os: OsInfo) -> u32 {
        if os.id == OS_ID { 200 } else { 0 }
    }

    fn set_hostname(name: String) -> Result<()> {
        run_root(&engine::hostname_script(&name)?).map(drop)
    }

    fn install_engine(config: EngineConfig) -> Result<()> {
        if engine::keep_installed()? {
            return Ok(());
        }
        match config.install_method {
            InstallMethod::Auto | InstallMethod::Repo | InstallMethod::Distro => {
                info("Installing Docker Engine from the ACME mirror...");
                dmw_guest::host::upload(
                    "/etc/yum.repos.d/acme-docker.repo",
                    repo_file(&config.repo_url).as_bytes(),
                    0o644,
                )?;
                run_root(&format!("yum install -y {PACKAGES}"))?;
            }
            InstallMethod::Script => {
                return Err(Error::Unsupported("the acme recipe installs from the mirror only; use --engine-install-method auto".into()));
            }
            InstallMethod::None => {
                engine::require_dockerd()?;
                return Ok(());
            }
        }
        engine::installed_dockerd().map(drop)
    }

    // Configure (certificates, the systemd drop-in, restart and wait), upgrade (CHANGE: how
    // your engine's packages are upgraded) and restart, as every systemd recipe.
    dmw_guest::systemd_engine_methods!(run_root(&format!("yum upgrade -y {PACKAGES}")).map(drop));
}

export!(Acme);
