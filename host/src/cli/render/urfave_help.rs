//! Help as Docker Machine 0.16.2 printed it (`docker-machine` personality): urfave/cli's
//! 2015 layout — Docker Machine's `AppHelpTemplate` and `CommandHelpTemplate`, one line per
//! flag in urfave/cli's form (`--timeout, -t "10"`, `--filter [--filter option --filter
//! option]`, ` [$ENV]`), laid out by Go's `tabwriter` with tabs (`0, 8, 1, '\t'`).
//!
//! The texts (descriptions, flag usages, environment variables) are dmw's own; only the
//! layout is Docker Machine's.

use clap::{Arg, ArgAction, Command};

use super::table::tabwrite_go;
use crate::text::personality::localize_as;

/// One text for one help line: tabs and line breaks would break the layout.
fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .next()
        .unwrap_or_default()
        .replace('\t', " ")
}

/// urfave/cli's `prefixedNames`: `--long, -s`.
fn names(arg: &Arg) -> Option<String> {
    let mut names = Vec::new();
    if let Some(long) = arg.get_long() {
        names.push(format!("--{long}"));
    }
    if let Some(short) = arg.get_short() {
        names.push(format!("-{short}"));
    }
    (!names.is_empty()).then(|| names.join(", "))
}

/// The flag's line as urfave/cli's `Flag.String()` printed it, before the tab layout:
/// `NAMES\tUSAGE [$ENV]` for a switch, `NAMES "DEFAULT"\t…` or `NAMES \t…` for a value,
/// `NAMES [--x option --x option]\t…` for a repeatable one. `None` for positionals,
/// hidden flags and help.
pub fn flag_line(arg: &Arg) -> Option<String> {
    if arg.is_positional() || arg.is_hide_set() {
        return None;
    }
    if matches!(
        arg.get_action(),
        ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong
    ) {
        return None;
    }
    let names = names(arg)?;
    let usage = one_line(&arg.get_help().map(|h| h.to_string()).unwrap_or_default());
    let head = match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count | ArgAction::Version => names,
        ArgAction::Append => {
            let first = arg
                .get_long()
                .map(|l| format!("--{l}"))
                .or_else(|| arg.get_short().map(|s| format!("-{s}")))
                .unwrap_or_default();
            format!("{names} [{first} option {first} option]")
        }
        _ => match arg.get_default_values().first() {
            Some(d) if !d.is_empty() => format!("{names} \"{}\"", one_line(&d.to_string_lossy())),
            _ => format!("{names} "),
        },
    };
    let env = arg
        .get_env()
        .map(|e| format!(" [${}]", e.to_string_lossy()))
        .unwrap_or_default();
    Some(format!("{head}\t{usage}{env}"))
}

fn flag_lines(cmd: &Command, sort_by_name: bool) -> Vec<String> {
    let mut args: Vec<&Arg> = cmd.get_arguments().filter(|a| !a.is_global_set()).collect();
    if sort_by_name {
        args.sort_by_key(|a| a.get_long().map(str::to_string).unwrap_or_default());
    }
    args.into_iter().filter_map(flag_line).collect()
}

fn about(cmd: &Command) -> String {
    one_line(&cmd.get_about().map(|a| a.to_string()).unwrap_or_default())
}

/// A command's help as Docker Machine's `CommandHelpTemplate` printed it:
/// `Usage: PROG NAME [OPTIONS] [arg...]`, a blank line, the description, a blank line,
/// `Options:`, a line of three spaces, then each flag indented by three spaces.
/// `sort_by_name` as `create` sorted its flags (the driver's among the shared ones).
pub fn command_help(program: &str, cmd: &Command, sort_by_name: bool) -> String {
    let flags = flag_lines(cmd, sort_by_name);
    let mut text = format!(
        "Usage: {program} {}{} [arg...]\n\n{}",
        cmd.get_name(),
        if flags.is_empty() { "" } else { " [OPTIONS]" },
        about(cmd)
    );
    if !flags.is_empty() {
        text.push_str("\n\nOptions:\n   ");
        for f in &flags {
            text.push_str("\n   ");
            text.push_str(f);
        }
    }
    text.push('\n');
    tabwrite_go(&localize_as(&text, program), 0, 8, 1, '\t')
}

/// The top level's help as Docker Machine's `AppHelpTemplate` printed it: usage, the
/// description, `Version:`, the global options (two spaces in, with help and version as
/// urfave/cli added them), the commands, and the closing `Run '… COMMAND --help'` line.
pub fn app_help(program: &str, version: &str, cmd: &Command) -> String {
    let mut text = format!(
        "Usage: {program} [OPTIONS] COMMAND [arg...]\n\n{}\n\nVersion: {version}\n\nOptions:\n  ",
        about(cmd)
    );
    let mut flags: Vec<String> = cmd.get_arguments().filter_map(flag_line).collect();
    flags.push("--help, -h\tshow help".to_string());
    for f in &flags {
        text.push_str(f);
        text.push_str("\n  ");
    }
    text.push_str("\nCommands:\n  ");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        text.push_str(&format!("{}\t{}\n  ", sub.get_name(), about(sub)));
    }
    text.push_str("help\tShows a list of commands or help for one command\n  ");
    text.push_str(&format!(
        "\nRun '{program} COMMAND --help' for more information on a command.\n"
    ));
    tabwrite_go(&localize_as(&text, program), 0, 8, 1, '\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls() -> Command {
        Command::new("ls")
            .about("List machines")
            .arg(
                Arg::new("quiet")
                    .short('q')
                    .long("quiet")
                    .action(ArgAction::SetTrue)
                    .help("Enable quiet mode"),
            )
            .arg(
                Arg::new("filter")
                    .long("filter")
                    .action(ArgAction::Append)
                    .help("Filter output based on conditions provided"),
            )
            .arg(
                Arg::new("timeout")
                    .short('t')
                    .long("timeout")
                    .default_value("10")
                    .help("Timeout in seconds, default to 10s"),
            )
            .arg(
                Arg::new("format")
                    .short('f')
                    .long("format")
                    .help("Pretty-print machines using a Go template"),
            )
    }

    /// Docker Machine 0.16.2's `docker-machine ls --help`, byte for byte (urfave/cli's
    /// flag strings through `tabwriter.NewWriter(out, 0, 8, 1, '\t', 0)`: the widest cell
    /// is 45 characters, so the column ends at 48).
    #[test]
    fn ls_help_is_docker_machines() {
        let want = concat!(
            "Usage: docker-machine ls [OPTIONS] [arg...]\n",
            "\n",
            "List machines\n",
            "\n",
            "Options:\n",
            "   \n",
            "   --quiet, -q\t\t\t\t\tEnable quiet mode\n",
            "   --filter [--filter option --filter option]\tFilter output based on conditions provided\n",
            "   --timeout, -t \"10\"\t\t\t\tTimeout in seconds, default to 10s\n",
            "   --format, -f \t\t\t\tPretty-print machines using a Go template\n",
        );
        assert_eq!(command_help("docker-machine", &ls(), false), want);
    }

    /// Go's own tabwriter case "12a" (`0, 8, 1, '\t'`: short cells keep one tab), and a
    /// cell exactly at a tab stop moving a whole stop on.
    #[test]
    fn tab_padding_as_go() {
        let src = "a\tb\tc\naa\tbbb\tcccc\naaa\tbbbb\n";
        assert_eq!(tabwrite_go(src, 0, 8, 1, '\t'), src);
        assert_eq!(
            tabwrite_go("12345678\tx\nab\ty\n", 0, 8, 1, '\t'),
            "12345678\tx\nab\t\ty\n"
        );
    }

    #[test]
    fn env_and_sorting_and_no_flags() {
        let cmd = Command::new("create")
            .about("Create a machine")
            .arg(Arg::new("name"))
            .arg(Arg::new("zeta").long("zeta").help("z").env("ZETA"))
            .arg(
                Arg::new("alpha")
                    .long("alpha")
                    .action(ArgAction::SetTrue)
                    .help("a"),
            );
        let text = command_help("docker-machine", &cmd, true);
        let lines: Vec<&str> = text.lines().collect();
        // Both cells are 10 wide: the column is 11, rounded up to 16, one tab each.
        assert_eq!(lines[6], "   --alpha\ta");
        assert_eq!(lines[7], "   --zeta \tz [$ZETA]");
        let bare = Command::new("active").about("Print which machine is active");
        assert_eq!(
            command_help("docker-machine", &bare, false),
            "Usage: docker-machine active [arg...]\n\nPrint which machine is active\n"
        );
    }
}
