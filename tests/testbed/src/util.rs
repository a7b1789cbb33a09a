//! Small helpers shared by the modules: running commands, file locks,
//! process identity, stable hashing, mounts.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` and returns its stdout; a failure names the command and shows its stderr.
pub(crate) fn run(cmd: &mut Command) -> io::Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd`, ignoring a failure (used in teardown, where things may already be gone).
pub(crate) fn run_quiet(cmd: &mut Command) {
    let _ = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Shorthand for `Command::new(program).args(args)`.
pub(crate) fn cmd(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args);
    c
}

/// An exclusive `flock(2)` on a file, released on drop. Works across processes and threads.
pub(crate) struct Lock(#[allow(dead_code)] File);

impl Lock {
    /// Blocks until the lock on `path` (created if missing) is ours.
    pub(crate) fn acquire(path: &Path) -> io::Result<Lock> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
            })?;
        // SAFETY: flock on a valid open descriptor.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Lock(f))
    }
}

/// A process identity that survives PID reuse: the PID and its start time (in clock ticks since boot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub pid: u32,
    pub start: u64,
}

impl Owner {
    /// The calling process.
    pub(crate) fn me() -> io::Result<Owner> {
        let pid = std::process::id();
        let start = proc_stat(pid)
            .map(|s| s.1)
            .ok_or_else(|| io::Error::other("cannot read /proc/self/stat"))?;
        Ok(Owner { pid, start })
    }

    /// Parses `"PID START"`.
    pub(crate) fn parse(s: &str) -> Option<Owner> {
        let mut it = s.split_whitespace();
        Some(Owner {
            pid: it.next()?.parse().ok()?,
            start: it.next()?.parse().ok()?,
        })
    }

    /// True while that very process runs (a zombie counts as dead).
    pub(crate) fn alive(&self) -> bool {
        matches!(proc_stat(self.pid), Some((state, start)) if start == self.start && state != 'Z')
    }
}

/// State letter and start time of a process, from /proc/PID/stat.
pub(crate) fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    Some((state, fields.get(19)?.parse().ok()?))
}

/// PIDs of all processes currently visible in /proc.
pub(crate) fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Sends SIGKILL to `pids` and waits (up to 10 s) until they are gone or zombies.
pub(crate) fn kill_and_wait(pids: &[u32]) {
    for &pid in pids {
        // SAFETY: plain kill(2); a vanished PID only yields ESRCH.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if pids
            .iter()
            .all(|&p| matches!(proc_stat(p), None | Some(('Z', _))))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// FNV-1a, 64 bits: a hash that is stable across Rust releases (for cache keys).
pub(crate) fn fnv64(data: &str) -> u64 {
    data.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Mount points at or below `dir` (deepest first), from /proc/self/mountinfo.
pub(crate) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Unmounts everything at or below `dir` (lazily if busy); fails if something stays mounted.
pub(crate) fn unmount_all(dir: &Path) -> io::Result<()> {
    for _ in 0..5 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return Ok(());
        }
        for m in mounts {
            let c = std::ffi::CString::new(m.as_os_str().as_encoded_bytes())
                .map_err(io::Error::other)?;
            // SAFETY: umount2 with a valid NUL-terminated path.
            if unsafe { libc::umount2(c.as_ptr(), 0) } != 0 {
                // SAFETY: as above.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
    match mounts_under(dir).first() {
        None => Ok(()),
        Some(m) => Err(io::Error::other(format!("{} stays mounted", m.display()))),
    }
}

/// Removes a directory tree, refusing if anything below it is still mounted.
pub(crate) fn remove_tree(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    unmount_all(dir)?;
    fs::remove_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot remove {}: {e}", dir.display())))
}

/// Writes `contents` to `path`, creating parent directories, replacing a file or symlink there.
pub(crate) fn write_file(path: &Path, contents: &str) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    if path.symlink_metadata().is_ok() {
        fs::remove_file(path)?;
    }
    fs::write(path, contents)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display())))
}
