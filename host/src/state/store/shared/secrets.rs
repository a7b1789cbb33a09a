//! Secrets encrypted before they leave the computer, in the `age` format: the private keys
//! of the store (CA, client, machines' server and SSH keys) and the secret values of
//! machine records (driver and recipe store keys that `text::sanitize::is_secret_key`
//! names) go to the backend encrypted to the team's recipients; the rest of a record stays
//! clear, so `ls` and `inspect` need no key.
//!
//! Recipients are the backend's `recipients` object: one per line, an age post-quantum
//! hybrid public key (`age1pq1…`, what `dmw store init` makes, age's recommendation since
//! 0.13), or for teams that already have keys, a classic X25519 one (`age1…`) or an SSH
//! public key (`ssh-ed25519 …`, `ssh-rsa …`) — age refuses to mix post-quantum and classic
//! recipients in one file, so a store uses one kind. A member's identity is the file
//! `DMW_STORE_IDENTITY` names (default `~/.dmw/store-identity.txt`): an age identity file or
//! an unencrypted SSH private key.

use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;

/// Environment variable naming the member's identity file.
pub const IDENTITY_ENV: &str = "DMW_STORE_IDENTITY";

/// The key of the recipients object in the backend.
pub const RECIPIENTS_KEY: &str = "recipients";

/// How a secret value of a record is marked in the backend: this prefix, then the base64 of
/// an age file.
pub const SEALED_PREFIX: &str = "dmw-age:";

/// Largest recipients object read.
const MAX_RECIPIENTS: usize = 256;

/// The member's identity file: `$DMW_STORE_IDENTITY`, else `~/.dmw/store-identity.txt`.
pub fn identity_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(IDENTITY_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(Path::new(&h).join(".dmw").join("store-identity.txt")),
        None => bail!("cannot find the store identity: set HOME or {IDENTITY_ENV}"),
    }
}

/// A member's identity.
pub enum Identity {
    /// An age post-quantum hybrid identity (ML-KEM-768 + X25519).
    Pq(age::pq::Identity),
    /// An age classic X25519 identity.
    Age(age::x25519::Identity),
    /// An SSH private key.
    Ssh(age::ssh::Identity),
}

impl Identity {
    /// Read the identity file at `path`; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<Identity>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the identity {}", path.display()));
            }
        };
        if let Some(line) = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("AGE-SECRET-KEY-PQ-"))
        {
            let id: age::pq::Identity = line.parse().map_err(|e: &str| {
                anyhow!("{} is not an age identity file: {e}", path.display())
            })?;
            return Ok(Some(Identity::Pq(id)));
        }
        if let Some(line) = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        {
            let id: age::x25519::Identity = line.parse().map_err(|e: &str| {
                anyhow!("{} is not an age identity file: {e}", path.display())
            })?;
            return Ok(Some(Identity::Age(id)));
        }
        let id = age::ssh::Identity::from_buffer(
            std::io::Cursor::new(text.as_bytes()),
            Some(path.display().to_string()),
        )
        .with_context(|| format!("{} is not an age identity or an SSH key", path.display()))?;
        match id {
            age::ssh::Identity::Unencrypted(_) => Ok(Some(Identity::Ssh(id))),
            age::ssh::Identity::Encrypted(_) => bail!(
                "{} is a passphrase-protected SSH key; dmw needs an unencrypted one or an age identity (`dmw store init`)",
                path.display()
            ),
            age::ssh::Identity::Unsupported(_) => {
                bail!(
                    "{} is an SSH key of a kind age does not support",
                    path.display()
                )
            }
        }
    }

    /// Make a new age identity at `path` (0600, never over an existing file).
    pub fn create(path: &Path) -> Result<Identity> {
        use age::secrecy::ExposeSecret;
        let id = age::pq::Identity::generate();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let text = format!(
            "# created: {now}\n# public key: {}\n{}\n",
            id.to_public(),
            id.to_string().expose_secret()
        );
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .with_context(|| format!("cannot create the identity {}", path.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Identity::Pq(id))
    }

    /// The recipient line that encrypts to this identity.
    pub fn recipient(&self) -> Result<String> {
        match self {
            Identity::Pq(id) => Ok(id.to_public().to_string()),
            Identity::Age(id) => Ok(id.to_public().to_string()),
            Identity::Ssh(_) => bail!(
                "an SSH identity's recipient is its public key: add the `.pub` file's line with `dmw store recipients add`"
            ),
        }
    }

    fn as_dyn(&self) -> &dyn age::Identity {
        match self {
            Identity::Pq(i) => i,
            Identity::Age(i) => i,
            Identity::Ssh(i) => i,
        }
    }
}

/// Parse a recipients text (one per line, `#` comments): the valid ones, or an error
/// naming the bad line.
pub fn parse_recipients(text: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        recipient(line).with_context(|| format!("recipients line {}", i + 1))?;
        if !out.iter().any(|r| r == line) {
            out.push(line.to_string());
        }
    }
    if out.len() > MAX_RECIPIENTS {
        bail!("more than {MAX_RECIPIENTS} recipients");
    }
    Ok(out)
}

/// One recipient line as an age recipient.
// Classic X25519 and SSH recipients are deprecated by age 0.13 (not post-quantum); they
// are accepted for teams whose members already have such keys.
#[allow(deprecated)]
fn recipient(line: &str) -> Result<Box<dyn age::Recipient + Send>> {
    if line.starts_with("age1pq1") {
        let r: age::pq::Recipient = line
            .parse()
            .map_err(|e: &str| anyhow!("{line:?} is not an age recipient: {e}"))?;
        return Ok(Box::new(r));
    }
    if line.starts_with("age1") {
        let r: age::x25519::Recipient = line
            .parse()
            .map_err(|e: &str| anyhow!("{line:?} is not an age recipient: {e}"))?;
        return Ok(Box::new(r));
    }
    if line.starts_with("ssh-") {
        let r: age::ssh::Recipient = line.parse().map_err(|_| {
            anyhow!("{line:?} is not an SSH public key age accepts (ssh-ed25519, ssh-rsa)")
        })?;
        return Ok(Box::new(r));
    }
    bail!(
        "{line:?} is neither an age recipient (age1pq1…, age1…) nor an SSH public key (ssh-ed25519 …)"
    )
}

/// Encrypt `plain` to every recipient of `recipients`.
pub fn encrypt(recipients: &[String], plain: &[u8]) -> Result<Vec<u8>> {
    if recipients.is_empty() {
        bail!("the shared store has no recipients: run `dmw store init` first");
    }
    let boxed = recipients
        .iter()
        .map(|r| recipient(r))
        .collect::<Result<Vec<_>>>()?;
    let encryptor =
        age::Encryptor::with_recipients(boxed.iter().map(|r| r.as_ref() as &dyn age::Recipient))
            .map_err(|e| {
            anyhow!(
                "cannot encrypt to the store's recipients ({e}); age does not mix post-quantum (age1pq1…) and classic (age1…, ssh-…) recipients: use one kind"
            )
        })?;
    let mut out = Vec::with_capacity(plain.len() + 512);
    let mut w = encryptor.wrap_output(&mut out).context("cannot encrypt")?;
    w.write_all(plain).context("cannot encrypt")?;
    w.finish().context("cannot encrypt")?;
    Ok(out)
}

/// Decrypt an age file with `identity`; `None` when it is not one of the recipients.
pub fn decrypt(identity: &Identity, data: &[u8]) -> Option<Vec<u8>> {
    let d = age::Decryptor::new(data).ok()?;
    let mut r = d.decrypt(std::iter::once(identity.as_dyn())).ok()?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).ok()?;
    Some(out)
}

/// Whether `data` is an age file.
pub fn is_age(data: &[u8]) -> bool {
    data.starts_with(b"age-encryption.org/v1\n")
}

/// A record as it goes to the backend: the value of every secret key of `driver_state`
/// and `recipe_state` sealed (values already sealed, kept by a member without the key,
/// pass unchanged).
pub fn seal_record(json: &[u8], recipients: &[String]) -> Result<Vec<u8>> {
    map_secret_values(json, |v| {
        if v.starts_with(SEALED_PREFIX) || v.is_empty() {
            return Ok(v.to_string());
        }
        let sealed = encrypt(recipients, v.as_bytes())?;
        Ok(format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(sealed)
        ))
    })
}

/// A record as it is kept in the working copy: sealed values opened with `identity`; a value
/// that cannot be opened stays sealed (so it is never replaced by a blank on the next push).
/// Returns the record and whether every value opened.
pub fn open_record(json: &[u8], identity: Option<&Identity>) -> Result<(Vec<u8>, bool)> {
    let mut all = true;
    let out = map_secret_values(json, |v| {
        let Some(b64) = v.strip_prefix(SEALED_PREFIX) else {
            return Ok(v.to_string());
        };
        let opened = identity.and_then(|id| {
            let data = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            String::from_utf8(decrypt(id, &data)?).ok()
        });
        match opened {
            Some(plain) => Ok(plain),
            None => {
                all = false;
                Ok(v.to_string())
            }
        }
    })?;
    Ok((out, all))
}

/// Rewrite the secret values of a record's plugin stores with `f`.
fn map_secret_values(json: &[u8], mut f: impl FnMut(&str) -> Result<String>) -> Result<Vec<u8>> {
    let mut record: serde_json::Value =
        serde_json::from_slice(json).context("the machine record is not JSON")?;
    for field in ["driver_state", "recipe_state"] {
        if let Some(map) = record.get_mut(field).and_then(|m| m.as_object_mut()) {
            for (k, v) in map.iter_mut() {
                if crate::text::sanitize::is_secret_key(k)
                    && let Some(text) = v.as_str()
                {
                    *v = serde_json::Value::String(f(text)?);
                }
            }
        }
    }
    let mut out = serde_json::to_vec_pretty(&record).context("cannot encode the record")?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_open_only_for_recipients_and_records_keep_metadata_clear() {
        let dir = tempfile::tempdir().expect("tmp");
        let alice = Identity::create(&dir.path().join("alice")).expect("alice");
        let bob = Identity::create(&dir.path().join("bob")).expect("bob");
        assert!(
            Identity::create(&dir.path().join("alice")).is_err(),
            "never overwritten"
        );
        let again = Identity::load(&dir.path().join("alice"))
            .expect("read")
            .expect("some");
        assert_eq!(again.recipient().expect("r"), alice.recipient().expect("r"));
        let recipients = parse_recipients(&format!(
            "# team\n{}\n{}\n",
            alice.recipient().expect("r"),
            alice.recipient().expect("r")
        ))
        .expect("parse");
        assert_eq!(recipients.len(), 1, "duplicates dropped");
        assert!(parse_recipients("not-a-key\n").is_err());

        let sealed = encrypt(&recipients, b"-----BEGIN PRIVATE KEY-----").expect("enc");
        assert!(is_age(&sealed));
        assert!(!String::from_utf8_lossy(&sealed).contains("PRIVATE"));
        assert_eq!(
            decrypt(&alice, &sealed).as_deref(),
            Some(&b"-----BEGIN PRIVATE KEY-----"[..])
        );
        assert!(decrypt(&bob, &sealed).is_none());

        let record = br#"{"name":"m1","driver_state":{"access-token":"dop_v1_SECRET","ip":"10.0.0.2"},"recipe_state":{}}"#;
        let sealed = seal_record(record, &recipients).expect("seal");
        let text = String::from_utf8_lossy(&sealed);
        assert!(
            !text.contains("dop_v1_SECRET") && text.contains("10.0.0.2"),
            "{text}"
        );
        assert!(text.contains(SEALED_PREFIX));
        let (opened, all) = open_record(&sealed, Some(&alice)).expect("open");
        assert!(all && String::from_utf8_lossy(&opened).contains("dop_v1_SECRET"));
        let (kept, all) = open_record(&sealed, Some(&bob)).expect("open");
        assert!(!all);
        // Bob keeps the sealed value; sealing it again passes it unchanged.
        assert_eq!(seal_record(&kept, &recipients).expect("reseal"), kept);
    }
}
