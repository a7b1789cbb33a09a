//! dmw's testbed: real Debian hosts reachable over SSH, for integration tests.
//!
//! Each host is a systemd-nspawn container booting systemd, with its own
//! network namespace, address, hostname and copy-on-write copy of a cached
//! debootstrap rootfs. See `tests/README.md` for usage, caches and cleanup.
//!
//! ```no_run
//! use dmw_testbed::{Options, Testbed, require_root_or_skip};
//! if !require_root_or_skip("my_test") {
//!     return;
//! }
//! let tb = Testbed::boot(2, &Options::default()).expect("boot");
//! assert_eq!(tb[0].ssh_ok("root", "hostname").expect("ssh").trim(), tb[0].name());
//! ```

mod deps;
mod host;
mod image;
mod rootfs;
mod state;
mod util;

pub use deps::{PACKAGES, ensure_packages};
pub use host::{Host, Options, Output, Testbed};
pub use image::image_tarball;
pub use rootfs::{CACHE_DIR, rootfs, test_key};
pub use state::{HOST_NET, NAME_PREFIX, STATE_DIR, clean_stale, leftovers};

/// Checks that this process can run the testbed (root, Debian, packages installed, installing them if needed).
///
/// Returns true if it can. Otherwise, when the environment variable `CI` is
/// `true`, it panics with the reason (CI must not skip silently); elsewhere it
/// prints a one-line reason to stderr and returns false, so the test can return early.
pub fn require_root_or_skip(test_name: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let problem = if unsafe { libc::geteuid() } != 0 {
        Some(
            "needs root (it boots systemd-nspawn hosts with their own network namespaces)"
                .to_string(),
        )
    } else {
        ensure_packages()
            .err()
            .map(|e| format!("needs the testbed's Debian packages {PACKAGES:?}: {e}"))
    };
    let Some(problem) = problem else {
        return true;
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test_name}: {problem}");
    }
    eprintln!("skipping {test_name}: {problem}");
    false
}

/// A program of the PyPI venv that scripts/setup makes (`DMW_PY_VENV` overrides its path,
/// default `/var/cache/dmw-testbed/venv`): the cloud clients' `python`, `componentize-py`.
pub fn venv_program(name: &str) -> std::path::PathBuf {
    let venv =
        std::env::var("DMW_PY_VENV").unwrap_or_else(|_| "/var/cache/dmw-testbed/venv".to_string());
    std::path::Path::new(&venv).join("bin").join(name)
}
