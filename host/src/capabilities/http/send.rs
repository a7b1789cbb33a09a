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
use crate::report::Reporter;

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
}

impl Sender {
    /// A sender for `settings`, with the proxies from the environment; fails on a CA bundle
    /// that cannot be read (it is read by [`crate::user_file::read`]: a regular file of at
    /// most 1 MiB outside the store at `store_root`).
    pub fn new(settings: HttpSettings, store_root: &std::path::Path) -> Result<Sender> {
        let ca_bundle = match &settings.cacert {
            Some(path) => Some(
                crate::user_file::read(path, MAX_CA_BUNDLE, store_root)
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
        })
    }

    /// Whether a request to `host` (lower case, IPv6 without brackets) at `port` over
    /// `scheme` may be sent: one of the declared patterns, or an origin of the Keystone
    /// service catalog learnt in this command.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if !(scheme == "http" || scheme == "https") {
            return false;
        }
        allowed(&self.settings.hosts, scheme, host, port)
            || self
                .catalog
                .lock()
                .map(|c| c.contains(&origin(scheme, host, port)))
                .unwrap_or(false)
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
                    .map(|r| format!(", region {}", crate::sanitize::plugin_text(r, 64)))
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
pub(super) async fn send(
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
        sender.learn_catalog(report, plugin, &method, &uri, &resp);
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
    /// Open a connection to `uri`'s server within `connect_timeout` (proxy, TLS).
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
        let host = uri.host().ok_or(E::HttpRequestUriInvalid)?;
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let authority = format!("{host}:{port}");
        let proxy = self
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

    #[test]
    fn redirect_locations_resolve_against_the_request() {
        assert_eq!(
            resolve_location(&"http://a.test:8/x/y".parse().expect("u"), "z?q=1")
                .map(|u| u.to_string()),
            Some("http://a.test:8/x/z?q=1".into())
        );
    }
}
