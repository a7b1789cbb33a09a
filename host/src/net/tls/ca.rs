//! The certificate authority: creating it, reloading it from disk, and signing leaves.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail, ensure};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
};
use time::OffsetDateTime;

use super::der;
use super::fsutil::{CERT_MODE, KEY_MODE, write_atomic};
use super::{CA_CERT, CA_KEY, CLOCK_SKEW, cert_der};

/// A validity window for a new certificate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Validity {
    /// Start of the window.
    pub not_before: OffsetDateTime,
    /// End of the window.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Docker Machine's window: from 5 minutes ago (clock skew) for [`super::VALIDITY`] (or the
    /// shorter [`super::lifetime`] the user set).
    pub(crate) fn standard() -> Self {
        let not_before = (OffsetDateTime::now_utc() - CLOCK_SKEW)
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc() - CLOCK_SKEW);
        Validity {
            not_before,
            not_after: not_before + super::lifetime(),
        }
    }
}

/// A new key and certificate, both PEM.
pub(crate) struct Leaf {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The PKCS#8 private key (PEM). Secret.
    pub key_pem: String,
}

/// The loaded CA: its signing key and parameters reproducing its subject name.
pub(crate) struct Ca {
    issuer: Issuer<'static, KeyPair>,
    subject_der: Vec<u8>,
}

/// Base parameters shared by every certificate we make.
fn base_params(org: &str, validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, org);
    params.distinguished_name = dn;
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params
}

/// Key usages of the CA certificate.
fn ca_key_usages() -> Vec<KeyUsagePurpose> {
    vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ]
}

/// Generates a fresh ECDSA P-256 key.
fn new_key() -> Result<KeyPair> {
    KeyPair::generate().context("generating an ECDSA P-256 key")
}

/// Creates a new self-signed CA and writes `ca-key.pem` (0600) then `ca.pem` (0644).
pub(crate) fn create_ca(dir: &Path, org: &str, validity: Validity) -> Result<()> {
    let key = new_key()?;
    let mut params = base_params(org, validity);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = ca_key_usages();
    let cert = params
        .self_signed(&key)
        .context("self-signing the CA certificate")?;
    write_atomic(&dir.join(CA_KEY), key.serialize_pem().as_bytes(), KEY_MODE)?;
    write_atomic(&dir.join(CA_CERT), cert.pem().as_bytes(), CERT_MODE)
}

impl Ca {
    /// Loads `ca.pem` and `ca-key.pem` from `dir` and checks that they belong together.
    pub(crate) fn load(dir: &Path) -> Result<Self> {
        let cert_path = dir.join(CA_CERT);
        let key_path = dir.join(CA_KEY);
        let cert_pem = std::fs::read_to_string(&cert_path)
            .with_context(|| format!("reading CA certificate {}", cert_path.display()))?;
        let key_pem = std::fs::read_to_string(&key_path)
            .with_context(|| format!("reading CA key {}", key_path.display()))?;
        // The parse error is deliberately not included: it could echo key material.
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|_| anyhow!("{} is not a valid PKCS#8 private key", key_path.display()))?;
        let der_cert = cert_der(&cert_pem)
            .with_context(|| format!("reading CA certificate {}", cert_path.display()))?;
        let info = der::parse_cert(der_cert.as_ref())
            .with_context(|| format!("parsing CA certificate {}", cert_path.display()))?;
        ensure!(
            info.spki == key.subject_public_key_info().as_slice(),
            "{} does not match the CA certificate {}",
            key_path.display(),
            cert_path.display()
        );
        let mut params = CertificateParams::default();
        params.distinguished_name = der::parse_name(info.subject)
            .with_context(|| format!("reading the subject of {}", cert_path.display()))?;
        params.key_usages = ca_key_usages();
        Ok(Ca {
            issuer: Issuer::new(params, key),
            subject_der: info.subject.to_vec(),
        })
    }

    /// Signs `params` with a fresh key, checking that the issuer name chains to the CA.
    fn sign(&self, mut params: CertificateParams) -> Result<Leaf> {
        params.use_authority_key_identifier_extension = true;
        let key = new_key()?;
        let cert: Certificate = params
            .signed_by(&key, &self.issuer)
            .context("signing the certificate with the CA")?;
        let info = der::parse_cert(cert.der().as_ref())?;
        ensure!(
            info.issuer == self.subject_der.as_slice(),
            "cannot reproduce the CA's subject name exactly; regenerate the CA"
        );
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a client certificate (ExtKeyUsage ClientAuth, KeyUsage DigitalSignature).
    pub(crate) fn issue_client(&self, org: &str, validity: Validity) -> Result<Leaf> {
        let mut params = base_params(org, validity);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    /// Issues a server certificate (ExtKeyUsage ServerAuth, KeyUsage
    /// DigitalSignature|KeyEncipherment) for `sans` plus `localhost`.
    pub(crate) fn issue_server(
        &self,
        org: &str,
        sans: &[String],
        validity: Validity,
    ) -> Result<Leaf> {
        let mut params = base_params(org, validity);
        params.subject_alt_names = san_list(sans)?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }
}

/// Turns SAN strings into typed SANs: IPs (also `[v6]`) as IP SANs, anything else as a DNS
/// name; blanks skipped, duplicates removed (DNS case-insensitively), `localhost` appended.
pub(crate) fn san_list(sans: &[String]) -> Result<Vec<SanType>> {
    let mut out = Vec::new();
    let mut ips = HashSet::new();
    let mut names = HashSet::new();
    for raw in sans.iter().map(String::as_str).chain(["localhost"]) {
        let s = raw.trim();
        if s.is_empty() {
            continue;
        }
        let bare = s
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(s);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            if ips.insert(ip) {
                out.push(SanType::IpAddress(ip));
            }
            continue;
        }
        if let Err(why) = crate::text::validate::dns_name(s) {
            bail!("invalid certificate SAN {s:?}: not an IP address or DNS name ({why})");
        }
        if names.insert(s.to_ascii_lowercase()) {
            out.push(SanType::DnsName(s.try_into()?));
        }
    }
    Ok(out)
}
