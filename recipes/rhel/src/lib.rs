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

use dmw_guest::engine::{self, CERT_DIR, DaemonConfig, systemd};
use dmw_guest::{Error, Result, output_root, run_root, warn};
use exports::dmw::plugin::recipe::{EngineConfig, Guest, InstallMethod, OsInfo, RecipeInfo};

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
const UNIT_VARIABLES: [&str; 3] = [
    "$OPTIONS",
    "$DOCKER_STORAGE_OPTIONS",
    "$DOCKER_NETWORK_OPTIONS",
];
/// The extra variables of CentOS/RHEL 7's `docker` unit.
const CURRENT_VARIABLES: [&str; 4] = [
    "$ADD_REGISTRY",
    "$BLOCK_REGISTRY",
    "$INSECURE_REGISTRY",
    "$REGISTRIES",
];
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

/// The unit variables to keep on dmw's `ExecStart=` (those of CentOS/RHEL 7's `docker` unit
/// too when `current`): the drop-in's raw arguments.
pub fn unit_variables(current: bool) -> Vec<String> {
    let mut vars: Vec<String> = UNIT_VARIABLES.iter().map(|v| v.to_string()).collect();
    if current {
        vars.extend(CURRENT_VARIABLES.iter().map(|v| v.to_string()));
    }
    vars
}

/// The method `auto` stands for on `target`: Docker's repository, except on Amazon Linux,
/// for which Docker publishes nothing (Amazon's own docker package).
pub fn auto_method(target: &Target) -> InstallMethod {
    match target {
        Target::Amazon(_) => InstallMethod::Distro,
        Target::Fedora(_) | Target::El { .. } => InstallMethod::Repo,
    }
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
        if engine::keep_installed()? {
            return Ok(());
        }
        let method = match config.install_method {
            InstallMethod::Auto => auto_method(&target(&config.os)?),
            m => m,
        };
        match method {
            InstallMethod::None => return engine::require_dockerd().map(drop),
            InstallMethod::Distro => pkg::install_distro(&target(&config.os)?)?,
            InstallMethod::Repo | InstallMethod::Auto => {
                pkg::install_repo(&target(&config.os)?, &config.repo_url)?
            }
            InstallMethod::Script => pkg::install_script(&config.install_url)?,
        }
        engine::installed_dockerd().map(drop)
    }

    fn configure_engine(config: EngineConfig) -> Result<()> {
        let dockerd = engine::require_dockerd()?;
        engine::check_daemon_json()?;
        let tls = engine::install_certs(CERT_DIR)?;
        // Docker's and Fedora's units start dockerd with `-H fd://` from docker.socket and
        // Require= it: keep socket activation for the local socket when they do.
        let unix_socket = systemd::prepare_socket()?;
        let current = dockerd == DOCKERD_CURRENT;
        let mut extra_flags: Vec<String> = Vec::new();
        if current {
            extra_flags.extend(CURRENT_FLAGS.iter().map(|f| f.to_string()));
        }
        extra_flags.extend(config.extra_flags.iter().cloned());
        let raw_args = unit_variables(current);
        let dropin = engine::systemd_dropin(&DaemonConfig {
            extra_flags: &extra_flags,
            raw_args: &raw_args,
            ..dmw_guest::engine_options!(config).daemon(&dockerd, unix_socket, &tls)
        })?;
        engine::firewall::open_engine_and_swarm_ports(config.port)?;
        if systemd::unchanged(&dropin, &tls, config.port)? {
            return Ok(());
        }
        systemd::upload_dropin(&dropin)?;
        relabel()?;
        systemd::enable_and_restart(config.port)
    }

    fn upgrade_engine(config: EngineConfig) -> Result<()> {
        engine::upgrade_and_restart(
            matches!(config.install_method, InstallMethod::None),
            config.port,
            pkg::upgrade_installed,
            systemd::restart_and_wait,
        )
    }

    fn restart_engine() -> Result<()> {
        engine::restart_on_stored_port(systemd::restart_and_wait)
    }
}

export!(Rhel);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
