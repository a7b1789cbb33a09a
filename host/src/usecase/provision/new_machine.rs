//! The `create` use-case: from what the user typed (a loaded driver, its flag values, the
//! engine, TLS and swarm choices) to a working machine — the values the host reads for the
//! driver, the claimed and locked machine directory, the driver instance lent to it, the
//! pipeline, the docker context and the swarm step. The CLI parses and prints; a library
//! user calls [`new_machine`] the same way.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{CreateRequest, StepFailure};
use crate::app::App;
use crate::sandbox::plugin::driver::{Flag, FlagKind, FlagValue};
use crate::sandbox::plugin::{Driver, Source};
use crate::state::store::{EngineOptions, MachineRecord};
use crate::text::report::{Reporter, SECRET_WORDS};
use crate::usecase::swarm::SwarmPlan;

/// Largest file a `file` flag may name.
const MAX_FLAG_FILE: u64 = 64 << 10;

/// What `create` was asked for, once the command line is parsed.
pub struct NewMachine {
    /// Machine name (already validated, not in the store).
    pub name: String,
    /// Where the driver came from.
    pub driver_source: Source,
    /// The driver instance that declared the flags (its declaration and grants decide
    /// what the host reads and reaches for it).
    pub driver: Driver,
    /// The driver's create flags.
    pub flags: Vec<Flag>,
    /// Every flag's value, typed or the driver's default.
    pub values: Vec<FlagValue>,
    /// The flags whose values the user typed (command line or the flag's declared
    /// environment variable): files, `{flag}` hosts, the CA bundle and key paths come only
    /// from these.
    pub typed: BTreeSet<String>,
    /// `--recipe`, overriding detection.
    pub recipe: Option<Source>,
    /// Engine options.
    pub engine: EngineOptions,
    /// Extra certificate SANs (`--tls-san`).
    pub tls_sans: Vec<String>,
    /// `--no-provision`: stop once the machine exists at the provider.
    pub no_provision: bool,
    /// Write a docker context for the machine (not with `--no-provision`).
    pub docker_context: bool,
    /// What to do about Swarm mode once the machine is ready.
    pub swarm: Option<SwarmPlan>,
}

/// What is left after a failed create, for the user's next step.
#[derive(Debug)]
pub enum Left {
    /// Refused before the machine was claimed: nothing was created.
    Untouched,
    /// The pipeline failed: `kept` is the machine's record when it was kept (with the
    /// error), `None` when nothing was created and nothing was kept; `log` is the
    /// provisioning log.
    Pipeline {
        /// The kept record.
        kept: Option<Box<MachineRecord>>,
        /// The machine's provisioning log.
        log: PathBuf,
        /// The step failed because the store's file system is full (ENOSPC).
        store_full: bool,
    },
    /// The machine is ready, outside any swarm; `retry` is the command that tries again.
    OutsideSwarm {
        /// The swarm command to run.
        retry: String,
    },
}

/// A failed create: the step, why (secrets already redacted), the exit code and what is
/// left.
#[derive(Debug)]
pub struct CreateFailure {
    /// The step that failed ("read driver flags", "load driver", a pipeline step, "swarm").
    pub step: String,
    /// Why, with the driver's secret flag values redacted.
    pub message: String,
    /// The process exit code.
    pub exit_code: i32,
    /// What is left.
    pub left: Left,
}

impl CreateFailure {
    fn untouched(step: &str, message: impl std::fmt::Display) -> CreateFailure {
        CreateFailure {
            step: step.to_string(),
            message: message.to_string(),
            exit_code: 1,
            left: Left::Untouched,
        }
    }
}

/// Whether flag `name` holds a secret: the driver declared it (`secret FLAG`) or its name
/// says so.
fn is_secret_flag(name: &str, declared: &[String]) -> bool {
    declared.iter().any(|d| d == name) || SECRET_WORDS.iter().any(|w| name.contains(w))
}

/// Whether flag `name` of `flags` takes text (a path or a URL may be among its values).
fn is_text(flags: &[Flag], name: &str) -> bool {
    flags
        .iter()
        .any(|f| f.name == name && matches!(f.kind, FlagKind::Text | FlagKind::TextList))
}

/// The text values the user typed for the driver's flags (see [`NewMachine::typed`]).
fn typed_values(values: &[FlagValue], flags: &[Flag], typed: &BTreeSet<String>) -> Vec<String> {
    values
        .iter()
        .filter(|v| typed.contains(&v.name) && is_text(flags, &v.name))
        .flat_map(|v| v.values.iter().cloned())
        .collect()
}

/// The values of secret text flags ([`is_secret_flag`]), replaced by `<redacted>` in all
/// create prints and logs (values shorter than 4 characters are left alone).
fn secret_values(values: &[FlagValue], flags: &[Flag], declared: &[String]) -> Vec<String> {
    values
        .iter()
        .filter(|v| is_secret_flag(&v.name, declared) && is_text(flags, &v.name))
        .flat_map(|v| v.values.iter().cloned())
        .filter(|v| v.len() >= 4)
        .collect()
}

/// Replace the value of each flag the driver declared as a file (`file FLAG`) by the file's
/// contents (UTF-8, at most [`MAX_FLAG_FILE`], read by [`crate::sandbox::user_file::read`]): a
/// plugin cannot read the user's files itself. Only a value the user typed is read; a file
/// flag the user did not type is passed on empty.
fn read_file_flags(
    mut values: Vec<FlagValue>,
    files: &[String],
    typed: &BTreeSet<String>,
    store_root: &Path,
) -> Result<Vec<FlagValue>, String> {
    for v in values.iter_mut().filter(|v| files.contains(&v.name)) {
        if !typed.contains(&v.name) {
            v.values.clear();
            continue;
        }
        for value in v.values.iter_mut().filter(|x| !x.is_empty()) {
            let path = Path::new(value.as_str());
            let bytes = crate::sandbox::user_file::read(path, MAX_FLAG_FILE, store_root)
                .map_err(|e| format!("--{} {value}: {e}", v.name))?;
            *value = String::from_utf8(bytes)
                .map_err(|_| format!("--{} {value}: the file is not UTF-8 text", v.name))?;
        }
    }
    Ok(values)
}

/// A driver ready for `create`: where it came from, the instance that declared its flags
/// (checked against the flag policy) and those flags.
pub struct LoadedDriver {
    /// Where the driver came from.
    pub source: Source,
    /// The instance asked for the flags.
    pub driver: Driver,
    /// Its create flags.
    pub flags: Vec<Flag>,
}

/// Why a driver could not be loaded.
#[derive(Debug)]
pub struct LoadFailure {
    /// The name is neither a built-in nor an installed driver nor a path to one.
    pub unknown: bool,
    /// Why.
    pub error: anyhow::Error,
}

/// The driver `create` uses when none is given: `qemu` when its programs are installed,
/// `None` otherwise (create then says what to install).
pub fn default_driver() -> Option<&'static str> {
    ["qemu-system-x86_64", "qemu-img"]
        .iter()
        .all(|p| crate::sandbox::capabilities::process::which(p).is_some())
        .then_some("qemu")
}

/// A driver installed under `name` (`dmw plugin install`): its file, whose bytes must be
/// the very ones approved (same sha256, checked on the bytes that are loaded), whatever it
/// asks for.
fn installed_driver(app: &App, name: &str) -> Option<anyhow::Result<Source>> {
    if name.contains('/')
        || name.ends_with(".wasm")
        || crate::sandbox::plugin::builtin::driver(name).is_some()
    {
        return None;
    }
    let registry = match crate::sandbox::plugin::grants::Registry::load(&app.store.grants_file()) {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    let p = registry.named(name, crate::sandbox::plugin::Kind::Driver)?;
    Some(Ok(Source::Installed {
        name: name.to_string(),
        path: p.path.clone(),
        sha256: p.sha256.clone(),
    }))
}

/// Load the driver `arg` names (an installed driver, a built-in, or a path to a `.wasm`),
/// ask it for its create flags and check them against the flag policy. A file that is byte
/// for byte a built-in driver is that built-in, used by path (decided on the bytes that
/// were loaded).
pub async fn load_driver(
    app: &App,
    arg: &str,
    report: Arc<Reporter>,
) -> Result<LoadedDriver, LoadFailure> {
    let failed = |error: anyhow::Error| LoadFailure {
        unknown: false,
        error,
    };
    let source = match installed_driver(app, arg) {
        Some(found) => found,
        None => Source::from_arg(arg, crate::sandbox::plugin::Kind::Driver),
    }
    .map_err(|error| LoadFailure {
        unknown: !(arg.contains('/') || arg.ends_with(".wasm")),
        error,
    })?;
    let mut driver = app.new_driver(&source, report).await.map_err(failed)?;
    let mut flags = driver.create_flags().await.map_err(failed)?;
    // A flag's usage is plugin text shown by `create --help`: inert and bounded from here.
    for f in &mut flags {
        f.usage = crate::text::sanitize::plugin_text(&f.usage, 300);
    }
    crate::sandbox::plugin::flag_policy::check(
        driver.name(),
        &flags,
        driver.is_builtin(),
        driver.declaration(),
    )
    .map_err(|e| failed(anyhow::anyhow!("{e}")))?;
    Ok(LoadedDriver {
        source,
        driver,
        flags,
    })
}

/// Create machine `m.name`: check what the user typed, read the files it names, claim and
/// lock the name, lend a fresh driver instance the machine's directory, run the pipeline
/// (its outcome recorded in the machine's record), then write the docker context and run
/// the swarm step. A failure says what is left ([`Left`]).
pub async fn new_machine(app: &App, m: NewMachine) -> Result<(), CreateFailure> {
    let name = m.name.clone();
    if let Some(SwarmPlan::Join { manager, .. }) = &m.swarm
        && !app.store.exists(manager)
    {
        return Err(CreateFailure::untouched(
            "read swarm flags",
            format!("--swarm-join names machine \"{manager}\", which does not exist"),
        ));
    }
    for san in &m.tls_sans {
        super::check_tls_san(san)
            .map_err(|e| CreateFailure::untouched("read TLS flags", format!("{e:#}")))?;
    }
    // The HTTP settings and the values read from the user's files, before anything is
    // claimed: both from the values the user typed only (never the driver's defaults).
    let read_flags = |e: String| CreateFailure::untouched("read driver flags", e);
    let declaration = m.driver.declaration();
    let typed_values = typed_values(&m.values, &m.flags, &m.typed);
    let store_root = app.store.root();
    let http = if m.driver.granted("http") {
        let settings =
            crate::net::http::HttpSettings::resolve(&declaration.http_ask(), &m.values, &m.typed)
                .map_err(|e| read_flags(format!("{e:#}")))?;
        let sender = crate::net::http::Sender::new(settings.clone(), store_root)
            .map_err(|e| read_flags(format!("{e:#}")))?;
        Some((settings, Arc::new(sender)))
    } else {
        None
    };
    let secrets = secret_values(&m.values, &m.flags, &declaration.secrets);
    let driver_flags =
        read_file_flags(m.values, &declaration.files, &m.typed, store_root).map_err(read_flags)?;
    let dir = app
        .store
        .claim(&name)
        .map_err(|e| CreateFailure::untouched("check name", format!("{e:#}")))?;
    let _lock = app
        .store
        .lock(&name)
        .map_err(|e| CreateFailure::untouched(super::LOCK_STEP, format!("{e:#}")))?;
    let log = crate::state::store::MachineDir::at(&dir).provision_log();
    let report = Arc::new(Reporter::new(app.debug).with_log_file(&log));
    for secret in secrets {
        report.redact(&secret);
    }
    // The driver that creates the machine is a fresh instance for it: lent the machine's
    // directory (`process`, `files`, `vm`) when granted, which the one asked for flags was
    // not.
    let mut driver = match app
        .new_machine_driver(&m.driver_source, report.clone(), &name)
        .await
    {
        Ok(d) => d,
        Err(e) => {
            let _ = app.store.remove(&name);
            return Err(CreateFailure::untouched("load driver", format!("{e:#}")));
        }
    };
    let http = http.map(|(settings, sender)| {
        driver.set_http(sender);
        settings
    });
    driver.name_user_paths(&typed_values);
    let req = CreateRequest {
        name: name.clone(),
        driver_source: m.driver_source,
        driver_flags,
        http,
        typed_values,
        engine: m.engine,
        tls_sans: m.tls_sans,
        recipe: m.recipe,
        no_provision: m.no_provision,
    };
    super::create(app, driver, req, report.clone())
        .await
        .map_err(|f: StepFailure| CreateFailure {
            step: f.step.to_string(),
            message: report.scrub(&format!("{:#}", f.error)),
            exit_code: f.exit_code,
            left: Left::Pipeline {
                kept: app.store.load(&name).ok().map(Box::new),
                log: log.clone(),
                store_full: f.no_space(),
            },
        })?;
    if m.docker_context && !m.no_provision {
        crate::state::context::write_for_machine(&app.store, &name, &report);
    }
    match m.swarm {
        Some(plan) => swarm_step(app, &name, plan, &report).await,
        None => Ok(()),
    }
}

/// Swarm mode after provisioning: init or join. A failure leaves the machine as it is
/// (ready, outside the cluster) and names the command that tries again.
async fn swarm_step(
    app: &App,
    name: &str,
    plan: SwarmPlan,
    report: &Reporter,
) -> Result<(), CreateFailure> {
    let (done, retry) = match &plan {
        SwarmPlan::Init(addrs) => (
            crate::usecase::swarm::init(app, name, addrs, report).await,
            format!("dmw swarm init {name}"),
        ),
        SwarmPlan::Join {
            manager,
            role,
            addrs,
        } => (
            crate::usecase::swarm::join(app, name, manager, *role, addrs, report).await,
            format!(
                "dmw swarm join {name} --manager {manager} --as {}",
                role.as_str()
            ),
        ),
    };
    done.map(|_| ()).map_err(|e| CreateFailure {
        step: "swarm".to_string(),
        message: format!("{e:#}"),
        exit_code: 1,
        left: Left::OutsideSwarm { retry },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(name: &str, kind: FlagKind) -> Flag {
        Flag {
            name: name.into(),
            usage: String::new(),
            kind,
            default: None,
            env_var: None,
        }
    }

    fn value(name: &str, values: &[&str]) -> FlagValue {
        FlagValue {
            name: name.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn a_full_file_system_is_told_apart() {
        let full = anyhow::Error::from(std::io::Error::from_raw_os_error(libc::ENOSPC))
            .context("cannot write config.json");
        assert!(StepFailure::new("m", "save machine", full).no_space());
        let other = anyhow::Error::from(std::io::Error::from_raw_os_error(libc::EACCES))
            .context("cannot write config.json");
        assert!(!StepFailure::new("m", "save machine", other).no_space());
        // Through a plugin, as the text of a capability's error.
        let said = anyhow::anyhow!(
            "cannot keep the server certificate: cannot write server.pem: {}",
            std::io::Error::from_raw_os_error(libc::ENOSPC)
        );
        assert!(StepFailure::new("m", "configure engine", said).no_space());
    }

    #[test]
    fn only_typed_text_values_count_and_booleans_are_never_secrets() {
        let flags = [
            flag("x-token", FlagKind::Text),
            flag("x-secret-mode", FlagKind::Boolean),
            flag("x-key-path", FlagKind::Text),
        ];
        let values = [
            value("x-token", &["s3cr3t-value"]),
            value("x-secret-mode", &["true"]),
            value("x-key-path", &["/home/u/key"]),
        ];
        let typed: BTreeSet<String> = ["x-key-path".to_string()].into();
        assert_eq!(typed_values(&values, &flags, &typed), ["/home/u/key"]);
        // A boolean's "true" would otherwise be redacted everywhere.
        assert_eq!(secret_values(&values, &flags, &[]), ["s3cr3t-value"]);
    }

    #[test]
    fn an_untyped_file_flag_is_passed_on_empty_and_never_read() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        std::fs::create_dir_all(&store).unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "secret").unwrap();
        let path = victim.to_string_lossy().to_string();
        let values = vec![value("x-file", &[&path])];
        let files = vec!["x-file".to_string()];
        let read = read_file_flags(values.clone(), &files, &BTreeSet::new(), &store).unwrap();
        assert!(read[0].values.is_empty());
        let typed: BTreeSet<String> = ["x-file".to_string()].into();
        let read = read_file_flags(values, &files, &typed, &store).unwrap();
        assert_eq!(read[0].values, ["secret"]);
    }
}
