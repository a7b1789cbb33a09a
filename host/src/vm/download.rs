//! Downloads into dmw's cache (`<storage>/cache/images/downloads/<sha256 of the URL>/`),
//! done by the host for a plugin's `files.cached-download`: only to the hosts the plugin
//! declared (`http-host`), bounded in size and time, written to a temporary name and
//! renamed only once verified against a checksum (given, or the `SHA512SUMS` published
//! beside the file, as Debian does), and not downloaded again while the cached file and
//! its verified sum still match.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Empty};
use sha2::Digest;
use tokio::io::AsyncWriteExt;

/// Longest URL accepted.
pub const MAX_URL: usize = 2048;
/// Longest checksum spec accepted (a URL or `sha512:` and 128 hex digits).
pub const MAX_CHECKSUM_SPEC: usize = MAX_URL;
/// Largest file downloaded.
pub const MAX_SIZE: u64 = 20 << 30;
/// Largest checksum file read.
const MAX_SUMS: usize = 1 << 20;
/// Longest a whole download may take.
pub const MAX_TIME: Duration = Duration::from_secs(2 * 3600);
/// Longest wait for a connection or for the next bytes.
const IDLE: Duration = Duration::from_secs(60);
/// Most redirects followed (each target must be an allowed host too).
const MAX_REDIRECTS: usize = 5;
/// The folder under the image cache.
pub const DOWNLOADS: &str = "downloads";

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    /// SHA-256 (64 hex digits).
    Sha256,
    /// SHA-512 (128 hex digits).
    Sha512,
}

impl Algo {
    /// The name used in specs (`sha256`, `sha512`).
    pub fn name(self) -> &'static str {
        match self {
            Algo::Sha256 => "sha256",
            Algo::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algo::Sha256 => 64,
            Algo::Sha512 => 128,
        }
    }
}

/// The sum a file must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sum {
    /// Its algorithm.
    pub algo: Algo,
    /// Lower-case hex digits.
    pub hex: String,
}

impl std::fmt::Display for Sum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.algo.name(), self.hex)
    }
}

/// Where the expected sum comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksumSpec {
    /// Given directly.
    Sum(Sum),
    /// A checksum file (`HEX  NAME` lines) at this URL, naming the file.
    File(Uri),
    /// `SHA512SUMS` in the same directory as the file.
    Beside,
}

/// Check a URL crossing the plugin boundary: http or https, a host, at most [`MAX_URL`]
/// characters, no whitespace or control characters.
pub fn check_url(url: &str) -> Result<Uri> {
    if url.is_empty() || url.len() > MAX_URL {
        bail!("the URL is empty or longer than {MAX_URL} characters");
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        bail!("the URL has whitespace or control characters");
    }
    let uri: Uri = url.parse().map_err(|_| anyhow!("{url} is not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => bail!("{url} is not an http or https URL"),
    }
    if uri.host().is_none_or(str::is_empty) {
        bail!("{url} names no host");
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        bail!("{url} carries user information; dmw does not send credentials in downloads");
    }
    Ok(uri)
}

/// Parse a checksum spec: `sha512:HEX`, `sha256:HEX`, the URL of a checksum file, or
/// empty (the `SHA512SUMS` beside the file).
pub fn parse_checksum(spec: &str) -> Result<ChecksumSpec> {
    let spec = spec.trim();
    if spec.len() > MAX_CHECKSUM_SPEC {
        bail!("the checksum is longer than {MAX_CHECKSUM_SPEC} characters");
    }
    if spec.is_empty() {
        return Ok(ChecksumSpec::Beside);
    }
    for algo in [Algo::Sha512, Algo::Sha256] {
        if let Some(hex) = spec.strip_prefix(&format!("{}:", algo.name())) {
            return Ok(ChecksumSpec::Sum(parse_hex(algo, hex)?));
        }
    }
    if spec.starts_with("http://") || spec.starts_with("https://") {
        return Ok(ChecksumSpec::File(check_url(spec)?));
    }
    bail!(
        "the checksum {:?} is not sha512:HEX, sha256:HEX or the URL of a checksum file",
        crate::sanitize::plugin_text(spec, 80)
    )
}

fn parse_hex(algo: Algo, hex: &str) -> Result<Sum> {
    if hex.len() != algo.hex_len() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("a {} sum is {} hex digits", algo.name(), algo.hex_len());
    }
    Ok(Sum {
        algo,
        hex: hex.to_ascii_lowercase(),
    })
}

/// The sum of `name` in a checksum file (`HEX  NAME` or `HEX *NAME` lines, as
/// `sha512sum` writes them; the algorithm from the number of digits).
pub fn sum_in_file(text: &str, name: &str) -> Option<Sum> {
    text.lines().find_map(|line| {
        let (hex, rest) = line.trim().split_once(char::is_whitespace)?;
        let file = rest.trim_start().trim_start_matches('*');
        let file = file.strip_prefix("./").unwrap_or(file);
        if file != name {
            return None;
        }
        [Algo::Sha512, Algo::Sha256]
            .into_iter()
            .find_map(|a| parse_hex(a, hex).ok())
    })
}

/// The last path segment of `uri`, as a safe file name (`image` when it has none).
pub fn file_name(uri: &Uri) -> String {
    let last = uri.path().rsplit('/').next().unwrap_or_default();
    let safe: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(100)
        .collect();
    if safe.is_empty() || safe.starts_with('.') {
        "image".into()
    } else {
        safe
    }
}

/// The folder a URL's download is kept in.
pub fn folder(cache: &Path, uri: &Uri) -> PathBuf {
    cache.join(DOWNLOADS).join(hex::encode(sha2::Sha256::digest(
        uri.to_string().as_bytes(),
    )))
}

/// Whether `uri`'s host (and port) is one of `allowed` (resolved `http-host` patterns).
pub fn check_allowed(allowed: &[String], uri: &Uri) -> Result<()> {
    let tls = uri.scheme_str() == Some("https");
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if crate::capabilities::http::allowed(allowed, uri.scheme_str().unwrap_or_default(), bare, port)
    {
        Ok(())
    } else {
        bail!(
            "the download from host {host} (port {port}) is refused: the plugin did not declare it (http-host patterns allowed here: {})",
            if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            }
        )
    }
}

/// What a download reports as it goes.
pub type Progress<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// Download `url` into the cache (once), verified against `checksum`; the cached file.
pub async fn cached_download(
    cache: &Path,
    url: &str,
    checksum: &str,
    allowed: &[String],
    progress: Progress<'_>,
) -> Result<PathBuf> {
    let uri = check_url(url)?;
    let spec = parse_checksum(checksum)?;
    check_allowed(allowed, &uri)?;
    let name = file_name(&uri);
    let expected = match spec {
        ChecksumSpec::Sum(sum) => sum,
        ChecksumSpec::File(sums) => sum_from(&sums, &name, allowed).await?,
        ChecksumSpec::Beside => {
            let text = uri.to_string();
            let dir = &text[..text.rfind('/').map_or(text.len(), |i| i + 1)];
            let sums: Uri = format!("{dir}SHA512SUMS")
                .parse()
                .map_err(|_| anyhow!("no checksum URL beside {url}"))?;
            sum_from(&sums, &name, allowed).await?
        }
    };
    let dir = folder(cache, &uri);
    let target = dir.join(&name);
    let record = dir.join(format!("{name}.sum"));
    if target.is_file()
        && std::fs::read_to_string(&record).is_ok_and(|r| r.trim() == expected.to_string())
    {
        progress(&format!("{url} is cached in {}", target.display()));
        return Ok(target);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let part = dir.join(format!(".{name}.part-{}", std::process::id()));
    let result = tokio::time::timeout(
        MAX_TIME,
        fetch_to(&uri, &part, &expected, allowed, progress),
    )
    .await
    .unwrap_or_else(|_| Err(anyhow!("took longer than {} s", MAX_TIME.as_secs())));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&part);
        return Err(e.context(format!("download of {url}")));
    }
    std::fs::rename(&part, &target)
        .with_context(|| format!("cannot move the download into {}", target.display()))?;
    std::fs::write(&record, format!("{expected}\n"))
        .with_context(|| format!("cannot write {}", record.display()))?;
    Ok(target)
}

/// The sum of `name` in the checksum file at `sums`.
async fn sum_from(sums: &Uri, name: &str, allowed: &[String]) -> Result<Sum> {
    check_allowed(allowed, sums)?;
    let mut response = get(sums, allowed).await?;
    let mut body = Vec::new();
    while let Some(frame) = tokio::time::timeout(IDLE, response.frame())
        .await
        .map_err(|_| anyhow!("{sums}: no data for {} s", IDLE.as_secs()))?
    {
        if let Ok(data) = frame?.into_data() {
            body.extend_from_slice(&data);
            if body.len() > MAX_SUMS {
                bail!("the checksum file {sums} is larger than {MAX_SUMS} bytes");
            }
        }
    }
    let text = String::from_utf8_lossy(&body);
    sum_in_file(&text, name)
        .ok_or_else(|| anyhow!("the checksum file {sums} has no sum for {name}"))
}

/// Stream `uri` into `part`, hashing, bounded; fails (naming both sums) on a mismatch.
async fn fetch_to(
    uri: &Uri,
    part: &Path,
    expected: &Sum,
    allowed: &[String],
    progress: Progress<'_>,
) -> Result<()> {
    let mut response = get(uri, allowed).await?;
    let total = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if total.is_some_and(|t| t > MAX_SIZE) {
        bail!("the file is larger than {} GiB", MAX_SIZE >> 30);
    }
    progress(&format!(
        "downloading {uri}{}",
        total
            .map(|t| format!(" ({} MiB)", t >> 20))
            .unwrap_or_default()
    ));
    let mut file = tokio::fs::File::create(part)
        .await
        .with_context(|| format!("cannot create {}", part.display()))?;
    let mut sha256 = sha2::Sha256::new();
    let mut sha512 = sha2::Sha512::new();
    let mut done: u64 = 0;
    let start = Instant::now();
    let mut last = Instant::now();
    let mut bar = Bar::new(total);
    while let Some(frame) = tokio::time::timeout(IDLE, response.frame())
        .await
        .map_err(|_| anyhow!("no data for {} s", IDLE.as_secs()))?
    {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        done += data.len() as u64;
        if done > MAX_SIZE || total.is_some_and(|t| done > t) {
            bail!(
                "the server sent more than announced (or more than {} GiB)",
                MAX_SIZE >> 30
            );
        }
        match expected.algo {
            Algo::Sha256 => sha256.update(&data),
            Algo::Sha512 => sha512.update(&data),
        }
        file.write_all(&data)
            .await
            .context("cannot write the download")?;
        if last.elapsed() >= bar.every() {
            last = Instant::now();
            bar.show(done, start.elapsed(), progress);
        }
    }
    if total.is_some_and(|t| done != t) {
        bail!(
            "the connection ended after {done} of {} bytes",
            total.unwrap_or_default()
        );
    }
    file.flush().await?;
    file.sync_all().await?;
    bar.finish(done, start.elapsed(), progress);
    let got = match expected.algo {
        Algo::Sha256 => hex::encode(sha256.finalize()),
        Algo::Sha512 => hex::encode(sha512.finalize()),
    };
    if got != expected.hex {
        bail!(
            "checksum mismatch: expected {expected}, the download has {}:{got}; the file was deleted",
            expected.algo.name()
        );
    }
    progress(&format!("verified {expected}"));
    Ok(())
}

/// The progress display: a bar redrawn in place on a terminal, plain lines otherwise.
struct Bar {
    total: Option<u64>,
    terminal: bool,
}

impl Bar {
    fn new(total: Option<u64>) -> Bar {
        use std::io::IsTerminal;
        Bar {
            total,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn every(&self) -> Duration {
        if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        }
    }

    fn line(&self, done: u64, elapsed: Duration) -> String {
        let rate = done as f64 / elapsed.as_secs_f64().max(0.001) / f64::from(1 << 20);
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        match self.total {
            Some(t) if t > 0 => {
                let pct = done.saturating_mul(100) / t;
                let filled = (pct / 5) as usize;
                format!(
                    "[{}{}] {:.1}/{:.1} MiB {pct}% {rate:.1} MiB/s",
                    "#".repeat(filled),
                    " ".repeat(20 - filled.min(20)),
                    mib(done),
                    mib(t)
                )
            }
            _ => format!("{:.1} MiB {rate:.1} MiB/s", mib(done)),
        }
    }

    fn show(&mut self, done: u64, elapsed: Duration, progress: Progress<'_>) {
        let line = self.line(done, elapsed);
        if self.terminal {
            eprint!("\r{line}\x1b[K");
        } else {
            progress(&line);
        }
    }

    fn finish(&mut self, done: u64, elapsed: Duration, progress: Progress<'_>) {
        if self.terminal {
            eprint!("\r\x1b[K");
        }
        progress(&self.line(done, elapsed));
    }
}

/// GET `uri` (following redirects to allowed hosts only); the response, status 200.
async fn get(uri: &Uri, allowed: &[String]) -> Result<http::Response<hyper::body::Incoming>> {
    let mut uri = uri.clone();
    for _ in 0..=MAX_REDIRECTS {
        check_allowed(allowed, &uri)?;
        let response = tokio::time::timeout(IDLE, request(&uri))
            .await
            .map_err(|_| anyhow!("{uri}: no answer within {} s", IDLE.as_secs()))??;
        let status = response.status();
        if status.is_redirection()
            && let Some(location) = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
        {
            let next = if location.starts_with('/') {
                format!(
                    "{}://{}{location}",
                    uri.scheme_str().unwrap_or("https"),
                    uri.authority().map(|a| a.as_str()).unwrap_or_default()
                )
            } else {
                location.to_string()
            };
            uri = check_url(&next).with_context(|| format!("{uri} redirects"))?;
            continue;
        }
        if status != http::StatusCode::OK {
            bail!("{uri} answered {status}");
        }
        return Ok(response);
    }
    bail!("more than {MAX_REDIRECTS} redirects")
}

/// One GET over a fresh connection, through dmw's HTTP sender (the system's roots, the
/// proxies the environment names).
async fn request(uri: &Uri) -> Result<http::Response<hyper::body::Incoming>> {
    let sender = crate::capabilities::http::Sender::system()?;
    let opened = sender
        .open::<Empty<Bytes>>(uri, crate::capabilities::http::CONNECT_TIMEOUT)
        .await
        .map_err(|e| anyhow!("cannot connect to {uri}: {e}"))?;
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::USER_AGENT,
        http::HeaderValue::from_static(concat!("dmw/", env!("CARGO_PKG_VERSION"))),
    );
    let request = opened
        .request(&http::Method::GET, &headers, Empty::new())
        .map_err(|e| anyhow!("{uri}: {e}"))?;
    let mut send = opened.send;
    Ok(send.send_request(request).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_specs_parse() {
        let h512 = "A".repeat(128);
        assert_eq!(
            parse_checksum(&format!("sha512:{h512}")).expect("512"),
            ChecksumSpec::Sum(Sum {
                algo: Algo::Sha512,
                hex: "a".repeat(128)
            })
        );
        assert!(matches!(
            parse_checksum(&format!("sha256:{}", "0".repeat(64))),
            Ok(ChecksumSpec::Sum(Sum {
                algo: Algo::Sha256,
                ..
            }))
        ));
        assert_eq!(parse_checksum("").expect("empty"), ChecksumSpec::Beside);
        assert!(matches!(
            parse_checksum("https://x.example/SHA512SUMS"),
            Ok(ChecksumSpec::File(_))
        ));
        for bad in [
            "sha512:abc".to_string(),
            format!("sha256:{}", "g".repeat(64)),
            format!("sha256:{}", "0".repeat(128)),
            "md5:00".into(),
            "ftp://x/SUMS".into(),
            "https://x/a b".into(),
            format!("https://x/{}", "a".repeat(MAX_URL)),
        ] {
            assert!(parse_checksum(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sums_files_parse() {
        let a = "a".repeat(128);
        let b = "b".repeat(64);
        let text = format!(
            "{a}  debian-12-genericcloud-amd64.json\n{a}  debian-12-genericcloud-amd64.qcow2\n{b} *other.raw\nnonsense\n"
        );
        assert_eq!(
            sum_in_file(&text, "debian-12-genericcloud-amd64.qcow2"),
            Some(Sum {
                algo: Algo::Sha512,
                hex: a.clone()
            })
        );
        assert_eq!(
            sum_in_file(&text, "other.raw").map(|s| s.algo),
            Some(Algo::Sha256)
        );
        assert_eq!(sum_in_file(&text, "debian-12-genericcloud-amd64"), None);
        assert_eq!(sum_in_file(&text, "missing.qcow2"), None);
        assert_eq!(sum_in_file("zz  x.qcow2", "x.qcow2"), None);
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://cloud.debian.org/images/x.qcow2").is_ok());
        for bad in [
            "",
            "file:///etc/passwd",
            "https://",
            "http://a/\u{7}",
            "http://user:pw@host/x",
            "https://a/b c",
        ] {
            assert!(check_url(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            file_name(&"https://h/a/disk.qcow2?x=1".parse().expect("uri")),
            "disk.qcow2"
        );
        assert_eq!(file_name(&"https://h/".parse().expect("uri")), "image");
        assert_eq!(file_name(&"https://h/..".parse().expect("uri")), "image");
    }

    #[test]
    fn only_declared_hosts() {
        let allowed = vec!["cloud.debian.org".to_string(), "127.0.0.1:8080".to_string()];
        assert!(check_allowed(&allowed, &"https://cloud.debian.org/x".parse().expect("u")).is_ok());
        assert!(check_allowed(&allowed, &"http://127.0.0.1:8080/x".parse().expect("u")).is_ok());
        let e = check_allowed(&allowed, &"https://evil.example/x".parse().expect("u"))
            .expect_err("refused");
        assert!(format!("{e}").contains("evil.example"), "{e}");
        assert!(check_allowed(&[], &"https://cloud.debian.org/x".parse().expect("u")).is_err());
    }

    /// A one-shot-per-connection file server on 127.0.0.1 that counts GETs per path.
    async fn serve(
        files: Vec<(&'static str, Vec<u8>)>,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                log.lock().expect("lock").push(path.clone());
                let body = files
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, b)| b.clone());
                let reply = match body {
                    Some(b) => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            b.len()
                        )
                        .into_bytes();
                        r.extend(b);
                        r
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = s.write_all(&reply).await;
            }
        });
        (format!("127.0.0.1:{}", addr.port()), seen)
    }

    #[tokio::test]
    async fn downloads_verify_cache_and_delete_on_mismatch() {
        let disk = vec![7u8; 300_000];
        let sum = hex::encode(sha2::Sha512::digest(&disk));
        let sums = format!("{sum}  disk.qcow2\n{}  bad.qcow2\n", "0".repeat(128));
        let (host, seen) = serve(vec![
            ("/d/disk.qcow2", disk.clone()),
            ("/d/bad.qcow2", disk.clone()),
            ("/d/SHA512SUMS", sums.into_bytes()),
        ])
        .await;
        let cache = tempfile::tempdir().expect("tmp");
        let allowed = vec![host.clone()];
        let quiet = |_: &str| {};
        let url = format!("http://{host}/d/disk.qcow2");
        let got = cached_download(cache.path(), &url, "", &allowed, &quiet)
            .await
            .expect("download");
        assert_eq!(std::fs::read(&got).expect("read"), disk);
        let again = cached_download(cache.path(), &url, "", &allowed, &quiet)
            .await
            .expect("cached");
        assert_eq!(again, got);
        let gets = |p: &str| {
            seen.lock()
                .expect("lock")
                .iter()
                .filter(|s| *s == p)
                .count()
        };
        assert_eq!(gets("/d/disk.qcow2"), 1, "the second use hits the cache");
        // A given sum skips the checksum file.
        cached_download(
            cache.path(),
            &url,
            &format!("sha512:{sum}"),
            &allowed,
            &quiet,
        )
        .await
        .expect("given sum");
        assert_eq!(gets("/d/disk.qcow2"), 1);
        // A mismatch names both sums and leaves nothing.
        let bad = format!("http://{host}/d/bad.qcow2");
        let e = cached_download(cache.path(), &bad, "", &allowed, &quiet)
            .await
            .expect_err("mismatch");
        let text = format!("{e:#}");
        assert!(
            text.contains(&"0".repeat(128)) && text.contains(&sum),
            "{text}"
        );
        let folder = folder(cache.path(), &bad.parse().expect("uri"));
        let left: Vec<_> = std::fs::read_dir(&folder).expect("dir").flatten().collect();
        assert!(left.is_empty(), "{left:?}");
        // An undeclared host is refused before any connection.
        let e = cached_download(cache.path(), &url, "", &["cloud.debian.org".into()], &quiet)
            .await
            .expect_err("refused");
        assert!(format!("{e:#}").contains("127.0.0.1"), "{e:#}");
    }
}
