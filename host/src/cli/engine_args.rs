//! The engine flags shared by `create` and `recipe plan` (Docker Machine's `--engine-*`).

use crate::state::store::{EngineOptions, InstallMethod};

/// How to install and configure Docker Engine on the machine.
#[derive(clap::Args, Debug, Clone)]
pub struct EngineArgs {
    /// How to install Docker Engine
    #[arg(long, value_name = "METHOD", value_enum, default_value_t = InstallMethod::Auto)]
    pub engine_install_method: InstallMethod,
    /// Custom URL to use for engine installation (install method script)
    #[arg(
        long,
        value_name = "URL",
        env = "MACHINE_DOCKER_INSTALL_URL",
        default_value = "https://get.docker.com"
    )]
    pub engine_install_url: String,
    /// Mirror of Docker's package repository for install method repo (default https://download.docker.com/linux)
    #[arg(long, value_name = "URL", env = "DMW_ENGINE_REPO_URL")]
    pub engine_repo_url: Option<String>,
    /// Specify environment variables to set in the engine
    #[arg(long, value_name = "VALUE")]
    pub engine_env: Vec<String>,
    /// Specify insecure registries to allow with the created engine
    #[arg(long, value_name = "VALUE")]
    pub engine_insecure_registry: Vec<String>,
    /// Specify labels for the created engine
    #[arg(long, value_name = "VALUE")]
    pub engine_label: Vec<String>,
    /// Specify arbitrary flags to include with the created engine in the form flag=value
    #[arg(long, value_name = "VALUE")]
    pub engine_opt: Vec<String>,
    /// Specify registry mirrors to use
    #[arg(long, value_name = "VALUE", env = "ENGINE_REGISTRY_MIRROR")]
    pub engine_registry_mirror: Vec<String>,
    /// Specify a storage driver to use with the engine
    #[arg(long, value_name = "DRIVER")]
    pub engine_storage_driver: Option<String>,
}

impl EngineArgs {
    /// The options as stored in the machine record.
    pub fn options(&self) -> EngineOptions {
        EngineOptions {
            install_method: self.engine_install_method,
            install_url: self.engine_install_url.clone(),
            repo_url: self.engine_repo_url.clone().unwrap_or_default(),
            storage_driver: self.engine_storage_driver.clone().unwrap_or_default(),
            labels: self.engine_label.clone(),
            insecure_registries: self.engine_insecure_registry.clone(),
            registry_mirrors: self.engine_registry_mirror.clone(),
            opts: self.engine_opt.clone(),
            env: self.engine_env.clone(),
        }
    }
}
