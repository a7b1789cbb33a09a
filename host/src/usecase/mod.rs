//! The use-case wing: what the commands do, each under the machine's lock, callable by a
//! library user as by the CLI. [`provision`] create (`provision::new_machine`) and the
//! re-runs of the recipe (provision, upgrade, regenerate-certs); [`power`] start, stop,
//! restart, kill through the driver, and [`readdress`] the same following a machine to a
//! new address (its certificate re-issued); [`remove`] rm; [`swarm`] Swarm mode;
//! [`import`] machines from a Docker Machine store; [`machine`] a machine's live state;
//! [`wait`] the waits they share; [`simulate`] recipes on simulated machines (`dmw recipe
//! plan`, transcripts); [`plugin_build`] Python plugins built into components (`dmw plugin
//! build`); [`team_store`] `dmw store`: choosing, joining and sharing a team's store.

pub mod import;
pub mod machine;
pub mod plugin_build;
pub mod power;
pub mod provision;
pub mod readdress;
pub mod remove;
pub mod simulate;
pub mod swarm;
pub mod team_store;
pub mod wait;
