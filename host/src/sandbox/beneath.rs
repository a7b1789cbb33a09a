//! Opening a file inside a directory a plugin can write to, without following its links.
//!
//! A plugin (or a program it runs through `process`) can plant a symlink
//! (`HANDLE.log -> ../../../.bashrc`) or a hard link to a file of the user's in its own
//! directory. Every file the host opens or creates there goes through [`open`]: the path
//! is resolved beneath the directory with no symlink anywhere (`openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS` where the kernel has it,
//! else `openat` with `O_NOFOLLOW` one component at a time), never truncated or blocked on
//! while opening (`O_NONBLOCK`: a FIFO does not hang the host), and kept only if it is
//! what was asked for (a regular file, or a socket for [`Kind::Socket`]) with exactly one
//! link. Anything else is refused before a byte is read or written.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read an existing file.
    Read,
    /// Append, creating it (with the given mode) when missing.
    Append(u32),
    /// Create a new file (with the given mode) for writing; an existing name is refused.
    CreateNew(u32),
    /// Write, creating it (with the given mode) when missing; emptied once checked.
    Truncate(u32),
}

/// What the opened file must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file with one link.
    File,
    /// A unix socket with one link (opened `O_PATH`, to connect to through `/proc/self/fd`).
    Socket,
}

/// Why [`open`] refused a file that exists: it is not a plain file of the directory.
fn refused(rel: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{} in the plugin's directory is {why}; dmw opens only plain files there (not through links)",
            rel.display()
        ),
    )
}

/// Open the regular file `rel` (a relative path of plain names) beneath `dir`, following
/// no symlink and accepting no hard-linked file: see the module documentation.
pub fn open(dir: &Path, rel: &Path, mode: Mode) -> io::Result<File> {
    let fd = open_fd(dir, rel, mode, Kind::File)?;
    let file = File::from(fd);
    if let Mode::Truncate(_) = mode {
        file.set_len(0)?;
    }
    Ok(file)
}

/// Make the plugin's directory `dir` (and its parents) when missing, and make it 0700 —
/// only if it is a directory itself, not a symlink put in its place.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is not a directory (a symlink?)", dir.display()),
        ));
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// The unix socket `rel` beneath `dir` (no symlink, one link), as an `O_PATH` descriptor.
pub fn open_socket(dir: &Path, rel: &Path) -> io::Result<OwnedFd> {
    open_fd(dir, rel, Mode::Read, Kind::Socket)
}

fn open_fd(dir: &Path, rel: &Path, mode: Mode, kind: Kind) -> io::Result<OwnedFd> {
    let names = plain_names(rel)?;
    // (`openat2` refuses `O_PATH` with any flag but `O_CLOEXEC`, `O_DIRECTORY`, `O_NOFOLLOW`.)
    let mut flags = libc::O_CLOEXEC;
    let mut perm: u32 = 0;
    match (kind, mode) {
        (Kind::Socket, _) => flags |= libc::O_PATH,
        (Kind::File, Mode::Read) => flags |= libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        (Kind::File, Mode::Append(m)) => {
            flags |=
                libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_NONBLOCK | libc::O_NOCTTY;
            perm = m;
        }
        (Kind::File, Mode::CreateNew(m)) => {
            flags |=
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NONBLOCK | libc::O_NOCTTY;
            perm = m;
        }
        (Kind::File, Mode::Truncate(m)) => {
            // Never O_TRUNC: a hard link would be emptied before it could be checked.
            flags |= libc::O_WRONLY | libc::O_CREAT | libc::O_NONBLOCK | libc::O_NOCTTY;
            perm = m;
        }
    }
    let base = open_dir(dir)?;
    let fd = match openat2(&base, rel, flags, perm) {
        Some(r) => r,
        None => open_by_components(&base, &names, flags, perm),
    }
    .map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::EXDEV) => refused(rel, "a symlink"),
        _ => e,
    })?;
    check(&fd, rel, kind)?;
    if kind == Kind::File {
        // Opened without blocking (a FIFO would have hung); regular files block as usual.
        // SAFETY: fcntl on a descriptor owned here.
        unsafe {
            let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            if fl >= 0 {
                libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
            }
        }
    }
    Ok(fd)
}

/// The components of `rel`: plain names only (no root, `.`, `..` or empty path).
fn plain_names(rel: &Path) -> io::Result<Vec<CString>> {
    let mut names = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => names.push(
                CString::new(n.as_bytes())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in a path"))?,
            ),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a relative path of plain names", rel.display()),
                ));
            }
        }
    }
    if names.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "an empty path"));
    }
    Ok(names)
}

/// The directory itself (the host made it; its own path is the host's, not the plugin's).
fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in a path"))?;
    // SAFETY: a valid C string; the descriptor is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    owned(fd)
}

fn owned(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a descriptor just returned by the kernel, owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// `openat2` beneath `base` with no symlinks; `None` when the kernel (or a seccomp filter)
/// does not have it.
fn openat2(base: &OwnedFd, rel: &Path, flags: i32, perm: u32) -> Option<io::Result<OwnedFd>> {
    let Ok(c) = CString::new(rel.as_os_str().as_bytes()) else {
        return Some(Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a NUL in a path",
        )));
    };
    // SAFETY: open_how is plain data; zero is a valid value for every field.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.mode = if flags & libc::O_CREAT != 0 {
        u64::from(perm)
    } else {
        0
    };
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid descriptor, C string and open_how for the duration of the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            base.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) {
            return None;
        }
        return Some(Err(e));
    }
    Some(owned(fd as RawFd))
}

/// The fallback: each directory opened `O_NOFOLLOW | O_DIRECTORY`, the last name
/// `O_NOFOLLOW`, each relative to the one before.
fn open_by_components(
    base: &OwnedFd,
    names: &[CString],
    flags: i32,
    perm: u32,
) -> io::Result<OwnedFd> {
    let (last, dirs) = names
        .split_last()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "an empty path"))?;
    let mut at: Option<OwnedFd> = None;
    for name in dirs {
        let from = at.as_ref().unwrap_or(base).as_raw_fd();
        // SAFETY: valid descriptor and C string; the result is owned below.
        let fd = unsafe {
            libc::openat(
                from,
                name.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        at = Some(owned(fd)?);
    }
    let from = at.as_ref().unwrap_or(base).as_raw_fd();
    // SAFETY: valid descriptor and C string; the result is owned below.
    let fd = unsafe { libc::openat(from, last.as_ptr(), flags | libc::O_NOFOLLOW, perm) };
    owned(fd)
}

/// The opened file is of `kind` with one link.
fn check(fd: &OwnedFd, rel: &Path, kind: Kind) -> io::Result<()> {
    // SAFETY: fstat writes into a zeroed stat owned here.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let want = match kind {
        Kind::File => libc::S_IFREG,
        Kind::Socket => libc::S_IFSOCK,
    };
    let is = st.st_mode & libc::S_IFMT;
    if is != want {
        let what = match is {
            libc::S_IFLNK => "a symlink",
            libc::S_IFDIR => "a directory",
            libc::S_IFIFO => "a FIFO",
            libc::S_IFSOCK => "a socket",
            libc::S_IFCHR | libc::S_IFBLK => "a device",
            libc::S_IFREG => "a regular file, not a socket",
            _ => "not a regular file",
        };
        return Err(refused(rel, what));
    }
    if st.st_nlink != 1 {
        return Err(refused(
            rel,
            &format!("a file with {} hard links", st.st_nlink),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let root = tempfile::tempdir().expect("tmp");
        let dir = root.path().join("machines/m/driver");
        std::fs::create_dir_all(&dir).expect("dir");
        let victim = root.path().join("victim");
        std::fs::write(&victim, "the user's file\n").expect("victim");
        (root, dir, victim)
    }

    /// Before this module, `OpenOptions::new().create(true).append(true)` on
    /// `HANDLE.log -> ../../../victim` appended to the victim (issue 18, proof 3).
    #[test]
    fn a_planted_symlink_is_not_followed() {
        let (_root, dir, victim) = setup();
        std::os::unix::fs::symlink("../../../victim", dir.join("h.log")).expect("symlink");
        std::os::unix::fs::symlink(&victim, dir.join("abs.log")).expect("symlink");
        std::fs::create_dir(dir.join("sub")).expect("sub");
        std::os::unix::fs::symlink("..", dir.join("up")).expect("symlink");
        for rel in ["h.log", "abs.log", "up/h.log", "up/../../victim"] {
            for mode in [Mode::Append(0o600), Mode::Truncate(0o600), Mode::Read] {
                let r = open(&dir, Path::new(rel), mode);
                assert!(r.is_err(), "{rel} {mode:?} was opened");
            }
        }
        // The non-openat2 path refuses the same.
        let base = open_dir(&dir).expect("dir");
        let names = plain_names(Path::new("h.log")).expect("names");
        let flags = libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC;
        assert!(open_by_components(&base, &names, flags, 0o600).is_err());
        let names = plain_names(Path::new("up/victim")).expect("names");
        assert!(open_by_components(&base, &names, flags, 0o600).is_err());
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "the user's file\n"
        );
    }

    /// A hard link to the user's file has two links: refused, and not emptied by
    /// [`Mode::Truncate`] (which never opens with `O_TRUNC`).
    #[test]
    fn a_planted_hard_link_is_refused_and_the_victim_unchanged() {
        let (_root, dir, victim) = setup();
        std::fs::hard_link(&victim, dir.join("h.log")).expect("hard link");
        for mode in [
            Mode::Append(0o600),
            Mode::Truncate(0o600),
            Mode::Read,
            Mode::CreateNew(0o600),
        ] {
            let e = open(&dir, Path::new("h.log"), mode).expect_err("refused");
            assert!(
                e.kind() == io::ErrorKind::PermissionDenied
                    || e.kind() == io::ErrorKind::AlreadyExists,
                "{mode:?}: {e}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "the user's file\n"
        );
    }

    #[test]
    fn the_directory_is_made_private_but_not_through_a_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let (root, dir, _victim) = setup();
        private_dir(&dir.join("new")).expect("made");
        let mode = std::fs::metadata(dir.join("new"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("dir");
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::os::unix::fs::symlink(&elsewhere, dir.join("link")).expect("symlink");
        assert!(private_dir(&dir.join("link")).is_err());
        let mode = std::fs::metadata(&elsewhere)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "not changed through the symlink");
    }

    #[test]
    fn plain_files_open_and_other_kinds_do_not() {
        let (_root, dir, _victim) = setup();
        let mut f = open(&dir, Path::new("a.log"), Mode::Append(0o600)).expect("create");
        f.write_all(b"one\n").expect("write");
        let mut f = open(&dir, Path::new("a.log"), Mode::Append(0o600)).expect("append");
        f.write_all(b"two\n").expect("write");
        let mut text = String::new();
        open(&dir, Path::new("a.log"), Mode::Read)
            .expect("read")
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "one\ntwo\n");
        let f = open(&dir, Path::new("a.log"), Mode::Truncate(0o600)).expect("truncate");
        assert_eq!(f.metadata().expect("meta").len(), 0);
        assert!(open(&dir, Path::new("a.log"), Mode::CreateNew(0o600)).is_err());
        std::fs::create_dir(dir.join("d")).expect("d");
        assert!(open(&dir, Path::new("d/x"), Mode::CreateNew(0o600)).is_ok());
        // A FIFO neither hangs nor opens.
        let fifo = CString::new(dir.join("fifo").as_os_str().as_bytes()).expect("c");
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(open(&dir, Path::new("fifo"), Mode::Append(0o600)).is_err());
        assert!(open(&dir, Path::new("fifo"), Mode::Read).is_err());
        assert!(open(&dir, Path::new("d"), Mode::Read).is_err());
        for bad in ["", "/etc/passwd", "../x", "./a.log"] {
            assert!(open(&dir, Path::new(bad), Mode::Read).is_err(), "{bad:?}");
        }
        // Sockets: only through open_socket.
        let _l = std::os::unix::net::UnixListener::bind(dir.join("s.sock")).expect("bind");
        assert!(open_socket(&dir, Path::new("s.sock")).is_ok());
        assert!(open(&dir, Path::new("s.sock"), Mode::Read).is_err());
        assert!(open_socket(&dir, Path::new("a.log")).is_err());
    }
}
