//! A scripted stand-in for the host, used when the sdk is built for a native target
//! (unit and transcript tests). State is per thread; call [`reset`] at the start of a test.
//!
//! Commands are answered by the handler given to [`on_exec`] (default: exit 0, no output).
//! Everything the plugin did is recorded: [`commands`], [`uploads`], [`logs`], [`sleeps`].

use crate::{Error, ExecOutput, InstalledCerts, Level, Result};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

/// A command handler: `(command, as_root)` → exit code, stdout, stderr (or a host error).
pub type Handler = Box<dyn FnMut(&str, bool) -> Result<(i32, String, String)>>;

/// An HTTP handler: a request → the scripted answer (or a transport error, a denial).
pub type HttpHandler = Box<
    dyn FnMut(
        &crate::http::Request,
    ) -> core::result::Result<crate::http::Response, crate::http::HttpError>,
>;

/// One file written through `upload`.
#[derive(Clone, Debug)]
pub struct Upload {
    /// Target path.
    pub path: String,
    /// Contents as text (lossy).
    pub contents: String,
    /// File mode.
    pub mode: u32,
}

/// The recorded state of the fake host.
#[derive(Default)]
struct State {
    handler: Option<Handler>,
    commands: Vec<(String, bool)>,
    uploads: Vec<Upload>,
    logs: Vec<(Level, String)>,
    store: BTreeMap<String, String>,
    sleeps: Vec<Duration>,
    unreachable: bool,
    public_key: String,
    http: Option<HttpHandler>,
    http_requests: Vec<crate::http::Request>,
    spoiler: Option<Spoiler>,
}

/// Spoils the `n`th answer (fuzz tests of a driver's answer parsing).
type Spoiler = Box<dyn FnMut(usize, crate::http::Response) -> crate::http::Response>;

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Forget everything recorded and every handler.
pub fn reset() {
    STATE.with(|s| *s.borrow_mut() = State::default());
}

/// Lend the driver `key` as the machine's public key (`keys`).
pub fn set_machine_public_key(key: &str) {
    STATE.with(|s| s.borrow_mut().public_key = key.to_string());
}

/// The public key lent (`keys.machine-public-key`).
pub(crate) fn machine_public_key() -> String {
    STATE.with(|s| s.borrow().public_key.clone())
}

/// Answer commands with `handler`.
pub fn on_exec(handler: impl FnMut(&str, bool) -> Result<(i32, String, String)> + 'static) {
    STATE.with(|s| s.borrow_mut().handler = Some(Box::new(handler)));
}

/// Make `reachable` answer `false` (`true` is the default).
pub fn set_unreachable(unreachable: bool) {
    STATE.with(|s| s.borrow_mut().unreachable = unreachable);
}

/// The commands run so far, in order, each with whether it ran as root.
pub fn commands() -> Vec<(String, bool)> {
    STATE.with(|s| s.borrow().commands.clone())
}

/// The files uploaded so far.
pub fn uploads() -> Vec<Upload> {
    STATE.with(|s| s.borrow().uploads.clone())
}

/// The log messages written so far.
pub fn logs() -> Vec<(Level, String)> {
    STATE.with(|s| s.borrow().logs.clone())
}

/// The sleeps requested so far.
pub fn sleeps() -> Vec<Duration> {
    STATE.with(|s| s.borrow().sleeps.clone())
}

/// The whole store, sorted by key.
pub fn store() -> BTreeMap<String, String> {
    STATE.with(|s| s.borrow().store.clone())
}

/// Record a log message.
pub(crate) fn log(level: Level, message: &str) {
    STATE.with(|s| s.borrow_mut().logs.push((level, message.to_string())));
}

/// Record and answer a command.
pub(crate) fn exec(command: &str, root: bool) -> Result<ExecOutput> {
    // Take the handler out so it may itself use the mock without a double borrow.
    let handler = STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.commands.push((command.to_string(), root));
        s.handler.take()
    });
    let Some(mut handler) = handler else {
        return Ok(ExecOutput {
            exit_code: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
        });
    };
    let answer = handler(command, root);
    STATE.with(|s| s.borrow_mut().handler = Some(handler));
    let (exit_code, stdout, stderr) = answer?;
    Ok(ExecOutput {
        exit_code,
        stdout: stdout.into_bytes(),
        stderr: stderr.into_bytes(),
    })
}

/// Record an upload.
pub(crate) fn upload(path: &str, contents: &[u8], mode: u32) -> Result<()> {
    let contents = String::from_utf8_lossy(contents).into_owned();
    let path = path.to_string();
    STATE.with(|s| {
        s.borrow_mut().uploads.push(Upload {
            path,
            contents,
            mode,
        })
    });
    Ok(())
}

/// Answer HTTP requests (`dmw_guest::http::send`) with `handler`.
pub fn on_http(
    handler: impl FnMut(
        &crate::http::Request,
    ) -> core::result::Result<crate::http::Response, crate::http::HttpError>
    + 'static,
) {
    STATE.with(|s| s.borrow_mut().http = Some(Box::new(handler)));
}

/// The HTTP requests sent so far, in order.
pub fn http_requests() -> Vec<crate::http::Request> {
    STATE.with(|s| s.borrow().http_requests.clone())
}

/// Record and answer an HTTP request (no handler: a transport error).
pub(crate) fn http_send(
    req: crate::http::Request,
) -> core::result::Result<crate::http::Response, crate::http::HttpError> {
    let handler = STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.http_requests.push(req.clone());
        s.http.take()
    });
    let Some(mut handler) = handler else {
        return Err(crate::http::HttpError::Transport {
            url: crate::http::shown_url(&req.url),
            message: "the scripted host has no HTTP answer (mock::on_http)".into(),
        });
    };
    let fuzzing = STATE.with(|s| s.borrow().spoiler.is_some());
    let answer = if fuzzing {
        // A scripted cloud checks the requests it is sent; after a spoiled answer the
        // driver may send one it does not expect. That is the script's limit, not the
        // driver's fault: the request fails as if the connection dropped.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&req))).unwrap_or_else(
            |_| {
                Err(crate::http::HttpError::Transport {
                    url: crate::http::shown_url(&req.url),
                    message: "the scripted cloud did not expect this request".into(),
                })
            },
        )
    } else {
        handler(&req)
    };
    STATE.with(|s| s.borrow_mut().http = Some(handler));
    let Ok(resp) = answer else { return answer };
    let (n, spoiler) = STATE.with(|s| {
        let mut s = s.borrow_mut();
        (s.http_requests.len() - 1, s.spoiler.take())
    });
    let Some(mut spoiler) = spoiler else {
        return Ok(resp);
    };
    let resp = spoiler(n, resp);
    STATE.with(|s| s.borrow_mut().spoiler = Some(spoiler));
    Ok(resp)
}

/// Pass every answer of the [`on_http`] handler through `spoiler` (with the request's
/// index, from 0) before the driver sees it.
pub fn spoil_http(
    spoiler: impl FnMut(usize, crate::http::Response) -> crate::http::Response + 'static,
) {
    STATE.with(|s| s.borrow_mut().spoiler = Some(Box::new(spoiler)));
}

/// Spoil the answers a plan names: each entry is (request index, then [`Spoil`]'s `kind`,
/// `picks` and `n`) — the numbers a property test draws.
pub fn spoil_answers(plan: Vec<(usize, u8, Vec<u32>, u32)>) {
    spoil_http(move |i, mut resp| {
        for (at, kind, picks, n) in &plan {
            if *at == i {
                let how = Spoil {
                    kind: *kind,
                    picks: picks.clone(),
                    n: *n,
                };
                resp = spoil(resp, &how);
            }
        }
        resp
    });
}

/// The property-test strategy of [`spoil_answers`]' plans: one to three spoils among the
/// first `requests` answers (feature `fuzz`).
#[cfg(feature = "fuzz")]
pub fn spoil_plans(
    requests: usize,
) -> impl proptest::strategy::Strategy<Value = Vec<(usize, u8, Vec<u32>, u32)>> {
    use proptest::prelude::any;
    proptest::collection::vec(
        (
            0..requests,
            any::<u8>(),
            proptest::collection::vec(any::<u32>(), 0..6),
            any::<u32>(),
        ),
        1..4,
    )
}

/// How [`spoil`] changes one answer; fuzz tests draw the numbers.
#[derive(Clone, Debug)]
pub struct Spoil {
    /// What is done: a status, a cut body, one JSON value replaced or removed, every value
    /// of one key removed or replaced, XML text or a tag dropped, an empty body (taken
    /// modulo the number of kinds).
    pub kind: u8,
    /// The way down the JSON tree (each pick chooses a child, modulo their number).
    pub picks: Vec<u32>,
    /// A number for the kind: the status picked, where the body is cut, the value put in.
    pub n: u32,
}

/// Statuses a spoiled answer may get.
const SPOIL_STATUSES: &[u16] = &[
    200, 201, 202, 204, 301, 400, 401, 403, 404, 409, 413, 429, 500, 502, 503,
];

/// `resp` changed as `how` says: a provider's answer that lost a field, changed a type,
/// got cut, or came with another status. A body that is not JSON (EC2's XML) gets text
/// cut out between tags or a tag dropped.
pub fn spoil(mut resp: crate::http::Response, how: &Spoil) -> crate::http::Response {
    let n = how.n as usize;
    // Most spoils hit one key everywhere: that reaches the fields a driver reads.
    match how.kind % 16 {
        0 => resp.status = SPOIL_STATUSES[n % SPOIL_STATUSES.len()],
        1 => {
            let cut = n % (resp.body.len() + 1);
            resp.body.truncate(cut);
        }
        8 => resp.body.clear(),
        kind => match serde_json::from_slice::<serde_json::Value>(&resp.body) {
            Ok(mut v) => {
                let new = match kind {
                    2 => Some(serde_json::Value::Null),
                    3 => Some(serde_json::json!(n)),
                    4 => Some(serde_json::json!("x".repeat(n % 70))),
                    5 => Some(serde_json::json!([])),
                    6 => Some(serde_json::json!({})),
                    _ => None,
                };
                if kind >= 9 {
                    let kind = if kind >= 13 { 10 } else { 9 };
                    // Every value of one key the answer holds (`ip_address`, `status`).
                    let mut keys = std::collections::BTreeSet::new();
                    json_keys(&v, &mut keys);
                    if let Some(key) = keys.iter().nth(n % keys.len().max(1)).cloned() {
                        let pick = how.picks.first().copied().unwrap_or(0);
                        let new = (kind == 10).then(|| match pick % 4 {
                            0 => serde_json::Value::Null,
                            1 => serde_json::json!(pick),
                            2 => serde_json::json!("x"),
                            _ => serde_json::json!([]),
                        });
                        spoil_key(&mut v, &key, &new);
                    }
                } else {
                    spoil_json(&mut v, &how.picks, new);
                }
                resp.body = serde_json::to_vec(&v).unwrap_or_default();
            }
            Err(_) => {
                let text = String::from_utf8_lossy(&resp.body).into_owned();
                let tags: Vec<usize> = text.match_indices('<').map(|(i, _)| i).collect();
                if let Some(&at) = tags.get(n % tags.len().max(1)) {
                    let end = text[at..]
                        .find('>')
                        .map(|e| at + e + 1)
                        .unwrap_or(text.len());
                    let out = if kind % 2 == 0 {
                        // Drop the tag.
                        format!("{}{}", &text[..at], &text[end..])
                    } else {
                        // Drop the text after it, up to the next tag.
                        let next = text[end..].find('<').map(|e| end + e).unwrap_or(text.len());
                        format!("{}{}", &text[..end], &text[next..])
                    };
                    resp.body = out.into_bytes();
                }
            }
        },
    }
    resp
}

/// Every object key in `v`.
fn json_keys(v: &serde_json::Value, keys: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                keys.insert(k.clone());
                json_keys(child, keys);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|c| json_keys(c, keys)),
        _ => {}
    }
}

/// Replace (or, with `None`, remove) the value of `key` wherever it is in `v`.
fn spoil_key(v: &mut serde_json::Value, key: &str, new: &Option<serde_json::Value>) {
    match v {
        serde_json::Value::Object(map) => {
            match new {
                None => {
                    map.remove(key);
                }
                Some(n) => {
                    if let Some(slot) = map.get_mut(key) {
                        *slot = n.clone();
                    }
                }
            }
            for child in map.values_mut() {
                spoil_key(child, key, new);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|c| spoil_key(c, key, new)),
        _ => {}
    }
}

/// Replace (or, with `None`, remove) the value found by walking `picks` down `v`.
fn spoil_json(v: &mut serde_json::Value, picks: &[u32], new: Option<serde_json::Value>) {
    use serde_json::Value;
    let Some((&pick, rest)) = picks.split_first() else {
        *v = new.unwrap_or(Value::Null);
        return;
    };
    match v {
        Value::Object(map) if !map.is_empty() => {
            let key = map
                .keys()
                .nth(pick as usize % map.len())
                .cloned()
                .unwrap_or_default();
            if rest.is_empty() && new.is_none() {
                map.remove(&key);
            } else if let Some(child) = map.get_mut(&key) {
                spoil_json(child, rest, new);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = pick as usize % items.len();
            if rest.is_empty() && new.is_none() {
                items.remove(i);
            } else {
                spoil_json(&mut items[i], rest, new);
            }
        }
        // A leaf reached early: it is the value replaced.
        _ => *v = new.unwrap_or(Value::Null),
    }
}

/// Answer `reachable`.
pub(crate) fn reachable(_timeout_ms: u32) -> bool {
    STATE.with(|s| !s.borrow().unreachable)
}

/// Pretend to install certificates into `directory`.
pub(crate) fn install_server_cert(directory: &str) -> Result<InstalledCerts> {
    if directory.is_empty() {
        return Err(Error::InvalidInput("empty directory".into()));
    }
    let d = directory.trim_end_matches('/');
    Ok(InstalledCerts {
        ca_path: format!("{d}/ca.pem"),
        cert_path: format!("{d}/server.pem"),
        key_path: format!("{d}/server-key.pem"),
        fresh: true,
    })
}

/// Read the fake store.
pub(crate) fn store_get(key: &str) -> Option<String> {
    STATE.with(|s| s.borrow().store.get(key).cloned())
}

/// Write the fake store.
pub(crate) fn store_set(key: &str, value: &str) {
    STATE.with(|s| {
        s.borrow_mut()
            .store
            .insert(key.to_string(), value.to_string())
    });
}

/// Delete from the fake store.
pub(crate) fn store_delete(key: &str) {
    STATE.with(|s| s.borrow_mut().store.remove(key));
}

/// Record a sleep without sleeping.
pub(crate) fn sleep(duration: Duration) {
    STATE.with(|s| s.borrow_mut().sleeps.push(duration));
}
