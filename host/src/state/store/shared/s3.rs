//! The S3 backend: objects in a bucket of any S3-compatible service (AWS S3, Ceph RGW,
//! MinIO, R2…), signed with SigV4 (`dmw-sigv4`), conditional writes for create-once
//! (`If-None-Match: *`) and compare-and-swap (`If-Match: ETAG`), both answered 412 when they
//! lose.
//!
//! The endpoint is `?endpoint=URL` on the store URL, else `AWS_ENDPOINT_URL_S3` or
//! `AWS_ENDPOINT_URL` (the AWS SDKs' own variables), else AWS (`https://BUCKET.s3.REGION.amazonaws.com`).
//! Credentials come the AWS way: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`,
//! else the profile `AWS_PROFILE` (default `default`) of `AWS_SHARED_CREDENTIALS_FILE`
//! (default `~/.aws/credentials`).

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;

use super::remote::{Entry, Object, Write, Written};
use super::web::Web;

/// An S3 bucket and the prefix under which the store lives.
pub struct S3 {
    web: Web,
    /// `scheme://authority` of the service.
    origin: String,
    /// Path-style (`/BUCKET/KEY`, custom endpoints) or virtual-hosted (`BUCKET.` in the host).
    path_style: bool,
    bucket: String,
    /// `PREFIX/` or empty.
    prefix: String,
    region: String,
    credentials: dmw_sigv4::Credentials,
}

/// What an `s3://` store URL says, before credentials are looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The prefix in the bucket (no leading or trailing `/`).
    pub prefix: String,
    /// `?endpoint=` of the URL.
    pub endpoint: Option<String>,
    /// `?region=` of the URL.
    pub region: Option<String>,
}

impl S3 {
    /// The bucket of `loc`, with the endpoint, region and credentials of the environment.
    pub fn open(
        loc: &S3Location,
        env: &dyn Fn(&str) -> Option<String>,
        store_root: &std::path::Path,
    ) -> Result<S3> {
        let region = loc
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = loc
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .filter(|e| !e.is_empty());
        let (origin, path_style) = match endpoint {
            Some(e) => (e.trim_end_matches('/').to_string(), true),
            None => (
                format!("https://{}.s3.{region}.amazonaws.com", loc.bucket),
                false,
            ),
        };
        let credentials = credentials(env)?;
        let web =
            Web::new(&origin, store_root).with_context(|| format!("the S3 endpoint {origin}"))?;
        Ok(S3 {
            web,
            origin,
            path_style,
            bucket: loc.bucket.clone(),
            prefix: if loc.prefix.is_empty() {
                String::new()
            } else {
                format!("{}/", loc.prefix)
            },
            region,
            credentials,
        })
    }

    /// The URL path of the bucket (`/BUCKET` path-style, `` virtual-hosted).
    fn bucket_path(&self) -> String {
        if self.path_style {
            format!("/{}", self.bucket)
        } else {
            String::new()
        }
    }

    /// The URL path of `key` under the prefix.
    fn object_path(&self, key: &str) -> String {
        format!(
            "{}/{}",
            self.bucket_path(),
            dmw_sigv4::uri_encode(&format!("{}{key}", self.prefix), true)
        )
    }

    /// Send a signed request; returns status, ETag and body.
    async fn send(
        &self,
        method: &str,
        path: &str,
        query: &str,
        extra: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<(u16, Option<String>, Bytes)> {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| anyhow!("the clock is before 1970: cannot sign S3 requests"))?
            .as_secs();
        let mut headers: Vec<(String, String)> = vec![("host".into(), self.web.host_header())];
        headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.clone())));
        let signer = dmw_sigv4::Signer {
            credentials: &self.credentials,
            region: &self.region,
            service: "s3",
            time,
            sign_body: true,
            sign_token: true,
        };
        let sig = dmw_sigv4::sign_parts(method, path, query, &headers, &body, &signer);
        headers.extend(sig.headers);
        headers.retain(|(n, _)| n != "host");
        let target = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        let answer = self
            .web
            .send(method, &target, &headers, body)
            .await
            .with_context(|| format!("S3 at {}", self.origin))?;
        Ok((answer.status, answer.etag, answer.body))
    }

    /// The error for an answer that is not one of the expected ones.
    fn failure(&self, what: &str, status: u16, body: &[u8]) -> anyhow::Error {
        let code = xml_values(body, "Code")
            .into_iter()
            .next()
            .unwrap_or_default();
        let message = xml_values(body, "Message")
            .into_iter()
            .next()
            .unwrap_or_default();
        let hint = match code.as_str() {
            "NoSuchBucket" => format!(
                ": the bucket {} does not exist at {}; create it (`aws s3 mb s3://{}`) or fix the store URL",
                self.bucket, self.origin, self.bucket
            ),
            "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" => {
                ": check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the bucket's policy".into()
            }
            _ => String::new(),
        };
        let code = crate::text::sanitize::stored_text(&code);
        let message = crate::text::sanitize::stored_text(&message);
        anyhow!("S3 {what} answered {status} {code} {message}{hint}")
    }

    /// Every key under `prefix` (relative to the store's prefix) with its ETag.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let full = format!("{}{prefix}", self.prefix);
        loop {
            let mut query = vec![
                ("list-type".to_string(), "2".to_string()),
                ("prefix".to_string(), full.clone()),
            ];
            if let Some(t) = &token {
                query.push(("continuation-token".into(), t.clone()));
            }
            query.sort();
            let query = query
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        dmw_sigv4::uri_encode(k, false),
                        dmw_sigv4::uri_encode(v, false)
                    )
                })
                .collect::<Vec<_>>()
                .join("&");
            let path = if self.path_style {
                self.bucket_path()
            } else {
                "/".into()
            };
            let (status, _, body) = self.send("GET", &path, &query, &[], Vec::new()).await?;
            if status != 200 {
                return Err(self.failure("listing", status, &body));
            }
            for item in xml_blocks(&body, "Contents") {
                let key = xml_values(item.as_bytes(), "Key").into_iter().next();
                let etag = xml_values(item.as_bytes(), "ETag").into_iter().next();
                let modified = xml_values(item.as_bytes(), "LastModified")
                    .into_iter()
                    .next()
                    .and_then(|t| {
                        time::OffsetDateTime::parse(
                            &t,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                    .map(|t| t.unix_timestamp());
                if let (Some(key), Some(etag)) = (key, etag)
                    && let Some(rel) = key.strip_prefix(&self.prefix)
                {
                    out.push(Entry {
                        key: rel.to_string(),
                        version: etag,
                        value: None,
                        modified,
                    });
                }
            }
            let truncated = xml_values(&body, "IsTruncated")
                .into_iter()
                .next()
                .is_some_and(|t| t == "true");
            token = xml_values(&body, "NextContinuationToken")
                .into_iter()
                .next();
            if !truncated || token.is_none() {
                return Ok(out);
            }
        }
    }

    /// One object, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Object>> {
        let (status, etag, body) = self
            .send("GET", &self.object_path(key), "", &[], Vec::new())
            .await?;
        match status {
            200 => Ok(Some(Object {
                version: etag.ok_or_else(|| anyhow!("S3 answered {key} without an ETag"))?,
                bytes: body.to_vec(),
            })),
            404 => Ok(None),
            _ => Err(self.failure(&format!("read of {key}"), status, &body)),
        }
    }

    /// Write one object, on the condition `mode` says.
    pub async fn put(&self, key: &str, bytes: Vec<u8>, mode: Write<'_>) -> Result<Written> {
        let condition = match mode {
            Write::Create => ("If-None-Match", "*".to_string()),
            Write::Replace(etag) => ("If-Match", etag.to_string()),
        };
        let extra = [
            condition,
            ("Content-Type", "application/octet-stream".to_string()),
        ];
        let (status, etag, body) = self
            .send("PUT", &self.object_path(key), "", &extra, bytes)
            .await?;
        match status {
            200 => Ok(Written::Done(etag.ok_or_else(|| {
                anyhow!("S3 answered the write of {key} without an ETag")
            })?)),
            // 409 ConditionalRequestConflict: two conditional writes at once, this one lost.
            412 | 409 => Ok(Written::Conflict),
            _ => Err(self.failure(&format!("write of {key}"), status, &body)),
        }
    }

    /// Delete one object (absent is fine).
    pub async fn delete(&self, key: &str) -> Result<()> {
        let (status, _, body) = self
            .send("DELETE", &self.object_path(key), "", &[], Vec::new())
            .await?;
        match status {
            200 | 204 | 404 => Ok(()),
            _ => Err(self.failure(&format!("delete of {key}"), status, &body)),
        }
    }
}

/// The credentials of the environment or of the shared credentials file's profile.
fn credentials(env: &dyn Fn(&str) -> Option<String>) -> Result<dmw_sigv4::Credentials> {
    let nonempty = |k: &str| env(k).filter(|v| !v.is_empty());
    if let (Some(access_key), Some(secret_key)) = (
        nonempty("AWS_ACCESS_KEY_ID"),
        nonempty("AWS_SECRET_ACCESS_KEY"),
    ) {
        return Ok(dmw_sigv4::Credentials {
            access_key,
            secret_key,
            session_token: nonempty("AWS_SESSION_TOKEN"),
        });
    }
    let profile = nonempty("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let file = match nonempty("AWS_SHARED_CREDENTIALS_FILE") {
        Some(f) => std::path::PathBuf::from(f),
        None => match nonempty("HOME") {
            Some(h) => std::path::Path::new(&h).join(".aws/credentials"),
            None => bail!(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials"
            ),
        },
    };
    let text = std::fs::read_to_string(&file).map_err(|e| {
        anyhow!(
            "no S3 credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and {} cannot be read ({e})",
            file.display()
        )
    })?;
    let section = ini_section(&text, &profile);
    let get = |k: &str| {
        section
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(access_key), Some(secret_key)) => Ok(dmw_sigv4::Credentials {
            access_key,
            secret_key,
            session_token: get("aws_session_token"),
        }),
        _ => bail!(
            "no S3 credentials: the profile [{profile}] of {} has no aws_access_key_id and aws_secret_access_key",
            file.display()
        ),
    }
}

/// The `name = value` lines of section `[profile]` of an INI text.
fn ini_section(text: &str, profile: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') && line.ends_with(']') {
            let name = line[1..line.len() - 1].trim();
            inside = name == profile || name == format!("profile {profile}");
            continue;
        }
        if inside
            && !line.starts_with('#')
            && !line.starts_with(';')
            && let Some((k, v)) = line.split_once('=')
        {
            out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

/// The text of every `<tag>…</tag>` in `xml`, entities decoded.
fn xml_values(xml: &[u8], tag: &str) -> Vec<String> {
    xml_blocks(xml, tag)
        .into_iter()
        .map(|v| {
            v.replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&#34;", "\"")
                .replace("&amp;", "&")
        })
        .collect()
}

/// The raw inner text of every `<tag>…</tag>` in `xml` (S3's answers have no attributes on
/// the elements read here and never nest one in itself).
fn xml_blocks(xml: &[u8], tag: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(xml);
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = &text[..];
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else {
            break;
        };
        out.push(after[..end].to_string());
        rest = &after[end + close.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_xml_and_credentials_files_are_read() {
        let xml = br#"<?xml version="1.0"?><ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>p/machines/m1/config.json</Key><LastModified>2026-12-07T12:03:00.000Z</LastModified><ETag>&quot;abc&quot;</ETag></Contents><Contents><Key>p/certs/ca.pem</Key><ETag>"def"</ETag></Contents></ListBucketResult>"#;
        let items = xml_blocks(xml, "Contents");
        assert_eq!(items.len(), 2);
        assert_eq!(
            xml_values(items[0].as_bytes(), "ETag"),
            vec!["\"abc\"".to_string()]
        );
        assert_eq!(xml_values(xml, "IsTruncated"), vec!["false".to_string()]);
        let ini = "[default]\naws_access_key_id = A\n[profile team]\naws_access_key_id=B\naws_secret_access_key = S\naws_session_token = T\n";
        let env = |k: &str| match k {
            "AWS_PROFILE" => Some("team".to_string()),
            _ => None,
        };
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("credentials");
        std::fs::write(&file, ini).expect("write");
        let path = file.display().to_string();
        let env2 = |k: &str| match k {
            "AWS_SHARED_CREDENTIALS_FILE" => Some(path.clone()),
            other => env(other),
        };
        let c = credentials(&env2).expect("profile");
        assert_eq!((c.access_key.as_str(), c.secret_key.as_str()), ("B", "S"));
        assert_eq!(c.session_token.as_deref(), Some("T"));
        let none = |_: &str| None;
        assert!(credentials(&none).is_err());
    }
}
