//! Installing and upgrading Docker Engine with zypper, non-interactively, touching only the
//! engine's packages (never `zypper up` or `zypper dup` of the whole system).

use dmw_guest::{
    Error, ExecOutput, LOCK_ATTEMPTS, LOCK_INTERVAL, Result, command_error, info, output_root,
    output_root_retrying, warn,
};

/// zypper without questions.
const ZYPPER: &str = "zypper --non-interactive";
/// zypper's exit status when another program holds the libzypp lock (ZYPPER_EXIT_ZYPP_LOCKED).
pub const EXIT_LOCKED: i32 = 7;
/// zypper's exit status when a name matches no package (ZYPPER_EXIT_INF_CAP_NOT_FOUND).
pub const EXIT_NOT_FOUND: i32 = 104;
/// Installed, but a reboot is needed (ZYPPER_EXIT_INF_REBOOT_NEEDED).
const EXIT_REBOOT_NEEDED: i32 = 102;
/// Some repositories could not be refreshed and were skipped (ZYPPER_EXIT_INF_REPOS_SKIPPED).
const EXIT_REPOS_SKIPPED: i32 = 106;
/// Installed, but a package's %post script failed (ZYPPER_EXIT_INF_RPM_SCRIPT_FAILED).
const EXIT_SCRIPT_FAILED: i32 = 107;
/// Every engine package an upgrade may touch: SUSE's and Docker's (s390x, script) names.
const ENGINE_PACKAGES: [&str; 4] = ["docker", "docker-ce", "docker-ce-cli", "containerd.io"];

/// Run `zypper --non-interactive <args>` as root, waiting while libzypp is locked (e.g. by
/// PackageKit); the command and the output of its last run, whatever its exit status.
fn zypper(args: &str) -> Result<(String, ExecOutput)> {
    let command = format!("{ZYPPER} {args}");
    let out = output_root_retrying(&command, LOCK_ATTEMPTS, LOCK_INTERVAL, |o| {
        o.exit_code == EXIT_LOCKED
    })?;
    Ok((command, out))
}

/// `zypper refresh`: a skipped repository is a warning, anything else that fails an error.
fn refresh() -> Result<()> {
    let (command, out) = zypper("refresh")?;
    match out.exit_code {
        0 => Ok(()),
        EXIT_REPOS_SKIPPED => {
            warn("zypper could not refresh some repositories and skipped them (see `zypper repos` on the machine); continuing with the others");
            Ok(())
        }
        EXIT_LOCKED => Err(locked(&command, &out)),
        _ => Err(command_error(&command, &out).context(
            "refreshing the package repositories failed (check the machine's network and `zypper repos`)",
        )),
    }
}

/// The error for libzypp staying locked through every retry.
fn locked(command: &str, out: &ExecOutput) -> Error {
    command_error(command, out).context(&format!(
        "another program (PackageKit, YaST or zypper) kept the package manager locked for {} s; \
         wait for it to finish and provision again",
        LOCK_INTERVAL.as_secs() * u64::from(LOCK_ATTEMPTS)
    ))
}

/// Accept zypper's "succeeded, but" statuses with a warning; everything else non-zero fails.
fn check_commit(command: &str, out: &ExecOutput) -> Result<()> {
    match out.exit_code {
        0 => Ok(()),
        EXIT_REBOOT_NEEDED => {
            warn("zypper says the machine needs a reboot to complete the update");
            Ok(())
        }
        EXIT_REPOS_SKIPPED => {
            warn("zypper skipped repositories it could not refresh");
            Ok(())
        }
        EXIT_SCRIPT_FAILED => {
            warn(
                "zypper installed the packages but a package's install script failed; see the provisioning log",
            );
            Ok(())
        }
        EXIT_LOCKED => Err(locked(command, out)),
        _ => Err(command_error(command, out)),
    }
}

/// What to do when no repository offers `docker`, for this OS.
pub fn not_found_advice(id: &str) -> String {
    if matches!(id, "sles" | "sled") {
        "on SLES and SLED the docker package is in the Containers Module: enable it with \
         `SUSEConnect -p sle-module-containers/<version>/<arch>` (e.g. \
         sle-module-containers/15.6/x86_64; `SUSEConnect --list-extensions` shows the exact name), \
         then provision again"
            .into()
    } else {
        "openSUSE's docker package comes from the main OSS repository: check that it is enabled \
         with `zypper repos` on the machine (`zypper modifyrepo --enable repo-oss` enables it), \
         then provision again"
            .into()
    }
}

/// The `distro` method: SUSE's `docker` package. `id` is the OS's ID, for the advice when
/// no repository has it.
pub fn install_distro(id: &str) -> Result<()> {
    info("Installing Docker Engine from the distribution's packages (docker)...");
    refresh()?;
    let (command, out) = zypper("install docker")?;
    if out.exit_code == EXIT_NOT_FOUND {
        return Err(Error::Failed(format!(
            "no enabled repository of the machine provides the docker package (zypper: \"No \
             provider of 'docker' found.\"); {}",
            not_found_advice(id)
        )));
    }
    check_commit(&command, &out)
}

/// Upgrade whichever engine packages are installed, and only them.
pub fn upgrade_installed() -> Result<()> {
    let query = format!(
        "rpm -q --qf '%{{NAME}}\\n' {} 2>/dev/null",
        ENGINE_PACKAGES.join(" ")
    );
    let out = output_root(&query)?;
    let installed = installed_among(&String::from_utf8_lossy(&out.stdout), &ENGINE_PACKAGES);
    if installed.is_empty() {
        return Err(Error::Failed(
            "no Docker Engine package (docker, docker-ce) is installed with zypper on the \
             machine, so dmw cannot upgrade it; upgrade the engine the way it was installed"
                .into(),
        ));
    }
    refresh()?;
    let (command, out) = zypper(&format!("update {}", installed.join(" ")))?;
    check_commit(&command, &out)
}

/// The names of `packages` that `listing` (one name per line, as printed by the package
/// manager's query) shows installed. Lines that are not exactly a package name (e.g. rpm's
/// "package X is not installed") are ignored.
pub fn installed_among<'a>(listing: &str, packages: &[&'a str]) -> Vec<&'a str> {
    packages
        .iter()
        .copied()
        .filter(|p| listing.lines().any(|l| l.trim() == *p))
        .collect()
}
