//! The machine store: one directory per machine under the storage path.
//!
//! ```text
//! <storage>/certs/{ca.pem,ca-key.pem,cert.pem,key.pem}   CA and client certificate
//! <storage>/machines/<name>/config.json                  the machine record (atomic writes)
//! <storage>/machines/<name>/{ca.pem,cert.pem,key.pem}    DOCKER_CERT_PATH
//! <storage>/machines/<name>/{server.pem,server-key.pem}  the machine's server certificate
//! <storage>/machines/<name>/id_ssh, known_hosts          imported SSH key, pinned host key
//! <storage>/machines/<name>/provision.log                every remote command and its result
//! <storage>/machines/<name>/sshfs_config                  ssh_config of `dmw mount`
//! <storage>/cache/plugins/*.cwasm                         compiled plugins
//! ```
//!
//! `layout.rs` spells these names, in one place: `MachineDir` and `CertsDir` have a method
//! per file.

mod atomic;
pub mod layout;
mod record;
pub mod shared;

pub use atomic::{write_atomic, write_private};
pub use layout::{CertsDir, MachineDir};
pub use record::{
    DriverRef, Endpoint, EngineOptions, Imported, InstallMethod, MachineRecord, MachineStatus,
    StepError, SwarmMembership,
};

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Largest machine record that is read (`config.json`); a bigger one is refused unread, so
/// a damaged or bloated record cannot make every command slow or exhaust memory.
pub const MAX_RECORD_BYTES: u64 = 4 << 20;

/// Environment variable that overrides the default storage path.
pub const STORAGE_ENV: &str = "DMW_STORAGE_PATH";

/// The store rooted at one storage path: a directory, or the working copy of a shared
/// store ([`shared`]) that this type keeps in step with its backend.
#[derive(Clone)]
pub struct Store {
    root: PathBuf,
    shared: Option<std::sync::Arc<self::shared::Shared>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .field("shared", &self.shared.as_ref().map(|s| s.url().to_string()))
            .finish()
    }
}

/// Why a machine could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No such machine.
    #[error(
        "Docker machine \"{0}\" does not exist. Use \"dmw ls\" to list machines. Use \"dmw create\" to add a new one."
    )]
    NotFound(String),
    /// The record exists but cannot be read: what is wrong, and the two ways on.
    #[error(
        "machine \"{name}\": cannot read {path}: {reason}; fix the file, or `dmw rm -f {name}` removes the record (not the machine at its provider)"
    )]
    Corrupt {
        /// Machine name.
        name: String,
        /// Record path.
        path: String,
        /// Why.
        reason: String,
    },
}

impl Store {
    /// The store at `root` (not created until something is written).
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store {
            root: root.into(),
            shared: None,
        }
    }

    /// The store at `location`: a directory, or a shared store's URL (`s3://…`), whose
    /// working copy is pulled now, for `command` (named in the locks it takes); its locks
    /// are waited for up to `lock_timeout`.
    pub fn open(location: &str, command: &str, lock_timeout: std::time::Duration) -> Result<Store> {
        let Some(loc) = shared::Location::parse(location)? else {
            return Ok(Store::new(
                location.strip_prefix("file://").unwrap_or(location),
            ));
        };
        let root = shared::working_copy(location)?;
        let s = shared::Shared::open(location, &loc, &root, command, lock_timeout)?;
        shared::sync::block(s.pull(""))?;
        Ok(Store {
            root,
            shared: Some(std::sync::Arc::new(s)),
        })
    }

    /// The shared store behind this working copy, if it is one.
    pub fn shared(&self) -> Option<&self::shared::Shared> {
        self.shared.as_deref()
    }

    /// In a shared store: an error when private keys of machine `name` (or the team's
    /// client key) could not be decrypted with this member's identity, saying what to do.
    pub fn check_keys_readable(&self, name: &str) -> Result<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let prefix = format!("machines/{name}/");
        let missing: Vec<String> = shared
            .locked_out()
            .into_iter()
            .filter(|k| k.starts_with(&prefix) || k.starts_with("certs/"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        bail!(
            "machine \"{name}\": its private keys in the shared store {} are encrypted to the team's recipients, and your store identity is not one of them ({}); a member must run `dmw store recipients add KEY` with the key `dmw store init` shows you",
            shared.url(),
            missing.join(", ")
        )
    }

    /// After the CA directory was bootstrapped: publish it to the shared store (the CA is
    /// created once for the team). `Ok(false)` when another member's CA was published first
    /// and was taken instead: bootstrap again to check it.
    pub fn publish_certs(&self) -> Result<bool> {
        match &self.shared {
            Some(s) => s.publish_certs(&self.certs_dir()),
            None => Ok(true),
        }
    }

    /// The default storage path: `$DMW_STORAGE_PATH`, else `$HOME/.dmw`.
    pub fn default_root() -> Result<PathBuf> {
        if let Some(p) = std::env::var_os(STORAGE_ENV).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(home) => Ok(PathBuf::from(home).join(".dmw")),
            None => bail!(
                "cannot find the storage path: set HOME, {STORAGE_ENV} or pass --storage-path"
            ),
        }
    }

    /// The storage path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of the CA and client certificate.
    pub fn certs_dir(&self) -> PathBuf {
        self.root.join(layout::CERTS_DIR)
    }

    /// The CA directory's files.
    pub fn certs(&self) -> CertsDir {
        CertsDir::at(self.certs_dir())
    }

    /// Directory of compiled plugins.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join(layout::CACHE_DIR)
    }

    /// Images made by `dmw image build`, one directory each.
    pub fn images_dir(&self) -> PathBuf {
        self.cache_dir().join("images")
    }

    /// The user's plugin approvals (`dmw plugin install`), pinned by sha256.
    pub fn grants_file(&self) -> PathBuf {
        self.root.join("plugins").join("grants.json")
    }

    /// Directory holding every machine.
    pub fn machines_dir(&self) -> PathBuf {
        self.root.join(layout::MACHINES_DIR)
    }

    /// Directory of one machine (also its DOCKER_CERT_PATH).
    pub fn machine_dir(&self, name: &str) -> PathBuf {
        self.machines_dir().join(name)
    }

    /// One machine's directory, with a method per file in it.
    pub fn machine(&self, name: &str) -> MachineDir {
        MachineDir::at(self.machine_dir(name))
    }

    /// Whether a machine of that name exists.
    pub fn exists(&self, name: &str) -> bool {
        crate::text::names::is_valid(name)
            && (self.machine(name).record().exists() || self.machine_dir(name).is_dir())
    }

    /// Claim `name` for a new machine: creates its directory (0700) or fails if it exists.
    pub fn claim(&self, name: &str) -> Result<PathBuf> {
        let machines = self.machines_dir();
        fs::create_dir_all(&machines)
            .with_context(|| format!("cannot create {}", machines.display()))?;
        let dir = self.machine_dir(name);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                bail!("Docker machine \"{name}\" already exists")
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
        set_mode(&dir, 0o700)?;
        if let Some(shared) = &self.shared {
            // The name is the team's: hold its lock from here, then make sure no other
            // member created it since this command pulled.
            if let Err(e) = shared.lock(name, true) {
                let _ = fs::remove_dir(&dir);
                return Err(e);
            }
            if self.machine(name).record().exists() {
                shared.unlock(name);
                bail!(
                    "Docker machine \"{name}\" already exists (another member of {} created it)",
                    shared.url()
                );
            }
        }
        Ok(dir)
    }

    /// Load a machine's record.
    pub fn load(&self, name: &str) -> Result<MachineRecord, LoadError> {
        if !crate::text::names::is_valid(name) {
            // Not a machine name, so never a path to read (`../x` must not escape the store).
            return Err(LoadError::NotFound(name.into()));
        }
        let path = self.machine(name).record();
        let bytes = match read_bounded(&path, MAX_RECORD_BYTES) {
            Ok(Ok(b)) => b,
            Ok(Err(size)) => {
                return Err(LoadError::Corrupt {
                    name: name.into(),
                    path: path.display().to_string(),
                    reason: format!(
                        "the record is {} MiB, more than the {} MiB a record may be, so it was not read; `dmw rm -f {name}` removes it",
                        size >> 20,
                        MAX_RECORD_BYTES >> 20
                    ),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if self.machine_dir(name).is_dir() {
                    return Err(LoadError::Corrupt {
                        name: name.into(),
                        path: path.display().to_string(),
                        reason: "the record is missing (an interrupted create?); `dmw rm` removes the directory".into(),
                    });
                }
                return Err(LoadError::NotFound(name.into()));
            }
            Err(e) => {
                return Err(LoadError::Corrupt {
                    name: name.into(),
                    path: path.display().to_string(),
                    reason: e.to_string(),
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(MachineRecord::upgrade)
            .map_err(|e| LoadError::Corrupt {
                name: name.into(),
                path: path.display().to_string(),
                reason: e.to_string(),
            })
    }

    /// Save a machine's record atomically (0600).
    pub fn save(&self, record: &MachineRecord) -> Result<()> {
        let dir = self.machine_dir(&record.name);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut json =
            serde_json::to_vec_pretty(record).context("cannot encode the machine record")?;
        json.push(b'\n');
        write_private(&MachineDir::at(dir).record(), &json)?;
        if let Some(shared) = &self.shared {
            // Others see the machine's progress; a failure here is retried when the
            // machine's lock is released.
            let key = format!("machines/{}/{}", record.name, layout::RECORD_FILE);
            if let Err(e) = self::shared::sync::block(shared.push(&[key])) {
                eprintln!(
                    "Warning: machine {}: the record is saved here, not yet in {}: {e:#}",
                    record.name,
                    shared.url()
                );
            }
        }
        Ok(())
    }

    /// Names of every machine, sorted naturally.
    pub fn list(&self) -> Result<Vec<String>> {
        let dir = self.machines_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                names.push(name);
            }
        }
        names.sort_by(|a, b| crate::text::natsort::natural_cmp(a, b));
        Ok(names)
    }

    /// Remove a machine's directory and everything in it.
    pub fn remove(&self, name: &str) -> Result<()> {
        if let Some(shared) = &self.shared
            && shared.holds(name)
        {
            shared.remove_machine(name)?;
        }
        let dir = self.machine_dir(name);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", dir.display())),
        }
        if let Some(shared) = &self.shared {
            // A claim that no command lock adopted (a create that failed early) ends here.
            shared.release_claim(name);
        }
        Ok(())
    }

    /// Take the per-machine lock (held until the guard drops), waiting for other dmw processes.
    pub fn lock(&self, name: &str) -> Result<MachineLock> {
        let path = self.machine(name).lock();
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open lock {}", path.display()))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own; it is released when the file closes.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(io::Error::last_os_error())
                .with_context(|| format!("cannot lock {}", path.display()));
        }
        let shared = match &self.shared {
            Some(s) => {
                s.lock(name, false)?;
                Some((s.clone(), name.to_string()))
            }
            None => None,
        };
        Ok(MachineLock {
            shared,
            _file: file,
        })
    }

    /// Take the lock of an existing machine; a missing one (or a name that cannot be one)
    /// gets Docker Machine's "does not exist" error instead of a lock file.
    pub fn lock_existing(&self, name: &str) -> Result<MachineLock> {
        if !self.exists(name) {
            return Err(LoadError::NotFound(name.to_string()).into());
        }
        self.lock(name)
    }

    /// Whether another process holds the machine's lock (e.g. a `create` in progress).
    pub fn is_locked(&self, name: &str) -> bool {
        if self
            .shared
            .as_ref()
            .is_some_and(|s| s.locked_elsewhere(name))
        {
            return true;
        }
        let path = self.machine(name).lock();
        let Ok(file) = fs::OpenOptions::new().write(true).open(&path) else {
            return false;
        };
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own; a successful probe lock is released on close.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        rc != 0
    }
}

/// Holds a machine's lock while alive (in a shared store, also its lock there: released,
/// after the machine's files are pushed, when this drops).
pub struct MachineLock {
    shared: Option<(std::sync::Arc<self::shared::Shared>, String)>,
    _file: fs::File,
}

impl Drop for MachineLock {
    fn drop(&mut self) {
        if let Some((shared, name)) = self.shared.take() {
            shared.unlock(&name);
        }
    }
}

/// Read at most `limit` bytes of `path`: `Ok(Err(size))` if the file is bigger.
fn read_bounded(path: &Path, limit: u64) -> io::Result<std::result::Result<Vec<u8>, u64>> {
    use std::io::Read;
    let file = fs::File::open(path)?;
    let size = file.metadata()?.len();
    if size > limit {
        return Ok(Err(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // The file may grow after the size check: never read past the limit.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Ok(Err(bytes.len() as u64));
    }
    Ok(Ok(bytes))
}

/// Set a path's permission bits.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> MachineRecord {
        MachineRecord::new(
            name,
            DriverRef::builtin("generic"),
            EngineOptions::default(),
        )
    }

    #[test]
    fn save_load_roundtrip_and_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        store.claim("h1").unwrap();
        let mut rec = record("h1");
        rec.driver_state.insert("ip".into(), "10.0.0.1".into());
        store.save(&rec).unwrap();
        let back = store.load("h1").unwrap();
        assert_eq!(
            back.driver_state.get("ip").map(String::as_str),
            Some("10.0.0.1")
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(store.machine_dir("h1").join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = fs::metadata(store.machine_dir("h1"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn claim_refuses_existing_and_list_sorts_naturally() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        for n in ["h10", "h2", "H1"] {
            store.claim(n).unwrap();
            store.save(&record(n)).unwrap();
        }
        let err = store.claim("h2").unwrap_err().to_string();
        assert_eq!(err, "Docker machine \"h2\" already exists");
        fs::create_dir_all(store.machines_dir().join(".hidden")).unwrap();
        assert_eq!(store.list().unwrap(), vec!["H1", "h2", "h10"]);
    }

    #[test]
    fn load_errors_name_the_machine() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        let e = store.load("nope").unwrap_err().to_string();
        assert!(
            e.starts_with("Docker machine \"nope\" does not exist."),
            "{e}"
        );
        store.claim("bad").unwrap();
        fs::write(store.machine_dir("bad").join("config.json"), b"{not json").unwrap();
        let e = store.load("bad").unwrap_err().to_string();
        assert!(
            e.contains("machine \"bad\"") && e.contains("config.json"),
            "{e}"
        );
        // Removing one machine leaves the others alone.
        store.claim("keep").unwrap();
        store.save(&record("keep")).unwrap();
        store.remove("bad").unwrap();
        assert!(store.load("keep").is_ok());
        assert!(!store.exists("bad"));
    }

    #[test]
    fn install_method_is_stored_as_its_name_and_an_unknown_one_names_the_machine() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        store.claim("m").unwrap();
        let mut rec = record("m");
        rec.engine.install_method = InstallMethod::Script;
        store.save(&rec).unwrap();
        let path = store.machine_dir("m").join("config.json");
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"install_method\": \"script\""), "{text}");
        assert_eq!(
            store.load("m").unwrap().engine.install_method,
            InstallMethod::Script
        );
        // Records written before the default was stored hold "" for auto.
        fs::write(&path, text.replace("\"script\"", "\"\"")).unwrap();
        assert_eq!(
            store.load("m").unwrap().engine.install_method,
            InstallMethod::Auto
        );
        fs::write(&path, text.replace("\"script\"", "\"snap\"")).unwrap();
        let e = store.load("m").unwrap_err().to_string();
        assert!(
            e.starts_with("machine \"m\": cannot read")
                && e.contains("unknown engine install method \"snap\""),
            "{e}"
        );
    }

    #[test]
    fn an_oversized_record_is_refused_unread() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path());
        store.claim("huge").unwrap();
        let path = store.machine_dir("huge").join("config.json");
        let f = fs::File::create(&path).unwrap();
        f.set_len(512 << 20).unwrap(); // sparse: no disk used
        let started = std::time::Instant::now();
        let e = store.load("huge").unwrap_err().to_string();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(
            e.contains("machine \"huge\"") && e.contains("512 MiB") && e.contains("4 MiB"),
            "{e}"
        );
        assert!(e.contains("dmw rm -f huge"), "{e}");
        // Just under the limit is still read (and here fails as JSON, not as too big).
        f.set_len(MAX_RECORD_BYTES).unwrap();
        let e = store.load("huge").unwrap_err().to_string();
        assert!(!e.contains("MiB"), "{e}");
    }
}
