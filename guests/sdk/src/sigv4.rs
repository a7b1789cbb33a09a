//! AWS Signature Version 4 for guests (`dmw_guest::sigv4`): the shared `dmw-sigv4` crate
//! (also the host's, for its S3 store) and [`sign`], which signs a [`Request`] of
//! [`crate::http`].
//!
//! ```ignore
//! use dmw_guest::sigv4::{Credentials, sign};
//! let creds = Credentials { access_key: ak, secret_key: sk, session_token: None };
//! let req = sign(req, &creds, "us-east-1", "ec2", std::time::SystemTime::now())?;
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

pub use dmw_sigv4::*;

use crate::http::{Method, Request};
use crate::{Error, Result};

/// The authority of `url` as an HTTP client sends it in `Host` (no user info; the port
/// only when it is not the scheme's default), the path and the query.
fn split_url(url: &str) -> Result<(String, String, String)> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::InvalidInput(format!("not an absolute URL: {url:?}")))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest[..end].rsplit('@').next().unwrap_or_default();
    let host = match (scheme, authority.rsplit_once(':')) {
        ("http", Some((h, "80"))) | ("https", Some((h, "443"))) => h.to_string(),
        _ => authority.to_string(),
    }
    .to_ascii_lowercase();
    let rest = &rest[end..];
    let rest = rest.split('#').next().unwrap_or_default();
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = if path.is_empty() { "/" } else { path };
    Ok((host, path.to_string(), query.to_string()))
}

/// Sign `req` (every header it has, plus `host`) for `service` in `region` at `now`; the
/// signing headers are added. The secret never leaves this function.
pub fn sign(
    req: Request,
    credentials: &Credentials,
    region: &str,
    service: &str,
    now: SystemTime,
) -> Result<Request> {
    let time = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::Failed("the clock is before 1970: cannot sign the request".into()))?
        .as_secs();
    let (host, path, query) = split_url(&req.url)?;
    let mut headers = vec![("host".to_string(), host)];
    // Proxies and clients may rewrite these, and botocore-based verifiers (moto) never
    // sign them: leave them out, as AWS's SDKs do.
    headers.extend(
        req.headers
            .iter()
            .filter(|(n, _)| !UNSIGNED_HEADERS.iter().any(|u| n.eq_ignore_ascii_case(u)))
            .cloned(),
    );
    let method = match req.method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    };
    let signer = Signer {
        credentials,
        region,
        service,
        time,
        sign_body: false,
        sign_token: true,
    };
    let sig = sign_parts(method, &path, &query, &headers, &req.body, &signer);
    let mut req = req;
    req.headers.extend(sig.headers);
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_as_clients_send_them() {
        assert_eq!(
            split_url("http://127.0.0.1:5000/").ok(),
            Some(("127.0.0.1:5000".into(), "/".into(), String::new()))
        );
        assert_eq!(
            split_url("https://EC2.us-east-1.amazonaws.com:443?a=b").ok(),
            Some((
                "ec2.us-east-1.amazonaws.com".into(),
                "/".into(),
                "a=b".into()
            ))
        );
    }

    #[test]
    fn signs_requests_with_the_token_and_without_leaking_the_secret() {
        let creds = Credentials {
            access_key: "AKIDEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("tok".into()),
        };
        let req = Request::post("http://127.0.0.1:5000/")
            .header(
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .header("User-Agent", "dmw")
            .body(b"Action=DescribeRegions&Version=2016-11-15".to_vec());
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
        let signed = sign(req, &creds, "us-east-1", "ec2", t).expect("sign");
        let auth = signed.header_value("authorization").expect("auth");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
            ),
            "{auth}"
        );
        assert_eq!(signed.header_value("x-amz-security-token"), Some("tok"));
        assert!(!format!("{signed:?}{creds:?}").contains("EXAMPLEKEY"));
    }
}
