//! Local cloud test servers: small servers speaking the providers' real APIs (checked
//! with the providers' official clients), whose instances are real testbed hosts.
//! Shared by several clouds' tests, so not every helper is used by each.
#![allow(dead_code)]

pub mod digitalocean;
pub mod ec2;
pub mod fleet;
pub mod openstack;
pub mod server;

#[cfg(test)]
mod amazonec2_chain;
#[cfg(test)]
mod amazonec2_moto;
#[cfg(test)]
mod digitalocean_chain;
#[cfg(test)]
mod digitalocean_fidelity;
#[cfg(test)]
mod ec2_fidelity;
#[cfg(test)]
mod openstack_fidelity;
