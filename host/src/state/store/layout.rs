//! The store's file layout, spelled in one place: the top-level directories, the CA
//! directory's files and one machine directory's files (also the `DOCKER_CERT_PATH` layout
//! that Docker Machine's store and the docker CLI's context store share).

use std::path::{Path, PathBuf};

/// The certificate files and the lock file, spelled by `tls`, which makes and locks them.
pub use crate::net::tls::{CA_CERT, CA_KEY, CLIENT_CERT, CLIENT_KEY, LOCK_FILE};
/// Server certificate, kept in the machine directory.
pub const SERVER_CERT: &str = "server.pem";
/// Server private key, kept in the machine directory.
pub const SERVER_KEY: &str = "server-key.pem";
/// The machine record (also Docker Machine's per-machine file name).
pub const RECORD_FILE: &str = "config.json";
/// The machine's SSH private key.
pub const SSH_KEY_FILE: &str = "id_ssh";
/// The machine's SSH public key.
pub const SSH_PUBLIC_KEY_FILE: &str = "id_ssh.pub";
/// The machine's pinned SSH host key.
pub const KNOWN_HOSTS_FILE: &str = "known_hosts";
/// The machine's provisioning log.
pub const LOG_FILE: &str = "provision.log";
/// The ssh_config written next to the machine's key for sshfs (kept: sshfs reconnects with it).
pub const SSHFS_CONFIG_FILE: &str = "sshfs_config";

/// The driver's own directory in a machine directory (the `files` capability's preopen).
pub const DRIVER_DIR: &str = "driver";
/// The processes the host started for the machine's driver (`process` capability): pid
/// and start time by handle; host-owned, outside the driver's directory.
pub const PROCESSES_FILE: &str = "processes.json";
/// The host-owned directory of a machine's local VM (the `vm` capability's files).
pub const VM_DIR: &str = "vm";

/// The client TLS files of a `DOCKER_CERT_PATH`, with the mode each is written with.
pub const CLIENT_TLS_FILES: [(&str, u32); 3] =
    [(CA_CERT, 0o644), (CLIENT_CERT, 0o644), (CLIENT_KEY, 0o600)];

/// Directory of the CA and client certificate under the storage path.
pub(super) const CERTS_DIR: &str = "certs";
/// Directory of caches (compiled plugins) under the storage path.
pub(super) const CACHE_DIR: &str = "cache";
/// Directory holding every machine under the storage path.
pub(super) const MACHINES_DIR: &str = "machines";

/// One machine's directory (its `DOCKER_CERT_PATH`): one method per file in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineDir(PathBuf);

impl MachineDir {
    /// The machine directory at `path` (also a Docker Machine machine directory, whose TLS
    /// files and record carry the same names).
    pub fn at(path: impl Into<PathBuf>) -> MachineDir {
        MachineDir(path.into())
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The SSH private key, `id_ssh`.
    pub fn ssh_key(&self) -> PathBuf {
        self.0.join(SSH_KEY_FILE)
    }

    /// The SSH public key, `id_ssh.pub`.
    pub fn ssh_public_key(&self) -> PathBuf {
        self.0.join(SSH_PUBLIC_KEY_FILE)
    }

    /// The pinned host key, `known_hosts`.
    pub fn known_hosts(&self) -> PathBuf {
        self.0.join(KNOWN_HOSTS_FILE)
    }

    /// The provisioning log, `provision.log`.
    pub fn provision_log(&self) -> PathBuf {
        self.0.join(LOG_FILE)
    }

    /// The ssh_config for sshfs, `sshfs_config`.
    pub fn sshfs_config(&self) -> PathBuf {
        self.0.join(SSHFS_CONFIG_FILE)
    }

    /// The driver's own directory, `driver/` (lent to a driver granted `files`).
    pub fn driver_dir(&self) -> PathBuf {
        self.0.join(DRIVER_DIR)
    }

    /// The host's record of the processes started for the driver, `processes.json`.
    pub fn processes(&self) -> PathBuf {
        self.0.join(PROCESSES_FILE)
    }

    /// The local VM's files, `vm/` (host-owned; never lent to a plugin).
    pub fn vm_dir(&self) -> PathBuf {
        self.0.join(VM_DIR)
    }

    /// The CA certificate, `ca.pem`.
    pub fn ca_cert(&self) -> PathBuf {
        self.0.join(CA_CERT)
    }

    /// The client certificate, `cert.pem`.
    pub fn client_cert(&self) -> PathBuf {
        self.0.join(CLIENT_CERT)
    }

    /// The client private key, `key.pem`.
    pub fn client_key(&self) -> PathBuf {
        self.0.join(CLIENT_KEY)
    }

    /// The server certificate, `server.pem`.
    pub fn server_cert(&self) -> PathBuf {
        self.0.join(SERVER_CERT)
    }

    /// The server private key, `server-key.pem`.
    pub fn server_key(&self) -> PathBuf {
        self.0.join(SERVER_KEY)
    }

    /// The record, `config.json`.
    pub fn record(&self) -> PathBuf {
        self.0.join(RECORD_FILE)
    }

    /// The lock file, `.lock`.
    pub fn lock(&self) -> PathBuf {
        self.0.join(LOCK_FILE)
    }
}

/// The CA directory (`<storage>/certs`): one method per file in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertsDir(PathBuf);

impl CertsDir {
    /// The CA directory at `path`.
    pub fn at(path: impl Into<PathBuf>) -> CertsDir {
        CertsDir(path.into())
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The driver's own directory, `driver/` (lent to a driver granted `files`).
    pub fn driver_dir(&self) -> PathBuf {
        self.0.join(DRIVER_DIR)
    }

    /// The host's record of the processes started for the driver, `processes.json`.
    pub fn processes(&self) -> PathBuf {
        self.0.join(PROCESSES_FILE)
    }

    /// The CA certificate, `ca.pem`.
    pub fn ca_cert(&self) -> PathBuf {
        self.0.join(CA_CERT)
    }

    /// The CA private key, `ca-key.pem`.
    pub fn ca_key(&self) -> PathBuf {
        self.0.join(CA_KEY)
    }

    /// The client certificate, `cert.pem`.
    pub fn client_cert(&self) -> PathBuf {
        self.0.join(CLIENT_CERT)
    }

    /// The client private key, `key.pem`.
    pub fn client_key(&self) -> PathBuf {
        self.0.join(CLIENT_KEY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_dir_names_every_file_of_the_docker_machine_layout() {
        let d = MachineDir::at("/s/machines/m");
        let names: Vec<PathBuf> = vec![
            d.ssh_key(),
            d.ssh_public_key(),
            d.known_hosts(),
            d.provision_log(),
            d.sshfs_config(),
            d.ca_cert(),
            d.client_cert(),
            d.client_key(),
            d.server_cert(),
            d.server_key(),
            d.record(),
            d.lock(),
        ];
        let names: Vec<String> = names
            .iter()
            .map(|p| {
                p.strip_prefix(d.path())
                    .expect("inside")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            [
                "id_ssh",
                "id_ssh.pub",
                "known_hosts",
                "provision.log",
                "sshfs_config",
                "ca.pem",
                "cert.pem",
                "key.pem",
                "server.pem",
                "server-key.pem",
                "config.json",
                ".lock"
            ]
        );
        let c = CertsDir::at("/s/certs");
        assert_eq!(c.ca_key(), Path::new("/s/certs/ca-key.pem"));
        assert_eq!(c.client_key(), Path::new("/s/certs/key.pem"));
    }
}
