//! `dmw completion SHELL`: print the shell's completion script (and, for bash and zsh,
//! the `__dmw_ps1` prompt helper).

use clap::CommandFactory;

use super::{Cli, CliError, CliResult};

/// Arguments of `completion`.
#[derive(clap::Args)]
pub struct CompletionArgs {
    /// Shell to complete for: bash, zsh, fish or powershell
    #[arg(value_parser = ["bash", "zsh", "fish", "powershell"])]
    shell: String,
}

/// Run `dmw completion`.
pub fn run(a: CompletionArgs) -> CliResult {
    // Completion for the program file that ran (a `docker-machine` link completes, and
    // lists machines with, `docker-machine`); not for a DMW_COMPAT alias, which the
    // script could not call.
    let bin = crate::text::personality::Personality::from_invocation(
        &crate::text::personality::current().argv0,
        None,
    )
    .name;
    let mut cmd = Cli::command();
    let script =
        crate::cli::shell_completion::script(&a.shell, &mut cmd, &bin).map_err(CliError::new)?;
    print!("{script}");
    Ok(())
}
