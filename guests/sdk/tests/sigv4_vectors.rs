//! `dmw_guest::sigv4` against AWS's own signing test suite (`tests/fixtures/aws-sigv4`):
//! the canonical request, the string to sign and the signature of every case must match.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;

use dmw_guest::sigv4::{Credentials, Signer, sign_parts};

/// `2015-08-30T12:36:00Z`, the suite's timestamp.
const SUITE_TIME: u64 = 1_440_938_160;

struct Case {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// `request.txt`: `METHOD TARGET HTTP/1.1`, `Name:value` lines, a blank line, the body.
fn parse_request(text: &str) -> Case {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let first = lines.next().expect("request line");
    let mut parts = first.splitn(2, ' ');
    let method = parts.next().expect("method").to_string();
    let target = parts
        .next()
        .expect("target")
        .trim_end_matches(" HTTP/1.1")
        .to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            (n.to_string(), v.to_string())
        })
        .collect();
    Case {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{dir:?}/{file}: {e}"))
}

#[test]
fn aws_signing_test_suite() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws-sigv4/v4");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 20, "{} cases", dirs.len());
    let mut checked = Vec::new();
    for dir in dirs {
        let ctx: serde_json::Value =
            serde_json::from_str(&read(&dir, "context.json")).expect("context");
        let c = &ctx["credentials"];
        let creds = Credentials {
            access_key: c["access_key_id"].as_str().expect("ak").into(),
            secret_key: c["secret_access_key"].as_str().expect("sk").into(),
            session_token: c["token"].as_str().map(str::to_string),
        };
        assert_eq!(ctx["timestamp"], "2015-08-30T12:36:00Z");
        assert_eq!(ctx["normalize"], true);
        let signer = Signer {
            credentials: &creds,
            region: ctx["region"].as_str().expect("region"),
            service: ctx["service"].as_str().expect("service"),
            time: SUITE_TIME,
            sign_body: ctx["sign_body"] == true,
            sign_token: ctx["omit_session_token"] != true,
        };
        let case = parse_request(&read(&dir, "request.txt"));
        let sig = sign_parts(
            &case.method,
            &case.path,
            &case.query,
            &case.headers,
            &case.body,
            &signer,
        );
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            sig.canonical_request,
            read(&dir, "header-canonical-request.txt"),
            "{name}: canonical request"
        );
        assert_eq!(
            sig.string_to_sign,
            read(&dir, "header-string-to-sign.txt"),
            "{name}: string to sign"
        );
        assert_eq!(
            sig.signature,
            read(&dir, "header-signature.txt").trim(),
            "{name}: signature"
        );
        checked.push(name);
    }
    assert!(checked.iter().any(|n| n == "post-x-www-form-urlencoded"));
}
