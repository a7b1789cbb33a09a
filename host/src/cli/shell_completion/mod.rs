//! Shell completion scripts, generated from the clap definition of the command line with
//! `clap_complete`, plus what a static script cannot know: machine names. Positions that
//! take a machine name (a positional argument called `name` or `names`) complete with the
//! output of `dmw ls -q` at completion time (bash: on the same storage path, `-s`, as the
//! command line being completed). The bash and zsh scripts also define `__dmw_ps1`, the
//! prompt helper (Docker Machine's `__docker_machine_ps1`).

use std::fmt::Write as _;

use clap::Command;
use clap_complete::Shell;

/// The shells `dmw completion` writes a script for.
pub const SHELLS: &[&str] = &["bash", "zsh", "fish", "powershell"];

/// How a subcommand takes machine names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineArgs {
    /// Subcommand name, e.g. `ip`.
    pub command: String,
    /// Whether it takes many names (`names`) or one (`name`, completed in first position only).
    pub many: bool,
    /// Its options that take a value (so the word after them is not a positional).
    pub value_options: Vec<String>,
}

/// The subcommands whose positional arguments are machine names.
pub fn machine_args(cmd: &Command) -> Vec<MachineArgs> {
    let mut out = Vec::new();
    for sub in cmd.get_subcommands() {
        let Some(pos) = sub
            .get_positionals()
            .find(|a| matches!(a.get_id().as_str(), "name" | "names"))
        else {
            continue;
        };
        let mut value_options = Vec::new();
        for a in sub.get_arguments().chain(cmd.get_arguments()) {
            if a.is_positional() || !a.get_action().takes_values() {
                continue;
            }
            if let Some(l) = a.get_long() {
                value_options.push(format!("--{l}"));
            }
            if let Some(s) = a.get_short() {
                value_options.push(format!("-{s}"));
            }
        }
        out.push(MachineArgs {
            command: sub.get_name().to_string(),
            many: pos.get_id().as_str() == "names",
            value_options,
        });
    }
    out
}

/// The completion script for `shell` (one of [`SHELLS`]) of the command `cmd` named `bin`.
pub fn script(shell: &str, cmd: &mut Command, bin: &str) -> Result<String, String> {
    let kind = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        "powershell" => Shell::PowerShell,
        other => {
            return Err(format!(
                "unknown shell {other:?}: use one of {}",
                SHELLS.join(", ")
            ));
        }
    };
    let machines = machine_args(cmd);
    let mut buf = Vec::new();
    clap_complete::generate(kind, cmd, bin, &mut buf);
    let generated = String::from_utf8_lossy(&buf).into_owned();
    Ok(match kind {
        Shell::Bash => bash(&generated, bin, &machines),
        Shell::Zsh => zsh(&generated, bin, &machines),
        Shell::Fish => fish(&generated, bin, &machines),
        _ => generated,
    })
}

/// The words of a shell `case` pattern: `a|b|c`.
fn alternatives(words: &[String]) -> String {
    if words.is_empty() {
        // A pattern that matches no word.
        "__dmw_none__".into()
    } else {
        words.join("|")
    }
}

/// The prompt helper, for bash and zsh: `__dmw_ps1 [FORMAT]`.
fn ps1(bin: &str) -> String {
    format!(
        r#"
# Prompt helper: prints the machine your shell points at ($DOCKER_MACHINE_NAME, set by
# `eval "$({bin} env NAME)"`) through FORMAT (printf, default ' [%s]'); nothing when none.
# With DMW_PS1_SHOWSTATUS=true (or DOCKER_MACHINE_PS1_SHOWSTATUS=true) it adds the state:
# R running, R->S stopping, S->R starting, E error or timeout, S anything else.
# bash: PS1='\u@\h \w$(__dmw_ps1)\$ '   zsh: setopt PROMPT_SUBST; PROMPT='%~$(__dmw_ps1)%# '
__dmw_ps1() {{
    local __dmw_rc=$?
    local __dmw_format="${{1:- [%s]}}"
    if [ -n "${{DOCKER_MACHINE_NAME:-}}" ]; then
        local __dmw_status=""
        if [ "${{DMW_PS1_SHOWSTATUS:-${{DOCKER_MACHINE_PS1_SHOWSTATUS:-false}}}}" = true ]; then
            case "$(command {bin} status "$DOCKER_MACHINE_NAME" 2>/dev/null)" in
                Running) __dmw_status=' R' ;;
                Stopping) __dmw_status=' R->S' ;;
                Starting) __dmw_status=' S->R' ;;
                Error|Timeout) __dmw_status=' E' ;;
                *) __dmw_status=' S' ;;
            esac
        fi
        printf -- "$__dmw_format" "${{DOCKER_MACHINE_NAME}}${{__dmw_status}}"
    fi
    return $__dmw_rc
}}
"#
    )
}

/// A shell function printing the machine names of the store the command line uses.
fn machines_fn(bin: &str) -> String {
    format!(
        r#"
# Machine names for completion: `{bin} ls -q` on the storage path of the line being completed.
__dmw_machine_names() {{
    local __dmw_s=() __dmw_i
    for ((__dmw_i = 1; __dmw_i < ${{#COMP_WORDS[@]}} - 1; __dmw_i++)); do
        case "${{COMP_WORDS[__dmw_i]}}" in
            -s|--storage-path) __dmw_s=(--storage-path "${{COMP_WORDS[__dmw_i+1]}}") ;;
            --storage-path=*) __dmw_s=("${{COMP_WORDS[__dmw_i]}}") ;;
        esac
    done
    command {bin} "${{__dmw_s[@]}}" ls -q 2>/dev/null
}}
"#
    )
}

fn bash(generated: &str, bin: &str, machines: &[MachineArgs]) -> String {
    let func = format!("_{bin}");
    let mut arms = String::new();
    for m in machines {
        let _ = writeln!(
            arms,
            "            {}) __dmw_many={}; __dmw_values='{}' ;;",
            m.command,
            if m.many { 1 } else { 0 },
            alternatives(&m.value_options)
        );
    }
    let mut out = generated.to_string();
    out.push_str(&machines_fn(bin));
    let _ = write!(
        out,
        r#"
# Machine-name positions complete with the store's machines; everything else is clap's.
_{bin}_machines() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" __dmw_i __dmw_sub="" __dmw_at=0 __dmw_skip=0
    for ((__dmw_i = 1; __dmw_i < COMP_CWORD; __dmw_i++)); do
        local w="${{COMP_WORDS[__dmw_i]}}"
        if [ "$__dmw_skip" = 1 ]; then __dmw_skip=0; continue; fi
        case "$w" in
            -s|--storage-path) __dmw_skip=1; continue ;;
            -*) continue ;;
        esac
        __dmw_sub="$w"; __dmw_at=$__dmw_i; break
    done
    if [ -n "$__dmw_sub" ] && [[ "$cur" != -* ]]; then
        local __dmw_many="" __dmw_values="" __dmw_pos=0
        case "$__dmw_sub" in
{arms}        esac
        if [ -n "$__dmw_many" ]; then
            __dmw_skip=0
            for ((__dmw_i = __dmw_at + 1; __dmw_i < COMP_CWORD; __dmw_i++)); do
                local w="${{COMP_WORDS[__dmw_i]}}"
                if [ "$__dmw_skip" = 1 ]; then __dmw_skip=0; continue; fi
                if eval "case \"\$w\" in $__dmw_values) true ;; *) false ;; esac"; then
                    __dmw_skip=1; continue
                fi
                case "$w" in -*) continue ;; esac
                __dmw_pos=$((__dmw_pos + 1))
            done
            if [ "$__dmw_skip" = 0 ] && {{ [ "$__dmw_many" = 1 ] || [ "$__dmw_pos" = 0 ]; }}; then
                local IFS=$'\n'
                COMPREPLY=($(compgen -W "$(__dmw_machine_names)" -- "$cur"))
                return 0
            fi
        fi
    fi
    {func} "$@"
}}
if [[ "${{BASH_VERSINFO[0]}}" -eq 4 && "${{BASH_VERSINFO[1]}}" -ge 4 || "${{BASH_VERSINFO[0]}}" -gt 4 ]]; then
    complete -F _{bin}_machines -o nosort -o bashdefault -o default {bin}
else
    complete -F _{bin}_machines -o bashdefault -o default {bin}
fi
"#
    );
    out.push_str(&ps1(bin));
    out
}

fn zsh(generated: &str, bin: &str, machines: &[MachineArgs]) -> String {
    // clap writes a machine-name positional as `'::name -- HELP:_default'` or
    // `'*::names -- HELP:_default'`; complete those with the store's machines.
    let mut out = String::new();
    for line in generated.lines() {
        let t = line.trim_start();
        let is_machine = ["':name", "'::name", "'*::names", "'*:names"]
            .iter()
            .any(|p| {
                t.strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with([' ', ':']))
            })
            && t.contains(":_default'");
        if is_machine {
            out.push_str(&line.replacen(":_default'", ":_dmw_machines'", 1));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    let _ = machines;
    let insert = format!(
        r#"
# Machine names for completion: `{bin} ls -q` (on `-s PATH` when zsh still shows it in
# $words; inside a subcommand it does not, and $DMW_STORAGE_PATH or the default store is used).
_dmw_machines() {{
    local -a __dmw_s __dmw_m
    local __dmw_i
    for ((__dmw_i = 2; __dmw_i < ${{#words}}; __dmw_i++)); do
        case "${{words[__dmw_i]}}" in
            -s|--storage-path) __dmw_s=(--storage-path "${{words[__dmw_i+1]}}") ;;
            --storage-path=*) __dmw_s=("${{words[__dmw_i]}}") ;;
        esac
    done
    __dmw_m=(${{(f)"$(command {bin} "${{__dmw_s[@]}}" ls -q 2>/dev/null)"}})
    compadd -a __dmw_m
}}
"#
    );
    // Functions must exist before compdef runs the completion: put them after `#compdef`.
    match out.find('\n') {
        Some(i) if out.starts_with("#compdef") => {
            out.insert_str(i + 1, &format!("{insert}{}", ps1(bin)));
        }
        _ => {
            out.push_str(&insert);
            out.push_str(&ps1(bin));
        }
    }
    out
}

fn fish(generated: &str, bin: &str, machines: &[MachineArgs]) -> String {
    let mut out = generated.to_string();
    let many: Vec<&str> = machines
        .iter()
        .filter(|m| m.many)
        .map(|m| m.command.as_str())
        .collect();
    let one: Vec<&str> = machines
        .iter()
        .filter(|m| !m.many)
        .map(|m| m.command.as_str())
        .collect();
    let _ = writeln!(
        out,
        "# Machine names: `{bin} ls -q` (one for single-machine commands, any number for the others)."
    );
    if !many.is_empty() {
        let _ = writeln!(
            out,
            "complete -c {bin} -n \"__fish_seen_subcommand_from {}\" -f -a \"(command {bin} ls -q 2>/dev/null)\"",
            many.join(" ")
        );
    }
    if !one.is_empty() {
        let _ = writeln!(
            out,
            "complete -c {bin} -n \"__fish_seen_subcommand_from {}; and test (count (commandline -opc | string match -v -- '-*')) -le 2\" -f -a \"(command {bin} ls -q 2>/dev/null)\"",
            one.join(" ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> Command {
        Command::new("dmw")
            .arg(
                clap::Arg::new("storage_path")
                    .short('s')
                    .long("storage-path"),
            )
            .subcommand(
                Command::new("ip").arg(clap::Arg::new("names").num_args(0..).help("Machine names")),
            )
            .subcommand(
                Command::new("env")
                    .arg(clap::Arg::new("name"))
                    .arg(clap::Arg::new("shell").long("shell")),
            )
            .subcommand(Command::new("create").arg(clap::Arg::new("args").num_args(0..)))
    }

    #[test]
    fn finds_machine_name_positions() {
        let m = machine_args(&cli());
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!((m[0].command.as_str(), m[0].many), ("ip", true));
        assert_eq!((m[1].command.as_str(), m[1].many), ("env", false));
        assert!(m[1].value_options.contains(&"--shell".to_string()));
        assert!(m[1].value_options.contains(&"-s".to_string()));
    }

    #[test]
    fn scripts_for_every_shell() {
        for shell in SHELLS {
            let s = script(shell, &mut cli(), "dmw").expect("script");
            assert!(s.contains("dmw"), "{shell}");
        }
        let bash = script("bash", &mut cli(), "dmw").expect("bash");
        assert!(bash.contains("__dmw_ps1()") && bash.contains("complete -F _dmw_machines"));
        let zsh = script("zsh", &mut cli(), "dmw").expect("zsh");
        assert!(zsh.starts_with("#compdef dmw\n"), "{zsh}");
        assert!(zsh.contains(":_dmw_machines'"), "{zsh}");
        let fish = script("fish", &mut cli(), "dmw").expect("fish");
        assert!(fish.contains("__fish_seen_subcommand_from ip"), "{fish}");
        assert!(script("tcsh", &mut cli(), "dmw").is_err());
    }
}
