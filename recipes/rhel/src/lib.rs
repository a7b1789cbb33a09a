//! The `rhel` recipe: RHEL 7+, CentOS 7 and Stream, Rocky, Alma, Oracle Linux 7+, Fedora
//! and Amazon Linux 2 / 2023. Installs Docker Engine with dnf or yum (the OS's package,
//! Docker's repository, or an install script) and runs it under systemd with mutual TLS.
//!
//! Unlike Docker Machine it never runs a full `yum update`, finds dockerd wherever the
//! package put it (CentOS 7's own package has `/usr/bin/dockerd-current`), keeps the
//! package's `$OPTIONS` in the unit, and relabels the files it writes when SELinux is on.
//!
//! EL7's sudoers has `Defaults requiretty`: sudo then refuses to run without a terminal.
//! The host handles that (it retries the command with a PTY), so this recipe needs nothing
//! for it.

dmw_guest::generate!("recipe-plugin");

mod pkg;

use dmw_guest::engine::{self, CERT_DIR, DROPIN_PATH, DaemonConfig, FIND_DOCKERD, UnixSocket};
use dmw_guest::{Error, Result, info, output_root, run_root, status_root, store, warn};
use exports::dmw::plugin::recipe::{EngineConfig, Guest, InstallMethod, OsInfo, RecipeInfo};

/// The systemd unit of the engine.
const UNIT: &str = "docker.service";
/// The socket unit some packages ship next to it.
const SOCKET_UNIT: &str = "docker.socket";
/// Store key: the TLS port the engine was configured with (for `restart-engine`).
const PORT_KEY: &str = "engine-port";
/// The daemon of CentOS/RHEL 7's own `docker` package.
const DOCKERD_CURRENT: &str = "/usr/bin/dockerd-current";
/// The IDs this recipe knows exactly.
const IDS: [&str; 7] = [
    "rhel",
    "centos",
    "rocky",
    "almalinux",
    "ol",
    "fedora",
    "amzn",
];
/// Variables the packages' units pass to dockerd from /etc/sysconfig (unset ones vanish).
const UNIT_VARIABLES: &str = "$OPTIONS $DOCKER_STORAGE_OPTIONS $DOCKER_NETWORK_OPTIONS";
/// The extra variables of CentOS/RHEL 7's `docker` unit.
const CURRENT_VARIABLES: &str = "$ADD_REGISTRY $BLOCK_REGISTRY $INSECURE_REGISTRY $REGISTRIES";
/// Flags CentOS/RHEL 7's `docker` unit gives dockerd-current (its runc, proxy and init
/// live in /usr/libexec/docker, outside PATH).
const CURRENT_FLAGS: [&str; 6] = [
    "add-runtime=docker-runc=/usr/libexec/docker/docker-runc-current",
    "default-runtime=docker-runc",
    "exec-opt=native.cgroupdriver=systemd",
    "userland-proxy-path=/usr/libexec/docker/docker-proxy-current",
    "init-path=/usr/libexec/docker/docker-init-current",
    "seccomp-profile=/etc/docker/seccomp.json",
];

/// The RHEL-family recipe.
struct Rhel;

/// Which kind of OS of the family the machine runs, as far as installing goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Fedora (or an ID_LIKE=fedora derivative) with its release number.
    Fedora(u32),
    /// Amazon Linux: 2 or 2023 (and later).
    Amazon(u32),
    /// RHEL or a rebuild (CentOS, Rocky, Alma, Oracle, ID_LIKE=rhel): ID, major, name.
    El {
        /// The OS's `ID`.
        id: String,
        /// The major release.
        version: u32,
        /// The OS's pretty name, for messages.
        pretty: String,
    },
}

/// The major release in a VERSION_ID such as `9.4` or `2023`.
pub fn major(version_id: &str) -> Option<u32> {
    let digits: String = version_id
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The value of `key` in the OS's os-release fields.
fn field<'a>(os: &'a OsInfo, key: &str) -> Option<&'a str> {
    os.fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.trim())
}

/// Where the machine's OS fits in the family.
pub fn target(os: &OsInfo) -> Result<Target> {
    let id = os.id.trim().to_ascii_lowercase();
    let version = major(&os.version_id).ok_or_else(|| {
        Error::Failed(format!(
            "the machine's /etc/os-release has no usable VERSION_ID ({:?}), so dmw cannot tell \
             which packages fit it",
            os.version_id
        ))
    })?;
    let like = |x: &str| os.id_like.iter().any(|l| l.eq_ignore_ascii_case(x));
    let pretty = if os.pretty_name.trim().is_empty() {
        format!("{id} {}", os.version_id)
    } else {
        os.pretty_name.trim().to_string()
    };
    Ok(match id.as_str() {
        "fedora" => Target::Fedora(version),
        "amzn" => Target::Amazon(version),
        _ if IDS.contains(&id.as_str()) || like("rhel") || like("centos") => Target::El {
            id,
            version,
            pretty,
        },
        _ if like("fedora") => Target::Fedora(version),
        _ => {
            return Err(Error::Unsupported(format!(
                "{pretty} is not an OS of the RHEL family"
            )));
        }
    })
}

/// dockerd's path (CentOS/RHEL 7's dockerd-current included), if the engine is installed.
fn find_dockerd() -> Result<Option<String>> {
    let out = output_root(&format!(
        "d=$({FIND_DOCKERD}); if [ -z \"$d\" ] && [ -x {DOCKERD_CURRENT} ]; then \
         d={DOCKERD_CURRENT}; fi; printf '%s\\n' \"$d\""
    ))?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((out.exit_code == 0 && path.starts_with('/')).then_some(path))
}

/// The engine's dockerd path, or an error telling the user to install it first.
fn require_dockerd() -> Result<String> {
    find_dockerd()?.ok_or_else(|| {
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
    let out = output_root(&command)?;
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

/// Add the package's unit variables to the drop-in's `ExecStart=` command line.
pub fn with_unit_variables(dropin: &str, current: bool) -> String {
    let mut vars = UNIT_VARIABLES.to_string();
    if current {
        vars = format!("{vars} {CURRENT_VARIABLES}");
    }
    let mut text = String::new();
    for line in dropin.lines() {
        text.push_str(line);
        if line.starts_with("ExecStart=") && line.len() > "ExecStart=".len() {
            text.push(' ');
            text.push_str(&vars);
        }
        text.push('\n');
    }
    text
}

/// Relabel what dmw wrote when SELinux is on, so dockerd can read its certificates and
/// systemd its drop-in (files uploaded through a temporary file keep a tmp label).
fn relabel() -> Result<()> {
    let mode = output_root("command -v getenforce >/dev/null 2>&1 && getenforce")?;
    let mode = String::from_utf8_lossy(&mode.stdout).trim().to_string();
    if !matches!(mode.as_str(), "Enforcing" | "Permissive") {
        return Ok(());
    }
    let out = run_root(
        "if command -v restorecon >/dev/null 2>&1; then \
         restorecon -R /etc/docker /etc/systemd/system/docker.service.d; \
         else echo dmw-no-restorecon; fi",
    )?;
    if out.contains("dmw-no-restorecon") {
        warn(&format!(
            "SELinux is {mode} but restorecon is missing: the engine may be unable to read \
             its certificates in /etc/docker (install policycoreutils)"
        ));
    }
    Ok(())
}

impl Guest for Rhel {
    fn info() -> RecipeInfo {
        RecipeInfo {
            name: "rhel".into(),
            description: "RHEL 7+, CentOS, Rocky, Alma, Oracle Linux, Fedora, Amazon Linux \
                          (dnf/yum, systemd)"
                .into(),
        }
    }

    fn applies(os: OsInfo) -> u32 {
        let id = os.id.trim().to_ascii_lowercase();
        // Fedora CoreOS has no package manager to speak of; another recipe handles it.
        if field(&os, "VARIANT_ID").is_some_and(|v| v.eq_ignore_ascii_case("coreos")) {
            return 0;
        }
        match major(&os.version_id) {
            // EL6 and older have no systemd: the el6 recipe's (Amazon Linux counts 2, 2023).
            Some(m) if m <= 6 && id != "amzn" => return 0,
            // Amazon Linux AMI (2018.03) has no systemd either.
            Some(m) if id == "amzn" && (2000..2022).contains(&m) => return 0,
            _ => {}
        }
        let like = |x: &str| os.id_like.iter().any(|l| l.eq_ignore_ascii_case(x));
        if IDS.contains(&id.as_str()) {
            100
        } else if like("rhel") || like("centos") || like("fedora") {
            50
        } else {
            0
        }
    }

    fn set_hostname(name: String) -> Result<()> {
        run_root(&engine::hostname_script(&name)?).map(drop)
    }

    fn install_engine(config: EngineConfig) -> Result<()> {
        if let Some(path) = find_dockerd()? {
            info(&format!(
                "Docker Engine is already installed ({path}); not installing it"
            ));
            return Ok(());
        }
        match config.install_method {
            InstallMethod::None => return require_dockerd().map(drop),
            InstallMethod::Distro => pkg::install_distro(&target(&config.os)?)?,
            InstallMethod::Repo => pkg::install_repo(&target(&config.os)?, &config.repo_url)?,
            InstallMethod::Script => pkg::install_script(&config.install_url)?,
        }
        let path = find_dockerd()?.ok_or_else(|| {
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
        // Docker's and Fedora's units start dockerd with `-H fd://` from docker.socket and
        // Require= it: keep socket activation for the local socket when the unit exists.
        let activated = status_root(&format!("systemctl cat {SOCKET_UNIT} >/dev/null 2>&1"))?;
        let unix_socket = if activated {
            run_root(&format!(
                "systemctl unmask {SOCKET_UNIT} && systemctl enable {SOCKET_UNIT}"
            ))?;
            UnixSocket::Activated
        } else {
            UnixSocket::Path("/var/run/docker.sock")
        };
        let current = dockerd == DOCKERD_CURRENT;
        let mut extra_flags: Vec<String> = Vec::new();
        if current {
            extra_flags.extend(CURRENT_FLAGS.iter().map(|f| f.to_string()));
        }
        extra_flags.extend(config.extra_flags.iter().cloned());
        let dropin = engine::systemd_dropin(&DaemonConfig {
            dockerd: &dockerd,
            port: config.port,
            unix_socket,
            tls: &tls,
            storage_driver: &config.storage_driver,
            labels: &config.labels,
            insecure_registries: &config.insecure_registries,
            registry_mirrors: &config.registry_mirrors,
            extra_flags: &extra_flags,
            env: &config.env,
        })?;
        let dropin = with_unit_variables(&dropin, current);
        info("Setting Docker configuration on the remote daemon...");
        dmw_guest::host::upload(DROPIN_PATH, dropin.as_bytes(), 0o644)?;
        relabel()?;
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
        pkg::upgrade_installed()?;
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

export!(Rhel);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
