//! A local DigitalOcean API v2, written from DigitalOcean's OpenAPI reference
//! (`digitalocean/openapi specification/…`, ../shared/reference/clouds.md §3): bearer auth
//! (401 `{"id":"unauthorized","message":…}`), `{"id":"not_found",…}` 404s, `links.pages` /
//! `meta.total` pagination (`per_page` ≤ 200, `page`), `ratelimit-*` headers, account SSH keys
//! (201 `{"ssh_key":…}`, 422 for a key already in use), droplets (202; status new → active;
//! 204 on delete) and droplet actions (201 `{"action":…}` in-progress → completed).
//! Creating a droplet boots a testbed host with Debian's docker.io in the background, the
//! droplet's keys authorised for root, and reports the host's address as its public v4;
//! power actions map onto the host and deleting the droplet removes it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use super::fleet::Fleet;
use super::server::{Faults, Handler, Request, Response, Server, base64_decode};

/// The account's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The one valid API token.
    pub token: String,
    /// Most droplets the account may have (more: 422 like DigitalOcean's droplet limit).
    pub max_droplets: usize,
    /// Answer the first droplet create with a burst-limit 429 and `retry-after: 1`.
    pub throttle_first_create: bool,
    /// Faults injected into the answers (none by default).
    pub faults: Faults,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            token: "dop_v1_local0123456789abcdef".into(),
            max_droplets: 5,
            throttle_first_create: false,
            faults: Faults::default(),
        }
    }
}

/// An account SSH key.
#[derive(Clone, Debug)]
pub struct Key {
    /// Id.
    pub id: u64,
    /// MD5 fingerprint, colon form.
    pub fingerprint: String,
    /// Name.
    pub name: String,
    /// OpenSSH public key line.
    pub public_key: String,
}

/// A droplet.
#[derive(Clone, Debug)]
pub struct Droplet {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// new | active | off | archive.
    pub status: String,
    /// Public v4 once booted.
    pub addr: Option<Ipv4Addr>,
    /// Region slug.
    pub region: String,
    /// Size slug.
    pub size: String,
    /// Image slug or id as given.
    pub image: String,
    /// Tags.
    pub tags: Vec<String>,
    /// The cloud-init user data given.
    pub user_data: Option<String>,
    /// Options as given.
    pub ipv6: bool,
    /// Options as given.
    pub private_networking: bool,
    /// Options as given.
    pub backups: bool,
    /// Options as given.
    pub monitoring: bool,
    /// Creation time.
    pub created_at: String,
}

#[derive(Clone, Debug)]
struct Action {
    id: u64,
    droplet: u64,
    kind: String,
    status: String,
}

#[derive(Default)]
struct State {
    keys: BTreeMap<u64, Key>,
    droplets: BTreeMap<u64, Droplet>,
    actions: BTreeMap<u64, Action>,
    requests: u64,
    throttled: bool,
}

struct Inner {
    cfg: Config,
    fleet: Arc<Fleet>,
    state: Mutex<State>,
    next: AtomicU64,
}

/// The running API.
pub struct DigitalOcean {
    /// The HTTP server (its requests are recorded).
    pub http: Server,
    inner: Arc<Inner>,
}

impl DigitalOcean {
    /// Starts the API on 127.0.0.1 with its own fleet.
    pub fn start(cfg: Config) -> DigitalOcean {
        let inner = Arc::new(Inner {
            cfg,
            fleet: Arc::new(Fleet::new()),
            state: Mutex::new(State::default()),
            next: AtomicU64::new(3_164_444),
        });
        let h = inner.clone();
        let handler: Handler = inner
            .cfg
            .faults
            .wrap(Arc::new(move |req: &Request| h.handle(req)));
        DigitalOcean {
            http: Server::start(handler),
            inner,
        }
    }

    /// The API URL to give clients (`--digitalocean-api-url`, pydo's endpoint).
    pub fn url(&self) -> String {
        self.http.url.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// The droplets that exist.
    pub fn droplets(&self) -> Vec<Droplet> {
        self.inner.lock().droplets.values().cloned().collect()
    }

    /// The account keys that exist.
    pub fn keys(&self) -> Vec<Key> {
        self.inner.lock().keys.values().cloned().collect()
    }

    /// Everything a client made that still exists (droplets, keys, testbed hosts), one
    /// line each; empty when a client cleaned up after itself.
    pub fn leftovers(&self) -> Vec<String> {
        let st = self.inner.lock();
        let mut out: Vec<String> = st
            .droplets
            .values()
            .map(|d| format!("droplet {} ({})", d.id, d.name))
            .collect();
        out.extend(
            st.keys
                .values()
                .map(|k| format!("ssh key {} ({})", k.id, k.name)),
        );
        drop(st);
        out.extend(self.inner.fleet.leftovers("droplet "));
        out
    }
}

/// DigitalOcean's error body.
fn error(status: u16, id: &str, message: &str) -> Response {
    Response::json(
        status,
        json!({"id": id, "message": message, "request_id": "4d9d8375-3c56-4925-a3e7-eed06aa07ccf"}),
    )
}

fn not_found() -> Response {
    error(
        404,
        "not_found",
        "The resource you were accessing could not be found.",
    )
}

fn unprocessable(message: &str) -> Response {
    error(422, "unprocessable_entity", message)
}

const REGIONS: &[(&str, &str)] = &[
    ("nyc1", "New York 1"),
    ("nyc3", "New York 3"),
    ("ams3", "Amsterdam 3"),
    ("fra1", "Frankfurt 1"),
    ("lon1", "London 1"),
    ("sfo3", "San Francisco 3"),
    ("sgp1", "Singapore 1"),
    ("tor1", "Toronto 1"),
    ("blr1", "Bangalore 1"),
    ("syd1", "Sydney 1"),
];

const SIZES: &[(&str, u64, u64, u64, f64)] = &[
    ("s-1vcpu-512mb-10gb", 512, 1, 10, 4.0),
    ("s-1vcpu-1gb", 1024, 1, 25, 6.0),
    ("s-1vcpu-2gb", 2048, 1, 50, 12.0),
    ("s-2vcpu-2gb", 2048, 2, 60, 18.0),
    ("s-2vcpu-4gb", 4096, 2, 80, 24.0),
    ("s-4vcpu-8gb", 8192, 4, 160, 48.0),
];

const IMAGES: &[(u64, &str, &str, &str)] = &[
    (
        106_433_672,
        "ubuntu-16-04-x64",
        "Ubuntu",
        "16.04.6 (LTS) x64",
    ),
    (129_211_873, "ubuntu-22-04-x64", "Ubuntu", "22.04 (LTS) x64"),
    (142_523_413, "debian-12-x64", "Debian", "12 x64"),
    (139_893_441, "fedora-39-x64", "Fedora", "39 x64"),
];

fn region_json(slug: &str, name: &str) -> Value {
    json!({"slug": slug, "name": name, "available": true,
        "sizes": SIZES.iter().map(|s| s.0).collect::<Vec<_>>(),
        "features": ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"]})
}

fn size_json(s: &(&str, u64, u64, u64, f64)) -> Value {
    json!({"slug": s.0, "memory": s.1, "vcpus": s.2, "disk": s.3, "transfer": 1.0,
        "price_monthly": s.4, "price_hourly": s.4 / 730.0, "available": true,
        "regions": REGIONS.iter().map(|r| r.0).collect::<Vec<_>>(),
        "description": "Basic"})
}

fn image_json(i: &(u64, &str, &str, &str)) -> Value {
    json!({"id": i.0, "name": i.3, "distribution": i.2, "slug": i.1, "public": true,
        "regions": REGIONS.iter().map(|r| r.0).collect::<Vec<_>>(),
        "created_at": "2024-01-01T00:00:00Z", "type": "base", "min_disk_size": 10,
        "size_gigabytes": 2.3, "description": "", "tags": [], "status": "available",
        "error_message": ""})
}

/// MD5 fingerprint of an OpenSSH public key line, colon-separated (DigitalOcean's form).
pub fn fingerprint(public_key: &str) -> Option<String> {
    let b64 = public_key.split_whitespace().nth(1)?;
    let blob = base64_decode(b64)?;
    Some(
        md5::compute(&blob)
            .0
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// Whether a droplet name matches the API's pattern `^[a-zA-Z0-9]?[a-z0-9A-Z.\-]*[a-z0-9A-Z]$`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::SeqCst)
    }

    fn handle(self: &Arc<Self>, req: &Request) -> Response {
        let remaining = {
            let mut st = self.lock();
            st.requests += 1;
            5000u64.saturating_sub(st.requests)
        };
        let reset = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
        let resp = self.route(req);
        resp.with_header("ratelimit-limit", "5000")
            .with_header("ratelimit-remaining", &remaining.to_string())
            .with_header("ratelimit-reset", &reset.to_string())
    }

    fn route(self: &Arc<Self>, req: &Request) -> Response {
        let authorized = req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| t.trim() == self.cfg.token);
        if !authorized {
            return error(401, "unauthorized", "Unable to authenticate you");
        }
        let Some(rest) = req.path.strip_prefix("/v2/") else {
            return not_found();
        };
        let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        let base = format!("{}/v2", req.base_url());
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["regions"]) => paginate(
                req,
                &base,
                "regions",
                REGIONS.iter().map(|r| region_json(r.0, r.1)).collect(),
            ),
            ("GET", ["sizes"]) => {
                paginate(req, &base, "sizes", SIZES.iter().map(size_json).collect())
            }
            ("GET", ["images"]) => paginate(
                req,
                &base,
                "images",
                IMAGES.iter().map(image_json).collect(),
            ),
            ("GET", ["account", "keys"]) => {
                let keys = self.lock().keys.values().map(key_json).collect();
                paginate(req, &base, "ssh_keys", keys)
            }
            ("POST", ["account", "keys"]) => self.create_key(req),
            ("GET", ["account", "keys", k]) => match self.find_key(k) {
                Some(key) => Response::json(200, json!({"ssh_key": key_json(&key)})),
                None => not_found(),
            },
            ("DELETE", ["account", "keys", k]) => match self.find_key(k) {
                Some(key) => {
                    self.lock().keys.remove(&key.id);
                    Response::empty(204)
                }
                None => not_found(),
            },
            ("GET", ["droplets"]) => {
                let st = self.lock();
                let droplets = st
                    .droplets
                    .values()
                    .filter(|d| {
                        req.query("tag_name")
                            .is_none_or(|t| d.tags.iter().any(|x| x == t))
                    })
                    .map(|d| droplet_json(d, &st))
                    .collect();
                drop(st);
                paginate(req, &base, "droplets", droplets)
            }
            ("POST", ["droplets"]) => self.create_droplet(req, &base),
            ("GET", ["droplets", id]) => {
                let st = self.lock();
                match id.parse().ok().and_then(|id: u64| st.droplets.get(&id)) {
                    Some(d) => Response::json(200, json!({"droplet": droplet_json(d, &st)})),
                    None => not_found(),
                }
            }
            ("DELETE", ["droplets", id]) => {
                let Some(id) = id.parse::<u64>().ok() else {
                    return not_found();
                };
                if self.lock().droplets.remove(&id).is_none() {
                    return not_found();
                }
                self.fleet.delete(&id.to_string());
                Response::empty(204)
            }
            ("POST", ["droplets", id, "actions"]) => self.droplet_action(req, id, &base),
            ("GET", ["droplets", id, "actions", aid]) => {
                let st = self.lock();
                match aid.parse().ok().and_then(|a: u64| st.actions.get(&a)) {
                    Some(a) if id.parse() == Ok(a.droplet) => {
                        Response::json(200, json!({"action": action_json(a)}))
                    }
                    _ => not_found(),
                }
            }
            ("GET", ["actions", aid]) => {
                let st = self.lock();
                match aid.parse().ok().and_then(|a: u64| st.actions.get(&a)) {
                    Some(a) => Response::json(200, json!({"action": action_json(a)})),
                    None => not_found(),
                }
            }
            _ => not_found(),
        }
    }

    fn find_key(&self, k: &str) -> Option<Key> {
        let st = self.lock();
        st.keys
            .values()
            .find(|key| key.id.to_string() == k || key.fingerprint == k)
            .cloned()
    }

    fn create_key(&self, req: &Request) -> Response {
        let body = req.json().unwrap_or(Value::Null);
        let name = body.get("name").and_then(Value::as_str).unwrap_or("");
        let public_key = body
            .get("public_key")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim();
        if name.is_empty() {
            return unprocessable("Name can't be blank");
        }
        let Some(fp) = fingerprint(public_key)
            .filter(|_| public_key.starts_with("ssh-") || public_key.starts_with("ecdsa-"))
        else {
            return unprocessable("Key invalid, key should be of the format `type key [comment]`");
        };
        let mut st = self.lock();
        if st.keys.values().any(|k| k.fingerprint == fp) {
            return unprocessable("SSH Key is already in use on your account");
        }
        let key = Key {
            id: self.new_id(),
            fingerprint: fp,
            name: name.to_string(),
            public_key: public_key.to_string(),
        };
        st.keys.insert(key.id, key.clone());
        Response::json(201, json!({"ssh_key": key_json(&key)}))
    }

    fn create_droplet(self: &Arc<Self>, req: &Request, base: &str) -> Response {
        let Some(body) = req.json() else {
            return error(400, "bad_request", "Unable to parse request body.");
        };
        if self.cfg.throttle_first_create && !std::mem::replace(&mut self.lock().throttled, true) {
            return error(429, "too_many_requests", "API rate limit exceeded.")
                .with_header("retry-after", "1");
        }
        let name = body.get("name").and_then(Value::as_str).unwrap_or("");
        if !valid_name(name) {
            return unprocessable(&format!("{name} is not a valid hostname"));
        }
        let Some(size) = body.get("size").and_then(Value::as_str) else {
            return unprocessable("You must specify a size.");
        };
        if !SIZES.iter().any(|s| s.0 == size) {
            return unprocessable("You specified an invalid size for Droplet creation.");
        }
        let image = match body.get("image") {
            Some(Value::String(s)) if IMAGES.iter().any(|i| i.1 == s) => s.clone(),
            Some(Value::Number(n)) if IMAGES.iter().any(|i| Some(i.0) == n.as_u64()) => {
                n.to_string()
            }
            Some(_) => {
                return unprocessable("You specified an invalid image for Droplet creation.");
            }
            None => return unprocessable("You must specify an image."),
        };
        let region = body.get("region").and_then(Value::as_str).unwrap_or("nyc3");
        if !REGIONS.iter().any(|r| r.0 == region) {
            return unprocessable("You specified an invalid region for Droplet creation.");
        }
        let flag = |k: &str| body.get(k).and_then(Value::as_bool).unwrap_or(false);
        let user_data = body
            .get("user_data")
            .and_then(Value::as_str)
            .map(String::from);
        if user_data.as_ref().is_some_and(|u| u.len() > 64 * 1024) {
            return unprocessable("user_data is too large (64 KiB at most)");
        }
        let tags: Vec<String> = body
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| {
                t.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let mut st = self.lock();
        let mut public_keys = Vec::new();
        for k in body
            .get("ssh_keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = match k {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match st
                .keys
                .values()
                .find(|key| key.id.to_string() == text || key.fingerprint == text)
            {
                Some(key) => public_keys.push(key.public_key.clone()),
                None => return unprocessable(&format!("ssh_keys: {text} is not a valid key")),
            }
        }
        if st.droplets.len() >= self.cfg.max_droplets {
            return unprocessable(&format!(
                "creating this/these droplet(s) will exceed your droplet limit ({})",
                self.cfg.max_droplets
            ));
        }
        let id = self.new_id();
        let droplet = Droplet {
            id,
            name: name.to_string(),
            status: "new".into(),
            addr: None,
            region: region.to_string(),
            size: size.to_string(),
            image,
            tags,
            user_data,
            ipv6: flag("ipv6"),
            private_networking: flag("private_networking"),
            backups: flag("backups"),
            monitoring: flag("monitoring"),
            created_at: now(),
        };
        st.droplets.insert(id, droplet.clone());
        let create_action = Action {
            id: self.new_id(),
            droplet: id,
            kind: "create".into(),
            status: "in-progress".into(),
        };
        st.actions.insert(create_action.id, create_action.clone());
        let shown = droplet_json(&droplet, &st);
        drop(st);
        let me = self.clone();
        std::thread::spawn(move || {
            let key = public_keys.first().cloned();
            let booted = me.fleet.boot(&id.to_string(), key.as_deref());
            let mut st = me.lock();
            if let Some(a) = st.actions.get_mut(&create_action.id) {
                a.status = if booted.is_ok() {
                    "completed"
                } else {
                    "errored"
                }
                .into();
            }
            match (st.droplets.get_mut(&id), booted) {
                (Some(d), Ok(addr)) => {
                    d.addr = Some(addr);
                    d.status = "active".into();
                }
                (Some(_), Err(e)) => {
                    eprintln!("digitalocean test server: droplet {id} did not boot: {e}")
                }
                (None, _) => {
                    drop(st);
                    me.fleet.delete(&id.to_string());
                }
            }
        });
        Response::json(
            202,
            json!({"droplet": shown, "links": {"actions": [{"id": create_action.id, "rel": "create",
                "href": format!("{base}/actions/{}", create_action.id)}]}}),
        )
    }

    fn droplet_action(self: &Arc<Self>, req: &Request, id: &str, _base: &str) -> Response {
        let Some(id) = id.parse::<u64>().ok() else {
            return not_found();
        };
        let kind = req
            .json()
            .and_then(|b| b.get("type").and_then(Value::as_str).map(String::from))
            .unwrap_or_default();
        type Op = fn(&Fleet, &str) -> std::io::Result<()>;
        let (op, after): (Op, &str) = match kind.as_str() {
            "power_on" => (Fleet::start, "active"),
            "shutdown" | "power_off" => (Fleet::stop, "off"),
            "reboot" | "power_cycle" => (Fleet::reboot, "active"),
            _ => return unprocessable(&format!("{kind:?} is not a valid action type")),
        };
        let mut st = self.lock();
        let Some(d) = st.droplets.get(&id) else {
            return not_found();
        };
        if d.status == "new" {
            return unprocessable("Droplet is currently being created; try again later.");
        }
        let action = Action {
            id: self.new_id(),
            droplet: id,
            kind: kind.clone(),
            status: "in-progress".into(),
        };
        st.actions.insert(action.id, action.clone());
        let shown = action_json(&action);
        drop(st);
        let me = self.clone();
        std::thread::spawn(move || {
            let done = op(&me.fleet, &id.to_string());
            let mut st = me.lock();
            if done.is_ok()
                && let Some(d) = st.droplets.get_mut(&id)
            {
                d.status = after.into();
            }
            if let Some(a) = st.actions.get_mut(&action.id) {
                a.status = if done.is_ok() { "completed" } else { "errored" }.into();
            }
        });
        Response::json(201, json!({"action": shown}))
    }
}

fn key_json(k: &Key) -> Value {
    json!({"id": k.id, "fingerprint": k.fingerprint, "public_key": k.public_key, "name": k.name})
}

fn action_json(a: &Action) -> Value {
    json!({"id": a.id, "status": a.status, "type": a.kind, "started_at": now(),
        "completed_at": if a.status == "completed" { json!(now()) } else { Value::Null },
        "resource_id": a.droplet, "resource_type": "droplet",
        "region": region_json("nyc3", "New York 3"), "region_slug": "nyc3"})
}

fn droplet_json(d: &Droplet, _st: &State) -> Value {
    let size = SIZES.iter().find(|s| s.0 == d.size).unwrap_or(&SIZES[1]);
    let image = IMAGES
        .iter()
        .find(|i| i.1 == d.image || i.0.to_string() == d.image)
        .unwrap_or(&IMAGES[0]);
    let region = REGIONS
        .iter()
        .find(|r| r.0 == d.region)
        .unwrap_or(&REGIONS[1]);
    let mut v4 = Vec::new();
    if let Some(addr) = d.addr {
        v4.push(
            json!({"ip_address": addr.to_string(), "netmask": "255.255.255.248",
            "gateway": Ipv4Addr::from(u32::from(addr) - 1).to_string(), "type": "public"}),
        );
    }
    let mut features = Vec::new();
    for (on, name) in [
        (d.ipv6, "ipv6"),
        (d.private_networking, "private_networking"),
        (d.backups, "backups"),
        (d.monitoring, "monitoring"),
    ] {
        if on {
            features.push(name);
        }
    }
    json!({"id": d.id, "name": d.name, "memory": size.1, "vcpus": size.2, "disk": size.3,
        "locked": false, "status": d.status, "kernel": null, "created_at": d.created_at,
        "features": features, "backup_ids": [], "next_backup_window": null, "snapshot_ids": [],
        "image": image_json(image), "volume_ids": [], "size": size_json(size),
        "size_slug": size.0, "networks": {"v4": v4, "v6": []},
        "region": region_json(region.0, region.1), "tags": d.tags,
        "vpc_uuid": "760e09ef-dc84-11e8-981e-3cfdfeaae000"})
}

/// A list answer with DigitalOcean's pagination (`per_page` default 20, at most 200).
fn paginate(req: &Request, base: &str, key: &str, items: Vec<Value>) -> Response {
    let per_page = req
        .query("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 200);
    let page = req
        .query("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let total = items.len();
    let last = total.div_ceil(per_page).max(1);
    let shown: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let path = req.path.trim_start_matches("/v2");
    let link = |p: usize| format!("{base}{path}?page={p}&per_page={per_page}");
    let mut pages = serde_json::Map::new();
    if page > 1 {
        pages.insert("first".into(), json!(link(1)));
        pages.insert("prev".into(), json!(link(page - 1)));
    }
    if page < last {
        pages.insert("next".into(), json!(link(page + 1)));
        pages.insert("last".into(), json!(link(last)));
    }
    Response::json(
        200,
        json!({key: shown, "links": {"pages": pages}, "meta": {"total": total}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_and_fingerprints() {
        // As `ssh-keygen -l -E md5` prints it.
        assert_eq!(
            fingerprint(crate::clouds::CHECK_PUBLIC_KEY).as_deref(),
            Some("e9:ac:ef:74:5f:9f:fb:6c:9a:9c:33:0a:2a:c3:37:fc")
        );
        assert_eq!(fingerprint("ssh-ed25519 not*base64"), None);
        assert!(valid_name("web-01.example") && !valid_name("-x") && !valid_name("a_b"));
    }
}
