//! A small blocking HTTP client for drivers granted `http` (`dmw_guest::http`).
//!
//! On wasm32 it sends through the standard `wasi:http` interface (the `wstd` crate's client,
//! run to completion with `wstd::runtime::block_on`); the host checks every request against
//! the plugin's declared `http-host` patterns and sends it itself (TLS, proxies, timeouts,
//! retries on 429/502/503/504, capped bodies). On native builds (unit tests) requests go to
//! the scripted host ([`crate::mock::on_http`]).
//!
//! ```ignore
//! use dmw_guest::http::{self, Request};
//! let resp = http::send(
//!     Request::post("https://api.example.com/v2/things")
//!         .header("Authorization", &format!("Bearer {token}"))
//!         .json(&serde_json::json!({"name": "m1"}))?,
//! )?;
//! if !resp.is_success() {
//!     return Err(http::error_for(&resp, "create the thing"));
//! }
//! let thing: Thing = resp.json()?;
//! ```

use std::fmt;
use std::time::Duration;

use crate::Error;

/// Longest provider message quoted in an error, in characters.
pub const MESSAGE_LIMIT: usize = 400;

/// An HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// A request to send with [`send`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body (empty: none).
    pub body: Vec<u8>,
    /// Time limit for connecting and for each wait on the answer (none: the host's).
    pub timeout: Option<Duration>,
}

impl Request {
    /// A request of `method` to `url`.
    pub fn new(method: Method, url: &str) -> Request {
        Request {
            method,
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
        }
    }

    /// A GET request.
    pub fn get(url: &str) -> Request {
        Request::new(Method::Get, url)
    }

    /// A POST request.
    pub fn post(url: &str) -> Request {
        Request::new(Method::Post, url)
    }

    /// A PUT request.
    pub fn put(url: &str) -> Request {
        Request::new(Method::Put, url)
    }

    /// A PATCH request.
    pub fn patch(url: &str) -> Request {
        Request::new(Method::Patch, url)
    }

    /// A DELETE request.
    pub fn delete(url: &str) -> Request {
        Request::new(Method::Delete, url)
    }

    /// Add a header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Send `value` as JSON (sets `Content-Type: application/json`).
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Result<Request, HttpError> {
        self.body = serde_json::to_vec(value).map_err(|e| HttpError::BadBody {
            url: shown_url(&self.url),
            message: format!("cannot encode the request as JSON: {e}"),
        })?;
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        self.headers
            .push(("Content-Type".into(), "application/json".into()));
        Ok(self)
    }

    /// Send `body` as it is.
    pub fn body(mut self, body: Vec<u8>) -> Request {
        self.body = body;
        self
    }

    /// Limit connecting and each wait on the answer to `timeout` (the host's limits apply
    /// when lower).
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }

    /// The value of header `name` (case-insensitive; the last one given).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy), for tests and messages.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// An answer with `status` and `body` (for scripted tests).
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// An answer with `status` and `value` as a JSON body (for scripted tests).
    pub fn json_of(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status, value.to_string()).with_header("content-type", "application/json")
    }

    /// The same answer with header `name: value` added (for scripted tests).
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// The value of header `name` (case-insensitive; the first one).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::BadBody {
            url: String::new(),
            message: format!(
                "the answer ({}) is not the JSON expected: {e}; it starts {:?}",
                self.status,
                bounded(&self.text(), 120)
            ),
        })
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request got no answer, or an answer that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// dmw refused to send it: the host is not one this plugin declared (`http-host`).
    Denied {
        /// The host that was refused.
        host: String,
    },
    /// The request could not be made, or the connection failed or timed out.
    Transport {
        /// The URL (without its query).
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The request or the answer's body is not what was expected.
    BadBody {
        /// The URL (without its query), when known.
        url: String,
        /// What is wrong with it.
        message: String,
    },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Denied { host } => write!(
                f,
                "dmw denied the request to {host}: the plugin did not declare that host in its http-host list (check the URL flags; `dmw plugin inspect` shows the hosts a plugin may reach)"
            ),
            HttpError::Transport { url, message } => {
                write!(f, "request to {url} failed: {message}")
            }
            HttpError::BadBody { url, message } if url.is_empty() => write!(f, "{message}"),
            HttpError::BadBody { url, message } => write!(f, "{url}: {message}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for Error {
    fn from(e: HttpError) -> Error {
        match &e {
            HttpError::Denied { .. } => Error::Denied(e.to_string()),
            HttpError::Transport { .. } => Error::Unreachable(e.to_string()),
            HttpError::BadBody { .. } => Error::Failed(e.to_string()),
        }
    }
}

/// The prefix of the host's message when it refuses a redirect to a host the plugin did not
/// declare (`internal-error` carries it, since `http-request-denied` names no host).
pub const DENIED_REDIRECT_PREFIX: &str = "dmw-denied-host ";

/// Send `req` and read the whole answer (any status: check [`Response::is_success`]).
pub fn send(req: Request) -> Result<Response, HttpError> {
    let scheme_ok = req.url.starts_with("http://") || req.url.starts_with("https://");
    if !scheme_ok {
        return Err(HttpError::Transport {
            url: shown_url(&req.url),
            message: "only http:// and https:// URLs can be fetched".into(),
        });
    }
    #[cfg(target_arch = "wasm32")]
    return wasm::send(req);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::mock::http_send(req);
}

/// The host part of `url` (`https://user@Api.Example.com:8443/x` → `api.example.com`).
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host.to_ascii_lowercase()
}

/// `url` without its query and fragment (which may carry secrets), for messages.
pub fn shown_url(url: &str) -> String {
    let cut = url.find(['?', '#']).unwrap_or(url.len());
    bounded(&url[..cut], 200)
}

/// `text` on one line, control characters dropped, at most `limit` characters.
fn bounded(text: &str, limit: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if clean.chars().count() > limit {
        let cut: String = clean.chars().take(limit).collect();
        format!("{cut}…")
    } else {
        clean
    }
}

/// The provider's own words in an error answer: the `message` of common JSON error shapes
/// (`{"message"}`, `{"error":{"message"}}`, `{"itemNotFound":{"message"}}`,
/// `{"NeutronError":{"message"}}`), an XML `<Message>`, or the start of the body.
pub fn provider_message(resp: &Response) -> String {
    let text = resp.text();
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
        let direct = |v: &serde_json::Value| {
            ["message", "error_description", "detail", "title"]
                .iter()
                .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_string))
        };
        let found = direct(&value).or_else(|| match &value {
            serde_json::Value::Object(map) => map.values().find_map(|v| match v {
                serde_json::Value::String(s) if map.len() == 1 => Some(s.clone()),
                other => direct(other),
            }),
            _ => None,
        });
        if let Some(m) = found {
            return bounded(&m, MESSAGE_LIMIT);
        }
    }
    if let Some(start) = text.find("<Message>") {
        let rest = &text[start + "<Message>".len()..];
        if let Some(end) = rest.find("</Message>") {
            return bounded(&rest[..end], MESSAGE_LIMIT);
        }
    }
    bounded(&text, MESSAGE_LIMIT)
}

/// The driver error for an answer that is not a success: `what` (the step, e.g. "create
/// the droplet"), the status and the provider's own words (bounded). 401/403 are `denied`,
/// other 4xx `invalid-input`, 429 and 5xx `unreachable`.
pub fn error_for(resp: &Response, what: &str) -> Error {
    let said = provider_message(resp);
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    };
    let message = format!("{what}: the API answered {}{said}", resp.status);
    match resp.status {
        401 | 403 => Error::Denied(message),
        429 | 500..=599 => Error::Unreachable(message),
        400..=499 => Error::InvalidInput(message),
        _ => Error::Failed(message),
    }
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use super::{DENIED_REDIRECT_PREFIX, HttpError, Method, Request, Response, host_of, shown_url};
    use wstd::http::{Body, Client, ErrorCode};

    /// Send through wasi:http and collect the whole answer.
    pub fn send(req: Request) -> Result<Response, HttpError> {
        let url = shown_url(&req.url);
        let host = host_of(&req.url);
        let transport = |message: String| HttpError::Transport {
            url: url.clone(),
            message,
        };
        let method = match req.method {
            Method::Get => wstd::http::Method::GET,
            Method::Post => wstd::http::Method::POST,
            Method::Put => wstd::http::Method::PUT,
            Method::Patch => wstd::http::Method::PATCH,
            Method::Delete => wstd::http::Method::DELETE,
        };
        let mut builder = wstd::http::Request::builder()
            .method(method)
            .uri(req.url.as_str());
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder
            .body(Body::from(req.body))
            .map_err(|e| transport(format!("the request is not valid: {e}")))?;
        let mut client = Client::new();
        if let Some(t) = req.timeout {
            client.set_connect_timeout(t);
            client.set_first_byte_timeout(t);
            client.set_between_bytes_timeout(t);
        }
        let answer = wstd::runtime::block_on(async move {
            let resp = client.send(request).await?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect::<Vec<_>>();
            let mut body = resp.into_body();
            let bytes = body.contents().await?.to_vec();
            Ok::<_, wstd::http::Error>(Response {
                status,
                headers,
                body: bytes,
            })
        });
        answer.map_err(|e| match e.downcast_ref::<ErrorCode>() {
            Some(ErrorCode::HttpRequestDenied) => HttpError::Denied { host },
            Some(ErrorCode::InternalError(Some(m))) => match m.strip_prefix(DENIED_REDIRECT_PREFIX)
            {
                Some(denied) => HttpError::Denied {
                    host: denied
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                },
                None => transport(super::bounded(m, 300)),
            },
            Some(code) => transport(describe(code)),
            None => transport(super::bounded(&format!("{e:#}"), 300)),
        })
    }

    /// A wasi:http error code in words.
    fn describe(code: &ErrorCode) -> String {
        match code {
            ErrorCode::DnsTimeout => "DNS lookup timed out".into(),
            ErrorCode::DnsError(_) => "the host name could not be resolved".into(),
            ErrorCode::ConnectionRefused => "connection refused".into(),
            ErrorCode::ConnectionTimeout => "connecting timed out".into(),
            ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
                "the server did not answer in time".into()
            }
            ErrorCode::TlsCertificateError => {
                "the server's TLS certificate is not trusted (give the driver's CA bundle flag for a private CA)".into()
            }
            ErrorCode::TlsProtocolError => "TLS handshake failed".into(),
            ErrorCode::HttpProtocolError => {
                "the connection closed before a whole answer came (whether the server did it is not known)".into()
            }
            ErrorCode::ConnectionTerminated => {
                "the connection was closed during the request (whether the server did it is not known)".into()
            }
            other => super::bounded(&format!("{other:?}"), 300),
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn builds_requests() {
        let r = Request::post("https://api.example.com/v2/x?token=abc")
            .header("Authorization", "Bearer t")
            .json(&serde_json::json!({"a": 1}))
            .expect("json")
            .timeout(Duration::from_secs(5));
        assert_eq!(r.method.as_str(), "POST");
        assert_eq!(r.header_value("content-type"), Some("application/json"));
        assert_eq!(r.body_text(), r#"{"a":1}"#);
        assert_eq!(shown_url(&r.url), "https://api.example.com/v2/x");
        assert_eq!(
            host_of("https://u@Api.Example.com:8443/x"),
            "api.example.com"
        );
        assert_eq!(host_of("http://[::1]:80/"), "::1");
    }

    #[test]
    fn provider_words_are_found_and_bounded() {
        let cases = [
            (
                r#"{"id":"not_found","message":"The resource was not found."}"#,
                "The resource was not found.",
            ),
            (
                r#"{"itemNotFound":{"code":404,"message":"Flavor x could not be found."}}"#,
                "Flavor x could not be found.",
            ),
            (
                r#"{"error":{"code":401,"title":"Unauthorized","message":"Needs auth."}}"#,
                "Needs auth.",
            ),
            (
                "<Response><Errors><Error><Code>X</Code><Message>Bad AMI</Message></Error></Errors></Response>",
                "Bad AMI",
            ),
            ("plain\u{1b}[31m text", "plain [31m text"),
        ];
        for (body, want) in cases {
            assert_eq!(provider_message(&Response::new(404, body)), want, "{body}");
        }
        let long = "x".repeat(5000);
        assert!(provider_message(&Response::new(500, long)).chars().count() <= MESSAGE_LIMIT + 1);
        let e = error_for(
            &Response::new(
                401,
                r#"{"id":"unauthorized","message":"Unable to authenticate you"}"#,
            ),
            "list regions",
        );
        assert!(
            matches!(&e, Error::Denied(m) if m == "list regions: the API answered 401: Unable to authenticate you"),
            "{e:?}"
        );
        assert!(matches!(
            error_for(&Response::new(422, ""), "x"),
            Error::InvalidInput(_)
        ));
        assert!(matches!(
            error_for(&Response::new(503, ""), "x"),
            Error::Unreachable(_)
        ));
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn scripted_answers_and_errors() {
        crate::mock::reset();
        crate::mock::on_http(|r| {
            if r.url.contains("denied") {
                return Err(HttpError::Denied {
                    host: host_of(&r.url),
                });
            }
            Ok(Response::json_of(200, &serde_json::json!({"ok": true})).with_header("X-A", "b"))
        });
        let resp = send(Request::get("http://api.test/x")).expect("answer");
        assert!(resp.is_success());
        assert_eq!(resp.header("x-a"), Some("b"));
        let v: serde_json::Value = resp.json().expect("json");
        assert_eq!(v["ok"], true);
        let err = send(Request::get("http://denied.test/")).expect_err("denied");
        assert!(err.to_string().contains("denied.test"), "{err}");
        assert!(matches!(Error::from(err), Error::Denied(_)));
        assert!(send(Request::get("ftp://x/")).is_err());
        assert_eq!(crate::mock::http_requests().len(), 2);
        let bad: Result<serde_json::Value, _> = Response::new(200, "<html>").json();
        assert!(bad.expect_err("not json").to_string().contains("<html>"));
    }
}
