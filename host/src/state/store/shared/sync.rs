//! The working copy of a shared store: every command reads and writes plain files (the
//! docker CLI reads `DOCKER_CERT_PATH`, ssh reads the key), and this module keeps them in
//! step with the backend.
//!
//! - **Pull** (when a command opens the store, and for one machine once its lock is taken):
//!   one listing, then only the keys whose version changed since this copy last saw them,
//!   read in parallel. A file changed here and not yet pushed is kept when the backend's
//!   version did not move (it is pushed next); when both moved, the backend wins and the
//!   local file is kept beside it as `FILE.unpushed`. Keys gone from the backend (a machine
//!   another member removed) go from the copy too.
//! - **Push** (each record save, and a machine's files when its lock is released): each
//!   changed file with compare-and-swap on the version last seen, or create-once for a
//!   new key; a conflict is an error, never an overwrite.
//! - The versions and checksums last synced are in `sync.json` beside the copy, written
//!   under a file lock so that local processes sharing the copy do not race.
//!
//! Only the files named here cross: the CA directory's four files and, per machine (a valid
//! machine name), its record, TLS files, SSH key pair and pinned host key. Private keys go
//! encrypted (`secrets`), records with their secret values sealed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::lock::{self, Attempt, Held};
use super::remote::{Entry, Location, Object, Remote, Write, Written};
use super::secrets::{self, Identity};
use crate::state::store::layout;

/// Reads in flight at once during a pull.
const PARALLEL_READS: usize = 16;

/// Largest object read from the backend (a record is at most 4 MiB).
const MAX_OBJECT: usize = crate::state::store::MAX_RECORD_BYTES as usize;

/// The files of the CA directory that are shared, in the order they are published (the
/// certificate first: its create-once write decides whose CA the team gets).
pub const CERT_FILES: [&str; 4] = [
    layout::CA_CERT,
    layout::CA_KEY,
    layout::CLIENT_CERT,
    layout::CLIENT_KEY,
];

/// The files of a machine directory that are shared.
pub const MACHINE_FILES: [&str; 9] = [
    layout::RECORD_FILE,
    layout::CA_CERT,
    layout::CLIENT_CERT,
    layout::CLIENT_KEY,
    layout::SERVER_CERT,
    layout::SERVER_KEY,
    layout::SSH_KEY_FILE,
    layout::SSH_PUBLIC_KEY_FILE,
    layout::KNOWN_HOSTS_FILE,
];

/// How a shared file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// As it is (certificates, public keys, pinned host keys).
    Clear(u32),
    /// A machine record: clear, its secret values sealed.
    Record,
    /// A private key: encrypted.
    Secret,
}

/// How `key` is shared, or `None` when it is not a shared file.
fn kind(key: &str) -> Option<Kind> {
    let parts: Vec<&str> = key.split('/').collect();
    let file = match parts.as_slice() {
        ["certs", f] if CERT_FILES.contains(f) => *f,
        ["machines", name, f]
            if crate::text::names::is_valid(name) && MACHINE_FILES.contains(f) =>
        {
            *f
        }
        _ => return None,
    };
    Some(match file {
        layout::RECORD_FILE => Kind::Record,
        layout::CA_KEY | layout::CLIENT_KEY | layout::SERVER_KEY | layout::SSH_KEY_FILE => {
            Kind::Secret
        }
        layout::KNOWN_HOSTS_FILE => Kind::Clear(0o600),
        _ => Kind::Clear(0o644),
    })
}

/// The machine a key belongs to.
fn machine_of(key: &str) -> Option<&str> {
    key.strip_prefix("machines/")?.split('/').next()
}

/// What this copy last synced of one key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Synced {
    version: String,
    sha256: String,
}

/// `sync.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    url: String,
    keys: BTreeMap<String, Synced>,
}

/// A lock this process holds, renewed by a thread.
struct HeldLock {
    refs: usize,
    /// Taken by `claim` and not yet adopted by `lock`.
    claimed: bool,
    held: Arc<Mutex<Held>>,
    stop: Arc<AtomicBool>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

/// A shared store's backend and its working copy.
pub struct Shared {
    remote: Arc<Remote>,
    url: String,
    root: PathBuf,
    command: String,
    lock_timeout: Duration,
    identity: Option<Identity>,
    recipients: Mutex<Option<Vec<String>>>,
    held: Mutex<HashMap<String, HeldLock>>,
    /// Locks seen in the last listing: machine name → live until (seconds), if known.
    seen_locks: Mutex<HashMap<String, Option<i64>>>,
    /// Keys this member could not decrypt in the last pull.
    locked_out: Mutex<Vec<String>>,
}

/// Run `fut` to completion on a runtime of its own (callers may be inside another runtime).
pub fn block<T: Send>(fut: impl std::future::Future<Output = Result<T>> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start a runtime for the shared store")?
                .block_on(fut)
        })
        .join()
        .map_err(|_| anyhow!("the shared store's thread panicked"))?
    })
}

/// SHA-256 of `bytes`, hex.
fn sha(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

impl Shared {
    /// Open the shared store at `url` with its working copy at `root`, for `command`.
    pub fn open(
        url: &str,
        loc: &Location,
        root: &Path,
        command: &str,
        lock_timeout: Duration,
    ) -> Result<Shared> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create the working copy {}", root.display()))?;
        crate::state::store::set_mode(root, 0o700)?;
        let identity = Identity::load(&secrets::identity_path()?)?;
        Ok(Shared {
            remote: Arc::new(Remote::open(loc, root)?),
            url: url.to_string(),
            root: root.to_path_buf(),
            command: command.to_string(),
            lock_timeout,
            identity,
            recipients: Mutex::new(None),
            held: Mutex::new(HashMap::new()),
            seen_locks: Mutex::new(HashMap::new()),
            locked_out: Mutex::new(Vec::new()),
        })
    }

    /// The store's URL as the user gave it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The backend.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// The member's identity, if there is one.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// The keys of this pull that this member could not decrypt.
    pub fn locked_out(&self) -> Vec<String> {
        self.locked_out
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// The store's recipients (read once per command).
    pub async fn recipients(&self) -> Result<Vec<String>> {
        if let Some(r) = self.recipients.lock().ok().and_then(|r| r.clone()) {
            return Ok(r);
        }
        let r = match self.remote.get(secrets::RECIPIENTS_KEY).await? {
            Some(o) => secrets::parse_recipients(&String::from_utf8_lossy(&o.bytes))
                .with_context(|| format!("the recipients of {}", self.url))?,
            None => Vec::new(),
        };
        if let Ok(mut cache) = self.recipients.lock() {
            *cache = Some(r.clone());
        }
        Ok(r)
    }

    /// Forget the cached recipients (after they changed).
    pub fn forget_recipients(&self) {
        if let Ok(mut cache) = self.recipients.lock() {
            *cache = None;
        }
    }

    fn offline(&self, e: anyhow::Error) -> anyhow::Error {
        anyhow!(
            "the shared store {} could not be read: {e:#}; the working copy {} was left as it was",
            self.url,
            self.root.display()
        )
    }

    /// Take the file lock of the index (local processes sharing the copy).
    fn index_lock(&self) -> Result<std::fs::File> {
        let path = self.root.join("sync.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own; released when the file closes.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot lock {}", path.display()));
        }
        Ok(file)
    }

    fn load_index(&self) -> Index {
        let index: Index = std::fs::read(self.root.join("sync.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if index.url == self.url {
            index
        } else {
            Index {
                url: self.url.clone(),
                keys: BTreeMap::new(),
            }
        }
    }

    fn save_index(&self, index: &Index) -> Result<()> {
        let bytes = serde_json::to_vec(index).context("cannot encode sync.json")?;
        crate::state::store::write_private(&self.root.join("sync.json"), &bytes)
    }

    /// Pull every key under `prefix` (`""`: the whole store).
    pub async fn pull(&self, prefix: &str) -> Result<()> {
        let entries = self
            .remote
            .list(prefix)
            .await
            .map_err(|e| self.offline(e))?;
        if prefix.is_empty() || prefix.starts_with("locks/") {
            let mut seen = HashMap::new();
            for e in &entries {
                if let Some(name) = e.key.strip_prefix("locks/") {
                    // Live until its expiry (read from the value when the listing carries
                    // it), else until a lifetime after it was last written.
                    let until = e
                        .value
                        .as_deref()
                        .and_then(|v| serde_json::from_slice::<lock::LockInfo>(v).ok())
                        .map(|i| i.expires)
                        .or_else(|| e.modified.map(|m| m + lock::ttl().as_secs() as i64));
                    seen.insert(name.to_string(), until);
                }
            }
            if let Ok(mut s) = self.seen_locks.lock() {
                *s = seen;
            }
        }
        let _guard = self.index_lock()?;
        let mut index = self.load_index();
        let wanted: Vec<Entry> = entries
            .iter()
            .filter(|e| kind(&e.key).is_some())
            .filter(|e| {
                index
                    .keys
                    .get(&e.key)
                    .is_none_or(|s| s.version != e.version || !self.root.join(&e.key).exists())
            })
            .cloned()
            .collect();
        let fetched: Vec<(Entry, Result<Option<Object>>)> = futures::stream::iter(wanted)
            .map(|e| fetch(self.remote.clone(), e))
            .buffer_unordered(PARALLEL_READS)
            .collect()
            .await;
        let mut locked_out = Vec::new();
        for (entry, got) in fetched {
            let Some(object) = got.map_err(|e| self.offline(e))? else {
                continue; // deleted since the listing
            };
            if object.bytes.len() > MAX_OBJECT {
                eprintln!(
                    "Warning: {} in {} is over {} MiB; it was not read",
                    entry.key,
                    self.url,
                    MAX_OBJECT >> 20
                );
                continue;
            }
            match self.take(&mut index, &entry.key, object)? {
                Taken::Written | Taken::KeptLocal => {}
                Taken::LockedOut => locked_out.push(entry.key.clone()),
            }
        }
        // Keys gone from the backend.
        let present: std::collections::HashSet<&str> =
            entries.iter().map(|e| e.key.as_str()).collect();
        let gone: Vec<String> = index
            .keys
            .keys()
            .filter(|k| k.starts_with(prefix) && !present.contains(k.as_str()))
            .cloned()
            .collect();
        let mut gone_machines = Vec::new();
        for key in gone {
            let path = self.root.join(&key);
            let synced = index.keys.remove(&key);
            let unchanged = std::fs::read(&path)
                .ok()
                .is_some_and(|b| synced.as_ref().is_some_and(|s| s.sha256 == sha(&b)));
            if unchanged {
                let _ = std::fs::remove_file(&path);
            }
            if let Some(m) = machine_of(&key)
                && key.ends_with(&format!("/{}", layout::RECORD_FILE))
            {
                gone_machines.push(m.to_string());
            }
        }
        for m in gone_machines {
            let held = self.held.lock().map(|h| h.contains_key(&m)).unwrap_or(true);
            let dir = self.root.join("machines").join(&m);
            if !held && !dir.join(layout::RECORD_FILE).exists() {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        self.save_index(&index)?;
        if let Ok(mut l) = self.locked_out.lock() {
            l.retain(|k| !k.starts_with(prefix));
            l.extend(locked_out);
        }
        Ok(())
    }

    /// Write one pulled object into the copy.
    fn take(&self, index: &mut Index, key: &str, object: Object) -> Result<Taken> {
        let Some(kind) = kind(key) else {
            return Ok(Taken::KeptLocal);
        };
        let path = self.root.join(key);
        let local = std::fs::read(&path).ok();
        let last = index.keys.get(key).cloned();
        if let (Some(bytes), Some(last)) = (&local, &last)
            && sha(bytes) != last.sha256
        {
            if last.version == object.version {
                return Ok(Taken::KeptLocal); // changed here only: pushed next
            }
            let aside = path.with_file_name(format!(
                "{}.unpushed",
                path.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ));
            let _ = crate::state::store::write_private(&aside, bytes);
            eprintln!(
                "Warning: {key} changed both here and in {}; the store's version is used, yours is kept as {}",
                self.url,
                aside.display()
            );
        }
        let (bytes, mode) = match kind {
            Kind::Clear(mode) => (object.bytes, mode),
            Kind::Record => {
                let (opened, all) = secrets::open_record(&object.bytes, self.identity.as_ref())
                    .with_context(|| format!("{key} in {}", self.url))?;
                if !all {
                    // Written anyway: the clear part is what `ls` needs.
                    self.note_locked_out(key);
                }
                (opened, 0o600)
            }
            Kind::Secret => {
                let opened = self
                    .identity
                    .as_ref()
                    .filter(|_| secrets::is_age(&object.bytes))
                    .and_then(|id| secrets::decrypt(id, &object.bytes));
                match opened {
                    Some(plain) => (plain, 0o600),
                    None => return Ok(Taken::LockedOut),
                }
            }
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            if key.starts_with("machines/") || key.starts_with("certs/") {
                crate::state::store::set_mode(dir, 0o700)?;
            }
        }
        crate::state::store::write_atomic(&path, &bytes, mode)?;
        index.keys.insert(
            key.to_string(),
            Synced {
                version: object.version,
                sha256: sha(&bytes),
            },
        );
        Ok(Taken::Written)
    }

    fn note_locked_out(&self, key: &str) {
        if let Ok(mut l) = self.locked_out.lock() {
            l.push(key.to_string());
        }
    }

    /// Push `keys` (files of the copy) that changed since they were last synced.
    pub async fn push(&self, keys: &[String]) -> Result<()> {
        let _guard = self.index_lock()?;
        let mut index = self.load_index();
        let result = self.push_locked(&mut index, keys).await;
        self.save_index(&index)?;
        result
    }

    async fn push_locked(&self, index: &mut Index, keys: &[String]) -> Result<()> {
        for key in keys {
            let Some(kind) = kind(key) else { continue };
            let path = self.root.join(key);
            let local = match std::fs::read(&path) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            };
            let last = index.keys.get(key).cloned();
            let Some(bytes) = local else {
                if last.is_some() {
                    self.remote.delete(key).await?;
                    index.keys.remove(key);
                }
                continue;
            };
            let digest = sha(&bytes);
            if last.as_ref().is_some_and(|l| l.sha256 == digest) {
                continue;
            }
            let sealed = match kind {
                Kind::Clear(_) => bytes,
                Kind::Record => {
                    secrets::seal_record(&bytes, &self.recipients_for_secrets().await?)?
                }
                Kind::Secret => secrets::encrypt(&self.recipients_for_secrets().await?, &bytes)
                    .with_context(|| format!("cannot encrypt {key}"))?,
            };
            let mode = match &last {
                Some(l) => Write::Replace(&l.version),
                None => Write::Create,
            };
            match self.remote.put(key, sealed, mode).await? {
                Written::Done(version) => {
                    index.keys.insert(
                        key.clone(),
                        Synced {
                            version,
                            sha256: digest,
                        },
                    );
                }
                Written::Conflict => bail!(Conflict {
                    key: key.clone(),
                    url: self.url.clone()
                }),
            }
        }
        Ok(())
    }

    /// The recipients, or an error saying how to get some.
    async fn recipients_for_secrets(&self) -> Result<Vec<String>> {
        let r = self.recipients().await?;
        if r.is_empty() {
            bail!(
                "the shared store {} has no recipients to encrypt private keys to: run `dmw store init` first",
                self.url
            );
        }
        // Anyone who can write to the backend can write its recipients: a key this
        // computer has not approved never gets a secret from it.
        let pinned = self.pinned_recipients();
        let new: Vec<&String> = match &pinned {
            Some(p) => r.iter().filter(|k| !p.contains(k)).collect(),
            None => Vec::new(),
        };
        if !new.is_empty() {
            let shown: Vec<String> = new
                .iter()
                .map(|k| format!("{}…", k.chars().take(24).collect::<String>()))
                .collect();
            bail!(
                "the recipients of {} gained {} key(s) that this computer has not approved ({}); nothing was encrypted to them. If a member of your team added them, `dmw store recipients approve` trusts the current list",
                self.url,
                new.len(),
                shown.join(", ")
            );
        }
        self.pin_recipients(&r)?;
        Ok(r)
    }

    /// The recipients this computer approved (`None` before its first encryption).
    pub fn pinned_recipients(&self) -> Option<Vec<String>> {
        let text = std::fs::read_to_string(self.root.join("recipients.approved")).ok()?;
        secrets::parse_recipients(&text).ok()
    }

    /// Approve `recipients` on this computer (they are what its secrets are encrypted to).
    pub fn pin_recipients(&self, recipients: &[String]) -> Result<()> {
        let mut text = recipients.join("\n");
        text.push('\n');
        crate::state::store::write_private(&self.root.join("recipients.approved"), text.as_bytes())
    }

    /// The shared keys of machine `name`.
    pub fn machine_keys(name: &str) -> Vec<String> {
        MACHINE_FILES
            .iter()
            .map(|f| format!("machines/{name}/{f}"))
            .collect()
    }

    /// The shared keys of the CA directory, in publishing order.
    pub fn cert_keys() -> Vec<String> {
        CERT_FILES.iter().map(|f| format!("certs/{f}")).collect()
    }

    /// Take the lock of machine `name` (or count one more user of a lock this process holds),
    /// waiting up to the lock timeout, then pull the machine.
    pub fn lock(&self, name: &str, claim: bool) -> Result<()> {
        {
            let mut held = self
                .held
                .lock()
                .map_err(|_| anyhow!("lock table poisoned"))?;
            if let Some(h) = held.get_mut(name) {
                if h.claimed && !claim {
                    h.claimed = false;
                } else {
                    h.refs += 1;
                }
                return Ok(());
            }
        }
        let started = std::time::Instant::now();
        let held = loop {
            match block(lock::try_take(&self.remote, name, &self.command))? {
                Attempt::Held { held, took_over } => {
                    if let Some(old) = took_over {
                        eprintln!(
                            "Warning: the lock of {name} had expired and was taken over ({}, expired at {})",
                            old.describe(name),
                            old.expires
                        );
                    }
                    break held;
                }
                Attempt::Busy(info) => {
                    if started.elapsed() >= self.lock_timeout {
                        bail!(
                            "{}; wait for it to finish (DMW_LOCK_TIMEOUT=SECONDS waits that long), or if that command is gone, `dmw store unlock {name}` breaks its lock",
                            info.describe(name)
                        );
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        };
        let held = Arc::new(Mutex::new(held));
        let stop = Arc::new(AtomicBool::new(false));
        let renewer = {
            let (remote, held, stop, name) = (
                self.remote.clone(),
                held.clone(),
                stop.clone(),
                name.to_string(),
            );
            std::thread::spawn(move || renew_until_stopped(&remote, &held, &stop, &name))
        };
        if let Ok(mut table) = self.held.lock() {
            table.insert(
                name.to_string(),
                HeldLock {
                    refs: 1,
                    claimed: claim,
                    held,
                    stop,
                    renewer: Some(renewer),
                },
            );
        }
        block(self.pull(&format!("machines/{name}/")))
    }

    /// Whether this process holds the lock of `name`.
    pub fn holds(&self, name: &str) -> bool {
        self.held.lock().is_ok_and(|h| h.contains_key(name))
    }

    /// One user of the lock of `name` is done; the last one pushes the machine and releases it.
    pub fn unlock(&self, name: &str) {
        let entry = {
            let Ok(mut held) = self.held.lock() else {
                return;
            };
            match held.get_mut(name) {
                Some(h) if h.refs > 1 => {
                    h.refs -= 1;
                    return;
                }
                Some(_) => held.remove(name),
                None => return,
            }
        };
        let Some(mut entry) = entry else { return };
        let pushed = block(self.push(&Self::machine_keys(name)));
        entry.stop.store(true, Ordering::Relaxed);
        if let Some(t) = entry.renewer.take() {
            let _ = t.join();
        }
        let held = entry.held.lock().map(|h| h.clone());
        if let Ok(held) = held
            && let Err(e) = block(async { lock::release(&self.remote, &held).await })
        {
            eprintln!(
                "Warning: the lock of {name} in {} could not be released ({e:#}); it expires within {} s",
                self.url,
                lock::ttl().as_secs()
            );
        }
        if let Err(e) = pushed {
            eprintln!(
                "Warning: machine {name} is saved on this computer but not in the shared store {}: {e:#}; the next command on it pushes it again",
                self.url
            );
        }
    }

    /// Release the lock `claim` took for `name` if no command lock adopted it.
    pub fn release_claim(&self, name: &str) {
        let claimed = self
            .held
            .lock()
            .is_ok_and(|h| h.get(name).is_some_and(|l| l.claimed));
        if claimed {
            self.unlock(name);
        }
    }

    /// Whether another process holds the lock of `name` (as of the last listing).
    pub fn locked_elsewhere(&self, name: &str) -> bool {
        if self.holds(name) {
            return false;
        }
        let seen = self
            .seen_locks
            .lock()
            .ok()
            .and_then(|s| s.get(name).cloned());
        match seen {
            None => false,
            Some(None) => true,
            Some(Some(until)) => lock::now() <= until,
        }
    }

    /// Delete machine `name` from the backend (its lock must be held).
    pub fn remove_machine(&self, name: &str) -> Result<()> {
        if !self.holds(name) {
            bail!("machine {name}: its lock in {} is not held", self.url);
        }
        block(async {
            let prefix = format!("machines/{name}/");
            let entries = self.remote.list(&prefix).await?;
            for e in entries {
                self.remote.delete(&e.key).await?;
            }
            let _guard = self.index_lock()?;
            let mut index = self.load_index();
            index.keys.retain(|k, _| !k.starts_with(&prefix));
            self.save_index(&index)
        })
    }

    /// Publish the CA directory after a bootstrap. `Ok(false)`: another member's CA was
    /// published first; the copy now holds theirs and the bootstrap must run again.
    pub fn publish_certs(&self, certs_dir: &Path) -> Result<bool> {
        match block(self.push(&Self::cert_keys())) {
            Ok(()) => Ok(true),
            Err(e) if e.downcast_ref::<Conflict>().is_some() => {
                // Another member's CA won the create-once: take it (its key may follow the
                // certificate by a moment).
                for f in CERT_FILES {
                    let _ = std::fs::remove_file(certs_dir.join(f));
                }
                block(async {
                    let _guard = self.index_lock()?;
                    let mut index = self.load_index();
                    index.keys.retain(|k, _| !k.starts_with("certs/"));
                    self.save_index(&index)
                })?;
                for _ in 0..30 {
                    block(self.pull("certs/"))?;
                    if CERT_FILES.iter().all(|f| certs_dir.join(f).exists()) {
                        return Ok(false);
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
                bail!(
                    "another member is creating the CA of {} and it is not complete after 15 s; run the command again",
                    self.url
                )
            }
            Err(e) => Err(e),
        }
    }
}

/// One key of a listing, with its value (from the listing when it carried one).
async fn fetch(remote: Arc<Remote>, e: Entry) -> (Entry, Result<Option<Object>>) {
    let got = match &e.value {
        Some(v) => Ok(Some(Object {
            version: e.version.clone(),
            bytes: v.clone(),
        })),
        None => remote.get(&e.key).await,
    };
    (e, got)
}

/// How a pulled object ended.
enum Taken {
    Written,
    KeptLocal,
    LockedOut,
}

/// A conditional write lost: the key changed in the backend since this copy read it.
#[derive(Debug)]
pub struct Conflict {
    key: String,
    url: String,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} changed in the shared store {} since this computer read it (another member's command?); nothing was overwritten: run the command again",
            self.key, self.url
        )
    }
}

impl std::error::Error for Conflict {}

/// The renewal loop of one held lock.
fn renew_until_stopped(remote: &Remote, held: &Mutex<Held>, stop: &AtomicBool, name: &str) {
    let period = lock::ttl() / 3;
    loop {
        let started = std::time::Instant::now();
        while started.elapsed() < period {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let Ok(mut current) = held.lock().map(|h| h.clone()) else {
            return;
        };
        match block(async { lock::renew(remote, &mut current).await }) {
            Ok(true) => {
                if let Ok(mut h) = held.lock() {
                    *h = current;
                }
            }
            Ok(false) => {
                eprintln!(
                    "Warning: the lock of {name} was broken or taken over by another member; this command's changes may conflict with theirs"
                );
                return;
            }
            Err(e) => eprintln!("Warning: the lock of {name} could not be renewed: {e:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_files_of_valid_machines_cross() {
        assert_eq!(kind("certs/ca.pem"), Some(Kind::Clear(0o644)));
        assert_eq!(kind("certs/ca-key.pem"), Some(Kind::Secret));
        assert_eq!(kind("machines/m1/config.json"), Some(Kind::Record));
        assert_eq!(kind("machines/m1/id_ssh"), Some(Kind::Secret));
        assert_eq!(kind("machines/m1/known_hosts"), Some(Kind::Clear(0o600)));
        for bad in [
            "machines/../config.json",
            "machines/m1/driver/x",
            "machines/m1/vm/disk.qcow2",
            "machines/.x/config.json",
            "certs/../../etc/passwd",
            "plugins/grants.json",
            "locks/m1",
        ] {
            assert_eq!(kind(bad), None, "{bad}");
        }
        assert_eq!(machine_of("machines/m1/config.json"), Some("m1"));
    }
}
