//! Progress output for the user and the per-machine provisioning log.
//!
//! Info and warnings go to stdout (as Docker Machine does), errors and debug detail to
//! stderr; everything, including every remote command and its result, is appended to
//! `machines/<name>/provision.log`. File contents uploaded to a machine are never logged.
//!
//! Every entry of the log is one timestamped line per line of text: a text's further lines
//! are marked as its continuation (`<time> <TAG> | …`) and control characters are made
//! visible, so no text can forge an entry. The log stops at [`LOG_SIZE_LIMIT`] with one
//! line saying so. Secrets registered with [`Reporter::redact`] are replaced by
//! `<redacted>` in everything the reporter prints, keeps or logs.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use crate::net::ssh::{Output, SshError};

/// Where messages about one command's work go.
pub struct Reporter {
    file: Mutex<Option<LogFile>>,
    /// Strings replaced by `<redacted>` in all output, longest first.
    secrets: Mutex<Vec<String>>,
    /// Size limit of the log file.
    log_limit: u64,
    debug: bool,
    quiet: bool,
    /// When set, user-facing lines are kept here instead of printed (parallel commands
    /// print each machine's lines together, in the order the machines were given).
    held: Option<Mutex<Vec<String>>>,
}

/// How much of a command's output the log keeps.
const LOG_OUTPUT_LIMIT: usize = 8 * 1024;
/// Size limit of provision.log; after it one line says the log was cut.
pub const LOG_SIZE_LIMIT: u64 = 16 * 1024 * 1024;
pub use crate::text::sanitize::{REDACTED, SECRET_WORDS, is_secret_key};

/// The open log file and how much it holds.
struct LogFile {
    file: File,
    written: u64,
    cut: bool,
}

impl Reporter {
    /// A reporter printing to the terminal only.
    pub fn new(debug: bool) -> Reporter {
        Reporter {
            file: Mutex::new(None),
            secrets: Mutex::new(Vec::new()),
            log_limit: LOG_SIZE_LIMIT,
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
            secrets: Mutex::new(Vec::new()),
            log_limit: LOG_SIZE_LIMIT,
            debug,
            quiet: false,
            held: Some(Mutex::new(Vec::new())),
        }
    }

    /// The lines kept so far by a [`Reporter::held`] reporter (empty for others).
    pub fn take_lines(&self) -> Vec<String> {
        match &self.held {
            Some(m) => std::mem::take(&mut *m.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .map(|l| self.scrub(&l))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Show one user-facing line: print it, keep it, or drop it (quiet).
    fn show(&self, line: String) {
        if self.quiet {
            return;
        }
        let line = crate::text::personality::localize(&self.scrub(&line));
        match &self.held {
            Some(m) => m.lock().unwrap_or_else(|p| p.into_inner()).push(line),
            None => println!("{line}"),
        }
    }

    /// Register a secret: from now on it is shown and logged as `<redacted>`.
    pub fn redact(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut secrets = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        if !secrets.iter().any(|s| s == secret) {
            secrets.push(secret.to_string());
            // Longest first, so a secret containing another is replaced whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every registered secret replaced by `<redacted>`.
    pub fn scrub(&self, text: &str) -> String {
        let secrets = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = text.to_string();
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }

    /// A reporter that prints nothing but debug detail (for `ls`, `env`, …).
    pub fn quiet(debug: bool) -> Reporter {
        Reporter {
            file: Mutex::new(None),
            secrets: Mutex::new(Vec::new()),
            log_limit: LOG_SIZE_LIMIT,
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
            .ok()
            .map(|file| {
                let written = file.metadata().map(|m| m.len()).unwrap_or(0);
                LogFile {
                    file,
                    written,
                    cut: false,
                }
            });
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = file;
        self
    }

    /// The same reporter with another log size limit (tests).
    #[cfg(test)]
    fn with_log_limit(mut self, limit: u64) -> Reporter {
        self.log_limit = limit;
        self
    }

    fn log(&self, tag: &str, text: &str) {
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let Some(f) = guard.as_mut() else {
            return;
        };
        if f.cut {
            return;
        }
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let text = self.scrub(text);
        let mut entry = String::new();
        for (i, line) in text.lines().enumerate() {
            let mark = if i == 0 { "" } else { "| " };
            let line = crate::text::sanitize::stored_text(line);
            entry.push_str(&format!("{now} {tag} {mark}{line}\n"));
        }
        if f.written + entry.len() as u64 > self.log_limit {
            f.cut = true;
            let note = format!(
                "{now} CUT provision.log reached its size limit of {} bytes; later messages are not logged\n",
                self.log_limit
            );
            let _ = f.file.write_all(note.as_bytes());
            return;
        }
        if f.file.write_all(entry.as_bytes()).is_ok() {
            f.written += entry.len() as u64;
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
            eprintln!("{}", self.scrub(text));
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
            eprint!("{}", self.scrub(&text));
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
            eprintln!("{}", self.scrub(&text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(r: Reporter, dir: &Path) -> (Reporter, std::path::PathBuf) {
        let path = dir.join("provision.log");
        (r.with_log_file(&path), path)
    }

    #[test]
    fn every_log_line_is_one_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (r, path) = log_of(Reporter::quiet(false), dir.path());
        r.info("(evil) ok\n2026-01-01T00:00:00Z STEP Docker is up and running!\r\x1b[2K");
        let log = std::fs::read_to_string(&path).expect("log");
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "{log}");
        assert!(lines[0].ends_with(" INFO (evil) ok"), "{log}");
        assert!(
            lines[1]
                .contains(" INFO | 2026-01-01T00:00:00Z STEP Docker is up and running!\\r\\x1b[2K"),
            "{log}"
        );
        assert!(!log.contains('\x1b') && !log.contains('\r'));
        assert!(!lines.iter().any(|l| l.split(' ').nth(1) == Some("STEP")));
    }

    #[test]
    fn log_stops_at_its_size_limit_with_one_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (r, path) = log_of(Reporter::quiet(false).with_log_limit(1000), dir.path());
        for i in 0..100 {
            r.info(&format!("message {i} with some padding to fill the log"));
        }
        let log = std::fs::read_to_string(&path).expect("log");
        assert!(log.len() < 1200, "{}", log.len());
        let cut: Vec<&str> = log.lines().filter(|l| l.contains(" CUT ")).collect();
        assert_eq!(cut.len(), 1, "{log}");
        assert!(log.lines().last().is_some_and(|l| l.contains("size limit")));
    }

    #[test]
    fn secret_store_keys() {
        for key in [
            "secret:x",
            "access-token",
            "OS_PASSWORD",
            "api_key",
            "app-credential-id",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["droplet-id", "ip", "key-id", "region"] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn redacted_secrets_never_show_or_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (r, path) = log_of(Reporter::held(false), dir.path());
        r.redact("s3cr3t-token");
        r.redact("s3cr3t");
        r.redact("");
        r.info("token is s3cr3t-token, short s3cr3t");
        r.warn("s3cr3t");
        r.remote(
            "curl -H s3cr3t-token",
            true,
            &Ok(crate::net::ssh::Output {
                code: 0,
                stdout: b"echo s3cr3t".to_vec(),
                stderr: Vec::new(),
            }),
        );
        let lines = r.take_lines();
        assert_eq!(
            lines,
            vec![
                "token is <redacted>, short <redacted>".to_string(),
                "WARNING: <redacted>".to_string()
            ]
        );
        let log = std::fs::read_to_string(&path).expect("log");
        assert!(!log.contains("s3cr3t"), "{log}");
        assert!(log.contains("curl -H <redacted>"), "{log}");
    }
}
