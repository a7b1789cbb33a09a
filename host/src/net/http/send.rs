//! dmw's sender for the `http` capability: TLS (system roots, CA bundle, insecure),
//! timeouts, retries and redirects (each target checked against the allow-list).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::allow::{HttpSettings, allowed, origin, target};
use super::log::{SECRET_HEADERS, loggable_headers, loggable_url};
use super::proxy::{ProxyConfig, tunnel};
use super::*;
use crate::text::report::Reporter;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

/// dmw's sender for one plugin and machine: TLS roots, proxies, settings.
pub struct Sender {
    pub(super) settings: HttpSettings,
    tls: Arc<rustls::ClientConfig>,
    proxy: ProxyConfig,
    /// Whether the insecure-mode warning was shown (once per command).
    warned: std::sync::atomic::AtomicBool,
    /// Origins (`scheme://host:port`) learnt from the latest Keystone token answer of this
    /// command (`HttpSettings::keystone`); never persisted: each command authenticates.
    catalog: std::sync::Mutex<Vec<String>>,
    /// Turns host names into addresses (the system's resolver; tests replace it).
    resolver: Arc<dyn Resolve>,
}

/// The addresses of a host name, looked up once per connection: dmw checks them and
/// connects to the checked address itself, so a second lookup (DNS rebinding) never happens.
pub trait Resolve: Send + Sync {
    /// The addresses of `host`.
    fn resolve<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>>;
}

/// The system's resolver (getaddrinfo, through tokio).
struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host, 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

impl Sender {
    /// A sender for `settings`, with the proxies from the environment; fails on a CA bundle
    /// that cannot be read (it is read by [`crate::sandbox::user_file::read`]: a regular file of at
    /// most 1 MiB outside the store at `store_root`).
    pub fn new(settings: HttpSettings, store_root: &std::path::Path) -> Result<Sender> {
        let ca_bundle = match &settings.cacert {
            Some(path) => Some(
                crate::sandbox::user_file::read(path, MAX_CA_BUNDLE, store_root)
                    .with_context(|| format!("cannot use the CA bundle {}", path.display()))?,
            ),
            None => None,
        };
        Sender::with_roots(settings, ca_bundle.as_deref())
    }

    /// dmw's own sender (its image downloads): the system's roots, the proxies from the
    /// environment, no plugin settings.
    pub fn system() -> Result<Sender> {
        Sender::with_roots(HttpSettings::default(), None)
    }

    fn with_roots(settings: HttpSettings, ca_bundle: Option<&[u8]>) -> Result<Sender> {
        let tls = tls_config(&settings, ca_bundle)?;
        Ok(Sender {
            settings,
            tls: Arc::new(tls),
            proxy: ProxyConfig::from_env(|k| std::env::var(k).ok()),
            warned: std::sync::atomic::AtomicBool::new(false),
            catalog: std::sync::Mutex::new(Vec::new()),
            resolver: Arc::new(SystemResolver),
        })
    }

    /// The same sender, looking host names up with `resolver` (tests).
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolve>) -> Sender {
        self.resolver = resolver;
        self
    }

    /// The same sender, with `proxy` instead of the environment's proxies (tests).
    pub fn with_proxy(mut self, proxy: ProxyConfig) -> Sender {
        self.proxy = proxy;
        self
    }

    /// Whether the Keystone catalog learnt in this command lists the origin.
    fn learnt(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.catalog
            .lock()
            .map(|c| c.contains(&origin(scheme, host, port)))
            .unwrap_or(false)
    }

    /// Whether a connection for `scheme://host:port` may go to `ip` (see
    /// [`HttpSettings::address_allowed`]); the error says why not.
    pub fn address_allowed(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
        ip: IpAddr,
    ) -> Result<(), String> {
        self.settings
            .address_allowed(scheme, host, port, ip, self.learnt(scheme, host, port))
    }

    /// Whether a request to `host` (lower case, IPv6 without brackets) at `port` over
    /// `scheme` may be sent: one of the declared patterns, or an origin of the Keystone
    /// service catalog learnt in this command.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if !(scheme == "http" || scheme == "https") {
            return false;
        }
        allowed(&self.settings.hosts, scheme, host, port) || self.learnt(scheme, host, port)
    }

    /// What a denial adds when the plugin declared a Keystone catalog.
    pub fn catalog_note(&self) -> &'static str {
        if self.settings.keystone.is_some() {
            " nor, for this region and interface, in the Keystone service catalog"
        } else {
            ""
        }
    }

    /// For a denied request: the `{flag}` patterns that allow nothing because the user
    /// typed no URL (the plugin's default is never used), and what to do.
    pub fn untyped_note(&self) -> String {
        match self.settings.untyped.as_slice() {
            [] => String::new(),
            flags => format!(
                "; {} only the driver's default, which dmw does not allow: type the URL to allow its host",
                flags
                    .iter()
                    .map(|f| format!("--{f}"))
                    .collect::<Vec<_>>()
                    .join(", ")
                    + if flags.len() == 1 { " has" } else { " have" }
            ),
        }
    }

    /// The origins learnt from the Keystone service catalog so far.
    pub fn catalog_origins(&self) -> Vec<String> {
        self.catalog.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// After an answer: when it is a token issued by the declared Keystone, allow the
    /// origins of its catalog's endpoints that match the region and interface (replacing
    /// those of an earlier token), each logged at debug level.
    fn learn_catalog(
        &self,
        report: &Reporter,
        plugin: &str,
        method: &Method,
        uri: &Uri,
        resp: &Response<Bytes>,
    ) {
        let Some(k) = &self.settings.keystone else {
            return;
        };
        if !k.is_token_answer(method, uri, resp.status().as_u16()) {
            return;
        }
        let found = k.origins(resp.body());
        for (o, kind) in &found {
            report.debug(&format!(
                "plugin {plugin}: the Keystone service catalog allows {o} ({kind}, {} interface{})",
                k.interface,
                k.region
                    .as_deref()
                    .map(|r| format!(", region {}", crate::text::sanitize::plugin_text(r, 64)))
                    .unwrap_or_default()
            ));
        }
        if let Ok(mut c) = self.catalog.lock() {
            *c = found.into_iter().map(|(o, _)| o).collect();
        }
    }

    /// The settings it was made from.
    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }
}

/// The rustls client configuration: the system's roots (or webpki's when it has none) and
/// the CA bundle's bytes (read from `settings.cacert`), or no verification when insecure.
fn tls_config(settings: &HttpSettings, ca_bundle: Option<&[u8]>) -> Result<rustls::ClientConfig> {
    let provider = crate::net::tls::crypto_provider();
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
    if let Some(pem) = ca_bundle {
        use rustls_pki_types::pem::PemObject;
        let shown = settings
            .cacert
            .as_deref()
            .unwrap_or(std::path::Path::new("(none)"))
            .display();
        let mut added = 0;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
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

/// An allowed request, sent with redirects and retries; the whole answer read.
pub async fn send(
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
            Err(wasmtime_wasi_http::Error::InternalError(Some(m)))
                if m.starts_with("dmw refused") =>
            {
                report.warn(&format!("plugin {plugin}: {m}"));
                return Err(wasmtime_wasi_http::Error::InternalError(Some(m)));
            }
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
            let next = match next_hop(&uri, location) {
                Ok(next) => next,
                Err(why) => {
                    report.warn(&format!("plugin {plugin}: dmw {why}"));
                    return Err(wasmtime_wasi_http::Error::InternalError(Some(format!(
                        "dmw {why}"
                    ))));
                }
            };
            let (scheme, host, port) = target(&next);
            if !sender.allows(&scheme, &host, port) {
                report.warn(&format!(
                    "plugin {plugin}: dmw denied the redirect from {shown} to {} (host {host} is not in the plugin's http-host list{}; no connection was opened)",
                    loggable_url(&next),
                    sender.catalog_note()
                ));
                return Err(wasmtime_wasi_http::Error::InternalError(Some(format!(
                    "{DENIED_REDIRECT_PREFIX}{host} (redirect from {shown})"
                ))));
            }
            // Credentials go only to the origin they were sent to.
            if origin_of_uri(&next) != origin_of_uri(&uri) {
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
        sender.learn_catalog(report, plugin, &method, &uri, &resp);
        return Ok(resp);
    }
}

/// `scheme://host:port` of a URI (the scheme's default port written out).
fn origin_of_uri(uri: &Uri) -> String {
    let (scheme, host, port) = target(uri);
    origin(&scheme, &host, port)
}

/// Where a redirect from `from` with `Location: location` goes: refused (the reason, after
/// "dmw ") when the location is no URL or when it would leave https for plain http, which
/// would send the request — and what the plugin put in it — unencrypted.
pub fn next_hop(from: &Uri, location: &str) -> Result<Uri, String> {
    let shown = loggable_url(from);
    let next = resolve_location(from, location)
        .ok_or_else(|| format!("refused the redirect from {shown}: its location is no URL"))?;
    if from.scheme_str() == Some("https") && next.scheme_str() != Some("https") {
        return Err(format!(
            "refused the redirect from {shown} to {}: it leaves https for plain http (no connection was opened)",
            loggable_url(&next)
        ));
    }
    Ok(next)
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

/// A fresh connection to a server, ready for one request: through the proxy the
/// environment names for it, with the sender's TLS settings.
pub(crate) struct Opened<B> {
    /// Sends the request.
    pub send: hyper::client::conn::http1::SendRequest<B>,
    /// Drives the connection; runs until the answer's body is read.
    pub driver: tokio::task::JoinHandle<()>,
    /// The request target: origin-form to a server, absolute-form to an http proxy.
    target: Uri,
    /// The `Host` header's value.
    host: String,
    /// `Proxy-Authorization` for an http proxy that has credentials.
    proxy_authorization: Option<String>,
}

impl<B> Opened<B> {
    /// A request for this connection: its target, `Host` and proxy credentials set.
    pub fn request(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: B,
    ) -> Result<Request<B>, wasmtime_wasi_http::Error> {
        use wasmtime_wasi_http::Error as E;
        let mut req = Request::builder()
            .method(method.clone())
            .uri(self.target.clone())
            .body(body)
            .map_err(|_| E::HttpRequestUriInvalid)?;
        *req.headers_mut() = headers.clone();
        req.headers_mut().insert(
            http::header::HOST,
            HeaderValue::from_str(&self.host).map_err(|_| E::HttpRequestUriInvalid)?,
        );
        if let Some(auth) = &self.proxy_authorization
            && let Ok(v) = HeaderValue::from_str(auth)
        {
            req.headers_mut()
                .insert(http::header::PROXY_AUTHORIZATION, v);
        }
        Ok(req)
    }
}

impl Sender {
    /// Open a connection to `uri`'s server within `connect_timeout` (proxy, TLS): only to
    /// a scheme, host and port the allow-list has ([`Sender::allows`]). Without a proxy the
    /// host name is looked up once and the connection goes to an address that passed
    /// [`Sender::address_allowed`], never to another lookup's answer. Through the user's
    /// proxy, the proxy resolves the name (the proxy is the user's choice); an IP-literal
    /// host is still checked.
    pub(crate) async fn open<B>(
        &self,
        uri: &Uri,
        connect_timeout: Duration,
    ) -> Result<Opened<B>, wasmtime_wasi_http::Error>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        use wasmtime_wasi_http::Error as E;
        let tls = uri.scheme_str() == Some("https");
        let scheme = if tls { "https" } else { "http" };
        let host = uri.host().ok_or(E::HttpRequestUriInvalid)?;
        let (_, bare_host, port) = target(uri);
        let authority = format!("{host}:{port}");
        if !self.allows(uri.scheme_str().unwrap_or(""), &bare_host, port) {
            return Err(E::HttpRequestDenied);
        }
        let refused = |why: String| {
            E::InternalError(Some(format!(
                "dmw refused {scheme}://{authority}: {why}; no connection was opened"
            )))
        };
        let proxy = self.proxy.for_host(scheme, &bare_host);
        let connect = async {
            let mut tcp = match proxy {
                Some(p) => {
                    if let Ok(ip) = bare_host.parse::<IpAddr>() {
                        self.address_allowed(scheme, &bare_host, port, ip)
                            .map_err(refused)?;
                    }
                    TcpStream::connect(&p.authority)
                        .await
                        .map_err(connect_error)?
                }
                None => self
                    .connect_checked(scheme, &bare_host, port)
                    .await
                    .map_err(|e| match e {
                        Checked::Refused(why) => refused(why),
                        Checked::Io(e) => connect_error(e),
                    })?,
            };
            if let (Some(p), true) = (proxy, tls) {
                tunnel(&mut tcp, &authority, p).await?;
            }
            let stream: Box<dyn Stream> = if tls {
                let name = rustls_pki_types::ServerName::try_from(bare_host.clone())
                    .map_err(|_| E::HttpRequestUriInvalid)?;
                let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
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
                .handshake::<_, B>(wasmtime_wasi_http::io::TokioIo::new(stream))
                .await?;
            Ok::<_, E>((send, conn))
        };
        let (send, conn) = tokio::time::timeout(connect_timeout, connect)
            .await
            .map_err(|_| E::ConnectionTimeout)??;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let target: Uri = if proxy.is_some() && !tls {
            uri.clone()
        } else {
            uri.path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .parse()
                .map_err(|_| E::HttpRequestUriInvalid)?
        };
        Ok(Opened {
            send,
            driver,
            target,
            host: match (tls, port) {
                (true, 443) | (false, 80) => host.to_string(),
                _ => authority,
            },
            proxy_authorization: proxy.filter(|_| !tls).and_then(|p| p.authorization.clone()),
        })
    }
}

/// Why [`Sender::connect_checked`] opened no connection.
enum Checked {
    /// Every address of the host was refused: why.
    Refused(String),
    /// The lookup or every allowed address failed.
    Io(std::io::Error),
}

fn connect_error(e: std::io::Error) -> wasmtime_wasi_http::Error {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => wasmtime_wasi_http::Error::ConnectionRefused,
        _ => wasmtime_wasi_http::Error::Connect(e),
    }
}

impl Sender {
    /// A TCP connection to `host` at `port`: an IP literal as it is, a name looked up once;
    /// each address checked with [`Sender::address_allowed`] and tried in turn, and the
    /// connection made to that very address.
    async fn connect_checked(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
    ) -> Result<TcpStream, Checked> {
        let addresses = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self.resolver.resolve(host).await.map_err(Checked::Io)?,
        };
        let mut refusals = Vec::new();
        let mut last = None;
        for ip in addresses {
            if let Err(why) = self.address_allowed(scheme, host, port, ip) {
                refusals.push(why);
                continue;
            }
            match TcpStream::connect(SocketAddr::new(ip, port)).await {
                Ok(tcp) => return Ok(tcp),
                Err(e) => last = Some(e),
            }
        }
        match (last, refusals.first()) {
            (Some(e), _) => Err(Checked::Io(e)),
            (None, Some(why)) => Err(Checked::Refused(why.clone())),
            (None, None) => Err(Checked::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host} has no address"),
            ))),
        }
    }
}

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
    let opened = sender.open::<Full<Bytes>>(uri, connect_timeout).await?;
    let req = opened.request(method, headers, Full::new(body))?;
    let Opened {
        mut send, driver, ..
    } = opened;
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A resolver answering `ip` for every name, counting its lookups.
    struct Fixed(IpAddr, std::sync::atomic::AtomicUsize);

    impl Resolve for Fixed {
        fn resolve<'a>(
            &'a self,
            _host: &'a str,
        ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'a>> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let ip = self.0;
            Box::pin(async move { Ok(vec![ip]) })
        }
    }

    fn fixed(ip: &str) -> Arc<Fixed> {
        Arc::new(Fixed(
            ip.parse().expect("ip"),
            std::sync::atomic::AtomicUsize::new(0),
        ))
    }

    fn sender(hosts: &[&str], named: &[&str]) -> Sender {
        Sender::new(
            HttpSettings {
                hosts: hosts.iter().map(|h| h.to_string()).collect(),
                named: named.iter().map(|h| h.to_string()).collect(),
                ..HttpSettings::default()
            },
            std::path::Path::new("/nonexistent/dmw-store"),
        )
        .expect("sender")
        .with_proxy(ProxyConfig::default())
    }

    /// A listener on 127.0.0.1 counting the connections it accepts.
    async fn listener() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(s);
            }
        });
        (port, count)
    }

    #[tokio::test]
    async fn a_declared_name_that_resolves_to_loopback_gets_no_connection() {
        let (port, accepted) = listener().await;
        let pattern = format!("api.example.test:{port}");
        let uri: Uri = format!("http://api.example.test:{port}/x")
            .parse()
            .expect("uri");
        // Declared by the plugin, resolving to 127.0.0.1: refused, nothing connects.
        let resolver = fixed("127.0.0.1");
        let declared = sender(&[&pattern], &[]).with_resolver(resolver.clone());
        let Err(e) = declared
            .open::<Full<Bytes>>(&uri, Duration::from_secs(5))
            .await
        else {
            panic!("connected to a loopback address for a declared name");
        };
        let text = e.to_string();
        assert!(
            text.contains("api.example.test resolves to 127.0.0.1 (loopback")
                && text.contains("no connection was opened"),
            "{text}"
        );
        // The metadata address and an IPv4-mapped loopback likewise.
        for ip in [
            "169.254.169.254",
            "::ffff:127.0.0.1",
            "10.1.2.3",
            "fd00:ec2::254",
        ] {
            let s = sender(&[&pattern], &[]).with_resolver(fixed(ip));
            assert!(
                s.open::<Full<Bytes>>(&uri, Duration::from_secs(5))
                    .await
                    .is_err(),
                "{ip}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);

        // The same name typed by the user: it connects, to the address looked up once.
        let named = sender(&[&pattern], &[&pattern]).with_resolver(resolver.clone());
        let before = resolver.1.load(std::sync::atomic::Ordering::SeqCst);
        let opened = named
            .open::<Full<Bytes>>(&uri, Duration::from_secs(5))
            .await;
        assert!(opened.is_ok(), "the user's own name connects");
        assert_eq!(
            resolver.1.load(std::sync::atomic::Ordering::SeqCst),
            before + 1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);

        // The address written in the URL, allowed by a pattern naming it: it connects.
        let literal = sender(&[&format!("127.0.0.1:{port}")], &[]);
        let uri: Uri = format!("http://127.0.0.1:{port}/x").parse().expect("uri");
        assert!(
            literal
                .open::<Full<Bytes>>(&uri, Duration::from_secs(5))
                .await
                .is_ok()
        );
        // A host the list does not have is refused before any lookup.
        let other: Uri = "http://elsewhere.test/x".parse().expect("uri");
        let counted = fixed("127.0.0.1");
        let s = sender(&[&pattern], &[]).with_resolver(counted.clone());
        assert!(matches!(
            s.open::<Full<Bytes>>(&other, Duration::from_secs(5)).await,
            Err(wasmtime_wasi_http::Error::HttpRequestDenied)
        ));
        assert_eq!(counted.1.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn through_a_proxy_a_literal_special_address_is_still_checked() {
        let (proxy_port, through) = listener().await;
        let proxied = |hosts: &[&str]| {
            sender(hosts, &[]).with_proxy(ProxyConfig {
                http: Some(super::super::Proxy {
                    authority: format!("127.0.0.1:{proxy_port}"),
                    authorization: None,
                }),
                ..ProxyConfig::default()
            })
        };
        // A declared 0.0.0.0 (your own computer, in disguise) is never connected to, not
        // even through the proxy.
        let uri: Uri = "http://0.0.0.0:80/x".parse().expect("uri");
        let Err(e) = proxied(&["0.0.0.0:80"])
            .open::<Full<Bytes>>(&uri, Duration::from_secs(5))
            .await
        else {
            panic!("0.0.0.0 went to the proxy");
        };
        assert!(e.to_string().contains("unspecified"), "{e}");
        // A name goes to the user's proxy, which resolves it.
        let uri: Uri = "http://api.example.test:80/x".parse().expect("uri");
        assert!(
            proxied(&["api.example.test:80"])
                .open::<Full<Bytes>>(&uri, Duration::from_secs(5))
                .await
                .is_ok()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(through.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn redirects_never_leave_https_for_http() {
        let from: Uri = "https://api.example.test/v1/x".parse().expect("uri");
        for location in [
            "http://api.example.test/v1/y",
            "http://api.example.test:443/v1/y",
            "http://elsewhere.test/",
        ] {
            let e = next_hop(&from, location).expect_err(location);
            assert!(e.contains("leaves https for plain http"), "{e}");
        }
        assert_eq!(
            next_hop(&from, "/v2").map(|u| u.to_string()),
            Ok("https://api.example.test/v2".to_string())
        );
        let plain: Uri = "http://api.example.test/x".parse().expect("uri");
        assert!(next_hop(&plain, "https://api.example.test/x").is_ok());
        assert!(next_hop(&plain, "http://api.example.test/y").is_ok());
    }

    /// A TLS server on 127.0.0.1 (any certificate: the sender is insecure) that answers
    /// every request with `answer`.
    async fn tls_server(answer: String) -> u16 {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let config =
            rustls::ServerConfig::builder_with_provider(crate::net::tls::crypto_provider())
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone()],
                    rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("der"),
                )
                .expect("config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = l.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let (acceptor, answer) = (acceptor.clone(), answer.clone());
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let Ok(mut tls) = acceptor.accept(s).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn an_https_to_http_redirect_is_refused_and_the_token_never_sent() {
        let (plain_port, plain_seen) = listener().await;
        let location = format!("http://127.0.0.1:{plain_port}/stolen");
        let tls_port = tls_server(format!(
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
        ))
        .await;
        let s = Sender::new(
            HttpSettings {
                hosts: vec!["127.0.0.1:*".into()],
                insecure: true,
                ..HttpSettings::default()
            },
            std::path::Path::new("/nonexistent/dmw-store"),
        )
        .expect("sender")
        .with_proxy(ProxyConfig::default());
        let (mut parts, ()) = Request::builder()
            .method(Method::GET)
            .uri(format!("https://127.0.0.1:{tls_port}/start"))
            .header(http::header::AUTHORIZATION, "Bearer t0k3n")
            .body(())
            .expect("request")
            .into_parts();
        parts.headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t0k3n"),
        );
        let report = Reporter::quiet(false);
        let e = send(&s, &report, "probe", parts, Bytes::new(), None)
            .await
            .expect_err("the downgrade is refused");
        assert!(e.to_string().contains("leaves https for plain http"), "{e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(plain_seen.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn redirect_locations_resolve_against_the_request() {
        assert_eq!(
            resolve_location(&"http://a.test:8/x/y".parse().expect("u"), "z?q=1")
                .map(|u| u.to_string()),
            Some("http://a.test:8/x/z?q=1".into())
        );
    }
}
