//! Test fixture: a driver that misbehaves on demand (`--crashy-mode panic|spin|oom`), so
//! the end-to-end tests can check that the host stops it, reports it and survives.

dmw_guest::generate!("driver-plugin", "../../../wit");

use dmw_guest::flags::Flags;
use dmw_guest::{Error, Result, store};
use exports::dmw::plugin::driver::{
    DriverInfo, Flag, FlagKind, FlagValue, Guest, MachineState, SshDetails,
};

/// Store key of the mode.
const MODE: &str = "mode";

/// The misbehaving driver.
struct Crashy;

/// Misbehave if the stored mode is `mode`.
fn misbehave(mode: &str) {
    if store::get(MODE).as_deref() != Some(mode) {
        return;
    }
    match mode {
        "spin" => {
            // Compute forever without calling the host.
            let mut x: u64 = 1;
            loop {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        "oom" => {
            // Grow memory until the host's cap stops it.
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 16 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        _ => {}
    }
}

impl Guest for Crashy {
    fn info() -> DriverInfo {
        DriverInfo {
            name: "crashy".into(),
            description: "Test driver that misbehaves on demand".into(),
            provisions: true,
        }
    }

    fn create_flags() -> Vec<Flag> {
        vec![Flag {
            name: "crashy-mode".into(),
            usage: "How to misbehave: panic (in set-config), spin or oom (in pre-create-check)"
                .into(),
            kind: FlagKind::Text,
            default: Some("none".into()),
            env_var: None,
        }]
    }

    fn set_config(_machine_name: String, flags: Vec<FlagValue>) -> Result<()> {
        let flags = Flags::new(flags.iter().map(|f| (&f.name, &f.values)));
        let mode = flags.text("crashy-mode").unwrap_or_default();
        if mode == "panic" {
            panic!("crashy driver panics as asked");
        }
        store::set(MODE, &mode);
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        misbehave("spin");
        misbehave("oom");
        Ok(())
    }

    fn create() -> Result<()> {
        Ok(())
    }

    fn state() -> Result<MachineState> {
        Ok(MachineState::Stopped)
    }

    fn address() -> Result<String> {
        Err(Error::Failed("the crashy driver has no machine".into()))
    }

    fn ssh_endpoint() -> Result<SshDetails> {
        Err(Error::Failed("the crashy driver has no machine".into()))
    }

    fn engine_port() -> u16 {
        2376
    }

    fn start() -> Result<()> {
        Ok(())
    }

    fn stop() -> Result<()> {
        Ok(())
    }

    fn restart() -> Result<()> {
        Ok(())
    }

    fn kill() -> Result<()> {
        Ok(())
    }

    fn remove() -> Result<()> {
        Ok(())
    }
}

export!(Crashy);
