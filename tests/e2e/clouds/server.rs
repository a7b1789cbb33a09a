//! The tests' one tiny threaded HTTP/1.1 server (the cloud test servers, and the file
//! server of tests/e2e/http.rs): each connection gets its own thread, the handler maps a
//! parsed [`Request`] to a [`Response`] (JSON or raw bytes), every request is recorded for
//! assertions, and dropping the server stops it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

/// Largest request body the server reads (the clouds' own limits are of this order).
const MAX_BODY: usize = 1 << 20;

/// One parsed HTTP request.
#[derive(Clone, Debug)]
pub struct Request {
    /// Method, e.g. "GET".
    pub method: String,
    /// Path without the query, percent-decoded.
    pub path: String,
    /// Query parameters in order, percent-decoded.
    pub query: Vec<(String, String)>,
    /// Headers in order (names as sent).
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter of that name.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (None when empty or not JSON).
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `http://HOST` as the client addressed the server (its Host header), for links.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.header("host").unwrap_or("127.0.0.1"))
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the handler answers.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Extra headers (Content-Type and Content-Length are added).
    pub headers: Vec<(String, String)>,
    /// JSON body, or none (empty body, or `raw`).
    pub body: Option<Value>,
    /// Raw body bytes (served without a Content-Type), when not JSON.
    pub raw: Option<Vec<u8>>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, body: Value) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Some(body),
            raw: None,
        }
    }

    /// A response with an empty body.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: None,
            raw: None,
        }
    }

    /// A response with raw bytes as its body.
    pub fn bytes(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: None,
            raw: Some(body),
        }
    }

    /// A response whose body is `text` sent as it is, with `content_type` (e.g. XML).
    pub fn text(status: u16, content_type: &str, text: String) -> Response {
        Response::bytes(status, text.into_bytes()).with_header("Content-Type", content_type)
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// The status of a [`Response`] that is no answer: the connection is closed instead.
pub const DROP: u16 = 0;

impl Response {
    /// No answer: the server closes the connection (a dropped connection, a lost answer).
    pub fn dropped() -> Response {
        Response::empty(DROP)
    }
}

/// Faults a cloud server injects into its answers, the way real clouds fail: a share of
/// requests (`per_mille`, changeable while it runs) gets one of a 500, a 503 or a 429 with
/// `Retry-After: 1` (nothing done), a dropped connection (nothing done), a **lost answer**
/// (done, then the connection dropped: a create whose answer never came), or an answer
/// that comes late (done at once, answered 3 s later). Which request gets which is decided by a seeded generator, so a run
/// can be repeated.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    per_mille: Arc<AtomicU32>,
    state: Arc<AtomicU64>,
    injected: Arc<Mutex<Vec<String>>>,
}

impl Faults {
    /// `per_mille` of the requests fail, chosen from `seed`.
    pub fn new(per_mille: u32, seed: u64) -> Faults {
        Faults {
            per_mille: Arc::new(AtomicU32::new(per_mille)),
            state: Arc::new(AtomicU64::new(seed | 1)),
            injected: Arc::default(),
        }
    }

    /// Change the share of failing requests (0: none).
    pub fn set_per_mille(&self, per_mille: u32) {
        self.per_mille.store(per_mille, Ordering::SeqCst);
    }

    /// The faults injected so far: "KIND METHOD PATH" lines.
    pub fn injected(&self) -> Vec<String> {
        self.injected.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The next number of the generator (xorshift64*).
    fn next(&self) -> u64 {
        let mut x = self.state.load(Ordering::SeqCst);
        loop {
            let mut y = x;
            y ^= y >> 12;
            y ^= y << 25;
            y ^= y >> 27;
            match self
                .state
                .compare_exchange(x, y, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return y.wrapping_mul(0x2545_f491_4f6c_dd1d),
                Err(now) => x = now,
            }
        }
    }

    /// `handler` with these faults injected in front of it.
    pub fn wrap(&self, handler: Handler) -> Handler {
        let faults = self.clone();
        Arc::new(move |req: &Request| {
            let per_mille = u64::from(faults.per_mille.load(Ordering::SeqCst));
            let roll = faults.next();
            if per_mille == 0 || roll % 1000 >= per_mille {
                return handler(req);
            }
            let kind = (roll / 1000) % 6;
            let name = ["500", "503", "429", "drop", "lost answer", "late"][kind as usize];
            if let Ok(mut v) = faults.injected.lock() {
                v.push(format!("{name} {} {}", req.method, req.path));
            }
            match kind {
                0 => Response::json(500, serde_json::json!({"message": "injected fault"})),
                1 => Response::json(503, serde_json::json!({"message": "injected fault"}))
                    .with_header("Retry-After", "1"),
                2 => Response::json(429, serde_json::json!({"message": "injected fault"}))
                    .with_header("Retry-After", "1"),
                3 => Response::dropped(),
                4 => {
                    let _ = handler(req);
                    Response::dropped()
                }
                _ => {
                    // Done at once, answered late: a request still travelling when its
                    // client dies would be carried out after anything the client does
                    // next, which no client can see (docs/reliability.md).
                    let resp = handler(req);
                    std::thread::sleep(Duration::from_secs(3));
                    resp
                }
            }
        })
    }
}

/// Decodes standard base64 (padded; whitespace ignored); None when it is not valid base64.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let s: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// The request handler a cloud server provides.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A running server; dropping it stops accepting connections.
pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    requests: Arc<Mutex<Vec<(Request, u16)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `handler` on 127.0.0.1 (an ephemeral port).
    pub fn start(handler: Handler) -> Server {
        Server::start_on("127.0.0.1", handler)
    }

    /// Serves `handler` on `ip` (a loopback address; an ephemeral port).
    pub fn start_on(ip: &str, handler: Handler) -> Server {
        let listener = TcpListener::bind((ip, 0)).expect("bind the cloud test server");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, flag) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let (handler, log) = (handler.clone(), log.clone());
                        std::thread::spawn(move || serve(conn, &handler, &log));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Server {
            url: format!("http://{addr}"),
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// Every request so far with the status it got.
    pub fn requests(&self) -> Vec<(Request, u16)> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// "METHOD /path -> status" lines, for assertions and failure messages.
    pub fn request_lines(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|(r, s)| format!("{} {} -> {s}", r.method, r.path))
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Decodes %XX and (in queries) '+'.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        if headers.len() > 200 {
            return None;
        }
    }
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            if body.len() + n > MAX_BODY {
                return None;
            }
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = header("content-length") {
        let n: usize = len.parse().ok()?;
        if n > MAX_BODY {
            return None;
        }
        body = vec![0; n];
        reader.read_exact(&mut body).ok()?;
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect();
    Some(Request {
        method,
        path: percent_decode(path, false),
        query,
        headers,
        body,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        300 => "Multiple Choices",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Serves requests on one connection (keep-alive) until the client closes it.
fn serve(conn: TcpStream, handler: &Handler, log: &Mutex<Vec<(Request, u16)>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut conn = conn;
    while let Some(req) = read_request(&mut reader) {
        let resp = handler(&req);
        if resp.status == DROP {
            if let Ok(mut l) = log.lock() {
                l.push((req, DROP));
            }
            let _ = conn.shutdown(std::net::Shutdown::Both);
            return;
        }
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let body = match (&resp.body, &resp.raw) {
            (Some(v), _) => serde_json::to_vec(v).unwrap_or_default(),
            (None, Some(raw)) => raw.clone(),
            (None, None) => Vec::new(),
        };
        let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
        if resp.body.is_some() {
            head.push_str("Content-Type: application/json\r\n");
        }
        for (k, v) in &resp.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let status = resp.status;
        let head_only = req.method == "HEAD";
        if let Ok(mut l) = log.lock() {
            l.push((req, status));
        }
        if conn.write_all(head.as_bytes()).is_err()
            || (!head_only && conn.write_all(&body).is_err())
        {
            return;
        }
        if close {
            return;
        }
    }
}
