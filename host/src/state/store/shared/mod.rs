//! A machine store shared by a team: the backend (S3-compatible object storage or an etcd
//! v3 cluster) is the truth; each computer works on a working copy of it (plain files, as the docker CLI and
//! ssh need them), pulled when a command opens the store and pushed as it changes, with
//! per-machine locks that expire, a CA created once for the whole team, and private keys
//! encrypted to the team's `age` recipients before they leave the computer.
//!
//! ```text
//! remote.rs   the store interface: list, get, create-once and compare-and-swap writes
//! s3.rs       the S3 backend (SigV4, If-None-Match / If-Match)
//! etcd.rs     the etcd v3 backend (JSON gateway, transactions on revisions, failover)
//! web.rs      the backends' HTTP client (dmw's own sender, one origin)
//! lock.rs     machine locks over the interface: create-once, renewal, takeover when stale
//! sync.rs     the working copy: pull, push, the machine's lock, publishing the CA
//! secrets.rs  age encryption of private keys and of records' secret values
//! ```

pub mod etcd;
pub mod lock;
pub mod remote;
pub mod s3;
pub mod secrets;
pub mod sync;
pub mod web;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::Digest as _;

pub use remote::Location;
pub use sync::Shared;

/// The small local file `dmw store use` writes: the store URL every command uses when
/// neither `--storage-path` nor `DMW_STORAGE_PATH` names one.
pub fn config_file() -> Result<PathBuf> {
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(Path::new(&h).join(".dmw").join("store-url")),
        None => bail!("cannot find the store configuration: set HOME"),
    }
}

/// The store URL `dmw store use` chose, if any.
pub fn configured() -> Option<String> {
    let text = std::fs::read_to_string(config_file().ok()?).ok()?;
    let url = text.trim();
    (!url.is_empty()).then(|| url.to_string())
}

/// Where the working copy of the shared store at `url` lives:
/// `~/.dmw/shared/BUCKET-PREFIX-HASH`.
pub fn working_copy(url: &str) -> Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("cannot find the working copy of the shared store: set HOME")?;
    let readable: String = url
        .split_once("://")
        .map(|(_, r)| r.split('?').next().unwrap_or(r))
        .unwrap_or(url)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(48)
        .collect();
    let hash = hex::encode(&sha2::Sha256::digest(url.as_bytes())[..6]);
    Ok(Path::new(&home)
        .join(".dmw")
        .join("shared")
        .join(format!("{readable}-{hash}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_store_url_has_its_own_working_copy() {
        let a = working_copy("s3://team/fleet?endpoint=http://127.0.0.1:5000").expect("a");
        let b = working_copy("s3://team/fleet?endpoint=http://127.0.0.1:5001").expect("b");
        assert_ne!(a, b);
        let name = a.file_name().expect("name").to_string_lossy().into_owned();
        assert!(name.starts_with("team-fleet-"), "{name}");
    }
}
