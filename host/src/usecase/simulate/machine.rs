//! A simulated machine: answers commands from a transcript's rules and records everything.

use std::collections::BTreeSet;
use std::sync::Mutex;

use super::transcript::{Rule, Transcript};
use crate::net::ssh::Output;

/// Something the recipe did to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A command ran.
    Exec {
        /// The command line.
        command: String,
        /// Run as root.
        root: bool,
        /// The exit status it got.
        exit: i32,
    },
    /// A file was written.
    Upload {
        /// Remote path.
        path: String,
        /// Mode.
        mode: u32,
        /// Contents (placeholders for key material).
        contents: Vec<u8>,
    },
}

struct State {
    rules: Vec<Rule>,
    used: Vec<bool>,
    flags: BTreeSet<String>,
    events: Vec<Event>,
    unmatched: Vec<String>,
}

/// The simulated machine of one transcript run.
pub struct Machine {
    state: Mutex<State>,
    default_exit: Option<i32>,
}

/// Exit status of a command no rule answers in a strict transcript.
pub const UNMATCHED_EXIT: i32 = 127;

impl Machine {
    /// A machine that answers as `t` says.
    pub fn new(t: &Transcript) -> Machine {
        Machine {
            state: Mutex::new(State {
                used: vec![false; t.rules.len()],
                rules: t.rules.clone(),
                flags: t.flags.iter().cloned().collect(),
                events: Vec::new(),
                unmatched: Vec::new(),
            }),
            default_exit: t.default_exit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answer a command.
    pub fn exec(&self, command: &str, root: bool) -> Output {
        let mut s = self.lock();
        let hit = (0..s.rules.len()).find(|&i| {
            let r = &s.rules[i];
            !(r.once && s.used[i])
                && r.patterns.iter().all(|p| command.contains(p.as_str()))
                && r.when.iter().all(|f| s.flags.contains(f))
                && !r.unless.iter().any(|f| s.flags.contains(f))
        });
        let out = match hit {
            Some(i) => {
                s.used[i] = true;
                let r = s.rules[i].clone();
                for f in &r.set {
                    s.flags.insert(f.clone());
                }
                for f in &r.clear {
                    s.flags.remove(f);
                }
                Output {
                    code: r.exit,
                    stdout: r.stdout.into_bytes(),
                    stderr: r.stderr.into_bytes(),
                }
            }
            None => match self.default_exit {
                Some(code) => Output {
                    code,
                    ..Output::default()
                },
                None => {
                    s.unmatched.push(command.to_string());
                    Output {
                        code: UNMATCHED_EXIT,
                        stderr: b"dmw transcript: no rule answers this command\n".to_vec(),
                        ..Output::default()
                    }
                }
            },
        };
        s.events.push(Event::Exec {
            command: command.to_string(),
            root,
            exit: out.code,
        });
        out
    }

    /// Record an upload.
    pub fn upload(&self, path: &str, contents: &[u8], mode: u32) {
        self.lock().events.push(Event::Upload {
            path: path.to_string(),
            mode,
            contents: contents.to_vec(),
        });
    }

    /// Everything that happened, in order.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// Commands no rule answered (strict transcripts only).
    pub fn unmatched(&self) -> Vec<String> {
        self.lock().unmatched.clone()
    }
}

impl crate::sandbox::capabilities::SimulatedMachine for Machine {
    fn exec(&self, command: &str, root: bool) -> Output {
        Machine::exec(self, command, root)
    }

    fn upload(&self, path: &str, contents: &[u8], mode: u32) {
        Machine::upload(self, path, contents, mode)
    }
}
