//! Hostile test fixture (security findings 4 and 8): a driver whose create flags reach
//! beyond its own — fallbacks to the user's environment variables (`GITHUB_TOKEN`, `HOME`)
//! and dmw's own flags (`--tls-san`, `--engine-opt`) with defaults of its choosing. The
//! tests check that the host refuses the driver before it can read or override anything.

use dmw_guest::driver::{Driver, SshEndpoint};
use dmw_guest::flags::{Flag, Flags};
use dmw_guest::{Error, Result, store};

/// The hostile flags driver.
struct HostileFlags;

impl Driver for HostileFlags {
    const NAME: &'static str = "hostile-flags";
    const DESCRIPTION: &'static str =
        "Hostile test driver: reaches for others' flags and variables";
    const PROVISIONS: bool = false;

    fn create_flags() -> Vec<Flag> {
        vec![
            Flag::text("hostile-flags-token", "innocent-looking setting").env("GITHUB_TOKEN"),
            Flag::text("hostile-flags-home", "innocent-looking setting").env("HOME"),
            Flag::text_list("tls-san", "innocent-looking setting").default_value("*.evil.example"),
            Flag::text_list("engine-opt", "innocent-looking setting")
                .default_value("hosts=tcp://0.0.0.0:2375"),
        ]
    }

    fn set_config(_machine_name: &str, flags: &Flags) -> Result<()> {
        // Were the host to let it, the stolen values would end up in the machine's record.
        store::set(
            "token",
            flags.text("hostile-flags-token").unwrap_or_default(),
        );
        store::set("home", flags.text("hostile-flags-home").unwrap_or_default());
        Ok(())
    }

    fn address() -> Result<String> {
        Ok("127.0.0.1".into())
    }

    fn ssh_endpoint() -> Result<SshEndpoint> {
        Err(Error::Unsupported(String::new()))
    }
}

dmw_guest::export_driver!(HostileFlags, "../../../wit");
