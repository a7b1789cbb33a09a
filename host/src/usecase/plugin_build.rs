//! `dmw plugin build [DIR]`: build a plugin written in Python into a component with the
//! language's own tool — componentize-py at the version dmw is tested with, installed from
//! PyPI by the author (never downloaded by dmw) — against the WIT and the Python SDK that
//! ship inside dmw, then write its permissions (`plugin.toml`'s `[permissions]`) into it
//! (`sandbox::plugin::declare`).
//!
//! The folder holds `plugin.toml` (`name`, `kind` = recipe | driver, `language` = python,
//! an optional `[permissions]` table) and `app.py`, whose class named for the exported
//! interface (`Recipe`, `Driver`) implements it.
//!
//! componentize-py imports every interface of the world it builds for, so the build makes
//! a world of its own: the kind's default interfaces (log, store, ssh; certs for a recipe)
//! and the capabilities the `[permissions]` declare — a plugin imports exactly what it
//! declares, and the host's import check (`grants::check_imports`) holds for it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

use crate::sandbox::plugin::Kind;
use crate::sandbox::plugin::declare::{self, PermissionsFile};
use crate::text::report::Reporter;

/// The componentize-py release dmw's Python SDK is tested with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// Environment variable: the componentize-py program to use (default: on `PATH`).
pub const COMPONENTIZE_PY_ENV: &str = "DMW_COMPONENTIZE_PY";

/// The plugin contract's WIT files, as dmw was built with them.
const WIT: &[(&str, &str)] = &[
    ("certs.wit", include_str!("../../../wit/certs.wit")),
    ("driver.wit", include_str!("../../../wit/driver.wit")),
    ("files.wit", include_str!("../../../wit/files.wit")),
    ("keys.wit", include_str!("../../../wit/keys.wit")),
    ("log.wit", include_str!("../../../wit/log.wit")),
    ("process.wit", include_str!("../../../wit/process.wit")),
    ("recipe.wit", include_str!("../../../wit/recipe.wit")),
    ("ssh.wit", include_str!("../../../wit/ssh.wit")),
    ("store.wit", include_str!("../../../wit/store.wit")),
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("vm.wit", include_str!("../../../wit/vm.wit")),
    ("worlds.wit", include_str!("../../../wit/worlds.wit")),
];

/// The Python SDK (guests/python/dmw_guest).
const PYTHON_SDK: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../../../guests/python/dmw_guest/__init__.py"),
    ),
    (
        "driver.py",
        include_str!("../../../guests/python/dmw_guest/driver.py"),
    ),
    (
        "engine.py",
        include_str!("../../../guests/python/dmw_guest/engine.py"),
    ),
];

/// The Python templates `dmw plugin new` starts from: (kind, file, text).
const PYTHON_TEMPLATES: &[(Kind, &str, &str)] = &[
    (
        Kind::Recipe,
        "plugin.toml",
        include_str!("../../../recipes/template-python/plugin.toml"),
    ),
    (
        Kind::Recipe,
        "app.py",
        include_str!("../../../recipes/template-python/app.py"),
    ),
    (
        Kind::Driver,
        "plugin.toml",
        include_str!("../../../guest-drivers/template-python/plugin.toml"),
    ),
    (
        Kind::Driver,
        "app.py",
        include_str!("../../../guest-drivers/template-python/app.py"),
    ),
];

/// Write a new Python plugin of `kind` called `name` into the new folder `dir` (`dmw
/// plugin new`): the template recipe or driver with its name (and, for a driver, its flags'
/// and environment variables' prefixes) changed to `name`; returns the files written.
pub fn new_plugin(kind: Kind, name: &str, dir: &Path) -> Result<Vec<PathBuf>> {
    if !crate::sandbox::plugin::flag_policy::is_driver_name(name) {
        bail!(
            "{name:?} cannot name a plugin: use lower-case letters, digits and '-', starting with a letter (at most 32; a driver's flags start with it)"
        );
    }
    if dir.exists() {
        bail!("{} exists already: give a new folder", dir.display());
    }
    let upper = name.to_uppercase().replace('-', "_");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let mut written = Vec::new();
    for (k, file, text) in PYTHON_TEMPLATES {
        if *k != kind {
            continue;
        }
        let text = match kind {
            Kind::Recipe => text
                .replace("name = \"acme\"", &format!("name = \"{name}\""))
                .replace(
                    "RecipeInfo(name=\"acme\"",
                    &format!("RecipeInfo(name=\"{name}\""),
                ),
            Kind::Driver => text
                .replace("name = \"existing\"", &format!("name = \"{name}\""))
                .replace("NAME = \"existing\"", &format!("NAME = \"{name}\""))
                .replace("\"existing-", &format!("\"{name}-"))
                .replace("--existing-", &format!("--{name}-"))
                .replace("EXISTING_", &format!("{upper}_"))
                .replace(
                    "existing driver requires",
                    &format!("{name} driver requires"),
                ),
        };
        let path = dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// A plugin folder's `plugin.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    /// The plugin's name (the output is NAME.wasm by default).
    name: String,
    /// `recipe` or `driver`.
    kind: String,
    /// `python`.
    language: String,
    /// What it may use beyond its kind's default grant.
    #[serde(default)]
    permissions: Option<toml::Table>,
}

/// What `build` made.
#[derive(Debug)]
pub struct Built {
    /// The component written.
    pub output: PathBuf,
    /// The plugin's kind.
    pub kind: Kind,
    /// Its size in bytes.
    pub size: usize,
}

/// Build the plugin in `dir` into `output` (default `DIR/NAME.wasm`), saying what it does.
pub fn build(dir: &Path, output: Option<&Path>, report: &Reporter) -> Result<Built> {
    let manifest_path = dir.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest_path).with_context(|| {
        format!(
            "cannot read {} (a plugin folder has plugin.toml and app.py)",
            manifest_path.display()
        )
    })?;
    let manifest: Manifest = toml::from_str(&text)
        .map_err(|e| anyhow!("{}: {}", manifest_path.display(), e.message().trim()))?;
    let kind = match manifest.kind.as_str() {
        "recipe" => Kind::Recipe,
        "driver" => Kind::Driver,
        other => bail!(
            "{}: kind {other:?} is neither \"recipe\" nor \"driver\"",
            manifest_path.display()
        ),
    };
    if manifest.language != "python" {
        bail!(
            "{}: language {:?}: `dmw plugin build` builds Python plugins (Rust plugins build with `cargo build --release --target wasm32-wasip2`)",
            manifest_path.display(),
            manifest.language
        );
    }
    let name = &manifest.name;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!(
            "{}: name {name:?} must be letters, digits, '-' or '_'",
            manifest_path.display()
        );
    }
    // The permissions are checked before the slow build.
    let (section, capabilities) = match &manifest.permissions {
        Some(table) => {
            let file: PermissionsFile =
                table.clone().try_into().map_err(|e: toml::de::Error| {
                    anyhow!(
                        "{} [permissions]: {}",
                        manifest_path.display(),
                        e.message().trim()
                    )
                })?;
            let text = file.section_text()?;
            let declared = crate::sandbox::plugin::declaration::parse(text.as_bytes())?;
            (Some(text), declared.capabilities)
        }
        None => (None, Vec::new()),
    };
    let world = build_world(kind, &capabilities)?;
    if !dir.join("app.py").is_file() {
        bail!(
            "{} has no app.py (the module whose class implements the plugin)",
            dir.display()
        );
    }
    let tool = componentize_py()?;
    let work = tempfile::tempdir().context("cannot make a temporary directory")?;
    let wit = work.path().join("wit");
    let sdk = work.path().join("python/dmw_guest");
    std::fs::create_dir_all(&wit)?;
    std::fs::create_dir_all(&sdk)?;
    for (file, text) in WIT {
        std::fs::write(wit.join(file), text)?;
    }
    std::fs::write(wit.join("build.wit"), &world)?;
    for (file, text) in PYTHON_SDK {
        std::fs::write(sdk.join(file), text)?;
    }
    // The author's sources are built from a copy: the build writes __pycache__ beside them.
    let sources = work.path().join("app");
    copy_sources(dir, &sources, 0)?;
    let built = work.path().join("plugin.wasm");
    report.info(&format!(
        "Building {kind} {name} with componentize-py (about half a minute)..."
    ));
    let out = Command::new(&tool)
        .arg("-d")
        .arg(&wit)
        .args(["-w", BUILD_WORLD, "componentize", "app", "-p"])
        .arg(&sources)
        .arg("-p")
        .arg(work.path().join("python"))
        .arg("-o")
        .arg(&built)
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = said.trim_end().lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "componentize-py could not build {}:\n{}",
            dir.display(),
            crate::text::sanitize::plugin_text(&tail.join("\n"), 8 * 1024)
        );
    }
    let mut wasm = std::fs::read(&built).context("componentize-py wrote no component")?;
    if let Some(section) = section {
        wasm = declare::declare(&wasm, &section)?.0;
    }
    let output = output
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(format!("{name}.wasm")));
    crate::state::store::write_atomic(&output, &wasm, 0o644)
        .with_context(|| format!("cannot write {}", output.display()))?;
    Ok(Built {
        output,
        kind,
        size: wasm.len(),
    })
}

/// The name of the world [`build_world`] writes.
const BUILD_WORLD: &str = "dmw-build-plugin";

/// The WIT world a plugin of `kind` declaring `capabilities` is built for: the kind's
/// default interfaces and the declared capabilities that are dmw interfaces.
fn build_world(kind: Kind, capabilities: &[String]) -> Result<String> {
    let mut imports = vec!["log", "store", "ssh"];
    if kind == Kind::Recipe {
        imports.push("certs");
    }
    for c in capabilities {
        match c.as_str() {
            "ssh" | "certs" if imports.contains(&c.as_str()) => {}
            "certs" | "keys" | "process" | "files" | "vm" => imports.push(c.as_str()),
            "http" => bail!(
                "capability http: `dmw plugin build` cannot build Python plugins that make HTTP requests yet (componentize-py needs the wasi:http interfaces, which dmw does not ship); write such a plugin in Rust (guest-drivers/digitalocean shows how)"
            ),
            other => bail!("capability {other}: not one `dmw plugin build` knows"),
        }
    }
    let export = match kind {
        Kind::Recipe => "recipe",
        Kind::Driver => "driver",
    };
    let mut world =
        format!("/// What `dmw plugin build` builds this plugin for.\nworld {BUILD_WORLD} {{\n");
    for i in imports {
        world.push_str(&format!("    import {i};\n"));
    }
    world.push_str(&format!("    export {export};\n}}\n"));
    Ok(world)
}

/// Copy the Python sources of the plugin folder `from` (its `.py` files, in subfolders
/// too — not `__pycache__`, hidden folders or built components) into `to`.
fn copy_sources(from: &Path, to: &Path, depth: usize) -> Result<()> {
    if depth > 8 {
        bail!("{} nests folders too deeply", from.display());
    }
    std::fs::create_dir_all(to)?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        let kind = entry.file_type()?;
        if kind.is_dir() && !text.starts_with('.') && text != "__pycache__" {
            copy_sources(&entry.path(), &to.join(&name), depth + 1)?;
        } else if kind.is_file() && text.ends_with(".py") {
            std::fs::copy(entry.path(), to.join(&name))
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The componentize-py to run ([`COMPONENTIZE_PY_ENV`], else `PATH`), at the version dmw
/// is tested with; a missing one is an error naming the command that installs it.
fn componentize_py() -> Result<PathBuf> {
    let tool = std::env::var_os(COMPONENTIZE_PY_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("componentize-py"));
    let install = format!(
        "install it from PyPI: `python3 -m venv ~/.local/share/dmw-tools && ~/.local/share/dmw-tools/bin/pip install componentize-py=={COMPONENTIZE_PY_VERSION}`, then set {COMPONENTIZE_PY_ENV}=~/.local/share/dmw-tools/bin/componentize-py (or put it on PATH)"
    );
    let version = Command::new(&tool).arg("--version").output().map_err(|_| {
        anyhow!(
            "componentize-py ({}) was not found: {install}",
            tool.display()
        )
    })?;
    let said = String::from_utf8_lossy(&version.stdout);
    let found = said.split_whitespace().last().unwrap_or("").to_string();
    if found != COMPONENTIZE_PY_VERSION {
        bail!(
            "{} is componentize-py {found:?}; dmw's Python SDK is built with {COMPONENTIZE_PY_VERSION}: {install}",
            tool.display()
        );
    }
    Ok(tool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_wit_is_the_whole_contract() {
        let mut files: Vec<String> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit"))
                .expect("wit dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".wit"))
                .collect();
        files.sort();
        let embedded: Vec<&str> = WIT.iter().map(|(f, _)| *f).collect();
        assert_eq!(files, embedded);
        let mut sdk: Vec<String> = std::fs::read_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../guests/python/dmw_guest"
        ))
        .expect("sdk dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".py"))
        .collect();
        sdk.sort();
        let embedded: Vec<&str> = PYTHON_SDK.iter().map(|(f, _)| *f).collect();
        assert_eq!(sdk, embedded);
    }

    #[test]
    fn a_plugin_imports_what_its_kind_gets_and_what_it_declares() {
        let w = build_world(Kind::Driver, &["keys".into()]).expect("world");
        assert!(
            w.contains("import log;\n    import store;\n    import ssh;\n    import keys;\n    export driver;"),
            "{w}"
        );
        let w = build_world(Kind::Recipe, &[]).expect("world");
        assert!(w.contains("import certs;\n    export recipe;"), "{w}");
    }

    #[test]
    fn a_new_plugin_carries_its_name_everywhere_the_host_checks_it() {
        let dir = tempfile::tempdir().expect("dir");
        let folder = dir.path().join("my-cloud");
        new_plugin(Kind::Driver, "my-cloud", &folder).expect("new");
        let app = std::fs::read_to_string(folder.join("app.py")).expect("app");
        assert!(app.contains("NAME = \"my-cloud\""), "{app}");
        assert!(app.contains("HOST = \"my-cloud-host\""), "{app}");
        assert!(app.contains("env=\"MY_CLOUD_HOST\""), "{app}");
        assert!(
            !app.contains("\"existing-") && !app.contains("EXISTING_"),
            "{app}"
        );
        let toml = std::fs::read_to_string(folder.join("plugin.toml")).expect("toml");
        assert!(toml.contains("name = \"my-cloud\"") && toml.contains("kind = \"driver\""));
        let e = new_plugin(Kind::Driver, "my-cloud", &folder).expect_err("exists");
        assert!(e.to_string().contains("exists already"), "{e}");
        for bad in ["My", "a b", "-x", "x/y", ""] {
            assert!(
                new_plugin(Kind::Recipe, bad, &dir.path().join("r")).is_err(),
                "{bad}"
            );
        }
        let recipe = dir.path().join("golden");
        new_plugin(Kind::Recipe, "golden", &recipe).expect("recipe");
        let app = std::fs::read_to_string(recipe.join("app.py")).expect("app");
        assert!(app.contains("RecipeInfo(name=\"golden\""), "{app}");
    }

    #[test]
    fn a_bad_manifest_is_refused_before_building() {
        let dir = tempfile::tempdir().expect("dir");
        let report = Reporter::quiet(false);
        for (manifest, why) in [
            (
                "name = \"x\"\nkind = \"thing\"\nlanguage = \"python\"",
                "neither",
            ),
            (
                "name = \"x\"\nkind = \"recipe\"\nlanguage = \"go\"",
                "builds Python",
            ),
            (
                "name = \"a b\"\nkind = \"recipe\"\nlanguage = \"python\"",
                "letters",
            ),
            (
                "name = \"x\"\nkind = \"recipe\"\nlanguage = \"python\"\n[permissions]\ncapabilities = [\"root\"]",
                "does not know",
            ),
            (
                "name = \"x\"\nkind = \"recipe\"\nlanguage = \"python\"",
                "no app.py",
            ),
        ] {
            std::fs::write(dir.path().join("plugin.toml"), manifest).expect("write");
            let e = build(dir.path(), None, &report).expect_err(manifest);
            assert!(format!("{e:#}").contains(why), "{manifest}: {e:#}");
        }
    }
}
