//! The `boot2docker` recipe: the boot2docker ISO (Tiny Core Linux booted from RAM, with a
//! persistent /var/lib/boot2docker). Docker Engine ships in the ISO and is started by
//! /etc/init.d/docker, which sources /var/lib/boot2docker/profile; the recipe writes that
//! profile as Docker Machine did.

dmw_guest::generate!("recipe-plugin");

use dmw_guest::engine::{self, DaemonConfig, ServiceWatch, UnixSocket};
use dmw_guest::{Error, InstalledCerts, Result, info, run_root, sh_quote};
use exports::dmw::plugin::recipe::{EngineConfig, Guest, InstallMethod, OsInfo, RecipeInfo};

/// The persistent directory: TLS files and the engine profile live here.
const B2D_DIR: &str = "/var/lib/boot2docker";
/// The profile /etc/init.d/docker sources.
const PROFILE: &str = "/var/lib/boot2docker/profile";
/// The hostname boot2docker restores at boot.
const HOSTNAME_FILE: &str = "/var/lib/boot2docker/etc/hostname";
/// The storage driver Docker Machine used by default.
const DEFAULT_STORAGE: &str = "overlay2";
/// Restarts the engine.
const RESTART: &str = "/etc/init.d/docker restart";
/// What the engine said, for errors.
const DIAGNOSTICS: &str = "for f in /var/lib/boot2docker/log/docker.log /var/lib/boot2docker/docker.log; do \
    if [ -f \"$f\" ]; then echo \"--- $f ---\"; tail -n 30 \"$f\" 2>&1; fi; done";

/// The boot2docker recipe.
struct Boot2Docker;

/// Check that `word` survives `EXTRA_ARGS='...'` and the init script's unquoted `$EXTRA_ARGS`.
fn profile_word(word: &str) -> Result<()> {
    let bad = word
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "'\"\\`$*?[".contains(c));
    if bad {
        return Err(Error::InvalidInput(format!(
            "engine option {word:?} cannot go into boot2docker's profile: /etc/init.d/docker \
             splits EXTRA_ARGS on spaces, so values may not contain spaces, quotes, \
             backslashes, `$`, or glob characters"
        )));
    }
    Ok(())
}

/// The engine options, one flag (with its value) per line, as in Docker Machine (the init
/// script adds the listeners and TLS flags itself).
fn extra_args(config: &EngineConfig, tls: &InstalledCerts) -> Result<Vec<String>> {
    let args = engine::option_args(&DaemonConfig {
        // The profile sets the storage driver and the environment itself.
        storage_driver: "",
        env: &[],
        ..dmw_guest::engine_options!(config).daemon(
            "/usr/local/bin/dockerd",
            UnixSocket::Path("/var/run/docker.sock"),
            tls,
        )
    })?;
    let mut lines = Vec::new();
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        profile_word(&flag)?;
        if matches!(
            flag.as_str(),
            "--label" | "--insecure-registry" | "--registry-mirror"
        ) {
            let value = it.next().unwrap_or_default();
            profile_word(&value)?;
            lines.push(format!("{flag} {value}"));
        } else {
            lines.push(flag);
        }
    }
    Ok(lines)
}

/// The profile that makes boot2docker's engine serve TLS on `config.port` with `tls`.
fn profile(config: &EngineConfig, tls: &InstalledCerts) -> Result<String> {
    let storage = match config.storage_driver.trim() {
        "" => DEFAULT_STORAGE,
        s => s,
    };
    profile_word(storage)?;
    for path in [&tls.ca_path, &tls.cert_path, &tls.key_path] {
        profile_word(path)?;
    }
    let mut extra = String::new();
    for line in extra_args(config, tls)? {
        extra.push_str(&line);
        extra.push('\n');
    }
    let mut text = format!(
        "# Written by dmw: Docker Engine with mutual TLS on port {port}.\n\
         # dmw rewrites this file when it provisions the machine.\n\
         EXTRA_ARGS='\n{extra}'\n\
         CACERT={ca}\n\
         DOCKER_HOST='-H tcp://0.0.0.0:{port}'\n\
         DOCKER_STORAGE={storage}\n\
         DOCKER_TLS=auto\n\
         SERVERKEY={key}\n\
         SERVERCERT={cert}\n",
        port = config.port,
        ca = tls.ca_path,
        key = tls.key_path,
        cert = tls.cert_path,
    );
    if !config.env.is_empty() {
        text.push('\n');
    }
    text.push_str(&engine::shell_exports(&config.env)?);
    Ok(text)
}

/// Where `install-server-cert` puts the files in [`B2D_DIR`] (to validate options early).
fn expected_certs() -> InstalledCerts {
    InstalledCerts {
        ca_path: format!("{B2D_DIR}/ca.pem"),
        cert_path: format!("{B2D_DIR}/server.pem"),
        key_path: format!("{B2D_DIR}/server-key.pem"),
        fresh: true,
    }
}

/// Restart the engine and wait until it listens on `port` (the init script reports no
/// state worth polling: only a time-out ends the wait).
fn restart_and_wait(port: u16) -> Result<()> {
    engine::restart_service_and_wait(
        RESTART,
        port,
        &ServiceWatch {
            service: "the docker service",
            state_command: "",
            stopped: &[],
            diagnostics: DIAGNOSTICS,
            reset: "",
            advice: "Fix the cause the log below shows (a bad engine option, another program on the \
                     port...) in /var/lib/boot2docker/profile, then provision the machine again.",
        },
    )
}

impl Guest for Boot2Docker {
    fn info() -> RecipeInfo {
        RecipeInfo {
            name: "boot2docker".into(),
            description: "boot2docker ISO (engine ships in the ISO; /etc/init.d/docker)".into(),
        }
    }

    fn applies(os: OsInfo) -> u32 {
        if os.id.trim().eq_ignore_ascii_case("boot2docker") {
            100
        } else {
            0
        }
    }

    fn set_hostname(name: String) -> Result<()> {
        engine::validate_hostname(&name)?;
        run_root(&format!("/usr/bin/sethostname {}", sh_quote(&name)))?;
        // boot2docker's root is a RAM disk; this file brings the name back at boot.
        dmw_guest::host::upload(HOSTNAME_FILE, format!("{name}\n").as_bytes(), 0o644)
    }

    fn install_engine(config: EngineConfig) -> Result<()> {
        match config.install_method {
            InstallMethod::Repo | InstallMethod::Script => Err(Error::Unsupported(
                "boot2docker ships Docker Engine in its ISO and runs from RAM, so the `repo` and \
                 `script` install methods are not supported: use `--engine-install-method \
                 auto` (the default), `distro` or `none`; for another engine version boot a boot2docker ISO that \
                 has it"
                    .into(),
            )),
            // `auto` and `distro` both mean the engine that ships in the ISO.
            InstallMethod::Auto | InstallMethod::Distro | InstallMethod::None => {
                let path = engine::find_dockerd()?.ok_or_else(|| {
                    Error::Failed(
                        "dockerd is not on the machine although boot2docker ships it; the ISO \
                         is damaged or not boot2docker: boot a release boot2docker ISO"
                            .into(),
                    )
                })?;
                info(&format!(
                    "Docker Engine ships with boot2docker ({path}); nothing to install"
                ));
                Ok(())
            }
        }
    }

    fn configure_engine(config: EngineConfig) -> Result<()> {
        // Refuse bad options before anything changes on the machine.
        profile(&config, &expected_certs())?;
        let tls = engine::install_certs(B2D_DIR)?;
        let text = profile(&config, &tls)?;
        info("Setting Docker configuration on the remote daemon...");
        dmw_guest::host::upload(PROFILE, text.as_bytes(), 0o644)?;
        engine::remember_port(config.port);
        restart_and_wait(config.port)
    }

    fn upgrade_engine(_config: EngineConfig) -> Result<()> {
        Err(Error::Unsupported(
            "boot2docker ships Docker Engine in its ISO: to upgrade, boot the machine from a \
             newer boot2docker ISO (recreate it, or replace the ISO at the provider and \
             restart it); /var/lib/boot2docker, and with it the engine's configuration, is kept"
                .into(),
        ))
    }

    fn restart_engine() -> Result<()> {
        restart_and_wait(engine::stored_port(engine::DEFAULT_PORT)?)
    }
}

export!(Boot2Docker);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
