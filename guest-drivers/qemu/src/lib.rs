//! The `qemu` driver: a local virtual machine under QEMU, dmw's default driver (Docker
//! Machine's was a local VirtualBox VM).
//!
//! It runs only what it declared, through the host's `process` capability
//! (`qemu-system-x86_64`, `qemu-img`), and keeps every file in its own directory of the
//! machine (`files`, seen at `/files`; programs start there, so they take its files by
//! relative name):
//!
//! - `overlay.qcow2`: a copy-on-write overlay over the image (`qemu-img create -b`),
//!   `--qemu-disk-size` large;
//! - `seed.img`: the NoCloud seed ([`seed`]) with the machine's public key (`keys`), user
//!   `docker` and the machine's name as hostname;
//! - `console.log` (serial console), `qemu.log` (QEMU's own output), `qmp.sock` (QMP).
//!
//! Networking is QEMU's user mode: SSH and the engine port are forwarded from 127.0.0.1
//! (free ports found at create and kept, so stop/start keeps the URL and certificates);
//! the engine listens in the guest on the same port number it is reached at on the host.
//! Each boot is watched on the serial console: a boot that stops printing before a login
//! prompt for `--qemu-boot-stall` seconds has hung; QEMU is killed and the VM booted once
//! more, and a second hang fails naming the console's last line.
//! The lifecycle goes through QMP: `query-status` for the state, `system_powerdown` (ACPI)
//! to stop, then a kill after [`STOP_TIMEOUT`].

pub mod seed;

use std::time::{Duration, Instant};

use dmw_guest::driver::{Driver, MachineState, SshEndpoint, generated_public_key};
use dmw_guest::flags::{Flag, FlagKind, Flags, flag};
use dmw_guest::process::{self, Signal};
use dmw_guest::{Error, Result, files, info, store, warn};

dmw_guest::permissions! {
    capability "keys";
    capability "process";
    capability "files";
    capability "http";
    http_host "cloud.debian.org";
    http_host "{qemu-image}";
    program "qemu-system-x86_64";
    program "qemu-img";
}

/// The QEMU program for x86-64 guests.
const QEMU: &str = "qemu-system-x86_64";
/// QEMU's disk tool.
const QEMU_IMG: &str = "qemu-img";
/// The handle of the VM's QEMU process.
const HANDLE: &str = "qemu";
/// QEMU's own output (the host appends the process's stdout and stderr to HANDLE.log).
const QEMU_LOG: &str = "qemu.log";
/// Files in the driver's directory.
const OVERLAY: &str = "overlay.qcow2";
const SEED: &str = "seed.img";
const CONSOLE: &str = "console.log";
const QMP: &str = "qmp.sock";
const PROBE_LOG: &str = "accel-probe.log";

/// QEMU's `-sandbox` setting for every VM.
const SANDBOX: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";
/// The user the seed makes and dmw logs in as.
const USER: &str = "docker";
/// The kernel command line for images `dmw image build` makes.
const DEFAULT_APPEND: &str = "root=/dev/vda console=ttyS0";
/// The image downloaded when none is given and none was built: Debian 12's genericcloud
/// image for x86-64 (this driver runs x86-64 guests), verified against the `SHA512SUMS`
/// Debian publishes beside it.
const DEBIAN_IMAGE: &str =
    "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2";
/// File names in a `dmw image build` image directory.
const IMAGE_DISK: &str = "disk.qcow2";
const IMAGE_KERNEL: &str = "vmlinuz";
const IMAGE_INITRD: &str = "initrd.img";

/// How long `stop` waits for the guest to power off after ACPI powerdown.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(90);
/// How long QEMU may take to open its QMP socket after it started.
const QMP_WAIT: Duration = Duration::from_secs(20);
/// How long one QMP exchange may take.
const QMP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a KVM guest may take to print the kernel's first line before KVM counts as
/// not working (well under a second where it works; TCG takes about one).
const KVM_PROBE: Duration = Duration::from_secs(5);
/// How long the serial console may stay silent during a TCG boot before the boot counts
/// as hung (a TCG boot prints every few seconds, also on a loaded machine; a hung kernel
/// prints nothing more while QEMU keeps spinning).
const BOOT_STALL_TCG: Duration = Duration::from_secs(90);
/// The same under KVM, where a boot prints many lines a second.
const BOOT_STALL_KVM: Duration = Duration::from_secs(30);
/// How long a boot that keeps printing is watched before the SSH wait takes over.
const BOOT_WATCH_MAX: Duration = Duration::from_secs(600);
/// How often the console is looked at during a boot.
const BOOT_POLL: Duration = Duration::from_millis(500);
/// How much of the console's end is read each time.
const CONSOLE_TAIL: u64 = 4096;
/// Timeout of `qemu-img` runs.
const IMG_TIMEOUT: Duration = Duration::from_secs(120);

/// Store keys.
mod key {
    pub const NAME: &str = "name";
    pub const IMAGE: &str = "image";
    pub const IMAGE_CHECKSUM: &str = "image-checksum";
    pub const DISK: &str = "disk";
    pub const FORMAT: &str = "disk-format";
    pub const KERNEL: &str = "kernel";
    pub const INITRD: &str = "initrd";
    pub const APPEND: &str = "append";
    pub const DISK_SIZE: &str = "disk-size";
    pub const MEMORY: &str = "memory";
    pub const CPUS: &str = "cpus";
    pub const ACCEL_CHOICE: &str = "accel-choice";
    pub const ACCEL: &str = "accel";
    pub const BOOT_STALL: &str = "boot-stall";
    pub const SSH_PORT: &str = "ssh-port";
    pub const ENGINE_PORT: &str = "engine-port";
    pub const NETWORK: &str = "network";
    pub const SHARED_MAC: &str = "shared-mac";
    pub const SHARED_ADDRESS: &str = "shared-address";
}

/// The shared network (`--qemu-network shared`): QEMU's socket netdev on a multicast group
/// over the loopback interface (no root), one for all of the user's VMs on this computer.
const SHARED_GROUP: &str = "230.0.77.77:41077";
/// Its addresses: 10.77.0.0/16, each VM's derived from its name.
const SHARED_PREFIX: u8 = 16;

/// A VM's MAC and address on the shared network, derived from its name (FNV-1a): the
/// same at every start; two names collide with a chance of 1 in about 65,000.
fn shared_nic(name: &str) -> seed::SharedNic {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let hi = (h >> 8) as u8;
    // .0.x and .255.x stay clear of the network and broadcast addresses.
    let lo = (h % 253) as u8 + 1;
    let hi = hi.clamp(1, 254);
    seed::SharedNic {
        mac: format!("52:54:00:77:{hi:02x}:{lo:02x}"),
        address: format!("10.77.{hi}.{lo}/{SHARED_PREFIX}"),
    }
}

/// The qemu driver.
struct Qemu;

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidInput(message.into())
}

/// A path handed to QEMU or qemu-img: absolute, printable, no comma (QEMU's option
/// separator), not starting with `-`.
fn check_path(flag: &str, value: &str) -> Result<()> {
    let ok = value.starts_with('/')
        && value.len() <= 4096
        && !value.contains(',')
        && value.chars().all(|c| !c.is_control());
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "--{flag} {value:?} must be an absolute path without commas"
        )))
    }
}

/// A disk size for qemu-img: digits with an optional K, M, G or T.
fn check_size(value: &str) -> Result<()> {
    let digits = value.trim_end_matches(['K', 'M', 'G', 'T']);
    let ok = !digits.is_empty()
        && digits.len() <= 9
        && digits.chars().all(|c| c.is_ascii_digit())
        && value.len() <= digits.len() + 1;
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "--qemu-disk-size {value:?} is not a size such as 20G"
        )))
    }
}

/// A kernel command line: printable, bounded.
fn check_append(value: &str) -> Result<()> {
    if value.len() <= 1024 && value.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(invalid(
            "--qemu-append must be printable text of at most 1024 characters",
        ))
    }
}

/// A text flag's value, trimmed; None when empty.
fn text(flags: &Flags, name: &str) -> Option<String> {
    flags
        .text(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Whether `--qemu-image` names a URL to download.
fn is_url(image: &str) -> bool {
    image.starts_with("http://") || image.starts_with("https://")
}

/// The format (`qcow2`, `raw`) `qemu-img info` reports for a disk, or why it is no disk.
fn disk_format(path: &str) -> Result<String> {
    let out = process::run_ok(QEMU_IMG, &["info", "--output=json", path], IMG_TIMEOUT)?;
    let v: serde_json::Value = serde_json::from_str(&out)
        .map_err(|_| Error::Failed(format!("qemu-img info {path}: not JSON")))?;
    match v.get("format").and_then(|f| f.as_str()) {
        Some(f @ ("qcow2" | "raw")) => Ok(f.to_string()),
        Some(other) => Err(invalid(format!(
            "the image {path} is {other}; use a qcow2 or raw image"
        ))),
        None => Err(Error::Failed(format!("qemu-img info {path}: no format"))),
    }
}

/// Resolve the image: an image directory `dmw image build` made (by path or by name, or
/// the newest one when none is given) or a disk file. Stores the disk, its format, and
/// the kernel and initramfs of an image directory unless given.
fn resolve_image() -> Result<()> {
    let built = files::built_images();
    let given = store::get(key::IMAGE).filter(|i| !i.is_empty());
    let given = match given {
        Some(url) if is_url(&url) => {
            let checksum = store::get(key::IMAGE_CHECKSUM).unwrap_or_default();
            Some(
                files::cached_download(&url, &checksum)
                    .map_err(|e| e.context(&format!("--qemu-image {url}")))?,
            )
        }
        None if built.is_empty() => {
            info(&format!(
                "no --qemu-image given and no image built: downloading Debian 12 genericcloud (amd64, about 350 MiB) into dmw's image cache from {DEBIAN_IMAGE}; `sudo dmw image build` makes one offline from a Debian package mirror"
            ));
            Some(files::cached_download(DEBIAN_IMAGE, "").map_err(|e| {
                e.context("downloading Debian's cloud image (pass --qemu-image PATH, or build one with `sudo dmw image build`)")
            })?)
        }
        other => other,
    };
    let dir = match &given {
        None => Some(built.first().cloned().ok_or_else(|| {
            invalid("no --qemu-image given and no image built yet: build one with `sudo dmw image build`")
        })?),
        Some(name) if !name.contains('/') => Some(
            built
                .iter()
                .find(|b| b.rsplit('/').next() == Some(name.as_str()))
                .cloned()
                .ok_or_else(|| {
                    invalid(format!(
                        "--qemu-image {name:?} is neither a path nor an image `dmw image build` made (built: {})",
                        if built.is_empty() { "none".to_string() } else { built.join(", ") }
                    ))
                })?,
        ),
        Some(path) => {
            let inside = format!("{}/{IMAGE_DISK}", path.trim_end_matches('/'));
            disk_format(&inside).ok().map(|_| path.trim_end_matches('/').to_string())
        }
    };
    let (disk, format) = match &dir {
        Some(dir) => {
            let disk = format!("{dir}/{IMAGE_DISK}");
            let format = disk_format(&disk)?;
            if store::get(key::KERNEL).is_none_or(|k| k.is_empty()) {
                store::set(key::KERNEL, format!("{dir}/{IMAGE_KERNEL}"));
                store::set(key::INITRD, format!("{dir}/{IMAGE_INITRD}"));
            }
            (disk, format)
        }
        None => {
            let disk = given.unwrap_or_default();
            let format =
                disk_format(&disk).map_err(|e| e.context(&format!("--qemu-image {disk}")))?;
            (disk, format)
        }
    };
    check_path("qemu-image", &disk)?;
    store::set(key::DISK, &disk);
    store::set(key::FORMAT, &format);
    Ok(())
}

/// Decide the accelerator for `--qemu-accel` (stored: every start uses the same).
fn decide_accel() -> Result<()> {
    let choice = store::get(key::ACCEL_CHOICE).unwrap_or_else(|| "auto".into());
    let accel = match choice.as_str() {
        "tcg" => "tcg".to_string(),
        _ => match kvm_works()? {
            Ok(()) => "kvm".to_string(),
            Err(why) if choice == "kvm" => {
                return Err(Error::Failed(format!(
                    "--qemu-accel kvm: {why}; use --qemu-accel tcg"
                )));
            }
            Err(why) => {
                warn(&format!("{why}; using TCG (emulation, slower)"));
                "tcg".to_string()
            }
        },
    };
    store::set(key::ACCEL, accel);
    Ok(())
}

/// Whether KVM really runs the image's kernel: `/dev/kvm` being there is not enough (on
/// machines without working nested virtualisation a KVM guest hangs early in the kernel's
/// boot). Boots the kernel with no disk (`panic=-1`) and looks for its first console line
/// within [`KVM_PROBE`]. Without a kernel (an image with its own bootloader) KVM is taken
/// when QEMU can open it.
fn kvm_works() -> Result<std::result::Result<(), String>> {
    let probe_log = files::path(PROBE_LOG);
    let _ = std::fs::remove_file(&probe_log);
    let kernel = store::get(key::KERNEL).filter(|k| !k.is_empty());
    let mut args = vec![
        "-accel",
        "kvm",
        "-m",
        "256",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
    ];
    let serial = format!("file:{PROBE_LOG}");
    args.push(&serial);
    match &kernel {
        Some(k) => args.extend([
            "-machine",
            "pc",
            "-append",
            "console=ttyS0 panic=-1",
            "-kernel",
            k,
        ]),
        None => args.extend(["-machine", "none", "-S", "-qmp", "none"]),
    }
    let out = process::run(QEMU, &args, KVM_PROBE)?;
    let console = std::fs::read_to_string(&probe_log).unwrap_or_default();
    let _ = std::fs::remove_file(&probe_log);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Could not access KVM") || stderr.contains("/dev/kvm") {
        return Ok(Err("this computer has no usable /dev/kvm".into()));
    }
    let works = match kernel {
        Some(_) => console.contains("Linux version"),
        None => !stderr.contains("kvm"),
    };
    Ok(if works {
        Ok(())
    } else {
        Err(format!(
            "/dev/kvm is there but a KVM guest did not run within {}s (nested virtualisation not working?)",
            KVM_PROBE.as_secs()
        ))
    })
}

/// QEMU's arguments for this machine (relative file names: QEMU starts in the driver's
/// directory).
fn qemu_args() -> Result<Vec<String>> {
    let name = store::require(key::NAME)?;
    let ssh_port: u16 = store::get_or(key::SSH_PORT, 0)?;
    let engine_port: u16 = store::get_or(key::ENGINE_PORT, 0)?;
    let mut args: Vec<String> = vec![
        "-nodefaults".into(),
        "-no-user-config".into(),
        "-name".into(),
        format!("dmw-{name}"),
        // No HPET: an emulated timer that costs host CPU and that TCG guests were seen to
        // hang on ("Switched to clocksource hpet", then nothing); the guest uses its TSC
        // or the ACPI PM timer.
        "-machine".into(),
        "pc,hpet=off".into(),
        // QEMU's seccomp filter: no obsolete system calls, no privilege changes, no new
        // processes (so neither `-incoming exec:` nor a QMP `migrate exec:` runs a
        // command), no changes to scheduling or resource limits.
        "-sandbox".into(),
        SANDBOX.into(),
    ];
    match store::get(key::ACCEL).as_deref() {
        Some("kvm") => args.extend(["-accel", "kvm", "-cpu", "host"].map(String::from)),
        // TCG's `max` CPU has RDRAND, which the kernel trusts to seed its random number
        // generator at once; with the default CPU a TCG guest was seen stuck for minutes in
        // getrandom() at the second boot (systemd-random-seed, soft lockups).
        _ => args.extend(["-accel", "tcg", "-cpu", "max"].map(String::from)),
    }
    args.extend([
        "-m".into(),
        store::get_or(key::MEMORY, 1024u32)?.to_string(),
        "-smp".into(),
        store::get_or(key::CPUS, 2u32)?.to_string(),
    ]);
    if let Some(kernel) = store::get(key::KERNEL).filter(|k| !k.is_empty()) {
        args.extend(["-kernel".into(), kernel]);
        if let Some(initrd) = store::get(key::INITRD).filter(|k| !k.is_empty()) {
            args.extend(["-initrd".into(), initrd]);
        }
        let append = store::get(key::APPEND)
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| DEFAULT_APPEND.into());
        args.extend(["-append".into(), append]);
    }
    args.extend([
        "-drive".into(),
        format!("file={OVERLAY},if=virtio,format=qcow2"),
        "-drive".into(),
        format!("file={SEED},if=virtio,format=raw,readonly=on"),
        "-netdev".into(),
        format!(
            "user,id=net0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22,hostfwd=tcp:127.0.0.1:{engine_port}-:{engine_port}"
        ),
        "-device".into(),
        "virtio-net-pci,netdev=net0".into(),
        // Entropy from the host's /dev/urandom (virtio-rng): the guest never waits for its
        // random number generator at boot.
        "-object".into(),
        "rng-random,id=rng0,filename=/dev/urandom".into(),
        "-device".into(),
        "virtio-rng-pci,rng=rng0".into(),
    ]);
    if let (Some(mac), Some(_)) = (store::get(key::SHARED_MAC), store::get(key::SHARED_ADDRESS)) {
        args.extend([
            "-netdev".into(),
            format!("socket,id=net1,mcast={SHARED_GROUP},localaddr=127.0.0.1"),
            "-device".into(),
            format!("virtio-net-pci,netdev=net1,mac={mac}"),
        ]);
    }
    args.extend([
        "-display".into(),
        "none".into(),
        "-serial".into(),
        format!("file:{CONSOLE}"),
        "-qmp".into(),
        format!("unix:{QMP},server=on,wait=off"),
    ]);
    Ok(args)
}

/// The last lines QEMU wrote about an error (its own log), if any.
fn qemu_error() -> Option<String> {
    let log = std::fs::read_to_string(files::path(QEMU_LOG)).ok()?;
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.contains("warning:") && !l.contains("terminating on signal")
        })
        .collect();
    let tail = lines[lines.len().saturating_sub(3)..].join("; ");
    (!tail.is_empty()).then(|| tail.chars().take(600).collect())
}

/// Start QEMU and wait until it answers on QMP.
fn boot() -> Result<()> {
    let args = qemu_args()?;
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    // A fresh log per start: a leftover error must not make a later run look failed.
    std::fs::write(files::path(QEMU_LOG), b"")
        .map_err(|e| Error::Failed(format!("cannot reset {QEMU_LOG}: {e}")))?;
    let _ = std::fs::remove_file(files::path(QMP));
    process::spawn(HANDLE, QEMU, &argv)?;
    let mut waited = Duration::ZERO;
    let step = Duration::from_millis(200);
    loop {
        if !process::running(HANDLE)? {
            let why = qemu_error().unwrap_or_else(|| "no message".into());
            let _ = process::kill(HANDLE);
            return Err(Error::Failed(format!(
                "QEMU exited right after starting: {why}"
            )));
        }
        if qmp(r#"{"execute":"query-status"}"#).is_ok() {
            return Ok(());
        }
        if waited >= QMP_WAIT {
            let _ = process::kill(HANDLE);
            return Err(Error::Failed(format!(
                "QEMU did not open its QMP socket within {}s",
                QMP_WAIT.as_secs()
            )));
        }
        dmw_guest::host::sleep(step);
        waited += step;
    }
}

/// How long the console may stay silent before the boot counts as hung.
fn boot_stall() -> Duration {
    if let Ok(Some(secs)) = store::get(key::BOOT_STALL)
        .map(|s| s.parse::<u64>())
        .transpose()
    {
        return Duration::from_secs(secs);
    }
    match store::get(key::ACCEL).as_deref() {
        Some("kvm") => BOOT_STALL_KVM,
        _ => BOOT_STALL_TCG,
    }
}

/// How the boot looks from the serial console ([`BootWatch::step`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Still booting (or not yet judged): look again.
    Wait,
    /// The guest reached a login prompt or cloud-init finished: sshd is up or about to be.
    Up,
    /// The console printed something, then nothing for the stall limit: the boot hung.
    Hung,
    /// The console printed nothing at all for the stall limit: the image does not print on
    /// the serial console, so the boot cannot be watched (the SSH wait decides).
    Silent,
}

/// Watches a boot through the serial console: progress is the console growing; a boot
/// that stops printing before it reached a login prompt for `stall` has hung (a kernel
/// that stopped, as TCG guests sometimes do, while QEMU keeps spinning).
#[derive(Debug)]
struct BootWatch {
    stall: Duration,
    started: Instant,
    last_len: u64,
    last_change: Instant,
}

impl BootWatch {
    fn new(stall: Duration, now: Instant) -> Self {
        BootWatch {
            stall,
            started: now,
            last_len: 0,
            last_change: now,
        }
    }

    /// Judge the console as it is at `now`: `len` bytes, ending with `tail`.
    fn step(&mut self, now: Instant, len: u64, tail: &str) -> Verdict {
        if len != self.last_len {
            self.last_len = len;
            self.last_change = now;
        }
        if booted(tail) {
            Verdict::Up
        } else if lockup_secs(tail).is_some_and(|secs| secs >= self.stall.as_secs()) {
            // The kernel keeps printing that a CPU is stuck: output, but no progress.
            Verdict::Hung
        } else if now.duration_since(self.last_change) < self.stall {
            Verdict::Wait
        } else if len == 0 {
            Verdict::Silent
        } else {
            Verdict::Hung
        }
    }

    /// How long the boot has been watched.
    fn elapsed(&self, now: Instant) -> Duration {
        now.duration_since(self.started)
    }
}

/// Whether the console's last lines show a booted guest: a getty login prompt
/// (`NAME login:`), or cloud-init's final line.
fn booted(tail: &str) -> bool {
    tail.lines().rev().take(40).any(|l| {
        let l = l.trim();
        l.ends_with(" login:") || (l.contains("Cloud-init v.") && l.contains(" finished at "))
    })
}

/// How long the kernel's last soft-lockup report says a CPU has been stuck
/// (`watchdog: BUG: soft lockup - CPU#0 stuck for 44s!`), if it made one.
fn lockup_secs(tail: &str) -> Option<u64> {
    let line = tail
        .lines()
        .rev()
        .find(|l| l.contains("BUG: soft lockup"))?;
    let rest = &line[line.find("stuck for ")? + "stuck for ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The console's last line with text in it, as plain printable text of at most 160
/// characters (the guest writes the console: its bytes are not trusted).
fn last_line(tail: &str) -> String {
    let line = tail
        .lines()
        .map(str::trim)
        .rfind(|l| l.chars().any(|c| c.is_alphanumeric()))
        .unwrap_or("");
    line.chars().filter(|c| !c.is_control()).take(160).collect()
}

/// The serial console's size and its last [`CONSOLE_TAIL`] bytes (lossy UTF-8).
fn console_tail() -> (u64, String) {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(files::path(CONSOLE)) else {
        return (0, String::new());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut tail = Vec::new();
    if f.seek(SeekFrom::Start(len.saturating_sub(CONSOLE_TAIL)))
        .is_ok()
    {
        let _ = f.take(CONSOLE_TAIL).read_to_end(&mut tail);
    }
    (len, String::from_utf8_lossy(&tail).into_owned())
}

/// How a watched boot ended.
enum Booted {
    /// Up, or cannot be watched further (silent console, or watched for [`BOOT_WATCH_MAX`]).
    Done,
    /// Hung: the console's last line.
    Hung(String),
}

/// Watch the boot QEMU just started until the guest is up, hangs, or QEMU exits.
fn watch_boot() -> Result<Booted> {
    let stall = boot_stall();
    let mut watch = BootWatch::new(stall, Instant::now());
    loop {
        if !process::running(HANDLE)? {
            let why = qemu_error().unwrap_or_else(|| "no message".into());
            return Err(Error::Failed(format!(
                "QEMU exited while the VM booted: {why}"
            )));
        }
        let (len, tail) = console_tail();
        let now = Instant::now();
        match watch.step(now, len, &tail) {
            Verdict::Wait if watch.elapsed(now) >= BOOT_WATCH_MAX => {
                warn(&format!(
                    "the VM is still booting after {}s (console: {:?}); waiting for SSH",
                    BOOT_WATCH_MAX.as_secs(),
                    last_line(&tail)
                ));
                return Ok(Booted::Done);
            }
            Verdict::Wait => dmw_guest::host::sleep(BOOT_POLL),
            Verdict::Up => {
                info(&format!(
                    "The VM booted in {}s",
                    watch.elapsed(now).as_secs()
                ));
                return Ok(Booted::Done);
            }
            Verdict::Silent => {
                warn(&format!(
                    "the VM printed nothing on its serial console for {}s: its boot cannot be watched (does the image's kernel command line have console=ttyS0?); waiting for SSH",
                    stall.as_secs()
                ));
                return Ok(Booted::Done);
            }
            Verdict::Hung => return Ok(Booted::Hung(last_line(&tail))),
        }
    }
}

/// Start QEMU and watch the boot; a boot that hangs is killed and started again once,
/// after `again` (create makes the machine's disk anew: a first boot cut short must not
/// leave a half-done first-boot setup behind).
fn boot_watched(again: &dyn Fn() -> Result<()>) -> Result<()> {
    let stall = boot_stall();
    for attempt in 1..=2 {
        if attempt > 1 {
            again()?;
        }
        boot()?;
        match watch_boot()? {
            Booted::Done => return Ok(()),
            Booted::Hung(line) => {
                process::kill(HANDLE)?;
                let hung = format!(
                    "the VM hung at boot: its serial console printed nothing for {}s, the last line being {line:?}",
                    stall.as_secs()
                );
                if attempt == 1 {
                    warn(&format!("{hung}; killed it, booting again"));
                } else {
                    return Err(Error::Failed(format!(
                        "{hung}, twice in a row (the whole console is {CONSOLE} in the machine's driver directory); try again, or with --qemu-cpus 1"
                    )));
                }
            }
        }
    }
    Err(Error::Failed("the VM did not boot".into()))
}

/// Make the machine's disk: a fresh copy-on-write overlay over the image.
fn make_overlay() -> Result<()> {
    let disk = store::require(key::DISK)?;
    let format = store::require(key::FORMAT)?;
    let size = store::get(key::DISK_SIZE).unwrap_or_else(|| "20G".into());
    let _ = std::fs::remove_file(files::path(OVERLAY));
    process::run_ok(
        QEMU_IMG,
        &[
            "create", "-q", "-f", "qcow2", "-F", &format, "-b", &disk, OVERLAY, &size,
        ],
        IMG_TIMEOUT,
    )?;
    Ok(())
}

/// One QMP command; the `return` value.
fn qmp(command: &str) -> Result<serde_json::Value> {
    let reply = files::qmp(QMP, command, QMP_TIMEOUT)?;
    let v: serde_json::Value =
        serde_json::from_str(&reply).map_err(|_| Error::Failed("QMP reply is not JSON".into()))?;
    if let Some(e) = v.get("error") {
        return Err(Error::Failed(format!("QMP {command}: {e}")));
    }
    Ok(v.get("return").cloned().unwrap_or_default())
}

/// Two distinct free ports on 127.0.0.1.
fn two_ports() -> Result<(u16, u16)> {
    let a = process::free_port()?;
    for _ in 0..8 {
        let b = process::free_port()?;
        if b != a {
            return Ok((a, b));
        }
    }
    Err(Error::Failed(
        "cannot find two free ports on 127.0.0.1".into(),
    ))
}

impl Driver for Qemu {
    const NAME: &'static str = "qemu";
    const DESCRIPTION: &'static str =
        "A local virtual machine under QEMU (a cloud image, user-mode networking)";

    fn create_flags() -> Vec<Flag> {
        use FlagKind::{Integer, Text};
        vec![
            flag(
                "qemu-image",
                "Disk image: a qcow2 or raw cloud image (a path, or an http(s) URL dmw downloads into its cache and verifies), or a directory or name `dmw image build` printed (default: the newest image it built, else Debian 12's genericcloud image, downloaded)",
                Text,
                Some(""),
                "QEMU_IMAGE",
            ),
            flag(
                "qemu-image-checksum",
                "The sum --qemu-image URL must have: sha512:HEX, sha256:HEX or the URL of a checksum file (default: the SHA512SUMS beside the image)",
                Text,
                Some(""),
                "QEMU_IMAGE_CHECKSUM",
            ),
            flag(
                "qemu-disk-size",
                "Size of the machine's disk (copy-on-write over the image)",
                Text,
                Some("20G"),
                "QEMU_DISK_SIZE",
            ),
            flag(
                "qemu-memory",
                "Memory in MiB",
                Integer,
                Some("1024"),
                "QEMU_MEMORY",
            ),
            flag("qemu-cpus", "Virtual CPUs", Integer, Some("2"), "QEMU_CPUS"),
            flag(
                "qemu-accel",
                "Accelerator: auto (KVM when it really works, else TCG), kvm or tcg",
                Text,
                Some("auto"),
                "QEMU_ACCEL",
            ),
            flag(
                "qemu-kernel",
                "Kernel to boot, for an image without a bootloader (an image from `dmw image build` brings its own)",
                Text,
                Some(""),
                "QEMU_KERNEL",
            ),
            flag(
                "qemu-initrd",
                "Initramfs to boot with --qemu-kernel",
                Text,
                Some(""),
                "QEMU_INITRD",
            ),
            flag(
                "qemu-append",
                "Kernel command line with --qemu-kernel",
                Text,
                Some(DEFAULT_APPEND),
                "QEMU_APPEND",
            ),
            flag(
                "qemu-boot-stall",
                "Seconds the VM's serial console may stay silent at boot before the VM counts as hung; a hung VM is killed and booted again once (default: 90 under TCG, 30 under KVM)",
                Integer,
                None,
                "QEMU_BOOT_STALL",
            ),
            flag(
                "qemu-network",
                "Network: user (QEMU's user mode; ports forwarded to 127.0.0.1)",
                Text,
                Some("user"),
                "QEMU_NETWORK",
            ),
        ]
    }

    fn set_config(machine_name: &str, flags: &Flags) -> Result<()> {
        store::set(key::NAME, machine_name);
        let image = text(flags, "qemu-image").unwrap_or_default();
        if is_url(&image) {
            if image.len() > 2048 || image.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(invalid(format!(
                    "--qemu-image {image:?} is not a URL dmw downloads (http or https, at most 2048 characters, no spaces)"
                )));
            }
        } else if image.contains('/') {
            check_path("qemu-image", &image)?;
        } else if !image.is_empty() && !image.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(invalid(format!(
                "--qemu-image {image:?} is not a path or an image name"
            )));
        }
        store::set(key::IMAGE, &image);
        let checksum = text(flags, "qemu-image-checksum").unwrap_or_default();
        if !checksum.is_empty() && !is_url(&image) {
            return Err(invalid("--qemu-image-checksum goes with --qemu-image URL"));
        }
        store::set(key::IMAGE_CHECKSUM, &checksum);
        let size = text(flags, "qemu-disk-size").unwrap_or_else(|| "20G".into());
        check_size(&size)?;
        store::set(key::DISK_SIZE, &size);
        let memory: u32 = flags.int("qemu-memory")?.unwrap_or(1024);
        if !(256..=1 << 20).contains(&memory) {
            return Err(invalid(format!(
                "--qemu-memory {memory}: between 256 and 1048576 MiB"
            )));
        }
        store::set(key::MEMORY, memory);
        let cpus: u32 = flags.int("qemu-cpus")?.unwrap_or(2);
        if !(1..=64).contains(&cpus) {
            return Err(invalid(format!("--qemu-cpus {cpus}: between 1 and 64")));
        }
        store::set(key::CPUS, cpus);
        let accel = text(flags, "qemu-accel").unwrap_or_else(|| "auto".into());
        if !["auto", "kvm", "tcg"].contains(&accel.as_str()) {
            return Err(invalid(format!(
                "--qemu-accel {accel:?}: use auto, kvm or tcg"
            )));
        }
        store::set(key::ACCEL_CHOICE, &accel);
        if let Some(stall) = flags.int::<u32>("qemu-boot-stall")? {
            if !(5..=3600).contains(&stall) {
                return Err(invalid(format!(
                    "--qemu-boot-stall {stall}: between 5 and 3600 seconds"
                )));
            }
            store::set(key::BOOT_STALL, stall);
        }
        for (flag_name, k) in [("qemu-kernel", key::KERNEL), ("qemu-initrd", key::INITRD)] {
            let v = text(flags, flag_name).unwrap_or_default();
            if !v.is_empty() {
                check_path(flag_name, &v)?;
            }
            store::set(k, &v);
        }
        let append = text(flags, "qemu-append").unwrap_or_else(|| DEFAULT_APPEND.into());
        check_append(&append)?;
        store::set(key::APPEND, &append);
        match text(flags, "qemu-network").as_deref() {
            None | Some("user") => store::set(key::NETWORK, "user"),
            Some("shared") => store::set(key::NETWORK, "shared"),
            Some(other) => {
                return Err(invalid(format!(
                    "--qemu-network {other:?}: use user or shared"
                )));
            }
        }
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        for program in [QEMU, QEMU_IMG] {
            process::run_ok(program, &["--version"], IMG_TIMEOUT)?;
        }
        resolve_image()
    }

    fn create() -> Result<()> {
        let name = store::require(key::NAME)?;
        let key = generated_public_key().ok_or_else(|| {
            invalid("the qemu driver logs in with the key dmw makes for the machine; it takes no SSH key of yours")
        })?;
        decide_accel()?;
        info(&format!(
            "Creating the VM's disk and first-boot seed ({})...",
            store::get(key::ACCEL).unwrap_or_default()
        ));
        let shared = (store::get(key::NETWORK).as_deref() == Some("shared")).then(|| {
            let nic = shared_nic(&name);
            store::set(key::SHARED_MAC, &nic.mac);
            store::set(key::SHARED_ADDRESS, &nic.address);
            info(&format!(
                "On the shared network as {}",
                nic.address.split('/').next().unwrap_or_default()
            ));
            nic
        });
        let seed = seed::Seed {
            instance_id: format!("dmw-{name}"),
            hostname: name.clone(),
            user: USER.into(),
            ssh_public_key: key,
            shared,
        };
        std::fs::write(files::path(SEED), seed.fat_image()?)
            .map_err(|e| Error::Failed(format!("cannot write the seed volume: {e}")))?;
        make_overlay()?;
        let mut last = None;
        for _ in 0..3 {
            let (ssh_port, engine_port) = two_ports()?;
            store::set(key::SSH_PORT, ssh_port);
            store::set(key::ENGINE_PORT, engine_port);
            info(&format!(
                "Starting the VM (SSH on 127.0.0.1:{ssh_port}, engine on 127.0.0.1:{engine_port})..."
            ));
            match boot_watched(&make_overlay) {
                Ok(()) => return Ok(()),
                // Another program took a port between the probe and QEMU's bind: new ports.
                Err(e) if e.message().contains("forwarding") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Failed("QEMU did not start".into())))
    }

    fn state() -> Result<MachineState> {
        if !process::running(HANDLE)? {
            if let Some(why) = qemu_error() {
                warn(&format!("QEMU ended with: {why}"));
                return Ok(MachineState::Error);
            }
            return Ok(MachineState::Stopped);
        }
        let Ok(status) = qmp(r#"{"execute":"query-status"}"#) else {
            return Ok(MachineState::Starting);
        };
        Ok(match status.get("status").and_then(|s| s.as_str()) {
            Some("running") => MachineState::Running,
            Some("paused" | "suspended") => MachineState::Paused,
            Some("shutdown") => MachineState::Stopping,
            Some("inmigrate" | "prelaunch") => MachineState::Starting,
            Some("guest-panicked" | "internal-error" | "io-error") => MachineState::Error,
            _ => MachineState::None,
        })
    }

    fn address() -> Result<String> {
        Ok("127.0.0.1".into())
    }

    fn ssh_endpoint() -> Result<SshEndpoint> {
        Ok(SshEndpoint {
            address: "127.0.0.1".into(),
            // Before create the port is not chosen yet; 22 stands in for the checks.
            port: store::get_or(key::SSH_PORT, 22u16)?,
            user: USER.into(),
            key_path: None,
        })
    }

    fn engine_port() -> u16 {
        store::get_or(key::ENGINE_PORT, dmw_guest::driver::ENGINE_PORT)
            .unwrap_or(dmw_guest::driver::ENGINE_PORT)
    }

    fn start() -> Result<()> {
        if process::running(HANDLE)? {
            return Ok(());
        }
        boot_watched(&|| Ok(()))
    }

    fn stop() -> Result<()> {
        if !process::running(HANDLE)? {
            return Ok(());
        }
        info("Stopping the VM (ACPI power button)...");
        if let Err(e) = qmp(r#"{"execute":"system_powerdown"}"#) {
            warn(&format!("{}; killing QEMU instead", e.message()));
            return process::kill(HANDLE);
        }
        if process::wait(HANDLE, STOP_TIMEOUT)? {
            return process::kill(HANDLE);
        }
        warn(&format!(
            "the VM did not power off within {}s; killing it",
            STOP_TIMEOUT.as_secs()
        ));
        process::signal(HANDLE, Signal::Term)?;
        if process::wait(HANDLE, Duration::from_secs(5))? {
            return process::kill(HANDLE);
        }
        process::kill(HANDLE)
    }

    fn restart() -> Result<()> {
        Self::stop()?;
        Self::start()
    }

    fn kill() -> Result<()> {
        process::kill(HANDLE)
    }

    fn remove() -> Result<()> {
        process::kill(HANDLE)?;
        let entries = std::fs::read_dir(files::DIR)
            .map_err(|e| Error::Failed(format!("cannot list the VM's files: {e}")))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| Error::Failed(format!("cannot remove {}: {e}", path.display())))?;
        }
        Ok(())
    }
}

dmw_guest::export_driver!(Qemu);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn values_reaching_qemu_are_checked() {
        assert!(check_path("qemu-image", "/var/lib/x.qcow2").is_ok());
        for bad in ["x.qcow2", "/a,b", "/a\nb", "-x"] {
            assert!(check_path("qemu-image", bad).is_err(), "{bad:?}");
        }
        for ok in ["20G", "512M", "1T", "1024"] {
            assert!(check_size(ok).is_ok(), "{ok}");
        }
        for bad in ["", "G", "20GB", "-1G", "1,2G", "9999999999G"] {
            assert!(check_size(bad).is_err(), "{bad:?}");
        }
        assert!(check_append(DEFAULT_APPEND).is_ok());
        assert!(check_append("a\nb").is_err());
    }

    #[test]
    fn set_config_stores_defaults_and_refuses_bad_values() {
        dmw_guest::mock::reset();
        let flags = Flags::of(&[("qemu-memory", "2048"), ("qemu-accel", "tcg")]);
        Qemu::set_config("vm1", &flags).expect("config");
        assert_eq!(store::get(key::MEMORY).as_deref(), Some("2048"));
        assert_eq!(store::get(key::DISK_SIZE).as_deref(), Some("20G"));
        assert_eq!(store::get(key::ACCEL_CHOICE).as_deref(), Some("tcg"));
        for (flag, value) in [
            ("qemu-memory", "1"),
            ("qemu-cpus", "0"),
            ("qemu-accel", "hvf"),
            ("qemu-network", "bridge"),
            ("qemu-boot-stall", "1"),
            ("qemu-network", "shared,x"),
            ("qemu-kernel", "vmlinuz"),
            ("qemu-image", "a b"),
            ("qemu-image", "https://h/a b.qcow2"),
            ("qemu-image", "ftp://h/a.qcow2"),
            ("qemu-image-checksum", "sha512:00"),
        ] {
            let flags = Flags::of(&[(flag, value)]);
            assert!(Qemu::set_config("vm1", &flags).is_err(), "{flag} {value}");
        }
        let url = "https://cloud.debian.org/images/x.qcow2";
        let flags = Flags::of(&[("qemu-image", url), ("qemu-image-checksum", "sha512:00")]);
        Qemu::set_config("vm1", &flags).expect("a URL and its checksum (checked by the host)");
        assert_eq!(store::get(key::IMAGE).as_deref(), Some(url));
        assert_eq!(
            store::get(key::IMAGE_CHECKSUM).as_deref(),
            Some("sha512:00")
        );
    }

    #[test]
    fn shared_addresses_are_stable_and_inside_the_network() {
        let a = shared_nic("va");
        assert_eq!(a, shared_nic("va"));
        assert_ne!(a.address, shared_nic("vb").address);
        for name in ["a", "vm1", "node-17", "x.y"] {
            let nic = shared_nic(name);
            let ip = nic.address.trim_end_matches("/16");
            let parts: Vec<u8> = ip.split('.').map(|p| p.parse().expect("octet")).collect();
            assert_eq!(&parts[..2], &[10, 77]);
            assert!(
                (1..=254).contains(&parts[2]) && (1..=253).contains(&parts[3]),
                "{ip}"
            );
        }
    }

    #[test]
    fn qemu_gets_relative_files_and_the_stored_ports() {
        dmw_guest::mock::reset();
        Qemu::set_config("vm1", &Flags::of(&[("qemu-kernel", "/img/vmlinuz")])).expect("config");
        store::set(key::SSH_PORT, 40022);
        store::set(key::ENGINE_PORT, 40376);
        store::set(key::ACCEL, "tcg");
        let args = qemu_args().expect("args").join(" ");
        assert!(args.contains("-kernel /img/vmlinuz"), "{args}");
        assert!(
            args.contains("-append root=/dev/vda console=ttyS0"),
            "{args}"
        );
        assert!(args.contains("hostfwd=tcp:127.0.0.1:40022-:22"), "{args}");
        assert!(
            args.contains("hostfwd=tcp:127.0.0.1:40376-:40376"),
            "{args}"
        );
        assert!(args.contains("file=overlay.qcow2,if=virtio"), "{args}");
        assert!(
            args.contains("-qmp unix:qmp.sock,server=on,wait=off"),
            "{args}"
        );
        assert!(args.contains("-accel tcg"), "{args}");
        assert!(args.contains("-machine pc,hpet=off"), "{args}");
        assert!(
            args.contains(
                "-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
            ),
            "{args}"
        );
        assert!(args.contains("-accel tcg -cpu max"), "{args}");
        assert!(args.contains("virtio-rng-pci,rng=rng0"), "{args}");
    }
    #[test]
    fn a_boot_that_stops_printing_is_hung_one_that_prints_is_not() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let mut w = BootWatch::new(Duration::from_secs(90), t0);
        let kernel = "[    1.2] clocksource: Switched to clocksource hpet\n";
        // Slow but printing: never hung, however long it takes.
        for i in 1..=30u64 {
            assert_eq!(w.step(s(i * 60), i * 100, kernel), Verdict::Wait, "{i}");
        }
        // Then nothing for less than the limit: still waiting; at the limit: hung.
        assert_eq!(w.step(s(30 * 60 + 89), 3000, kernel), Verdict::Wait);
        assert_eq!(w.step(s(30 * 60 + 90), 3000, kernel), Verdict::Hung);
        assert_eq!(
            last_line(kernel),
            "[    1.2] clocksource: Switched to clocksource hpet"
        );
        // A console that never printed cannot be judged.
        let mut w = BootWatch::new(Duration::from_secs(90), t0);
        assert_eq!(w.step(s(10), 0, ""), Verdict::Wait);
        assert_eq!(w.step(s(90), 0, ""), Verdict::Silent);
        // A kernel that reports a stuck CPU prints, but makes no progress: hung once the
        // report says it is stuck for the limit (a short lockup on a loaded host is not).
        let lockup = |secs: u64| {
            format!(
                "[   64.3] watchdog: BUG: soft lockup - CPU#0 stuck for {secs}s! [systemd-random-:207]\n[   64.3]  ? do_syscall_64+0x69/0x90\n"
            )
        };
        let mut w = BootWatch::new(Duration::from_secs(90), t0);
        assert_eq!(w.step(s(60), 4000, &lockup(44)), Verdict::Wait);
        assert_eq!(w.step(s(120), 8000, &lockup(104)), Verdict::Hung);
        assert_eq!(lockup_secs(&lockup(7)), Some(7));
        assert_eq!(lockup_secs("no report"), None);
    }

    #[test]
    fn a_login_prompt_or_cloud_init_finished_is_up() {
        let t0 = Instant::now();
        let mut w = BootWatch::new(Duration::from_secs(90), t0);
        let prompt =
            "[  OK  ] Started ssh.service\r\n\r\nDebian GNU/Linux 12 vm1 ttyS0\r\n\r\nvm1 login: ";
        assert_eq!(w.step(t0, 10, prompt), Verdict::Up);
        let ci = "[   52.1] cloud-init[601]: Cloud-init v. 22.4.2 finished at Mon, 07 Dec 2026 04:00:00 +0000. Datasource DataSourceNoCloud.  Up 52.00 seconds\n";
        assert!(booted(ci));
        // Even long after the last byte: up is up.
        assert_eq!(
            w.step(t0 + Duration::from_secs(500), 10, prompt),
            Verdict::Up
        );
        assert!(!booted("Welcome to Debian GNU/Linux 12 (bookworm)!\n"));
    }

    #[test]
    fn the_last_console_line_is_plain_bounded_text() {
        let hostile = format!("ok\n\x1b]0;title\x07{}\n\n  \n", "x".repeat(500));
        let line = last_line(&hostile);
        assert!(line.chars().all(|c| !c.is_control()), "{line:?}");
        assert_eq!(line.chars().count(), 160);
    }
}
