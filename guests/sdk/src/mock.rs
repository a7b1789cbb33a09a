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
}

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
    let answer = handler(&req);
    STATE.with(|s| s.borrow_mut().http = Some(handler));
    answer
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
