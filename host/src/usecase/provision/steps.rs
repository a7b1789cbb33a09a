//! The recipe steps create and the re-runs share: the CA, the recipe instance with its
//! certificate grant, install and configure, the client certificates in the machine
//! directory, and the check that the engine answers over mutual TLS.

use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::recipe_choice::{choose_recipe, detect_os};
use super::{Run, StepFailure};
use crate::app::App;
use crate::sandbox::capabilities::{CertGrant, Offer, SshLink};
use crate::sandbox::plugin::recipe::{EngineConfig, InstallMethod, OsInfo};
use crate::sandbox::plugin::{Kind, Recipe, Source};
use crate::state::store::{DriverRef, Endpoint, EngineOptions};
use crate::text::report::Reporter;
use crate::usecase::wait::{ENGINE_WAIT_ENV, ENGINE_WAIT_SECS, wait_env, wait_for_engine};

/// The subject organisation of certificates: `$USER` (or `unknown`), as Docker Machine.
pub fn cert_org() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Bootstrap the CA and client certificate, reporting what was created.
pub fn bootstrap_certs(app: &App, report: &Reporter) -> Result<()> {
    let certs = app.store.certs_dir();
    let mut done = crate::net::tls::bootstrap(&certs, &cert_org())?;
    if !app.store.publish_certs()? {
        // Another member of the shared store published its CA first: use the team's.
        done = crate::net::tls::bootstrap(&certs, &cert_org())?;
    }
    if let Some(ca) = done.ca {
        report.info(&format!("Creating CA: {}", ca.path.display()));
    }
    if let Some(client) = done.client {
        report.info(&format!(
            "Creating client certificate: {}",
            client.path.display()
        ));
    }
    Ok(())
}

impl Run<'_> {
    /// Detect the OS, choose the recipe, install and configure the engine, verify it.
    pub(super) async fn provision(
        &mut self,
        link: &Arc<SshLink>,
        endpoint: &Endpoint,
        recipe_override: Option<&Source>,
    ) -> Result<(), StepFailure> {
        self.report
            .step("Detecting operating system of created instance...");
        let os = detect_os(link)
            .await
            .map_err(|e| self.fail("detect OS", e))?;
        self.record.os = Some(if os.pretty_name.is_empty() {
            os.id.clone()
        } else {
            os.pretty_name.clone()
        });

        let (source, recipe_name) =
            choose_recipe(self.app, &os, recipe_override, self.report.clone())
                .await
                .map_err(|e| self.fail("choose recipe", e))?;
        self.record.recipe = Some(DriverRef {
            name: recipe_name.clone(),
            source: source.reference(),
        });
        self.save("save machine")?;
        self.report
            .step(&format!("Provisioning with {recipe_name}..."));

        let mut recipe = self
            .recipe_instance(&source, &recipe_name, link, endpoint)
            .await
            .map_err(|e| self.fail("load recipe", e))?;
        let config = self.engine_config(&os, endpoint);
        let name = self.record.name.clone();
        recipe
            .set_hostname(&name)
            .await
            .map_err(|e| self.fail("set hostname", e))?;
        recipe
            .install_engine(&config)
            .await
            .map_err(|e| self.fail("install engine", e))?;
        self.report
            .step("Copying certs to the local machine directory...");
        self.copy_client_certs()
            .map_err(|e| self.fail("copy client certificates", e))?;
        recipe
            .configure_engine(&config)
            .await
            .map_err(|e| self.fail("configure engine", e))?;
        self.record.recipe_state = recipe.state_kv();

        self.verify_engine().await
    }

    /// The engine configuration from the stored options.
    pub(super) fn engine_config(&self, os: &OsInfo, endpoint: &Endpoint) -> EngineConfig {
        engine_config(
            &self.record.engine,
            os,
            &self.record.driver.name,
            endpoint.engine_port,
        )
    }

    /// Wait until the engine answers over mutual TLS, then record the machine as ready.
    pub(super) async fn verify_engine(&mut self) -> Result<(), StepFailure> {
        self.report.step("Checking connection to Docker...");
        let version = wait_for_engine(
            &self.app.store,
            self.record,
            wait_env(ENGINE_WAIT_ENV, ENGINE_WAIT_SECS),
        )
        .await
        .map_err(|e| self.fail("check engine", e))?;
        self.record.docker_version = Some(version);
        self.record.mark_ready();
        self.save("save machine")
    }

    pub(super) async fn recipe_instance(
        &self,
        source: &Source,
        name: &str,
        link: &Arc<SshLink>,
        endpoint: &Endpoint,
    ) -> Result<Recipe> {
        let runtime = self.app.runtime()?;
        let (component, grant) = runtime.load_granted(source, Kind::Recipe)?;
        let mut offer = Offer::new(name, self.report.clone(), self.record.recipe_state.clone());
        offer.ssh = Some(link.clone());
        let sans = server_sans(&endpoint.address, &self.record.name, &self.record.tls_sans)?;
        offer.certs = Some(Arc::new(CertGrant {
            certs_dir: self.app.store.certs_dir(),
            org: format!("{}.{}", cert_org(), self.record.name),
            sans,
            ssh: link.clone(),
            machine_dir: Some(self.app.store.machine(&self.record.name)),
            simulated_fresh: true,
        }));
        runtime.recipe(&component, &grant, offer).await
    }

    /// Put ca.pem, cert.pem and key.pem in the machine directory (its DOCKER_CERT_PATH).
    pub(super) fn copy_client_certs(&self) -> Result<()> {
        copy_client_certs(&self.app.store, &self.record.name)
    }
}

/// Copy the store's CA certificate and client certificate and key into machine `name`'s
/// directory, where the docker CLI reads them (`DOCKER_CERT_PATH`).
pub(super) fn copy_client_certs(store: &crate::state::store::Store, name: &str) -> Result<()> {
    let certs = store.certs_dir();
    let dir = store.machine_dir(name);
    for (file, mode) in crate::state::store::layout::CLIENT_TLS_FILES {
        let bytes = std::fs::read(certs.join(file))
            .with_context(|| format!("cannot read {}", certs.join(file).display()))?;
        crate::state::store::write_atomic(&dir.join(file), &bytes, mode)?;
    }
    Ok(())
}

/// The names the machine's server certificate is issued for: the validated address the
/// engine is reached at, the machine's name (when it is a DNS name), `localhost`, and the
/// user's own `--tls-san` values. Anything that is not an IP address or DNS name (a
/// wildcard, say) is refused.
pub fn server_sans(address: &str, machine: &str, extra: &[String]) -> Result<Vec<String>> {
    if let Some(p) = crate::text::validate::address_problem(address) {
        bail!("the machine's {p}, cannot be named in its certificate");
    }
    let mut sans = vec![address.to_string()];
    if crate::text::validate::dns_name(machine).is_ok() {
        sans.push(machine.to_string());
    }
    sans.push("localhost".to_string());
    for san in extra {
        check_tls_san(san)?;
        sans.push(san.clone());
    }
    Ok(sans)
}

/// Refuses a `--tls-san` value that is not an IP address or DNS name (wildcards included).
pub fn check_tls_san(san: &str) -> Result<()> {
    if let Err(why) = crate::text::validate::address(san) {
        bail!(
            "--tls-san {san:?} is not an IP address or DNS name ({why}); the CA issues certificates only for exact names"
        );
    }
    Ok(())
}

/// The recipe's engine configuration from the stored options.
pub fn engine_config(o: &EngineOptions, os: &OsInfo, driver: &str, port: u16) -> EngineConfig {
    let install_method = match o.install_method {
        crate::state::store::InstallMethod::Auto => InstallMethod::Auto,
        crate::state::store::InstallMethod::Repo => InstallMethod::Repo,
        crate::state::store::InstallMethod::Distro => InstallMethod::Distro,
        crate::state::store::InstallMethod::Script => InstallMethod::Script,
        crate::state::store::InstallMethod::None => InstallMethod::None,
    };
    let mut labels = o.labels.clone();
    labels.push(format!("provider={driver}"));
    EngineConfig {
        os: os.clone(),
        install_method,
        install_url: o.install_url.clone(),
        repo_url: o.repo_url.clone(),
        port,
        storage_driver: o.storage_driver.clone(),
        labels,
        insecure_registries: o.insecure_registries.clone(),
        registry_mirrors: o.registry_mirrors.clone(),
        extra_flags: o.opts.clone(),
        env: o.env.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_sans_are_the_address_the_name_localhost_and_the_users() {
        let sans = server_sans("10.0.0.2", "m1", &["docker.example.com".into()]).expect("sans");
        assert_eq!(sans, ["10.0.0.2", "m1", "localhost", "docker.example.com"]);
        // A machine name that is no DNS name is left out, not issued.
        let sans = server_sans("10.0.0.2", "m1-", &[]).expect("sans");
        assert_eq!(sans, ["10.0.0.2", "localhost"]);
        let e = server_sans("10.0.0.2", "m1", &["*.example.com".into()]).unwrap_err();
        assert!(e.to_string().contains("wildcards are not allowed"), "{e}");
        let e = server_sans("*.example.com", "m1", &[]).unwrap_err();
        assert!(
            e.to_string().contains("cannot be named in its certificate"),
            "{e}"
        );
        assert!(check_tls_san("1.2.3.4").is_ok());
        assert!(check_tls_san("a b").is_err());
    }
}
