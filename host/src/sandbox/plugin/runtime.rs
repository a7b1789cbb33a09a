//! The plugin runtime: one wasmtime engine and linker per process, the compile cache,
//! the grant decision on the loaded bytes, and instantiation of drivers and recipes in a
//! fresh store lent what their grant allows.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{CallHook, Config, Engine, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtx;

use super::api::{API_VERSION, check_api};
use super::calls::{CALL, CallWatch, TickCall, with_deadline};
use super::limits::{
    CHECK_TICKS, INSTANTIATE_LIMIT, MAX_HOST_CALLS, MAX_TABLE_ELEMENTS, MEMORY_LIMIT,
    PluginLimiter, TICK,
};
use super::state::HostState;
use super::{Driver, Kind, Recipe, Source, builtin, cache, grants};
use crate::sandbox::capabilities::Offer;

/// The shared wasmtime engine, linkers and compile cache. One per process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: PathBuf,
    max_host_calls: u64,
    debug: bool,
    cache_warned: std::sync::atomic::AtomicBool,
    grants_file: Option<PathBuf>,
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

/// Components at least this big get a line on stderr while they compile.
const SAY_COMPILE_FROM: usize = 4 << 20;

/// What [`Runtime::compile`] says about the cache and a long compile.
struct Notes<'a> {
    runtime: &'a Runtime,
    label: &'a str,
    size: usize,
}

impl cache::CompileNotes for Notes<'_> {
    fn untrusted(&mut self, why: &str) {
        let first = !self
            .runtime
            .cache_warned
            .swap(true, std::sync::atomic::Ordering::Relaxed);
        if first && self.runtime.debug {
            eprintln!("{why}");
        }
    }

    fn compiling(&mut self) {
        if self.size >= SAY_COMPILE_FROM {
            eprintln!(
                "Compiling {} ({} MB) for this computer; it is kept in the plugin cache, so this happens once...",
                self.label,
                self.size >> 20
            );
        }
    }

    fn compiled(&mut self, took: Duration) {
        if self.size >= SAY_COMPILE_FROM {
            eprintln!("Compiled {} in {:.1} s", self.label, took.as_secs_f64());
        }
    }
}

impl Runtime {
    /// Make the engine and linkers; compiled plugins are cached under `cache_dir`.
    pub fn new(cache_dir: &Path) -> Result<Runtime> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine =
            Engine::new(&config).map_err(|e| anyhow!("cannot start the plugin engine: {e}"))?;

        // One linker for both kinds: WASI (empty), the contract's types, and every
        // capability linking itself; what an instance may use is decided by its grant.
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow!("{e}"))?;
        crate::sandbox::contract::v0_1::types::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |s: &mut HostState| s,
        )
        .map_err(|e| anyhow!("{e}"))?;
        for capability in crate::sandbox::capabilities::always::<HostState>()
            .iter()
            .chain(grants::PROVIDED)
        {
            (capability.link)(&mut linker)
                .map_err(|e| anyhow!("cannot link the {} capability: {e}", capability.name))?;
        }

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
            linker,
            cache_dir: cache_dir.join("plugins"),
            max_host_calls: MAX_HOST_CALLS,
            debug: false,
            cache_warned: std::sync::atomic::AtomicBool::new(false),
            grants_file: None,
            _ticker: Arc::new(Ticker { stop }),
        })
    }

    /// Show debug details (`--debug`): e.g. why the compile cache is not used.
    pub fn set_debug(&mut self, on: bool) {
        self.debug = on;
    }

    /// Where the user's plugin approvals are kept (`dmw plugin install`); without it, files
    /// used by path get the default grant only.
    pub fn set_grants_file(&mut self, path: PathBuf) {
        self.grants_file = Some(path);
    }

    /// The user's plugin approvals.
    pub fn registry(&self) -> Result<grants::Registry> {
        match &self.grants_file {
            Some(p) => grants::Registry::load(p),
            None => Ok(grants::Registry::default()),
        }
    }

    /// What a plugin may use, from its declaration, origin and the user's approvals; also
    /// checks that its imports match its declaration. Fails for a plugin that may not run.
    pub fn grant(
        &self,
        source: &Source,
        kind: Kind,
        bytes: &[u8],
        component: &Component,
    ) -> Result<grants::Grant> {
        let declared = grants::read_declaration(bytes)?;
        grants::check_imports(&self.imports(component), kind, &declared)?;
        let origin = match source.path() {
            None => grants::Origin::Builtin,
            Some(p) => grants::Origin::File(p),
        };
        let mut grant = grants::decide(
            kind,
            origin,
            &grants::sha256_hex(bytes),
            &declared,
            &self.registry()?,
        )?;
        // The built-in comparison is made on these bytes too: never on the path again.
        grant.builtin = match source {
            Source::Builtin(_) => true,
            _ => kind == Kind::Driver && builtin::is_driver_bytes(bytes),
        };
        Ok(grant)
    }

    /// The bytes of a plugin (read once: the same bytes are hashed, compared and compiled)
    /// and how to name it in messages. An installed plugin's bytes must hash to the
    /// approved sha256.
    pub fn bytes<'a>(
        &self,
        source: &'a Source,
        kind: Kind,
    ) -> Result<(std::borrow::Cow<'a, [u8]>, String)> {
        let read = |p: &Path| {
            std::fs::read(p).with_context(|| format!("cannot read {kind} plugin {}", p.display()))
        };
        Ok(match source {
            Source::Builtin(b) => (b.wasm.into(), format!("built-in {kind} {}", b.name)),
            Source::File(p) => (read(p)?.into(), format!("{kind} plugin {}", p.display())),
            Source::Installed { name, path, sha256 } => {
                let shown = path.display();
                let bytes = read(path).map_err(|e| {
                    anyhow!(
                        "the file {shown} of the installed {kind} \"{name}\" cannot be read: {e:#}; install it again, or `dmw plugin rm {name}`"
                    )
                })?;
                let now = grants::sha256_hex(&bytes);
                if now != *sha256 {
                    bail!(
                        "the file {shown} of the installed {kind} \"{name}\" changed since you installed it (sha256 {sha256} then, {now} now); check it with `dmw plugin inspect {shown}` and approve it again with `dmw plugin install {shown}`"
                    );
                }
                (bytes.into(), format!("{kind} plugin {shown}"))
            }
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Load (from cache, or compile and cache) a plugin's component and check its API version.
    pub fn load(&self, source: &Source, kind: Kind) -> Result<Component> {
        self.load_granted(source, kind).map(|(c, _)| c)
    }

    /// [`Runtime::load`], and what the plugin may use ([`Runtime::grant`]).
    pub fn load_granted(&self, source: &Source, kind: Kind) -> Result<(Component, grants::Grant)> {
        let (bytes, label) = self.bytes(source, kind)?;
        let component = self.compile(&bytes, &label)?;
        check_api(&self.engine, &component, kind).with_context(|| format!("cannot use {label}"))?;
        let grant = self
            .grant(source, kind, &bytes, &component)
            .with_context(|| format!("cannot use {label}"))?;
        Ok((component, grant))
    }

    /// Compile a component (or load it from the cache); nothing is checked or granted yet.
    /// Compiling a big component (a Python or JavaScript plugin carries its interpreter)
    /// takes a while the first time: it is said on stderr, with how long it took.
    pub fn compile(&self, bytes: &[u8], label: &str) -> Result<Component> {
        let mut notes = Notes {
            runtime: self,
            label,
            size: bytes.len(),
        };
        cache::load_or_compile(&self.engine, &self.cache_dir, bytes, &mut notes)
            .with_context(|| format!("{label} is not a valid WebAssembly component"))
    }

    /// The kind of plugin a component is (from the interface it exports).
    pub fn kind_of(&self, component: &Component) -> Result<Kind> {
        if check_api(&self.engine, component, Kind::Driver).is_ok() {
            return Ok(Kind::Driver);
        }
        check_api(&self.engine, component, Kind::Recipe)
            .map(|()| Kind::Recipe)
            .map_err(|_| anyhow!("it exports neither dmw:plugin/driver nor dmw:plugin/recipe at version {API_VERSION}"))
    }

    /// The component's imports, by name.
    pub fn imports(&self, component: &Component) -> Vec<String> {
        component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    fn new_store(&self, grant: &grants::Grant, mut offer: Offer) -> Result<Store<HostState>> {
        offer.programs = grant.declaration.programs.clone();
        offer.program_args = grant.declaration.program_args.clone();
        let lent = grants::lend(grant, &offer);
        // WASI grants nothing but what a lent capability lends through it (`files`: the
        // plugin's own directory).
        let mut wasi = WasiCtx::builder();
        for capability in crate::sandbox::capabilities::always::<HostState>()
            .iter()
            .chain(grants::PROVIDED)
        {
            (capability.wasi)(&lent, &mut wasi)?;
        }
        let state = HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits: PluginLimiter::new(MEMORY_LIMIT, MAX_TABLE_ELEMENTS),
            lent,
            public_key: offer.public_key.clone(),
            declaration: grant.declaration.clone(),
            builtin: grant.builtin,
            granted: grant.capabilities.clone(),
            http_ctx: wasmtime_wasi_http::WasiHttpCtx::new(),
            no_http: crate::sandbox::capabilities::http::NoHttp,
            host_calls: 0,
            watch: CallWatch {
                max_host_calls: self.max_host_calls,
                ..CallWatch::default()
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        // Host-call accounting, in one place: every call from the plugin into the host
        // (capabilities, WASI, and wasmtime's own libcalls such as the epoch check below).
        store.call_hook(|mut ctx, hook| {
            if matches!(hook, CallHook::CallingHost) {
                let state = ctx.data_mut();
                state.host_calls = state.host_calls.saturating_add(1);
            }
            Ok(())
        });
        store.set_epoch_deadline(CHECK_TICKS);
        // At every check the plugin yields to the executor, so the wall-clock limit of the
        // call (`with_deadline`) can fire even while it keeps calling the host; the limit
        // is also checked here, with the host-call cap and the compute rule: pure
        // computation without host calls is capped.
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            // This callback runs inside wasmtime's epoch libcall, which the call hook
            // counted as a host call: it is not one the plugin made.
            state.host_calls = state.host_calls.saturating_sub(1);
            let host_calls = state.host_calls;
            let verdict = CALL
                .try_with(|c| {
                    state.watch.tick(
                        host_calls,
                        Some(TickCall {
                            id: c.id,
                            plugin: &c.plugin,
                            func: &c.func,
                            limit: c.limit,
                            deadline: c.deadline,
                        }),
                        Instant::now(),
                    )
                })
                .unwrap_or_else(|_| state.watch.tick(host_calls, None, Instant::now()));
            match verdict.and_then(|()| state.over_quota()) {
                Ok(()) => Ok(UpdateDeadline::Yield(CHECK_TICKS)),
                Err(message) => Err(wasmtime::Error::msg(message)),
            }
        });
        Ok(store)
    }

    /// Lower the host-call cap (tests).
    #[cfg(test)]
    fn set_max_host_calls(&mut self, max: u64) {
        self.max_host_calls = max;
    }

    /// Instantiate a driver lent what `grant` allows of `offer`.
    pub async fn driver(
        &self,
        component: &Component,
        grant: &grants::Grant,
        offer: Offer,
    ) -> Result<Driver> {
        let (mut store, pre) = self.prepare(component, grant, offer, Kind::Driver)?;
        let pre = crate::sandbox::contract::v0_1::driver::DriverPluginPre::new(pre)
            .map_err(|e| anyhow!("not a dmw driver plugin: {e}"))?;
        let bindings =
            instantiation(&mut store, Kind::Driver, |s| pre.instantiate_async(s)).await?;
        Ok(Driver::new(store, bindings))
    }

    /// Instantiate a recipe lent what `grant` allows of `offer`.
    pub async fn recipe(
        &self,
        component: &Component,
        grant: &grants::Grant,
        offer: Offer,
    ) -> Result<Recipe> {
        let (mut store, pre) = self.prepare(component, grant, offer, Kind::Recipe)?;
        let pre = crate::sandbox::contract::v0_1::recipe::RecipePluginPre::new(pre)
            .map_err(|e| anyhow!("not a dmw recipe plugin: {e}"))?;
        let bindings =
            instantiation(&mut store, Kind::Recipe, |s| pre.instantiate_async(s)).await?;
        Ok(Recipe::new(store, bindings))
    }

    /// A fresh store lent what `grant` allows of `offer`, and the component linked.
    fn prepare(
        &self,
        component: &Component,
        grant: &grants::Grant,
        offer: Offer,
        kind: Kind,
    ) -> Result<(
        Store<HostState>,
        wasmtime::component::InstancePre<HostState>,
    )> {
        let store = self.new_store(grant, offer)?;
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| anyhow!("cannot link {kind} plugin: {e}"))?;
        Ok((store, pre))
    }
}

/// Run a plugin's instantiation under its deadline.
async fn instantiation<'s, T, F>(
    store: &'s mut Store<HostState>,
    kind: Kind,
    instantiate: impl FnOnce(&'s mut Store<HostState>) -> F,
) -> Result<T>
where
    F: std::future::Future<Output = wasmtime::Result<T>>,
{
    let plugin = store.data().lent.plugin().to_string();
    with_deadline(
        &plugin,
        "instantiation",
        INSTANTIATE_LIMIT,
        instantiate(store),
    )
    .await
    .with_context(|| format!("cannot instantiate {kind} plugin"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::sandbox::plugin::driver;
    use crate::text::report::Reporter;
    use std::time::Duration;

    /// The hostile test driver (tests/plugins/hostile-limits-driver).
    const HOSTILE: &str = env!("DMW_TEST_HOSTILE_LIMITS_DRIVER");

    async fn hostile(runtime: &Runtime, mode: &str) -> Driver {
        let component = runtime
            .load(&Source::File(HOSTILE.into()), Kind::Driver)
            .expect("load hostile driver");
        let mut kv = BTreeMap::new();
        kv.insert("mode".to_string(), mode.to_string());
        runtime
            .driver(
                &component,
                &grants::Grant::default(),
                Offer::new("hostile", Arc::new(Reporter::quiet(false)), kv),
            )
            .await
            .expect("instantiate")
    }

    #[tokio::test]
    async fn a_loop_of_host_calls_is_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut runtime = Runtime::new(dir.path()).expect("runtime");
        runtime.set_max_host_calls(10_000);
        let mut driver = hostile(&runtime, "host-call-loop").await;
        let started = Instant::now();
        let e = driver.pre_create_check().await.expect_err("stopped");
        assert!(started.elapsed() < Duration::from_secs(10), "{e:#}");
        assert_eq!(
            format!("{e:#}"),
            "plugin hostile made more than 10000 host calls in pre-create-check"
        );
    }

    /// A core module whose start function calls the import `h.c` forever.
    const START_LOOPS_ON_HOST_CALLS: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // header
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type 0: () -> ()
        0x02, 0x07, 0x01, 0x01, b'h', 0x01, b'c', 0x00, 0x00, // import h.c: type 0
        0x03, 0x02, 0x01, 0x00, // function 1: type 0
        0x08, 0x01, 0x01, // start: function 1
        0x0a, 0x0b, 0x01, 0x09, 0x00, // code of function 1:
        0x03, 0x40, 0x10, 0x00, 0x0c, 0x00, 0x0b, 0x0b, // loop { call 0; br 0 }
    ];

    #[tokio::test]
    async fn instantiation_that_loops_on_host_calls_is_stopped_at_its_deadline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut runtime = Runtime::new(dir.path()).expect("runtime");
        runtime.set_max_host_calls(u64::MAX);
        let ctx = Offer::new("looper", Arc::new(Reporter::quiet(false)), BTreeMap::new());
        let mut store = runtime
            .new_store(&grants::Grant::default(), ctx)
            .expect("store");
        let module =
            wasmtime::Module::new(runtime.engine(), START_LOOPS_ON_HOST_CALLS).expect("module");
        let mut linker: wasmtime::Linker<HostState> = wasmtime::Linker::new(runtime.engine());
        linker
            .func_wrap_async(
                "h",
                "c",
                |_caller: wasmtime::Caller<'_, HostState>, (): ()| Box::new(async move { Ok(()) }),
            )
            .expect("host function");
        let started = Instant::now();
        let e = with_deadline(
            "looper",
            "instantiation",
            Duration::from_secs(2),
            linker.instantiate_async(&mut store, &module),
        )
        .await
        .expect_err("stopped");
        assert!(started.elapsed() < Duration::from_secs(5), "{e:#}");
        assert_eq!(
            format!("{e:#}"),
            "plugin looper did not finish instantiation within 2s"
        );
        assert!(store.data().host_calls > 1000, "it did loop");
    }

    #[tokio::test]
    async fn an_oversized_store_value_fails_the_call_and_is_not_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::new(dir.path()).expect("runtime");
        let mut driver = hostile(&runtime, "none").await;
        let flag = driver::FlagValue {
            name: "hostile-limits-mode".into(),
            values: vec!["big-store".into()],
        };
        // The fixture stores its big values at the provider step (`create`).
        driver.set_config("m", &[flag]).await.expect("set-config");
        let e = driver.create().await.expect_err("refused");
        let text = format!("{e:#}");
        assert!(
            text.starts_with("plugin hostile failed in create: store.set refused")
                && text.contains("64 KiB"),
            "{text}"
        );
        let kv = driver.state_kv();
        assert_eq!(
            kv.keys().collect::<Vec<_>>(),
            vec!["mode"],
            "nothing big stored"
        );
    }

    #[tokio::test]
    async fn every_builtin_instantiates_within_the_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::new(dir.path()).expect("runtime");
        for b in builtin::DRIVERS {
            let c = runtime
                .load(&Source::Builtin(*b), Kind::Driver)
                .expect("load");
            let ctx = Offer::new(b.name, Arc::new(Reporter::quiet(false)), BTreeMap::new());
            runtime
                .driver(&c, &grants::Grant::default(), ctx)
                .await
                .expect(b.name);
        }
        for b in builtin::RECIPES {
            let c = runtime
                .load(&Source::Builtin(*b), Kind::Recipe)
                .expect("load");
            let ctx = Offer::new(b.name, Arc::new(Reporter::quiet(false)), BTreeMap::new());
            runtime
                .recipe(&c, &grants::Grant::default(), ctx)
                .await
                .expect(b.name);
        }
    }

    #[tokio::test]
    async fn a_swapped_cache_entry_is_recompiled_not_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::new(dir.path()).expect("runtime");
        let cache = dir.path().join("plugins");
        let entries = |cache: &Path| -> std::collections::BTreeSet<PathBuf> {
            std::fs::read_dir(cache)
                .expect("cache dir")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
                .collect()
        };
        let a = Source::Builtin(builtin::driver("generic").expect("generic"));
        runtime.load(&a, Kind::Driver).expect("compile a");
        let a_entry = entries(&cache).into_iter().next().expect("a's entry");
        let b = Source::Builtin(builtin::driver("none").expect("none"));
        runtime.load(&b, Kind::Driver).expect("compile b");
        let b_entry = entries(&cache)
            .into_iter()
            .find(|p| *p != a_entry)
            .expect("b's entry");
        // The attacker swaps the compiled code, and its recorded digest too.
        for ext in ["cwasm", "sha256"] {
            std::fs::copy(b_entry.with_extension(ext), a_entry.with_extension(ext)).expect("swap");
        }
        let component = runtime.load(&a, Kind::Driver).expect("load a");
        let ctx = Offer::new("a", Arc::new(Reporter::quiet(false)), BTreeMap::new());
        let mut driver = runtime
            .driver(&component, &grants::Grant::default(), ctx)
            .await
            .expect("instantiate");
        assert_eq!(driver.info().await.expect("info").name, "generic");
        // The entry was replaced by a fresh compile of a.
        assert_ne!(
            std::fs::read(&a_entry).expect("a"),
            std::fs::read(&b_entry).expect("b")
        );
    }

    #[tokio::test]
    async fn a_world_writable_cache_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        // Compile generic and none in a private cache, to plant none's code as generic's.
        let private = tempfile::tempdir().expect("tempdir");
        let good = Runtime::new(private.path()).expect("runtime");
        let generic = Source::Builtin(builtin::driver("generic").expect("generic"));
        good.load(&generic, Kind::Driver).expect("compile generic");
        let names: Vec<PathBuf> = std::fs::read_dir(private.path().join("plugins"))
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .collect();
        let none = Source::Builtin(builtin::driver("none").expect("none"));
        good.load(&none, Kind::Driver).expect("compile none");

        let shared = tempfile::tempdir().expect("tempdir");
        let cache = shared.path().join("plugins");
        std::fs::create_dir_all(&cache).expect("cache dir");
        for generic_file in &names {
            let ext = generic_file.extension().expect("ext");
            let none_file = std::fs::read_dir(private.path().join("plugins"))
                .expect("dir")
                .map(|e| e.expect("entry").path())
                .find(|p| !names.contains(p) && p.extension() == Some(ext))
                .expect("none's file");
            std::fs::copy(
                &none_file,
                cache.join(generic_file.file_name().expect("name")),
            )
            .expect("plant");
        }
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let runtime = Runtime::new(shared.path()).expect("runtime");
        let component = runtime.load(&generic, Kind::Driver).expect("load");
        let ctx = Offer::new("g", Arc::new(Reporter::quiet(false)), BTreeMap::new());
        let mut driver = runtime
            .driver(&component, &grants::Grant::default(), ctx)
            .await
            .expect("instantiate");
        assert_eq!(driver.info().await.expect("info").name, "generic");
        assert_eq!(
            std::fs::read_dir(&cache).expect("dir").count(),
            2,
            "nothing written to the shared cache"
        );
    }

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
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
            })
            .collect();
        assert_eq!(cached.len(), 1, "one .cwasm per component");
        let component = runtime
            .load(&generic, Kind::Driver)
            .expect("load from cache");
        let mut driver = runtime
            .driver(
                &component,
                &grants::Grant::default(),
                Offer::new("generic", Arc::new(Reporter::quiet(false)), BTreeMap::new()),
            )
            .await
            .expect("instantiate");
        assert_eq!(driver.info().await.expect("info").name, "generic");
        // A corrupt cache entry is replaced by a fresh compile, not trusted. (Entries are
        // only ever replaced by rename, never rewritten in place: live instances map them.)
        for entry in std::fs::read_dir(dir.path().join("plugins")).expect("cache dir") {
            crate::state::store::write_private(&entry.expect("entry").path(), b"garbage")
                .expect("corrupt");
        }
        runtime
            .load(&generic, Kind::Driver)
            .expect("recompile after corruption");
    }

    /// Load once, decide once: the built-in comparison and an installed plugin's sha256 are
    /// decided on the bytes that are compiled. Before, `create` re-read the path after
    /// loading to decide "byte for byte a built-in" (a file swapped in between passed), and
    /// an installed driver's sha256 was checked on a read before the one that was compiled.
    #[tokio::test]
    async fn the_builtin_and_approval_decisions_use_the_bytes_loaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::new(dir.path()).expect("runtime");
        let none = builtin::driver("none").expect("none");
        let copy = dir.path().join("none.wasm");
        std::fs::write(&copy, none.wasm).expect("copy");
        let (_, grant) = runtime
            .load_granted(&Source::File(copy.clone()), Kind::Driver)
            .expect("a copy of a built-in");
        assert!(grant.builtin, "byte for byte the built-in");
        let other = dir.path().join("other.wasm");
        let mut bytes = none.wasm.to_vec();
        // Same component, one more custom section: no longer byte for byte the built-in.
        bytes.extend_from_slice(&[0, 2, 1, b'x']);
        std::fs::write(&other, &bytes).expect("other");
        let (_, grant) = runtime
            .load_granted(&Source::File(other.clone()), Kind::Driver)
            .expect("another file");
        assert!(!grant.builtin);
        // An installed plugin: the bytes compiled are the ones whose sha256 is checked.
        let installed = Source::Installed {
            name: "none-copy".into(),
            path: copy.clone(),
            sha256: grants::sha256_hex(none.wasm),
        };
        assert!(runtime.load_granted(&installed, Kind::Driver).is_ok());
        std::fs::write(&copy, &bytes).expect("swap the file");
        let err = runtime
            .load_granted(&installed, Kind::Driver)
            .expect_err("changed");
        assert!(
            format!("{err:#}").contains("changed since you installed it"),
            "{err:#}"
        );
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
            text.contains("does not export dmw:plugin/driver@0.1.3")
                && text.contains("is it a driver?"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_driver_importing_keys_without_declaring_it_is_refused_at_load() {
        // The keys test driver with its declaration's section renamed: its code still
        // imports `keys`, its (missing) declaration does not ask for it.
        let mut bytes = std::fs::read(env!("DMW_TEST_KEYS_DRIVER")).expect("keys driver");
        let (from, to) = (
            crate::sandbox::plugin::declaration::SECTION.as_bytes(),
            b"dmw:permissionz",
        );
        let mut renamed = 0;
        for i in 0..bytes.len().saturating_sub(from.len()) {
            if &bytes[i..i + from.len()] == from {
                bytes[i..i + from.len()].copy_from_slice(to);
                renamed += 1;
            }
        }
        assert!(renamed > 0, "the fixture has a declaration");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("undeclared-keys.wasm");
        std::fs::write(&file, &bytes).expect("write");
        let runtime = Runtime::new(dir.path()).expect("runtime");
        let err = runtime
            .load(&Source::File(file), Kind::Driver)
            .expect_err("refused");
        let text = format!("{err:#}");
        assert!(
            text.contains("imports dmw:plugin/keys but does not declare the capability keys"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_public_key_is_lent_only_to_a_driver_granted_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::new(dir.path()).expect("runtime");
        let source = Source::Builtin(builtin::DRIVERS[0]);
        let component = runtime.load(&source, Kind::Driver).expect("load");
        let offer = || {
            let o = Offer::new("d", Arc::new(Reporter::quiet(false)), BTreeMap::new());
            o.public_key.set("ssh-ed25519 AAAA".into()).expect("set");
            o
        };
        let keys = grants::Grant {
            capabilities: vec!["ssh".into(), "keys".into()],
            ..grants::Grant::default()
        };
        let d = runtime.driver(&component, &keys, offer()).await.expect("d");
        let lent = &d.store_data().lent;
        let ctx = lent
            .get::<crate::sandbox::capabilities::keys::KeysCtx>()
            .expect("lent when granted");
        assert_eq!(
            ctx.public_key.get().map(String::as_str),
            Some("ssh-ed25519 AAAA")
        );
        let d = runtime
            .driver(&component, &grants::Grant::default(), offer())
            .await
            .expect("d");
        assert!(
            d.store_data()
                .lent
                .get::<crate::sandbox::capabilities::keys::KeysCtx>()
                .is_none(),
            "not lent without the grant"
        );
    }

    #[tokio::test]
    async fn vm_and_files_are_lent_only_when_granted_and_for_a_machine() {
        use crate::sandbox::capabilities::{files::FilesCtx, vm::VmCtx};
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::new(dir.path()).expect("runtime");
        let source = Source::Builtin(builtin::driver("qemu").expect("qemu is built in"));
        let (component, grant) = runtime.load_granted(&source, Kind::Driver).expect("load");
        assert!(grant.has("vm") && grant.has("files") && grant.has("keys"));
        // The built-in qemu driver runs no program of its own: QEMU is the host's (`vm`).
        assert!(!grant.has("process") && grant.declaration.programs.is_empty());
        let machine = crate::state::store::MachineDir::at(dir.path().join("machines/vm1"));
        let offer = |with_machine: bool| {
            let mut o = Offer::new("qemu", Arc::new(Reporter::quiet(false)), BTreeMap::new());
            if with_machine {
                o.machine_dir = Some(machine.clone());
            }
            o
        };
        // The instance `create` asks for flags: no machine yet, nothing lent.
        let d = runtime
            .driver(&component, &grant, offer(false))
            .await
            .expect("d");
        let lent = &d.store_data().lent;
        assert!(lent.get::<VmCtx>().is_none() && lent.get::<FilesCtx>().is_none());
        assert!(!machine.driver_dir().exists());
        // For a machine: both lent, the directory made (0700) for the preopen.
        let d = runtime
            .driver(&component, &grant, offer(true))
            .await
            .expect("d");
        let lent = &d.store_data().lent;
        assert!(lent.get::<VmCtx>().is_some() && lent.get::<FilesCtx>().is_some());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(machine.driver_dir())
            .expect("made")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        // Not granted: not lent, even for a machine.
        let d = runtime
            .driver(&component, &grants::Grant::default(), offer(true))
            .await
            .expect("d");
        let lent = &d.store_data().lent;
        assert!(lent.get::<VmCtx>().is_none() && lent.get::<FilesCtx>().is_none());
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
                &grants::Grant::default(),
                Offer::new("generic", Arc::new(Reporter::quiet(false)), kv),
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
