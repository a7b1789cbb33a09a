//! SSH to a machine (russh): connect with a pinned host key, run commands, upload files.
//!
//! The host owns every connection; plugins reach the target only through
//! [`Session`] methods exposed by the `ssh` capability.

pub mod external;
pub mod pty;
/// POSIX shell quoting, shared with the guests (crate `dmw-text`).
pub use dmw_text::sh_quote;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use russh::ChannelMsg;
use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use tokio::sync::Mutex;

/// Where and how to log in to a machine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Target {
    /// Address or hostname.
    pub address: String,
    /// TCP port of sshd.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Private key file in the machine's store.
    pub key_path: PathBuf,
    /// The machine's own known_hosts file (host key pinned at create).
    pub known_hosts: PathBuf,
}

/// How a host key that is not yet pinned is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Record an unknown key (first contact, at create); refuse a changed one.
    TrustOnFirstUse,
    /// Refuse any key that is not already pinned.
    RequirePinned,
}

/// Most bytes of stdout, and of stderr, kept of one remote command: a command that writes
/// more is stopped (its channel closed) and fails, so host memory stays bounded.
pub const MAX_OUTPUT_BYTES: usize = 16 << 20;

/// Append `data` to `buf` unless that takes it over `limit` (then `false`, nothing added).
fn append_bounded(buf: &mut Vec<u8>, data: &[u8], limit: usize) -> bool {
    if buf.len().saturating_add(data.len()) > limit {
        return false;
    }
    buf.extend_from_slice(data);
    true
}

/// Output of a remote command.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Exit status (-1 when killed by a signal or unknown).
    pub code: i32,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl Output {
    /// Standard output as lossy UTF-8.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// Standard error as lossy UTF-8.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Why an SSH operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// TCP connect failed or timed out.
    #[error("cannot reach {addr}: {reason}")]
    Unreachable {
        /// host:port
        addr: String,
        /// What the network said.
        reason: String,
    },
    /// The server's host key differs from the pinned one.
    #[error(
        "the host key of {addr} changed since it was pinned in {known_hosts}: pinned {pinned}, offered now {offered} — someone may be between you and the machine, so nothing was sent. If the machine was rebuilt and {offered} is its new key (on the machine: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), `dmw provision --accept-host-key {offered} {machine}` pins it"
    )]
    HostKeyChanged {
        /// host:port
        addr: String,
        /// Where the pinned key lives.
        known_hosts: String,
        /// The machine (the name of the directory that holds `known_hosts`).
        machine: String,
        /// The pinned keys' SHA-256 fingerprints.
        pinned: String,
        /// The offered key's SHA-256 fingerprint.
        offered: String,
    },
    /// The server's host key is not pinned for this machine (and may not be learnt now).
    #[error(
        "the host key {offered} of {addr} is not pinned for this machine (in {known_hosts}), so nothing was sent. If you trust it (on the machine: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), `dmw provision --accept-host-key {offered} {machine}` pins it"
    )]
    HostKeyUnknown {
        /// host:port
        addr: String,
        /// Where pinned keys live.
        known_hosts: String,
        /// The machine (the name of the directory that holds `known_hosts`).
        machine: String,
        /// The offered key's SHA-256 fingerprint.
        offered: String,
    },
    /// The private key could not be read.
    #[error("cannot use SSH key {path}: {reason}")]
    Key {
        /// Key file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The server refused the key for this user.
    #[error(
        "{user}@{addr} refused the SSH key {key} — check --generic-ssh-user and --generic-ssh-key"
    )]
    AuthRejected {
        /// Login user.
        user: String,
        /// host:port
        addr: String,
        /// Key file.
        key: String,
    },
    /// sudo is not usable without a password for a non-root user.
    #[error(
        "user {user} on {addr} cannot run sudo without a password ({detail}); give it passwordless sudo (NOPASSWD) or log in as root"
    )]
    NoSudo {
        /// Login user.
        user: String,
        /// host:port
        addr: String,
        /// What sudo said.
        detail: String,
    },
    /// A command wrote more than [`MAX_OUTPUT_BYTES`] on stdout or stderr.
    #[error(
        "command output exceeded {} MiB on {stream} (on {addr}); the command was stopped",
        MAX_OUTPUT_BYTES >> 20
    )]
    OutputTooLarge {
        /// host:port
        addr: String,
        /// `stdout` or `stderr`.
        stream: &'static str,
    },
    /// Protocol or channel failure after login.
    #[error("SSH session to {addr} failed: {reason}")]
    Session {
        /// host:port
        addr: String,
        /// Why.
        reason: String,
    },
}

/// A host key's SHA-256 fingerprint as OpenSSH prints it (`SHA256:…`).
pub fn fingerprint(key: &russh::keys::PublicKey) -> String {
    key.fingerprint(russh::keys::HashAlg::Sha256).to_string()
}

/// The fingerprints of the keys pinned for `target` in its known_hosts file.
fn pinned_fingerprints(target: &Target) -> Vec<String> {
    russh::keys::known_hosts::known_host_keys_path(
        &target.address,
        target.port,
        &target.known_hosts,
    )
    .map(|keys| keys.iter().map(|(_, k)| fingerprint(k)).collect())
    .unwrap_or_default()
}

/// The TCP connection to `target`'s sshd, within `timeout`.
async fn tcp_connect(
    target: &Target,
    timeout: Duration,
) -> Result<tokio::net::TcpStream, SshError> {
    let unreachable = |reason: String| SshError::Unreachable {
        addr: format!("{}:{}", target.address, target.port),
        reason,
    };
    tokio::time::timeout(
        timeout,
        tokio::net::TcpStream::connect((target.address.as_str(), target.port)),
    )
    .await
    .map_err(|_| unreachable(format!("no answer within {}s", timeout.as_secs())))?
    .map_err(|e| unreachable(e.to_string()))
}

/// Whether `key` is pinned in the machine's known_hosts file for any address (the file
/// is the machine's own: every key in it is that machine's).
fn machine_knows(known_hosts: &Path, key: &russh::keys::PublicKey) -> bool {
    let Ok(text) = std::fs::read_to_string(known_hosts) else {
        return false;
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter_map(|b64| russh::keys::parse_public_key_base64(b64).ok())
        .any(|pinned| pinned.key_data() == key.key_data())
}

/// Only learns the server's host key, then ends the handshake (nothing is sent).
struct ProbeHandler {
    offered: Arc<std::sync::Mutex<Option<russh::keys::PublicKey>>>,
}

impl client::Handler for ProbeHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        if let PublicKeyOrCertificate::PublicKey { key, .. } = key
            && let Ok(mut offered) = self.offered.lock()
        {
            *offered = Some(key.clone());
        }
        Ok(false)
    }
}

/// The host key `target`'s sshd offers now, learnt from the start of a handshake that is
/// then ended: no key of the user's is offered and nothing is sent.
pub async fn offered_host_key(
    target: &Target,
    timeout: Duration,
) -> Result<russh::keys::PublicKey, SshError> {
    let addr = format!("{}:{}", target.address, target.port);
    let offered = Arc::new(std::sync::Mutex::new(None));
    let handler = ProbeHandler {
        offered: offered.clone(),
    };
    let stream = tcp_connect(target, timeout).await?;
    let config = Arc::new(client::Config::default());
    let _ = tokio::time::timeout(timeout, client::connect_stream(config, stream, handler)).await;
    let key = offered.lock().ok().and_then(|k| k.clone());
    key.ok_or_else(|| SshError::Session {
        addr,
        reason: "the server offered no host key".into(),
    })
}

/// Pin `key` as `target`'s only host key: its known_hosts file is written anew.
pub fn repin(target: &Target, key: &russh::keys::PublicKey) -> Result<(), SshError> {
    let fail = |reason: String| SshError::Session {
        addr: format!("{}:{}", target.address, target.port),
        reason,
    };
    match std::fs::remove_file(&target.known_hosts) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(fail(format!(
                "cannot replace {}: {e}",
                target.known_hosts.display()
            )));
        }
    }
    russh::keys::known_hosts::learn_known_hosts_path(
        &target.address,
        target.port,
        key,
        &target.known_hosts,
    )
    .map_err(|e| {
        fail(format!(
            "cannot write {}: {e}",
            target.known_hosts.display()
        ))
    })
}

struct PinningHandler {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    policy: HostKeyPolicy,
    /// The fingerprint of a key that differs from the pinned one, once offered.
    changed: Arc<std::sync::Mutex<Option<String>>>,
    /// The fingerprint of a key offered where none is pinned (and none may be learnt).
    unknown: Arc<std::sync::Mutex<Option<String>>>,
}

impl PinningHandler {
    /// Pin `key` for this handler's host and port in the machine's known_hosts; accepted.
    fn pin(&self, key: &russh::keys::PublicKey) -> Result<bool, russh::Error> {
        russh::keys::known_hosts::learn_known_hosts_path(
            &self.host,
            self.port,
            key,
            &self.known_hosts,
        )?;
        Ok(true)
    }
}

impl client::Handler for PinningHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(_) => return Ok(false),
        };
        match russh::keys::check_known_hosts_path(&self.host, self.port, &key, &self.known_hosts) {
            Ok(true) => Ok(true),
            // No key pinned for this address: learnt at first contact; or the machine
            // moved (a cloud server stopped and started, a new DHCP lease) — its own
            // known_hosts holds only its keys, so the same key at the new address is the
            // same machine: pinned there too.
            Ok(false)
                if self.policy == HostKeyPolicy::TrustOnFirstUse
                    || machine_knows(&self.known_hosts, &key) =>
            {
                self.pin(&key)
            }
            Ok(false) => {
                if let Ok(mut unknown) = self.unknown.lock() {
                    *unknown = Some(fingerprint(&key));
                }
                Ok(false)
            }
            Err(russh::keys::Error::KeyChanged { .. }) => {
                if let Ok(mut changed) = self.changed.lock() {
                    *changed = Some(fingerprint(&key));
                }
                Ok(false)
            }
            Err(e)
                if !self.known_hosts.exists() && self.policy == HostKeyPolicy::TrustOnFirstUse =>
            {
                let _ = e;
                self.pin(&key)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// How a non-root user's root commands run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SudoMode {
    /// `sudo -n` on a plain channel.
    Plain,
    /// `sudo -n` on a channel with a PTY (sudoers has `Defaults requiretty`, as on EL7).
    Tty,
}

/// A logged-in SSH connection to one machine. Cheap to share: channels are opened per command.
pub struct Session {
    handle: Mutex<Handle<PinningHandler>>,
    target: Target,
    is_root: bool,
    /// How root commands run, once known: `None` until checked.
    sudo: Mutex<Option<SudoMode>>,
}

impl Session {
    /// Connect and authenticate, within `timeout`.
    pub async fn connect(
        target: &Target,
        policy: HostKeyPolicy,
        timeout: Duration,
    ) -> Result<Session, SshError> {
        let addr = format!("{}:{}", target.address, target.port);
        let key =
            russh::keys::load_secret_key(&target.key_path, None).map_err(|e| SshError::Key {
                path: target.key_path.display().to_string(),
                reason: e.to_string(),
            })?;
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(Duration::from_secs(600)),
            keepalive_interval: Some(Duration::from_secs(15)),
            ..Default::default()
        });
        let changed = Arc::new(std::sync::Mutex::new(None));
        let unknown = Arc::new(std::sync::Mutex::new(None));
        let handler = PinningHandler {
            host: target.address.clone(),
            port: target.port,
            known_hosts: target.known_hosts.clone(),
            policy,
            changed: changed.clone(),
            unknown: unknown.clone(),
        };
        let stream = tcp_connect(target, timeout).await?;
        let _ = stream.set_nodelay(true);
        let mut handle =
            match tokio::time::timeout(timeout, client::connect_stream(config, stream, handler))
                .await
            {
                Err(_) => {
                    return Err(SshError::Unreachable {
                        addr,
                        reason: "SSH handshake timed out".into(),
                    });
                }
                Ok(Err(e)) => {
                    let machine = target
                        .known_hosts
                        .parent()
                        .and_then(|d| d.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if let Some(offered) = changed.lock().ok().and_then(|c| c.clone()) {
                        return Err(SshError::HostKeyChanged {
                            addr,
                            known_hosts: target.known_hosts.display().to_string(),
                            machine,
                            pinned: pinned_fingerprints(target).join(", "),
                            offered,
                        });
                    }
                    if let Some(offered) = unknown.lock().ok().and_then(|c| c.clone()) {
                        return Err(SshError::HostKeyUnknown {
                            addr,
                            known_hosts: target.known_hosts.display().to_string(),
                            machine,
                            offered,
                        });
                    }
                    return Err(SshError::Session {
                        addr,
                        reason: e.to_string(),
                    });
                }
                Ok(Ok(h)) => h,
            };
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(|e| SshError::Session {
                addr: addr.clone(),
                reason: e.to_string(),
            })?
            .flatten();
        let auth = handle
            .authenticate_publickey(
                target.user.clone(),
                PrivateKeyWithHashAlg::new(Arc::new(key), hash),
            )
            .await
            .map_err(|e| SshError::Session {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        if !auth.success() {
            return Err(SshError::AuthRejected {
                user: target.user.clone(),
                addr,
                key: target.key_path.display().to_string(),
            });
        }
        Ok(Session {
            handle: Mutex::new(handle),
            is_root: target.user == "root",
            target: target.clone(),
            sudo: Mutex::new(None),
        })
    }

    /// The target this session is logged in to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.target.address, self.target.port)
    }

    fn session_err(&self, e: impl std::fmt::Display) -> SshError {
        SshError::Session {
            addr: self.addr(),
            reason: e.to_string(),
        }
    }

    /// Run `command` (through the login shell) as the SSH user, feeding `stdin` if given.
    pub async fn exec_with_input(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Result<Output, SshError> {
        self.run(command, stdin, false).await
    }

    /// Run a command on a new channel, with a PTY if `pty` (its output then all arrives as
    /// stdout, with CRLF line ends turned back into LF).
    async fn run(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        pty: bool,
    ) -> Result<Output, SshError> {
        let mut channel = {
            let handle = self.handle.lock().await;
            handle
                .channel_open_session()
                .await
                .map_err(|e| self.session_err(e))?
        };
        if pty {
            channel
                .request_pty(true, "dumb", 200, 50, 0, 0, &[])
                .await
                .map_err(|e| self.session_err(e))?;
        }
        channel
            .exec(true, command)
            .await
            .map_err(|e| self.session_err(e))?;
        if let Some(data) = stdin {
            channel.data(data).await.map_err(|e| self.session_err(e))?;
        }
        channel.eof().await.map_err(|e| self.session_err(e))?;
        let mut out = Output {
            code: -1,
            ..Default::default()
        };
        // Do not stop at Eof: the exit status may arrive after it.
        let mut overflow = None;
        while let Some(msg) = channel.wait().await {
            let full = match msg {
                ChannelMsg::Data { data } => {
                    (!append_bounded(&mut out.stdout, &data, MAX_OUTPUT_BYTES)).then_some("stdout")
                }
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    (!append_bounded(&mut out.stderr, &data, MAX_OUTPUT_BYTES)).then_some("stderr")
                }
                ChannelMsg::ExitStatus { exit_status } => {
                    out.code = exit_status as i32;
                    None
                }
                _ => None,
            };
            if full.is_some() {
                overflow = full;
                break;
            }
        }
        if let Some(stream) = overflow {
            // Closing the channel makes the server hang up on the command (SIGPIPE/SIGHUP).
            let _ = channel.close().await;
            return Err(SshError::OutputTooLarge {
                addr: self.addr(),
                stream,
            });
        }
        if pty {
            out.stdout = String::from_utf8_lossy(&out.stdout)
                .replace("\r\n", "\n")
                .into_bytes();
        }
        Ok(out)
    }

    /// Run `command` as the SSH user.
    pub async fn exec(&self, command: &str) -> Result<Output, SshError> {
        self.run(command, None, false).await
    }

    /// Run `command` as root: directly for root, else through `sudo -n sh -c` (on a PTY when
    /// sudoers requires one).
    pub async fn exec_root(&self, command: &str) -> Result<Output, SshError> {
        if self.is_root {
            return self
                .run(&format!("sh -c {}", sh_quote(command)), None, false)
                .await;
        }
        let mode = self.ensure_sudo().await?;
        self.run(
            &format!("sudo -n sh -c {}", sh_quote(command)),
            None,
            mode == SudoMode::Tty,
        )
        .await
    }

    /// Check once per session that the user can sudo without a password (with a PTY if
    /// sudoers requires one), and remember how.
    async fn ensure_sudo(&self) -> Result<SudoMode, SshError> {
        let mut known = self.sudo.lock().await;
        if let Some(mode) = *known {
            return Ok(mode);
        }
        let mut out = self.run("sudo -n true", None, false).await?;
        let mut mode = SudoMode::Plain;
        if out.code != 0 && out.stderr_text().contains("tty") {
            out = self.run("sudo -n true", None, true).await?;
            mode = SudoMode::Tty;
        }
        if out.code != 0 {
            let text = format!("{}{}", out.stderr_text(), out.stdout_text());
            let detail = text
                .trim()
                .lines()
                .last()
                .unwrap_or("sudo failed")
                .to_string();
            return Err(SshError::NoSudo {
                user: self.target.user.clone(),
                addr: self.addr(),
                detail,
            });
        }
        *known = Some(mode);
        Ok(mode)
    }

    /// Check that root commands can run (a no-op for root).
    pub async fn check_root(&self) -> Result<(), SshError> {
        if self.is_root {
            Ok(())
        } else {
            self.ensure_sudo().await.map(drop)
        }
    }

    /// Write `contents` to `path` as root with `mode`, atomically (temp file + rename). A
    /// non-root user first writes a private temp file itself, so no data passes through
    /// sudo (or its PTY); root then installs it.
    pub async fn upload(&self, path: &str, contents: &[u8], mode: u32) -> Result<(), SshError> {
        let dir = Path::new(path)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "/".into());
        let staged = format!("{path}.dmw-upload");
        let install = |src: &str| {
            format!(
                "set -e; mkdir -p {dir}; cp {src} {staged}; chmod {mode:o} {staged}; mv -f {staged} {dst}",
                dir = sh_quote(&dir),
                src = sh_quote(src),
                staged = sh_quote(&staged),
                dst = sh_quote(path),
            )
        };
        let failed = |out: &Output| {
            self.session_err(format!(
                "writing {path} failed (exit {}): {}{}",
                out.code,
                out.stderr_text().trim(),
                out.stdout_text().trim()
            ))
        };
        if self.is_root {
            let script = format!(
                "set -e; umask 077; mkdir -p {dir}; cat > {staged}; chmod {mode:o} {staged}; mv -f {staged} {dst}",
                dir = sh_quote(&dir),
                staged = sh_quote(&staged),
                dst = sh_quote(path),
            );
            let out = self
                .run(
                    &format!("sh -c {}", sh_quote(&script)),
                    Some(contents),
                    false,
                )
                .await?;
            return if out.code == 0 {
                Ok(())
            } else {
                Err(failed(&out))
            };
        }
        let tmp = self
            .run("umask 077; mktemp /tmp/dmw-upload.XXXXXXXX", None, false)
            .await?;
        let tmp_path = tmp.stdout_text().trim().to_string();
        if tmp.code != 0 || !tmp_path.starts_with("/tmp/") {
            return Err(failed(&tmp));
        }
        let wrote = self
            .run(
                &format!("cat > {}", sh_quote(&tmp_path)),
                Some(contents),
                false,
            )
            .await?;
        let result = if wrote.code != 0 {
            Err(failed(&wrote))
        } else {
            let out = self.exec_root(&install(&tmp_path)).await?;
            if out.code == 0 {
                Ok(())
            } else {
                Err(failed(&out))
            }
        };
        let _ = self
            .run(&format!("rm -f {}", sh_quote(&tmp_path)), None, false)
            .await;
        result
    }

    /// Open a new session channel (for interactive shells and subsystems).
    pub async fn open_channel(&self) -> Result<russh::Channel<client::Msg>, SshError> {
        let handle = self.handle.lock().await;
        handle
            .channel_open_session()
            .await
            .map_err(|e| self.session_err(e))
    }

    /// Start the SFTP subsystem on a new channel.
    pub async fn sftp(&self) -> Result<russh_sftp::client::SftpSession, SshError> {
        let channel = self.open_channel().await?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| self.session_err(format!("cannot start SFTP: {e}")))?;
        let config = russh_sftp::client::Config {
            max_concurrent_reads: 32,
            max_concurrent_writes: 32,
            request_timeout_secs: 60,
            ..Default::default()
        };
        russh_sftp::client::SftpSession::new_with_config(channel.into_stream(), config)
            .await
            .map_err(|e| {
                self.session_err(format!(
                    "cannot start SFTP (is the sftp-server subsystem enabled in sshd?): {e}"
                ))
            })
    }

    /// Close the connection politely.
    pub async fn close(&self) {
        let handle = self.handle.lock().await;
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// Whether `address:port` accepts TCP connections within `timeout`.
pub async fn reachable(address: &str, port: u16, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, tokio::net::TcpStream::connect((address, port))).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_bounded() {
        let mut buf = Vec::new();
        assert!(append_bounded(&mut buf, &[0; 10], 16));
        assert!(append_bounded(&mut buf, &[0; 6], 16));
        assert!(!append_bounded(&mut buf, &[0; 1], 16), "over the cap");
        assert_eq!(buf.len(), 16, "nothing past the cap is kept");
        let e = SshError::OutputTooLarge {
            addr: "192.0.2.1:22".into(),
            stream: "stdout",
        }
        .to_string();
        assert_eq!(
            e,
            "command output exceeded 16 MiB on stdout (on 192.0.2.1:22); the command was stopped"
        );
    }
}
