//! `log`: plugin messages to the user and the provisioning log.

use crate::plugin::HostState;
use crate::plugin::bindings::v0_1::log::{Host, Level};

impl Host for HostState {
    async fn write(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        // Plugin text is hostile: one inert, bounded line, prefixed with the plugin's name.
        let text = format!(
            "({}) {}",
            self.ctx.plugin,
            crate::sanitize::plugin_text(&message, crate::sanitize::MESSAGE_LIMIT)
        );
        match level {
            Level::Debug => self.ctx.report.debug(&text),
            Level::Info => self.ctx.report.info(&text),
            Level::Warn => self.ctx.report.warn(&text),
        }
        Ok(())
    }
}
