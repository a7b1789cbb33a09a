//! The `rancheros` recipe: RancherOS 1.x. Docker Engine ships with the OS and runs as the
//! `docker` system service (under System Docker), so the recipe only configures it.
//!
//! The engine options go into RancherOS's own configuration (`rancher.docker.extra_args`,
//! `storage_driver`, `environment`, `tls: false`) through `ros config merge`, which RancherOS
//! 1.x documents and always honours. Docker Machine instead wrote `DOCKER_OPTS` into
//! /var/lib/rancher/conf/docker, which 1.x's docker-init only sources without exporting it,
//! so those options are not reliably passed to dockerd; dmw moves such a file aside.

dmw_guest::generate!("recipe-plugin");

use dmw_guest::engine::{self, DaemonConfig, ServiceWatch, UnixSocket};
use dmw_guest::{Error, Result, info, run_root, status_root, warn};
use exports::dmw::plugin::recipe::{EngineConfig, Guest, InstallMethod, OsInfo, RecipeInfo};

/// Where RancherOS keeps its persistent configuration, and dmw the TLS files (as Docker Machine).
const CONF_DIR: &str = "/var/lib/rancher/conf";
/// The configuration dmw merges into RancherOS's.
const DMW_CONFIG: &str = "/var/lib/rancher/conf/dmw-docker.yml";
/// Docker Machine's hostname cloud-config, read at every boot.
const HOSTNAME_CONFIG: &str = "/var/lib/rancher/conf/cloud-config.d/machine-hostname.yml";
/// The storage drivers RancherOS's engine supports.
const STORAGE_DRIVERS: [&str; 2] = ["overlay2", "overlay"];
/// Moves Docker Machine's options file aside when it sets a TCP listener (it would clash).
const LEGACY_OPTIONS: &str = "f=/var/lib/rancher/conf/docker; \
    if [ -f \"$f\" ] && grep -q 'tcp://' \"$f\"; then mv -f \"$f\" \"$f.dmw-disabled\" && \
    echo moved; fi";
/// Restarts the user engine.
const RESTART: &str = "system-docker restart docker";
/// What the engine said, for errors.
const DIAGNOSTICS: &str = "echo '--- system-docker logs docker ---'; \
    system-docker logs --tail 30 docker 2>&1; echo '--- /var/log/docker.log ---'; \
    tail -n 30 /var/log/docker.log 2>&1";

/// The RancherOS recipe.
struct RancherOs;

/// A string as a double-quoted YAML scalar (control characters were rejected before).
fn yaml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A list of strings as a YAML flow sequence.
fn yaml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| yaml_str(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// The storage driver to configure (none: RancherOS's default), or Docker Machine's error.
fn storage_driver(requested: &str) -> Result<Option<&str>> {
    let requested = requested.trim();
    if requested.is_empty() {
        return Ok(None);
    }
    STORAGE_DRIVERS
        .iter()
        .find(|d| **d == requested)
        .map(|d| Some(*d))
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "Unsupported storage driver: {requested}. RancherOS's engine supports only \
                 overlay2 and overlay: use --engine-storage-driver overlay2, or leave it empty \
                 for RancherOS's default"
            ))
        })
}

/// The RancherOS configuration (cloud-config YAML) that makes the engine serve TLS.
fn docker_config(config: &EngineConfig, tls: &dmw_guest::InstalledCerts) -> Result<String> {
    let driver = storage_driver(&config.storage_driver)?;
    // RancherOS's own engine options already bind the unix socket /var/run/docker.sock.
    let extra = engine::dockerd_args(&DaemonConfig {
        // RancherOS takes the storage driver as its own setting.
        storage_driver: "",
        ..dmw_guest::engine_options!(config).daemon("/usr/bin/dockerd", UnixSocket::Inherited, tls)
    })?;
    for var in &config.env {
        engine::env_var(var)?;
    }
    let mut text = format!(
        "#cloud-config\n\
         # Written by dmw: Docker Engine with mutual TLS on port {}.\n\
         # dmw merges it with `ros config merge` each time it provisions the machine.\n\
         rancher:\n  docker:\n    tls: false\n",
        config.port
    );
    if let Some(d) = driver {
        text.push_str(&format!("    storage_driver: {}\n", yaml_str(d)));
    }
    text.push_str(&format!("    extra_args: {}\n", yaml_list(&extra)));
    if !config.env.is_empty() {
        text.push_str(&format!("    environment: {}\n", yaml_list(&config.env)));
    }
    Ok(text)
}

/// Where `install-server-cert` puts the files in [`CONF_DIR`] (to validate options early).
fn expected_certs() -> dmw_guest::InstalledCerts {
    dmw_guest::InstalledCerts {
        ca_path: format!("{CONF_DIR}/ca.pem"),
        cert_path: format!("{CONF_DIR}/server.pem"),
        key_path: format!("{CONF_DIR}/server-key.pem"),
        fresh: true,
    }
}

/// Whether this is RancherOS with its tools (`ros`, `system-docker`).
fn require_rancheros() -> Result<()> {
    if status_root("command -v ros >/dev/null 2>&1 && command -v system-docker >/dev/null 2>&1")? {
        Ok(())
    } else {
        Err(Error::Failed(
            "`ros` or `system-docker` is not on the machine, so it is not a RancherOS 1.x host \
             as its /etc/os-release says; choose another recipe with --recipe"
                .into(),
        ))
    }
}

/// Restart the engine service and wait until it listens on `port` (System Docker reports
/// no state worth polling: only a time-out ends the wait).
fn restart_and_wait(port: u16) -> Result<()> {
    engine::restart_service_and_wait(
        RESTART,
        port,
        &ServiceWatch {
            service: "the docker system service",
            state_command: "",
            stopped: &[],
            diagnostics: DIAGNOSTICS,
            reset: "",
            advice: "Fix the cause the log below shows (a bad engine option, another program on the \
                     port...), check the engine's configuration with `sudo ros config get \
                     rancher.docker`, then provision the machine again.",
        },
    )
}

impl Guest for RancherOs {
    fn info() -> RecipeInfo {
        RecipeInfo {
            name: "rancheros".into(),
            description: "RancherOS 1.x (engine ships with the OS; System Docker)".into(),
        }
    }

    fn applies(os: OsInfo) -> u32 {
        if os.id.trim().eq_ignore_ascii_case("rancheros") {
            100
        } else if os
            .id_like
            .iter()
            .any(|l| l.eq_ignore_ascii_case("rancheros"))
        {
            50
        } else {
            0
        }
    }

    fn set_hostname(name: String) -> Result<()> {
        run_root(&engine::hostname_script(&name)?)?;
        // The console's /etc is rebuilt at boot; RancherOS reads the hostname from its
        // cloud-config, where Docker Machine put it too.
        let yml = format!("#cloud-config\nhostname: {name}\n");
        dmw_guest::host::upload(HOSTNAME_CONFIG, yml.as_bytes(), 0o644)
    }

    fn install_engine(config: EngineConfig) -> Result<()> {
        match config.install_method {
            InstallMethod::Repo | InstallMethod::Script => Err(Error::Unsupported(
                "RancherOS ships Docker Engine as a system service, so the `repo` and `script` \
                 install methods are not supported: use `--engine-install-method auto` (the \
                 default), `distro` or `none`; to run another engine version use `sudo ros engine switch \
                 docker-<version>` (`sudo ros engine list` shows them)"
                    .into(),
            )),
            // `auto` and `distro` both mean the engine that ships with the OS.
            InstallMethod::Auto | InstallMethod::Distro | InstallMethod::None => {
                require_rancheros()?;
                info(
                    "Docker Engine ships with RancherOS (the `docker` system service); nothing to install",
                );
                Ok(())
            }
        }
    }

    fn configure_engine(config: EngineConfig) -> Result<()> {
        // Refuse bad options before anything changes on the machine.
        docker_config(&config, &expected_certs())?;
        require_rancheros()?;
        let tls = engine::install_certs(CONF_DIR)?;
        let yml = docker_config(&config, &tls)?;
        info("Setting Docker configuration on the remote daemon...");
        dmw_guest::host::upload(DMW_CONFIG, yml.as_bytes(), 0o644)?;
        run_root(&format!("ros config merge -i {DMW_CONFIG}"))?;
        if run_root(LEGACY_OPTIONS)?.contains("moved") {
            warn(
                "moved /var/lib/rancher/conf/docker (Docker Machine's engine options) to \
                 /var/lib/rancher/conf/docker.dmw-disabled: its TCP listener would clash with \
                 dmw's",
            );
        }
        engine::remember_port(config.port);
        restart_and_wait(config.port)
    }

    fn upgrade_engine(_config: EngineConfig) -> Result<()> {
        Err(Error::Unsupported(
            "RancherOS ships Docker Engine with the OS: upgrade the OS with `sudo ros os \
             upgrade` (then reboot), or switch the engine version with `sudo ros engine switch \
             docker-<version>` (`sudo ros engine list` shows them)"
                .into(),
        ))
    }

    fn restart_engine() -> Result<()> {
        restart_and_wait(engine::stored_port(engine::DEFAULT_PORT)?)
    }
}

export!(RancherOs);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
