//! OS detection over SSH and the choice of the recipe: `--recipe`, else the built-in with
//! the highest `applies` score (ties: name).

use std::sync::Arc;

use anyhow::{Result, bail};

use super::os_release;
use crate::app::App;
use crate::sandbox::capabilities::{Offer, SshLink};
use crate::sandbox::plugin::recipe::OsInfo;
use crate::sandbox::plugin::{Kind, Source, builtin};
use crate::text::report::Reporter;

/// Read the OS description over SSH.
pub async fn detect_os(link: &SshLink) -> Result<OsInfo> {
    let out = link.exec(os_release::DETECT_COMMAND, false).await?;
    if out.code != 0 {
        bail!(
            "the machine has no /etc/os-release, /usr/lib/os-release or /etc/*-release file to identify its OS; pass --recipe ./my-recipe.wasm to choose a recipe yourself"
        );
    }
    Ok(os_release::parse_detection(&out.stdout_text()))
}

/// Pick the recipe: `--recipe` if given, else the built-in with the highest score (ties: name).
pub async fn choose_recipe(
    app: &App,
    os: &OsInfo,
    over: Option<&Source>,
    report: Arc<Reporter>,
) -> Result<(Source, String)> {
    let runtime = app.runtime()?;
    if let Some(source) = over {
        let (component, grant) = runtime.load_granted(source, Kind::Recipe)?;
        let mut r = runtime
            .recipe(
                &component,
                &grant,
                Offer::new("recipe", report.clone(), Default::default()),
            )
            .await?;
        let name = r.info().await?.name;
        if r.applies(os).await? == 0 {
            report.warn(&format!(
                "recipe {name} says it does not apply to {} {}; using it as asked",
                os.id, os.version_id
            ));
        }
        return Ok((source.clone(), name));
    }
    let mut best: Option<(u32, String, Source)> = None;
    for b in builtin::RECIPES {
        let (component, grant) = runtime.load_granted(&Source::Builtin(*b), Kind::Recipe)?;
        let mut r = runtime
            .recipe(
                &component,
                &grant,
                Offer::new(b.name, report.clone(), Default::default()),
            )
            .await?;
        let score = r.applies(os).await?;
        report.debug(&format!(
            "recipe {} scores {score} for {} {}",
            b.name, os.id, os.version_id
        ));
        if score > 0 {
            let better = match &best {
                None => true,
                Some((s, n, _)) => score > *s || (score == *s && b.name < n.as_str()),
            };
            if better {
                best = Some((score, b.name.to_string(), Source::Builtin(*b)));
            }
        }
    }
    match best {
        Some((_, name, source)) => Ok((source, name)),
        None => {
            let names: Vec<&str> = builtin::RECIPES.iter().map(|b| b.name).collect();
            bail!(
                "OS type not recognized: detected ID={:?} ID_LIKE={:?} VERSION_ID={:?} ({}); no built-in recipe ({}) claims it. Pass --recipe ./my-recipe.wasm to use your own (see docs/writing-a-recipe.md)",
                os.id,
                os.id_like.join(" "),
                os.version_id,
                if os.pretty_name.is_empty() {
                    "no PRETTY_NAME"
                } else {
                    &os.pretty_name
                },
                names.join(", ")
            )
        }
    }
}
