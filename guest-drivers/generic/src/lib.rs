//! The `generic` driver: an existing Linux machine reached over SSH, as in Docker
//! Machine's generic driver. It makes nothing; it records where the machine is.

dmw_guest::generate!("driver-plugin");

use dmw_guest::flags::Flags;
use dmw_guest::{Error, Result, info, store};
use exports::dmw::plugin::driver::{
    DriverInfo, Flag, FlagKind, FlagValue, Guest, MachineState, SshDetails,
};

/// Store keys.
const IP: &str = "ip-address";
/// Store key of the SSH user.
const USER: &str = "ssh-user";
/// Store key of the SSH key path on the user's machine.
const KEY: &str = "ssh-key";
/// Store key of the SSH port.
const SSH_PORT: &str = "ssh-port";
/// Store key of the engine port.
const ENGINE_PORT: &str = "engine-port";

/// Docker Machine's SSH reachability timeout for `state` (15 s).
const STATE_TIMEOUT_MS: u32 = 15_000;

/// The generic driver.
struct Generic;

/// One create flag.
fn flag(name: &str, usage: &str, kind: FlagKind, default: Option<&str>, env: &str) -> Flag {
    Flag {
        name: name.into(),
        usage: usage.into(),
        kind,
        default: default.map(Into::into),
        env_var: Some(env.into()),
    }
}

/// A port flag's value: absent → `default`, else 1..=65535.
fn port(flags: &Flags, name: &str, default: u16) -> Result<u16> {
    match flags.int::<u32>(name)? {
        None => Ok(default),
        Some(p) if (1..=65535).contains(&p) => Ok(p as u16),
        Some(p) => Err(Error::InvalidInput(format!(
            "--{name} must be a TCP port between 1 and 65535, got {p}"
        ))),
    }
}

/// The address from the store, or an error if the machine was never configured.
fn address() -> Result<String> {
    store::require(IP)
}

/// The unsupported-operation error, in Docker Machine's words.
fn unsupported(op: &str) -> Result<()> {
    Err(Error::Unsupported(format!(
        "generic driver does not support {op}"
    )))
}

impl Guest for Generic {
    fn info() -> DriverInfo {
        DriverInfo {
            name: "generic".into(),
            description: "An existing Linux machine reached over SSH".into(),
            provisions: true,
        }
    }

    fn create_flags() -> Vec<Flag> {
        use FlagKind::{Integer, Text};
        vec![
            flag(
                "generic-engine-port",
                "Docker engine port",
                Integer,
                Some("2376"),
                "GENERIC_ENGINE_PORT",
            ),
            flag(
                "generic-ip-address",
                "IP Address of machine",
                Text,
                None,
                "GENERIC_IP_ADDRESS",
            ),
            flag(
                "generic-ssh-user",
                "SSH user",
                Text,
                Some("root"),
                "GENERIC_SSH_USER",
            ),
            flag(
                "generic-ssh-key",
                "SSH private key path (if not provided, default SSH key will be used)",
                Text,
                Some(""),
                "GENERIC_SSH_KEY",
            ),
            flag(
                "generic-ssh-port",
                "SSH port",
                Integer,
                Some("22"),
                "GENERIC_SSH_PORT",
            ),
        ]
    }

    fn set_config(_machine_name: String, flags: Vec<FlagValue>) -> Result<()> {
        let flags = Flags::new(flags.iter().map(|f| (&f.name, &f.values)));
        let ip = flags.required_text(
            "generic-ip-address",
            "generic driver requires the --generic-ip-address option",
        )?;
        let user = flags.text("generic-ssh-user").map(|u| u.trim().to_string());
        let user = user
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "root".into());
        let key = flags
            .text("generic-ssh-key")
            .unwrap_or_default()
            .trim()
            .to_string();
        let ssh_port = port(&flags, "generic-ssh-port", 22)?;
        let engine_port = port(&flags, "generic-engine-port", 2376)?;
        store::set(IP, &ip);
        store::set(USER, &user);
        store::set(KEY, &key);
        store::set(SSH_PORT, ssh_port);
        store::set(ENGINE_PORT, engine_port);
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        let ip = address()?;
        if ip
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        {
            return Err(Error::InvalidInput(format!(
                "--generic-ip-address {ip:?} is not an IP address or hostname"
            )));
        }
        if store::require(USER)?
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::InvalidInput(
                "--generic-ssh-user must not contain spaces".into(),
            ));
        }
        // The ports were range-checked in set-config; they must still parse.
        store::get_parsed::<u16>(SSH_PORT)?;
        store::get_parsed::<u16>(ENGINE_PORT)?;
        Ok(())
    }

    fn create() -> Result<()> {
        if store::get(KEY).is_some_and(|k| !k.is_empty()) {
            info("Importing SSH key...");
        } else {
            info("No SSH key specified. Assuming an existing key at the default location.");
        }
        Ok(())
    }

    fn state() -> Result<MachineState> {
        address()?;
        Ok(if dmw_guest::host::reachable(STATE_TIMEOUT_MS) {
            MachineState::Running
        } else {
            MachineState::Stopped
        })
    }

    fn address() -> Result<String> {
        address()
    }

    fn ssh_endpoint() -> Result<SshDetails> {
        Ok(SshDetails {
            address: address()?,
            port: store::get_or(SSH_PORT, 22)?,
            user: store::get(USER)
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "root".into()),
            key_path: store::get(KEY).filter(|k| !k.is_empty()),
        })
    }

    fn engine_port() -> u16 {
        store::get_or(ENGINE_PORT, 2376).unwrap_or(2376)
    }

    fn start() -> Result<()> {
        unsupported("start")
    }

    fn stop() -> Result<()> {
        unsupported("stop")
    }

    fn restart() -> Result<()> {
        // The connection usually drops while the machine goes down: that is success.
        match dmw_guest::output_root("shutdown -r now") {
            Ok(out) if out.exit_code <= 0 || out.exit_code == 255 => Ok(()),
            Ok(out) => Err(dmw_guest::command_error("shutdown -r now", &out)),
            Err(Error::Unreachable(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn kill() -> Result<()> {
        unsupported("kill")
    }

    fn remove() -> Result<()> {
        Ok(())
    }
}

export!(Generic);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use dmw_guest::mock;

    fn fv(name: &str, v: &str) -> FlagValue {
        FlagValue {
            name: name.into(),
            values: vec![v.into()],
        }
    }

    fn defaults(ip: &str) -> Vec<FlagValue> {
        vec![
            fv("generic-ip-address", ip),
            fv("generic-ssh-user", "root"),
            fv("generic-ssh-key", ""),
            fv("generic-ssh-port", "22"),
            fv("generic-engine-port", "2376"),
        ]
    }

    #[test]
    fn requires_ip() {
        mock::reset();
        let r = Generic::set_config("m".into(), defaults(""));
        assert!(
            matches!(r, Err(Error::InvalidInput(m)) if m == "generic driver requires the --generic-ip-address option")
        );
    }

    #[test]
    fn config_round_trip() {
        mock::reset();
        let mut flags = defaults("10.1.2.3");
        flags[2] = fv("generic-ssh-key", "/home/u/.ssh/id_ed25519");
        flags[3] = fv("generic-ssh-port", "2222");
        Generic::set_config("m".into(), flags).expect("config");
        Generic::pre_create_check().expect("check");
        Generic::create().expect("create");
        assert_eq!(mock::logs()[0].1, "Importing SSH key...");
        let ep = Generic::ssh_endpoint().expect("endpoint");
        assert_eq!(
            (ep.address.as_str(), ep.port, ep.user.as_str()),
            ("10.1.2.3", 2222, "root")
        );
        assert_eq!(ep.key_path.as_deref(), Some("/home/u/.ssh/id_ed25519"));
        assert_eq!(Generic::engine_port(), 2376);
        assert_eq!(Generic::address().ok().as_deref(), Some("10.1.2.3"));
        assert!(matches!(Generic::state(), Ok(MachineState::Running)));
        mock::set_unreachable(true);
        assert!(matches!(Generic::state(), Ok(MachineState::Stopped)));
    }

    #[test]
    fn rejects_bad_ports_and_ops() {
        mock::reset();
        let mut flags = defaults("h");
        flags[4] = fv("generic-engine-port", "70000");
        assert!(
            matches!(Generic::set_config("m".into(), flags), Err(Error::InvalidInput(m)) if m.contains("--generic-engine-port"))
        );
        assert!(
            matches!(Generic::stop(), Err(Error::Unsupported(m)) if m == "generic driver does not support stop")
        );
        assert!(Generic::remove().is_ok());
        mock::on_exec(|_, _| Err(Error::Unreachable("connection closed".into())));
        assert!(Generic::restart().is_ok());
    }
}
