//! The `generic` driver: an existing Linux machine reached over SSH, as in Docker
//! Machine's generic driver. It makes nothing; it records where the machine is.

use dmw_guest::driver::{Driver, SshEndpoint, reboot_over_ssh};
use dmw_guest::flags::{Flag, FlagKind, Flags, flag};
use dmw_guest::{Error, Result, info, store};

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

/// The generic driver.
struct Generic;

impl Driver for Generic {
    const NAME: &'static str = "generic";
    const DESCRIPTION: &'static str = "An existing Linux machine reached over SSH";

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

    fn set_config(_machine_name: &str, flags: &Flags) -> Result<()> {
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
        let ssh_port = flags.port("generic-ssh-port", 22)?;
        let engine_port = flags.port("generic-engine-port", 2376)?;
        store::set(IP, &ip);
        store::set(USER, &user);
        store::set(KEY, &key);
        store::set(SSH_PORT, ssh_port);
        store::set(ENGINE_PORT, engine_port);
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        let ip = Self::address()?;
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

    fn address() -> Result<String> {
        store::require(IP)
    }

    fn ssh_endpoint() -> Result<SshEndpoint> {
        Ok(SshEndpoint {
            address: Self::address()?,
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

    fn restart() -> Result<()> {
        reboot_over_ssh()
    }
}

dmw_guest::export_driver!(Generic);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use dmw_guest::driver::MachineState;
    use dmw_guest::mock;

    fn defaults(ip: &str) -> Vec<(&str, &str)> {
        vec![
            ("generic-ip-address", ip),
            ("generic-ssh-user", "root"),
            ("generic-ssh-key", ""),
            ("generic-ssh-port", "22"),
            ("generic-engine-port", "2376"),
        ]
    }

    #[test]
    fn requires_ip() {
        mock::reset();
        let r = Generic::set_config("m", &Flags::of(&defaults("")));
        assert!(
            matches!(r, Err(Error::InvalidInput(m)) if m == "generic driver requires the --generic-ip-address option")
        );
    }

    #[test]
    fn config_round_trip() {
        mock::reset();
        let mut flags = defaults("10.1.2.3");
        flags[2] = ("generic-ssh-key", "/home/u/.ssh/id_ed25519");
        flags[3] = ("generic-ssh-port", "2222");
        Generic::set_config("m", &Flags::of(&flags)).expect("config");
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
        flags[4] = ("generic-engine-port", "70000");
        assert!(
            matches!(Generic::set_config("m", &Flags::of(&flags)), Err(Error::InvalidInput(m)) if m.contains("--generic-engine-port"))
        );
        assert!(
            matches!(Generic::stop(), Err(Error::Unsupported(m)) if m == "generic driver does not support stop")
        );
        assert!(Generic::remove().is_ok());
        mock::on_exec(|_, _| Err(Error::Unreachable("connection closed".into())));
        assert!(Generic::restart().is_ok());
        assert!(
            matches!(Generic::kill(), Err(Error::Unsupported(m)) if m == "generic driver does not support kill")
        );
        assert!(
            matches!(Generic::start(), Err(Error::Unsupported(m)) if m == "generic driver does not support start")
        );
    }

    #[test]
    fn the_contract_sees_the_same_driver() {
        use exports::dmw::plugin::driver::{FlagKind as K, Guest};
        mock::reset();
        let info = __DmwDriverExport::info();
        assert_eq!((info.name.as_str(), info.provisions), ("generic", true));
        let flags = __DmwDriverExport::create_flags();
        assert_eq!(flags.len(), 5);
        assert!(matches!(flags[0].kind, K::Integer));
        assert_eq!(flags[1].env_var.as_deref(), Some("GENERIC_IP_ADDRESS"));
        assert_eq!(flags[1].default, None);
        assert_eq!(flags[3].default.as_deref(), Some(""));
    }
}
