//! A driver template: "template", an existing Linux machine reached over SSH (like the
//! built-in `generic` driver), configured with `--template-*` flags. Copy this crate,
//! rename it, and change the places marked `CHANGE:`; docs/writing-a-driver.md walks
//! through it. Everything a driver does not have (start, stop, kill) and everything the
//! SDK knows (the state from SSH reachability, flag parsing, the store) comes from
//! `dmw_guest::driver::Driver`'s defaults.
//!
//! The rules the host enforces (`host/src/sandbox/plugin/flag_policy.rs`): every flag starts with
//! the driver's name and a dash (`template-host`), every environment variable with its
//! upper-case name and an underscore (`TEMPLATE_HOST`).

// CHANGE: what your driver needs beyond the default grant (log, its store, SSH to its
// machine). This one reads the machine's generated public key, so it declares `keys`; the
// user approves it once with `dmw plugin install ./template.wasm` (see `dmw plugin inspect`).
dmw_guest::permissions! {
    capability "keys";
}

use dmw_guest::driver::{Driver, SshEndpoint, generated_public_key, reboot_over_ssh};
use dmw_guest::flags::{Flag, Flags};
use dmw_guest::{Error, Result, info, store};

/// CHANGE: your driver's name; the flags and environment variables below carry it.
const NAME: &str = "template";

/// Flag (and store key): the machine's address.
const HOST: &str = "template-host";
/// Flag (and store key): the SSH user.
const USER: &str = "template-ssh-user";
/// Flag (and store key): the SSH port.
const SSH_PORT: &str = "template-ssh-port";
/// Flag (and store key): a private key file the user names.
const KEY: &str = "template-ssh-key";
/// Flag (and store key): the port the engine will listen on.
const ENGINE_PORT: &str = "template-engine-port";

/// The driver.
struct Template;

/// `value` when it has no spaces, control characters or `/`, else the error for `--flag`.
/// (The host validates addresses and users again; a driver's own check gives the user a
/// message in its terms, before anything happens.)
fn plain(flag: &str, value: &str, what: &str) -> Result<String> {
    if value
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(Error::InvalidInput(format!(
            "--{flag} {value:?} is not {what}"
        )));
    }
    Ok(value.to_string())
}

impl Driver for Template {
    const NAME: &'static str = NAME;
    /// CHANGE: one line about your provider.
    const DESCRIPTION: &'static str = "An existing machine reached over SSH (template driver)";

    fn create_flags() -> Vec<Flag> {
        // CHANGE: your flags. Defaults are text; integers are checked by `flags.port`/`int`.
        vec![
            Flag::text(HOST, "IP address or DNS name of the machine").env("TEMPLATE_HOST"),
            Flag::text(USER, "SSH user")
                .default_value("root")
                .env("TEMPLATE_SSH_USER"),
            Flag::integer(SSH_PORT, "SSH port")
                .default_value("22")
                .env("TEMPLATE_SSH_PORT"),
            Flag::text(
                KEY,
                "SSH private key file (none: dmw makes a key pair for this machine)",
            )
            .default_value("")
            .env("TEMPLATE_SSH_KEY"),
            Flag::integer(ENGINE_PORT, "Docker engine port")
                .default_value("2376")
                .env("TEMPLATE_ENGINE_PORT"),
        ]
    }

    fn set_config(_machine_name: &str, flags: &Flags) -> Result<()> {
        let host =
            flags.required_text(HOST, "template driver requires the --template-host option")?;
        let host = plain(HOST, &host, "an IP address or DNS name")?;
        let user = flags.text(USER).unwrap_or_default().trim().to_string();
        let user = if user.is_empty() {
            "root".to_string()
        } else {
            user
        };
        let user = plain(USER, &user, "a user name")?;
        let ssh_port = flags.port(SSH_PORT, 22)?;
        let engine_port = flags.port(ENGINE_PORT, 2376)?;
        let key = flags.text(KEY).unwrap_or_default().trim().to_string();
        store::set(HOST, host);
        store::set(USER, user);
        store::set(SSH_PORT, ssh_port);
        store::set(ENGINE_PORT, engine_port);
        store::set(KEY, key);
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        // CHANGE: check what `create` needs (credentials, quotas) before anything is made.
        if store::get_or(SSH_PORT, 22u16)? == store::get_or(ENGINE_PORT, 2376u16)? {
            return Err(Error::InvalidInput(
                "--template-ssh-port and --template-engine-port must differ".into(),
            ));
        }
        Ok(())
    }

    fn create() -> Result<()> {
        // CHANGE: make the machine at your provider and store what identifies it.
        info(&format!(
            "Using the existing machine at {}",
            Self::address()?
        ));
        // No key file named: the host made a key pair for this machine. A cloud driver
        // registers the public key with its provider; an existing machine needs it in
        // the user's authorized_keys.
        if let Some(public_key) = generated_public_key() {
            info(&format!(
                "No --template-ssh-key given: authorize this machine's new key on it \
                 (~/.ssh/authorized_keys of the SSH user): {}",
                public_key.trim()
            ));
        }
        Ok(())
    }

    fn address() -> Result<String> {
        store::require(HOST)
    }

    fn ssh_endpoint() -> Result<SshEndpoint> {
        Ok(SshEndpoint {
            address: Self::address()?,
            port: store::get_or(SSH_PORT, 22)?,
            user: store::require(USER)?,
            // Only a path the user typed: the host refuses any other (a driver never picks
            // the key). None: the host makes a key pair and lends its public half through
            // the `keys` capability (`generated_public_key`) to a driver that must install
            // it at its provider.
            key_path: store::get(KEY).filter(|k| !k.is_empty()),
        })
    }

    fn engine_port() -> u16 {
        store::get_or(ENGINE_PORT, 2376).unwrap_or(2376)
    }

    // CHANGE: start, stop and kill are "template driver does not support …" by default;
    // implement them with your provider's API. An existing machine can at least reboot.
    fn restart() -> Result<()> {
        reboot_over_ssh()
    }
}

dmw_guest::export_driver!(Template);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use dmw_guest::driver::MachineState;
    use dmw_guest::mock;

    /// The flags as the host passes them: every declared flag, defaults applied.
    fn given(overrides: &[(&str, &str)]) -> Flags {
        let mut all: Vec<(String, Vec<String>)> = Template::create_flags()
            .into_iter()
            .map(|f| (f.name, vec![f.default.unwrap_or_default()]))
            .collect();
        for (name, value) in overrides {
            match all.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = vec![value.to_string()],
                None => all.push((name.to_string(), vec![value.to_string()])),
            }
        }
        Flags::new(all)
    }

    #[test]
    fn flags_follow_the_hosts_rules() {
        for f in Template::create_flags() {
            assert!(f.name.starts_with("template-"), "{}", f.name);
            let env = f.env_var.unwrap_or_default();
            assert!(env.starts_with("TEMPLATE_"), "{env}");
            assert_eq!(env, f.name.to_uppercase().replace('-', "_"));
        }
    }

    #[test]
    fn requires_a_host() {
        mock::reset();
        let r = Template::set_config("m", &given(&[]));
        assert!(
            matches!(r, Err(Error::InvalidInput(m)) if m == "template driver requires the --template-host option")
        );
        assert!(mock::store().is_empty(), "nothing stored");
    }

    #[test]
    fn refuses_bad_values() {
        mock::reset();
        for (flag, value, needle) in [
            (HOST, "a b", "is not an IP address or DNS name"),
            (HOST, "h/x", "is not an IP address or DNS name"),
            (USER, "a b", "is not a user name"),
            (SSH_PORT, "70000", "--template-ssh-port must be a TCP port"),
            (SSH_PORT, "x", "--template-ssh-port expects a whole number"),
            (
                ENGINE_PORT,
                "0",
                "--template-engine-port must be a TCP port",
            ),
        ] {
            let mut over = vec![(HOST, "10.0.0.5")];
            over.push((flag, value));
            let r = Template::set_config("m", &given(&over));
            assert!(
                matches!(&r, Err(Error::InvalidInput(m)) if m.contains(needle)),
                "{flag}={value}: {r:?}"
            );
        }
        Template::set_config("m", &given(&[(HOST, "h"), (SSH_PORT, "2376")])).expect("config");
        assert!(
            matches!(Template::pre_create_check(), Err(Error::InvalidInput(m)) if m.contains("must differ"))
        );
    }

    #[test]
    fn create_shows_the_key_the_host_lends() {
        mock::reset();
        mock::set_machine_public_key("ssh-ed25519 AAAA dmw m");
        Template::set_config("m", &given(&[(HOST, "10.0.0.5")])).expect("config");
        Template::create().expect("create");
        assert!(
            mock::logs()[1].1.ends_with("ssh-ed25519 AAAA dmw m"),
            "{:?}",
            mock::logs()
        );
    }

    #[test]
    fn an_existing_machine_from_start_to_end() {
        mock::reset();
        Template::set_config("m", &given(&[(HOST, " 10.0.0.5 "), (SSH_PORT, "2222")]))
            .expect("config");
        Template::pre_create_check().expect("check");
        Template::create().expect("create");
        assert_eq!(mock::logs()[0].1, "Using the existing machine at 10.0.0.5");
        assert_eq!(mock::logs().len(), 1, "no key lent, none to authorize");
        assert_eq!(
            Template::ssh_endpoint().ok(),
            Some(SshEndpoint {
                address: "10.0.0.5".into(),
                port: 2222,
                user: "root".into(),
                key_path: None,
            })
        );
        assert_eq!(Template::engine_port(), 2376);
        assert_eq!(Template::state().ok(), Some(MachineState::Running));
        mock::set_unreachable(true);
        assert_eq!(Template::state().ok(), Some(MachineState::Stopped));
        assert!(
            matches!(Template::stop(), Err(Error::Unsupported(m)) if m == "template driver does not support stop")
        );
        Template::restart().expect("reboot");
        assert_eq!(
            mock::commands(),
            vec![("shutdown -r now".to_string(), true)]
        );
        assert!(Template::remove().is_ok());
        assert!(mock::commands().len() == 1, "remove touches nothing");
    }

    #[test]
    fn a_key_the_user_names_is_passed_on() {
        mock::reset();
        Template::set_config(
            "m",
            &given(&[(HOST, "h"), (KEY, "/home/u/.ssh/id_ed25519"), (USER, "ops")]),
        )
        .expect("config");
        let ep = Template::ssh_endpoint().expect("endpoint");
        assert_eq!(ep.key_path.as_deref(), Some("/home/u/.ssh/id_ed25519"));
        assert_eq!(ep.user, "ops");
    }

    #[test]
    fn the_contract_sees_the_same_driver() {
        use exports::dmw::plugin::driver::{FlagValue, Guest};
        mock::reset();
        let info = __DmwDriverExport::info();
        assert_eq!((info.name.as_str(), info.provisions), ("template", true));
        assert_eq!(__DmwDriverExport::create_flags().len(), 5);
        let r = __DmwDriverExport::set_config(
            "m".into(),
            vec![FlagValue {
                name: HOST.into(),
                values: vec!["192.0.2.9".into()],
            }],
        );
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(
            __DmwDriverExport::address().ok().as_deref(),
            Some("192.0.2.9")
        );
        assert_eq!(
            __DmwDriverExport::ssh_endpoint().map(|e| e.port).ok(),
            Some(22)
        );
    }
}
