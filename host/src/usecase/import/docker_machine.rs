//! Docker Machine's store as it lies on disk (ConfigVersion 3): the parts of
//! `machines/NAME/config.json` that `dmw import` reads. Unknown fields are ignored.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// Environment variable of Docker Machine's storage path.
pub const STORAGE_ENV: &str = "MACHINE_STORAGE_PATH";

/// Newest config.json version Docker Machine 0.16 writes.
pub const CONFIG_VERSION: u32 = 3;

/// Docker Machine's storage path: `$MACHINE_STORAGE_PATH`, else `~/.docker/machine`.
pub fn default_root() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(STORAGE_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".docker/machine")),
        None => {
            bail!("cannot find Docker Machine's store: set HOME or {STORAGE_ENV}, or pass its path")
        }
    }
}

/// One `config.json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// Format version (0 when absent: very old files).
    pub config_version: u32,
    /// The driver's own settings (opaque to Docker Machine's core).
    pub driver: serde_json::Value,
    /// Driver name, e.g. `generic`.
    pub driver_name: String,
    /// Engine and TLS options.
    pub host_options: HostOptions,
    /// Machine name.
    pub name: String,
}

/// `HostOptions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostOptions {
    /// `EngineOptions`.
    pub engine_options: EngineOptions,
    /// `AuthOptions`.
    pub auth_options: AuthOptions,
}

/// `HostOptions.EngineOptions` (null lists read as empty).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EngineOptions {
    /// `--engine-opt` values.
    #[serde(deserialize_with = "null_list")]
    pub arbitrary_flags: Vec<String>,
    /// `--engine-env` values.
    #[serde(deserialize_with = "null_list")]
    pub env: Vec<String>,
    /// `--engine-insecure-registry` values.
    #[serde(deserialize_with = "null_list")]
    pub insecure_registry: Vec<String>,
    /// `--engine-label` values.
    #[serde(deserialize_with = "null_list")]
    pub labels: Vec<String>,
    /// `--engine-storage-driver`.
    pub storage_driver: String,
    /// `--engine-registry-mirror` values.
    #[serde(deserialize_with = "null_list")]
    pub registry_mirror: Vec<String>,
    /// `--engine-install-url`.
    #[serde(rename = "InstallURL")]
    pub install_url: String,
}

/// `HostOptions.AuthOptions`: absolute paths on the machine that wrote the store.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AuthOptions {
    /// The CA certificate.
    pub ca_cert_path: String,
    /// The client certificate.
    pub client_cert_path: String,
    /// The client key.
    pub client_key_path: String,
    /// The machine's server certificate.
    pub server_cert_path: String,
    /// The machine's server key.
    pub server_key_path: String,
}

fn null_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

impl HostConfig {
    /// Read and parse `dir/config.json`.
    pub fn load(dir: &Path) -> Result<HostConfig> {
        let path = crate::state::store::MachineDir::at(dir).record();
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let config: HostConfig = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a Docker Machine config.json", path.display()))?;
        if config.config_version > CONFIG_VERSION {
            bail!(
                "{}: config version {} is from a newer Docker Machine than 0.16 (version {CONFIG_VERSION})",
                path.display(),
                config.config_version
            );
        }
        Ok(config)
    }

    /// A text field of the driver's settings (empty when absent).
    pub fn driver_text(&self, key: &str) -> String {
        match self.driver.get(key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => String::new(),
        }
    }

    /// A number field of the driver's settings (0 when absent or not a port).
    pub fn driver_port(&self, key: &str) -> u16 {
        self.driver
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_machine_generic_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("config.json"),
            r#"{
    "ConfigVersion": 3,
    "Driver": {"IPAddress": "203.0.113.10", "MachineName": "n1", "SSHUser": "admin", "SSHPort": 2222,
        "SSHKeyPath": "/home/u/.docker/machine/machines/n1/id_rsa", "StorePath": "/home/u/.docker/machine",
        "SwarmMaster": false, "SwarmHost": "", "SwarmDiscovery": "", "EnginePort": 2376, "SSHKey": "/home/u/.ssh/id_rsa"},
    "DriverName": "generic",
    "HostOptions": {"Driver": "", "Memory": 0, "Disk": 0,
        "EngineOptions": {"ArbitraryFlags": [], "Dns": null, "GraphDir": "", "Env": null, "Ipv6": false,
            "InsecureRegistry": ["r:5000"], "Labels": ["a=b"], "LogLevel": "", "StorageDriver": "",
            "SelinuxEnabled": false, "TlsVerify": true, "RegistryMirror": [], "InstallURL": "https://get.docker.com"},
        "SwarmOptions": {"IsSwarm": false},
        "AuthOptions": {"CertDir": "/c", "CaCertPath": "/c/ca.pem", "CaPrivateKeyPath": "/c/ca-key.pem",
            "CaCertRemotePath": "", "ServerCertPath": "/m/server.pem", "ServerKeyPath": "/m/server-key.pem",
            "ClientKeyPath": "/c/key.pem", "ServerCertRemotePath": "", "ServerKeyRemotePath": "",
            "ClientCertPath": "/c/cert.pem", "ServerCertSANs": [], "StorePath": "/m"}},
    "Name": "n1"
}"#,
        )
        .expect("write");
        let c = HostConfig::load(dir.path()).expect("parse");
        assert_eq!((c.name.as_str(), c.driver_name.as_str()), ("n1", "generic"));
        assert_eq!(c.driver_text("IPAddress"), "203.0.113.10");
        assert_eq!(c.driver_text("SSHUser"), "admin");
        assert_eq!(c.driver_port("SSHPort"), 2222);
        assert_eq!(c.driver_port("EnginePort"), 2376);
        assert_eq!(c.driver_port("Missing"), 0);
        let e = &c.host_options.engine_options;
        assert_eq!(e.insecure_registry, ["r:5000"]);
        assert!(e.env.is_empty());
        assert_eq!(e.install_url, "https://get.docker.com");
        assert_eq!(c.host_options.auth_options.client_key_path, "/c/key.pem");

        std::fs::write(
            dir.path().join("config.json"),
            r#"{"ConfigVersion": 4, "Name": "x"}"#,
        )
        .expect("write");
        let e = HostConfig::load(dir.path()).expect_err("future");
        assert!(format!("{e:#}").contains("newer Docker Machine"), "{e:#}");
    }
}
