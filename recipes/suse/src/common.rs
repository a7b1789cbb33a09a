//! Steps shared by the suse, arch and alpine recipes; arch and alpine include this file with
//! `#[path]`. Everything here is init- and package-manager-neutral, so it belongs in
//! dmw-guest (see the report that came with it); until then it lives once, here.

use dmw_guest::{Error, Result, engine, info, run_root, sh_quote, status_root, store, warn};

/// Store key: the TLS port the engine was configured with (for `restart-engine`).
pub const PORT_KEY: &str = "engine-port";
/// The engine port used when none was stored.
pub const DEFAULT_PORT: u16 = 2376;
/// Docker's install script, the default for the `script` method.
pub const DEFAULT_SCRIPT_URL: &str = "https://get.docker.com";

/// The engine's dockerd path, or an error telling the user to install it first.
pub fn require_dockerd() -> Result<String> {
    engine::find_dockerd()?.ok_or_else(|| {
        Error::Failed(
            "Docker Engine (dockerd) is not installed on the machine: it is not in PATH, \
             /usr/bin, /usr/sbin or /usr/local/bin. Install it, or choose an install method \
             other than `none`."
                .into(),
        )
    })
}

/// dockerd's path after an installer ran, or an error saying the installer left none.
pub fn installed_dockerd() -> Result<String> {
    let path = engine::find_dockerd()?.ok_or_else(|| {
        Error::Failed(
            "the installation finished but dockerd is still not found on the machine; \
             see the provisioning log for the installer's output"
                .into(),
        )
    })?;
    info(&format!("Docker Engine installed ({path})"));
    Ok(path)
}

/// Fail when /etc/docker/daemon.json sets `hosts`, which dockerd refuses next to `-H` flags.
pub fn check_daemon_json() -> Result<()> {
    let conflict = "[ -f /etc/docker/daemon.json ] && grep -q '\"hosts\"' /etc/docker/daemon.json";
    if status_root(conflict)? {
        return Err(Error::Failed(
            "/etc/docker/daemon.json on the machine sets \"hosts\", which conflicts with the \
             -H flags dmw gives dockerd; remove \"hosts\" from that file and provision again"
                .into(),
        ));
    }
    Ok(())
}

/// Reject URLs that are not plain http(s) URLs.
pub fn check_url(what: &str, url: &str) -> Result<()> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} {url:?} must be an http:// or https:// URL without spaces"
        )))
    }
}

/// The `script` method: download the script at `install_url` (default get.docker.com) with
/// curl, or busybox/GNU wget when curl is missing, into a file, then run it with sh (never
/// `curl | sh`). `hint` is added to the error when the script fails.
pub fn install_script(install_url: &str, hint: &str) -> Result<()> {
    let url = match install_url.trim() {
        "" => DEFAULT_SCRIPT_URL,
        u => u,
    };
    check_url("the install script URL", url)?;
    info(&format!(
        "Installing Docker Engine with the script at {url}..."
    ));
    let q = sh_quote(url);
    run_root(&format!(
        "f=$(mktemp /tmp/dmw-install-docker.XXXXXX) || exit 1; \
         if command -v curl >/dev/null 2>&1; then curl -fsSL {q} -o \"$f\"; \
         elif command -v wget >/dev/null 2>&1; then wget -q -O \"$f\" {q}; \
         else echo 'neither curl nor wget is installed on the machine; install one of them' >&2; false; fi \
         && sh \"$f\"; rc=$?; rm -f \"$f\"; exit $rc"
    ))
    .map(drop)
    .map_err(|e| e.context(&format!("the Docker install script failed ({hint})")))
}

/// The port the engine was configured with (from the store), else `default`.
pub fn stored_port(default: u16) -> Result<u16> {
    let port = store::get_or(PORT_KEY, default)?;
    if port == 0 {
        warn(&format!(
            "the stored engine port is 0; using {DEFAULT_PORT}"
        ));
        return Ok(DEFAULT_PORT);
    }
    Ok(port)
}
