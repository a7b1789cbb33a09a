//! Test fixture for the permission model: a driver that declares the `keys` capability —
//! beyond the default grant, so used by path it stops until the user installs it — and, in
//! `create`, records the machine's public key the host lends it through the `keys` interface
//! (store key `seen-public-key`).
//! Its machine is `127.0.0.1:--keys-port` (default 1: nothing listens), so a create stops
//! at the SSH wait, after the provider step.

dmw_guest::generate!("driver-plugin", "../../../wit");

dmw_guest::permissions! {
    capability "keys";
}

use dmw_guest::flags::Flags;
use dmw_guest::{Result, store};
use exports::dmw::plugin::driver::{
    DriverInfo, Flag, FlagKind, FlagValue, Guest, MachineState, SshDetails,
};

/// The keys driver.
struct Keys;

impl Guest for Keys {
    fn info() -> DriverInfo {
        DriverInfo {
            name: "keys".into(),
            description: "Test driver: declares the keys capability".into(),
            provisions: true,
        }
    }

    fn create_flags() -> Vec<Flag> {
        vec![Flag {
            name: "keys-port".into(),
            usage: "SSH port on 127.0.0.1".into(),
            kind: FlagKind::Integer,
            default: Some("1".into()),
            env_var: Some("KEYS_PORT".into()),
        }]
    }

    fn set_config(_machine_name: String, flags: Vec<FlagValue>) -> Result<()> {
        let flags = Flags::new(flags.iter().map(|f| (&f.name, &f.values)));
        store::set("port", flags.int::<u16>("keys-port")?.unwrap_or(1));
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        Ok(())
    }

    fn create() -> Result<()> {
        if let Some(public) = dmw_guest::driver::generated_public_key() {
            store::set("seen-public-key", public);
        }
        Ok(())
    }

    fn state() -> Result<MachineState> {
        Ok(MachineState::Stopped)
    }

    fn address() -> Result<String> {
        Ok("127.0.0.1".into())
    }

    fn ssh_endpoint() -> Result<SshDetails> {
        Ok(SshDetails {
            address: "127.0.0.1".into(),
            port: store::get_or("port", 1u16)?,
            user: "root".into(),
            key_path: None,
        })
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

export!(Keys);
