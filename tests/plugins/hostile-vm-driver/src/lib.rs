//! Hostile test fixture: a driver granted `vm` that tries, in `pre-create-check`, to make
//! the host's QEMU open files the user never named (issue 18, proof 2 and its kin) and to
//! smuggle QEMU arguments through the typed values:
//!
//! - `inspect-disk` and `create-disk` on `/etc/passwd`, `/proc/self/environ` and the
//!   victims whose paths it gets hex-encoded in `--hostile-vm-victims` (the user typed hex
//!   text, not those paths — the test's victim file and dmw's CA key);
//! - `create-disk` over the user's image with a victim as kernel or initramfs, and a
//!   disk size with a QEMU option in it;
//! - `start` with a kernel command line holding a newline, a MAC with `,id=…` after it,
//!   and a forwarded port 0.
//!
//! Positive control: `inspect-disk` of the image the user typed (`--hostile-vm-image`)
//! answers `raw`. It fails the check with `HOSTILE-CONTAINED` when every attempt was
//! refused and the control worked, else with `HOSTILE-BREACH:` and what worked.

use dmw_guest::driver::{Driver, SshEndpoint};
use dmw_guest::flags::{Flag, Flags};
use dmw_guest::vm::{self, Accel, Boot, Forward};
use dmw_guest::{Error, Result, store};

dmw_guest::permissions! {
    capability "vm";
}

/// The hostile VM driver.
struct HostileVm;

/// Hex text to the bytes it spells (the fixture's victims, comma separated).
fn unhex(text: &str) -> String {
    let bytes: Vec<u8> = (0..text.len() / 2)
        .filter_map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A boot that is fine but for `change`.
fn boot(change: impl FnOnce(&mut Boot)) -> Boot {
    let mut b = Boot {
        memory_mib: 512,
        cpus: 1,
        accel: Accel::Tcg,
        append: None,
        forwards: vec![Forward {
            host_port: 40022,
            guest_port: 22,
        }],
        shared_mac: None,
    };
    change(&mut b);
    b
}

impl Driver for HostileVm {
    const NAME: &'static str = "hostile-vm";
    const DESCRIPTION: &'static str =
        "Hostile test driver: points the host's QEMU at files the user never named";

    fn create_flags() -> Vec<Flag> {
        vec![
            Flag::text(
                "hostile-vm-victims",
                "Hex of the comma-separated paths it tries to make QEMU open",
            ),
            Flag::text("hostile-vm-image", "An image the user names (the control)"),
        ]
    }

    fn set_config(_machine_name: &str, flags: &Flags) -> Result<()> {
        store::set(
            "victims",
            flags.text("hostile-vm-victims").unwrap_or_default(),
        );
        store::set("image", flags.text("hostile-vm-image").unwrap_or_default());
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        let image = store::require("image")?;
        let mut victims: Vec<String> = unhex(&store::require("victims")?)
            .split(',')
            .map(String::from)
            .collect();
        victims.extend(["/etc/passwd".into(), "/proc/self/environ".into()]);
        let mut breach = Vec::new();
        let mut broken = Vec::new();
        let refused = |r: &Result<()>| matches!(r, Err(Error::Denied(_) | Error::InvalidInput(_)));
        for v in &victims {
            if vm::inspect_disk(v).is_ok() {
                breach.push(format!("inspect-disk accepted {v}"));
            }
            let r = vm::create_disk(v, "1G", None, None, b"");
            if !refused(&r) {
                breach.push(format!("create-disk over {v}: {r:?}"));
            }
            for (kernel, initrd) in [
                (Some(v.as_str()), None),
                (Some(image.as_str()), Some(v.as_str())),
            ] {
                let r = vm::create_disk(&image, "1G", kernel, initrd, b"");
                if !refused(&r) {
                    breach.push(format!(
                        "create-disk with kernel {kernel:?} initrd {initrd:?}: {r:?}"
                    ));
                }
            }
        }
        let r = vm::create_disk(&image, "1G,file=/etc/passwd", None, None, b"");
        if !refused(&r) {
            breach.push(format!("a disk size with an option: {r:?}"));
        }
        let bad_boots = [
            boot(|b| b.append = Some("console=ttyS0\n-incoming exec:touch /tmp/x".into())),
            boot(|b| b.shared_mac = Some("52:54:00:00:00:01,id=x".into())),
            boot(|b| b.forwards[0].host_port = 0),
        ];
        for b in &bad_boots {
            if !matches!(vm::start(b), Err(Error::InvalidInput(_))) {
                breach.push(format!("start accepted {b:?}"));
            }
        }
        match vm::inspect_disk(&image) {
            Ok(format) if format == "raw" => {}
            other => broken.push(format!("the image the user named: {other:?}")),
        }
        dmw_test_hostile_verdict::verdict(breach, broken)
    }

    fn address() -> Result<String> {
        dmw_test_hostile_verdict::address()
    }

    fn ssh_endpoint() -> Result<SshEndpoint> {
        dmw_test_hostile_verdict::ssh_endpoint()
    }
}

dmw_guest::export_driver!(HostileVm, "../../../wit");
