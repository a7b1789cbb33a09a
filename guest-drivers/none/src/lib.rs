//! The `none` driver: records a Docker engine that already runs, by its URL, as Docker
//! Machine's none driver. It makes nothing, and dmw neither provisions the machine nor
//! logs into it (`provisions: false`): the engine must already trust the store's CA.

use dmw_guest::driver::{Driver, MachineState, SshEndpoint};
use dmw_guest::flags::{Flag, Flags};
use dmw_guest::{Error, Result, store};

/// Store key of the engine URL as given.
const URL: &str = "url";
/// Store key of the URL's host.
const HOST: &str = "host";
/// Store key of the URL's port.
const PORT: &str = "port";

/// Docker's TLS port, used when the URL has none.
const DEFAULT_PORT: u16 = dmw_guest::text::DEFAULT_ENGINE_PORT;

/// The none driver.
struct NoneDriver;

/// Split `tcp://HOST[:PORT]` (HOST may be `[v6]`) into host and port (the structure is
/// the host's own rule, `dmw_guest::text::parse_engine_url`); `None` for any other URL,
/// which is recorded all the same (Docker Machine accepted any text).
fn parse_url(url: &str) -> Option<(String, u16)> {
    if url.contains('@') {
        return None;
    }
    let parsed = dmw_guest::text::parse_engine_url(url, &["tcp"]).ok()?;
    if parsed
        .host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    Some((parsed.host, parsed.port))
}

/// The error of an operation a recorded engine does not have, in Docker Machine's words.
fn cannot(what: &str) -> Result<()> {
    Err(Error::Unsupported(format!(
        "hosts without a driver cannot be {what}"
    )))
}

impl Driver for NoneDriver {
    const NAME: &'static str = "none";
    const DESCRIPTION: &'static str =
        "An existing Docker engine, recorded by its URL (no provisioning, no SSH)";
    const PROVISIONS: bool = false;

    fn create_flags() -> Vec<Flag> {
        // Docker Machine's historic name, allowed for this built-in driver only.
        vec![Flag::text("url", "URL of host when no driver is selected").default_value("")]
    }

    fn set_config(_machine_name: &str, flags: &Flags) -> Result<()> {
        let url =
            flags.required_text("url", "--url option is required when no driver is selected")?;
        // Recorded as given, as Docker Machine did: the engine may live anywhere.
        store::set(URL, &url);
        if let Some((host, port)) = parse_url(&url) {
            store::set(HOST, &host);
            store::set(PORT, port);
        }
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        store::require(URL).map(|_| ())
    }

    fn state() -> Result<MachineState> {
        // As Docker Machine: a recorded engine is always Running (dmw's host checks the URL).
        store::require(URL)?;
        Ok(MachineState::Running)
    }

    fn address() -> Result<String> {
        let url = store::require(URL)?;
        store::get(HOST).ok_or_else(|| {
            Error::Unsupported(format!(
                "--url {url:?} is not a tcp://HOST:PORT engine URL, so it has no address"
            ))
        })
    }

    fn ssh_endpoint() -> Result<SshEndpoint> {
        Err(Error::Unsupported(
            "the none driver has no SSH access".into(),
        ))
    }

    fn engine_port() -> u16 {
        store::get_or(PORT, DEFAULT_PORT).unwrap_or(DEFAULT_PORT)
    }

    fn start() -> Result<()> {
        cannot("started")
    }

    fn stop() -> Result<()> {
        cannot("stopped")
    }

    fn restart() -> Result<()> {
        cannot("restarted")
    }

    fn kill() -> Result<()> {
        cannot("killed")
    }
}

dmw_guest::export_driver!(NoneDriver);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use dmw_guest::mock;

    fn url(v: &str) -> Flags {
        Flags::of(&[("url", v)])
    }

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_url("tcp://10.0.0.5:2376"),
            Some(("10.0.0.5".into(), 2376))
        );
        assert_eq!(
            parse_url("tcp://docker.example:12376/"),
            Some(("docker.example".into(), 12376))
        );
        assert_eq!(
            parse_url("tcp://[fd00::5]:2377"),
            Some(("fd00::5".into(), 2377))
        );
        assert_eq!(parse_url("tcp://h"), Some(("h".into(), 2376)));
        for other in [
            "none",
            "http://h:2376",
            "tcp://",
            "tcp://h:0",
            "tcp://h:x",
            "tcp://h:2376/v1",
            "h:2376",
            "tcp://::1:2376",
            "tcp://u@h:1",
        ] {
            assert_eq!(parse_url(other), None, "{other}");
        }
    }

    #[test]
    fn records_any_url_as_docker_machine() {
        mock::reset();
        NoneDriver::set_config("m", &url("none")).expect("config");
        NoneDriver::pre_create_check().expect("check");
        NoneDriver::create().expect("create");
        assert!(matches!(NoneDriver::state(), Ok(MachineState::Running)));
        assert!(
            matches!(NoneDriver::address(), Err(Error::Unsupported(m)) if m.contains("\"none\""))
        );
    }

    #[test]
    fn records_the_url_and_has_no_ssh() {
        mock::reset();
        assert!(matches!(
            NoneDriver::set_config("m", &url("")),
            Err(Error::InvalidInput(m)) if m == "--url option is required when no driver is selected"
        ));
        NoneDriver::set_config("m", &url("tcp://192.0.2.7:2375")).expect("config");
        NoneDriver::pre_create_check().expect("check");
        NoneDriver::create().expect("create");
        assert_eq!(NoneDriver::address().ok().as_deref(), Some("192.0.2.7"));
        assert_eq!(NoneDriver::engine_port(), 2375);
        const { assert!(!NoneDriver::PROVISIONS) };
        assert!(!<__DmwDriverExport as exports::dmw::plugin::driver::Guest>::info().provisions);
        assert!(matches!(
            NoneDriver::ssh_endpoint(),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(NoneDriver::state(), Ok(MachineState::Running)));
        assert!(matches!(
            NoneDriver::stop(),
            Err(Error::Unsupported(m)) if m == "hosts without a driver cannot be stopped"
        ));
        assert!(NoneDriver::remove().is_ok());
    }
}
