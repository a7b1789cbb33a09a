//! Test fixture: a driver whose output is an attack on the host, chosen with
//! `--hostile-output-mode`:
//!
//! - `address-injection`: `address` is `127.0.0.1/$(touch FILE)` (FILE from
//!   `--hostile-output-file`), to run a command through `eval "$(dmw env NAME)"`;
//! - `user-injection`: the SSH user is `root\n  ProxyCommand sh -c 'touch FILE'`, to run a
//!   command through the ssh_config `dmw mount` writes;
//! - `terminal`: log messages with OSC 52 (clipboard), a window title, `\r` + clear-line
//!   forging "Docker is up and running!", `\n`-forged log lines, and an error full of escapes;
//! - `secret-echo`: repeats its `--hostile-output-password` in log lines at every level and in
//!   its error, to leak the secret to the terminal and provision.log.
//!
//! The SSH endpoint is otherwise valid (127.0.0.1, the key from `--hostile-output-key`), so
//! the host's own checks are what stops each attack.

use dmw_guest::driver::{Driver, MachineState, SshEndpoint};
use dmw_guest::flags::{Flag, Flags};
use dmw_guest::{Error, Result, store};

/// Store key of the mode.
const MODE: &str = "mode";
/// Store key of the file the injected commands would create.
const FILE: &str = "file";
/// Store key of the SSH key path.
const KEY: &str = "key";

/// Terminal attacks: OSC 52 clipboard write, window title, a forged success line, C1 CSI.
const TERMINAL_ATTACK: &str = "\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b]0;owned title\x07fetching\r\x1b[2KDocker is up and running!\u{9b}2J\u{202e}txet desrever";
/// A log line forging a provision.log entry.
const FORGED_LINE: &str = "working\n2026-01-01T00:00:00Z STEP Docker is up and running!\n2026-01-01T00:00:00Z INFO forged";

/// The hostile driver.
struct Hostile;

fn mode() -> String {
    store::get(MODE).unwrap_or_default()
}

fn file() -> String {
    store::get(FILE).unwrap_or_else(|| "/tmp/dmw-hostile-output".into())
}

fn text_flag(name: &str, usage: &str) -> Flag {
    Flag::text(name, usage).default_value("")
}

impl Driver for Hostile {
    const NAME: &'static str = "hostile-output";
    const DESCRIPTION: &'static str = "Test driver whose answers attack the host";

    fn create_flags() -> Vec<Flag> {
        vec![
            text_flag(
                "hostile-output-mode",
                "address-injection, user-injection or terminal",
            ),
            text_flag(
                "hostile-output-file",
                "The file an injected command would create",
            ),
            text_flag("hostile-output-key", "SSH private key path to report"),
            text_flag("hostile-output-password", "A secret the driver repeats"),
        ]
    }

    fn set_config(_machine_name: &str, flags: &Flags) -> Result<()> {
        store::set(MODE, flags.text("hostile-output-mode").unwrap_or_default());
        if let Some(f) = flags.text("hostile-output-file").filter(|f| !f.is_empty()) {
            store::set(FILE, f);
        }
        if let Some(k) = flags.text("hostile-output-key").filter(|k| !k.is_empty()) {
            store::set(KEY, k);
        }
        if let Some(p) = flags.text("hostile-output-password") {
            store::set("password", p);
        }
        Ok(())
    }

    fn create() -> Result<()> {
        // At the provider step, so the failure is kept in the record that `ls` shows.
        if mode() == "secret-echo" {
            let secret = store::get("password").unwrap_or_default();
            dmw_guest::info(&format!("logging in with password {secret}"));
            dmw_guest::warn(&format!("password={secret}"));
            dmw_guest::debug(&format!("debug: {secret}"));
            return Err(Error::Failed(format!("login as admin:{secret} failed")));
        }
        if mode() == "terminal" {
            dmw_guest::info(TERMINAL_ATTACK);
            dmw_guest::warn(FORGED_LINE);
            dmw_guest::debug(TERMINAL_ATTACK);
            return Err(Error::Failed(format!(
                "{TERMINAL_ATTACK}\n2026-01-01T00:00:00Z STEP forged from an error"
            )));
        }
        Ok(())
    }

    fn state() -> Result<MachineState> {
        Ok(MachineState::Running)
    }

    fn address() -> Result<String> {
        Ok(match mode().as_str() {
            "address-injection" => format!("127.0.0.1/$(touch {})", file()),
            _ => "127.0.0.1".into(),
        })
    }

    fn ssh_endpoint() -> Result<SshEndpoint> {
        let user = match mode().as_str() {
            "user-injection" => format!("root\n  ProxyCommand sh -c 'touch {}'", file()),
            _ => "root".into(),
        };
        Ok(SshEndpoint {
            address: "127.0.0.1".into(),
            port: 22,
            user,
            key_path: store::get(KEY),
        })
    }
}

dmw_guest::export_driver!(Hostile, "../../../wit");
