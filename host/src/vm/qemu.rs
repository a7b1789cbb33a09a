//! Booting an image under QEMU: the host side of the QEMU driver (which will reach it
//! through the process capability).
//!
//! [`boot`] makes the machine's directory, with a copy-on-write overlay over the image's
//! disk, the cloud-init seed volume ([`super::seed::Seed::fat_image`]), the serial console
//! log, the QMP socket, QEMU's pid file and `vm.json` (pid, start time, SSH port), and
//! starts `qemu-system-x86_64 -daemonize`: the VM outlives dmw, and [`Vm::load`] finds it
//! again. Networking is QEMU's user mode with SSH forwarded from a free port on 127.0.0.1
//! only. [`Vm::kill`] ends the process; [`Vm::destroy`] also removes every file.

use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::image::Image;
use super::seed::Seed;

/// The QEMU program for x86-64 guests.
pub const QEMU: &str = "qemu-system-x86_64";

/// The kernel command line for images built by [`super::image`].
pub const DEFAULT_APPEND: &str = "root=/dev/vda console=ttyS0";

/// Files in a machine's directory.
const OVERLAY: &str = "overlay.qcow2";
const SEED: &str = "seed.img";
const CONSOLE: &str = "console.log";
const QMP: &str = "qmp.sock";
const PIDFILE: &str = "qemu.pid";
const QEMU_LOG: &str = "qemu.log";
const STATE: &str = "vm.json";

/// How QEMU runs the guest's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Emulation (works everywhere, slower).
    Tcg,
    /// Hardware virtualisation through /dev/kvm.
    Kvm,
}

/// What to boot, and where.
#[derive(Debug, Clone)]
pub struct BootSpec {
    /// The machine's directory (created; must not hold a running VM).
    pub dir: PathBuf,
    /// The disk, kernel and initramfs.
    pub image: Image,
    /// The first-boot configuration.
    pub seed: Seed,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Virtual CPUs.
    pub cpus: u32,
    /// Acceleration.
    pub accel: Accel,
    /// The kernel command line.
    pub append: String,
    /// The overlay's virtual size (`20G`); `None` keeps the image's size.
    pub disk_size: Option<String>,
}

impl BootSpec {
    /// A spec with dmw's defaults: 1024 MiB, 2 CPUs, TCG, [`DEFAULT_APPEND`], the image's size.
    pub fn new(dir: PathBuf, image: Image, seed: Seed) -> BootSpec {
        BootSpec {
            dir,
            image,
            seed,
            memory_mib: 1024,
            cpus: 2,
            accel: Accel::Tcg,
            append: DEFAULT_APPEND.into(),
            disk_size: None,
        }
    }
}

/// A VM started by [`boot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vm {
    /// The machine's directory.
    pub dir: PathBuf,
    /// QEMU's process id.
    pub pid: u32,
    /// The process's start time (clock ticks since boot, /proc/PID/stat): tells a reused
    /// pid from ours.
    pub start_time: u64,
    /// The 127.0.0.1 port forwarded to the guest's port 22.
    pub ssh_port: u16,
}

/// Start a VM (see the module documentation); returns once QEMU has daemonized.
pub fn boot(spec: &BootSpec) -> Result<Vm> {
    if super::image::which(QEMU).is_none() {
        bail!("{QEMU} is not installed: install the Debian package qemu-system-x86");
    }
    if super::image::which("qemu-img").is_none() {
        bail!("qemu-img is not installed: install the Debian package qemu-utils");
    }
    let dir = std::path::absolute(&spec.dir)
        .with_context(|| format!("bad directory {}", spec.dir.display()))?;
    if let Ok(vm) = Vm::load(&dir)
        && vm.is_running()
    {
        bail!("a VM already runs in {} (pid {})", dir.display(), vm.pid);
    }
    let qmp = dir.join(QMP);
    if qmp.as_os_str().len() > 100 {
        bail!(
            "the machine directory {} is too long for a unix socket path",
            dir.display()
        );
    }
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let seed = spec.seed.fat_image()?;
    fs::write(dir.join(SEED), seed).context("cannot write the seed volume")?;
    let overlay = dir.join(OVERLAY);
    if !overlay.exists() {
        let mut create = Command::new("qemu-img");
        create
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(&spec.image.disk)
            .arg(&overlay);
        if let Some(size) = &spec.disk_size {
            create.arg(size);
        }
        run(&mut create, "qemu-img create")?;
    }
    for _ in 0..3 {
        let port = free_port()?;
        match start(spec, &dir, port) {
            Ok(vm) => return Ok(vm),
            // Another process took the port between our probe and QEMU's bind: try another.
            Err(e) if format!("{e:#}").contains("host forwarding") => continue,
            Err(e) => return Err(e),
        }
    }
    bail!("QEMU could not forward a free 127.0.0.1 port three times")
}

fn start(spec: &BootSpec, dir: &Path, port: u16) -> Result<Vm> {
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    for name in [PIDFILE, QMP, STATE] {
        remove_file(&dir.join(name))?;
    }
    let mut cmd = Command::new(QEMU);
    cmd.args(["-nodefaults", "-no-user-config", "-name"])
        .arg(format!("dmw-{}", spec.seed.hostname));
    match spec.accel {
        Accel::Tcg => cmd.args(["-accel", "tcg"]),
        Accel::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host"]),
    };
    cmd.args(["-m", &spec.memory_mib.to_string()])
        .args(["-smp", &spec.cpus.to_string()])
        .arg("-kernel")
        .arg(&spec.image.kernel)
        .arg("-initrd")
        .arg(&spec.image.initrd)
        .args(["-append", &spec.append])
        .arg("-drive")
        .arg(format!(
            "file={},if=virtio,format=qcow2",
            drive_path(&p(OVERLAY))?
        ))
        .arg("-drive")
        .arg(format!(
            "file={},if=virtio,format=raw,readonly=on",
            drive_path(&p(SEED))?
        ))
        .arg("-netdev")
        .arg(format!("user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:22"))
        .args(["-device", "virtio-net-pci,netdev=net0"])
        .args(["-display", "none"])
        .arg("-serial")
        .arg(format!("file:{}", p(CONSOLE)))
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", p(QMP)))
        .arg("-pidfile")
        .arg(p(PIDFILE))
        .arg("-daemonize")
        .current_dir(dir);
    let log = fs::File::create(dir.join(QEMU_LOG))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .with_context(|| format!("cannot run {QEMU}"))?;
    if !status.success() {
        let text = fs::read_to_string(dir.join(QEMU_LOG)).unwrap_or_default();
        bail!("{QEMU} failed ({status}): {}", text.trim());
    }
    let pid: u32 = fs::read_to_string(dir.join(PIDFILE))
        .context("QEMU wrote no pid file")?
        .trim()
        .parse()
        .context("QEMU's pid file holds no pid")?;
    let Some((_, start_time)) = proc_stat(pid) else {
        bail!(
            "QEMU (pid {pid}) exited right after starting; see {}",
            p(CONSOLE)
        );
    };
    let vm = Vm {
        dir: dir.to_path_buf(),
        pid,
        start_time,
        ssh_port: port,
    };
    let json = serde_json::to_string_pretty(&vm)?;
    fs::write(dir.join(STATE), json).context("cannot write vm.json")?;
    Ok(vm)
}

impl Vm {
    /// The VM recorded in `dir` by [`boot`] (running or not).
    pub fn load(dir: &Path) -> Result<Vm> {
        let text = fs::read_to_string(dir.join(STATE))
            .with_context(|| format!("no VM recorded in {}", dir.display()))?;
        serde_json::from_str(&text).context("vm.json is not a VM record")
    }

    /// Whether QEMU still runs (the same process: pid and start time match; not a zombie).
    pub fn is_running(&self) -> bool {
        matches!(proc_stat(self.pid), Some((state, start)) if state != 'Z' && state != 'X' && start == self.start_time)
    }

    /// The serial console's log (kernel and systemd messages).
    pub fn console_log(&self) -> PathBuf {
        self.dir.join(CONSOLE)
    }

    /// The QMP socket.
    pub fn qmp_socket(&self) -> PathBuf {
        self.dir.join(QMP)
    }

    /// Kill QEMU (SIGKILL) and wait up to 10 s until it is gone. A VM that no longer runs
    /// is not an error.
    pub fn kill(&self) -> Result<()> {
        if !self.is_running() {
            return Ok(());
        }
        let pid = libc::pid_t::try_from(self.pid).context("bad pid")?;
        // SAFETY: kill has no memory preconditions; pid and start time were checked above.
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e).with_context(|| format!("cannot kill QEMU (pid {pid})"));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.is_running() {
            if Instant::now() > deadline {
                bail!("QEMU (pid {pid}) still runs 10 s after SIGKILL");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Kill QEMU and remove the machine's directory with every file in it.
    pub fn destroy(self) -> Result<()> {
        self.kill()?;
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", self.dir.display())),
        }
    }
}

/// A path for QEMU's `-drive file=`: commas would end the option.
fn drive_path(path: &str) -> Result<&str> {
    if path.contains(',') {
        bail!("the path {path} contains a comma, which QEMU's -drive cannot take");
    }
    Ok(path)
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// The state letter and start time of a process, from /proc/PID/stat.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of the whole line is the 20th after the name (state is the 3rd field).
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
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
    }

    #[test]
    fn a_dead_vm_is_not_running_and_kill_is_a_no_op() {
        let vm = Vm {
            dir: PathBuf::from("/nonexistent"),
            pid: std::process::id(),
            start_time: 1, // not ours: a reused pid
            ssh_port: 1,
        };
        assert!(!vm.is_running());
        vm.kill().expect("kill of a VM that does not run");
    }

    #[test]
    fn drive_paths_with_commas_are_refused() {
        assert!(drive_path("/a/b").is_ok());
        assert!(drive_path("/a,b").is_err());
    }
}
