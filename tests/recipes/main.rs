//! Recipe tests without a host: every transcript in `transcripts/` runs the real recipe
//! components against a simulated machine, and every file in `os-release/` must map to
//! the recipe `os-release/EXPECTED` names. See README.md beside this file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dmw::app::App;
use dmw::sandbox::plugin::Source;
use dmw::state::store::Store;
use dmw::text::report::Reporter;
use dmw::usecase::provision::{choose_recipe, os_release};
use dmw::usecase::simulate::{self, Transcript};

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/recipes")
}

fn app() -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = App::new(Store::new(dir.path()), false);
    (dir, app)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
}

#[test]
fn transcripts() {
    let filter = std::env::var("TRANSCRIPT").unwrap_or_default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(here().join("transcripts"))
        .expect("tests/recipes/transcripts")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "transcript"))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(filter.as_str()))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcript matches {filter:?}");
    let (_dir, app) = app();
    let rt = runtime();
    let report = Arc::new(Reporter::quiet(false));
    let mut failures = Vec::new();
    for file in &files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(file).expect("read transcript");
        let t = match Transcript::parse(&text) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{name}: {e:#}"));
                continue;
            }
        };
        if t.expect.is_empty() {
            failures.push(format!("{name}: has no `expect` line, so it cannot fail"));
            continue;
        }
        match rt.block_on(simulate::run(&app, &t, report.clone())) {
            Err(e) => failures.push(format!("{name}: {e:#}")),
            Ok(o) => {
                let problems = simulate::check(&t, &o);
                if !problems.is_empty() {
                    failures.push(format!(
                        "{name} (recipe {}):\n  - {}\n  result: {:?}\n  what ran:\n{}",
                        o.recipe,
                        problems.join("\n  - "),
                        o.result,
                        simulate::render(&o)
                            .lines()
                            .map(|l| format!("    {l}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} transcripts failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
    eprintln!("{} transcripts passed", files.len());
}

#[test]
fn detection_table() {
    let dir = here().join("os-release");
    let table = std::fs::read_to_string(dir.join("EXPECTED")).expect("os-release/EXPECTED");
    let (_tmp, app) = app();
    let rt = runtime();
    let report = Arc::new(Reporter::quiet(false));
    let mut rows = 0;
    let mut wrong = Vec::new();
    for line in table
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let Some((file, expected)) = line.split_once(char::is_whitespace) else {
            panic!("bad EXPECTED line {line:?}");
        };
        rows += 1;
        let text =
            std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let detection = if file.ends_with(".release") {
            format!("#dmw-release-file /etc/{file}\n{text}")
        } else {
            text
        };
        let os = os_release::parse_detection(&detection);
        let pick = |_: ()| {
            rt.block_on(choose_recipe(&app, &os, None::<&Source>, report.clone()))
                .map(|(_, name)| name)
        };
        match (pick(()), pick(())) {
            (Ok(a), Ok(b)) if a != b => {
                wrong.push(format!("{file}: not deterministic ({a} then {b})"))
            }
            (Ok(a), _) if a != expected.trim() => {
                wrong.push(format!("{file}: chose {a}, expected {}", expected.trim()))
            }
            (Err(e), _) => wrong.push(format!(
                "{file}: no recipe ({e:#}), expected {}",
                expected.trim()
            )),
            _ => {}
        }
    }
    assert!(
        rows >= 25,
        "the table must cover at least 25 real-world OS files, has {rows}"
    );
    assert!(wrong.is_empty(), "detection table:\n{}", wrong.join("\n"));
}

/// `dmw recipe plan` on every OS of the corpus: the dry run completes (with
/// `--engine-present` for the OSes that ship their engine) and shows the TLS configuration.
#[test]
fn plan_every_os_of_the_corpus() {
    let dir = here().join("os-release");
    let table = std::fs::read_to_string(dir.join("EXPECTED")).expect("os-release/EXPECTED");
    let store = tempfile::tempdir().expect("tempdir");
    let mut failed = Vec::new();
    for line in table
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let Some((file, recipe)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let recipe = recipe.trim();
        // Immutable OSes are probed with recipe-specific commands a lenient plan cannot
        // answer; their transcripts cover them.
        if recipe == "coreos" {
            continue;
        }
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dmw"));
        cmd.arg("-s")
            .arg(store.path())
            .args(["recipe", "plan", "--os-release"])
            .arg(dir.join(file));
        if matches!(recipe, "rancheros" | "boot2docker") {
            cmd.arg("--engine-present");
        }
        let out = cmd.output().expect("run dmw recipe plan");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let header = format!("# recipe {recipe} for ");
        // boot2docker turns TLS on through its profile; every other engine gets the flags.
        let tls = if recipe == "boot2docker" {
            "DOCKER_TLS=auto"
        } else {
            "--tlsverify"
        };
        if !out.status.success() || !stdout.starts_with(&header) || !stdout.contains(tls) {
            failed.push(format!(
                "{file}: exit {:?}\n{stdout}\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "plans that failed:\n{}",
        failed.join("\n---\n")
    );
}

/// A plan runs only the package managers the OS really ships: the simulated machine answers
/// `command -v` from what each family and version has (CentOS 7 and Amazon Linux 2: yum, no
/// dnf; EL 8+: both), so the plan shows the commands that would really run there.
#[test]
fn plans_use_only_the_package_managers_each_os_ships() {
    const MANAGERS: &[&str] = &[
        "apt-get",
        "dnf",
        "yum",
        "amazon-linux-extras",
        "zypper",
        "pacman",
        "apk",
    ];
    let table: &[(&str, &[&str])] = &[
        ("debian-11.os-release", &["apt-get"]),
        ("debian-12.os-release", &["apt-get"]),
        ("ubuntu-20.04.os-release", &["apt-get"]),
        ("ubuntu-24.04.os-release", &["apt-get"]),
        ("linuxmint-21.os-release", &["apt-get"]),
        ("raspbian-11.os-release", &["apt-get"]),
        ("centos-7.os-release", &["yum"]),
        ("amzn-2.os-release", &["yum", "amazon-linux-extras"]),
        ("centos-6.release", &["yum"]),
        ("rhel-8.os-release", &["dnf", "yum"]),
        ("rhel-9.os-release", &["dnf", "yum"]),
        ("centos-stream-9.os-release", &["dnf", "yum"]),
        ("rocky-9.os-release", &["dnf", "yum"]),
        ("almalinux-9.os-release", &["dnf", "yum"]),
        ("oraclelinux-8.os-release", &["dnf", "yum"]),
        ("fedora-40.os-release", &["dnf", "yum"]),
        ("amzn-2023.os-release", &["dnf", "yum"]),
        ("opensuse-leap-15.5.os-release", &["zypper"]),
        ("sles-15.os-release", &["zypper"]),
        ("arch.os-release", &["pacman"]),
        ("manjaro.os-release", &["pacman"]),
        ("alpine-3.19.os-release", &["apk"]),
    ];
    let dir = here().join("os-release");
    let store = tempfile::tempdir().expect("tempdir");
    let mut failed = Vec::new();
    for (file, allowed) in table {
        {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_dmw"))
                .arg("-s")
                .arg(store.path())
                .args(["recipe", "plan", "--os-release"])
                .arg(dir.join(file))
                .output()
                .expect("run dmw recipe plan");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let mut used = std::collections::BTreeSet::new();
            for line in stdout.lines() {
                if line.starts_with("# recipe ") || line.starts_with("# assumed:") {
                    continue;
                }
                let words: Vec<&str> = line
                    .split(|c: char| c.is_whitespace() || ";&|()`\"'".contains(c))
                    .filter(|w| !w.is_empty())
                    .collect();
                for (i, w) in words.iter().enumerate() {
                    let probe = i >= 2 && words[i - 2] == "command" && words[i - 1] == "-v";
                    if MANAGERS.contains(w) && !probe {
                        used.insert(*w);
                    }
                }
            }
            let foreign: Vec<_> = used.iter().filter(|m| !allowed.contains(m)).collect();
            if !out.status.success() || !foreign.is_empty() || used.is_empty() {
                failed.push(format!(
                    "{file}: exit {:?}, ran {used:?}, allowed {allowed:?}\n{stdout}{}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "plans with package managers the OS lacks:\n{}",
        failed.join("\n---\n")
    );
}

/// An OS the table does not know: the plan says which branch it assumed and how to pick the other.
#[test]
fn plans_name_their_assumptions() {
    let store = tempfile::tempdir().expect("tempdir");
    let file = store.path().join("os-release");
    std::fs::write(
        &file,
        "ID=acmeos\nID_LIKE=rhel\nVERSION_ID=\"1\"\nPRETTY_NAME=\"ACME OS 1\"\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dmw"))
        .arg("-s")
        .arg(store.path())
        .args(["recipe", "plan", "--recipe", "rhel", "--os-release"])
        .arg(&file)
        .output()
        .expect("run dmw recipe plan");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "# assumed: `command -v dnf` finds dnf (dmw does not know whether ACME OS 1 ships it)"
        ) && stdout.contains("--transcript FILE"),
        "{stdout}"
    );
}

/// The simulated ACME machine the template recipes are written for (its golden image,
/// engine packages from the mirror given as `--engine-repo-url`).
const ACME_TRANSCRIPT: &str = r#"
os-release:
    ID=acme
    ID_LIKE="rhel fedora"
    VERSION_ID="9"
    PRETTY_NAME="ACME Golden Image 9"
repo-url: http://mirror.test/docker-ce
on command -v dockerd
    unless installed
on command -v dockerd
    stdout /usr/bin/dockerd
on yum install -y docker-ce docker-ce-cli containerd.io
    set installed
on hostname
on daemon.json
    exit 1
on systemctl cat docker.socket
    exit 1
on systemctl daemon-reload
on -tln
    stdout LISTEN 0 4096 *:2376 *:*
    stdout dmw-unit-state active
on firewall-cmd --state
default fail
expect ok
expect upload /etc/yum.repos.d/acme-docker.repo contains baseurl=http://mirror.test/docker-ce/$basearch
expect upload /etc/systemd/system/docker.service.d/10-dmw.conf contains --tlsverify
"#;

/// The template recipe ops teams copy (recipes/template), loaded from its .wasm file as
/// `dmw create --recipe ./acme.wasm` would, on the simulated ACME machine it is written for.
#[test]
fn template_recipe_from_a_file() {
    let t = Transcript::parse(ACME_TRANSCRIPT).expect("transcript");
    let (_dir, app) = app();
    let rt = runtime();
    let report = Arc::new(Reporter::quiet(false));
    // Without --recipe, the built-in rhel recipe claims it through ID_LIKE.
    let detected = rt
        .block_on(simulate::run(&app, &t, report.clone()))
        .expect("run");
    assert_eq!(detected.recipe, "rhel");
    run_acme(&app, &rt, env!("DMW_TEST_TEMPLATE_RECIPE"));
}

/// Run the ACME recipe in file `recipe` on the ACME transcript: it must pass it; returns
/// what it ran, rendered.
fn run_acme(app: &App, rt: &tokio::runtime::Runtime, recipe: &str) -> String {
    let mut t = Transcript::parse(ACME_TRANSCRIPT).expect("transcript");
    t.recipe = Some(recipe.to_string());
    let o = rt
        .block_on(simulate::run(app, &t, Arc::new(Reporter::quiet(false))))
        .expect("run the template");
    assert_eq!(o.recipe, "acme");
    let problems = simulate::check(&t, &o);
    assert!(
        problems.is_empty(),
        "{problems:?}\n{}",
        simulate::render(&o)
    );
    simulate::render(&o)
}

/// The Python template (recipes/template-python: the Rust template rewritten), built with
/// `dmw plugin build` (componentize-py from the venv scripts/setup makes) and loaded from
/// its file, passes the same transcript as the Rust one and runs exactly the same commands
/// and uploads.
#[test]
fn python_template_recipe_passes_the_same_transcript() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let wasm = build_python(
        &here().join("../../recipes/template-python"),
        out_dir.path(),
    );
    let (_dir, app) = app();
    let rt = runtime();
    let python = run_acme(&app, &rt, &wasm.display().to_string());
    let rust = run_acme(&app, &rt, env!("DMW_TEST_TEMPLATE_RECIPE"));
    assert_eq!(
        python, rust,
        "the Python template does what the Rust one does"
    );
}

/// `dmw plugin build` of the Python plugin in `dir` (componentize-py from the venv
/// scripts/setup makes) into `out_dir`; returns the component's path.
fn build_python(dir: &Path, out_dir: &Path) -> PathBuf {
    let name = dir.file_name().expect("a folder name");
    let wasm = out_dir.join(name).with_extension("wasm");
    let built = std::process::Command::new(env!("CARGO_BIN_EXE_dmw"))
        .args(["plugin", "build"])
        .arg(dir)
        .arg("-o")
        .arg(&wasm)
        .env(
            "DMW_COMPONENTIZE_PY",
            dmw_testbed::venv_program("componentize-py"),
        )
        .output()
        .expect("run dmw plugin build");
    assert!(built.status.success(), "{built:?}");
    wasm
}

/// Python plugins are as sandboxed as Rust ones (tests/plugins/python-*): a hostile
/// recipe's file, directory, socket and environment reads are denied, its endless loop is
/// stopped by the compute rule, its hoarding by the memory limit; a driver built importing
/// `keys` asks for it, and once its declaration is emptied it is refused at load.
#[test]
fn python_plugins_are_as_sandboxed_as_rust() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let plugins = here().join("../plugins");
    let hostile = build_python(&plugins.join("python-hostile-recipe"), out_dir.path());
    let (_dir, app) = app();
    let rt = runtime();
    let stops = |step: &str| -> String {
        let text = format!(
            "os-release:\n    ID=debian\n    VERSION_ID=\"12\"\n    PRETTY_NAME=\"Debian 12\"\nsteps: {step}\ndefault fail\n"
        );
        let mut t = Transcript::parse(&text).expect("transcript");
        t.recipe = Some(hostile.display().to_string());
        let o = rt
            .block_on(simulate::run(&app, &t, Arc::new(Reporter::quiet(false))))
            .expect("run");
        o.result.expect_err("the step must fail")
    };
    let said = stops("hostname");
    for denied in [
        "file: denied (",
        "listing: denied (",
        "socket: denied (",
        "environment: denied (",
    ] {
        assert!(said.contains(denied), "{denied:?} not in:\n{said}");
    }
    assert!(!said.contains("LEAKED"), "{said}");
    let said = stops("install");
    assert!(
        said.contains("plugin py-hostile failed in install-engine: plugin computed for more than 10s without calling the host"),
        "{said}"
    );
    let said = stops("configure");
    assert!(
        said.contains("plugin py-hostile ran out of memory in configure-engine")
            && said.contains("at most 128 MiB"),
        "{said}"
    );

    // Built importing `keys` (declared), then its declaration emptied: it imports a
    // capability it does not declare.
    let built = build_python(&plugins.join("python-undeclared-driver"), out_dir.path());
    let store = tempfile::tempdir().expect("store");
    let dmw = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dmw"))
            .arg("-s")
            .arg(store.path())
            .args(args)
            .output()
            .expect("dmw");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let asks = dmw(&["plugin".as_ref(), "inspect".as_ref(), built.as_os_str()]);
    assert!(asks.contains("asks for:    capability keys"), "{asks}");
    let nothing = out_dir.path().join("nothing.toml");
    std::fs::write(&nothing, "").expect("empty permissions");
    let undeclared = out_dir.path().join("undeclared.wasm");
    dmw(&[
        "plugin".as_ref(),
        "declare".as_ref(),
        nothing.as_os_str(),
        built.as_os_str(),
        "-o".as_ref(),
        undeclared.as_os_str(),
    ]);
    let text = dmw(&[
        "plugin".as_ref(),
        "inspect".as_ref(),
        undeclared.as_os_str(),
    ]);
    assert!(
        text.contains(
            "usable here: no: it imports dmw:plugin/keys but does not declare the capability keys"
        ),
        "{text}"
    );
}

/// `dmw plugin new driver NAME` writes a plugin that builds as it is and carries its name in
/// its flags and environment variables, as the host's flag rules require.
#[test]
fn a_new_python_driver_builds_and_follows_the_flag_rules() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let folder = out_dir.path().join("my-cloud");
    let dmw = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dmw"))
            .arg("-s")
            .arg(out_dir.path().join("store"))
            .args(args)
            .output()
            .expect("dmw");
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    dmw(&[
        "plugin".as_ref(),
        "new".as_ref(),
        "driver".as_ref(),
        "my-cloud".as_ref(),
        "-o".as_ref(),
        folder.as_os_str(),
    ]);
    let wasm = build_python(&folder, out_dir.path());
    let inspect = dmw(&["plugin".as_ref(), "inspect".as_ref(), wasm.as_os_str()]);
    assert!(
        inspect.contains("kind:        driver \"my-cloud\"")
            && inspect.contains("reads MY_CLOUD_HOST, MY_CLOUD_SSH_USER")
            && inspect.contains("flags:       --my-cloud-host --my-cloud-ssh-user")
            && inspect.contains("usable here: yes"),
        "{inspect}"
    );
}
