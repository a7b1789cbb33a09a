//! The state wing: what dmw keeps between commands. [`store`] the machine store (one
//! directory per machine, its record, atomic private writes, the per-machine lock, the
//! file layout; `store::shared` the same store shared by a team on S3: a working copy kept
//! in step with the backend, locks, encrypted secrets); [`context`] the docker CLI contexts
//! dmw writes for machines.

pub mod context;
pub mod store;
