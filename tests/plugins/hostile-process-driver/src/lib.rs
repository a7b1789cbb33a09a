//! Hostile test fixture: a driver granted `process` (with the programs `printenv`, `ln`,
//! `sleep` and `setsid`) and `files` that tries, in `pre-create-check`, to get past them:
//!
//! - run programs it did not declare (`sh` by name, `/bin/sh` by path, `printenv` by
//!   another path);
//! - smuggle a shell through its declared program's arguments;
//! - read the host's environment through `printenv` (only PATH, LANG and the host's
//!   process tag may show), and find a PATH entry that is empty, relative or in the
//!   machine's directory (a program it plants there would run for a bare name);
//! - make the host open a file outside its directory through the spawn log
//!   `HANDLE.log`: a symlink `planted.log -> ../../../victim` and a hard link
//!   `hardlinked.log` to `../../../victim-hard` (the test puts both victims in the store);
//! - read files outside its directory: `/etc/passwd`, the machine's record and key beside
//!   its directory (`../config.json`, `../id_ssh`), the same through symlinks its `ln`
//!   makes, and the host's process records (`../processes.json`);
//! - talk QMP to a socket outside its directory;
//! - use a handle name that is a path, and kill processes it never started;
//! - leave a process running (`sleep 3600`) when its check fails, and one that daemonized
//!   out of its session (`setsid -f sleep 3601`: the host's pid is gone at once);
//! - with `--hostile-process-fill MIB`, fill its directory in `set-config` (the quota
//!   test: the next call must be refused), and with `--hostile-process-spin yes` then keep
//!   computing in `set-config` for 5 s (the call must be stopped while it runs).
//!
//! It fails the check with `HOSTILE-CONTAINED` when every attempt was refused (and the
//! positive controls worked: its own directory is writable, its program runs), else with
//! `HOSTILE-BREACH:` and what worked.

use std::time::Duration;

use dmw_guest::driver::{Driver, SshEndpoint};
use dmw_guest::flags::{Flag, Flags};
use dmw_guest::process;
use dmw_guest::{Error, Result, files};

dmw_guest::permissions! {
    capability "process";
    capability "files";
    program "printenv";
    program "ln";
    program "sleep";
    program "setsid";
}

/// The hostile process driver.
struct HostileProcess;

fn denied<T>(r: &Result<T>) -> bool {
    matches!(r, Err(Error::Denied(_)))
}

impl Driver for HostileProcess {
    const NAME: &'static str = "hostile-process";
    const DESCRIPTION: &'static str = "Hostile test driver: reaches past process and files";

    fn create_flags() -> Vec<Flag> {
        vec![
            Flag::text(
                "hostile-process-fill",
                "MiB to write into its directory in set-config",
            ),
            Flag::text(
                "hostile-process-spin",
                "yes: keep running in set-config for 5 s after filling",
            ),
        ]
    }

    fn set_config(_machine_name: &str, flags: &Flags) -> Result<()> {
        let mib: usize = flags
            .text("hostile-process-fill")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if mib > 0 {
            std::fs::write(files::path("fill.bin"), vec![0x5a; mib << 20])
                .map_err(|e| Error::Failed(format!("cannot fill: {e}")))?;
        }
        if flags.text("hostile-process-spin").as_deref() == Some("yes") {
            // Compute in short bursts (a clock read between them, so the compute rule
            // does not end it first), for 5 s: the host must stop it within about 1 s.
            let start = std::time::Instant::now();
            let mut x: u64 = 1;
            while start.elapsed() < Duration::from_secs(5) {
                for i in 0..200_000u64 {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
                }
            }
            return Err(Error::Failed(format!("HOSTILE-SPUN {x}")));
        }
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        let t = Duration::from_secs(10);
        let mut breach = Vec::new();
        let mut broken = Vec::new();
        for program in ["sh", "/bin/sh", "/usr/bin/printenv", "../printenv"] {
            if !denied(&process::run(program, &["-c", "id"], t)) {
                breach.push(format!("ran undeclared {program}"));
            }
        }
        if !denied(&process::spawn("evil", "sh", &["-c", "sleep 60"])) {
            breach.push("spawned undeclared sh".to_string());
        }
        match process::run("printenv", &[], t) {
            Ok(out) => {
                let env = String::from_utf8_lossy(&out.stdout).into_owned();
                for line in env.lines() {
                    let (name, value) = line.split_once('=').unwrap_or((line, ""));
                    if !["PATH", "LANG", "DMW_PROCESS_TAG"].contains(&name) {
                        breach.push(format!("saw the host's environment variable {name}"));
                    }
                    if name == "PATH" {
                        for entry in value.split(':') {
                            if !entry.starts_with('/')
                                || entry.contains("/machines/")
                                || entry.split('/').any(|c| c == "..")
                            {
                                breach.push(format!("its programs' PATH has the entry {entry:?}"));
                            }
                        }
                    }
                }
            }
            Err(e) => broken.push(format!("declared printenv did not run: {}", e.message())),
        }
        // The program's arguments are not a shell: `;` is a plain argument.
        if let Ok(out) = process::run("printenv", &["PATH; id"], t)
            && String::from_utf8_lossy(&out.stdout).contains("uid=")
        {
            breach.push("a shell ran its arguments".to_string());
        }
        // A process of its own, so the host's records of it exist (beside its directory).
        if let Err(e) = process::spawn("own", "printenv", &[]) {
            broken.push(format!("declared printenv did not spawn: {}", e.message()));
        }
        for path in [
            "/etc/passwd",
            "/files/../id_ssh",
            "/files/../processes.json",
            "/files/../config.json",
            "../id_ssh",
        ] {
            if std::fs::read(path).is_ok() {
                breach.push(format!("read {path}"));
            }
        }
        if std::fs::write(files::path("mine.txt"), b"ok").is_err() {
            broken.push("its own directory is not writable".to_string());
        }
        // Its declared `ln` may plant symlinks in its directory (a program is as powerful
        // as it is), but WASI does not follow them out of the directory.
        for (target, link) in [
            ("../config.json", "record-link"),
            ("/etc/passwd", "abs-link"),
        ] {
            if let Err(e) = process::run_ok("ln", &["-s", target, link], t) {
                broken.push(format!("declared ln did not run: {}", e.message()));
            }
            if std::fs::read(files::path(link)).is_ok() {
                breach.push(format!("read {target} through a symlink"));
            }
        }
        // The spawn log through a planted symlink and a planted hard link: the host must
        // not open either (it would append the process's output to the victim).
        if let Err(e) = process::run_ok("ln", &["-s", "../../../victim", "planted.log"], t) {
            broken.push(format!("declared ln did not run: {}", e.message()));
        }
        if let Err(e) = process::run_ok("ln", &["../../../victim-hard", "hardlinked.log"], t) {
            broken.push(format!(
                "declared ln did not make a hard link: {}",
                e.message()
            ));
        }
        for handle in ["planted", "hardlinked"] {
            if process::spawn(handle, "printenv", &[]).is_ok() {
                breach.push(format!("the host opened {handle}.log, a link it planted"));
            }
        }
        for socket in ["../qmp.sock", "/run/systemd/private", "record-link"] {
            if files::qmp(socket, r#"{"execute":"query-status"}"#, t).is_ok() {
                breach.push(format!("talked QMP on {socket}"));
            }
        }
        if process::running("../../x").is_ok() {
            breach.push("a path was taken as a handle".to_string());
        }
        // A handle it never started names nothing: no process of anyone else is touched.
        if !matches!(process::running("init"), Ok(false)) || process::kill("init").is_err() {
            broken.push("an unknown handle is not simply not running".to_string());
        }
        // Something long-running, left behind when the check fails: the host must end it.
        if let Err(e) = process::spawn("lingering", "sleep", &["3600"]) {
            broken.push(format!("declared sleep did not spawn: {}", e.message()));
        }
        // A daemon: `setsid -f` forks, the child leaves the session and group the host
        // made, and the process the host started exits at once.
        if let Err(e) = process::spawn("daemon", "setsid", &["-f", "sleep", "3601"]) {
            broken.push(format!("declared setsid did not spawn: {}", e.message()));
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

dmw_guest::export_driver!(HostileProcess, "../../../wit");
