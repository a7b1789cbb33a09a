//! The allow-list of the `http` capability: host patterns, resolved from the plugin's
//! declaration and flag values, and the check of a request's host against them.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use http::Uri;
use serde::{Deserialize, Serialize};

use super::MAX_PATTERNS;
use crate::plugin::declaration::Declaration;
use crate::plugin::driver::FlagValue;

/// What the `http` capability needs for one machine, kept in its record: the allowed host
/// patterns (flags resolved) and the TLS settings from the plugin's flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpSettings {
    /// Allowed hosts: `host`, `host:port`, `*.domain`, `*.domain:port`, IP literals.
    pub hosts: Vec<String>,
    /// A CA bundle file trusted besides the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cacert: Option<PathBuf>,
    /// TLS verification is off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

impl HttpSettings {
    /// Resolve a declaration's patterns and TLS flags with the flag values of a create:
    /// `{flag}` becomes the host (and port, when the value names one) of that flag's value;
    /// a pattern whose flag has no value allows nothing.
    pub fn resolve(d: &Declaration, flags: &[FlagValue]) -> Result<HttpSettings> {
        let value = |name: &str| {
            flags
                .iter()
                .find(|f| f.name == name)
                .and_then(|f| f.values.last())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut hosts = Vec::new();
        for pattern in &d.http_hosts {
            // `{flag}:*`: the host of the flag's value on any port (a cloud whose services
            // listen on several ports of the same host, as OpenStack's often do).
            let (flag_part, any_port) = match pattern.strip_suffix(":*") {
                Some(p) => (p, true),
                None => (pattern.as_str(), false),
            };
            let resolved = if let Some(flag) = flag_part
                .strip_prefix('{')
                .and_then(|p| p.strip_suffix('}'))
            {
                let Some(v) = value(flag) else { continue };
                let authority = authority_of(&v).with_context(|| {
                    format!("--{flag} {v:?} is not an http:// or https:// URL with a host")
                })?;
                if any_port {
                    format!("{}:*", split_port(&authority).0)
                } else {
                    authority
                }
            } else {
                pattern.to_ascii_lowercase()
            };
            check_pattern(&resolved)?;
            if !hosts.contains(&resolved) {
                hosts.push(resolved);
            }
        }
        if hosts.len() > MAX_PATTERNS {
            bail!("more than {MAX_PATTERNS} HTTP host patterns");
        }
        let cacert = d
            .http_cacert
            .as_deref()
            .and_then(value)
            .map(PathBuf::from)
            .map(|p| std::path::absolute(&p).unwrap_or(p));
        let insecure = match d.http_insecure.as_deref().and_then(value) {
            None => false,
            Some(v) => matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"),
        };
        Ok(HttpSettings {
            hosts,
            cacert,
            insecure,
        })
    }
}

/// `host[:port]` of an http(s) URL, host in lower case (IPv6 in brackets).
pub(super) fn authority_of(url: &str) -> Result<String> {
    let uri: Uri = url.parse().map_err(|e| anyhow!("{e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => bail!("not http or https"),
    }
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow!("no host"))?
        .to_ascii_lowercase();
    Ok(match uri.port_u16() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

/// Refuse patterns that would allow too much or make no sense: a bare `*`, a `*` anywhere
/// but a leading `*.`, characters outside host names.
pub fn check_pattern(pattern: &str) -> Result<()> {
    let (host, port) = split_port(pattern);
    if let Some(p) = port
        && p != "*"
        && p.parse::<u16>().map(|p| p == 0).unwrap_or(true)
    {
        bail!("HTTP host pattern {pattern:?} has a bad port");
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    let ip = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    let ok = !name.is_empty()
        && (ip.parse::<IpAddr>().is_ok()
            || (name.contains('.') || !host.starts_with("*."))
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
                && !name.starts_with('.')
                && !name.ends_with('.'));
    if !ok {
        bail!(
            "HTTP host pattern {pattern:?} is not a host, a *.domain or an IP address (with an optional :port)"
        );
    }
    Ok(())
}

/// `host` and `port` of a pattern (`[::1]:80`, `a.b:443`, `a.b`).
pub(super) fn split_port(pattern: &str) -> (&str, Option<&str>) {
    if pattern.starts_with('[') {
        return match pattern.rsplit_once("]:") {
            Some((h, p)) => (&pattern[..h.len() + 1], Some(p)),
            None => (pattern, None),
        };
    }
    match pattern.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (pattern, None),
    }
}

/// Whether `host` (lower case, IPv6 without brackets) at `port` of `scheme` matches one of
/// `patterns`: an exact host or `*.domain` (a strict subdomain); a pattern without a port
/// allows the scheme's default port only, `:*` any port.
pub fn allowed(patterns: &[String], scheme: &str, host: &str, port: u16) -> bool {
    let default_port = if scheme == "https" { 443 } else { 80 };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    patterns.iter().any(|pattern| {
        let (p_host, p_port) = split_port(pattern);
        let port_ok = match p_port {
            Some("*") => true,
            Some(p) => p.parse::<u16>().ok() == Some(port),
            None => port == default_port,
        };
        let p_host = p_host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(p_host);
        let host_ok = match p_host.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => match (p_host.parse::<IpAddr>(), host.parse::<IpAddr>()) {
                (Ok(a), Ok(b)) => a == b,
                _ => host == p_host,
            },
        };
        port_ok && host_ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn patterns_match_hosts_ports_and_subdomains() {
        let p = pats(&[
            "api.example.com",
            "*.cloud.test",
            "127.0.0.1:8080",
            "[::1]:9000",
            "keystone.test:*",
        ]);
        assert!(allowed(&p, "https", "keystone.test", 8774));
        assert!(allowed(&p, "http", "keystone.test", 9696));
        assert!(!allowed(&p, "http", "nova.keystone.test", 8774));
        assert!(allowed(&p, "https", "api.example.com", 443));
        assert!(allowed(&p, "https", "API.example.com.", 443));
        assert!(
            !allowed(&p, "https", "api.example.com", 8443),
            "default port only"
        );
        assert!(!allowed(&p, "https", "evil-api.example.com", 443));
        assert!(!allowed(&p, "https", "api.example.com.evil.test", 443));
        assert!(allowed(&p, "https", "a.b.cloud.test", 443));
        assert!(
            !allowed(&p, "https", "cloud.test", 443),
            "*. is a strict subdomain"
        );
        assert!(allowed(&p, "http", "127.0.0.1", 8080));
        assert!(!allowed(&p, "http", "127.0.0.1", 8081));
        assert!(allowed(&p, "http", "::1", 9000));
        assert!(!allowed(&[], "http", "127.0.0.1", 80));
        for bad in ["*", "*.com.", "a*b.test", "", "a b", "x:0", "x:99999", "*."] {
            assert!(check_pattern(bad).is_err(), "{bad:?}");
        }
        for good in [
            "a.test",
            "*.a.test:8443",
            "10.0.0.1",
            "[::1]:80",
            "localhost",
        ] {
            assert!(check_pattern(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn flag_patterns_resolve_to_the_flag_values_host() {
        let d = Declaration {
            http_hosts: pats(&[
                "{acme-url}",
                "{acme-other}",
                "static.acme.test",
                "{acme-url}:*",
            ]),
            http_cacert: Some("acme-cacert".into()),
            http_insecure: Some("acme-insecure".into()),
            ..Declaration::default()
        };
        let fv = |n: &str, v: &str| FlagValue {
            name: n.into(),
            values: vec![v.into()],
        };
        let s = HttpSettings::resolve(
            &d,
            &[
                fv("acme-url", "http://127.0.0.1:4567/v2"),
                fv("acme-cacert", "/etc/ca.pem"),
                fv("acme-insecure", "false"),
            ],
        )
        .expect("resolve");
        assert_eq!(
            s.hosts,
            pats(&["127.0.0.1:4567", "static.acme.test", "127.0.0.1:*"])
        );
        assert_eq!(s.cacert, Some(PathBuf::from("/etc/ca.pem")));
        assert!(!s.insecure);
        let bad = HttpSettings::resolve(&d, &[fv("acme-url", "ftp://x/")]);
        assert!(bad.is_err());
        let star = Declaration {
            http_hosts: pats(&["*"]),
            ..Declaration::default()
        };
        assert!(HttpSettings::resolve(&star, &[]).is_err());
    }
}
