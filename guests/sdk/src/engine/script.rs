//! The `script` install method: download an install script (Docker's get.docker.com by
//! default) into a temporary file, then run it with sh — never `curl | sh`.

use crate::cmd::{run_root, sh_quote};
use crate::{Error, Result, info};

/// Docker's install script, the default for the `script` method.
pub const DEFAULT_SCRIPT_URL: &str = "https://get.docker.com";

/// Reject URLs that are not plain http(s) URLs (no spaces, control characters or quotes, so
/// they are safe in repository files as well as quoted on a command line).
pub fn check_url(what: &str, url: &str) -> Result<()> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\'' || c == '"');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} {url:?} must be an http:// or https:// URL without spaces or quotes"
        )))
    }
}

/// The command that downloads `url` into a temporary file with curl (or wget when curl is
/// missing) and runs it with sh, removing the file afterwards.
pub fn script_command(url: &str) -> String {
    let q = sh_quote(url);
    format!(
        "f=$(mktemp /tmp/dmw-install-docker.XXXXXX) || exit 1; \
         if command -v curl >/dev/null 2>&1; then curl -fsSL {q} -o \"$f\" && sh \"$f\"; \
         elif command -v wget >/dev/null 2>&1; then wget -q -O \"$f\" {q} && sh \"$f\"; \
         else echo 'neither curl nor wget is installed on the machine; install one of them' >&2; false; fi; \
         rc=$?; rm -f \"$f\"; exit $rc"
    )
}

/// The `script` method: check `install_url` (empty: [`DEFAULT_SCRIPT_URL`]), call `prepare`
/// (e.g. install curl with the OS's package manager), then download and run the script.
/// `hint`, when not empty, is added to the error when the script fails.
pub fn install_script(
    install_url: &str,
    hint: &str,
    prepare: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let url = match install_url.trim() {
        "" => DEFAULT_SCRIPT_URL,
        u => u,
    };
    check_url("the install script URL", url)?;
    info(&format!(
        "Installing Docker Engine with the script at {url}..."
    ));
    prepare()?;
    let context = if hint.is_empty() {
        "the Docker install script failed".to_string()
    } else {
        format!("the Docker install script failed ({hint})")
    };
    run_root(&script_command(url))
        .map(drop)
        .map_err(|e| e.context(&context))
}
