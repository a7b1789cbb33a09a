//! Drop-in for docker-machine scripts (issue 26): run through a link named `docker-machine`
//! (or with `DMW_COMPAT=docker-machine`), dmw prints Docker Machine 0.16.2's texts, and under
//! either name the exit codes and behaviour are Docker Machine's. The expected texts are
//! Docker Machine's own, from its source (`commands/create.go`, `commands/rm.go`,
//! `libmachine/mcnerror/errors.go`, `drivers/none/driver.go`, see
//! shared/reference/docker-machine.md). No root, no hosts: the `none` driver only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{Run, dmw_bin};

/// A directory with `docker-machine -> dmw`, and a store.
struct Linked {
    dir: tempfile::TempDir,
}

impl Linked {
    fn new() -> Linked {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("bin")).expect("bin dir");
        std::os::unix::fs::symlink(dmw_bin(), dir.path().join("bin/docker-machine"))
            .expect("link docker-machine");
        Linked { dir }
    }

    fn link(&self) -> PathBuf {
        self.dir.path().join("bin/docker-machine")
    }

    fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn store(&self, which: &str) -> PathBuf {
        self.dir.path().join(format!("store {which}"))
    }
}

/// Run `program -s STORE ARGS` with `input` on stdin and `env` set.
fn run(program: &Path, store: &Path, args: &[&str], input: &str, env: &[(&str, &str)]) -> Run {
    use std::io::Write;
    let mut c = Command::new(program);
    c.arg("-s")
        .arg(store)
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove(dmw::text::personality::COMPAT_ENV)
        .env("SHELL", "/bin/bash")
        .env("DOCKER_CONFIG", store.with_extension("docker"))
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    child.wait_with_output().expect("wait").into()
}

/// One failing (or declined) command: its exit code and stderr under each name.
struct Case {
    args: &'static [&'static str],
    input: &'static str,
    code: i32,
    /// Docker Machine's exact stderr line (`{}` = the invoked name where DM printed it).
    docker_machine: &'static str,
    /// dmw's text: stderr starts with it.
    dmw: &'static str,
}

const CASES: &[Case] = &[
    Case {
        args: &["create", "-d", "none", "--url", "none", "a_b"],
        input: "",
        code: 1,
        docker_machine: "Error creating machine: Invalid hostname specified. Allowed hostname chars are: 0-9a-zA-Z . -",
        dmw: "Error creating machine \"a_b\": validate name failed: Invalid hostname specified.",
    },
    Case {
        args: &["create", "-d", "none", "--url", "none", "ab"],
        input: "",
        code: 1,
        docker_machine: "Docker machine \"ab\" already exists",
        dmw: "Error creating machine \"ab\": check name failed: Docker machine \"ab\" already exists",
    },
    Case {
        args: &["create", "-d", "nope", "x"],
        input: "",
        code: 1,
        docker_machine: "Driver \"nope\" not found. Do you have the plugin binary \"docker-machine-driver-nope\" accessible in your PATH?",
        dmw: "Error creating machine \"x\": load driver failed: driver \"nope\" not found: built-in drivers are ",
    },
    Case {
        args: &["create", "-d", "none", "--url", "none", "x", "extra"],
        input: "",
        code: 1,
        docker_machine: "Invalid command line. Found extra arguments [extra]",
        dmw: "Invalid command line: found extra arguments [extra]; create takes one machine name",
    },
    Case {
        args: &["rm", "-y", "zz"],
        input: "",
        code: 1,
        docker_machine: "Error removing host \"zz\": Docker machine \"zz\" does not exist. Use \"{} ls\" to list machines. Use \"{} create\" to add a new one.",
        dmw: "Error removing host \"zz\": Docker machine \"zz\" does not exist. Use \"dmw ls\" to list machines. Use \"dmw create\" to add a new one.",
    },
    Case {
        args: &["rm", "-y"],
        input: "",
        code: 1,
        docker_machine: "Error: Expected to get one or more machine names as arguments",
        dmw: "Error: Expected to get one or more machine names as arguments",
    },
    Case {
        args: &["rm", "ab"],
        input: "n\n",
        code: 0,
        docker_machine: "",
        dmw: "Aborted: nothing was removed",
    },
];

/// Golden error texts and exit codes under both names (and `DMW_COMPAT` under `dmw`).
///
/// Before: every Docker Machine text here but the `rm -y` one differed (dmw's own words
/// under any name, `rm -y zz` said `zz does not exist.`, `create NAME extra` was clap's
/// "unexpected argument"), a declined `rm` exited 1, and `rm -y` showed no help.
#[test]
fn compat_error_texts_under_both_names() {
    let l = Linked::new();
    let dmw_bin = PathBuf::from(dmw_bin());
    let compat_env: &[(&str, &str)] = &[(dmw::text::personality::COMPAT_ENV, "docker-machine")];
    for (program, store, env, dm) in [
        (l.link(), l.store("link"), &[][..], true),
        (dmw_bin.clone(), l.store("env"), compat_env, true),
        (dmw_bin.clone(), l.store("dmw"), &[][..], false),
    ] {
        let name = if dm { "docker-machine" } else { "dmw" };
        let made = run(
            &program,
            &store,
            &["create", "-d", "none", "--url", "none", "ab"],
            "",
            env,
        );
        assert_eq!(made.code, 0, "{made:?}");
        for case in CASES {
            let r = run(&program, &store, case.args, case.input, env);
            let what = format!("{name} {:?} (env {env:?}): {r:?}", case.args);
            assert_eq!(r.code, case.code, "{what}");
            if dm {
                let expected = case.docker_machine.replace("{}", name);
                assert_eq!(r.stderr.trim_end_matches('\n'), expected, "{what}");
            } else {
                assert!(r.stderr.starts_with(case.dmw), "{what}");
            }
        }
        // `rm -y` without a name shows rm's help first, under the invoked name.
        let r = run(&program, &store, &["rm", "-y"], "", env);
        assert!(
            r.stdout.contains(&format!("Usage: {name} rm")),
            "{name}: {r:?}"
        );
        // A declined rm printed the prompt only, and removed nothing.
        let r = run(&program, &store, &["rm", "ab"], "n\n", env);
        assert_eq!(
            r.stdout,
            "About to remove ab\nWARNING: This action will delete both local reference and remote instance.\nAre you sure? (y/n): "
        );
        assert!(store.join("machines/ab/config.json").exists());
        // `create -h`: the command's own title (it was the swarm flags' doc), usage named
        // as invoked.
        let r = run(&program, &store, &["create", "-h"], "", env);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.stdout.contains("Create a machine"),
            "{name}: {}",
            r.stdout
        );
        assert!(!r.stdout.contains("flags of `create`"), "{}", r.stdout);
        assert!(
            r.stdout.contains(&format!("Usage: {name} create")),
            "{name}: {}",
            r.stdout
        );
    }
}

/// A docker-machine-era script run through a `docker-machine` link: every line and exit
/// status is what Docker Machine 0.16.2 printed for it (none machines: always Running, `ip`
/// = the URL's host:port, any URL recorded).
///
/// Before: `create --url none` failed, `web1` was `Stopped` (nothing listens on 2999) so
/// the state filter lost it, `ip web1` printed `127.0.0.1`, the create lines were dmw's, and
/// the declined `rm` exited 1.
#[test]
fn compat_docker_machine_era_script() {
    let l = Linked::new();
    let store = l.store("script");
    let script = r#"
dm() { docker-machine -s "$S" "$@"; }
dm create -d none --url tcp://127.0.0.1:2999 web1; echo "rc=$?"
dm create -d none --url none ext; echo "rc=$?"
dm create -d none --url tcp://127.0.0.1:2999 web1; echo "rc=$?"
dm ls -q --filter state=Running; echo "rc=$?"
dm ls --filter driver=none --format '{{.Name}} {{.DriverName}} {{.State}} {{.URL}}'; echo "rc=$?"
dm ls -q --filter name=^web; echo "rc=$?"
dm inspect --format '{{.DriverName}} {{.Driver.URL}} {{.Driver.IPAddress}}' web1; echo "rc=$?"
dm ip web1; echo "rc=$?"
dm ip ext; echo "rc=$?"
dm url web1; echo "rc=$?"
dm url ext; echo "rc=$?"
dm status ext; echo "rc=$?"
dm env -u; echo "rc=$?"
dm env web1 >/dev/null 2>&1; echo "rc=$?"
echo n | dm rm web1; echo "rc=$?"
dm rm -y web1 ext; echo "rc=$?"
dm rm -y web1 2>/dev/null; echo "rc=$?"
dm ls -q; echo "rc=$?"
"#;
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("S", &store)
        .env(
            "PATH",
            format!(
                "{}:{}",
                l.bin_dir().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env_remove("DOCKER_HOST")
        .env_remove(dmw::text::personality::COMPAT_ENV)
        .env("SHELL", "/bin/bash")
        .env("DOCKER_CONFIG", store.with_extension("docker"))
        .env("NO_PROXY", "")
        .env("no_proxy", "")
        .output()
        .expect("bash");
    let run: Run = out.into();
    let s = store.display().to_string();
    let expected = format!(
        "Creating CA: {s}/certs/ca.pem
Creating client certificate: {s}/certs/cert.pem
Running pre-create checks...
Creating machine...
To see how to connect your Docker Client to the Docker Engine running on this virtual machine, run: docker-machine env web1
rc=0
Running pre-create checks...
Creating machine...
To see how to connect your Docker Client to the Docker Engine running on this virtual machine, run: docker-machine env ext
rc=0
rc=1
ext
web1
rc=0
ext none Running none
web1 none Running tcp://127.0.0.1:2999
rc=0
web1
rc=0
none tcp://127.0.0.1:2999 127.0.0.1:2999
rc=0
127.0.0.1:2999
rc=0

rc=0
tcp://127.0.0.1:2999
rc=0
none
rc=0
Running
rc=0
unset DOCKER_TLS_VERIFY
unset DOCKER_HOST
unset DOCKER_CERT_PATH
unset DOCKER_MACHINE_NAME
# Run this command to configure your shell: 
# eval $(docker-machine -s {s} env -u)
rc=0
rc=1
About to remove web1
WARNING: This action will delete both local reference and remote instance.
Are you sure? (y/n): rc=0
About to remove web1, ext
WARNING: This action will delete both local reference and remote instance.
Successfully removed web1
Successfully removed ext
rc=0
About to remove web1
WARNING: This action will delete both local reference and remote instance.
rc=1
rc=0
"
    );
    assert_eq!(run.stdout, expected, "stderr:\n{}", run.stderr);
    assert_eq!(
        run.stderr, "Docker machine \"web1\" already exists\n",
        "stdout:\n{}",
        run.stdout
    );
}

/// The help layout of the top level and of every command, under both names: as
/// `docker-machine`, urfave/cli's (`Usage: docker-machine CMD [OPTIONS] [arg...]`, a blank
/// line, then the description); as `dmw`, clap's (the description first), with the same
/// description.
///
/// Before: the description came first under both names and the usage line said `dmw`;
/// the option lines were clap's (`-d, --driver <DRIVER>`).
#[test]
fn compat_help_layout_under_both_names() {
    let l = Linked::new();
    let store = l.store("help");
    let dmw_bin = PathBuf::from(dmw_bin());
    let top = run(&l.link(), &store, &["--help"], "", &[]);
    assert_eq!(top.code, 0, "{top:?}");
    let lines: Vec<&str> = top.stdout.lines().collect();
    assert_eq!(lines[0], "Usage: docker-machine [OPTIONS] COMMAND [arg...]");
    assert_eq!(lines[1], "");
    assert!(lines[4].starts_with("Version: "), "{}", top.stdout);
    // urfave/cli's flag lines, two spaces in, laid out with tabs; the options and the
    // commands each end with a line of two spaces.
    assert!(
        top.stdout
            .contains("\n  --storage-path, -s \tConfigures storage path [$DMW_STORAGE_PATH]\n"),
        "{}",
        top.stdout
    );
    assert!(
        top.stdout
            .contains("\n  --help, -h\t\tshow help\n  \nCommands:\n  active\t\t")
    );
    assert!(
        top.stdout
            .contains("  create\t\tCreate a machine (run `docker-machine create --driver"),
        "hints name the invoked program: {}",
        top.stdout
    );
    assert!(
        top.stdout
            .ends_with("Run 'docker-machine COMMAND --help' for more information on a command.\n"),
        "{}",
        top.stdout
    );
    // The commands, from the `Commands:` section.
    let commands: Vec<&str> = lines
        .iter()
        .skip_while(|l| **l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(
        commands.contains(&"create") && commands.contains(&"rm"),
        "{commands:?}"
    );
    for command in commands {
        let dm = run(&l.link(), &store, &[command, "--help"], "", &[]);
        let ours = run(&dmw_bin, &store, &[command, "--help"], "", &[]);
        assert_eq!((dm.code, ours.code), (0, 0), "{command}: {dm:?} {ours:?}");
        let dm_lines: Vec<&str> = dm.stdout.lines().collect();
        // `[OPTIONS]` only for a command with flags, as Docker Machine's template.
        let options = if dm_lines.contains(&"Options:") {
            " [OPTIONS]"
        } else {
            ""
        };
        assert_eq!(
            dm_lines[0],
            format!("Usage: docker-machine {command}{options} [arg...]"),
            "{command}"
        );
        assert_eq!(dm_lines[1], "", "{command}");
        let about = ours.stdout.lines().next().unwrap_or_default();
        assert!(!about.is_empty(), "{command}: {}", ours.stdout);
        assert_eq!(dm_lines[2], about, "{command}: the same description");
        assert!(
            ours.stdout.contains(&format!("Usage: dmw {command}")),
            "{command}: {}",
            ours.stdout
        );
    }
    // A command's options as urfave/cli printed them: Docker Machine 0.16.2's `ls --help`
    // but for dmw's own words (the layout, the flag forms and the tab stops are its).
    let ls = run(&l.link(), &store, &["ls", "--help"], "", &[]);
    assert_eq!(
        ls.stdout,
        concat!(
            "Usage: docker-machine ls [OPTIONS] [arg...]\n",
            "\n",
            "List machines\n",
            "\n",
            "Options:\n",
            "   \n",
            "   --quiet, -q\t\t\t\t\tEnable quiet mode (print only machine names)\n",
            "   --filter [--filter option --filter option]\tFilter output based on conditions provided (driver, state, name, swarm, label=KEY=VALUE)\n",
            "   --timeout, -t \"10\"\t\t\t\tTimeout in seconds for each machine's query\n",
            "   --format, -f \t\t\t\tPretty-print machines using a Go template (`table ...` adds a header; `json` = JSON)\n",
            "   --output, -o \"text\"\t\t\t\tOutput format\n",
        )
    );
    // create's flags sorted by name, the driver's among the shared ones, as Docker Machine.
    let create = run(
        &l.link(),
        &store,
        &["create", "-d", "none", "--help"],
        "",
        &[],
    );
    let flags: Vec<String> = create
        .stdout
        .lines()
        .skip_while(|l| *l != "Options:")
        .skip(2)
        .filter_map(|l| l.trim_start().split([' ', '\t']).next().map(str::to_string))
        .collect();
    let mut sorted = flags.clone();
    sorted.sort();
    assert!(flags.contains(&"--url".to_string()), "{}", create.stdout);
    assert_eq!(flags, sorted, "{}", create.stdout);
    // An unknown command: Docker Machine's sentence under its name, exit 1 under both.
    let r = run(&l.link(), &store, &["foo"], "", &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr,
        "docker-machine: 'foo' is not a docker-machine command. See 'docker-machine --help'.\n"
    );
    assert_eq!(run(&dmw_bin, &store, &["foo"], "", &[]).code, 1);
    let v = run(&l.link(), &store, &["--version"], "", &[]);
    assert!(v.stdout.starts_with("docker-machine version "), "{v:?}");
}
