//! `http`: outgoing HTTP(S) for a plugin granted it, through the standard `wasi:http`
//! interface (wasmtime-wasi-http), checked and sent by dmw.
//!
//! - Every request is checked in the send-request hook against the plugin's declared
//!   `http-host` patterns, with `{flag}` replaced by the host of that flag's value for this
//!   machine — a value the user typed, never the plugin's default
//!   ([`crate::net::http::HttpSettings::resolve`]). Anything else is refused **before any connection
//!   is opened** (the request body is drained first so the guest sees
//!   `http-request-denied`, not a reset), and the refusal names the host in the log.
//! - Only http and https; a pattern without a port allows https on port 443 only.
//!   Redirects (301/302/303/307/308) are followed by dmw, at most 5, each target checked
//!   against the same list; never from https to plain http, and credentials
//!   (`Authorization`, cookies, …) only to the origin they were sent to.
//! - By address, not by name: a host name is looked up once, each address checked
//!   ([`crate::net::http::special_use`]: loopback, link-local and metadata, private, … are refused
//!   unless the URL is that literal address or the user typed the name), and the
//!   connection goes to the checked address (no second lookup: no DNS rebinding).
//! - dmw's own sender: hyper http1 over tokio-rustls, trusting the system's roots plus the
//!   plugin's CA bundle flag (`http-cacert`, read only from a path the user typed, by the
//!   bounded `user_file::read`), or nothing checked with its insecure flag
//!   (`http-insecure`, with a warning); `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`; connect and
//!   whole-request timeouts; retries with backoff on 429/502/503/504 honouring
//!   `Retry-After`; request and response bodies capped.
//! - Every request goes to the machine's log as method, URL (secret-looking query values
//!   redacted) and status; `--debug` shows the headers with credentials redacted.
//!
//! This module is the WIT adapter (the instance's context, the hooks, the link step); the
//! HTTP client itself — allow-list, sender, proxies, log lines — is the network service,
//! [`crate::net::http`].
//!
//! A plugin not granted `http` gets `http-request-denied` for every request (and a
//! component that imports `wasi:http` without declaring `http` is refused before it runs,
//! see `plugin::grants::check_imports`).

use std::sync::Arc;

use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use wasmtime::component::Linker;
use wasmtime_wasi_http::{WasiBody, WasiHttpHooks};

use super::{Capability, CapabilityView, Lent, Offer};
use crate::net::http::{self as net, MAX_REQUEST_BODY, Sender, loggable_url};
use crate::text::report::Reporter;

/// The `http` capability (declared by the plugin, granted by the user).
pub const fn capability<T: CapabilityView>() -> Capability<T> {
    Capability {
        name: "http",
        link: add_to_linker::<T>,
        lend,
        wasi: super::no_wasi,
    }
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

/// Link `wasi:http` (outgoing-handler and types), answered through the state's wasi:http
/// view (which [`view`] makes).
pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
}

fn lend(offer: &Offer, lent: &mut Lent) {
    lent.insert(HttpCtx {
        plugin: offer.plugin.clone(),
        sender: offer.http.clone(),
        report: offer.report.clone(),
    });
}

/// wasi:http's view of an instance: answered by its `http` context (the allow-list, the
/// sender) when it was granted one, else by `no_http`, which refuses every request. The
/// runtime's `WasiHttpView` is this.
pub fn view<'a>(
    lent: &'a mut Lent,
    no_http: &'a mut NoHttp,
    table: &'a mut wasmtime::component::ResourceTable,
    ctx: &'a mut wasmtime_wasi_http::WasiHttpCtx,
) -> wasmtime_wasi_http::WasiHttpCtxView<'a> {
    let hooks: &mut dyn WasiHttpHooks = match lent.get_mut::<HttpCtx>() {
        Some(ctx) => ctx,
        None => no_http,
    };
    wasmtime_wasi_http::WasiHttpCtxView { hooks, table, ctx }
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
        let (scheme, host, port) = net::target(&uri);
        let Some(sender) = self
            .sender
            .clone()
            .filter(|s| s.allows(&scheme, &host, port))
        else {
            let why = self
                .sender
                .as_deref()
                .and_then(|s| net::scheme_note(&s.settings().hosts, &scheme, &host, port))
                .unwrap_or_else(|| {
                    format!(
                        "host {host} is not in the plugin's http-host list{}",
                        self.sender
                            .as_deref()
                            .map(Sender::catalog_note)
                            .unwrap_or("")
                    )
                });
            report.warn(&format!(
                "plugin {plugin}: dmw denied {} {} ({why}; no connection was opened{})",
                request.method(),
                loggable_url(&uri),
                self.sender
                    .as_deref()
                    .map(Sender::untyped_note)
                    .unwrap_or_default()
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
            let answer = net::send(&sender, &report, &plugin, parts, body, options).await?;
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
