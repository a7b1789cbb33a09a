//! Host slots, NAT rules and cleanup of what dead test processes left behind.
//!
//! Slot N is host `dmwtbN`: network namespace, machine-side veth link and
//! systemd-nspawn machine all carry that name, its files live in
//! `STATE_DIR/hosts/dmwtbN/`, and it owns the /29 `172.31.0.0 + 8*N`
//! (the machine's end is `.1`, the host is `.2` to `.6`).
//!
//! The file `STATE_DIR/slots/N` says which process owns slot N (PID and start
//! time). Slots are claimed and released under `STATE_DIR/lock`, and a slot
//! file is written before any of the slot's resources exist and removed after
//! they are gone; so any resource of a slot without a live owner is stale.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::util::{Lock, Owner, all_pids, cmd, kill_and_wait, remove_tree, run, run_quiet};

/// Where the testbed keeps per-host state (overlay layers, /var/lib/docker) and slot files.
pub const STATE_DIR: &str = "/var/lib/dmw-testbed";

/// Prefix of every name the testbed gives (netns, link, machine, host directory).
pub const NAME_PREFIX: &str = "dmwtb";

/// The hosts' address range; one /29 per slot.
pub const HOST_NET: (Ipv4Addr, u8) = (Ipv4Addr::new(172, 31, 0, 0), 16);

/// How many slots fit in [`HOST_NET`].
const SLOTS: u32 = 1 << (32 - 16 - 3);

/// Comment on every iptables rule the testbed adds.
const RULE_COMMENT: &str = "dmw-testbed";

/// Name of slot `slot`'s host.
pub(crate) fn slot_name(slot: u32) -> String {
    format!("{NAME_PREFIX}{slot}")
}

/// Address `index` (1 = the machine's end, 2..=6 for the host) in slot `slot`'s /29.
pub(crate) fn slot_addr(slot: u32, index: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(HOST_NET.0) + slot * 8 + index)
}

/// Directory of slot `slot`'s host files.
pub(crate) fn host_dir(slot: u32) -> PathBuf {
    Path::new(STATE_DIR).join("hosts").join(slot_name(slot))
}

fn slot_file(slot: u32) -> PathBuf {
    Path::new(STATE_DIR).join("slots").join(slot.to_string())
}

fn global_lock() -> io::Result<Lock> {
    Lock::acquire(&Path::new(STATE_DIR).join("lock"))
}

/// Owner recorded in a slot file, `None` if there is no (readable) file.
fn slot_owner(slot: u32) -> Option<Owner> {
    Owner::parse(&fs::read_to_string(slot_file(slot)).ok()?)
}

fn slot_files() -> Vec<u32> {
    let dir = Path::new(STATE_DIR).join("slots");
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Claims a free slot for this process and makes sure the NAT rules exist.
pub(crate) fn claim_slot() -> io::Result<u32> {
    check_no_route_collision()?;
    let _lock = global_lock()?;
    fs::create_dir_all(Path::new(STATE_DIR).join("slots"))?;
    let me = Owner::me()?;
    let taken: BTreeSet<u32> = slot_files().into_iter().collect();
    let slot = (0..SLOTS)
        .find(|s| !taken.contains(s) && !Path::new("/run/netns").join(slot_name(*s)).exists())
        .ok_or_else(|| io::Error::other("no free testbed slot (run `testbed clean`?)"))?;
    fs::write(slot_file(slot), format!("{} {}\n", me.pid, me.start))?;
    ensure_nat()?;
    Ok(slot)
}

/// Frees `slot` (its resources must be gone); removes the NAT rules with the last slot.
pub(crate) fn release_slot(slot: u32) -> io::Result<()> {
    let _lock = global_lock()?;
    fs::remove_file(slot_file(slot))?;
    if slot_files().is_empty() {
        remove_nat();
    }
    Ok(())
}

/// Refuses to run if a machine route overlaps the hosts' range (not counting our own links).
fn check_no_route_collision() -> io::Result<()> {
    let routes = run(&mut cmd(
        "ip",
        &["-4", "-o", "route", "show", "table", "all"],
    ))?;
    for line in routes.lines() {
        if line.contains(&format!("dev {NAME_PREFIX}")) {
            continue;
        }
        // `dev if403`: ip names a device only by its index while it moves between network
        // namespaces — a link another testbed in this process is setting up right now.
        let transient = line
            .split_whitespace()
            .skip_while(|w| *w != "dev")
            .nth(1)
            .is_some_and(|d| {
                d.strip_prefix("if")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            });
        if transient {
            continue;
        }
        let Some(dest) = line.split_whitespace().find(|w| w.contains('.')) else {
            continue;
        };
        let (net, len) = dest.split_once('/').unwrap_or((dest, "32"));
        let (Ok(net), Ok(len)) = (net.parse::<Ipv4Addr>(), len.parse::<u32>()) else {
            continue;
        };
        if len == 0 {
            continue; // a default route
        }
        let common = len.min(u32::from(HOST_NET.1));
        let mask = u32::MAX << (32 - common);
        if u32::from(net) & mask == u32::from(HOST_NET.0) & mask {
            return Err(io::Error::other(format!(
                "machine route `{line}` overlaps the testbed range {}/{}",
                HOST_NET.0, HOST_NET.1
            )));
        }
    }
    Ok(())
}

/// The iptables rules the testbed owns: (table, chain, position to insert at, rule).
fn nat_rules() -> Vec<(
    &'static str,
    &'static str,
    Option<&'static str>,
    Vec<String>,
)> {
    let net = format!("{}/{}", HOST_NET.0, HOST_NET.1);
    let tag = |mut v: Vec<String>| {
        v.extend(["-m", "comment", "--comment", RULE_COMMENT].map(String::from));
        v
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    // Traffic for the testbed range must never leave by another interface: when a
    // host's link is cut, its /29 route goes away and the default route would carry
    // the packets off the machine. Drop it instead (a cut cable loses packets), both for
    // what this machine sends and for what it forwards. The machine's own ends of the
    // links (local addresses) stay reachable.
    let stray: Vec<String> = tag(s(&[
        "-d",
        &net,
        "-m",
        "addrtype",
        "!",
        "--dst-type",
        "LOCAL",
        "!",
        "-o",
        &format!("{NAME_PREFIX}+"),
    ]))
    .into_iter()
    .chain(s(&["-j", "DROP"]))
    .collect();
    vec![
        (
            "nat",
            "POSTROUTING",
            None,
            tag(s(&["-s", &net, "!", "-d", &net]))
                .into_iter()
                .chain(s(&["-j", "MASQUERADE"]))
                .collect(),
        ),
        (
            "filter",
            "FORWARD",
            Some("1"),
            tag(s(&["-s", &net]))
                .into_iter()
                .chain(s(&["-j", "ACCEPT"]))
                .collect(),
        ),
        (
            "filter",
            "FORWARD",
            Some("1"),
            tag(s(&["-d", &net]))
                .into_iter()
                .chain(s(&["-j", "ACCEPT"]))
                .collect(),
        ),
        ("filter", "OUTPUT", Some("1"), stray.clone()),
        ("filter", "FORWARD", Some("1"), stray),
    ]
}

fn iptables(
    table: &str,
    op: &str,
    chain: &str,
    pos: Option<&str>,
    rule: &[String],
) -> io::Result<String> {
    let mut c = cmd("iptables", &["-w", "-t", table, op, chain]);
    c.args(pos).args(rule);
    run(&mut c)
}

/// Turns on forwarding and adds the NAT/FORWARD rules unless present.
fn ensure_nat() -> io::Result<()> {
    fs::write("/proc/sys/net/ipv4/ip_forward", "1")?;
    for (table, chain, pos, rule) in nat_rules() {
        if iptables(table, "-C", chain, None, &rule).is_err() {
            let op = if pos.is_some() { "-I" } else { "-A" };
            iptables(table, op, chain, pos, &rule)?;
        }
    }
    Ok(())
}

/// Deletes the testbed's rules: every rule tagged with its comment, in every chain of the
/// tables it uses (so rules of an older testbed version go too). Forwarding stays on.
fn remove_nat() {
    for table in ["nat", "filter"] {
        let Ok(listing) = run(&mut cmd("iptables", &["-w", "-t", table, "-S"])) else {
            continue;
        };
        for line in listing
            .lines()
            .filter(|l| l.starts_with("-A ") && l.contains(RULE_COMMENT))
        {
            let spec: Vec<String> = line.split_whitespace().skip(1).map(String::from).collect();
            if let Some((chain, rule)) = spec.split_first() {
                let _ = iptables(table, "-D", chain, None, rule);
            }
        }
    }
}

/// PIDs of the processes that make up host `name`: its systemd-nspawn and everything in its netns.
pub(crate) fn host_processes(name: &str) -> Vec<u32> {
    let netns = fs::metadata(Path::new("/run/netns").join(name))
        .ok()
        .map(|m| (m.dev(), m.ino()));
    let me = std::process::id();
    all_pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            let in_netns = netns.is_some()
                && fs::metadata(format!("/proc/{pid}/ns/net"))
                    .ok()
                    .map(|m| (m.dev(), m.ino()))
                    == netns;
            in_netns || is_nspawn_of(pid, name)
        })
        .collect()
}

/// True if `pid` is a systemd-nspawn running machine `name`.
pub(crate) fn is_nspawn_of(pid: u32, name: &str) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let is_nspawn = args.first().is_some_and(|a| a.ends_with(b"systemd-nspawn"));
    let machine = format!("--machine={name}");
    is_nspawn
        && args
            .windows(2)
            .any(|w| (w[0] == b"-M" && w[1] == name.as_bytes()) || w[0] == machine.as_bytes())
}

/// Removes every resource of slot `slot`: processes, mounts, links, netns, files.
pub(crate) fn teardown_slot(slot: u32) -> io::Result<()> {
    let name = slot_name(slot);
    kill_and_wait(&host_processes(&name));
    let dir = host_dir(slot);
    crate::util::unmount_all(&dir)?;
    if link_names().contains(&name) {
        run_quiet(&mut cmd("ip", &["link", "del", &name]));
    }
    if Path::new("/run/netns").join(&name).exists() {
        run(&mut cmd("ip", &["netns", "del", &name]))?;
    }
    remove_cgroups(&name)?;
    remove_tree(&dir)
}

/// Names of the machine's network links.
fn link_names() -> Vec<String> {
    let out = run(&mut cmd("ip", &["-o", "link", "show"])).unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// Slot number encoded in a testbed name (`dmwtb12` → 12).
fn parse_name(name: &str) -> Option<u32> {
    name.strip_prefix(NAME_PREFIX)?.parse().ok()
}

/// Slots that have any trace: slot file, netns, link, host directory or nspawn process.
fn slots_with_traces() -> BTreeSet<u32> {
    let mut slots: BTreeSet<u32> = slot_files().into_iter().collect();
    let dir_names = |dir: &Path| -> Vec<String> {
        fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut names = dir_names(Path::new("/run/netns"));
    names.extend(dir_names(&Path::new(STATE_DIR).join("hosts")));
    names.extend(link_names());
    for (_, parent) in cgroup_parents() {
        names.extend(dir_names(&parent));
    }
    slots.extend(names.iter().filter_map(|n| parse_name(n)));
    for pid in all_pids() {
        if let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) {
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            if args.first().is_some_and(|a| a.ends_with(b"systemd-nspawn")) {
                for w in args.windows(2).filter(|w| w[0] == b"-M") {
                    slots.extend(std::str::from_utf8(w[1]).ok().and_then(parse_name));
                }
            }
        }
    }
    slots
}

/// Removes everything left by testbed processes that are gone (crashed, killed).
///
/// Hosts of live processes are left alone. Returns the names of the hosts removed.
/// Called at every boot; `testbed clean` calls it too.
pub fn clean_stale() -> io::Result<Vec<String>> {
    let _lock = global_lock()?;
    let mut removed = Vec::new();
    for slot in slots_with_traces() {
        if slot_owner(slot).is_some_and(|o| o.alive()) {
            continue;
        }
        teardown_slot(slot).map_err(|e| {
            io::Error::other(format!("cleaning stale host {}: {e}", slot_name(slot)))
        })?;
        let _ = fs::remove_file(slot_file(slot));
        removed.push(slot_name(slot));
    }
    if slot_files().is_empty() {
        remove_nat();
    }
    Ok(removed)
}

/// The machine's cgroup hierarchies: (mount point, the testbed's directory in it).
///
/// A host's systemd gets `PARENT/NAME` of every hierarchy bound over the
/// hierarchy's mount point, so it manages a subtree of its own and the hosts
/// (and the machine) never share a cgroup.
fn cgroup_parents() -> Vec<(PathBuf, PathBuf)> {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let is_cgroup = matches!(f.get(2), Some(&"cgroup") | Some(&"cgroup2"));
            let mnt = PathBuf::from(f.get(1)?);
            (is_cgroup && mnt.starts_with("/sys/fs/cgroup")).then(|| {
                let parent = mnt.join("dmw-testbed");
                (mnt, parent)
            })
        })
        .collect()
}

/// Creates host `name`'s cgroup in every hierarchy and, at `tree`, a copy of
/// /sys/fs/cgroup made of just those cgroups (bound as the host's /sys/fs/cgroup).
/// Returns the host's cgroup directories.
pub(crate) fn make_cgroups(name: &str, tree: &Path) -> io::Result<Vec<PathBuf>> {
    let root = Path::new("/sys/fs/cgroup");
    let mut own_dirs = Vec::new();
    if tree.exists() {
        crate::util::unmount_all(tree)?; // from a previous start of this host
    }
    fs::create_dir_all(tree)?;
    let hierarchies = cgroup_parents();
    if !hierarchies.iter().any(|(mnt, _)| mnt == root) {
        run(&mut cmd(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                "mode=755",
                "dmw-testbed-cgroup",
                &tree.to_string_lossy(),
            ],
        ))?;
        // Keep symlinks such as cpu -> cpu,cpuacct.
        for e in fs::read_dir(root)?.flatten() {
            if e.file_type()?.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(e.path())?, tree.join(e.file_name()))?;
            }
        }
    }
    for (mnt, parent) in hierarchies {
        let own = parent.join(name);
        for dir in [&parent, &own] {
            if !dir.exists() {
                fs::create_dir(dir).or_else(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
            }
            // cpuset (v1) takes no tasks until it has CPUs and memory nodes: inherit them.
            for knob in ["cpuset.cpus", "cpuset.mems"] {
                let file = dir.join(knob);
                let from = dir.parent().map(|p| p.join(knob));
                if let (true, Some(from)) = (file.exists(), from)
                    && fs::read_to_string(&file)?.trim().is_empty()
                {
                    fs::write(&file, fs::read_to_string(from)?.trim())?;
                }
            }
        }
        let target = tree.join(mnt.strip_prefix(root).unwrap_or(Path::new("")));
        fs::create_dir_all(&target)?;
        run(&mut cmd(
            "mount",
            &["--bind", &own.to_string_lossy(), &target.to_string_lossy()],
        ))?;
        own_dirs.push(own);
    }
    if own_dirs.is_empty() {
        return Err(io::Error::other(
            "no cgroup hierarchy mounted under /sys/fs/cgroup",
        ));
    }
    Ok(own_dirs)
}

/// Removes host `name`'s cgroups (deepest first; the kernel may need a moment after the last process died).
fn remove_cgroups(name: &str) -> io::Result<()> {
    fn dirs_below(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs_below(&e.path(), out);
                }
            }
        }
        out.push(dir.to_path_buf());
    }
    for (_, parent) in cgroup_parents() {
        let own = parent.join(name);
        if !own.exists() {
            continue;
        }
        let mut dirs = Vec::new();
        dirs_below(&own, &mut dirs);
        for dir in dirs {
            let mut tries = 0;
            while let Err(e) = fs::remove_dir(&dir) {
                tries += 1;
                if e.kind() == io::ErrorKind::NotFound {
                    break;
                }
                if tries > 50 {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot remove cgroup {}: {e}", dir.display()),
                    ));
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
    Ok(())
}

/// What still exists of host `name` (netns, link, directory, mounts, cgroups, processes); empty when fully gone.
pub fn leftovers(name: &str) -> Vec<String> {
    let mut found = Vec::new();
    if Path::new("/run/netns").join(name).exists() {
        found.push(format!("network namespace {name}"));
    }
    if link_names().iter().any(|l| l == name) {
        found.push(format!("link {name}"));
    }
    let dir = Path::new(STATE_DIR).join("hosts").join(name);
    if dir.exists() {
        found.push(format!("directory {}", dir.display()));
    }
    for m in crate::util::mounts_under(&dir) {
        found.push(format!("mount {}", m.display()));
    }
    for (_, parent) in cgroup_parents() {
        if parent.join(name).exists() {
            found.push(format!("cgroup {}", parent.join(name).display()));
        }
    }
    for pid in host_processes(name) {
        if matches!(crate::util::proc_stat(pid), Some((s, _)) if s != 'Z') {
            found.push(format!("process {pid}"));
        }
    }
    found
}
