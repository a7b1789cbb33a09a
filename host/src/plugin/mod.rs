//! The plugin runtime: wasmtime components with a deadline on every call, a memory cap
//! per instance and an on-disk cache of compiled code.

pub mod bindings;
pub mod builtin;
mod cache;
pub mod driver;
pub mod flag_policy;
pub mod recipe;

pub use driver::Driver;
pub use recipe::Recipe;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::capabilities::PluginCtx;

/// The WIT package version this host implements.
pub const API_VERSION: &str = "0.1.0";

/// Epoch tick length.
const TICK: Duration = Duration::from_millis(100);

/// Longest a plugin may compute without calling the host (in ticks): 10 s.
const COMPUTE_TICKS: u64 = 100;

/// How often (in ticks) the compute deadline looks at the plugin: every 1 s.
const CHECK_TICKS: u64 = 10;

/// Memory cap of one plugin instance.
const MEMORY_LIMIT: usize = 128 << 20;

/// Where a plugin comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Embedded in the binary.
    Builtin(builtin::Builtin),
    /// A `.wasm` file given by path.
    File(PathBuf),
}

impl Source {
    /// The text stored in the machine record (`builtin:NAME` or an absolute path).
    pub fn reference(&self) -> String {
        match self {
            Source::Builtin(b) => format!("builtin:{}", b.name),
            Source::File(p) => p.display().to_string(),
        }
    }

    /// Resolve a record's reference back to a source.
    pub fn from_reference(reference: &str, kind: Kind) -> Result<Source> {
        if let Some(name) = reference.strip_prefix("builtin:") {
            let found = match kind {
                Kind::Driver => builtin::driver(name),
                Kind::Recipe => builtin::recipe(name),
            };
            return found
                .map(Source::Builtin)
                .ok_or_else(|| anyhow!("this dmw has no built-in {kind} \"{name}\""));
        }
        Ok(Source::File(PathBuf::from(reference)))
    }

    /// Resolve a `--driver`/`--recipe` argument: a built-in name, or a path to a `.wasm` file.
    pub fn from_arg(arg: &str, kind: Kind) -> Result<Source> {
        let looks_like_path = arg.contains('/') || arg.ends_with(".wasm");
        if !looks_like_path {
            let found = match kind {
                Kind::Driver => builtin::driver(arg),
                Kind::Recipe => builtin::recipe(arg),
            };
            return found.map(Source::Builtin).ok_or_else(|| {
                let names: Vec<&str> = match kind {
                    Kind::Driver => builtin::DRIVERS.iter().map(|b| b.name).collect(),
                    Kind::Recipe => builtin::RECIPES.iter().map(|b| b.name).collect(),
                };
                anyhow!(
                    "{kind} \"{arg}\" not found: built-in {kind}s are {}; to use a plugin file, pass its path (e.g. --{kind} ./{arg}.wasm)",
                    names.join(", ")
                )
            });
        }
        let path = Path::new(arg);
        let abs = std::fs::canonicalize(path)
            .with_context(|| format!("{kind} file {arg} cannot be read"))?;
        Ok(Source::File(abs))
    }
}

/// The two kinds of plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A provider driver.
    Driver,
    /// An OS-family recipe.
    Recipe,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Driver => "driver",
            Kind::Recipe => "recipe",
        })
    }
}

/// Store data of one plugin instance: the WASI sandbox (nothing granted) and the capabilities.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    /// The capabilities lent to this instance.
    pub ctx: PluginCtx,
    host_calls_seen: u64,
    idle_ticks: u64,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The shared wasmtime engine, linkers and compile cache. One per process.
pub struct Runtime {
    engine: Engine,
    driver_linker: Linker<HostState>,
    recipe_linker: Linker<HostState>,
    cache_dir: PathBuf,
    _ticker: Arc<Ticker>,
}

struct Ticker {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Runtime {
    /// Make the engine and linkers; compiled plugins are cached under `cache_dir`.
    pub fn new(cache_dir: &Path) -> Result<Runtime> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine =
            Engine::new(&config).map_err(|e| anyhow!("cannot start the plugin engine: {e}"))?;

        let mut driver_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut driver_linker).map_err(|e| anyhow!("{e}"))?;
        bindings::v0_1::driver::DriverPlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut driver_linker,
            |s: &mut HostState| s,
        )
        .map_err(|e| anyhow!("{e}"))?;
        let mut recipe_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut recipe_linker).map_err(|e| anyhow!("{e}"))?;
        bindings::v0_1::recipe::RecipePlugin::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut recipe_linker,
            |s: &mut HostState| s,
        )
        .map_err(|e| anyhow!("{e}"))?;

        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("dmw-epoch".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .context("cannot start the epoch ticker")?;

        Ok(Runtime {
            engine,
            driver_linker,
            recipe_linker,
            cache_dir: cache_dir.join("plugins"),
            _ticker: Arc::new(Ticker { stop }),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Load (from cache, or compile and cache) a plugin's component and check its API version.
    pub fn load(&self, source: &Source, kind: Kind) -> Result<Component> {
        let (bytes, label): (std::borrow::Cow<'_, [u8]>, String) = match source {
            Source::Builtin(b) => (b.wasm.into(), format!("built-in {kind} {}", b.name)),
            Source::File(p) => (
                std::fs::read(p)
                    .with_context(|| format!("cannot read {kind} plugin {}", p.display()))?
                    .into(),
                format!("{kind} plugin {}", p.display()),
            ),
        };
        let component = cache::load_or_compile(&self.engine, &self.cache_dir, &bytes)
            .with_context(|| format!("{label} is not a valid WebAssembly component"))?;
        check_api(&self.engine, &component, kind).with_context(|| format!("cannot use {label}"))?;
        Ok(component)
    }

    fn new_store(&self, ctx: PluginCtx) -> Store<HostState> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(MEMORY_LIMIT)
            .instances(64)
            .trap_on_grow_failure(true)
            .build();
        let state = HostState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits,
            ctx,
            host_calls_seen: 0,
            idle_ticks: 0,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(CHECK_TICKS);
        // A plugin may run as long as it keeps calling the host (the wall-clock limit of
        // each call bounds that); pure computation without host calls is capped.
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            let calls = state.ctx.host_calls;
            if calls != state.host_calls_seen {
                state.host_calls_seen = calls;
                state.idle_ticks = 0;
            } else {
                state.idle_ticks += CHECK_TICKS;
            }
            if state.idle_ticks < COMPUTE_TICKS {
                Ok(UpdateDeadline::Continue(CHECK_TICKS))
            } else {
                Err(wasmtime::Error::msg(format!(
                    "plugin computed for more than {}s without calling the host",
                    COMPUTE_TICKS * TICK.as_millis() as u64 / 1000
                )))
            }
        });
        store
    }

    /// Instantiate a driver with the given capabilities.
    pub async fn driver(&self, component: &Component, ctx: PluginCtx) -> Result<Driver> {
        let mut store = self.new_store(ctx);
        let pre = self
            .driver_linker
            .instantiate_pre(component)
            .map_err(|e| anyhow!("cannot link driver plugin: {e}"))?;
        let pre = bindings::v0_1::driver::DriverPluginPre::new(pre)
            .map_err(|e| anyhow!("not a dmw driver plugin: {e}"))?;
        let bindings = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| anyhow!("cannot instantiate driver plugin: {e}"))?;
        Ok(Driver::new(store, bindings))
    }

    /// Instantiate a recipe with the given capabilities.
    pub async fn recipe(&self, component: &Component, ctx: PluginCtx) -> Result<Recipe> {
        let mut store = self.new_store(ctx);
        let pre = self
            .recipe_linker
            .instantiate_pre(component)
            .map_err(|e| anyhow!("cannot link recipe plugin: {e}"))?;
        let pre = bindings::v0_1::recipe::RecipePluginPre::new(pre)
            .map_err(|e| anyhow!("not a dmw recipe plugin: {e}"))?;
        let bindings = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| anyhow!("cannot instantiate recipe plugin: {e}"))?;
        Ok(Recipe::new(store, bindings))
    }
}

/// Check that a component exports the interface of `kind` at a version this host supports.
fn check_api(engine: &Engine, component: &Component, kind: Kind) -> Result<()> {
    let want = match kind {
        Kind::Driver => "dmw:plugin/driver@",
        Kind::Recipe => "dmw:plugin/recipe@",
    };
    let ty = component.component_type();
    let found: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let Some(export) = found.iter().find(|n| n.starts_with(want)) else {
        bail!(
            "it does not export {}{API_VERSION} (it exports: {}); is it a {kind}?",
            want,
            if found.is_empty() {
                "nothing".to_string()
            } else {
                found.join(", ")
            }
        );
    };
    let version = &export[want.len()..];
    if api_compatible(version) {
        Ok(())
    } else {
        bail!(
            "it was built for plugin API {version}; this dmw supports {API_VERSION} (rebuild it against wit/ of this dmw)"
        )
    }
}

/// Whether a plugin built against `version` can be loaded (same major, or same minor for 0.x).
pub fn api_compatible(version: &str) -> bool {
    let key = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        Some((major, minor))
    };
    match (key(version), key(API_VERSION)) {
        (Some((0, a)), Some((0, b))) => a == b,
        (Some((a, _)), Some((b, _))) => a == b,
        _ => false,
    }
}

/// Turn a failed call into a user-facing error: a trap names the plugin and the reason.
pub(crate) fn call_error(plugin: &str, func: &str, e: wasmtime::Error) -> anyhow::Error {
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return anyhow!("plugin {plugin} crashed in {func}: {trap}");
    }
    let cause = crate::sanitize::plugin_text(&root_cause(&e), crate::sanitize::MESSAGE_LIMIT);
    if cause.contains("growing memory") {
        return anyhow!(
            "plugin {plugin} ran out of memory in {func}: {cause} (each plugin instance may use at most {} MiB)",
            MEMORY_LIMIT >> 20
        );
    }
    anyhow!("plugin {plugin} failed in {func}: {cause}")
}

/// The innermost message of a wasmtime error (its Display shows only the wasm backtrace).
fn root_cause(e: &wasmtime::Error) -> String {
    e.chain()
        .last()
        .map(|c| c.to_string())
        .unwrap_or_else(|| e.to_string())
}

/// Run one plugin call with a wall-clock limit.
pub(crate) async fn with_deadline<T>(
    plugin: &str,
    func: &str,
    limit: Duration,
    fut: impl std::future::Future<Output = wasmtime::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(call_error(plugin, func, e)),
        Err(_) => Err(anyhow!(
            "plugin {plugin} did not finish {func} within {}s",
            limit.as_secs()
        )),
    }
}

/// The text of an error a plugin returned, made inert and bounded
/// ([`crate::sanitize::plugin_text`]): it is shown on the terminal and kept in the record.
pub(crate) fn describe_error(plugin: &str, func: &str, e: &bindings::v0_1::types::Error) -> String {
    use bindings::v0_1::types::Error as E;
    let text = match e {
        E::InvalidInput(m) | E::Failed(m) | E::Unreachable(m) | E::Denied(m) => m.as_str(),
        E::Unsupported(m) if m.is_empty() => {
            return format!("{plugin} does not support {func}");
        }
        E::Unsupported(m) => m.as_str(),
    };
    crate::sanitize::plugin_text(text, crate::sanitize::MESSAGE_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::api_compatible;

    #[test]
    fn api_versions() {
        assert!(api_compatible("0.1.0"));
        assert!(api_compatible("0.1.7"));
        assert!(!api_compatible("0.2.0"));
        assert!(!api_compatible("1.0.0"));
        assert!(!api_compatible("x"));
    }
}

#[cfg(test)]
mod runtime_tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::report::Reporter;

    #[tokio::test]
    async fn builtins_compile_once_then_load_from_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::new(dir.path()).expect("runtime");
        let generic = Source::Builtin(builtin::DRIVERS[0]);
        runtime
            .load(&generic, Kind::Driver)
            .expect("compile generic");
        let cached: Vec<_> = std::fs::read_dir(dir.path().join("plugins"))
            .expect("cache dir")
            .collect();
        assert_eq!(cached.len(), 1, "one .cwasm per component");
        let component = runtime
            .load(&generic, Kind::Driver)
            .expect("load from cache");
        let mut driver = runtime
            .driver(
                &component,
                PluginCtx::new("generic", Arc::new(Reporter::quiet(false)), BTreeMap::new()),
            )
            .await
            .expect("instantiate");
        assert_eq!(driver.info().await.expect("info").name, "generic");
        // A corrupt cache entry is replaced by a fresh compile, not trusted. (Entries are
        // only ever replaced by rename, never rewritten in place: live instances map them.)
        for entry in std::fs::read_dir(dir.path().join("plugins")).expect("cache dir") {
            crate::store::write_private(&entry.expect("entry").path(), b"garbage")
                .expect("corrupt");
        }
        runtime
            .load(&generic, Kind::Driver)
            .expect("recompile after corruption");
    }

    #[tokio::test]
    async fn a_recipe_is_not_a_driver() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::new(dir.path()).expect("runtime");
        let err = runtime
            .load(&Source::Builtin(builtin::RECIPES[0]), Kind::Driver)
            .expect_err("kind mismatch");
        let text = format!("{err:#}");
        assert!(
            text.contains("does not export dmw:plugin/driver@0.1.0")
                && text.contains("is it a driver?"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn ssh_is_denied_when_not_granted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::new(dir.path()).expect("runtime");
        let component = runtime
            .load(&Source::Builtin(builtin::DRIVERS[0]), Kind::Driver)
            .expect("load");
        let mut kv = BTreeMap::new();
        kv.insert("ip-address".to_string(), "192.0.2.1".to_string());
        let mut driver = runtime
            .driver(
                &component,
                PluginCtx::new("generic", Arc::new(Reporter::quiet(false)), kv),
            )
            .await
            .expect("instantiate");
        // Without an SSH grant the driver cannot even probe the port: it reports Stopped.
        assert_eq!(
            driver.state().await.expect("state"),
            driver::MachineState::Stopped
        );
        let err = driver.restart().await.expect_err("restart needs ssh");
        assert!(format!("{err:#}").contains("has no ssh access"), "{err:#}");
    }
}
