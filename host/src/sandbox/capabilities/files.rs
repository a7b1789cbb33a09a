//! `files`: the plugin's own directory for the machine being worked on
//! (`machines/NAME/driver/`), lent as the WASI preopen [`GUEST_DIR`] (wasmtime-wasi over
//! cap-std: paths cannot leave it, `..` and symlinks included), and through wit/files.wit
//! what WASI cannot do there: QMP over a unix socket in that directory, and the list of
//! images `dmw image build` made, and verified, cached downloads into dmw's image cache
//! (done by the host, [`crate::vm::download`]) from the hosts the plugin declared.
//!
//! QMP lives here, not in a capability of its own: the socket is a file of the plugin's
//! directory (QEMU, started through `process`, creates it there), and the rule is the
//! same — only inside that directory. A driver granted `files` but not `process` can talk
//! only to a socket something else put in its directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use wasmtime::component::Linker;

use super::{Capability, CapabilityView, Granted, Lend, Lent, Offer, project};
use crate::sandbox::contract::v0_1::driver::dmw::plugin::files::{self as wit, Host};
use crate::sandbox::contract::v0_1::types::Error;

/// The `files` capability (declared by the driver, granted by the user).
pub const fn capability<T: CapabilityView>() -> Capability<T> {
    Capability {
        name: "files",
        link: add_to_linker::<T>,
        lend,
        wasi: preopen,
    }
}

/// WASI grants a plugin lent `files` its own directory (made private first, never through
/// a link planted in its place), read-write, at [`GUEST_DIR`]; nothing else.
fn preopen(lent: &Lent, wasi: &mut wasmtime_wasi::WasiCtxBuilder) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let Some(files) = lent.get::<FilesCtx>() else {
        return Ok(());
    };
    let dir = files.dir();
    crate::sandbox::beneath::private_dir(dir)
        .with_context(|| format!("cannot create the plugin's directory {}", dir.display()))?;
    wasi.preopened_dir(dir, GUEST_DIR, wasmtime_wasi::FsPerms::ReadWrite)
        .map_err(|e| {
            anyhow::anyhow!("cannot lend the plugin's directory {}: {e}", dir.display())
        })?;
    Ok(())
}

/// Where the plugin sees its directory.
pub const GUEST_DIR: &str = "/files";

/// Longest a QMP exchange may take.
const MAX_QMP: Duration = Duration::from_secs(120);

/// Most images listed.
const MAX_IMAGES: usize = 32;

/// What `files` lends for one machine.
pub struct FilesCtx {
    /// The machine's name, for messages.
    machine: String,
    /// The plugin's directory (`machines/NAME/driver`), made by the host before lending.
    dir: PathBuf,
    /// Where `dmw image build` keeps its images.
    image_cache: Option<PathBuf>,
    /// The plugin's HTTP sender downloads go through (its resolved `http-host` patterns, TLS
    /// settings and address checks); none without an `http` grant.
    http: Option<std::sync::Arc<crate::net::http::Sender>>,
    /// Progress output, for downloads.
    report: std::sync::Arc<crate::text::report::Reporter>,
}

impl FilesCtx {
    /// The host directory to preopen as [`GUEST_DIR`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The machine's name.
    pub fn machine(&self) -> &str {
        &self.machine
    }

    /// Send downloads through `sender` (the plugin's `http` sender for this machine) from
    /// now on.
    pub fn set_http(&mut self, sender: std::sync::Arc<crate::net::http::Sender>) {
        self.http = Some(sender);
    }
}

/// Link `files` through [`FilesCtx`].
pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Lend<FilesCtx>>(linker, project::<T, FilesCtx>)
}

/// Lent only when the command works on one machine (its directory is known).
fn lend(offer: &Offer, lent: &mut Lent) {
    if let Some(dir) = &offer.machine_dir {
        lent.insert(FilesCtx {
            machine: dir
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            dir: dir.driver_dir(),
            image_cache: offer.image_cache.clone(),
            http: offer.http.clone(),
            report: offer.report.clone(),
        });
    }
}

/// A socket name: a plain file name (`[A-Za-z0-9._-]`, at most 64, not `.` or `..`).
fn check_socket_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Denied(format!(
            "QMP socket {:?} is not a file name in the plugin's own directory",
            crate::text::sanitize::plugin_text(name, 80)
        )))
    }
}

/// Connect to the unix socket `name` directly in `dir`, never through a link: opened
/// `O_PATH` beneath the directory with no symlink followed and one link
/// ([`crate::sandbox::beneath::open_socket`]), and connected to through `/proc/self/fd/N` (which
/// also lifts the 108-byte limit of socket paths).
pub(crate) async fn connect_in(dir: &Path, name: &str) -> Result<tokio::net::UnixStream, Error> {
    use std::os::fd::AsRawFd;
    check_socket_name(name)?;
    let fd = crate::sandbox::beneath::open_socket(dir, Path::new(name)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            Error::Denied(format!("QMP socket {name}: {e}"))
        } else {
            Error::Failed(format!(
                "no QMP socket {name} in the plugin's directory: {e}"
            ))
        }
    })?;
    let via = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let stream = tokio::net::UnixStream::connect(&via)
        .await
        .map_err(|e| Error::Failed(format!("cannot connect to the QMP socket {name}: {e}")))?;
    drop(fd);
    Ok(stream)
}

/// The built images under `cache` (directories with a disk.qcow2), newest first.
pub fn built_images(cache: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return Vec::new();
    };
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.join(crate::vm::image::DISK_FILE).is_file())
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    found.sort_by_key(|e| std::cmp::Reverse(e.0));
    found.into_iter().take(MAX_IMAGES).map(|(_, p)| p).collect()
}

impl Host for Granted<'_, FilesCtx> {
    async fn qmp(
        &mut self,
        socket: String,
        command: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<String, Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("files")));
        };
        let limit = Duration::from_millis(u64::from(timeout_ms)).min(MAX_QMP);
        let exchange = async {
            let stream = connect_in(&ctx.dir, &socket).await?;
            crate::vm::qmp::command(stream, &command)
                .await
                .map_err(|e| Error::Failed(format!("machine {}: QMP: {e:#}", ctx.machine)))
        };
        Ok(match tokio::time::timeout(limit, exchange).await {
            Ok(r) => r,
            Err(_) => Err(Error::Failed(format!(
                "machine {}: QEMU did not answer on QMP within {} ms",
                ctx.machine,
                limit.as_millis()
            ))),
        })
    }

    async fn built_images(&mut self) -> wasmtime::Result<Vec<String>> {
        let Some(ctx) = &self.ctx else {
            return Err(wasmtime::Error::msg(format!(
                "plugin {} has no files access here",
                self.plugin
            )));
        };
        Ok(ctx
            .image_cache
            .as_deref()
            .map(built_images)
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect())
    }

    async fn cached_download(
        &mut self,
        url: String,
        checksum: String,
    ) -> wasmtime::Result<Result<String, Error>> {
        use crate::vm::download;
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("files")));
        };
        let shown = crate::text::sanitize::plugin_text(&url, 200);
        let uri = match download::check_url(&url) {
            Ok(u) => u,
            Err(e) => {
                return Ok(Err(Error::InvalidInput(format!(
                    "download {shown:?}: {e:#}"
                ))));
            }
        };
        if let Err(e) = download::parse_checksum(&checksum) {
            return Ok(Err(Error::InvalidInput(format!("download {shown}: {e:#}"))));
        }
        if let Err(e) = download::check_allowed(ctx.http.as_deref(), &uri) {
            return Ok(Err(Error::Denied(format!(
                "machine {}: {e:#}",
                ctx.machine
            ))));
        }
        let Some(cache) = &ctx.image_cache else {
            return Ok(Err(Error::Failed("no image cache here".into())));
        };
        let report = ctx.report.clone();
        let progress = move |line: &str| report.info(line);
        // The store's machines directory (this one's is `machines/NAME/driver`): the
        // images machines use are never evicted from the cache.
        let machines = ctx.dir.parent().and_then(Path::parent);
        Ok(download::cached_download(
            cache,
            &url,
            &checksum,
            ctx.http.as_deref(),
            machines,
            &progress,
        )
        .await
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| Error::Failed(format!("machine {}: {e:#}", ctx.machine))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn qmp_sockets_only_in_the_plugins_directory() {
        let root = tempfile::tempdir().expect("tmp");
        let dir = root.path().join("driver");
        std::fs::create_dir(&dir).expect("dir");
        let outside = root.path().join("outside.sock");
        let _outside = std::os::unix::net::UnixListener::bind(&outside).expect("bind");
        let _inside = std::os::unix::net::UnixListener::bind(dir.join("qmp.sock")).expect("bind");
        std::os::unix::fs::symlink(&outside, dir.join("link.sock")).expect("symlink");
        std::fs::write(dir.join("plain"), "x").expect("file");
        assert!(connect_in(&dir, "qmp.sock").await.is_ok());
        for bad in ["../outside.sock", "/tmp/x.sock", "..", "", "a/b"] {
            assert!(
                matches!(connect_in(&dir, bad).await, Err(Error::Denied(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            connect_in(&dir, "link.sock").await,
            Err(Error::Failed(_) | Error::Denied(_))
        ));
        assert!(matches!(
            connect_in(&dir, "plain").await,
            Err(Error::Denied(_))
        ));
        // A hard link to a socket outside (say, an agent's) has two links: refused.
        std::fs::hard_link(&outside, dir.join("hard.sock")).expect("hard link");
        assert!(matches!(
            connect_in(&dir, "hard.sock").await,
            Err(Error::Denied(_))
        ));
    }

    #[test]
    fn built_images_are_listed_newest_first() {
        let cache = tempfile::tempdir().expect("tmp");
        for (name, disk) in [
            ("old", true),
            ("none", false),
            (".tmp-x", true),
            ("new", true),
        ] {
            let d = cache.path().join(name);
            std::fs::create_dir(&d).expect("dir");
            if disk {
                std::fs::write(d.join(crate::vm::image::DISK_FILE), "q").expect("disk");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let found = built_images(cache.path());
        let names: Vec<_> = found
            .iter()
            .map(|p| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, vec!["new", "old"]);
    }
}
