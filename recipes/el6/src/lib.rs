//! The `el6` recipe: CentOS 6, RHEL 6 and Oracle Linux 6 — sysvinit hosts without
//! /etc/os-release (the host synthesises the OS description from /etc/redhat-release and
//! friends, marking it with a `DMW_RELEASE_FILE` field). Docker Machine could not
//! provision them at all.
//!
//! The engine is EPEL's `docker-io` (Docker 1.7, the last one for EL6), started by its
//! init script `/etc/init.d/docker`, which sources `/etc/sysconfig/docker` and passes
//! `$other_args` to the daemon (that script reads no `DOCKER_OPTS`). Docker publishes no
//! EL6 packages, so the `repo` method is refused.
//!
//! EL6's sudoers has `Defaults requiretty`: the host retries such commands with a PTY,
//! so this recipe needs nothing for it.

dmw_guest::generate!("recipe-plugin");

use dmw_guest::engine::{self, CERT_DIR, DaemonConfig, HostnameOptions, ServiceWatch, UnixSocket};
use dmw_guest::{Error, ExecOutput, Result, host, info, output_root, run_root, status_root, warn};
use exports::dmw::plugin::recipe::{EngineConfig, Guest, InstallMethod, OsInfo, RecipeInfo};

/// The init script's name.
const SERVICE: &str = "docker";
/// The file the init script sources for the daemon's options.
pub const SYSCONFIG: &str = "/etc/sysconfig/docker";
/// Engine packages an upgrade may touch.
const ENGINE_PACKAGES: [&str; 3] = ["docker-io", "docker-engine", "docker-ce"];
/// A shell script printing the docker binary's path (empty: not installed). Docker 1.7 has
/// no separate dockerd: `docker -d` is the daemon.
const FIND_DOCKER: &str = "p=$(command -v docker 2>/dev/null) || p=; \
    if [ -z \"$p\" ] && [ -x /usr/bin/docker ]; then p=/usr/bin/docker; fi; printf '%s\\n' \"$p\"";
/// Where EPEL 6 lives now that it is archived.
const EPEL6_ARCHIVE: &str = "https://archives.fedoraproject.org/pub/archive/epel/6/";

/// The EL6 recipe.
struct El6;

/// The docker binary's path, if it is installed.
fn find_docker() -> Result<Option<String>> {
    let out = output_root(FIND_DOCKER)?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((out.exit_code == 0 && path.starts_with('/')).then_some(path))
}

/// The docker binary's path, or an error telling the user to install it first.
fn require_docker() -> Result<String> {
    find_docker()?.ok_or_else(|| {
        Error::Failed(
            "Docker Engine (docker) is not installed on the machine: it is not in PATH or \
             /usr/bin. Install it (EPEL's docker-io), or choose an install method other than \
             `none`."
                .into(),
        )
    })
}

/// stdout and stderr of `out` together.
fn text_of(out: &ExecOutput) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `distro` method: EPEL's docker-io, adding EPEL first when it is missing.
fn install_distro() -> Result<()> {
    info("Installing Docker Engine from EPEL (docker-io)...");
    let archived = format!(
        "EPEL 6 is archived: point the machine's EPEL repository at {EPEL6_ARCHIVE} (and, on \
         CentOS 6, its base repositories at https://vault.centos.org/), then provision again; \
         or install Docker yourself and use --engine-install-method none."
    );
    if !status_root("rpm -q --quiet epel-release")? {
        let command = "yum install -y epel-release";
        let out = output_root(command)?;
        if out.exit_code != 0 {
            return Err(Error::Failed(format!(
                "{}\nThe EPEL repository could not be added. {archived}",
                dmw_guest::command_error(command, &out).message()
            )));
        }
    }
    let command = "yum install -y docker-io";
    let out = output_root(command)?;
    if out.exit_code == 0 {
        return Ok(());
    }
    let err = dmw_guest::command_error(command, &out);
    let text = text_of(&out);
    if text.contains("No package docker-io available") || text.contains("Cannot retrieve") {
        return Err(Error::Failed(format!(
            "{}\nThe docker-io package was not found. {archived}",
            err.message()
        )));
    }
    Err(err)
}

/// The `script` method: download the install script (curl is installed first when
/// missing), then run it with sh (never piped).
fn install_script(install_url: &str) -> Result<()> {
    engine::install_script(
        install_url,
        "Docker's script no longer supports EL6; --engine-install-method distro installs \
         EPEL's docker-io",
        || {
            if !status_root("command -v curl >/dev/null 2>&1")? {
                run_root("yum install -y curl")?;
            }
            Ok(())
        },
    )
}

/// Whether `arg` survives the init script's unquoted `$other_args` word splitting intact.
fn sysconfig_safe(arg: &str) -> bool {
    !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
}

/// The contents of /etc/sysconfig/docker: the daemon's arguments in `other_args`, the
/// package's other settings, and the engine environment exported to the daemon.
pub fn sysconfig(cfg: &DaemonConfig) -> Result<String> {
    let args = engine::dockerd_args(cfg)?;
    if let Some(bad) = args.iter().find(|a| !sysconfig_safe(a)) {
        return Err(Error::InvalidInput(format!(
            "engine option {bad:?} cannot be passed through EL6's /etc/sysconfig/docker \
             (other_args is split on spaces and may not hold quotes or shell characters); \
             use letters, digits and -_./:=@%+, only"
        )));
    }
    let mut text = format!(
        "# Written by dmw: Docker Engine with mutual TLS on port {}.\n\
         # dmw rewrites this file when it provisions the machine.\n\
         other_args='{}'\n\
         DOCKER_CERT_PATH={CERT_DIR}\n\
         # Resolves: rhbz#1176302 (docker issue #407)\n\
         DOCKER_NOWARN_KERNEL_VERSION=1\n",
        cfg.port,
        args.join(" ")
    );
    text.push_str(&engine::shell_exports(cfg.env)?);
    Ok(text)
}

/// Prints the init script's state: `running`, `dead` (LSB status 1 or 2: the daemon died,
/// leaving its pid or lock file) or `stopped`.
pub const STATE: &str = "if service docker status >/dev/null 2>&1; then echo running; \
    elif [ $? -le 2 ]; then echo dead; else echo stopped; fi";
/// What the init script and the daemon's log say, for error messages.
pub const DIAGNOSTICS: &str = "service docker status 2>&1; echo; \
    echo '--- tail -n 30 /var/log/docker ---'; tail -n 30 /var/log/docker 2>&1";

/// How the wait for the engine watches the init script, for `port`'s messages.
fn with_watch<T>(port: u16, body: impl FnOnce(&ServiceWatch) -> T) -> T {
    let advice = format!(
        "Fix the cause the log below shows (a bad engine option, another program on port {port}...), \
         then provision the machine again."
    );
    body(&ServiceWatch {
        service: "the docker daemon",
        state_command: STATE,
        stopped: &[("dead", "died after starting")],
        diagnostics: DIAGNOSTICS,
        reset: "",
        advice: &advice,
    })
}

/// Wait until something listens on TCP `port`; stops early when the daemon died.
pub fn wait_listening(port: u16) -> Result<()> {
    with_watch(port, |watch| engine::wait_service_listening(port, watch))
}

/// Restart the engine with its init script and wait until it listens on `port`.
fn restart_and_wait(port: u16) -> Result<()> {
    with_watch(port, |watch| {
        engine::restart_service_and_wait(&format!("service {SERVICE} restart"), port, watch)
    })
}

/// Relabel the certificates and options file when SELinux is on (EL6 enforces by default).
fn relabel() -> Result<()> {
    let mode = output_root("command -v getenforce >/dev/null 2>&1 && getenforce")?;
    let mode = String::from_utf8_lossy(&mode.stdout).trim().to_string();
    if matches!(mode.as_str(), "Enforcing" | "Permissive") {
        let out = run_root(&format!(
            "if command -v restorecon >/dev/null 2>&1; then restorecon -R {CERT_DIR} {SYSCONFIG}; \
             else echo dmw-no-restorecon; fi"
        ))?;
        if out.contains("dmw-no-restorecon") {
            warn(
                "SELinux is on but restorecon is missing: the engine may be unable to read its certificates",
            );
        }
    }
    Ok(())
}

impl Guest for El6 {
    fn info() -> RecipeInfo {
        RecipeInfo {
            name: "el6".into(),
            description: "CentOS 6, RHEL 6, Oracle Linux 6 (yum, EPEL docker-io, sysvinit)".into(),
        }
    }

    fn applies(os: OsInfo) -> u32 {
        let id = os.id.trim().to_ascii_lowercase();
        let major: String = os
            .version_id
            .trim()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if matches!(id.as_str(), "centos" | "rhel" | "ol") && major == "6" {
            100
        } else {
            0
        }
    }

    fn set_hostname(name: String) -> Result<()> {
        // EL6 takes the boot-time hostname from /etc/sysconfig/network, not /etc/hostname.
        let options = HostnameOptions {
            sysconfig_network: true,
        };
        run_root(&engine::hostname_script_with(&name, options)?).map(drop)
    }

    fn install_engine(config: EngineConfig) -> Result<()> {
        if let Some(path) = find_docker()? {
            info(&format!(
                "Docker Engine is already installed ({path}); not installing it"
            ));
            return Ok(());
        }
        match config.install_method {
            InstallMethod::None => return require_docker().map(drop),
            // Docker publishes nothing for EL6: `auto` is EPEL's package.
            InstallMethod::Distro | InstallMethod::Auto => install_distro()?,
            InstallMethod::Repo => {
                return Err(Error::Unsupported(
                    "Docker no longer publishes packages for EL6 (CentOS/RHEL/Oracle Linux 6), \
                     so the `repo` method cannot work there; use --engine-install-method distro \
                     (EPEL's docker-io) or script"
                        .into(),
                ));
            }
            InstallMethod::Script => install_script(&config.install_url)?,
        }
        let path = find_docker()?.ok_or_else(|| {
            Error::Failed(
                "the installation finished but docker is still not found on the machine; \
                 see the provisioning log for the installer's output"
                    .into(),
            )
        })?;
        info(&format!("Docker Engine installed ({path})"));
        Ok(())
    }

    fn configure_engine(config: EngineConfig) -> Result<()> {
        require_docker()?;
        if !status_root("[ -x /etc/init.d/docker ]")? {
            return Err(Error::Failed(
                "the machine has no /etc/init.d/docker, so dmw cannot run the engine as a \
                 service; install EPEL's docker-io (--engine-install-method distro)"
                    .into(),
            ));
        }
        let tls = engine::install_certs(CERT_DIR)?;
        let text = sysconfig(&dmw_guest::engine_options!(config).daemon(
            "/usr/bin/docker",
            UnixSocket::Path("/var/run/docker.sock"),
            &tls,
        ))?;
        info("Setting Docker configuration on the remote daemon...");
        host::upload(SYSCONFIG, text.as_bytes(), 0o644)?;
        relabel()?;
        run_root(&format!("chkconfig {SERVICE} on"))?;
        engine::remember_port(config.port);
        restart_and_wait(config.port)
    }

    fn upgrade_engine(config: EngineConfig) -> Result<()> {
        if matches!(config.install_method, InstallMethod::None) {
            return Err(engine::unmanaged_upgrade());
        }
        info("Upgrading docker...");
        let out = output_root(&format!(
            "rpm -q --qf '%{{NAME}}\\n' {} 2>/dev/null",
            ENGINE_PACKAGES.join(" ")
        ))?;
        let listing = String::from_utf8_lossy(&out.stdout);
        let installed: Vec<&str> = listing
            .lines()
            .map(str::trim)
            .filter(|l| ENGINE_PACKAGES.contains(l))
            .collect();
        if installed.is_empty() {
            return Err(Error::Failed(
                "no Docker Engine package (docker-io) is installed with rpm on the machine, so \
                 dmw cannot upgrade it; upgrade the engine the way it was installed"
                    .into(),
            ));
        }
        run_root(&format!("yum upgrade -y {}", installed.join(" ")))
            .map_err(|e| e.context("upgrading Docker Engine's packages failed"))?;
        restart_and_wait(engine::stored_port(config.port)?)
    }

    fn restart_engine() -> Result<()> {
        restart_and_wait(engine::stored_port(engine::DEFAULT_PORT)?)
    }
}

export!(El6);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
