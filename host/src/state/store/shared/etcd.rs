//! The etcd v3 backend, through etcd's JSON gateway (`/v3/kv/range`, `/v3/kv/txn`,
//! `/v3/kv/deleterange`; base64 keys and values) over dmw's own HTTP client — no gRPC
//! stack or `protoc` at build time (measured: the `etcd-client` crate needs both), and the
//! same requests work on every etcd since 3.4.
//!
//! Versions are `mod_revision`s. Create-once is a transaction comparing the key's
//! `create_revision` with 0; compare-and-swap compares its `mod_revision`; both put only
//! when the comparison holds, which etcd's Raft log makes linearizable across members.
//! Every member of the URL is tried in turn (the last that answered first), so the store
//! keeps working while a member is down.

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use serde_json::{Value, json};

use super::remote::{Entry, Object, Write, Written};
use super::web::Web;

/// What an `etcd://` store URL says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdLocation {
    /// `host:port` of each member.
    pub members: Vec<String>,
    /// The key prefix (no leading or trailing `/`).
    pub prefix: String,
}

impl EtcdLocation {
    /// Parse the part after `etcd://`: `host:port[,host:port…][/prefix]`.
    pub fn parse(url: &str, rest: &str) -> Result<EtcdLocation> {
        let (hosts, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let members: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| {
                if h.rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
                {
                    h.to_string()
                } else {
                    format!("{h}:2379")
                }
            })
            .collect();
        if members.is_empty() {
            bail!("{url}: name at least one etcd member (etcd://HOST:2379[,HOST:PORT…]/PREFIX)");
        }
        if members.len() > 16 {
            bail!("{url}: more than 16 members");
        }
        Ok(EtcdLocation {
            members,
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

/// An etcd cluster and the prefix under which the store lives.
pub struct Etcd {
    members: Vec<(String, Web)>,
    /// The member that answered last.
    preferred: AtomicUsize,
    /// `/dmw/PREFIX/` (keys are relative to it).
    root: String,
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(v: &Value) -> Result<Vec<u8>> {
    let s = v.as_str().unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| anyhow!("etcd answered a value that is not base64: {e}"))
}

/// The smallest key after every key that starts with `prefix` (etcd's `range_end`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A number etcd's JSON gateway sends as a string (int64) or omits (zero).
fn num(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

impl Etcd {
    /// The cluster of `loc` (no request is sent yet).
    pub fn open(loc: &EtcdLocation, store_root: &std::path::Path) -> Result<Etcd> {
        let members = loc
            .members
            .iter()
            .map(|m| {
                let origin = format!("http://{m}");
                Web::new(&origin, store_root)
                    .map(|w| (m.clone(), w))
                    .with_context(|| format!("the etcd member {m}"))
            })
            .collect::<Result<Vec<_>>>()?;
        let root = if loc.prefix.is_empty() {
            "/dmw/".to_string()
        } else {
            format!("/dmw/{}/", loc.prefix)
        };
        Ok(Etcd {
            members,
            preferred: AtomicUsize::new(0),
            root,
        })
    }

    /// POST `body` to `path` on the first member that answers.
    async fn call(&self, path: &str, body: Value) -> Result<Value> {
        let n = self.members.len();
        let first = self.preferred.load(Ordering::Relaxed) % n;
        let bytes = serde_json::to_vec(&body).context("cannot encode an etcd request")?;
        let mut errors = Vec::new();
        for i in 0..n {
            let idx = (first + i) % n;
            let (name, web) = &self.members[idx];
            let headers = [("content-type".to_string(), "application/json".to_string())];
            match web.send("POST", path, &headers, bytes.clone()).await {
                Ok(a) if a.status == 200 => {
                    self.preferred.store(idx, Ordering::Relaxed);
                    return serde_json::from_slice(&a.body).map_err(|e| {
                        anyhow!("etcd member {name} answered {path} with no JSON: {e}")
                    });
                }
                Ok(a) => {
                    let msg = serde_json::from_slice::<Value>(&a.body)
                        .ok()
                        .and_then(|v| {
                            v.get("message")
                                .or_else(|| v.get("error"))
                                .and_then(|m| m.as_str())
                                .map(str::to_string)
                        })
                        .unwrap_or_default();
                    let msg = crate::text::sanitize::stored_text(&msg);
                    // A member without a leader or quorum: another may have one.
                    errors.push(format!("{name}: {} {msg}", a.status));
                }
                Err(e) => errors.push(format!("{name}: {e:#}")),
            }
        }
        bail!("no etcd member answered {path}: {}", errors.join("; "))
    }

    fn full(&self, key: &str) -> Vec<u8> {
        format!("{}{key}", self.root).into_bytes()
    }

    /// Every key under `prefix`, with its version and value.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        let start = self.full(prefix);
        let answer = self
            .call(
                "/v3/kv/range",
                json!({"key": b64(&start), "range_end": b64(&prefix_end(&start))}),
            )
            .await?;
        let mut out = Vec::new();
        for kv in answer["kvs"].as_array().into_iter().flatten() {
            let key = unb64(&kv["key"])?;
            let Some(rel) = key.strip_prefix(self.root.as_bytes()) else {
                continue;
            };
            let Ok(rel) = String::from_utf8(rel.to_vec()) else {
                continue;
            };
            out.push(Entry {
                key: rel,
                version: num(&kv["mod_revision"]).to_string(),
                value: Some(unb64(&kv["value"])?),
                modified: None,
            });
        }
        Ok(out)
    }

    /// One key, or `None`.
    pub async fn get(&self, key: &str) -> Result<Option<Object>> {
        let answer = self
            .call("/v3/kv/range", json!({"key": b64(&self.full(key))}))
            .await?;
        let Some(kv) = answer["kvs"].as_array().and_then(|a| a.first()) else {
            return Ok(None);
        };
        Ok(Some(Object {
            version: num(&kv["mod_revision"]).to_string(),
            bytes: unb64(&kv["value"])?,
        }))
    }

    /// A conditional write: one transaction.
    pub async fn put(&self, key: &str, bytes: Vec<u8>, mode: Write<'_>) -> Result<Written> {
        let k = b64(&self.full(key));
        let compare = match mode {
            Write::Create => {
                json!({"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"})
            }
            Write::Replace(v) => {
                json!({"key": k, "target": "MOD", "result": "EQUAL", "mod_revision": v})
            }
        };
        let answer = self
            .call(
                "/v3/kv/txn",
                json!({
                    "compare": [compare],
                    "success": [{"request_put": {"key": k, "value": b64(&bytes)}}],
                }),
            )
            .await?;
        // proto3 JSON leaves `false` out.
        if answer["succeeded"].as_bool() != Some(true) {
            return Ok(Written::Conflict);
        }
        let revision = num(&answer["header"]["revision"]);
        if revision <= 0 {
            bail!("etcd answered the write of {key} without a revision");
        }
        Ok(Written::Done(revision.to_string()))
    }

    /// Delete one key (absent is fine).
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.call("/v3/kv/deleterange", json!({"key": b64(&self.full(key))}))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_ranges_and_numbers() {
        let l = EtcdLocation::parse("u", "a:2379,b,c:32379/team/prod/").expect("parse");
        assert_eq!(l.members, ["a:2379", "b:2379", "c:32379"]);
        assert_eq!(l.prefix, "team/prod");
        assert!(EtcdLocation::parse("u", "/x").is_err());
        assert_eq!(prefix_end(b"/dmw/"), b"/dmw0");
        assert_eq!(prefix_end(&[b'a', 0xff]), b"b");
        assert_eq!(num(&json!("42")), 42);
        assert_eq!(num(&Value::Null), 0);
    }
}
