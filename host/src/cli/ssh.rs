//! `dmw ssh`: run a command on a machine (or open a shell) over SSH.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use super::{CliError, CliResult};
use crate::app::App;
use crate::ssh::{HostKeyPolicy, Session, SshError, sh_quote};

/// Arguments of `ssh`.
#[derive(clap::Args)]
pub struct SshArgs {
    /// Machine name
    name: Option<String>,
    /// Command to run (none: an interactive shell)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Run `dmw ssh NAME [COMMAND...]`.
pub async fn run(app: &App, a: SshArgs) -> CliResult {
    let name = super::name_or_default(app, a.name)?;
    let record = app.store.load(&name)?;
    if let Some(why) = record.no_ssh_reason() {
        return Err(CliError::new(format!(
            "Error: Cannot run SSH command: {why}"
        )));
    }
    let Some(target) = app.ssh_target(&record) else {
        return Err(CliError::new(format!(
            "Error: Cannot run SSH command: machine \"{name}\" has no address yet"
        )));
    };
    if a.command.is_empty() {
        let first_use = app.host_key_policy(&record) == HostKeyPolicy::TrustOnFirstUse;
        return interactive(&target, first_use);
    }
    let session = Session::connect(
        &target,
        app.host_key_policy(&record),
        Duration::from_secs(20),
    )
    .await
    .map_err(|e| match e {
        SshError::Unreachable { .. } => CliError::new(format!(
            "Error: Cannot run SSH command: Host \"{name}\" is not running ({e})"
        )),
        e => CliError::new(format!("Error: Cannot run SSH command on \"{name}\": {e}")),
    })?;
    let session = Arc::new(session);
    // Docker Machine's native client joins the arguments into one command line.
    let out = session
        .exec(&a.command.join(" "))
        .await
        .map_err(|e| CliError::new(format!("machine \"{name}\": {e}")))?;
    let _ = std::io::stdout().write_all(&out.stdout);
    let _ = std::io::stderr().write_all(&out.stderr);
    session.close().await;
    if out.code == 0 {
        Ok(())
    } else {
        Err(CliError {
            message: String::new(),
            code: if out.code < 0 { 255 } else { out.code },
        })
    }
}

/// An interactive shell through the system's ssh client, with the machine's key and pinned
/// host key (`first_use`: an imported machine's key is not pinned yet, pin it now).
fn interactive(t: &crate::ssh::Target, first_use: bool) -> CliResult {
    let strict = if first_use {
        "StrictHostKeyChecking=accept-new"
    } else {
        "StrictHostKeyChecking=yes"
    };
    let status = std::process::Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "IdentitiesOnly=yes", "-o", strict, "-o", "LogLevel=quiet"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", sh_quote(&t.known_hosts.display().to_string())))
        .arg("-i")
        .arg(&t.key_path)
        .arg("-p")
        .arg(t.port.to_string())
        .arg(format!("{}@{}", t.user, t.address))
        .status()
        .map_err(|e| CliError::new(format!("cannot start ssh for an interactive shell: {e} (install openssh-client, or pass a command)")))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(c) => Err(CliError {
            message: String::new(),
            code: c,
        }),
        None => Err(CliError {
            message: String::new(),
            code: 255,
        }),
    }
}
