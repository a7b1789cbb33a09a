//! `certs`: the CA certificate, and issuing + installing the machine's server certificate.
//! The CA key and the server key stay in the host.

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::Linker;

use super::{Capability, CapabilityView, Granted, Lend, Lent, Offer, SshLink, project};
use crate::sandbox::contract::v0_1::certs::{self as wit, Host, InstalledCerts};
use crate::sandbox::contract::v0_1::types::Error;

/// The `certs` capability (recipes have it by default).
pub const fn capability<T: CapabilityView>() -> Capability<T> {
    Capability {
        name: "certs",
        link: add_to_linker::<T>,
        lend,
        wasi: super::no_wasi,
    }
}

/// The certificate authority's service for one machine.
pub struct CertsCtx {
    /// What may be issued, and where it goes.
    pub grant: Arc<CertGrant>,
}

/// Link `certs` through [`CertsCtx`].
pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Lend<CertsCtx>>(linker, project::<T, CertsCtx>)
}

fn lend(offer: &Offer, lent: &mut Lent) {
    if let Some(grant) = &offer.certs {
        lent.insert(CertsCtx {
            grant: grant.clone(),
        });
    }
}

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
    /// The machine's directory, where its server certificate is kept so a re-provision can
    /// install the same one again (None: always issue a new one).
    pub machine_dir: Option<crate::state::store::MachineDir>,
    /// On a simulated machine: whether the certificate counts as new (`fresh`).
    pub simulated_fresh: bool,
}

/// A kept server certificate is reused only while it stays valid this long.
const REUSE_MARGIN: time::Duration = time::Duration::days(30);

/// The machine's kept server certificate if it still fits, else a new one (kept for next time).
fn server_cert(grant: &CertGrant) -> Result<(crate::net::tls::ServerCert, bool), Error> {
    let kept = grant.machine_dir.as_ref().and_then(|dir| {
        let cert_pem = std::fs::read_to_string(dir.server_cert()).ok()?;
        let key_pem = std::fs::read_to_string(dir.server_key()).ok()?;
        Some(crate::net::tls::ServerCert { cert_pem, key_pem })
    });
    if let Some(cert) = kept
        && crate::net::tls::server_cert_fits(&grant.certs_dir, &cert, &grant.sans, REUSE_MARGIN)
    {
        return Ok((cert, false));
    }
    let cert = crate::net::tls::issue_server_cert(&grant.certs_dir, &grant.org, &grant.sans)
        .map_err(|e| Error::Failed(format!("cannot issue the server certificate: {e:#}")))?;
    if let Some(dir) = &grant.machine_dir {
        let keep =
            crate::state::store::write_atomic(&dir.server_cert(), cert.cert_pem.as_bytes(), 0o644)
                .and_then(|()| {
                    crate::state::store::write_private(&dir.server_key(), cert.key_pem.as_bytes())
                });
        keep.map_err(|e| Error::Failed(format!("cannot keep the server certificate: {e:#}")))?;
    }
    Ok((cert, true))
}

impl Host for Granted<'_, CertsCtx> {
    async fn ca_certificate(&mut self) -> wasmtime::Result<String> {
        let Some(grant) = self.ctx.as_ref().map(|c| c.grant.clone()) else {
            return Ok(String::new());
        };
        Ok(
            std::fs::read_to_string(crate::state::store::CertsDir::at(&grant.certs_dir).ca_cert())
                .unwrap_or_default(),
        )
    }

    async fn install_server_cert(
        &mut self,
        directory: String,
    ) -> wasmtime::Result<Result<InstalledCerts, Error>> {
        let Some(grant) = self.ctx.as_ref().map(|c| c.grant.clone()) else {
            return Ok(Err(self.denied("certs")));
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
    let (ca, server, fresh) = if grant.ssh.is_simulated() {
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
            crate::net::tls::ServerCert {
                cert_pem: placeholder("server certificate"),
                key_pem: placeholder("server key"),
            },
            grant.simulated_fresh,
        )
    } else {
        let ca =
            std::fs::read_to_string(crate::state::store::CertsDir::at(&grant.certs_dir).ca_cert())
                .map_err(|e| Error::Failed(format!("cannot read the CA certificate: {e}")))?;
        let (server, fresh) = server_cert(grant)?;
        (ca, server, fresh)
    };
    let paths = InstalledCerts {
        ca_path: format!("{dir}/ca.pem"),
        cert_path: format!("{dir}/server.pem"),
        key_path: format!("{dir}/server-key.pem"),
        fresh,
    };
    let ssh_err = |e: crate::net::ssh::SshError| Error::Failed(e.to_string());
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
