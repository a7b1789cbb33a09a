//! The network service: dmw's own HTTP client for plugins and downloads — the allow-list
//! of host patterns and the address check ([`HttpSettings`], [`special_use`]), the sender
//! (hyper over tokio-rustls: connect to the checked address, redirects, retries, caps,
//! proxies from the environment) and the loggable form of requests. The `http` capability
//! (`capabilities::http`) lends it to plugins through `wasi:http`; image downloads
//! (`vm::download`) use the same sender.

mod allow;
mod log;
mod proxy;
mod send;

pub use allow::{
    HttpAsk, HttpSettings, KeystoneCatalog, KeystoneCatalogFlags, MAX_CATALOG_ORIGINS, allowed,
    check_pattern, literal_special_use, scheme_note, special_use, target,
};
pub use log::{loggable_headers, loggable_url};
pub use proxy::{Proxy, ProxyConfig};
pub use send::{Resolve, Sender, next_hop, retry_after, send};

use std::time::Duration;

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
/// Largest CA bundle file read (only one the user named: `HttpSettings::resolve`).
pub(crate) const MAX_CA_BUNDLE: u64 = 1 << 20;
/// Most resolved host patterns.
pub(crate) const MAX_PATTERNS: usize = 64;

/// The prefix of the message of a refused redirect (the guest SDK names the host from it).
pub const DENIED_REDIRECT_PREFIX: &str = "dmw-denied-host ";
