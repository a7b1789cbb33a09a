//! `dmw env` and `dmw config`: how to point the docker CLI at a machine.

use std::time::Duration;

use super::{CliError, CliResult, name_or_default};
use crate::app::App;
use crate::cli::render::{EnvSet, Shell, hint_cmdline, render_set, render_unset};
use crate::state::store::{MachineRecord, MachineStatus};

/// Arguments of `env`.
#[derive(clap::Args)]
pub struct EnvArgs {
    /// Machine name (default: "default")
    name: Option<String>,
    /// Force environment to be configured for a specified shell: [fish, cmd, powershell, tcsh, emacs], default is auto-detect
    #[arg(long)]
    shell: Option<String>,
    /// Unset variables instead of setting them
    #[arg(short = 'u', long)]
    unset: bool,
    /// Add machine IP to NO_PROXY environment variable
    #[arg(long)]
    no_proxy: bool,
    /// Point at the leader of the Swarm-mode cluster NAME belongs to
    #[arg(long)]
    swarm: bool,
}

/// Arguments of `config`.
#[derive(clap::Args)]
pub struct ConfigArgs {
    /// Machine name (default: "default")
    name: Option<String>,
}

/// Load a machine that is ready for the docker CLI, and check its engine's TLS endpoint.
async fn checked_machine(app: &App, name: &str) -> Result<(MachineRecord, String), CliError> {
    let record = app.store.load(name)?;
    app.store.check_keys_readable(name)?;
    let Some(url) = record.url() else {
        if let Some(typed) = &record.engine_url {
            return Err(CliError::new(format!(
                "Error checking TLS connection: machine \"{name}\" records the URL {:?}, which is not a tcp://HOST:PORT engine URL; the docker CLI cannot use it",
                crate::text::sanitize::stored_text(typed)
            )));
        }
        return Err(CliError::new(format!(
            "machine \"{name}\" has no address yet: its create did not get that far; `dmw rm {name}` removes it"
        )));
    };
    if let Some(ep) = &record.endpoint
        && let Err(why) = ep.check()
    {
        return Err(CliError::new(format!(
            "machine \"{name}\": its record holds {why}; `dmw rm {name}` removes it"
        )));
    }
    if record.status != MachineStatus::Ready {
        let why = record
            .error
            .as_ref()
            .map(|e| {
                format!(
                    "{} failed: {}",
                    e.step,
                    crate::text::sanitize::stored_text(&e.message)
                )
            })
            .unwrap_or_else(|| match record.status {
                MachineStatus::Unprovisioned => format!(
                    "it was created with --no-provision and has no engine yet; `dmw provision {name}` installs Docker"
                ),
                _ => "its create has not finished".into(),
            });
        return Err(CliError::new(format!(
            "machine \"{name}\" is not ready: {why}"
        )));
    }
    let tls = crate::net::engine_api::ClientTls::load(&app.store.machine_dir(name))
        .map_err(|e| CliError::new(format!("machine \"{name}\": {e}")))?;
    if let Err(e) = crate::net::engine_api::check(&url, &tls, Duration::from_secs(20)).await {
        let hint = if matches!(e, crate::net::engine_api::EngineError::Tls { .. }) {
            format!(
                "\nYou can attempt to regenerate them using 'dmw regenerate-certs {name}'.\nBe advised that this will trigger a Docker daemon restart which might stop running containers."
            )
        } else {
            format!("\nIs the machine running? `dmw status {name}` tells.")
        };
        return Err(CliError::new(format!(
            "Error checking TLS connection: There was an error validating certificates for host {:?}: {e}{hint}",
            url.trim_start_matches("tcp://")
        )));
    }
    Ok((record, url))
}

/// Run `dmw env`.
pub async fn env(app: &App, a: EnvArgs, argv: &[String]) -> CliResult {
    let shell = match Shell::detect(a.shell.as_deref(), std::env::var("SHELL").ok().as_deref()) {
        Ok(s) => s,
        Err(e) => {
            if let Some(notice) = e.stdout_notice() {
                print!("{notice}");
            }
            return Err(CliError::new(e.to_string()));
        }
    };
    let hint = hint_cmdline(argv);
    if a.unset {
        if a.name.is_some() {
            return Err(CliError::new(
                "Error: Expected no machine name when the -u flag is present",
            ));
        }
        let var = a.no_proxy.then(|| {
            crate::cli::render::env::no_proxy_var(std::env::var("no_proxy").ok().as_deref())
        });
        print!("{}", render_unset(shell, var, &hint));
        return Ok(());
    }
    let mut name = name_or_default(app, a.name)?;
    if a.swarm {
        name = crate::usecase::swarm::leader(app, &name)
            .await
            .map_err(|e| CliError::new(format!("Error: {e:#}")))?;
    }
    // Before the TLS check: an expired certificate may be why it fails.
    for warning in crate::usecase::machine::cert_warnings(app, &name) {
        eprintln!("WARNING: machine \"{name}\": {warning}");
    }
    let (record, url) = checked_machine(app, &name).await?;
    let no_proxy = a.no_proxy.then(|| {
        let ip = record.shown_ip().unwrap_or_default();
        crate::cli::render::env::no_proxy_update(
            std::env::var("no_proxy").ok().as_deref(),
            std::env::var("NO_PROXY").ok().as_deref(),
            &ip,
        )
    });
    let set = EnvSet {
        tls_verify: true,
        docker_host: url,
        cert_path: app.store.machine_dir(&name).display().to_string(),
        machine_name: name,
        no_proxy,
    };
    let out = render_set(shell, &set, &hint)
        .map_err(|e| CliError::new(format!("machine \"{}\": {e}", set.machine_name)))?;
    print!("{out}");
    Ok(())
}

/// Run `dmw config`.
pub async fn config(app: &App, a: ConfigArgs) -> CliResult {
    let name = name_or_default(app, a.name)?;
    let (_, url) = checked_machine(app, &name).await.map_err(|e| {
        CliError::new(format!(
            "Error running connection boilerplate: {}",
            e.message
        ))
    })?;
    let dir = app.store.machine(&name);
    let values = [
        dir.ca_cert().display().to_string(),
        dir.client_cert().display().to_string(),
        dir.client_key().display().to_string(),
        url,
    ];
    for v in &values {
        config_value(v).map_err(|why| CliError::new(format!("machine \"{name}\": {why}")))?;
    }
    let [ca, cert, key, url] = values;
    println!(
        "--tlsverify\n--tlscacert=\"{ca}\"\n--tlscert=\"{cert}\"\n--tlskey=\"{key}\"\n-H={url}"
    );
    Ok(())
}

/// Checks a value `dmw config` prints. Its output is used unquoted (`docker $(dmw config
/// NAME) ps`), where the shell splits words and expands globs but removes no quotes: a
/// value with a control character (a line break), a quote, a backslash or a glob character
/// is refused, and so is one where a word starts with `-` (it would become another option).
/// A plain space (a storage path like `/home/u/my machines`) is printed as Docker Machine
/// prints it: the word after it is then an argument docker refuses, never an option.
fn config_value(v: &str) -> Result<(), String> {
    if let Some(c) = v
        .chars()
        .find(|c| c.is_control() || matches!(c, '"' | '\'' | '\\' | '*' | '?' | '['))
    {
        return Err(format!(
            "{v:?} holds {c:?}, which `docker $(dmw config …)` would split or expand; use `dmw env` (its values are quoted) instead"
        ));
    }
    if v.split_whitespace().any(|w| w.starts_with('-')) {
        return Err(format!(
            "{v:?} would give `docker $(dmw config …)` another option (a word starting with '-')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::config_value;

    #[test]
    fn config_values_cannot_inject_arguments() {
        assert!(config_value("/home/u/.dmw/machines/m1/ca.pem").is_ok());
        assert!(config_value("tcp://10.0.0.2:2376").is_ok());
        assert!(config_value("/home/u/my machines/ca.pem").is_ok());
        for bad in [
            "/a -H=tcp://evil:1/ca.pem",
            "/a\n-H=tcp://evil:1/ca.pem",
            "/a\"b",
            "-H=tcp://evil:1",
            "/a/*",
            "/a\tb",
        ] {
            assert!(config_value(bad).is_err(), "{bad:?}");
        }
    }
}
