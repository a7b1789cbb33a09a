//! What one plugin instance may take: its memory, instances and tables (summed over
//! everything it creates), its host calls per call, its compute time between host calls,
//! and the epoch tick that measures it.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Epoch tick length.
pub(super) const TICK: Duration = Duration::from_millis(100);

/// Longest a plugin may compute without calling the host (in ticks): 10 s.
pub(super) const COMPUTE_TICKS: u64 = 100;

/// How often (in ticks) the compute deadline looks at the plugin: every 1 s.
pub(super) const CHECK_TICKS: u64 = 10;

/// Memory cap of one plugin instance: all its linear memories together.
pub(super) const MEMORY_LIMIT: usize = 128 << 20;

/// Most core instances one plugin may create (a component is a handful of them).
pub(super) const MAX_INSTANCES: usize = 64;

/// Most linear memories one plugin may create.
pub(super) const MAX_MEMORIES: usize = 16;

/// Most tables one plugin may create.
pub(super) const MAX_TABLES: usize = 64;

/// Most table elements of one plugin, all tables together.
pub(super) const MAX_TABLE_ELEMENTS: usize = 1 << 17;

/// Most host calls one export call may make.
pub(super) const MAX_HOST_CALLS: u64 = 1_000_000;

/// Limit for instantiating a plugin (its start functions and initialisers).
pub(super) const INSTANTIATE_LIMIT: Duration = Duration::from_secs(10);

/// Resource limits of one plugin instance, summed over everything it creates: wasmtime's
/// own `StoreLimits` caps each linear memory and each table on its own, so a plugin with
/// many memories could take many times the cap.
#[derive(Debug)]
pub struct PluginLimiter {
    memory_limit: usize,
    memory_total: usize,
    table_elements_limit: usize,
    table_elements_total: usize,
}

impl PluginLimiter {
    /// Limits for one plugin: `memory_limit` bytes of linear memory and
    /// `table_elements_limit` table elements in total.
    pub fn new(memory_limit: usize, table_elements_limit: usize) -> PluginLimiter {
        PluginLimiter {
            memory_limit,
            memory_total: 0,
            table_elements_limit,
            table_elements_total: 0,
        }
    }
}

/// Count a growth from `current` to `desired` against `total`, which may not pass `limit`.
/// A growth past the item's own `maximum` is refused the wasm way (`false`: `grow` returns
/// -1); one past the plugin's total traps with `over(total)`.
fn grow_within(
    total: &mut usize,
    limit: usize,
    (current, desired, maximum): (usize, usize, Option<usize>),
    over: impl FnOnce(usize) -> String,
) -> wasmtime::Result<bool> {
    if maximum.is_some_and(|max| desired > max) {
        return Ok(false);
    }
    let grown = total.saturating_add(desired.saturating_sub(current));
    if grown > limit {
        return Err(wasmtime::Error::msg(over(grown)));
    }
    *total = grown;
    Ok(true)
}

impl ResourceLimiter for PluginLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        grow_within(
            &mut self.memory_total,
            self.memory_limit,
            (current, desired, maximum),
            |total| {
                format!(
                    "growing memory to {desired} bytes would take the plugin's memories to {} MiB in total",
                    total >> 20
                )
            },
        )
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = self.table_elements_limit;
        grow_within(
            &mut self.table_elements_total,
            limit,
            (current, desired, maximum),
            |total| {
                format!(
                    "growing a table to {desired} elements would give the plugin {total} table elements in total (limit {limit})"
                )
            },
        )
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::{Engine, Store};

    /// A core module with two memories (0 pages each) and `grow0`/`grow1(pages) -> old`.
    const TWO_MEMORIES: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // header
        0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, // type: (i32) -> i32
        0x03, 0x03, 0x02, 0x00, 0x00, // two functions of that type
        0x05, 0x05, 0x02, 0x00, 0x00, 0x00, 0x00, // two memories, min 0
        0x07, 0x11, 0x02, // two exports
        0x05, b'g', b'r', b'o', b'w', b'0', 0x00, 0x00, //
        0x05, b'g', b'r', b'o', b'w', b'1', 0x00, 0x01, //
        0x0a, 0x0f, 0x02, // code
        0x06, 0x00, 0x20, 0x00, 0x40, 0x00, 0x0b, // local.get 0; memory.grow 0
        0x06, 0x00, 0x20, 0x00, 0x40, 0x01, 0x0b, // local.get 0; memory.grow 1
    ];

    /// A core module declaring `n` memories (n < 64).
    fn many_memories(n: u8) -> Vec<u8> {
        let mut m = vec![0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
        m.extend([0x05, 1 + 2 * n, n]);
        for _ in 0..n {
            m.extend([0x00, 0x00]);
        }
        m
    }

    fn limited_store(engine: &Engine) -> Store<PluginLimiter> {
        let mut store = Store::new(engine, PluginLimiter::new(MEMORY_LIMIT, MAX_TABLE_ELEMENTS));
        store.limiter(|l| l);
        store
    }

    #[test]
    fn the_memory_cap_counts_every_memory_of_the_plugin() {
        let engine = Engine::default();
        let module = wasmtime::Module::new(&engine, TWO_MEMORIES).expect("module");
        let mut store = limited_store(&engine);
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).expect("instantiate");
        let grow0 = instance
            .get_typed_func::<i32, i32>(&mut store, "grow0")
            .expect("grow0");
        let grow1 = instance
            .get_typed_func::<i32, i32>(&mut store, "grow1")
            .expect("grow1");
        // 1500 pages = 93.75 MiB: each memory alone is under the 128 MiB cap...
        assert_eq!(grow0.call(&mut store, 1500).expect("first memory"), 0);
        // ...but both together are not.
        let e = grow1.call(&mut store, 1500).expect_err("over the total");
        let text = format!("{e:?}");
        assert!(
            text.contains("growing memory") && text.contains("in total"),
            "{text}"
        );
        // What still fits is allowed: 93.75 + 31.25 = 125 MiB.
        let mut store = limited_store(&engine);
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).expect("instantiate");
        for (name, pages) in [("grow0", 1500), ("grow1", 500)] {
            let f = instance
                .get_typed_func::<i32, i32>(&mut store, name)
                .expect("export");
            assert_eq!(f.call(&mut store, pages).expect("fits"), 0);
        }
    }

    #[test]
    fn the_number_of_memories_is_capped() {
        let engine = Engine::default();
        let ok = wasmtime::Module::new(&engine, many_memories(MAX_MEMORIES as u8)).expect("ok");
        wasmtime::Instance::new(&mut limited_store(&engine), &ok, &[]).expect("at the cap");
        let bad =
            wasmtime::Module::new(&engine, many_memories(MAX_MEMORIES as u8 + 1)).expect("module");
        let e = wasmtime::Instance::new(&mut limited_store(&engine), &bad, &[])
            .expect_err("over the cap");
        assert!(format!("{e:?}").contains("memor"), "{e:?}");
    }
}
