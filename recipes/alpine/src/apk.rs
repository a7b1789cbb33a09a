//! Installing and upgrading Docker Engine with apk (only the docker packages; never a bare
//! `apk upgrade` of the whole system).

use dmw_guest::{
    Error, ExecOutput, LOCK_ATTEMPTS, LOCK_INTERVAL, Result, command_error, info, output_root,
    output_root_retrying, run_root_retrying,
};
/// Install docker (the engine, CLI, containerd and the OpenRC service).
pub const INSTALL: &str = "apk add --no-cache docker";
/// Upgrade docker and what it needs, nothing else.
pub const UPGRADE: &str = "apk upgrade --no-cache docker";

/// Whether apk failed because another apk holds the database lock.
pub fn lock_held(out: &ExecOutput) -> bool {
    String::from_utf8_lossy(&out.stderr).contains("Unable to lock database")
        || String::from_utf8_lossy(&out.stdout).contains("Unable to lock database")
}

/// Whether apk could not find the package in the enabled repositories.
fn no_such_package(out: &ExecOutput) -> bool {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.contains("unable to select packages")
}

/// The advice for a machine whose repositories lack docker.
pub const COMMUNITY_ADVICE: &str = "Alpine's docker package is in the community repository, \
    which is not enabled on the machine: in /etc/apk/repositories, uncomment (or add) the \
    line ending in /community for the machine's release (e.g. \
    https://dl-cdn.alpinelinux.org/alpine/v3.19/community next to .../v3.19/main), then \
    provision again";

/// Run `command` as root, retrying while the apk database is locked; the last output.
fn apk(command: &str) -> Result<ExecOutput> {
    output_root_retrying(command, LOCK_ATTEMPTS, LOCK_INTERVAL, lock_held)
}

/// The error for a failed apk `command`, explaining a missing community repository.
fn failure(command: &str, out: &ExecOutput) -> Error {
    let err = command_error(command, out);
    if no_such_package(out) {
        err.context(&format!(
            "no enabled repository of the machine has the docker package. {COMMUNITY_ADVICE}"
        ))
    } else {
        err
    }
}

/// The `distro` method: Alpine's `docker` package (community repository).
pub fn install_distro() -> Result<()> {
    info("Installing Docker Engine from the distribution's packages (docker)...");
    let out = apk(INSTALL)?;
    if out.exit_code == 0 {
        Ok(())
    } else {
        Err(failure(INSTALL, &out))
    }
}

/// Upgrade docker (and what it depends on). Fails when docker was not installed with apk.
pub fn upgrade_installed() -> Result<()> {
    if output_root("apk info -e docker")?.exit_code != 0 {
        return Err(Error::Failed(
            "the docker package is not installed with apk on the machine, so dmw cannot \
             upgrade it; upgrade the engine the way it was installed"
                .into(),
        ));
    }
    run_root_retrying(UPGRADE, LOCK_ATTEMPTS, LOCK_INTERVAL, lock_held)
        .map(drop)
        .map_err(|e| e.context("upgrading docker with apk failed"))
}
