//! dmw's OpenStack driver: Docker Machine's `openstack` driver (same flags, `OS_*`
//! environment variables and defaults) on Keystone v3, Nova, Glance v2 and Neutron.
//!
//! What it does differently from Docker Machine (../shared/reference/clouds.md §1.4):
//! Keystone v3 only (password or application credential; user and project by name with a
//! domain, or by id; no v2 tenant lookup), the catalog endpoint chosen by region and
//! interface, images looked up through Glance v2, Nova's `BUILD` status understood, a new
//! floating IP allocated per machine on its port (never a "free" one shared by parallel
//! creates) and released by `rm`, the key pair made from the machine's own key (the host's
//! `keys` capability: the driver never sees a private key). Every id (key pair, server,
//! floating IP) is stored as soon as the API returns it, so `rm` cleans up after a failed
//! or interrupted create.

dmw_guest::permissions! {
    capability "http";
    capability "keys";
    http_host "{openstack-auth-url}";
    secret "openstack-password";
    secret "openstack-application-credential-secret";
    file "openstack-user-data-file";
    env_var "OS_AUTH_URL";
    env_var "OS_USERNAME";
    env_var "OS_USER_ID";
    env_var "OS_PASSWORD";
    env_var "OS_TENANT_NAME";
    env_var "OS_TENANT_ID";
    env_var "OS_DOMAIN_NAME";
    env_var "OS_DOMAIN_ID";
    env_var "OS_USER_DOMAIN_NAME";
    env_var "OS_USER_DOMAIN_ID";
    env_var "OS_TENANT_DOMAIN_NAME";
    env_var "OS_TENANT_DOMAIN_ID";
    env_var "OS_APPLICATION_CREDENTIAL_ID";
    env_var "OS_APPLICATION_CREDENTIAL_NAME";
    env_var "OS_APPLICATION_CREDENTIAL_SECRET";
    env_var "OS_REGION_NAME";
    env_var "OS_ENDPOINT_TYPE";
    env_var "OS_AVAILABILITY_ZONE";
    env_var "OS_FLAVOR_ID";
    env_var "OS_FLAVOR_NAME";
    env_var "OS_IMAGE_ID";
    env_var "OS_IMAGE_NAME";
    env_var "OS_NETWORK_ID";
    env_var "OS_NETWORK_NAME";
    env_var "OS_KEYPAIR_NAME";
    env_var "OS_PRIVATE_KEY_FILE";
    env_var "OS_USER_DATA_FILE";
    env_var "OS_SECURITY_GROUPS";
    env_var "OS_NOVA_NETWORK";
    env_var "OS_FLOATINGIP_POOL";
    env_var "OS_IP_VERSION";
    env_var "OS_SSH_USER";
    env_var "OS_SSH_PORT";
    env_var "OS_ACTIVE_TIMEOUT";
    env_var "OS_CONFIG_DRIVE";
    env_var "OS_METADATA";
    env_var "OS_CACERT";
    env_var "OS_INSECURE";
    http_cacert "openstack-cacert";
    http_insecure "openstack-insecure";
    http_keystone_catalog "openstack-auth-url" "openstack-region" "openstack-endpoint-type";
}

pub mod api;

use std::time::{Duration, Instant};

use api::{Credentials, Session, encode, server_address};
use dmw_guest::driver::{Driver, MachineState, SshEndpoint, generated_public_key};
use dmw_guest::flags::{Flag, FlagKind, Flags, flag};
use dmw_guest::http::{self, Request};
use dmw_guest::{Error, Result, info, store, warn};
use serde_json::{Value, json};

/// Time between two polls of a server's status.
#[cfg(not(all(test, not(target_arch = "wasm32"))))]
const POLL: Duration = Duration::from_secs(2);
#[cfg(all(test, not(target_arch = "wasm32")))]
const POLL: Duration = Duration::from_millis(0);

/// Store keys of the configuration (everything but the secrets).
const CONFIG_KEYS: &[&str] = &[
    "auth-url",
    "username",
    "user-id",
    "user-domain-id",
    "user-domain-name",
    "tenant-id",
    "tenant-name",
    "tenant-domain-id",
    "tenant-domain-name",
    "application-credential-id",
    "application-credential-name",
    "region",
    "endpoint-type",
    "availability-zone",
    "flavor-id",
    "flavor-name",
    "image-id",
    "image-name",
    "net-id",
    "net-name",
    "keypair-name",
    "private-key-file",
    "sec-groups",
    "floatingip-pool",
    "metadata",
];

/// The OpenStack driver.
pub struct OpenStack;

/// A text flag with its `OS_*` environment variable.
fn text(name: &str, usage: &str, env: &str) -> Flag {
    flag(
        &format!("openstack-{name}"),
        usage,
        FlagKind::Text,
        None,
        env,
    )
}

/// A stored configuration value ("" when absent).
fn cfg(key: &str) -> String {
    store::get(key).unwrap_or_default()
}

/// `text` on one line without control characters, at most `limit` characters.
fn bounded(text: &str, limit: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(limit)
        .collect()
}

/// Standard base64 with padding (Nova's `user_data`).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The machine's name, for messages.
fn machine() -> String {
    store::get("machine").unwrap_or_else(|| "the machine".into())
}

/// Docker Machine's message for a mandatory value.
fn mandatory(what: &str, env: &str, flag: &str) -> Error {
    Error::InvalidInput(format!(
        "{what} must be specified either using the environment variable {env} or the CLI option --{flag}"
    ))
}

fn credentials() -> Credentials {
    let domain_id = cfg("domain-id");
    let domain_name = cfg("domain-name");
    let or = |v: String, d: &str| if v.is_empty() { d.to_string() } else { v };
    Credentials {
        auth_url: cfg("auth-url"),
        username: cfg("username"),
        user_id: cfg("user-id"),
        password: store::get_secret("password").unwrap_or_default(),
        user_domain_id: or(cfg("user-domain-id"), &domain_id),
        user_domain_name: or(cfg("user-domain-name"), &domain_name),
        project_id: cfg("tenant-id"),
        project_name: cfg("tenant-name"),
        project_domain_id: or(cfg("tenant-domain-id"), &domain_id),
        project_domain_name: or(cfg("tenant-domain-name"), &domain_name),
        app_credential_id: cfg("application-credential-id"),
        app_credential_name: cfg("application-credential-name"),
        app_credential_secret: store::get_secret("application-credential-secret")
            .unwrap_or_default(),
        region: cfg("region"),
        interface: match cfg("endpoint-type").as_str() {
            "internalURL" | "internal" => "internal".into(),
            "adminURL" | "admin" => "admin".into(),
            _ => "public".into(),
        },
    }
}

fn session() -> Result<Session> {
    api::authenticate(&credentials()).map_err(|e| e.context(&format!("machine {}", machine())))
}

/// The error for a step of `machine`'s lifecycle, with what to do next.
fn step_error(e: Error, step: &str, next: &str) -> Error {
    let e = e.context(&format!("machine {}: {step}", machine()));
    if next.is_empty() {
        e
    } else {
        let add = |m: String| format!("{m}; {next}");
        match e {
            Error::InvalidInput(m) => Error::InvalidInput(add(m)),
            Error::Unsupported(m) => Error::Unsupported(add(m)),
            Error::Denied(m) => Error::Denied(add(m)),
            Error::Unreachable(m) => Error::Unreachable(add(m)),
            Error::Failed(m) => Error::Failed(add(m)),
        }
    }
}

/// What to tell the user once something exists at the cloud.
fn cleanup_hint() -> String {
    format!("`dmw rm {}` deletes what was made at OpenStack", machine())
}

fn server_url(s: &Session, id: &str) -> String {
    format!("{}/servers/{}", s.compute, encode(id))
}

/// The server's JSON (`GET /servers/{id}`); None when it no longer exists.
fn get_server(s: &Session, id: &str) -> Result<Option<Value>> {
    let what = format!("read server {id}");
    let resp = s.call(Request::get(&server_url(s, id)), &what)?;
    match resp.status {
        404 => Ok(None),
        200..=299 => {
            let body: Value = resp.json().map_err(|e| Error::from(e).context(&what))?;
            Ok(Some(body["server"].clone()))
        }
        _ => Err(http::error_for(&resp, &what)),
    }
}

/// Polls the server until its status is `want` with no task running, reporting progress.
fn wait_for_status(s: &Session, id: &str, want: &str) -> Result<Value> {
    let timeout = Duration::from_secs(store::get_or("active-timeout", 200u64)?);
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let Some(server) = get_server(s, id)? else {
            return Err(Error::Failed(format!(
                "server {id} disappeared while waiting for {want}"
            )));
        };
        let status = server["status"].as_str().unwrap_or("UNKNOWN").to_string();
        let task = server["OS-EXT-STS:task_state"].as_str().unwrap_or("");
        if status == want && task.is_empty() {
            return Ok(server);
        }
        if status == "ERROR" {
            let fault = server["fault"]["message"]
                .as_str()
                .unwrap_or("no fault message");
            return Err(Error::Failed(format!(
                "server {id} went to ERROR: {}",
                bounded(fault, 300)
            )));
        }
        if status != last {
            info(&format!(
                "Waiting for server {id} to be {want} (now {status}{})…",
                if task.is_empty() {
                    String::new()
                } else {
                    format!(", {task}")
                }
            ));
            last = status.clone();
        }
        if started.elapsed() >= timeout {
            return Err(Error::Unreachable(format!(
                "server {id} is still {status} after {} s (--openstack-active-timeout)",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// Resolve names to ids (flavor, image, network, floating IP pool) and store them.
fn resolve_ids(s: &Session) -> Result<()> {
    if cfg("flavor-id").is_empty() {
        let id = s.flavor_id(&cfg("flavor-name"))?;
        store::set("flavor-id", id);
    }
    if cfg("image-id").is_empty() {
        let id = s.image_id(&cfg("image-name"))?;
        store::set("image-id", id);
    }
    if cfg("net-id").is_empty() && !cfg("net-name").is_empty() {
        let id = s.network_id(&cfg("net-name"), "--openstack-net-name")?;
        store::set("net-id", id);
    }
    let pool = cfg("floatingip-pool");
    if !pool.is_empty() && cfg("floatingip-pool-id").is_empty() {
        let id = s.network_id(&pool, "--openstack-floatingip-pool")?;
        store::set("floatingip-pool-id", id);
    }
    Ok(())
}

/// A key pair name for this machine: `dmw-<machine>-<time>` (Nova's allowed characters).
fn keypair_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let clean: String = machine()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    format!("dmw-{clean}-{:x}", nanos & 0xffff_ffff_ffff)
}

/// The body of `POST /servers`.
fn server_body(key_name: &str) -> Result<Value> {
    let mut server = json!({
        "name": machine(),
        "flavorRef": cfg("flavor-id"),
        "imageRef": cfg("image-id"),
        "key_name": key_name,
        "networks": match cfg("net-id").as_str() {
            "" => json!("auto"),
            id => json!([{ "uuid": id }]),
        },
    });
    let groups: Vec<Value> = cfg("sec-groups")
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| json!({ "name": g }))
        .collect();
    if !groups.is_empty() {
        server["security_groups"] = json!(groups);
    }
    let az = cfg("availability-zone");
    if !az.is_empty() {
        server["availability_zone"] = json!(az);
    }
    if store::get_or("config-drive", false)? {
        server["config_drive"] = json!(true);
    }
    if let Some(data) = store::get("user-data") {
        server["user_data"] = json!(data);
    }
    let metadata = cfg("metadata");
    if !metadata.is_empty() {
        let items: Vec<&str> = metadata.split(',').collect();
        let mut map = serde_json::Map::new();
        for pair in items.chunks(2) {
            if let [k, v] = pair {
                map.insert(k.trim().to_string(), json!(v.trim()));
            }
        }
        server["metadata"] = Value::Object(map);
    }
    Ok(json!({ "server": server }))
}

/// Allocates a new floating IP from the pool on the server's port (never reusing a "free"
/// one, which parallel creates would share) and records it at once.
fn allocate_floating_ip(s: &Session, server_id: &str) -> Result<String> {
    let mut url = format!("{}/ports?device_id={}", s.network, encode(server_id));
    let net = cfg("net-id");
    if !net.is_empty() {
        url.push_str(&format!("&network_id={}", encode(&net)));
    }
    let ports = s.get(&url, "find the server's port")?;
    let Some(port) = ports["ports"][0]["id"].as_str() else {
        return Err(Error::Failed(format!(
            "server {server_id} has no port to attach a floating IP to"
        )));
    };
    // Recorded before the call: if its answer is lost, rm finds the floating IP by port.
    store::set("floating-ip-port", port);
    let body = json!({ "floatingip": {
        "floating_network_id": cfg("floatingip-pool-id"), "port_id": port } });
    let fip = s.send_json(
        Request::post(&format!("{}/floatingips", s.network)),
        &body,
        "allocate a floating IP",
    )?;
    let id = fip["floatingip"]["id"].as_str().unwrap_or("").to_string();
    let address = fip["floatingip"]["floating_ip_address"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if id.is_empty() || address.is_empty() {
        return Err(Error::Failed(
            "the floating IP answer has no id or address".into(),
        ));
    }
    store::set("floating-ip-id", &id);
    store::set("floating-ip", &address);
    info(&format!("Allocated floating IP {address} ({id})"));
    Ok(address)
}

/// The server this machine's create made (found by name and by the key pair only it uses)
/// when the create's answer was lost.
fn find_server_by_key(s: &Session, key_name: &str) -> Result<Option<String>> {
    let url = format!("{}/servers/detail?name={}", s.compute, encode(&machine()));
    let body = s.get(&url, "look for the machine's server")?;
    Ok(body["servers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|srv| srv["key_name"].as_str() == Some(key_name))
        .and_then(|srv| srv["id"].as_str().map(str::to_string)))
}

/// The floating IP allocated on `port` when the allocation's answer was lost.
fn find_floating_ip(s: &Session, port: &str) -> Result<Option<String>> {
    let url = format!("{}/floatingips?port_id={}", s.network, encode(port));
    let body = s.get(&url, "look for the machine's floating IP")?;
    Ok(body["floatingips"][0]["id"].as_str().map(str::to_string))
}

/// Sends a server action (`os-start`, `os-stop`, `reboot`) and waits for `want`.
fn action(body: Value, what: &str, want: &str) -> Result<()> {
    let s = session()?;
    let id = store::require("server-id")?;
    let url = format!("{}/action", server_url(&s, &id));
    s.send_json(Request::post(&url), &body, &format!("{what} server {id}"))
        .and_then(|_| wait_for_status(&s, &id, want))
        .map(drop)
        .map_err(|e| step_error(e, what, ""))
}

impl Driver for OpenStack {
    const NAME: &'static str = "openstack";
    const DESCRIPTION: &'static str =
        "OpenStack clouds: Keystone v3, Nova servers, Glance images, Neutron floating IPs";

    fn create_flags() -> Vec<Flag> {
        vec![
            text(
                "auth-url",
                "OpenStack authentication URL (Keystone v3, e.g. https://keystone:5000/v3)",
                "OS_AUTH_URL",
            ),
            text("username", "OpenStack username", "OS_USERNAME"),
            text(
                "user-id",
                "OpenStack user id (instead of the username)",
                "OS_USER_ID",
            ),
            text("password", "OpenStack password (secret)", "OS_PASSWORD"),
            text(
                "tenant-name",
                "OpenStack project (tenant) name",
                "OS_TENANT_NAME",
            ),
            text("tenant-id", "OpenStack project (tenant) id", "OS_TENANT_ID"),
            text(
                "domain-name",
                "OpenStack domain name of the user and the project",
                "OS_DOMAIN_NAME",
            ),
            text(
                "domain-id",
                "OpenStack domain id of the user and the project",
                "OS_DOMAIN_ID",
            ),
            text(
                "user-domain-name",
                "OpenStack user domain name (overrides --openstack-domain-name)",
                "OS_USER_DOMAIN_NAME",
            ),
            text(
                "user-domain-id",
                "OpenStack user domain id (overrides --openstack-domain-id)",
                "OS_USER_DOMAIN_ID",
            ),
            text(
                "tenant-domain-name",
                "OpenStack project domain name (overrides --openstack-domain-name)",
                "OS_TENANT_DOMAIN_NAME",
            ),
            text(
                "tenant-domain-id",
                "OpenStack project domain id (overrides --openstack-domain-id)",
                "OS_TENANT_DOMAIN_ID",
            ),
            text(
                "application-credential-id",
                "OpenStack application credential id (instead of a password)",
                "OS_APPLICATION_CREDENTIAL_ID",
            ),
            text(
                "application-credential-name",
                "OpenStack application credential name (with the user)",
                "OS_APPLICATION_CREDENTIAL_NAME",
            ),
            text(
                "application-credential-secret",
                "OpenStack application credential secret (secret)",
                "OS_APPLICATION_CREDENTIAL_SECRET",
            ),
            text("region", "OpenStack region name", "OS_REGION_NAME"),
            text(
                "endpoint-type",
                "OpenStack endpoint type (publicURL, internalURL or adminURL)",
                "OS_ENDPOINT_TYPE",
            ),
            text(
                "availability-zone",
                "OpenStack availability zone",
                "OS_AVAILABILITY_ZONE",
            ),
            text(
                "flavor-id",
                "OpenStack flavor id to use for the instance",
                "OS_FLAVOR_ID",
            ),
            text(
                "flavor-name",
                "OpenStack flavor name to use for the instance",
                "OS_FLAVOR_NAME",
            ),
            text(
                "image-id",
                "OpenStack image id to use for the instance",
                "OS_IMAGE_ID",
            ),
            text(
                "image-name",
                "OpenStack image name to use for the instance",
                "OS_IMAGE_NAME",
            ),
            text(
                "net-id",
                "OpenStack network id the machine will be connected on",
                "OS_NETWORK_ID",
            ),
            text(
                "net-name",
                "OpenStack network name the machine will be connected on",
                "OS_NETWORK_NAME",
            ),
            text(
                "keypair-name",
                "OpenStack key pair to use (with --openstack-private-key-file)",
                "OS_KEYPAIR_NAME",
            ),
            text(
                "private-key-file",
                "Private key file of --openstack-keypair-name",
                "OS_PRIVATE_KEY_FILE",
            ),
            text(
                "user-data-file",
                "File with the user data (cloud-init) given to the instance",
                "OS_USER_DATA_FILE",
            ),
            text(
                "sec-groups",
                "OpenStack comma-separated security groups for the machine",
                "OS_SECURITY_GROUPS",
            ),
            flag(
                "openstack-nova-network",
                "Use the nova networking services instead of neutron (removed from OpenStack: refused)",
                FlagKind::Boolean,
                None,
                "OS_NOVA_NETWORK",
            ),
            text(
                "floatingip-pool",
                "OpenStack floating IP pool (external network) to get a floating IP from",
                "OS_FLOATINGIP_POOL",
            ),
            flag(
                "openstack-ip-version",
                "OpenStack IP version of the address to use (4 or 6)",
                FlagKind::Integer,
                Some("4"),
                "OS_IP_VERSION",
            ),
            flag(
                "openstack-ssh-user",
                "OpenStack SSH user",
                FlagKind::Text,
                Some("root"),
                "OS_SSH_USER",
            ),
            flag(
                "openstack-ssh-port",
                "OpenStack SSH port",
                FlagKind::Integer,
                Some("22"),
                "OS_SSH_PORT",
            ),
            flag(
                "openstack-active-timeout",
                "OpenStack active timeout (seconds)",
                FlagKind::Integer,
                Some("200"),
                "OS_ACTIVE_TIMEOUT",
            ),
            flag(
                "openstack-config-drive",
                "Enables the OpenStack config drive for the instance",
                FlagKind::Boolean,
                None,
                "OS_CONFIG_DRIVE",
            ),
            text(
                "metadata",
                "OpenStack instance metadata (comma-separated key,value pairs)",
                "OS_METADATA",
            ),
            text(
                "cacert",
                "CA certificate bundle to verify the OpenStack APIs with",
                "OS_CACERT",
            ),
            flag(
                "openstack-insecure",
                "Disable TLS verification of the OpenStack APIs",
                FlagKind::Boolean,
                None,
                "OS_INSECURE",
            ),
        ]
    }

    fn set_config(machine_name: &str, flags: &Flags) -> Result<()> {
        let get = |n: &str| {
            flags
                .text(&format!("openstack-{n}"))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        store::set("machine", machine_name);
        for key in CONFIG_KEYS {
            let v = get(key);
            if v.is_empty() {
                store::delete(key);
            } else {
                store::set(key, v);
            }
        }
        for key in ["domain-id", "domain-name"] {
            store::set(key, get(key));
        }
        if flags.bool("openstack-nova-network")? {
            return Err(Error::InvalidInput(
                "--openstack-nova-network: nova-network was removed from OpenStack (Rocky); this driver uses Neutron".into(),
            ));
        }
        let auth_url = get("auth-url");
        if auth_url.is_empty() {
            return Err(mandatory(
                "OpenStack authentication URL",
                "OS_AUTH_URL",
                "openstack-auth-url",
            ));
        }
        if !(auth_url.starts_with("https://") || auth_url.starts_with("http://")) {
            return Err(Error::InvalidInput(format!(
                "--openstack-auth-url must be an http:// or https:// URL, got {auth_url:?}"
            )));
        }
        let password = get("password");
        let ac_secret = get("application-credential-secret");
        let by_ac = !get("application-credential-id").is_empty()
            || !get("application-credential-name").is_empty();
        if by_ac {
            if ac_secret.is_empty() {
                return Err(mandatory(
                    "OpenStack application credential secret",
                    "OS_APPLICATION_CREDENTIAL_SECRET",
                    "openstack-application-credential-secret",
                ));
            }
            if get("application-credential-id").is_empty()
                && get("username").is_empty()
                && get("user-id").is_empty()
            {
                return Err(mandatory(
                    "OpenStack username",
                    "OS_USERNAME",
                    "openstack-username",
                ));
            }
        } else {
            if get("username").is_empty() && get("user-id").is_empty() {
                return Err(mandatory(
                    "OpenStack username",
                    "OS_USERNAME",
                    "openstack-username",
                ));
            }
            if password.is_empty() {
                return Err(mandatory(
                    "OpenStack password",
                    "OS_PASSWORD",
                    "openstack-password",
                ));
            }
            if get("tenant-name").is_empty() && get("tenant-id").is_empty() {
                return Err(Error::InvalidInput(
                    "OpenStack project name or id must be specified either using the environment variables OS_TENANT_NAME or OS_TENANT_ID, or the CLI options --openstack-tenant-name or --openstack-tenant-id".into(),
                ));
            }
        }
        store::delete("secret:password");
        store::delete("secret:application-credential-secret");
        if !password.is_empty() {
            store::set_secret("password", &password);
        }
        if !ac_secret.is_empty() {
            store::set_secret("application-credential-secret", &ac_secret);
        }
        for (what, id, name) in [
            ("flavor", "flavor-id", "flavor-name"),
            ("image", "image-id", "image-name"),
        ] {
            match (get(id).is_empty(), get(name).is_empty()) {
                (true, true) => {
                    return Err(Error::InvalidInput(format!(
                        "OpenStack {what} name or id must be specified: --openstack-{name} or --openstack-{id}"
                    )));
                }
                (false, false) => {
                    return Err(Error::InvalidInput(format!(
                        "Either --openstack-{id} or --openstack-{name} must be specified, not both"
                    )));
                }
                _ => {}
            }
        }
        if !get("net-id").is_empty() && !get("net-name").is_empty() {
            return Err(Error::InvalidInput(
                "Either --openstack-net-id or --openstack-net-name must be specified, not both"
                    .into(),
            ));
        }
        match get("endpoint-type").as_str() {
            "" | "publicURL" | "internalURL" | "adminURL" | "public" | "internal" | "admin" => {}
            other => {
                return Err(Error::InvalidInput(format!(
                    "--openstack-endpoint-type must be publicURL, internalURL or adminURL, got {other:?}"
                )));
            }
        }
        if get("keypair-name").is_empty() != get("private-key-file").is_empty() {
            return Err(Error::InvalidInput(
                "Both --openstack-keypair-name and --openstack-private-key-file must be specified"
                    .into(),
            ));
        }
        let ip_version = flags.int::<u8>("openstack-ip-version")?.unwrap_or(4);
        if ip_version != 4 && ip_version != 6 {
            return Err(Error::InvalidInput(format!(
                "--openstack-ip-version must be 4 or 6, got {ip_version}"
            )));
        }
        store::set("ip-version", ip_version);
        store::set("ssh-port", flags.port("openstack-ssh-port", 22)?);
        let user = get("ssh-user");
        store::set(
            "ssh-user",
            if user.is_empty() {
                "root".to_string()
            } else {
                user
            },
        );
        let timeout = flags.int::<u64>("openstack-active-timeout")?.unwrap_or(200);
        if timeout == 0 || timeout > 24 * 3600 {
            return Err(Error::InvalidInput(format!(
                "--openstack-active-timeout must be between 1 and 86400 seconds, got {timeout}"
            )));
        }
        store::set("active-timeout", timeout);
        store::set("config-drive", flags.bool("openstack-config-drive")?);
        // The host read the user-data file (`file` declaration) and gave us its contents.
        match flags.text("openstack-user-data-file") {
            Some(data) if !data.is_empty() => store::set("user-data", base64(data.as_bytes())),
            _ => store::delete("user-data"),
        }
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        let s = session()?;
        resolve_ids(&s).map_err(|e| step_error(e, "check the create options", ""))
    }

    fn create() -> Result<()> {
        let s = session()?;
        resolve_ids(&s).map_err(|e| step_error(e, "resolve names", ""))?;
        // The key pair: the user's, or one made from the machine's own public key.
        let key_name = match cfg("keypair-name") {
            name if !name.is_empty() => name,
            _ => {
                let Some(public) = generated_public_key() else {
                    return Err(step_error(
                        Error::Failed("the host lent no public key for the machine".into()),
                        "import the key pair",
                        "",
                    ));
                };
                let name = keypair_name();
                // Recorded before the call: an interrupted import is still deleted by rm.
                store::set("created-keypair", &name);
                let body = json!({ "keypair": { "name": name, "public_key": public.trim() } });
                s.send_json(
                    Request::post(&format!("{}/os-keypairs", s.compute)),
                    &body,
                    &format!("import key pair {name}"),
                )
                .map_err(|e| step_error(e, "import the key pair", &cleanup_hint()))?;
                info(&format!("Imported key pair {name}"));
                name
            }
        };
        let created = s
            .send_json(
                Request::post(&format!("{}/servers", s.compute)),
                &server_body(&key_name)?,
                "create the server",
            )
            .map_err(|e| step_error(e, "create the server", &cleanup_hint()))?;
        let Some(id) = created["server"]["id"].as_str().map(str::to_string) else {
            return Err(step_error(
                Error::Failed("Nova's answer has no server id".into()),
                "create the server",
                &cleanup_hint(),
            ));
        };
        store::set("server-id", &id);
        info(&format!("Created server {id}"));
        let server = wait_for_status(&s, &id, "ACTIVE")
            .map_err(|e| step_error(e, "wait for the server", &cleanup_hint()))?;
        let version = store::get_or("ip-version", 4u64)?;
        let ip = if cfg("floatingip-pool").is_empty() {
            server_address(&server, "fixed", version).ok_or_else(|| {
                step_error(
                    Error::Failed(format!("server {id} has no IPv{version} address")),
                    "read the server's address",
                    &cleanup_hint(),
                )
            })?
        } else {
            allocate_floating_ip(&s, &id)
                .map_err(|e| step_error(e, "allocate a floating IP", &cleanup_hint()))?
        };
        store::set("ip", &ip);
        info(&format!("Server {id} is ACTIVE at {ip}"));
        Ok(())
    }

    fn state() -> Result<MachineState> {
        let id = store::require("server-id")?;
        let s = session()?;
        let Some(server) = get_server(&s, &id)? else {
            return Err(Error::Failed(format!(
                "machine {}: server {id} no longer exists at OpenStack",
                machine()
            )));
        };
        let task = server["OS-EXT-STS:task_state"].as_str().unwrap_or("");
        Ok(match (server["status"].as_str().unwrap_or(""), task) {
            ("ACTIVE", "powering-off") => MachineState::Stopping,
            ("SHUTOFF", "powering-on") => MachineState::Starting,
            ("ACTIVE", _) => MachineState::Running,
            ("BUILD" | "REBOOT" | "HARD_REBOOT", _) => MachineState::Starting,
            ("SHUTOFF", _) => MachineState::Stopped,
            ("PAUSED", _) => MachineState::Paused,
            ("SUSPENDED" | "SHELVED" | "SHELVED_OFFLOADED", _) => MachineState::Saved,
            ("ERROR", _) => MachineState::Error,
            _ => MachineState::None,
        })
    }

    fn address() -> Result<String> {
        store::get("ip").ok_or_else(|| {
            Error::Failed(format!(
                "machine {} has no address yet (its create did not finish)",
                machine()
            ))
        })
    }

    fn ssh_endpoint() -> Result<SshEndpoint> {
        let key = cfg("private-key-file");
        Ok(SshEndpoint {
            // Empty before create: the server's address is known once it is ACTIVE.
            address: store::get("ip").unwrap_or_default(),
            port: store::get_or("ssh-port", 22u16)?,
            user: store::get("ssh-user").unwrap_or_else(|| "root".into()),
            key_path: (!key.is_empty()).then_some(key),
        })
    }

    fn start() -> Result<()> {
        action(json!({ "os-start": null }), "start", "ACTIVE")
    }

    fn stop() -> Result<()> {
        action(json!({ "os-stop": null }), "stop", "SHUTOFF")
    }

    fn restart() -> Result<()> {
        action(json!({ "reboot": { "type": "SOFT" } }), "restart", "ACTIVE")
    }

    fn kill() -> Result<()> {
        action(json!({ "os-stop": null }), "kill", "SHUTOFF")
    }

    fn remove() -> Result<()> {
        let mut server = store::get("server-id");
        let mut fip = store::get("floating-ip-id");
        let keypair = store::get("created-keypair");
        let fip_port = store::get("floating-ip-port");
        if server.is_none() && fip.is_none() && keypair.is_none() && fip_port.is_none() {
            return Ok(());
        }
        let s = session().map_err(|e| step_error(e, "remove", "check the credentials, or use `dmw rm -f` to forget the machine (what it made stays at OpenStack)"))?;
        // A create interrupted before an answer came back: find what it made.
        if server.is_none()
            && let Some(name) = &keypair
        {
            server = find_server_by_key(&s, name).map_err(|e| step_error(e, "remove", ""))?;
        }
        if fip.is_none()
            && let Some(port) = &fip_port
        {
            fip = find_floating_ip(&s, port).map_err(|e| step_error(e, "remove", ""))?;
        }
        let mut removed = Vec::new();
        if let Some(id) = fip {
            let what = format!("release floating IP {id}");
            let gone = s.delete(&format!("{}/floatingips/{}", s.network, encode(&id)), &what);
            match gone.map_err(|e| step_error(e, "remove", ""))? {
                true => removed.push(match cfg("floating-ip").as_str() {
                    "" => format!("floating IP {id}"),
                    address => format!("floating IP {address} ({id})"),
                }),
                false => warn(&format!("Floating IP {id} was already released")),
            }
            store::delete("floating-ip-id");
            store::delete("floating-ip");
        }
        store::delete("floating-ip-port");
        if let Some(id) = server {
            let what = format!("delete server {id}");
            match s
                .delete(&server_url(&s, &id), &what)
                .map_err(|e| step_error(e, "remove", ""))?
            {
                true => {
                    // Wait until it is gone, so its key pair and ports are free.
                    let deadline = Instant::now() + Duration::from_secs(120);
                    while get_server(&s, &id)?.is_some() && Instant::now() < deadline {
                        std::thread::sleep(POLL);
                    }
                    removed.push(format!("server {id}"));
                }
                false => warn(&format!(
                    "Server {id} does not exist any more at OpenStack, proceeding with removing the local reference"
                )),
            }
            store::delete("server-id");
        }
        if let Some(name) = keypair {
            let what = format!("delete key pair {name}");
            let url = format!("{}/os-keypairs/{}", s.compute, encode(&name));
            match s
                .delete(&url, &what)
                .map_err(|e| step_error(e, "remove", ""))?
            {
                true => removed.push(format!("key pair {name}")),
                false => warn(&format!("Key pair {name} was already deleted")),
            }
            store::delete("created-keypair");
        }
        if !removed.is_empty() {
            info(&format!("Removed at OpenStack: {}", removed.join(", ")));
        }
        Ok(())
    }
}

dmw_guest::export_driver!(OpenStack);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
