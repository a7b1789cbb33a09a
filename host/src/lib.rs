//! dmw: Docker Machine rebuilt. Turns a local VM, a cloud server or an existing Linux box
//! into a Docker host secured with mutual TLS. Provider drivers and per-OS install recipes
//! are sandboxed WebAssembly components; this crate is the trusted host that owns SSH, TLS,
//! the network, the disk and the machine store.
//!
//! The crate is grouped in wings, each a folder named for what it is for (see
//! docs/architecture.md): [`cli`] the face (commands, rendering, completion),
//! [`usecase`] what the commands do (create, provision, power, rm, swarm, import),
//! [`sandbox`] the plugin host (runtime, contract, capabilities, the guards around a
//! plugin's files), [`net`] the network (HTTP client, SSH, TLS, the Docker Engine API,
//! transfers), [`vm`] local VMs (QEMU, images), [`state`] what is kept (the machine store,
//! docker contexts) and [`text`] the words (names, sanitizing, checks, reports, the
//! docker-machine personality); [`app`] ties the store and the runtime together for the
//! commands.

pub mod app;
pub mod cli;
pub mod net;
pub mod sandbox;
pub mod state;
pub mod text;
pub mod usecase;
pub mod vm;
