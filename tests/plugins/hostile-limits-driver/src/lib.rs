//! Test fixture: a driver that tries to exhaust the host through host calls
//! (`--hostile-limits-mode MODE`), so the end-to-end tests can check that the host bounds
//! every value and every loop that crosses the plugin boundary.
//!
//! Modes:
//! - `host-call-loop`: `pre-create-check` calls `store.get` forever;
//! - `big-store`: `create` stores 8 values of 64 MiB;
//! - `big-log`: `create` logs 100 messages of 1 MiB;
//! - `state-loop`: `create` fails (the record is kept), and `state` and `remove` of the machine
//!   compute a little and call `store.get`, forever (so `ls` and `rm -f` meet the loop; it
//!   is slow enough that the call's wall-clock limit stops it, not the host-call cap).

use dmw_guest::driver::{Driver, MachineState, SshEndpoint};
use dmw_guest::flags::{Flag, Flags};
use dmw_guest::{Error, Result, store};

/// Store key of the mode.
const MODE: &str = "mode";

/// The hostile driver.
struct Hostile;

/// Whether the stored mode is `mode`.
fn mode_is(mode: &str) -> bool {
    store::get(MODE).as_deref() == Some(mode)
}

/// Call the host forever (each call is cheap, so the compute deadline never fires).
fn host_call_loop() -> ! {
    loop {
        std::hint::black_box(store::get(MODE));
    }
}

/// Compute for a while (~0.1 ms) between host calls, forever.
fn slow_host_call_loop() -> ! {
    let mut x: u64 = 1;
    loop {
        for _ in 0..100_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        std::hint::black_box(store::get(MODE));
    }
}

impl Driver for Hostile {
    const NAME: &'static str = "hostile-limits";
    const DESCRIPTION: &'static str =
        "Test driver that tries to exhaust the host through host calls";

    fn create_flags() -> Vec<Flag> {
        vec![
            Flag::text(
                "hostile-limits-mode",
                "host-call-loop, big-store, big-log or state-loop",
            )
            .default_value("none"),
        ]
    }

    fn set_config(_machine_name: &str, flags: &Flags) -> Result<()> {
        let mode = flags.text("hostile-limits-mode").unwrap_or_default();
        store::set(MODE, &mode);
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        if mode_is("host-call-loop") {
            host_call_loop();
        }
        Ok(())
    }

    fn create() -> Result<()> {
        // At the provider step, so the record is kept: it must stay small and loadable.
        match store::get(MODE).unwrap_or_default().as_str() {
            "big-store" => {
                let value = "x".repeat(64 << 20);
                for i in 0..8 {
                    // The raw import: `store::set` would copy the value first.
                    dmw_guest::host::store_set(&format!("big-{i}"), &value);
                }
            }
            "big-log" => {
                let message = "y".repeat(1 << 20);
                for _ in 0..100 {
                    dmw_guest::info(&message);
                }
            }
            _ => {}
        }
        // Failing at the provider step keeps the record, whose state and remove then loop.
        if mode_is("state-loop") {
            return Err(Error::Failed(
                "the hostile driver stops here; its state and remove loop".into(),
            ));
        }
        Ok(())
    }

    fn state() -> Result<MachineState> {
        if mode_is("state-loop") {
            slow_host_call_loop();
        }
        Ok(MachineState::Stopped)
    }

    fn address() -> Result<String> {
        Err(Error::Failed("the hostile driver has no machine".into()))
    }

    fn ssh_endpoint() -> Result<SshEndpoint> {
        // Never used: every mode fails before the host waits for SSH.
        Ok(SshEndpoint {
            address: "127.0.0.1".into(),
            port: 1,
            user: "root".into(),
            key_path: None,
        })
    }

    fn remove() -> Result<()> {
        if mode_is("state-loop") {
            slow_host_call_loop();
        }
        Ok(())
    }
}

dmw_guest::export_driver!(Hostile, "../../../wit");
