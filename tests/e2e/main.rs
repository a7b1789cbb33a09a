//! End-to-end tests: the real `dmw` binary provisions real Debian hosts (testbed) and the
//! real docker CLI uses them over mutual TLS. Run with `cargo test --workspace` (as root;
//! see tests/README.md).

mod http;
mod ssh_probe;
mod support;

mod address_change;
mod chain;
mod clouds;
mod compat;
mod completion;
mod concurrency;
mod failures;
mod faults;
mod host_keys;
mod http_capability;
mod import;
mod methods;
mod openstack_driver;
mod output;
mod permissions;
mod power;
mod python_plugins;
mod security_files;
mod security_keys;
mod security_limits;
mod security_output;
mod security_programs;
mod security_vm;
mod states;
mod swarm;
mod team_store;
mod template_driver;
mod transfer;
mod vm_driver;
mod wit_versions;
