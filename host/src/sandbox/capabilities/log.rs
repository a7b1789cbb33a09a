//! `log`: plugin messages to the user and the provisioning log.

use std::sync::Arc;

use wasmtime::component::Linker;

use super::{Capability, CapabilityView, Granted, Lend, Lent, Offer, project};
use crate::sandbox::contract::v0_1::log::{self as wit, Host, Level};
use crate::text::report::Reporter;

/// The `log` capability (every plugin has it).
pub const fn capability<T: CapabilityView>() -> Capability<T> {
    Capability {
        name: "log",
        link: add_to_linker::<T>,
        lend,
        wasi: super::no_wasi,
    }
}

/// Where a plugin's messages go.
pub struct LogCtx {
    /// Progress output and the machine's provisioning log.
    pub report: Arc<Reporter>,
}

/// Link `log` through [`LogCtx`].
pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Lend<LogCtx>>(linker, project::<T, LogCtx>)
}

fn lend(offer: &Offer, lent: &mut Lent) {
    lent.insert(LogCtx {
        report: offer.report.clone(),
    });
}

impl Host for Granted<'_, LogCtx> {
    async fn write(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let Some(ctx) = self.ctx.as_deref() else {
            return Ok(());
        };
        // Plugin text is hostile: one inert, bounded line, prefixed with the plugin's name.
        let text = format!(
            "({}) {}",
            self.plugin,
            crate::text::sanitize::plugin_text(&message, crate::text::sanitize::MESSAGE_LIMIT)
        );
        match level {
            Level::Debug => ctx.report.debug(&text),
            Level::Info => ctx.report.info(&text),
            Level::Warn => ctx.report.warn(&text),
        }
        Ok(())
    }
}
