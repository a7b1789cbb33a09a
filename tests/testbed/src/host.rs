//! Booting hosts, talking to them, and the fault handles.

use std::fs::{self, OpenOptions};
use std::io;
use std::net::Ipv4Addr;
use std::ops::Deref;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::deps::ensure_packages;
use crate::rootfs::{rootfs, test_key};
use crate::state::{
    self, clean_stale, host_dir, host_processes, make_cgroups, slot_addr, slot_name,
};
use crate::util::{cmd, kill_and_wait, run, write_file};

/// What kind of host to boot.
#[derive(Clone, Debug)]
pub struct Options {
    /// Debian suite of the rootfs: "bookworm" (default), "bullseye", "trixie".
    pub suite: String,
    /// Boot from the variant with Debian's docker.io already installed (and running).
    pub docker: bool,
    /// Port sshd listens on (22 by default).
    pub ssh_port: u16,
    /// Remove /etc/os-release and /usr/lib/os-release in this host (once booted: nspawn needs one to start).
    pub no_os_release: bool,
    /// How long booting may take until SSH answers and systemd has finished starting.
    pub boot_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            suite: "bookworm".into(),
            docker: false,
            ssh_port: 22,
            no_os_release: false,
            boot_timeout: Duration::from_secs(120),
        }
    }
}

/// Result of a command run on a host.
#[derive(Clone, Debug)]
pub struct Output {
    /// Exit code (255 when ssh itself failed, -1 when killed by a signal).
    pub status: i32,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Output {
    /// True if the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    fn from_std(out: std::process::Output) -> Output {
        Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A set of hosts booted together; derefs to `[Host]`, tears all of them down (in parallel) on drop.
pub struct Testbed {
    hosts: Vec<Host>,
}

impl Testbed {
    /// Boots `n` hosts in parallel; returns once each answers SSH and systemd has finished booting.
    pub fn boot(n: usize, opts: &Options) -> io::Result<Testbed> {
        prepare(opts)?;
        let results: Vec<io::Result<Host>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|_| s.spawn(|| Host::boot_prepared(opts)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(io::Error::other("host boot thread panicked")))
                })
                .collect()
        });
        let mut hosts = Vec::new();
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(h) => hosts.push(h),
                Err(e) => errors.push(e.to_string()),
            }
        }
        let testbed = Testbed { hosts };
        if errors.is_empty() {
            Ok(testbed)
        } else {
            Err(io::Error::other(errors.join("; ")))
        }
    }

    /// The hosts, in boot order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Takes the hosts out (each still tears itself down when dropped).
    pub fn into_hosts(mut self) -> Vec<Host> {
        std::mem::take(&mut self.hosts)
    }
}

impl Deref for Testbed {
    type Target = [Host];
    fn deref(&self) -> &[Host] {
        &self.hosts
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        std::thread::scope(|s| {
            for host in self.hosts.drain(..) {
                s.spawn(move || drop(host));
            }
        });
    }
}

/// Everything a boot needs before claiming a slot: packages, key, rootfs, no stale leftovers.
fn prepare(opts: &Options) -> io::Result<()> {
    ensure_packages()?;
    test_key()?;
    rootfs(&opts.suite, opts.docker)?;
    let removed = clean_stale()?;
    if !removed.is_empty() {
        eprintln!(
            "dmw-testbed: removed stale hosts of dead processes: {}",
            removed.join(" ")
        );
    }
    Ok(())
}

/// One booted Debian host: a systemd-nspawn container with its own netns, address and rootfs copy.
///
/// Dropping it kills the container and removes everything it used.
pub struct Host {
    name: String,
    slot: u32,
    ssh_port: u16,
    key: PathBuf,
    boot_timeout: Duration,
    no_os_release: bool,
    state: Mutex<HostState>,
}

struct HostState {
    /// Index of the current address in the slot's /29 (2..=6).
    addr_index: u32,
    nspawn: Option<Child>,
    failed_units: Vec<String>,
}

impl Host {
    /// Boots one host; see [`Testbed::boot`] for several in parallel.
    pub fn boot(opts: &Options) -> io::Result<Host> {
        prepare(opts)?;
        Host::boot_prepared(opts)
    }

    fn boot_prepared(opts: &Options) -> io::Result<Host> {
        let rootfs = rootfs(&opts.suite, opts.docker)?;
        let slot = state::claim_slot()?;
        // From here on, dropping `host` removes whatever was made so far.
        let host = Host {
            name: slot_name(slot),
            slot,
            ssh_port: opts.ssh_port,
            key: test_key()?,
            boot_timeout: opts.boot_timeout,
            no_os_release: opts.no_os_release,
            state: Mutex::new(HostState {
                addr_index: 2,
                nspawn: None,
                failed_units: Vec::new(),
            }),
        };
        let boot = || -> io::Result<()> {
            host.make_root(&rootfs, opts)?;
            host.make_network()?;
            host.start()
        };
        boot().map_err(|e| io::Error::other(format!("booting host {}: {e}", host.name)))?;
        Ok(host)
    }

    /// Host name (also its hostname, netns and machine name), e.g. "dmwtb3".
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's current IPv4 address.
    pub fn addr(&self) -> Ipv4Addr {
        slot_addr(self.slot, self.lock().addr_index)
    }

    /// The machine's address on the host's link (the host's default gateway).
    pub fn gateway(&self) -> Ipv4Addr {
        slot_addr(self.slot, 1)
    }

    /// Port sshd listens on.
    pub fn ssh_port(&self) -> u16 {
        self.ssh_port
    }

    /// Path of the private key accepted for root, `dmw` and `nosudo`.
    pub fn key_path(&self) -> &Path {
        &self.key
    }

    /// The host's root filesystem as seen from the machine (its overlay mount).
    pub fn root_dir(&self) -> PathBuf {
        host_dir(self.slot).join("merged")
    }

    /// Units that had failed when the host finished booting (systemd said "degraded").
    pub fn failed_units(&self) -> Vec<String> {
        self.lock().failed_units.clone()
    }

    fn lock(&self) -> MutexGuard<'_, HostState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Common options of ssh and scp: test key, no host key checks, no prompts, 5 s connect timeout.
    fn ssh_options(&self) -> Vec<String> {
        let mut v: Vec<String> = ["-F", "/dev/null", "-i"].map(String::from).to_vec();
        v.push(self.key.to_string_lossy().into_owned());
        for o in [
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "BatchMode=yes",
            "IdentitiesOnly=yes",
            "ConnectTimeout=5",
            "ServerAliveInterval=5",
            "ServerAliveCountMax=3",
            "LogLevel=ERROR",
        ] {
            v.push("-o".into());
            v.push(o.into());
        }
        v
    }

    /// Runs `command` (a shell command line) as `user` over SSH with the system ssh client.
    pub fn ssh(&self, user: &str, command: &str) -> io::Result<Output> {
        let out = Command::new("ssh")
            .args(self.ssh_options())
            .args(["-p", &self.ssh_port.to_string()])
            .arg(format!("{user}@{}", self.addr()))
            .arg("--")
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run ssh: {e}")))?;
        Ok(Output::from_std(out))
    }

    /// Like [`Host::ssh`] but a non-zero exit is an error (with stderr); returns stdout.
    pub fn ssh_ok(&self, user: &str, command: &str) -> io::Result<String> {
        let out = self.ssh(user, command)?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(io::Error::other(format!(
                "`{command}` as {user}@{} exited {}: {}",
                self.name,
                out.status,
                out.stderr.trim()
            )))
        }
    }

    /// Copies a local file to `remote` on the host (as root, with scp).
    pub fn push(&self, local: &Path, remote: &str) -> io::Result<()> {
        let mut c = Command::new("scp");
        c.args(self.ssh_options())
            .args(["-P", &self.ssh_port.to_string()])
            .arg(local)
            .arg(format!("root@{}:{remote}", self.addr()));
        run(&mut c).map(drop)
    }

    /// Runs `command` as root inside the host without SSH (nsenter into its namespaces).
    pub fn exec(&self, command: &str) -> io::Result<Output> {
        let leader = self.leader_pid()?.to_string();
        let out = Command::new("nsenter")
            .args(["-t", &leader, "-m", "-u", "-i", "-n", "-p", "--"])
            .args(["/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
            .args(["/bin/sh", "-c", command])
            .stdin(Stdio::null())
            .output()?;
        Ok(Output::from_std(out))
    }

    fn exec_ok(&self, command: &str) -> io::Result<()> {
        let out = self.exec(command)?;
        if out.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "`{command}` in {} exited {}: {}",
                self.name,
                out.status,
                out.stderr.trim()
            )))
        }
    }

    /// PID (on the machine) of the host's systemd: PID 1 of its PID namespace, in its netns.
    fn leader_pid(&self) -> io::Result<u32> {
        host_processes(&self.name)
            .into_iter()
            .filter(|pid| {
                fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                    s.lines()
                        .find(|l| l.starts_with("NSpid:"))
                        .and_then(|l| l.split_whitespace().last())
                        == Some("1")
                })
            })
            .min()
            .ok_or_else(|| io::Error::other(format!("host {} is not running", self.name)))
    }

    /// Polls SSH as root until it answers or `timeout` passes.
    pub fn wait_ssh(&self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.ssh("root", "true")?;
            if out.success() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "{} ({}:{}) did not answer SSH within {timeout:?}: {}",
                    self.name,
                    self.addr(),
                    self.ssh_port,
                    out.stderr.trim()
                )));
            }
            self.check_running()?;
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Fails (showing the end of the console log) if systemd-nspawn has exited.
    fn check_running(&self) -> io::Result<()> {
        let mut st = self.lock();
        let Some(child) = st.nspawn.as_mut() else {
            return Err(io::Error::other(format!("host {} is stopped", self.name)));
        };
        if let Some(status) = child.try_wait()? {
            st.nspawn = None;
            let log = fs::read_to_string(self.console_log()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(io::Error::other(format!(
                "systemd-nspawn for {} exited ({status}); console:\n{}",
                self.name,
                tail.join("\n")
            )));
        }
        Ok(())
    }

    fn console_log(&self) -> PathBuf {
        host_dir(self.slot).join("console.log")
    }

    /// Overlay mount of the cached rootfs plus the per-host files.
    fn make_root(&self, rootfs: &Path, opts: &Options) -> io::Result<()> {
        let dir = host_dir(self.slot);
        for sub in ["upper", "work", "merged", "docker"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        let p = |s: &str| dir.join(s).to_string_lossy().into_owned();
        run(&mut cmd(
            "mount",
            &[
                "-t",
                "overlay",
                "overlay",
                "-o",
                &format!(
                    "lowerdir={},upperdir={},workdir={}",
                    rootfs.display(),
                    p("upper"),
                    p("work")
                ),
                &p("merged"),
            ],
        ))?;
        let root = dir.join("merged");
        write_file(&root.join("etc/hostname"), &format!("{}\n", self.name))?;
        write_file(
            &root.join("etc/hosts"),
            &format!(
                "127.0.0.1 localhost\n127.0.1.1 {name}\n::1 localhost ip6-localhost ip6-loopback\n",
                name = self.name
            ),
        )?;
        write_file(
            &root.join("etc/resolv.conf"),
            &fs::read_to_string("/etc/resolv.conf")?,
        )?;
        // Host keys of its own for each host.
        run(&mut cmd(
            "ssh-keygen",
            &["-q", "-A", "-f", &root.to_string_lossy()],
        ))?;
        if opts.ssh_port != 22 {
            write_file(
                &root.join("etc/ssh/sshd_config.d/port.conf"),
                &format!("Port {}\n", opts.ssh_port),
            )?;
        }
        if opts.no_os_release {
            fs::remove_file(root.join("usr/lib/os-release"))?;
        }
        Ok(())
    }

    /// Network namespace, veth pair (machine end named like the host, `eth0` inside), addresses, route.
    fn make_network(&self) -> io::Result<()> {
        let n = self.name.as_str();
        let gw = format!("{}/29", self.gateway());
        let addr = format!("{}/29", self.addr());
        let gw_plain = self.gateway().to_string();
        let steps: [&[&str]; 8] = [
            &["netns", "add", n],
            &[
                "link", "add", n, "type", "veth", "peer", "name", "eth0", "netns", n,
            ],
            &["addr", "add", &gw, "dev", n],
            &["link", "set", n, "up"],
            &["-n", n, "link", "set", "lo", "up"],
            &["-n", n, "addr", "add", &addr, "dev", "eth0"],
            &["-n", n, "link", "set", "eth0", "up"],
            &["-n", n, "route", "add", "default", "via", &gw_plain],
        ];
        for args in steps {
            run(&mut cmd("ip", args))?;
        }
        Ok(())
    }

    /// Starts the host's systemd-nspawn (if stopped) and waits until it has booted.
    pub fn start(&self) -> io::Result<()> {
        let os_release = self.root_dir().join("etc/os-release");
        {
            let mut st = self.lock();
            if st.nspawn.is_none() {
                if self.no_os_release {
                    // systemd-nspawn refuses to boot a tree without os-release: give it one for the start.
                    write_file(
                        &os_release,
                        "NAME=\"placeholder for systemd-nspawn, removed once booted\"\n",
                    )?;
                }
                st.nspawn = Some(self.spawn_nspawn()?);
            }
        }
        let booted = self.wait_booted();
        if self.no_os_release && os_release.symlink_metadata().is_ok() {
            fs::remove_file(&os_release)?;
        }
        booted
    }

    fn spawn_nspawn(&self) -> io::Result<Child> {
        let dir = host_dir(self.slot);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.console_log())?;
        let cgroup_tree = dir.join("cgroup");
        let cgroups = make_cgroups(&self.name, &cgroup_tree)?;
        let procs: Vec<String> = cgroups.iter().map(|c| c.display().to_string()).collect();
        // A shell moves itself into the host's own cgroups, then becomes systemd-nspawn.
        Command::new("/bin/sh")
            .args(["-c", r#"for c in $DMW_TB_CGROUPS; do echo $$ > "$c/cgroup.procs" || exit 1; done; exec "$@""#, "sh"])
            .env("DMW_TB_CGROUPS", procs.join(" "))
            .arg("systemd-nspawn")
            .args(["-q", "-b", "-D"])
            .arg(dir.join("merged"))
            .args(["-M", &self.name, "--register=no", "--keep-unit", "--capability=all"])
            .arg("--system-call-filter=@mount @privileged @raw-io @module @swap @reboot @obsolete @keyring")
            .arg(format!("--bind={}:/sys/fs/cgroup", cgroup_tree.display()))
            .arg("--property=DeviceAllow=char-* rwm")
            .arg(format!("--network-namespace-path=/run/netns/{}", self.name))
            .arg(format!("--bind={}:/var/lib/docker", dir.join("docker").display()))
            .arg("--resolv-conf=off")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start systemd-nspawn: {e}")))
    }

    /// Waits for SSH, then for `systemctl is-system-running --wait`; "degraded" is reported, not fatal.
    fn wait_booted(&self) -> io::Result<()> {
        let started = Instant::now();
        self.wait_ssh(self.boot_timeout)?;
        let left = self
            .boot_timeout
            .saturating_sub(started.elapsed())
            .as_secs()
            .max(5);
        let out = self.ssh(
            "root",
            &format!("timeout {left} systemctl is-system-running --wait"),
        )?;
        let state = out.stdout.trim().to_string();
        let failed = if state == "degraded" {
            let list = self.ssh_ok("root", "systemctl list-units --failed --plain --no-legend")?;
            let units: Vec<String> = list
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(String::from)
                .collect();
            eprintln!(
                "dmw-testbed: {} booted degraded; failed units: {}",
                self.name,
                units.join(" ")
            );
            units
        } else if state == "running" {
            Vec::new()
        } else {
            return Err(io::Error::other(format!(
                "{}: systemctl is-system-running says {state:?} {}",
                self.name,
                out.stderr.trim()
            )));
        };
        self.lock().failed_units = failed;
        Ok(())
    }

    /// Stops sshd in the host (established sessions survive, new connections fail).
    pub fn stop_sshd(&self) -> io::Result<()> {
        self.exec_ok("systemctl stop ssh.service")
    }

    /// Starts sshd again and waits until it answers.
    pub fn start_sshd(&self) -> io::Result<()> {
        self.exec_ok("systemctl start ssh.service")?;
        self.wait_ssh(Duration::from_secs(30))
    }

    /// Cuts the host's link (the machine's end goes down): the host becomes unreachable.
    pub fn cut_link(&self) -> io::Result<()> {
        run(&mut cmd("ip", &["link", "set", &self.name, "down"])).map(drop)
    }

    /// Restores the link cut by [`Host::cut_link`].
    pub fn restore_link(&self) -> io::Result<()> {
        run(&mut cmd("ip", &["link", "set", &self.name, "up"])).map(drop)
    }

    /// Shuts the host down cleanly (SIGTERM to systemd-nspawn, poweroff inside; SIGKILL after 30 s).
    /// Its files, address and network stay; [`Host::start`] boots it again.
    pub fn stop(&self) -> io::Result<()> {
        let Some(mut child) = self.lock().nspawn.take() else {
            return Ok(());
        };
        // SAFETY: kill(2) on our own child's PID.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait()?.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        kill_and_wait(&host_processes(&self.name));
        child.wait()?;
        Ok(())
    }

    /// Stops and starts the host; it comes back with the same address.
    pub fn restart(&self) -> io::Result<()> {
        self.stop()?;
        self.start()
    }

    /// Moves the host to another address of its /29 and returns it (the old one stops answering).
    pub fn change_addr(&self) -> io::Result<Ipv4Addr> {
        let mut st = self.lock();
        let next = if st.addr_index >= 6 {
            2
        } else {
            st.addr_index + 1
        };
        let addr = format!("{}/29", slot_addr(self.slot, next));
        let gw = self.gateway().to_string();
        let n = self.name.as_str();
        run(&mut cmd("ip", &["-n", n, "addr", "flush", "dev", "eth0"]))?;
        run(&mut cmd(
            "ip",
            &["-n", n, "addr", "add", &addr, "dev", "eth0"],
        ))?;
        run(&mut cmd(
            "ip",
            &["-n", n, "route", "replace", "default", "via", &gw],
        ))?;
        st.addr_index = next;
        Ok(slot_addr(self.slot, next))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let child = self.lock().nspawn.take();
        if let Some(c) = &child {
            // SAFETY: kill(2) on our child's process group (it is its own group leader).
            unsafe { libc::kill(-(c.id() as libc::pid_t), libc::SIGKILL) };
        }
        let result = state::teardown_slot(self.slot);
        if let Some(mut c) = child {
            let _ = c.wait();
        }
        let result = result.and_then(|()| state::release_slot(self.slot));
        if let Err(e) = result {
            // The slot stays claimed; the next boot in another process cleans it up.
            eprintln!("dmw-testbed: tearing down {}: {e}", self.name);
        }
    }
}
