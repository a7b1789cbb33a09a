//! `store`: the plugin's private key-value state for the machine.

use crate::plugin::HostState;
use crate::plugin::bindings::v0_1::store::Host;

impl Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.ctx.host_calls += 1;
        Ok(self.ctx.kv.get(&key).cloned())
    }

    async fn set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        self.ctx.host_calls += 1;
        self.ctx.kv.insert(key, value);
        Ok(())
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.ctx.host_calls += 1;
        self.ctx.kv.remove(&key);
        Ok(())
    }

    async fn keys(&mut self) -> wasmtime::Result<Vec<String>> {
        self.ctx.host_calls += 1;
        Ok(self.ctx.kv.keys().cloned().collect())
    }
}
