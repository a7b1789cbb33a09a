//! `process`: local programs the plugin declared, run by the host for the machine being
//! worked on (see wit/process.wit).
//!
//! - A program is named by the plugin and must be one of its declared `program` entries:
//!   a bare name is looked up in the host's PATH, a declared absolute path is used as is.
//!   Anything else is `denied`.
//! - A program declared with argument forms (`program NAME ["info", "*"]`) runs only with
//!   arguments that match one of them (`plugin::declaration::args_match`); other arguments
//!   are `denied`, naming the forms. A program declared without forms runs with any
//!   arguments: it can do anything the user can, and the user approved it as that.
//! - No shell: the arguments are handed to `execve` as they are (each checked: no NUL,
//!   bounded length and count). The environment is cleared but for LANG, a sanitized PATH
//!   ([`sanitized_path`]: the host's absolute entries, none in the machine's directory)
//!   and the process's tag ([`TAG_VAR`]); the working directory is the plugin's own
//!   directory of the machine (`machines/NAME/driver`); no file a program writes may grow
//!   past the directory's quota (`RLIMIT_FSIZE`, [`crate::sandbox::quota`]).
//! - `run` waits with a timeout (capped) and caps the output it keeps; nothing it started
//!   outlives it (its process group and every process carrying its tag are killed when it
//!   returns).
//! - `spawn` starts a detached process (own session and process group, stdin empty,
//!   output to `HANDLE.log` in the plugin's directory, opened through [`crate::sandbox::beneath`]:
//!   never through a link the plugin planted; a log over [`LOG_CAP`] is emptied first)
//!   and records its pid, start time (from /proc/PID/stat) and tag under the plugin's
//!   handle name in `machines/NAME/processes.json`, a host-owned file outside the
//!   plugin's directory. The plugin refers to processes only by handle: it can ask about,
//!   signal and kill only processes the host started for this machine, and a reused pid
//!   (another start time) is never signalled.
//! - Killing a handle (`kill`, `dmw rm`, a failed create) ends the whole tree: the
//!   process group and session the host made for it, and every process that inherited
//!   its tag, so a child that daemonized (double fork, `setsid`) dies with it.
//! - `free-port`: a port on 127.0.0.1 that was free a moment ago (the plugin has no sockets).

use std::collections::BTreeMap;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use wasmtime::component::Linker;

use super::forms::{ProgramArgs, args_match, describe_form};
use super::{Capability, CapabilityView, Granted, Lend, Lent, Offer, project};
use crate::sandbox::contract::v0_1::driver::dmw::plugin::process::{self as wit, Host, Signal};
use crate::sandbox::contract::v0_1::types::{Error, ExecOutput};
use crate::state::store::MachineDir;

/// The `process` capability (declared by the driver with its programs, granted by the user).
pub const fn capability<T: CapabilityView>() -> Capability<T> {
    Capability {
        name: "process",
        link: add_to_linker::<T>,
        lend,
        wasi: super::no_wasi,
    }
}

/// Most arguments one program gets.
const MAX_ARGS: usize = 256;
/// Longest argument (bytes).
const MAX_ARG: usize = 4096;
/// Longest program name (bytes).
const MAX_PROGRAM: usize = 253;
/// Longest handle name.
const MAX_HANDLE: usize = 32;
/// Most processes recorded for one machine.
const MAX_HANDLES: usize = 16;
/// Output kept per stream of `run`.
pub const OUTPUT_CAP: usize = 1 << 20;
/// Longest `run` may wait.
const MAX_RUN: Duration = Duration::from_secs(30 * 60);
/// Longest one `wait` may wait.
const MAX_WAIT: Duration = Duration::from_secs(10 * 60);
/// How long `kill` waits for a killed process to be gone.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// The environment variables a program gets from dmw's own environment as they are
/// (PATH is sanitized, [`sanitized_path`]; nothing else passes).
const KEPT_ENV: &[&str] = &["LANG"];
/// The variable that tags every process the host starts (and, inherited, their
/// children) with a random value recorded for it, so the whole tree can be ended.
pub const TAG_VAR: &str = "DMW_PROCESS_TAG";
/// The handle under which the `vm` capability records a machine's QEMU (reserved: a
/// plugin's `process` calls cannot name it).
pub const VM_HANDLE: &str = "vm";
/// Largest a spawn log (`HANDLE.log`) may be when its process is (re)started: a larger
/// one is emptied first.
pub const LOG_CAP: u64 = 64 << 20;

/// What `process` works with for one machine.
pub struct ProcessCtx {
    /// The machine's name, for messages.
    machine: String,
    /// The machine's directory (holds the host-owned `processes.json`).
    dir: MachineDir,
    /// The programs the plugin declared.
    programs: Vec<String>,
    /// The argument forms of the programs declared with them.
    program_args: Vec<ProgramArgs>,
    /// The largest file a program may write (`RLIMIT_FSIZE`); `None`: the directory's
    /// quota, read from the environment when the program starts.
    file_limit: Option<u64>,
}

/// Link `process` through [`ProcessCtx`].
pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Lend<ProcessCtx>>(linker, project::<T, ProcessCtx>)
}

/// Lent only when the command works on one machine (its directory is known).
fn lend(offer: &Offer, lent: &mut Lent) {
    if let Some(dir) = &offer.machine_dir {
        lent.insert(ProcessCtx {
            machine: dir
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            dir: dir.clone(),
            programs: offer.programs.clone(),
            program_args: offer.program_args.clone(),
            file_limit: None,
        });
    }
}

/// One process the host started, as recorded in `processes.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// Its pid, also the id of the session and process group it leads (the host starts
    /// it with `setsid`).
    pub pid: u32,
    /// Its start time (clock ticks since boot, /proc/PID/stat field 22).
    pub start_time: u64,
    /// The program, as resolved.
    pub program: PathBuf,
    /// The value of [`TAG_VAR`] it (and every child that kept its environment) carries;
    /// empty in records made before tags.
    #[serde(default)]
    pub tag: String,
}

impl Started {
    /// Whether it still runs: the same process (pid and start time match), not a zombie.
    pub fn is_running(&self) -> bool {
        matches!(proc_stat(self.pid), Some((state, start)) if state != 'Z' && state != 'X' && start == self.start_time)
    }

    /// Every live process of its tree: the leader (if it is still the same process), the
    /// members of the session and process group it leads, and every process carrying
    /// its tag. When the leader's pid names another process (reused), its session and
    /// group are gone (the kernel does not reuse a pid still in use as a session or
    /// group id), so only tagged processes are taken.
    pub fn tree(&self) -> Vec<u32> {
        let leader = proc_stat(self.pid);
        let reused = leader.is_some_and(|(_, start)| start != self.start_time);
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Some(ids) = proc_ids(pid) else {
                continue;
            };
            if ids.state == 'Z' || ids.state == 'X' {
                continue;
            }
            let member = self.pid != 0
                && !reused
                && (pid == self.pid || ids.session == self.pid || ids.group == self.pid);
            if member || (!self.tag.is_empty() && carries_tag(pid, &self.tag)) {
                found.push(pid);
            }
        }
        found.retain(|&p| p != std::process::id());
        found
    }
}

/// The ids of a process, from /proc/PID/stat.
struct ProcIds {
    state: char,
    group: u32,
    session: u32,
}

fn proc_ids(pid: u32) -> Option<ProcIds> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcIds {
        state: fields.first()?.chars().next()?,
        group: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
    })
}

/// Whether process `pid` (one of the user's: others' environments are not readable)
/// carries `TAG_VAR=tag`.
fn carries_tag(pid: u32, tag: &str) -> bool {
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let want = format!("{TAG_VAR}={tag}");
    env.split(|&b| b == 0).any(|v| v == want.as_bytes())
}

/// A new random tag (128 bits, hex).
fn new_tag() -> io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// The PATH programs get: the host's PATH with only absolute entries (an empty entry,
/// `.` or a relative one would point into the plugin's writable directory, the working
/// directory), none inside `machine_dir` (the plugin's directory is in it).
pub fn sanitized_path(host_path: &std::ffi::OsStr, machine_dir: &Path) -> std::ffi::OsString {
    let kept: Vec<PathBuf> = std::env::split_paths(host_path)
        .filter(|d| d.is_absolute())
        .filter(|d| {
            !d.components().any(|c| c == std::path::Component::ParentDir)
                && !d.starts_with(machine_dir)
        })
        .collect();
    std::env::join_paths(kept).unwrap_or_default()
}

/// The processes recorded in a machine's directory (none when the file is missing); read
/// through [`crate::sandbox::beneath`] (no link followed), at most 1 MiB.
pub fn recorded(dir: &MachineDir) -> Result<BTreeMap<String, Started>> {
    use std::io::Read;
    let name = Path::new(crate::state::store::layout::PROCESSES_FILE);
    match crate::sandbox::beneath::open(dir.path(), name, crate::sandbox::beneath::Mode::Read) {
        Ok(f) => {
            let mut bytes = Vec::new();
            f.take(1 << 20)
                .read_to_end(&mut bytes)
                .with_context(|| format!("cannot read {}", dir.processes().display()))?;
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is damaged", dir.processes().display()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.processes().display())),
    }
}

fn save(dir: &MachineDir, map: &BTreeMap<String, Started>) -> Result<()> {
    let json = serde_json::to_vec_pretty(map).context("cannot encode the process records")?;
    crate::state::store::write_private(&dir.processes(), &json)
}

/// Kill every process recorded for a machine (`rm` of a machine whose driver left some
/// running, e.g. because it failed): SIGKILL, then wait until gone.
pub fn kill_all(dir: &MachineDir) -> Result<()> {
    for (handle, p) in recorded(dir)? {
        kill_started(&p).with_context(|| format!("cannot kill process {handle}"))?;
    }
    Ok(())
}

/// SIGKILL a recorded process's whole tree ([`Started::tree`]) and wait until it is gone.
fn kill_started(p: &Started) -> Result<()> {
    let deadline = Instant::now() + KILL_WAIT;
    loop {
        let tree = p.tree();
        if tree.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "pids {tree:?} (started as pid {}) still run {}s after SIGKILL",
                p.pid,
                KILL_WAIT.as_secs()
            );
        }
        for pid in tree {
            if let Ok(pid) = libc::pid_t::try_from(pid) {
                // SAFETY: kill has no memory preconditions; the pid was found in the tree
                // just now (a tagged process, or a member of the session or group of the
                // leader the record names).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn send(p: &Started, sig: libc::c_int) -> Result<()> {
    let pid = libc::pid_t::try_from(p.pid).context("bad pid")?;
    // SAFETY: kill has no memory preconditions; the caller checked pid and start time.
    if unsafe { libc::kill(pid, sig) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(e).with_context(|| format!("cannot signal pid {pid}"));
        }
    }
    Ok(())
}

/// The state letter and start time of a process, from /proc/PID/stat.
pub fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of the whole line is the 20th after the name (state is the 3rd field).
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// A handle name: `[a-z0-9-]`, 1 to 32 characters.
fn check_handle(handle: &str) -> Result<(), Error> {
    let ok = !handle.is_empty()
        && handle.len() <= MAX_HANDLE
        && handle
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if handle == VM_HANDLE {
        return Err(Error::InvalidInput(format!(
            "process handle {VM_HANDLE:?} is the host's (the `vm` capability's QEMU)"
        )));
    }
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "process handle {:?} is not [a-z0-9-], 1 to {MAX_HANDLE} characters",
            crate::text::sanitize::plugin_text(handle, 40)
        )))
    }
}

fn check_args(args: &[String]) -> Result<(), Error> {
    if args.len() > MAX_ARGS {
        return Err(Error::InvalidInput(format!(
            "{} arguments: at most {MAX_ARGS}",
            args.len()
        )));
    }
    for a in args {
        if a.len() > MAX_ARG || a.contains('\0') {
            return Err(Error::InvalidInput(format!(
                "an argument is longer than {MAX_ARG} bytes or holds a NUL byte: {:?}",
                crate::text::sanitize::plugin_text(a, 60)
            )));
        }
    }
    Ok(())
}

/// The executable `name` in the directories of `path` (a PATH value).
pub fn which_in(name: &str, path: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The executable `name` in the host's PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    which_in(name, &std::env::var("PATH").unwrap_or_default())
}

impl ProcessCtx {
    /// The host's own processes for machine `machine` in `dir` (no program of a plugin's:
    /// the `vm` capability starts QEMU through it, recorded with the machine's others).
    pub fn for_host(machine: &str, dir: MachineDir) -> ProcessCtx {
        ProcessCtx {
            machine: machine.to_string(),
            dir,
            programs: Vec::new(),
            program_args: Vec::new(),
            file_limit: None,
        }
    }

    /// The machine's directory (holds `processes.json`).
    pub fn dir(&self) -> &MachineDir {
        &self.dir
    }

    /// The executable `program` in the sanitized PATH programs get.
    pub fn find(&self, program: &str) -> Option<PathBuf> {
        which_in(program, &self.path().to_string_lossy())
    }

    /// The machine's name.
    pub fn machine(&self) -> &str {
        &self.machine
    }

    /// The plugin's directory of the machine (the programs' working directory).
    pub fn plugin_dir(&self) -> PathBuf {
        self.dir.driver_dir()
    }

    /// The program to run for the plugin's `program`: declared, then found.
    fn resolve(&self, plugin: &str, program: &str) -> Result<PathBuf, Error> {
        if program.is_empty() || program.len() > MAX_PROGRAM || program.contains('\0') {
            return Err(Error::InvalidInput("bad program name".into()));
        }
        if !self.programs.iter().any(|p| p == program) {
            return Err(Error::Denied(format!(
                "plugin {plugin} did not declare the program {:?} (it declared: {})",
                crate::text::sanitize::plugin_text(program, 80),
                if self.programs.is_empty() {
                    "none".to_string()
                } else {
                    self.programs.join(", ")
                }
            )));
        }
        let found = if program.contains('/') {
            let p = PathBuf::from(program);
            (p.is_absolute() && p.is_file()).then_some(p)
        } else {
            which_in(program, &self.path().to_string_lossy())
        };
        found.ok_or_else(|| {
            Error::Failed(format!(
                "{program} is not installed on this computer (not found in PATH); install it{}",
                install_hint(program)
            ))
        })
    }

    /// Check `args` for `program` (declared): any arguments for a program declared without
    /// forms, else they must match one of its forms.
    fn check_form(&self, plugin: &str, program: &str, args: &[String]) -> Result<(), Error> {
        let forms: Vec<&ProgramArgs> = self
            .program_args
            .iter()
            .filter(|f| f.program == program)
            .collect();
        if forms.is_empty() || forms.iter().any(|f| args_match(&f.args, args)) {
            return Ok(());
        }
        let shown: Vec<String> = args
            .iter()
            .take(16)
            .map(|a| format!("{:?}", crate::text::sanitize::plugin_text(a, 80)))
            .collect();
        Err(Error::Denied(format!(
            "machine {}: plugin {plugin} may run {program} only as {}; it asked for the arguments [{}{}]",
            self.machine,
            forms
                .iter()
                .map(|f| format!("`{}`", describe_form(f)))
                .collect::<Vec<_>>()
                .join(" or "),
            shown.join(", "),
            if args.len() > 16 { ", …" } else { "" }
        )))
    }

    /// The plugin's directory (created 0700 when missing): the programs' working directory.
    fn work_dir(&self) -> Result<PathBuf, Error> {
        let work = self.dir.driver_dir();
        crate::sandbox::beneath::private_dir(&work)
            .map_err(|e| Error::Failed(format!("cannot create {}: {e}", work.display())))?;
        Ok(work)
    }

    /// The command for `program`: cleared environment but for LANG, the sanitized PATH
    /// and `tag`; the plugin's directory as working directory; no file larger than the
    /// directory's quota (`RLIMIT_FSIZE`).
    fn command(
        &self,
        program: &Path,
        args: &[String],
        work: &Path,
        tag: &str,
    ) -> Result<std::process::Command, Error> {
        let quota = match self.file_limit {
            Some(limit) => limit,
            None => crate::sandbox::quota::plugin_dir_quota()
                .map_err(|e| Error::Failed(format!("machine {}: {e:#}", self.machine)))?,
        };
        let mut cmd = std::process::Command::new(program);
        cmd.args(args).current_dir(work).env_clear();
        for var in KEPT_ENV {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        cmd.env("PATH", self.path());
        cmd.env(TAG_VAR, tag);
        cmd.stdin(Stdio::null());
        let limit = libc::rlimit {
            rlim_cur: quota as libc::rlim_t,
            rlim_max: quota as libc::rlim_t,
        };
        // SAFETY: setrlimit is async-signal-safe; `limit` is copied into the closure.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(cmd)
    }

    /// The PATH programs get (and are looked up in): [`sanitized_path`] of the host's.
    fn path(&self) -> std::ffi::OsString {
        sanitized_path(
            &std::env::var_os("PATH").unwrap_or_default(),
            self.dir.path(),
        )
    }

    fn records(&self) -> Result<BTreeMap<String, Started>, Error> {
        recorded(&self.dir).map_err(|e| Error::Failed(format!("{e:#}")))
    }

    fn failed(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Failed(format!("machine {}: {what}: {e}", self.machine))
    }

    /// Run `path` (the resolved `program`) with `args` in `work`, waiting at most `limit`;
    /// its output whatever its exit status. Nothing it started outlives it.
    pub async fn run_program(
        &self,
        program: &str,
        path: &Path,
        args: &[String],
        work: &Path,
        limit: Duration,
    ) -> Result<ExecOutput, Error> {
        let tag =
            new_tag().map_err(|e| self.failed("cannot read random bytes for a process tag", e))?;
        let cmd = self.command(path, args, work, &tag)?;
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| self.failed(&format!("cannot run {program}"), e))?;
        // Nothing it started outlives `run`: its group and every process with its tag.
        let tree = Started {
            pid: child.id().unwrap_or_default(),
            start_time: child.id().and_then(proc_stat).map(|(_, t)| t).unwrap_or(0),
            program: path.to_path_buf(),
            tag,
        };
        let out = child.stdout.take().map(|o| read_capped(o, OUTPUT_CAP));
        let err = child.stderr.take().map(|e| read_capped(e, OUTPUT_CAP));
        let outputs = tokio::spawn(async move {
            let (o, e) = match (out, err) {
                (Some(o), Some(e)) => tokio::join!(o, e),
                _ => (Vec::new(), Vec::new()),
            };
            (o, e)
        });
        let (exit_code, timed_out) = match tokio::time::timeout(limit, child.wait()).await {
            Ok(Ok(status)) => (status.code().unwrap_or(-1), false),
            Ok(Err(e)) => return Err(self.failed(&format!("waiting for {program}"), e)),
            Err(_) => {
                // The whole process group: a program's own children go with it.
                if let Some(pid) = child.id().and_then(|p| libc::pid_t::try_from(p).ok()) {
                    // SAFETY: kill has no memory preconditions; the group is the child's own.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                }
                let _ = child.kill().await;
                (-1, true)
            }
        };
        // The program was reaped: its pid is free, so only the group's members and the
        // tagged processes are left to end.
        let leftover = tokio::task::spawn_blocking(move || kill_started(&tree)).await;
        if let Ok(Err(e)) = leftover {
            return Err(self.failed(&format!("{program} left processes behind"), e));
        }
        // Output still open after the program ended (a grandchild holding the pipe) is
        // not waited for long.
        let (stdout, mut stderr) = tokio::time::timeout(Duration::from_secs(5), outputs)
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        if timed_out {
            stderr.extend_from_slice(
                format!("\ntimed out after {} ms", limit.as_millis()).as_bytes(),
            );
        }
        Ok(ExecOutput {
            exit_code,
            stdout,
            stderr,
        })
    }

    /// Start `path` (the resolved `program`) with `args` in `work` detached under `handle`
    /// (its own session; output to `log`) and record it; its pid. Fails if a process
    /// recorded under `handle` still runs; what is left of an ended one is killed first.
    pub fn spawn_program(
        &self,
        handle: &str,
        program: &str,
        path: &Path,
        args: &[String],
        work: &Path,
        log: std::fs::File,
    ) -> Result<u32, Error> {
        let mut map = self.records()?;
        if let Some(p) = map.get(handle)
            && p.is_running()
        {
            return Err(Error::InvalidInput(format!(
                "process {handle} still runs (pid {})",
                p.pid
            )));
        }
        // What is left of an ended process under this handle (a child it left
        // behind) ends before the handle names a new one.
        if let Some(old) = map.remove(handle) {
            kill_started(&old).map_err(|e| self.failed(&format!("kill {handle}"), e))?;
        }
        // A record is kept while anything of its tree lives (`rm` ends it).
        map.retain(|_, p| !p.tree().is_empty());
        if map.len() >= MAX_HANDLES {
            return Err(Error::InvalidInput(format!(
                "{MAX_HANDLES} processes already run for this machine"
            )));
        }
        let log2 = log
            .try_clone()
            .map_err(|e| self.failed("cannot open the process log", e))?;
        let tag =
            new_tag().map_err(|e| self.failed("cannot read random bytes for a process tag", e))?;
        let mut cmd = self.command(path, args, work, &tag)?;
        cmd.stdout(log).stderr(log2);
        // Its own session: no terminal, and dmw's Ctrl-C does not reach it.
        // SAFETY: setsid is async-signal-safe and touches no memory.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| self.failed(&format!("cannot start {program}"), e))?;
        let pid = child.id();
        let start_time = proc_stat(pid).map(|(_, t)| t).unwrap_or(0);
        // Reap it if it ends while dmw still runs (no zombie); after dmw exits, init does.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        map.insert(
            handle.to_string(),
            Started {
                pid,
                start_time,
                program: path.to_path_buf(),
                tag,
            },
        );
        save(&self.dir, &map).map_err(|e| self.failed("cannot record the process", e))?;
        Ok(pid)
    }

    /// Whether the process recorded under `handle` still runs.
    pub fn is_running(&self, handle: &str) -> Result<bool, Error> {
        Ok(self.records()?.get(handle).is_some_and(Started::is_running))
    }

    /// Send signal number `sig` to the process under `handle`, if it still runs.
    pub fn signal(&self, handle: &str, sig: libc::c_int) -> Result<(), Error> {
        match self.records()?.remove(handle) {
            Some(p) if p.is_running() => {
                send(&p, sig).map_err(|e| self.failed(&format!("signal {handle}"), e))
            }
            _ => Ok(()),
        }
    }

    /// Wait up to `limit` for the process under `handle` to end; true when it did.
    pub async fn wait_for(&self, handle: &str, limit: Duration) -> Result<bool, Error> {
        let Some(p) = self.records()?.remove(handle) else {
            return Ok(true);
        };
        let deadline = Instant::now() + limit;
        while p.is_running() {
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(true)
    }

    /// Kill the tree of the process under `handle`, wait until it is gone and forget it.
    pub fn kill_handle(&self, handle: &str) -> Result<(), Error> {
        let mut map = self.records()?;
        let Some(p) = map.remove(handle) else {
            return Ok(());
        };
        kill_started(&p).map_err(|e| self.failed(&format!("kill {handle}"), e))?;
        save(&self.dir, &map).map_err(|e| self.failed("cannot record the process", e))
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    pub fn free_port(&self) -> Result<u16, Error> {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| self.failed("cannot find a free port on 127.0.0.1", e))
    }
}

/// The log of process `handle` in the plugin's directory `work`, for appending: opened
/// beneath the directory without following a link ([`crate::sandbox::beneath`]), emptied first
/// when it is over [`LOG_CAP`].
fn open_log(work: &Path, handle: &str) -> io::Result<std::fs::File> {
    let name = PathBuf::from(format!("{handle}.log"));
    let log =
        crate::sandbox::beneath::open(work, &name, crate::sandbox::beneath::Mode::Append(0o600))?;
    if log.metadata()?.len() > LOG_CAP {
        log.set_len(0)?;
    }
    Ok(log)
}

/// The Debian package to install for a program dmw's drivers use.
pub fn install_hint(program: &str) -> &'static str {
    match program {
        "qemu-system-x86_64" => " (Debian: apt-get install qemu-system-x86)",
        "qemu-img" => " (Debian: apt-get install qemu-utils)",
        _ => "",
    }
}

/// Read at most `cap` bytes of `reader` (the rest is read and dropped, so the writer
/// never blocks on a full pipe).
async fn read_capped<R: AsyncRead + Unpin>(mut reader: R, cap: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

fn timeout_of(ms: u32, max: Duration) -> Duration {
    Duration::from_millis(u64::from(ms)).min(max)
}

impl Host for Granted<'_, ProcessCtx> {
    async fn run(
        &mut self,
        program: String,
        args: Vec<String>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<ExecOutput, Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("process")));
        };
        let path = match ctx.resolve(self.plugin, &program) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) =
            check_args(&args).and_then(|()| ctx.check_form(self.plugin, &program, &args))
        {
            return Ok(Err(e));
        }
        let work = match ctx.work_dir() {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        Ok(ctx
            .run_program(
                &program,
                &path,
                &args,
                &work,
                timeout_of(timeout_ms, MAX_RUN),
            )
            .await)
    }

    async fn spawn(
        &mut self,
        handle: String,
        program: String,
        args: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("process")));
        };
        let spawned = (|| {
            check_handle(&handle)?;
            let path = ctx.resolve(self.plugin, &program)?;
            check_args(&args)?;
            ctx.check_form(self.plugin, &program, &args)?;
            let work = ctx.work_dir()?;
            let log = open_log(&work, &handle)
                .map_err(|e| ctx.failed(&format!("cannot open the log of process {handle}"), e))?;
            ctx.spawn_program(&handle, &program, &path, &args, &work, log)
        })();
        Ok(spawned)
    }

    async fn running(&mut self, handle: String) -> wasmtime::Result<Result<bool, Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("process")));
        };
        Ok(check_handle(&handle).and_then(|()| ctx.is_running(&handle)))
    }

    async fn send_signal(
        &mut self,
        handle: String,
        sig: Signal,
    ) -> wasmtime::Result<Result<(), Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("process")));
        };
        let number = match sig {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
            Signal::Int => libc::SIGINT,
            Signal::Hup => libc::SIGHUP,
        };
        Ok(check_handle(&handle).and_then(|()| ctx.signal(&handle, number)))
    }

    async fn wait(
        &mut self,
        handle: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("process")));
        };
        if let Err(e) = check_handle(&handle) {
            return Ok(Err(e));
        }
        Ok(ctx
            .wait_for(&handle, timeout_of(timeout_ms, MAX_WAIT))
            .await)
    }

    async fn kill(&mut self, handle: String) -> wasmtime::Result<Result<(), Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("process")));
        };
        Ok(check_handle(&handle).and_then(|()| ctx.kill_handle(&handle)))
    }

    async fn free_port(&mut self) -> wasmtime::Result<Result<u16, Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("process")));
        };
        Ok(ctx.free_port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_reads_our_own_process() {
        let (state, start) = proc_stat(std::process::id()).expect("own stat");
        assert!(state == 'R' || state == 'S');
        assert!(start > 0);
        assert!(proc_stat(u32::MAX).is_none());
        let reused = Started {
            pid: std::process::id(),
            start_time: 1, // not ours: a reused pid
            program: PathBuf::from("/bin/true"),
            tag: String::new(),
        };
        assert!(
            reused.tree().is_empty(),
            "a reused pid's session is not ours"
        );
        assert!(!reused.is_running());
        kill_started(&reused).expect("a process that is not ours is left alone");
    }

    #[test]
    fn handles_and_args_are_checked() {
        for ok in ["qemu", "vm-1", "a"] {
            assert!(check_handle(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../x", "A", "a b", "a/b", &"x".repeat(33)] {
            assert!(check_handle(bad).is_err(), "{bad:?}");
        }
        assert!(check_args(&["-m".into(), "1024".into()]).is_ok());
        assert!(check_args(&["a\0b".into()]).is_err());
        assert!(check_args(&vec![String::new(); MAX_ARGS + 1]).is_err());
        assert!(check_args(&["x".repeat(MAX_ARG + 1)]).is_err());
    }

    #[test]
    fn arguments_outside_the_declared_forms_are_denied() {
        let dir = tempfile::tempdir().expect("tmp");
        let form = |program: &str, args: &[&str]| ProgramArgs {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        let ctx = ProcessCtx {
            machine: "m1".into(),
            dir: MachineDir::at(dir.path()),
            programs: vec!["qemu-img".into(), "sh".into()],
            program_args: vec![
                form("qemu-img", &["info", "--output=json", "*"]),
                form("qemu-img", &["--version"]),
            ],
            file_limit: None,
        };
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(
            ctx.check_form("p", "qemu-img", &args(&["--version"]))
                .is_ok()
        );
        assert!(
            ctx.check_form(
                "p",
                "qemu-img",
                &args(&["info", "--output=json", "/d.qcow2"])
            )
            .is_ok()
        );
        let Err(Error::Denied(text)) = ctx.check_form(
            "p",
            "qemu-img",
            &args(&["convert", "-O", "raw", "/home/u/.ssh/id_ed25519", "out"]),
        ) else {
            panic!("convert was not denied");
        };
        assert!(
            text.contains("machine m1: plugin p may run qemu-img only as `qemu-img info --output=json <a value>` or `qemu-img --version`; it asked for the arguments [\"convert\"")
            ,
            "{text}"
        );
        // Declared without forms: any arguments (full trust, approved as such).
        assert!(ctx.check_form("p", "sh", &args(&["-c", "id"])).is_ok());
    }

    #[test]
    fn only_declared_programs_resolve() {
        let dir = tempfile::tempdir().expect("tmp");
        let ctx = ProcessCtx {
            machine: "m".into(),
            dir: MachineDir::at(dir.path()),
            programs: vec!["sh".into(), "/bin/true".into()],
            program_args: Vec::new(),
            file_limit: None,
        };
        assert!(ctx.resolve("p", "sh").is_ok());
        assert!(ctx.resolve("p", "/bin/true").is_ok());
        assert!(matches!(ctx.resolve("p", "ls"), Err(Error::Denied(_))));
        assert!(matches!(ctx.resolve("p", "/bin/sh"), Err(Error::Denied(_))));
        assert!(matches!(ctx.resolve("p", "true"), Err(Error::Denied(_))));
    }

    #[test]
    fn path_is_sanitized() {
        let machine = Path::new("/store/machines/m");
        let got = sanitized_path(
            std::ffi::OsStr::new(
                "/store/machines/m/driver::.:bin:/usr/local/bin:/usr/bin:/x/../y:/bin",
            ),
            machine,
        );
        assert_eq!(got, "/usr/local/bin:/usr/bin:/bin");
        assert_eq!(sanitized_path(std::ffi::OsStr::new(""), machine), "");
    }

    /// Processes (not zombies) whose command line is exactly `args`.
    fn live_with_args(args: &[&str]) -> Vec<u32> {
        let want: Vec<u8> = args
            .iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        std::fs::read_dir("/proc")
            .expect("proc")
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want)
                    && proc_ids(*pid).is_some_and(|i| i.state != 'Z')
            })
            .collect()
    }

    /// Before the tag, `kill_all` signalled only the recorded pid: a child that left the
    /// session (`setsid -f`) survived `dmw rm`. And a spawn log planted as a symlink was
    /// appended to (issue 18, proof 3).
    #[tokio::test]
    async fn a_daemonized_child_dies_with_its_handle_and_a_planted_log_is_refused() {
        if which("setsid").is_none() || which("sleep").is_none() {
            eprintln!("skipped: no setsid or sleep");
            return;
        }
        let root = tempfile::tempdir().expect("tmp");
        let dir = MachineDir::at(root.path().join("m"));
        std::fs::create_dir_all(dir.driver_dir()).expect("dir");
        let mut ctx = ProcessCtx {
            machine: "m".into(),
            dir: dir.clone(),
            programs: vec!["setsid".into()],
            program_args: Vec::new(),
            file_limit: None,
        };
        let mut g = Granted {
            ctx: Some(&mut ctx),
            plugin: "p",
        };
        // A unique command line, to find the daemon by.
        let marker = format!("{}.{}", 3000 + std::process::id() % 997, std::process::id());
        let args: Vec<String> = ["-f", "sleep", &marker].map(String::from).to_vec();
        g.spawn("daemon".into(), "setsid".into(), args)
            .await
            .expect("call")
            .expect("spawned");
        let deadline = Instant::now() + Duration::from_secs(10);
        let daemon = loop {
            if let Some(&pid) = live_with_args(&["sleep", &marker]).first() {
                break pid;
            }
            assert!(Instant::now() < deadline, "the daemon never started");
            std::thread::sleep(Duration::from_millis(50));
        };
        let records = recorded(&dir).expect("records");
        let started = records.get("daemon").expect("recorded");
        assert_eq!(started.tag.len(), 32);
        assert_ne!(
            proc_ids(daemon).map(|i| i.session),
            Some(started.pid),
            "the daemon left the session the host made"
        );
        assert!(started.tree().contains(&daemon), "found by its tag");
        kill_all(&dir).expect("kill all");
        assert!(
            live_with_args(&["sleep", &marker]).is_empty(),
            "the daemon outlived kill_all"
        );

        // A planted symlink and a planted hard link as the spawn log: refused.
        let victim = root.path().join("victim");
        std::fs::write(&victim, "mine\n").expect("victim");
        std::os::unix::fs::symlink("../../victim", dir.driver_dir().join("planted.log"))
            .expect("symlink");
        std::fs::hard_link(&victim, dir.driver_dir().join("hard.log")).expect("hard link");
        for handle in ["planted", "hard"] {
            let r = g
                .spawn(handle.into(), "setsid".into(), vec!["--version".into()])
                .await
                .expect("call");
            assert!(matches!(r, Err(Error::Failed(_))), "{handle}: {r:?}");
        }
        assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "mine\n");
    }

    /// Before the quota, a program could fill the plugin's directory without bound.
    #[tokio::test]
    async fn a_program_cannot_write_a_file_past_the_quota() {
        if which("dd").is_none() {
            eprintln!("skipped: no dd");
            return;
        }
        let root = tempfile::tempdir().expect("tmp");
        let dir = MachineDir::at(root.path().join("m"));
        let mut ctx = ProcessCtx {
            machine: "m".into(),
            dir: dir.clone(),
            programs: vec!["dd".into()],
            program_args: Vec::new(),
            file_limit: Some(1 << 20),
        };
        let mut g = Granted {
            ctx: Some(&mut ctx),
            plugin: "p",
        };
        let args = ["if=/dev/zero", "of=big", "bs=64K", "count=64"].map(String::from);
        let out = g
            .run("dd".into(), args.to_vec(), 30_000)
            .await
            .expect("call")
            .expect("ran");
        assert_ne!(out.exit_code, 0, "{out:?}");
        let size = std::fs::metadata(dir.driver_dir().join("big"))
            .expect("big")
            .len();
        assert!(size <= 1 << 20, "{size}");
    }

    #[test]
    fn a_spawn_log_over_its_cap_is_emptied() {
        let root = tempfile::tempdir().expect("tmp");
        let f = std::fs::File::create(root.path().join("h.log")).expect("log");
        f.set_len(LOG_CAP + 1).expect("len");
        let log = open_log(root.path(), "h").expect("open");
        assert_eq!(log.metadata().expect("meta").len(), 0);
        std::fs::write(root.path().join("s.log"), "kept\n").expect("small");
        let log = open_log(root.path(), "s").expect("open");
        assert_eq!(log.metadata().expect("meta").len(), 5);
    }
}
