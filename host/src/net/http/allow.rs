//! The allow-list of the `http` capability: host patterns, resolved from the plugin's
//! declaration and flag values, the endpoints learnt from a Keystone service catalog, the
//! check of a request's scheme, host and port against them, and the check of the address a
//! host name resolves to ([`special_use`], [`HttpSettings::address_allowed`]).
//!
//! Rules:
//! - A pattern without a port allows https on port 443 only; plain http needs a port in the
//!   pattern (`host:80`, `host:*`) or an `http://` URL the user typed (resolved to `host:80`).
//! - A host name is allowed by name, then by address: an address of special use (loopback,
//!   link-local and cloud metadata, private, unspecified, …, and their IPv4-mapped forms) is
//!   refused unless the URL is that literal address (allowed by a pattern that names it) or
//!   the name came from a URL the user typed ([`HttpSettings::named`]).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use http::Uri;
use serde::{Deserialize, Serialize};

use super::MAX_PATTERNS;
use crate::sandbox::contract::v0_1::FlagValue;

/// What a plugin declared about HTTP — its `http-host`, `http-cacert`, `http-insecure` and
/// `http-keystone-catalog` entries (the fields of the same names of its declaration) — which
/// [`HttpSettings::resolve`] resolves with the flag values the user typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpAsk {
    /// The host patterns (`{flag}` for the host of a flag's value).
    pub http_hosts: Vec<String>,
    /// The flag naming a CA bundle file.
    pub http_cacert: Option<String>,
    /// The flag that turns TLS verification off.
    pub http_insecure: Option<String>,
    /// The flags choosing the Keystone catalog's endpoints.
    pub http_keystone_catalog: Option<KeystoneCatalogFlags>,
}

/// The `http-keystone-catalog` entry: the flags whose values choose the catalog endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeystoneCatalogFlags {
    /// The flag with the Keystone auth URL (its host is where the token is asked for).
    pub auth_url: String,
    /// The flag with the region (unset: every region).
    pub region: String,
    /// The flag with the interface (`public`, `internal`, `admin`, or Docker Machine's
    /// `publicURL`…; unset: public).
    pub interface: String,
}

/// What the `http` capability needs for one machine, kept in its record: the allowed host
/// patterns (flags resolved) and the TLS settings from the plugin's flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpSettings {
    /// Allowed hosts: `host`, `host:port`, `*.domain`, `*.domain:port`, IP literals.
    pub hosts: Vec<String>,
    /// The patterns of [`hosts`](Self::hosts) that came from URLs the user typed (`{flag}`
    /// patterns): their names may resolve to any address, since the user chose them. A
    /// record written before this field existed has none: every name is checked by address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named: Vec<String>,
    /// A CA bundle file trusted besides the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cacert: Option<PathBuf>,
    /// TLS verification is off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Where the plugin's Keystone tokens come from and which of their catalog endpoints
    /// become allowed hosts (declared with `http-keystone-catalog`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystone: Option<KeystoneCatalog>,
    /// The flags of `{flag}` patterns that allow nothing because the user typed no value
    /// (the plugin's default is not used): named when a request is denied at create.
    #[serde(skip)]
    pub untyped: Vec<String>,
}

/// The Keystone whose token answers add allowed hosts: its auth URL's origin, and the
/// region and interface the user chose.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeystoneCatalog {
    /// The origin of the auth URL (`scheme://host:port`, port always written).
    pub auth: String,
    /// Only endpoints of this region (its id or name); none: every region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Only endpoints of this interface: `public`, `internal` or `admin`.
    pub interface: String,
}

/// Most origins taken from one service catalog.
pub const MAX_CATALOG_ORIGINS: usize = 32;
/// Most catalog endpoints looked at.
const MAX_CATALOG_ENDPOINTS: usize = 1024;
/// Longest catalog endpoint URL taken.
pub const MAX_CATALOG_URL: usize = 2048;

/// `scheme://host:port` of an http(s) URL (host in lower case, IPv6 in brackets, the
/// scheme's default port written out).
pub fn origin_of(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    let scheme = match uri.scheme_str()? {
        s @ ("http" | "https") => s,
        _ => return None,
    };
    let host = uri.host().filter(|h| !h.is_empty())?.to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Some(format!("{scheme}://{host}:{port}"))
}

/// `(scheme, host, port)` of a request's URL as [`allowed`] takes them: the host in lower
/// case without IPv6 brackets, the scheme's default port when none is written.
pub fn target(uri: &Uri) -> (String, String, u16) {
    let scheme = uri.scheme_str().unwrap_or("").to_string();
    let host = uri
        .host()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    (scheme, host, port)
}

/// `scheme://host:port` of a request target (host as [`allowed`] takes it: no brackets).
pub fn origin(scheme: &str, host: &str, port: u16) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.contains(':') {
        format!("{scheme}://[{host}]:{port}")
    } else {
        format!("{scheme}://{host}:{port}")
    }
}

impl KeystoneCatalog {
    /// Whether a request (method, final URL) and its answer status are a token issued by
    /// this Keystone: `POST …/auth/tokens` on the auth URL's origin, answered 201.
    pub fn is_token_answer(&self, method: &http::Method, uri: &Uri, status: u16) -> bool {
        status == 201
            && method == http::Method::POST
            && uri.path().trim_end_matches('/').ends_with("/auth/tokens")
            && origin_of(&uri.to_string()).as_deref() == Some(self.auth.as_str())
    }

    /// The origins of the endpoints in a token answer's `token.catalog` whose interface (and
    /// region, when set) match, at most [`MAX_CATALOG_ORIGINS`], each with the service type
    /// that named it first; endpoints with a URL that is not http(s), longer than
    /// [`MAX_CATALOG_URL`] or whose host is not a host name or IP address are skipped.
    pub fn origins(&self, body: &[u8]) -> Vec<(String, String)> {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = Vec::new();
        let endpoints = v["token"]["catalog"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|service| {
                let kind = service["type"].as_str().unwrap_or("?");
                service["endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |ep| (kind, ep))
            })
            .take(MAX_CATALOG_ENDPOINTS);
        for (kind, ep) in endpoints {
            let region_ok = match &self.region {
                None => true,
                Some(r) => [&ep["region_id"], &ep["region"]]
                    .iter()
                    .any(|v| v.as_str() == Some(r.as_str())),
            };
            if !region_ok || ep["interface"].as_str() != Some(self.interface.as_str()) {
                continue;
            }
            let Some(url) = ep["url"].as_str().filter(|u| u.len() <= MAX_CATALOG_URL) else {
                continue;
            };
            let Some(o) = origin_of(url) else { continue };
            let host = o.split_once("://").map(|(_, h)| h).unwrap_or_default();
            if check_pattern(host).is_err() || out.iter().any(|(have, _)| *have == o) {
                continue;
            }
            if out.len() >= MAX_CATALOG_ORIGINS {
                break;
            }
            out.push((o, kind.chars().take(64).collect()));
        }
        out
    }
}

impl HttpSettings {
    /// Resolve a declaration's patterns and TLS flags with the flag values of a create:
    /// `{flag}` becomes the host (and port, when the value names one) of that flag's value;
    /// a pattern whose flag has no value, or a value without `://`, allows nothing.
    ///
    /// What chooses hosts or files — a `{flag}` pattern, the Keystone auth URL, the CA
    /// bundle, the insecure switch — is taken only from a flag named in `typed` (a value
    /// the user gave, on the command line or in the flag's environment variable), never
    /// from the plugin's default: with nothing typed, the pattern allows no host.
    pub fn resolve(
        d: &HttpAsk,
        flags: &[FlagValue],
        typed: &BTreeSet<String>,
    ) -> Result<HttpSettings> {
        let any_value = |name: &str| {
            flags
                .iter()
                .find(|f| f.name == name)
                .and_then(|f| f.values.last())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let value = |name: &str| any_value(name).filter(|_| typed.contains(name));
        let mut hosts = Vec::new();
        let mut named = Vec::new();
        let mut untyped = Vec::new();
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
                let Some(v) = value(flag) else {
                    if any_value(flag).is_some() && !untyped.iter().any(|u| u == flag) {
                        untyped.push(flag.to_string());
                    }
                    continue;
                };
                // A value that is no URL at all (a path: `--qemu-image /x.qcow2`) names no
                // host, so allows nothing, like no value.
                if !v.contains("://") {
                    continue;
                }
                let authority = authority_of(&v).with_context(|| {
                    format!("--{flag} {v:?} is not an http:// or https:// URL with a host")
                })?;
                let resolved = if any_port {
                    format!("{}:*", split_port(&authority).0)
                } else {
                    authority
                };
                check_pattern(&resolved)?;
                if !named.contains(&resolved) {
                    named.push(resolved.clone());
                }
                resolved
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
        let keystone = match &d.http_keystone_catalog {
            None => None,
            Some(k) => match value(&k.auth_url) {
                None => None,
                Some(url) => Some(KeystoneCatalog {
                    auth: origin_of(&url).ok_or_else(|| {
                        anyhow!(
                            "--{} {url:?} is not an http:// or https:// URL with a host",
                            k.auth_url
                        )
                    })?,
                    // These only narrow the catalog of the user's Keystone: a default
                    // region or interface is fine.
                    region: any_value(&k.region),
                    interface: interface_of(&k.interface, any_value(&k.interface))?,
                }),
            },
        };
        Ok(HttpSettings {
            hosts,
            named,
            cacert,
            insecure,
            keystone,
            untyped,
        })
    }
}

/// The Keystone interface named by the value of `--flag`: `public` (also when unset),
/// `internal`, `admin`, or Docker Machine's `publicURL`, `internalURL`, `adminURL`.
fn interface_of(flag: &str, value: Option<String>) -> Result<String> {
    let Some(v) = value else {
        return Ok("public".into());
    };
    let lower = v.to_ascii_lowercase();
    let name = lower.strip_suffix("url").unwrap_or(&lower);
    match name {
        "public" | "internal" | "admin" => Ok(name.to_string()),
        _ => bail!("--{flag} must be publicURL, internalURL or adminURL, got {v:?}"),
    }
}

/// `host[:port]` of an http(s) URL, host in lower case (IPv6 in brackets); an `http://`
/// URL without a port gets `:80` (a pattern without a port allows https only).
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
    Ok(match (uri.port_u16(), uri.scheme_str()) {
        (Some(p), _) => format!("{host}:{p}"),
        (None, Some("http")) => format!("{host}:80"),
        (None, _) => host,
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
/// allows https on port 443 only, `:PORT` http or https on that port, `:*` any port.
pub fn allowed(patterns: &[String], scheme: &str, host: &str, port: u16) -> bool {
    if !(scheme == "http" || scheme == "https") {
        return false;
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    patterns.iter().any(|pattern| {
        let (p_host, p_port) = split_port(pattern);
        let port_ok = match p_port {
            Some("*") => true,
            Some(p) => p.parse::<u16>().ok() == Some(port),
            None => scheme == "https" && port == 443,
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

/// Why a request to `host` at `port` over `scheme` is not allowed by `patterns`, when the
/// reason is the scheme: plain http to a host whose pattern has no port.
pub fn scheme_note(patterns: &[String], scheme: &str, host: &str, port: u16) -> Option<String> {
    (scheme == "http" && allowed(patterns, "https", host, 443)).then(|| {
        format!(
            "its pattern for {host} has no port, which allows https on port 443 only; plain http (port {port}) needs the port in the pattern or an http:// URL you type"
        )
    })
}

/// What an address is for, when it is not an ordinary public unicast address: `loopback`,
/// `link-local` (169.254.0.0/16 holds the cloud metadata service), `private`, … — an
/// IPv4-mapped, IPv4-compatible, NAT64 or 6to4 IPv6 address is judged by the IPv4 address
/// it carries. None for an address on the internet.
pub fn special_use(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

/// What a declared pattern reaches when it is a literal address of special use (a plugin
/// may name one, `127.0.0.1:8080`), in words for the user; none for any other pattern.
pub fn literal_special_use(pattern: &str) -> Option<&'static str> {
    let host = split_port(pattern).0;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    special_use(host.parse().ok()?)
}

/// How [`special_use`] starts for addresses dmw never connects a plugin to.
const UNSPECIFIED: &str = "unspecified";
const MULTICAST: &str = "multicast";

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified (\"this network\": your own computer)",
        (127, _, _) => "loopback: a service on your own computer",
        (169, 254, _) => "link-local: the cloud metadata service and your own network segment",
        (10, _, _) | (192, 168, _) => "private (RFC 1918): your own network",
        (172, b, _) if (16..32).contains(&b) => "private (RFC 1918): your own network",
        (100, b, _) if (64..128).contains(&b) => {
            "shared address space (carrier NAT, some clouds' metadata)"
        }
        (192, 0, 0) => "IETF protocol assignments (some clouds' metadata)",
        (198, b, _) if b == 18 || b == 19 => "benchmarking network",
        (a, _, _) if a >= 224 => "multicast, broadcast or reserved",
        _ => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified (your own computer)");
    }
    if ip.is_loopback() {
        return Some("loopback: a service on your own computer");
    }
    let s = ip.segments();
    // Forms that carry an IPv4 address: mapped ::ffff:a.b.c.d, compatible ::a.b.c.d,
    // NAT64 64:ff9b::a.b.c.d, and 6to4 2002:AABB:CCDD::.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let carried = match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some((embedded(hi, lo), false)),
        [0, 0, 0, 0, 0, 0, hi, lo] => Some((embedded(hi, lo), true)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some((embedded(hi, lo), false)),
        [0x2002, hi, lo, ..] => Some((embedded(hi, lo), false)),
        _ => None,
    };
    if let Some((v4, compatible)) = carried {
        // ::a.b.c.d (IPv4-compatible) is deprecated: never a real destination.
        return special_v4(v4).or(compatible.then_some("IPv4-compatible (deprecated)"));
    }
    Some(match s[0] {
        x if x & 0xfe00 == 0xfc00 => "private (unique local, fc00::/7): your own network",
        x if x & 0xffc0 == 0xfe80 => "link-local: your own network segment",
        x if x & 0xffc0 == 0xfec0 => "site-local (deprecated): your own network",
        x if x & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    })
}

impl HttpSettings {
    /// Whether the connection for a request to `host` (lower case, IPv6 without brackets)
    /// at `port` over `scheme`, already allowed by name, may go to `ip`, one of the
    /// addresses the name resolved to: an address on the internet always; an address of
    /// special use ([`special_use`]) only when the URL's host is that very address (so the
    /// pattern that allowed it names it), when the name came from a URL the user typed
    /// ([`named`](Self::named)), or when `learnt` (the Keystone catalog of the user's cloud)
    /// named its origin. The error says what the address is.
    pub fn address_allowed(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
        ip: IpAddr,
        learnt: bool,
    ) -> Result<(), String> {
        let Some(kind) = special_use(ip) else {
            return Ok(());
        };
        if kind.starts_with(UNSPECIFIED) || kind.starts_with(MULTICAST) {
            return Err(format!(
                "{host} is {ip} ({kind}): dmw never connects there for a plugin"
            ));
        }
        let literal = host.parse::<IpAddr>().is_ok_and(|h| h == ip);
        if literal || learnt || allowed(&self.named, scheme, host, port) {
            return Ok(());
        }
        Err(format!(
            "{host} resolves to {ip} ({kind}), and no pattern names that address: a host name a plugin declares must lead to the internet (a plugin may declare the address itself, or you may type a URL that names it)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag of `flags` typed by the user.
    fn all_typed(flags: &[FlagValue]) -> BTreeSet<String> {
        flags.iter().map(|f| f.name.clone()).collect()
    }

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
    fn a_pattern_without_a_port_means_https_on_443_only() {
        let p = pats(&[
            "api.example.com",
            "plain.test:80",
            "any.test:*",
            "10.0.0.1:8080",
        ]);
        assert!(allowed(&p, "https", "api.example.com", 443));
        assert!(
            !allowed(&p, "http", "api.example.com", 80),
            "http needs a port"
        );
        assert!(!allowed(&p, "http", "api.example.com", 443));
        assert!(!allowed(&p, "https", "api.example.com", 80));
        assert!(allowed(&p, "http", "plain.test", 80));
        assert!(allowed(&p, "https", "plain.test", 80));
        assert!(!allowed(&p, "http", "plain.test", 8080));
        assert!(allowed(&p, "http", "any.test", 8080) && allowed(&p, "https", "any.test", 1));
        assert!(allowed(&p, "http", "10.0.0.1", 8080));
        assert!(!allowed(&p, "ftp", "any.test", 21));
        assert!(
            scheme_note(&p, "http", "api.example.com", 80)
                .is_some_and(|n| n.contains("allows https on port 443 only")),
        );
        assert!(scheme_note(&p, "http", "elsewhere.test", 80).is_none());
        assert!(literal_special_use("10.0.0.1:8080").is_some_and(|k| k.starts_with("private")));
        assert!(
            literal_special_use("[::ffff:127.0.0.1]:80").is_some_and(|k| k.starts_with("loopback"))
        );
        assert_eq!(
            literal_special_use("localhost:*"),
            None,
            "a name, checked by address"
        );
        assert_eq!(literal_special_use("8.8.8.8"), None);
        // A URL the user typed: `http://` without a port becomes `:80`, `https://` none.
        let d = HttpAsk {
            http_hosts: pats(&["{acme-url}", "{acme-secure}"]),
            ..HttpAsk::default()
        };
        let fv = |n: &str, v: &str| FlagValue {
            name: n.into(),
            values: vec![v.into()],
        };
        let given = [
            fv("acme-url", "http://Mirror.test/debian"),
            fv("acme-secure", "https://api.test/v1"),
        ];
        let s = HttpSettings::resolve(&d, &given, &all_typed(&given)).expect("resolve");
        assert_eq!(s.hosts, pats(&["mirror.test:80", "api.test"]));
        assert_eq!(s.named, s.hosts, "both came from URLs the user typed");
        assert!(allowed(&s.hosts, "http", "mirror.test", 80));
        assert!(!allowed(&s.hosts, "http", "api.test", 80));
    }

    #[test]
    fn addresses_of_special_use_are_classified() {
        let special = |ip: &str| special_use(ip.parse().expect("ip"));
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::7f00:1", "loopback"),
            ("2002:7f00:1::1", "loopback"),
            ("169.254.169.254", "link-local"),
            ("::ffff:169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("10.0.0.5", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("::ffff:10.1.2.3", "private"),
            ("fc00::1", "private"),
            ("fd00:ec2::254", "private"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("::", "unspecified"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("100.100.100.200", "shared address space"),
            ("192.0.0.192", "IETF"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "multicast"),
            ("ff02::1", "multicast"),
            ("fec0::1", "site-local"),
        ] {
            assert!(
                special(ip).is_some_and(|k| k.starts_with(kind)),
                "{ip}: {:?}",
                special(ip)
            );
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "172.15.0.1",
            "100.128.0.1",
            "192.0.2.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "2002:808:808::1",
        ] {
            assert_eq!(special(public), None, "{public}");
        }
    }

    #[test]
    fn special_addresses_only_when_named_literally_or_typed_by_the_user() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let s = HttpSettings {
            hosts: pats(&[
                "api.example.test",
                "127.0.0.1:8080",
                "0.0.0.0:80",
                "typed.test:*",
            ]),
            named: pats(&["typed.test:*"]),
            ..HttpSettings::default()
        };
        // A declared name resolving to loopback, metadata, a private network: refused.
        for addr in [
            "127.0.0.1",
            "169.254.169.254",
            "10.0.0.1",
            "::ffff:127.0.0.1",
            "fd00::1",
        ] {
            let e = s
                .address_allowed("https", "api.example.test", 443, ip(addr), false)
                .expect_err(addr);
            assert!(
                e.contains(&format!("api.example.test resolves to {addr} (")),
                "{e}"
            );
        }
        assert!(
            s.address_allowed("https", "api.example.test", 443, ip("93.184.215.14"), false)
                .is_ok()
        );
        // The URL is the literal address a pattern names.
        assert!(
            s.address_allowed("http", "127.0.0.1", 8080, ip("127.0.0.1"), false)
                .is_ok()
        );
        // A name the user typed may be anywhere; so may a catalog origin of the user's cloud.
        assert!(
            s.address_allowed("http", "typed.test", 9000, ip("10.0.0.1"), false)
                .is_ok()
        );
        assert!(
            s.address_allowed("https", "api.example.test", 443, ip("10.0.0.1"), true)
                .is_ok()
        );
        // Never the unspecified address or multicast, even named.
        for addr in ["0.0.0.0", "224.0.0.1"] {
            assert!(
                s.address_allowed("http", addr, 80, ip(addr), false)
                    .is_err(),
                "{addr}"
            );
            assert!(
                s.address_allowed("http", "typed.test", 80, ip(addr), false)
                    .is_err(),
                "{addr}"
            );
        }
    }

    #[test]
    fn flag_patterns_resolve_to_the_flag_values_host() {
        let d = HttpAsk {
            http_hosts: pats(&[
                "{acme-url}",
                "{acme-other}",
                "static.acme.test",
                "{acme-url}:*",
            ]),
            http_cacert: Some("acme-cacert".into()),
            http_insecure: Some("acme-insecure".into()),
            ..HttpAsk::default()
        };
        let fv = |n: &str, v: &str| FlagValue {
            name: n.into(),
            values: vec![v.into()],
        };
        let given = [
            fv("acme-url", "http://127.0.0.1:4567/v2"),
            fv("acme-cacert", "/etc/ca.pem"),
            fv("acme-insecure", "false"),
        ];
        let s = HttpSettings::resolve(&d, &given, &all_typed(&given)).expect("resolve");
        assert_eq!(
            s.hosts,
            pats(&["127.0.0.1:4567", "static.acme.test", "127.0.0.1:*"])
        );
        assert_eq!(s.named, pats(&["127.0.0.1:4567", "127.0.0.1:*"]));
        assert_eq!(s.cacert, Some(PathBuf::from("/etc/ca.pem")));
        assert!(!s.insecure);
        let ftp = [fv("acme-url", "ftp://x/")];
        let bad = HttpSettings::resolve(&d, &ftp, &all_typed(&ftp));
        assert!(bad.is_err());
        let star = HttpAsk {
            http_hosts: pats(&["*"]),
            ..HttpAsk::default()
        };
        assert!(HttpSettings::resolve(&star, &[], &BTreeSet::new()).is_err());
    }

    #[test]
    fn flag_patterns_and_files_come_only_from_typed_values() {
        let d = HttpAsk {
            http_hosts: pats(&["{acme-url}", "{acme-url}:*", "static.acme.test"]),
            http_cacert: Some("acme-cacert".into()),
            http_insecure: Some("acme-insecure".into()),
            http_keystone_catalog: Some(KeystoneCatalogFlags {
                auth_url: "acme-url".into(),
                region: "acme-region".into(),
                interface: "acme-interface".into(),
            }),
        };
        let fv = |n: &str, v: &str| FlagValue {
            name: n.into(),
            values: vec![v.into()],
        };
        // The plugin's defaults, nothing typed: only the static host, no CA bundle, TLS on,
        // no Keystone catalog.
        let defaults = [
            fv("acme-url", "http://127.0.0.1:4567/"),
            fv("acme-cacert", "/proc/self/environ"),
            fv("acme-insecure", "true"),
            fv("acme-region", "RegionOne"),
        ];
        let s = HttpSettings::resolve(&d, &defaults, &BTreeSet::new()).expect("resolve");
        assert_eq!(s.hosts, pats(&["static.acme.test"]));
        assert_eq!(s.untyped, vec!["acme-url"]);
        assert_eq!(s.cacert, None);
        assert!(!s.insecure);
        assert_eq!(s.keystone, None);
        // The same values typed by the user count.
        let s = HttpSettings::resolve(&d, &defaults, &all_typed(&defaults)).expect("typed");
        assert_eq!(
            s.hosts,
            pats(&["127.0.0.1:4567", "127.0.0.1:*", "static.acme.test"])
        );
        assert!(s.insecure && s.cacert.is_some());
        let k = s.keystone.expect("keystone");
        assert_eq!(k.auth, "http://127.0.0.1:4567");
        assert_eq!(k.region.as_deref(), Some("RegionOne"));
        // Only the URL typed: the region default still narrows the user's catalog.
        let only_url: BTreeSet<String> = ["acme-url".to_string()].into();
        let s = HttpSettings::resolve(&d, &defaults, &only_url).expect("url typed");
        assert_eq!(s.cacert, None);
        assert_eq!(
            s.keystone.and_then(|k| k.region).as_deref(),
            Some("RegionOne")
        );
    }

    fn keystone(region: Option<&str>, interface: &str) -> KeystoneCatalog {
        KeystoneCatalog {
            auth: "https://keystone.test:5000".into(),
            region: region.map(String::from),
            interface: interface.into(),
        }
    }

    const CATALOG: &str = r#"{"token": {"catalog": [
        {"type": "compute", "endpoints": [
            {"interface": "public", "region_id": "RegionOne", "url": "https://Nova.test:8774/v2.1"},
            {"interface": "internal", "region_id": "RegionOne", "url": "http://10.0.0.5:8774/v2.1"},
            {"interface": "public", "region": "RegionTwo", "url": "https://nova.two.test/v2.1"}]},
        {"type": "image", "endpoints": [
            {"interface": "public", "region_id": "RegionOne", "url": "https://nova.test:8774/image"},
            {"interface": "public", "region_id": "RegionOne", "url": "ftp://files.test/"},
            {"interface": "public", "region_id": "RegionOne", "url": "https://bad host/"},
            {"interface": "public", "region_id": "RegionOne"},
            {"interface": "public", "region_id": "RegionOne", "url": "https://[::1]:9292"}]},
        {"type": "network", "endpoints": "not a list"}
    ]}}"#;

    #[test]
    fn catalog_endpoints_of_the_chosen_region_and_interface() {
        let one = keystone(Some("RegionOne"), "public");
        assert_eq!(
            one.origins(CATALOG.as_bytes()),
            vec![
                ("https://nova.test:8774".to_string(), "compute".to_string()),
                ("https://[::1]:9292".to_string(), "image".to_string()),
            ]
        );
        let two = keystone(Some("RegionTwo"), "public");
        assert_eq!(
            two.origins(CATALOG.as_bytes()),
            vec![(
                "https://nova.two.test:443".to_string(),
                "compute".to_string()
            )]
        );
        let internal = keystone(None, "internal");
        assert_eq!(
            internal.origins(CATALOG.as_bytes()),
            vec![("http://10.0.0.5:8774".to_string(), "compute".to_string())]
        );
        assert_eq!(
            keystone(None, "public").origins(CATALOG.as_bytes()).len(),
            3
        );
        assert!(one.origins(b"not json").is_empty());
        assert!(one.origins(br#"{"token": {}}"#).is_empty());
    }

    #[test]
    fn catalog_is_bounded() {
        let long = format!("https://long.test/{}", "x".repeat(MAX_CATALOG_URL));
        let mut eps: Vec<String> = (0..100)
            .map(|i| format!(r#"{{"interface": "public", "url": "https://h{i}.test"}}"#))
            .collect();
        eps.insert(0, format!(r#"{{"interface": "public", "url": "{long}"}}"#));
        let body = format!(
            r#"{{"token": {{"catalog": [{{"type": "x", "endpoints": [{}]}}]}}}}"#,
            eps.join(",")
        );
        let got = keystone(None, "public").origins(body.as_bytes());
        assert_eq!(got.len(), MAX_CATALOG_ORIGINS);
        assert_eq!(got[0].0, "https://h0.test:443");
    }

    #[test]
    fn token_answers_only_from_the_auth_urls_origin() {
        let k = keystone(None, "public");
        let post = http::Method::POST;
        let uri = |u: &str| u.parse::<Uri>().expect("uri");
        assert!(k.is_token_answer(
            &post,
            &uri("https://keystone.test:5000/v3/auth/tokens"),
            201
        ));
        assert!(!k.is_token_answer(
            &post,
            &uri("https://keystone.test:5000/v3/auth/tokens"),
            200
        ));
        assert!(!k.is_token_answer(
            &http::Method::GET,
            &uri("https://keystone.test:5000/v3/auth/tokens"),
            201
        ));
        assert!(!k.is_token_answer(&post, &uri("http://keystone.test:5000/v3/auth/tokens"), 201));
        assert!(!k.is_token_answer(
            &post,
            &uri("https://keystone.test:5001/v3/auth/tokens"),
            201
        ));
        assert!(!k.is_token_answer(&post, &uri("https://keystone.test:5000/v3/servers"), 201));
        let d = HttpAsk {
            http_keystone_catalog: Some(KeystoneCatalogFlags {
                auth_url: "os-auth-url".into(),
                region: "os-region".into(),
                interface: "os-endpoint-type".into(),
            }),
            ..HttpAsk::default()
        };
        let flag = |n: &str, v: &str| FlagValue {
            name: n.into(),
            values: vec![v.into()],
        };
        let given = [
            flag("os-auth-url", "HTTPS://Keystone.test/v3"),
            flag("os-endpoint-type", "internalURL"),
        ];
        let s = HttpSettings::resolve(&d, &given, &all_typed(&given)).expect("resolve");
        assert_eq!(
            s.keystone,
            Some(KeystoneCatalog {
                auth: "https://keystone.test:443".into(),
                region: None,
                interface: "internal".into(),
            })
        );
        assert!(
            HttpSettings::resolve(&d, &[], &BTreeSet::new())
                .expect("none")
                .keystone
                .is_none()
        );
        let private = [
            flag("os-auth-url", "https://k.test"),
            flag("os-endpoint-type", "privateURL"),
        ];
        assert!(HttpSettings::resolve(&d, &private, &all_typed(&private)).is_err());
    }
}
