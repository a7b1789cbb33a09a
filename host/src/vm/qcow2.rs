//! What a disk image's header says about files outside it.
//!
//! A qcow2 image may name a backing file (header bytes 8..20: offset and size of its
//! name) or an external data file (incompatible feature bit 2, and the header extension
//! 0x44415441 with its name). QEMU opens those files of the host when it boots the image,
//! so a downloaded image that names `/home/user/.ssh/id_ed25519` hands that file to the
//! VM (issue 18, proof 5): the checksum covers only the header. [`check`] refuses such an
//! image; a raw image (any file without the qcow2 magic) and a plain qcow2 pass.
//!
//! The format is QEMU's docs/interop/qcow2.txt: big-endian fields, the magic `QFI\xfb`,
//! version 2 or 3, `cluster_bits` at 20, for version 3 the incompatible features at 72 and
//! the header length at 100; header extensions (type, length, data padded to 8 bytes)
//! follow the header up to the end of the first cluster, ended by type 0.

use std::io::Read;
use std::path::Path;

use anyhow::{Result, bail};

/// The qcow2 magic.
pub const MAGIC: &[u8; 4] = b"QFI\xfb";
/// Header extension: the backing file's format.
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
/// Header extension: the external data file's name.
const EXT_DATA_FILE: u32 = 0x4441_5441;
/// Incompatible feature bit: an external data file.
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
/// Most of the header read (the first cluster, at most 2 MiB).
const MAX_HEAD: u64 = 2 << 20;

/// Why an image is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It names a backing file (the name, made inert).
    BackingFile(String),
    /// It names (or needs) an external data file.
    DataFile(String),
    /// Its header is not one this check understands (truncated, another version).
    Damaged(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::BackingFile(name) => write!(
                f,
                "it is a qcow2 image whose header names a backing file ({name:?}): QEMU would read that file of this computer into the VM"
            ),
            Refusal::DataFile(name) => write!(
                f,
                "it is a qcow2 image with an external data file ({name:?}): QEMU would read and write that file of this computer"
            ),
            Refusal::Damaged(why) => write!(f, "its qcow2 header is damaged ({why})"),
        }
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn inert(bytes: &[u8]) -> String {
    crate::text::sanitize::plugin_text(&String::from_utf8_lossy(bytes), 200)
}

/// Check the first bytes of an image (at least its first cluster, or the whole file when
/// shorter): `Ok` for raw and plain qcow2.
pub fn check_head(head: &[u8]) -> Result<(), Refusal> {
    if head.len() < 4 || &head[..4] != MAGIC {
        return Ok(());
    }
    let damaged = |why: &str| Refusal::Damaged(why.to_string());
    let version = be32(head, 4).ok_or_else(|| damaged("shorter than its header"))?;
    let backing_offset = be64(head, 8).ok_or_else(|| damaged("shorter than its header"))?;
    let backing_size = be32(head, 16).ok_or_else(|| damaged("shorter than its header"))?;
    if backing_offset != 0 || backing_size != 0 {
        let name = usize::try_from(backing_offset)
            .ok()
            .and_then(|o| head.get(o..o.checked_add(backing_size.min(1023) as usize)?))
            .map(inert)
            .unwrap_or_else(|| "beyond the header".into());
        return Err(Refusal::BackingFile(name));
    }
    let (header_length, incompatible) = match version {
        2 => (72usize, 0u64),
        3 => {
            let len = be32(head, 100).ok_or_else(|| damaged("shorter than its header"))?;
            let incompatible = be64(head, 72).ok_or_else(|| damaged("shorter than its header"))?;
            if len < 104 {
                return Err(damaged("header length under 104"));
            }
            (len as usize, incompatible)
        }
        v => return Err(damaged(&format!("version {v}"))),
    };
    let cluster_bits = be32(head, 20).ok_or_else(|| damaged("shorter than its header"))?;
    if !(9..=21).contains(&cluster_bits) {
        return Err(damaged(&format!("cluster_bits {cluster_bits}")));
    }
    let cluster = 1usize << cluster_bits;
    if incompatible & INCOMPAT_DATA_FILE != 0 {
        return Err(Refusal::DataFile(
            data_file_name(head, header_length, cluster).unwrap_or_else(|| "unnamed".into()),
        ));
    }
    // The extensions: none may name a data file or a backing format.
    let end = cluster.min(head.len());
    let mut at = header_length;
    loop {
        if at + 8 > end {
            // Extensions run past the first cluster (or past what was read).
            return Err(damaged("header extensions past the first cluster"));
        }
        let kind = be32(head, at).unwrap_or(0);
        let len = be32(head, at + 4).unwrap_or(0) as usize;
        if kind == 0 {
            return Ok(());
        }
        let data = head
            .get(at + 8..(at + 8).saturating_add(len))
            .filter(|_| at + 8 + len <= end)
            .ok_or_else(|| damaged("a header extension past the first cluster"))?;
        match kind {
            EXT_DATA_FILE => return Err(Refusal::DataFile(inert(data))),
            EXT_BACKING_FORMAT => {
                return Err(Refusal::BackingFile(format!("format {}", inert(data))));
            }
            _ => {}
        }
        at = at + 8 + len.div_ceil(8) * 8;
    }
}

/// The external data file's name in the header extensions, if any.
fn data_file_name(head: &[u8], mut at: usize, cluster: usize) -> Option<String> {
    let end = cluster.min(head.len());
    while at + 8 <= end {
        let kind = be32(head, at)?;
        let len = be32(head, at + 4)? as usize;
        if kind == 0 {
            return None;
        }
        if kind == EXT_DATA_FILE {
            return head.get(at + 8..at + 8 + len).map(inert);
        }
        at = at + 8 + len.div_ceil(8) * 8;
    }
    None
}

/// The head of the file at `path` (the first [`MAX_HEAD`] bytes), never through a symlink.
pub fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    read_first(path, MAX_HEAD)
}

/// The first `n` bytes of the regular file at `path`, never through a symlink.
fn read_first(path: &Path, n: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let mut head = Vec::new();
    f.take(n).read_to_end(&mut head)?;
    Ok(head)
}

/// Refuse the image at `path` when its header names a file outside it (see [`check_head`]).
pub fn check(path: &Path) -> Result<()> {
    let head = read_head(path)?;
    if let Err(r) = check_head(&head) {
        bail!("{r}");
    }
    Ok(())
}

/// The backing file a qcow2 image at `path` names (for the cache: images machines use).
pub fn backing_file(path: &Path) -> Option<String> {
    // The name follows the header (QEMU writes it in the first cluster).
    backing_name(&read_first(path, 64 << 10).ok()?)
}

/// The backing file the qcow2 header `head` names, if any.
pub fn backing_name(head: &[u8]) -> Option<String> {
    if head.get(..4)? != MAGIC {
        return None;
    }
    let offset = usize::try_from(be64(head, 8)?).ok()?;
    let size = be32(head, 16)? as usize;
    let name = head.get(offset..offset.checked_add(size)?)?;
    (size > 0).then(|| String::from_utf8_lossy(name).into_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A version-3 qcow2 header of one 64 KiB cluster, with `extensions` (type, data) and
    /// a backing file name at offset 512 if given, and `incompatible` features.
    pub(crate) fn qcow2(
        backing: Option<&str>,
        incompatible: u64,
        extensions: &[(u32, &[u8])],
    ) -> Vec<u8> {
        let mut h = vec![0u8; 1 << 16];
        h[..4].copy_from_slice(MAGIC);
        h[4..8].copy_from_slice(&3u32.to_be_bytes());
        if let Some(name) = backing {
            h[8..16].copy_from_slice(&512u64.to_be_bytes());
            h[16..20].copy_from_slice(&(name.len() as u32).to_be_bytes());
            h[512..512 + name.len()].copy_from_slice(name.as_bytes());
        }
        h[20..24].copy_from_slice(&16u32.to_be_bytes());
        h[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
        h[72..80].copy_from_slice(&incompatible.to_be_bytes());
        h[96..100].copy_from_slice(&4u32.to_be_bytes());
        h[100..104].copy_from_slice(&112u32.to_be_bytes());
        let mut at = 112;
        for (kind, data) in extensions {
            h[at..at + 4].copy_from_slice(&kind.to_be_bytes());
            h[at + 4..at + 8].copy_from_slice(&(data.len() as u32).to_be_bytes());
            h[at + 8..at + 8 + data.len()].copy_from_slice(data);
            at += 8 + data.len().div_ceil(8) * 8;
        }
        h
    }

    #[test]
    fn plain_images_pass() {
        assert_eq!(check_head(b""), Ok(()));
        assert_eq!(check_head(&[0u8; 4096]), Ok(()), "raw");
        assert_eq!(check_head(&qcow2(None, 0, &[])), Ok(()));
        // Other extensions (a feature table) are fine.
        assert_eq!(
            check_head(&qcow2(None, 0, &[(0x6803_f857, &[0u8; 48])])),
            Ok(())
        );
        // Version 2: no extensions area before 72, no incompatible features.
        let mut v2 = qcow2(None, 0, &[]);
        v2[4..8].copy_from_slice(&2u32.to_be_bytes());
        v2[72..112].fill(0);
        assert_eq!(check_head(&v2), Ok(()));
    }

    /// Before this check, a downloaded qcow2 naming `/etc/hostname` as its backing file
    /// was printed "verified" and booted with that file as its disk (issue 18, proof 5).
    #[test]
    fn a_backing_file_or_an_external_data_file_is_refused() {
        match check_head(&qcow2(Some("/etc/hostname"), 0, &[])) {
            Err(Refusal::BackingFile(n)) => assert_eq!(n, "/etc/hostname"),
            other => panic!("{other:?}"),
        }
        // A backing name beyond what was read still refuses.
        let mut far = qcow2(None, 0, &[]);
        far[8..16].copy_from_slice(&(1u64 << 40).to_be_bytes());
        far[16..20].copy_from_slice(&5u32.to_be_bytes());
        assert!(matches!(check_head(&far), Err(Refusal::BackingFile(_))));
        match check_head(&qcow2(
            None,
            INCOMPAT_DATA_FILE,
            &[(EXT_DATA_FILE, b"/home/u/.ssh/id_ed25519")],
        )) {
            Err(Refusal::DataFile(n)) => assert_eq!(n, "/home/u/.ssh/id_ed25519"),
            other => panic!("{other:?}"),
        }
        // The extension alone, without the feature bit, is refused too.
        assert!(matches!(
            check_head(&qcow2(None, 0, &[(EXT_DATA_FILE, b"/x")])),
            Err(Refusal::DataFile(_))
        ));
        assert!(matches!(
            check_head(&qcow2(None, INCOMPAT_DATA_FILE, &[])),
            Err(Refusal::DataFile(_))
        ));
        assert!(matches!(
            check_head(&qcow2(None, 0, &[(EXT_BACKING_FORMAT, b"raw")])),
            Err(Refusal::BackingFile(_))
        ));
    }

    #[test]
    fn damaged_headers_are_refused() {
        assert!(matches!(check_head(&MAGIC[..]), Err(Refusal::Damaged(_))));
        let mut v9 = qcow2(None, 0, &[]);
        v9[4..8].copy_from_slice(&9u32.to_be_bytes());
        assert!(matches!(check_head(&v9), Err(Refusal::Damaged(_))));
        // An extension whose length runs past the cluster.
        let mut long = qcow2(None, 0, &[]);
        long[112..116].copy_from_slice(&1u32.to_be_bytes());
        long[116..120].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(check_head(&long), Err(Refusal::Damaged(_))));
        // Truncated before the end of extensions.
        let short = qcow2(None, 0, &[]);
        assert!(matches!(
            check_head(&short[..110]),
            Err(Refusal::Damaged(_))
        ));
    }

    #[test]
    fn files_are_checked_and_their_backing_file_read() {
        let dir = tempfile::tempdir().expect("tmp");
        let bad = dir.path().join("bad.qcow2");
        std::fs::write(&bad, qcow2(Some("/etc/hostname"), 0, &[])).expect("write");
        let e = check(&bad).expect_err("refused");
        assert!(format!("{e}").contains("/etc/hostname"), "{e}");
        assert_eq!(backing_file(&bad).as_deref(), Some("/etc/hostname"));
        let good = dir.path().join("good.qcow2");
        std::fs::write(&good, qcow2(None, 0, &[])).expect("write");
        check(&good).expect("plain");
        assert_eq!(backing_file(&good), None);
        std::os::unix::fs::symlink(&good, dir.path().join("link")).expect("symlink");
        assert!(
            check(&dir.path().join("link")).is_err(),
            "not through a symlink"
        );
    }
}
