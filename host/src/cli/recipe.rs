//! `dmw recipe`: the install recipes — list them, or show what one would run on a machine
//! without touching it.

use std::path::PathBuf;
use std::sync::Arc;

use super::engine_args::EngineArgs;
use super::{CliError, CliResult};
use crate::app::App;
use crate::sandbox::plugin::{Kind, Source, builtin};
use crate::text::report::Reporter;
use crate::usecase::simulate::{self, Transcript};

/// Arguments of `recipe`.
#[derive(clap::Args)]
pub struct RecipeArgs {
    #[command(subcommand)]
    command: RecipeCommand,
}

#[derive(clap::Subcommand)]
enum RecipeCommand {
    /// List the built-in recipes
    Ls,
    /// Print the commands a recipe would run on a machine with the given OS (a dry run
    /// against a simulated machine: nothing is contacted)
    Plan(Box<PlanArgs>),
}

/// Arguments of `recipe plan`.
#[derive(clap::Args)]
struct PlanArgs {
    /// The machine's /etc/os-release (or a legacy release file such as /etc/centos-release)
    #[arg(long, value_name = "FILE", required_unless_present = "transcript")]
    os_release: Option<PathBuf>,
    /// Simulate the machine with this transcript instead (see tests/recipes/README.md)
    #[arg(long, value_name = "FILE", conflicts_with = "os_release")]
    transcript: Option<PathBuf>,
    /// Recipe to use instead of detecting one: a built-in name or a path to a .wasm recipe
    #[arg(long, value_name = "RECIPE")]
    recipe: Option<String>,
    /// Simulate a machine that already has Docker Engine
    #[arg(long)]
    engine_present: bool,
    /// SSH user of the simulated machine (root commands then go through sudo)
    #[arg(long, default_value = "root")]
    user: String,
    /// Engine TLS port
    #[arg(long, default_value_t = 2376)]
    engine_port: u16,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Run `dmw recipe …`.
pub async fn run(app: &App, a: RecipeArgs) -> CliResult {
    match a.command {
        RecipeCommand::Ls => ls(app).await,
        RecipeCommand::Plan(p) => plan(app, *p).await,
    }
}

async fn ls(app: &App) -> CliResult {
    let runtime = app.runtime()?;
    let report = Arc::new(Reporter::quiet(app.debug));
    println!("{:<12} DESCRIPTION", "NAME");
    for b in builtin::RECIPES {
        let (component, grant) = runtime.load_granted(&Source::Builtin(*b), Kind::Recipe)?;
        let mut r = runtime
            .recipe(
                &component,
                &grant,
                crate::sandbox::capabilities::Offer::new(
                    b.name,
                    report.clone(),
                    Default::default(),
                ),
            )
            .await?;
        println!("{:<12} {}", b.name, r.info().await?.description);
    }
    Ok(())
}

async fn plan(app: &App, a: PlanArgs) -> CliResult {
    let mut t = match (&a.transcript, &a.os_release) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))?;
            Transcript::parse(&text)
                .map_err(|e| CliError::new(format!("{}: {e:#}", path.display())))?
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))?;
            let mut t = simulate::plan_transcript(&text, a.engine_present, a.engine_port);
            t.engine = a.engine.options();
            t
        }
        (None, None) => return Err(CliError::new("give --os-release FILE or --transcript FILE")),
    };
    if a.recipe.is_some() {
        t.recipe = a.recipe.clone();
    }
    if a.transcript.is_none() {
        t.user = a.user.clone();
    }
    let a_engine_present = a.engine_present || !t.flags.is_empty();
    let report = Arc::new(Reporter::quiet(app.debug));
    let outcome = simulate::run(app, &t, report).await?;
    let os = if outcome.os.pretty_name.is_empty() {
        outcome.os.id.clone()
    } else {
        outcome.os.pretty_name.clone()
    };
    println!(
        "# recipe {} for {os}; install method {}; SSH user {} (commands after # run as root{}, after $ as the user)",
        outcome.recipe,
        t.engine.install_method,
        t.user,
        if t.user == "root" {
            ""
        } else {
            ", through sudo"
        }
    );
    print!("{}", simulate::render(&outcome));
    if a.transcript.is_none() {
        for line in simulate::assumptions(&outcome) {
            println!("# {line}");
        }
    }
    match outcome.result {
        Ok(()) => Ok(()),
        Err(e) => {
            let hint = if a_engine_present || !e.starts_with("install engine") {
                String::new()
            } else {
                "\n(the simulated machine starts without Docker Engine; for an OS that ships one, add --engine-present, or simulate the machine precisely with --transcript FILE, e.g. one of tests/recipes/transcripts/)".to_string()
            };
            Err(CliError::new(format!("the plan stops here: {e}{hint}")))
        }
    }
}
