//! The `debian` recipe: Debian, Ubuntu and their derivatives (Mint, Pop!_OS, Raspbian…).
//! Installs Docker Engine with apt (Debian's `docker.io`, Docker's repository, or an
//! install script) and runs it under systemd with mutual TLS.

dmw_guest::generate!("recipe-plugin");

mod apt;

use dmw_guest::engine::{self, CERT_DIR, DROPIN_PATH, DaemonConfig, UnixSocket};
use dmw_guest::{Error, Result, info, run_root, status_root, store, warn};
use exports::dmw::plugin::recipe::{EngineConfig, Guest, InstallMethod, OsInfo, RecipeInfo};

/// The systemd unit of the engine.
const UNIT: &str = "docker.service";
/// The socket unit Debian's and Docker's packages ship next to it.
const SOCKET_UNIT: &str = "docker.socket";
/// Store key: the TLS port the engine was configured with (for `restart-engine`).
const PORT_KEY: &str = "engine-port";

/// The Debian-family recipe.
struct Debian;

/// The engine's dockerd path, or an error telling the user to install it first.
fn require_dockerd() -> Result<String> {
    engine::find_dockerd()?.ok_or_else(|| {
        Error::Failed(
            "Docker Engine (dockerd) is not installed on the machine: it is not in PATH, \
             /usr/bin, /usr/sbin or /usr/local/bin. Install it, or choose an install method \
             other than `none`."
                .into(),
        )
    })
}

/// Restart the engine unit and wait until it listens on `port` with TLS.
fn restart_and_wait(port: u16) -> Result<()> {
    info("Restarting docker...");
    let command = format!("systemctl daemon-reload && systemctl restart {UNIT}");
    let out = dmw_guest::output_root(&command)?;
    if out.exit_code != 0 {
        let err = dmw_guest::command_error(&command, &out);
        return Err(Error::Failed(format!(
            "{}\n{}",
            err.message(),
            engine::unit_diagnostics(UNIT)
        )));
    }
    engine::wait_listening(port, UNIT)
}

impl Guest for Debian {
    fn info() -> RecipeInfo {
        RecipeInfo {
            name: "debian".into(),
            description: "Debian, Ubuntu and derivatives (apt, systemd)".into(),
        }
    }

    fn applies(os: OsInfo) -> u32 {
        let family =
            |id: &str| matches!(id.trim().to_ascii_lowercase().as_str(), "debian" | "ubuntu");
        if family(&os.id) {
            100
        } else if os.id_like.iter().any(|l| family(l)) {
            50
        } else {
            0
        }
    }

    fn set_hostname(name: String) -> Result<()> {
        run_root(&engine::hostname_script(&name)?).map(drop)
    }

    fn install_engine(config: EngineConfig) -> Result<()> {
        if let Some(path) = engine::find_dockerd()? {
            info(&format!(
                "Docker Engine is already installed ({path}); not installing it"
            ));
            return Ok(());
        }
        match config.install_method {
            InstallMethod::None => return require_dockerd().map(drop),
            InstallMethod::Distro => apt::install_distro()?,
            InstallMethod::Repo => apt::install_repo(&config.os.fields, &config.repo_url)?,
            InstallMethod::Script => apt::install_script(&config.install_url)?,
        }
        let path = engine::find_dockerd()?.ok_or_else(|| {
            Error::Failed(
                "the installation finished but dockerd is still not found on the machine; \
                 see the provisioning log for the installer's output"
                    .into(),
            )
        })?;
        info(&format!("Docker Engine installed ({path})"));
        Ok(())
    }

    fn configure_engine(config: EngineConfig) -> Result<()> {
        let dockerd = require_dockerd()?;
        let conflict =
            "[ -f /etc/docker/daemon.json ] && grep -q '\"hosts\"' /etc/docker/daemon.json";
        if status_root(conflict)? {
            return Err(Error::Failed(
                "/etc/docker/daemon.json on the machine sets \"hosts\", which conflicts with the \
                 -H flags dmw gives dockerd; remove \"hosts\" from that file and provision again"
                    .into(),
            ));
        }
        info("Copying certs to the remote machine...");
        let tls = dmw_guest::host::install_server_cert(CERT_DIR)?;
        // Debian's and Docker's units start dockerd with `-H fd://` from docker.socket, and
        // docker.service Requires= it, so the socket cannot be disabled or masked. Keep
        // socket activation for the local socket; only the TCP listener is added.
        let activated = status_root(&format!("systemctl cat {SOCKET_UNIT} >/dev/null 2>&1"))?;
        let unix_socket = if activated {
            run_root(&format!(
                "systemctl unmask {SOCKET_UNIT} && systemctl enable {SOCKET_UNIT}"
            ))?;
            UnixSocket::Activated
        } else {
            UnixSocket::Path("/var/run/docker.sock")
        };
        let dropin = engine::systemd_dropin(&DaemonConfig {
            dockerd: &dockerd,
            port: config.port,
            unix_socket,
            tls: &tls,
            storage_driver: &config.storage_driver,
            labels: &config.labels,
            insecure_registries: &config.insecure_registries,
            registry_mirrors: &config.registry_mirrors,
            extra_flags: &config.extra_flags,
            env: &config.env,
        })?;
        info("Setting Docker configuration on the remote daemon...");
        dmw_guest::host::upload(DROPIN_PATH, dropin.as_bytes(), 0o644)?;
        run_root(&format!(
            "systemctl daemon-reload && systemctl enable {UNIT}"
        ))?;
        store::set(PORT_KEY, config.port);
        restart_and_wait(config.port)
    }

    fn upgrade_engine(config: EngineConfig) -> Result<()> {
        if matches!(config.install_method, InstallMethod::None) {
            return Err(Error::Unsupported(
                "the engine's install method is `none`: dmw does not manage its packages; \
                 upgrade Docker Engine on the machine yourself"
                    .into(),
            ));
        }
        info("Upgrading docker...");
        apt::upgrade_installed()?;
        let port = store::get_or(PORT_KEY, config.port)?;
        restart_and_wait(port)
    }

    fn restart_engine() -> Result<()> {
        let port = store::get_or(PORT_KEY, 2376u16)?;
        if port == 0 {
            warn("the stored engine port is 0; using 2376");
        }
        restart_and_wait(if port == 0 { 2376 } else { port })
    }
}

export!(Debian);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
