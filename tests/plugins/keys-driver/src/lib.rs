//! Test fixture for the permission model: a driver that declares the `keys` capability —
//! beyond the default grant, so used by path it stops until the user installs it — and, in
//! `create`, records the machine's public key the host lends it through the `keys` interface
//! (store key `seen-public-key`).
//! Its machine is `127.0.0.1:--keys-port` (default 1: nothing listens), so a create stops
//! at the SSH wait, after the provider step.

dmw_guest::permissions! {
    capability "keys";
}

use dmw_guest::driver::{Driver, MachineState, SshEndpoint, generated_public_key};
use dmw_guest::flags::{Flag, Flags};
use dmw_guest::{Result, store};

/// The keys driver.
struct Keys;

impl Driver for Keys {
    const NAME: &'static str = "keys";
    const DESCRIPTION: &'static str = "Test driver: declares the keys capability";

    fn create_flags() -> Vec<Flag> {
        vec![
            Flag::integer("keys-port", "SSH port on 127.0.0.1")
                .default_value("1")
                .env("KEYS_PORT"),
        ]
    }

    fn set_config(_machine_name: &str, flags: &Flags) -> Result<()> {
        store::set("port", flags.int::<u16>("keys-port")?.unwrap_or(1));
        Ok(())
    }

    fn create() -> Result<()> {
        if let Some(public) = generated_public_key() {
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

    fn ssh_endpoint() -> Result<SshEndpoint> {
        Ok(SshEndpoint {
            address: "127.0.0.1".into(),
            port: store::get_or("port", 1u16)?,
            user: "root".into(),
            key_path: None,
        })
    }
}

dmw_guest::export_driver!(Keys, "../../../wit");
