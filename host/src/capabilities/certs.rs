//! `certs`: the CA certificate, and issuing + installing the machine's server certificate.
//! The CA key and the server key stay in the host.

use std::path::PathBuf;
use std::sync::Arc;

use crate::plugin::HostState;
use crate::plugin::bindings::v0_1::certs::{Host, InstalledCerts};
use crate::plugin::bindings::v0_1::types::Error;

use super::SshLink;

/// What a recipe may ask of the certificate authority for one machine.
pub struct CertGrant {
    /// The store's certs directory (CA and client certificate).
    pub certs_dir: PathBuf,
    /// Subject organisation of the server certificate.
    pub org: String,
    /// SANs of the server certificate (address, hostname, localhost, --tls-san).
    pub sans: Vec<String>,
    /// Where the certificate goes.
    pub ssh: Arc<SshLink>,
}

impl Host for HostState {
    async fn ca_certificate(&mut self) -> wasmtime::Result<String> {
        self.ctx.host_calls += 1;
        let Some(grant) = self.ctx.certs.clone() else {
            return Ok(String::new());
        };
        Ok(std::fs::read_to_string(grant.certs_dir.join("ca.pem")).unwrap_or_default())
    }

    async fn install_server_cert(
        &mut self,
        directory: String,
    ) -> wasmtime::Result<Result<InstalledCerts, Error>> {
        self.ctx.host_calls += 1;
        let Some(grant) = self.ctx.certs.clone() else {
            return Ok(Err(self.ctx.denied("certs")));
        };
        if !directory.starts_with('/') {
            return Ok(Err(Error::InvalidInput(format!(
                "certificate directory must be absolute, got {directory:?}"
            ))));
        }
        Ok(install(&grant, directory.trim_end_matches('/')).await)
    }
}

async fn install(grant: &CertGrant, dir: &str) -> Result<InstalledCerts, Error> {
    let (ca, server) = if grant.ssh.is_simulated() {
        // A simulated machine gets placeholders: no CA is needed and no key is made.
        let placeholder = |what: &str| {
            format!(
                "(the {what} of {}, SANs {})\n",
                grant.org,
                grant.sans.join(", ")
            )
        };
        (
            "(the CA certificate)\n".to_string(),
            crate::tls::ServerCert {
                cert_pem: placeholder("server certificate"),
                key_pem: placeholder("server key"),
            },
        )
    } else {
        let ca = std::fs::read_to_string(grant.certs_dir.join("ca.pem"))
            .map_err(|e| Error::Failed(format!("cannot read the CA certificate: {e}")))?;
        let server = crate::tls::issue_server_cert(&grant.certs_dir, &grant.org, &grant.sans)
            .map_err(|e| Error::Failed(format!("cannot issue the server certificate: {e:#}")))?;
        (ca, server)
    };
    let paths = InstalledCerts {
        ca_path: format!("{dir}/ca.pem"),
        cert_path: format!("{dir}/server.pem"),
        key_path: format!("{dir}/server-key.pem"),
    };
    let ssh_err = |e: crate::ssh::SshError| Error::Failed(e.to_string());
    grant
        .ssh
        .upload(&paths.ca_path, ca.as_bytes(), 0o644)
        .await
        .map_err(ssh_err)?;
    grant
        .ssh
        .upload(&paths.cert_path, server.cert_pem.as_bytes(), 0o644)
        .await
        .map_err(ssh_err)?;
    grant
        .ssh
        .upload(&paths.key_path, server.key_pem.as_bytes(), 0o600)
        .await
        .map_err(ssh_err)?;
    Ok(paths)
}
