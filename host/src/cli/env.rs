//! `dmw env` and `dmw config`: how to point the docker CLI at a machine.

use std::time::Duration;

use super::{CliError, CliResult, name_or_default};
use crate::app::App;
use crate::render::{EnvSet, Shell, hint_cmdline, render_set, render_unset};
use crate::store::{MachineRecord, MachineStatus};

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
    let Some(url) = record.url() else {
        return Err(CliError::new(format!(
            "machine \"{name}\" has no address yet: its create did not get that far; `dmw rm {name}` removes it"
        )));
    };
    if record.status != MachineStatus::Ready {
        let why = record
            .error
            .as_ref()
            .map(|e| format!("{} failed: {}", e.step, e.message))
            .unwrap_or_else(|| "its create has not finished".into());
        return Err(CliError::new(format!(
            "machine \"{name}\" is not ready: {why}"
        )));
    }
    let tls = crate::engine_api::ClientTls::load(&app.store.machine_dir(name))
        .map_err(|e| CliError::new(format!("machine \"{name}\": {e}")))?;
    if let Err(e) = crate::engine_api::check(&url, &tls, Duration::from_secs(20)).await {
        let hint = if matches!(e, crate::engine_api::EngineError::Tls { .. }) {
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
        let var = a
            .no_proxy
            .then(|| crate::render::env::no_proxy_var(std::env::var("no_proxy").ok().as_deref()));
        print!("{}", render_unset(shell, var, &hint));
        return Ok(());
    }
    let name = name_or_default(app, a.name)?;
    let (record, url) = checked_machine(app, &name).await?;
    let no_proxy = a.no_proxy.then(|| {
        let ip = record
            .endpoint
            .as_ref()
            .map(|e| e.address.clone())
            .unwrap_or_default();
        crate::render::env::no_proxy_update(
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
    print!("{}", render_set(shell, &set, &hint));
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
    let dir = app.store.machine_dir(&name);
    println!(
        "--tlsverify\n--tlscacert=\"{}\"\n--tlscert=\"{}\"\n--tlskey=\"{}\"\n-H={url}",
        dir.join("ca.pem").display(),
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    );
    Ok(())
}
