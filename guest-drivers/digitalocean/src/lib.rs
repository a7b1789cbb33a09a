//! The `digitalocean` driver: droplets through the DigitalOcean v2 API, as Docker Machine's
//! digitalocean driver, plus `--digitalocean-api-url` (private endpoints and tests).
//!
//! It reaches only DigitalOcean's API host, or the host of a `--digitalocean-api-url` the
//! user typed (the `http` capability: a `{flag}` host comes only from a typed value, never
//! from the flag's default, so the default's host is declared as it is), never sees
//! a private key (the `keys` capability lends the machine's public key, uploaded as an
//! account key), and records every id the API returns (key, droplet) in its store at once,
//! so `dmw rm` cleans up after a failed or interrupted create too. The access token is a
//! secret: stored under a `secret:` key (shown `<redacted>`), never logged.
//! The user-data file (`--digitalocean-userdata FILE`) is read by the host (`file`
//! declaration) and passed on as the droplet's `user_data`.

dmw_guest::permissions! {
    capability "keys";
    capability "http";
    http_host "{digitalocean-api-url}";
    http_host "api.digitalocean.com";
    secret "digitalocean-access-token";
    file "digitalocean-userdata";
}

use std::time::Duration;

use dmw_guest::driver::{Driver, MachineState, SshEndpoint, generated_public_key};
use dmw_guest::flags::{Flag, Flags};
use dmw_guest::http::{self, Request, Response};
use dmw_guest::{Error, Result, debug, info, store};
use serde_json::{Value, json};

/// Default API endpoint.
pub const DEFAULT_API_URL: &str = "https://api.digitalocean.com";
/// How often the droplet is polled while it boots.
const POLL: Duration = Duration::from_secs(2);
/// Longest wait for a droplet to become active.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest wait for a power action to complete.
const ACTION_TIMEOUT: Duration = Duration::from_secs(300);

// Store keys.
const TOKEN: &str = "access-token";
const API: &str = "api-url";
const NAME: &str = "name";
const IMAGE: &str = "image";
const REGION: &str = "region";
const SIZE: &str = "size";
const IPV6: &str = "ipv6";
const PRIVATE_NET: &str = "private-networking";
const BACKUPS: &str = "backups";
const MONITORING: &str = "monitoring";
const USERDATA: &str = "userdata";
const TAGS: &str = "tags";
const SSH_USER: &str = "ssh-user";
const SSH_PORT: &str = "ssh-port";
const FINGERPRINT: &str = "ssh-key-fingerprint";
const KEY_PATH: &str = "ssh-key-path";
const KEY_ID: &str = "key-id";
/// The public key being uploaded, recorded before the upload: if its answer is lost, `rm`
/// finds the account key by it.
const UPLOADING_KEY: &str = "uploading-public-key";
const DROPLET_ID: &str = "droplet-id";
/// A tag only this machine's droplet carries, recorded before the droplet is asked for:
/// `rm` finds the droplet by it when the create's answer (and so the id) was lost.
const OWNER_TAG: &str = "owner-tag";
const IP: &str = "ip-address";

/// The digitalocean driver.
pub struct DigitalOcean;

/// The ids of the droplets tagged `tag` (at most 200: one machine has one).
fn droplets_tagged(tag: &str) -> Result<Vec<String>> {
    let what = format!("find the droplet tagged {tag}");
    let resp = api(
        Request::get(&url(&format!("droplets?tag_name={tag}&per_page=200"))?),
        &what,
    )?;
    let body: Value = resp.json()?;
    Ok(body
        .get("droplets")
        .and_then(Value::as_array)
        .map(|ds| ds.iter().filter_map(|d| d.get("id")).map(id_text).collect())
        .unwrap_or_default())
}

/// The ids of the account keys whose public key is `public` (all pages).
fn keys_of(public: &str) -> Result<Vec<String>> {
    let what = "find the machine's SSH key";
    let mut ids = Vec::new();
    for page in 1..=50 {
        let resp = api(
            Request::get(&url(&format!("account/keys?per_page=200&page={page}"))?),
            what,
        )?;
        let body: Value = resp.json()?;
        let keys = body
            .get("ssh_keys")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        ids.extend(
            keys.iter()
                .filter(|k| {
                    k.get("public_key")
                        .and_then(Value::as_str)
                        .is_some_and(|p| p.trim() == public.trim())
                })
                .filter_map(|k| k.get("id"))
                .map(id_text),
        );
        if keys.len() < 200 {
            break;
        }
    }
    Ok(ids)
}

/// A call to the API with the stored token; a non-2xx answer is an error naming `what`.
fn api(req: Request, what: &str) -> Result<Response> {
    let resp = send(req, what)?;
    if resp.is_success() {
        Ok(resp)
    } else {
        Err(http::error_for(&resp, what))
    }
}

/// A call to the API with the stored token, any status.
fn send(req: Request, what: &str) -> Result<Response> {
    let token = store::get_secret(TOKEN).ok_or_else(|| {
        Error::Failed("the machine's configuration has no DigitalOcean access token".into())
    })?;
    let req = req
        .header("Authorization", &format!("Bearer {token}"))
        .header("Accept", "application/json")
        .header("User-Agent", "dmw-digitalocean/0.1");
    http::send(req).map_err(|e| Error::from(e).context(what))
}

/// GET `path`: a 404 is `missing()` (invalid input), any other failure the API's words.
fn get_found(path: &str, what: &str, missing: impl FnOnce() -> String) -> Result<Response> {
    let resp = send(Request::get(&url(path)?), what)?;
    if resp.status == 404 {
        return Err(Error::InvalidInput(missing()));
    }
    if !resp.is_success() {
        return Err(http::error_for(&resp, what));
    }
    Ok(resp)
}

/// `API_URL/v2/path`.
fn url(path: &str) -> Result<String> {
    Ok(format!("{}/v2/{path}", store::require(API)?))
}

/// A field of a JSON answer, or an error saying the answer lacks it.
fn field<'a>(v: &'a Value, pointer: &str, what: &str) -> Result<&'a Value> {
    v.pointer(pointer)
        .ok_or_else(|| Error::Failed(format!("{what}: the API's answer has no {pointer}")))
}

/// An id from an answer as text (numbers as digits, strings unquoted).
fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The droplet's public IPv4 address, if it has one yet.
fn public_v4(droplet: &Value) -> Option<String> {
    droplet
        .pointer("/networks/v4")?
        .as_array()?
        .iter()
        .find(|n| n.get("type").and_then(Value::as_str) == Some("public"))
        .and_then(|n| n.get("ip_address")?.as_str())
        .map(str::to_string)
}

/// The stored droplet id.
fn droplet_id() -> Result<String> {
    store::get(DROPLET_ID).ok_or_else(|| {
        Error::Failed(
            "the machine has no droplet id: its create did not get that far (`dmw rm` removes it)"
                .into(),
        )
    })
}

/// Run a power action on the droplet and wait for it to complete.
fn action(kind: &str) -> Result<()> {
    let id = droplet_id()?;
    let what = format!("{kind} droplet {id}");
    let resp = api(
        Request::post(&url(&format!("droplets/{id}/actions"))?).json(&json!({ "type": kind }))?,
        &what,
    )?;
    let body: Value = resp.json()?;
    let action_id = id_text(field(&body, "/action/id", &what)?);
    let mut waited = Duration::ZERO;
    loop {
        let resp = api(
            Request::get(&url(&format!("droplets/{id}/actions/{action_id}"))?),
            &what,
        )?;
        let body: Value = resp.json()?;
        match field(&body, "/action/status", &what)?.as_str() {
            Some("completed") => return Ok(()),
            Some("errored") => {
                return Err(Error::Failed(format!(
                    "{what}: DigitalOcean reports the action errored"
                )));
            }
            _ if waited >= ACTION_TIMEOUT => {
                return Err(Error::Unreachable(format!(
                    "{what}: the action did not complete in {} s",
                    ACTION_TIMEOUT.as_secs()
                )));
            }
            _ => {
                dmw_guest::host::sleep(POLL);
                waited += POLL;
            }
        }
    }
}

impl Driver for DigitalOcean {
    const NAME: &'static str = "digitalocean";
    const DESCRIPTION: &'static str = "Droplets at DigitalOcean (API v2)";

    fn create_flags() -> Vec<Flag> {
        vec![
            Flag::text("digitalocean-access-token", "Digital Ocean access token")
                .env("DIGITALOCEAN_ACCESS_TOKEN"),
            Flag::text("digitalocean-api-url", "Digital Ocean API endpoint")
                .default_value(DEFAULT_API_URL)
                .env("DIGITALOCEAN_API_URL"),
            Flag::text("digitalocean-ssh-user", "SSH username")
                .default_value("root")
                .env("DIGITALOCEAN_SSH_USER"),
            Flag::text(
                "digitalocean-ssh-key-fingerprint",
                "SSH key fingerprint of an existing account key",
            )
            .env("DIGITALOCEAN_SSH_KEY_FINGERPRINT"),
            Flag::text(
                "digitalocean-ssh-key-path",
                "SSH private key path (with --digitalocean-ssh-key-fingerprint)",
            )
            .env("DIGITALOCEAN_SSH_KEY_PATH"),
            Flag::integer("digitalocean-ssh-port", "SSH port")
                .default_value("22")
                .env("DIGITALOCEAN_SSH_PORT"),
            Flag::text("digitalocean-image", "Digital Ocean image")
                .default_value("ubuntu-16-04-x64")
                .env("DIGITALOCEAN_IMAGE"),
            Flag::text("digitalocean-region", "Digital Ocean region")
                .default_value("nyc3")
                .env("DIGITALOCEAN_REGION"),
            Flag::text("digitalocean-size", "Digital Ocean size")
                .default_value("s-1vcpu-1gb")
                .env("DIGITALOCEAN_SIZE"),
            Flag::boolean("digitalocean-ipv6", "enable ipv6 for droplet").env("DIGITALOCEAN_IPV6"),
            Flag::boolean(
                "digitalocean-private-networking",
                "enable private networking for droplet",
            )
            .env("DIGITALOCEAN_PRIVATE_NETWORKING"),
            Flag::boolean("digitalocean-backups", "enable backups for droplet")
                .env("DIGITALOCEAN_BACKUPS"),
            Flag::text(
                "digitalocean-userdata",
                "path to file with cloud-init user-data",
            )
            .env("DIGITALOCEAN_USERDATA"),
            Flag::boolean("digitalocean-monitoring", "enable monitoring for droplet")
                .env("DIGITALOCEAN_MONITORING"),
            Flag::text(
                "digitalocean-tags",
                "comma-separated list of tags to apply to the Droplet",
            )
            .env("DIGITALOCEAN_TAGS"),
        ]
    }

    fn set_config(machine_name: &str, flags: &Flags) -> Result<()> {
        let token = flags.text("digitalocean-access-token").unwrap_or_default();
        if token.trim().is_empty() {
            return Err(Error::InvalidInput(
                "digitalocean driver requires the --digitalocean-access-token option".into(),
            ));
        }
        let api_url = flags
            .text("digitalocean-api-url")
            .unwrap_or_else(|| DEFAULT_API_URL.into());
        let api_url = api_url.trim().trim_end_matches('/');
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(Error::InvalidInput(format!(
                "--digitalocean-api-url must be an http:// or https:// URL, got {api_url:?}"
            )));
        }
        let fingerprint = flags
            .text("digitalocean-ssh-key-fingerprint")
            .unwrap_or_default();
        let key_path = flags.text("digitalocean-ssh-key-path").unwrap_or_default();
        if !key_path.is_empty() && fingerprint.is_empty() {
            return Err(Error::InvalidInput(
                "--digitalocean-ssh-key-path needs --digitalocean-ssh-key-fingerprint (the account key of that private key)".into(),
            ));
        }
        store::set_secret(TOKEN, token.trim());
        store::set(API, api_url);
        store::set(NAME, machine_name);
        for (key, flag, default) in [
            (IMAGE, "digitalocean-image", "ubuntu-16-04-x64"),
            (REGION, "digitalocean-region", "nyc3"),
            (SIZE, "digitalocean-size", "s-1vcpu-1gb"),
            (SSH_USER, "digitalocean-ssh-user", "root"),
        ] {
            let v = flags.text(flag).unwrap_or_default();
            let v = v.trim();
            store::set(key, if v.is_empty() { default } else { v });
        }
        for (key, flag) in [
            (IPV6, "digitalocean-ipv6"),
            (PRIVATE_NET, "digitalocean-private-networking"),
            (BACKUPS, "digitalocean-backups"),
            (MONITORING, "digitalocean-monitoring"),
        ] {
            store::set(key, flags.bool(flag)?);
        }
        store::set(SSH_PORT, flags.port("digitalocean-ssh-port", 22)?);
        if !fingerprint.is_empty() {
            store::set(FINGERPRINT, fingerprint.trim());
        }
        if !key_path.is_empty() {
            store::set(KEY_PATH, key_path.trim());
        }
        if let Some(userdata) = flags
            .text("digitalocean-userdata")
            .filter(|u| !u.is_empty())
        {
            store::set(USERDATA, userdata);
        }
        let tags: Vec<String> = flags
            .text("digitalocean-tags")
            .unwrap_or_default()
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        store::set(TAGS, tags.join(","));
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        let region = store::require(REGION)?;
        let resp = api(
            Request::get(&url("regions?per_page=200")?),
            "list the DigitalOcean regions",
        )?;
        let body: Value = resp.json()?;
        let known = body
            .get("regions")
            .and_then(Value::as_array)
            .is_some_and(|rs| {
                rs.iter()
                    .any(|r| r.get("slug").and_then(Value::as_str) == Some(region.as_str()))
            });
        if !known {
            return Err(Error::InvalidInput(format!(
                "digitalocean requires a valid region: {region:?} is not one of the account's regions"
            )));
        }
        Ok(())
    }

    fn create() -> Result<()> {
        let name = store::require(NAME)?;
        // The key: an existing account key, or the machine's own public key uploaded.
        let key_ref = match store::get(FINGERPRINT) {
            Some(fp) => {
                get_found(
                    &format!("account/keys/{fp}"),
                    &format!("find the SSH key {fp}"),
                    || format!("Digital Ocean SSH key with fingerprint {fp} doesn't exist"),
                )?;
                json!(fp)
            }
            None => {
                let public = generated_public_key().ok_or_else(|| {
                    Error::Failed("dmw lent no public key for the machine (keys)".into())
                })?;
                info("Creating SSH key...");
                store::set(UPLOADING_KEY, public.trim());
                let resp = api(
                    Request::post(&url("account/keys")?)
                        .json(&json!({ "name": name, "public_key": public.trim() }))?,
                    "upload the machine's SSH key",
                )?;
                let body: Value = resp.json()?;
                let id = field(&body, "/ssh_key/id", "upload the machine's SSH key")?;
                store::set(KEY_ID, id_text(id));
                store::delete(UPLOADING_KEY);
                id.clone()
            }
        };

        info("Creating Digital Ocean droplet...");
        let flag = |k: &str| store::get_or(k, false);
        let tags: Vec<String> = store::get(TAGS)
            .unwrap_or_default()
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        // Recorded before the request: if its answer is lost, `rm` finds the droplet by it.
        let owner = dmw_guest::driver::owner_tag(&name);
        store::set(OWNER_TAG, &owner);
        let tags: Vec<String> = tags.into_iter().chain([owner]).collect();
        let mut body = json!({
            "name": name,
            "region": store::require(REGION)?,
            "size": store::require(SIZE)?,
            "image": store::require(IMAGE)?,
            "ssh_keys": [key_ref],
            "backups": flag(BACKUPS)?,
            "ipv6": flag(IPV6)?,
            "private_networking": flag(PRIVATE_NET)?,
            "monitoring": flag(MONITORING)?,
            "tags": tags,
        });
        if let Some(userdata) = store::get(USERDATA) {
            body["user_data"] = json!(userdata);
        }
        let resp = api(
            Request::post(&url("droplets")?).json(&body)?,
            "create the droplet",
        )?;
        let created: Value = resp.json()?;
        let id = id_text(field(&created, "/droplet/id", "create the droplet")?);
        store::set(DROPLET_ID, &id);

        info(&format!("Waiting for droplet {id} to become active..."));
        let what = format!("wait for droplet {id}");
        let mut waited = Duration::ZERO;
        let mut last = String::new();
        loop {
            let resp = api(Request::get(&url(&format!("droplets/{id}"))?), &what)?;
            let body: Value = resp.json()?;
            let droplet = field(&body, "/droplet", &what)?;
            let status = droplet
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string();
            if status == "active"
                && let Some(ip) = public_v4(droplet)
            {
                store::set(IP, &ip);
                info(&format!("Droplet {id} is active at {ip}"));
                return Ok(());
            }
            if status != last {
                debug(&format!("droplet {id} is {status}"));
                last = status.clone();
            }
            if waited >= ACTIVE_TIMEOUT {
                return Err(Error::Unreachable(format!(
                    "{what}: still {status} with no public IPv4 after {} s; `dmw rm` removes it",
                    ACTIVE_TIMEOUT.as_secs()
                )));
            }
            dmw_guest::host::sleep(POLL);
            waited += POLL;
        }
    }

    fn state() -> Result<MachineState> {
        let id = droplet_id()?;
        let what = format!("get droplet {id}");
        let resp = get_found(&format!("droplets/{id}"), &what, || {
            format!("droplet {id} does not exist at DigitalOcean any more")
        })?;
        let body: Value = resp.json()?;
        Ok(match field(&body, "/droplet/status", &what)?.as_str() {
            Some("new") => MachineState::Starting,
            Some("active") => MachineState::Running,
            Some("off") => MachineState::Stopped,
            _ => MachineState::None,
        })
    }

    fn address() -> Result<String> {
        store::require(IP)
    }

    fn ssh_endpoint() -> Result<SshEndpoint> {
        Ok(SshEndpoint {
            // Empty before create: the droplet's address is known once it is active.
            address: store::get(IP).unwrap_or_default(),
            port: store::get_or(SSH_PORT, 22u16)?,
            user: store::get(SSH_USER).unwrap_or_else(|| "root".into()),
            key_path: store::get(KEY_PATH),
        })
    }

    fn start() -> Result<()> {
        action("power_on")
    }

    fn stop() -> Result<()> {
        action("shutdown")
    }

    fn restart() -> Result<()> {
        action("reboot")
    }

    fn kill() -> Result<()> {
        action("power_off")
    }

    fn remove() -> Result<()> {
        let mut removed = Vec::new();
        // The key first (Docker Machine's order): it is ours only when we uploaded it. An
        // upload whose answer was lost: the account keys carrying the machine's own public
        // key (made by dmw for this machine alone).
        let keys = match (store::get(KEY_ID), store::get(UPLOADING_KEY)) {
            (Some(id), _) => vec![id],
            (None, Some(public)) => keys_of(&public)?,
            (None, None) => Vec::new(),
        };
        for key in keys {
            let what = format!("delete SSH key {key}");
            let resp = send(
                Request::delete(&url(&format!("account/keys/{key}"))?),
                &what,
            )?;
            match resp.status {
                404 => info(&format!("SSH key {key} was already deleted")),
                _ if resp.is_success() => removed.push(format!("SSH key {key}")),
                _ => return Err(http::error_for(&resp, &what)),
            }
        }
        store::delete(KEY_ID);
        store::delete(UPLOADING_KEY);
        let ids = match (store::get(DROPLET_ID), store::get(OWNER_TAG)) {
            (Some(id), _) => vec![id],
            // The create's answer was lost: the droplets carrying this machine's own tag.
            (None, Some(tag)) => droplets_tagged(&tag)?,
            (None, None) => Vec::new(),
        };
        for id in ids {
            let what = format!("delete droplet {id}");
            let resp = send(Request::delete(&url(&format!("droplets/{id}"))?), &what)?;
            match resp.status {
                404 => info(&format!("Droplet {id} was already deleted")),
                _ if resp.is_success() => removed.push(format!("droplet {id}")),
                _ => return Err(http::error_for(&resp, &what)),
            }
        }
        store::delete(DROPLET_ID);
        store::delete(OWNER_TAG);
        if removed.is_empty() {
            info("Nothing to remove at DigitalOcean");
        } else {
            info(&format!("Removed at DigitalOcean: {}", removed.join(", ")));
        }
        Ok(())
    }
}

dmw_guest::export_driver!(DigitalOcean);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use dmw_guest::http::{HttpError, Request as Req};
    use dmw_guest::mock;
    use std::cell::RefCell;
    use std::rc::Rc;

    const TOKEN_VALUE: &str = "dop_v1_secret_token_value";

    /// A scripted DigitalOcean: droplets go new → active on the second poll.
    #[derive(Default)]
    struct Fake {
        keys: Vec<u64>,
        droplets: Vec<(u64, u32)>,
        fail_droplet_create: bool,
        /// The droplet is made but the answer is lost (the connection drops).
        lose_create_answer: bool,
        /// The key is uploaded but the answer is lost.
        lose_key_answer: bool,
        /// The owner tag the driver sent.
        owner_tag: String,
    }

    fn fake() -> Rc<RefCell<Fake>> {
        mock::reset();
        mock::set_machine_public_key("ssh-ed25519 AAAATEST dmw");
        let state = Rc::new(RefCell::new(Fake::default()));
        let s = state.clone();
        mock::on_http(move |r: &Req| -> std::result::Result<Response, HttpError> {
            assert_eq!(
                r.header_value("authorization"),
                Some(format!("Bearer {TOKEN_VALUE}").as_str())
            );
            let path = r.url.strip_prefix("http://do.test/v2/").unwrap_or("?");
            let mut f = s.borrow_mut();
            let method = r.method.as_str();
            Ok(match (method, path) {
                ("GET", p) if p.starts_with("regions") => Response::json_of(
                    200,
                    &json!({"regions": [{"slug": "nyc3"}], "meta": {"total": 1}}),
                ),
                ("POST", "account/keys") if f.lose_key_answer => {
                    f.keys.push(7);
                    return Err(HttpError::Transport {
                        url: r.url.clone(),
                        message: "connection reset".into(),
                    });
                }
                ("GET", p) if p.starts_with("account/keys?") => {
                    let keys: Vec<Value> = f
                        .keys
                        .iter()
                        .map(|k| json!({"id": k, "public_key": "ssh-ed25519 AAAATEST dmw"}))
                        .chain([json!({"id": 99, "public_key": "ssh-ed25519 AAAAOTHER user"})])
                        .collect();
                    Response::json_of(
                        200,
                        &json!({"ssh_keys": keys, "meta": {"total": keys.len()}}),
                    )
                }
                ("POST", "account/keys") => {
                    f.keys.push(7);
                    Response::json_of(201, &json!({"ssh_key": {"id": 7, "fingerprint": "aa"}}))
                }
                ("POST", "droplets") if f.fail_droplet_create => Response::json_of(
                    422,
                    &json!({"id": "unprocessable_entity", "message": "You specified an invalid size."}),
                ),
                ("POST", "droplets") => {
                    let body: Value = serde_json::from_slice(&r.body).expect("json");
                    assert_eq!(body["ssh_keys"], json!([7]));
                    assert_eq!(body["user_data"], json!("#cloud-config\n"));
                    let tags = body["tags"].as_array().expect("tags");
                    assert_eq!(tags[..2], [json!("a"), json!("b")]);
                    let owner = tags[2].as_str().expect("owner tag");
                    assert!(owner.starts_with("dmw:m1:") && owner.len() == 23, "{owner}");
                    f.owner_tag = owner.to_string();
                    f.droplets.push((42, 0));
                    if f.lose_create_answer {
                        return Err(HttpError::Transport {
                            url: r.url.clone(),
                            message: "connection reset".into(),
                        });
                    }
                    Response::json_of(202, &json!({"droplet": {"id": 42, "status": "new"}}))
                }
                ("GET", p) if p.starts_with("droplets?tag_name=") => {
                    let tag = p["droplets?tag_name=".len()..]
                        .split('&')
                        .next()
                        .unwrap_or("");
                    let ids: Vec<Value> = f
                        .droplets
                        .iter()
                        .filter(|_| tag == f.owner_tag)
                        .map(|d| json!({"id": d.0}))
                        .collect();
                    Response::json_of(200, &json!({"droplets": ids, "meta": {"total": ids.len()}}))
                }
                ("GET", "droplets/42") => {
                    let d = f.droplets.iter_mut().find(|d| d.0 == 42);
                    match d {
                        None => Response::json_of(
                            404,
                            &json!({"id": "not_found", "message": "The resource you were accessing could not be found."}),
                        ),
                        Some(d) => {
                            d.1 += 1;
                            let (status, nets) = if d.1 >= 2 {
                                (
                                    "active",
                                    json!({"v4": [{"ip_address": "10.1.2.3", "type": "private"}, {"ip_address": "192.0.2.7", "type": "public"}]}),
                                )
                            } else {
                                ("new", json!({"v4": []}))
                            };
                            Response::json_of(
                                200,
                                &json!({"droplet": {"id": 42, "status": status, "networks": nets}}),
                            )
                        }
                    }
                }
                ("POST", "droplets/42/actions") => {
                    Response::json_of(201, &json!({"action": {"id": 9, "status": "in-progress"}}))
                }
                ("GET", "droplets/42/actions/9") => {
                    Response::json_of(200, &json!({"action": {"id": 9, "status": "completed"}}))
                }
                ("DELETE", "account/keys/7") => {
                    f.keys.retain(|k| *k != 7);
                    Response::new(204, "")
                }
                ("DELETE", "droplets/42") => {
                    f.droplets.retain(|d| d.0 != 42);
                    Response::new(204, "")
                }
                _ => Response::json_of(
                    404,
                    &json!({"id": "not_found", "message": format!("no route {method} {path}")}),
                ),
            })
        });
        state
    }

    fn configure() {
        let flags = Flags::new([
            ("digitalocean-access-token", vec![TOKEN_VALUE.to_string()]),
            ("digitalocean-api-url", vec!["http://do.test/".to_string()]),
            ("digitalocean-userdata", vec!["#cloud-config\n".to_string()]),
            ("digitalocean-tags", vec!["a, b".to_string()]),
        ]);
        DigitalOcean::set_config("m1", &flags).expect("config");
    }

    #[test]
    fn creates_a_droplet_with_the_machines_key_and_removes_both() {
        let state = fake();
        configure();
        DigitalOcean::pre_create_check().expect("check");
        DigitalOcean::create().expect("create");
        assert_eq!(DigitalOcean::address().expect("ip"), "192.0.2.7");
        assert_eq!(mock::store().get(KEY_ID).map(String::as_str), Some("7"));
        assert_eq!(
            mock::store().get(DROPLET_ID).map(String::as_str),
            Some("42")
        );
        assert_eq!(DigitalOcean::state().expect("state"), MachineState::Running);
        DigitalOcean::stop().expect("stop");
        let reqs = mock::http_requests();
        assert!(
            reqs.iter()
                .any(|r| r.body_text() == r#"{"type":"shutdown"}"#)
        );
        DigitalOcean::remove().expect("remove");
        assert!(state.borrow().keys.is_empty() && state.borrow().droplets.is_empty());
        let logs: Vec<String> = mock::logs().into_iter().map(|(_, m)| m).collect();
        assert!(
            logs.iter()
                .any(|l| l == "Removed at DigitalOcean: SSH key 7, droplet 42"),
            "{logs:?}"
        );
        assert!(!logs.iter().any(|l| l.contains(TOKEN_VALUE)), "{logs:?}");
        // The token is kept under a secret key only.
        let store = mock::store();
        let holders: Vec<&String> = store
            .iter()
            .filter(|(_, v)| v.contains(TOKEN_VALUE))
            .map(|(k, _)| k)
            .collect();
        assert_eq!(holders, vec!["secret:access-token"]);
        // A second rm finds nothing left.
        DigitalOcean::remove().expect("again");
        assert!(
            mock::logs()
                .iter()
                .any(|(_, m)| m == "Nothing to remove at DigitalOcean")
        );
    }

    #[test]
    fn a_failed_create_leaves_the_key_recorded_for_rm() {
        let state = fake();
        state.borrow_mut().fail_droplet_create = true;
        configure();
        let err = DigitalOcean::create().expect_err("422");
        assert!(
            matches!(&err, Error::InvalidInput(m) if m == "create the droplet: the API answered 422: You specified an invalid size."),
            "{err:?}"
        );
        assert_eq!(mock::store().get(KEY_ID).map(String::as_str), Some("7"));
        DigitalOcean::remove().expect("remove");
        assert!(state.borrow().keys.is_empty());
    }

    #[test]
    fn a_droplet_whose_create_answer_was_lost_is_found_by_its_tag() {
        let state = fake();
        state.borrow_mut().lose_create_answer = true;
        configure();
        DigitalOcean::create().expect_err("the answer is lost");
        assert_eq!(mock::store().get(DROPLET_ID), None);
        assert_eq!(state.borrow().droplets.len(), 1, "the droplet exists");
        DigitalOcean::remove().expect("remove");
        assert!(state.borrow().droplets.is_empty() && state.borrow().keys.is_empty());
        assert!(
            mock::logs()
                .iter()
                .any(|(_, m)| m == "Removed at DigitalOcean: SSH key 7, droplet 42"),
            "{:?}",
            mock::logs()
        );
        assert_eq!(mock::store().get(OWNER_TAG), None);
    }

    /// The key upload's answer is lost: the create fails, and `rm` deletes the account key
    /// that carries the machine's own public key (and no other).
    #[test]
    fn a_key_whose_upload_answer_was_lost_is_found_by_its_public_key() {
        let state = fake();
        state.borrow_mut().lose_key_answer = true;
        configure();
        DigitalOcean::create().expect_err("the answer is lost");
        assert_eq!(mock::store().get(KEY_ID), None);
        assert_eq!(state.borrow().keys, vec![7], "the key exists");
        DigitalOcean::remove().expect("remove");
        assert!(state.borrow().keys.is_empty());
        assert!(
            !mock::http_requests()
                .iter()
                .any(|r| r.url.ends_with("account/keys/99")),
            "another key is never touched"
        );
        assert_eq!(mock::store().get(UPLOADING_KEY), None);
    }

    #[test]
    fn flags_are_checked() {
        mock::reset();
        let err = DigitalOcean::set_config("m", &Flags::of(&[])).expect_err("no token");
        assert!(
            err.message().contains("--digitalocean-access-token"),
            "{err:?}"
        );
        let bad = Flags::of(&[
            ("digitalocean-access-token", "t0ken"),
            ("digitalocean-api-url", "ftp://x"),
        ]);
        assert!(DigitalOcean::set_config("m", &bad).is_err());
        let path_only = Flags::of(&[
            ("digitalocean-access-token", "t0ken"),
            ("digitalocean-ssh-key-path", "/k"),
        ]);
        assert!(DigitalOcean::set_config("m", &path_only).is_err());
    }

    #[test]
    fn bad_credentials_and_unknown_regions_say_so() {
        mock::reset();
        mock::on_http(|_| {
            Ok(Response::json_of(
                401,
                &json!({"id": "unauthorized", "message": "Unable to authenticate you"}),
            ))
        });
        configure();
        let err = DigitalOcean::pre_create_check().expect_err("401");
        assert!(
            matches!(&err, Error::Denied(m) if m.contains("Unable to authenticate you")),
            "{err:?}"
        );
        let _ = fake();
        let flags = Flags::of(&[
            ("digitalocean-access-token", TOKEN_VALUE),
            ("digitalocean-api-url", "http://do.test"),
            ("digitalocean-region", "mars1"),
        ]);
        DigitalOcean::set_config("m", &flags).expect("config");
        let err = DigitalOcean::pre_create_check().expect_err("region");
        assert!(err.message().contains("valid region"), "{err:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// DigitalOcean answers that lost a field, changed a type, got cut or came with
        /// another status never make the driver panic: pre-create check, create, state,
        /// address and remove each end with an answer or an error.
        #[test]
        fn spoiled_api_answers_never_panic(
            plan in mock::spoil_plans(12),
        ) {
            let _state = fake();
            configure();
            mock::spoil_answers(plan);
            if DigitalOcean::pre_create_check().is_ok() && DigitalOcean::create().is_ok() {
                let _ = DigitalOcean::state();
                let _ = DigitalOcean::address();
            }
            let _ = DigitalOcean::remove();
        }
    }
}
