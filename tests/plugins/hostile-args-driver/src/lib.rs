//! Hostile test fixture: a driver granted `process` whose programs are declared with
//! argument forms — `touch made-by-plugin` and `echo said: <a value>` — that tries, in
//! `pre-create-check`, to run them with other arguments, the way a driver approved for
//! `qemu-img info` would try `qemu-img convert` on the user's files:
//!
//! - `touch MARKER` (the path of `--hostile-args-marker`, outside its directory), as `run`
//!   and as `spawn`;
//! - the allowed form with one more argument (`touch made-by-plugin MARKER`) and with an
//!   option in front (`touch -c made-by-plugin`);
//! - an option where a value is allowed (`echo said: -e`), no arguments at all, and the
//!   form's literal with another case (`echo SAID: x`).
//!
//! Positive controls: `touch made-by-plugin` runs and `echo said: hello` prints
//! `said: hello`. It fails the check with `HOSTILE-CONTAINED` when every attempt was
//! refused as `denied` and the controls worked, else with `HOSTILE-BREACH:` and what worked.

use std::time::Duration;

use dmw_guest::driver::{Driver, SshEndpoint};
use dmw_guest::flags::{Flag, Flags};
use dmw_guest::process;
use dmw_guest::{Error, Result, store};

dmw_guest::permissions! {
    capability "process";
    program "touch" args ["made-by-plugin"];
    program "echo" args ["said:", "*"];
}

/// The hostile argument driver.
struct HostileArgs;

impl Driver for HostileArgs {
    const NAME: &'static str = "hostile-args";
    const DESCRIPTION: &'static str =
        "Hostile test driver: runs its declared programs with undeclared arguments";

    fn create_flags() -> Vec<Flag> {
        vec![Flag::text(
            "hostile-args-marker",
            "A file outside the driver's directory it tries to create",
        )]
    }

    fn set_config(_machine_name: &str, flags: &Flags) -> Result<()> {
        if let Some(marker) = flags.text("hostile-args-marker") {
            store::set("marker", marker);
        }
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        let t = Duration::from_secs(10);
        let marker = store::require("marker")?;
        let mut breach = Vec::new();
        let mut broken = Vec::new();
        let attempts: [(&str, Vec<&str>); 7] = [
            ("touch", vec![marker.as_str()]),
            ("touch", vec!["made-by-plugin", marker.as_str()]),
            ("touch", vec!["-c", "made-by-plugin"]),
            ("touch", vec![]),
            ("echo", vec!["said:", "-e"]),
            ("echo", vec!["SAID:", "x"]),
            ("echo", vec!["said:", "a", "b"]),
        ];
        for (program, args) in &attempts {
            match process::run(program, args, t) {
                Err(Error::Denied(_)) => {}
                Err(e) => breach.push(format!(
                    "{program} {args:?} was not denied but failed: {}",
                    e.message()
                )),
                Ok(_) => breach.push(format!("ran {program} {args:?}")),
            }
        }
        if !matches!(
            process::spawn("marker", "touch", &[marker.as_str()]),
            Err(Error::Denied(_))
        ) {
            breach.push("spawned touch on the marker".to_string());
        }
        if let Err(e) = process::run_ok("touch", &["made-by-plugin"], t) {
            broken.push(format!(
                "the declared form of touch did not run: {}",
                e.message()
            ));
        }
        match process::run_ok("echo", &["said:", "hello"], t) {
            Ok(out) if out.trim() == "said: hello" => {}
            Ok(out) => broken.push(format!("echo printed {out:?}")),
            Err(e) => broken.push(format!(
                "the declared form of echo did not run: {}",
                e.message()
            )),
        }
        dmw_test_hostile_verdict::verdict(breach, broken)
    }

    fn address() -> Result<String> {
        dmw_test_hostile_verdict::address()
    }

    fn ssh_endpoint() -> Result<SshEndpoint> {
        dmw_test_hostile_verdict::ssh_endpoint()
    }
}

dmw_guest::export_driver!(HostileArgs, "../../../wit");
