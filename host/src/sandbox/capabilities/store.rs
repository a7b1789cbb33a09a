//! `store`: the plugin's private key-value state for the machine.
//!
//! Everything a plugin stores ends up in the machine record (`config.json`), so the store
//! is bounded: a `set` over a limit stores nothing and traps the call, which surfaces as
//! an error of the plugin's export call naming the limit (WIT 0.1's `set` returns nothing,
//! so a trap is the only visible refusal).

use std::collections::BTreeMap;

use wasmtime::component::Linker;

use super::{Capability, CapabilityView, Granted, Lend, Lent, Offer, project};
use crate::sandbox::contract::v0_1::store::{self as wit, Host};

/// The `store` capability (every plugin has it).
pub const fn capability<T: CapabilityView>() -> Capability<T> {
    Capability {
        name: "store",
        link: add_to_linker::<T>,
        lend,
        wasi: super::no_wasi,
    }
}

/// Called with the whole store after each change: the host keeps a machine's state on
/// disk as it changes, so a create killed midway leaves the ids of what it made findable
/// by `rm`.
pub type Journal = std::sync::Arc<dyn Fn(&BTreeMap<String, String>) + Send + Sync>;

/// Most changes written through the journal for one plugin instance: a driver records a
/// few dozen ids while it creates; a plugin that sets keys in a loop must not turn each set
/// into a record write (the record is still saved when the call ends).
pub const MAX_JOURNAL_WRITES: u32 = MAX_KEYS as u32;

/// The plugin's key-value state for this machine.
#[derive(Default)]
pub struct StoreCtx {
    /// Keys and values, persisted in the machine record.
    pub kv: BTreeMap<String, String>,
    /// Where each change is written at once, when the host asked for it.
    pub journal: Option<Journal>,
    /// Journal writes made so far (at most [`MAX_JOURNAL_WRITES`]).
    pub journal_writes: u32,
}

impl StoreCtx {
    /// Write the store through the journal, if there is one and its budget is not spent.
    fn record(&mut self) {
        if let Some(journal) = &self.journal
            && self.journal_writes < MAX_JOURNAL_WRITES
        {
            self.journal_writes += 1;
            journal(&self.kv);
        }
    }
}

/// Link `store` through [`StoreCtx`].
pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Lend<StoreCtx>>(linker, project::<T, StoreCtx>)
}

fn lend(offer: &Offer, lent: &mut Lent) {
    lent.insert(StoreCtx {
        kv: offer.kv.clone(),
        journal: None,
        journal_writes: 0,
    });
}

/// The store, or an empty one when it was not lent (it always is).
fn kv<'a>(g: &'a mut Granted<'_, StoreCtx>) -> Option<&'a mut BTreeMap<String, String>> {
    g.ctx.as_deref_mut().map(|c| &mut c.kv)
}

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Longest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 << 10;
/// Most keys one plugin may store for a machine.
pub const MAX_KEYS: usize = 256;
/// Most bytes of keys and values together.
pub const MAX_TOTAL_BYTES: usize = 1 << 20;

/// Bytes of keys and values in `kv`.
fn total_bytes(kv: &BTreeMap<String, String>) -> usize {
    kv.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// Why `set(key, value)` may not be stored in `kv`, if it may not.
pub(crate) fn refuse_set(kv: &BTreeMap<String, String>, key: &str, value: &str) -> Option<String> {
    let shown: String = key.chars().take(40).collect();
    if key.len() > MAX_KEY_BYTES {
        return Some(format!(
            "store.set refused: a key of {} bytes (\"{shown}…\") is over the limit of {MAX_KEY_BYTES} bytes",
            key.len()
        ));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Some(format!(
            "store.set refused: the value of \"{shown}\" is {} bytes, over the limit of {} KiB per value",
            value.len(),
            MAX_VALUE_BYTES >> 10
        ));
    }
    let old = kv.get(key);
    if old.is_none() && kv.len() >= MAX_KEYS {
        return Some(format!(
            "store.set refused: \"{shown}\" would be key {}, over the limit of {MAX_KEYS} keys",
            kv.len() + 1
        ));
    }
    let total = total_bytes(kv) - old.map_or(0, |v| key.len() + v.len()) + key.len() + value.len();
    if total > MAX_TOTAL_BYTES {
        return Some(format!(
            "store.set refused: storing \"{shown}\" would make the plugin's store {total} bytes, over the limit of {} KiB",
            MAX_TOTAL_BYTES >> 10
        ));
    }
    None
}

impl Host for Granted<'_, StoreCtx> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(kv(self).and_then(|kv| kv.get(&key).cloned()))
    }

    async fn set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        let Some(kv) = kv(self) else {
            return Err(wasmtime::Error::msg("store.set refused: no store here"));
        };
        if let Some(why) = refuse_set(kv, &key, &value) {
            return Err(wasmtime::Error::msg(why));
        }
        if kv.get(&key) != Some(&value) {
            kv.insert(key, value);
            if let Some(ctx) = self.ctx.as_deref_mut() {
                ctx.record();
            }
        }
        Ok(())
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        if kv(self).and_then(|kv| kv.remove(&key)).is_some()
            && let Some(ctx) = self.ctx.as_deref_mut()
        {
            ctx.record();
        }
        Ok(())
    }

    async fn keys(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(kv(self)
            .map(|kv| kv.keys().cloned().collect())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each change reaches the journal with the whole store, up to the budget.
    #[test]
    fn the_journal_gets_each_change_within_its_budget() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let writes = std::sync::Arc::new(AtomicU32::new(0));
        let w = writes.clone();
        let mut ctx = StoreCtx {
            journal: Some(std::sync::Arc::new(move |kv: &BTreeMap<String, String>| {
                assert!(kv.contains_key("id"));
                w.fetch_add(1, Ordering::SeqCst);
            })),
            ..StoreCtx::default()
        };
        ctx.kv.insert("id".into(), "1".into());
        ctx.record();
        assert_eq!(writes.load(Ordering::SeqCst), 1);
        for _ in 0..1000 {
            ctx.record();
        }
        assert_eq!(writes.load(Ordering::SeqCst), MAX_JOURNAL_WRITES);
    }

    #[test]
    fn set_within_limits_is_allowed() {
        let mut kv = BTreeMap::new();
        assert_eq!(refuse_set(&kv, "k", &"v".repeat(MAX_VALUE_BYTES)), None);
        kv.insert("k".to_string(), "v".repeat(MAX_VALUE_BYTES));
        // Replacing a value counts the new size, not both.
        assert_eq!(refuse_set(&kv, "k", &"w".repeat(MAX_VALUE_BYTES)), None);
    }

    #[test]
    fn oversized_key_value_count_and_total_are_refused() {
        let kv = BTreeMap::new();
        let e = refuse_set(&kv, &"k".repeat(MAX_KEY_BYTES + 1), "v").expect("long key");
        assert!(e.contains("256 bytes"), "{e}");
        let e = refuse_set(&kv, "big", &"v".repeat(64 << 20)).expect("big value");
        assert!(e.contains("\"big\"") && e.contains("64 KiB"), "{e}");

        let mut kv = BTreeMap::new();
        for i in 0..MAX_KEYS {
            kv.insert(format!("k{i}"), String::new());
        }
        let e = refuse_set(&kv, "one-more", "v").expect("too many keys");
        assert!(e.contains("256 keys"), "{e}");
        assert_eq!(refuse_set(&kv, "k0", "v"), None, "replacing is fine");

        let mut kv = BTreeMap::new();
        for i in 0..(MAX_TOTAL_BYTES / MAX_VALUE_BYTES) {
            kv.insert(format!("{i}"), "v".repeat(MAX_VALUE_BYTES - 8));
        }
        let e = refuse_set(&kv, "last", &"v".repeat(MAX_VALUE_BYTES)).expect("total");
        assert!(e.contains("1024 KiB"), "{e}");
    }
}
