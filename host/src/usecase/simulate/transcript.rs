//! The transcript format (see tests/recipes/README.md): a simulated machine's OS, how it
//! answers commands, the engine options of the run, and what must happen.

use anyhow::{Result, anyhow, bail};

use crate::state::store::EngineOptions;

/// How one command is answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// Substrings the command must all contain.
    pub patterns: Vec<String>,
    /// Flags that must be set.
    pub when: Vec<String>,
    /// Flags that must not be set.
    pub unless: Vec<String>,
    /// Used at most once.
    pub once: bool,
    /// Exit status.
    pub exit: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Flags set after answering.
    pub set: Vec<String>,
    /// Flags cleared after answering.
    pub clear: Vec<String>,
    /// Line of the `on` in the file (for messages).
    pub line: usize,
}

/// What a run must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Every step succeeded.
    Ok,
    /// A step failed with a message containing this.
    Error(String),
    /// Some command contained this.
    Ran(String),
    /// No command contained this.
    NotRan(String),
    /// A file was uploaded to this path.
    Uploaded(String),
    /// The upload to this path contains this text.
    UploadContains(String, String),
}

/// A recipe step the run performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `set-hostname`.
    Hostname,
    /// `install-engine`.
    Install,
    /// `configure-engine`.
    Configure,
    /// `upgrade-engine`.
    Upgrade,
    /// `restart-engine`.
    Restart,
}

/// A parsed transcript.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// `/etc/os-release` contents, if the machine has one.
    pub os_release: Option<String>,
    /// A legacy release file instead: (path, contents).
    pub release_file: Option<(String, String)>,
    /// `recipe:` override.
    pub recipe: Option<String>,
    /// SSH user.
    pub user: String,
    /// Engine options of the run.
    pub engine: EngineOptions,
    /// Engine port.
    pub port: u16,
    /// Steps, in order.
    pub steps: Vec<Step>,
    /// Command rules, in file order.
    pub rules: Vec<Rule>,
    /// Answer unmatched commands with this exit status (None: unmatched commands are errors).
    pub default_exit: Option<i32>,
    /// Expectations.
    pub expect: Vec<Expect>,
    /// Flags set before the first command (`flags:`).
    pub flags: Vec<String>,
    /// The machine's server certificate is still valid and is installed again (`certs: reused`).
    pub certs_reused: bool,
}

fn step(word: &str) -> Result<Step> {
    Ok(match word {
        "hostname" => Step::Hostname,
        "install" => Step::Install,
        "configure" => Step::Configure,
        "upgrade" => Step::Upgrade,
        "restart" => Step::Restart,
        other => bail!("unknown step {other:?} (hostname, install, configure, upgrade, restart)"),
    })
}

impl Transcript {
    /// Parse a transcript; errors name the line.
    pub fn parse(text: &str) -> Result<Transcript> {
        let mut t = Transcript {
            user: "root".into(),
            port: 2376,
            steps: vec![Step::Hostname, Step::Install, Step::Configure],
            engine: EngineOptions {
                install_method: crate::state::store::InstallMethod::Distro,
                ..EngineOptions::default()
            },
            ..Transcript::default()
        };
        // Group lines: a key at column 0 with its indented lines.
        let mut blocks: Vec<(usize, String, Vec<String>)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
                continue;
            }
            if raw.starts_with([' ', '\t']) {
                match blocks.last_mut() {
                    Some(b) => b.2.push(raw.trim().to_string()),
                    None => bail!("line {line_no}: indented line without a key above it"),
                }
            } else {
                blocks.push((line_no, raw.trim_end().to_string(), Vec::new()));
            }
        }
        for (line, head, body) in blocks {
            let (key, value) = match head.split_once(char::is_whitespace) {
                Some((k, v)) => (k, v.trim()),
                None => (head.as_str(), ""),
            };
            let r: Result<()> = (|| {
                match key {
                    "os-release:" => t.os_release = Some(body.join("\n") + "\n"),
                    "release-file:" => {
                        t.release_file = Some((value.to_string(), body.join("\n") + "\n"))
                    }
                    "recipe:" => t.recipe = Some(value.to_string()),
                    "user:" => t.user = value.to_string(),
                    "method:" => {
                        t.engine.install_method = value.parse().map_err(|e: String| anyhow!(e))?
                    }
                    "install-url:" => t.engine.install_url = value.to_string(),
                    "repo-url:" => t.engine.repo_url = value.to_string(),
                    "storage-driver:" => t.engine.storage_driver = value.to_string(),
                    "label:" => t.engine.labels.push(value.to_string()),
                    "opt:" => t.engine.opts.push(value.to_string()),
                    "env:" => t.engine.env.push(value.to_string()),
                    "insecure-registry:" => t.engine.insecure_registries.push(value.to_string()),
                    "registry-mirror:" => t.engine.registry_mirrors.push(value.to_string()),
                    "port:" => t.port = value.parse()?,
                    "flags:" => t.flags.extend(value.split_whitespace().map(String::from)),
                    "certs:" => {
                        t.certs_reused = match value {
                            "reused" => true,
                            "new" => false,
                            other => bail!("certs: {other:?} (new or reused)"),
                        }
                    }
                    "steps:" => {
                        t.steps = value.split_whitespace().map(step).collect::<Result<_>>()?
                    }
                    "default" => {
                        t.default_exit = match value {
                            "fail" => None,
                            v => Some(v.strip_prefix("exit").unwrap_or(v).trim().parse()?),
                        }
                    }
                    "on" => t.rules.push(rule(line, value, &body)?),
                    "expect" => t.expect.push(expect(value)?),
                    other => bail!("unknown key {other:?}"),
                }
                Ok(())
            })();
            if let Err(e) = r {
                bail!("line {line}: {e:#}");
            }
        }
        if t.os_release.is_none() && t.release_file.is_none() {
            bail!("the transcript needs `os-release:` or `release-file:`");
        }
        Ok(t)
    }
}

fn rule(line: usize, pattern: &str, body: &[String]) -> Result<Rule> {
    if pattern.is_empty() {
        bail!("`on` needs a substring to match");
    }
    let mut r = Rule {
        patterns: vec![pattern.to_string()],
        line,
        ..Rule::default()
    };
    let mut out = Vec::new();
    let mut err = Vec::new();
    for l in body {
        let (k, v) = l
            .split_once(char::is_whitespace)
            .map(|(k, v)| (k, v.trim()))
            .unwrap_or((l.as_str(), ""));
        match k {
            "and" => r.patterns.push(v.to_string()),
            "if" => r.when.push(v.to_string()),
            "unless" => r.unless.push(v.to_string()),
            "once" => r.once = true,
            "exit" => r.exit = v.parse()?,
            // A line of output keeps its text after the single separating space.
            "stdout" => out.push(l.get(7..).unwrap_or("").to_string()),
            "stderr" => err.push(l.get(7..).unwrap_or("").to_string()),
            "set" => r.set.push(v.to_string()),
            "clear" => r.clear.push(v.to_string()),
            other => bail!(
                "unknown rule line {other:?} (and, if, unless, once, exit, stdout, stderr, set, clear)"
            ),
        }
    }
    r.stdout = out.iter().map(|l| format!("{l}\n")).collect();
    r.stderr = err.iter().map(|l| format!("{l}\n")).collect();
    Ok(r)
}

fn expect(value: &str) -> Result<Expect> {
    let (k, v) = value
        .split_once(char::is_whitespace)
        .map(|(k, v)| (k, v.trim()))
        .unwrap_or((value, ""));
    Ok(match k {
        "ok" => Expect::Ok,
        "error" => Expect::Error(v.to_string()),
        "ran" => Expect::Ran(v.to_string()),
        "not-ran" => Expect::NotRan(v.to_string()),
        "uploaded" => Expect::Uploaded(v.to_string()),
        "upload" => match v.split_once(" contains ") {
            Some((p, s)) => Expect::UploadContains(p.trim().to_string(), s.trim().to_string()),
            None => bail!("`expect upload PATH contains TEXT`"),
        },
        other => bail!("unknown expectation {other:?} (ok, error, ran, not-ran, uploaded, upload)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key() {
        let t = Transcript::parse(
            "# demo\nos-release:\n    ID=debian\n    VERSION_ID=\"12\"\nuser: admin\nmethod: repo\nrepo-url: http://m/linux\nlabel: a=b\nsteps: install configure\n\non command -v dockerd\n    unless installed\n    exit 1\non apt-get\n    and install\n    stdout  two spaces kept\n    set installed\n    once\ndefault exit 0\nexpect ok\nexpect upload /etc/x contains --tlsverify\nexpect not-ran dist-upgrade\n",
        )
        .unwrap();
        assert_eq!(
            t.os_release.as_deref(),
            Some("ID=debian\nVERSION_ID=\"12\"\n")
        );
        assert_eq!(t.user, "admin");
        assert_eq!(
            t.engine.install_method,
            crate::state::store::InstallMethod::Repo
        );
        assert_eq!(t.engine.repo_url, "http://m/linux");
        assert_eq!(t.steps, vec![Step::Install, Step::Configure]);
        assert_eq!(t.rules.len(), 2);
        assert_eq!(t.rules[0].unless, vec!["installed"]);
        assert_eq!(t.rules[0].exit, 1);
        assert_eq!(t.rules[1].patterns, vec!["apt-get", "install"]);
        assert_eq!(t.rules[1].stdout, " two spaces kept\n");
        assert!(t.rules[1].once);
        assert_eq!(t.default_exit, Some(0));
        assert_eq!(
            t.expect[1],
            Expect::UploadContains("/etc/x".into(), "--tlsverify".into())
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = Transcript::parse("os-release:\n  ID=x\nbogus: 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 3:"), "{e}");
        let e = Transcript::parse("on x\n  frob\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("frob"), "{e}");
        assert!(Transcript::parse("expect ok\n").is_err(), "needs an OS");
    }
}
