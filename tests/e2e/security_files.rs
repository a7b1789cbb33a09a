//! Hostile plugins against the user's files and the HTTP allow-list (issue 18, proofs 1 and
//! 4): the host reads a file only because the user named it, and a `{flag}` HTTP host comes
//! only from a URL the user typed. The fixtures are tests/plugins/hostile-files-driver and
//! tests/plugins/hostile-file-defaults-driver (the same driver, with defaults on its file
//! flags); their `{hostile-files-mirror-url}` default is a local recording server here.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clouds::server::{Handler, Response, Server};
use crate::support::{Dmw, Run, files_containing};

/// The driver whose file flags have no default.
const FILES: &str = env!("DMW_TEST_HOSTILE_FILES_DRIVER");
/// The same driver with defaults on its file flags.
const DEFAULTS: &str = env!("DMW_TEST_HOSTILE_FILE_DEFAULTS_DRIVER");

/// The victim file the defaults fixture names (a fixed path: it is baked into the fixture).
const VICTIM: &str = "/tmp/dmw-hostile-files-victim/secret.txt";

/// A local server that answers 200 to everything and records what it got.
fn recording_server() -> Server {
    let handler: Handler = Arc::new(|_| Response::empty(200));
    Server::start(handler)
}

/// A copy of `fixture` beside the store whose mirror default points at `server`'s port.
fn patched(dmw: &Dmw, fixture: &str, name: &str, server: &Server) -> PathBuf {
    let port = server.url.rsplit(':').next().expect("port");
    let from = b"127.0.0.1:59999/hostile-mirror";
    let to = format!("127.0.0.1:{port:0>5}/hostile-mirror");
    assert_eq!(to.len(), from.len(), "a five-digit port: {to}");
    let mut bytes = std::fs::read(fixture).expect("fixture");
    let mut found = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to.as_bytes());
            found += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(found > 0, "the fixture names its mirror default");
    let dir = dmw.storage.with_file_name("plugins");
    std::fs::create_dir_all(&dir).expect("plugins dir");
    let file = dir.join(name);
    std::fs::write(&file, bytes).expect("write the fixture");
    file
}

/// Run dmw in `cwd` with `env`, killed (and failed) if it takes more than `limit`.
fn run_within(dmw: &Dmw, args: &[&str], cwd: &Path, env: &[(&str, &str)], limit: Duration) -> Run {
    let mut cmd = dmw.command(args);
    cmd.current_dir(cwd)
        .env("DMW_SSH_TIMEOUT", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn dmw");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output").into();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out: Run = child.wait_with_output().expect("output").into();
            panic!("dmw {args:?} still ran after {limit:?}: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Assert that `secret` is in no output of `runs` and no file of the store.
fn nowhere(dmw: &Dmw, runs: &[&Run], secret: &str) {
    for r in runs {
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "{secret} leaked: {r:?}"
        );
    }
    assert_eq!(
        files_containing(&dmw.storage, secret),
        Vec::<PathBuf>::new(),
        "{secret} reached the store"
    );
}

/// Before: `file` was no ask and nothing looked at the flags' defaults: by path the
/// driver stopped only for its `http` ask (without naming a file), and once approved the
/// host read the defaults — the victim file, dmw's whole environment
/// (`/proc/self/environ`) and, relative to the working directory, `.dmw/certs/ca-key.pem`
/// — and handed them to the driver, which sent them to its own default host (checked
/// against f6bd0e5: create succeeded, the victim file reached the store, the local server
/// got the request). Now: by path it stops at the file asks;
/// `plugin install` refuses it naming the defaulted flag; and with an approval recorded by
/// an earlier dmw, create refuses it at load naming the flag: no default is ever read and
/// the local server gets no request.
#[test]
fn file_flag_defaults_are_never_read() {
    let dmw = Dmw::new();
    let server = recording_server();
    let wasm = patched(&dmw, DEFAULTS, "defaults.wasm", &server);
    let path = wasm.display().to_string();
    let tag = format!("{}-{:?}", std::process::id(), Instant::now());
    let victim_secret = format!("VICTIM-{tag}");
    let env_secret = format!("ENV-SECRET-{tag}");
    let ca_secret = format!("CA-KEY-{tag}");
    std::fs::create_dir_all(Path::new(VICTIM).parent().expect("dir")).expect("victim dir");
    std::fs::write(VICTIM, &victim_secret).expect("victim");
    // The working directory holds `.dmw/certs/ca-key.pem`, as `$HOME` does with the
    // default store.
    let home = dmw.storage.with_file_name("home");
    std::fs::create_dir_all(home.join(".dmw/certs")).expect("home");
    std::fs::write(home.join(".dmw/certs/ca-key.pem"), &ca_secret).expect("ca key");
    let env = [("HOSTILE_FILES_TEST_SECRET", env_secret.as_str())];
    let limit = Duration::from_secs(60);

    // 1. By path, nothing typed: it stops before it runs, naming each file ask.
    let by_path = run_within(&dmw, &["create", "-d", &path, "d1"], &home, &env, limit);
    assert_ne!(by_path.code, 0, "{by_path:?}");
    for flag in [
        "hostile-files-environ",
        "hostile-files-victim",
        "hostile-files-ca-key",
    ] {
        assert!(
            by_path
                .stderr
                .contains(&format!("reads a local file you name in --{flag}")),
            "{by_path:?}"
        );
    }

    // 2. `plugin install` refuses it, naming the flag and its default.
    let install = run_within(
        &dmw,
        &["plugin", "install", "--yes", &path],
        &home,
        &env,
        limit,
    );
    assert_ne!(install.code, 0, "{install:?}");
    assert!(
        install.stderr.contains("--hostile-files-environ")
            && install.stderr.contains("/proc/self/environ")
            && install.stderr.contains("may have no default"),
        "{install:?}"
    );
    assert!(!dmw.ok(&["plugin", "ls"]).contains("hostile-files"));

    // 3. An approval recorded by an earlier dmw: create refuses it at load.
    let json: serde_json::Value =
        serde_json::from_str(&dmw.ok(&["plugin", "inspect", "-o", "json", &path])).expect("json");
    assert!(
        json["usable"]["Err"]
            .as_str()
            .is_some_and(|why| why.contains("--hostile-files-environ")),
        "inspect says it is not usable: {json}"
    );
    let grants = serde_json::json!({"plugins": [{
        "name": json["name"],
        "kind": json["kind"],
        "path": json["source"],
        "sha256": json["sha256"],
        "declaration": json["declaration"],
    }]});
    std::fs::create_dir_all(dmw.storage.join("plugins")).expect("plugins dir");
    std::fs::write(
        dmw.storage.join("plugins/grants.json"),
        serde_json::to_vec(&grants).expect("grants"),
    )
    .expect("write grants");
    let approved = run_within(&dmw, &["create", "-d", &path, "d2"], &home, &env, limit);
    assert_ne!(approved.code, 0, "{approved:?}");
    assert!(
        approved.stderr.contains("\"d2\"")
            && approved.stderr.contains("load driver")
            && approved.stderr.contains("--hostile-files-environ")
            && approved.stderr.contains("--hostile-files-victim")
            && approved.stderr.contains("--hostile-files-ca-key"),
        "{approved:?}"
    );

    // The defaults were never read, and nothing went to the plugin's host.
    for secret in [&victim_secret, &env_secret, &ca_secret] {
        nowhere(&dmw, &[&by_path, &install, &approved], secret);
    }
    assert_eq!(
        server.requests().len(),
        0,
        "the plugin's host got a request"
    );
}

/// Before (f6bd0e5): `file` was no ask (by path the driver stopped for `http` only, naming
/// no file, which fails step 1 here); once approved, the host read any
/// path with `std::fs::read` after a `metadata().len()` check (a FIFO hung create, /dev/zero
/// grew dmw's memory without end, /proc passed as 0 bytes, dmw's own CA key was read), and
/// the `{hostile-files-mirror-url}` host resolved from the plugin's default, so the driver
/// reached the local server with nothing typed. Now: by path it stops at the file ask; once
/// approved, a FIFO, /dev/zero, /proc and a path inside the store (directly or through a
/// symlink) are refused at once with the flag named; a normal file reaches the driver; and
/// the untyped `{flag}` default allows no host (the server gets no request) while a typed
/// URL does.
#[test]
fn file_flags_are_an_ask_and_read_only_typed_regular_files_outside_the_store() {
    let dmw = Dmw::new();
    let server = recording_server();
    let wasm = patched(&dmw, FILES, "files.wasm", &server);
    let path = wasm.display().to_string();
    let tmp = dmw.storage.with_file_name("files");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let marker = format!("#cloud-config user data {}", std::process::id());
    let userdata = tmp.join("user-data.yaml");
    std::fs::write(&userdata, &marker).expect("user data");
    let ud = userdata.display().to_string();
    let limit = Duration::from_secs(60);
    let quick = Duration::from_secs(20);
    let create = |name: &str, extra: &[&str], limit: Duration| {
        let mut args = vec!["create", "-d", &path, "--hostile-files-userdata"];
        args.extend_from_slice(extra);
        args.push(name);
        run_within(&dmw, &args, &tmp, &[], limit)
    };

    // 1. By path, unapproved: stops, naming the file ask; nothing is read.
    let by_path = create("f1", &[&ud], limit);
    assert_ne!(by_path.code, 0, "{by_path:?}");
    assert!(
        by_path
            .stderr
            .contains("reads a local file you name in --hostile-files-userdata")
            && by_path
                .stderr
                .contains(&format!("dmw plugin install {path}")),
        "{by_path:?}"
    );
    nowhere(&dmw, &[&by_path], &marker);

    // 2. Inspect shows the ask, the `{flag}` pattern and its unused default.
    let text = dmw.ok(&["plugin", "inspect", &path]);
    let port = server.url.rsplit(':').next().expect("port");
    let mirror_default = format!("http://127.0.0.1:{port:0>5}/hostile-mirror");
    assert!(
        text.contains("reads a local file you name in --hostile-files-userdata")
            && text.contains(
                "{hostile-files-mirror-url} (the host of a URL you type in --hostile-files-mirror-url; the driver's default"
            )
            && text.contains("is not used for the allow-list"),
        "{text}"
    );
    assert!(text.contains(&mirror_default), "{text}");
    dmw.ok(&["plugin", "install", "--yes", &path]);

    // 3. A normal file and a typed mirror URL: the driver gets the contents and sends them
    //    to the host the user named.
    let typed_url = format!("{}/typed", server.url);
    let ok = create(
        "f3",
        &[&ud, "--hostile-files-mirror-url", &typed_url],
        limit,
    );
    assert_eq!(ok.code, 0, "{ok:?}");
    let got = server.requests();
    assert_eq!(got.len(), 1, "one request, to the typed URL");
    assert_eq!(got[0].0.path, "/typed");
    assert!(
        got[0].0.text().contains(&marker),
        "the contents reached the driver"
    );

    // 4. No mirror URL typed: the plugin's default allows no host; no request is made.
    let untyped = create("f4", &[&ud], limit);
    assert_ne!(untyped.code, 0, "{untyped:?}");
    assert!(
        untyped.stderr.contains("127.0.0.1")
            && untyped.stderr.contains("denied")
            && untyped
                .stdout
                .contains("--hostile-files-mirror-url has only the driver's default"),
        "{untyped:?}"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "no request beyond the typed one"
    );

    // 5. Files that are not the user's regular files: refused at once, naming the flag.
    let fifo = tmp.join("fifo");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(st.success());
    // The CA key now exists (step 3 made the store's CA); also reached through a symlink.
    let ca_key = dmw.storage.join("certs/ca-key.pem");
    assert!(ca_key.is_file(), "the store has its CA key");
    let link = tmp.join("innocent.pem");
    std::os::unix::fs::symlink(&ca_key, &link).expect("symlink");
    let ca_text = std::fs::read_to_string(&ca_key).expect("ca key");
    let ca_line = ca_text
        .lines()
        .find(|l| !l.starts_with("-----") && l.len() > 20)
        .expect("a line of the key")
        .to_string();
    for (i, (file, want)) in [
        (fifo.display().to_string(), "FIFO"),
        ("/dev/zero".to_string(), "character device"),
        ("/proc/self/environ".to_string(), "proc"),
        (ca_key.display().to_string(), "inside dmw's store"),
        (link.display().to_string(), "inside dmw's store"),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("r{i}");
        let started = Instant::now();
        let r = create(&name, &[&file], quick);
        assert_ne!(r.code, 0, "{file}: {r:?}");
        assert!(
            r.stderr.contains(&format!("\"{name}\""))
                && r.stderr.contains("read driver flags")
                && r.stderr
                    .contains(&format!("--hostile-files-userdata {file}"))
                && r.stderr.contains(want),
            "{file}: {r:?}"
        );
        assert!(started.elapsed() < quick, "{file} refused at once");
        assert!(!dmw.machine_dir(&name).exists(), "nothing kept for {file}");
        assert!(
            !r.stdout.contains(&ca_line) && !r.stderr.contains(&ca_line),
            "{r:?}"
        );
    }
    assert_eq!(server.requests().len(), 1, "no further request");
}
