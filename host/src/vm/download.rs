//! Downloads into dmw's cache (`<storage>/cache/images/downloads/<sha256 of the URL>/`),
//! done by the host for a plugin's `files.cached-download`: only to the hosts the plugin
//! declared (`http-host`), bounded in size and time, written to a temporary name and
//! renamed only once verified against a checksum (given, or the `SHA512SUMS` published
//! beside the file, as Debian does), and not downloaded again while the cached file and
//! its verified sum still match.
//!
//! A download (and a cached file, each time it is used) is also checked to be a raw or
//! plain qcow2 image ([`crate::vm::qcow2`]): one whose header names a backing file or an
//! external data file is deleted and refused.
//!
//! The cache has a total cap ([`CACHE_QUOTA_VAR`], default [`DEFAULT_CACHE_QUOTA`]): after
//! each download the least recently used downloads are evicted until the cache fits,
//! never one a machine's disk is made over (its overlay names it as backing file).
//! `dmw image prune` ([`prune`]) removes every download no machine uses.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Empty};
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use crate::net::http::Sender;

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
/// The environment variable that sets the download cache's total cap.
pub const CACHE_QUOTA_VAR: &str = "DMW_IMAGE_CACHE_QUOTA";
/// The download cache's cap when [`CACHE_QUOTA_VAR`] is not set: 32 GiB.
pub const DEFAULT_CACHE_QUOTA: u64 = 32 << 30;

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
        crate::text::sanitize::plugin_text(spec, 80)
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

/// Whether `uri`'s scheme, host and port are allowed by the plugin's `http` sender (its
/// resolved `http-host` patterns; none without an `http` grant). The address the host
/// resolves to is checked when the sender connects.
pub fn check_allowed(sender: Option<&Sender>, uri: &Uri) -> Result<()> {
    let tls = uri.scheme_str() == Some("https");
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let scheme = uri.scheme_str().unwrap_or_default();
    let allowed = sender.map(|h| h.settings().hosts.as_slice()).unwrap_or(&[]);
    if sender.is_some_and(|h| h.allows(scheme, &bare.to_ascii_lowercase(), port)) {
        Ok(())
    } else {
        let why = crate::net::http::scheme_note(allowed, scheme, bare, port)
            .unwrap_or_else(|| "the plugin did not declare it".to_string());
        bail!(
            "the download from host {host} (port {port}) is refused: {why} (http-host patterns allowed here: {})",
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

/// Download `url` into the cache (once), verified against `checksum` and checked to name
/// no file outside it ([`crate::vm::qcow2`]); the cached file. `machines` (the store's
/// machines directory) tells which cached images machines use: those are never evicted.
pub async fn cached_download(
    cache: &Path,
    url: &str,
    checksum: &str,
    sender: Option<&Sender>,
    machines: Option<&Path>,
    progress: Progress<'_>,
) -> Result<PathBuf> {
    let uri = check_url(url)?;
    let spec = parse_checksum(checksum)?;
    check_allowed(sender, &uri)?;
    let quota = crate::sandbox::quota::env_size(CACHE_QUOTA_VAR, DEFAULT_CACHE_QUOTA)?;
    let name = file_name(&uri);
    let expected = match spec {
        ChecksumSpec::Sum(sum) => sum,
        ChecksumSpec::File(sums) => sum_from(&sums, &name, sender).await?,
        ChecksumSpec::Beside => {
            let text = uri.to_string();
            let dir = &text[..text.rfind('/').map_or(text.len(), |i| i + 1)];
            let sums: Uri = format!("{dir}SHA512SUMS")
                .parse()
                .map_err(|_| anyhow!("no checksum URL beside {url}"))?;
            sum_from(&sums, &name, sender).await?
        }
    };
    let dir = folder(cache, &uri);
    let target = dir.join(&name);
    let record = dir.join(format!("{name}.sum"));
    if target.is_file()
        && std::fs::read_to_string(&record).is_ok_and(|r| r.trim() == expected.to_string())
    {
        if let Err(e) = crate::vm::qcow2::check(&target) {
            let _ = std::fs::remove_dir_all(&dir);
            bail!(
                "the cached image of {url} is refused: {e:#}; it was deleted from the cache. Use an image without a backing file (`qemu-img convert -O qcow2 IN OUT` makes a standalone copy)"
            );
        }
        touch(&dir);
        progress(&format!("{url} is cached in {}", target.display()));
        return Ok(target);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let part = dir.join(format!(".{name}.part-{}", std::process::id()));
    let result = tokio::time::timeout(
        MAX_TIME,
        fetch_to(&uri, &part, &expected, sender, quota, progress),
    )
    .await
    .unwrap_or_else(|_| Err(anyhow!("took longer than {} s", MAX_TIME.as_secs())));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&part);
        return Err(e.context(format!("download of {url}")));
    }
    if let Err(e) = crate::vm::qcow2::check(&part) {
        let _ = std::fs::remove_file(&part);
        bail!(
            "the image {url} is refused: {e:#}; the download was deleted. Use an image without a backing file (`qemu-img convert -O qcow2 IN OUT` makes a standalone copy)"
        );
    }
    progress(&format!("verified {expected}"));
    std::fs::rename(&part, &target)
        .with_context(|| format!("cannot move the download into {}", target.display()))?;
    crate::state::store::write_private(&record, format!("{expected}\n").as_bytes())?;
    touch(&dir);
    match trim(cache, &dir, quota, machines) {
        Ok(evicted) => {
            for e in evicted {
                progress(&format!(
                    "evicted {} ({}, least recently used) from the image cache ({CACHE_QUOTA_VAR}={})",
                    e.file.as_deref().unwrap_or(&e.dir).display(),
                    crate::sandbox::quota::show_size(e.bytes),
                    crate::sandbox::quota::show_size(quota)
                ));
            }
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e.context(format!("download of {url}: the download was deleted")));
        }
    }
    Ok(target)
}

/// Mark a cache folder used now (its modification time orders eviction).
fn touch(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.set_modified(std::time::SystemTime::now());
    }
}

/// One download in the cache.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its folder (`downloads/<sha256 of the URL>`).
    pub dir: PathBuf,
    /// The image in it, if any.
    pub file: Option<PathBuf>,
    /// Bytes on disk.
    pub bytes: u64,
    /// When it was last used.
    pub used: std::time::SystemTime,
}

/// The downloads in the cache, least recently used first.
pub fn entries(cache: &Path) -> Vec<Entry> {
    let Ok(read) = std::fs::read_dir(cache.join(DOWNLOADS)) else {
        return Vec::new();
    };
    let mut found: Vec<Entry> = read
        .flatten()
        .filter_map(|e| {
            let meta = e.path().symlink_metadata().ok()?;
            if !meta.is_dir() {
                return None;
            }
            let dir = e.path();
            let bytes = crate::sandbox::quota::usage(&dir).ok()?.bytes;
            let file = std::fs::read_dir(&dir).ok().and_then(|r| {
                r.flatten().map(|f| f.path()).find(|p| {
                    let n = p.file_name().unwrap_or_default().to_string_lossy();
                    !n.starts_with('.') && !n.ends_with(".sum")
                })
            });
            Some(Entry {
                dir,
                file,
                bytes,
                used: meta.modified().ok()?,
            })
        })
        .collect();
    found.sort_by_key(|e| e.used);
    found
}

/// The backing files the machines' disks name (each file directly in a machine's `vm/`
/// directory, or in its `driver/` directory for machines made before the `vm` capability,
/// that is a qcow2 with a backing file; at most 64 per directory).
pub fn in_use(machines: &Path) -> Vec<PathBuf> {
    use crate::state::store::layout::{DRIVER_DIR, VM_DIR};
    let Ok(read) = std::fs::read_dir(machines) else {
        return Vec::new();
    };
    let mut used = Vec::new();
    for m in read.flatten() {
        for dir in [VM_DIR, DRIVER_DIR] {
            let Ok(files) = std::fs::read_dir(m.path().join(dir)) else {
                continue;
            };
            for f in files.flatten().take(64) {
                if let Some(b) = crate::vm::qcow2::backing_file(&f.path()) {
                    used.push(PathBuf::from(b));
                }
            }
        }
    }
    used
}

/// Evict the least recently used downloads (not `keep`, not one a machine uses) until the
/// cache fits `quota`; the evicted. Fails, naming [`CACHE_QUOTA_VAR`], when it cannot fit.
fn trim(cache: &Path, keep: &Path, quota: u64, machines: Option<&Path>) -> Result<Vec<Entry>> {
    use crate::sandbox::quota::show_size;
    let all = entries(cache);
    let mut total: u64 = all.iter().map(|e| e.bytes).sum();
    if total <= quota {
        return Ok(Vec::new());
    }
    let used = machines.map(in_use).unwrap_or_default();
    let mut evicted = Vec::new();
    for e in all {
        if total <= quota {
            break;
        }
        if e.dir == keep || used.iter().any(|u| u.starts_with(&e.dir)) {
            continue;
        }
        std::fs::remove_dir_all(&e.dir)
            .with_context(|| format!("cannot evict {} from the image cache", e.dir.display()))?;
        total = total.saturating_sub(e.bytes);
        evicted.push(e);
    }
    if total > quota {
        bail!(
            "the image cache {} would hold {}, over its cap of {} ({CACHE_QUOTA_VAR}), and what is left is used by machines or is this download; raise {CACHE_QUOTA_VAR} (e.g. {CACHE_QUOTA_VAR}={}G) or remove machines",
            cache.join(DOWNLOADS).display(),
            show_size(total),
            show_size(quota),
            (quota >> 30).saturating_mul(2).max(1)
        );
    }
    Ok(evicted)
}

/// What [`prune`] did.
#[derive(Debug, Default)]
pub struct Pruned {
    /// The downloads removed.
    pub removed: Vec<Entry>,
    /// The downloads kept because a machine's disk is made over them.
    pub kept: Vec<Entry>,
}

/// Remove every download from the cache but those a machine uses (`machines`: the
/// store's machines directory).
pub fn prune(cache: &Path, machines: &Path) -> Result<Pruned> {
    let used = in_use(machines);
    let mut done = Pruned::default();
    for e in entries(cache) {
        if used.iter().any(|u| u.starts_with(&e.dir)) {
            done.kept.push(e);
            continue;
        }
        std::fs::remove_dir_all(&e.dir)
            .with_context(|| format!("cannot remove {}", e.dir.display()))?;
        done.removed.push(e);
    }
    Ok(done)
}

/// The sum of `name` in the checksum file at `sums`.
async fn sum_from(sums: &Uri, name: &str, sender: Option<&Sender>) -> Result<Sum> {
    check_allowed(sender, sums)?;
    let mut response = get(sums, sender).await?;
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
    sender: Option<&Sender>,
    quota: u64,
    progress: Progress<'_>,
) -> Result<()> {
    use crate::sandbox::quota::show_size;
    let mut response = get(uri, sender).await?;
    let total = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if total.is_some_and(|t| t > MAX_SIZE) {
        bail!("the file is larger than {} GiB", MAX_SIZE >> 30);
    }
    let too_big = || {
        anyhow!(
            "the file is larger than the image cache's cap of {} ({CACHE_QUOTA_VAR}); raise it, e.g. {CACHE_QUOTA_VAR}={}G",
            show_size(quota),
            (quota >> 30).saturating_mul(2).max(1)
        )
    };
    if total.is_some_and(|t| t > quota) {
        return Err(too_big());
    }
    progress(&format!(
        "downloading {uri}{}",
        total
            .map(|t| format!(" ({} MiB)", t >> 20))
            .unwrap_or_default()
    ));
    // A fresh file: never an existing name, never through a link.
    let _ = std::fs::remove_file(part);
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o644)
            .open(part)
            .with_context(|| format!("cannot create {}", part.display()))?
    };
    let mut file = tokio::fs::File::from_std(file);
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
        if done > quota {
            return Err(too_big());
        }
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

/// GET `uri` (following redirects to allowed hosts only, never from https to plain http);
/// the response, status 200.
async fn get(uri: &Uri, sender: Option<&Sender>) -> Result<http::Response<hyper::body::Incoming>> {
    let mut uri = uri.clone();
    for _ in 0..=MAX_REDIRECTS {
        check_allowed(sender, &uri)?;
        let Some(sender) = sender else {
            bail!("{uri}: the plugin may not reach any host");
        };
        let response = tokio::time::timeout(IDLE, request(sender, &uri))
            .await
            .map_err(|_| anyhow!("{uri}: no answer within {} s", IDLE.as_secs()))??;
        let status = response.status();
        if status.is_redirection()
            && let Some(location) = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
        {
            let next =
                crate::net::http::next_hop(&uri, location).map_err(|why| anyhow!("dmw {why}"))?;
            uri = check_url(&next.to_string()).with_context(|| format!("{uri} redirects"))?;
            continue;
        }
        if status != http::StatusCode::OK {
            bail!("{uri} answered {status}");
        }
        return Ok(response);
    }
    bail!("more than {MAX_REDIRECTS} redirects")
}

/// One GET over a fresh connection, through the plugin's HTTP sender (its TLS settings, the
/// proxies the environment names, and the address check).
async fn request(sender: &Sender, uri: &Uri) -> Result<http::Response<hyper::body::Incoming>> {
    let opened = sender
        .open::<Empty<Bytes>>(uri, crate::net::http::CONNECT_TIMEOUT)
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
        let allowed = sender(&["cloud.debian.org", "127.0.0.1:8080"]);
        let allowed = Some(&allowed);
        assert!(check_allowed(allowed, &"https://cloud.debian.org/x".parse().expect("u")).is_ok());
        assert!(check_allowed(allowed, &"http://127.0.0.1:8080/x".parse().expect("u")).is_ok());
        let e = check_allowed(allowed, &"https://evil.example/x".parse().expect("u"))
            .expect_err("refused");
        assert!(format!("{e}").contains("evil.example"), "{e}");
        // A pattern without a port: https only.
        let e = check_allowed(allowed, &"http://cloud.debian.org/x".parse().expect("u"))
            .expect_err("plain http");
        assert!(
            format!("{e}").contains("allows https on port 443 only"),
            "{e}"
        );
        assert!(check_allowed(None, &"https://cloud.debian.org/x".parse().expect("u")).is_err());
    }

    /// A sender allowing `hosts` (patterns as declared).
    fn sender(hosts: &[&str]) -> Sender {
        Sender::new(
            crate::net::http::HttpSettings {
                hosts: hosts.iter().map(|h| h.to_string()).collect(),
                ..Default::default()
            },
            std::path::Path::new("/nonexistent/dmw-store"),
        )
        .expect("sender")
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
        let allowed = sender(&[&host]);
        let allowed = Some(&allowed);
        let quiet = |_: &str| {};
        let url = format!("http://{host}/d/disk.qcow2");
        let got = cached_download(cache.path(), &url, "", allowed, None, &quiet)
            .await
            .expect("download");
        assert_eq!(std::fs::read(&got).expect("read"), disk);
        let again = cached_download(cache.path(), &url, "", allowed, None, &quiet)
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
            allowed,
            None,
            &quiet,
        )
        .await
        .expect("given sum");
        assert_eq!(gets("/d/disk.qcow2"), 1);
        // A mismatch names both sums and leaves nothing.
        let bad = format!("http://{host}/d/bad.qcow2");
        let e = cached_download(cache.path(), &bad, "", allowed, None, &quiet)
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
        let debian = sender(&["cloud.debian.org"]);
        let e = cached_download(cache.path(), &url, "", Some(&debian), None, &quiet)
            .await
            .expect_err("refused");
        assert!(format!("{e:#}").contains("127.0.0.1"), "{e:#}");
    }

    /// Before the header check, this image was printed "verified" and kept, and QEMU
    /// booted it with /etc/hostname as its disk (issue 18, proof 5).
    #[tokio::test]
    async fn a_downloaded_qcow2_with_a_backing_file_is_deleted_and_refused() {
        let bad = crate::vm::qcow2::tests::qcow2(Some("/etc/hostname"), 0, &[]);
        let sum = hex::encode(sha2::Sha512::digest(&bad));
        let (host, _seen) = serve(vec![("/d/b.qcow2", bad.clone())]).await;
        let cache = tempfile::tempdir().expect("tmp");
        let url = format!("http://{host}/d/b.qcow2");
        let quiet = |_: &str| {};
        let e = cached_download(
            cache.path(),
            &url,
            &format!("sha512:{sum}"),
            Some(&sender(&[host.as_str()])),
            None,
            &quiet,
        )
        .await
        .expect_err("refused");
        let text = format!("{e:#}");
        assert!(
            text.contains("backing file") && text.contains("/etc/hostname"),
            "{text}"
        );
        let folder = folder(cache.path(), &url.parse().expect("uri"));
        let left: Vec<_> = std::fs::read_dir(&folder).expect("dir").flatten().collect();
        assert!(left.is_empty(), "{left:?}");
        // Planted in the cache with a matching record (an older dmw kept it): refused at
        // use and deleted.
        std::fs::write(folder.join("b.qcow2"), &bad).expect("plant");
        std::fs::write(folder.join("b.qcow2.sum"), format!("sha512:{sum}\n")).expect("sum");
        let e = cached_download(
            cache.path(),
            &url,
            &format!("sha512:{sum}"),
            Some(&sender(&[host.as_str()])),
            None,
            &quiet,
        )
        .await
        .expect_err("refused");
        assert!(format!("{e:#}").contains("/etc/hostname"), "{e:#}");
        assert!(!folder.exists(), "the cached image was deleted");
    }

    #[test]
    fn the_cache_evicts_the_least_recently_used_and_prune_empties_it() {
        let root = tempfile::tempdir().expect("tmp");
        let cache = root.path().join("cache/images");
        let machines = root.path().join("machines");
        let base = std::time::SystemTime::now() - Duration::from_secs(3600);
        for (i, name) in ["a", "b", "c", "d"].into_iter().enumerate() {
            let d = cache.join(DOWNLOADS).join(name);
            std::fs::create_dir_all(&d).expect("dir");
            std::fs::write(d.join("img.raw"), vec![1u8; 100 << 10]).expect("img");
            std::fs::File::open(&d)
                .expect("open")
                .set_modified(base + Duration::from_secs(60 * i as u64))
                .expect("mtime");
        }
        // A machine's overlay is made over `a` (the oldest): never evicted.
        let driver = machines.join("m1/driver");
        std::fs::create_dir_all(&driver).expect("driver");
        let backing = cache.join(DOWNLOADS).join("a/img.raw");
        std::fs::write(
            driver.join("overlay.qcow2"),
            crate::vm::qcow2::tests::qcow2(Some(&backing.display().to_string()), 0, &[]),
        )
        .expect("overlay");
        let keep = cache.join(DOWNLOADS).join("d");
        let evicted = trim(&cache, &keep, 250 << 10, Some(&machines)).expect("trim");
        let names: Vec<_> = evicted
            .iter()
            .map(|e| {
                e.dir
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["b", "c"], "least recently used first, `a` in use");
        assert!(keep.exists() && backing.exists());
        // It cannot fit: the error names the variable, nothing in use is touched.
        let e = trim(&cache, &keep, 50 << 10, Some(&machines)).expect_err("over");
        assert!(format!("{e}").contains(CACHE_QUOTA_VAR), "{e}");
        assert!(keep.exists() && backing.exists());
        // Prune removes all but what a machine uses.
        let done = prune(&cache, &machines).expect("prune");
        assert_eq!(done.removed.len(), 1);
        assert!(done.removed[0].bytes >= 100 << 10);
        assert_eq!(done.kept.len(), 1);
        assert!(!keep.exists() && backing.exists());
    }
}
