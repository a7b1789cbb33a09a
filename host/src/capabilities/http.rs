//! `http`: outgoing HTTP(S) for a plugin granted it, through the standard `wasi:http`
//! interface (wasmtime-wasi-http), checked and sent by dmw.
//!
//! - Every request is checked in the send-request hook against the plugin's declared
//!   `http-host` patterns, with `{flag}` replaced by the host of that flag's value for this
//!   machine ([`HttpSettings::resolve`]). Anything else is refused **before any connection
//!   is opened** (the request body is drained first so the guest sees
//!   `http-request-denied`, not a reset), and the refusal names the host in the log.
//! - Only http and https. Redirects (301/302/303/307/308) are followed by dmw, at most 5,
//!   each target checked against the same list.
//! - dmw's own sender: hyper http1 over tokio-rustls, trusting the system's roots plus the
//!   plugin's CA bundle flag (`http-cacert`), or nothing checked with its insecure flag
//!   (`http-insecure`, with a warning); `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`; connect and
//!   whole-request timeouts; retries with backoff on 429/502/503/504 honouring
//!   `Retry-After`; request and response bodies capped.
//! - Every request goes to the machine's log as method, URL (secret-looking query values
//!   redacted) and status; `--debug` shows the headers with credentials redacted.
//!
//! A plugin not granted `http` gets `http-request-denied` for every request (and a
//! component that imports `wasi:http` without declaring `http` is refused before it runs,
//! see `plugin::grants::check_imports`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{WasiBody, WasiHttpHooks};

use super::{Capability, Lent, Offer};
use crate::plugin::HostState;
use crate::plugin::declaration::Declaration;
use crate::plugin::driver::FlagValue;
use crate::report::Reporter;

/// The `http` capability (declared by the plugin, granted by the user).
pub const CAPABILITY: Capability = Capability {
    name: "http",
    link: add_to_linker,
    lend,
};

/// Longest a connection (TCP, proxy tunnel and TLS) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest one attempt of a request may take, answer body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest answer body read.
pub const MAX_RESPONSE_BODY: usize = 16 << 20;
/// Largest request body a plugin may send.
pub const MAX_REQUEST_BODY: usize = 8 << 20;
/// Most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;
/// Most retries of one request on 429/502/503/504.
pub const MAX_RETRIES: u32 = 3;
/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Largest CA bundle file read.
const MAX_CA_BUNDLE: u64 = 1 << 20;
/// Most resolved host patterns.
const MAX_PATTERNS: usize = 64;

/// The prefix of the message of a refused redirect (the guest SDK names the host from it).
pub const DENIED_REDIRECT_PREFIX: &str = "dmw-denied-host ";

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
    /// a pattern whose flag has no value, or a value without `://`, allows nothing.
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
                // A value that is no URL at all (a path: `--qemu-image /x.qcow2`) names no
                // host, so allows nothing, like no value.
                if !v.contains("://") {
                    continue;
                }
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
fn authority_of(url: &str) -> Result<String> {
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
fn split_port(pattern: &str) -> (&str, Option<&str>) {
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

/// dmw's sender for one plugin and machine: TLS roots, proxies, settings.
pub struct Sender {
    settings: HttpSettings,
    tls: Arc<rustls::ClientConfig>,
    proxy: ProxyConfig,
    /// Whether the insecure-mode warning was shown (once per command).
    warned: std::sync::atomic::AtomicBool,
}

impl Sender {
    /// A sender for `settings`, with the proxies from the environment; fails on a CA bundle
    /// that cannot be read.
    pub fn new(settings: HttpSettings) -> Result<Sender> {
        let tls = tls_config(&settings)?;
        Ok(Sender {
            settings,
            tls: Arc::new(tls),
            proxy: ProxyConfig::from_env(|k| std::env::var(k).ok()),
            warned: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The settings it was made from.
    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }
}

/// The rustls client configuration: the system's roots (or webpki's when it has none) and
/// the CA bundle, or no verification when insecure.
fn tls_config(settings: &HttpSettings) -> Result<rustls::ClientConfig> {
    let provider = crate::tls::crypto_provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS: {e}"))?;
    if settings.insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(path) = &settings.cacert {
        use rustls_pki_types::pem::PemObject;
        let shown = path.display();
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot read the CA bundle {shown}"))?;
        if meta.len() > MAX_CA_BUNDLE {
            bail!("the CA bundle {shown} is larger than {MAX_CA_BUNDLE} bytes");
        }
        let pem =
            std::fs::read(path).with_context(|| format!("cannot read the CA bundle {shown}"))?;
        let mut added = 0;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|_| anyhow!("the CA bundle {shown} is not valid PEM"))?;
            roots
                .add(cert)
                .map_err(|e| anyhow!("the CA bundle {shown} has a bad certificate: {e}"))?;
            added += 1;
        }
        if added == 0 {
            bail!("the CA bundle {shown} holds no PEM certificate");
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// The verifier of insecure mode: accepts any certificate (signatures still checked).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

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
        use base64_lite::encode;
        format!("Basic {}", encode(u.as_bytes()))
    });
    Some(Proxy {
        authority: hostport,
        authorization,
    })
}

/// Base64 (standard alphabet, padded) for proxy credentials.
mod base64_lite {
    /// Encode `data`.
    pub fn encode(data: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// How long `Retry-After` asks to wait (seconds, or an HTTP date), bounded by
/// [`MAX_RETRY_AFTER`]; none when absent or unreadable.
pub fn retry_after(value: Option<&str>, now: std::time::SystemTime) -> Option<Duration> {
    let v = value?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let when =
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let now = time::OffsetDateTime::from(now);
    let wait = (when - now).whole_seconds().max(0) as u64;
    Some(Duration::from_secs(wait).min(MAX_RETRY_AFTER))
}

/// Query parameter names whose values are secrets in logged URLs.
const SECRET_QUERY_WORDS: &[&str] = &[
    "token",
    "key",
    "secret",
    "password",
    "signature",
    "credential",
    "auth",
    "sig",
];

/// `url` as logged: query values of secret-looking names replaced by `<redacted>`, user
/// info dropped.
pub fn loggable_url(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let authority = uri
        .authority()
        .map(|a| {
            a.as_str()
                .rsplit('@')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default();
    let mut out = format!("{scheme}://{authority}{}", uri.path());
    if let Some(q) = uri.query() {
        let parts: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _))
                    if SECRET_QUERY_WORDS
                        .iter()
                        .any(|w| k.to_ascii_lowercase().contains(w)) =>
                {
                    format!("{k}=<redacted>")
                }
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&parts.join("&"));
    }
    crate::sanitize::plugin_text(&out, 2048)
}

/// Header names whose values never appear in logs.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-auth-token",
    "x-subject-token",
    "cookie",
    "set-cookie",
    "x-amz-security-token",
];

/// Headers as logged at debug level: credentials redacted.
pub fn loggable_headers(headers: &HeaderMap) -> String {
    headers
        .iter()
        .map(|(n, v)| {
            let value = if SECRET_HEADERS.contains(&n.as_str()) {
                crate::report::REDACTED.to_string()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            format!("{n}: {value}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The `http` context of a plugin instance.
pub struct HttpCtx {
    plugin: String,
    sender: Option<Arc<Sender>>,
    report: Arc<Reporter>,
}

impl HttpCtx {
    /// Use `sender` (its settings) from now on (create sets it once the flags are known).
    pub fn set_sender(&mut self, sender: Arc<Sender>) {
        self.sender = Some(sender);
    }

    /// Send the log lines to `report` from now on.
    pub fn set_report(&mut self, report: Arc<Reporter>) {
        self.report = report;
    }
}

/// Link `wasi:http` (outgoing-handler and types), answered through [`HostState`]'s hooks.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}

fn lend(offer: &Offer, lent: &mut Lent) {
    lent.insert(HttpCtx {
        plugin: offer.plugin.clone(),
        sender: offer.http.clone(),
        report: offer.report.clone(),
    });
}

/// The hooks of an instance with no `http` grant: every request is refused.
#[derive(Default)]
pub struct NoHttp;

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                ),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

/// Refuse a request after reading its body (so the guest sees `http-request-denied`).
fn deny(request: Request<WasiBody>) -> SendFuture {
    Box::new(async move {
        let mut body = request.into_body();
        // Bounded: drain at most the request cap, then refuse either way.
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    seen += f.data_ref().map(|d| d.len()).unwrap_or(0);
                    if seen > MAX_REQUEST_BODY {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        Err(wasmtime_wasi_http::Error::HttpRequestDenied)
    })
}

impl WasiHttpHooks for NoHttp {
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> SendFuture {
        deny(request)
    }
}

impl WasiHttpHooks for HttpCtx {
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> SendFuture {
        let plugin = self.plugin.clone();
        let report = self.report.clone();
        let uri = request.uri().clone();
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
        let Some(sender) = self.sender.clone().filter(|s| {
            (scheme == "http" || scheme == "https")
                && allowed(&s.settings.hosts, &scheme, &host, port)
        }) else {
            report.warn(&format!(
                "plugin {plugin}: dmw denied {} {} (host {host} is not in the plugin's http-host list; no connection was opened)",
                request.method(),
                loggable_url(&uri)
            ));
            return deny(request);
        };
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let body = Limited::new(body, MAX_REQUEST_BODY)
                .collect()
                .await
                .map_err(|_| wasmtime_wasi_http::Error::HttpRequestBodySize(None))?
                .to_bytes();
            let answer = send(&sender, &report, &plugin, parts, body, options).await?;
            let (parts, body) = answer.into_parts();
            let body: WasiBody = Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync();
            let io: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((Response::from_parts(parts, body), io))
        })
    }
}

/// An allowed request, sent with redirects and retries; the whole answer read.
async fn send(
    sender: &Sender,
    report: &Reporter,
    plugin: &str,
    parts: http::request::Parts,
    body: Bytes,
    options: Option<wasmtime_wasi_http::RequestOptions>,
) -> Result<Response<Bytes>, wasmtime_wasi_http::Error> {
    let lower = |limit: Duration, asked: Option<Duration>| match asked {
        Some(a) if a < limit => a,
        _ => limit,
    };
    let connect_timeout = lower(CONNECT_TIMEOUT, options.and_then(|o| o.connect_timeout));
    let request_timeout = lower(
        REQUEST_TIMEOUT,
        options.and_then(|o| o.first_byte_timeout.max(o.between_bytes_timeout)),
    );
    if sender.settings.insecure
        && !sender
            .warned
            .swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        report.warn(&format!(
            "plugin {plugin}: TLS certificates are not verified (its insecure flag is set)"
        ));
    }
    let mut method = parts.method.clone();
    let mut uri = parts.uri.clone();
    let mut headers = parts.headers.clone();
    let mut body = body;
    let mut redirects = 0;
    let mut retries = 0;
    loop {
        let shown = loggable_url(&uri);
        let attempt = tokio::time::timeout(
            request_timeout,
            once(
                sender,
                &method,
                &uri,
                &headers,
                body.clone(),
                connect_timeout,
            ),
        )
        .await
        .unwrap_or(Err(wasmtime_wasi_http::Error::HttpResponseTimeout));
        let resp = match attempt {
            Ok(r) => r,
            Err(e) => {
                report.debug(&format!("plugin {plugin}: {method} {shown} failed: {e}"));
                return Err(e);
            }
        };
        let status = resp.status();
        report.debug(&format!(
            "plugin {plugin}: {method} {shown} → {}",
            status.as_u16()
        ));
        report.debug(&format!(
            "plugin {plugin}: request headers: {}; answer headers: {}",
            loggable_headers(&headers),
            loggable_headers(resp.headers())
        ));
        let retryable = matches!(status.as_u16(), 429 | 502 | 503 | 504);
        if retryable && retries < MAX_RETRIES {
            let wait = retry_after(
                resp.headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
                std::time::SystemTime::now(),
            );
            let idempotent = matches!(
                method,
                Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
            );
            if idempotent || wait.is_some() {
                let wait = wait.unwrap_or(Duration::from_secs(1 << retries));
                retries += 1;
                report.info(&format!(
                    "{shown} answered {}; retrying in {} s ({retries}/{MAX_RETRIES})",
                    status.as_u16(),
                    wait.as_secs()
                ));
                tokio::time::sleep(wait).await;
                continue;
            }
        }
        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            let Some(location) = resp
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Ok(resp);
            };
            if redirects >= MAX_REDIRECTS {
                return Err(wasmtime_wasi_http::Error::InternalError(Some(format!(
                    "more than {MAX_REDIRECTS} redirects from {shown}"
                ))));
            }
            redirects += 1;
            let next = resolve_location(&uri, location).ok_or_else(|| {
                wasmtime_wasi_http::Error::InternalError(Some(format!(
                    "{shown} redirected to an invalid location"
                )))
            })?;
            let scheme = next.scheme_str().unwrap_or("");
            let host = next
                .host()
                .unwrap_or("")
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase();
            let port = next
                .port_u16()
                .unwrap_or(if scheme == "https" { 443 } else { 80 });
            if !(scheme == "http" || scheme == "https")
                || !allowed(&sender.settings.hosts, scheme, &host, port)
            {
                report.warn(&format!(
                    "plugin {plugin}: dmw denied the redirect from {shown} to {} (host {host} is not in the plugin's http-host list; no connection was opened)",
                    loggable_url(&next)
                ));
                return Err(wasmtime_wasi_http::Error::InternalError(Some(format!(
                    "{DENIED_REDIRECT_PREFIX}{host} (redirect from {shown})"
                ))));
            }
            if next.host() != uri.host() {
                for h in SECRET_HEADERS {
                    headers.remove(*h);
                }
            }
            let code = status.as_u16();
            if code == 303 || ((code == 301 || code == 302) && method == Method::POST) {
                method = Method::GET;
                body = Bytes::new();
                headers.remove(http::header::CONTENT_TYPE);
                headers.remove(http::header::CONTENT_LENGTH);
            }
            uri = next;
            continue;
        }
        return Ok(resp);
    }
}

/// The absolute URI of a `Location` relative to `base`.
fn resolve_location(base: &Uri, location: &str) -> Option<Uri> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.parse().ok();
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    if location.starts_with("//") {
        return format!("{scheme}:{location}").parse().ok();
    }
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let dir = base.path().rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        format!("{dir}/{location}")
    };
    format!("{scheme}://{authority}{path}").parse().ok()
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// One request on a fresh connection; the whole answer read (capped).
async fn once(
    sender: &Sender,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    connect_timeout: Duration,
) -> Result<Response<Bytes>, wasmtime_wasi_http::Error> {
    use wasmtime_wasi_http::Error as E;
    let tls = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or(E::HttpRequestUriInvalid)?;
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let authority = format!("{host}:{port}");
    let proxy = sender
        .proxy
        .for_host(if tls { "https" } else { "http" }, bare_host);
    let connect = async {
        let target = proxy
            .map(|p| p.authority.clone())
            .unwrap_or(authority.clone());
        let mut tcp = TcpStream::connect(&target)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::ConnectionRefused => E::ConnectionRefused,
                _ => E::Connect(e),
            })?;
        if let (Some(p), true) = (proxy, tls) {
            tunnel(&mut tcp, &authority, p).await?;
        }
        let stream: Box<dyn Stream> = if tls {
            let name = rustls_pki_types::ServerName::try_from(bare_host.to_string())
                .map_err(|_| E::HttpRequestUriInvalid)?;
            let connector = tokio_rustls::TlsConnector::from(sender.tls.clone());
            let s = connector.connect(name, tcp).await.map_err(|e| {
                let text = e.to_string();
                if text.contains("certificate") || text.contains("UnknownIssuer") {
                    E::TlsCertificateError
                } else {
                    E::Tls(e)
                }
            })?;
            Box::new(s)
        } else {
            Box::new(tcp)
        };
        let (send, conn) = hyper::client::conn::http1::Builder::new()
            .handshake::<_, Full<Bytes>>(wasmtime_wasi_http::io::TokioIo::new(stream))
            .await?;
        Ok::<_, E>((send, conn))
    };
    let (mut send, conn) = tokio::time::timeout(connect_timeout, connect)
        .await
        .map_err(|_| E::ConnectionTimeout)??;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    // Origin-form to a server, absolute-form to an http proxy.
    let target: Uri = if proxy.is_some() && !tls {
        uri.clone()
    } else {
        uri.path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()
            .map_err(|_| E::HttpRequestUriInvalid)?
    };
    let mut req = Request::builder()
        .method(method.clone())
        .uri(target)
        .body(Full::new(body))
        .map_err(|_| E::HttpRequestUriInvalid)?;
    *req.headers_mut() = headers.clone();
    let host_header = match (tls, port) {
        (true, 443) | (false, 80) => host.to_string(),
        _ => authority.clone(),
    };
    req.headers_mut().insert(
        http::header::HOST,
        HeaderValue::from_str(&host_header).map_err(|_| E::HttpRequestUriInvalid)?,
    );
    if let (Some(p), false) = (proxy, tls)
        && let Some(auth) = &p.authorization
        && let Ok(v) = HeaderValue::from_str(auth)
    {
        req.headers_mut()
            .insert(http::header::PROXY_AUTHORIZATION, v);
    }
    let resp = send.send_request(req).await?;
    let (parts, incoming) = resp.into_parts();
    let body = Limited::new(incoming, MAX_RESPONSE_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                E::InternalError(Some(format!(
                    "the answer's body is larger than {} MiB",
                    MAX_RESPONSE_BODY >> 20
                )))
            } else {
                E::HttpResponseIncomplete
            }
        })?
        .to_bytes();
    driver.abort();
    Ok(Response::from_parts(parts, body))
}

/// Open a CONNECT tunnel to `authority` through proxy `p` on `tcp`.
async fn tunnel(
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
            crate::sanitize::plugin_text(status_line.lines().next().unwrap_or(""), 200)
        ))));
    }
    Ok(())
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

    #[test]
    fn retry_after_is_read_and_bounded() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after(Some("2"), now), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(Some("86400"), now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(None, now), None);
        assert_eq!(retry_after(Some("soon"), now), None);
        // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT.
        assert_eq!(
            retry_after(Some("Tue, 14 Nov 2023 22:13:25 GMT"), now),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn logs_never_show_credentials() {
        let uri: Uri = "https://u:p@api.test/v2/x?name=a&api_key=SECRET&X-Amz-Signature=S"
            .parse()
            .expect("uri");
        let shown = loggable_url(&uri);
        assert_eq!(
            shown,
            "https://api.test/v2/x?name=a&api_key=<redacted>&X-Amz-Signature=<redacted>"
        );
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer SECRET"));
        h.insert("x-auth-token", HeaderValue::from_static("SECRET"));
        h.insert("accept", HeaderValue::from_static("application/json"));
        let text = loggable_headers(&h);
        assert!(
            !text.contains("SECRET") && text.contains("accept: application/json"),
            "{text}"
        );
        assert_eq!(
            resolve_location(&"http://a.test:8/x/y".parse().expect("u"), "z?q=1")
                .map(|u| u.to_string()),
            Some("http://a.test:8/x/z?q=1".into())
        );
    }
}
