//! `vm`: one local virtual machine per machine, run by the host under QEMU from typed
//! parameters (see wit/vm.wit).
//!
//! The plugin never names a QEMU argument, a monitor command or a file QEMU opens:
//! - the command line is the host's ([`crate::vm::qemu::command_line`]: always QEMU's
//!   seccomp sandbox, `-nodefaults`, `-no-user-config`), from checked typed values;
//! - the VM's files live in `machines/NAME/vm/`, a host-owned directory beside (not in)
//!   the plugin's, so no link the plugin plants can redirect a file QEMU or the host opens
//!   there; QEMU starts in it and names its files relatively;
//! - the image, kernel and initramfs are files of dmw's image cache (a verified download,
//!   an image `dmw image build` made) or files the user named on the command line (a
//!   value typed for one of the driver's flags, or a file directly in a directory typed
//!   so) — never another path of the user's, never one inside dmw's store outside the
//!   cache. The image's header must name no other file (no backing file, no external data
//!   file: [`crate::vm::qcow2`]); what the host accepted is recorded in `vm/vm.json` and
//!   each start boots that record, not what the plugin's store says;
//! - the monitor is spoken by the host with fixed commands (`query-status`,
//!   `system_powerdown`; [`crate::vm::qmp::ALLOWED`]);
//! - QEMU is recorded with the machine's processes (`processes.json`, handle
//!   [`super::process::VM_HANDLE`]), so `rm` ends it like any process the host started,
//!   and its files may not grow past the plugin directory quota (`RLIMIT_FSIZE`; a disk
//!   larger than the quota is refused when it is made).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::component::Linker;

use super::process::{ProcessCtx, VM_HANDLE, install_hint};
use super::{Capability, CapabilityView, Granted, Lend, Lent, Offer, project};
use crate::sandbox::contract::v0_1::driver::dmw::plugin::vm::{self as wit, Accel, Boot, Host};
use crate::sandbox::contract::v0_1::types::Error;
use crate::state::store::MachineDir;
use crate::vm::qemu::{self, VmDisk, file};

/// The `vm` capability (declared by the driver, granted by the user).
pub const fn capability<T: CapabilityView>() -> Capability<T> {
    Capability {
        name: "vm",
        link: add_to_linker::<T>,
        lend,
        wasi: super::no_wasi,
    }
}

/// Largest seed image.
const MAX_SEED: usize = 16 << 20;
/// Longest path accepted.
const MAX_PATH: usize = 4096;
/// Most bytes of the console returned at once.
const MAX_CONSOLE: u32 = 64 << 10;
/// How long QEMU may take to open its monitor after it started.
const QMP_WAIT: Duration = Duration::from_secs(20);
/// How long one monitor exchange may take.
const QMP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `qemu-img create` may take.
const IMG_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a KVM guest may take to print the kernel's first line before KVM counts as
/// not working (well under a second where it works).
const KVM_PROBE: Duration = Duration::from_secs(5);
/// Longest one `wait` may wait.
const MAX_WAIT: Duration = Duration::from_secs(10 * 60);

/// What `vm` works with for one machine.
pub struct VmCtx {
    /// The machine's name, for messages.
    machine: String,
    /// The VM's host-owned directory, `machines/NAME/vm`.
    dir: PathBuf,
    /// The store's root: no file in it but the image cache's is a VM's input.
    store_root: PathBuf,
    /// dmw's image cache (downloads and built images).
    images: Option<PathBuf>,
    /// The files the user named on this command (canonical paths of the values typed for
    /// the driver's flags).
    user_paths: Vec<PathBuf>,
    /// The machine's processes, where QEMU is recorded.
    procs: ProcessCtx,
}

/// Link `vm` through [`VmCtx`].
pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Lend<VmCtx>>(linker, project::<T, VmCtx>)
}

/// Lent only when the command works on one machine (its directory is known).
fn lend(offer: &Offer, lent: &mut Lent) {
    if let Some(dir) = &offer.machine_dir {
        lent.insert(VmCtx::new(dir, offer.image_cache.clone()));
    }
}

impl VmCtx {
    /// The VM of the machine whose directory is `dir`, with dmw's image cache `images`.
    pub fn new(dir: &MachineDir, images: Option<PathBuf>) -> VmCtx {
        let machine = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let store_root = dir
            .path()
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        VmCtx {
            procs: ProcessCtx::for_host(&machine, dir.clone()),
            machine,
            dir: dir.vm_dir(),
            store_root,
            images,
            user_paths: Vec::new(),
        }
    }

    /// The values the user typed for the driver's flags on this command: those that are
    /// paths of existing files or directories may be a VM's image, kernel or initramfs.
    pub fn name_user_paths(&mut self, typed: &[String]) {
        self.user_paths = typed
            .iter()
            .filter(|v| v.starts_with('/') && v.len() <= MAX_PATH)
            .filter_map(|v| std::fs::canonicalize(v).ok())
            .collect();
    }

    fn failed(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Failed(format!("machine {}: {what}: {e}", self.machine))
    }

    /// The kernel and initramfs the plugin named for the VM's direct boot (empty: none),
    /// each checked as an input ([`VmCtx::input`]).
    fn boot_files(
        &self,
        kernel: Option<&str>,
        initrd: Option<&str>,
    ) -> Result<(Option<PathBuf>, Option<PathBuf>), Error> {
        let file = |what: &str, path: Option<&str>| {
            path.filter(|p| !p.is_empty())
                .map(|p| self.input(what, p))
                .transpose()
        };
        Ok((file("kernel", kernel)?, file("initramfs", initrd)?))
    }

    /// Write the VM's seed and the record of what it boots (`vm.json`) in `work`, once its
    /// disk is made or taken over.
    fn record_disk(&self, work: &Path, seed: &[u8], disk: &VmDisk) -> Result<(), Error> {
        crate::state::store::write_private(&work.join(file::SEED), seed)
            .map_err(|e| self.failed("cannot write the seed", format!("{e:#}")))?;
        let json = serde_json::to_vec_pretty(disk).map_err(|e| self.failed("vm.json", e))?;
        crate::state::store::write_private(&work.join(file::RECORD), &json)
            .map_err(|e| self.failed("cannot record the VM's disk", format!("{e:#}")))
    }

    /// The file `path` the plugin gave as the VM's `what`, if the host may open it for the
    /// VM: see the module documentation. Its canonical path.
    fn input(&self, what: &str, path: &str) -> Result<PathBuf, Error> {
        let shown = crate::text::sanitize::plugin_text(path, 200);
        if !path.starts_with('/') || path.len() > MAX_PATH || path.contains('\0') {
            return Err(Error::InvalidInput(format!(
                "machine {}: the {what} {shown:?} is not an absolute path",
                self.machine
            )));
        }
        let real = std::fs::canonicalize(path)
            .map_err(|e| self.failed(&format!("the {what} {shown}"), e))?;
        let in_cache = self
            .images
            .as_deref()
            .and_then(|i| std::fs::canonicalize(i).ok())
            .is_some_and(|i| real.starts_with(i));
        let store = std::fs::canonicalize(&self.store_root).unwrap_or(self.store_root.clone());
        let named = self
            .user_paths
            .iter()
            .any(|u| real == *u || real.parent() == Some(u.as_path()));
        let allowed = in_cache || (named && !real.starts_with(&store));
        if !allowed {
            return Err(Error::Denied(format!(
                "machine {}: the {what} {shown} is neither in dmw's image cache nor a file you named on the command line; a VM boots only those",
                self.machine
            )));
        }
        if !std::fs::metadata(&real).is_ok_and(|m| m.is_file()) {
            return Err(Error::InvalidInput(format!(
                "machine {}: the {what} {shown} is not a regular file",
                self.machine
            )));
        }
        Ok(real)
    }

    /// The format of image `path` (already checked by [`Self::input`]): `qcow2` or `raw`.
    fn format_of(&self, path: &Path) -> Result<&'static str, Error> {
        let head = crate::vm::qcow2::read_head(path)
            .map_err(|e| self.failed(&format!("cannot read the image {}", path.display()), e))?;
        qemu::disk_format(&head).map_err(|e| {
            Error::InvalidInput(format!(
                "machine {}: the image {} cannot be used: {e:#}",
                self.machine,
                path.display()
            ))
        })
    }

    /// What the host recorded when it made the VM's disk (damaged: an error).
    fn record(&self) -> Result<Option<VmDisk>, Error> {
        let path = self.dir.join(file::RECORD);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| self.failed(&format!("{} is damaged", path.display()), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.failed(&format!("cannot read {}", path.display()), e)),
        }
    }

    /// The record, when the disk was made; an error saying so otherwise.
    fn made(&self) -> Result<VmDisk, Error> {
        self.record()?
            .filter(|_| self.dir.join(file::DISK).is_file())
            .ok_or_else(|| {
                Error::Failed(format!(
                    "machine {}: its VM has no disk (made by an older dmw, or its files were removed); remove the machine and create it again",
                    self.machine
                ))
            })
    }

    /// A program QEMU brings, found in the sanitized PATH.
    fn program(&self, name: &str) -> Result<PathBuf, Error> {
        self.procs.find(name).ok_or_else(|| {
            Error::Failed(format!(
                "{name} is not installed on this computer (not found in PATH); install it{}",
                install_hint(name)
            ))
        })
    }

    /// The VM's directory, made (0700) when missing.
    fn work_dir(&self) -> Result<&Path, Error> {
        crate::sandbox::beneath::private_dir(&self.dir)
            .map_err(|e| self.failed(&format!("cannot create {}", self.dir.display()), e))?;
        Ok(&self.dir)
    }

    /// One monitor command's `return` value.
    async fn qmp(&self, command: &str) -> Result<serde_json::Value, Error> {
        let exchange = async {
            let stream = super::files::connect_in(&self.dir, file::QMP).await?;
            crate::vm::qmp::command(stream, command)
                .await
                .map_err(|e| self.failed("QMP", format!("{e:#}")))
        };
        let reply = tokio::time::timeout(QMP_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                self.failed(
                    "QMP",
                    format!("QEMU did not answer within {}s", QMP_TIMEOUT.as_secs()),
                )
            })??;
        let v: serde_json::Value =
            serde_json::from_str(&reply).map_err(|e| self.failed("QMP reply", e))?;
        match (v.get("return"), v.get("error")) {
            (Some(r), _) => Ok(r.clone()),
            (_, Some(e)) => Err(self.failed("QEMU refused the command", e)),
            _ => Err(self.failed("QMP", "a reply with neither return nor error")),
        }
    }

    /// QEMU's last error lines from its log (warnings and its "terminating" note left out).
    fn errors(&self) -> String {
        let Ok(log) = std::fs::read(self.dir.join(file::LOG)) else {
            return String::new();
        };
        let log = String::from_utf8_lossy(&log[log.len().saturating_sub(64 << 10)..]).into_owned();
        let lines: Vec<&str> = log
            .lines()
            .map(str::trim)
            .filter(|l| {
                !l.is_empty() && !l.contains("warning:") && !l.contains("terminating on signal")
            })
            .collect();
        let tail = lines[lines.len().saturating_sub(3)..].join("; ");
        crate::text::sanitize::plugin_text(&tail, 600)
    }

    /// Make the VM's disk: see wit/vm.wit.
    async fn create_disk(
        &self,
        disk: &str,
        size: &str,
        kernel: Option<&str>,
        initrd: Option<&str>,
        seed: &[u8],
    ) -> Result<(), Error> {
        if self.procs.is_running(VM_HANDLE)? {
            return Err(Error::InvalidInput(format!(
                "machine {}: its VM runs; stop it before making its disk again",
                self.machine
            )));
        }
        let base = self.input("image", disk)?;
        let format = self.format_of(&base)?;
        let (kernel, initrd) = self.boot_files(kernel, initrd)?;
        if initrd.is_some() && kernel.is_none() {
            return Err(Error::InvalidInput(
                "an initramfs goes with a kernel".into(),
            ));
        }
        let bytes =
            qemu::parse_disk_size(size).map_err(|e| Error::InvalidInput(format!("{e:#}")))?;
        let quota = crate::sandbox::quota::plugin_dir_quota()
            .map_err(|e| self.failed("quota", format!("{e:#}")))?;
        if bytes > quota {
            return Err(Error::InvalidInput(format!(
                "machine {}: a disk of {} is larger than the cap of {} on a machine's files ({}); raise it or ask for a smaller disk",
                self.machine,
                crate::sandbox::quota::show_size(bytes),
                crate::sandbox::quota::show_size(quota),
                crate::sandbox::quota::QUOTA_VAR
            )));
        }
        if seed.len() > MAX_SEED {
            return Err(Error::InvalidInput(format!(
                "the seed image is larger than {} MiB",
                MAX_SEED >> 20
            )));
        }
        let work = self.work_dir()?;
        for name in [file::DISK, file::SEED, file::CONSOLE, file::RECORD] {
            match std::fs::remove_file(work.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.failed(&format!("cannot remove the old {name}"), e)),
            }
        }
        let img = self.program(qemu::QEMU_IMG)?;
        let args: Vec<String> = [
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            format,
            "-b",
            &base.to_string_lossy(),
            file::DISK,
            &bytes.to_string(),
        ]
        .map(String::from)
        .to_vec();
        let out = self
            .procs
            .run_program(qemu::QEMU_IMG, &img, &args, work, IMG_TIMEOUT)
            .await?;
        if out.exit_code != 0 {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(self.failed(
                "qemu-img create",
                crate::text::sanitize::plugin_text(err.trim(), 600),
            ));
        }
        self.record_disk(
            work,
            seed,
            &VmDisk {
                base,
                format: format.to_string(),
                kernel,
                initrd,
            },
        )
    }

    /// Take over a disk an older dmw made in the plugin's directory: see wit/vm.wit.
    fn adopt_disk(
        &self,
        overlay: &str,
        kernel: Option<&str>,
        initrd: Option<&str>,
        seed: &[u8],
    ) -> Result<(), Error> {
        use std::os::unix::fs::MetadataExt;
        if self.made().is_ok() {
            return Err(Error::InvalidInput(format!(
                "machine {}: its VM has a disk already",
                self.machine
            )));
        }
        let records = crate::sandbox::capabilities::process::recorded(self.procs.dir())
            .map_err(|e| self.failed("cannot read its processes", format!("{e:#}")))?;
        if let Some((handle, p)) = records.iter().find(|(_, p)| p.is_running()) {
            return Err(Error::Failed(format!(
                "machine {}: a process an older dmw started for it still runs ({handle}, pid {}); stop it (`kill {}`) and start the machine again",
                self.machine, p.pid, p.pid
            )));
        }
        let plugin_dir = self.procs.plugin_dir();
        let name = Path::new(overlay);
        let file =
            crate::sandbox::beneath::open(&plugin_dir, name, crate::sandbox::beneath::Mode::Read)
                .map_err(|e| {
                self.failed(
                    &format!("the disk {overlay:?} of the driver's directory"),
                    e,
                )
            })?;
        let meta = file
            .metadata()
            .map_err(|e| self.failed("the old disk", e))?;
        let mut head = Vec::new();
        file.take(64 << 10)
            .read_to_end(&mut head)
            .map_err(|e| self.failed("cannot read the old disk", e))?;
        if !head.starts_with(crate::vm::qcow2::MAGIC) {
            return Err(Error::InvalidInput(format!(
                "machine {}: {overlay} is not a qcow2 overlay",
                self.machine
            )));
        }
        let backing = crate::vm::qcow2::backing_name(&head).ok_or_else(|| {
            Error::InvalidInput(format!(
                "machine {}: {overlay} names no image it was made over",
                self.machine
            ))
        })?;
        let base = self.input("image", &backing)?;
        let format = self.format_of(&base)?;
        let (kernel, initrd) = self.boot_files(kernel, initrd)?;
        if seed.len() > MAX_SEED {
            return Err(Error::InvalidInput(format!(
                "the seed image is larger than {} MiB",
                MAX_SEED >> 20
            )));
        }
        let work = self.work_dir()?;
        let disk = work.join(file::DISK);
        std::fs::rename(plugin_dir.join(name), &disk)
            .map_err(|e| self.failed("cannot move the old disk", e))?;
        // What was moved must be the file checked above (not a link put in its place).
        let moved =
            std::fs::symlink_metadata(&disk).map_err(|e| self.failed("the moved disk", e))?;
        if !moved.is_file() || moved.dev() != meta.dev() || moved.ino() != meta.ino() {
            let _ = std::fs::remove_file(&disk);
            return Err(Error::Denied(format!(
                "machine {}: {overlay} changed while it was moved; nothing was taken over",
                self.machine
            )));
        }
        self.record_disk(
            work,
            seed,
            &VmDisk {
                base,
                format: format.to_string(),
                kernel,
                initrd,
            },
        )
    }

    /// Whether KVM runs a guest here: see wit/vm.wit.
    async fn probe_kvm(&self) -> Result<Option<String>, Error> {
        let kernel = self.record()?.and_then(|r| r.kernel);
        let work = self.work_dir()?;
        let probe = work.join(file::PROBE);
        let _ = std::fs::remove_file(&probe);
        let qemu_path = self.program(qemu::QEMU)?;
        let args = qemu::kvm_probe_line(kernel.as_deref());
        let out = self
            .procs
            .run_program(qemu::QEMU, &qemu_path, &args, work, KVM_PROBE)
            .await?;
        let console = std::fs::read(&probe).unwrap_or_default();
        let _ = std::fs::remove_file(&probe);
        let console = String::from_utf8_lossy(&console);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("Could not access KVM") || stderr.contains("/dev/kvm") {
            return Ok(Some("this computer has no usable /dev/kvm".into()));
        }
        let works = match kernel {
            Some(_) => console.contains("Linux version"),
            None => !stderr.contains("kvm"),
        };
        Ok((!works).then(|| {
            format!(
                "/dev/kvm is there but a KVM guest did not run within {}s (nested virtualisation not working?)",
                KVM_PROBE.as_secs()
            )
        }))
    }

    /// Start QEMU and wait for its monitor: see wit/vm.wit.
    async fn start(&self, boot: qemu::Boot) -> Result<u32, Error> {
        boot.check()
            .map_err(|e| Error::InvalidInput(format!("machine {}: {e:#}", self.machine)))?;
        let disk = self.made()?;
        // The image may have changed since the disk was made: checked again.
        self.format_of(&disk.base)?;
        if self.procs.is_running(VM_HANDLE)? {
            return Err(Error::InvalidInput(format!(
                "machine {}: its VM already runs",
                self.machine
            )));
        }
        let work = self.work_dir()?;
        let _ = std::fs::remove_file(work.join(file::QMP));
        // A fresh log per start: a leftover error must not make a later run look failed.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(work.join(file::LOG))
            .map_err(|e| self.failed("cannot open QEMU's log", e))?;
        let qemu_path = self.program(qemu::QEMU)?;
        let args = qemu::command_line(&self.machine, &disk, &boot);
        let pid = self
            .procs
            .spawn_program(VM_HANDLE, qemu::QEMU, &qemu_path, &args, work, log)?;
        let started = Instant::now();
        loop {
            if !self.procs.is_running(VM_HANDLE)? {
                let why = self.errors();
                let _ = self.procs.kill_handle(VM_HANDLE);
                return Err(self.failed(
                    "QEMU exited right after starting",
                    if why.is_empty() {
                        "no message".into()
                    } else {
                        why
                    },
                ));
            }
            if self.qmp(r#"{"execute":"query-status"}"#).await.is_ok() {
                return Ok(pid);
            }
            if started.elapsed() >= QMP_WAIT {
                let _ = self.procs.kill_handle(VM_HANDLE);
                return Err(self.failed(
                    "QEMU did not open its monitor",
                    format!("not within {}s", QMP_WAIT.as_secs()),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The console's size and its last `max` bytes.
    fn console(&self, max: u32) -> (u64, String) {
        let Ok(mut f) = std::fs::File::open(self.dir.join(file::CONSOLE)) else {
            return (0, String::new());
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let want = u64::from(max.min(MAX_CONSOLE));
        let mut tail = Vec::new();
        if f.seek(SeekFrom::Start(len.saturating_sub(want))).is_ok() {
            let _ = f.take(want).read_to_end(&mut tail);
        }
        (len, String::from_utf8_lossy(&tail).into_owned())
    }

    /// End QEMU and delete the VM's files.
    fn destroy(&self) -> Result<(), Error> {
        self.procs.kill_handle(VM_HANDLE)?;
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.failed(&format!("cannot remove {}", self.dir.display()), e)),
        }
    }
}

/// What the VM of the machine in `dir` boots, as the host recorded it (none before its
/// disk was made).
pub fn recorded_disk(dir: &MachineDir) -> Option<VmDisk> {
    let bytes = std::fs::read(dir.vm_dir().join(file::RECORD)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The host's [`qemu::Boot`] for the plugin's.
fn typed(boot: Boot) -> qemu::Boot {
    qemu::Boot {
        memory_mib: boot.memory_mib,
        cpus: boot.cpus,
        accel: match boot.accel {
            Accel::Kvm => qemu::Accel::Kvm,
            Accel::Tcg => qemu::Accel::Tcg,
        },
        append: boot.append,
        forwards: boot
            .forwards
            .iter()
            .map(|f| (f.host_port, f.guest_port))
            .collect(),
        shared_mac: boot.shared_mac,
    }
}

impl Host for Granted<'_, VmCtx> {
    async fn inspect_disk(&mut self, path: String) -> wasmtime::Result<Result<String, Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("vm")));
        };
        Ok(ctx
            .input("image", &path)
            .and_then(|p| ctx.format_of(&p))
            .map(String::from))
    }

    async fn create_disk(
        &mut self,
        disk: String,
        size: String,
        kernel: Option<String>,
        initrd: Option<String>,
        seed: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("vm")));
        };
        Ok(ctx
            .create_disk(&disk, &size, kernel.as_deref(), initrd.as_deref(), &seed)
            .await)
    }

    async fn adopt_disk(
        &mut self,
        overlay: String,
        kernel: Option<String>,
        initrd: Option<String>,
        seed: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("vm")));
        };
        Ok(ctx.adopt_disk(&overlay, kernel.as_deref(), initrd.as_deref(), &seed))
    }

    async fn has_disk(&mut self) -> wasmtime::Result<bool> {
        Ok(self.ctx.as_ref().is_some_and(|ctx| ctx.made().is_ok()))
    }

    async fn probe_kvm(&mut self) -> wasmtime::Result<Result<Option<String>, Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("vm")));
        };
        Ok(ctx.probe_kvm().await)
    }

    async fn start(&mut self, boot: Boot) -> wasmtime::Result<Result<u32, Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("vm")));
        };
        Ok(ctx.start(typed(boot)).await)
    }

    async fn running(&mut self) -> wasmtime::Result<Result<bool, Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("vm")));
        };
        Ok(ctx.procs.is_running(VM_HANDLE))
    }

    async fn status(&mut self) -> wasmtime::Result<Result<String, Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("vm")));
        };
        Ok(ctx.qmp(r#"{"execute":"query-status"}"#).await.map(|r| {
            r.get("status")
                .and_then(|s| s.as_str())
                .map(|s| crate::text::sanitize::plugin_text(s, 40))
                .unwrap_or_else(|| "unknown".into())
        }))
    }

    async fn powerdown(&mut self) -> wasmtime::Result<Result<(), Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("vm")));
        };
        Ok(ctx
            .qmp(r#"{"execute":"system_powerdown"}"#)
            .await
            .map(|_| ()))
    }

    async fn terminate(&mut self) -> wasmtime::Result<Result<(), Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("vm")));
        };
        Ok(ctx.procs.signal(VM_HANDLE, libc::SIGTERM))
    }

    async fn wait(&mut self, timeout_ms: u32) -> wasmtime::Result<Result<bool, Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("vm")));
        };
        let limit = Duration::from_millis(u64::from(timeout_ms)).min(MAX_WAIT);
        Ok(ctx.procs.wait_for(VM_HANDLE, limit).await)
    }

    async fn kill(&mut self) -> wasmtime::Result<Result<(), Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("vm")));
        };
        Ok(ctx.procs.kill_handle(VM_HANDLE))
    }

    async fn console(&mut self, max: u32) -> wasmtime::Result<(u64, String)> {
        Ok(self
            .ctx
            .as_ref()
            .map(|ctx| ctx.console(max))
            .unwrap_or_default())
    }

    async fn qemu_errors(&mut self) -> wasmtime::Result<String> {
        Ok(self
            .ctx
            .as_ref()
            .map(|ctx| ctx.errors())
            .unwrap_or_default())
    }

    async fn free_port(&mut self) -> wasmtime::Result<Result<u16, Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("vm")));
        };
        Ok(ctx.procs.free_port())
    }

    async fn destroy(&mut self) -> wasmtime::Result<Result<(), Error>> {
        let Some(ctx) = &self.ctx else {
            return Ok(Err(self.denied("vm")));
        };
        Ok(ctx.destroy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store with a machine `m1`, an image cache with one image, and a file elsewhere.
    fn setup() -> (tempfile::TempDir, VmCtx, PathBuf, PathBuf) {
        let root = tempfile::tempdir().expect("tmp");
        let store = root.path().join("store");
        let machine = store.join("machines/m1");
        std::fs::create_dir_all(machine.join("driver")).expect("machine");
        let images = store.join("cache/images");
        std::fs::create_dir_all(images.join("bookworm")).expect("images");
        let cached = images.join("bookworm/disk.qcow2");
        std::fs::write(&cached, b"\0raw").expect("image");
        let mine = root.path().join("mine.img");
        std::fs::write(&mine, b"\0raw").expect("mine");
        let ctx = VmCtx::new(&MachineDir::at(&machine), Some(images));
        (root, ctx, cached, mine)
    }

    #[test]
    fn a_vm_boots_only_cached_images_and_files_the_user_named() {
        let (root, mut ctx, cached, mine) = setup();
        let show = |p: &Path| p.to_string_lossy().into_owned();
        assert!(ctx.input("image", &show(&cached)).is_ok());
        // A file of the user's the user did not name: denied (the plugin chose it).
        assert!(matches!(
            ctx.input("image", &show(&mine)),
            Err(Error::Denied(_))
        ));
        for secret in ["/etc/passwd", "/proc/self/environ"] {
            assert!(
                matches!(ctx.input("kernel", secret), Err(Error::Denied(_))),
                "{secret}"
            );
        }
        // A link the plugin planted in its directory, to the cache: what counts is where
        // it leads; to the CA key in the store: denied even when the user named the store.
        let certs = root.path().join("store/certs");
        std::fs::create_dir_all(&certs).expect("certs");
        std::fs::write(certs.join("ca-key.pem"), "KEY").expect("key");
        let planted = root.path().join("store/machines/m1/driver/k");
        std::os::unix::fs::symlink(certs.join("ca-key.pem"), &planted).expect("link");
        ctx.name_user_paths(&[show(&certs)]);
        assert!(matches!(
            ctx.input("kernel", &show(&planted)),
            Err(Error::Denied(_))
        ));
        // Named by the user: the file, or a file directly in a directory named.
        ctx.name_user_paths(&[show(&mine), "not a path".into()]);
        assert_eq!(
            ctx.input("image", &show(&mine)).ok(),
            std::fs::canonicalize(&mine).ok()
        );
        ctx.name_user_paths(&[show(root.path())]);
        assert!(ctx.input("image", &show(&mine)).is_ok());
        // Relative paths, missing files and directories are refused.
        assert!(matches!(
            ctx.input("image", "mine.img"),
            Err(Error::InvalidInput(_))
        ));
        assert!(
            ctx.input("image", &show(&root.path().join("gone")))
                .is_err()
        );
        ctx.name_user_paths(&[show(&root.path().join("store/cache"))]);
        assert!(matches!(
            ctx.input("image", &show(&root.path().join("store/cache/images"))),
            Err(Error::InvalidInput(_))
        ));
    }

    #[tokio::test]
    async fn a_disk_over_an_image_naming_another_file_is_refused_before_qemu_img() {
        let (_root, ctx, cached, _mine) = setup();
        let mut q = vec![0u8; 512];
        q[..4].copy_from_slice(crate::vm::qcow2::MAGIC);
        q[4..8].copy_from_slice(&3u32.to_be_bytes());
        q[8..16].copy_from_slice(&200u64.to_be_bytes());
        q[16..20].copy_from_slice(&13u32.to_be_bytes());
        q[200..213].copy_from_slice(b"/etc/hostname");
        std::fs::write(&cached, &q).expect("image");
        let e = ctx
            .create_disk(&cached.to_string_lossy(), "20G", None, None, b"seed")
            .await
            .expect_err("backing file");
        assert!(format!("{e:?}").contains("/etc/hostname"), "{e:?}");
        assert!(!ctx.dir.join(file::DISK).exists());
        // Sizes and seeds are bounded.
        std::fs::write(&cached, b"\0raw").expect("image");
        let path = cached.to_string_lossy().into_owned();
        assert!(
            ctx.create_disk(&path, "20G,x", None, None, b"")
                .await
                .is_err()
        );
        assert!(
            ctx.create_disk(&path, "1G", None, None, &vec![0; MAX_SEED + 1])
                .await
                .is_err()
        );
        assert!(matches!(
            ctx.create_disk(&path, "1G", None, Some(&path), b"").await,
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn a_disk_an_older_dmw_made_is_taken_over_only_over_a_cached_image() {
        let (root, ctx, cached, mine) = setup();
        let driver = root.path().join("store/machines/m1/driver");
        let overlay = |name: &str, base: &Path| {
            std::process::Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
                .arg(base)
                .arg(driver.join(name))
                .arg("1M")
                .status()
                .is_ok_and(|s| s.success())
        };
        if !overlay("overlay.qcow2", &cached) {
            eprintln!("skipped: qemu-img is not installed");
            return;
        }
        // Over a file of the user's that is not in the cache: refused, left where it is.
        assert!(overlay("mine.qcow2", &mine));
        assert!(matches!(
            ctx.adopt_disk("mine.qcow2", None, None, b"seed"),
            Err(Error::Denied(_))
        ));
        assert!(driver.join("mine.qcow2").exists());
        // A link in the driver's directory is not followed.
        std::os::unix::fs::symlink(driver.join("overlay.qcow2"), driver.join("link.qcow2"))
            .expect("link");
        assert!(ctx.adopt_disk("link.qcow2", None, None, b"seed").is_err());
        assert!(
            ctx.adopt_disk("../config.json", None, None, b"seed")
                .is_err()
        );
        // Over a cached image: moved into the VM's directory and recorded.
        ctx.adopt_disk("overlay.qcow2", None, None, b"seed")
            .expect("taken over");
        assert!(!driver.join("overlay.qcow2").exists());
        let made = ctx.made().expect("made");
        assert_eq!(made.base, std::fs::canonicalize(&cached).expect("real"));
        assert_eq!(made.format, "raw");
        assert_eq!(
            std::fs::read(ctx.dir.join(file::SEED)).expect("seed"),
            b"seed"
        );
        assert!(matches!(
            ctx.adopt_disk("mine.qcow2", None, None, b"seed"),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn without_a_disk_nothing_starts_and_the_console_is_empty() {
        let (_root, ctx, _cached, _mine) = setup();
        let e = ctx.made().expect_err("no disk");
        assert!(format!("{e:?}").contains("create it again"), "{e:?}");
        assert_eq!(ctx.console(100), (0, String::new()));
        assert_eq!(ctx.errors(), "");
        ctx.destroy().expect("nothing to destroy");
    }
}
