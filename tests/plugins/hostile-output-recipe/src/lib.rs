//! Hostile test fixture (security finding 6): a recipe whose install step runs a command
//! that writes 1 GiB to standard output on the target (`head -c 1073741824 /dev/zero`),
//! to make the host buffer it all. The test checks that the host stops the command at its
//! output cap with a clear error and that its own memory stays bounded.

dmw_guest::generate!("recipe-plugin", "../../../wit");

use dmw_guest::{Error, Result};
use exports::dmw::plugin::recipe::{EngineConfig, Guest, OsInfo, RecipeInfo};

/// The flooding recipe.
struct Flood;

impl Guest for Flood {
    fn info() -> RecipeInfo {
        RecipeInfo {
            name: "flood".into(),
            description: "Hostile test recipe: floods the host with command output".into(),
        }
    }

    fn applies(_os: OsInfo) -> u32 {
        1
    }

    fn set_hostname(_name: String) -> Result<()> {
        Ok(())
    }

    fn install_engine(_config: EngineConfig) -> Result<()> {
        let out = dmw_guest::host::exec_root("head -c 1073741824 /dev/zero")?;
        Err(Error::Failed(format!(
            "the host handed back {} bytes of output",
            out.stdout.len()
        )))
    }

    fn configure_engine(_config: EngineConfig) -> Result<()> {
        Ok(())
    }

    fn upgrade_engine(_config: EngineConfig) -> Result<()> {
        Ok(())
    }

    fn restart_engine() -> Result<()> {
        Ok(())
    }
}

export!(Flood);
