//! The OpenStack APIs the driver calls: Keystone v3 authentication (password or
//! application credential) and the service catalog, then Nova, Glance v2 and Neutron
//! requests with the token. Every call goes through `dmw_guest::http` (the host checks the
//! URL against the driver's `http-host` list).

use std::time::Duration;

use dmw_guest::http::{self, Request, Response};
use dmw_guest::{Error, Result};
use serde_json::{Value, json};

/// Nova microversion the driver speaks: 2.37 makes `networks` explicit ("auto" when no
/// network is named) and keeps every field the driver reads.
pub const NOVA_MICROVERSION: &str = "2.37";

/// Time limit of one API request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Who authenticates, and in which project.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Keystone URL (`https://keystone.example.com:5000/v3`).
    pub auth_url: String,
    /// User name (with a domain) or id.
    pub username: String,
    /// User id (instead of a name).
    pub user_id: String,
    /// Password (password method).
    pub password: String,
    /// The user's domain: id or name (empty: `default`).
    pub user_domain_id: String,
    /// The user's domain by name.
    pub user_domain_name: String,
    /// Project by id.
    pub project_id: String,
    /// Project by name (with a domain).
    pub project_name: String,
    /// The project's domain by id (empty: `default`).
    pub project_domain_id: String,
    /// The project's domain by name.
    pub project_domain_name: String,
    /// Application credential id (application-credential method).
    pub app_credential_id: String,
    /// Application credential name (needs the user).
    pub app_credential_name: String,
    /// Application credential secret.
    pub app_credential_secret: String,
    /// Region of the endpoints (empty: any, if only one).
    pub region: String,
    /// Endpoint interface: public, internal or admin.
    pub interface: String,
}

/// `{"id"}` or `{"name"}` of a domain (`default` when neither is given).
fn domain(id: &str, name: &str) -> Value {
    if !id.is_empty() {
        json!({ "id": id })
    } else if !name.is_empty() {
        json!({ "name": name })
    } else {
        json!({ "id": "default" })
    }
}

impl Credentials {
    /// Whether an application credential is used instead of a password.
    pub fn uses_app_credential(&self) -> bool {
        !self.app_credential_id.is_empty() || !self.app_credential_name.is_empty()
    }

    fn user(&self) -> Value {
        if !self.user_id.is_empty() {
            json!({ "id": self.user_id })
        } else {
            json!({ "name": self.username,
                "domain": domain(&self.user_domain_id, &self.user_domain_name) })
        }
    }

    /// The body of `POST /v3/auth/tokens` (it holds the password: never log it).
    pub fn token_request(&self) -> Value {
        if self.uses_app_credential() {
            let mut ac = json!({ "secret": self.app_credential_secret });
            if !self.app_credential_id.is_empty() {
                ac["id"] = json!(self.app_credential_id);
            } else {
                ac["name"] = json!(self.app_credential_name);
                ac["user"] = self.user();
            }
            // An application credential is already scoped to its project.
            return json!({ "auth": { "identity": {
                "methods": ["application_credential"], "application_credential": ac } } });
        }
        let mut user = self.user();
        user["password"] = json!(self.password);
        let project = if !self.project_id.is_empty() {
            json!({ "id": self.project_id })
        } else {
            json!({ "name": self.project_name,
                "domain": domain(&self.project_domain_id, &self.project_domain_name) })
        };
        json!({ "auth": {
            "identity": { "methods": ["password"], "password": { "user": user } },
            "scope": { "project": project } } })
    }
}

/// An authenticated session: the token and the endpoints of the services the driver uses.
#[derive(Clone, Debug)]
pub struct Session {
    token: String,
    /// Nova's endpoint (versioned, e.g. `…/v2.1` or `…/v2.1/<project>`).
    pub compute: String,
    /// Neutron's endpoint with `/v2.0`.
    pub network: String,
    /// Glance's endpoint with `/v2`.
    pub image: String,
}

/// The tokens endpoint of an auth URL (`…/v3` gets `/auth/tokens`; an unversioned URL `/v3/auth/tokens`).
pub fn tokens_url(auth_url: &str) -> String {
    let base = auth_url.trim_end_matches('/');
    if base.ends_with("/v3") {
        format!("{base}/auth/tokens")
    } else {
        format!("{base}/v3/auth/tokens")
    }
}

/// The URL of the one endpoint of `kind` with `interface` (and `region` when given).
pub fn endpoint(catalog: &Value, kind: &str, interface: &str, region: &str) -> Result<String> {
    let mut found = Vec::new();
    for service in catalog.as_array().into_iter().flatten() {
        if service["type"].as_str() != Some(kind) {
            continue;
        }
        for ep in service["endpoints"].as_array().into_iter().flatten() {
            let ep_region = ep["region_id"]
                .as_str()
                .or_else(|| ep["region"].as_str())
                .unwrap_or("");
            if ep["interface"].as_str() == Some(interface)
                && (region.is_empty() || ep_region == region)
                && let Some(url) = ep["url"].as_str()
            {
                found.push((url.trim_end_matches('/').to_string(), ep_region.to_string()));
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0).0),
        0 => Err(Error::InvalidInput(format!(
            "the service catalog has no {interface} {kind} endpoint{}: check --openstack-region and --openstack-endpoint-type",
            if region.is_empty() {
                String::new()
            } else {
                format!(" in region {region}")
            }
        ))),
        _ => {
            let mut regions: Vec<String> = found.into_iter().map(|(_, r)| r).collect();
            regions.dedup();
            Err(Error::InvalidInput(format!(
                "the service catalog has several {interface} {kind} endpoints (regions {}): choose one with --openstack-region",
                regions.join(", ")
            )))
        }
    }
}

/// Send `req`; a transport failure becomes the driver's error, prefixed with `what`.
fn send(req: Request, what: &str) -> Result<Response> {
    http::send(req.timeout(REQUEST_TIMEOUT)).map_err(|e| Error::from(e).context(what))
}

/// Authenticate at Keystone v3 and pick the compute, network and image endpoints.
pub fn authenticate(c: &Credentials) -> Result<Session> {
    let what = "authenticate at Keystone";
    let req = Request::post(&tokens_url(&c.auth_url))
        .header("Accept", "application/json")
        .json(&c.token_request())
        .map_err(|e| Error::from(e).context(what))?;
    let resp = send(req, what)?;
    if resp.status != 201 && resp.status != 200 {
        return Err(http::error_for(&resp, what));
    }
    let Some(token) = resp.header("x-subject-token").map(str::to_string) else {
        return Err(Error::Failed(format!(
            "{what}: the answer ({}) has no X-Subject-Token header",
            resp.status
        )));
    };
    let body: Value = resp.json().map_err(|e| Error::from(e).context(what))?;
    let catalog = &body["token"]["catalog"];
    if !catalog.is_array() {
        return Err(Error::Failed(format!(
            "{what}: the token has no service catalog (is the project scope right? give --openstack-tenant-name or --openstack-tenant-id)"
        )));
    }
    let interface = if c.interface.is_empty() {
        "public"
    } else {
        c.interface.as_str()
    };
    let compute = endpoint(catalog, "compute", interface, &c.region)?;
    let network = endpoint(catalog, "network", interface, &c.region)?;
    let image = endpoint(catalog, "image", interface, &c.region)?;
    let versioned = |url: String, v: &str| {
        if url.ends_with(v) {
            url
        } else {
            format!("{url}{v}")
        }
    };
    Ok(Session {
        token,
        compute,
        network: versioned(network, "/v2.0"),
        image: versioned(image, "/v2"),
    })
}

/// Percent-encode a query value or path segment.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Session {
    /// A request to `url` with the token (and Nova's microversion for compute URLs).
    fn request(&self, req: Request) -> Request {
        let nova = req.url.starts_with(&self.compute);
        let req = req
            .header("X-Auth-Token", &self.token)
            .header("Accept", "application/json");
        if nova {
            req.header("X-OpenStack-Nova-API-Version", NOVA_MICROVERSION)
                .header(
                    "OpenStack-API-Version",
                    &format!("compute {NOVA_MICROVERSION}"),
                )
        } else {
            req
        }
    }

    /// Send a request with the token; `what` names the step in errors.
    pub fn call(&self, req: Request, what: &str) -> Result<Response> {
        send(self.request(req), what)
    }

    /// GET `url` and parse the JSON answer; a non-2xx answer is an error naming `what`.
    pub fn get(&self, url: &str, what: &str) -> Result<Value> {
        let resp = self.call(Request::get(url), what)?;
        if !resp.is_success() {
            return Err(http::error_for(&resp, what));
        }
        resp.json().map_err(|e| Error::from(e).context(what))
    }

    /// Send `body` as JSON with `method` to `url`; a non-2xx answer is an error naming `what`.
    pub fn send_json(&self, req: Request, body: &Value, what: &str) -> Result<Value> {
        let req = req.json(body).map_err(|e| Error::from(e).context(what))?;
        let resp = self.call(req, what)?;
        if !resp.is_success() {
            return Err(http::error_for(&resp, what));
        }
        if resp.body.is_empty() {
            return Ok(Value::Null);
        }
        resp.json().map_err(|e| Error::from(e).context(what))
    }

    /// DELETE `url`: Ok(true) when deleted, Ok(false) when it was already gone (404).
    pub fn delete(&self, url: &str, what: &str) -> Result<bool> {
        let resp = self.call(Request::delete(url), what)?;
        match resp.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(http::error_for(&resp, what)),
        }
    }

    /// The id of the flavor called `name` (Nova `GET /flavors/detail`).
    pub fn flavor_id(&self, name: &str) -> Result<String> {
        let what = format!("look up flavor {name:?}");
        let body = self.get(&format!("{}/flavors/detail", self.compute), &what)?;
        unique_id(&body["flavors"], name, "flavor", "--openstack-flavor-name")
    }

    /// The id of the image called `name` (Glance v2 `GET /v2/images?name=`, following `next`).
    pub fn image_id(&self, name: &str) -> Result<String> {
        let what = format!("look up image {name:?}");
        let mut url = format!("{}/images?name={}", self.image, encode(name));
        let mut images = Vec::new();
        for _ in 0..50 {
            let body = self.get(&url, &what)?;
            images.extend(body["images"].as_array().cloned().unwrap_or_default());
            match body["next"].as_str() {
                // `next` is relative to the unversioned Glance root (`/v2/images?marker=…`).
                Some(next) => {
                    let root = self.image.trim_end_matches("/v2");
                    url = format!("{root}{next}");
                }
                None => break,
            }
        }
        unique_id(
            &Value::Array(images),
            name,
            "image",
            "--openstack-image-name",
        )
    }

    /// The id of the network called `name` (Neutron `GET /v2.0/networks?name=`).
    pub fn network_id(&self, name: &str, flag: &str) -> Result<String> {
        let what = format!("look up network {name:?}");
        let body = self.get(
            &format!("{}/networks?name={}", self.network, encode(name)),
            &what,
        )?;
        unique_id(&body["networks"], name, "network", flag)
    }
}

/// The id of the one item of `items` whose `name` is `name`.
pub fn unique_id(items: &Value, name: &str, kind: &str, flag: &str) -> Result<String> {
    let ids: Vec<&str> = items
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["name"].as_str() == Some(name))
        .filter_map(|i| i["id"].as_str())
        .collect();
    match ids.as_slice() {
        [id] => Ok(id.to_string()),
        [] => Err(Error::InvalidInput(format!(
            "no {kind} called {name:?} at this OpenStack: check {flag} (or give the id)"
        ))),
        _ => Err(Error::InvalidInput(format!(
            "{} {kind}s are called {name:?} at this OpenStack: give the id instead of {flag}",
            ids.len()
        ))),
    }
}

/// The address of the server's `kind` ("fixed" or "floating") with IP `version`, if any.
pub fn server_address(server: &Value, kind: &str, version: u64) -> Option<String> {
    let addresses = server["addresses"].as_object()?;
    addresses
        .values()
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .find_map(|a| {
            let t = a["OS-EXT-IPS:type"].as_str().unwrap_or("fixed");
            let v = a["version"].as_u64().unwrap_or(4);
            (t == kind && v == version)
                .then(|| a["addr"].as_str().map(str::to_string))
                .flatten()
        })
}
