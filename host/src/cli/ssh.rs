//! `dmw ssh`: run a command on a machine (or open a shell) over SSH.

use std::time::Duration;

use super::{CliError, CliResult};
use crate::app::App;
use crate::net::ssh::external::{find_program, ssh_args};
use crate::net::ssh::{HostKeyPolicy, Session, SshError, pty};

/// Arguments of `ssh`.
#[derive(clap::Args)]
pub struct SshArgs {
    /// Machine name
    name: Option<String>,
    /// Command to run (none: an interactive shell). A leading `-t` asks for a PTY.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Run `dmw ssh NAME [COMMAND...]`.
pub async fn run(app: &App, a: SshArgs) -> CliResult {
    let name = super::name_or_default(app, a.name)?;
    let record = app.store.load(&name)?;
    app.store.check_keys_readable(&name)?;
    let target = super::ssh_target_or_error(app, &record, "Error: Cannot run SSH command")?;
    let mut command = a.command;
    let force_pty = command.first().is_some_and(|c| c == "-t");
    if force_pty {
        command.remove(0);
    }
    let system_ssh = !app.native_ssh && find_program("ssh").is_some();
    // Docker Machine's external client took extra ssh options (`dmw ssh m -N -L 8080:…`):
    // arguments that start with an option other than `-t` go to the system ssh as they are.
    let ssh_options = command.first().is_some_and(|c| c.starts_with('-'));
    if system_shell_wanted(system_ssh, &command) {
        return system_shell(&target, app.host_key_policy(&record), &command);
    }
    if ssh_options {
        return Err(CliError::new(format!(
            "Error: ssh options ({}) need the system ssh client; install openssh-client and drop --native-ssh, or give a command",
            command[0]
        )));
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
    // Docker Machine's native client joins the arguments into one command line.
    let line = command.join(" ");
    let (cmd, want_pty) = if command.is_empty() {
        (None, true)
    } else {
        (Some(line.as_str()), force_pty)
    };
    let result = pty::run(&session, cmd, want_pty).await;
    session.close().await;
    let code = result.map_err(|e| CliError::new(format!("machine \"{name}\": {e}")))?;
    if code == 0 {
        Ok(())
    } else {
        Err(CliError {
            message: String::new(),
            code,
        })
    }
}

/// Whether the system ssh client should run: for an interactive shell, or for arguments
/// that start with ssh options — and only when it is there and `--native-ssh` is not given.
fn system_shell_wanted(system_ssh: bool, args: &[String]) -> bool {
    system_ssh && args.first().is_none_or(|a| a.starts_with('-'))
}

/// The system's ssh client with the machine's key and pinned host key, and `extra`
/// arguments after the destination (ssh options and/or a command, as Docker Machine's
/// external client passed them).
fn system_shell(t: &crate::net::ssh::Target, policy: HostKeyPolicy, extra: &[String]) -> CliResult {
    let dest = crate::net::ssh::external::destination_args(t, extra).map_err(CliError::new)?;
    let status = std::process::Command::new("ssh")
        .args(ssh_args(t, policy))
        .args(dest)
        .status()
        .map_err(|e| {
            CliError::new(format!(
                "cannot start ssh for an interactive shell: {e} (install openssh-client, or pass --native-ssh)"
            ))
        })?;
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
