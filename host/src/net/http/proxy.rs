//! Proxies for the `http` capability: `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` and the
//! CONNECT tunnel.

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::allow::split_port;

/// A proxy: where to connect and the `Proxy-Authorization` to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// `host:port` of the proxy.
    pub authority: String,
    /// `Basic …` from the proxy URL's user info.
    pub authorization: Option<String>,
}

/// The proxies from `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (upper or lower case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// For https:// URLs (a CONNECT tunnel).
    pub https: Option<Proxy>,
    /// For http:// URLs (absolute-form requests).
    pub http: Option<Proxy>,
    /// Hosts reached directly: `*`, names (and their subdomains), `.domain`, IPs.
    pub no_proxy: Vec<String>,
}

impl ProxyConfig {
    /// Read the proxy variables through `get` (lower case wins over upper case, as curl).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> ProxyConfig {
        let var = |name: &str| {
            get(&name.to_ascii_lowercase())
                .or_else(|| get(name))
                .filter(|v| !v.trim().is_empty())
        };
        ProxyConfig {
            https: var("HTTPS_PROXY").and_then(|v| parse_proxy(&v)),
            http: var("HTTP_PROXY").and_then(|v| parse_proxy(&v)),
            no_proxy: var("NO_PROXY")
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().trim_start_matches("*.").to_ascii_lowercase())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The proxy to use for `host` over `scheme`, if any.
    pub fn for_host(&self, scheme: &str, host: &str) -> Option<&Proxy> {
        let host = host.to_ascii_lowercase();
        let bypass = self.no_proxy.iter().any(|n| {
            let n = n.trim_start_matches('.');
            n == "*" || host == n || host.ends_with(&format!(".{n}"))
        });
        if bypass {
            return None;
        }
        if scheme == "https" {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        }
    }
}

/// Parse a proxy URL (`http://[user:pass@]host[:port]`, scheme optional, port 80 by default).
fn parse_proxy(value: &str) -> Option<Proxy> {
    let value = value.trim();
    let rest = match value.split_once("://") {
        Some(("http", r)) => r,
        Some(_) => return None,
        None => value,
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if hostport.is_empty() {
        return None;
    }
    let hostport = if split_port(hostport).1.is_some() {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let authorization = user.map(|u| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(u.as_bytes())
        )
    });
    Some(Proxy {
        authority: hostport,
        authorization,
    })
}

/// Open a CONNECT tunnel to `authority` through proxy `p` on `tcp`.
pub(super) async fn tunnel(
    tcp: &mut TcpStream,
    authority: &str,
    p: &Proxy,
) -> Result<(), wasmtime_wasi_http::Error> {
    use wasmtime_wasi_http::Error as E;
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = &p.authorization {
        head.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await.map_err(E::Connect)?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() > 16 << 10 || tcp.read(&mut byte).await.map_err(E::Connect)? == 0 {
            return Err(E::InternalError(Some(format!(
                "the proxy {} closed the tunnel to {authority}",
                p.authority
            ))));
        }
        buf.push(byte[0]);
    }
    let status_line = String::from_utf8_lossy(&buf);
    let code = status_line.split_whitespace().nth(1).unwrap_or("");
    if !code.starts_with('2') {
        return Err(E::InternalError(Some(format!(
            "the proxy {} refused the tunnel to {authority}: {}",
            p.authority,
            crate::text::sanitize::plugin_text(status_line.lines().next().unwrap_or(""), 200)
        ))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let c = ProxyConfig::from_env(env(&[
            ("HTTPS_PROXY", "http://user:pw@proxy.test:3128"),
            ("http_proxy", "proxy2.test"),
            ("NO_PROXY", "localhost, .internal.test,10.0.0.1"),
        ]));
        let https = c.https.clone().expect("https proxy");
        assert_eq!(https.authority, "proxy.test:3128");
        assert_eq!(https.authorization.as_deref(), Some("Basic dXNlcjpwdw=="));
        assert_eq!(c.http.clone().expect("http").authority, "proxy2.test:80");
        assert!(c.for_host("https", "api.test").is_some());
        assert!(c.for_host("https", "localhost").is_none());
        assert!(c.for_host("https", "a.internal.test").is_none());
        assert!(c.for_host("http", "10.0.0.1").is_none());
        assert!(
            ProxyConfig::from_env(|_| None)
                .for_host("https", "x")
                .is_none()
        );
        assert!(parse_proxy("socks5://x:1").is_none());
    }
}
