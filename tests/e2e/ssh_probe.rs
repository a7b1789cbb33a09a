//! A recording SSH server on 127.0.0.1 for the hostile-plugin tests: it accepts TCP
//! connections, records every public key a client offers or signs with, and rejects
//! every login. It shows which keys dmw would have handed to an attacker's sshd.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use russh::server::{Auth, Handler, PublicKeyOffer, VerifiedPublicKey};

/// What the server saw.
#[derive(Default, Debug, Clone)]
pub struct Seen {
    /// TCP connections accepted.
    pub connections: usize,
    /// Public keys offered or used (OpenSSH format without comment), in order.
    pub keys: Vec<String>,
}

/// A running recording server; it stops when dropped.
pub struct SshProbe {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    _runtime: tokio::runtime::Runtime,
}

struct Recorder(Arc<Mutex<Seen>>);

impl Recorder {
    fn record(&self, key: &russh::keys::PublicKey) {
        let mut key = key.clone();
        key.set_comment("");
        let text = key.to_openssh().unwrap_or_default();
        self.0
            .lock()
            .expect("seen")
            .keys
            .push(text.trim().to_string());
    }
}

impl Handler for Recorder {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        self.record(offer.public_key);
        Ok(Auth::reject())
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        self.record(key.public_key);
        Ok(Auth::reject())
    }
}

impl SshProbe {
    /// Start listening on a free port of 127.0.0.1.
    pub fn start() -> SshProbe {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("addr");
        let mut seed = [0u8; 32];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").expect("urandom"),
            &mut seed,
        )
        .expect("random seed");
        let host_key = russh::keys::PrivateKey::from(
            russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed),
        );
        let config = Arc::new(russh::server::Config {
            keys: vec![host_key],
            auth_rejection_time: std::time::Duration::from_millis(10),
            auth_rejection_time_initial: Some(std::time::Duration::from_millis(0)),
            ..Default::default()
        });
        let seen = Arc::new(Mutex::new(Seen::default()));
        let seen2 = seen.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                seen2.lock().expect("seen").connections += 1;
                let handler = Recorder(seen2.clone());
                let config = config.clone();
                tokio::spawn(async move {
                    if let Ok(session) = russh::server::run_stream(config, stream, handler).await {
                        let _ = session.await;
                    }
                });
            }
        });
        SshProbe {
            addr,
            seen,
            _runtime: runtime,
        }
    }

    /// What it saw so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().expect("seen").clone()
    }
}

/// The public key of an OpenSSH key file's `.pub`, without its comment.
pub fn public_key_of(pub_file: &std::path::Path) -> String {
    let text = std::fs::read_to_string(pub_file).expect("read .pub");
    let mut key = russh::keys::PublicKey::from_openssh(text.trim()).expect("parse .pub");
    key.set_comment("");
    key.to_openssh().expect("encode").trim().to_string()
}
