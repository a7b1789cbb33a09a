//! Delta transfer: per-block SHA-256 on both sides (remotely with the machine's own
//! `sha256sum`), then only the blocks that differ are copied, at their offsets.

use std::io::Read;

use sha2::{Digest, Sha256};

use crate::net::ssh::sh_quote;

/// One block's SHA-256.
pub type BlockHash = [u8; 32];

/// The block size for a file of `size` bytes: at most ~512 blocks, between 64 KiB and 8 MiB.
pub fn block_size(size: u64) -> u64 {
    (size / 512).next_power_of_two().clamp(64 << 10, 8 << 20)
}

/// Number of blocks of `size` bytes split in `block` bytes.
pub fn block_count(size: u64, block: u64) -> u64 {
    size.div_ceil(block)
}

/// SHA-256 of each `block`-byte block of a local file.
pub fn local_hashes(path: &str, block: u64) -> std::io::Result<Vec<BlockHash>> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; block as usize];
    let mut out = Vec::new();
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = f.read(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        out.push(Sha256::digest(&buf[..filled]).into());
        if filled < buf.len() {
            break;
        }
    }
    Ok(out)
}

/// Shell script printing one `sha256sum` line per block of `path` (GNU `split --filter`
/// when available, else a `dd` loop); exits 127 when the machine has no `sha256sum`.
pub fn remote_hash_script(path: &str, block: u64, blocks: u64) -> String {
    let f = sh_quote(path);
    format!(
        "command -v sha256sum >/dev/null 2>&1 || exit 127; \
         if split --help 2>/dev/null | grep -q -- --filter; then \
         LC_ALL=C split -a 8 -b {block} --filter=sha256sum -- {f}; \
         else i=0; while [ $i -lt {blocks} ]; do \
         dd if={f} bs={block} skip=$i count=1 2>/dev/null | sha256sum || exit 1; i=$((i+1)); done; fi"
    )
}

/// Parse `sha256sum` output lines into hashes.
pub fn parse_hashes(out: &str) -> Option<Vec<BlockHash>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let hex_part = l.split_whitespace().next()?;
            let bytes = hex::decode(hex_part).ok()?;
            bytes.try_into().ok()
        })
        .collect()
}

/// Byte ranges (offset, length) of a `size`-byte source to copy: the blocks whose hash
/// differs from (or is missing in) the destination's, adjacent blocks merged.
pub fn changed_ranges(
    src: &[BlockHash],
    dst: &[BlockHash],
    size: u64,
    block: u64,
) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for (i, h) in src.iter().enumerate() {
        if dst.get(i) == Some(h) {
            continue;
        }
        let off = i as u64 * block;
        let len = block.min(size.saturating_sub(off));
        match ranges.last_mut() {
            Some((o, l)) if *o + *l == off => *l += len,
            _ => ranges.push((off, len)),
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes() {
        assert_eq!(block_size(0), 64 << 10);
        assert_eq!(block_size(50 << 20), 128 << 10);
        assert_eq!(block_size(1 << 40), 8 << 20);
        assert_eq!(block_count(10, 4), 3);
    }

    #[test]
    fn ranges_merge_and_cover_the_tail() {
        let a = [[1u8; 32], [2; 32], [3; 32], [4; 32]];
        let b = [[1u8; 32], [9; 32], [9; 32]];
        assert_eq!(changed_ranges(&a, &b, 14, 4), vec![(4, 10)]);
        assert_eq!(changed_ranges(&a, &a, 14, 4), vec![]);
    }

    #[test]
    fn parses_sha256sum_lines() {
        let line = format!("{}  -\n{}  -\n", "ab".repeat(32), "01".repeat(32));
        let h = parse_hashes(&line).expect("parse");
        assert_eq!(h.len(), 2);
        assert_eq!(h[0], [0xab; 32]);
        assert!(parse_hashes("zz  -\n").is_none());
    }

    #[test]
    fn local_hashes_match_sha256_of_each_block() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("f");
        std::fs::write(&p, b"aaaabbbbcc").expect("write");
        let h = local_hashes(&p.display().to_string(), 4).expect("hash");
        assert_eq!(h.len(), 3);
        let want: BlockHash = Sha256::digest(b"cc").into();
        assert_eq!(h[2], want);
    }
}
