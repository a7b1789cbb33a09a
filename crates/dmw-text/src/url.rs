//! Docker engine URLs: `tcp://HOST[:PORT]`.

use std::fmt;

/// Docker's TLS port, the port of a URL that names none.
pub const DEFAULT_ENGINE_PORT: u16 = 2376;

/// A parsed engine URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineUrl {
    /// Host name or IP address (an IPv6 address without its brackets).
    pub host: String,
    /// TCP port (1..=65535).
    pub port: u16,
}

impl EngineUrl {
    /// `host:port`, an IPv6 host in brackets: for messages, `Host` headers and new URLs.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a text is not an engine URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UrlError {
    /// It does not start with one of the accepted schemes.
    Scheme,
    /// Something (a path, a second `/`) follows `host:port`.
    Path,
    /// A `[` without its `]`.
    UnclosedBracket,
    /// Something other than `:PORT` follows `]`.
    JunkAfterBracket,
    /// An IPv6 address without brackets (`tcp://::1:2376` is ambiguous).
    UnbracketedIpv6,
    /// The host is empty.
    MissingHost,
    /// The port is not a number between 1 and 65535.
    InvalidPort,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Scheme => "expected tcp://host:port",
            UrlError::Path => "nothing may follow host:port",
            UrlError::UnclosedBracket => "unclosed '['",
            UrlError::JunkAfterBracket => "junk after ']'",
            UrlError::UnbracketedIpv6 => "IPv6 hosts need [brackets]",
            UrlError::MissingHost => "missing host",
            UrlError::InvalidPort => "invalid port",
        })
    }
}

impl std::error::Error for UrlError {}

/// Parse `SCHEME://HOST[:PORT]` with one of `schemes` (e.g. `["tcp"]`), one trailing `/`
/// allowed and nothing else after the port; `HOST` may be a bracketed IPv6 address and the
/// port defaults to [`DEFAULT_ENGINE_PORT`].
///
/// Only the URL's structure is checked: callers decide what a host may be (the dmw host
/// requires an IP address or DNS name).
pub fn parse_engine_url(url: &str, schemes: &[&str]) -> Result<EngineUrl, UrlError> {
    let rest = schemes
        .iter()
        .find_map(|s| url.strip_prefix(s).and_then(|r| r.strip_prefix("://")))
        .ok_or(UrlError::Scheme)?;
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !path.is_empty() {
        return Err(UrlError::Path);
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or(UrlError::UnclosedBracket)?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(p.strip_prefix(':').ok_or(UrlError::JunkAfterBracket)?),
            ),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => return Err(UrlError::UnbracketedIpv6),
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let port = match port {
        None => DEFAULT_ENGINE_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or(UrlError::InvalidPort)?,
    };
    Ok(EngineUrl {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> (String, u16) {
        match parse_engine_url(url, &["tcp", "https"]) {
            Ok(u) => (u.host, u.port),
            Err(e) => panic!("{url}: {e}"),
        }
    }

    #[test]
    fn parses_hosts_and_ports() {
        assert_eq!(
            ok("tcp://192.168.99.100:2376"),
            ("192.168.99.100".into(), 2376)
        );
        assert_eq!(
            ok("tcp://docker.example:12376/"),
            ("docker.example".into(), 12376)
        );
        assert_eq!(ok("tcp://[fd00::5]:2377"), ("fd00::5".into(), 2377));
        assert_eq!(ok("tcp://[::1]"), ("::1".into(), 2376));
        assert_eq!(ok("tcp://h"), ("h".into(), 2376));
        assert_eq!(ok("https://h:1"), ("h".into(), 1));
    }

    #[test]
    fn authority_brackets_ipv6() {
        let u = |h: &str| {
            EngineUrl {
                host: h.into(),
                port: 2376,
            }
            .authority()
        };
        assert_eq!(u("::1"), "[::1]:2376");
        assert_eq!(u("10.0.0.1"), "10.0.0.1:2376");
    }

    #[test]
    fn refuses_what_is_not_an_engine_url() {
        use UrlError::*;
        for (bad, why) in [
            ("", Scheme),
            ("h:2376", Scheme),
            ("http://h:1", Scheme),
            ("tcp:/h", Scheme),
            ("tcp://", MissingHost),
            ("tcp://:2376", MissingHost),
            ("tcp://[]:1", MissingHost),
            ("tcp://h:0", InvalidPort),
            ("tcp://h:", InvalidPort),
            ("tcp://h:x", InvalidPort),
            ("tcp://h:65536", InvalidPort),
            ("tcp://::1:2", UnbracketedIpv6),
            ("tcp://[::1", UnclosedBracket),
            ("tcp://[::1]x", JunkAfterBracket),
            ("tcp://h:2376/v1", Path),
            ("tcp://h//", Path),
            ("tcp://127.0.0.1/$(id>F)", Path),
        ] {
            assert_eq!(parse_engine_url(bad, &["tcp"]), Err(why), "{bad}");
        }
        assert_eq!(parse_engine_url("https://h", &["tcp"]), Err(Scheme));
    }
}
