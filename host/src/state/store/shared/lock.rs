//! Machine locks in a shared backend, built on create-once and compare-and-swap only: the
//! lock of machine NAME is the key `locks/NAME`, holding who took it, for which command,
//! since when and until when. Taking it is a create-once write; the holder renews it (a
//! compare-and-swap that moves the expiry) every third of [`ttl`] while its command runs;
//! a lock past its expiry (its holder was killed or lost the network) is taken over by a
//! compare-and-swap on the version that was read, so of two processes that both see it
//! stale exactly one wins. Release deletes it only while it is still the holder's.

use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::remote::{Remote, Write, Written};

/// How long a lock lives without renewal, unless `DMW_LOCK_TTL` (seconds, at least 3) says.
pub const TTL: Duration = Duration::from_secs(60);

/// Environment variable overriding [`TTL`].
pub const TTL_ENV: &str = "DMW_LOCK_TTL";

/// The lock lifetime in force.
pub fn ttl() -> Duration {
    std::env::var(TTL_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.max(3)))
        .unwrap_or(TTL)
}

/// What a lock says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// `user@host (pid N)`.
    pub holder: String,
    /// The dmw command (`create`, `rm`, …).
    pub command: String,
    /// Taken at (seconds since the epoch).
    pub since: i64,
    /// Expires at (seconds since the epoch), unless renewed.
    pub expires: i64,
    /// Random: tells this holder's lock from a later one.
    pub token: String,
}

impl LockInfo {
    /// A new lock's content for the current process.
    pub fn mine(command: &str) -> LockInfo {
        let now = now();
        LockInfo {
            holder: holder(),
            command: command.to_string(),
            since: now,
            expires: now + ttl().as_secs() as i64,
            token: token(),
        }
    }

    /// "m1 is being provisioned by alice@laptop (pid 7) since 12:03 UTC (command: create)".
    pub fn describe(&self, name: &str) -> String {
        let verb = match self.command.as_str() {
            "create" | "provision" | "upgrade" | "regenerate-certs" => "provisioned",
            "rm" => "removed",
            _ => "changed",
        };
        let since = time::OffsetDateTime::from_unix_timestamp(self.since)
            .map(|t| format!("{:02}:{:02} UTC", t.hour(), t.minute()))
            .unwrap_or_else(|_| "an unknown time".into());
        format!(
            "{name} is being {verb} by {} since {since} (command: {})",
            crate::text::sanitize::stored_text(&self.holder),
            crate::text::sanitize::stored_text(&self.command)
        )
    }
}

/// A lock this process holds.
#[derive(Debug, Clone)]
pub struct Held {
    /// Its key.
    pub key: String,
    /// The version last written.
    pub version: String,
    /// What it says.
    pub info: LockInfo,
}

/// How an attempt ended.
pub enum Attempt {
    /// Taken (`took_over`: from a holder whose lock had expired).
    Held {
        /// The lock.
        held: Held,
        /// The stale lock that was replaced, if any.
        took_over: Option<LockInfo>,
    },
    /// Someone else holds it.
    Busy(LockInfo),
}

/// The key of a machine's lock.
pub fn key(name: &str) -> String {
    format!("locks/{name}")
}

/// Try once to take the lock of `name`.
pub async fn try_take(remote: &Remote, name: &str, command: &str) -> Result<Attempt> {
    let key = key(name);
    let info = LockInfo::mine(command);
    let body = serde_json::to_vec(&info).context("cannot encode a lock")?;
    match remote.put(&key, body.clone(), Write::Create).await? {
        Written::Done(version) => {
            return Ok(Attempt::Held {
                held: Held { key, version, info },
                took_over: None,
            });
        }
        Written::Conflict => {}
    }
    let Some(current) = remote.get(&key).await? else {
        // Released between the two requests: the next attempt may take it.
        return Ok(Attempt::Busy(LockInfo {
            holder: "another member".into(),
            command: "unknown".into(),
            since: now(),
            expires: now(),
            token: String::new(),
        }));
    };
    let theirs: LockInfo = match serde_json::from_slice(&current.bytes) {
        Ok(i) => i,
        // A damaged lock is treated as expired.
        Err(_) => LockInfo {
            holder: "unknown (damaged lock)".into(),
            command: "unknown".into(),
            since: 0,
            expires: 0,
            token: String::new(),
        },
    };
    if theirs.expires >= now() {
        return Ok(Attempt::Busy(theirs));
    }
    match remote
        .put(&key, body, Write::Replace(&current.version))
        .await?
    {
        Written::Done(version) => Ok(Attempt::Held {
            held: Held { key, version, info },
            took_over: Some(theirs),
        }),
        Written::Conflict => match remote.get(&key).await? {
            Some(o) => Ok(Attempt::Busy(
                serde_json::from_slice(&o.bytes).unwrap_or(theirs),
            )),
            None => Ok(Attempt::Busy(theirs)),
        },
    }
}

/// Move the expiry of a held lock; `false` when it is no longer this holder's (broken by
/// `dmw store unlock`, or taken over after this process could not renew it in time).
pub async fn renew(remote: &Remote, held: &mut Held) -> Result<bool> {
    let mut info = held.info.clone();
    info.expires = now() + ttl().as_secs() as i64;
    let body = serde_json::to_vec(&info).context("cannot encode a lock")?;
    match remote
        .put(&held.key, body, Write::Replace(&held.version))
        .await?
    {
        Written::Done(v) => {
            held.version = v;
            held.info = info;
            Ok(true)
        }
        Written::Conflict => Ok(false),
    }
}

/// Release a held lock (only while it is still this holder's).
pub async fn release(remote: &Remote, held: &Held) -> Result<()> {
    if let Some(current) = remote.get(&held.key).await?
        && serde_json::from_slice::<LockInfo>(&current.bytes)
            .is_ok_and(|i| i.token == held.info.token)
    {
        remote.delete(&held.key).await?;
    }
    Ok(())
}

/// Break the lock of `name` whoever holds it; returns what it said.
pub async fn break_lock(remote: &Remote, name: &str) -> Result<Option<LockInfo>> {
    let key = key(name);
    let Some(current) = remote.get(&key).await? else {
        return Ok(None);
    };
    remote.delete(&key).await?;
    Ok(serde_json::from_slice(&current.bytes).ok())
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `user@host (pid N)`.
fn holder() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "someone".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{host} (pid {})", std::process::id())
}

/// 128 random bits, hex.
fn token() -> String {
    use std::io::Read as _;
    let mut b = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if random.is_err() {
        // Never two equal tokens in one process, even without /dev/urandom.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        b.copy_from_slice(&(t ^ u128::from(std::process::id())).to_le_bytes());
    }
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_says_who_holds_it_and_for_what() {
        let mut info = LockInfo::mine("create");
        info.holder = "alice@laptop (pid 7)".into();
        info.since = 1_765_108_980; // 2025-12-07 12:03 UTC
        assert_eq!(
            info.describe("m1"),
            "m1 is being provisioned by alice@laptop (pid 7) since 12:03 UTC (command: create)"
        );
        info.command = "rm".into();
        assert!(info.describe("m1").contains("is being removed by"));
        assert_ne!(LockInfo::mine("x").token, LockInfo::mine("x").token);
    }
}
