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

use dmw_guest::engine::{self, CERT_DIR, DaemonConfig, UnixSocket};
use dmw_guest::{
    Error, ExecOutput, Result, debug, host, info, output_root, run_root, sh_quote, status_root,
    store, warn,
};
use exports::dmw::plugin::recipe::{EngineConfig, Guest, InstallMethod, OsInfo, RecipeInfo};

/// The init script's name.
const SERVICE: &str = "docker";
/// The file the init script sources for the daemon's options.
pub const SYSCONFIG: &str = "/etc/sysconfig/docker";
/// Store key: the TLS port the engine was configured with (for `restart-engine`).
const PORT_KEY: &str = "engine-port";
/// Docker's install script, the default for the `script` method.
const DEFAULT_SCRIPT_URL: &str = "https://get.docker.com";
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

/// Reject URLs that are not plain http(s) URLs.
fn check_url(what: &str, url: &str) -> Result<()> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\'' || c == '"');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} {url:?} must be an http:// or https:// URL without spaces or quotes"
        )))
    }
}

/// The `script` method: download the install script, then run it with sh (never piped).
fn install_script(install_url: &str) -> Result<()> {
    let url = match install_url.trim() {
        "" => DEFAULT_SCRIPT_URL,
        u => u,
    };
    check_url("the install script URL", url)?;
    info(&format!(
        "Installing Docker Engine with the script at {url}..."
    ));
    if !status_root("command -v curl >/dev/null 2>&1")? {
        run_root("yum install -y curl")?;
    }
    run_root(&format!(
        "f=$(mktemp /tmp/dmw-install-docker.XXXXXX) && curl -fsSL {} -o \"$f\" && sh \"$f\"; \
         rc=$?; rm -f \"$f\"; exit $rc",
        sh_quote(url)
    ))
    .map(drop)
    .map_err(|e| {
        e.context(
            "the Docker install script failed (Docker's script no longer supports EL6; \
             --engine-install-method distro installs EPEL's docker-io)",
        )
    })
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
    for var in cfg.env {
        let (name, value) = var.split_once('=').unwrap_or((var.as_str(), ""));
        let name_ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !var.contains('=') || !name_ok || var.chars().any(|c| c.is_control()) {
            return Err(Error::InvalidInput(format!(
                "engine environment {var:?} must have the form NAME=value on one line"
            )));
        }
        text.push_str(&format!("export {name}={}\n", sh_quote(value)));
    }
    Ok(text)
}

/// The command that lists listening TCP sockets and the init script's status code.
const LISTING: &str = "netstat -tln 2>/dev/null || cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; \
    service docker status >/dev/null 2>&1; echo \"dmw-service-status $?\"";

/// What the init script and the daemon's log say, for error messages.
pub fn service_diagnostics() -> String {
    let cmd = "service docker status 2>&1; echo; echo '--- tail -n 30 /var/log/docker ---'; \
               tail -n 30 /var/log/docker 2>&1";
    match output_root(cmd) {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
        Err(e) => format!("(could not read the service's status: {})", e.message()),
    }
}

/// Wait until something listens on TCP `port`; the sysvinit counterpart of the sdk's
/// `engine::wait_listening` (LSB status: 1 or 2 mean the daemon died, so stop early).
pub fn wait_listening(port: u16) -> Result<()> {
    let mut status = String::new();
    for attempt in 1..=engine::LISTEN_ATTEMPTS {
        let out = output_root(LISTING)?;
        let text = String::from_utf8_lossy(&out.stdout);
        if engine::listening_on(&text, port) {
            debug(&format!("the engine listens on port {port}"));
            return Ok(());
        }
        status = text
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("dmw-service-status"))
            .unwrap_or("")
            .trim()
            .to_string();
        if matches!(status.as_str(), "1" | "2") {
            break;
        }
        if attempt < engine::LISTEN_ATTEMPTS {
            host::sleep(engine::LISTEN_INTERVAL);
        }
    }
    let why = match status.as_str() {
        "1" | "2" => "the docker daemon died after starting".to_string(),
        _ => format!(
            "nothing listens on port {port} after {} s",
            engine::LISTEN_INTERVAL.as_secs() * u64::from(engine::LISTEN_ATTEMPTS)
        ),
    };
    Err(Error::Failed(format!(
        "Docker Engine did not come up with TLS on port {port}: {why}.\n{}\n\
         Fix the cause shown above (a bad engine option, another program on port {port}...), \
         then provision the machine again.",
        service_diagnostics()
    )))
}

/// Restart the engine with its init script and wait until it listens on `port`.
fn restart_and_wait(port: u16) -> Result<()> {
    info("Restarting docker...");
    let command = format!("service {SERVICE} restart");
    let out = output_root(&command)?;
    if out.exit_code != 0 {
        return Err(Error::Failed(format!(
            "{}\n{}",
            dmw_guest::command_error(&command, &out).message(),
            service_diagnostics()
        )));
    }
    wait_listening(port)
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
        let script = engine::hostname_script(&name)?;
        let q = sh_quote(&format!("HOSTNAME={name}"));
        // EL6 takes the boot-time hostname from /etc/sysconfig/network, not /etc/hostname.
        run_root(&format!(
            "{script}if grep -q '^HOSTNAME=' /etc/sysconfig/network 2>/dev/null; then\n\
             \x20 sed -i 's/^HOSTNAME=.*/HOSTNAME={name}/' /etc/sysconfig/network\n\
             else\n\
             \x20 printf '%s\\n' {q} >> /etc/sysconfig/network\n\
             fi\n"
        ))
        .map(drop)
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
            InstallMethod::Repo => {
                return Err(Error::Unsupported(
                    "Docker no longer publishes packages for EL6 (CentOS/RHEL/Oracle Linux 6), \
                     so the `repo` method cannot work there; use --engine-install-method distro \
                     (EPEL's docker-io) or script"
                        .into(),
                ));
            }
            InstallMethod::Distro => install_distro()?,
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
        info("Copying certs to the remote machine...");
        let tls = host::install_server_cert(CERT_DIR)?;
        let text = sysconfig(&DaemonConfig {
            dockerd: "/usr/bin/docker",
            port: config.port,
            unix_socket: UnixSocket::Path("/var/run/docker.sock"),
            tls: &tls,
            storage_driver: &config.storage_driver,
            labels: &config.labels,
            insecure_registries: &config.insecure_registries,
            registry_mirrors: &config.registry_mirrors,
            extra_flags: &config.extra_flags,
            env: &config.env,
        })?;
        info("Setting Docker configuration on the remote daemon...");
        host::upload(SYSCONFIG, text.as_bytes(), 0o644)?;
        relabel()?;
        run_root(&format!("chkconfig {SERVICE} on"))?;
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
        let port = store::get_or(PORT_KEY, config.port)?;
        restart_and_wait(port)
    }

    fn restart_engine() -> Result<()> {
        let port = store::get_or(PORT_KEY, 2376u16)?;
        restart_and_wait(if port == 0 { 2376 } else { port })
    }
}

export!(El6);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
