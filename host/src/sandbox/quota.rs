//! The size cap of a plugin's directory (`machines/NAME/driver`, lent by `files` and the
//! working directory of `process` programs).
//!
//! The cap is [`DEFAULT_QUOTA`] (room for a VM's copy-on-write overlay of a 20 GB disk
//! several times over), or what the user sets in [`QUOTA_VAR`] (`500M`, `128G`, bytes).
//! It is enforced:
//! - before every driver call that works on the machine ([`check`], called by
//!   `plugin::driver`): a directory over its cap makes the call fail, naming the machine,
//!   the directory, its size and the variable (calls that end things — `stop`, `kill`,
//!   `remove` — are never refused, so `dmw rm` always works);
//! - during those calls, about once a second while the plugin runs ([`check_during`],
//!   from the runtime's epoch check): a directory gone over its cap stops the call;
//! - on every file a program started through `process` writes (`RLIMIT_FSIZE`: no file
//!   grows past the cap);
//! - on the logs the host opens there (`HANDLE.log`, emptied when over its own cap).
//!
//! The size counts the blocks a file really takes (a sparse file counts what it holds),
//! each inode once, without following symlinks; a directory with more than
//! [`MAX_ENTRIES`] entries is over its cap too (the walk is bounded).

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Result, bail};

/// The environment variable that sets the cap.
pub const QUOTA_VAR: &str = "DMW_PLUGIN_DIR_QUOTA";
/// The cap when [`QUOTA_VAR`] is not set: 64 GiB.
pub const DEFAULT_QUOTA: u64 = 64 << 30;
/// Most entries (files and directories) counted in a plugin's directory.
pub const MAX_ENTRIES: usize = 100_000;
/// Deepest directory nesting walked.
const MAX_DEPTH: usize = 32;

/// A size: digits with an optional binary unit (`K`, `M`, `G`, `T`, also written `KiB`,
/// `KB`, …); plain digits are bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (num, unit) = t.split_at(digits);
    let n: u64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// A size for messages (`1.5 GiB`, `300 KiB`, `12 bytes`).
pub fn show_size(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (name, shift) in UNITS {
        if bytes >= 1u64 << shift {
            return format!("{:.1} {name}", bytes as f64 / (1u64 << shift) as f64);
        }
    }
    format!("{bytes} bytes")
}

/// The cap of `var` in the environment, or `default`; an unreadable value is an error
/// naming the variable.
pub fn env_size(var: &str, default: u64) -> Result<u64> {
    match std::env::var(var) {
        Err(std::env::VarError::NotPresent) => Ok(default),
        Ok(v) if v.trim().is_empty() => Ok(default),
        Ok(v) => match parse_size(&v) {
            Some(n) if n > 0 => Ok(n),
            _ => bail!(
                "{var}={:?} is not a size: use digits with K, M, G or T (e.g. {var}=128G)",
                crate::text::sanitize::plugin_text(&v, 40)
            ),
        },
        Err(_) => bail!("{var} is not valid text: use digits with K, M, G or T (e.g. {var}=128G)"),
    }
}

/// The cap of a plugin's directory: [`QUOTA_VAR`], else [`DEFAULT_QUOTA`].
pub fn plugin_dir_quota() -> Result<u64> {
    env_size(QUOTA_VAR, DEFAULT_QUOTA)
}

/// What a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes on disk (allocated blocks), each inode once.
    pub bytes: u64,
    /// Entries seen.
    pub entries: usize,
    /// Whether the walk stopped at [`MAX_ENTRIES`] or [`MAX_DEPTH`].
    pub truncated: bool,
}

/// What `dir` holds (nothing when it does not exist); symlinks are counted as themselves,
/// never followed.
pub fn usage(dir: &Path) -> std::io::Result<Usage> {
    let mut u = Usage {
        bytes: 0,
        entries: 0,
        truncated: false,
    };
    let mut seen = HashSet::new();
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(u),
        Err(e) => return Err(e),
        Ok(m) if !m.is_dir() => return Ok(u),
        Ok(_) => {}
    }
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            // A directory the walk may not read (the plugin can chmod its own) is over cap.
            Err(_) => {
                u.truncated = true;
                continue;
            }
        };
        for entry in entries {
            let entry = entry?;
            u.entries += 1;
            if u.entries > MAX_ENTRIES {
                u.truncated = true;
                return Ok(u);
            }
            let Ok(m) = entry.metadata() else {
                continue;
            };
            if seen.insert((m.dev(), m.ino())) {
                u.bytes = u.bytes.saturating_add(m.blocks().saturating_mul(512));
            }
            if m.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    u.truncated = true;
                } else {
                    stack.push((entry.path(), depth + 1));
                }
            }
        }
    }
    Ok(u)
}

/// Fail when the directory `dir` of the driver of `machine` is over `quota`; the error
/// names the machine, the directory, its size, the cap and [`QUOTA_VAR`], then `outcome`
/// (what did not happen because of it).
pub fn check_with(machine: &str, dir: &Path, quota: u64, outcome: &str) -> Result<()> {
    let u = usage(dir).map_err(|e| {
        anyhow::anyhow!(
            "machine \"{machine}\": cannot measure the driver's directory {}: {e}; {outcome}",
            dir.display()
        )
    })?;
    if u.truncated {
        bail!(
            "machine \"{machine}\": the driver's directory {} holds more than {MAX_ENTRIES} entries (or directories nested deeper than {MAX_DEPTH}, or one dmw may not read); {outcome}. Remove the machine (dmw rm {machine}) or what the driver left there.",
            dir.display()
        );
    }
    if u.bytes > quota {
        bail!(
            "machine \"{machine}\": the driver's directory {} holds {}, over its quota of {} ({QUOTA_VAR}); {outcome}. Free space there (dmw rm {machine} removes the machine and its directory) or raise the quota, e.g. {QUOTA_VAR}={}G.",
            dir.display(),
            show_size(u.bytes),
            show_size(quota),
            u.bytes.max(quota).saturating_mul(2).div_ceil(1 << 30)
        );
    }
    Ok(())
}

/// Refuse driver call `call` on `machine` when its directory is over the user's cap
/// ([`plugin_dir_quota`]).
pub fn check(machine: &str, dir: &Path, call: &str) -> Result<()> {
    let quota = plugin_dir_quota().map_err(|e| anyhow::anyhow!("machine \"{machine}\": {e:#}"))?;
    check_with(machine, dir, quota, &format!("{call} was not called"))
}

/// Stop driver call `call` on `machine` (it is running) when its directory went over the
/// user's cap: checked by the runtime about once a second while the plugin runs.
pub fn check_during(machine: &str, dir: &Path, call: &str) -> Result<()> {
    let quota = plugin_dir_quota().map_err(|e| anyhow::anyhow!("machine \"{machine}\": {e:#}"))?;
    check_with(
        machine,
        dir,
        quota,
        &format!("the driver was stopped in {call}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64G"), Some(64 << 30));
        assert_eq!(parse_size("500m"), Some(500 << 20));
        assert_eq!(parse_size("1KiB"), Some(1024));
        assert_eq!(parse_size("2 GB"), Some(2 << 30));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("1T"), Some(1 << 40));
        for bad in [
            "",
            "G",
            "-1G",
            "1.5G",
            "1X",
            "99999999999999999999",
            "16777216T",
        ] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
        assert_eq!(show_size(3 << 29), "1.5 GiB");
        assert_eq!(show_size(12), "12 bytes");
    }

    /// Before the quota, a driver could fill its directory without bound (issue 18: 1 GiB
    /// in 1.5 s); now the next call on the machine is refused, and the message says why.
    #[test]
    fn a_directory_over_its_quota_refuses_the_call() {
        let root = tempfile::tempdir().expect("tmp");
        let dir = root.path().join("driver");
        std::fs::create_dir(&dir).expect("dir");
        check_with("m1", &dir, 1 << 20, "create was not called").expect("empty is fine");
        std::fs::write(dir.join("big"), vec![1u8; 2 << 20]).expect("write");
        // A hard link and a symlink to it add nothing; a sparse file counts what it holds.
        std::fs::hard_link(dir.join("big"), dir.join("big2")).expect("link");
        std::os::unix::fs::symlink(dir.join("big"), dir.join("big3")).expect("symlink");
        let sparse = std::fs::File::create(dir.join("sparse")).expect("sparse");
        sparse.set_len(1 << 40).expect("len");
        let u = usage(&dir).expect("usage");
        assert!(u.bytes >= 2 << 20 && u.bytes < 3 << 20, "{u:?}");
        let e = check_with("m1", &dir, 1 << 20, "create was not called").expect_err("over");
        let text = format!("{e:#}");
        for part in [
            "m1",
            &dir.display().to_string(),
            "2.0 MiB",
            "1.0 MiB",
            QUOTA_VAR,
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        check_with("m1", &dir, 4 << 20, "x").expect("under a larger cap");
        check_with("m1", &root.path().join("missing"), 1, "x").expect("no directory");
    }

    #[test]
    fn too_many_entries_is_over_quota() {
        let root = tempfile::tempdir().expect("tmp");
        let mut d = root.path().to_path_buf();
        for i in 0..MAX_DEPTH + 1 {
            d = d.join(format!("{i}"));
        }
        std::fs::create_dir_all(&d).expect("deep");
        let e = check_with("m1", root.path(), u64::MAX, "x").expect_err("too deep");
        assert!(format!("{e}").contains("nested"), "{e}");
    }
}
