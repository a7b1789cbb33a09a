//! The store interface every shared backend implements: a flat key space under the store's
//! prefix with a version per key, create-once and compare-and-swap writes, and a listing by
//! prefix. Locks (`lock.rs`) and the working copy (`sync.rs`) are built on these five
//! operations only, so each backend's guarantees are the ones stated here:
//!
//! - `put(Create)` succeeds for exactly one writer of a key that does not exist;
//! - `put(Replace(v))` succeeds only while the key's version is still `v`;
//! - a successful write returns the key's new version; `list` and `get` return the
//!   versions that writes returned.

use anyhow::Result;

use super::etcd::{Etcd, EtcdLocation};
use super::s3::{S3, S3Location};

/// One key of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, relative to the store's prefix.
    pub key: String,
    /// Its version (S3: the ETag).
    pub version: String,
    /// Its value, when the backend's listing carries values.
    pub value: Option<Vec<u8>>,
    /// When it was last written (seconds since the epoch), when the backend says.
    pub modified: Option<i64>,
}

/// One key's value and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Version.
    pub version: String,
    /// Value.
    pub bytes: Vec<u8>,
}

/// The condition of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write<'a> {
    /// Only if the key does not exist.
    Create,
    /// Only if the key is still at this version.
    Replace(&'a str),
}

/// How a conditional write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Written; the new version.
    Done(String),
    /// The condition failed: someone else wrote (or created) the key first.
    Conflict,
}

/// Where a shared store lives, as its URL says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `s3://BUCKET[/PREFIX][?endpoint=URL&region=R]`.
    S3(S3Location),
    /// `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]`.
    Etcd(EtcdLocation),
}

impl Location {
    /// Parse a store URL; `Ok(None)` for anything that is not a shared store's URL (a path).
    pub fn parse(text: &str) -> anyhow::Result<Option<Location>> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(None);
        };
        match scheme {
            "s3" => {
                let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
                let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
                if !valid_bucket(bucket) {
                    anyhow::bail!(
                        "{text}: {bucket:?} is not an S3 bucket name (3-63 lower-case letters, digits, '.' and '-')"
                    );
                }
                let prefix = prefix.trim_matches('/').to_string();
                if !prefix
                    .split('/')
                    .all(|s| s.is_empty() || crate::text::names::is_valid(s))
                    || prefix.contains("//")
                {
                    anyhow::bail!(
                        "{text}: the prefix {prefix:?} may hold letters, digits, '.', '_' and '-' between '/'"
                    );
                }
                let mut loc = S3Location {
                    bucket: bucket.to_string(),
                    prefix,
                    endpoint: None,
                    region: None,
                };
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    let v = dmw_sigv4::percent_decode(v);
                    match k {
                        "endpoint" => loc.endpoint = Some(v),
                        "region" => loc.region = Some(v),
                        _ => anyhow::bail!(
                            "{text}: unknown setting {k:?} (an s3:// URL takes endpoint= and region=)"
                        ),
                    }
                }
                Ok(Some(Location::S3(loc)))
            }
            "etcd" => {
                let loc = EtcdLocation::parse(text, rest)?;
                if !loc
                    .prefix
                    .split('/')
                    .all(|s| s.is_empty() || crate::text::names::is_valid(s))
                {
                    anyhow::bail!(
                        "{text}: the prefix {:?} may hold letters, digits, '.', '_' and '-' between '/'",
                        loc.prefix
                    );
                }
                Ok(Some(Location::Etcd(loc)))
            }
            "file" => Ok(None),
            other => anyhow::bail!(
                "{text}: unknown store scheme {other:?}; a store is a directory, s3://BUCKET/PREFIX or etcd://HOST:PORT/PREFIX"
            ),
        }
    }
}

/// Whether `b` is an S3 bucket name.
fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// A connected shared backend.
pub enum Remote {
    /// S3-compatible object storage.
    S3(Box<S3>),
    /// An etcd v3 cluster.
    Etcd(Etcd),
}

impl Remote {
    /// Connect to the backend `loc` names (no request is sent yet).
    pub fn open(loc: &Location, store_root: &std::path::Path) -> Result<Remote> {
        let env = |k: &str| std::env::var(k).ok();
        match loc {
            Location::S3(s) => Ok(Remote::S3(Box::new(S3::open(s, &env, store_root)?))),
            Location::Etcd(e) => Ok(Remote::Etcd(Etcd::open(e, store_root)?)),
        }
    }

    /// Every key under `prefix`, with its version.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        match self {
            Remote::S3(s) => s.list(prefix).await,
            Remote::Etcd(e) => e.list(prefix).await,
        }
    }

    /// One key, or `None`.
    pub async fn get(&self, key: &str) -> Result<Option<Object>> {
        match self {
            Remote::S3(s) => s.get(key).await,
            Remote::Etcd(e) => e.get(key).await,
        }
    }

    /// A conditional write.
    pub async fn put(&self, key: &str, bytes: Vec<u8>, mode: Write<'_>) -> Result<Written> {
        match self {
            Remote::S3(s) => s.put(key, bytes, mode).await,
            Remote::Etcd(e) => e.put(key, bytes, mode).await,
        }
    }

    /// Delete a key (absent is fine).
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self {
            Remote::S3(s) => s.delete(key).await,
            Remote::Etcd(e) => e.delete(key).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse_or_say_why_not() {
        assert_eq!(Location::parse("/home/a/.dmw").expect("path"), None);
        let Some(Location::S3(s)) = Location::parse(
            "s3://team-fleet/prod/eu?endpoint=http%3A%2F%2F127.0.0.1%3A5000&region=eu-west-1",
        )
        .expect("s3") else {
            panic!("not s3");
        };
        assert_eq!(s.bucket, "team-fleet");
        assert_eq!(s.prefix, "prod/eu");
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        for bad in [
            "s3://UPPER/x",
            "s3://b/../x",
            "s3://bucket/p?x=1",
            "ftp://x/y",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }
}
