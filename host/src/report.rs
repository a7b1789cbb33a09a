//! Progress output for the user and the per-machine provisioning log.
//!
//! Info and warnings go to stdout (as Docker Machine does), errors and debug detail to
//! stderr; everything, including every remote command and its result, is appended to
//! `machines/<name>/provision.log`. File contents uploaded to a machine are never logged.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use crate::ssh::{Output, SshError};

/// Where messages about one command's work go.
pub struct Reporter {
    file: Mutex<Option<File>>,
    debug: bool,
    quiet: bool,
    /// When set, user-facing lines are kept here instead of printed (parallel commands
    /// print each machine's lines together, in the order the machines were given).
    held: Option<Mutex<Vec<String>>>,
}

/// How much of a command's output the log keeps.
const LOG_OUTPUT_LIMIT: usize = 8 * 1024;

impl Reporter {
    /// A reporter printing to the terminal only.
    pub fn new(debug: bool) -> Reporter {
        Reporter {
            file: Mutex::new(None),
            debug,
            quiet: false,
            held: None,
        }
    }

    /// A reporter that keeps user-facing lines for [`Reporter::take_lines`] instead of
    /// printing them (debug detail still goes to stderr at once).
    pub fn held(debug: bool) -> Reporter {
        Reporter {
            file: Mutex::new(None),
            debug,
            quiet: false,
            held: Some(Mutex::new(Vec::new())),
        }
    }

    /// The lines kept so far by a [`Reporter::held`] reporter (empty for others).
    pub fn take_lines(&self) -> Vec<String> {
        match &self.held {
            Some(m) => std::mem::take(&mut *m.lock().unwrap_or_else(|p| p.into_inner())),
            None => Vec::new(),
        }
    }

    /// Show one user-facing line: print it, keep it, or drop it (quiet).
    fn show(&self, line: String) {
        if self.quiet {
            return;
        }
        match &self.held {
            Some(m) => m.lock().unwrap_or_else(|p| p.into_inner()).push(line),
            None => println!("{line}"),
        }
    }

    /// A reporter that prints nothing but debug detail (for `ls`, `env`, …).
    pub fn quiet(debug: bool) -> Reporter {
        Reporter {
            file: Mutex::new(None),
            debug,
            quiet: true,
            held: None,
        }
    }

    /// Also append everything to `path` (created 0600).
    pub fn with_log_file(self, path: &Path) -> Reporter {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .ok();
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = file;
        self
    }

    fn log(&self, tag: &str, text: &str) {
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = guard.as_mut() {
            let now = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            for line in text.lines() {
                let _ = writeln!(f, "{now} {tag} {line}");
            }
        }
    }

    /// A pipeline step, shown to the user.
    pub fn step(&self, text: &str) {
        self.log("STEP", text);
        self.show(text.to_string());
    }

    /// A normal message.
    pub fn info(&self, text: &str) {
        self.log("INFO", text);
        self.show(text.to_string());
    }

    /// A warning.
    pub fn warn(&self, text: &str) {
        self.log("WARN", text);
        self.show(format!("WARNING: {text}"));
    }

    /// Detail shown only with --debug.
    pub fn debug(&self, text: &str) {
        self.log("DEBUG", text);
        if self.debug {
            eprintln!("{text}");
        }
    }

    /// An error, logged (the CLI prints it to stderr once).
    pub fn error(&self, text: &str) {
        self.log("ERROR", text);
    }

    /// A remote command and its result.
    pub fn remote(&self, command: &str, root: bool, result: &Result<Output, SshError>) {
        let who = if root { "root" } else { "user" };
        let mut text = format!("$ ({who}) {command}\n");
        match result {
            Ok(out) => {
                text.push_str(&format!("exit {}\n", out.code));
                for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
                    if !bytes.is_empty() {
                        let s = String::from_utf8_lossy(
                            &bytes[bytes.len().saturating_sub(LOG_OUTPUT_LIMIT)..],
                        );
                        text.push_str(&format!("{name}:\n{s}\n"));
                    }
                }
            }
            Err(e) => text.push_str(&format!("failed: {e}\n")),
        }
        self.log("SSH", &text);
        if self.debug {
            eprint!("{text}");
        }
    }

    /// An upload (path, size and mode only).
    pub fn upload(&self, path: &str, size: usize, mode: u32, result: &Result<(), SshError>) {
        let outcome = match result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        let text = format!("upload {path} ({size} bytes, mode {mode:o}): {outcome}");
        self.log("SSH", &text);
        if self.debug {
            eprintln!("{text}");
        }
    }
}
