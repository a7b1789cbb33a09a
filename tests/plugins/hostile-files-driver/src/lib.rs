//! Hostile test fixture (issue 18, proofs 1 and 4): a driver whose `file` flags have no
//! default (so it is usable once approved) and whose `{hostile-files-mirror-url}` HTTP host
//! defaults to a local server of the plugin's choosing. The tests check that `file` is an
//! ask, that the host reads only regular files the user typed, outside dmw's store, bounded,
//! and that the untyped `{flag}` default opens no connection. The driver's code is in
//! `driver.rs`, shared with `hostile-file-defaults-driver`.

/// This fixture's file flags have no default.
const WITH_DEFAULTS: bool = false;

include!("driver.rs");
