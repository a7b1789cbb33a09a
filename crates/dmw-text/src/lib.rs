//! `dmw-text`: the text rules dmw's host and its WebAssembly guests share, so both sides
//! quote and parse exactly alike. Plain Rust, no dependencies: it builds natively (the
//! host, where its tests run) and for `wasm32-wasip2` (the guests' SDK and drivers).
//!
//! * [`sh_quote`]: one POSIX shell word.
//! * [`parse_engine_url`]: `tcp://HOST[:PORT]` split into host and port.

#![forbid(unsafe_code)]

mod shell;
mod url;

pub use shell::sh_quote;
pub use url::{DEFAULT_ENGINE_PORT, EngineUrl, UrlError, parse_engine_url};
