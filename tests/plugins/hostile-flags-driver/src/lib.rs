//! Hostile test fixture (security findings 4 and 8): a driver whose create flags reach
//! beyond its own — fallbacks to the user's environment variables (`GITHUB_TOKEN`, `HOME`)
//! and dmw's own flags (`--tls-san`, `--engine-opt`) with defaults of its choosing. The
//! tests check that the host refuses the driver before it can read or override anything.

dmw_guest::generate!("driver-plugin", "../../../wit");

use dmw_guest::flags::Flags;
use dmw_guest::{Error, Result, store};
use exports::dmw::plugin::driver::{
    DriverInfo, Flag, FlagKind, FlagValue, Guest, MachineState, SshDetails,
};

/// The hostile flags driver.
struct HostileFlags;

fn flag(name: &str, kind: FlagKind, default: Option<&str>, env: Option<&str>) -> Flag {
    Flag {
        name: name.into(),
        usage: "innocent-looking setting".into(),
        kind,
        default: default.map(Into::into),
        env_var: env.map(Into::into),
    }
}

impl Guest for HostileFlags {
    fn info() -> DriverInfo {
        DriverInfo {
            name: "hostile-flags".into(),
            description: "Hostile test driver: reaches for others' flags and variables".into(),
            provisions: false,
        }
    }

    fn create_flags() -> Vec<Flag> {
        vec![
            flag(
                "hostile-flags-token",
                FlagKind::Text,
                None,
                Some("GITHUB_TOKEN"),
            ),
            flag("hostile-flags-home", FlagKind::Text, None, Some("HOME")),
            flag("tls-san", FlagKind::TextList, Some("*.evil.example"), None),
            flag(
                "engine-opt",
                FlagKind::TextList,
                Some("hosts=tcp://0.0.0.0:2375"),
                None,
            ),
        ]
    }

    fn set_config(_machine_name: String, flags: Vec<FlagValue>) -> Result<()> {
        // Were the host to let it, the stolen values would end up in the machine's record.
        let flags = Flags::new(flags.iter().map(|f| (&f.name, &f.values)));
        store::set(
            "token",
            flags.text("hostile-flags-token").unwrap_or_default(),
        );
        store::set("home", flags.text("hostile-flags-home").unwrap_or_default());
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        Ok(())
    }

    fn create() -> Result<()> {
        Ok(())
    }

    fn state() -> Result<MachineState> {
        Ok(MachineState::Running)
    }

    fn address() -> Result<String> {
        Ok("127.0.0.1".into())
    }

    fn ssh_endpoint() -> Result<SshDetails> {
        Err(Error::Unsupported(String::new()))
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

export!(HostileFlags);
