//! The `rhel` recipe (being written: claims no OS yet).

dmw_guest::generate!("recipe-plugin");

use dmw_guest::{Error, Result};
use exports::dmw::plugin::recipe::{EngineConfig, Guest, OsInfo, RecipeInfo};

/// The recipe.
struct Recipe;

/// Every step until the recipe is written.
fn todo() -> Result<()> {
    Err(Error::Unsupported("the rhel recipe is not written yet".into()))
}

impl Guest for Recipe {
    fn info() -> RecipeInfo {
        RecipeInfo { name: "rhel".into(), description: "(being written)".into() }
    }

    fn applies(_os: OsInfo) -> u32 {
        0
    }

    fn set_hostname(_name: String) -> Result<()> {
        todo()
    }

    fn install_engine(_config: EngineConfig) -> Result<()> {
        todo()
    }

    fn configure_engine(_config: EngineConfig) -> Result<()> {
        todo()
    }

    fn upgrade_engine(_config: EngineConfig) -> Result<()> {
        todo()
    }

    fn restart_engine() -> Result<()> {
        todo()
    }
}

export!(Recipe);
