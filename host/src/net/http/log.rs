//! What the `http` capability logs of a request: its URL and headers, credentials redacted.

use http::{HeaderMap, Uri};

/// Query parameter names whose values are secrets in logged URLs.
const SECRET_QUERY_WORDS: &[&str] = &[
    "token",
    "key",
    "secret",
    "password",
    "signature",
    "credential",
    "auth",
    "sig",
];

/// `url` as logged: query values of secret-looking names replaced by `<redacted>`, user
/// info dropped.
pub fn loggable_url(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let authority = uri
        .authority()
        .map(|a| {
            a.as_str()
                .rsplit('@')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default();
    let mut out = format!("{scheme}://{authority}{}", uri.path());
    if let Some(q) = uri.query() {
        let parts: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _))
                    if SECRET_QUERY_WORDS
                        .iter()
                        .any(|w| k.to_ascii_lowercase().contains(w)) =>
                {
                    format!("{k}=<redacted>")
                }
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&parts.join("&"));
    }
    crate::text::sanitize::plugin_text(&out, 2048)
}

/// Header names whose values never appear in logs.
pub(super) const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-auth-token",
    "x-subject-token",
    "cookie",
    "set-cookie",
    "x-amz-security-token",
];

/// Headers as logged at debug level: credentials redacted.
pub fn loggable_headers(headers: &HeaderMap) -> String {
    let text = headers
        .iter()
        .map(|(n, v)| {
            let value = if SECRET_HEADERS.contains(&n.as_str()) {
                crate::text::report::REDACTED.to_string()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            format!("{n}: {value}")
        })
        .collect::<Vec<_>>()
        .join("; ");
    // Header values come from the plugin and from the server: inert for a terminal, bounded.
    crate::text::sanitize::plugin_text(&text, 8192)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn logs_never_show_credentials() {
        let uri: Uri = "https://u:p@api.test/v2/x?name=a&api_key=SECRET&X-Amz-Signature=S"
            .parse()
            .expect("uri");
        let shown = loggable_url(&uri);
        assert_eq!(
            shown,
            "https://api.test/v2/x?name=a&api_key=<redacted>&X-Amz-Signature=<redacted>"
        );
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer SECRET"));
        h.insert("x-auth-token", HeaderValue::from_static("SECRET"));
        h.insert("accept", HeaderValue::from_static("application/json"));
        let text = loggable_headers(&h);
        assert!(
            !text.contains("SECRET") && text.contains("accept: application/json"),
            "{text}"
        );
        // A hostile server's header value cannot reorder or recolour the terminal.
        let mut h = HeaderMap::new();
        let bidi = HeaderValue::from_bytes("x\u{202e}y\u{9b}31m".as_bytes()).expect("value");
        h.insert("x-evil", bidi);
        let text = loggable_headers(&h);
        assert!(
            !text.contains('\u{202e}') && !text.contains('\u{9b}'),
            "{text:?}"
        );
    }
}
