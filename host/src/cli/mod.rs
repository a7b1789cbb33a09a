//! The face: Docker Machine's commands, flags and output. Each command is a thin module
//! that parses its arguments, calls one use-case and prints; [`render`] holds the output
//! formats that must match Docker Machine byte for byte, [`shell_completion`] the
//! completion scripts.

mod completion;
mod create;
mod each;
mod engine_args;
mod env;
mod image;
mod import;
mod inspect;
mod ls;
mod machine_info;
mod mount;
mod output;
mod plugin;
mod power;
mod provision;
mod recipe;
pub mod render;
mod rm;
mod scp;
pub mod shell_completion;
mod ssh;
mod store;
mod swarm;
mod swarm_args;
mod use_context;
mod version;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::state::store::Store;

/// `dmw version …, build …`
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A command's failure: the message for stderr and the exit code.
#[derive(Debug)]
pub struct CliError {
    /// What to print.
    pub message: String,
    /// Exit code (1 unless a command says otherwise).
    pub code: i32,
}

impl CliError {
    /// A failure with exit code 1.
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> CliError {
        CliError::new(format!("{e:#}"))
    }
}

impl From<crate::state::store::LoadError> for CliError {
    fn from(e: crate::state::store::LoadError) -> CliError {
        CliError::new(e.to_string())
    }
}

/// A command's result.
pub type CliResult = Result<(), CliError>;

/// `dmw_error`, worded as Docker Machine 0.16.2 worded it (`docker_machine`) when dmw runs
/// as `docker-machine`: only the text differs, never the exit code.
pub(crate) fn worded(docker_machine: impl Into<String>, dmw_error: CliError) -> CliError {
    if crate::text::personality::docker_machine() {
        CliError {
            message: docker_machine.into(),
            code: dmw_error.code,
        }
    } else {
        dmw_error
    }
}

#[derive(Parser)]
#[command(
    name = "dmw",
    about = "Create and manage Docker hosts: local VMs, cloud servers or existing Linux boxes",
    disable_version_flag = true
)]
struct Cli {
    /// Configures storage path
    #[arg(short = 's', long, env = crate::state::store::STORAGE_ENV, global = true, value_name = "PATH")]
    storage_path: Option<PathBuf>,
    /// Enable debug mode (plugin and SSH detail on stderr)
    #[arg(short = 'D', long, global = true)]
    debug: bool,
    /// Print the version
    #[arg(short = 'v', long)]
    version: bool,
    /// Use the native (Rust) SSH implementation for interactive shells
    #[arg(long, env = "MACHINE_NATIVE_SSH", global = true)]
    native_ssh: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print which machine is active
    Active(machine_info::ActiveArgs),
    /// Print the shell completion script (bash, zsh, fish, powershell), with `__dmw_ps1` for bash and zsh
    Completion(completion::CompletionArgs),
    /// Print the connection config for machine
    Config(env::ConfigArgs),
    /// Create a machine (run `dmw create --driver NAME --help` for the driver's flags)
    #[command(disable_help_flag = true)]
    Create(create::CreateArgs),
    /// Display the commands to set up the environment for the Docker client
    Env(env::EnvArgs),
    /// Adopt the generic and none machines of a Docker Machine store (no re-provisioning)
    Import(import::ImportArgs),
    /// Local VM images: build one (`image build`), empty the download cache (`image prune`)
    Image(image::ImageArgs),
    /// Share the machine store with a team (s3://…, etcd://…): use, init, unlock, push, recipients
    Store(store::StoreArgs),
    /// Inspect information about a machine
    Inspect(inspect::InspectArgs),
    /// Get the IP address of one or more machines
    Ip(machine_info::NamesArgs),
    /// Kill (abruptly force stop) a machine
    Kill(power::PowerArgs),
    /// List machines
    Ls(ls::LsArgs),
    /// Mount or unmount a directory from a machine with SSHFS
    Mount(mount::MountArgs),
    /// Re-run provisioning on existing machines, with their stored options
    Provision(provision::ReprovisionArgs),
    /// Inspect a plugin's permissions, approve plugin files (`plugin inspect|install|ls|rm`)
    Plugin(plugin::PluginArgs),
    /// List install recipes, or show what one would run (`recipe plan`)
    Recipe(recipe::RecipeArgs),
    /// Regenerate TLS Certificates for a machine
    RegenerateCerts(provision::RegenerateArgs),
    /// Restart a machine
    Restart(power::PowerArgs),
    /// Remove a machine
    Rm(rm::RmArgs),
    /// Copy files between machines
    Scp(scp::ScpArgs),
    /// Log into or run a command on a machine with SSH
    Ssh(ssh::SshArgs),
    /// Start a machine
    Start(power::PowerArgs),
    /// Get the status of a machine
    Status(machine_info::NameOutputArgs),
    /// Stop a machine
    Stop(power::PowerArgs),
    /// Docker Swarm mode on machines (`swarm init|join|leave|ls`)
    Swarm(swarm::SwarmArgs),
    /// Upgrade a machine's Docker engine through its recipe
    Upgrade(provision::ProvisionArgs),
    /// Get the URL of a machine
    Url(machine_info::NameArgs),
    /// Point the docker CLI at a machine (its docker context), or back with -u
    Use(use_context::UseArgs),
    /// Show the dmw version or a machine's Docker version
    Version(machine_info::NameOutputArgs),
}

/// The command line definition, named as the program was invoked (`dmw`, `docker-machine`),
/// with Docker Machine's help layout under the docker-machine personality.
fn cli_command() -> clap::Command {
    let name = crate::text::personality::name();
    let cmd = <Cli as clap::CommandFactory>::command()
        .name(name)
        .bin_name(name);
    if !crate::text::personality::docker_machine() {
        return cmd;
    }
    let app_help = render::urfave_help::app_help(name, &version::version_number(), &cmd);
    cmd.override_help(app_help).mut_subcommands(|sub| {
        if sub.has_subcommands() {
            // Docker Machine had no nested commands: clap's options under its usage line.
            let template = command_help_template(sub.get_name());
            sub.help_template(template)
        } else {
            let help =
                render::urfave_help::command_help(crate::text::personality::name(), &sub, false);
            sub.override_help(help)
        }
    })
}

/// Docker Machine's layout of a command's help (urfave/cli's `CommandHelpTemplate`): the
/// usage line, a blank line, then the description and the options.
fn command_help_template(command: &str) -> String {
    format!(
        "Usage: {} {command} [OPTIONS] [arg...]\n\n{{about}}\n\nOptions:\n{{options}}\n",
        crate::text::personality::name()
    )
}

/// Print the help of subcommand `name` on stdout (as a command given too few arguments
/// does in Docker Machine, before its error).
pub(crate) fn print_command_help(name: &str) {
    let mut cmd = cli_command();
    cmd.build();
    if let Some(sub) = cmd.find_subcommand_mut(name) {
        let _ = sub.print_help();
    }
}

/// Run the CLI with the process's arguments; returns the exit code.
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().collect();
    crate::text::personality::init(crate::text::personality::Personality::from_invocation(
        args.first().map(String::as_str).unwrap_or_default(),
        std::env::var(crate::text::personality::COMPAT_ENV)
            .ok()
            .as_deref(),
    ));
    let mut command_name = String::new();
    let cli = match cli_command().try_get_matches_from(&args).and_then(|m| {
        command_name = match m.subcommand() {
            // `store use` chooses the store: it never opens the one configured before.
            Some(("store", sub)) if sub.subcommand_name() == Some("use") => "store use".into(),
            Some((name, _)) => name.to_string(),
            None => String::new(),
        };
        <Cli as clap::FromArgMatches>::from_arg_matches(&m)
    }) {
        Ok(c) => c,
        Err(e) => {
            if e.kind() == clap::error::ErrorKind::InvalidSubcommand
                && crate::text::personality::docker_machine()
                && let Some(clap::error::ContextValue::String(cmd)) =
                    e.get(clap::error::ContextKind::InvalidSubcommand)
            {
                eprintln!(
                    "docker-machine: '{}' is not a docker-machine command. See 'docker-machine --help'.",
                    crate::text::sanitize::stored_text(cmd)
                );
                return 1;
            }
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    if cli.version {
        println!("{}", version::version_line());
        return 0;
    }
    let Some(command) = cli.command else {
        let _ = cli_command().print_help();
        return 0;
    };
    let store = match open_store(cli.storage_path, &command_name) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e:#}");
            return 1;
        }
    };
    let mut app = App::new(store, cli.debug);
    app.native_ssh = cli.native_ssh;
    let result = match command {
        // Commands that need no async runtime stay on the fast path.
        Command::Ip(a) => machine_info::ip(&app, a),
        Command::Url(a) => machine_info::url(&app, a),
        Command::Inspect(a) => inspect::run(&app, a),
        Command::Use(a) => use_context::run(&app, a),
        Command::Completion(a) => completion::run(a),
        Command::Mount(a) => mount::run(&app, a),
        Command::Image(a) => image::run(&app, a),
        other => match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(run_async(&app, other, &args)),
            Err(e) => Err(CliError::new(format!(
                "cannot start the async runtime: {e}"
            ))),
        },
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            if !e.message.is_empty() {
                // Errors may quote plugin text: no line of it may reach the terminal raw.
                let lines: Vec<String> = e
                    .message
                    .split('\n')
                    .map(|l| {
                        crate::text::personality::localize(&crate::text::sanitize::stored_text(l))
                    })
                    .collect();
                eprintln!("{}", lines.join("\n"));
            }
            e.code
        }
    }
}

/// The store: `--storage-path`/`DMW_STORAGE_PATH` (a directory or a shared store's URL),
/// else the URL `dmw store use` chose, else `~/.dmw`; a shared store's locks are waited for
/// `DMW_LOCK_TIMEOUT` seconds (default 0: a busy machine fails at once, naming its holder).
fn open_store(storage_path: Option<PathBuf>, command: &str) -> anyhow::Result<Store> {
    let location = match storage_path.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_string_lossy().into_owned(),
        None => match crate::state::store::shared::configured() {
            Some(url) if command != "store use" => url,
            _ => Store::default_root()?.to_string_lossy().into_owned(),
        },
    };
    let wait = std::env::var("DMW_LOCK_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Store::open(&location, command, std::time::Duration::from_secs(wait))
}

async fn run_async(app: &App, command: Command, argv: &[String]) -> CliResult {
    match command {
        Command::Active(a) => machine_info::active(app, a).await,
        Command::Config(a) => env::config(app, a).await,
        Command::Create(a) => create::run(app, a).await,
        Command::Env(a) => env::env(app, a, argv).await,
        Command::Import(a) => import::run(app, a).await,
        Command::Ls(a) => ls::run(app, a).await,
        Command::Kill(a) => power::run(app, crate::usecase::power::Action::Kill, a).await,
        Command::Provision(a) => provision::run(app, a).await,
        Command::RegenerateCerts(a) => provision::regenerate_certs(app, a).await,
        Command::Restart(a) => power::run(app, crate::usecase::power::Action::Restart, a).await,
        Command::Plugin(a) => plugin::run(app, a).await,
        Command::Recipe(a) => recipe::run(app, a).await,
        Command::Rm(a) => rm::run(app, a).await,
        Command::Scp(a) => scp::run(app, a).await,
        Command::Ssh(a) => ssh::run(app, a).await,
        Command::Start(a) => power::run(app, crate::usecase::power::Action::Start, a).await,
        Command::Status(a) => machine_info::status(app, a).await,
        Command::Stop(a) => power::run(app, crate::usecase::power::Action::Stop, a).await,
        Command::Swarm(a) => swarm::run(app, a).await,
        Command::Store(a) => store::run(app, a).await,
        Command::Upgrade(a) => provision::upgrade(app, a).await,
        Command::Version(a) => version::run(app, a).await,
        Command::Ip(_)
        | Command::Url(_)
        | Command::Inspect(_)
        | Command::Use(_)
        | Command::Completion(_)
        | Command::Mount(_)
        | Command::Image(_) => Ok(()),
    }
}

/// The machine a single-name command works on: the given name, else `default` if it exists.
pub(crate) fn name_or_default(app: &App, name: Option<String>) -> Result<String, CliError> {
    match name {
        Some(n) => Ok(n),
        None if app.store.exists("default") => Ok("default".into()),
        None => Err(CliError::new(
            "Error: No machine name(s) specified and no \"default\" machine exists",
        )),
    }
}

/// Ask `question` on stdout and read the answer: any answer starting with y or Y is yes
/// (Docker Machine's prompts).
pub(crate) fn confirm(question: &str) -> bool {
    use std::io::{BufRead, Write};
    print!("{question} (y/n): ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    line.trim_start().starts_with(['y', 'Y'])
}

/// Ask `question` and whether the answer is exactly `phrase` (a weightier yes).
pub(crate) fn confirm_phrase(question: &str, phrase: &str) -> bool {
    use std::io::{BufRead, Write};
    print!("{question}: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    line.trim().eq_ignore_ascii_case(phrase)
}

/// The SSH target of a machine, or the error saying why it has none (a none-driver
/// machine, or a create that did not get that far); `what` starts the message.
pub(crate) fn ssh_target_or_error(
    app: &App,
    record: &crate::state::store::MachineRecord,
    what: &str,
) -> Result<crate::net::ssh::Target, CliError> {
    if let Some(why) = record.no_ssh_reason() {
        return Err(CliError::new(format!("{what}: {why}")));
    }
    app.ssh_target(record).ok_or_else(|| {
        CliError::new(format!(
            "{what}: machine \"{0}\" has no address yet; finish `dmw create` or remove it with `dmw rm {0}`",
            record.name
        ))
    })
}

/// The machines a multi-name command works on.
pub(crate) fn names_or_default(app: &App, names: Vec<String>) -> Result<Vec<String>, CliError> {
    if names.is_empty() {
        Ok(vec![name_or_default(app, None)?])
    } else {
        Ok(names)
    }
}
