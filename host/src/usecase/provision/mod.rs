//! The provisioning pipeline: from a name and a driver to a Docker engine answering over
//! mutual TLS. Every step is named; a failure is recorded in the machine's record (which
//! `ls` shows and `rm` removes) and never touches other machines.
//!
//! `new_machine.rs` is the create use-case (driver loading, the values read for the
//! driver, claim and lock, context, swarm) around `create.rs`, the create pipeline;
//! `rerun.rs` the re-runs of the recipe on existing machines (provision, upgrade,
//! regenerate-certs), `recipe_choice.rs` OS detection and recipe selection, `steps.rs` the recipe steps create and the re-runs share; this module
//! keeps the types they share.

mod create;
pub mod machine_key;
mod new_machine;
pub mod os_release;
mod recipe_choice;
mod rerun;
mod steps;

use std::sync::Arc;

use crate::app::App;
use crate::state::store::MachineRecord;
use crate::text::report::Reporter;

pub use create::{CreateRequest, create};
pub use new_machine::{
    CreateFailure, Left, LoadFailure, LoadedDriver, NewMachine, default_driver, load_driver,
    new_machine,
};
pub use recipe_choice::{choose_recipe, detect_os};
pub use rerun::{
    regenerate_certs, regenerate_certs_locked, reprovision, reprovision_accepting_host_key, upgrade,
};
pub use steps::{bootstrap_certs, cert_org, check_tls_san, engine_config, server_sans};

/// A failed pipeline step.
#[derive(Debug)]
pub struct StepFailure {
    /// Machine name.
    pub machine: String,
    /// Step name, e.g. `wait for SSH`.
    pub step: &'static str,
    /// What went wrong.
    pub error: anyhow::Error,
    /// Process exit code (3 for a failed pre-create check, as Docker Machine).
    pub exit_code: i32,
}

/// The step of a failure to take a machine's lock (it does not exist, or its lock file
/// cannot be opened): its error is the whole message.
pub const LOCK_STEP: &str = "lock machine";

impl StepFailure {
    /// A failure of `step` on machine `machine`, with exit code 1.
    pub fn new(machine: &str, step: &'static str, error: anyhow::Error) -> StepFailure {
        StepFailure {
            machine: machine.to_string(),
            step,
            error,
            exit_code: 1,
        }
    }

    /// Whether it failed because a file system is full (ENOSPC anywhere in its cause: the
    /// store's, where every write of a run goes).
    pub fn no_space(&self) -> bool {
        no_space(&self.error)
    }
}

/// Whether `error` comes from a full file system: ENOSPC anywhere in its chain, or in its
/// words when it crossed the plugin boundary as text (a capability's write the recipe
/// called; a plugin that forges the words only adds the advice to free space).
fn no_space(error: &anyhow::Error) -> bool {
    let words = std::io::Error::from_raw_os_error(libc::ENOSPC).to_string();
    error.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.raw_os_error() == Some(libc::ENOSPC))
            || c.to_string().contains(&words)
    })
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "machine \"{}\": {} failed: {:#}",
            self.machine, self.step, self.error
        )
    }
}

/// One machine's pipeline run: the record it fills in and the report it writes to.
struct Run<'a> {
    app: &'a App,
    record: &'a mut MachineRecord,
    report: Arc<Reporter>,
    /// Whether the driver's `create` was called: from then on something may exist at the
    /// provider, so a failure keeps the record.
    provider_called: bool,
}

impl Run<'_> {
    fn fail(&self, step: &'static str, error: anyhow::Error) -> StepFailure {
        StepFailure::new(&self.record.name, step, error)
    }

    fn save(&self, step: &'static str) -> Result<(), StepFailure> {
        self.app
            .store
            .save(self.record)
            .map_err(|e| self.fail(step, e))
    }
}
