use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::ServerName;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::parse_x509_certificate;
use x509_parser::x509::X509Name;

use super::*;

const ORG: &str = "alice";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn read_file(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

fn with_x509<T>(pem: &str, f: impl FnOnce(&X509Certificate<'_>) -> T) -> T {
    let der_cert = cert_der(pem).unwrap();
    let (rest, cert) = parse_x509_certificate(der_cert.as_ref()).unwrap();
    assert!(rest.is_empty());
    f(&cert)
}

fn orgs(name: &X509Name<'_>) -> Vec<String> {
    name.iter_organization()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// Verifies `cert_pem` as a TLS server certificate for `name` against `ca_pem`.
fn verify_server(ca_pem: &str, cert_pem: &str, name: &str) -> Result<(), rustls::Error> {
    let verifier = WebPkiServerVerifier::builder_with_provider(
        Arc::new(root_store(ca_pem).unwrap()),
        crypto_provider(),
    )
    .build()
    .unwrap();
    let leaf = cert_der(cert_pem).unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    verifier
        .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
        .map(|_| ())
}

fn assert_window(pem: &str) {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    with_x509(pem, |c| {
        let nb = c.validity().not_before.timestamp();
        let na = c.validity().not_after.timestamp();
        assert!(
            (nb - (now - 300)).abs() <= 5,
            "not_before {nb} vs now {now}"
        );
        assert_eq!(na - nb, 1080 * 86400);
        // The DER walker agrees with x509-parser.
        let (b, a) = cert_validity(pem).unwrap();
        assert_eq!((b.unix_timestamp(), a.unix_timestamp()), (nb, na));
    });
}

#[test]
fn bootstrap_creates_everything_with_right_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/certs");
    let out = bootstrap(&dir, ORG).unwrap();
    assert_eq!(
        out.ca,
        Some(Created {
            path: dir.join(CA_CERT),
            reason: Reason::Missing
        })
    );
    assert_eq!(
        out.client,
        Some(Created {
            path: dir.join(CLIENT_CERT),
            reason: Reason::Missing
        })
    );
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(CA_KEY)), 0o600);
    assert_eq!(mode(&dir.join(CLIENT_KEY)), 0o600);
    assert_eq!(mode(&dir.join(CA_CERT)), 0o644);
    assert_eq!(mode(&dir.join(CLIENT_CERT)), 0o644);
    // No temporary files left behind.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".lock", CA_KEY, CA_CERT, CLIENT_CERT, CLIENT_KEY]);
    assert!(read_file(&dir, CA_KEY).starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(read_file(&dir, CLIENT_KEY).starts_with("-----BEGIN PRIVATE KEY-----"));

    let ca_pem = read_file(&dir, CA_CERT);
    let client_pem = read_file(&dir, CLIENT_CERT);
    with_x509(&ca_pem, |c| {
        assert!(c.is_ca());
        assert_eq!(orgs(c.subject()), vec![ORG]);
        assert_eq!(c.subject(), c.issuer());
        let ku = c.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.digital_signature());
    });
    with_x509(&client_pem, |c| {
        assert!(!c.is_ca());
        assert_eq!(orgs(c.subject()), vec!["alice.<bootstrap>"]);
        assert_eq!(orgs(c.issuer()), vec![ORG]);
        let eku = c.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        let ku = c.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && !ku.key_cert_sign());
    });
    assert_window(&ca_pem);
    assert_window(&client_pem);
    verify_client_cert(&ca_pem, &client_pem).unwrap();
    assert!(!is_expired(&ca_pem).unwrap());
    let expiry = cert_expiry(&client_pem).unwrap();
    assert!(
        (expiry - (OffsetDateTime::now_utc() + VALIDITY - CLOCK_SKEW)).abs() < Duration::seconds(5)
    );
}

#[test]
fn bootstrap_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    bootstrap(dir, ORG).unwrap();
    let ca_fp = fingerprint_sha256(&read_file(dir, CA_CERT)).unwrap();
    let cl_fp = fingerprint_sha256(&read_file(dir, CLIENT_CERT)).unwrap();
    assert_eq!(ca_fp.len(), 64);
    assert!(
        ca_fp
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let key = read_file(dir, CLIENT_KEY);

    let again = bootstrap(dir, ORG).unwrap();
    assert_eq!(again, Bootstrap::default());
    assert_eq!(fingerprint_sha256(&read_file(dir, CA_CERT)).unwrap(), ca_fp);
    assert_eq!(
        fingerprint_sha256(&read_file(dir, CLIENT_CERT)).unwrap(),
        cl_fp
    );
    assert_eq!(read_file(dir, CLIENT_KEY), key);
}

#[test]
fn expired_client_cert_is_regenerated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    bootstrap(dir, ORG).unwrap();
    let ca_fp = fingerprint_sha256(&read_file(dir, CA_CERT)).unwrap();
    let now = OffsetDateTime::now_utc();
    let past = Validity {
        not_before: now - Duration::days(100),
        not_after: now - Duration::days(1),
    };
    let leaf = Ca::load(dir)
        .unwrap()
        .issue_client("alice.<bootstrap>", past)
        .unwrap();
    std::fs::write(dir.join(CLIENT_CERT), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join(CLIENT_KEY), &leaf.key_pem).unwrap();
    assert!(is_expired(&leaf.cert_pem).unwrap());

    let out = bootstrap(dir, ORG).unwrap();
    assert_eq!(out.ca, None);
    assert_eq!(out.client.unwrap().reason, Reason::Expired);
    let client_pem = read_file(dir, CLIENT_CERT);
    assert!(!is_expired(&client_pem).unwrap());
    verify_client_cert(&read_file(dir, CA_CERT), &client_pem).unwrap();
    assert_eq!(fingerprint_sha256(&read_file(dir, CA_CERT)).unwrap(), ca_fp);
}

#[test]
fn expired_ca_is_recreated_with_its_client() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let now = OffsetDateTime::now_utc();
    let past = Validity {
        not_before: now - Duration::days(100),
        not_after: now - Duration::days(1),
    };
    bootstrap(dir, ORG).unwrap();
    ca::create_ca(dir, ORG, past).unwrap();
    let out = bootstrap(dir, ORG).unwrap();
    assert_eq!(out.ca.unwrap().reason, Reason::Expired);
    assert_eq!(out.client.unwrap().reason, Reason::Invalid);
    verify_client_cert(&read_file(dir, CA_CERT), &read_file(dir, CLIENT_CERT)).unwrap();
}

#[test]
fn client_from_another_ca_is_regenerated() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    bootstrap(&a, ORG).unwrap();
    bootstrap(&b, ORG).unwrap();
    for f in [CLIENT_CERT, CLIENT_KEY] {
        std::fs::copy(b.join(f), a.join(f)).unwrap();
    }
    assert!(verify_client_cert(&read_file(&a, CA_CERT), &read_file(&a, CLIENT_CERT)).is_err());
    let out = bootstrap(&a, ORG).unwrap();
    assert_eq!(out.ca, None);
    assert_eq!(out.client.unwrap().reason, Reason::Invalid);
    verify_client_cert(&read_file(&a, CA_CERT), &read_file(&a, CLIENT_CERT)).unwrap();
}

#[test]
fn missing_client_key_is_regenerated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    bootstrap(dir, ORG).unwrap();
    std::fs::remove_file(dir.join(CLIENT_KEY)).unwrap();
    let out = bootstrap(dir, ORG).unwrap();
    assert_eq!(out.client.unwrap().reason, Reason::Missing);
    assert_eq!(mode(&dir.join(CLIENT_KEY)), 0o600);
}

#[test]
fn orphan_ca_key_is_not_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    bootstrap(dir, ORG).unwrap();
    let key = read_file(dir, CA_KEY);
    std::fs::remove_file(dir.join(CA_CERT)).unwrap();
    let err = format!("{:#}", bootstrap(dir, ORG).unwrap_err());
    assert!(err.contains("already exists"), "{err}");
    assert!(err.contains(CA_KEY), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");
    assert_eq!(read_file(dir, CA_KEY), key);
}

#[test]
fn mismatched_ca_key_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    bootstrap(&a, ORG).unwrap();
    bootstrap(&b, ORG).unwrap();
    std::fs::copy(b.join(CA_KEY), a.join(CA_KEY)).unwrap();
    let err = format!("{:#}", issue_server_cert(&a, "alice.m1", &[]).unwrap_err());
    assert!(err.contains("does not match"), "{err}");
    assert!(bootstrap(&a, ORG).is_err());
}

#[test]
fn regenerate_replaces_ca_and_client() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    bootstrap(dir, ORG).unwrap();
    let ca_fp = fingerprint_sha256(&read_file(dir, CA_CERT)).unwrap();
    let cl_fp = fingerprint_sha256(&read_file(dir, CLIENT_CERT)).unwrap();
    let out = regenerate(dir, ORG).unwrap();
    assert_eq!(out.ca.unwrap().reason, Reason::Forced);
    assert_eq!(out.client.unwrap().reason, Reason::Forced);
    assert_ne!(fingerprint_sha256(&read_file(dir, CA_CERT)).unwrap(), ca_fp);
    assert_ne!(
        fingerprint_sha256(&read_file(dir, CLIENT_CERT)).unwrap(),
        cl_fp
    );
    verify_client_cert(&read_file(dir, CA_CERT), &read_file(dir, CLIENT_CERT)).unwrap();
    assert_eq!(mode(&dir.join(CA_KEY)), 0o600);
}

#[test]
fn server_cert_sans_usages_and_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    bootstrap(dir, ORG).unwrap();
    let sans: Vec<String> = [
        "10.0.0.5",
        "m1.example.com",
        " 10.0.0.5",
        "M1.Example.com",
        "[::1]",
        "localhost",
        "",
    ]
    .map(String::from)
    .to_vec();
    let server = issue_server_cert(dir, "alice.m1", &sans).unwrap();
    assert!(server.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(!format!("{server:?}").contains("PRIVATE KEY"));
    let ca_pem = read_file(dir, CA_CERT);
    with_x509(&server.cert_pem, |c| {
        assert!(!c.is_ca());
        assert_eq!(orgs(c.subject()), vec!["alice.m1"]);
        assert_eq!(orgs(c.issuer()), vec![ORG]);
        let san = c.subject_alternative_name().unwrap().unwrap().value;
        let mut ips = Vec::new();
        let mut dns = Vec::new();
        for n in &san.general_names {
            match n {
                GeneralName::IPAddress(b) => ips.push(match b.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()),
                    _ => IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()),
                }),
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                other => panic!("unexpected SAN {other:?}"),
            }
        }
        assert_eq!(
            ips,
            vec![
                "10.0.0.5".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(dns, vec!["m1.example.com", "localhost"]);
        let eku = c.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let ku = c.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && ku.key_encipherment() && !ku.key_cert_sign());
        assert!(
            c.get_extension_unique(
                &x509_parser::oid_registry::OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER
            )
            .unwrap()
            .is_some()
        );
    });
    assert_window(&server.cert_pem);
    for name in ["10.0.0.5", "::1", "m1.example.com", "localhost"] {
        verify_server(&ca_pem, &server.cert_pem, name).unwrap();
    }
    let err = verify_server(&ca_pem, &server.cert_pem, "10.0.0.6").unwrap_err();
    assert!(err.to_string().contains("10.0.0.6"), "{err}");
}

#[test]
fn server_cert_always_has_localhost() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    bootstrap(dir, ORG).unwrap();
    let server = issue_server_cert(dir, "alice.m1", &[]).unwrap();
    verify_server(&read_file(dir, CA_CERT), &server.cert_pem, "localhost").unwrap();
}

#[test]
fn bad_san_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    bootstrap(tmp.path(), ORG).unwrap();
    let err = issue_server_cert(tmp.path(), "alice.m1", &["not a host".to_owned()]).unwrap_err();
    assert!(err.to_string().contains("not a host"), "{err}");
}

#[test]
fn wildcard_and_invalid_sans_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    bootstrap(tmp.path(), ORG).unwrap();
    for bad in [
        "*.example.com",
        "*",
        "a.*.b",
        "127.0.0.1/$(id)",
        "under_score.x",
        "-x.y",
        "x\ny",
    ] {
        let err = issue_server_cert(tmp.path(), "alice.m1", &[bad.to_owned()]).unwrap_err();
        assert!(
            err.to_string().contains("invalid certificate SAN"),
            "{bad:?}: {err}"
        );
    }
    let err = issue_server_cert(tmp.path(), "alice.m1", &["*.example.com".to_owned()]).unwrap_err();
    assert!(
        err.to_string().contains("wildcards are not allowed"),
        "{err}"
    );
}

#[test]
fn pem_helpers_reject_garbage() {
    assert!(fingerprint_sha256("nope").is_err());
    assert!(cert_expiry("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
}

#[test]
fn concurrent_bootstraps_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let dir = dir.clone();
            std::thread::spawn(move || bootstrap(&dir, ORG).unwrap())
        })
        .collect();
    let created: usize = handles
        .into_iter()
        .map(|h| usize::from(h.join().unwrap().ca.is_some()))
        .sum();
    assert_eq!(created, 1);
    assert_eq!(bootstrap(&dir, ORG).unwrap(), Bootstrap::default());
    issue_server_cert(&dir, "alice.m1", &[]).unwrap();
    verify_client_cert(&read_file(&dir, CA_CERT), &read_file(&dir, CLIENT_CERT)).unwrap();
}

#[test]
fn the_lifetime_can_only_be_shortened() {
    assert_eq!(lifetime_from(None), VALIDITY);
    assert_eq!(lifetime_from(Some("10")), Duration::days(10));
    assert_eq!(lifetime_from(Some("0")), Duration::days(1));
    assert_eq!(lifetime_from(Some("5000")), VALIDITY);
    assert_eq!(lifetime_from(Some("ten")), VALIDITY);
}

#[test]
fn a_certificate_ending_within_thirty_days_is_told() {
    let dir = tempfile::tempdir().unwrap();
    bootstrap(dir.path(), ORG).unwrap();
    let pem = read_file(dir.path(), CLIENT_CERT);
    let end = cert_expiry(&pem).unwrap();
    let now = OffsetDateTime::now_utc();
    assert_eq!(ends_soon(&pem, now).unwrap(), None, "1080 days ahead");
    assert_eq!(ends_soon(&pem, end - Duration::days(31)).unwrap(), None);
    assert_eq!(
        ends_soon(&pem, end - Duration::days(29)).unwrap(),
        Some(end)
    );
    assert_eq!(ends_soon(&pem, end + Duration::days(1)).unwrap(), Some(end));
}

#[test]
fn a_server_certificate_names_only_the_addresses_it_was_issued_for() {
    let dir = tempfile::tempdir().unwrap();
    bootstrap(dir.path(), ORG).unwrap();
    let ca = read_file(dir.path(), CA_CERT);
    let sans = vec!["192.0.2.10".to_string(), "m1.example".to_string()];
    let server = issue_server_cert(dir.path(), "alice.m1", &sans).unwrap();
    assert!(server_cert_names(&ca, &server.cert_pem, "192.0.2.10").unwrap());
    assert!(server_cert_names(&ca, &server.cert_pem, "m1.example").unwrap());
    assert!(!server_cert_names(&ca, &server.cert_pem, "192.0.2.99").unwrap());
    // Another CA's certificate names nothing for this one.
    let other = tempfile::tempdir().unwrap();
    bootstrap(other.path(), ORG).unwrap();
    let other_ca = read_file(other.path(), CA_CERT);
    assert!(!server_cert_names(&other_ca, &server.cert_pem, "192.0.2.10").unwrap());
}
