//! What `dmw store …` does: choose the store every command uses, join a shared store (an
//! identity and the team's recipients), change the recipients (every secret re-encrypted),
//! break a lock, and move machines from a file store into a shared one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use crate::state::store::Store;
use crate::state::store::shared::remote::{Write, Written};
use crate::state::store::shared::secrets::{self, Identity};
use crate::state::store::shared::sync::{Shared, block};
use crate::state::store::shared::{self, Location, lock};

/// Where a member stands after joining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// The store had no recipients: this member is now the first.
    First,
    /// Already a recipient.
    Recipient,
    /// Not a recipient yet: another member must add this line.
    Outside,
}

/// What joining did.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The identity file made now, if one was.
    pub identity_created: Option<PathBuf>,
    /// This member's recipient line (`age1…`).
    pub recipient: String,
    /// Where the member stands.
    pub membership: Membership,
}

/// `dmw store use URL`: check the URL, remember it, and for a shared store join it.
pub fn use_store(url: &str) -> Result<Option<Joined>> {
    let config = shared::config_file()?;
    let default = url == "default" || url.is_empty();
    if default {
        match std::fs::remove_file(&config) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", config.display()));
            }
            _ => return Ok(None),
        }
    }
    let joined = match Location::parse(url)? {
        Some(_) => {
            let store = Store::open(url, "store", std::time::Duration::ZERO)?;
            let shared = store
                .shared()
                .ok_or_else(|| anyhow!("{url} did not open as a shared store"))?;
            Some(join(shared)?)
        }
        None => {
            if !Path::new(url).is_absolute() {
                bail!("{url}: a store directory must be an absolute path");
            }
            None
        }
    };
    if let Some(dir) = config.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    crate::state::store::write_private(&config, format!("{url}\n").as_bytes())?;
    Ok(joined)
}

/// `dmw store init`: make this member's identity if there is none, and make it the first
/// recipient of a store that has none.
pub fn join(shared: &Shared) -> Result<Joined> {
    let path = secrets::identity_path()?;
    let (identity, identity_created) = match Identity::load(&path)? {
        Some(i) => (i, None),
        None => (Identity::create(&path)?, Some(path.clone())),
    };
    let recipient = identity.recipient()?;
    let membership = block(async {
        match shared.remote().get(secrets::RECIPIENTS_KEY).await? {
            Some(o) => {
                let list = secrets::parse_recipients(&String::from_utf8_lossy(&o.bytes))?;
                Ok(if list.contains(&recipient) {
                    Membership::Recipient
                } else {
                    Membership::Outside
                })
            }
            None => {
                let body = format!("# dmw store recipients (age)\n{recipient}\n").into_bytes();
                match shared
                    .remote()
                    .put(secrets::RECIPIENTS_KEY, body, Write::Create)
                    .await?
                {
                    Written::Done(_) => {
                        shared.pin_recipients(std::slice::from_ref(&recipient))?;
                        Ok(Membership::First)
                    }
                    // Another member initialised it a moment ago.
                    Written::Conflict => Ok(Membership::Outside),
                }
            }
        }
    })?;
    Ok(Joined {
        identity_created,
        recipient,
        membership,
    })
}

/// The recipients of the store.
pub fn recipients(shared: &Shared) -> Result<Vec<String>> {
    block(shared.recipients())
}

/// Change the recipients (`add` lines, `remove` lines) and re-encrypt every secret of the
/// store to the new set. Needs an identity that can read them. Returns the new list and
/// how many objects were re-encrypted.
pub fn change_recipients(
    shared: &Shared,
    add: &[String],
    remove: &[String],
) -> Result<(Vec<String>, usize)> {
    let identity = shared.identity().ok_or_else(|| {
        anyhow!(
            "you have no store identity ({}): only a member who can read the store's secrets can change its recipients",
            secrets::identity_path()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )
    })?;
    for line in add {
        secrets::parse_recipients(line)?;
    }
    block(async {
        let current = shared.remote().get(secrets::RECIPIENTS_KEY).await?;
        let (mut list, version) = match &current {
            Some(o) => (
                secrets::parse_recipients(&String::from_utf8_lossy(&o.bytes))?,
                Some(o.version.clone()),
            ),
            None => bail!("the store has no recipients yet: run `dmw store init` first"),
        };
        for a in add {
            let a = a.trim().to_string();
            if !list.contains(&a) {
                list.push(a);
            }
        }
        list.retain(|r| !remove.iter().any(|x| x.trim() == r));
        if list.is_empty() {
            bail!("that would leave the store with no recipient: nobody could read its keys");
        }
        let body = format!("# dmw store recipients (age)\n{}\n", list.join("\n")).into_bytes();
        let mode = match &version {
            Some(v) => Write::Replace(v),
            None => Write::Create,
        };
        if shared
            .remote()
            .put(secrets::RECIPIENTS_KEY, body, mode)
            .await?
            == Written::Conflict
        {
            bail!("the recipients changed meanwhile (another member?): run the command again");
        }
        shared.forget_recipients();
        // This member chose the new list: it is what this computer encrypts to.
        shared.pin_recipients(&list)?;
        let mut count = 0;
        for entry in shared.remote().list("").await? {
            let key = &entry.key;
            let is_record = key.starts_with("machines/") && key.ends_with("/config.json");
            let Some(object) = shared.remote().get(key).await? else {
                continue;
            };
            let new = if is_record {
                let (opened, all) = secrets::open_record(&object.bytes, Some(identity))?;
                if !all {
                    bail!(
                        "{key}: a secret value cannot be read with your identity, so it cannot be re-encrypted; a member who can read it must run this"
                    );
                }
                secrets::seal_record(&opened, &list)?
            } else if secrets::is_age(&object.bytes) {
                let plain = secrets::decrypt(identity, &object.bytes).ok_or_else(|| {
                    anyhow!("{key} cannot be read with your identity, so it cannot be re-encrypted; a member who can read it must run this")
                })?;
                secrets::encrypt(&list, &plain)?
            } else {
                continue;
            };
            if new == object.bytes {
                continue;
            }
            match shared
                .remote()
                .put(key, new, Write::Replace(&object.version))
                .await?
            {
                Written::Done(_) => count += 1,
                Written::Conflict => bail!(
                    "{key} changed meanwhile (another member's command?): run the command again to re-encrypt the rest"
                ),
            }
        }
        Ok((list, count))
    })
}

/// `dmw store recipients approve`: trust the store's current recipients on this computer
/// (after another member added some); returns them.
pub fn approve_recipients(shared: &Shared) -> Result<Vec<String>> {
    shared.forget_recipients();
    let list = block(shared.recipients())?;
    if list.is_empty() {
        bail!("the store has no recipients yet: run `dmw store init` first");
    }
    shared.pin_recipients(&list)?;
    Ok(list)
}

/// `dmw store unlock NAME`: break the lock of a machine; what it said.
pub fn unlock(shared: &Shared, name: &str) -> Result<Option<lock::LockInfo>> {
    if !crate::text::names::is_valid(name) {
        bail!("{name:?} is not a machine name");
    }
    block(lock::break_lock(shared.remote(), name))
}

/// What `push` or `pull --into` did with one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// Copied.
    Copied(String),
    /// The destination has a machine of that name already.
    Exists(String),
    /// Its private keys cannot be read with this member's identity: not copied.
    Unreadable(String),
}

/// The file store in the user's home, `~/.dmw` (whatever store is in use).
pub fn home_store() -> Result<PathBuf> {
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(Path::new(&h).join(".dmw")),
        None => bail!("cannot find ~/.dmw: set HOME, or name the store with --from"),
    }
}

/// Open the shared store at `url` for `dmw store push URL`.
pub fn open_shared(url: &str) -> Result<Store> {
    if Location::parse(url)?.is_none() {
        bail!("{url} is not a shared store's URL (s3://BUCKET/PREFIX or etcd://HOST:PORT/PREFIX)");
    }
    Store::open(url, "store push", std::time::Duration::ZERO)
}

/// `dmw store push URL`: copy every machine of the file store at `from` (and its CA, when
/// the shared store has none) into the shared store `to`.
pub fn push(from: &Path, to: &Store) -> Result<(Vec<Moved>, bool)> {
    if to.shared().is_none() {
        bail!("{} is not a shared store", to.root().display());
    }
    if !from.join("machines").is_dir() && !from.join("certs").is_dir() {
        bail!(
            "{} is not a dmw store (it has no machines/ or certs/); name one with --from",
            from.display()
        );
    }
    let local = Store::new(from);
    let mut ca_copied = false;
    if !to.certs().ca_cert().exists() && local.certs().ca_cert().exists() {
        copy_files(
            &local.certs_dir(),
            &to.certs_dir(),
            &crate::state::store::shared::sync::CERT_FILES,
        )?;
        ca_copied = true;
    }
    if to.certs().ca_cert().exists() {
        // Also what an earlier push copied but could not publish. `false`: another
        // member's CA was there first and is kept (the machines keep their own copies).
        ca_copied &= to.publish_certs()?;
    }
    let mut out = Vec::new();
    for name in local.list()? {
        if to.exists(&name) {
            out.push(Moved::Exists(name));
            continue;
        }
        out.push(copy_machine(&local.machine_dir(&name), to, name)?);
    }
    Ok((out, ca_copied))
}

/// `dmw store pull --into PATH`: copy every machine of the shared store `from` (its working
/// copy, just pulled) whose keys this member can read, and the CA when `into` has none,
/// into the file store at `into`.
pub fn pull_into(from: &Store, into: &Path) -> Result<(Vec<Moved>, bool)> {
    let Some(shared) = from.shared() else {
        bail!("{} is not a shared store", from.root().display());
    };
    let dest = Store::new(into);
    let locked_out = shared.locked_out();
    let mut ca_copied = false;
    if !dest.certs().ca_cert().exists()
        && from.certs().ca_cert().exists()
        && !locked_out.iter().any(|k| k.starts_with("certs/"))
    {
        copy_files(
            &from.certs_dir(),
            &dest.certs_dir(),
            &crate::state::store::shared::sync::CERT_FILES,
        )?;
        crate::state::store::set_mode(&dest.certs_dir(), 0o700)?;
        ca_copied = true;
    }
    let mut out = Vec::new();
    for name in from.list()? {
        let prefix = format!("machines/{name}/");
        if locked_out.iter().any(|k| k.starts_with(&prefix)) {
            out.push(Moved::Unreadable(name));
            continue;
        }
        out.push(copy_machine(&from.machine_dir(&name), &dest, name)?);
    }
    Ok((out, ca_copied))
}

/// Copy machine `name`'s shared files from the directory `from` into the store `to`: a new
/// name there (claimed, then locked while the files are copied; in a shared store they are
/// pushed when the lock is released), or `Exists` when `to` has it.
fn copy_machine(from: &Path, to: &Store, name: String) -> Result<Moved> {
    let dir = match to.claim(&name) {
        Ok(d) => d,
        Err(e) if e.to_string().contains("already exists") => return Ok(Moved::Exists(name)),
        Err(e) => return Err(e),
    };
    let _lock = to.lock(&name)?;
    copy_files(
        from,
        &dir,
        &crate::state::store::shared::sync::MACHINE_FILES,
    )?;
    Ok(Moved::Copied(name))
}

/// Copy the files `names` that exist in `from` into `to` (modes kept).
fn copy_files(from: &Path, to: &Path, names: &[&str]) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for n in names {
        let src = from.join(n);
        let bytes = match std::fs::read(&src) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", src.display())),
        };
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&src)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0o600);
        crate::state::store::write_atomic(&to.join(n), &bytes, mode)?;
    }
    Ok(())
}
