//! `testbed`: boot dmw test hosts from a shell, build the caches, clean up.
//!
//! ```text
//! testbed up N [--docker] [--port P] [--suite S] [--no-os-release]
//! testbed rootfs [--suite S] [--docker]
//! testbed image
//! testbed clean
//! ```

use std::process::ExitCode;
use std::time::Instant;

use dmw_testbed::{Options, Testbed, clean_stale, ensure_packages, image_tarball, rootfs};

const USAGE: &str = "usage:
  testbed up N [--docker] [--port P] [--suite S] [--no-os-release]
      boot N hosts, print `NAME ADDRESS PORT KEY` per host, stay until Ctrl-C/SIGTERM
  testbed rootfs [--suite S] [--docker]   build (or find) the cached rootfs, print its path
  testbed image                           build (or find) the busybox image tarball, print its path
  testbed clean                           remove everything left by testbed processes that are gone";

/// Blocks SIGINT and SIGTERM in this thread (and the threads it starts later) and returns the set.
///
/// A signal that arrives while hosts boot stays pending until [`wait_for`] takes it, so none is lost.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits until one of the signals in `set` arrives.
fn wait_for(set: &libc::sigset_t) {
    let mut sig = 0;
    // SAFETY: `set` was initialised by block_stop_signals; sig is a valid out pointer.
    unsafe { libc::sigwait(set, &mut sig) };
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("testbed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the options shared by `up` and `rootfs`; returns them and the positional arguments.
fn parse_options(args: &[String]) -> Result<(Options, Vec<String>), String> {
    let mut opts = Options::default();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--docker" => opts.docker = true,
            "--no-os-release" => opts.no_os_release = true,
            "--suite" => opts.suite = value()?.clone(),
            "--port" => opts.ssh_port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            s if s.starts_with('-') => return Err(format!("unknown option {s}\n{USAGE}")),
            s => rest.push(s.to_string()),
        }
    }
    Ok((opts, rest))
}

fn run(args: &[String]) -> Result<(), String> {
    let Some((command, args)) = args.split_first() else {
        return Err(USAGE.into());
    };
    let (opts, rest) = parse_options(args)?;
    let e = |e: std::io::Error| e.to_string();
    match (command.as_str(), rest.as_slice()) {
        ("up", [n]) => {
            let n: usize = n.parse().map_err(|_| format!("bad host count {n:?}"))?;
            let signals = block_stop_signals();
            let started = Instant::now();
            let testbed = Testbed::boot(n, &opts).map_err(e)?;
            eprintln!(
                "testbed: {n} host(s) up in {:.1?}; Ctrl-C tears them down",
                started.elapsed()
            );
            for h in testbed.iter() {
                println!(
                    "{} {} {} {}",
                    h.name(),
                    h.addr(),
                    h.ssh_port(),
                    h.key_path().display()
                );
            }
            wait_for(&signals);
            eprintln!("testbed: tearing down");
            drop(testbed);
            Ok(())
        }
        ("rootfs", []) => {
            ensure_packages().map_err(e)?;
            println!("{}", rootfs(&opts.suite, opts.docker).map_err(e)?.display());
            Ok(())
        }
        ("image", []) => {
            println!("{}", image_tarball().map_err(e)?.display());
            Ok(())
        }
        ("clean", []) => {
            for name in clean_stale().map_err(e)? {
                println!("removed {name}");
            }
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}
