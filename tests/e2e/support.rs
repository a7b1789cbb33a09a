//! Helpers shared by the end-to-end tests: running `dmw` against a private store,
//! running the docker CLI with a machine's environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dmw_testbed::{Host, Options, Testbed};

/// `n` testbed hosts with Debian's docker.io preinstalled and running, booted in parallel.
pub fn docker_hosts(n: usize) -> Testbed {
    Testbed::boot(
        n,
        &Options {
            docker: true,
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("boot {n} docker host(s): {e}"))
}

/// The `dmw` binary under test.
pub fn dmw_bin() -> &'static str {
    env!("CARGO_BIN_EXE_dmw")
}

/// A `dmw` with its own storage path (with a space in it, to catch quoting bugs).
pub struct Dmw {
    _tmp: tempfile::TempDir,
    /// The storage path (for a member of a shared store: its working copy, once made).
    pub storage: PathBuf,
    /// What `-s` gets: the storage path, or a shared store's URL.
    location: String,
    /// `HOME` of a member of a shared store (its identity and working copy live there).
    home: Option<PathBuf>,
    /// More environment for every command.
    env: Vec<(String, String)>,
}

/// Output of a command, decoded.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Dmw {
    /// A new empty store.
    pub fn new() -> Dmw {
        let tmp = tempfile::tempdir().expect("tempdir");
        let storage = tmp.path().join("dmw store");
        Dmw {
            _tmp: tmp,
            location: storage.display().to_string(),
            storage,
            home: None,
            env: Vec::new(),
        }
    }

    /// A member of the shared store at `url`, with a HOME of its own and `env` (the store's
    /// credentials) on every command.
    pub fn member(url: &str, env: &[(&str, &str)]) -> Dmw {
        let tmp = tempfile::tempdir().expect("tempdir");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        Dmw {
            storage: tmp.path().join("no working copy yet"),
            _tmp: tmp,
            location: url.to_string(),
            home: Some(home),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// This member's HOME.
    pub fn home(&self) -> Option<&Path> {
        self.home.as_deref()
    }

    /// A `dmw` command on this store.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(dmw_bin());
        c.arg("-s").arg(&self.location).args(args);
        c.env_remove("DOCKER_HOST")
            .env("SHELL", "/bin/bash")
            .env("USER", "tester")
            .env("DOCKER_CONFIG", self.docker_config());
        self.add_env(&mut c);
        c
    }

    fn add_env(&self, c: &mut Command) {
        if let Some(h) = &self.home {
            c.env("HOME", h);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
    }

    /// The docker CLI's configuration directory of this test (contexts land there).
    pub fn docker_config(&self) -> PathBuf {
        self.storage.with_file_name("docker-config")
    }

    /// The real docker CLI with this test's configuration and no `DOCKER_*` environment.
    pub fn docker(&self, args: &[&str]) -> Run {
        Command::new("docker")
            .args(args)
            .env("DOCKER_CONFIG", self.docker_config())
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .output()
            .expect("run docker")
            .into()
    }

    /// Run `dmw ARGS`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().expect("run dmw").into()
    }

    /// Run `dmw ARGS` with `input` on its stdin.
    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn dmw");
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("wait dmw").into()
    }

    /// Run `dmw ARGS` and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "dmw {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    /// The directory of a machine.
    pub fn machine_dir(&self, name: &str) -> PathBuf {
        self.storage.join("machines").join(name)
    }

    /// `bash -c` with `eval "$(dmw env NAME)"` first, as a user would.
    pub fn with_env(&self, name: &str, script: &str) -> Run {
        let full = format!(
            "set -e; eval \"$({} -s {} env {name})\"; {script}",
            shell_quote(dmw_bin()),
            shell_quote(&self.location)
        );
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(full)
            .env("SHELL", "/bin/bash")
            .env("DOCKER_CONFIG", self.docker_config())
            .env_remove("DOCKER_HOST");
        self.add_env(&mut c);
        c.output().expect("bash").into()
    }

    /// `dmw create --driver generic` for a testbed host.
    pub fn create_args(host: &Host, user: &str, name: &str) -> Vec<String> {
        vec![
            "create".into(),
            "--driver".into(),
            "generic".into(),
            "--generic-ip-address".into(),
            host.addr().to_string(),
            "--generic-ssh-port".into(),
            host.ssh_port().to_string(),
            "--generic-ssh-key".into(),
            host.key_path().display().to_string(),
            "--generic-ssh-user".into(),
            user.into(),
            "--engine-install-method".into(),
            "distro".into(),
            name.into(),
        ]
    }
}

/// `dmw create` of a generic machine whose SSH port (127.0.0.1:1) never answers: it waits
/// for SSH, then fails at that step.
pub fn unreachable_create(dmw: &Dmw, key: &str, name: &str) -> std::process::Command {
    dmw.command(&[
        "create",
        "--driver",
        "generic",
        "--generic-ip-address",
        "127.0.0.1",
        "--generic-ssh-port",
        "1",
        "--generic-ssh-key",
        key,
        name,
    ])
}

/// Quote for bash.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Import the locally built busybox image on the machine `name` and run `echo ok` in it.
pub fn docker_run_ok(dmw: &Dmw, name: &str) {
    let tar = dmw_testbed::image_tarball().expect("image tarball");
    let r = dmw.with_env(
        name,
        &format!("docker import {} dmw-test/busybox:1 >/dev/null; docker run --rm dmw-test/busybox:1 echo ok", shell_quote(&tar.display().to_string())),
    );
    assert_eq!(
        r.code, 0,
        "docker on {name} failed:\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    assert_eq!(r.stdout.trim(), "ok", "docker run output: {r:?}");
}

/// The row of `ls` for `name`, split on runs of spaces.
pub fn ls_row(ls: &str, name: &str) -> Option<Vec<String>> {
    ls.lines()
        .skip(1)
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
}

/// Assert that of every file in the store, only machine `name`'s record holds `secret`,
/// with mode 0600, and that `dmw inspect name` shows `<redacted>` instead of it.
pub fn assert_secret_only_in_record(dmw: &Dmw, name: &str, secret: &str) {
    use std::os::unix::fs::PermissionsExt;
    let record = dmw.machine_dir(name).join("config.json");
    let holders = files_containing(&dmw.storage, secret);
    assert_eq!(
        holders,
        vec![record.clone()],
        "files holding the secret: {holders:?}"
    );
    let mode = std::fs::metadata(&record)
        .expect("record")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode of {}", record.display());
    let inspect = dmw.ok(&["inspect", name]);
    assert!(
        !inspect.contains(secret) && inspect.contains("<redacted>"),
        "{inspect}"
    );
}

/// Every file under `dir` (recursively) whose bytes contain `needle`.
pub fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default())
                .contains(needle)
            {
                found.push(p);
            }
        }
    }
    found
}

/// The test's store on a small tmpfs of its own, unmounted when the test ends, however it
/// ends (a store whose file system fills up).
pub struct SmallStore(PathBuf);

impl SmallStore {
    /// Mount a tmpfs of `size` (`2m`, `64m`) on `dmw`'s store.
    pub fn mount(dmw: &Dmw, size: &str) -> SmallStore {
        std::fs::create_dir_all(&dmw.storage).expect("store dir");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dmw.storage)
            .status()
            .expect("mount");
        assert!(st.success(), "mount tmpfs");
        SmallStore(dmw.storage.clone())
    }

    /// Fill the store's file system to the last block; returns the file that does (remove
    /// it to free the space).
    pub fn fill(dmw: &Dmw) -> PathBuf {
        let fill = dmw.storage.join("fill");
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4k"])
            .arg(format!("of={}", fill.display()))
            .stderr(std::process::Stdio::null())
            .status();
        fill
    }
}

impl Drop for SmallStore {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
