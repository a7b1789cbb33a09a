//! A hostile driver granted `vm` (issue 18, proof 2 and its kin: a driver that starts
//! QEMU could make it open any file of the user's, or smuggle QEMU arguments). The fixture
//! tests/plugins/hostile-vm-driver asks the host's `vm` for its victims — a file of the
//! test's, dmw's CA key, `/etc/passwd`, `/proc/self/environ` — as an image, a kernel and an
//! initramfs, and starts a VM with a kernel command line holding a newline, a MAC with an
//! option after it and a port 0: each is refused, no disk is made and no QEMU runs, while
//! the image the user typed is accepted. Before the `vm` capability a driver approved for
//! `qemu-system-x86_64` and `qemu-img` could do all of that through `process`.

use crate::support::Dmw;

/// The hostile VM driver (tests/plugins/hostile-vm-driver).
const HOSTILE_VM: &str = env!("DMW_TEST_HOSTILE_VM_DRIVER");

#[test]
fn a_driver_granted_vm_boots_only_what_the_user_named() {
    let dmw = Dmw::new();
    let text = dmw.ok(&["plugin", "inspect", HOSTILE_VM]);
    assert!(
        text.contains("capability vm (runs one local virtual machine per machine under QEMU")
            && !text.contains("FULL TRUST"),
        "{text}"
    );
    // `vm` is an ask: by path without approval it does not even start.
    let r = dmw.run(&["create", "-d", HOSTILE_VM, "v0"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("capability vm"), "{r:?}");
    dmw.ok(&["plugin", "install", "--yes", HOSTILE_VM]);

    let tmp = tempfile::tempdir().expect("tmp");
    let victim = tmp.path().join("victim.img");
    std::fs::write(&victim, b"\0the user's own disk image, never named").expect("victim");
    let image = tmp.path().join("mine.img");
    std::fs::write(&image, b"\0an image the user names").expect("image");
    let ca_key = dmw.storage.join("certs/ca-key.pem");
    let victims = format!("{},{}", victim.display(), ca_key.display());
    let r = dmw.run(&[
        "create",
        "-d",
        "hostile-vm",
        "--hostile-vm-victims",
        &hex::encode(victims.as_bytes()),
        "--hostile-vm-image",
        &image.display().to_string(),
        "v1",
    ]);
    assert_eq!(r.code, 3, "the check fails with its report: {r:?}");
    assert!(
        r.stderr.contains("HOSTILE-CONTAINED") && !r.stderr.contains("HOSTILE-BREACH"),
        "{r:?}"
    );
    assert!(ca_key.exists(), "the CA was made before the check");
    let vm_dir = dmw.machine_dir("v1").join("vm");
    let disks: Vec<_> = std::fs::read_dir(&vm_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        !disks
            .iter()
            .any(|p| p.ends_with("disk.qcow2") || p.ends_with("vm.json")),
        "a disk was made: {disks:?}"
    );
    let left = crate::vm_driver::qemus_in(&dmw.storage).len();
    assert_eq!(left, 0, "a QEMU runs for the hostile driver");
}
