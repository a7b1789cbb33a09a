//! Running recipes against simulated machines: the transcript tests and `dmw recipe plan`.
//! The real recipe components run in the real runtime; only the machine is simulated.

mod machine;
pub mod os_tools;
pub mod transcript;

pub use machine::{Event, Machine, UNMATCHED_EXIT};
pub use transcript::{Expect, Step, Transcript};

use std::sync::Arc;

use anyhow::Result;

use crate::app::App;
use crate::sandbox::capabilities::{CertGrant, Offer, SshLink};
use crate::sandbox::plugin::recipe::OsInfo;
use crate::sandbox::plugin::{Kind, Source};
use crate::text::report::Reporter;
use crate::usecase::provision::{choose_recipe, engine_config, os_release};

/// The machine name simulated runs use.
pub const MACHINE_NAME: &str = "test-machine";

/// What a simulated run did.
#[derive(Debug)]
pub struct Outcome {
    /// The recipe that ran.
    pub recipe: String,
    /// The OS as detected.
    pub os: OsInfo,
    /// `Err("<step>: <message>")` for the first failed step.
    pub result: Result<(), String>,
    /// Commands and uploads, in order.
    pub events: Vec<Event>,
    /// Commands no rule answered.
    pub unmatched: Vec<String>,
}

/// The OS a transcript describes, as the host would detect it.
pub fn os_of(t: &Transcript) -> OsInfo {
    match (&t.os_release, &t.release_file) {
        (Some(text), _) => os_release::parse_detection(text),
        (None, Some((path, body))) => {
            os_release::parse_detection(&format!("#dmw-release-file {path}\n{body}"))
        }
        (None, None) => os_release::os_info(Vec::new()),
    }
}

fn step_name(s: Step) -> &'static str {
    match s {
        Step::Hostname => "set hostname",
        Step::Install => "install engine",
        Step::Configure => "configure engine",
        Step::Upgrade => "upgrade engine",
        Step::Restart => "restart engine",
    }
}

/// Run a transcript's steps with the recipe dmw would choose (or the one it names).
pub async fn run(app: &App, t: &Transcript, report: Arc<Reporter>) -> Result<Outcome> {
    let os = os_of(t);
    let over = t
        .recipe
        .as_deref()
        .map(|r| Source::from_arg(r, Kind::Recipe))
        .transpose()?;
    let (source, name) = choose_recipe(app, &os, over.as_ref(), report.clone()).await?;
    let machine = Arc::new(Machine::new(t));
    let link = Arc::new(SshLink::simulated(machine.clone(), &t.user, report.clone()));
    let runtime = app.runtime()?;
    let (component, grant) = runtime.load_granted(&source, Kind::Recipe)?;
    let mut offer = Offer::new(&name, report, Default::default());
    offer.ssh = Some(link.clone());
    offer.certs = Some(Arc::new(CertGrant {
        certs_dir: app.store.certs_dir(),
        org: MACHINE_NAME.into(),
        sans: vec!["192.0.2.10".into(), MACHINE_NAME.into(), "localhost".into()],
        ssh: link,
        machine_dir: None,
        simulated_fresh: !t.certs_reused,
    }));
    let mut recipe = runtime.recipe(&component, &grant, offer).await?;
    let config = engine_config(&t.engine, &os, "generic", t.port);
    let mut result = Ok(());
    for step in &t.steps {
        let r = match step {
            Step::Hostname => recipe.set_hostname(MACHINE_NAME).await,
            Step::Install => recipe.install_engine(&config).await,
            Step::Configure => recipe.configure_engine(&config).await,
            Step::Upgrade => recipe.upgrade_engine(&config).await,
            Step::Restart => recipe.restart_engine().await,
        };
        if let Err(e) = r {
            result = Err(format!("{}: {e:#}", step_name(*step)));
            break;
        }
    }
    Ok(Outcome {
        recipe: name,
        os,
        result,
        events: machine.events(),
        unmatched: machine.unmatched(),
    })
}

/// The machine `dmw recipe plan` simulates: the given OS, every command succeeds, dockerd
/// appears once a command installs a docker package, and the engine listens when polled.
pub fn plan_transcript(os_file_text: &str, engine_present: bool, port: u16) -> Transcript {
    let looks_like_os_release = os_file_text
        .lines()
        .any(|l| l.trim_start().starts_with("ID="));
    let (os_release, release_file) = if looks_like_os_release {
        (Some(os_file_text.to_string()), None)
    } else {
        (
            None,
            Some(("/etc/redhat-release".to_string(), os_file_text.to_string())),
        )
    };
    let rule = |patterns: &[&str], f: &dyn Fn(&mut transcript::Rule)| {
        let mut r = transcript::Rule {
            patterns: patterns.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        };
        f(&mut r);
        r
    };
    // The package managers this OS really ships answer `command -v`; the others are absent.
    let os = os_release::parse_detection(&match &release_file {
        Some((path, body)) => format!("#dmw-release-file {path}\n{body}"),
        None => os_file_text.to_string(),
    });
    let tool_rules: Vec<transcript::Rule> = match os_tools::shipped(&os) {
        Some(shipped) => os_tools::TOOLS
            .iter()
            .map(|tool| {
                let present = shipped.contains(tool);
                rule(&[&format!("command -v {tool} ")], &|r| {
                    if present {
                        r.stdout = format!("/usr/bin/{tool}\n");
                    } else {
                        r.exit = 1;
                    }
                })
            })
            .collect(),
        None => Vec::new(),
    };
    let listening = format!(
        "LISTEN 0 4096 *:{port} *:*\ntcp 0 0 :::{port} :::* LISTEN\ndmw-unit-state active\n"
    );
    let mut rules = tool_rules;
    rules.extend([
        rule(&["command -v dockerd"], &|r| {
            r.unless = vec!["installed".into()]
        }),
        rule(&["command -v dockerd"], &|r| {
            r.stdout = "/usr/bin/dockerd\n".into()
        }),
        // Engines older than dockerd (EL6's docker-io 1.7) are found as `docker`.
        rule(&["command -v docker"], &|r| {
            r.unless = vec!["installed".into()]
        }),
        rule(&["command -v docker"], &|r| {
            r.stdout = "/usr/bin/docker\n".into()
        }),
        rule(&["-tln"], &|r| r.stdout = listening.clone()),
        // No conflicting daemon.json on a fresh machine.
        rule(&["daemon.json"], &|r| r.exit = 1),
        rule(&["install", "docker"], &|r| {
            r.set = vec!["installed".into()]
        }),
        rule(&["pacman", "docker"], &|r| r.set = vec!["installed".into()]),
        rule(&["apk add", "docker"], &|r| {
            r.set = vec!["installed".into()]
        }),
    ]);
    Transcript {
        os_release,
        release_file,
        user: "root".into(),
        port,
        steps: vec![Step::Hostname, Step::Install, Step::Configure],
        rules,
        default_exit: Some(0),
        flags: if engine_present {
            vec!["installed".into()]
        } else {
            Vec::new()
        },
        ..Transcript::default()
    }
}

/// The branches a plan took on assumption: every `command -v TOOL` probe that the OS table
/// does not decide for this OS was answered "found". One line each, for the plan's output.
pub fn assumptions(o: &Outcome) -> Vec<String> {
    let decided = os_tools::shipped(&o.os).is_some();
    let mut tools: Vec<&str> = o
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Exec { command, .. } => os_tools::probed_tool(command),
            Event::Upload { .. } => None,
        })
        .filter(|t| !os_tools::ENGINE_TOOLS.contains(t))
        .filter(|t| !(decided && os_tools::TOOLS.contains(t)))
        .collect();
    tools.sort_unstable();
    tools.dedup();
    let os = if o.os.pretty_name.is_empty() {
        format!("{} {}", o.os.id, o.os.version_id)
    } else {
        o.os.pretty_name.clone()
    };
    tools
        .into_iter()
        .map(|t| {
            format!(
                "assumed: `command -v {t}` finds {t} (dmw does not know whether {} ships it); to plan the other branch, simulate the machine with --transcript FILE",
                os.trim()
            )
        })
        .collect()
}

/// Check a run against the transcript's expectations; returns what did not hold.
pub fn check(t: &Transcript, o: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    for cmd in &o.unmatched {
        problems.push(format!("no rule answers the command: {cmd}"));
    }
    let commands: Vec<&str> = o
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Exec { command, .. } => Some(command.as_str()),
            Event::Upload { .. } => None,
        })
        .collect();
    let upload = |path: &str| {
        o.events.iter().rev().find_map(|e| match e {
            Event::Upload {
                path: p, contents, ..
            } if p == path => Some(String::from_utf8_lossy(contents).into_owned()),
            _ => None,
        })
    };
    for e in &t.expect {
        match e {
            Expect::Ok => {
                if let Err(msg) = &o.result {
                    problems.push(format!("expected success, got: {msg}"));
                }
            }
            Expect::Error(s) => match &o.result {
                Ok(()) => problems.push(format!(
                    "expected an error containing {s:?}, but every step succeeded"
                )),
                Err(msg) if !msg.contains(s.as_str()) => {
                    problems.push(format!("expected an error containing {s:?}, got: {msg}"))
                }
                Err(_) => {}
            },
            Expect::Ran(s) => {
                if !commands.iter().any(|c| c.contains(s.as_str())) {
                    problems.push(format!("no command contained {s:?}"));
                }
            }
            Expect::NotRan(s) => {
                if let Some(c) = commands.iter().find(|c| c.contains(s.as_str())) {
                    problems.push(format!("a forbidden command ran ({s:?}): {c}"));
                }
            }
            Expect::Uploaded(p) => {
                if upload(p).is_none() {
                    problems.push(format!("nothing was uploaded to {p}"));
                }
            }
            Expect::UploadContains(p, s) => match upload(p) {
                None => problems.push(format!("nothing was uploaded to {p}")),
                Some(c) if !c.contains(s.as_str()) => {
                    problems.push(format!("{p} does not contain {s:?}:\n{c}"))
                }
                Some(_) => {}
            },
        }
    }
    problems
}

/// The run as text: one prompt per command (`#` as root, `$` as the user), uploads with
/// their contents.
pub fn render(o: &Outcome) -> String {
    let mut out = String::new();
    for e in &o.events {
        match e {
            Event::Exec { command, root, .. } => {
                // A shell prompt: `#` as root, `$` as the SSH user; continuation lines indented.
                let mut lines = command.trim_end().lines();
                out.push_str(if *root { "# " } else { "$ " });
                out.push_str(lines.next().unwrap_or(""));
                out.push('\n');
                for line in lines {
                    out.push_str(&format!("    {line}\n"));
                }
            }
            Event::Upload {
                path,
                mode,
                contents,
            } => {
                out.push_str(&format!("write {path} (mode {mode:o}):\n"));
                for line in String::from_utf8_lossy(contents).lines() {
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
    }
    out
}
