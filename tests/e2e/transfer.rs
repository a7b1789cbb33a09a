//! `dmw scp` (local↔machine, machine→machine, -r, -d, errors), `dmw mount` through the real
//! sshfs, and interactive `dmw ssh` (system ssh and native) driven through a real PTY.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dmw_testbed::{Host, Options, Testbed, require_root_or_skip};
use sha2::{Digest, Sha256};

use crate::support::{Dmw, shell_quote};

/// `dmw create` on a docker-preinstalled host without installing anything.
fn create_fast(dmw: &Dmw, host: &Host, user: &str, name: &str) {
    let mut a = Dmw::create_args(host, user, name);
    let i = a
        .iter()
        .position(|x| x == "--engine-install-method")
        .expect("method flag");
    a[i + 1] = "none".into();
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    dmw.ok(&a);
}

fn docker_hosts(n: usize) -> Testbed {
    Testbed::boot(
        n,
        &Options {
            docker: true,
            ..Options::default()
        },
    )
    .expect("boot docker hosts")
}

fn sha_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).expect("read local file")))
}

fn sha_remote(h: &Host, path: &str) -> String {
    let out = h
        .ssh_ok("root", &format!("sha256sum {}", shell_quote(path)))
        .expect("sha256sum on host");
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The "N bytes sent" of scp's summary line.
fn bytes_sent(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("bytes sent"))
        .unwrap_or_else(|| panic!("no summary line in {stderr:?}"));
    let before = line.split(" bytes sent").next().unwrap_or_default();
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse {line:?}"))
}

#[test]
fn scp_local_machine_and_machine_to_machine() {
    if !require_root_or_skip("scp_local_machine_and_machine_to_machine") {
        return;
    }
    let started = Instant::now();
    let bed = docker_hosts(2);
    let (h1, h2) = (&bed.hosts()[0], &bed.hosts()[1]);
    let dmw = Dmw::new();
    create_fast(&dmw, h1, "root", "m1");
    create_fast(&dmw, h2, "dmw", "m2");
    let work = tempfile::tempdir().expect("tempdir");
    let big = work.path().join("big file.bin");
    const SIZE: usize = 50 << 20;
    let mut data = vec![0u8; SIZE];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut data))
        .expect("random data");
    std::fs::write(&big, &data).expect("write big file");
    let big_s = big.display().to_string();
    let want = sha_file(&big);

    // local → machine (home-relative path with a space), machine → machine, machine → local.
    let r = dmw.run(&["scp", &big_s, "m1:big file.bin"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(bytes_sent(&r.stderr), SIZE as u64, "{r:?}");
    assert_eq!(sha_remote(h1, "/root/big file.bin"), want);
    dmw.ok(&["scp", "m1:~/big file.bin", "m2:copy.bin"]);
    assert_eq!(sha_remote(h2, "/home/dmw/copy.bin"), want);
    let back = work.path().join("back.bin");
    let r = dmw.run(&[
        "scp",
        "-q",
        "m2:/home/dmw/copy.bin",
        &back.display().to_string(),
    ]);
    assert!(
        r.code == 0 && r.stderr.is_empty() && r.stdout.is_empty(),
        "-q: {r:?}"
    );
    assert_eq!(sha_file(&back), want);

    // -d: change a few bytes, only their block goes over the wire; unchanged: nothing.
    data[1_000_000..1_000_003].copy_from_slice(b"XYZ");
    data[SIZE - 2] ^= 0xff;
    std::fs::write(&big, &data).expect("rewrite");
    let want2 = sha_file(&big);
    let r = dmw.run(&["scp", "-d", &big_s, "m2:copy.bin"]);
    assert_eq!(r.code, 0, "{r:?}");
    let sent = bytes_sent(&r.stderr);
    assert!(
        sent > 0 && sent < (SIZE / 50) as u64,
        "delta sent {sent}: {r:?}"
    );
    assert_eq!(sha_remote(h2, "/home/dmw/copy.bin"), want2);
    let r = dmw.run(&["scp", "--delta", &big_s, "m2:copy.bin"]);
    assert_eq!(bytes_sent(&r.stderr), 0, "{r:?}");
    // Delta machine → machine and machine → local too.
    let r = dmw.run(&["-D", "scp", "-d", "m2:copy.bin", "m1:big file.bin"]);
    assert!(bytes_sent(&r.stderr) < (SIZE / 50) as u64, "{r:?}");
    assert!(
        r.stderr.contains("2 of 400 blocks of 131072 bytes differ"),
        "{r:?}"
    );
    assert_eq!(sha_remote(h1, "/root/big file.bin"), want2);
    let r = dmw.run(&["scp", "-d", "m1:big file.bin", &back.display().to_string()]);
    assert!(bytes_sent(&r.stderr) < (SIZE / 50) as u64, "{r:?}");
    assert_eq!(sha_file(&back), want2);

    // -r keeps the tree and its modes, there and back, and between machines.
    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("a dir/deep")).expect("mkdir");
    std::fs::write(tree.join("a dir/deep/f.txt"), b"hello\n").expect("w");
    std::fs::write(tree.join("run.sh"), b"#!/bin/sh\necho ran\n").expect("w");
    let chmod = |p: &Path, m: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
    };
    chmod(&tree.join("run.sh"), 0o750);
    chmod(&tree.join("a dir"), 0o700);
    let r = dmw.run(&["scp", "-r", &tree.display().to_string(), "m1:/tmp"]);
    assert_eq!(r.code, 0, "{r:?}");
    let listing = "cd /tmp/tree && find . -exec stat -c '%a %s %n' {} + | sort";
    let l1 = h1.ssh_ok("root", listing).expect("list");
    assert!(
        l1.contains("750 19 ./run.sh")
            && l1.contains("700 ")
            && l1.contains("6 ./a dir/deep/f.txt"),
        "{l1}"
    );
    assert_eq!(
        h1.ssh_ok("root", "/tmp/tree/run.sh").expect("run").trim(),
        "ran"
    );
    dmw.ok(&["scp", "-r", "m1:/tmp/tree", "m2:/tmp/tree"]);
    assert_eq!(h2.ssh_ok("root", listing).expect("list"), l1);
    let tree_back = work.path().join("tree back");
    dmw.ok(&[
        "scp",
        "-r",
        "m2:/tmp/tree",
        &tree_back.display().to_string(),
    ]);
    assert_eq!(
        std::fs::read(tree_back.join("a dir/deep/f.txt")).expect("read"),
        b"hello\n"
    );

    // Errors name the machine and the path, exit 1, and create nothing.
    let r = dmw.run(&["scp", "ghost:/etc/hostname", "x"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("Docker machine \"ghost\" does not exist"),
        "{r:?}"
    );
    let r = dmw.run(&["scp", "m1:/no/such file", &back.display().to_string()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("m1:/no/such file: No such file or directory on machine \"m1\""),
        "{r:?}"
    );
    assert_eq!(
        sha_file(&back),
        want2,
        "a failed copy must not touch the target"
    );
    let missing = work.path().join("not here");
    let r = dmw.run(&["scp", &missing.display().to_string(), "m1:x"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("not here: No such file or directory on this computer"),
        "{r:?}"
    );
    let r = dmw.run(&["scp", &tree.display().to_string(), "m1:"]);
    assert!(r.code == 1 && r.stderr.contains("use -r"), "{r:?}");
    let r = dmw.run(&["scp", "m1:x"]);
    assert!(
        r.code == 1 && r.stderr.contains("Improper number of arguments"),
        "{r:?}"
    );

    // The host key stays pinned: a machine presenting another key is refused.
    let kh = dmw.machine_dir("m1").join("known_hosts");
    let pinned = std::fs::read_to_string(&kh).expect("known_hosts");
    let other = std::fs::read_to_string(dmw.machine_dir("m2").join("known_hosts")).expect("kh2");
    let forged: String = other
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(_, key)| format!("{} {key}\n", h1.addr()))
        })
        .collect();
    std::fs::write(&kh, forged).expect("forge");
    let r = dmw.run(&[
        "scp",
        "m1:/etc/hostname",
        &work.path().join("h").display().to_string(),
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("machine \"m1\"") && r.stderr.contains("host key"),
        "{r:?}"
    );
    std::fs::write(&kh, pinned).expect("restore");
    eprintln!("scp test took {:?}", started.elapsed());
}

/// A child process on a fresh PTY (its controlling terminal), with its output collected.
struct PtyChild {
    master: std::fs::File,
    output: Arc<Mutex<Vec<u8>>>,
    child: std::process::Child,
}

impl PtyChild {
    fn spawn(mut cmd: std::process::Command, rows: u16, cols: u16) -> PtyChild {
        let (mut m, mut s) = (0, 0);
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty fills two descriptors; the winsize pointer is valid.
        let rc =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(rc, 0, "openpty");
        // SAFETY: fresh descriptors from openpty, owned here.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        let sfd = slave.as_raw_fd();
        cmd.stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave.try_clone().expect("dup")))
            .env("TERM", "xterm");
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 || libc::ioctl(sfd, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on pty");
        drop(slave);
        let master = std::fs::File::from(master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("clone master");
        let out = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        PtyChild {
            master,
            output,
            child,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().expect("lock")).replace('\r', "")
    }

    /// Wait until the output (after `from` bytes) matches `pred`.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if pred(&self.text()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out waiting for {what}; output so far:\n{}",
            self.text()
        );
    }

    fn type_line(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .expect("type");
    }

    fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ on our master with a valid winsize; the kernel signals SIGWINCH.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(rc, 0, "TIOCSWINSZ");
    }

    /// Whether the terminal is in canonical (cooked) mode, as the shell leaves it.
    fn cooked(&self) -> bool {
        // SAFETY: tcgetattr on our master (Linux reports the pair's settings) into a zeroed struct.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut t) };
        assert_eq!(rc, 0, "tcgetattr");
        t.c_lflag & libc::ICANON != 0 && t.c_lflag & libc::ECHO != 0
    }

    fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("dmw ssh did not exit; output:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether a shell prompt has appeared `n` times.
fn prompts(text: &str, n: usize) -> bool {
    text.matches("$ ").count() >= n
}

#[test]
fn ssh_interactive_pty_and_sshfs_mount() {
    if !require_root_or_skip("ssh_interactive_pty_and_sshfs_mount") {
        return;
    }
    let started = Instant::now();
    let bed = docker_hosts(1);
    let h = &bed.hosts()[0];
    let dmw = Dmw::new();
    create_fast(&dmw, h, "dmw", "box");

    // System ssh client: a real tty on the remote, exit status passed through.
    let mut s = PtyChild::spawn(dmw.command(&["ssh", "box"]), 24, 80);
    s.wait_for("the first prompt", |t| prompts(t, 1));
    s.type_line("tty");
    s.wait_for("tty's answer", |t| t.contains("/dev/pts/"));
    s.type_line("exit 3");
    assert_eq!(s.wait_exit(), 3, "{}", s.text());

    // Native client: PTY of the local size, resized on SIGWINCH, exit status passed through.
    let mut n = PtyChild::spawn(dmw.command(&["--native-ssh", "ssh", "box"]), 40, 132);
    n.wait_for("the first prompt", |t| prompts(t, 1));
    n.type_line("tty; stty size");
    n.wait_for("40 132", |t| {
        t.contains("/dev/pts/") && t.contains("\n40 132\n")
    });
    n.resize(50, 100);
    std::thread::sleep(Duration::from_millis(500));
    n.type_line("stty size");
    n.wait_for("50 100 after the resize", |t| t.contains("50 100\n"));
    assert!(
        !n.cooked(),
        "the native client must put the terminal in raw mode"
    );
    n.type_line("exit 3");
    assert_eq!(n.wait_exit(), 3, "{}", n.text());
    assert!(n.cooked(), "terminal settings restored at exit");
    // SIGTERM ends the session and still restores the terminal.
    let mut k = PtyChild::spawn(dmw.command(&["--native-ssh", "ssh", "box"]), 24, 80);
    k.wait_for("the first prompt", |t| prompts(t, 1));
    assert!(!k.cooked());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(k.child.id() as i32, libc::SIGTERM) };
    assert_eq!(k.wait_exit(), 128 + libc::SIGTERM, "{}", k.text());
    assert!(k.cooked(), "terminal settings restored after SIGTERM");

    // No ssh binary on PATH: the native client is used by itself.
    let mut c = dmw.command(&["ssh", "box"]);
    c.env("PATH", "/nonexistent");
    let mut p = PtyChild::spawn(c, 24, 80);
    p.wait_for("the first prompt", |t| prompts(t, 1));
    p.type_line("echo native-$((40+2))");
    p.wait_for("echo", |t| t.contains("native-42"));
    p.type_line("exit 5");
    assert_eq!(p.wait_exit(), 5, "{}", p.text());

    // Commands: status passed through, -t gives a PTY, arguments joined like Docker Machine.
    let r = dmw.run(&[
        "ssh",
        "box",
        "--",
        "sh",
        "-c",
        "'echo out; echo err >&2; exit 7'",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (7, "out\n", "err\n"),
        "{r:?}"
    );
    let r = dmw.run(&["ssh", "box", "tty"]);
    assert_eq!(r.code, 1, "no PTY without -t: {r:?}");
    let r = dmw.run(&["ssh", "box", "-t", "tty"]);
    assert!(r.code == 0 && r.stdout.contains("/dev/pts/"), "{r:?}");

    // Extra ssh options go to the system ssh client, as with Docker Machine's external
    // client: they take effect (a bad value is ssh's own error), and a command may follow.
    let r = dmw.run(&[
        "ssh",
        "box",
        "-o",
        "ConnectTimeout=5",
        "echo",
        "via-system-ssh",
    ]);
    assert_eq!((r.code, r.stdout.trim()), (0, "via-system-ssh"), "{r:?}");
    let r = dmw.run(&["ssh", "box", "-o", "ConnectTimeout=soon", "true"]);
    assert_eq!(r.code, 255, "the option reached ssh: {r:?}");
    assert!(r.stderr.contains("invalid time value"), "{r:?}");
    let r = dmw.run(&["--native-ssh", "ssh", "box", "-o", "Port=1", "true"]);
    assert!(
        r.code == 1 && r.stderr.contains("need the system ssh client"),
        "{r:?}"
    );

    // sshfs mount with the machine's key and pinned host key; write both ways; unmount.
    if dmw_sshfs_available() {
        let mnt = tempfile::tempdir().expect("tempdir");
        let mp = mnt.path().join("mount point");
        std::fs::create_dir(&mp).expect("mkdir");
        let mps = mp.display().to_string();
        h.ssh_ok("dmw", "mkdir -p share && echo from-box > share/remote.txt")
            .expect("prepare share");
        dmw.ok(&["mount", "box:share", &mps]);
        assert_eq!(
            std::fs::read_to_string(mp.join("remote.txt")).expect("read through mount"),
            "from-box\n"
        );
        std::fs::write(mp.join("local.txt"), b"from-here\n").expect("write through mount");
        assert_eq!(
            h.ssh_ok("dmw", "cat share/local.txt").expect("cat"),
            "from-here\n"
        );
        dmw.ok(&["mount", "-u", "box:share", &mps]);
        assert!(!mp.join("remote.txt").exists(), "still mounted after -u");
        // A changed host key is refused by sshfs too (StrictHostKeyChecking with the pinned file).
        let kh = dmw.machine_dir("box").join("known_hosts");
        let pinned = std::fs::read_to_string(&kh).expect("known_hosts");
        std::fs::write(&kh, "").expect("empty known_hosts");
        let r = dmw.run(&["mount", "box:share", &mps]);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(
            r.stderr.contains("machine \"box\"") && r.stderr.contains("sshfs"),
            "{r:?}"
        );
        std::fs::write(&kh, pinned).expect("restore");
    }
    // Missing programs are named, with the package to install.
    let mut c = dmw.command(&["mount", "box:share", "/tmp"]);
    c.env("PATH", "/nonexistent");
    let r: crate::support::Run = c.output().expect("run").into();
    assert!(
        r.code == 1
            && r.stderr.contains("sshfs binary")
            && r.stderr.contains("apt-get install sshfs"),
        "{r:?}"
    );
    let mut c = dmw.command(&["mount", "-u", "box:share", "/tmp"]);
    c.env("PATH", "/nonexistent");
    let r: crate::support::Run = c.output().expect("run").into();
    assert!(
        r.code == 1 && r.stderr.contains("fusermount binary"),
        "{r:?}"
    );
    eprintln!("ssh/mount test took {:?}", started.elapsed());
}

/// sshfs is present (scripts/setup installs it); in CI its absence is a failure.
fn dmw_sshfs_available() -> bool {
    let found = std::process::Command::new("sh")
        .args([
            "-c",
            "command -v sshfs && { command -v fusermount3 || command -v fusermount; }",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("sshfs/fusermount missing: run scripts/setup");
        }
        eprintln!("skipping the sshfs part: sshfs is not installed (scripts/setup installs it)");
    }
    found
}
