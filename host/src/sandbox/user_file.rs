//! Reading a file the user named (a driver's `file FLAG`, its `http-cacert` CA bundle): the
//! one bounded reader every such read goes through.
//!
//! The path comes from the user, but the file behind it may still be anything: a device
//! that never ends (`/dev/zero`), a FIFO that never answers, a `/proc` or `/sys` file whose
//! size says 0, or one of dmw's own secrets (the CA key in the store, reached directly or
//! through a symlink). The rules:
//! - the path is opened once, non-blocking (a FIFO cannot hang the open), and every check
//!   is made on the opened handle, not on the path again;
//! - it must be a regular file (no directory, device, FIFO or socket) on a disk file system
//!   (not procfs, sysfs or another kernel pseudo file system);
//! - its real path (the handle's, symlinks resolved) must not lie inside dmw's store;
//! - at most `limit` bytes are read (`take(limit + 1)`: a larger file is refused, whatever
//!   its size claims to be).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a file the user named was not read.
#[derive(Debug, thiserror::Error)]
pub enum UserFileError {
    /// It cannot be opened or read.
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    /// It is not a regular file.
    #[error(
        "it is a {0}, not a regular file; dmw reads only regular files: put what you mean in a file and name that"
    )]
    NotRegular(&'static str),
    /// It lives on a kernel pseudo file system (/proc, /sys, …).
    #[error(
        "it is on the kernel's {0} file system, not a file on disk; dmw reads only regular files on disk: copy what you mean into a file and name that"
    )]
    PseudoFileSystem(&'static str),
    /// Its real path is inside dmw's store.
    #[error("{}", in_store(.store, .real.as_deref()))]
    InStore {
        /// The store's real path.
        store: PathBuf,
        /// The file's real path, when it differs from the path given (a symlink).
        real: Option<PathBuf>,
    },
    /// It is larger than the limit.
    #[error("the file is larger than {limit} bytes; name a smaller file")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
}

/// The message of [`UserFileError::InStore`].
fn in_store(store: &Path, real: Option<&Path>) -> String {
    let via = real
        .map(|r| format!(", as {}", r.display()))
        .unwrap_or_default();
    format!(
        "it is inside dmw's store ({}{via}), which holds dmw's own keys and certificates; name a file of your own",
        store.display()
    )
}

/// Read at most `limit` bytes of the regular file at `path`, which must not be inside the
/// store at `store_root` (see the module documentation).
pub fn read(path: &Path, limit: u64, store_root: &Path) -> Result<Vec<u8>, UserFileError> {
    // A first look before opening, so that a device or FIFO is not even opened (opening a
    // device can have effects); the checks that count are made on the handle below.
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.file_type().is_file()
    {
        return Err(UserFileError::NotRegular(kind_of(&meta.file_type())));
    }
    let file = open_nonblocking(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(UserFileError::NotRegular(kind_of(&meta.file_type())));
    }
    if let Some(fs) = pseudo_file_system(&file) {
        return Err(UserFileError::PseudoFileSystem(fs));
    }
    check_outside_store(path, &file, store_root)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(UserFileError::TooLarge { limit });
    }
    Ok(bytes)
}

/// Open for reading without blocking on a FIFO and without taking a terminal.
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// What a non-regular file is, in words.
fn kind_of(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO (named pipe)"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

/// The kernel pseudo file system the opened file is on, if any (Linux; elsewhere none).
#[cfg(target_os = "linux")]
fn pseudo_file_system(file: &File) -> Option<&'static str> {
    use std::os::fd::AsRawFd;
    const PSEUDO: &[(i64, &str)] = &[
        (0x9fa0, "proc"),
        (0x6265_6572, "sysfs"),
        (0x6462_6720, "debugfs"),
        (0x7472_6163, "tracefs"),
        (0x7363_6673, "securityfs"),
        (0xde5e_81e4, "efivarfs"),
        (0x6265_6570, "configfs"),
        (0x0027_e0eb, "cgroup"),
        (0x6367_7270, "cgroup2"),
        (0xcafe_4a11, "bpf"),
        (0x1cd1, "devpts"),
    ];
    // SAFETY: fstatfs writes into the zeroed struct it is given, on a valid open fd.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } != 0 {
        return None;
    }
    // `f_type` is i64 on some targets and u32/i32 on others.
    #[allow(clippy::useless_conversion)]
    let magic = i64::from(st.f_type);
    PSEUDO
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, name)| *name)
}

/// The kernel pseudo file system the opened file is on (none known off Linux).
#[cfg(not(target_os = "linux"))]
fn pseudo_file_system(_file: &File) -> Option<&'static str> {
    None
}

/// Refuse a file whose real path is inside the store: the handle's own path when the OS
/// says it (Linux: /proc/self/fd), else the path given with its symlinks resolved.
fn check_outside_store(path: &Path, file: &File, store_root: &Path) -> Result<(), UserFileError> {
    let Ok(store) = std::fs::canonicalize(store_root) else {
        // No store yet: nothing can be inside it.
        return Ok(());
    };
    let real = handle_path(file)
        .or_else(|| std::fs::canonicalize(path).ok())
        .ok_or_else(|| {
            UserFileError::Io(std::io::Error::other(
                "cannot tell where the file really is",
            ))
        })?;
    if real.starts_with(&store) {
        let given = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        return Err(UserFileError::InStore {
            store,
            real: (real != given).then_some(real),
        });
    }
    Ok(())
}

/// The path the kernel knows for an open file (Linux), symlinks resolved.
fn handle_path(file: &File) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    // A deleted file reads "… (deleted)"; only an absolute path that exists counts.
    (link.is_absolute() && link.exists()).then_some(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("store");
        std::fs::create_dir_all(root.join("certs")).expect("store");
        std::fs::write(root.join("certs/ca-key.pem"), "CA KEY").expect("key");
        (tmp, root)
    }

    #[test]
    fn a_regular_file_within_the_limit_is_read() {
        let (tmp, root) = store();
        let f = tmp.path().join("user-data");
        std::fs::write(&f, "#cloud-config\n").expect("write");
        assert_eq!(read(&f, 64, &root).expect("read"), b"#cloud-config\n");
        // Exactly the limit is fine; one byte more is refused.
        std::fs::write(&f, vec![b'x'; 64]).expect("write");
        assert_eq!(read(&f, 64, &root).expect("read").len(), 64);
        std::fs::write(&f, vec![b'x'; 65]).expect("write");
        assert!(matches!(
            read(&f, 64, &root),
            Err(UserFileError::TooLarge { limit: 64 })
        ));
        // A store that does not exist yet holds nothing.
        assert!(read(&f, 1024, &tmp.path().join("no-store")).is_ok());
    }

    #[test]
    fn devices_fifos_directories_and_proc_are_refused() {
        let (tmp, root) = store();
        let started = std::time::Instant::now();
        for (path, want) in [
            (PathBuf::from("/dev/zero"), "character device"),
            (PathBuf::from("/dev/null"), "character device"),
            (tmp.path().to_path_buf(), "directory"),
        ] {
            let err = read(&path, 64 << 10, &root).expect_err("refused");
            assert!(err.to_string().contains(want), "{path:?}: {err}");
        }
        let fifo = tmp.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("c path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read(&fifo, 64 << 10, &root).expect_err("fifo");
        assert!(err.to_string().contains("FIFO"), "{err}");
        if cfg!(target_os = "linux") {
            for p in ["/proc/self/environ", "/proc/self/status"] {
                let err = read(Path::new(p), 64 << 10, &root).expect_err(p);
                assert!(err.to_string().contains("proc"), "{p}: {err}");
            }
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "refused at once"
        );
    }

    #[test]
    fn the_store_is_refused_directly_and_through_a_symlink() {
        let (tmp, root) = store();
        let key = root.join("certs/ca-key.pem");
        let err = read(&key, 1024, &root).expect_err("in store");
        assert!(
            matches!(err, UserFileError::InStore { real: None, .. }),
            "{err}"
        );
        let link = tmp.path().join("innocent.pem");
        std::os::unix::fs::symlink(&key, &link).expect("symlink");
        let err = read(&link, 1024, &root).expect_err("symlink into the store");
        assert!(err.to_string().contains("inside dmw's store"), "{err}");
        assert!(err.to_string().contains("ca-key.pem"), "{err}");
        // The store reached through a symlinked root is the same store.
        let alias = tmp.path().join("alias");
        std::os::unix::fs::symlink(&root, &alias).expect("alias");
        assert!(read(&key, 1024, &alias).is_err());
        assert!(read(&alias.join("certs/ca-key.pem"), 1024, &root).is_err());
    }
}
