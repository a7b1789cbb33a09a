//! A minimal mutual-TLS Docker Engine API client: `GET /version`, a handshake-only check and
//! the Swarm-mode calls (`swarm.rs`), over rustls (ring provider) with the CA, client certificate and key of a
//! `DOCKER_CERT_PATH`-style directory.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub mod swarm;

/// Docker's default TLS port, used when a URL has none.
pub const DEFAULT_PORT: u16 = dmw_text::DEFAULT_ENGINE_PORT;
/// Largest response this client accepts, in bytes.
const MAX_RESPONSE: usize = 1 << 20;

/// Errors from talking to a Docker Engine; messages name the address and never contain keys.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The URL is not `tcp://host[:port]`.
    #[error("invalid Docker URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA, client certificate or key could not be loaded or used.
    #[error("cannot use TLS client certificates from {source_desc}: {reason}")]
    Credentials {
        /// Where the material came from (a directory or file).
        source_desc: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TCP connection failed (refused, unreachable, name resolution).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The OS error.
        source: io::Error,
    },
    /// The whole exchange did not finish in time.
    #[error("timed out after {after:?} talking to {addr}")]
    Timeout {
        /// `host:port`.
        addr: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The TLS handshake or session failed (rustls' message is kept).
    #[error("TLS error with {addr}: {message}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// rustls' description, e.g. "certificate not valid for name ...".
        message: String,
    },
    /// The connection broke after it was established.
    #[error("connection to {addr} failed: {source}")]
    Io {
        /// `host:port`.
        addr: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The response was not valid HTTP.
    #[error("invalid HTTP response from {addr}: {reason}")]
    Protocol {
        /// `host:port`.
        addr: String,
        /// What was wrong.
        reason: String,
    },
    /// The daemon answered with a non-2xx status.
    #[error("{addr} answered HTTP {status}: {message}")]
    Status {
        /// `host:port`.
        addr: String,
        /// The HTTP status code.
        status: u16,
        /// The daemon's `message` field, or the start of the body.
        message: String,
    },
    /// The body was not the expected JSON.
    #[error("invalid JSON from {addr}: {reason}")]
    BadJson {
        /// `host:port`.
        addr: String,
        /// serde_json's description.
        reason: String,
    },
}

/// The fields of `GET /version` that dmw uses.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct EngineVersion {
    /// Engine version, e.g. `20.10.24+dfsg1`.
    #[serde(rename = "Version")]
    pub version: String,
    /// API version, e.g. `1.41`.
    #[serde(rename = "ApiVersion")]
    pub api_version: String,
    /// Operating system, e.g. `linux`.
    #[serde(rename = "Os", default)]
    pub os: String,
    /// Architecture, e.g. `amd64`.
    #[serde(rename = "Arch", default)]
    pub arch: String,
    /// Kernel version of the host.
    #[serde(rename = "KernelVersion", default)]
    pub kernel_version: String,
}

/// Mutual-TLS client material: trusts only the given CA and presents the client certificate.
#[derive(Clone)]
pub struct ClientTls {
    ca_pem: String,
    cert_pem: String,
    config: Arc<ClientConfig>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca_pem", &self.ca_pem)
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

impl ClientTls {
    /// Loads `ca.pem`, `cert.pem` and `key.pem` from `dir` (the `DOCKER_CERT_PATH` layout).
    pub fn load(dir: &Path) -> Result<Self, EngineError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| EngineError::Credentials {
                source_desc: dir.display().to_string(),
                reason: format!("reading {}: {e}", path.display()),
            })
        };
        use crate::state::store::layout::{CA_CERT, CLIENT_CERT, CLIENT_KEY};
        let (ca, cert, key) = (read(CA_CERT)?, read(CLIENT_CERT)?, read(CLIENT_KEY)?);
        Self::build(ca, cert, &key, &dir.display().to_string())
    }

    /// Builds the client from PEM strings (CA, client certificate chain, private key).
    pub fn from_pem(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Self, EngineError> {
        Self::build(ca_pem.to_owned(), cert_pem.to_owned(), key_pem, "PEM input")
    }

    /// The CA certificate (PEM) this client trusts.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The client certificate (PEM) this client presents.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Shared constructor; `source_desc` names the material in errors.
    fn build(
        ca_pem: String,
        cert_pem: String,
        key_pem: &str,
        source_desc: &str,
    ) -> Result<Self, EngineError> {
        let err = |reason: String| EngineError::Credentials {
            source_desc: source_desc.to_owned(),
            reason,
        };
        let roots = crate::net::tls::root_store(&ca_pem).map_err(|e| err(format!("CA: {e:#}")))?;
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(format!("client certificate: {e}")))?;
        if certs.is_empty() {
            return Err(err("client certificate: no PEM certificate found".into()));
        }
        // The PEM parser's error is not included: it could quote key material.
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|_| err("client key: not a valid PEM private key".into()))?;
        let config = ClientConfig::builder_with_provider(crate::net::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| err(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| err(format!("client certificate/key: {e}")))?;
        Ok(ClientTls {
            ca_pem,
            cert_pem,
            config: Arc::new(config),
        })
    }
}

/// A parsed `tcp://host:port` endpoint.
#[derive(Debug, PartialEq, Eq)]
struct Endpoint {
    /// Host name or IP (IPv6 without brackets).
    host: String,
    /// TCP port.
    port: u16,
    /// `host:port` (IPv6 bracketed), for messages and the Host header.
    authority: String,
}

/// Parses `tcp://host[:port]` (also `https://`, and one trailing `/`; the structure is
/// `dmw_text::parse_engine_url`, shared with the none driver); the host must be an IP
/// address or DNS name, and nothing may follow.
fn parse_url(url: &str) -> Result<Endpoint, EngineError> {
    let bad = |reason: &str| EngineError::BadUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    // Nothing may follow host:port but one '/': the URL is printed for shells (`dmw env`),
    // so what is checked here must be all of it.
    let parsed =
        dmw_text::parse_engine_url(url, &["tcp", "https"]).map_err(|e| bad(&e.to_string()))?;
    if let Err(why) = crate::text::validate::address(&parsed.host) {
        return Err(bad(&format!(
            "the host is not an IP address or DNS name ({why})"
        )));
    }
    Ok(Endpoint {
        authority: parsed.authority(),
        host: parsed.host,
        port: parsed.port,
    })
}

/// Maps an I/O error on the TLS stream to [`EngineError::Tls`] when rustls caused it.
fn stream_error(addr: &str, e: io::Error) -> EngineError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => EngineError::Tls {
            addr: addr.to_owned(),
            message: tls_message(tls),
        },
        None => EngineError::Io {
            addr: addr.to_owned(),
            source: e,
        },
    }
}

/// rustls' message, plus a hint for the common "wrong CA" cases.
fn tls_message(e: &rustls::Error) -> String {
    use rustls::CertificateError::{BadSignature, UnknownIssuer};
    let hint = match e {
        rustls::Error::InvalidCertificate(BadSignature | UnknownIssuer) => {
            " (the daemon's certificate was not issued by the trusted CA)"
        }
        rustls::Error::AlertReceived(_) => {
            " (the daemon refused the connection; was the client certificate issued by its CA?)"
        }
        _ => "",
    };
    format!("{e}{hint}")
}

/// Connects and completes the TLS handshake (no timeout of its own).
async fn connect(ep: &Endpoint, tls: &ClientTls) -> Result<TlsStream<TcpStream>, EngineError> {
    let server_name = ServerName::try_from(ep.host.clone()).map_err(|_| EngineError::BadUrl {
        url: ep.authority.clone(),
        reason: "host is neither an IP address nor a valid DNS name".into(),
    })?;
    let tcp = TcpStream::connect((ep.host.as_str(), ep.port))
        .await
        .map_err(|source| EngineError::Connect {
            addr: ep.authority.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    TlsConnector::from(Arc::clone(&tls.config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| stream_error(&ep.authority, e))
}

/// Runs `fut` under `timeout`, mapping expiry to [`EngineError::Timeout`].
async fn with_timeout<T>(
    ep: &Endpoint,
    timeout: Duration,
    fut: impl Future<Output = Result<T, EngineError>>,
) -> Result<T, EngineError> {
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| {
            Err(EngineError::Timeout {
                addr: ep.authority.clone(),
                after: timeout,
            })
        })
}

/// Verifies the daemon's certificate (chain to the CA and the URL's IP/name) by completing a
/// TLS handshake, like Docker Machine's `ValidateCertificate`. With TLS 1.3 the server's
/// verdict on the client certificate only arrives with the first response, so use
/// [`version`] to test that too.
pub async fn check(url: &str, tls: &ClientTls, timeout: Duration) -> Result<(), EngineError> {
    let ep = parse_url(url)?;
    with_timeout(&ep, timeout, async {
        let mut stream = connect(&ep, tls).await?;
        let _ = stream.shutdown().await;
        Ok(())
    })
    .await
}

/// One HTTP response from the engine.
#[derive(Debug, PartialEq, Eq)]
struct Response {
    status: u16,
    /// The `Server` header, e.g. `Docker/20.10.24+dfsg1 (linux)`.
    server: Option<String>,
    body: Vec<u8>,
}

/// `GET path` over mutual TLS; connecting, the handshake and the exchange all happen
/// within `timeout`. A non-2xx status is an error carrying the daemon's message.
async fn get(
    url: &str,
    path: &str,
    tls: &ClientTls,
    timeout: Duration,
) -> Result<(Endpoint, Response), EngineError> {
    request(url, "GET", path, None, tls, timeout).await
}

/// `METHOD path` with an optional JSON body over mutual TLS, like [`get`].
async fn request(
    url: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    tls: &ClientTls,
    timeout: Duration,
) -> Result<(Endpoint, Response), EngineError> {
    let ep = parse_url(url)?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let resp = with_timeout(&ep, timeout, async {
        let mut stream = connect(&ep, tls).await?;
        let content = if body.is_empty() && method == "GET" {
            String::new()
        } else {
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            )
        };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: dmw\r\nAccept: application/json\r\n{content}Connection: close\r\n\r\n{body}",
            ep.authority
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| stream_error(&ep.authority, e))?;
        stream
            .flush()
            .await
            .map_err(|e| stream_error(&ep.authority, e))?;
        read_response(&mut stream, &ep.authority).await
    })
    .await?;
    if !(200..300).contains(&resp.status) {
        return Err(EngineError::Status {
            addr: ep.authority,
            status: resp.status,
            message: error_message(&resp.body),
        });
    }
    Ok((ep, resp))
}

/// `GET /version` over mutual TLS; connecting, the handshake and the exchange all happen
/// within `timeout`.
pub async fn version(
    url: &str,
    tls: &ClientTls,
    timeout: Duration,
) -> Result<EngineVersion, EngineError> {
    let (ep, resp) = get(url, "/version", tls, timeout).await?;
    serde_json::from_slice(&resp.body).map_err(|e| EngineError::BadJson {
        addr: ep.authority,
        reason: e.to_string(),
    })
}

/// The engine's version, as cheaply as the engine allows: from the `Server` header of
/// `GET /_ping` (dockerd answers it without work, while `/version` runs `runc --version`
/// and friends on every call), else from `GET /version`.
pub async fn server_version(
    url: &str,
    tls: &ClientTls,
    timeout: Duration,
) -> Result<String, EngineError> {
    let (_, resp) = get(url, "/_ping", tls, timeout).await?;
    let from_header = resp
        .server
        .as_deref()
        .and_then(|s| s.strip_prefix("Docker/"))
        .and_then(|s| s.split_whitespace().next())
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let v = match from_header {
        Some(v) => v,
        None => version(url, tls, timeout).await?.version,
    };
    // The engine is the target host, which may be hostile: its version is shown by `ls`.
    Ok(crate::text::sanitize::plugin_text(
        &v,
        crate::text::sanitize::NAME_LIMIT,
    ))
}

/// The daemon's `{"message": ...}` or the start of the body as text.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct DaemonError {
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<DaemonError>(body) {
        return e.message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None if text.is_empty() => "(empty body)".to_owned(),
        None => text.to_owned(),
    }
}

/// Reads one HTTP response (status, de-framed body), stopping as soon as it is complete.
async fn read_response<S: AsyncRead + Unpin>(
    stream: &mut S,
    addr: &str,
) -> Result<Response, EngineError> {
    let protocol = |reason: String| EngineError::Protocol {
        addr: addr.to_owned(),
        reason,
    };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(done) = parse_response(&buf, false).map_err(protocol)? {
            return Ok(done);
        }
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // A peer closing without close_notify: judge by what we already have.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(stream_error(addr, e)),
        };
        if n == 0 {
            return parse_response(&buf, true)
                .map_err(protocol)?
                .ok_or_else(|| protocol("connection closed early".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err(protocol(format!(
                "response larger than {MAX_RESPONSE} bytes"
            )));
        }
    }
}

/// Parses a buffered response; `Ok(None)` means more bytes are needed (`eof` false).
fn parse_response(mut buf: &[u8], eof: bool) -> Result<Option<Response>, String> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let header_len = match resp.parse(buf).map_err(|e| e.to_string())? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial if eof => {
                return Err("connection closed before the response headers ended".into());
            }
            httparse::Status::Partial => return Ok(None),
        };
        let status = resp.code.unwrap_or_default();
        if (100..200).contains(&status) && status != 101 {
            buf = &buf[header_len..];
            continue;
        }
        let header = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
        };
        let body = &buf[header_len..];
        let chunked = header("transfer-encoding").is_some_and(|te| te.ends_with("chunked"));
        let decoded = if chunked {
            dechunk(body)?
        } else if let Some(len) = header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| "invalid Content-Length".to_owned())?;
            (body.len() >= len).then(|| body[..len].to_vec())
        } else {
            eof.then(|| body.to_vec())
        };
        let server = resp
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("server"))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned());
        return match decoded {
            Some(body) => Ok(Some(Response {
                status,
                server,
                body,
            })),
            None if eof => Err("connection closed before the body ended".into()),
            None => Ok(None),
        };
    }
}

/// Decodes a chunked body; `Ok(None)` if it is not complete yet.
fn dechunk(mut buf: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let (start, size) = match httparse::parse_chunk_size(buf) {
            Ok(httparse::Status::Complete(v)) => v,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err("invalid chunk size".into()),
        };
        buf = &buf[start..];
        if size == 0 {
            // Trailers (if any) end with an empty line.
            let done = buf.starts_with(b"\r\n") || buf.windows(4).any(|w| w == b"\r\n\r\n");
            return Ok(done.then_some(out));
        }
        let size = usize::try_from(size).map_err(|_| "chunk too large".to_owned())?;
        if size > MAX_RESPONSE {
            return Err("chunk too large".into());
        }
        if buf.len() < size + 2 {
            return Ok(None);
        }
        if &buf[size..size + 2] != b"\r\n" {
            return Err("chunk not terminated by CRLF".into());
        }
        out.extend_from_slice(&buf[..size]);
        buf = &buf[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Instant;

    use rustls::ServerConfig;
    use rustls::server::WebPkiClientVerifier;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;
    use tokio_rustls::TlsAcceptor;

    use super::*;
    use crate::net::tls;

    const VERSION_JSON: &str = r#"{"Platform":{"Name":""},"Version":"20.10.24+dfsg1","ApiVersion":"1.41","MinAPIVersion":"1.12","GitCommit":"5d6db84","GoVersion":"go1.19.8","Os":"linux","Arch":"amd64","KernelVersion":"6.1.0-18-amd64","BuildTime":"2023-05-18T08:38:34.000000000+00:00"}"#;

    fn expected() -> EngineVersion {
        EngineVersion {
            version: "20.10.24+dfsg1".into(),
            api_version: "1.41".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            kernel_version: "6.1.0-18-amd64".into(),
        }
    }

    fn content_length(status: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn chunked(body: &str) -> Vec<u8> {
        let (a, b) = body.split_at(body.len() / 3);
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:X};ext=1\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        )
        .into_bytes()
    }

    /// A CA + client cert dir, and a server cert for `sans` signed by that CA.
    struct Pki {
        _tmp: tempfile::TempDir,
        dir: std::path::PathBuf,
    }

    impl Pki {
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("certs");
            tls::bootstrap(&dir, "alice").unwrap();
            Pki { _tmp: tmp, dir }
        }

        fn ca_pem(&self) -> String {
            std::fs::read_to_string(self.dir.join(tls::CA_CERT)).unwrap()
        }

        fn client(&self) -> ClientTls {
            ClientTls::load(&self.dir).unwrap()
        }
    }

    /// A TLS server requiring client certs from `pki`'s CA, answering every request with
    /// `response`; requests are sent to the returned channel.
    async fn serve(
        pki: &Pki,
        sans: &[&str],
        response: Vec<u8>,
    ) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let server = tls::issue_server_cert(&pki.dir, "alice.m1", &sans).unwrap();
        let provider = tls::crypto_provider();
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(tls::root_store(&pki.ca_pem()).unwrap()),
            provider.clone(),
        )
        .build()
        .unwrap();
        let certs = CertificateDer::pem_slice_iter(server.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).unwrap();
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, tx, response) = (acceptor.clone(), tx.clone(), response.clone());
                tokio::spawn(async move {
                    let Ok(mut stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tx.send(String::from_utf8_lossy(&req).into_owned());
                    let _ = stream.write_all(&response).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        (addr, rx)
    }

    const T: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn version_with_content_length() {
        let pki = Pki::new();
        let (addr, mut rx) =
            serve(&pki, &["127.0.0.1"], content_length("200 OK", VERSION_JSON)).await;
        let v = version(&format!("tcp://{addr}"), &pki.client(), T)
            .await
            .unwrap();
        assert_eq!(v, expected());
        let req = rx.recv().await.unwrap();
        assert!(req.starts_with("GET /version HTTP/1.1\r\n"), "{req}");
        assert!(req.contains(&format!("\r\nHost: {addr}\r\n")), "{req}");
        assert!(req.contains("\r\nConnection: close\r\n"), "{req}");
        check(&format!("tcp://{addr}"), &pki.client(), T)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn version_with_chunked_body() {
        let pki = Pki::new();
        let (addr, _rx) = serve(&pki, &["127.0.0.1"], chunked(VERSION_JSON)).await;
        let v = version(&format!("tcp://{addr}/"), &pki.client(), T)
            .await
            .unwrap();
        assert_eq!(v, expected());
    }

    #[tokio::test]
    async fn client_cert_from_other_ca_is_rejected() {
        let pki = Pki::new();
        let other = Pki::new();
        let (addr, _rx) = serve(&pki, &["127.0.0.1"], content_length("200 OK", VERSION_JSON)).await;
        let read = |p: &Pki, f: &str| std::fs::read_to_string(p.dir.join(f)).unwrap();
        // Trusts the right CA but presents a certificate from another one.
        let client = ClientTls::from_pem(
            &pki.ca_pem(),
            &read(&other, tls::CLIENT_CERT),
            &read(&other, tls::CLIENT_KEY),
        )
        .unwrap();
        let err = version(&format!("tcp://{addr}"), &client, T)
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::Tls { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&addr.to_string()), "{msg}");
        assert!(!msg.contains("PRIVATE KEY"), "{msg}");
    }

    #[tokio::test]
    async fn server_cert_without_ip_san_is_a_tls_error() {
        let pki = Pki::new();
        let (addr, _rx) = serve(
            &pki,
            &["m1.example.com"],
            content_length("200 OK", VERSION_JSON),
        )
        .await;
        let url = format!("tcp://{addr}");
        let err = version(&url, &pki.client(), T).await.unwrap_err();
        assert!(matches!(err, EngineError::Tls { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("127.0.0.1"), "{msg}");
        assert!(msg.contains("not valid for name"), "{msg}");
        let err = check(&url, &pki.client(), T).await.unwrap_err();
        assert!(matches!(err, EngineError::Tls { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn untrusted_server_ca_is_a_tls_error() {
        let pki = Pki::new();
        let other = Pki::new();
        let (addr, _rx) = serve(&pki, &["127.0.0.1"], content_length("200 OK", VERSION_JSON)).await;
        let err = check(&format!("tcp://{addr}"), &other.client(), T)
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::Tls { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn closed_port_is_a_quick_connect_error() {
        let pki = Pki::new();
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let start = Instant::now();
        let err = version(&format!("tcp://{addr}"), &pki.client(), T)
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::Connect { .. }), "{err:?}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let pki = Pki::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let start = Instant::now();
        let err = version(
            &format!("tcp://{addr}"),
            &pki.client(),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, EngineError::Timeout { .. }), "{err:?}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        assert!(start.elapsed() < Duration::from_secs(3));
        let err = check(
            &format!("tcp://{addr}"),
            &pki.client(),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, EngineError::Timeout { .. }), "{err:?}");
        hold.abort();
    }

    #[tokio::test]
    async fn http_error_status_and_bad_json() {
        let pki = Pki::new();
        let (addr, _rx) = serve(
            &pki,
            &["127.0.0.1"],
            content_length(
                "500 Internal Server Error",
                r#"{"message":"daemon is sad"}"#,
            ),
        )
        .await;
        let err = version(&format!("tcp://{addr}"), &pki.client(), T)
            .await
            .unwrap_err();
        assert!(
            matches!(err, EngineError::Status { status: 500, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("daemon is sad"), "{err}");

        let (addr, _rx) = serve(&pki, &["127.0.0.1"], content_length("200 OK", "<html>")).await;
        let err = version(&format!("tcp://{addr}"), &pki.client(), T)
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::BadJson { .. }), "{err:?}");
    }

    #[test]
    fn url_parsing() {
        let ep = parse_url("tcp://192.168.99.100:2376").unwrap();
        assert_eq!((ep.host.as_str(), ep.port), ("192.168.99.100", 2376));
        assert_eq!(ep.authority, "192.168.99.100:2376");
        let ep = parse_url("tcp://[::1]:2377/").unwrap();
        assert_eq!(
            (ep.host.as_str(), ep.port, ep.authority.as_str()),
            ("::1", 2377, "[::1]:2377")
        );
        let ep = parse_url("tcp://docker.local").unwrap();
        assert_eq!((ep.host.as_str(), ep.port), ("docker.local", DEFAULT_PORT));
        assert_eq!(parse_url("https://h:1").unwrap().port, 1);
        for bad in [
            "",
            "http://h:1",
            "tcp://",
            "tcp://:2376",
            "tcp://h:0",
            "tcp://h:x",
            "tcp://::1:2",
            "tcp://[::1",
            "tcp://[::1]:2377/x",
            "tcp://127.0.0.1/$(id>F)",
            "tcp://127.0.0.1:2376/$(id)",
            "tcp://h$(id):1",
            "tcp://*.x:1",
        ] {
            let err = parse_url(bad).unwrap_err();
            assert!(matches!(err, EngineError::BadUrl { .. }), "{bad}: {err:?}");
        }
    }

    #[tokio::test]
    async fn server_version_from_ping_header_or_version() {
        let pki = Pki::new();
        let ping = b"HTTP/1.1 200 OK\r\nServer: Docker/20.10.24+dfsg1 (linux)\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK".to_vec();
        let (addr, mut rx) = serve(&pki, &["127.0.0.1"], ping).await;
        let url = format!("tcp://{addr}");
        let v = server_version(&url, &pki.client(), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(v, "20.10.24+dfsg1");
        assert!(
            rx.recv()
                .await
                .unwrap()
                .starts_with("GET /_ping HTTP/1.1\r\n")
        );
        // An engine without the header: the version comes from /version instead.
        let (addr, mut rx) =
            serve(&pki, &["127.0.0.1"], content_length("200 OK", VERSION_JSON)).await;
        let url = format!("tcp://{addr}");
        let v = server_version(&url, &pki.client(), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(v, expected().version);
        assert!(rx.recv().await.unwrap().starts_with("GET /_ping "));
        assert!(rx.recv().await.unwrap().starts_with("GET /version "));
    }

    fn resp(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            server: None,
            body,
        }
    }

    #[test]
    fn response_parsing() {
        let full = content_length("200 OK", "{}");
        for cut in 0..full.len() {
            assert_eq!(parse_response(&full[..cut], false), Ok(None), "cut {cut}");
            assert!(parse_response(&full[..cut], true).is_err(), "cut {cut}");
        }
        assert_eq!(
            parse_response(&full, false),
            Ok(Some(resp(200, b"{}".to_vec())))
        );
        let ch = chunked(VERSION_JSON);
        for cut in 0..ch.len() {
            assert_eq!(parse_response(&ch[..cut], false), Ok(None), "cut {cut}");
        }
        assert_eq!(
            parse_response(&ch, false),
            Ok(Some(resp(200, VERSION_JSON.as_bytes().to_vec())))
        );
        // No framing: body runs to EOF. 1xx responses are skipped.
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nabc";
        assert_eq!(parse_response(raw, false), Ok(None));
        assert_eq!(
            parse_response(raw, true),
            Ok(Some(resp(200, b"abc".to_vec())))
        );
        assert!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                false
            )
            .is_err()
        );
        assert!(parse_response(b"garbage\r\n\r\n", false).is_err());
    }

    #[test]
    fn client_tls_errors_do_not_leak_keys() {
        let pki = Pki::new();
        let client = pki.client();
        assert!(!format!("{client:?}").contains("PRIVATE KEY"));
        let ca = pki.ca_pem();
        let cert = client.cert_pem().to_owned();
        let err = ClientTls::from_pem(
            &ca,
            &cert,
            "-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(matches!(err, EngineError::Credentials { .. }), "{err:?}");
        assert!(!err.to_string().contains("QUJD"), "{err}");
        // A key that does not match the certificate.
        let other = Pki::new();
        let other_key = std::fs::read_to_string(other.dir.join(tls::CLIENT_KEY)).unwrap();
        let err = ClientTls::from_pem(&ca, &cert, &other_key).unwrap_err();
        assert!(matches!(err, EngineError::Credentials { .. }), "{err:?}");
        let err = ClientTls::load(&pki.dir.join("missing")).unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }
}
