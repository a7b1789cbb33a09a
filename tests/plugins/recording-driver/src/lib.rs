//! Test fixture: a driver for an existing host (like `generic`) whose power actions are
//! played on the host's Docker engine over SSH — `stop` and `kill` take the engine down,
//! `start` brings it back, `restart` restarts it — and appended to the store key `calls`,
//! so the end-to-end tests can check what the host asked of the driver and what followed.

dmw_guest::generate!("driver-plugin", "../../../wit");

use dmw_guest::flags::Flags;
use dmw_guest::{Error, Result, info, store};
use exports::dmw::plugin::driver::{
    DriverInfo, Flag, FlagKind, FlagValue, Guest, MachineState, SshDetails,
};

/// Store key of the host's address.
const IP: &str = "ip-address";
/// Store key of the SSH user.
const USER: &str = "ssh-user";
/// Store key of the SSH key path.
const KEY: &str = "ssh-key";
/// Store key of the power state: `running` or `stopped`.
const POWER: &str = "power";
/// Store key of the calls made so far, comma-separated.
const CALLS: &str = "calls";

/// The recording driver.
struct Recording;

/// Append `call` to the recorded calls.
fn record(call: &str) {
    let calls = match store::get(CALLS).filter(|c| !c.is_empty()) {
        Some(c) => format!("{c},{call}"),
        None => call.to_string(),
    };
    store::set(CALLS, calls);
}

/// Run `command` as root on the host, as the "hardware" side of a power action.
fn act(call: &str, command: &str, power: &str) -> Result<()> {
    record(call);
    dmw_guest::run_root(command)?;
    store::set(POWER, power);
    Ok(())
}

/// A text flag with no environment variable.
fn text_flag(name: &str, usage: &str, default: Option<&str>) -> Flag {
    Flag {
        name: name.into(),
        usage: usage.into(),
        kind: FlagKind::Text,
        default: default.map(Into::into),
        env_var: None,
    }
}

impl Guest for Recording {
    fn info() -> DriverInfo {
        DriverInfo {
            name: "recording".into(),
            description: "Test driver: power actions act on the host's engine and are recorded"
                .into(),
            provisions: true,
        }
    }

    fn create_flags() -> Vec<Flag> {
        vec![
            text_flag("recording-ip-address", "Address of the host", None),
            text_flag("recording-ssh-user", "SSH user", Some("root")),
            text_flag("recording-ssh-key", "SSH private key path", Some("")),
        ]
    }

    fn set_config(_machine_name: String, flags: Vec<FlagValue>) -> Result<()> {
        let flags = Flags::new(flags.iter().map(|f| (&f.name, &f.values)));
        let ip = flags.required_text(
            "recording-ip-address",
            "recording driver requires --recording-ip-address",
        )?;
        store::set(IP, ip);
        store::set(USER, flags.text("recording-ssh-user").unwrap_or_default());
        store::set(KEY, flags.text("recording-ssh-key").unwrap_or_default());
        store::set(POWER, "running");
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        store::require(IP).map(|_| ())
    }

    fn create() -> Result<()> {
        record("create");
        Ok(())
    }

    fn state() -> Result<MachineState> {
        match store::get(POWER).as_deref() {
            Some("stopped") => Ok(MachineState::Stopped),
            Some("running") => Ok(MachineState::Running),
            other => Err(Error::Failed(format!("unknown power state {other:?}"))),
        }
    }

    fn address() -> Result<String> {
        store::require(IP)
    }

    fn ssh_endpoint() -> Result<SshDetails> {
        Ok(SshDetails {
            address: store::require(IP)?,
            port: 22,
            user: store::get(USER)
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "root".into()),
            key_path: store::get(KEY).filter(|k| !k.is_empty()),
        })
    }

    fn engine_port() -> u16 {
        2376
    }

    fn start() -> Result<()> {
        // Tests power-cycle quickly: systemd's start rate limit must not count against them.
        act(
            "start",
            "systemctl reset-failed docker.service docker.socket; systemctl start docker.socket docker.service",
            "running",
        )
    }

    fn stop() -> Result<()> {
        act(
            "stop",
            "systemctl stop docker.socket docker.service",
            "stopped",
        )
    }

    fn restart() -> Result<()> {
        info("Restarting the engine as the machine's reboot");
        act(
            "restart",
            "systemctl reset-failed docker.service; systemctl restart docker.service",
            "running",
        )
    }

    fn kill() -> Result<()> {
        act(
            "kill",
            "systemctl kill --signal=KILL docker.service; systemctl stop docker.socket docker.service",
            "stopped",
        )
    }

    fn remove() -> Result<()> {
        record("remove");
        Ok(())
    }
}

export!(Recording);
