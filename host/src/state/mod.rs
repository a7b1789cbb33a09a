//! The state wing: what dmw keeps between commands. [`store`] the machine store (one
//! directory per machine, its record, atomic private writes, the per-machine lock, the
//! file layout); [`context`] the docker CLI contexts dmw writes for machines.

pub mod context;
pub mod store;
