//! `dmw plugin`: what a plugin declares (`inspect`), and the user's approvals of plugin files
//! (`install`, `ls`, `rm`), pinned by sha256 (see `plugin::grants`), and `declare`, which
//! writes the permissions of a component another language built (`plugin::declare`).

use std::path::{Path, PathBuf};

use super::{CliError, CliResult};
use crate::app::App;
use crate::sandbox::plugin::{Kind, Source, inspect};

/// Arguments of `plugin`.
#[derive(clap::Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(clap::Subcommand)]
enum PluginCommand {
    /// Show what a plugin (FILE or builtin:NAME) is and what it asks for, without running it
    /// with any capability
    Inspect {
        /// A .wasm file, or builtin:NAME (not with --machine)
        #[arg(required_unless_present = "machine", conflicts_with = "machine")]
        plugin: Option<String>,
        /// The driver of machine NAME, and what it was given for that machine: the hosts
        /// its patterns resolved to, its TLS settings, what its VM boots
        #[arg(long, value_name = "NAME")]
        machine: Option<String>,
        /// Output format: json
        #[arg(short = 'o', long = "output", value_name = "FORMAT")]
        output: Option<String>,
    },
    /// Approve a plugin file: record what it may use, pinned by its sha256, and make it
    /// usable by its name (`--driver NAME`)
    Install {
        /// The .wasm file
        file: PathBuf,
        /// Approve without asking
        #[arg(short = 'y', long)]
        yes: bool,
        /// Also approve, without asking, programs it runs with any arguments: full trust,
        /// as such a program can do anything you can
        #[arg(long)]
        full_trust: bool,
    },
    /// Write a plugin's permissions (a TOML file) into a component built by any language's
    /// tool (componentize-py, componentize-js): inspect and install read them as the Rust
    /// SDK's
    Declare {
        /// The permissions file (TOML: capabilities, http-hosts, programs, secrets, …)
        permissions: PathBuf,
        /// The component (.wasm)
        component: PathBuf,
        /// Where to write the component that declares them
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: PathBuf,
    },
    /// Start a new plugin in Python: the template recipe or driver, renamed (then edit
    /// app.py and `dmw plugin build` it)
    New {
        /// recipe or driver
        kind: String,
        /// The plugin's name (a driver's flags start with it)
        name: String,
        /// The language (python)
        #[arg(long, default_value = "python")]
        lang: String,
        /// The folder to make (default: ./NAME)
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: Option<PathBuf>,
    },
    /// Build the Python plugin in DIR (plugin.toml, app.py) into a component with
    /// componentize-py, its permissions written into it
    Build {
        /// The plugin's folder
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where to write the component (default: DIR/NAME.wasm)
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
    },
    /// List the approved plugin files
    Ls,
    /// Withdraw the approval of a plugin
    Rm {
        /// The plugin's name
        name: String,
    },
}

/// Run `dmw plugin …`.
pub async fn run(app: &App, a: PluginArgs) -> CliResult {
    match a.command {
        PluginCommand::Inspect {
            plugin,
            machine,
            output,
        } => {
            let record = match &machine {
                Some(name) => Some(
                    app.store
                        .load(name)
                        .map_err(|e| CliError::new(format!("Error: machine \"{name}\": {e:#}")))?,
                ),
                None => None,
            };
            let source = match (
                &record,
                plugin.as_deref().map(|p| (p, p.strip_prefix("builtin:"))),
            ) {
                (Some(r), _) => Source::from_reference(&r.driver.source, Kind::Driver),
                (None, Some((_, Some(name)))) => {
                    Source::from_reference(&format!("builtin:{name}"), Kind::Driver).or_else(|_| {
                        Source::from_reference(&format!("builtin:{name}"), Kind::Recipe)
                    })
                }
                (None, Some((path, None))) => Source::from_arg(&ensure_path(path), Kind::Driver),
                (None, None) => Err(anyhow::anyhow!("give a plugin or --machine NAME")),
            }
            .map_err(|e| CliError::new(format!("Error: {e:#}")))?;
            let runtime = app.runtime()?;
            let mut found = inspect::inspect(runtime, &source).await?;
            found.machine = record
                .as_ref()
                .map(|r| inspect::MachineGrant::of(r, &app.store.machine(&r.name)));
            match output.as_deref() {
                Some("json") => println!(
                    "{}",
                    serde_json::to_string_pretty(&found)
                        .map_err(|e| CliError::new(format!("Error: {e}")))?
                ),
                Some(other) => {
                    return Err(CliError::new(format!(
                        "Error: unknown output format {other:?}: use json"
                    )));
                }
                None => print!("{}", inspect::render(&found)),
            }
            Ok(())
        }
        PluginCommand::Install {
            file,
            yes,
            full_trust,
        } => {
            let arg = ensure_path(&file.display().to_string());
            let source = Source::from_arg(&arg, Kind::Driver)
                .map_err(|e| CliError::new(format!("Error: {e:#}")))?;
            let Source::File(path) = &source else {
                return Err(CliError::new("Error: give a .wasm file to install"));
            };
            let runtime = app.runtime()?;
            let mut registry = runtime.registry()?;
            let found = inspect::inspect(runtime, &source).await?;
            // Only a byte-for-byte copy of a built-in driver (e.g. the openstack driver's own
            // .wasm) may carry a built-in's name; it is used by path, `--driver NAME` stays
            // the built-in.
            // Decided on the bytes inspected (and hashed for the approval), never re-read.
            let shadowed = crate::sandbox::plugin::builtin::driver(&found.name).is_some();
            if shadowed && !found.builtin_copy {
                return Err(CliError::new(format!(
                    "Error: the plugin calls itself \"{}\", the name of a built-in driver; it cannot be installed under that name",
                    found.name
                )));
            }
            print!("{}", inspect::render(&found));
            if let Err(why) = &found.flags_ok {
                return Err(CliError::new(format!(
                    "Error: {} cannot be installed: {why}",
                    path.display()
                )));
            }
            if let Err(why) = crate::sandbox::plugin::grants::check_imports(
                &found.imports,
                if found.kind == "driver" {
                    Kind::Driver
                } else {
                    Kind::Recipe
                },
                &found.declaration,
            ) {
                return Err(CliError::new(format!("Error: {why:#}")));
            }
            let question = format!(
                "Allow {} \"{}\" ({}) to use: {}?",
                found.kind,
                found.name,
                path.display(),
                if found.asks_beyond_default.is_empty() {
                    "nothing beyond the default grant".to_string()
                } else {
                    found.asks_beyond_default.join(", ")
                }
            );
            if !yes && !super::confirm(&question) {
                return Err(CliError::new("Nothing was installed."));
            }
            // Programs with any arguments: a distinct approval, never implied by --yes.
            if !found.full_trust.is_empty() && !full_trust {
                let programs = found.full_trust.join(" and ");
                if yes {
                    return Err(CliError::new(format!(
                        "Error: {} \"{}\" runs {programs} with any arguments: it can do anything you can ({}). Nothing was installed. To give it that trust, run `dmw plugin install --yes --full-trust {}`",
                        found.kind,
                        found.name,
                        crate::sandbox::plugin::grants::FULL_TRUST,
                        path.display()
                    )));
                }
                let phrase = "full trust";
                if !super::confirm_phrase(
                    &format!(
                        "It runs {programs} with any arguments: it can do anything you can. Type \"{phrase}\" to give it that"
                    ),
                    phrase,
                ) {
                    return Err(CliError::new("Nothing was installed."));
                }
            }
            registry.approve(inspect::approval(&found, path));
            registry.save(&app.store.grants_file())?;
            if shadowed {
                println!(
                    "Installed {} \"{}\" (sha256 {}): use it by path, --{} {} (--{} {} is the built-in one)",
                    found.kind,
                    found.name,
                    found.sha256,
                    found.kind,
                    path.display(),
                    found.kind,
                    found.name
                );
            } else {
                println!(
                    "Installed {} \"{}\" (sha256 {}): use it with --{} {}",
                    found.kind, found.name, found.sha256, found.kind, found.name
                );
            }
            Ok(())
        }
        PluginCommand::Declare {
            permissions,
            component,
            output,
        } => declare(&permissions, &component, &output),
        PluginCommand::New {
            kind,
            name,
            lang,
            output,
        } => {
            let kind = match kind.as_str() {
                "recipe" => Kind::Recipe,
                "driver" => Kind::Driver,
                other => {
                    return Err(CliError::new(format!(
                        "Error: {other:?} is neither recipe nor driver"
                    )));
                }
            };
            if lang != "python" {
                return Err(CliError::new(format!(
                    "Error: `dmw plugin new` writes Python plugins; for {lang:?}: Rust plugins start from a copy of recipes/template or guest-drivers/template (docs/writing-a-recipe.md)"
                )));
            }
            let dir = output.unwrap_or_else(|| PathBuf::from(&name));
            let written = crate::usecase::plugin_build::new_plugin(kind, &name, &dir)
                .map_err(|e| CliError::new(format!("Error: {e:#}")))?;
            for file in &written {
                println!("Wrote {}", file.display());
            }
            println!(
                "Change the places marked CHANGE in {}, then `dmw plugin build {}`",
                dir.join("app.py").display(),
                dir.display()
            );
            Ok(())
        }
        PluginCommand::Build { dir, output } => {
            let report = crate::text::report::Reporter::new(false);
            let built = crate::usecase::plugin_build::build(&dir, output.as_deref(), &report)
                .map_err(|e| {
                    CliError::new(format!(
                        "Error building the plugin in {}: {e:#}",
                        dir.display()
                    ))
                })?;
            println!(
                "Built {} {} ({} MB); `dmw plugin install {}` approves it, `dmw plugin inspect {}` shows what it asks for",
                built.kind,
                built.output.display(),
                built.size / 1_000_000,
                built.output.display(),
                built.output.display()
            );
            Ok(())
        }
        PluginCommand::Ls => {
            let registry = app.runtime()?.registry()?;
            println!("{:<16} {:<7} {:<16} FILE", "NAME", "KIND", "SHA256");
            for p in &registry.plugins {
                println!(
                    "{:<16} {:<7} {:<16} {}",
                    p.name,
                    p.kind,
                    &p.sha256[..p.sha256.len().min(16)],
                    p.path.display()
                );
            }
            Ok(())
        }
        PluginCommand::Rm { name } => {
            let path = app.store.grants_file();
            let mut registry = crate::sandbox::plugin::grants::Registry::load(&path)?;
            let before = registry.plugins.len();
            registry.plugins.retain(|p| p.name != name);
            if registry.plugins.len() == before {
                return Err(CliError::new(format!(
                    "Error: no installed plugin is called \"{name}\" (see `dmw plugin ls`)"
                )));
            }
            registry.save(&path)?;
            println!("Removed the approval of \"{name}\"");
            Ok(())
        }
    }
}

/// A plugin argument as a path (`x.wasm` in the current directory becomes `./x.wasm`).
fn ensure_path(arg: &str) -> String {
    if arg.contains('/') {
        arg.to_string()
    } else {
        format!("./{arg}")
    }
}

/// Run `dmw plugin declare PERMS IN -o OUT`.
fn declare(permissions: &Path, component: &Path, output: &Path) -> CliResult {
    use crate::sandbox::plugin::declare;
    let fail = |what: &str, e: anyhow::Error| {
        CliError::new(format!(
            "Error declaring the permissions of {}: {what}: {e:#}",
            component.display()
        ))
    };
    let text = read_bounded(permissions, 64 * 1024).map_err(|e| fail("the permissions file", e))?;
    let text = String::from_utf8(text)
        .map_err(|_| fail("the permissions file", anyhow::anyhow!("it is not UTF-8")))?;
    let section = declare::parse_file(&text)
        .and_then(|f| f.section_text())
        .map_err(|e| fail(&format!("{}", permissions.display()), e))?;
    let wasm = read_bounded(component, 512 * 1024 * 1024).map_err(|e| fail("the component", e))?;
    let (out, declared) =
        declare::declare(&wasm, &section).map_err(|e| fail("the component", e))?;
    crate::state::store::write_atomic(output, &out, 0o644)
        .map_err(|e| fail(&format!("writing {}", output.display()), e))?;
    let mut asks: Vec<String> = declared.capabilities.clone();
    asks.extend(declared.http_hosts.iter().map(|h| format!("http host {h}")));
    asks.extend(declared.programs.iter().map(|p| format!("program {p}")));
    println!(
        "Wrote {} (declares: {}); `dmw plugin inspect {}` shows what it asks for",
        output.display(),
        if asks.is_empty() {
            "nothing beyond the default grant".to_string()
        } else {
            asks.join(", ")
        },
        output.display()
    );
    Ok(())
}

/// Read at most `limit` bytes of a file the user named.
fn read_bounded(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        anyhow::bail!("{} is larger than {limit} bytes", path.display());
    }
    Ok(bytes)
}
