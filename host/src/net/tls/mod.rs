//! Docker TLS material, as Docker Machine's `libmachine/cert` makes it: a local CA
//! (`ca.pem`, `ca-key.pem`), a client certificate (`cert.pem`, `key.pem`) and per-machine
//! server certificates. Keys are ECDSA P-256 in PKCS#8 PEM. The CA key never leaves this
//! module.

mod ca;
mod der;
mod fsutil;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use ca::{Ca, Validity};

/// CA certificate (CA directory, machine directory, `DOCKER_CERT_PATH`).
pub const CA_CERT: &str = "ca.pem";
/// CA private key (CA directory only).
pub const CA_KEY: &str = "ca-key.pem";
/// Client certificate.
pub const CLIENT_CERT: &str = "cert.pem";
/// Client private key.
pub const CLIENT_KEY: &str = "key.pem";
/// Lock file of a directory (machine directory, CA directory).
pub const LOCK_FILE: &str = ".lock";
/// Lifetime of every certificate (Docker Machine: 1080 days).
pub const VALIDITY: Duration = Duration::days(1080);
/// Environment variable that shortens the lifetime of new certificates (whole days, 1 to
/// 1080): for fleets that rotate sooner, and for tests of the expiry warnings.
pub const VALIDITY_ENV: &str = "DMW_CERT_DAYS";
/// How long before a certificate ends `ls` and `env` start to warn.
pub const EXPIRY_WARNING: Duration = Duration::days(30);

/// The lifetime of a new certificate: [`VALIDITY`], or fewer days from [`VALIDITY_ENV`].
pub fn lifetime() -> Duration {
    lifetime_from(std::env::var(VALIDITY_ENV).ok().as_deref())
}

/// [`lifetime`] with the variable's value given.
fn lifetime_from(value: Option<&str>) -> Duration {
    value
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|days| Duration::days(days.clamp(1, VALIDITY.whole_days())))
        .unwrap_or(VALIDITY)
}

/// Whether the server certificate in `cert_pem` chains to the CA in `ca_pem` and names
/// `name` (an IP address or DNS name), as the docker CLI checks it.
pub fn server_cert_names(ca_pem: &str, cert_pem: &str, name: &str) -> Result<bool> {
    let roots = Arc::new(root_store(ca_pem)?);
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots, crypto_provider())
            .build()
            .context("building the server certificate verifier")?;
    let server_name = rustls_pki_types::ServerName::try_from(name.to_string())
        .map_err(|e| anyhow!("{name:?} is not an address or DNS name: {e}"))?;
    let cert = cert_der(cert_pem)?;
    use rustls::client::danger::ServerCertVerifier;
    Ok(verifier
        .verify_server_cert(&cert, &[], &server_name, &[], UnixTime::now())
        .is_ok())
}

/// When the first certificate in `pem` ends, if that is within [`EXPIRY_WARNING`] of
/// `now` (or already past).
pub fn ends_soon(pem: &str, now: OffsetDateTime) -> Result<Option<OffsetDateTime>> {
    let end = cert_expiry(pem)?;
    Ok((end - now <= EXPIRY_WARNING).then_some(end))
}
/// How far `notBefore` is backdated to tolerate clock skew (Docker Machine: 5 minutes).
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Why a certificate was (re)created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The certificate file did not exist.
    Missing,
    /// The certificate was past its notAfter.
    Expired,
    /// The client certificate did not verify against the current CA (or its key was unusable).
    Invalid,
    /// Regeneration was requested.
    Forced,
}

/// A certificate written by [`bootstrap`] or [`regenerate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    /// Path of the new certificate (`ca.pem` or `cert.pem`).
    pub path: PathBuf,
    /// Why it was created.
    pub reason: Reason,
}

/// What [`bootstrap`] created; `None` means the existing file was kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bootstrap {
    /// The CA, if it was created ("Creating CA: <path>").
    pub ca: Option<Created>,
    /// The client certificate, if it was created ("Creating client certificate: <path>").
    pub client: Option<Created>,
}

/// A server certificate and its private key, both PEM (for `/etc/docker/server*.pem`).
#[derive(Clone, PartialEq, Eq)]
pub struct ServerCert {
    /// The server certificate (PEM).
    pub cert_pem: String,
    /// The server's PKCS#8 private key (PEM). Secret: never log it.
    pub key_pem: String,
}

impl fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCert")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

/// The rustls crypto provider used for all TLS in dmw (ring; never the process default).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Like Docker Machine's `BootstrapCertificates`: makes `certs_dir` (0700) and creates the CA
/// if `ca.pem` is missing or expired, and the client certificate if it is missing, expired or
/// not signed by the current CA. Fails if `ca-key.pem` exists without `ca.pem`. Blocking
/// (file I/O and an advisory lock on `certs_dir/.lock`).
pub fn bootstrap(certs_dir: &Path, org: &str) -> Result<Bootstrap> {
    run(certs_dir, org, false)
}

/// Replaces the CA and the client certificate unconditionally (invalidates every server
/// certificate signed by the old CA).
pub fn regenerate(certs_dir: &Path, org: &str) -> Result<Bootstrap> {
    run(certs_dir, org, true)
}

/// Shared body of [`bootstrap`] and [`regenerate`].
fn run(certs_dir: &Path, org: &str, force: bool) -> Result<Bootstrap> {
    fsutil::ensure_private_dir(certs_dir)?;
    let _lock = fsutil::lock_dir(certs_dir, true)?;
    let ca_cert = certs_dir.join(CA_CERT);
    let ca_key = certs_dir.join(CA_KEY);
    let ca_reason = if force {
        Some(Reason::Forced)
    } else if !ca_cert.exists() {
        if ca_key.exists() {
            return Err(anyhow!(
                "certificate authority key {} already exists but {} is missing; \
                 refusing to overwrite it (restore {CA_CERT}, or move the key away to create a new CA)",
                ca_key.display(),
                ca_cert.display()
            ));
        }
        Some(Reason::Missing)
    } else {
        let pem = read(&ca_cert)?;
        let expired =
            is_expired(&pem).with_context(|| format!("checking {}", ca_cert.display()))?;
        expired.then_some(Reason::Expired)
    };
    let mut out = Bootstrap::default();
    if let Some(reason) = ca_reason {
        ca::create_ca(certs_dir, org, Validity::standard())?;
        out.ca = Some(Created {
            path: ca_cert.clone(),
            reason,
        });
    }

    // Always load the CA: this catches a missing or mismatched ca-key.pem early.
    let ca = Ca::load(certs_dir)?;
    let cert = certs_dir.join(CLIENT_CERT);
    let client_reason = if force {
        Some(Reason::Forced)
    } else if !cert.exists() {
        Some(Reason::Missing)
    } else if out.ca.is_some() {
        Some(Reason::Invalid)
    } else {
        client_status(certs_dir)?
    };
    if let Some(reason) = client_reason {
        let leaf = ca.issue_client(&format!("{org}.<bootstrap>"), Validity::standard())?;
        fsutil::write_atomic(
            &certs_dir.join(CLIENT_KEY),
            leaf.key_pem.as_bytes(),
            fsutil::KEY_MODE,
        )?;
        fsutil::write_atomic(&cert, leaf.cert_pem.as_bytes(), fsutil::CERT_MODE)?;
        out.client = Some(Created { path: cert, reason });
    }
    Ok(out)
}

/// Whether the client certificate needs replacing, and why.
fn client_status(certs_dir: &Path) -> Result<Option<Reason>> {
    let cert_path = certs_dir.join(CLIENT_CERT);
    let key_path = certs_dir.join(CLIENT_KEY);
    if !cert_path.exists() || !key_path.exists() {
        return Ok(Some(Reason::Missing));
    }
    let cert_pem = read(&cert_path)?;
    let Ok(der_cert) = cert_der(&cert_pem) else {
        return Ok(Some(Reason::Invalid));
    };
    let Ok(info) = der::parse_cert(der_cert.as_ref()) else {
        return Ok(Some(Reason::Invalid));
    };
    if OffsetDateTime::now_utc() > info.not_after {
        return Ok(Some(Reason::Expired));
    }
    let key_ok = std::fs::read_to_string(&key_path)
        .ok()
        .and_then(|k| rcgen::KeyPair::from_pem(&k).ok())
        .is_some_and(|k| {
            use rcgen::PublicKeyData;
            k.subject_public_key_info().as_slice() == info.spki
        });
    let ca_pem = read(&certs_dir.join(CA_CERT))?;
    if !key_ok || verify_client_cert(&ca_pem, &cert_pem).is_err() {
        return Ok(Some(Reason::Invalid));
    }
    Ok(None)
}

/// Whether an existing server certificate can be installed again instead of a new one: its
/// key matches it, it chains to the CA in `certs_dir`, it is valid for every name in `sans`
/// (and `localhost`), and it stays valid for at least `margin` more.
pub fn server_cert_fits(
    certs_dir: &Path,
    cert: &ServerCert,
    sans: &[String],
    margin: Duration,
) -> bool {
    let check = || -> Result<bool> {
        let der_cert = cert_der(&cert.cert_pem)?;
        let info = der::parse_cert(der_cert.as_ref())?;
        if OffsetDateTime::now_utc() + margin > info.not_after {
            return Ok(false);
        }
        let key = rcgen::KeyPair::from_pem(&cert.key_pem)
            .map_err(|_| anyhow!("unreadable server key"))?;
        {
            use rcgen::PublicKeyData;
            if key.subject_public_key_info().as_slice() != info.spki {
                return Ok(false);
            }
        }
        let roots = Arc::new(root_store(&read(&certs_dir.join(CA_CERT))?)?);
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots, crypto_provider())
                .build()
                .context("building the server certificate verifier")?;
        for san in ca::san_list(sans)? {
            let name = match san {
                rcgen::SanType::IpAddress(ip) => rustls_pki_types::ServerName::IpAddress(ip.into()),
                rcgen::SanType::DnsName(n) => {
                    rustls_pki_types::ServerName::try_from(n.as_str().to_string())?
                }
                _ => continue,
            };
            if rustls::client::danger::ServerCertVerifier::verify_server_cert(
                &*verifier,
                &der_cert,
                &[],
                &name,
                &[],
                UnixTime::now(),
            )
            .is_err()
            {
                return Ok(false);
            }
        }
        Ok(true)
    };
    check().unwrap_or(false)
}

/// Issues a server certificate signed by the CA in `certs_dir`, with subject
/// `O=<org_machine>`, ExtKeyUsage ServerAuth, KeyUsage DigitalSignature|KeyEncipherment, and
/// SANs from `sans` (IPs as IP SANs, others as DNS names; deduplicated; plus `localhost`).
pub fn issue_server_cert(
    certs_dir: &Path,
    org_machine: &str,
    sans: &[String],
) -> Result<ServerCert> {
    let ca = {
        let _lock = fsutil::lock_dir(certs_dir, false)?;
        Ca::load(certs_dir)?
    };
    let leaf = ca.issue_server(org_machine, sans, Validity::standard())?;
    Ok(ServerCert {
        cert_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
    })
}

/// The (notBefore, notAfter) window of the first certificate in `pem`.
pub fn cert_validity(pem: &str) -> Result<(OffsetDateTime, OffsetDateTime)> {
    let der_cert = cert_der(pem)?;
    let info = der::parse_cert(der_cert.as_ref())?;
    Ok((info.not_before, info.not_after))
}

/// The notAfter of the first certificate in `pem`.
pub fn cert_expiry(pem: &str) -> Result<OffsetDateTime> {
    Ok(cert_validity(pem)?.1)
}

/// Whether the first certificate in `pem` is past its notAfter.
pub fn is_expired(pem: &str) -> Result<bool> {
    Ok(OffsetDateTime::now_utc() > cert_expiry(pem)?)
}

/// SHA-256 of the DER of the first certificate in `pem`, as lowercase hex without colons.
pub fn fingerprint_sha256(pem: &str) -> Result<String> {
    let der_cert = cert_der(pem)?;
    Ok(hex::encode(Sha256::digest(der_cert.as_ref())))
}

/// Checks that `cert_pem` is a currently valid client certificate (ClientAuth) issued by
/// the CA in `ca_pem`.
pub fn verify_client_cert(ca_pem: &str, cert_pem: &str) -> Result<()> {
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(root_store(ca_pem)?),
        crypto_provider(),
    )
    .build()
    .context("building the client certificate verifier")?;
    let leaf = cert_der(cert_pem)?;
    verifier
        .verify_client_cert(&leaf, &[], UnixTime::now())
        .context("client certificate does not verify against the CA")?;
    Ok(())
}

/// A root store holding every certificate in `ca_pem`.
pub fn root_store(ca_pem: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.context("reading CA PEM")?)
            .context("adding CA certificate to the trust store")?;
    }
    anyhow::ensure!(!roots.is_empty(), "no CA certificate found");
    Ok(roots)
}

/// The DER of the first `CERTIFICATE` block in `pem`.
fn cert_der(pem: &str) -> Result<CertificateDer<'static>> {
    CertificateDer::from_pem_slice(pem.as_bytes()).context("no valid PEM certificate found")
}

/// Reads a (non-secret) PEM file.
fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests;
