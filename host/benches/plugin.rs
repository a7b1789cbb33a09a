//! Plugin start-up costs: compiling a component (first run), loading it from the
//! on-disk cache (every later run) and instantiating it, for the built-in driver and recipe
//! and for plugin files named in `DMW_BENCH_FILES` (`recipe:/path/acme.wasm,driver:…`, e.g.
//! a Python recipe built with `dmw plugin build`).
//! Run: `cargo bench -p dmw --bench plugin`. Figures go to BENCHMARKS.md.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dmw::sandbox::capabilities::Offer;
use dmw::sandbox::plugin::{Kind, Runtime, Source, builtin};
use dmw::text::report::Reporter;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = Arc::new(Reporter::quiet(false));
    let mut plugins: Vec<(Kind, Source, String, usize)> = [
        (Kind::Driver, builtin::DRIVERS[0]),
        (Kind::Recipe, builtin::RECIPES[0]),
    ]
    .into_iter()
    .map(|(kind, b)| (kind, Source::Builtin(b), b.name.to_string(), b.wasm.len()))
    .collect();
    for entry in std::env::var("DMW_BENCH_FILES")
        .unwrap_or_default()
        .split(',')
    {
        let Some((kind, path)) = entry.split_once(':') else {
            continue;
        };
        let kind = if kind == "driver" {
            Kind::Driver
        } else {
            Kind::Recipe
        };
        let size = std::fs::metadata(path)?.len() as usize;
        let name = std::path::Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        plugins.push((kind, Source::File(path.into()), name, size));
    }
    for (kind, source, name, size) in plugins {
        let cache = tempfile::tempdir()?;

        let t = Instant::now();
        let runtime = Runtime::new(cache.path())?;
        let engine_start = t.elapsed();

        let t = Instant::now();
        runtime.load(&source, kind)?;
        let cold = t.elapsed();

        let mut warm_load = Vec::new();
        let mut warm_total = Vec::new();
        let mut instantiate = Vec::new();
        let rounds = if size > 4 << 20 { 10 } else { 50 };
        for _ in 0..rounds {
            let t = Instant::now();
            let (component, grant) = runtime.load_granted(&source, kind)?;
            warm_load.push(t.elapsed());
            let t2 = Instant::now();
            let offer = Offer::new(&name, report.clone(), BTreeMap::new());
            rt.block_on(async {
                match kind {
                    Kind::Driver => runtime.driver(&component, &grant, offer).await.map(drop),
                    Kind::Recipe => runtime.recipe(&component, &grant, offer).await.map(drop),
                }
            })?;
            instantiate.push(t2.elapsed());
            warm_total.push(t.elapsed());
        }
        println!(
            "{kind} {:<8} {:>7} KiB  engine start {:>8.2?}  compile+cache (cold) {:>9.2?}  load from cache {:>8.2?}  instantiate {:>8.2?}  warm total {:>8.2?}",
            name,
            size / 1024,
            engine_start,
            cold,
            median(warm_load),
            median(instantiate),
            median(warm_total),
        );
    }
    Ok(())
}
