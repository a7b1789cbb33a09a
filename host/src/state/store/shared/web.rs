//! The HTTP client of the shared store's backends: dmw's own sender (`net::http`: system
//! roots plus `DMW_STORE_CA` when set, the proxies of the environment, the address checks),
//! allowed to reach exactly the origin the user typed; one request per connection, answers
//! bounded, retried once on a connection that failed before an answer.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};

use crate::net::http::{HttpSettings, Sender};

/// Largest answer a backend may send (a listing page of S3 is ~1 MiB at most).
pub const MAX_ANSWER: usize = 16 << 20;

/// How long one request may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Environment variable naming a CA bundle the store's server certificates chain to.
pub const STORE_CA_ENV: &str = "DMW_STORE_CA";

/// A client for one origin (`scheme://host[:port]`).
pub struct Web {
    sender: Sender,
    /// `scheme://host:port`.
    origin: String,
    /// The `Host` header as sent.
    host: String,
}

/// One answer.
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// The `ETag` header.
    pub etag: Option<String>,
    /// The body.
    pub body: Bytes,
}

impl Web {
    /// A client for `origin` (`http://` or `https://`, no path); `store_root` is the local
    /// working copy (a CA bundle is never read from inside it).
    pub fn new(origin: &str, store_root: &std::path::Path) -> Result<Web> {
        let uri: http::Uri = origin
            .parse()
            .map_err(|_| anyhow!("{origin} is not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => bail!("{origin} is not an http:// or https:// URL"),
        };
        let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
            bail!("{origin} names no host");
        };
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            bail!("{origin} carries user information; put credentials in the environment");
        }
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let pattern = if bare.contains(':') {
            format!("[{bare}]:{port}")
        } else {
            format!("{bare}:{port}")
        };
        let settings = HttpSettings {
            hosts: vec![pattern.clone()],
            // The user typed this URL: its name may resolve to a private address.
            named: vec![pattern],
            cacert: std::env::var_os(STORE_CA_ENV)
                .filter(|v| !v.is_empty())
                .map(std::path::PathBuf::from),
            ..HttpSettings::default()
        };
        let sender = Sender::new(settings, store_root)?;
        let host_header = match (tls, port) {
            (true, 443) | (false, 80) => host.to_string(),
            _ => format!("{host}:{port}"),
        };
        Ok(Web {
            sender,
            origin: format!("{}://{}", if tls { "https" } else { "http" }, host_header),
            host: host_header.to_ascii_lowercase(),
        })
    }

    /// The `Host` header requests carry (signed by S3's SigV4).
    pub fn host_header(&self) -> String {
        self.host.clone()
    }

    /// Send `method` to `target` (path and query) with `headers` and `body`.
    pub async fn send(
        &self,
        method: &str,
        target: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<Answer> {
        let body = Bytes::from(body);
        let mut last = None;
        for _ in 0..2 {
            match tokio::time::timeout(TIMEOUT, self.once(method, target, headers, body.clone()))
                .await
            {
                Ok(Ok(a)) => return Ok(a),
                Ok(Err(e)) => last = Some(e),
                Err(_) => {
                    last = Some(anyhow!(
                        "no answer from {} within {} s",
                        self.origin,
                        TIMEOUT.as_secs()
                    ))
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("no answer from {}", self.origin)))
    }

    async fn once(
        &self,
        method: &str,
        target: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Answer> {
        let uri: http::Uri = format!("{}{target}", self.origin)
            .parse()
            .with_context(|| format!("{}{target} is not a URL", self.origin))?;
        let opened = self
            .sender
            .open::<Full<Bytes>>(&uri, crate::net::http::CONNECT_TIMEOUT)
            .await
            .map_err(|e| anyhow!("cannot connect to {}: {e}", self.origin))?;
        let mut map = http::HeaderMap::new();
        for (n, v) in headers {
            map.append(
                http::HeaderName::from_bytes(n.as_bytes())
                    .map_err(|_| anyhow!("bad header name {n}"))?,
                http::HeaderValue::from_str(v).map_err(|_| anyhow!("bad value of header {n}"))?,
            );
        }
        map.insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!("dmw/", env!("CARGO_PKG_VERSION"))),
        );
        map.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(body.len()),
        );
        let method = http::Method::from_bytes(method.as_bytes())
            .map_err(|_| anyhow!("bad method {method}"))?;
        let request = opened
            .request(&method, &map, Full::new(body))
            .map_err(|e| anyhow!("{}: {e}", self.origin))?;
        let mut send = opened.send;
        let response = send
            .send_request(request)
            .await
            .map_err(|e| anyhow!("{}: {e}", self.origin))?;
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| {
                anyhow!(
                    "{}: the answer could not be read or is over {} MiB: {e}",
                    self.origin,
                    MAX_ANSWER >> 20
                )
            })?
            .to_bytes();
        Ok(Answer { status, etag, body })
    }
}
