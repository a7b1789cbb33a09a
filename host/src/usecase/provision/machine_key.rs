//! The machine's SSH key: which file it comes from is the user's choice, never a plugin's.
//!
//! A driver's `ssh-endpoint` may name a `key-path`, but the host uses it only when it is a
//! value the user gave one of the driver's flags (on the command line or in the driver's
//! own environment variable), outside dmw's store, and a private key. A built-in driver
//! that names no key gets the user's default key from `~/.ssh` (Docker Machine's generic
//! driver did the same); a driver loaded from a file that names no key gets a new ed25519
//! key pair made by the host for this machine — a driver granted the `keys` capability sees
//! its public half (`keys.machine-public-key`), none sees the private half.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};

/// Where the machine's SSH key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MachineKey {
    /// A private key file on the user's machine, copied into the machine directory.
    UserFile(PathBuf),
    /// A key pair the host makes for this machine.
    Generated,
}

/// What the host knows when it decides on the key.
pub struct KeyChoice<'a> {
    /// The driver's name, for messages.
    pub driver: &'a str,
    /// Whether the driver is built into dmw (trusted with the `~/.ssh` default).
    pub builtin: bool,
    /// Whether the driver was granted `keys` (it registers the machine's public key itself,
    /// e.g. in a VM's first-boot seed): it gets a key pair made for the machine, never the
    /// user's default key.
    pub keys: bool,
    /// Values the user gave the driver's flags (command line or environment).
    pub typed: &'a [String],
    /// dmw's store, whose files (CA key, other machines' keys) are never a machine's key.
    pub store_root: &'a Path,
}

/// Decide on the machine's key from the driver's `key-path` answer.
pub fn choose(key_path: Option<&str>, c: &KeyChoice<'_>) -> Result<MachineKey> {
    match key_path.filter(|p| !p.is_empty()) {
        Some(p) => user_file(p, c).map(MachineKey::UserFile),
        None if c.builtin && !c.keys => default_user_key().map(MachineKey::UserFile),
        None => Ok(MachineKey::Generated),
    }
}

/// A key path the driver named: accepted only if the user typed it and it lies outside the store.
fn user_file(path: &str, c: &KeyChoice<'_>) -> Result<PathBuf> {
    let shown = format!("{path:?}");
    let canonical = |p: &str| std::fs::canonicalize(p).ok();
    let typed = c.typed.iter().any(|t| {
        t == path || matches!((canonical(t), canonical(path)), (Some(a), Some(b)) if a == b)
    });
    if !typed {
        bail!(
            "driver {} asked dmw to log in with the key file {shown}, which was not given on the command line; dmw only uses SSH key files you name in the driver's key flag",
            c.driver
        );
    }
    let p = PathBuf::from(path);
    if !p.is_file() {
        bail!("SSH key does not exist: {shown}");
    }
    let real = std::fs::canonicalize(&p).map_err(|e| anyhow!("cannot use SSH key {shown}: {e}"))?;
    if let Ok(store) = std::fs::canonicalize(c.store_root)
        && real.starts_with(&store)
    {
        bail!(
            "the SSH key {shown} is inside dmw's store ({}), which holds dmw's own keys (the CA key, other machines' keys); pass a key of your own",
            store.display()
        );
    }
    russh::keys::load_secret_key(&real, None)
        .map_err(|e| anyhow!("cannot use SSH key {shown}: {e}"))?;
    Ok(real)
}

/// The user's default SSH key (`~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`), for built-ins.
fn default_user_key() -> Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        let p = home.join(".ssh").join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "no SSH key given and none found in ~/.ssh (id_ed25519, id_ecdsa, id_rsa); pass the driver's SSH key flag (e.g. --generic-ssh-key)"
    )
}

/// Make a new ed25519 key pair for a machine: the private key (0600) at `key_file`, the
/// public key beside it (`.pub`); returns the public key in OpenSSH format.
pub fn generate(key_file: &Path, comment: &str) -> Result<String> {
    use russh::keys::ssh_key::{LineEnding, private::Ed25519Keypair};
    let mut seed = [0u8; 32];
    {
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut seed))
            .map_err(|e| anyhow!("cannot read random bytes for the machine's SSH key: {e}"))?;
    }
    let mut key = russh::keys::PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(comment);
    let private = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| anyhow!("cannot encode the machine's SSH key: {e}"))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| anyhow!("cannot encode the machine's SSH public key: {e}"))?;
    crate::state::store::write_private(key_file, private.as_bytes())?;
    let mut pub_file = key_file.as_os_str().to_owned();
    pub_file.push(".pub");
    crate::state::store::write_atomic(
        Path::new(&pub_file),
        format!("{public}\n").as_bytes(),
        0o644,
    )?;
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_key(dir: &Path, name: &str) -> String {
        let p = dir.join(name);
        generate(&p, "test").expect("key");
        p.display().to_string()
    }

    #[test]
    fn a_key_the_user_typed_is_used() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = tmp.path().join("store");
        std::fs::create_dir_all(&store).expect("store");
        let key = user_key(tmp.path(), "id_user");
        let typed = vec![key.clone()];
        let c = KeyChoice {
            driver: "acme",
            builtin: false,
            keys: false,
            typed: &typed,
            store_root: &store,
        };
        assert_eq!(
            choose(Some(&key), &c).expect("typed key"),
            MachineKey::UserFile(std::fs::canonicalize(&key).expect("canon"))
        );
    }

    #[test]
    fn a_key_the_driver_chose_is_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = tmp.path().join("store");
        std::fs::create_dir_all(&store).expect("store");
        let key = user_key(tmp.path(), "id_user");
        let c = KeyChoice {
            driver: "acme",
            builtin: false,
            keys: false,
            typed: &[],
            store_root: &store,
        };
        let err = choose(Some(&key), &c).expect_err("not typed");
        assert!(
            format!("{err}").contains("not given on the command line"),
            "{err}"
        );
    }

    #[test]
    fn keys_inside_the_store_are_refused_even_when_typed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = tmp.path().join("store");
        std::fs::create_dir_all(store.join("machines/other")).expect("store");
        let key = user_key(&store.join("machines/other"), "id_ssh");
        // Reached through a symlink outside the store, too.
        let link = tmp.path().join("innocent");
        std::os::unix::fs::symlink(&key, &link).expect("symlink");
        for path in [key.clone(), link.display().to_string()] {
            let typed = vec![path.clone()];
            let c = KeyChoice {
                driver: "acme",
                builtin: true,
                keys: false,
                typed: &typed,
                store_root: &store,
            };
            let err = choose(Some(&path), &c).expect_err("inside store");
            assert!(format!("{err}").contains("inside dmw's store"), "{err}");
        }
    }

    #[test]
    fn no_key_means_a_new_one_for_file_drivers() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = KeyChoice {
            driver: "acme",
            builtin: false,
            keys: false,
            typed: &[],
            store_root: tmp.path(),
        };
        assert_eq!(choose(None, &c).expect("generated"), MachineKey::Generated);
        assert_eq!(
            choose(Some(""), &c).expect("generated"),
            MachineKey::Generated
        );
        let public = generate(&tmp.path().join("id_ssh"), "dmw m1").expect("generate");
        assert!(public.starts_with("ssh-ed25519 "), "{public}");
        let private = tmp.path().join("id_ssh");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let loaded = russh::keys::load_secret_key(&private, None).expect("loads");
        assert_eq!(loaded.public_key().to_openssh().expect("pub"), public);
    }
}
