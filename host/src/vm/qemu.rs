//! QEMU's command line for a machine's VM, built by the host from typed values (the `vm`
//! capability): a plugin chooses memory, CPUs, the accelerator, forwarded ports, the
//! kernel command line and whether the VM joins the shared network — never an argument
//! of QEMU's. Every VM runs with QEMU's seccomp sandbox ([`SANDBOX`]), `-nodefaults` and
//! `-no-user-config`; its files are relative names in the VM's host-owned directory
//! (QEMU starts there), and its disk, kernel and initramfs are the ones the host recorded
//! at `create-disk` ([`VmDisk`]).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// QEMU for x86-64 guests.
pub const QEMU: &str = "qemu-system-x86_64";
/// QEMU's disk tool.
pub const QEMU_IMG: &str = "qemu-img";
/// QEMU's seccomp sandbox for every VM: no obsolete system calls, no privilege changes,
/// no new processes (so neither `-incoming exec:` nor a `migrate exec:` runs a command),
/// no changes to scheduling or resource limits.
pub const SANDBOX: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";
/// The kernel command line when the plugin gives none.
pub const DEFAULT_APPEND: &str = "root=/dev/vda console=ttyS0";

/// The files of a VM's directory.
pub mod file {
    /// The copy-on-write overlay the VM boots.
    pub const DISK: &str = "disk.qcow2";
    /// The NoCloud seed, attached read-only.
    pub const SEED: &str = "seed.img";
    /// The serial console.
    pub const CONSOLE: &str = "console.log";
    /// QEMU's own output.
    pub const LOG: &str = "qemu.log";
    /// QEMU's monitor (QMP) socket.
    pub const QMP: &str = "qmp.sock";
    /// The host's record of what the VM boots ([`super::VmDisk`]).
    pub const RECORD: &str = "vm.json";
    /// The serial console of the KVM probe.
    pub const PROBE: &str = "kvm-probe.log";
}

/// The shared network: QEMU's socket netdev on a multicast group over the loopback
/// interface (no root), one for all of the user's VMs on this computer.
pub const SHARED_GROUP: &str = "230.0.77.77:41077";
/// Most forwarded ports.
pub const MAX_FORWARDS: usize = 8;
/// Longest kernel command line.
pub const MAX_APPEND: usize = 1024;

/// What a VM boots, recorded by the host when it made the disk (`vm.json` in the VM's
/// directory; the plugin's store is not trusted with paths QEMU opens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmDisk {
    /// The image the overlay is made over (checked: no backing or data file).
    pub base: PathBuf,
    /// Its format, `qcow2` or `raw`.
    pub format: String,
    /// The kernel QEMU boots directly, if any.
    pub kernel: Option<PathBuf>,
    /// Its initramfs, if any.
    pub initrd: Option<PathBuf>,
}

/// The accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// KVM, with the host's CPU.
    Kvm,
    /// TCG, QEMU's emulator.
    Tcg,
}

/// How a VM runs (the plugin's typed choices, checked by [`Boot::check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Virtual CPUs.
    pub cpus: u32,
    /// The accelerator.
    pub accel: Accel,
    /// The kernel command line.
    pub append: Option<String>,
    /// (host port on 127.0.0.1, guest port).
    pub forwards: Vec<(u16, u16)>,
    /// The MAC on the shared network, if the VM joins it.
    pub shared_mac: Option<String>,
}

impl Boot {
    /// Refuse values QEMU should never see: out-of-range sizes, ports 0, a command line
    /// with control characters, a MAC not of QEMU's local range.
    pub fn check(&self) -> Result<()> {
        if !(256..=1_048_576).contains(&self.memory_mib) {
            bail!("memory {} MiB: between 256 and 1048576", self.memory_mib);
        }
        if !(1..=64).contains(&self.cpus) {
            bail!("{} CPUs: between 1 and 64", self.cpus);
        }
        if let Some(a) = &self.append
            && (a.chars().count() > MAX_APPEND || a.chars().any(char::is_control))
        {
            bail!(
                "the kernel command line must be printable text of at most {MAX_APPEND} characters"
            );
        }
        if self.forwards.len() > MAX_FORWARDS {
            bail!(
                "{} forwarded ports: at most {MAX_FORWARDS}",
                self.forwards.len()
            );
        }
        if self.forwards.iter().any(|&(h, g)| h == 0 || g == 0) {
            bail!("a forwarded port is 0");
        }
        if let Some(mac) = &self.shared_mac
            && !is_local_mac(mac)
        {
            bail!(
                "the MAC {:?} is not 52:54:00:xx:xx:xx",
                crate::text::sanitize::plugin_text(mac, 40)
            );
        }
        Ok(())
    }
}

/// Whether `mac` is `52:54:00:xx:xx:xx` (QEMU's locally administered range) in lower hex.
fn is_local_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && mac.starts_with("52:54:00:")
        && parts.iter().all(|p| {
            p.len() == 2
                && p.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
}

/// A disk size such as `20G` (a number with an optional K, M, G or T), in bytes: at least
/// 1 MiB.
pub fn parse_disk_size(size: &str) -> Result<u64> {
    let ok =
        !size.is_empty() && size.len() <= 16 && size.chars().all(|c| c.is_ascii_alphanumeric());
    match crate::sandbox::quota::parse_size(size).filter(|_| ok) {
        Some(bytes) if bytes >= 1 << 20 => Ok(bytes),
        _ => bail!(
            "disk size {:?} is not a size such as 20G",
            crate::text::sanitize::plugin_text(size, 40)
        ),
    }
}

/// QEMU's arguments for VM `name` (relative file names: QEMU starts in the VM's directory).
pub fn command_line(name: &str, disk: &VmDisk, boot: &Boot) -> Vec<String> {
    let title = format!("dmw-{name}");
    let mut args: Vec<String> = [
        "-nodefaults",
        "-no-user-config",
        "-name",
        title.as_str(),
        // No HPET: an emulated timer that costs host CPU and that TCG guests were seen to
        // hang on ("Switched to clocksource hpet", then nothing); the guest uses its TSC
        // or the ACPI PM timer.
        "-machine",
        "pc,hpet=off",
        "-sandbox",
        SANDBOX,
    ]
    .map(String::from)
    .to_vec();
    match boot.accel {
        Accel::Kvm => args.extend(["-accel", "kvm", "-cpu", "host"].map(String::from)),
        // TCG's `max` CPU has RDRAND, which the kernel trusts to seed its random number
        // generator at once; with the default CPU a TCG guest was seen stuck for minutes in
        // getrandom() at the second boot (systemd-random-seed, soft lockups).
        Accel::Tcg => args.extend(["-accel", "tcg", "-cpu", "max"].map(String::from)),
    }
    args.extend([
        "-m".into(),
        boot.memory_mib.to_string(),
        "-smp".into(),
        boot.cpus.to_string(),
    ]);
    if let Some(kernel) = &disk.kernel {
        args.extend(["-kernel".into(), kernel.to_string_lossy().into_owned()]);
        if let Some(initrd) = &disk.initrd {
            args.extend(["-initrd".into(), initrd.to_string_lossy().into_owned()]);
        }
        let append = boot
            .append
            .clone()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| DEFAULT_APPEND.into());
        args.extend(["-append".into(), append]);
    }
    let forwards: String = boot
        .forwards
        .iter()
        .map(|(h, g)| format!(",hostfwd=tcp:127.0.0.1:{h}-:{g}"))
        .collect();
    args.extend([
        "-drive".into(),
        format!("file={},if=virtio,format=qcow2", file::DISK),
        "-drive".into(),
        format!("file={},if=virtio,format=raw,readonly=on", file::SEED),
        "-netdev".into(),
        format!("user,id=net0{forwards}"),
        "-device".into(),
        "virtio-net-pci,netdev=net0".into(),
        // Entropy from the host's /dev/urandom (virtio-rng): the guest never waits for its
        // random number generator at boot.
        "-object".into(),
        "rng-random,id=rng0,filename=/dev/urandom".into(),
        "-device".into(),
        "virtio-rng-pci,rng=rng0".into(),
    ]);
    if let Some(mac) = &boot.shared_mac {
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
        format!("file:{}", file::CONSOLE),
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", file::QMP),
    ]);
    args
}

/// QEMU's arguments for the KVM probe: boot `kernel` (if any) with no disk, console to
/// [`file::PROBE`]; without a kernel, only whether QEMU can open KVM.
pub fn kvm_probe_line(kernel: Option<&Path>) -> Vec<String> {
    let serial = format!("file:{}", file::PROBE);
    let mut args: Vec<String> = [
        "-accel",
        "kvm",
        "-m",
        "256",
        "-nodefaults",
        "-no-user-config",
        "-sandbox",
        SANDBOX,
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        serial.as_str(),
    ]
    .map(String::from)
    .to_vec();
    match kernel {
        Some(k) => args.extend([
            "-machine".into(),
            "pc".into(),
            "-append".into(),
            "console=ttyS0 panic=-1".into(),
            "-kernel".into(),
            k.to_string_lossy().into_owned(),
        ]),
        None => args.extend(["-machine", "none", "-S", "-qmp", "none"].map(String::from)),
    }
    args
}

/// The format of the image whose first bytes are `head`: `qcow2` (plain: no backing or
/// data file, [`super::qcow2::check_head`]) or `raw`; other formats QEMU knows are refused
/// by name (QEMU is always told the format, so a raw image is never probed as another).
pub fn disk_format(head: &[u8]) -> Result<&'static str> {
    let starts = |magic: &[u8]| head.starts_with(magic);
    let other = if starts(b"KDMV") || starts(b"# Disk DescriptorFile") || starts(b"COWD") {
        Some("vmdk")
    } else if head.len() >= 68 && head[64..68] == [0x7f, 0x10, 0xda, 0xbe] {
        Some("vdi")
    } else if starts(b"vhdxfile") {
        Some("vhdx")
    } else if starts(b"conectix") {
        Some("vpc (vhd)")
    } else if starts(b"QFI\xfd") {
        Some("qed")
    } else if starts(b"LUKS\xba\xbe") {
        Some("luks")
    } else if starts(b"OOOM") || starts(b"QFI\x00") {
        Some("cow")
    } else {
        None
    };
    if let Some(format) = other {
        bail!("it is {format}; use a qcow2 or raw image (`qemu-img convert -O qcow2` converts it)");
    }
    if head.starts_with(super::qcow2::MAGIC) {
        super::qcow2::check_head(head).map_err(|r| anyhow::anyhow!("{r}"))?;
        return Ok("qcow2");
    }
    Ok("raw")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot() -> Boot {
        Boot {
            memory_mib: 1024,
            cpus: 2,
            accel: Accel::Tcg,
            append: None,
            forwards: vec![(40022, 22), (40376, 2376)],
            shared_mac: None,
        }
    }

    fn disk(kernel: bool) -> VmDisk {
        VmDisk {
            base: "/cache/img/disk.qcow2".into(),
            format: "qcow2".into(),
            kernel: kernel.then(|| "/cache/img/vmlinuz".into()),
            initrd: kernel.then(|| "/cache/img/initrd.img".into()),
        }
    }

    #[test]
    fn the_command_line_is_the_hosts_sandboxed_with_relative_files() {
        let args = command_line("vm1", &disk(true), &boot()).join(" ");
        for want in [
            "-nodefaults -no-user-config -name dmw-vm1",
            "-machine pc,hpet=off",
            "-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
            "-accel tcg -cpu max",
            "-m 1024 -smp 2",
            "-kernel /cache/img/vmlinuz -initrd /cache/img/initrd.img -append root=/dev/vda console=ttyS0",
            "-drive file=disk.qcow2,if=virtio,format=qcow2",
            "-drive file=seed.img,if=virtio,format=raw,readonly=on",
            "-netdev user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:40376-:2376",
            "virtio-rng-pci,rng=rng0",
            "-serial file:console.log",
            "-qmp unix:qmp.sock,server=on,wait=off",
        ] {
            assert!(args.contains(want), "{want} in {args}");
        }
        assert!(!args.contains("mcast"), "{args}");
        let mut b = boot();
        b.accel = Accel::Kvm;
        b.shared_mac = Some("52:54:00:0a:0b:0c".into());
        b.append = Some("root=/dev/vda1 quiet".into());
        let args = command_line("vm1", &disk(false), &b).join(" ");
        assert!(args.contains("-accel kvm -cpu host"), "{args}");
        assert!(
            !args.contains("-kernel") && !args.contains("-append"),
            "{args}"
        );
        assert!(
            args.contains("socket,id=net1,mcast=230.0.77.77:41077,localaddr=127.0.0.1")
                && args.contains("mac=52:54:00:0a:0b:0c"),
            "{args}"
        );
    }

    #[test]
    fn boot_values_qemu_should_not_see_are_refused() {
        assert!(boot().check().is_ok());
        type Change = Box<dyn Fn(&mut Boot)>;
        let bad: Vec<Change> = vec![
            Box::new(|b| b.memory_mib = 128),
            Box::new(|b| b.cpus = 0),
            Box::new(|b| b.cpus = 65),
            Box::new(|b| b.append = Some("a\nb".into())),
            Box::new(|b| b.append = Some("x".repeat(MAX_APPEND + 1))),
            Box::new(|b| b.forwards = vec![(0, 22)]),
            Box::new(|b| b.forwards = vec![(1, 2); MAX_FORWARDS + 1]),
            Box::new(|b| b.shared_mac = Some("52:54:00:0a:0b:0c,id=x".into())),
            Box::new(|b| b.shared_mac = Some("02:00:00:00:00:01".into())),
        ];
        for (i, change) in bad.iter().enumerate() {
            let mut b = boot();
            change(&mut b);
            assert!(b.check().is_err(), "case {i}: {b:?}");
        }
    }

    #[test]
    fn disk_sizes_are_plain() {
        assert_eq!(parse_disk_size("20G").ok(), Some(20 << 30));
        assert_eq!(parse_disk_size("512M").ok(), Some(512 << 20));
        for bad in ["", "G", "20G,x", "-1G", "1K", "9999999999999G", "20 G"] {
            assert!(parse_disk_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_are_told_apart_and_only_plain_qcow2_and_raw_pass() {
        assert_eq!(disk_format(b"\0\0\0\0 a raw disk").ok(), Some("raw"));
        for (head, name) in [
            (b"KDMV....".to_vec(), "vmdk"),
            (b"# Disk DescriptorFile\n".to_vec(), "vmdk"),
            (b"vhdxfile".to_vec(), "vhdx"),
            (b"conectix".to_vec(), "vpc"),
            (b"QFI\xfd....".to_vec(), "qed"),
        ] {
            let e = disk_format(&head).expect_err(name).to_string();
            assert!(e.contains(name), "{e}");
        }
        let mut vdi = vec![0u8; 80];
        vdi[64..68].copy_from_slice(&[0x7f, 0x10, 0xda, 0xbe]);
        assert!(disk_format(&vdi).is_err());
        // A qcow2 naming a backing file.
        let mut q = vec![0u8; 512];
        q[..4].copy_from_slice(super::super::qcow2::MAGIC);
        q[4..8].copy_from_slice(&3u32.to_be_bytes());
        q[8..16].copy_from_slice(&200u64.to_be_bytes());
        q[16..20].copy_from_slice(&11u32.to_be_bytes());
        q[200..211].copy_from_slice(b"/etc/shadow");
        let e = disk_format(&q).expect_err("backing").to_string();
        assert!(
            e.contains("backing file") && e.contains("/etc/shadow"),
            "{e}"
        );
    }
}
