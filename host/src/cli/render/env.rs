//! `dmw env` output, byte-for-byte Docker Machine 0.16's (`commands/env.go`).
//!
//! Each line is `<prefix><VAR><delimiter><value><suffix>` with a per-shell prefix,
//! delimiter and suffix, followed by a two-line usage hint.
//!
//! Quoting (a deliberate difference from Docker Machine, which writes values unescaped): a
//! value made only of safe characters — `[A-Za-z0-9_./:@%+=,-]` and space — is written
//! exactly as Docker Machine writes it (`export VAR="value"`), so ordinary output stays
//! byte-identical. Any other value is quoted for the target shell so that it is one literal
//! word and nothing in it runs: POSIX sh single quotes (`'\''` for a quote), fish single
//! quotes with `\xHH` for control characters, PowerShell single quotes joined with
//! `[char]N` (each line of `| Invoke-Expression` is evaluated alone, so no raw newline),
//! tcsh single quotes with `\!` (control characters refused), emacs-lisp string escapes.
//! cmd has no safe quoting for `"%!^&|<>` or control characters: such a value is refused
//! ([`UnsafeValue`]) instead of printed.
//!
//! Not modelled: `COMPOSE_CONVERT_WINDOWS_PATHS=true`, which DM adds only when the
//! binary itself runs on Windows.

use std::fmt;
use std::str::FromStr;

/// A shell syntax that `dmw env` can emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shell {
    /// `export VAR="value"` (bash, sh, zsh, ksh, dash, and csh as DM does).
    Posix,
    /// `set -gx VAR "value";`
    Fish,
    /// `$Env:VAR = "value"`
    PowerShell,
    /// `SET VAR=value`
    Cmd,
    /// `setenv VAR "value";`
    Tcsh,
    /// `(setenv "VAR" "value")`
    Emacs,
}

/// Values accepted by `--shell`, in the order the error message lists them.
pub const ACCEPTED_SHELLS: [&str; 12] = [
    "bash",
    "sh",
    "zsh",
    "ksh",
    "dash",
    "csh",
    "fish",
    "powershell",
    "pwsh",
    "cmd",
    "tcsh",
    "emacs",
];

/// What Docker Machine prints to stdout when `$SHELL` is unset and no `--shell` is given.
pub const UNKNOWN_SHELL_NOTICE: &str = "The default lines below are for a sh/bash shell, you can specify the shell you're using, with the --shell flag.\n\n";

/// Why no shell could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    /// `$SHELL` is unset or empty and `--shell` was not given (DM's `ErrUnknownShell`).
    #[error("Error: Unknown shell")]
    UnknownShell,
    /// `--shell` named a shell we do not know.
    #[error(
        "Unknown shell {0:?} given to --shell; accepted shells are: bash, sh, zsh, ksh, dash, csh, fish, powershell, pwsh, cmd, tcsh, emacs"
    )]
    Unsupported(String),
}

impl ShellError {
    /// Text DM prints to **stdout** before failing with this error, if any.
    pub fn stdout_notice(&self) -> Option<&'static str> {
        match self {
            ShellError::UnknownShell => Some(UNKNOWN_SHELL_NOTICE),
            ShellError::Unsupported(_) => None,
        }
    }
}

impl Shell {
    /// Parses a `--shell` value (ASCII case-insensitive); unknown names are an error.
    ///
    /// Deliberate difference: DM silently falls back to bash syntax for any unknown
    /// `--shell` value; dmw refuses it and lists the accepted names.
    pub fn from_flag(value: &str) -> Result<Shell, ShellError> {
        Shell::from_name(value).ok_or_else(|| ShellError::Unsupported(value.to_owned()))
    }

    /// Detects the shell from `$SHELL` as DM does on Unix: basename, unknown names → Posix.
    ///
    /// Unset or empty → [`ShellError::UnknownShell`] (print [`UNKNOWN_SHELL_NOTICE`] to
    /// stdout first, as DM does). Only the exact basenames `fish`, `tcsh`, `cmd`,
    /// `powershell`/`pwsh` and `emacs` pick their syntax; anything else (`bash`, `zsh`,
    /// `csh`, `xonsh`, …) gets Posix. Recognising `pwsh` is a small addition to DM.
    pub fn from_shell_env(shell_var: Option<&str>) -> Result<Shell, ShellError> {
        let path = match shell_var {
            Some(p) if !p.is_empty() => p,
            _ => return Err(ShellError::UnknownShell),
        };
        let base = go_base(path);
        Ok(match base {
            "fish" => Shell::Fish,
            "powershell" | "pwsh" => Shell::PowerShell,
            "cmd" => Shell::Cmd,
            "tcsh" => Shell::Tcsh,
            "emacs" => Shell::Emacs,
            _ => Shell::Posix,
        })
    }

    /// Chooses the shell: `--shell` if given and non-empty (as DM), else `$SHELL` detection.
    pub fn detect(flag: Option<&str>, shell_var: Option<&str>) -> Result<Shell, ShellError> {
        match flag {
            Some(v) if !v.is_empty() => Shell::from_flag(v),
            _ => Shell::from_shell_env(shell_var),
        }
    }

    /// The canonical `--shell` name of this syntax (`bash` for Posix).
    pub fn name(self) -> &'static str {
        match self {
            Shell::Posix => "bash",
            Shell::Fish => "fish",
            Shell::PowerShell => "powershell",
            Shell::Cmd => "cmd",
            Shell::Tcsh => "tcsh",
            Shell::Emacs => "emacs",
        }
    }

    fn from_name(value: &str) -> Option<Shell> {
        let lower = value.to_ascii_lowercase();
        Some(match lower.as_str() {
            "bash" | "sh" | "zsh" | "ksh" | "dash" | "csh" => Shell::Posix,
            "fish" => Shell::Fish,
            "powershell" | "pwsh" => Shell::PowerShell,
            "cmd" => Shell::Cmd,
            "tcsh" => Shell::Tcsh,
            "emacs" => Shell::Emacs,
            _ => return None,
        })
    }

    /// (prefix, delimiter, suffix) when setting variables; the value comes quoted by
    /// [`quote`].
    fn set_syntax(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Shell::Posix => ("export ", "=", "\n"),
            Shell::Fish => ("set -gx ", " ", ";\n"),
            Shell::PowerShell => ("$Env:", " = ", "\n"),
            Shell::Cmd => ("SET ", "=", "\n"),
            Shell::Tcsh => ("setenv ", " ", ";\n"),
            Shell::Emacs => ("(setenv \"", "\" ", ")\n"),
        }
    }

    /// (prefix, delimiter, suffix) when unsetting variables.
    fn unset_syntax(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Shell::Posix => ("unset ", "", "\n"),
            Shell::Fish => ("set -e ", "", ";\n"),
            // Two literal backslashes, as DM's Go raw string `Remove-Item Env:\\`.
            Shell::PowerShell => (r"Remove-Item Env:\\", "", "\n"),
            Shell::Cmd => ("SET ", "=", "\n"),
            Shell::Tcsh => ("unsetenv ", "", ";\n"),
            Shell::Emacs => ("(setenv \"", "\" nil", ")\n"),
        }
    }
}

impl FromStr for Shell {
    type Err = ShellError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Shell::from_flag(s)
    }
}

impl fmt::Display for Shell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Go's `filepath.Base` on Unix: last element, trailing slashes ignored, "/" for all-slashes.
fn go_base(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/";
    }
    match trimmed.rfind('/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// The values `dmw env NAME` exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSet {
    /// `DOCKER_TLS_VERIFY`: `true` → `"1"` (DM always sets it); `false` → empty value.
    pub tls_verify: bool,
    /// `DOCKER_HOST`, e.g. `tcp://192.168.99.100:2376`.
    pub docker_host: String,
    /// `DOCKER_CERT_PATH`, `<storage>/machines/<name>`.
    pub cert_path: String,
    /// `DOCKER_MACHINE_NAME`.
    pub machine_name: String,
    /// With `--no-proxy`: (variable name, new value), see [`no_proxy_update`].
    pub no_proxy: Option<(String, String)>,
}

/// A value that cannot be written safely for a shell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the value of {var} ({value:?}) cannot be written safely for {shell}: it holds characters that shell would interpret; use another --shell"
)]
pub struct UnsafeValue {
    /// The variable.
    pub var: String,
    /// Its value.
    pub value: String,
    /// The shell's name.
    pub shell: &'static str,
}

/// Whether `c` may appear in a value written in Docker Machine's unescaped form.
fn is_plain_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '_' | '.' | '/' | ':' | '@' | '%' | '+' | '=' | ',' | '-' | ' '
        )
}

/// `value` quoted for `shell` as one literal word, or `None` when that shell cannot hold
/// it safely (see the module documentation).
pub fn quote(shell: Shell, value: &str) -> Option<String> {
    if value.contains('\0') {
        return None;
    }
    if shell == Shell::Cmd {
        let unsafe_char =
            |c: char| c.is_control() || matches!(c, '"' | '%' | '!' | '^' | '&' | '|' | '<' | '>');
        return (!value.chars().any(unsafe_char)).then(|| value.to_string());
    }
    if value.chars().all(is_plain_char) {
        return Some(format!("\"{value}\""));
    }
    Some(match shell {
        Shell::Posix => format!("'{}'", value.replace('\'', "'\\''")),
        Shell::Fish => {
            let mut out = String::from("'");
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\'' => out.push_str("\\'"),
                    c if c.is_ascii_control() => out.push_str(&format!("'\\x{:02x}'", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('\'');
            out
        }
        Shell::PowerShell => {
            let mut parts = vec![String::new()];
            for c in value.chars() {
                if c.is_control() {
                    parts.push(format!("[char]{}", c as u32));
                    parts.push(String::new());
                } else if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}') {
                    // PowerShell ends a single-quoted string at any of these; doubled, it is literal.
                    let last = parts.len() - 1;
                    parts[last].push(c);
                    parts[last].push(c);
                } else {
                    let last = parts.len() - 1;
                    parts[last].push(c);
                }
            }
            let quoted: Vec<String> = parts
                .into_iter()
                .enumerate()
                .filter(|(i, p)| *i == 0 || !p.is_empty())
                .map(|(_, p)| {
                    if p.starts_with("[char]") {
                        p
                    } else {
                        format!("'{p}'")
                    }
                })
                .collect();
            if quoted.len() == 1 {
                quoted.join("")
            } else {
                format!("({})", quoted.join(" + "))
            }
        }
        Shell::Tcsh => {
            if value.chars().any(char::is_control) {
                return None;
            }
            format!("'{}'", value.replace('\'', "'\\''").replace('!', "'\\!'"))
        }
        Shell::Emacs => {
            let mut out = String::from("\"");
            for c in value.chars() {
                match c {
                    '\\' | '"' => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if c.is_ascii_control() => out.push_str(&format!("\\{:03o}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Shell::Cmd => return None,
    })
}

/// Renders the `dmw env` output that sets the variables, usage hint included; every value
/// quoted by [`quote`].
pub fn render_set(shell: Shell, env: &EnvSet, hint_cmdline: &str) -> Result<String, UnsafeValue> {
    let (prefix, delim, suffix) = shell.set_syntax();
    let tls = if env.tls_verify { "1" } else { "" };
    let mut out = String::new();
    let mut line = |var: &str, value: &str| {
        let quoted = quote(shell, value).ok_or_else(|| UnsafeValue {
            var: var.to_string(),
            value: value.to_string(),
            shell: shell.name(),
        })?;
        out.push_str(prefix);
        out.push_str(var);
        out.push_str(delim);
        out.push_str(&quoted);
        out.push_str(suffix);
        Ok::<(), UnsafeValue>(())
    };
    line("DOCKER_TLS_VERIFY", tls)?;
    line("DOCKER_HOST", &env.docker_host)?;
    line("DOCKER_CERT_PATH", &env.cert_path)?;
    line("DOCKER_MACHINE_NAME", &env.machine_name)?;
    if let Some((var, value)) = &env.no_proxy {
        line(var, value)?;
    }
    out.push_str(&usage_hint(shell, hint_cmdline));
    Ok(out)
}

/// Renders the `dmw env -u` output that unsets the variables, usage hint included.
///
/// `no_proxy_var` is the variable name from [`no_proxy_var`] when `--no-proxy` is given.
/// Deliberate difference: DM appends the variable's current *value* to its name in
/// unset mode (`unset NO_PROXYx` when `NO_PROXY=x`); dmw emits just the name
/// (`unset NO_PROXY`). With an empty value both agree.
pub fn render_unset(shell: Shell, no_proxy_var: Option<&str>, hint_cmdline: &str) -> String {
    let (prefix, delim, suffix) = shell.unset_syntax();
    let mut out = String::new();
    let vars = [
        "DOCKER_TLS_VERIFY",
        "DOCKER_HOST",
        "DOCKER_CERT_PATH",
        "DOCKER_MACHINE_NAME",
    ];
    for var in vars.into_iter().chain(no_proxy_var) {
        out.push_str(prefix);
        out.push_str(var);
        out.push_str(delim);
        out.push_str(suffix);
    }
    out.push_str(&usage_hint(shell, hint_cmdline));
    out
}

/// The two-line "Run this command to configure your shell" hint for `shell`.
///
/// `"%s Run this command to configure your shell: \n%s %s\n"` (note the space after the
/// colon), with DM's comment marker and command form per shell.
pub fn usage_hint(shell: Shell, cmdline: &str) -> String {
    let (comment, cmd) = match shell {
        Shell::Posix => ("#", format!("eval $({cmdline})")),
        Shell::Fish => ("#", format!("eval ({cmdline})")),
        Shell::PowerShell => ("#", format!("& {cmdline} | Invoke-Expression")),
        Shell::Cmd => (
            "REM",
            format!("\t@FOR /f \"tokens=*\" %i IN ('{cmdline}') DO @%i"),
        ),
        Shell::Emacs => (
            ";;",
            format!(
                "(with-temp-buffer (shell-command \"{cmdline}\" (current-buffer)) (eval-buffer))"
            ),
        ),
        Shell::Tcsh => (":", format!("eval `{cmdline}`")),
    };
    // The hint is a comment: a control character in the command line must not end it.
    let cmd: String = cmd
        .chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect();
    format!("{comment} Run this command to configure your shell: \n{comment} {cmd}\n")
}

/// The user's command line for the usage hint: argv joined with spaces, argv\[0\]
/// wrapped in double quotes if it contains a space or a backslash (as DM).
pub fn hint_cmdline(args: &[String]) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        if i == 0 && (arg.contains(' ') || arg.contains('\\')) {
            parts.push(format!("\"{arg}\""));
        } else {
            parts.push(arg.clone());
        }
    }
    parts.join(" ")
}

/// Which proxy variable `--no-proxy` works on, given `$no_proxy`: `no_proxy` if non-empty, else `NO_PROXY`.
///
/// As DM's `findNoProxyFromEnv`: whenever `$no_proxy` is unset or empty the name is
/// `NO_PROXY`, whether or not `$NO_PROXY` is set.
pub fn no_proxy_var(no_proxy_lower: Option<&str>) -> &'static str {
    match no_proxy_lower {
        Some(v) if !v.is_empty() => "no_proxy",
        _ => "NO_PROXY",
    }
}

/// The (variable name, value) that `--no-proxy` exports: the current list plus `ip`.
///
/// Takes the values of `$no_proxy` and `$NO_PROXY`. The lower-case variable wins when
/// non-empty, else the upper-case one (and its name) is used, so with neither set the
/// result is `("NO_PROXY", ip)`. `ip` is added idempotently: an empty list becomes
/// `ip`, a list already holding `ip` is unchanged, otherwise `"<old>,<ip>"`.
///
/// Deliberate difference: DM tests membership with a substring check, so `10.0.0.1`
/// was considered present in `10.0.0.10`; dmw compares whole comma-separated entries
/// (ignoring surrounding spaces).
pub fn no_proxy_update(
    no_proxy_lower: Option<&str>,
    no_proxy_upper: Option<&str>,
    ip: &str,
) -> (String, String) {
    let var = no_proxy_var(no_proxy_lower);
    let current = match var {
        "no_proxy" => no_proxy_lower.unwrap_or_default(),
        _ => no_proxy_upper.unwrap_or_default(),
    };
    let value = if current.is_empty() {
        ip.to_owned()
    } else if current.split(',').any(|entry| entry.trim() == ip) {
        current.to_owned()
    } else {
        format!("{current},{ip}")
    };
    (var.to_owned(), value)
}

#[cfg(test)]
mod tests {
    /// `render_set` for values that every shell can hold.
    fn rs(shell: Shell, env: &EnvSet, hint: &str) -> String {
        render_set(shell, env, hint).expect("renders")
    }

    use super::*;

    const CERT: &str = "/home/u/my machines/.dmw/machines/h1";

    fn env(no_proxy: Option<(&str, &str)>) -> EnvSet {
        EnvSet {
            tls_verify: true,
            docker_host: "tcp://192.168.99.100:2376".to_owned(),
            cert_path: CERT.to_owned(),
            machine_name: "h1".to_owned(),
            no_proxy: no_proxy.map(|(k, v)| (k.to_owned(), v.to_owned())),
        }
    }

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reference_bash_example() {
        let e = EnvSet {
            tls_verify: true,
            docker_host: "tcp://192.168.99.100:2376".to_owned(),
            cert_path: "/home/u/.docker/machine/machines/default".to_owned(),
            machine_name: "default".to_owned(),
            no_proxy: None,
        };
        let expected = "export DOCKER_TLS_VERIFY=\"1\"
export DOCKER_HOST=\"tcp://192.168.99.100:2376\"
export DOCKER_CERT_PATH=\"/home/u/.docker/machine/machines/default\"
export DOCKER_MACHINE_NAME=\"default\"
# Run this command to configure your shell: 
# eval $(docker-machine env default)
";
        assert_eq!(rs(Shell::Posix, &e, "docker-machine env default"), expected);
    }

    #[test]
    fn set_posix() {
        let expected = concat!(
            "export DOCKER_TLS_VERIFY=\"1\"\n",
            "export DOCKER_HOST=\"tcp://192.168.99.100:2376\"\n",
            "export DOCKER_CERT_PATH=\"/home/u/my machines/.dmw/machines/h1\"\n",
            "export DOCKER_MACHINE_NAME=\"h1\"\n",
            "# Run this command to configure your shell: \n",
            "# eval $(dmw env h1)\n",
        );
        assert_eq!(rs(Shell::Posix, &env(None), "dmw env h1"), expected);

        let expected_np = concat!(
            "export DOCKER_TLS_VERIFY=\"1\"\n",
            "export DOCKER_HOST=\"tcp://192.168.99.100:2376\"\n",
            "export DOCKER_CERT_PATH=\"/home/u/my machines/.dmw/machines/h1\"\n",
            "export DOCKER_MACHINE_NAME=\"h1\"\n",
            "export NO_PROXY=\"localhost,192.168.99.100\"\n",
            "# Run this command to configure your shell: \n",
            "# eval $(dmw env --no-proxy h1)\n",
        );
        assert_eq!(
            rs(
                Shell::Posix,
                &env(Some(("NO_PROXY", "localhost,192.168.99.100"))),
                "dmw env --no-proxy h1"
            ),
            expected_np
        );
    }

    #[test]
    fn set_fish() {
        let expected = concat!(
            "set -gx DOCKER_TLS_VERIFY \"1\";\n",
            "set -gx DOCKER_HOST \"tcp://192.168.99.100:2376\";\n",
            "set -gx DOCKER_CERT_PATH \"/home/u/my machines/.dmw/machines/h1\";\n",
            "set -gx DOCKER_MACHINE_NAME \"h1\";\n",
            "# Run this command to configure your shell: \n",
            "# eval (dmw env --shell fish h1)\n",
        );
        assert_eq!(
            rs(Shell::Fish, &env(None), "dmw env --shell fish h1"),
            expected
        );

        let expected_np = concat!(
            "set -gx DOCKER_TLS_VERIFY \"1\";\n",
            "set -gx DOCKER_HOST \"tcp://192.168.99.100:2376\";\n",
            "set -gx DOCKER_CERT_PATH \"/home/u/my machines/.dmw/machines/h1\";\n",
            "set -gx DOCKER_MACHINE_NAME \"h1\";\n",
            "set -gx no_proxy \"192.168.99.100\";\n",
            "# Run this command to configure your shell: \n",
            "# eval (dmw env --shell fish --no-proxy h1)\n",
        );
        assert_eq!(
            rs(
                Shell::Fish,
                &env(Some(("no_proxy", "192.168.99.100"))),
                "dmw env --shell fish --no-proxy h1"
            ),
            expected_np
        );
    }

    #[test]
    fn set_powershell() {
        let expected = concat!(
            "$Env:DOCKER_TLS_VERIFY = \"1\"\n",
            "$Env:DOCKER_HOST = \"tcp://192.168.99.100:2376\"\n",
            "$Env:DOCKER_CERT_PATH = \"/home/u/my machines/.dmw/machines/h1\"\n",
            "$Env:DOCKER_MACHINE_NAME = \"h1\"\n",
            "# Run this command to configure your shell: \n",
            "# & dmw env --shell powershell h1 | Invoke-Expression\n",
        );
        assert_eq!(
            rs(
                Shell::PowerShell,
                &env(None),
                "dmw env --shell powershell h1"
            ),
            expected
        );

        let expected_np = concat!(
            "$Env:DOCKER_TLS_VERIFY = \"1\"\n",
            "$Env:DOCKER_HOST = \"tcp://192.168.99.100:2376\"\n",
            "$Env:DOCKER_CERT_PATH = \"/home/u/my machines/.dmw/machines/h1\"\n",
            "$Env:DOCKER_MACHINE_NAME = \"h1\"\n",
            "$Env:NO_PROXY = \"192.168.99.100\"\n",
            "# Run this command to configure your shell: \n",
            "# & dmw env --shell powershell --no-proxy h1 | Invoke-Expression\n",
        );
        assert_eq!(
            rs(
                Shell::PowerShell,
                &env(Some(("NO_PROXY", "192.168.99.100"))),
                "dmw env --shell powershell --no-proxy h1"
            ),
            expected_np
        );
    }

    #[test]
    fn set_cmd() {
        let expected = concat!(
            "SET DOCKER_TLS_VERIFY=1\n",
            "SET DOCKER_HOST=tcp://192.168.99.100:2376\n",
            "SET DOCKER_CERT_PATH=/home/u/my machines/.dmw/machines/h1\n",
            "SET DOCKER_MACHINE_NAME=h1\n",
            "REM Run this command to configure your shell: \n",
            "REM \t@FOR /f \"tokens=*\" %i IN ('dmw env --shell cmd h1') DO @%i\n",
        );
        assert_eq!(
            rs(Shell::Cmd, &env(None), "dmw env --shell cmd h1"),
            expected
        );

        let expected_np = concat!(
            "SET DOCKER_TLS_VERIFY=1\n",
            "SET DOCKER_HOST=tcp://192.168.99.100:2376\n",
            "SET DOCKER_CERT_PATH=/home/u/my machines/.dmw/machines/h1\n",
            "SET DOCKER_MACHINE_NAME=h1\n",
            "SET NO_PROXY=10.0.0.0/8,192.168.99.100\n",
            "REM Run this command to configure your shell: \n",
            "REM \t@FOR /f \"tokens=*\" %i IN ('dmw env --shell cmd --no-proxy h1') DO @%i\n",
        );
        assert_eq!(
            rs(
                Shell::Cmd,
                &env(Some(("NO_PROXY", "10.0.0.0/8,192.168.99.100"))),
                "dmw env --shell cmd --no-proxy h1"
            ),
            expected_np
        );
    }

    #[test]
    fn set_tcsh() {
        let expected = concat!(
            "setenv DOCKER_TLS_VERIFY \"1\";\n",
            "setenv DOCKER_HOST \"tcp://192.168.99.100:2376\";\n",
            "setenv DOCKER_CERT_PATH \"/home/u/my machines/.dmw/machines/h1\";\n",
            "setenv DOCKER_MACHINE_NAME \"h1\";\n",
            ": Run this command to configure your shell: \n",
            ": eval `dmw env --shell tcsh h1`\n",
        );
        assert_eq!(
            rs(Shell::Tcsh, &env(None), "dmw env --shell tcsh h1"),
            expected
        );

        let expected_np = concat!(
            "setenv DOCKER_TLS_VERIFY \"1\";\n",
            "setenv DOCKER_HOST \"tcp://192.168.99.100:2376\";\n",
            "setenv DOCKER_CERT_PATH \"/home/u/my machines/.dmw/machines/h1\";\n",
            "setenv DOCKER_MACHINE_NAME \"h1\";\n",
            "setenv NO_PROXY \"192.168.99.100\";\n",
            ": Run this command to configure your shell: \n",
            ": eval `dmw env --shell tcsh --no-proxy h1`\n",
        );
        assert_eq!(
            rs(
                Shell::Tcsh,
                &env(Some(("NO_PROXY", "192.168.99.100"))),
                "dmw env --shell tcsh --no-proxy h1"
            ),
            expected_np
        );
    }

    #[test]
    fn set_emacs() {
        let expected = concat!(
            "(setenv \"DOCKER_TLS_VERIFY\" \"1\")\n",
            "(setenv \"DOCKER_HOST\" \"tcp://192.168.99.100:2376\")\n",
            "(setenv \"DOCKER_CERT_PATH\" \"/home/u/my machines/.dmw/machines/h1\")\n",
            "(setenv \"DOCKER_MACHINE_NAME\" \"h1\")\n",
            ";; Run this command to configure your shell: \n",
            ";; (with-temp-buffer (shell-command \"dmw env --shell emacs h1\" (current-buffer)) (eval-buffer))\n",
        );
        assert_eq!(
            rs(Shell::Emacs, &env(None), "dmw env --shell emacs h1"),
            expected
        );

        let expected_np = concat!(
            "(setenv \"DOCKER_TLS_VERIFY\" \"1\")\n",
            "(setenv \"DOCKER_HOST\" \"tcp://192.168.99.100:2376\")\n",
            "(setenv \"DOCKER_CERT_PATH\" \"/home/u/my machines/.dmw/machines/h1\")\n",
            "(setenv \"DOCKER_MACHINE_NAME\" \"h1\")\n",
            "(setenv \"no_proxy\" \"192.168.99.100\")\n",
            ";; Run this command to configure your shell: \n",
            ";; (with-temp-buffer (shell-command \"dmw env --shell emacs --no-proxy h1\" (current-buffer)) (eval-buffer))\n",
        );
        assert_eq!(
            rs(
                Shell::Emacs,
                &env(Some(("no_proxy", "192.168.99.100"))),
                "dmw env --shell emacs --no-proxy h1"
            ),
            expected_np
        );
    }

    #[test]
    fn unset_posix() {
        let expected = concat!(
            "unset DOCKER_TLS_VERIFY\n",
            "unset DOCKER_HOST\n",
            "unset DOCKER_CERT_PATH\n",
            "unset DOCKER_MACHINE_NAME\n",
            "# Run this command to configure your shell: \n",
            "# eval $(dmw env -u)\n",
        );
        assert_eq!(render_unset(Shell::Posix, None, "dmw env -u"), expected);

        let expected_np = concat!(
            "unset DOCKER_TLS_VERIFY\n",
            "unset DOCKER_HOST\n",
            "unset DOCKER_CERT_PATH\n",
            "unset DOCKER_MACHINE_NAME\n",
            "unset NO_PROXY\n",
            "# Run this command to configure your shell: \n",
            "# eval $(dmw env -u --no-proxy)\n",
        );
        assert_eq!(
            render_unset(Shell::Posix, Some("NO_PROXY"), "dmw env -u --no-proxy"),
            expected_np
        );
    }

    #[test]
    fn unset_fish() {
        let expected = concat!(
            "set -e DOCKER_TLS_VERIFY;\n",
            "set -e DOCKER_HOST;\n",
            "set -e DOCKER_CERT_PATH;\n",
            "set -e DOCKER_MACHINE_NAME;\n",
            "# Run this command to configure your shell: \n",
            "# eval (dmw env --shell fish -u)\n",
        );
        assert_eq!(
            render_unset(Shell::Fish, None, "dmw env --shell fish -u"),
            expected
        );

        let expected_np = concat!(
            "set -e DOCKER_TLS_VERIFY;\n",
            "set -e DOCKER_HOST;\n",
            "set -e DOCKER_CERT_PATH;\n",
            "set -e DOCKER_MACHINE_NAME;\n",
            "set -e no_proxy;\n",
            "# Run this command to configure your shell: \n",
            "# eval (dmw env --shell fish -u --no-proxy)\n",
        );
        assert_eq!(
            render_unset(
                Shell::Fish,
                Some("no_proxy"),
                "dmw env --shell fish -u --no-proxy"
            ),
            expected_np
        );
    }

    #[test]
    fn unset_powershell() {
        let expected = concat!(
            "Remove-Item Env:\\\\DOCKER_TLS_VERIFY\n",
            "Remove-Item Env:\\\\DOCKER_HOST\n",
            "Remove-Item Env:\\\\DOCKER_CERT_PATH\n",
            "Remove-Item Env:\\\\DOCKER_MACHINE_NAME\n",
            "# Run this command to configure your shell: \n",
            "# & dmw env --shell powershell -u | Invoke-Expression\n",
        );
        assert_eq!(
            render_unset(Shell::PowerShell, None, "dmw env --shell powershell -u"),
            expected
        );

        let expected_np = concat!(
            "Remove-Item Env:\\\\DOCKER_TLS_VERIFY\n",
            "Remove-Item Env:\\\\DOCKER_HOST\n",
            "Remove-Item Env:\\\\DOCKER_CERT_PATH\n",
            "Remove-Item Env:\\\\DOCKER_MACHINE_NAME\n",
            "Remove-Item Env:\\\\NO_PROXY\n",
            "# Run this command to configure your shell: \n",
            "# & dmw env --shell powershell -u --no-proxy | Invoke-Expression\n",
        );
        assert_eq!(
            render_unset(
                Shell::PowerShell,
                Some("NO_PROXY"),
                "dmw env --shell powershell -u --no-proxy"
            ),
            expected_np
        );
    }

    #[test]
    fn unset_cmd() {
        let expected = concat!(
            "SET DOCKER_TLS_VERIFY=\n",
            "SET DOCKER_HOST=\n",
            "SET DOCKER_CERT_PATH=\n",
            "SET DOCKER_MACHINE_NAME=\n",
            "REM Run this command to configure your shell: \n",
            "REM \t@FOR /f \"tokens=*\" %i IN ('dmw env --shell cmd -u') DO @%i\n",
        );
        assert_eq!(
            render_unset(Shell::Cmd, None, "dmw env --shell cmd -u"),
            expected
        );

        let expected_np = concat!(
            "SET DOCKER_TLS_VERIFY=\n",
            "SET DOCKER_HOST=\n",
            "SET DOCKER_CERT_PATH=\n",
            "SET DOCKER_MACHINE_NAME=\n",
            "SET NO_PROXY=\n",
            "REM Run this command to configure your shell: \n",
            "REM \t@FOR /f \"tokens=*\" %i IN ('dmw env --shell cmd -u --no-proxy') DO @%i\n",
        );
        assert_eq!(
            render_unset(
                Shell::Cmd,
                Some("NO_PROXY"),
                "dmw env --shell cmd -u --no-proxy"
            ),
            expected_np
        );
    }

    #[test]
    fn unset_tcsh() {
        let expected = concat!(
            "unsetenv DOCKER_TLS_VERIFY;\n",
            "unsetenv DOCKER_HOST;\n",
            "unsetenv DOCKER_CERT_PATH;\n",
            "unsetenv DOCKER_MACHINE_NAME;\n",
            ": Run this command to configure your shell: \n",
            ": eval `dmw env --shell tcsh -u`\n",
        );
        assert_eq!(
            render_unset(Shell::Tcsh, None, "dmw env --shell tcsh -u"),
            expected
        );

        let expected_np = concat!(
            "unsetenv DOCKER_TLS_VERIFY;\n",
            "unsetenv DOCKER_HOST;\n",
            "unsetenv DOCKER_CERT_PATH;\n",
            "unsetenv DOCKER_MACHINE_NAME;\n",
            "unsetenv NO_PROXY;\n",
            ": Run this command to configure your shell: \n",
            ": eval `dmw env --shell tcsh -u --no-proxy`\n",
        );
        assert_eq!(
            render_unset(
                Shell::Tcsh,
                Some("NO_PROXY"),
                "dmw env --shell tcsh -u --no-proxy"
            ),
            expected_np
        );
    }

    #[test]
    fn unset_emacs() {
        let expected = concat!(
            "(setenv \"DOCKER_TLS_VERIFY\" nil)\n",
            "(setenv \"DOCKER_HOST\" nil)\n",
            "(setenv \"DOCKER_CERT_PATH\" nil)\n",
            "(setenv \"DOCKER_MACHINE_NAME\" nil)\n",
            ";; Run this command to configure your shell: \n",
            ";; (with-temp-buffer (shell-command \"dmw env --shell emacs -u\" (current-buffer)) (eval-buffer))\n",
        );
        assert_eq!(
            render_unset(Shell::Emacs, None, "dmw env --shell emacs -u"),
            expected
        );

        let expected_np = concat!(
            "(setenv \"DOCKER_TLS_VERIFY\" nil)\n",
            "(setenv \"DOCKER_HOST\" nil)\n",
            "(setenv \"DOCKER_CERT_PATH\" nil)\n",
            "(setenv \"DOCKER_MACHINE_NAME\" nil)\n",
            "(setenv \"no_proxy\" nil)\n",
            ";; Run this command to configure your shell: \n",
            ";; (with-temp-buffer (shell-command \"dmw env --shell emacs -u --no-proxy\" (current-buffer)) (eval-buffer))\n",
        );
        assert_eq!(
            render_unset(
                Shell::Emacs,
                Some("no_proxy"),
                "dmw env --shell emacs -u --no-proxy"
            ),
            expected_np
        );
    }

    #[test]
    fn tls_verify_false_gives_empty_value() {
        let mut e = env(None);
        e.tls_verify = false;
        assert!(rs(Shell::Posix, &e, "dmw env h1").starts_with("export DOCKER_TLS_VERIFY=\"\"\n"));
    }

    #[test]
    fn hint_cmdline_quotes_argv0() {
        assert_eq!(hint_cmdline(&args(&["dmw", "env", "h1"])), "dmw env h1");
        assert_eq!(
            hint_cmdline(&args(&["/opt/my tools/dmw", "env", "h1"])),
            "\"/opt/my tools/dmw\" env h1"
        );
        assert_eq!(
            hint_cmdline(&args(&["C:\\bin\\dmw.exe", "env", "--shell", "cmd", "h1"])),
            "\"C:\\bin\\dmw.exe\" env --shell cmd h1"
        );
        // Only argv[0] is quoted, other args are echoed as typed.
        assert_eq!(
            hint_cmdline(&args(&["dmw", "env", "my machine"])),
            "dmw env my machine"
        );
        assert_eq!(hint_cmdline(&[]), "");
    }

    #[test]
    fn hint_with_quoted_argv0() {
        let cmdline = hint_cmdline(&args(&["/opt/my tools/dmw", "env", "h1"]));
        assert_eq!(
            usage_hint(Shell::Posix, &cmdline),
            "# Run this command to configure your shell: \n# eval $(\"/opt/my tools/dmw\" env h1)\n"
        );
    }

    #[test]
    fn shell_flag_parsing() {
        for (v, s) in [
            ("bash", Shell::Posix),
            ("sh", Shell::Posix),
            ("zsh", Shell::Posix),
            ("ksh", Shell::Posix),
            ("dash", Shell::Posix),
            ("csh", Shell::Posix),
            ("fish", Shell::Fish),
            ("powershell", Shell::PowerShell),
            ("pwsh", Shell::PowerShell),
            ("PowerShell", Shell::PowerShell),
            ("cmd", Shell::Cmd),
            ("tcsh", Shell::Tcsh),
            ("emacs", Shell::Emacs),
        ] {
            assert_eq!(Shell::from_flag(v), Ok(s), "{v}");
            assert_eq!(v.parse::<Shell>(), Ok(s), "{v}");
        }
        for v in ACCEPTED_SHELLS {
            assert!(Shell::from_flag(v).is_ok(), "{v}");
        }
        let err = Shell::from_flag("nushell").unwrap_err();
        assert_eq!(err, ShellError::Unsupported("nushell".to_owned()));
        assert_eq!(
            err.to_string(),
            "Unknown shell \"nushell\" given to --shell; accepted shells are: bash, sh, zsh, ksh, dash, csh, fish, powershell, pwsh, cmd, tcsh, emacs"
        );
        assert_eq!(err.stdout_notice(), None);
    }

    #[test]
    fn shell_detection_from_env() {
        assert_eq!(Shell::from_shell_env(Some("/bin/bash")), Ok(Shell::Posix));
        assert_eq!(
            Shell::from_shell_env(Some("/usr/bin/zsh")),
            Ok(Shell::Posix)
        );
        assert_eq!(Shell::from_shell_env(Some("/bin/csh")), Ok(Shell::Posix));
        assert_eq!(
            Shell::from_shell_env(Some("/usr/bin/xonsh")),
            Ok(Shell::Posix)
        );
        assert_eq!(
            Shell::from_shell_env(Some("/usr/local/bin/fish")),
            Ok(Shell::Fish)
        );
        assert_eq!(Shell::from_shell_env(Some("/bin/tcsh")), Ok(Shell::Tcsh));
        assert_eq!(Shell::from_shell_env(Some("tcsh")), Ok(Shell::Tcsh));
        assert_eq!(
            Shell::from_shell_env(Some("/usr/bin/pwsh")),
            Ok(Shell::PowerShell)
        );
        assert_eq!(
            Shell::from_shell_env(Some("/usr/bin/fish/")),
            Ok(Shell::Fish)
        );
        // Exact basenames only, as DM.
        assert_eq!(Shell::from_shell_env(Some("/bin/Fish")), Ok(Shell::Posix));

        for unset in [None, Some("")] {
            let err = Shell::from_shell_env(unset).unwrap_err();
            assert_eq!(err, ShellError::UnknownShell);
            assert_eq!(err.to_string(), "Error: Unknown shell");
            assert_eq!(
                err.stdout_notice(),
                Some(
                    "The default lines below are for a sh/bash shell, you can specify the shell you're using, with the --shell flag.\n\n"
                )
            );
        }
    }

    #[test]
    fn shell_detect_prefers_flag() {
        assert_eq!(
            Shell::detect(Some("fish"), Some("/bin/bash")),
            Ok(Shell::Fish)
        );
        assert_eq!(Shell::detect(Some(""), Some("/bin/tcsh")), Ok(Shell::Tcsh));
        assert_eq!(Shell::detect(None, Some("/bin/tcsh")), Ok(Shell::Tcsh));
        assert_eq!(Shell::detect(Some("cmd"), None), Ok(Shell::Cmd));
        assert_eq!(Shell::detect(None, None), Err(ShellError::UnknownShell));
        assert!(matches!(
            Shell::detect(Some("bogus"), Some("/bin/bash")),
            Err(ShellError::Unsupported(_))
        ));
        assert_eq!(Shell::Posix.to_string(), "bash");
    }

    #[test]
    fn no_proxy_semantics() {
        let ip = "192.168.99.100";
        // Neither set: upper-case name, value = ip.
        assert_eq!(
            no_proxy_update(None, None, ip),
            ("NO_PROXY".to_owned(), ip.to_owned())
        );
        assert_eq!(
            no_proxy_update(Some(""), Some(""), ip),
            ("NO_PROXY".to_owned(), ip.to_owned())
        );
        // Lower-case wins when non-empty.
        assert_eq!(
            no_proxy_update(Some("localhost"), Some("example.com"), ip),
            ("no_proxy".to_owned(), "localhost,192.168.99.100".to_owned())
        );
        // Empty lower-case falls back to upper-case.
        assert_eq!(
            no_proxy_update(Some(""), Some("example.com"), ip),
            (
                "NO_PROXY".to_owned(),
                "example.com,192.168.99.100".to_owned()
            )
        );
        // Idempotent.
        assert_eq!(
            no_proxy_update(None, Some("localhost,192.168.99.100"), ip),
            ("NO_PROXY".to_owned(), "localhost,192.168.99.100".to_owned())
        );
        assert_eq!(
            no_proxy_update(Some("192.168.99.100, localhost"), None, ip),
            (
                "no_proxy".to_owned(),
                "192.168.99.100, localhost".to_owned()
            )
        );
        // A whole-entry check, not DM's substring check.
        assert_eq!(
            no_proxy_update(None, Some("10.0.0.10"), "10.0.0.1"),
            ("NO_PROXY".to_owned(), "10.0.0.10,10.0.0.1".to_owned())
        );
        assert_eq!(no_proxy_var(Some("x")), "no_proxy");
        assert_eq!(no_proxy_var(Some("")), "NO_PROXY");
        assert_eq!(no_proxy_var(None), "NO_PROXY");
    }

    const HOSTILE: &str =
        "it's $(touch PWNED) `touch PWNED2` \"q\" a  b\nnext line; rm -rf /tmp/none";

    fn hostile_env(value: &str) -> EnvSet {
        EnvSet {
            tls_verify: true,
            docker_host: value.to_owned(),
            cert_path: CERT.to_owned(),
            machine_name: "h1".to_owned(),
            no_proxy: None,
        }
    }

    /// Evaluate `script` with `sh` in a fresh directory, then print `$DOCKER_HOST`.
    fn sh_value(script: &str, eval_form: &str) -> (String, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("env.sh");
        std::fs::write(&file, script).expect("write script");
        let out = std::process::Command::new("sh")
            .current_dir(dir.path())
            .arg("-c")
            .arg(format!("{eval_form}; printf %s \"$DOCKER_HOST\""))
            .env("SCRIPT", &file)
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = dir.keep();
        (String::from_utf8_lossy(&out.stdout).into_owned(), path)
    }

    #[test]
    fn posix_round_trips_hostile_values_without_running_them() {
        let out = rs(Shell::Posix, &hostile_env(HOSTILE), "dmw env h1");
        // The documented eval form.
        let (value, dir) = sh_value(&out, r#"eval "$(cat "$SCRIPT")""#);
        assert_eq!(value, HOSTILE);
        assert!(!dir.join("PWNED").exists() && !dir.join("PWNED2").exists());
        // DM's unquoted `eval $(…)`: the value's spaces collapse, but nothing runs.
        let (_, dir2) = sh_value(&out, r#"eval $(cat "$SCRIPT")"#);
        assert!(!dir2.join("PWNED").exists() && !dir2.join("PWNED2").exists());
        // Sourced as a file, too.
        let (value, dir3) = sh_value(&out, r#". "$SCRIPT""#);
        assert_eq!(value, HOSTILE);
        assert!(!dir3.join("PWNED").exists());
        for d in [dir, dir2, dir3] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn plain_values_keep_docker_machines_form_others_are_quoted() {
        assert_eq!(
            quote(Shell::Posix, "tcp://10.0.0.1:2376").as_deref(),
            Some("\"tcp://10.0.0.1:2376\"")
        );
        assert_eq!(quote(Shell::Posix, "/a b/c").as_deref(), Some("\"/a b/c\""));
        assert_eq!(quote(Shell::Posix, "a'b$c").as_deref(), Some(r"'a'\''b$c'"));
        assert_eq!(
            quote(Shell::Fish, "a'b\\c\nd").as_deref(),
            Some(r"'a\'b\\c'\x0a'd'")
        );
        assert_eq!(
            quote(Shell::PowerShell, "a'b\u{2019}$(x)\nc").as_deref(),
            Some("('a''b\u{2019}\u{2019}$(x)' + [char]10 + 'c')")
        );
        assert_eq!(quote(Shell::PowerShell, "$(x)").as_deref(), Some("'$(x)'"));
        assert_eq!(
            quote(Shell::Tcsh, "a'b!c$d").as_deref(),
            Some(r"'a'\''b'\!'c$d'")
        );
        assert_eq!(quote(Shell::Tcsh, "a\nb"), None);
        assert_eq!(
            quote(Shell::Emacs, "a\"b\\c\nd").as_deref(),
            Some(r#""a\"b\\c\012d""#)
        );
        assert_eq!(quote(Shell::Cmd, "/a b/c").as_deref(), Some("/a b/c"));
        for bad in ["a&b", "a\"b", "a%PATH%", "a\nb", "a|b", "a^b", "a>b"] {
            assert_eq!(quote(Shell::Cmd, bad), None, "{bad:?}");
        }
        assert_eq!(quote(Shell::Posix, "a\0b"), None);
    }

    #[test]
    fn no_shell_gets_a_raw_line_break_or_an_unquoted_hostile_value() {
        for shell in [Shell::Fish, Shell::PowerShell, Shell::Emacs] {
            let out = rs(shell, &hostile_env(HOSTILE), "dmw env h1");
            let host_line = out.lines().nth(1).expect("second line");
            assert!(host_line.contains("PWNED2"), "{shell}: {out}");
            assert!(
                out.lines()
                    .nth(2)
                    .is_some_and(|l| l.contains("DOCKER_CERT_PATH")),
                "{shell}: the value broke its line:\n{out}"
            );
        }
        let err = render_set(Shell::Cmd, &hostile_env(HOSTILE), "dmw env h1").unwrap_err();
        assert_eq!(err.var, "DOCKER_HOST");
        assert!(err.to_string().contains("cannot be written safely for cmd"));
        assert!(render_set(Shell::Tcsh, &hostile_env(HOSTILE), "dmw env h1").is_err());
    }

    #[test]
    fn fish_round_trips_hostile_values_when_installed() {
        if crate::net::ssh::external::find_program("fish").is_none() {
            return;
        }
        let out = rs(Shell::Fish, &hostile_env(HOSTILE), "dmw env h1");
        let dir = tempfile::tempdir().expect("tempdir");
        let r = std::process::Command::new("fish")
            .current_dir(dir.path())
            .arg("-c")
            .arg(format!("{out}\nprintf %s \"$DOCKER_HOST\""))
            .output()
            .expect("fish");
        assert_eq!(String::from_utf8_lossy(&r.stdout), HOSTILE);
        assert!(!dir.path().join("PWNED").exists());
    }
}
