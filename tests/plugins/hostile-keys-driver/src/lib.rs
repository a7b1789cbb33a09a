//! Hostile test fixture (security finding 1): a driver that tries to make the host log in
//! with a key file of its own choosing — a default path it picked, or a file inside dmw's
//! store such as the CA key — or, naming no key at all, with the user's own `~/.ssh` keys,
//! to an sshd it picks (127.0.0.1 on `--hostile-keys-port`). The tests check that the host
//! refuses the chosen files and offers only the machine's own generated key.
//!
//! Mode `sandbox` tries the WASI way in instead, in `pre-create-check`: read files (the
//! CA key, /etc/passwd), the environment and arguments, open a TCP connection to
//! `--hostile-keys-port` and look up a name. It fails the check listing whatever worked,
//! and passes when nothing did.

use dmw_guest::driver::{Driver, MachineState, SshEndpoint};
use dmw_guest::flags::{Flag, Flags};
use dmw_guest::{Result, store};

/// Where the driver would like the host to find a key (a path the user never typed).
const CHOSEN_KEY: &str = "/tmp/dmw-hostile-victim/id_ed25519";

/// The hostile keys driver.
struct HostileKeys;

impl Driver for HostileKeys {
    const NAME: &'static str = "hostile-keys";
    const DESCRIPTION: &'static str = "Hostile test driver: chooses SSH keys and hosts";

    fn create_flags() -> Vec<Flag> {
        vec![
            // `chosen-file`: name `--hostile-keys-file` (default: a path the driver picked);
            // `no-key`: name no key, so the host picks one; `sandbox`: probe WASI.
            Flag::text("hostile-keys-mode", "attack setting").default_value("chosen-file"),
            Flag::text("hostile-keys-file", "attack setting").default_value(CHOSEN_KEY),
            Flag::integer("hostile-keys-port", "attack setting").default_value("22"),
        ]
    }

    fn set_config(_machine_name: &str, flags: &Flags) -> Result<()> {
        store::set("mode", flags.text("hostile-keys-mode").unwrap_or_default());
        store::set("file", flags.text("hostile-keys-file").unwrap_or_default());
        store::set("port", flags.int::<u16>("hostile-keys-port")?.unwrap_or(22));
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        if store::get("mode").as_deref() != Some("sandbox") {
            return Ok(());
        }
        let mut got = Vec::new();
        for path in [
            store::get("file").unwrap_or_default().as_str(),
            "/etc/passwd",
            "/",
            ".",
        ] {
            if std::fs::read(path).is_ok() || std::fs::read_dir(path).is_ok() {
                got.push(format!("read {path}"));
            }
        }
        if std::env::vars().next().is_some() {
            got.push("environment".to_string());
        }
        if std::env::args().next().is_some() {
            got.push("arguments".to_string());
        }
        let port: u16 = store::get_or("port", 22u16)?;
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            got.push(format!("tcp 127.0.0.1:{port}"));
        }
        if std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 22)).is_ok() {
            got.push("name lookup".to_string());
        }
        if got.is_empty() {
            Ok(())
        } else {
            Err(dmw_guest::Error::Failed(format!(
                "sandbox escaped: {}",
                got.join(", ")
            )))
        }
    }

    fn create() -> Result<()> {
        // Not granted `keys` (importing it undeclared would be refused at load), it looks
        // where dmw once put the public key, its store: nothing is there.
        if let Some(public) = store::get("dmw:ssh-public-key") {
            store::set("seen-public-key", public);
        }
        Ok(())
    }

    fn state() -> Result<MachineState> {
        Ok(MachineState::Running)
    }

    fn address() -> Result<String> {
        Ok("127.0.0.1".into())
    }

    fn ssh_endpoint() -> Result<SshEndpoint> {
        let key_path = match store::get("mode").as_deref() {
            Some("no-key") => None,
            _ => store::get("file"),
        };
        Ok(SshEndpoint {
            address: "127.0.0.1".into(),
            port: store::get_or("port", 22u16)?,
            user: "root".into(),
            key_path,
        })
    }
}

dmw_guest::export_driver!(HostileKeys, "../../../wit");
