//! A small local OpenStack written from the published API references (Keystone v3,
//! Nova v2.1, Glance v2, Neutron v2.0; see ../shared/reference/clouds.md §2): request and
//! response shapes, status codes, fault bodies, microversion headers, pagination. Its
//! servers are real testbed hosts (see fleet.rs).
//!
//! Layout on one port, like devstack: `/identity` (Keystone), `/compute` (Nova),
//! `/image` (Glance), `/network` (Neutron); the catalog points at these. With
//! `Config::services_on` the same API is served on a second listener on that address too,
//! and the catalog puts Nova, Glance and Neutron there (a cloud whose services live on
//! other hosts than Keystone).
//!
//! Address model: every server gets one port on the `private` network whose fixed IP is
//! the testbed host's own (reachable) address. Floating IPs come from the external
//! `public` network and must be created with (or attached to) a server's port: the
//! floating address is a second address of the host's /29 added to the host, so it really
//! reaches that server and differs from the fixed IP. A floating IP detached from its
//! port keeps its address (removed from the host) and can be attached again only to a
//! port of the same server; one created without a port is refused with a NeutronError
//! naming this limit.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::fleet::Fleet;
use super::server::{Faults, Handler, Request, Response, Server, base64_decode};

/// Nova's microversion range served.
const NOVA_MIN: (u32, u32) = (2, 1);
const NOVA_MAX: (u32, u32) = (2, 96);
/// Glance page size when the client gives no limit (small, so clients must follow `next`).
const GLANCE_PAGE: usize = 2;
/// Project (tenant) id of the one project.
pub const PROJECT_ID: &str = "4a1c0f2d3e5b47a89c6d7e8f90a1b2c3";
const USER_ID: &str = "9b8a7c6d5e4f40312a1b2c3d4e5f6a7b";
/// Network ids.
pub const PRIVATE_NET: &str = "a1f3c9e2-7b44-4c1d-9e10-5d2f8a6b0c01";
/// The external network floating IPs come from.
pub const PUBLIC_NET: &str = "b2e4d0f3-8c55-4d2e-8f21-6e3a9b7c1d02";
const PRIVATE_SUBNET: &str = "c3f5e1a4-9d66-4e3f-9a32-7f4b0c8d2e03";
/// The image id of "debian-12".
pub const DEBIAN_IMAGE: &str = "d4a6f2b5-0e77-4f40-8b43-8a5c1d9e3f04";

/// Credentials and limits of the cloud.
#[derive(Clone, Debug)]
pub struct Config {
    /// User name (domain "Default").
    pub username: String,
    /// The user's password.
    pub password: String,
    /// The project's name (domain "Default").
    pub project_name: String,
    /// Application credential (id, name, secret) of the user, scoped to the project.
    pub app_credential: (String, String, String),
    /// Region of every endpoint.
    pub region: String,
    /// Most servers the project may have (Nova answers 403 beyond it).
    pub max_servers: usize,
    /// When set, servers go to ERROR with this fault instead of booting.
    pub boot_fault: Option<String>,
    /// How many key pair imports are answered 429 (with `Retry-After: 1`) first.
    pub throttle_keypairs: usize,
    /// When set (a loopback address such as 127.0.0.2), Nova, Glance and Neutron are
    /// advertised in the catalog on a second listener on this address.
    pub services_on: Option<String>,
    /// Faults injected into the answers (none by default).
    pub faults: Faults,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            username: "demo".into(),
            password: "s3cret-Pa55word-for-the-test".into(),
            project_name: "demo".into(),
            app_credential: (
                "e5b7a3c6-1f88-4051-9c54-9b6d2e0f4a05".into(),
                "dmw-test".into(),
                "app-cred-s3cret-for-the-test".into(),
            ),
            region: "RegionOne".into(),
            max_servers: 10,
            boot_fault: None,
            throttle_keypairs: 0,
            services_on: None,
            faults: Faults::default(),
        }
    }
}

#[derive(Clone, Debug)]
struct Keypair {
    name: String,
    public_key: String,
    fingerprint: String,
    kind: String,
}

/// A Nova server as the cloud keeps it.
#[derive(Clone, Debug)]
pub struct ServerRec {
    /// Server id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Nova status (BUILD, ACTIVE, SHUTOFF, REBOOT, ERROR).
    pub status: String,
    task_state: Option<String>,
    /// Key pair name it was created with.
    pub key_name: Option<String>,
    flavor_id: String,
    image_id: String,
    /// Security group names.
    pub security_groups: Vec<String>,
    /// Availability zone.
    pub availability_zone: String,
    /// Config drive requested.
    pub config_drive: bool,
    /// The user data, decoded.
    pub user_data: Option<String>,
    /// Fixed address (the host's), once booted.
    pub addr: Option<Ipv4Addr>,
    port_id: String,
    fault: Option<String>,
}

/// A Neutron floating IP.
#[derive(Clone, Debug)]
pub struct FloatingIp {
    /// Id.
    pub id: String,
    /// The address.
    pub address: Ipv4Addr,
    /// Server whose host carries the address.
    pub server_id: String,
    /// Attached port, if any.
    pub port_id: Option<String>,
}

#[derive(Default)]
struct State {
    tokens: Vec<String>,
    keypairs: BTreeMap<String, Keypair>,
    servers: BTreeMap<String, ServerRec>,
    floatingips: BTreeMap<String, FloatingIp>,
}

struct Inner {
    cfg: Config,
    /// `http://IP:PORT` of the services' listener (`Config::services_on`).
    services_url: Mutex<Option<String>>,
    throttled: AtomicU64,
    fleet: Arc<Fleet>,
    state: Mutex<State>,
    next: AtomicU64,
}

/// The running cloud.
pub struct OpenStack {
    /// The HTTP server (its requests are recorded).
    pub http: Server,
    /// The services' second listener (`Config::services_on`).
    pub services: Option<Server>,
    inner: Arc<Inner>,
}

impl OpenStack {
    /// Starts the cloud on 127.0.0.1 with its own fleet.
    pub fn start(cfg: Config) -> OpenStack {
        OpenStack::with_fleet(cfg, Arc::new(Fleet::new()))
    }

    /// Starts the cloud on 127.0.0.1, booting its servers in `fleet`.
    pub fn with_fleet(cfg: Config, fleet: Arc<Fleet>) -> OpenStack {
        let services_on = cfg.services_on.clone();
        let inner = Arc::new(Inner {
            cfg,
            services_url: Mutex::new(None),
            throttled: AtomicU64::new(0),
            fleet,
            state: Mutex::new(State::default()),
            next: AtomicU64::new(1),
        });
        let h = inner.clone();
        let handler: Handler = inner
            .cfg
            .faults
            .wrap(Arc::new(move |req: &Request| h.handle(req)));
        let services = services_on.map(|ip| Server::start_on(&ip, handler.clone()));
        if let Some(s) = &services {
            *inner.services_url.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.url.clone());
        }
        OpenStack {
            http: Server::start(handler),
            services,
            inner,
        }
    }

    /// The Keystone v3 URL to give clients.
    pub fn auth_url(&self) -> String {
        format!("{}/identity/v3", self.http.url)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// The servers that exist.
    pub fn servers(&self) -> Vec<ServerRec> {
        self.inner.lock().servers.values().cloned().collect()
    }

    /// The floating IPs that exist.
    pub fn floating_ips(&self) -> Vec<FloatingIp> {
        self.inner.lock().floatingips.values().cloned().collect()
    }

    /// The key pair names that exist.
    pub fn keypairs(&self) -> Vec<String> {
        self.inner.lock().keypairs.keys().cloned().collect()
    }

    /// Everything a client made that still exists (servers, key pairs, floating IPs and
    /// testbed hosts), one line each; empty when a client cleaned up after itself.
    pub fn leftovers(&self) -> Vec<String> {
        let st = self.inner.lock();
        let mut out: Vec<String> = st
            .servers
            .values()
            .map(|s| format!("server {} ({})", s.id, s.name))
            .collect();
        out.extend(st.keypairs.keys().map(|k| format!("keypair {k}")));
        out.extend(
            st.floatingips
                .values()
                .map(|f| format!("floating ip {} ({})", f.id, f.address)),
        );
        drop(st);
        out.extend(self.inner.fleet.leftovers(""));
        out
    }
}

fn nova_fault(status: u16, message: &str) -> Response {
    let name = match status {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        406 => "notAcceptable",
        409 => "conflictingRequest",
        413 | 429 => "overLimit",
        415 => "badMediaType",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    };
    Response::json(
        status,
        json!({ name: {"code": status, "message": message} }),
    )
}

fn neutron_error(status: u16, kind: &str, message: &str) -> Response {
    Response::json(
        status,
        json!({"NeutronError": {"type": kind, "message": message, "detail": ""}}),
    )
}

fn unauthorized(host: &str) -> Response {
    Response::json(
        401,
        json!({"error": {"code": 401, "title": "Unauthorized",
            "message": "The request you have made requires authentication."}}),
    )
    .with_header(
        "WWW-Authenticate",
        &format!("Keystone uri=\"http://{host}/identity\""),
    )
}

/// Keeps the objects whose fields equal every filter in the query (Neutron-style).
fn filter(items: Vec<Value>, req: &Request, skip: &[&str]) -> Vec<Value> {
    items
        .into_iter()
        .filter(|item| {
            req.query.iter().all(|(k, v)| {
                if skip.contains(&k.as_str()) {
                    return true;
                }
                match item.get(k) {
                    Some(Value::String(s)) => s == v,
                    Some(Value::Null) => v.is_empty(),
                    Some(other) => other.to_string().as_str() == v.as_str(),
                    None => false,
                }
            })
        })
        .collect()
}

fn fingerprint(public_key: &str) -> String {
    let digest = Sha256::digest(public_key.as_bytes());
    digest[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.trim().split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_id(&self, kind: u32) -> String {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        format!(
            "{kind:08x}-{:04x}-4{:03x}-8000-{n:012x}",
            n & 0xffff,
            n & 0xfff
        )
    }

    fn handle(self: &Arc<Self>, req: &Request) -> Response {
        let path = req.path.trim_end_matches('/').to_string();
        let (service, rest) = match path.strip_prefix('/') {
            Some(p) => p.split_once('/').map_or((p, ""), |(s, r)| (s, r)),
            None => ("", ""),
        };
        let rest = format!("/{rest}");
        let rest = rest.trim_end_matches('/');
        if service == "identity" {
            return self.keystone(req, rest);
        }
        let authed = req
            .header("x-auth-token")
            .is_some_and(|t| self.lock().tokens.iter().any(|k| k == t));
        let discovery = req.method == "GET" && matches!(rest, "" | "/v2.1" | "/v2.0" | "/v2");
        if !authed && !discovery {
            return unauthorized(req.header("host").unwrap_or(""));
        }
        match service {
            "compute" => self.nova(req, rest),
            "image" => self.glance(req, rest),
            "network" => self.neutron(req, rest),
            _ => Response::json(
                404,
                json!({"error": {"code": 404, "title": "Not Found",
                "message": "The resource could not be found."}}),
            ),
        }
    }

    // ---------------------------------------------------------------- Keystone v3

    fn keystone_version(&self, base: &str) -> Value {
        json!({"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": format!("{base}/identity/v3/")}],
            "media-types": [{"base": "application/json",
                "type": "application/vnd.openstack.identity-v3+json"}]})
    }

    fn keystone(&self, req: &Request, rest: &str) -> Response {
        let base = req.base_url();
        match (req.method.as_str(), rest) {
            ("GET", "") => Response::json(
                300,
                json!({"versions": {"values": [self.keystone_version(&base)]}}),
            ),
            ("GET", "/v3") => Response::json(200, json!({"version": self.keystone_version(&base)})),
            ("POST", "/v3/auth/tokens") => self.issue_token(req, &base),
            _ => Response::json(
                404,
                json!({"error": {"code": 404, "title": "Not Found",
                "message": "The resource could not be found."}}),
            ),
        }
    }

    fn domain_ok(d: &Value) -> bool {
        d.get("id").and_then(Value::as_str) == Some("default")
            || d.get("name").and_then(Value::as_str) == Some("Default")
    }

    fn issue_token(&self, req: &Request, base: &str) -> Response {
        let host = req.header("host").unwrap_or("");
        let Some(body) = req.json() else {
            return Response::json(
                400,
                json!({"error": {"code": 400, "title": "Bad Request",
                "message": "Expecting to find auth in request body."}}),
            );
        };
        let auth = &body["auth"];
        let identity = &auth["identity"];
        let methods: Vec<&str> = identity["methods"]
            .as_array()
            .map(|m| m.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let cfg = &self.cfg;
        let (ok, scoped_by_credential) = if methods == ["password"] {
            let user = &identity["password"]["user"];
            let who = user.get("id").and_then(Value::as_str) == Some(USER_ID)
                || (user.get("name").and_then(Value::as_str) == Some(cfg.username.as_str())
                    && Self::domain_ok(&user["domain"]));
            let pw = user.get("password").and_then(Value::as_str) == Some(cfg.password.as_str());
            (who && pw, false)
        } else if methods == ["application_credential"] {
            let ac = &identity["application_credential"];
            let (id, name, secret) = &cfg.app_credential;
            let by_id = ac.get("id").and_then(Value::as_str) == Some(id.as_str());
            let by_name = ac.get("name").and_then(Value::as_str) == Some(name.as_str())
                && (ac["user"].get("id").and_then(Value::as_str) == Some(USER_ID)
                    || (ac["user"].get("name").and_then(Value::as_str)
                        == Some(cfg.username.as_str())
                        && Self::domain_ok(&ac["user"]["domain"])));
            let sec = ac.get("secret").and_then(Value::as_str) == Some(secret.as_str());
            ((by_id || by_name) && sec, true)
        } else {
            (false, false)
        };
        if !ok {
            return unauthorized(host);
        }
        let project = if scoped_by_credential {
            Some(())
        } else {
            match auth.get("scope").and_then(|s| s.get("project")) {
                None => None,
                Some(p) => {
                    let by_id = p.get("id").and_then(Value::as_str) == Some(PROJECT_ID);
                    let by_name = p.get("name").and_then(Value::as_str)
                        == Some(cfg.project_name.as_str())
                        && Self::domain_ok(&p["domain"]);
                    if !(by_id || by_name) {
                        return unauthorized(host);
                    }
                    Some(())
                }
            }
        };
        let token = format!("gAAAAAB{}", self.new_id(0x70c).replace('-', ""));
        self.lock().tokens.push(token.clone());
        let mut tok = json!({
            "methods": methods,
            "user": {"id": USER_ID, "name": cfg.username, "password_expires_at": null,
                "domain": {"id": "default", "name": "Default"}},
            "audit_ids": ["3T2dc1CGQxyJsHdDu1xkcw"],
            "expires_at": "2099-01-01T00:00:00.000000Z",
            "issued_at": "2026-01-01T00:00:00.000000Z",
        });
        if project.is_some() {
            let services = self
                .services_url
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let ep = |kind: &str, path: &str| {
                let url = match (&services, kind) {
                    (Some(s), "compute" | "image" | "network") => format!("{s}/{path}"),
                    _ => format!("{base}/{path}"),
                };
                let endpoints: Vec<Value> = ["public", "internal", "admin"]
                    .iter()
                    .map(|i| {
                        json!({"id": format!("{kind}-{i}"), "interface": i, "region": cfg.region,
                            "region_id": cfg.region, "url": url})
                    })
                    .collect();
                json!({"type": kind, "name": kind, "id": format!("{kind}-svc"), "endpoints": endpoints})
            };
            tok["project"] = json!({"id": PROJECT_ID, "name": cfg.project_name,
                "domain": {"id": "default", "name": "Default"}});
            tok["is_domain"] = json!(false);
            tok["roles"] = json!([{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"}]);
            tok["catalog"] = json!([
                ep("identity", "identity"),
                ep("compute", "compute/v2.1"),
                ep("image", "image"),
                ep("network", "network"),
            ]);
        }
        Response::json(201, json!({ "token": tok })).with_header("X-Subject-Token", &token)
    }

    // ---------------------------------------------------------------- Nova v2.1

    fn nova_version(&self, base: &str) -> Value {
        json!({"id": "v2.1", "status": "CURRENT",
            "version": format!("{}.{}", NOVA_MAX.0, NOVA_MAX.1),
            "min_version": format!("{}.{}", NOVA_MIN.0, NOVA_MIN.1),
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": format!("{base}/compute/v2.1/")}],
            "media-types": [{"base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1"}]})
    }

    fn nova(self: &Arc<Self>, req: &Request, rest: &str) -> Response {
        let base = req.base_url();
        if req.method == "GET" && rest.is_empty() {
            return Response::json(200, json!({"versions": [self.nova_version(&base)]}));
        }
        if req.method == "GET" && rest == "/v2.1" {
            return Response::json(200, json!({"version": self.nova_version(&base)}));
        }
        let asked = req
            .header("openstack-api-version")
            .and_then(|v| v.trim().strip_prefix("compute").map(str::trim))
            .or_else(|| req.header("x-openstack-nova-api-version"))
            .map(str::trim);
        let mv = match asked {
            None => NOVA_MIN,
            Some("latest") => NOVA_MAX,
            Some(v) => match parse_version(v) {
                Some(mv) if mv >= NOVA_MIN && mv <= NOVA_MAX => mv,
                _ => {
                    return nova_fault(
                        406,
                        &format!(
                            "Version {v} is not supported by the API. Minimum is 2.1 and maximum is {}.{}.",
                            NOVA_MAX.0, NOVA_MAX.1
                        ),
                    );
                }
            },
        };
        let Some(rest) = rest.strip_prefix("/v2.1") else {
            return nova_fault(404, "The resource could not be found.");
        };
        let mut resp = self.nova_route(req, rest, mv, &base);
        let v = format!("{}.{}", mv.0, mv.1);
        resp.headers
            .push(("OpenStack-API-Version".into(), format!("compute {v}")));
        resp.headers
            .push(("X-OpenStack-Nova-API-Version".into(), v));
        resp.headers.push((
            "Vary".into(),
            "OpenStack-API-Version, X-OpenStack-Nova-API-Version".into(),
        ));
        resp
    }

    fn flavors() -> Vec<Value> {
        [
            ("1", "m1.tiny", 512, 1, 1),
            ("2", "m1.small", 2048, 1, 20),
            ("3", "m1.medium", 4096, 2, 40),
        ]
        .iter()
        .map(|(id, name, ram, vcpus, disk)| {
            json!({"id": id, "name": name, "ram": ram, "vcpus": vcpus, "disk": disk,
                    "OS-FLV-EXT-DATA:ephemeral": 0, "swap": 0, "rxtx_factor": 1.0,
                    "os-flavor-access:is_public": true, "OS-FLV-DISABLED:disabled": false,
                    "description": null, "extra_specs": {},
                    "links": [{"rel": "self", "href": format!("/flavors/{id}")}]})
        })
        .collect()
    }

    fn nova_route(
        self: &Arc<Self>,
        req: &Request,
        rest: &str,
        mv: (u32, u32),
        base: &str,
    ) -> Response {
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["flavors"]) => Response::json(
                200,
                json!({"flavors": Self::flavors().iter().map(|f| json!({"id": f["id"], "name": f["name"], "links": f["links"]})).collect::<Vec<_>>()}),
            ),
            ("GET", ["flavors", "detail"]) => {
                Response::json(200, json!({"flavors": Self::flavors()}))
            }
            ("GET", ["flavors", id]) => {
                match Self::flavors().into_iter().find(|f| f["id"] == *id) {
                    Some(f) => Response::json(200, json!({"flavor": f})),
                    None => nova_fault(404, &format!("Flavor {id} could not be found.")),
                }
            }
            ("GET", ["os-keypairs"]) => {
                let st = self.lock();
                let list: Vec<Value> = st
                    .keypairs
                    .values()
                    .map(|k| {
                        json!({"keypair": {"name": k.name, "public_key": k.public_key,
                        "fingerprint": k.fingerprint, "type": k.kind}})
                    })
                    .collect();
                Response::json(200, json!({"keypairs": list}))
            }
            ("POST", ["os-keypairs"]) => self.create_keypair(req, mv),
            ("GET", ["os-keypairs", name]) => match self.lock().keypairs.get(*name) {
                Some(k) => Response::json(
                    200,
                    json!({"keypair": {"name": k.name,
                    "public_key": k.public_key, "fingerprint": k.fingerprint, "type": k.kind,
                    "user_id": USER_ID, "id": 1, "deleted": false, "deleted_at": null,
                    "updated_at": null, "created_at": "2026-01-01T00:00:00.000000"}}),
                ),
                None => nova_fault(404, &format!("Keypair {name} not found for user {USER_ID}")),
            },
            ("DELETE", ["os-keypairs", name]) => match self.lock().keypairs.remove(*name) {
                Some(_) => Response::empty(if mv >= (2, 2) { 204 } else { 202 }),
                None => nova_fault(404, &format!("Keypair {name} not found for user {USER_ID}")),
            },
            ("GET", ["servers"]) | ("GET", ["servers", "detail"]) => {
                let detail = parts.len() == 2;
                let st = self.lock();
                let list: Vec<Value> = st
                    .servers
                    .values()
                    .map(|s| {
                        if detail {
                            Self::server_json(s, &st, base)
                        } else {
                            json!({"id": s.id, "name": s.name, "links": []})
                        }
                    })
                    .collect();
                let list = filter(
                    list,
                    req,
                    &[
                        "limit",
                        "marker",
                        "all_tenants",
                        "deleted",
                        "sort_key",
                        "sort_dir",
                    ],
                );
                Response::json(200, json!({"servers": list}))
            }
            ("POST", ["servers"]) => self.create_server(req, mv, base),
            ("GET", ["servers", id]) => {
                let st = self.lock();
                match st.servers.get(*id) {
                    Some(s) => {
                        Response::json(200, json!({"server": Self::server_json(s, &st, base)}))
                    }
                    None => nova_fault(404, &format!("Instance {id} could not be found.")),
                }
            }
            ("DELETE", ["servers", id]) => self.delete_server(id),
            ("POST", ["servers", id, "action"]) => self.server_action(req, id),
            _ => nova_fault(404, "The resource could not be found."),
        }
    }

    fn create_keypair(&self, req: &Request, mv: (u32, u32)) -> Response {
        if (self.throttled.fetch_add(1, Ordering::SeqCst) as usize) < self.cfg.throttle_keypairs {
            return Response::json(
                429,
                json!({"overLimit": {"code": 429, "message": "This request was rate-limited.", "retryAfter": "1"}}),
            )
            .with_header("Retry-After", "1");
        }
        let body = req.json().unwrap_or(Value::Null);
        let kp = &body["keypair"];
        let Some(name) = kp.get("name").and_then(Value::as_str) else {
            return nova_fault(
                400,
                "Invalid input for field/attribute keypair. Value: None. 'name' is a required property",
            );
        };
        if name.is_empty()
            || name.len() > 255
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " _-.@".contains(c))
        {
            return nova_fault(
                400,
                "Keypair data is invalid: Keypair name contains unsafe characters",
            );
        }
        let Some(public_key) = kp.get("public_key").and_then(Value::as_str) else {
            return nova_fault(
                400,
                "Keypair data is invalid: this test cloud does not generate keys; import a public_key",
            );
        };
        let key = public_key.trim();
        let fields: Vec<&str> = key.split_whitespace().collect();
        if key.contains('\n')
            || fields.len() < 2
            || !(fields[0].starts_with("ssh-") || fields[0].starts_with("ecdsa-"))
            || base64_decode(fields[1]).is_none()
        {
            return nova_fault(
                400,
                "Keypair data is invalid: failed to generate fingerprint",
            );
        }
        let kind = kp
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("ssh")
            .to_string();
        let mut st = self.lock();
        if st.keypairs.contains_key(name) {
            return nova_fault(409, &format!("Key pair '{name}' already exists."));
        }
        if st.keypairs.len() >= 100 {
            return nova_fault(403, "Quota exceeded, too many key pairs.");
        }
        let k = Keypair {
            name: name.to_string(),
            public_key: key.to_string(),
            fingerprint: fingerprint(key),
            kind,
        };
        st.keypairs.insert(name.to_string(), k.clone());
        let mut out = json!({"name": k.name, "public_key": k.public_key,
            "fingerprint": k.fingerprint, "user_id": USER_ID});
        if mv >= (2, 2) {
            out["type"] = json!(k.kind);
        }
        Response::json(
            if mv >= (2, 2) { 201 } else { 200 },
            json!({"keypair": out}),
        )
    }

    fn server_json(s: &ServerRec, st: &State, base: &str) -> Value {
        let floating = st
            .floatingips
            .values()
            .filter(|f| f.port_id.as_deref() == Some(s.port_id.as_str()))
            .map(|f| f.address);
        let mut addrs = Vec::new();
        if let Some(a) = s.addr {
            addrs.push(
                json!({"addr": a.to_string(), "version": 4, "OS-EXT-IPS:type": "fixed",
                "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:4c:2c:30"}),
            );
            for f in floating {
                addrs.push(json!({"addr": f.to_string(), "version": 4,
                    "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:4c:2c:30"}));
            }
        }
        let (vm, power) = match s.status.as_str() {
            "ACTIVE" | "REBOOT" | "HARD_REBOOT" => ("active", 1),
            "SHUTOFF" => ("stopped", 4),
            "ERROR" => ("error", 0),
            _ => ("building", 0),
        };
        let mut v = json!({
            "id": s.id, "name": s.name, "status": s.status,
            "tenant_id": PROJECT_ID, "user_id": USER_ID, "metadata": {},
            "hostId": "", "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
            "addresses": if addrs.is_empty() { json!({}) } else { json!({"private": addrs}) },
            "accessIPv4": "", "accessIPv6": "", "progress": if s.status == "BUILD" { 0 } else { 100 },
            "key_name": s.key_name,
            "image": {"id": s.image_id, "links": [{"rel": "bookmark", "href": format!("{base}/compute/images/{}", s.image_id)}]},
            "flavor": {"id": s.flavor_id, "links": []},
            "security_groups": s.security_groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>(),
            "OS-EXT-AZ:availability_zone": s.availability_zone,
            "config_drive": if s.config_drive { "True" } else { "" },
            "OS-DCF:diskConfig": "MANUAL",
            "OS-EXT-STS:vm_state": vm, "OS-EXT-STS:power_state": power,
            "OS-EXT-STS:task_state": s.task_state,
            "os-extended-volumes:volumes_attached": [],
            "links": [{"rel": "self", "href": format!("{base}/compute/v2.1/servers/{}", s.id)}],
        });
        if let Some(f) = &s.fault {
            v["fault"] = json!({"code": 500, "message": f, "created": "2026-01-01T00:00:00Z"});
        }
        v
    }

    fn create_server(self: &Arc<Self>, req: &Request, mv: (u32, u32), base: &str) -> Response {
        let body = req.json().unwrap_or(Value::Null);
        let s = &body["server"];
        let Some(name) = s
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.trim().is_empty())
        else {
            return nova_fault(
                400,
                "Invalid input for field/attribute name. Value: None. 'name' is a required property",
            );
        };
        let Some(flavor) = s.get("flavorRef").and_then(Value::as_str) else {
            return nova_fault(
                400,
                "Invalid input for field/attribute flavorRef. 'flavorRef' is a required property",
            );
        };
        let flavor = flavor.rsplit('/').next().unwrap_or(flavor);
        if !Self::flavors().iter().any(|f| f["id"] == flavor) {
            return nova_fault(400, &format!("Flavor {flavor} could not be found."));
        }
        let image = s.get("imageRef").and_then(Value::as_str).unwrap_or("");
        if !Self::images().iter().any(|i| i["id"] == image) {
            return nova_fault(400, "Can not find requested image");
        }
        let network = match s.get("networks") {
            None if mv >= (2, 37) => {
                return nova_fault(
                    400,
                    "Invalid input for field/attribute server. Value: {...}. 'networks' is a required property",
                );
            }
            None => PRIVATE_NET.to_string(),
            Some(Value::String(a)) if a == "auto" => PRIVATE_NET.to_string(),
            Some(Value::Array(nets)) if nets.len() == 1 => {
                let uuid = nets[0].get("uuid").and_then(Value::as_str).unwrap_or("");
                if uuid != PRIVATE_NET {
                    return nova_fault(400, &format!("Network {uuid} could not be found."));
                }
                uuid.to_string()
            }
            Some(_) => {
                return nova_fault(
                    400,
                    "This test cloud attaches exactly one network (private) per server.",
                );
            }
        };
        let _ = network;
        let mut groups = Vec::new();
        if let Some(gs) = s.get("security_groups").and_then(Value::as_array) {
            for g in gs {
                let n = g.get("name").and_then(Value::as_str).unwrap_or("");
                if !Self::security_groups()
                    .iter()
                    .any(|sg| sg["name"] == n || sg["id"] == n)
                {
                    return nova_fault(
                        400,
                        &format!("Security group {n} not found for project {PROJECT_ID}."),
                    );
                }
                groups.push(n.to_string());
            }
        }
        if groups.is_empty() {
            groups.push("default".into());
        }
        let az = s
            .get("availability_zone")
            .and_then(Value::as_str)
            .unwrap_or("nova");
        if az != "nova" {
            return nova_fault(400, "The requested availability zone is not available");
        }
        let config_drive = match s.get("config_drive") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(v)) => {
                matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
            }
            Some(_) => return nova_fault(400, "Invalid input for field/attribute config_drive."),
        };
        let user_data = match s.get("user_data").and_then(Value::as_str) {
            None => None,
            Some(u) if u.len() > 65535 => {
                return nova_fault(
                    400,
                    "Invalid input for field/attribute user_data. Value: ... is too long",
                );
            }
            Some(u) => match base64_decode(u).ok_or(()) {
                Ok(d) => Some(String::from_utf8_lossy(&d).into_owned()),
                Err(_) => return nova_fault(400, "User data needs to be valid base 64."),
            },
        };
        let key_name = s.get("key_name").and_then(Value::as_str).map(String::from);
        let mut st = self.lock();
        let public_key = match &key_name {
            None => None,
            Some(k) => match st.keypairs.get(k) {
                Some(kp) => Some(kp.public_key.clone()),
                None => return nova_fault(400, "Invalid key_name provided."),
            },
        };
        if st.servers.len() >= self.cfg.max_servers {
            return nova_fault(
                403,
                &format!(
                    "Quota exceeded for instances: Requested 1, but already used {} of {} instances",
                    st.servers.len(),
                    self.cfg.max_servers
                ),
            );
        }
        let id = self.new_id(0x5e7);
        let port_id = self.new_id(0x907);
        st.servers.insert(
            id.clone(),
            ServerRec {
                id: id.clone(),
                name: name.to_string(),
                status: "BUILD".into(),
                task_state: Some("spawning".into()),
                key_name,
                flavor_id: flavor.to_string(),
                image_id: image.to_string(),
                security_groups: groups.clone(),
                availability_zone: az.to_string(),
                config_drive,
                user_data,
                addr: None,
                port_id,
                fault: None,
            },
        );
        drop(st);
        let me = self.clone();
        let bid = id.clone();
        std::thread::spawn(move || {
            let booted = match &me.cfg.boot_fault {
                // Fails before any host is made, like a scheduler finding no host.
                Some(fault) => Err(std::io::Error::other(fault.clone())),
                None => me.fleet.boot(&bid, public_key.as_deref()),
            };
            let mut st = me.lock();
            match (st.servers.get_mut(&bid), booted) {
                (Some(s), Ok(addr)) => {
                    s.addr = Some(addr);
                    s.status = "ACTIVE".into();
                    s.task_state = None;
                }
                (Some(s), Err(e)) => {
                    s.status = "ERROR".into();
                    s.task_state = None;
                    s.fault = Some(match &me.cfg.boot_fault {
                        Some(f) => f.clone(),
                        None => format!("Build of instance {bid} aborted: {e}"),
                    });
                }
                // Deleted while building: the host goes too.
                (None, _) => {
                    drop(st);
                    me.fleet.delete(&bid);
                }
            }
        });
        Response::json(
            202,
            json!({"server": {"id": id, "OS-DCF:diskConfig": "MANUAL",
                "adminPass": "kJ8wq2Zx9mLp",
                "security_groups": groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>(),
                "links": [{"rel": "self", "href": format!("{base}/compute/v2.1/servers/{id}")}]}}),
        )
        .with_header("Location", &format!("{base}/compute/v2.1/servers/{id}"))
    }

    fn delete_server(&self, id: &str) -> Response {
        let mut st = self.lock();
        let Some(s) = st.servers.remove(id) else {
            return nova_fault(404, &format!("Instance {id} could not be found."));
        };
        // The server's port goes with it: floating IPs on it are detached (not released).
        let detached: Vec<Ipv4Addr> = st
            .floatingips
            .values_mut()
            .filter(|f| f.port_id.as_deref() == Some(s.port_id.as_str()))
            .map(|f| {
                f.port_id = None;
                f.address
            })
            .collect();
        drop(st);
        let _ = detached;
        self.fleet.delete(id);
        Response::empty(204)
    }

    fn server_action(self: &Arc<Self>, req: &Request, id: &str) -> Response {
        let body = req.json().unwrap_or(Value::Null);
        let Some(action) = body.as_object().and_then(|o| o.keys().next().cloned()) else {
            return nova_fault(400, "Malformed request body");
        };
        let mut st = self.lock();
        let Some(s) = st.servers.get_mut(id) else {
            return nova_fault(404, &format!("Instance {id} could not be found."));
        };
        let vm = match s.status.as_str() {
            "ACTIVE" => "active",
            "SHUTOFF" => "stopped",
            "ERROR" => "error",
            _ => "building",
        };
        let busy = s.task_state.is_some();
        let conflict = |what: &str| {
            nova_fault(
                409,
                &format!("Cannot '{what}' instance {id} while it is in vm_state {vm}"),
            )
        };
        type Op = fn(&Fleet, &str) -> std::io::Result<()>;
        let (task, done, op): (&str, &str, Op) = match action.as_str() {
            "os-start" if s.status == "SHUTOFF" && !busy => {
                ("powering-on", "ACTIVE", |f, i| f.start(i))
            }
            "os-start" => return conflict("start"),
            "os-stop" if matches!(s.status.as_str(), "ACTIVE" | "ERROR") && !busy => {
                ("powering-off", "SHUTOFF", |f, i| f.stop(i))
            }
            "os-stop" => return conflict("stop"),
            "reboot" => {
                let hard = body["reboot"]["type"].as_str() == Some("HARD");
                if !matches!(body["reboot"]["type"].as_str(), Some("SOFT" | "HARD")) {
                    return nova_fault(400, "Invalid input for field/attribute type.");
                }
                let ok = if hard {
                    matches!(
                        s.status.as_str(),
                        "ACTIVE" | "ERROR" | "SHUTOFF" | "HARD_REBOOT"
                    )
                } else {
                    s.status == "ACTIVE"
                };
                if !ok || busy {
                    return conflict("reboot");
                }
                s.status = if hard { "HARD_REBOOT" } else { "REBOOT" }.into();
                ("rebooting", "ACTIVE", |f, i| f.reboot(i))
            }
            other => {
                return nova_fault(400, &format!("There is no such action: {other}"));
            }
        };
        s.task_state = Some(task.into());
        drop(st);
        let me = self.clone();
        let sid = id.to_string();
        std::thread::spawn(move || {
            let r = op(&me.fleet, &sid);
            let mut st = me.lock();
            if let Some(s) = st.servers.get_mut(&sid) {
                s.task_state = None;
                match r {
                    Ok(()) => s.status = done.into(),
                    Err(e) => {
                        s.status = "ERROR".into();
                        s.fault = Some(format!("{task} failed: {e}"));
                    }
                }
            }
        });
        Response::empty(202)
    }

    // ---------------------------------------------------------------- Glance v2

    fn images() -> Vec<Value> {
        [
            ("0a1b2c3d-1111-4aaa-8bbb-000000000001", "cirros-0.6.2"),
            (DEBIAN_IMAGE, "debian-12"),
            ("0a1b2c3d-3333-4ccc-8ddd-000000000003", "ubuntu-24.04"),
            ("0a1b2c3d-4444-4ddd-8eee-000000000004", "fedora-40"),
            ("0a1b2c3d-5555-4eee-8fff-000000000005", "debian-11"),
        ]
        .iter()
        .map(|(id, name)| {
            json!({"id": id, "name": name, "status": "active", "visibility": "public",
                "protected": false, "os_hidden": false, "owner": PROJECT_ID,
                "disk_format": "qcow2", "container_format": "bare", "min_disk": 0, "min_ram": 0,
                "size": 13_267_968, "checksum": null, "tags": [], "file": format!("/v2/images/{id}/file"),
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                "self": format!("/v2/images/{id}"), "schema": "/v2/schemas/image"})
        })
        .collect()
    }

    fn glance(&self, req: &Request, rest: &str) -> Response {
        let base = req.base_url();
        match (req.method.as_str(), rest) {
            ("GET", "") => {
                return Response::json(
                    300,
                    json!({"versions": [
                        {"id": "v2.16", "status": "CURRENT", "links": [{"rel": "self", "href": format!("{base}/image/v2/")}]},
                        {"id": "v2.0", "status": "SUPPORTED", "links": [{"rel": "self", "href": format!("{base}/image/v2/")}]},
                    ]}),
                );
            }
            ("GET", "/v2/images") => {}
            ("GET", r) if r.starts_with("/v2/images/") => {
                let id = &r["/v2/images/".len()..];
                return match Self::images().into_iter().find(|i| i["id"] == id) {
                    Some(i) => Response::json(200, i),
                    None => Response::json(
                        404,
                        json!({"code": 404, "title": "Not Found",
                        "message": format!("No image found with ID {id}")}),
                    ),
                };
            }
            _ => {
                return Response::json(
                    404,
                    json!({"code": 404, "title": "Not Found",
                    "message": "The resource could not be found."}),
                );
            }
        }
        let all = filter(
            Self::images(),
            req,
            &[
                "limit",
                "marker",
                "sort",
                "sort_key",
                "sort_dir",
                "member_status",
            ],
        );
        let limit = match req.query("limit").map(str::parse::<usize>) {
            None => GLANCE_PAGE,
            Some(Ok(n)) if n > 0 => n.min(1000),
            Some(_) => {
                return Response::json(
                    400,
                    json!({"code": 400, "title": "Bad Request",
                    "message": "limit param must be positive"}),
                );
            }
        };
        let start = match req.query("marker") {
            None => 0,
            Some(m) => match all.iter().position(|i| i["id"] == m) {
                Some(p) => p + 1,
                None => {
                    return Response::json(
                        400,
                        json!({"code": 400, "title": "Bad Request",
                        "message": format!("marker {m} could not be found.")}),
                    );
                }
            },
        };
        let page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
        let mut out =
            json!({"images": page, "first": "/v2/images", "schema": "/v2/schemas/images"});
        if start + limit < all.len() {
            let last = &all[start + limit - 1]["id"];
            let mut next = format!(
                "/v2/images?marker={}&limit={limit}",
                last.as_str().unwrap_or("")
            );
            if let Some(n) = req.query("name") {
                let n: String = n
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                next.push_str(&format!("&name={n}"));
            }
            out["next"] = json!(next);
        }
        Response::json(200, out)
    }

    // ---------------------------------------------------------------- Neutron v2.0

    fn networks() -> Vec<Value> {
        let net = |id: &str, name: &str, external: bool, subnets: Vec<&str>| {
            json!({"id": id, "name": name, "status": "ACTIVE", "admin_state_up": true,
                "router:external": external, "shared": false, "subnets": subnets,
                "project_id": PROJECT_ID, "tenant_id": PROJECT_ID, "mtu": 1450,
                "availability_zones": ["nova"], "description": "", "tags": [],
                "port_security_enabled": true, "is_default": external,
                "provider:network_type": null, "revision_number": 1})
        };
        vec![
            net(PRIVATE_NET, "private", false, vec![PRIVATE_SUBNET]),
            net(PUBLIC_NET, "public", true, vec![]),
        ]
    }

    fn security_groups() -> Vec<Value> {
        [
            ("f6c8b4d7-2a99-4162-8d65-0c7e3f1a5b06", "default"),
            ("07d9c5e8-3baa-4273-9e76-1d8f4a2b6c07", "docker-machine"),
        ]
        .iter()
        .map(|(id, name)| {
            json!({"id": id, "name": name, "description": "", "project_id": PROJECT_ID,
                    "tenant_id": PROJECT_ID, "stateful": true, "tags": [], "revision_number": 1,
                    "security_group_rules": []})
        })
        .collect()
    }

    fn port_json(s: &ServerRec) -> Value {
        json!({"id": s.port_id, "network_id": PRIVATE_NET, "device_id": s.id,
            "device_owner": "compute:nova", "mac_address": "fa:16:3e:4c:2c:30",
            "fixed_ips": s.addr.map(|a| vec![json!({"subnet_id": PRIVATE_SUBNET, "ip_address": a.to_string()})]).unwrap_or_default(),
            "status": if s.status == "ACTIVE" { "ACTIVE" } else { "DOWN" },
            "admin_state_up": true, "project_id": PROJECT_ID, "tenant_id": PROJECT_ID,
            "name": "", "security_groups": [], "tags": []})
    }

    fn fip_json(f: &FloatingIp, st: &State) -> Value {
        let fixed = f.port_id.as_ref().and_then(|p| {
            st.servers
                .values()
                .find(|s| &s.port_id == p)
                .and_then(|s| s.addr)
        });
        json!({"id": f.id, "floating_ip_address": f.address.to_string(),
            "floating_network_id": PUBLIC_NET, "port_id": f.port_id,
            "fixed_ip_address": fixed.map(|a| a.to_string()),
            "router_id": f.port_id.as_ref().map(|_| "1e2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b"),
            "status": if f.port_id.is_some() { "ACTIVE" } else { "DOWN" },
            "project_id": PROJECT_ID, "tenant_id": PROJECT_ID, "description": "",
            "tags": [], "revision_number": 1, "port_details": null,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"})
    }

    fn neutron(&self, req: &Request, rest: &str) -> Response {
        let base = req.base_url();
        if req.method == "GET" && rest.is_empty() {
            return Response::json(
                200,
                json!({"versions": [{"id": "v2.0", "status": "CURRENT",
                    "links": [{"rel": "self", "href": format!("{base}/network/v2.0/")}]}]}),
            );
        }
        let Some(rest) = rest.strip_prefix("/v2.0") else {
            return neutron_error(404, "HTTPNotFound", "The resource could not be found.");
        };
        let rest = rest.strip_suffix(".json").unwrap_or(rest);
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        let skip = ["fields", "limit", "marker", "sort_key", "sort_dir"];
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", []) => Response::json(200, json!({"resources": []})),
            ("GET", ["networks"]) => Response::json(
                200,
                json!({"networks": filter(Self::networks(), req, &skip)}),
            ),
            ("GET", ["networks", id]) => {
                match Self::networks().into_iter().find(|n| n["id"] == *id) {
                    Some(n) => Response::json(200, json!({"network": n})),
                    None => neutron_error(
                        404,
                        "NetworkNotFound",
                        &format!("Network {id} could not be found."),
                    ),
                }
            }
            ("GET", ["security-groups"]) => Response::json(
                200,
                json!({"security_groups": filter(Self::security_groups(), req, &skip)}),
            ),
            ("GET", ["security-groups", id]) => {
                match Self::security_groups().into_iter().find(|g| g["id"] == *id) {
                    Some(g) => Response::json(200, json!({"security_group": g})),
                    None => neutron_error(
                        404,
                        "SecurityGroupNotFound",
                        &format!("Security group {id} does not exist"),
                    ),
                }
            }
            ("GET", ["ports"]) => {
                let ports: Vec<Value> = self.lock().servers.values().map(Self::port_json).collect();
                Response::json(200, json!({"ports": filter(ports, req, &skip)}))
            }
            ("GET", ["ports", id]) => match self.lock().servers.values().find(|s| s.port_id == *id)
            {
                Some(s) => Response::json(200, json!({"port": Self::port_json(s)})),
                None => neutron_error(
                    404,
                    "PortNotFound",
                    &format!("Port {id} could not be found."),
                ),
            },
            ("GET", ["floatingips"]) => {
                let st = self.lock();
                let list: Vec<Value> = st
                    .floatingips
                    .values()
                    .map(|f| Self::fip_json(f, &st))
                    .collect();
                Response::json(200, json!({"floatingips": filter(list, req, &skip)}))
            }
            ("POST", ["floatingips"]) => self.create_fip(req),
            ("GET", ["floatingips", id]) => {
                let st = self.lock();
                match st.floatingips.get(*id) {
                    Some(f) => Response::json(200, json!({"floatingip": Self::fip_json(f, &st)})),
                    None => neutron_error(
                        404,
                        "FloatingIPNotFound",
                        &format!("Floating IP {id} could not be found"),
                    ),
                }
            }
            ("PUT", ["floatingips", id]) => self.update_fip(req, id),
            ("DELETE", ["floatingips", id]) => {
                let gone = self.lock().floatingips.remove(*id);
                match gone {
                    Some(f) => {
                        if f.port_id.is_some() {
                            let _ = self.fleet.remove_alias(&f.server_id, f.address);
                        }
                        Response::empty(204)
                    }
                    None => neutron_error(
                        404,
                        "FloatingIPNotFound",
                        &format!("Floating IP {id} could not be found"),
                    ),
                }
            }
            _ => neutron_error(404, "HTTPNotFound", "The resource could not be found."),
        }
    }

    /// The server owning an (active) port.
    fn server_of_port(st: &State, port: &str) -> Option<String> {
        st.servers
            .values()
            .find(|s| s.port_id == port && s.addr.is_some())
            .map(|s| s.id.clone())
    }

    fn create_fip(&self, req: &Request) -> Response {
        let body = req.json().unwrap_or(Value::Null);
        let f = &body["floatingip"];
        let net = f
            .get("floating_network_id")
            .and_then(Value::as_str)
            .unwrap_or("");
        if net != PUBLIC_NET {
            return match Self::networks().iter().any(|n| n["id"] == net) {
                true => neutron_error(
                    400,
                    "BadRequest",
                    &format!(
                        "Bad floatingip request: Network {net} is not a valid external network."
                    ),
                ),
                false => neutron_error(
                    404,
                    "NetworkNotFound",
                    &format!("Network {net} could not be found."),
                ),
            };
        }
        let Some(port) = f.get("port_id").and_then(Value::as_str) else {
            return neutron_error(
                400,
                "BadRequest",
                "Bad floatingip request: this test cloud allocates a floating IP only with a port_id (the address is added to that server's host).",
            );
        };
        let st = self.lock();
        let Some(server) = Self::server_of_port(&st, port) else {
            return neutron_error(
                404,
                "PortNotFound",
                &format!("Port {port} could not be found."),
            );
        };
        if st.floatingips.len() >= 50 {
            return neutron_error(
                409,
                "OverQuota",
                "Quota exceeded for resources: ['floatingip'].",
            );
        }
        drop(st);
        let address = match self.fleet.add_alias(&server, None) {
            Ok(a) => a,
            Err(e) => {
                return neutron_error(
                    409,
                    "IpAddressGenerationFailure",
                    &format!("No more IP addresses available on network {PUBLIC_NET}: {e}"),
                );
            }
        };
        let fip = FloatingIp {
            id: self.new_id(0xf1f),
            address,
            server_id: server,
            port_id: Some(port.to_string()),
        };
        let mut st = self.lock();
        st.floatingips.insert(fip.id.clone(), fip.clone());
        Response::json(201, json!({"floatingip": Self::fip_json(&fip, &st)}))
    }

    fn update_fip(&self, req: &Request, id: &str) -> Response {
        let body = req.json().unwrap_or(Value::Null);
        let Some(port) = body["floatingip"].get("port_id") else {
            return neutron_error(
                400,
                "BadRequest",
                "Bad floatingip request: port_id is missing.",
            );
        };
        let mut st = self.lock();
        let Some(f) = st.floatingips.get(id).cloned() else {
            return neutron_error(
                404,
                "FloatingIPNotFound",
                &format!("Floating IP {id} could not be found"),
            );
        };
        let new_port = match port {
            Value::Null => None,
            Value::String(p) => {
                match Self::server_of_port(&st, p) {
                    Some(s) if s == f.server_id => {}
                    Some(_) => {
                        return neutron_error(
                            400,
                            "BadRequest",
                            "Bad floatingip request: this test cloud attaches a floating IP only to the server it was allocated for.",
                        );
                    }
                    None => {
                        return neutron_error(
                            404,
                            "PortNotFound",
                            &format!("Port {p} could not be found."),
                        );
                    }
                }
                if f.port_id.as_deref().is_some_and(|old| old != p) {
                    return neutron_error(
                        409,
                        "FloatingIPPortAlreadyAssociated",
                        &format!(
                            "Cannot associate floating IP {} ({id}) with port {p}: it is already associated with port {}.",
                            f.address,
                            f.port_id.as_deref().unwrap_or("")
                        ),
                    );
                }
                Some(p.clone())
            }
            _ => {
                return neutron_error(
                    400,
                    "BadRequest",
                    "Bad floatingip request: invalid port_id.",
                );
            }
        };
        drop(st);
        let changed = match (&f.port_id, &new_port) {
            (Some(_), None) => self.fleet.remove_alias(&f.server_id, f.address),
            (None, Some(_)) => self
                .fleet
                .add_alias(&f.server_id, Some(f.address))
                .map(drop),
            _ => Ok(()),
        };
        if let Err(e) = changed {
            return neutron_error(
                500,
                "HTTPInternalServerError",
                &format!("Request Failed: {e}"),
            );
        }
        st = self.lock();
        let Some(rec) = st.floatingips.get_mut(id) else {
            return neutron_error(
                404,
                "FloatingIPNotFound",
                &format!("Floating IP {id} could not be found"),
            );
        };
        rec.port_id = new_port;
        let rec = rec.clone();
        Response::json(200, json!({"floatingip": Self::fip_json(&rec, &st)}))
    }
}
