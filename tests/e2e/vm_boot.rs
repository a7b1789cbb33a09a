//! A real first boot of a local VM: the image `dmw image build` makes (built once, cached
//! under /var/cache/dmw-testbed/images by its inputs), a fresh machine key, the NoCloud
//! seed from `dmw::vm::seed` (user `docker`, the machine's hostname), booted under TCG by
//! `dmw::vm::qemu::boot` with SSH forwarded to 127.0.0.1; the system ssh logs in with the
//! key, sees the seed's hostname and passwordless sudo — real cloud-init read the seed.
//! Then the VM is destroyed: no QEMU process and no file left (also when the test fails:
//! a guard destroys it).
//!
//! Measured 2026-12-01 (2 shared cores, TCG, 1024 MiB, 2 vCPUs, Debian 12 host, qemu 7.2):
//! image build cold 63 s (empty package cache; 51 s with debootstrap's package cache warm),
//! warm (cache hit) under 1 ms; QEMU start to SSH accepting the key 26.2 s and 26.4 s.
//! The test takes about 27 s with the image cached.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dmw::vm::accel::{self, AccelChoice};
use dmw::vm::image::{self, ImageSpec};
use dmw::vm::qemu::{self, Accel, BootSpec, Vm};
use dmw::vm::seed::Seed;
use dmw_testbed::require_root_or_skip;

/// How long the guest may take from QEMU's start to accepting SSH (TCG is slow).
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// Destroys the VM when dropped (a failing test leaves nothing running).
struct Guard(Option<Vm>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(vm) = self.0.take() {
            let _ = vm.destroy();
        }
    }
}

/// Processes (not zombies) whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rfind(')')
            .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

fn ssh(key: &Path, port: u16, command: &str) -> std::process::Output {
    Command::new("ssh")
        .arg("-i")
        .arg(key)
        .args(["-p", &port.to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
            "docker@127.0.0.1",
            command,
        ])
        .output()
        .expect("run ssh")
}

#[test]
fn vm_boots_from_the_seed_and_accepts_the_machine_key() {
    if !require_root_or_skip("vm_boots_from_the_seed_and_accepts_the_machine_key") {
        return;
    }
    assert!(
        Path::new("/usr/bin/qemu-system-x86_64").exists(),
        "needs qemu-system-x86 (scripts/setup installs it)"
    );
    let cache = Path::new(dmw_testbed::CACHE_DIR).join("images");
    let started = Instant::now();
    let image = image::build(&ImageSpec::default(), &cache, &mut |line| {
        eprintln!("vm_boot: {line}")
    })
    .expect("build the image");
    eprintln!("vm_boot: image ready in {:.1?}", started.elapsed());

    let work = tempfile::tempdir().expect("tempdir");
    let key = work.path().join("id_ed25519");
    let public = dmw::provision::machine_key::generate(&key, "vm-boot").expect("machine key");
    let hostname = "vmboot1";
    let seed = Seed {
        instance_id: "dmw-vm-boot-1".into(),
        hostname: hostname.into(),
        user: "docker".into(),
        ssh_public_key: public,
    };
    // The accelerator as `--qemu-accel auto` decides it: KVM only if the image's kernel
    // really runs under it (here /dev/kvm exists but a KVM guest hangs), else TCG. The probe
    // itself must work: TCG runs the kernel.
    assert!(
        accel::probe(Accel::Tcg, &image.kernel, Duration::from_secs(60)).expect("probe"),
        "TCG did not run the image's kernel"
    );
    let decision = accel::choose(AccelChoice::Auto, &image.kernel).expect("choose");
    eprintln!(
        "vm_boot: accelerator {:?} ({:?})",
        decision.accel, decision.fallback
    );
    if decision.accel == Accel::Tcg && Path::new("/dev/kvm").exists() {
        assert!(decision.fallback.is_some(), "the fallback is explained");
    }
    let dir = work.path().join("machine");
    let mut spec = BootSpec::new(dir.clone(), image, seed);
    // The VM boots with the decided accelerator: a probe that said KVM works where it
    // hangs would fail the SSH wait below.
    spec.accel = decision.accel;
    let booted = Instant::now();
    let vm = qemu::boot(&spec).expect("boot the VM");
    let mut guard = Guard(Some(vm.clone()));
    assert!(vm.is_running());

    let mut last = String::new();
    let out = loop {
        let out = ssh(&key, vm.ssh_port, "hostname; sudo -n true && echo sudo-ok");
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        if booted.elapsed() > BOOT_TIMEOUT || !vm.is_running() {
            let console = std::fs::read_to_string(vm.console_log()).unwrap_or_default();
            let tail: Vec<&str> = console.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "no SSH login after {:.0?} (running: {}); last ssh error: {last}\nconsole:\n{}",
                booted.elapsed(),
                vm.is_running(),
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    eprintln!(
        "vm_boot: SSH accepted the key {:.1?} after QEMU started",
        booted.elapsed()
    );
    let _ = last;
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines.first().copied(), Some(hostname), "ssh output: {out}");
    assert!(lines.contains(&"sudo-ok"), "ssh output: {out}");

    let dir_text = dir.to_string_lossy().into_owned();
    guard
        .0
        .take()
        .expect("vm")
        .destroy()
        .expect("destroy the VM");
    assert!(!vm.is_running());
    assert!(!dir.exists(), "the machine directory is left behind");
    assert!(
        processes_mentioning(&dir_text).is_empty(),
        "a QEMU process is left behind"
    );
}
