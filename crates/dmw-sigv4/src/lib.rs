//! AWS Signature Version 4, shared by dmw's host (its S3 machine store) and its guests
//! (`dmw_guest::sigv4`, the amazonec2 driver): the canonical request, the string to sign and
//! the signature of a request given as its parts, as
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html> describes.
//!
//! Written here because the `aws-sigv4` crate (1.6.4) pulls in the AWS runtime for what is a
//! few HMACs: 51 crates (aws-smithy-*, `http`, `time`, `tracing`, tokio, futures) and a
//! 215 KiB component for signing alone (measured); this crate needs only `sha2` and `hmac`.
//! It is checked against AWS's own signing test suite (the `aws-signing-test-suite/v4` cases
//! that `aws-sigv4` 1.6.4 ships, run by `guests/sdk/tests/sigv4_vectors.rs`) and, end to
//! end, by moto and boto3.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The signing algorithm's name.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Headers a signer leaves unsigned (botocore's `SIGNED_HEADERS_BLACKLIST`).
pub const UNSIGNED_HEADERS: &[&str] = &[
    "expect",
    "transfer-encoding",
    "user-agent",
    "x-amzn-trace-id",
];

/// Access key, secret key and (for temporary credentials) the session token.
#[derive(Clone)]
pub struct Credentials {
    /// The access key id (`AKIA…`), not secret.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
    /// The session token of temporary credentials (sent as `X-Amz-Security-Token`).
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ access_key: {:?}, .. }}", self.access_key)
    }
}

/// What to sign with: credentials, region, service and time.
#[derive(Clone, Debug)]
pub struct Signer<'a> {
    /// The credentials.
    pub credentials: &'a Credentials,
    /// The region (`us-east-1`).
    pub region: &'a str,
    /// The service (`ec2`).
    pub service: &'a str,
    /// Seconds since the Unix epoch.
    pub time: u64,
    /// Add and sign `x-amz-content-sha256` (S3 style; EC2 does not).
    pub sign_body: bool,
    /// Sign the session token (false: add it after signing, as some services want).
    pub sign_token: bool,
}

/// `YYYYMMDDTHHMMSSZ` for `secs` since the Unix epoch.
pub fn amz_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("hmac accepts any key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// URI-encode as SigV4 wants: unreserved characters (`A-Za-z0-9-._~`) stay, every other
/// byte becomes `%XX` (upper case); `/` stays when `keep_slash`.
pub fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decode `%XX` escapes (invalid ones are kept as they are).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
            && let Ok(v) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A form body (`application/x-www-form-urlencoded`) of `params`, in order, encoded as
/// botocore does (Python's `urlencode`: unreserved characters kept, spaces `+`, everything
/// else `%XX`). The signature covers the body's bytes, but verifiers built on botocore
/// (moto) re-encode the parsed form this way before checking it.
pub fn form_encode(params: &[(String, String)]) -> String {
    let enc = |t: &str| uri_encode(t, false).replace("%20", "+");
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical URI of `path`: dot segments and empty segments removed, each segment
/// URI-encoded (`normalize` in AWS's suite; every service but S3).
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let trailing = path.ends_with('/') && !segments.is_empty();
    let mut out = String::from("/");
    out.push_str(
        &segments
            .iter()
            .map(|s| uri_encode(&percent_decode(s), false))
            .collect::<Vec<_>>()
            .join("/"),
    );
    if trailing {
        out.push('/');
    }
    out
}

/// The canonical query string: each name and value decoded and re-encoded, sorted.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical headers block and the signed header names, from `headers` (names any case;
/// values trimmed, inner runs of spaces collapsed, repeated names joined with `,`).
fn canonical_headers(headers: &[(String, String)]) -> (String, String) {
    let mut merged: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let name = name.trim().to_ascii_lowercase();
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(&value);
            }
            None => merged.push((name, value)),
        }
    }
    merged.sort_by(|a, b| a.0.cmp(&b.0));
    let block: String = merged.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let names = merged
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    (block, names)
}

/// The parts of one signing, for checking against AWS's test suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The canonical request.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// The hex signature.
    pub signature: String,
    /// Headers to add to the request (`X-Amz-Date`, maybe `X-Amz-Security-Token` and
    /// `x-amz-content-sha256`, and `Authorization`).
    pub headers: Vec<(String, String)>,
}

/// Sign a request given as its parts: `headers` must include `host` (the authority as
/// sent) and every other header to sign.
pub fn sign_parts(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
    s: &Signer<'_>,
) -> Signature {
    let date = amz_date(s.time);
    let day = &date[..8];
    let payload = sha256_hex(body);
    let mut added = vec![("X-Amz-Date".to_string(), date.clone())];
    if s.sign_body {
        added.push(("x-amz-content-sha256".into(), payload.clone()));
    }
    let token = s
        .credentials
        .session_token
        .as_deref()
        .filter(|t| !t.is_empty());
    if let Some(t) = token.filter(|_| s.sign_token) {
        added.push(("X-Amz-Security-Token".into(), t.to_string()));
    }
    let all: Vec<(String, String)> = headers.iter().chain(added.iter()).cloned().collect();
    let (block, signed) = canonical_headers(&all);
    let canonical_request = format!(
        "{method}\n{}\n{}\n{block}\n{signed}\n{payload}",
        canonical_uri(path),
        canonical_query(query)
    );
    let scope = format!("{day}/{}/{}/aws4_request", s.region, s.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let mut key = hmac(
        format!("AWS4{}", s.credentials.secret_key).as_bytes(),
        day.as_bytes(),
    );
    for part in [s.region, s.service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    added.push((
        "Authorization".into(),
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            s.credentials.access_key
        ),
    ));
    if let Some(t) = token.filter(|_| !s.sign_token) {
        added.push(("X-Amz-Security-Token".into(), t.to_string()));
    }
    Signature {
        canonical_request,
        string_to_sign,
        signature,
        headers: added,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_encodings() {
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(uri_encode("a b/c~", false), "a%20b%2Fc~");
        assert_eq!(uri_encode("/a b/", true), "/a%20b/");
        assert_eq!(
            form_encode(&[
                ("Action".into(), "X".into()),
                ("D".into(), "Docker Machine".into())
            ]),
            "Action=X&D=Docker+Machine"
        );
        assert_eq!(percent_decode("%E1%88%B4x%zz"), "ሴx%zz");
    }

    #[test]
    fn s3_signs_the_payload_hash_and_never_prints_the_secret() {
        let creds = Credentials {
            access_key: "AKIDEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let signer = Signer {
            credentials: &creds,
            region: "us-east-1",
            service: "s3",
            time: 1_440_938_160,
            sign_body: true,
            sign_token: true,
        };
        let sig = sign_parts(
            "PUT",
            "/bucket/a/b",
            "",
            &[("host".into(), "127.0.0.1:5000".into())],
            b"x",
            &signer,
        );
        assert!(sig.canonical_request.contains(&sha256_hex(b"x")));
        let auth = &sig.headers.last().expect("authorization").1;
        assert!(
            auth.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date"),
            "{auth}"
        );
        assert!(!format!("{sig:?}{creds:?}").contains("EXAMPLEKEY"));
    }
}
