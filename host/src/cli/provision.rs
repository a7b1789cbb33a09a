//! `dmw provision`, `dmw regenerate-certs` and `dmw upgrade`: the recipe run again on
//! existing machines, with their stored options.

use super::{CliError, CliResult, confirm, each, names_or_default};

use crate::app::App;
use crate::usecase::provision;

/// Arguments of `provision` and `upgrade`.
#[derive(clap::Args)]
pub struct ProvisionArgs {
    /// Machine names (default: "default")
    names: Vec<String>,
}

/// Arguments of `provision`.
#[derive(clap::Args)]
pub struct ReprovisionArgs {
    /// Machine names (default: "default")
    names: Vec<String>,
    /// Pin this new host key first (SHA256:…, as `dmw` printed it when the key changed and
    /// as `ssh-keygen -lf` prints it on the machine); one machine only
    #[arg(long, value_name = "FINGERPRINT")]
    accept_host_key: Option<String>,
}

/// Arguments of `regenerate-certs`.
#[derive(clap::Args)]
pub struct RegenerateArgs {
    /// Machine names (default: "default")
    names: Vec<String>,
    /// Force rebuild and do not prompt
    #[arg(short = 'f', long)]
    force: bool,
    /// Also regenerate client certificates and CA.
    #[arg(long)]
    client_certs: bool,
}

/// The message of a failed step, as the multi-machine runner prints it (a machine that
/// could not be locked — it does not exist — is said as the store says it).
fn step_error(verb: &str, name: &str, f: &provision::StepFailure) -> String {
    if f.step == provision::LOCK_STEP {
        return f.error.to_string();
    }
    let mut said = format!(
        "Error {verb} machine \"{name}\": {} failed: {:#}",
        f.step, f.error
    );
    if f.no_space() {
        said.push_str(
            "\nThe store's file system is full; free space there and run the command again (the machine's record is whole).",
        );
    }
    said
}

/// Run `dmw provision [--accept-host-key FINGERPRINT] NAME...`.
pub async fn run(app: &App, a: ReprovisionArgs) -> CliResult {
    let names = names_or_default(app, a.names)?;
    if a.accept_host_key.is_some() && names.len() != 1 {
        return Err(CliError::new(
            "Error: --accept-host-key names one machine's new key: give exactly one machine",
        ));
    }
    let accept = a.accept_host_key.as_deref();
    each::for_each(app, names, |name, report| async move {
        match accept {
            Some(fingerprint) => {
                provision::reprovision_accepting_host_key(app, &name, fingerprint, report.clone())
                    .await
            }
            None => provision::reprovision(app, &name, report.clone()).await,
        }
        .map_err(|f| step_error("provisioning", &name, &f))?;
        report.info(&format!("Machine \"{name}\" was provisioned."));
        Ok(())
    })
    .await
}

/// Run `dmw upgrade NAME...`.
pub async fn upgrade(app: &App, a: ProvisionArgs) -> CliResult {
    let names = names_or_default(app, a.names)?;
    each::for_each(app, names, |name, report| async move {
        let (before, after) = provision::upgrade(app, &name, report.clone())
            .await
            .map_err(|f| step_error("upgrading", &name, &f))?;
        report.info(&match before {
            Some(b) if b != after => {
                format!("Machine \"{name}\" was upgraded: Docker {b} -> {after}.")
            }
            _ => format!("Machine \"{name}\" was upgraded: Docker {after}."),
        });
        Ok(())
    })
    .await
}

/// Run `dmw regenerate-certs [--client-certs] NAME...`.
pub async fn regenerate_certs(app: &App, a: RegenerateArgs) -> CliResult {
    let names = names_or_default(app, a.names)?;
    if let Some(missing) = names.iter().find(|n| !app.store.exists(n)) {
        return Err(CliError::new(
            crate::state::store::LoadError::NotFound(missing.clone()).to_string(),
        ));
    }
    if !a.force && !confirm("Regenerate TLS machine certs?  Warning: this is irreversible.") {
        // A "no" is not a failure: Docker Machine exited 0 and said nothing more.
        if !crate::text::personality::docker_machine() {
            eprintln!("Aborted: no certificate was changed");
        }
        return Ok(());
    }
    if a.client_certs {
        println!("Regenerating local certificates");
        let certs = app.store.certs_dir();
        crate::net::tls::regenerate(&certs, &provision::cert_org())
            .and_then(|_| app.store.publish_certs())
            .map_err(|e| {
                CliError::new(format!(
                    "Error regenerating the CA and client certificate in {}: {e:#}",
                    certs.display()
                ))
            })?;
        let others: Vec<String> = app
            .store
            .list()?
            .into_iter()
            .filter(|n| !names.contains(n))
            .collect();
        if !others.is_empty() {
            eprintln!(
                "WARNING: a new CA signs the client certificate now; machines not named here still trust the old one until you run `dmw regenerate-certs --force {}`",
                others.join(" ")
            );
        }
    }
    each::for_each(app, names, |name, report| async move {
        provision::regenerate_certs(app, &name, report.clone())
            .await
            .map_err(|f| step_error("regenerating certificates of", &name, &f))?;
        report.info(&format!("Machine \"{name}\" has new certificates."));
        Ok(())
    })
    .await
}
