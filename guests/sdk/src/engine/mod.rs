//! Docker Engine setup shared by every recipe family.
//!
//! * here: the dockerd command line ([`DaemonConfig`], [`dockerd_args`] and its parts),
//!   engine environment checks, finding dockerd, the daemon.json check, the certificates
//!   and the stored engine port;
//! * [`systemd`]: the drop-in, docker.socket, restart and wait for systemd-managed engines;
//! * [`service`]: waiting until the engine listens, for any init system;
//! * [`script`]: the `script` install method;
//! * [`hostname`]: the hostname commands;
//! * [`firewall`]: the engine's and Swarm mode's ports in an active firewalld or ufw.
//!
//! The most used items of the submodules are re-exported here.

pub mod firewall;
pub mod hostname;
pub mod script;
pub mod service;
pub mod systemd;

pub use hostname::{HostnameOptions, hostname_script, hostname_script_with, validate_hostname};
pub use script::{DEFAULT_SCRIPT_URL, check_url, install_script};
pub use service::{
    LISTEN_ATTEMPTS, LISTEN_INTERVAL, LISTING, STATE_MARK, ServiceWatch, diagnostics, listening_on,
    restart_service_and_wait, wait_service_listening,
};
pub use systemd::{DROPIN_PATH, systemd_dropin, systemd_word, unit_diagnostics, wait_listening};

use crate::cmd::{output_root, sh_quote, status_root};
use crate::{Error, InstalledCerts, Result, host, info, store, warn};

/// Where Docker Machine and dmw put the engine's TLS files on the target.
pub const CERT_DIR: &str = "/etc/docker";
/// Store key: the TLS port the engine was configured with (for `restart-engine`).
pub const PORT_KEY: &str = "engine-port";
/// The engine port used when none (or 0) was stored.
pub const DEFAULT_PORT: u16 = 2376;

/// How dockerd gets its local unix socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnixSocket<'a> {
    /// From systemd socket activation (`-H fd://`, the unit has a `.socket` companion).
    Activated,
    /// dockerd binds this path itself (`-H unix://<path>`).
    Path(&'a str),
    /// The OS's own engine configuration already binds it (RancherOS): no `-H` for it.
    Inherited,
}

/// Everything the dockerd command line is made from.
#[derive(Clone, Copy, Debug)]
pub struct DaemonConfig<'a> {
    /// Absolute path of dockerd on the target.
    pub dockerd: &'a str,
    /// TCP port of the TLS endpoint.
    pub port: u16,
    /// The local socket.
    pub unix_socket: UnixSocket<'a>,
    /// Where the CA, server certificate and key are on the target.
    pub tls: &'a InstalledCerts,
    /// `--storage-driver` (empty: dockerd's default).
    pub storage_driver: &'a str,
    /// Labels `k=v`.
    pub labels: &'a [String],
    /// Insecure registries.
    pub insecure_registries: &'a [String],
    /// Registry mirrors.
    pub registry_mirrors: &'a [String],
    /// Extra flags `flag=value` or `flag` (a leading `--` is optional).
    pub extra_flags: &'a [String],
    /// Arguments put last exactly as given. In a systemd drop-in they are not quoted, so unit
    /// variables (`$OPTIONS`) and a stock unit's own options keep their meaning there.
    pub raw_args: &'a [String],
    /// Environment `K=V`.
    pub env: &'a [String],
}

/// The parts of a recipe's `engine-config` that shape dockerd's command line, borrowed.
/// Recipes build it with [`engine_options!`](crate::engine_options) (the SDK cannot name the
/// export type `EngineConfig`) and adjust fields before turning it into a [`DaemonConfig`].
#[derive(Clone, Copy, Debug)]
pub struct EngineOptions<'a> {
    /// TCP port of the TLS endpoint.
    pub port: u16,
    /// `--storage-driver` (empty: dockerd's default).
    pub storage_driver: &'a str,
    /// Labels `k=v`.
    pub labels: &'a [String],
    /// Insecure registries.
    pub insecure_registries: &'a [String],
    /// Registry mirrors.
    pub registry_mirrors: &'a [String],
    /// Extra flags `flag=value` or `flag`.
    pub extra_flags: &'a [String],
    /// Environment `K=V`.
    pub env: &'a [String],
}

impl<'a> EngineOptions<'a> {
    /// The dockerd configuration for these options (no raw arguments; override fields with
    /// struct update syntax: `DaemonConfig { raw_args: &extra, ..opts.daemon(..) }`).
    pub fn daemon(
        &self,
        dockerd: &'a str,
        unix_socket: UnixSocket<'a>,
        tls: &'a InstalledCerts,
    ) -> DaemonConfig<'a> {
        DaemonConfig {
            dockerd,
            port: self.port,
            unix_socket,
            tls,
            storage_driver: self.storage_driver,
            labels: self.labels,
            insecure_registries: self.insecure_registries,
            registry_mirrors: self.registry_mirrors,
            extra_flags: self.extra_flags,
            raw_args: &[],
            env: self.env,
        }
    }
}

/// The install method on an OS Docker publishes no packages for, from a recipe's
/// `InstallMethod` (in scope where it is used): `auto` is the OS's own package
/// (`distro`), `repo` is refused with `why_not_repo`, the others stay as asked.
#[macro_export]
macro_rules! own_packages_method {
    ($method:expr, $why_not_repo:expr) => {
        match $method {
            InstallMethod::Auto => Ok(InstallMethod::Distro),
            InstallMethod::Repo => Err($crate::Error::Unsupported(String::from($why_not_repo))),
            other => Ok(other),
        }
    };
}

/// Borrow the [`EngineOptions`](crate::engine::EngineOptions) of a recipe's `EngineConfig`.
#[macro_export]
macro_rules! engine_options {
    ($config:expr) => {{
        let c = &$config;
        $crate::engine::EngineOptions {
            port: c.port,
            storage_driver: &c.storage_driver,
            labels: &c.labels,
            insecure_registries: &c.insecure_registries,
            registry_mirrors: &c.registry_mirrors,
            extra_flags: &c.extra_flags,
            env: &c.env,
        }
    }};
}

/// Reject values that would break out of one line of a configuration file.
pub(crate) fn one_line(what: &str, value: &str) -> Result<()> {
    if value.chars().any(|c| c.is_control()) {
        return Err(Error::InvalidInput(format!(
            "{what} {value:?} contains a line break or control character; remove it"
        )));
    }
    Ok(())
}

/// Whether `name` is a valid environment variable name (a letter or `_`, then letters,
/// digits and `_`).
pub fn env_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One engine environment entry `NAME=value` split into name and value, or an error when it
/// has no `=`, an invalid name, or a line break.
pub fn env_var(var: &str) -> Result<(&str, &str)> {
    match var.split_once('=') {
        Some((name, value)) if env_name_ok(name) && !var.chars().any(|c| c.is_control()) => {
            Ok((name, value))
        }
        _ => Err(Error::InvalidInput(format!(
            "engine environment {var:?} must have the form NAME=value on one line"
        ))),
    }
}

/// `export NAME='value'` lines for a shell that starts the engine (sysconfig, conf.d, profile).
pub fn shell_exports(env: &[String]) -> Result<String> {
    let mut text = String::new();
    for var in env {
        let (name, value) = env_var(var)?;
        text.push_str(&format!("export {name}={}\n", sh_quote(value)));
    }
    Ok(text)
}

/// The listener and TLS arguments: `-H tcp://0.0.0.0:<port>`, the local socket's `-H` (unless
/// inherited), `--tlsverify` and the three certificate paths.
pub fn listener_args(cfg: &DaemonConfig) -> Result<Vec<String>> {
    if cfg.port == 0 {
        return Err(Error::InvalidInput("the engine port must not be 0".into()));
    }
    let mut args = vec!["-H".to_string(), format!("tcp://0.0.0.0:{}", cfg.port)];
    match cfg.unix_socket {
        UnixSocket::Activated => args.extend(["-H".into(), "fd://".into()]),
        UnixSocket::Path(p) => {
            one_line("socket path", p)?;
            args.extend(["-H".into(), format!("unix://{p}")]);
        }
        UnixSocket::Inherited => {}
    }
    args.push("--tlsverify".into());
    for (flag, path) in [
        ("--tlscacert", &cfg.tls.ca_path),
        ("--tlscert", &cfg.tls.cert_path),
        ("--tlskey", &cfg.tls.key_path),
    ] {
        one_line("certificate path", path)?;
        args.push(flag.into());
        args.push(path.clone());
    }
    Ok(args)
}

/// The user's engine options as arguments: `--storage-driver`, `--label`,
/// `--insecure-registry`, `--registry-mirror` and the extra flags, in that order (no
/// listeners, TLS or raw arguments).
pub fn option_args(cfg: &DaemonConfig) -> Result<Vec<String>> {
    let mut args = Vec::new();
    if !cfg.storage_driver.trim().is_empty() {
        one_line("storage driver", cfg.storage_driver)?;
        args.push("--storage-driver".into());
        args.push(cfg.storage_driver.trim().into());
    }
    for label in cfg.labels {
        one_line("engine label", label)?;
        if !label.contains('=') || label.starts_with('=') {
            return Err(Error::InvalidInput(format!(
                "engine label {label:?} must have the form key=value"
            )));
        }
        args.push("--label".into());
        args.push(label.clone());
    }
    for (flag, values, what) in [
        (
            "--insecure-registry",
            cfg.insecure_registries,
            "insecure registry",
        ),
        ("--registry-mirror", cfg.registry_mirrors, "registry mirror"),
    ] {
        for v in values {
            one_line(what, v)?;
            args.push(flag.into());
            args.push(v.clone());
        }
    }
    for opt in cfg.extra_flags {
        one_line("engine option", opt)?;
        let opt = opt.trim().trim_start_matches("--");
        if opt.is_empty() || opt.starts_with('=') {
            return Err(Error::InvalidInput(format!(
                "engine option {opt:?} must have the form flag=value or flag"
            )));
        }
        args.push(format!("--{opt}"));
    }
    Ok(args)
}

/// [`DaemonConfig::raw_args`], checked to be one line each.
pub fn raw_args(cfg: &DaemonConfig) -> Result<Vec<String>> {
    cfg.raw_args
        .iter()
        .map(|a| one_line("engine argument", a).map(|()| a.clone()))
        .collect()
}

/// The dockerd arguments (after the program) for `cfg`: [`listener_args`], then
/// [`option_args`], then the raw arguments.
pub fn dockerd_args(cfg: &DaemonConfig) -> Result<Vec<String>> {
    let mut args = listener_args(cfg)?;
    args.extend(option_args(cfg)?);
    args.extend(raw_args(cfg)?);
    Ok(args)
}

/// A shell script printing dockerd's absolute path (empty output: not installed). It also
/// finds CentOS/RHEL 7's own package's `/usr/bin/dockerd-current`.
pub const FIND_DOCKERD: &str = "p=$(command -v dockerd 2>/dev/null) || p=; \
    if [ -z \"$p\" ]; then for c in /usr/bin/dockerd /usr/sbin/dockerd /usr/local/bin/dockerd \
    /usr/local/sbin/dockerd /usr/bin/dockerd-current; do if [ -x \"$c\" ]; then p=$c; break; fi; \
    done; fi; printf '%s\\n' \"$p\"";

/// dockerd's absolute path on the target, if it is installed (looked up as root).
pub fn find_dockerd() -> Result<Option<String>> {
    let out = output_root(FIND_DOCKERD)?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((out.exit_code == 0 && path.starts_with('/')).then_some(path))
}

/// The engine's dockerd path, or an error telling the user to install it first.
pub fn require_dockerd() -> Result<String> {
    find_dockerd()?.ok_or_else(|| {
        Error::Failed(
            "Docker Engine (dockerd) is not installed on the machine: it is not in PATH, \
             /usr/bin, /usr/sbin or /usr/local/bin. Install it, or choose an install method \
             other than `none`."
                .into(),
        )
    })
}

/// Whether dockerd is already installed; if so, says that it is kept (an installer is not run).
pub fn keep_installed() -> Result<bool> {
    match find_dockerd()? {
        Some(path) => {
            info(&format!(
                "Docker Engine is already installed ({path}); not installing it"
            ));
            Ok(true)
        }
        None => Ok(false),
    }
}

/// dockerd's path after an installer ran, or an error saying the installer left none.
pub fn installed_dockerd() -> Result<String> {
    let path = find_dockerd()?.ok_or_else(|| {
        Error::Failed(
            "the installation finished but dockerd is still not found on the machine; \
             see the provisioning log for the installer's output"
                .into(),
        )
    })?;
    info(&format!("Docker Engine installed ({path})"));
    Ok(path)
}

/// The error for upgrading an engine whose install method is `none`.
pub fn unmanaged_upgrade() -> Error {
    Error::Unsupported(
        "the engine's install method is `none`: dmw does not manage its packages; \
         upgrade Docker Engine on the machine yourself"
            .into(),
    )
}

/// Fail when /etc/docker/daemon.json sets `hosts`, which dockerd refuses next to `-H` flags.
pub fn check_daemon_json() -> Result<()> {
    let conflict = "[ -f /etc/docker/daemon.json ] && grep -q '\"hosts\"' /etc/docker/daemon.json";
    if status_root(conflict)? {
        return Err(Error::Failed(
            "/etc/docker/daemon.json on the machine sets \"hosts\", which conflicts with the \
             -H flags dmw gives dockerd; remove \"hosts\" from that file and provision again"
                .into(),
        ));
    }
    Ok(())
}

/// Issue the server certificate and upload it with the CA certificate into `directory`.
pub fn install_certs(directory: &str) -> Result<InstalledCerts> {
    info("Copying certs to the remote machine...");
    host::install_server_cert(directory)
}

/// A recipe's `upgrade-engine`: refused when the engine is not dmw's to manage
/// (`unmanaged`: install method `none`), else "Upgrading docker...", `upgrade_packages`,
/// then `restart_and_wait` (the init system's) on the stored port (`port` when none).
pub fn upgrade_and_restart(
    unmanaged: bool,
    port: u16,
    upgrade_packages: impl FnOnce() -> Result<()>,
    restart_and_wait: impl FnOnce(u16) -> Result<()>,
) -> Result<()> {
    if unmanaged {
        return Err(unmanaged_upgrade());
    }
    info("Upgrading docker...");
    upgrade_packages()?;
    restart_and_wait(stored_port(port)?)
}

/// A recipe's `restart-engine`: `restart_and_wait` (the init system's) on the stored port
/// ([`DEFAULT_PORT`] when none).
pub fn restart_on_stored_port(restart_and_wait: impl FnOnce(u16) -> Result<()>) -> Result<()> {
    restart_and_wait(stored_port(DEFAULT_PORT)?)
}

/// The `configure_engine`, `upgrade_engine` and `restart_engine` methods of a systemd
/// recipe whose engine needs nothing beyond [`systemd::configure`]: expand it inside
/// `impl Guest for … { }` with the expression that upgrades the engine's packages, e.g.
/// `dmw_guest::systemd_engine_methods!(apt::upgrade_installed());`. `EngineConfig` and
/// `InstallMethod` must be in scope (the recipe's generated exports).
#[macro_export]
macro_rules! systemd_engine_methods {
    ($upgrade_packages:expr) => {
        fn configure_engine(config: EngineConfig) -> $crate::Result<()> {
            $crate::engine::systemd::configure(&$crate::engine_options!(config))
        }

        fn upgrade_engine(config: EngineConfig) -> $crate::Result<()> {
            $crate::engine::upgrade_and_restart(
                matches!(config.install_method, InstallMethod::None),
                config.port,
                || $upgrade_packages,
                $crate::engine::systemd::restart_and_wait,
            )
        }

        fn restart_engine() -> $crate::Result<()> {
            $crate::engine::restart_on_stored_port($crate::engine::systemd::restart_and_wait)
        }
    };
}

/// Remember the port the engine was configured with, for `restart-engine`.
pub fn remember_port(port: u16) {
    store::set(PORT_KEY, port);
}

/// The port the engine was configured with (from the store), else `default`; a stored 0
/// becomes [`DEFAULT_PORT`] with a warning.
pub fn stored_port(default: u16) -> Result<u16> {
    let port = store::get_or(PORT_KEY, default)?;
    if port == 0 {
        warn(&format!(
            "the stored engine port is 0; using {DEFAULT_PORT}"
        ));
        return Ok(DEFAULT_PORT);
    }
    Ok(port)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
