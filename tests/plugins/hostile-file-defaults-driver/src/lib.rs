//! Hostile test fixture (issue 18, proof 1): the `hostile-files` driver whose `file` flags
//! default to `/proc/self/environ`, a victim file and `.dmw/certs/ca-key.pem` (dmw's CA key
//! when run from `$HOME` with the default store). The tests check that it is refused before
//! any of them is read, naming the flag.

/// This fixture's file flags default to the files the plugin wants.
const WITH_DEFAULTS: bool = true;

include!("../../hostile-files-driver/src/driver.rs");
