//! One plugin call at a time: the wall-clock deadline of every call (and of
//! instantiation), the host-call cap and the compute rule checked at each epoch tick, the
//! quota check during a driver call, and the wording of a call's failure.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use super::limits::{CHECK_TICKS, COMPUTE_TICKS, MEMORY_LIMIT, TICK};

/// Environment variable that lowers every per-call wall-clock limit (whole seconds; a
/// value above a call's own limit is ignored). Meant for tests.
pub const CALL_TIMEOUT_ENV: &str = "DMW_PLUGIN_CALL_TIMEOUT";

/// The export call running now (set by [`with_deadline`] around the call's future, read by
/// the epoch callback, which runs inside that future's poll).
pub(super) struct CallScope {
    pub(super) id: u64,
    pub(super) plugin: String,
    pub(super) func: String,
    pub(super) limit: Duration,
    pub(super) deadline: Instant,
}

tokio::task_local! {
    pub(super) static CALL: CallScope;
}

/// The calls that end things: never refused for the plugin directory's quota (so a
/// machine whose directory is full can still be stopped and removed).
pub(crate) const ENDING_CALLS: &[&str] = &["stop", "kill", "remove"];

/// The export call running now in this task, if any (its WIT name).
pub(super) fn current_call() -> Option<String> {
    CALL.try_with(|c| c.func.clone()).ok()
}

/// Numbers the calls, so the epoch callback sees when a new one starts.
static CALL_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// What the epoch callback remembers between ticks.
#[derive(Debug, Default)]
pub(super) struct CallWatch {
    /// `HostState::host_calls` at the previous tick.
    pub(super) host_calls_seen: u64,
    /// Ticks since the last host call.
    pub(super) idle_ticks: u64,
    /// The call the counters below belong to.
    pub(super) call_id: u64,
    /// Host calls made in that call (counted at ticks).
    pub(super) call_host_calls: u64,
    /// Most host calls per export call.
    pub(super) max_host_calls: u64,
}

/// The current call as seen at one epoch tick.
pub(super) struct TickCall<'a> {
    pub(super) id: u64,
    pub(super) plugin: &'a str,
    pub(super) func: &'a str,
    pub(super) limit: Duration,
    pub(super) deadline: Instant,
}

impl CallWatch {
    /// Decide at one epoch tick whether the plugin may go on: `host_calls` is the
    /// instance's count of host calls so far, `call` the export call running (if known).
    pub(super) fn tick(
        &mut self,
        host_calls: u64,
        call: Option<TickCall<'_>>,
        now: Instant,
    ) -> std::result::Result<(), String> {
        let new_calls = host_calls.saturating_sub(self.host_calls_seen);
        self.host_calls_seen = host_calls;
        if new_calls > 0 {
            self.idle_ticks = 0;
        } else {
            self.idle_ticks += CHECK_TICKS;
        }
        if let Some(call) = &call {
            if call.id != self.call_id {
                self.call_id = call.id;
                self.call_host_calls = 0;
            }
            self.call_host_calls = self.call_host_calls.saturating_add(new_calls);
            if now >= call.deadline {
                return Err(timeout_message(call.plugin, call.func, call.limit));
            }
            if self.call_host_calls > self.max_host_calls {
                return Err(format!(
                    "plugin {} made more than {} host calls in {}",
                    call.plugin, self.max_host_calls, call.func
                ));
            }
        }
        if self.idle_ticks >= COMPUTE_TICKS {
            return Err(format!(
                "plugin computed for more than {}s without calling the host",
                COMPUTE_TICKS * TICK.as_millis() as u64 / 1000
            ));
        }
        Ok(())
    }
}

/// The message of a call stopped at its wall-clock limit.
fn timeout_message(plugin: &str, func: &str, limit: Duration) -> String {
    format!(
        "plugin {plugin} did not finish {func} within {}s",
        limit.as_secs()
    )
}

/// Turn a failed call into a user-facing error: a trap names the plugin and the reason.
pub(crate) fn call_error(plugin: &str, func: &str, e: wasmtime::Error) -> anyhow::Error {
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return anyhow!("plugin {plugin} crashed in {func}: {trap}");
    }
    let cause =
        crate::text::sanitize::plugin_text(&root_cause(&e), crate::text::sanitize::MESSAGE_LIMIT);
    if cause.starts_with(&format!("plugin {plugin} ")) {
        // Our own limits (epoch callback): the message already names plugin and call.
        return anyhow!("{cause}");
    }
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

/// `limit`, lowered by `$DMW_PLUGIN_CALL_TIMEOUT` (whole seconds, at least 1) if set lower.
fn effective_limit(limit: Duration, env: Option<&str>) -> Duration {
    match env.and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(secs) => limit.min(Duration::from_secs(secs.max(1))),
        None => limit,
    }
}

/// Run one plugin call with a wall-clock limit (enforced by a timer and, while the plugin
/// runs, by the epoch callback) and the per-call host-call cap.
pub(crate) async fn with_deadline<T>(
    plugin: &str,
    func: &str,
    limit: Duration,
    fut: impl std::future::Future<Output = wasmtime::Result<T>>,
) -> Result<T> {
    let limit = effective_limit(limit, std::env::var(CALL_TIMEOUT_ENV).ok().as_deref());
    let scope = CallScope {
        id: CALL_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        plugin: plugin.to_string(),
        func: func.to_string(),
        limit,
        deadline: Instant::now() + limit,
    };
    match tokio::time::timeout(limit, CALL.scope(scope, fut)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(call_error(plugin, func, e)),
        Err(_) => Err(anyhow!("{}", timeout_message(plugin, func, limit))),
    }
}

/// The text of an error a plugin returned, made inert and bounded
/// ([`crate::text::sanitize::plugin_text`]): it is shown on the terminal and kept in the record.
pub(crate) fn describe_error(
    plugin: &str,
    func: &str,
    e: &crate::sandbox::contract::v0_1::types::Error,
) -> String {
    use crate::sandbox::contract::v0_1::types::Error as E;
    let text = match e {
        E::InvalidInput(m) | E::Failed(m) | E::Unreachable(m) | E::Denied(m) => m.as_str(),
        E::Unsupported(m) if m.is_empty() => {
            return format!("{plugin} does not support {func}");
        }
        E::Unsupported(m) => m.as_str(),
    };
    crate::text::sanitize::plugin_text(text, crate::text::sanitize::MESSAGE_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::super::limits::MAX_HOST_CALLS;
    use super::*;

    fn call<'a>(id: u64, deadline: Instant) -> Option<TickCall<'a>> {
        Some(TickCall {
            id,
            plugin: "p",
            func: "state",
            limit: Duration::from_secs(60),
            deadline,
        })
    }

    #[test]
    fn a_call_is_stopped_at_its_deadline_even_while_calling_the_host() {
        let now = Instant::now();
        let mut w = CallWatch {
            max_host_calls: MAX_HOST_CALLS,
            ..CallWatch::default()
        };
        let later = now + Duration::from_secs(60);
        for i in 1..100 {
            assert_eq!(w.tick(i * 1000, call(1, later), now), Ok(()));
        }
        assert_eq!(
            w.tick(100_000, call(1, later), later),
            Err("plugin p did not finish state within 60s".to_string())
        );
    }

    #[test]
    fn host_calls_per_call_are_capped() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut w = CallWatch {
            max_host_calls: 1000,
            ..CallWatch::default()
        };
        assert_eq!(w.tick(600, call(1, later), now), Ok(()));
        assert_eq!(
            w.tick(1001, call(1, later), now),
            Err("plugin p made more than 1000 host calls in state".to_string())
        );
        // A new call starts from zero.
        let mut w = CallWatch {
            max_host_calls: 1000,
            ..CallWatch::default()
        };
        assert_eq!(w.tick(900, call(1, later), now), Ok(()));
        assert_eq!(w.tick(1800, call(2, later), now), Ok(()));
    }

    #[test]
    fn computing_without_host_calls_is_still_capped() {
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut w = CallWatch {
            max_host_calls: MAX_HOST_CALLS,
            ..CallWatch::default()
        };
        for _ in 0..(COMPUTE_TICKS / CHECK_TICKS - 1) {
            assert_eq!(w.tick(0, call(1, later), now), Ok(()));
        }
        let e = w.tick(0, call(1, later), now).expect_err("idle too long");
        assert!(e.contains("without calling the host"), "{e}");
        // Outside any call (no scope) the compute rule still holds.
        let mut w = CallWatch::default();
        for _ in 0..(COMPUTE_TICKS / CHECK_TICKS - 1) {
            assert_eq!(w.tick(0, None, now), Ok(()));
        }
        assert!(w.tick(0, None, now).is_err());
    }

    #[test]
    fn the_timeout_override_only_lowers() {
        let m = Duration::from_secs(60);
        assert_eq!(effective_limit(m, None), m);
        assert_eq!(effective_limit(m, Some("5")), Duration::from_secs(5));
        assert_eq!(effective_limit(m, Some("600")), m);
        assert_eq!(effective_limit(m, Some("0")), Duration::from_secs(1));
        assert_eq!(effective_limit(m, Some("x")), m);
    }
}
