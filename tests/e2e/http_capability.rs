//! The `http` capability end to end, with the probe driver (tests/plugins/http-probe-driver,
//! which fetches the URLs in its flags through `dmw_guest::http` over `wasi:http`):
//! - a plugin file that declares `http` stops before it runs until `dmw plugin install`;
//! - the allowed host (the host of `--probe-api-url`, a server on 127.0.0.1) answers, with
//!   the bearer token, which appears nowhere but in the 0600 machine record;
//! - a host it did not declare (a listener on 127.0.0.2) is refused with an error naming
//!   it, and that listener sees no connection — asked directly and through a redirect from
//!   the allowed host;
//! - a 503 with `Retry-After` is retried, for POST too;
//! - TLS to a server with a test CA fails without the CA flag and works with it;
//! - `HTTP_PROXY` (absolute-form requests) and `HTTPS_PROXY` (CONNECT tunnels) are used,
//!   `NO_PROXY` bypasses them, and a denied host reaches no proxy either;
//! - by address, not by name: the probe's own pattern `localhost:*` leads to 127.0.0.1,
//!   which it does not name, so a server there sees no connection; the same name typed by
//!   the user is reached; plain http to its port-less pattern `probe.invalid` is refused.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Dmw, Run, assert_secret_only_in_record};

/// The probe driver (tests/plugins/http-probe-driver).
const PROBE: &str = env!("DMW_TEST_HTTP_PROBE_DRIVER");

/// One request a test server saw.
#[derive(Clone, Debug)]
struct Seen {
    head: String,
}

/// Answers a request (its head, and how many came before it) with a raw HTTP response.
type Answer = dyn Fn(&str, usize) -> String + Send + Sync;

/// A tiny HTTP/1.1 server on `ip`, counting connections and keeping request heads.
struct Server {
    port: u16,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(ip: &str, answer: Arc<Answer>, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let listener = TcpListener::bind((ip, 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (count, log) = (connections.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let (answer, log, tls) = (answer.clone(), log.clone(), tls.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    match tls {
                        Some(config) => {
                            let Ok(conn) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            serve(rustls::StreamOwned::new(conn, stream), &*answer, &log);
                        }
                        None => serve(stream, &*answer, &log),
                    }
                });
            }
        });
        Server {
            port,
            connections,
            seen,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

/// Serve requests on one connection until it closes.
fn serve<S: Read + Write>(mut s: S, answer: &Answer, log: &Mutex<Vec<Seen>>) {
    loop {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte) {
                Ok(1) => buf.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&buf).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if s.read_exact(&mut body).is_err() {
            return;
        }
        let n = {
            let mut l = log.lock().expect("lock");
            l.push(Seen { head: head.clone() });
            l.len() - 1
        };
        let reply = answer(&head, n);
        if s.write_all(reply.as_bytes()).is_err() || s.flush().is_err() {
            return;
        }
    }
}

fn reply(status: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n{extra}\r\n{body}",
        body.len()
    )
}

fn ok_answer() -> Arc<Answer> {
    Arc::new(|_, _| reply("200 OK", "", "hello from the allowed host"))
}

/// A forwarding proxy on 127.0.0.1 that records each request line (`CONNECT host:port` or
/// an absolute-form `GET http://…`) and relays the connection.
fn start_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind proxy");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match client.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let line = text.lines().next().unwrap_or_default().to_string();
                log.lock().expect("lock").push(line.clone());
                let mut parts = line.split_whitespace();
                let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let (authority, first) = if method == "CONNECT" {
                    (target.to_string(), None)
                } else {
                    let rest = target.strip_prefix("http://").unwrap_or(target);
                    let (auth, path) = rest.split_once('/').unwrap_or((rest, ""));
                    let origin = text.replacen(target, &format!("/{path}"), 1);
                    (auth.to_string(), Some(origin))
                };
                let Ok(mut upstream) = std::net::TcpStream::connect(&authority) else {
                    return;
                };
                match first {
                    None => {
                        let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                    }
                    Some(origin) => {
                        let _ = upstream.write_all(origin.as_bytes());
                    }
                }
                let (mut c2, mut u2) = (
                    client.try_clone().expect("clone"),
                    upstream.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut u2, &mut c2);
                });
                let _ = std::io::copy(&mut client, &mut upstream);
            });
        }
    });
    (port, seen)
}

fn run(dmw: &Dmw, args: &[&str]) -> Run {
    dmw.command(args)
        .env("DMW_SSH_TIMEOUT", "0")
        .output()
        .expect("run dmw")
        .into()
}

/// A store with the probe driver approved (`plugin install --yes`), after checking that
/// used by path it stops before it runs.
fn approved() -> Dmw {
    let dmw = Dmw::new();
    let dir = dmw.storage.with_file_name("plugins");
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("probe.wasm");
    std::fs::copy(PROBE, &file).expect("copy");
    let path = file.display().to_string();
    let r = run(
        &dmw,
        &[
            "create",
            "-d",
            &path,
            "--probe-api-url",
            "http://127.0.0.1:1",
            "p0",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("capability http")
            && r.stderr.contains("HTTP host {probe-api-url}")
            && r.stderr.contains(&format!("dmw plugin install {path}")),
        "{r:?}"
    );
    let text = dmw.ok(&["plugin", "inspect", &path]);
    assert!(
        text.contains("secrets:     --probe-token")
            && text.contains("http hosts:  {probe-api-url}")
            && text.contains("CA bundle from --probe-cacert")
            && text.contains(
                "the Keystone service catalog endpoints of --probe-api-url for the region --probe-region and interface --probe-endpoint-type"
            ),
        "{text}"
    );
    dmw.ok(&["plugin", "install", "--yes", &path]);
    dmw
}

/// The arguments of a probe create of `name` fetching `fetch`.
fn create_args<'a>(
    name: &'a str,
    api: &'a str,
    fetch: &[&'a str],
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "create",
        "-d",
        "probe",
        "--no-docker-context",
        "--probe-api-url",
        api,
    ];
    for f in fetch {
        args.extend(["--probe-fetch", f]);
    }
    args.extend(extra);
    args.push(name);
    args
}

fn create(dmw: &Dmw, name: &str, api: &str, fetch: &[&str], extra: &[&str]) -> Run {
    run(dmw, &create_args(name, api, fetch, extra))
}

#[test]
fn allowed_host_answers_and_other_hosts_get_no_connection() {
    let dmw = approved();
    let allowed = Server::start("127.0.0.1", ok_answer(), None);
    let denied = Server::start("127.0.0.2", ok_answer(), None);
    let api = format!("http://127.0.0.1:{}", allowed.port);
    let token = "s3cr3t-probe-token-4711";

    // Allowed: fetched with the token; the create goes on to the SSH wait.
    let r = create(
        &dmw,
        "ok",
        &api,
        &[&format!("{api}/v2/things?page=1")],
        &["--probe-token", token],
    );
    assert!(r.stderr.contains("wait for SSH failed"), "{r:?}");
    assert!(
        r.stdout
            .contains("answered 200: hello from the allowed host"),
        "{r:?}"
    );
    let seen = allowed.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].head.starts_with("GET /v2/things?page=1 HTTP/1.1"),
        "{seen:?}"
    );
    assert!(
        seen[0]
            .head
            .contains(&format!("authorization: Bearer {token}"))
            || seen[0]
                .head
                .contains(&format!("Authorization: Bearer {token}")),
        "{seen:?}"
    );
    // The token: only in the machine record (0600), nowhere in the output or the log.
    assert!(
        !r.stdout.contains(token) && !r.stderr.contains(token),
        "{r:?}"
    );
    assert_secret_only_in_record(&dmw, "ok", token);
    let log = std::fs::read_to_string(dmw.machine_dir("ok").join("provision.log")).expect("log");
    assert!(
        log.contains(&format!("GET {api}/v2/things?page=1 → 200")),
        "{log}"
    );

    // Denied directly: the error names the host, the listener saw nothing.
    let other = format!("http://127.0.0.2:{}/steal", denied.port);
    let r = create(&dmw, "direct", &api, &[&other], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("create machine failed")
            && r.stderr.contains("dmw denied the request to 127.0.0.2"),
        "{r:?}"
    );
    assert!(r.stdout.contains("no connection was opened"), "{r:?}");

    // Denied through a redirect from the allowed host.
    let location = format!("http://127.0.0.2:{}/x", denied.port);
    let redirecting = Server::start(
        "127.0.0.1",
        Arc::new(move |_, _| reply("302 Found", &format!("Location: {location}\r\n"), "")),
        None,
    );
    let api2 = format!("http://127.0.0.1:{}", redirecting.port);
    let r = create(&dmw, "redirect", &api2, &[&format!("{api2}/start")], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("dmw denied the request to 127.0.0.2"),
        "{r:?}"
    );
    assert_eq!(redirecting.seen().len(), 1);
    // A redirect inside the allowed host is followed.
    let same = Server::start(
        "127.0.0.1",
        Arc::new(|head: &str, _| {
            if head.starts_with("GET /old") {
                reply("301 Moved Permanently", "Location: /new\r\n", "")
            } else {
                reply("200 OK", "", "moved here")
            }
        }),
        None,
    );
    let api3 = format!("http://127.0.0.1:{}", same.port);
    let r = create(&dmw, "moved", &api3, &[&format!("{api3}/old")], &[]);
    assert!(r.stdout.contains("answered 200: moved here"), "{r:?}");

    assert_eq!(denied.connections(), 0, "the denied host saw a connection");
}

#[test]
fn busy_answers_are_retried_after_retry_after() {
    let dmw = approved();
    let busy = Server::start(
        "127.0.0.1",
        Arc::new(|_, n| {
            if n == 0 {
                reply("503 Service Unavailable", "Retry-After: 1\r\n", "busy")
            } else {
                reply("200 OK", "", "done")
            }
        }),
        None,
    );
    let api = format!("http://127.0.0.1:{}", busy.port);
    let started = std::time::Instant::now();
    // POST is retried because the server said Retry-After.
    let r = create(
        &dmw,
        "retry",
        &api,
        &[&format!("{api}/act")],
        &["--probe-post"],
    );
    assert!(r.stdout.contains("answered 200: done"), "{r:?}");
    assert!(r.stdout.contains("answered 503; retrying in 1 s"), "{r:?}");
    assert_eq!(busy.seen().len(), 2);
    assert!(started.elapsed() >= Duration::from_secs(1));
}

/// A rustls server configuration for 127.0.0.1 signed by a fresh test CA, and the CA's PEM.
fn tls_server_config() -> (Arc<rustls::ServerConfig>, String) {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "dmw test CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).expect("cert");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der"),
    )
    .expect("server config");
    (Arc::new(config), ca.pem())
}

#[test]
fn tls_needs_the_ca_flag_for_a_private_ca() {
    let dmw = approved();
    let (config, ca_pem) = tls_server_config();
    let server = Server::start(
        "127.0.0.1",
        Arc::new(|_, _| reply("200 OK", "", "over tls")),
        Some(config),
    );
    let api = format!("https://127.0.0.1:{}", server.port);
    let url = format!("{api}/secure");

    let r = create(&dmw, "untrusted", &api, &[&url], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("TLS certificate is not trusted"), "{r:?}");

    let ca_file = dmw.storage.with_file_name("ca.pem");
    std::fs::write(&ca_file, ca_pem).expect("write ca");
    let ca_path = ca_file.display().to_string();
    let r = create(
        &dmw,
        "trusted",
        &api,
        &[&url],
        &["--probe-cacert", &ca_path],
    );
    assert!(r.stdout.contains("answered 200: over tls"), "{r:?}");

    let r = create(&dmw, "insecure", &api, &[&url], &["--probe-insecure"]);
    assert!(
        r.stdout.contains("answered 200: over tls")
            && r.stdout.contains("TLS certificates are not verified"),
        "{r:?}"
    );
}

#[test]
fn proxies_from_the_environment_are_used() {
    let dmw = approved();
    let (proxy_port, through) = start_proxy();
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let plain = Server::start("127.0.0.1", ok_answer(), None);
    let api = format!("http://127.0.0.1:{}", plain.port);
    let denied = Server::start("127.0.0.2", ok_answer(), None);
    let proxied = |name: &str, api: &str, fetch: &[&str], extra: &[&str], no_proxy: &str| {
        let r: Run = dmw
            .command(&create_args(name, api, fetch, extra))
            .env("DMW_SSH_TIMEOUT", "0")
            .env("HTTP_PROXY", &proxy)
            .env("HTTPS_PROXY", &proxy)
            .env("NO_PROXY", no_proxy)
            .output()
            .expect("run dmw")
            .into();
        r
    };

    // http: an absolute-form request through the proxy.
    let r = proxied("plain", &api, &[&format!("{api}/via")], &[], "");
    assert!(
        r.stdout
            .contains("answered 200: hello from the allowed host"),
        "{r:?}"
    );
    let lines = through.lock().expect("lock").clone();
    assert_eq!(lines, vec![format!("GET {api}/via HTTP/1.1")]);

    // NO_PROXY: straight to the server.
    let r = proxied(
        "direct",
        &api,
        &[&format!("{api}/direct")],
        &[],
        "127.0.0.1",
    );
    assert!(r.stdout.contains("answered 200"), "{r:?}");
    assert_eq!(
        through.lock().expect("lock").len(),
        1,
        "NO_PROXY was not honoured"
    );

    // A denied host is refused before any proxy is asked.
    let other = format!("http://127.0.0.2:{}/x", denied.port);
    let r = proxied("denied", &api, &[&other], &[], "");
    assert!(
        r.stderr.contains("dmw denied the request to 127.0.0.2"),
        "{r:?}"
    );
    assert_eq!(through.lock().expect("lock").len(), 1);
    assert_eq!(denied.connections(), 0);

    // https: a CONNECT tunnel, TLS end to end with the server (the test CA trusted).
    let (config, ca_pem) = tls_server_config();
    let secure = Server::start(
        "127.0.0.1",
        Arc::new(|_, _| reply("200 OK", "", "over tls")),
        Some(config),
    );
    let sapi = format!("https://127.0.0.1:{}", secure.port);
    let ca_file = dmw.storage.with_file_name("proxy-ca.pem");
    std::fs::write(&ca_file, ca_pem).expect("write ca");
    let ca = ca_file.display().to_string();
    let r = proxied(
        "tunnel",
        &sapi,
        &[&format!("{sapi}/s")],
        &["--probe-cacert", &ca],
        "",
    );
    assert!(r.stdout.contains("answered 200: over tls"), "{r:?}");
    let lines = through.lock().expect("lock").clone();
    assert_eq!(
        lines[1],
        format!("CONNECT 127.0.0.1:{} HTTP/1.1", secure.port)
    );
}

#[test]
fn slow_and_oversized_answers_fail_clearly() {
    let dmw = approved();
    // Never answers: the request's own 2 s limit (lower than dmw's) ends it.
    let silent = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    let silent_api = format!(
        "http://127.0.0.1:{}",
        silent.local_addr().expect("addr").port()
    );
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming().flatten() {
            held.push(c);
        }
    });
    let started = std::time::Instant::now();
    let r = create(
        &dmw,
        "slow",
        &silent_api,
        &[&format!("{silent_api}/wait")],
        &["--probe-timeout", "2"],
    );
    assert!(r.stderr.contains("did not answer in time"), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );

    // 17 MiB answer: cut at 16 MiB with a clear error.
    let big = Server::start(
        "127.0.0.1",
        Arc::new(|_, _| reply("200 OK", "", &"x".repeat(17 << 20))),
        None,
    );
    let api = format!("http://127.0.0.1:{}", big.port);
    let r = create(&dmw, "big", &api, &[&format!("{api}/big")], &[]);
    assert!(r.stderr.contains("larger than 16 MiB"), "{r:?}");
}

/// A Keystone token answer (201) whose catalog lists `endpoints` (interface, region, URL).
fn token_answer(endpoints: Vec<(&'static str, &'static str, String)>) -> Arc<Answer> {
    Arc::new(move |head: &str, _| {
        if head.starts_with("POST /v3/auth/tokens ") {
            let eps: Vec<String> = endpoints
                .iter()
                .map(|(i, r, u)| {
                    format!(r#"{{"interface": "{i}", "region_id": "{r}", "url": "{u}"}}"#)
                })
                .collect();
            let body = format!(
                r#"{{"token": {{"catalog": [{{"type": "compute", "endpoints": [{}]}}]}}}}"#,
                eps.join(", ")
            );
            reply(
                "201 Created",
                "X-Subject-Token: t0k3n-from-keystone\r\n",
                &body,
            )
        } else {
            reply("200 OK", "", "keystone")
        }
    })
}

#[test]
fn keystone_catalog_endpoints_of_the_chosen_region_and_interface_are_allowed() {
    let dmw = approved();
    let nova = Server::start("127.0.0.2", ok_answer(), None);
    let other_region = Server::start("127.0.0.3", ok_answer(), None);
    let internal = Server::start("127.0.0.4", ok_answer(), None);
    let not_listed = Server::start("127.0.0.5", ok_answer(), None);
    let keystone = Server::start(
        "127.0.0.1",
        token_answer(vec![
            (
                "public",
                "RegionOne",
                format!("http://127.0.0.2:{}/v2.1", nova.port),
            ),
            (
                "public",
                "RegionTwo",
                format!("http://127.0.0.3:{}/v2.1", other_region.port),
            ),
            (
                "internal",
                "RegionOne",
                format!("http://127.0.0.4:{}/v2.1", internal.port),
            ),
        ]),
        None,
    );
    let api = format!("http://127.0.0.1:{}/v3", keystone.port);
    let tokens = format!("{api}/auth/tokens");
    let region = ["--probe-region", "RegionOne", "--probe-post"];

    // Before a token: the catalog host is not allowed.
    let nova_url = format!("http://127.0.0.2:{}/v2.1/servers", nova.port);
    let r = create(&dmw, "early", &api, &[&nova_url], &region);
    assert!(
        r.stderr.contains("dmw denied the request to 127.0.0.2"),
        "{r:?}"
    );
    assert_eq!(nova.connections(), 0);

    // After the token answer: the public RegionOne endpoint answers.
    let r = create(&dmw, "catalog", &api, &[&tokens, &nova_url], &region);
    assert!(r.stderr.contains("wait for SSH failed"), "{r:?}");
    assert!(
        r.stdout.contains("answered 201")
            && r.stdout
                .contains("answered 200: hello from the allowed host"),
        "{r:?}"
    );
    assert_eq!(nova.seen().len(), 1);
    let log =
        std::fs::read_to_string(dmw.machine_dir("catalog").join("provision.log")).expect("log");
    assert!(
        log.contains(&format!(
            "the Keystone service catalog allows http://127.0.0.2:{} (compute, public interface, region RegionOne)",
            nova.port
        )),
        "{log}"
    );

    // Another region, another interface, a host not in the catalog, another port of the
    // catalog's host: denied after the token too, and no connection.
    for (name, url) in [
        (
            "region",
            format!("http://127.0.0.3:{}/v2.1", other_region.port),
        ),
        (
            "interface",
            format!("http://127.0.0.4:{}/v2.1", internal.port),
        ),
        ("unlisted", format!("http://127.0.0.5:{}/", not_listed.port)),
        ("port", format!("http://127.0.0.2:{}/", not_listed.port)),
    ] {
        let r = create(&dmw, name, &api, &[&tokens, &url], &region);
        assert_eq!(r.code, 1, "{name}: {r:?}");
        assert!(
            r.stderr.contains("dmw denied the request to 127.0.0."),
            "{name}: {r:?}"
        );
        assert!(
            r.stdout.contains(
                "nor, for this region and interface, in the Keystone service catalog; no connection was opened"
            ),
            "{name}: {r:?}"
        );
    }
    assert_eq!(internal.connections(), 0);
    // The internal interface when the user asks for it (Docker Machine's spelling).
    let internal_url = format!("http://127.0.0.4:{}/v2.1", internal.port);
    let r = create(
        &dmw,
        "internal",
        &api,
        &[&tokens, &internal_url],
        &["--probe-endpoint-type", "internalURL", "--probe-post"],
    );
    assert!(r.stdout.contains("answered 200"), "{r:?}");
    assert_eq!(internal.seen().len(), 1);

    assert_eq!(other_region.connections(), 0);
    assert_eq!(not_listed.connections(), 0);
}

/// Issue 18: the allow-list checked names, not addresses (a declared name resolving to
/// 127.0.0.1 or 169.254.169.254 was reached), and a port-less pattern allowed plain http.
/// Before: the request to `localhost:PORT` reached the server on 127.0.0.1 (200), and
/// `http://probe.invalid/` was allowed (and failed only for want of an address).
#[test]
fn a_declared_name_is_allowed_by_address_and_plain_http_needs_a_port() {
    let dmw = approved();
    let local = Server::start("127.0.0.1", ok_answer(), None);
    let api = format!("http://127.0.0.1:{}", local.port);

    // The plugin's own name `localhost:*` resolves to loopback: refused, no connection.
    let by_name = format!("http://localhost:{}/steal", local.port);
    let r = create(&dmw, "byname", &api, &[&by_name], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("localhost resolves to")
            && r.stderr
                .contains("(loopback: a service on your own computer)")
            && r.stdout.contains("no pattern names that address"),
        "{r:?}"
    );
    assert_eq!(
        local.connections(),
        0,
        "the loopback server saw a connection"
    );

    // The same name typed by the user (`--probe-api-url`) is the user's choice: reached.
    let typed = format!("http://localhost:{}", local.port);
    let r = create(&dmw, "typed", &typed, &[&format!("{typed}/mine")], &[]);
    assert!(
        r.stdout
            .contains("answered 200: hello from the allowed host"),
        "{r:?}"
    );
    assert_eq!(local.seen().len(), 1);

    // Plain http to a pattern without a port: refused before any lookup.
    let r = create(&dmw, "plain", &api, &["http://probe.invalid/x"], &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("dmw denied the request to probe.invalid")
            && r.stdout.contains(
                "its pattern for probe.invalid has no port, which allows https on port 443 only"
            ),
        "{r:?}"
    );
}
