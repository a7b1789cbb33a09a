//! `dmw create`: the driver's flags join the command line, then the provisioning pipeline runs.

use std::collections::BTreeSet;
use std::sync::Arc;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::engine_args::EngineArgs;
use super::swarm_args::{SwarmCreateArgs, SwarmPlan};
use super::worded;
use super::{CliError, CliResult};
use crate::app::App;
use crate::plugin::driver::{Flag, FlagKind, FlagValue};
use crate::plugin::{Kind, Source};
use crate::provision::{self, CreateRequest};
use crate::report::Reporter;
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
        .bin_name(format!("{} create", crate::personality::name()))
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
    if crate::personality::docker_machine() {
        cmd = cmd.help_template(super::command_help_template("create"));
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

/// The driver `create` uses when none is given: `qemu` when its programs are installed
/// (none otherwise: create then says what to install). Not for `--help` alone.
fn default_driver(args: &[String]) -> Option<String> {
    let programs = ["qemu-system-x86_64", "qemu-img"];
    programs
        .iter()
        .all(|p| crate::capabilities::process::which(p).is_some())
        .then(|| "qemu".to_string())
        .filter(|_| !args.is_empty())
}

/// A driver installed under `name` (`dmw plugin install`): its file, whose bytes must be
/// the very ones approved (same sha256, checked on the bytes that are loaded), whatever it
/// asks for.
fn installed_driver(app: &App, name: &str) -> Option<anyhow::Result<Source>> {
    if name.contains('/')
        || name.ends_with(".wasm")
        || crate::plugin::builtin::driver(name).is_some()
    {
        return None;
    }
    let registry = match crate::plugin::grants::Registry::load(&app.store.grants_file()) {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    let p = registry.named(name, Kind::Driver)?;
    Some(Ok(Source::Installed {
        name: name.to_string(),
        path: p.path.clone(),
        sha256: p.sha256.clone(),
    }))
}

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

/// The text values the user gave the driver's flags (see [`typed_flags`]).
fn typed_values(values: &[FlagValue], flags: &[Flag], typed: &BTreeSet<String>) -> Vec<String> {
    let text = |name: &str| {
        flags
            .iter()
            .any(|f| f.name == name && matches!(f.kind, FlagKind::Text | FlagKind::TextList))
    };
    values
        .iter()
        .filter(|v| typed.contains(&v.name) && text(&v.name))
        .flat_map(|v| v.values.iter().cloned())
        .collect()
}

use crate::report::SECRET_WORDS;

/// Largest file a `file` flag may name.
const MAX_FLAG_FILE: u64 = 64 << 10;

/// Replace the value of each flag the driver declared as a file (`file FLAG`) by the file's
/// contents (UTF-8, at most 64 KiB, read by [`crate::user_file::read`]): a plugin cannot
/// read the user's files itself. Only a value the user typed is read; a file flag the user
/// did not type is passed on empty.
fn read_file_flags(
    mut values: Vec<FlagValue>,
    files: &[String],
    typed: &BTreeSet<String>,
    store_root: &std::path::Path,
) -> Result<Vec<FlagValue>, String> {
    for v in values.iter_mut().filter(|v| files.contains(&v.name)) {
        if !typed.contains(&v.name) {
            v.values.clear();
            continue;
        }
        for value in v.values.iter_mut().filter(|x| !x.is_empty()) {
            let path = std::path::Path::new(value.as_str());
            let bytes = crate::user_file::read(path, MAX_FLAG_FILE, store_root)
                .map_err(|e| format!("--{} {value}: {e}", v.name))?;
            *value = String::from_utf8(bytes)
                .map_err(|_| format!("--{} {value}: the file is not UTF-8 text", v.name))?;
        }
    }
    Ok(values)
}

/// Whether flag `name` holds a secret: the driver declared it (`secret FLAG`) or its name
/// says so.
pub fn is_secret_flag(name: &str, declared: &[String]) -> bool {
    declared.iter().any(|d| d == name) || SECRET_WORDS.iter().any(|w| name.contains(w))
}

/// The values of secret flags ([`is_secret_flag`]): they are replaced by `<redacted>` in
/// everything create prints and logs (values shorter than 4 characters are left alone).
fn secret_values(m: &ArgMatches, flags: &[Flag], declared: &[String]) -> Vec<String> {
    flags
        .iter()
        .filter(|f| is_secret_flag(&f.name, declared))
        .flat_map(|f| strings(m, &f.name))
        .filter(|v| v.len() >= 4)
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
    let driver_name = driver_arg(&a.args).or_else(|| default_driver(&a.args));
    let mut loaded = None;
    let mut flags = Vec::new();
    if let Some(d) = &driver_name {
        let name = name_hint(&a.args);
        let load_err = |e: anyhow::Error| create_error(name, "load driver", format!("{e:#}"));
        let source = match installed_driver(app, d) {
            Some(found) => found,
            None => Source::from_arg(d, Kind::Driver),
        }
        .map_err(|e| {
            let unknown = !(d.contains('/') || d.ends_with(".wasm"));
            let dmw_error = load_err(e);
            if unknown {
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
        let mut driver = app
            .new_driver(&source, report.clone())
            .await
            .map_err(load_err)?;
        flags = driver.create_flags().await?;
        // A file that is byte for byte a built-in driver is that built-in, used by path
        // (decided on the bytes that were loaded, `Driver::is_builtin`).
        crate::plugin::flag_policy::check(
            driver.name(),
            &flags,
            driver.is_builtin(),
            driver.declaration(),
        )
        .map_err(|e| load_err(anyhow::anyhow!("{e}")))?;
        loaded = Some((source, driver));
    }
    let argv = std::iter::once(format!("{} create", crate::personality::name()))
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
    crate::names::validate(&name).map_err(|e| {
        worded(
            format!("Error creating machine: {e}"),
            create_error(&name, "validate name", e),
        )
    })?;
    let Some((driver_source, flags_driver)) = loaded else {
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
    if let Some(SwarmPlan::Join { manager, .. }) = &swarm_plan
        && !app.store.exists(manager)
    {
        return Err(create_error(
            &name,
            "read swarm flags",
            format!("--swarm-join names machine \"{manager}\", which does not exist"),
        ));
    }
    for san in strings(&m, "tls-san") {
        provision::check_tls_san(&san)
            .map_err(|e| create_error(&name, "read TLS flags", format!("{e:#}")))?;
    }
    // The HTTP settings and the values read from the user's files, before anything is
    // claimed: both from the values the user typed only (never the driver's defaults).
    let typed = typed_flags(&m, &flags);
    let values = flag_values(&m, &flags);
    let typed_values = typed_values(&values, &flags, &typed);
    let store_root = app.store.root();
    let http = if flags_driver.granted("http") {
        let settings = crate::net::HttpSettings::resolve(
            &flags_driver.declaration().http_ask(),
            &values,
            &typed,
        )
        .map_err(|e| create_error(&name, "read driver flags", format!("{e:#}")))?;
        let sender = crate::net::Sender::new(settings.clone(), store_root)
            .map_err(|e| create_error(&name, "read driver flags", format!("{e:#}")))?;
        Some((settings, Arc::new(sender)))
    } else {
        None
    };
    let driver_flags = read_file_flags(
        values,
        &flags_driver.declaration().files,
        &typed,
        store_root,
    )
    .map_err(|e| create_error(&name, "read driver flags", e))?;
    let dir = app
        .store
        .claim(&name)
        .map_err(|e| create_error(&name, "check name", format!("{e:#}")))?;
    let _lock = app.store.lock(&name)?;
    let log = crate::store::MachineDir::at(&dir).provision_log();
    let report = Arc::new(Reporter::new(app.debug).with_log_file(&log));
    for secret in secret_values(&m, &flags, &flags_driver.declaration().secrets) {
        report.redact(&secret);
    }
    // The driver that creates the machine is a fresh instance for it: lent the machine's
    // directory (`process`, `files`) when granted, which the one asked for flags was not.
    let mut driver = match app
        .new_machine_driver(&driver_source, report.clone(), &name)
        .await
    {
        Ok(d) => d,
        Err(e) => {
            let _ = app.store.remove(&name);
            return Err(create_error(&name, "load driver", format!("{e:#}")));
        }
    };
    let http = http.map(|(settings, sender)| {
        driver.set_http(sender);
        settings
    });
    driver.name_user_paths(&typed_values);
    let req = CreateRequest {
        name: name.clone(),
        driver_source,
        driver_flags,
        http,
        typed_values,
        engine,
        tls_sans: strings(&m, "tls-san"),
        recipe,
        no_provision: m.get_flag("no-provision"),
    };
    let no_context = m.get_flag("no-docker-context") || req.no_provision;
    provision::create(app, driver, req, report.clone())
        .await
        .map_err(|f| {
            let next = if let Ok(record) = app.store.load(&name) {
                format!(
                    "The machine record was kept with this error: `dmw ls` shows it, {}`dmw rm {name}` removes it; the log is {}",
                    resume_hint(&record),
                    log.display()
                )
            } else {
                "Nothing was created and nothing was kept: correct the command and run it again."
                    .to_string()
            };
            CliError {
                message: report.scrub(&format!(
                    "Error creating machine \"{name}\": {} failed: {:#}\n{next}",
                    f.step, f.error
                )),
                code: f.exit_code,
            }
        })?;
    if !no_context {
        write_context(app, &name, &report);
    }
    if let Some(plan) = swarm_plan {
        swarm_step(app, &name, plan, &report).await?;
    }
    Ok(())
}

/// Swarm mode after provisioning: init or join. A failure leaves the machine as it is
/// (ready, outside the cluster) and says how to retry.
async fn swarm_step(app: &App, name: &str, plan: SwarmPlan, report: &Reporter) -> CliResult {
    let (done, retry) = match &plan {
        SwarmPlan::Init(addrs) => (
            crate::swarm::init(app, name, addrs, report).await,
            format!("dmw swarm init {name}"),
        ),
        SwarmPlan::Join {
            manager,
            role,
            addrs,
        } => (
            crate::swarm::join(app, name, manager, *role, addrs, report).await,
            format!(
                "dmw swarm join {name} --manager {manager} --as {}",
                role.as_str()
            ),
        ),
    };
    done.map(|_| ()).map_err(|e| {
        CliError::new(format!(
            "Error creating machine \"{name}\": swarm failed: {e:#}\nThe machine was created and is ready, outside any swarm; `{retry}` tries again."
        ))
    })
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
        (crate::store::MachineStatus::Unprovisioned, _) => format!(
            "{exists}: it was created with --no-provision; `dmw provision {name}` provisions it, `dmw rm {name}` removes it"
        ),
        (crate::store::MachineStatus::Error, Some(err)) => format!(
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
fn resume_hint(record: &crate::store::MachineRecord) -> String {
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

/// Write the machine's docker context; a failure is a warning (the machine works anyway).
pub(super) fn write_context(app: &App, name: &str, report: &Reporter) {
    // A none machine whose `--url` is not tcp:// has nothing a docker context could hold.
    if let Ok(record) = app.store.load(name)
        && record.engine_only
        && record.endpoint.is_none()
    {
        report.debug(&format!(
            "no docker context for \"{name}\": its URL is not a tcp://HOST:PORT engine URL"
        ));
        return;
    }
    let written = app
        .store
        .load(name)
        .map_err(anyhow::Error::from)
        .and_then(|record| {
            let url = record.url().ok_or_else(|| anyhow::anyhow!("no address"))?;
            let dir = crate::context::docker_config_dir()?;
            if crate::context::exists(&dir, name) && !crate::context::is_ours(&dir, name) {
                anyhow::bail!(
                    "a docker context named \"{name}\" exists and is not dmw's; left as it is"
                );
            }
            crate::context::write(&dir, name, &url, &app.store.machine_dir(name))
        });
    match written {
        Ok(()) => {
            let line = format!(
                "Docker context \"{name}\" written: `docker --context {name} ps`, or `dmw use {name}`"
            );
            // Docker Machine wrote no context: its scripts see no line about one.
            if crate::personality::docker_machine() {
                report.debug(&line);
            } else {
                report.info(&line);
            }
        }
        Err(e) => report.warn(&format!("no docker context for \"{name}\": {e:#}")),
    }
}
