//! The `qemu` driver: a local virtual machine under QEMU, dmw's default driver (Docker
//! Machine's was a local VirtualBox VM).
//!
//! It runs no program itself: the VM is the host's, through the `vm` capability. The driver
//! gives typed values and the host builds QEMU's command line (sandboxed), keeps the VM's
//! files in the machine's `vm/` directory, out of the driver's reach, and speaks QEMU's
//! monitor:
//!
//! - the disk: a copy-on-write overlay over the image, `--qemu-disk-size` large;
//! - the seed: the NoCloud seed ([`seed`]) with the machine's public key (`keys`), user
//!   `docker` and the machine's name as hostname, made here and handed to the host;
//! - the serial console, which the driver reads through `vm` to watch the boot.
//!
//! `files` is used for dmw's image cache only: the images `dmw image build` made and
//! verified downloads (`cached-download`).
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
use dmw_guest::vm::{self, Accel, Boot, Forward};
use dmw_guest::{Error, Result, files, info, store, warn};

dmw_guest::permissions! {
    capability "keys";
    capability "vm";
    capability "files";
    capability "http";
    http_host "cloud.debian.org";
    http_host "{qemu-image}";
}

/// The disk an older dmw (before the `vm` capability) made in the driver's own directory.
const LEGACY_DISK: &str = "overlay.qcow2";
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
const CONSOLE_TAIL: u32 = 4096;

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

/// The shared network's addresses (`--qemu-network shared`: QEMU's socket netdev on a
/// multicast group over the loopback interface, one for all of the user's VMs here): 10.77.0.0/16, each VM's derived from its name.
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

/// The format (`qcow2`, `raw`) of a disk the host accepts for a VM, or why it is none.
fn disk_format(path: &str) -> Result<String> {
    vm::inspect_disk(path)
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

/// Decide the accelerator for `--qemu-accel` (stored: every start uses the same). The
/// host's probe boots the disk's kernel under KVM: `/dev/kvm` being there is not enough (on
/// machines without working nested virtualisation a KVM guest hangs early in its boot).
fn decide_accel() -> Result<()> {
    let choice = store::get(key::ACCEL_CHOICE).unwrap_or_else(|| "auto".into());
    let accel = match choice.as_str() {
        "tcg" => "tcg".to_string(),
        _ => match vm::probe_kvm()? {
            None => "kvm".to_string(),
            Some(why) if choice == "kvm" => {
                return Err(Error::Failed(format!(
                    "--qemu-accel kvm: {why}; use --qemu-accel tcg"
                )));
            }
            Some(why) => {
                warn(&format!("{why}; using TCG (emulation, slower)"));
                "tcg".to_string()
            }
        },
    };
    store::set(key::ACCEL, accel);
    Ok(())
}

/// How the VM runs: the stored choices, as the host's typed boot parameters (SSH and the
/// engine port forwarded from 127.0.0.1; the engine listens in the guest on the port it
/// is reached at).
fn boot_spec() -> Result<Boot> {
    let ssh_port: u16 = store::get_or(key::SSH_PORT, 0)?;
    let engine_port: u16 = store::get_or(key::ENGINE_PORT, 0)?;
    let shared_mac = match (store::get(key::SHARED_MAC), store::get(key::SHARED_ADDRESS)) {
        (Some(mac), Some(_)) => Some(mac),
        _ => None,
    };
    Ok(Boot {
        memory_mib: store::get_or(key::MEMORY, 1024u32)?,
        cpus: store::get_or(key::CPUS, 2u32)?,
        accel: match store::get(key::ACCEL).as_deref() {
            Some("kvm") => Accel::Kvm,
            _ => Accel::Tcg,
        },
        append: store::get(key::APPEND).filter(|a| !a.is_empty()),
        forwards: vec![
            Forward {
                host_port: ssh_port,
                guest_port: 22,
            },
            Forward {
                host_port: engine_port,
                guest_port: engine_port,
            },
        ],
        shared_mac,
    })
}

/// The last lines QEMU wrote about an error (its own log), if any.
fn qemu_error() -> Option<String> {
    vm::qemu_errors()
}

/// Start QEMU (the host waits until its monitor answers).
fn boot() -> Result<()> {
    vm::start(&boot_spec()?)?;
    Ok(())
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

/// The serial console's size and its last [`CONSOLE_TAIL`] bytes.
fn console_tail() -> (u64, String) {
    vm::console(CONSOLE_TAIL)
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
        if !vm::running()? {
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
                vm::kill()?;
                let hung = format!(
                    "the VM hung at boot: its serial console printed nothing for {}s, the last line being {line:?}",
                    stall.as_secs()
                );
                if attempt == 1 {
                    warn(&format!("{hung}; killed it, booting again"));
                } else {
                    return Err(Error::Failed(format!(
                        "{hung}, twice in a row (the whole console is console.log in the machine's vm directory); try again, or with --qemu-cpus 1"
                    )));
                }
            }
        }
    }
    Err(Error::Failed("the VM did not boot".into()))
}

/// The NoCloud seed of the machine: its name, the public key dmw made for it, user
/// `docker`, and its address on the shared network when it joined.
fn seed_image() -> Result<Vec<u8>> {
    let name = store::require(key::NAME)?;
    let key = generated_public_key().ok_or_else(|| {
        invalid("the qemu driver logs in with the key dmw makes for the machine; it takes no SSH key of yours")
    })?;
    let shared = match (store::get(key::SHARED_MAC), store::get(key::SHARED_ADDRESS)) {
        (Some(mac), Some(address)) => Some(seed::SharedNic { mac, address }),
        _ => None,
    };
    seed::Seed {
        instance_id: format!("dmw-{name}"),
        hostname: name,
        user: USER.into(),
        ssh_public_key: key,
        shared,
    }
    .fat_image()
}

/// Make the machine's disk (a fresh copy-on-write overlay over the image) and its seed.
fn make_disk() -> Result<()> {
    let disk = store::require(key::DISK)?;
    let size = store::get(key::DISK_SIZE).unwrap_or_else(|| "20G".into());
    let kernel = store::get(key::KERNEL).filter(|k| !k.is_empty());
    let initrd = store::get(key::INITRD).filter(|k| !k.is_empty());
    vm::create_disk(
        &disk,
        &size,
        kernel.as_deref(),
        initrd.as_deref(),
        &seed_image()?,
    )
}

/// Two distinct free ports on 127.0.0.1.
fn two_ports() -> Result<(u16, u16)> {
    let a = vm::free_port()?;
    for _ in 0..8 {
        let b = vm::free_port()?;
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
        resolve_image()
    }

    fn create() -> Result<()> {
        let name = store::require(key::NAME)?;
        if generated_public_key().is_none() {
            return Err(invalid(
                "the qemu driver logs in with the key dmw makes for the machine; it takes no SSH key of yours",
            ));
        }
        if store::get(key::NETWORK).as_deref() == Some("shared") {
            let nic = shared_nic(&name);
            store::set(key::SHARED_MAC, &nic.mac);
            store::set(key::SHARED_ADDRESS, &nic.address);
            info(&format!(
                "On the shared network as {}",
                nic.address.split('/').next().unwrap_or_default()
            ));
        }
        info("Creating the VM's disk and first-boot seed...");
        make_disk()?;
        decide_accel()?;
        let mut last = None;
        for _ in 0..3 {
            let (ssh_port, engine_port) = two_ports()?;
            store::set(key::SSH_PORT, ssh_port);
            store::set(key::ENGINE_PORT, engine_port);
            info(&format!(
                "Starting the VM (SSH on 127.0.0.1:{ssh_port}, engine on 127.0.0.1:{engine_port})..."
            ));
            match boot_watched(&make_disk) {
                Ok(()) => return Ok(()),
                // Another program took a port between the probe and QEMU's bind: new ports.
                Err(e) if e.message().contains("forwarding") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Failed("QEMU did not start".into())))
    }

    fn state() -> Result<MachineState> {
        if !vm::running()? {
            if let Some(why) = qemu_error() {
                warn(&format!("QEMU ended with: {why}"));
                return Ok(MachineState::Error);
            }
            return Ok(MachineState::Stopped);
        }
        let Ok(status) = vm::status() else {
            return Ok(MachineState::Starting);
        };
        Ok(match status.as_str() {
            "running" => MachineState::Running,
            "paused" | "suspended" => MachineState::Paused,
            "shutdown" => MachineState::Stopping,
            "inmigrate" | "prelaunch" => MachineState::Starting,
            "guest-panicked" | "internal-error" | "io-error" => MachineState::Error,
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
        if vm::running()? {
            return Ok(());
        }
        if !vm::has_disk() {
            if !std::path::Path::new(&files::path(LEGACY_DISK)).exists() {
                return Err(Error::Failed(
                    "this machine's VM has no disk (its files were removed?); remove it (`dmw rm`) and create it again".into(),
                ));
            }
            // Made by a dmw before the `vm` capability: its disk moves to the host's VM
            // directory, with a seed made anew.
            info("Taking over the VM's disk an older dmw made...");
            let kernel = store::get(key::KERNEL).filter(|k| !k.is_empty());
            let initrd = store::get(key::INITRD).filter(|k| !k.is_empty());
            vm::adopt_disk(
                LEGACY_DISK,
                kernel.as_deref(),
                initrd.as_deref(),
                &seed_image()?,
            )?;
        }
        boot_watched(&|| Ok(()))
    }

    fn stop() -> Result<()> {
        if !vm::running()? {
            return Ok(());
        }
        info("Stopping the VM (ACPI power button)...");
        if let Err(e) = vm::powerdown() {
            warn(&format!("{}; killing QEMU instead", e.message()));
            return vm::kill();
        }
        if vm::wait(STOP_TIMEOUT)? {
            return vm::kill();
        }
        warn(&format!(
            "the VM did not power off within {}s; killing it",
            STOP_TIMEOUT.as_secs()
        ));
        vm::terminate()?;
        if vm::wait(Duration::from_secs(5))? {
            return vm::kill();
        }
        vm::kill()
    }

    fn restart() -> Result<()> {
        Self::stop()?;
        Self::start()
    }

    fn kill() -> Result<()> {
        vm::kill()
    }

    fn remove() -> Result<()> {
        vm::destroy()?;
        // The files older dmw versions kept in the driver's own directory.
        let entries = std::fs::read_dir(files::DIR)
            .map_err(|e| Error::Failed(format!("cannot list the driver's files: {e}")))?;
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
    fn the_vm_boots_with_the_stored_choices_and_ports() {
        dmw_guest::mock::reset();
        Qemu::set_config(
            "vm1",
            &Flags::of(&[("qemu-memory", "2048"), ("qemu-cpus", "1")]),
        )
        .expect("config");
        store::set(key::SSH_PORT, 40022);
        store::set(key::ENGINE_PORT, 40376);
        store::set(key::ACCEL, "tcg");
        let boot = boot_spec().expect("boot");
        assert_eq!((boot.memory_mib, boot.cpus), (2048, 1));
        assert!(matches!(boot.accel, Accel::Tcg));
        assert_eq!(boot.append.as_deref(), Some(DEFAULT_APPEND));
        let ports: Vec<(u16, u16)> = boot
            .forwards
            .iter()
            .map(|f| (f.host_port, f.guest_port))
            .collect();
        assert_eq!(ports, vec![(40022, 22), (40376, 40376)]);
        assert!(boot.shared_mac.is_none());
        let nic = shared_nic("vm1");
        store::set(key::SHARED_MAC, &nic.mac);
        store::set(key::SHARED_ADDRESS, &nic.address);
        store::set(key::ACCEL, "kvm");
        let boot = boot_spec().expect("boot");
        assert_eq!(boot.shared_mac.as_deref(), Some(nic.mac.as_str()));
        assert!(matches!(boot.accel, Accel::Kvm));
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
