//! `log`: plugin messages to the user and the provisioning log.

use crate::plugin::HostState;
use crate::plugin::bindings::v0_1::log::{Host, Level};

impl Host for HostState {
    async fn write(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.ctx.host_calls += 1;
        let text = format!("({}) {message}", self.ctx.plugin);
        match level {
            Level::Debug => self.ctx.report.debug(&text),
            Level::Info => self.ctx.report.info(&text),
            Level::Warn => self.ctx.report.warn(&text),
        }
        Ok(())
    }
}
