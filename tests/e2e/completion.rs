//! `dmw completion`: the generated scripts load in real shells; bash completes flags and,
//! at machine-name positions, the names of the store's machines; `__dmw_ps1` prints the
//! active machine. Machines are `--driver none` records (no host needed).

use std::path::Path;
use std::process::Command;

use crate::support::{Dmw, Run, dmw_bin, shell_quote};

/// Run a bash script with dmw on PATH and the test store as the default store.
fn bash(dmw: &Dmw, script: &str) -> Run {
    let bin_dir = Path::new(dmw_bin()).parent().expect("bin dir");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("PATH", path)
        .env("DMW_STORAGE_PATH", &dmw.storage)
        .env_remove("DOCKER_MACHINE_NAME")
        .output()
        .expect("bash")
        .into()
}

/// Bash code that fills COMP_WORDS/COMP_CWORD from its arguments, runs the registered
/// completion function as bash would, and prints the candidates on one line.
const DRIVE: &str = r#"
source <(dmw completion bash) || exit 9
comp() {
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
    local fn; fn=$(complete -p dmw | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
    "$fn" dmw "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    echo "${COMPREPLY[*]}"
}
"#;

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[test]
fn completion_scripts_and_prompt_helper() {
    let dmw = Dmw::new();
    for name in ["alpha", "beta2"] {
        dmw.ok(&[
            "create",
            "--driver",
            "none",
            "--url",
            "tcp://127.0.0.1:9",
            name,
        ]);
    }
    let store = shell_quote(&dmw.storage.display().to_string());
    let script = format!(
        r#"{DRIVE}
complete -p dmw
comp dmw ls --
comp dmw ip ''
comp dmw ip alpha ''
comp dmw -s {store} rm -y b
comp dmw env alpha ''
comp dmw co
"#
    );
    let r = bash(&dmw, &script);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 7, "{r:?}");
    assert!(
        lines[0].starts_with("complete ")
            && lines[0].contains("-F _dmw_machines")
            && lines[0].ends_with(" dmw"),
        "{r:?}"
    );
    let flags = words(lines[1]);
    for f in [
        "--quiet",
        "--timeout",
        "--filter",
        "--format",
        "--output",
        "--help",
        "--storage-path",
    ] {
        assert!(flags.contains(&f), "`dmw ls --` lacks {f}: {r:?}");
    }
    assert_eq!(words(lines[2]), ["alpha", "beta2"], "`dmw ip `: {r:?}");
    assert_eq!(
        words(lines[3]),
        ["alpha", "beta2"],
        "ip takes many names: {r:?}"
    );
    assert_eq!(words(lines[4]), ["beta2"], "`-s STORE rm -y b`: {r:?}");
    let env_next = words(lines[5]);
    assert!(
        !env_next.contains(&"alpha") && env_next.contains(&"--shell"),
        "env takes one name, then flags: {r:?}"
    );
    assert_eq!(words(lines[6]), ["completion", "config"], "{r:?}");

    // __dmw_ps1: the machine of $DOCKER_MACHINE_NAME through the format; the exit status kept.
    let r = bash(
        &dmw,
        r#"source <(dmw completion bash)
printf '<%s>\n' "$(__dmw_ps1)"
DOCKER_MACHINE_NAME=alpha; printf '<%s>\n' "$(__dmw_ps1)"
printf '<%s>\n' "$(__dmw_ps1 '(%s)')"
printf '<%s>\n' "$(DMW_PS1_SHOWSTATUS=true __dmw_ps1 '(%s)')"
(exit 3); __dmw_ps1 >/dev/null; echo "rc=$?"
"#,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout, "<>\n< [alpha]>\n<(alpha)>\n<(alpha R)>\nrc=3\n",
        "a none machine is Running as in Docker Machine, even at a closed port: {r:?}"
    );

    // zsh and fish scripts parse (CI installs both through scripts/setup).
    for (shell, check) in [("zsh", "-n"), ("fish", "-n")] {
        if Command::new(shell).arg("-c").arg("true").output().is_err() {
            // CI never skips silently: scripts/setup installs both shells there.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{shell} is not installed: run scripts/setup"
            );
            eprintln!("{shell} is not installed: its syntax check is skipped");
            continue;
        }
        let file = dmw.storage.with_file_name(format!("dmw.{shell}"));
        std::fs::write(&file, dmw.ok(&["completion", shell])).expect("write script");
        let out = Command::new(shell)
            .arg(check)
            .arg(&file)
            .output()
            .expect(shell);
        assert!(
            out.status.success(),
            "{shell} {check}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ps = dmw.ok(&["completion", "powershell"]);
    assert!(ps.contains("Register-ArgumentCompleter"), "{ps}");
    let r = dmw.run(&["completion", "tcsh"]);
    assert_ne!(r.code, 0);
}
