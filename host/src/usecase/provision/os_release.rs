//! Parsing /etc/os-release (and the older release files of hosts that lack it).

use crate::sandbox::plugin::recipe::OsInfo;

/// The remote command that prints the OS description: os-release, else a legacy release file
/// marked with a header line so [`parse_detection`] knows which format it got.
pub const DETECT_COMMAND: &str = "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null || { \
    for f in /etc/centos-release /etc/redhat-release /etc/oracle-release /etc/system-release; do \
    if [ -r \"$f\" ]; then echo \"#dmw-release-file $f\"; cat \"$f\"; exit 0; fi; done; exit 1; }";

/// Parse os-release text: `KEY=value` lines, values unquoted with shell rules
/// (double quotes with backslash escapes, single quotes, or bare words). Blank lines,
/// comments and malformed lines are skipped.
pub fn parse(text: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        fields.push((key.to_string(), unquote(raw)));
    }
    fields
}

fn unquote(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.peek() {
                            Some(&n) if matches!(n, '"' | '\\' | '$' | '`') => {
                                out.push(n);
                                chars.next();
                            }
                            _ => out.push('\\'),
                        },
                        c => out.push(c),
                    }
                }
            }
            '\'' => {
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    out.push(c);
                }
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Build the recipe's view of the OS from parsed fields.
pub fn os_info(fields: Vec<(String, String)>) -> OsInfo {
    let get = |k: &str| {
        fields
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    OsInfo {
        id: get("ID").to_ascii_lowercase(),
        id_like: get("ID_LIKE")
            .split_whitespace()
            .map(|s| s.to_ascii_lowercase())
            .collect(),
        version_id: get("VERSION_ID"),
        version_codename: get("VERSION_CODENAME"),
        pretty_name: get("PRETTY_NAME"),
        fields,
    }
}

/// Turn the output of [`DETECT_COMMAND`] into an [`OsInfo`]; a legacy release file such as
/// `CentOS release 6.10 (Final)` becomes ID=centos, VERSION_ID=6.10, ID_LIKE="rhel fedora".
pub fn parse_detection(output: &str) -> OsInfo {
    let Some(rest) = output.strip_prefix("#dmw-release-file ") else {
        return os_info(parse(output));
    };
    let (file, body) = rest.split_once('\n').unwrap_or((rest, ""));
    let line = body.lines().next().unwrap_or("").trim().to_string();
    let lower = line.to_ascii_lowercase();
    let id = if lower.starts_with("centos") {
        "centos"
    } else if lower.starts_with("red hat") {
        "rhel"
    } else if lower.starts_with("oracle") {
        "ol"
    } else if lower.starts_with("fedora") {
        "fedora"
    } else if lower.starts_with("amazon") {
        "amzn"
    } else {
        ""
    };
    let version = lower
        .split_whitespace()
        .skip_while(|w| *w != "release")
        .nth(1)
        .unwrap_or("")
        .to_string();
    let id_like = if id == "fedora" { "" } else { "rhel fedora" };
    let fields = vec![
        ("ID".to_string(), id.to_string()),
        ("ID_LIKE".to_string(), id_like.to_string()),
        ("VERSION_ID".to_string(), version),
        ("PRETTY_NAME".to_string(), line),
        ("DMW_RELEASE_FILE".to_string(), file.trim().to_string()),
    ];
    os_info(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOKWORM: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"#;

    #[test]
    fn parses_debian() {
        let os = os_info(parse(BOOKWORM));
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id, "12");
        assert_eq!(os.version_codename, "bookworm");
        assert_eq!(os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        assert!(os.id_like.is_empty());
    }

    #[test]
    fn handles_quotes_equals_and_id_like() {
        let text = "ID='linuxmint'\nID_LIKE=\"ubuntu debian\"\nX=a=b\nESC=\"say \\\"hi\\\" \\$HOME\"\n# c\nbogus line\n";
        let os = os_info(parse(text));
        assert_eq!(os.id, "linuxmint");
        assert_eq!(os.id_like, vec!["ubuntu", "debian"]);
        let get = |k: &str| {
            os.fields
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get("X").as_deref(),
            Some("a=b"),
            "values containing '=' are kept (Docker Machine dropped them)"
        );
        assert_eq!(get("ESC").as_deref(), Some("say \"hi\" $HOME"));
    }

    #[test]
    fn legacy_centos6_release_file() {
        let os =
            parse_detection("#dmw-release-file /etc/centos-release\nCentOS release 6.10 (Final)\n");
        assert_eq!(os.id, "centos");
        assert_eq!(os.version_id, "6.10");
        assert_eq!(os.id_like, vec!["rhel", "fedora"]);
        assert_eq!(os.pretty_name, "CentOS release 6.10 (Final)");
    }

    #[test]
    fn plain_os_release_through_detection() {
        assert_eq!(parse_detection(BOOKWORM).id, "debian");
    }
}
