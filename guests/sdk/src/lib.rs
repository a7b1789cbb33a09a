//! `dmw-guest`: what every dmw plugin (driver or recipe) shares.
//!
//! * [`bindings`]: the guest bindings of the host's imports (`log`, `store`, `ssh`,
//!   `certs`, `keys`, `process`, `files`, `vm`, and the shared `types`), generated once
//!   from `wit/` (build.rs reads the version and each world's imports there). A plugin
//!   crate calls [`generate!`] (`dmw_guest::generate!("driver-plugin")`), which runs
//!   wit-bindgen for its world with `with` pointing every import at these modules: only
//!   the exports are generated in the plugin, and the plugin needs no wit-bindgen
//!   dependency of its own.
//! * Drivers: implement [`driver::Driver`] (defaults for everything a provider does not
//!   have) and register it with [`export_driver!`]; declare and read flags with [`flags`].
//! * HTTP for drivers granted `http`: [`http`] (a blocking client over `wasi:http`).
//! * Helpers: logging ([`info`], [`debug`], [`warn`]), remote commands ([`run`],
//!   [`run_root`], [`status`], [`sh_quote`], [`wait_until`], [`output_root_retrying`]),
//!   driver flags ([`flags`]), the plugin's store ([`store`]), and Docker Engine setup
//!   shared by recipes ([`engine`]: systemd, other init systems, the install script,
//!   hostnames).
//!
//! On non-wasm targets (unit tests) every host call goes to [`mock`], a scripted
//! stand-in for the host, so recipes and drivers can be tested natively.

pub mod cmd;
pub mod driver;
pub mod engine;
pub mod files;
pub mod flags;
pub mod host;
pub mod http;
#[cfg(not(target_arch = "wasm32"))]
pub mod mock;
pub mod permissions;
pub mod process;
pub mod sigv4;
pub mod store;
pub mod vm;

// The import bindings (`bindings`) and the `generate!` macro, derived from wit/ by
// build.rs: the WIT version and the interfaces are spelled there once.
include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// Text rules shared with the host: shell quoting and engine URL parsing (crate `dmw-text`).
pub use dmw_text as text;

/// Fixtures for a recipe's native unit tests, expanded in its test module (where the
/// recipe's generated `OsInfo`, `EngineConfig` and `InstallMethod` are in scope through
/// `use super::*`): `os_info(id, like)`, `engine_config(os, method)` (port 2376, the
/// `provider=generic` label, Docker's script URL, nothing else: override fields with
/// `EngineConfig { .., ..engine_config(..) }`) and `cmds()`, the commands the scripted
/// host ([`mock`]) saw, in order.
#[macro_export]
macro_rules! recipe_test_fixtures {
    () => {
        /// An `os-info` with `id` and `ID_LIKE` entries `like`; the other fields empty.
        #[allow(dead_code)]
        fn os_info(id: &str, like: &[&str]) -> OsInfo {
            OsInfo {
                id: id.into(),
                id_like: like.iter().map(|s| s.to_string()).collect(),
                version_id: String::new(),
                version_codename: String::new(),
                pretty_name: String::new(),
                fields: vec![],
            }
        }

        /// The engine configuration of a plain `dmw create` on `os` with `method`.
        #[allow(dead_code)]
        fn engine_config(os: OsInfo, method: InstallMethod) -> EngineConfig {
            EngineConfig {
                os,
                install_method: method,
                install_url: "https://get.docker.com".into(),
                repo_url: String::new(),
                port: 2376,
                storage_driver: String::new(),
                labels: vec!["provider=generic".into()],
                insecure_registries: vec![],
                registry_mirrors: vec![],
                extra_flags: vec![],
                env: vec![],
            }
        }

        /// The commands the scripted host saw, in order.
        #[allow(dead_code)]
        fn cmds() -> Vec<String> {
            $crate::mock::commands()
                .into_iter()
                .map(|(c, _)| c)
                .collect()
        }
    };
}

pub use bindings::dmw::plugin::certs::InstalledCerts;
pub use bindings::dmw::plugin::log::Level;
pub use bindings::dmw::plugin::types::{Error, ExecOutput};
pub use cmd::{
    LOCK_ATTEMPTS, LOCK_INTERVAL, command_error, output, output_root, output_root_retrying, run,
    run_root, run_root_retrying, sh_quote, status, status_root, wait_until,
};

/// The result type of every fallible helper: the contract's `error` variant.
pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// The message carried by any variant.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidInput(m)
            | Error::Unsupported(m)
            | Error::Denied(m)
            | Error::Unreachable(m)
            | Error::Failed(m) => m,
        }
    }

    /// The same kind of error with `context: ` put before its message.
    pub fn context(self, context: &str) -> Error {
        let wrap = |m: String| format!("{context}: {m}");
        match self {
            Error::InvalidInput(m) => Error::InvalidInput(wrap(m)),
            Error::Unsupported(m) => Error::Unsupported(wrap(m)),
            Error::Denied(m) => Error::Denied(wrap(m)),
            Error::Unreachable(m) => Error::Unreachable(wrap(m)),
            Error::Failed(m) => Error::Failed(wrap(m)),
        }
    }
}

/// Show `message` to the user (and write it to the machine's log).
pub fn info(message: &str) {
    host::log(Level::Info, message);
}

/// Write `message` to the machine's log (shown with --debug).
pub fn debug(message: &str) {
    host::log(Level::Debug, message);
}

/// Warn the user with `message`.
pub fn warn(message: &str) {
    host::log(Level::Warn, message);
}

/// The conventional `applies` score of an OS family: 100 when the os-release `ID` is one of
/// `ids`, 50 when one of its `ID_LIKE` entries is in `like`, else 0 (compared trimmed and
/// case-insensitively). A recipe for one specific OS scores above 100 to win over these.
pub fn family_score(id: &str, id_like: &[String], ids: &[&str], like: &[&str]) -> u32 {
    let is = |value: &str, set: &[&str]| set.iter().any(|s| value.trim().eq_ignore_ascii_case(s));
    if is(id, ids) {
        100
    } else if id_like.iter().any(|l| is(l, like)) {
        50
    } else {
        0
    }
}

#[cfg(test)]
mod family_score_tests {
    use super::family_score;

    #[test]
    fn exact_id_beats_id_like() {
        let like = vec!["ubuntu".to_string(), "debian".to_string()];
        assert_eq!(
            family_score("Debian", &[], &["debian", "ubuntu"], &["debian"]),
            100
        );
        assert_eq!(
            family_score(
                "linuxmint",
                &like,
                &["debian", "ubuntu"],
                &["debian", "ubuntu"]
            ),
            50
        );
        assert_eq!(family_score("plan9", &like, &["debian"], &["suse"]), 0);
    }
}
