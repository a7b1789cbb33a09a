//! dmw: Docker Machine rebuilt. Turns a local VM, a cloud server or an existing Linux box
//! into a Docker host secured with mutual TLS. Provider drivers and per-OS install recipes
//! are sandboxed WebAssembly components; this crate is the trusted host that owns SSH, TLS,
//! the network, the disk and the machine store.

pub mod app;
pub mod capabilities;
pub mod cli;
pub mod completion;
pub mod context;
pub mod contract;
pub mod engine_api;
pub mod import;
pub mod machine;
pub mod names;
pub mod natsort;
pub mod net;
pub mod personality;
pub mod plugin;
pub mod power;
pub mod provision;
pub mod remove;
pub mod render;
pub mod report;
pub mod sandbox;
pub mod sanitize;
pub mod simulate;
pub mod ssh;
pub mod store;
pub mod swarm;
pub mod tls;
pub mod transfer;
pub mod user_file;
pub mod validate;
pub mod vm;
pub mod wait;
