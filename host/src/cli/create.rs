//! `dmw create`: the driver's flags join the command line, then the provisioning pipeline runs.

use std::collections::BTreeSet;
use std::sync::Arc;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::engine_args::EngineArgs;
use super::swarm_args::SwarmCreateArgs;
use super::worded;
use super::{CliError, CliResult};
use crate::app::App;
use crate::sandbox::plugin::driver::{Flag, FlagKind, FlagValue};
use crate::sandbox::plugin::{Kind, Source};
use crate::text::report::Reporter;
use crate::usecase::provision::{self, CreateFailure, Left, NewMachine};
use clap::{Args as _, FromArgMatches as _};

/// Raw arguments: parsed in a second pass once the driver's flags are known.
#[derive(clap::Args)]
pub struct CreateArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<String>,
}

/// Find `--driver`/`-d` before full parsing, as Docker Machine does.
fn driver_arg(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--driver" || a == "-d" {
            return it.next().cloned();
        }
        if let Some(v) = a
            .strip_prefix("--driver=")
            .or_else(|| a.strip_prefix("-d="))
        {
            return Some(v.to_string());
        }
    }
    ["DMW_DRIVER", "MACHINE_DRIVER"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}

/// The machine name as far as it can be known before parsing (the last bare word that
/// is not a flag's value), for early error messages.
fn name_hint(args: &[String]) -> &str {
    match args {
        [.., prev, last]
            if !last.starts_with('-') && (!prev.starts_with('-') || prev.contains('=')) =>
        {
            last
        }
        [last] if !last.starts_with('-') => last,
        _ => "",
    }
}

fn list(id: &'static str, help: &'static str) -> Arg {
    Arg::new(id)
        .long(id)
        .help(help)
        .action(ArgAction::Append)
        .value_name("VALUE")
}

fn command(driver_flags: &[Flag]) -> Command {
    let mut cmd = Command::new("create")
        .bin_name(format!("{} create", crate::text::personality::name()))
        .arg(Arg::new("name").value_name("NAME").help("Machine name"))
        // Refused with Docker Machine's message rather than clap's (scripts match it).
        .arg(
            Arg::new("extra")
                .num_args(1..)
                .action(ArgAction::Append)
                .hide(true),
        )
        .arg(
            Arg::new("driver")
                .short('d')
                .long("driver")
                .value_name("DRIVER")
                .help("Driver to create machine with: a built-in name (generic, none) or a path to a .wasm driver")
                .env("DMW_DRIVER"),
        )
        .arg(Arg::new("recipe").long("recipe")
                .value_name("RECIPE").help("Install recipe to use instead of detecting one: a built-in name or a path to a .wasm recipe"))
        .arg(list("tls-san", "Support extra SANs for TLS certs"))
        .arg(
            Arg::new("no-docker-context")
                .long("no-docker-context")
                .action(ArgAction::SetTrue)
                .help("Do not write a docker context for the machine (`docker --context NAME`)"),
        )
        .arg(
            Arg::new("no-provision")
                .long("no-provision")
                .action(ArgAction::SetTrue)
                .help("Only create the machine at the provider: no SSH wait, no Docker install (`dmw provision NAME` finishes it later)"),
        );
    cmd = EngineArgs::augment_args(cmd);
    cmd = SwarmCreateArgs::augment_args(cmd);
    for f in driver_flags {
        let mut arg = Arg::new(f.name.clone())
            .long(f.name.clone())
            .help(f.usage.clone())
            .value_name("VALUE")
            .hide_env_values(true);
        arg = match f.kind {
            FlagKind::Boolean => arg.action(ArgAction::SetTrue),
            FlagKind::TextList => arg.action(ArgAction::Append),
            FlagKind::Integer => arg.value_parser(clap::value_parser!(i64)),
            FlagKind::Text => arg,
        };
        if let Some(env) = &f.env_var {
            arg = arg.env(env.clone());
        }
        if let Some(d) = &f.default
            && f.kind != FlagKind::Boolean
            && !d.is_empty()
        {
            arg = arg.default_value(d.clone());
        }
        cmd = cmd.arg(arg);
    }
    // Last: a flattened `clap::Args` struct's doc comment sets the command's `about`, so
    // set earlier it would be replaced by the swarm flags' doc.
    cmd = cmd.about("Create a machine");
    if crate::text::personality::docker_machine() {
        // Docker Machine sorted create's flags by name, the driver's among the shared ones.
        let help =
            super::render::urfave_help::command_help(crate::text::personality::name(), &cmd, true);
        cmd = cmd.override_help(help);
    }
    cmd
}

fn strings(m: &ArgMatches, id: &str) -> Vec<String> {
    m.get_many::<String>(id)
        .map(|v| v.cloned().collect())
        .unwrap_or_default()
}

fn flag_values(m: &ArgMatches, flags: &[Flag]) -> Vec<FlagValue> {
    flags
        .iter()
        .map(|f| {
            let values = match f.kind {
                FlagKind::Boolean => vec![m.get_flag(&f.name).to_string()],
                FlagKind::Integer => m
                    .get_one::<i64>(&f.name)
                    .map(|v| vec![v.to_string()])
                    .unwrap_or_default(),
                FlagKind::Text | FlagKind::TextList => strings(m, &f.name),
            };
            FlagValue {
                name: f.name.clone(),
                values,
            }
        })
        .collect()
}

/// What `dmw create` says when no driver was given and QEMU (the default) is missing.
const NO_QEMU: &str = "no --driver given, and the default driver, qemu (a local VM), needs qemu-system-x86_64 and qemu-img, which are not installed: install them (Debian/Ubuntu: `sudo apt-get install qemu-system-x86 qemu-utils`), or pass a driver, e.g. --driver generic --generic-ip-address HOST for a machine you already have. Nothing was created";

/// The names of the driver's flags whose values the user gave (not the driver's
/// defaults): on the command line, or in the environment variable the driver declared for
/// the flag. Decided here once; file flags, `{flag}` hosts, the CA bundle and the SSH key
/// path are taken only from these.
fn typed_flags(m: &ArgMatches, flags: &[Flag]) -> BTreeSet<String> {
    use clap::parser::ValueSource;
    flags
        .iter()
        .filter(|f| {
            matches!(
                m.value_source(&f.name),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        })
        .map(|f| f.name.clone())
        .collect()
}

fn create_error(name: &str, step: &str, message: impl std::fmt::Display) -> CliError {
    CliError::new(format!(
        "Error creating machine \"{name}\": {step} failed: {message}"
    ))
}

/// Run `dmw create`.
pub async fn run(app: &App, a: CreateArgs) -> CliResult {
    let report = Arc::new(Reporter::new(app.debug));
    // The default driver only for a create with arguments (not `create` alone, which
    // prints the help).
    let driver_name = driver_arg(&a.args).or_else(|| {
        provision::default_driver()
            .filter(|_| !a.args.is_empty())
            .map(str::to_string)
    });
    let mut loaded = None;
    let mut flags = Vec::new();
    if let Some(d) = &driver_name {
        let l = provision::load_driver(app, d, report.clone())
            .await
            .map_err(|f| {
                let dmw_error =
                    create_error(name_hint(&a.args), "load driver", format!("{:#}", f.error));
                if f.unknown {
                    worded(
                        format!(
                            "Driver \"{d}\" not found. Do you have the plugin binary \"docker-machine-driver-{d}\" accessible in your PATH?"
                        ),
                        dmw_error,
                    )
                } else {
                    dmw_error
                }
            })?;
        flags = l.flags.clone();
        loaded = Some(l);
    }
    let argv = std::iter::once(format!("{} create", crate::text::personality::name()))
        .chain(a.args.iter().cloned());
    let m = match command(&flags).try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Err(CliError {
                    message: String::new(),
                    code: 1,
                })
            } else {
                Ok(())
            };
        }
    };
    let Some(name) = m.get_one::<String>("name").cloned() else {
        let _ = command(&flags).print_help();
        return Err(CliError::new("Error: No machine name specified"));
    };
    let extra = strings(&m, "extra");
    if !extra.is_empty() {
        let found = format!("[{}]", extra.join(" "));
        return Err(worded(
            format!("Invalid command line. Found extra arguments {found}"),
            CliError::new(format!(
                "Invalid command line: found extra arguments {found}; create takes one machine name, after its flags"
            )),
        ));
    }
    crate::text::names::validate(&name).map_err(|e| {
        worded(
            format!("Error creating machine: {e}"),
            create_error(&name, "validate name", e),
        )
    })?;
    let Some(loaded) = loaded else {
        return Err(CliError {
            code: 3,
            ..create_error(&name, "load driver", NO_QEMU)
        });
    };
    if app.store.exists(&name) {
        return Err(worded(
            format!("Docker machine \"{name}\" already exists"),
            create_error(&name, "check name", exists_message(app, &name)),
        ));
    }
    let recipe = match m.get_one::<String>("recipe") {
        Some(r) => Some(
            Source::from_arg(r, Kind::Recipe)
                .map_err(|e| create_error(&name, "load recipe", format!("{e:#}")))?,
        ),
        None => None,
    };
    let engine = EngineArgs::from_arg_matches(&m)
        .map_err(|e| create_error(&name, "read engine flags", e))?
        .options();
    let swarm_args = SwarmCreateArgs::from_arg_matches(&m)
        .map_err(|e| create_error(&name, "read swarm flags", e))?;
    let swarm_plan = swarm_args
        .plan()
        .map_err(|e| create_error(&name, "read swarm flags", e))?;
    if let Some(warning) = swarm_args.ignored_warning() {
        report.warn(&warning);
    }
    let flags_values = flag_values(&m, &flags);
    let typed = typed_flags(&m, &flags);
    let no_provision = m.get_flag("no-provision");
    let request = NewMachine {
        name: name.clone(),
        driver_source: loaded.source,
        driver: loaded.driver,
        flags,
        values: flags_values,
        typed,
        recipe,
        engine,
        tls_sans: strings(&m, "tls-san"),
        no_provision,
        docker_context: !m.get_flag("no-docker-context"),
        swarm: swarm_plan,
    };
    provision::new_machine(app, request)
        .await
        .map_err(|f| failed(&name, f))
}

/// What create prints when it fails: the step and why, then what is left and the way on.
fn failed(name: &str, f: CreateFailure) -> CliError {
    let next = match &f.left {
        Left::Untouched => None,
        Left::Pipeline {
            kept: Some(record),
            log,
            ..
        } => Some(format!(
            "The machine record was kept with this error: `dmw ls` shows it, {}`dmw rm {name}` removes it; the log is {}",
            resume_hint(record),
            log.display()
        )),
        Left::Pipeline {
            kept: None,
            store_full: true,
            ..
        } => Some(
            "Nothing was created and nothing was kept: the store's file system is full; free space there (or use another store, -s/DMW_STORAGE_PATH) and run the command again."
                .to_string(),
        ),
        Left::Pipeline { kept: None, .. } => Some(
            "Nothing was created and nothing was kept: correct the command and run it again."
                .to_string(),
        ),
        Left::OutsideSwarm { retry } => Some(format!(
            "The machine was created and is ready, outside any swarm; `{retry}` tries again."
        )),
    };
    let mut message = format!(
        "Error creating machine \"{name}\": {} failed: {}",
        f.step, f.message
    );
    if let Some(next) = next {
        message = format!("{message}\n{next}");
    }
    CliError {
        message,
        code: f.exit_code,
    }
}

/// Why `name` cannot be created again: it exists — being created right now, or kept from a
/// create that failed (then: at which step, and the two ways on), or a working machine.
fn exists_message(app: &App, name: &str) -> String {
    let exists = format!("Docker machine \"{name}\" already exists");
    if app.store.is_locked(name) {
        return format!("{exists}: another dmw command is working on it right now");
    }
    let Ok(record) = app.store.load(name) else {
        return format!("{exists}; `dmw rm {name}` removes what is left of it");
    };
    match (&record.status, &record.error) {
        (crate::state::store::MachineStatus::Unprovisioned, _) => format!(
            "{exists}: it was created with --no-provision; `dmw provision {name}` provisions it, `dmw rm {name}` removes it"
        ),
        (crate::state::store::MachineStatus::Error, Some(err)) => format!(
            "{exists}: its create failed at step \"{}\" ({}). {}`dmw rm {name}` removes it so that create can start over",
            err.step,
            first_line(&err.message),
            resume_hint(&record)
        ),
        _ => exists,
    }
}

/// "`dmw provision NAME` resumes it, " when the failed machine can be resumed (its endpoint
/// is known and dmw provisions it), else nothing.
fn resume_hint(record: &crate::state::store::MachineRecord) -> String {
    if record.endpoint.is_some() && !record.engine_only {
        format!(
            "`dmw provision {}` resumes it from where it stopped, ",
            record.name
        )
    } else {
        String::new()
    }
}

/// The first line of a stored message, for a one-line hint.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::plugin::declaration::Declaration;
    use crate::sandbox::plugin::flag_policy;
    use proptest::prelude::*;

    /// Pieces of driver names, flag names and arguments, so that most generated flags pass
    /// the policy and most arguments name a flag.
    const WORDS: &[&str] = &[
        "acme",
        "no",
        "tls",
        "engine",
        "swarm",
        "docker",
        "context",
        "provision",
        "san",
        "url",
        "driver",
        "recipe",
        "-",
        "x",
        "1",
        "help",
        "version",
        "d",
        "opt",
        "debug",
        "s",
    ];

    fn word_text(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(WORDS), 1..max).prop_map(|v| v.concat())
    }

    fn kind() -> impl Strategy<Value = FlagKind> {
        prop_oneof![
            Just(FlagKind::Text),
            Just(FlagKind::Boolean),
            Just(FlagKind::Integer),
            Just(FlagKind::TextList),
        ]
    }

    /// A flag of `driver`: most names start with the driver's name and most environment
    /// variables with its prefix, as the policy asks.
    fn flag(driver: String) -> impl Strategy<Value = Flag> {
        let prefix = flag_policy::env_prefix(&driver);
        let upper = |w: String| w.to_ascii_uppercase().replace('-', "_");
        (
            prop_oneof![
                3 => word_text(3).prop_map(move |w| format!("{driver}-{w}")),
                1 => word_text(4),
            ],
            any::<String>(),
            kind(),
            prop::option::of(prop_oneof![word_text(3), any::<String>()]),
            prop_oneof![
                2 => Just(None),
                2 => word_text(3).prop_map(move |w| Some(format!("{prefix}{}", upper(w)))),
                1 => word_text(3).prop_map(move |w| Some(upper(w))),
            ],
        )
            .prop_map(|(name, usage, kind, default, env_var)| Flag {
                name,
                usage,
                kind,
                default,
                env_var,
            })
    }

    fn argument() -> impl Strategy<Value = String> {
        prop_oneof![
            word_text(4).prop_map(|w| format!("--{w}")),
            word_text(4).prop_map(|w| format!("--{w}=")),
            word_text(3),
            any::<String>(),
        ]
    }

    proptest! {
        /// Whatever flags a driver declares, the ones the policy lets through never break
        /// create's command line: no clap panic (two flags of one name, a flag that is
        /// dmw's own), whatever the user then types. The policy itself never panics.
        #[test]
        fn driver_flags_the_policy_accepts_never_break_the_parser(
            (driver, flags) in word_text(3).prop_flat_map(|d| {
                (Just(d.clone()), prop::collection::vec(flag(d), 0..6))
            }),
            argv in prop::collection::vec(argument(), 0..8),
        ) {
            let declared = Declaration::default();
            if flag_policy::check(&driver, &flags, false, &declared).is_ok() {
                let args = std::iter::once("create".to_string()).chain(argv);
                let _ = command(&flags).try_get_matches_from(args);
                let _ = command(&flags).render_help();
            }
        }
    }

    /// Every flag of dmw's own create command is one no driver may declare: a driver flag
    /// of the same name would make two arguments of one name.
    #[test]
    fn every_create_flag_is_reserved_from_drivers() {
        let cmd = command(&[]);
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    flag_policy::is_reserved(long),
                    "--{long} is create's own but a driver may declare it"
                );
            }
        }
    }
}
