//! Installing and upgrading Docker Engine with pacman, without a full system upgrade.
//!
//! Arch does not support partial upgrades: syncing the package databases (`-Sy`) and then
//! installing one package can pull in a build linked against libraries newer than the
//! installed ones. So dmw installs `docker` from the databases the machine already has
//! (`pacman -S --needed`), and syncs them (`pacman -Sy`) only when that cannot work, because
//! they are empty or so old that the mirror no longer has the package; it then warns that
//! the machine was partially upgraded and that `pacman -Syu` is the cure. dmw never runs
//! `pacman -Syu` itself: upgrading the whole system is the user's decision.

use dmw_guest::{
    Error, ExecOutput, LOCK_ATTEMPTS, LOCK_INTERVAL, Result, command_error, info, output_root,
    output_root_retrying, run_root_retrying, warn,
};

/// pacman without questions or progress bars.
const PACMAN: &str = "pacman --noconfirm --noprogressbar";

/// The text pacman printed, both streams.
fn text(out: &ExecOutput) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether pacman failed because another pacman holds /var/lib/pacman/db.lck.
pub fn lock_held(out: &ExecOutput) -> bool {
    text(out).contains("unable to lock database")
}

/// Whether the install failed because the local databases do not know the package, or name
/// a version the mirror no longer has: both are cured by syncing the databases.
pub fn needs_sync(out: &ExecOutput) -> bool {
    let t = text(out);
    t.contains("target not found")
        || t.contains("failed retrieving file")
        || t.contains("failed to retrieve some files")
}

/// Run `pacman --noconfirm --noprogressbar <args>` as root, waiting while another pacman
/// holds the database lock; the command and the output of its last run, whatever its exit
/// status.
fn pacman(args: &str) -> Result<(String, ExecOutput)> {
    let command = format!("{PACMAN} {args}");
    let out = output_root_retrying(&command, LOCK_ATTEMPTS, LOCK_INTERVAL, lock_held)?;
    Ok((command, out))
}

/// The install command: docker from the databases, skipped when already current.
const INSTALL: &str = "-S --needed docker";

/// The `distro` method: Arch's `docker` package (from [extra]).
pub fn install_distro() -> Result<()> {
    info("Installing Docker Engine from the distribution's packages (docker)...");
    let (command, out) = pacman(INSTALL)?;
    if out.exit_code == 0 {
        return Ok(());
    }
    if !needs_sync(&out) {
        return Err(failure(&command, &out));
    }
    warn(
        "the machine's pacman databases do not have a usable docker package (never synced, or \
         out of date), so dmw syncs them (pacman -Sy) and installs docker without upgrading \
         the rest of the system. Arch does not support such partial upgrades: run \
         `pacman -Syu` on the machine soon (and if docker fails to start, now, then provision \
         again).",
    );
    run_root_retrying(&format!("{PACMAN} -Sy"), LOCK_ATTEMPTS, LOCK_INTERVAL, lock_held)
        .map_err(|e| {
            e.context("syncing the package databases failed (check the machine's network and /etc/pacman.d/mirrorlist)")
        })?;
    let (command, out) = pacman(INSTALL)?;
    if out.exit_code == 0 {
        Ok(())
    } else if text(&out).contains("target not found") {
        Err(command_error(&command, &out).context(
            "no enabled repository of the machine has the docker package; Arch ships it in \
             [extra]: enable [extra] in /etc/pacman.conf and provision again",
        ))
    } else {
        Err(failure(&command, &out))
    }
}

/// The error for a failed pacman run, with a hint for a lock that never went away.
fn failure(command: &str, out: &ExecOutput) -> Error {
    let err = command_error(command, out);
    if lock_held(out) {
        err.context(
            "another pacman kept /var/lib/pacman/db.lck locked; wait for it to finish (or \
             remove the file if no pacman runs) and provision again",
        )
    } else {
        err
    }
}

/// Upgrade docker to the newest version the machine's package databases know (no sync: see
/// the module's documentation). Fails when docker was not installed with pacman.
pub fn upgrade_installed() -> Result<()> {
    let installed = output_root("pacman -Q docker")?;
    if installed.exit_code != 0 {
        return Err(Error::Failed(
            "the docker package is not installed with pacman on the machine, so dmw cannot \
             upgrade it; upgrade the engine the way it was installed"
                .into(),
        ));
    }
    let (command, out) = pacman(INSTALL)?;
    if out.exit_code != 0 {
        return Err(failure(&command, &out));
    }
    if text(&out).contains("is up to date") {
        info(
            "docker is already the newest version the machine's package databases know. dmw \
             does not sync them by itself (installing from freshly synced databases without \
             upgrading the rest is a partial upgrade, which Arch does not support): run \
             `pacman -Syu` on the machine to upgrade it, docker included, then `dmw restart`.",
        );
    }
    Ok(())
}
