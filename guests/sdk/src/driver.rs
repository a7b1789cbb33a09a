//! Writing a driver: implement [`Driver`] (only what differs from the defaults) and
//! register it with [`crate::export_driver!`], which generates the `driver-plugin`
//! bindings and implements the contract's `Guest` trait by forwarding to yours.
//!
//! ```ignore
//! use dmw_guest::driver::{Driver, SshEndpoint};
//! use dmw_guest::flags::{Flag, Flags};
//!
//! struct Acme;
//!
//! impl Driver for Acme {
//!     const NAME: &'static str = "acme";
//!     const DESCRIPTION: &'static str = "Machines at ACME";
//!     fn create_flags() -> Vec<Flag> { vec![Flag::text("acme-host", "Host").env("ACME_HOST")] }
//!     fn set_config(_machine: &str, flags: &Flags) -> dmw_guest::Result<()> { todo!() }
//!     fn address() -> dmw_guest::Result<String> { todo!() }
//!     fn ssh_endpoint() -> dmw_guest::Result<SshEndpoint> { todo!() }
//! }
//!
//! dmw_guest::export_driver!(Acme);
//! ```
//!
//! The defaults are Docker Machine's: power operations are unsupported ("acme driver does
//! not support stop"), the state is Running when the machine's SSH port answers within
//! 15 s and Stopped otherwise, the engine listens on 2376, `pre-create-check`, `create`
//! and `remove` succeed without doing anything.

use crate::flags::{Flag, Flags};
use crate::{Error, Result};

/// The engine port a driver reports unless it says otherwise (Docker's TLS port).
pub const ENGINE_PORT: u16 = 2376;

/// Docker Machine's SSH reachability timeout for `state` (15 s).
pub const STATE_TIMEOUT_MS: u32 = 15_000;

/// The public key the host made for this machine (the `keys` capability, which the
/// driver must declare: `permissions! { capability "keys"; }`), for `create` to register
/// at the provider (or to show the user); none when the user named a key.
pub fn generated_public_key() -> Option<String> {
    Some(crate::host::machine_public_key()).filter(|k| !k.trim().is_empty())
}

/// The state of a machine, as in Docker Machine (the contract's `machine-state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MachineState {
    /// Unknown or not applicable.
    None,
    /// Up.
    Running,
    /// Paused.
    Paused,
    /// Suspended to disk.
    Saved,
    /// Down.
    Stopped,
    /// Going down.
    Stopping,
    /// Coming up.
    Starting,
    /// The provider reports an error.
    Error,
}

/// How the host reaches the machine over SSH (the contract's `ssh-details`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshEndpoint {
    /// Address or hostname to connect to (the host validates it).
    pub address: String,
    /// TCP port.
    pub port: u16,
    /// User to log in as (the host validates it).
    pub user: String,
    /// A private key file the user typed into one of the driver's flags; none: the host
    /// makes a key pair and lends its public half to a driver granted `keys`
    /// ([`generated_public_key`]).
    pub key_path: Option<String>,
}

/// A tag only this machine's resource carries at the provider (`dmw:NAME:NONCE`), recorded
/// before the resource is asked for: `rm` finds the resource by it when the answer that
/// carried its id was lost (a dropped connection, dmw killed).
pub fn owner_tag(name: &str) -> String {
    use std::hash::BuildHasher;
    let nonce = std::collections::hash_map::RandomState::new().hash_one(name);
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("dmw:{safe}:{nonce:016x}")
}

/// Docker Machine's error for an operation a driver does not have:
/// `<driver> driver does not support <op>`.
pub fn unsupported(driver: &str, op: &str) -> Error {
    Error::Unsupported(format!("{driver} driver does not support {op}"))
}

/// Running when the machine's SSH port accepts a connection within
/// [`STATE_TIMEOUT_MS`], else Stopped.
pub fn state_from_ssh() -> MachineState {
    if crate::host::reachable(STATE_TIMEOUT_MS) {
        MachineState::Running
    } else {
        MachineState::Stopped
    }
}

/// Reboot the machine over SSH (`shutdown -r now` as root). The connection usually drops
/// while the machine goes down: that counts as success.
pub fn reboot_over_ssh() -> Result<()> {
    const REBOOT: &str = "shutdown -r now";
    match crate::output_root(REBOOT) {
        Ok(out) if out.exit_code <= 0 || out.exit_code == 255 => Ok(()),
        Ok(out) => Err(crate::command_error(REBOOT, &out)),
        Err(Error::Unreachable(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A dmw driver. Implement what your provider does; the provided methods are the
/// defaults described in the [module documentation](self). Register the type with
/// [`crate::export_driver!`].
pub trait Driver {
    /// Short lower-case name (`acme`); every flag starts with `acme-`, every environment
    /// variable with `ACME_`.
    const NAME: &'static str;
    /// One line describing the provider.
    const DESCRIPTION: &'static str;
    /// Whether dmw provisions this driver's machines (SSH in, install the engine). False
    /// only for a driver that records an engine that already runs.
    const PROVISIONS: bool = true;

    /// The flags this driver adds to `dmw create`.
    fn create_flags() -> Vec<Flag>;

    /// Take the machine's configuration from the create flags (all of `create_flags`,
    /// defaults applied) and keep what is needed in the store.
    fn set_config(machine_name: &str, flags: &Flags) -> Result<()>;

    /// Check that `create` can succeed, before anything is made. Default: nothing to check.
    fn pre_create_check() -> Result<()> {
        Ok(())
    }

    /// Make the machine at the provider. Default: nothing to make.
    fn create() -> Result<()> {
        Ok(())
    }

    /// The machine's state. Default: [`state_from_ssh`] once `address` succeeds.
    fn state() -> Result<MachineState> {
        Self::address()?;
        Ok(state_from_ssh())
    }

    /// The machine's address (IP or hostname), as used in its URL and certificate.
    fn address() -> Result<String>;

    /// How the host reaches the machine over SSH.
    fn ssh_endpoint() -> Result<SshEndpoint>;

    /// The port the engine listens on. Default: [`ENGINE_PORT`].
    fn engine_port() -> u16 {
        ENGINE_PORT
    }

    /// Start a stopped machine. Default: [`unsupported`].
    fn start() -> Result<()> {
        Err(unsupported(Self::NAME, "start"))
    }

    /// Stop the machine gracefully. Default: [`unsupported`].
    fn stop() -> Result<()> {
        Err(unsupported(Self::NAME, "stop"))
    }

    /// Restart the machine. Default: [`unsupported`] ([`reboot_over_ssh`] is one line away).
    fn restart() -> Result<()> {
        Err(unsupported(Self::NAME, "restart"))
    }

    /// Stop the machine at once. Default: [`unsupported`].
    fn kill() -> Result<()> {
        Err(unsupported(Self::NAME, "kill"))
    }

    /// Delete the machine at the provider. Default: nothing to delete.
    fn remove() -> Result<()> {
        Ok(())
    }
}

/// Register a [`driver::Driver`](crate::driver::Driver) as this plugin's driver: generates
/// the `driver-plugin` export bindings (like [`crate::generate!`]) and implements their
/// `Guest` trait by forwarding every call to the driver, converting the SDK's types to the
/// contract's. Call it once, at the crate root: `dmw_guest::export_driver!(Acme);`. The WIT
/// folder is `../../wit` relative to the crate's Cargo.toml unless given:
/// `dmw_guest::export_driver!(Acme, "path/to/wit");`.
#[macro_export]
macro_rules! export_driver {
    ($driver:ty) => {
        $crate::export_driver!($driver, "../../wit");
    };
    ($driver:ty, $path:literal) => {
        $crate::generate!("driver-plugin", $path);

        /// The contract's driver exports, forwarded to the SDK driver.
        #[doc(hidden)]
        pub struct __DmwDriverExport;

        impl exports::dmw::plugin::driver::Guest for __DmwDriverExport {
            fn info() -> exports::dmw::plugin::driver::DriverInfo {
                exports::dmw::plugin::driver::DriverInfo {
                    name: <$driver as $crate::driver::Driver>::NAME.into(),
                    description: <$driver as $crate::driver::Driver>::DESCRIPTION.into(),
                    provisions: <$driver as $crate::driver::Driver>::PROVISIONS,
                }
            }

            fn create_flags() -> ::std::vec::Vec<exports::dmw::plugin::driver::Flag> {
                use exports::dmw::plugin::driver::FlagKind as K;
                <$driver as $crate::driver::Driver>::create_flags()
                    .into_iter()
                    .map(|f| exports::dmw::plugin::driver::Flag {
                        name: f.name,
                        usage: f.usage,
                        kind: match f.kind {
                            $crate::flags::FlagKind::Text => K::Text,
                            $crate::flags::FlagKind::Integer => K::Integer,
                            $crate::flags::FlagKind::Boolean => K::Boolean,
                            $crate::flags::FlagKind::TextList => K::TextList,
                        },
                        default: f.default,
                        env_var: f.env_var,
                    })
                    .collect()
            }

            fn set_config(
                machine_name: ::std::string::String,
                flags: ::std::vec::Vec<exports::dmw::plugin::driver::FlagValue>,
            ) -> $crate::Result<()> {
                let flags = $crate::flags::Flags::new(flags.iter().map(|f| (&f.name, &f.values)));
                <$driver as $crate::driver::Driver>::set_config(&machine_name, &flags)
            }

            fn pre_create_check() -> $crate::Result<()> {
                <$driver as $crate::driver::Driver>::pre_create_check()
            }

            fn create() -> $crate::Result<()> {
                <$driver as $crate::driver::Driver>::create()
            }

            fn state() -> $crate::Result<exports::dmw::plugin::driver::MachineState> {
                use exports::dmw::plugin::driver::MachineState as W;
                use $crate::driver::MachineState as S;
                Ok(match <$driver as $crate::driver::Driver>::state()? {
                    S::None => W::None,
                    S::Running => W::Running,
                    S::Paused => W::Paused,
                    S::Saved => W::Saved,
                    S::Stopped => W::Stopped,
                    S::Stopping => W::Stopping,
                    S::Starting => W::Starting,
                    S::Error => W::Error,
                })
            }

            fn address() -> $crate::Result<::std::string::String> {
                <$driver as $crate::driver::Driver>::address()
            }

            fn ssh_endpoint() -> $crate::Result<exports::dmw::plugin::driver::SshDetails> {
                let e = <$driver as $crate::driver::Driver>::ssh_endpoint()?;
                Ok(exports::dmw::plugin::driver::SshDetails {
                    address: e.address,
                    port: e.port,
                    user: e.user,
                    key_path: e.key_path,
                })
            }

            fn engine_port() -> u16 {
                <$driver as $crate::driver::Driver>::engine_port()
            }

            fn start() -> $crate::Result<()> {
                <$driver as $crate::driver::Driver>::start()
            }

            fn stop() -> $crate::Result<()> {
                <$driver as $crate::driver::Driver>::stop()
            }

            fn restart() -> $crate::Result<()> {
                <$driver as $crate::driver::Driver>::restart()
            }

            fn kill() -> $crate::Result<()> {
                <$driver as $crate::driver::Driver>::kill()
            }

            fn remove() -> $crate::Result<()> {
                <$driver as $crate::driver::Driver>::remove()
            }
        }

        export!(__DmwDriverExport);
    };
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::{mock, store};

    /// A driver that writes only what it must.
    struct Minimal;

    impl Driver for Minimal {
        const NAME: &'static str = "minimal";
        const DESCRIPTION: &'static str = "test";
        fn create_flags() -> Vec<Flag> {
            vec![]
        }
        fn set_config(_: &str, flags: &Flags) -> Result<()> {
            store::set("ip", flags.required_text("minimal-ip", "need ip")?);
            Ok(())
        }
        fn address() -> Result<String> {
            store::require("ip")
        }
        fn ssh_endpoint() -> Result<SshEndpoint> {
            Err(Error::Unsupported("no ssh".into()))
        }
    }

    #[test]
    fn defaults_are_docker_machines() {
        mock::reset();
        const { assert!(Minimal::PROVISIONS) };
        assert!(
            matches!(Minimal::state(), Err(Error::Failed(_))),
            "no address yet"
        );
        Minimal::set_config("m", &Flags::of(&[("minimal-ip", "10.0.0.1")])).expect("config");
        assert!(Minimal::pre_create_check().is_ok() && Minimal::create().is_ok());
        assert_eq!(Minimal::state().ok(), Some(MachineState::Running));
        mock::set_unreachable(true);
        assert_eq!(Minimal::state().ok(), Some(MachineState::Stopped));
        assert_eq!(Minimal::engine_port(), 2376);
        for (op, r) in [
            ("start", Minimal::start()),
            ("stop", Minimal::stop()),
            ("restart", Minimal::restart()),
            ("kill", Minimal::kill()),
        ] {
            assert!(
                matches!(r, Err(Error::Unsupported(m)) if m == format!("minimal driver does not support {op}")),
                "{op}"
            );
        }
        assert!(Minimal::remove().is_ok());
        assert!(mock::commands().is_empty(), "no default runs a command");
    }

    #[test]
    fn reboot_tolerates_the_dropped_connection() {
        mock::reset();
        assert!(reboot_over_ssh().is_ok());
        assert_eq!(
            mock::commands(),
            vec![("shutdown -r now".to_string(), true)]
        );
        mock::on_exec(|_, _| Err(Error::Unreachable("connection closed".into())));
        assert!(reboot_over_ssh().is_ok());
        mock::on_exec(|_, _| Ok((255, String::new(), String::new())));
        assert!(reboot_over_ssh().is_ok());
        mock::on_exec(|_, _| Ok((1, String::new(), "not allowed".into())));
        assert!(matches!(reboot_over_ssh(), Err(Error::Failed(m)) if m.contains("not allowed")));
        mock::on_exec(|_, _| Err(Error::Denied("no sudo".into())));
        assert!(matches!(reboot_over_ssh(), Err(Error::Denied(_))));
    }
}
