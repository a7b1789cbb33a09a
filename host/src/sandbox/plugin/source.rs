//! Where a plugin comes from (a built-in, a file, an installed plugin) and its kind.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};

use super::builtin;

/// Where a plugin comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Embedded in the binary.
    Builtin(builtin::Builtin),
    /// A `.wasm` file given by path.
    File(PathBuf),
    /// The file of a plugin the user installed under its name (`dmw plugin install`): its
    /// bytes must hash to the approved sha256, checked on the very bytes that are compiled.
    Installed {
        /// The name it was installed under.
        name: String,
        /// The file, absolute.
        path: PathBuf,
        /// The approved sha256 (hex).
        sha256: String,
    },
}

impl Source {
    /// The text stored in the machine record (`builtin:NAME` or an absolute path).
    pub fn reference(&self) -> String {
        match self {
            Source::Builtin(b) => format!("builtin:{}", b.name),
            Source::File(p) | Source::Installed { path: p, .. } => p.display().to_string(),
        }
    }

    /// The file, for a plugin that comes from one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Source::Builtin(_) => None,
            Source::File(p) | Source::Installed { path: p, .. } => Some(p),
        }
    }

    /// Resolve a record's reference back to a source.
    pub fn from_reference(reference: &str, kind: Kind) -> Result<Source> {
        if let Some(name) = reference.strip_prefix("builtin:") {
            let found = match kind {
                Kind::Driver => builtin::driver(name),
                Kind::Recipe => builtin::recipe(name),
            };
            return found
                .map(Source::Builtin)
                .ok_or_else(|| anyhow!("this dmw has no built-in {kind} \"{name}\""));
        }
        Ok(Source::File(PathBuf::from(reference)))
    }

    /// Resolve a `--driver`/`--recipe` argument: a built-in name, or a path to a `.wasm` file.
    pub fn from_arg(arg: &str, kind: Kind) -> Result<Source> {
        let looks_like_path = arg.contains('/') || arg.ends_with(".wasm");
        if !looks_like_path {
            let found = match kind {
                Kind::Driver => builtin::driver(arg),
                Kind::Recipe => builtin::recipe(arg),
            };
            return found.map(Source::Builtin).ok_or_else(|| {
                let names: Vec<&str> = match kind {
                    Kind::Driver => builtin::DRIVERS.iter().map(|b| b.name).collect(),
                    Kind::Recipe => builtin::RECIPES.iter().map(|b| b.name).collect(),
                };
                anyhow!(
                    "{kind} \"{arg}\" not found: built-in {kind}s are {}; to use a plugin file, pass its path (e.g. --{kind} ./{arg}.wasm)",
                    names.join(", ")
                )
            });
        }
        let path = Path::new(arg);
        let abs = std::fs::canonicalize(path)
            .with_context(|| format!("{kind} file {arg} cannot be read"))?;
        Ok(Source::File(abs))
    }
}

/// The two kinds of plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A provider driver.
    Driver,
    /// An OS-family recipe.
    Recipe,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Driver => "driver",
            Kind::Recipe => "recipe",
        })
    }
}
