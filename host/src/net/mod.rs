//! The network wing: every connection dmw makes. [`http`] dmw's HTTP client (the
//! allow-list checked by address, the sender, proxies, loggable requests), lent to plugins
//! by the `http` capability and used by image downloads; [`ssh`] the russh client (host-key
//! pinning, exec, sudo, SFTP, interactive sessions); [`tls`] the CA and certificates;
//! [`engine_api`] the mutual-TLS Docker Engine API client; [`transfer`] scp over SFTP and
//! sshfs mounts.

pub mod engine_api;
pub mod http;
pub mod ssh;
pub mod tls;
pub mod transfer;
