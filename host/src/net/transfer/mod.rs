//! File transfer to, from and between machines over SFTP (native, no local scp or rsync):
//! scp-style argument parsing, recursive copies keeping modes, streaming machine-to-machine
//! copies through this process, and delta copies that send only the blocks that differ.

pub mod delta;
pub mod mount;
pub mod progress;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use russh_sftp::client::SftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt, AsyncWrite, AsyncWriteExt};

use crate::net::ssh::{Session, Target};
use progress::Progress;

/// One side of a copy as written on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A path on this computer.
    Local(String),
    /// `[user@]machine:path` (an empty path is the login user's home).
    Remote {
        /// Machine name.
        machine: String,
        /// Login user overriding the machine's.
        user: Option<String>,
        /// Path on the machine (relative paths are relative to the user's home).
        path: String,
    },
}

impl Location {
    /// Parse Docker Machine's `[[user@]machine:][path]`: no colon (or a slash before the
    /// first colon) is a local path, and so is `localhost:path`.
    pub fn parse(arg: &str) -> Location {
        let Some((host, path)) = arg.split_once(':') else {
            return Location::Local(arg.to_string());
        };
        if host.is_empty() || host.contains('/') {
            return Location::Local(arg.to_string());
        }
        let (user, machine) = match host.split_once('@') {
            Some((u, m)) => (Some(u.to_string()), m.to_string()),
            None => (None, host.to_string()),
        };
        if machine == "localhost" {
            return Location::Local(path.to_string());
        }
        Location::Remote {
            machine,
            user,
            path: remote_path(path),
        }
    }
}

/// A remote path as SFTP wants it: `~` and `~/x` become home-relative (SFTP's working
/// directory is the login user's home), an empty path is the home itself.
fn remote_path(p: &str) -> String {
    if p.is_empty() || p == "~" {
        ".".into()
    } else if let Some(rest) = p.strip_prefix("~/") {
        if rest.is_empty() {
            ".".into()
        } else {
            rest.to_string()
        }
    } else {
        p.to_string()
    }
}

/// What the copy does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Copy directories recursively.
    pub recursive: bool,
    /// Send only what differs.
    pub delta: bool,
    /// Draw a progress meter on stderr.
    pub progress: bool,
    /// Say on stderr what the delta comparison found for each file.
    pub debug: bool,
}

/// What a copy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Regular files copied or checked.
    pub files: u64,
    /// Their total size.
    pub bytes_total: u64,
    /// File data actually sent to the destination.
    pub bytes_sent: u64,
    /// Files whose every block already matched (delta).
    pub files_unchanged: u64,
}

/// A machine connected for transfers.
pub struct Remote {
    /// Machine name (for messages).
    pub name: String,
    session: Session,
    sftp: SftpSession,
}

impl Remote {
    /// Connect to machine `name` at `target` (host key checked by `policy`) and start SFTP.
    pub async fn connect(
        name: &str,
        target: &Target,
        policy: crate::net::ssh::HostKeyPolicy,
    ) -> Result<Remote> {
        let session = Session::connect(target, policy, Duration::from_secs(20))
            .await
            .with_context(|| format!("machine \"{name}\": cannot connect over SSH"))?;
        let sftp = session
            .sftp()
            .await
            .with_context(|| format!("machine \"{name}\""))?;
        Ok(Remote {
            name: name.to_string(),
            session,
            sftp,
        })
    }

    /// Close SFTP and the connection.
    pub async fn close(&self) {
        let _ = self.sftp.close().await;
        self.session.close().await;
    }
}

/// One end of a copy: this computer or a connected machine.
#[derive(Clone)]
pub enum Side {
    /// This computer.
    Local,
    /// A machine.
    Remote(Arc<Remote>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    kind: Kind,
    size: u64,
    mode: u32,
}

trait ReadSeek: AsyncRead + AsyncSeek + Unpin + Send {}
impl<T: AsyncRead + AsyncSeek + Unpin + Send> ReadSeek for T {}
trait WriteSeek: AsyncWrite + AsyncSeek + Unpin + Send {}
impl<T: AsyncWrite + AsyncSeek + Unpin + Send> WriteSeek for T {}

fn not_found(e: &SftpError) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

fn sftp_reason(e: &SftpError) -> String {
    match e {
        SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile => {
            "No such file or directory".into()
        }
        SftpError::Status(s) if s.status_code == StatusCode::PermissionDenied => {
            "Permission denied".into()
        }
        other => other.to_string(),
    }
}

/// Checks a name from a remote directory listing before it is joined to a path: `Ok(true)`
/// to copy it, `Ok(false)` for the `.` and `..` entries every SFTP server lists (skipped,
/// never joined), and an error for a name that would leave the directory (empty, holding
/// `/` or NUL) — a hostile machine could otherwise make `scp -r` write anywhere.
fn remote_entry_name(name: &str) -> Result<bool, &'static str> {
    match name {
        "." | ".." => Ok(false),
        "" => Err("is empty"),
        n if n.contains('/') => Err("holds '/'"),
        n if n.contains('\0') => Err("holds a NUL byte"),
        _ => Ok(true),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn base_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((_, b)) if !b.is_empty() => b.to_string(),
        _ if trimmed.is_empty() => "/".into(),
        _ => trimmed.to_string(),
    }
}

impl Side {
    /// `path` as the user would write it: `machine:path` or the local path.
    fn label(&self, path: &str) -> String {
        match self {
            Side::Local => path.to_string(),
            Side::Remote(r) => format!("{}:{path}", r.name),
        }
    }

    /// Whether both sides are the same filesystem (this computer, or the same connection).
    fn same_as(&self, other: &Side) -> bool {
        match (self, other) {
            (Side::Local, Side::Local) => true,
            (Side::Remote(a), Side::Remote(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The absolute path with symlinks resolved, if it exists.
    async fn canonical(&self, path: &str) -> Option<String> {
        match self {
            Side::Local => tokio::fs::canonicalize(path)
                .await
                .ok()
                .map(|p| p.display().to_string()),
            Side::Remote(r) => r.sftp.canonicalize(path).await.ok(),
        }
    }

    fn is_remote(&self) -> bool {
        matches!(self, Side::Remote(_))
    }

    /// Where the error happened, e.g. `on machine "m1"`.
    /// "`what` PATH PLACE: reason", the error of a failed file operation on this side.
    fn failed(&self, what: &str, path: &str, reason: String) -> anyhow::Error {
        anyhow!("{what} {} {}: {reason}", self.label(path), self.place())
    }

    fn place(&self) -> String {
        match self {
            Side::Local => "on this computer".into(),
            Side::Remote(r) => format!("on machine \"{}\"", r.name),
        }
    }

    async fn stat(&self, path: &str) -> Result<Option<Meta>> {
        match self {
            Side::Local => match tokio::fs::metadata(path).await {
                Ok(m) => {
                    use std::os::unix::fs::MetadataExt;
                    let kind = if m.is_dir() {
                        Kind::Dir
                    } else if m.is_file() {
                        Kind::File
                    } else {
                        Kind::Other
                    };
                    Ok(Some(Meta {
                        kind,
                        size: m.len(),
                        mode: m.mode() & 0o7777,
                    }))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(anyhow!("{path}: {e}")),
            },
            Side::Remote(r) => match r.sftp.metadata(path).await {
                Ok(a) => {
                    let kind = if a.is_dir() {
                        Kind::Dir
                    } else if a.is_regular() {
                        Kind::File
                    } else {
                        Kind::Other
                    };
                    Ok(Some(Meta {
                        kind,
                        size: a.size.unwrap_or(0),
                        mode: a.permissions.unwrap_or(0o644) & 0o7777,
                    }))
                }
                Err(e) if not_found(&e) => Ok(None),
                Err(e) => Err(anyhow!(
                    "{}: {} (machine \"{}\")",
                    self.label(path),
                    sftp_reason(&e),
                    r.name
                )),
            },
        }
    }

    async fn list(&self, path: &str) -> Result<Vec<String>> {
        let mut names = match self {
            Side::Local => {
                let mut out = Vec::new();
                let mut rd = tokio::fs::read_dir(path)
                    .await
                    .with_context(|| format!("cannot list {}", self.label(path)))?;
                while let Some(e) = rd
                    .next_entry()
                    .await
                    .with_context(|| format!("cannot list {}", self.label(path)))?
                {
                    out.push(e.file_name().to_string_lossy().into_owned());
                }
                out
            }
            Side::Remote(r) => {
                let entries = r.sftp.read_dir(path).await.map_err(|e| {
                    anyhow!(
                        "cannot list {}: {} (machine \"{}\")",
                        self.label(path),
                        sftp_reason(&e),
                        r.name
                    )
                })?;
                let mut out = Vec::new();
                for e in entries {
                    let name = e.file_name();
                    if remote_entry_name(&name).map_err(|why| {
                        anyhow!(
                            "machine \"{}\" listed the entry {name:?} in {}, which {why}: refusing to copy it",
                            r.name,
                            self.label(path)
                        )
                    })? {
                        out.push(name);
                    }
                }
                out
            }
        };
        names.sort();
        Ok(names)
    }

    async fn mkdir(&self, path: &str) -> Result<()> {
        let res = match self {
            Side::Local => match tokio::fs::create_dir(path).await {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                r => r.map_err(|e| e.to_string()),
            },
            Side::Remote(r) => match r.sftp.create_dir(path).await {
                Ok(()) => Ok(()),
                Err(e) => match r.sftp.metadata(path).await {
                    Ok(a) if a.is_dir() => Ok(()),
                    _ => Err(sftp_reason(&e)),
                },
            },
        };
        res.map_err(|e| self.failed("cannot create directory", path, e))
    }

    /// Set permission bits.
    async fn set_attrs(&self, path: &str, mode: u32) -> Result<()> {
        let res = match self {
            Side::Local => {
                let p = path.to_string();
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            }
            Side::Remote(r) => {
                let attrs = FileAttributes {
                    permissions: Some(mode),
                    ..FileAttributes::empty()
                };
                r.sftp
                    .set_metadata(path, attrs)
                    .await
                    .map_err(|e| sftp_reason(&e))
            }
        };
        res.map_err(|e| self.failed("cannot set the mode of", path, e))
    }

    async fn set_len(&self, path: &str, size: u64) -> Result<()> {
        let res = match self {
            Side::Local => {
                let p = path.to_string();
                tokio::task::spawn_blocking(move || {
                    std::fs::File::options()
                        .write(true)
                        .open(&p)
                        .and_then(|f| f.set_len(size))
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            }
            Side::Remote(r) => r
                .sftp
                .set_metadata(
                    path,
                    FileAttributes {
                        size: Some(size),
                        ..FileAttributes::empty()
                    },
                )
                .await
                .map_err(|e| sftp_reason(&e)),
        };
        res.map_err(|e| anyhow!("cannot truncate {}: {e}", self.label(path)))
    }

    async fn reader(&self, path: &str) -> Result<Box<dyn ReadSeek>> {
        match self {
            Side::Local => Ok(Box::new(
                tokio::fs::File::open(path)
                    .await
                    .with_context(|| format!("cannot read {}", path))?,
            )),
            Side::Remote(r) => Ok(Box::new(r.sftp.open(path).await.map_err(|e| {
                anyhow!(
                    "cannot read {}: {} (machine \"{}\")",
                    self.label(path),
                    sftp_reason(&e),
                    r.name
                )
            })?)),
        }
    }

    async fn writer(&self, path: &str, truncate: bool, mode: u32) -> Result<Box<dyn WriteSeek>> {
        match self {
            Side::Local => {
                let mut o = tokio::fs::OpenOptions::new();
                o.write(true).create(true).truncate(truncate).mode(mode);
                Ok(Box::new(o.open(path).await.with_context(|| {
                    format!("cannot write {} {}", path, self.place())
                })?))
            }
            Side::Remote(r) => {
                let mut flags = OpenFlags::CREATE | OpenFlags::WRITE;
                if truncate {
                    flags |= OpenFlags::TRUNCATE;
                }
                let attrs = FileAttributes {
                    permissions: Some(mode),
                    ..FileAttributes::empty()
                };
                let f = r
                    .sftp
                    .open_with_flags_and_attributes(path, flags, attrs)
                    .await
                    .map_err(|e| {
                        anyhow!(
                            "cannot write {}: {} (machine \"{}\")",
                            self.label(path),
                            sftp_reason(&e),
                            r.name
                        )
                    })?;
                Ok(Box::new(f))
            }
        }
    }

    /// Per-block hashes of a file, `None` when the machine has no `sha256sum`.
    async fn block_hashes(
        &self,
        path: &str,
        size: u64,
        block: u64,
    ) -> Result<Option<Vec<delta::BlockHash>>> {
        match self {
            Side::Local => {
                let p = path.to_string();
                let h = tokio::task::spawn_blocking(move || delta::local_hashes(&p, block))
                    .await
                    .map_err(|e| anyhow!("hashing {path}: {e}"))?
                    .with_context(|| format!("hashing {path}"))?;
                Ok(Some(h))
            }
            Side::Remote(r) => {
                let script =
                    delta::remote_hash_script(path, block, delta::block_count(size, block));
                let out = r
                    .session
                    .exec(&format!("sh -c {}", crate::net::ssh::sh_quote(&script)))
                    .await
                    .with_context(|| format!("machine \"{}\": hashing {path}", r.name))?;
                if out.code == 127 {
                    return Ok(None);
                }
                if out.code != 0 {
                    bail!(
                        "machine \"{}\": hashing {path} failed (exit {}): {}",
                        r.name,
                        out.code,
                        out.stderr_text().trim()
                    );
                }
                Ok(delta::parse_hashes(&out.stdout_text()))
            }
        }
    }
}

/// Copy `sources` to `dest` like scp: several sources (or one directory with `recursive`)
/// go into `dest` when it is a directory.
pub async fn copy(
    sources: &[(Side, String)],
    dest: &(Side, String),
    opts: Options,
) -> Result<Summary> {
    let (dside, dpath) = dest;
    let dmeta = dside.stat(dpath).await?;
    let dest_is_dir = dmeta.is_some_and(|m| m.kind == Kind::Dir);
    if sources.len() > 1 && !dest_is_dir {
        bail!(
            "target {} is not a directory {} (several sources need an existing directory)",
            dside.label(dpath),
            dside.place()
        );
    }
    let mut sum = Summary::default();
    for (sside, spath) in sources {
        let Some(meta) = sside.stat(spath).await? else {
            bail!(
                "{}: No such file or directory {}",
                sside.label(spath),
                sside.place()
            );
        };
        let target = if dest_is_dir {
            join(dpath, &base_name(spath))
        } else {
            dpath.clone()
        };
        match meta.kind {
            Kind::Dir if !opts.recursive => bail!(
                "{}: is a directory (use -r to copy directories)",
                sside.label(spath)
            ),
            Kind::Dir => {
                copy_dir(sside, spath, meta, dside, &target, opts, &mut sum).await?;
            }
            Kind::File => copy_file(sside, spath, meta, dside, &target, opts, &mut sum).await?,
            Kind::Other => bail!("{}: not a regular file", sside.label(spath)),
        }
    }
    Ok(sum)
}

async fn copy_dir(
    src: &Side,
    spath: &str,
    meta: Meta,
    dst: &Side,
    dpath: &str,
    opts: Options,
    sum: &mut Summary,
) -> Result<()> {
    // Depth-first with an explicit stack: (source dir, its meta, destination dir).
    let mut stack = vec![(spath.to_string(), meta, dpath.to_string())];
    let mut dirs = Vec::new();
    while let Some((s, m, d)) = stack.pop() {
        if let Some(existing) = dst.stat(&d).await?
            && existing.kind != Kind::Dir
        {
            bail!("{} exists and is not a directory", dst.label(&d));
        }
        dst.mkdir(&d).await?;
        // Owner write+search while filling it; the real mode is set at the end.
        dst.set_attrs(&d, m.mode | 0o700).await?;
        dirs.push((d.clone(), m));
        for name in src.list(&s).await? {
            let cs = join(&s, &name);
            let cd = join(&d, &name);
            let Some(cm) = src.stat(&cs).await? else {
                continue; // vanished or a dangling symlink
            };
            match cm.kind {
                Kind::Dir => stack.push((cs, cm, cd)),
                Kind::File => copy_file(src, &cs, cm, dst, &cd, opts, sum).await?,
                Kind::Other => {}
            }
        }
    }
    for (d, m) in dirs.into_iter().rev() {
        dst.set_attrs(&d, m.mode).await?;
    }
    Ok(())
}

const BUF: usize = 256 << 10;

async fn copy_file(
    src: &Side,
    spath: &str,
    meta: Meta,
    dst: &Side,
    dpath: &str,
    opts: Options,
    sum: &mut Summary,
) -> Result<()> {
    sum.files += 1;
    sum.bytes_total += meta.size;
    let existing = dst.stat(dpath).await?;
    if existing.is_some_and(|m| m.kind == Kind::Dir) {
        bail!("{}: is a directory", dst.label(dpath));
    }
    if existing.is_some() && src.same_as(dst) {
        let (a, b) = tokio::join!(src.canonical(spath), dst.canonical(dpath));
        if a.is_some() && a == b {
            bail!(
                "{} and {} are the same file",
                src.label(spath),
                dst.label(dpath)
            );
        }
    }
    if opts.delta
        && let Some(old) = existing.filter(|m| m.kind == Kind::File && m.size > 0)
        && meta.size > 0
        && delta_file(src, spath, meta, dst, dpath, old, opts, sum).await?
    {
        return Ok(());
    }
    let mut r = src.reader(spath).await?;
    let mut w = dst.writer(dpath, true, meta.mode).await?;
    let mut progress = Progress::new(&base_name(spath), meta.size, opts.progress);
    let mut buf = vec![0u8; BUF];
    loop {
        let n = r
            .read(&mut buf)
            .await
            .with_context(|| format!("reading {}", src.label(spath)))?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n])
            .await
            .with_context(|| format!("writing {}", dst.label(dpath)))?;
        sum.bytes_sent += n as u64;
        progress.add(n as u64);
    }
    w.shutdown()
        .await
        .with_context(|| format!("writing {}", dst.label(dpath)))?;
    progress.finish();
    dst.set_attrs(dpath, meta.mode).await
}

/// Copy only the blocks of `spath` that differ in `dpath`. Returns false (nothing done)
/// when a side cannot hash blocks, so the caller falls back to a full copy.
#[allow(clippy::too_many_arguments)]
async fn delta_file(
    src: &Side,
    spath: &str,
    meta: Meta,
    dst: &Side,
    dpath: &str,
    old: Meta,
    opts: Options,
    sum: &mut Summary,
) -> Result<bool> {
    let block = delta::block_size(meta.size);
    let (sh, dh) = tokio::join!(
        src.block_hashes(spath, meta.size, block),
        dst.block_hashes(dpath, old.size, block)
    );
    let (Some(sh), Some(dh)) = (sh?, dh?) else {
        return Ok(false);
    };
    if sh.len() as u64 != delta::block_count(meta.size, block) {
        return Ok(false);
    }
    let ranges = delta::changed_ranges(&sh, &dh, meta.size, block);
    if ranges.is_empty() && old.size == meta.size {
        sum.files_unchanged += 1;
        if old.mode != meta.mode {
            dst.set_attrs(dpath, meta.mode).await?;
        }
        return Ok(true);
    }
    let changed: u64 = ranges.iter().map(|r| r.1).sum();
    if opts.debug {
        eprintln!(
            "delta {} -> {}: {} of {} blocks of {block} bytes differ, {changed} bytes to send",
            src.label(spath),
            dst.label(dpath),
            ranges.iter().map(|(_, l)| l.div_ceil(block)).sum::<u64>(),
            sh.len()
        );
    }
    let mut progress = Progress::new(&base_name(spath), changed, opts.progress);
    let mut r = src.reader(spath).await?;
    let mut w = dst.writer(dpath, false, meta.mode).await?;
    let mut buf = vec![0u8; BUF];
    for (off, len) in &ranges {
        r.seek(std::io::SeekFrom::Start(*off))
            .await
            .with_context(|| format!("reading {}", src.label(spath)))?;
        w.seek(std::io::SeekFrom::Start(*off))
            .await
            .with_context(|| format!("writing {}", dst.label(dpath)))?;
        let mut left = *len;
        while left > 0 {
            let want = left.min(BUF as u64) as usize;
            r.read_exact(&mut buf[..want])
                .await
                .with_context(|| format!("reading {}", src.label(spath)))?;
            w.write_all(&buf[..want])
                .await
                .with_context(|| format!("writing {}", dst.label(dpath)))?;
            left -= want as u64;
            sum.bytes_sent += want as u64;
            progress.add(want as u64);
        }
    }
    w.shutdown()
        .await
        .with_context(|| format!("writing {}", dst.label(dpath)))?;
    drop(w);
    progress.finish();
    if old.size != meta.size {
        dst.set_len(dpath, meta.size).await?;
    }
    dst.set_attrs(dpath, meta.mode).await?;
    Ok(true)
}

/// Whether copying between these sides crosses the network at all.
pub fn involves_machine(sources: &[(Side, String)], dest: &(Side, String)) -> bool {
    dest.0.is_remote() || sources.iter().any(|s| s.0.is_remote())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_listing_names_cannot_leave_the_directory() {
        assert_eq!(remote_entry_name("file.txt"), Ok(true));
        assert_eq!(remote_entry_name("..hidden"), Ok(true));
        assert_eq!(remote_entry_name("."), Ok(false));
        assert_eq!(remote_entry_name(".."), Ok(false));
        assert_eq!(remote_entry_name(""), Err("is empty"));
        assert_eq!(remote_entry_name("../../.bashrc"), Err("holds '/'"));
        assert_eq!(remote_entry_name("/etc/passwd"), Err("holds '/'"));
        assert_eq!(remote_entry_name("a\0b"), Err("holds a NUL byte"));
    }

    #[test]
    fn parses_docker_machine_locations() {
        assert_eq!(Location::parse("a/b"), Location::Local("a/b".into()));
        assert_eq!(Location::parse("./x:y"), Location::Local("./x:y".into()));
        assert_eq!(
            Location::parse("localhost:/tmp/f"),
            Location::Local("/tmp/f".into())
        );
        assert_eq!(
            Location::parse("m1:"),
            Location::Remote {
                machine: "m1".into(),
                user: None,
                path: ".".into()
            }
        );
        assert_eq!(
            Location::parse("root@m1:~/dir with space"),
            Location::Remote {
                machine: "m1".into(),
                user: Some("root".into()),
                path: "dir with space".into()
            }
        );
        assert_eq!(
            Location::parse("m1:/etc/hostname"),
            Location::Remote {
                machine: "m1".into(),
                user: None,
                path: "/etc/hostname".into()
            }
        );
    }

    #[test]
    fn base_names() {
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("b"), "b");
        assert_eq!(base_name("."), ".");
        assert_eq!(join("a/", "b"), "a/b");
    }

    #[tokio::test]
    async fn local_copy_recursive_keeps_modes_and_delta_skips() {
        let tmp = tempfile::tempdir().expect("tmp");
        let src = tmp.path().join("src dir");
        std::fs::create_dir_all(src.join("sub")).expect("mkdir");
        std::fs::write(src.join("sub/x.sh"), b"#!/bin/sh\n").expect("w");
        std::fs::set_permissions(src.join("sub/x.sh"), std::fs::Permissions::from_mode(0o750))
            .expect("chmod");
        std::fs::write(src.join("big"), vec![7u8; 300_000]).expect("w");
        let dst = tmp.path().join("out");
        std::fs::create_dir(&dst).expect("mkdir out");
        let s = src.display().to_string();
        let d = dst.display().to_string();
        let opts = Options {
            recursive: true,
            delta: true,
            progress: false,
            debug: false,
        };
        let sum = copy(&[(Side::Local, s.clone())], &(Side::Local, d.clone()), opts)
            .await
            .expect("copy");
        assert_eq!(sum.files, 2);
        assert_eq!(sum.bytes_sent, 300_010);
        let dst = dst.join("src dir");
        let mode = std::fs::metadata(dst.join("sub/x.sh"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o750);
        // Second run: every block matches, nothing is sent.
        let sum = copy(&[(Side::Local, s.clone())], &(Side::Local, d.clone()), opts)
            .await
            .expect("copy");
        assert_eq!((sum.files_unchanged, sum.bytes_sent), (2, 0));
        // Change one byte: only one block is sent.
        let mut big = vec![7u8; 300_000];
        big[150_000] = 1;
        std::fs::write(src.join("big"), &big).expect("w");
        let sum = copy(&[(Side::Local, s)], &(Side::Local, d), opts)
            .await
            .expect("copy");
        assert_eq!(sum.bytes_sent, 64 << 10);
        assert_eq!(std::fs::read(dst.join("big")).expect("read"), big);
    }
}
