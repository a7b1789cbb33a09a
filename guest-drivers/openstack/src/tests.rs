//! Native unit tests with scripted API answers (the SDK's scripted host, `mock::on_http`).

use std::cell::RefCell;
use std::rc::Rc;

use dmw_guest::http::{HttpError, Method, Request, Response};
use dmw_guest::{mock, store};
use serde_json::{Value, json};

use super::*;

const AUTH: &str = "http://keystone.test:5000/v3";
const BASE: &str = "http://keystone.test:5000";
const PASSWORD: &str = "pa55-word-never-shown";
const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC/MUJYFxX7GWTf6uaKkfjshLLoe3NPVIJNznmhQEUix dmw";

/// What the scripted cloud does.
#[derive(Default)]
struct Script {
    /// Statuses the server reports on successive GETs (the last one repeats).
    statuses: Vec<&'static str>,
    gets: usize,
    /// Answer for POST /servers (None: 202 with an id).
    create_error: Option<(u16, Value)>,
    /// The server exists (until DELETE).
    server_exists: bool,
    /// Answer for the token request (None: 201 with a catalog).
    auth_error: Option<(u16, Value)>,
    /// Catalog regions offered.
    regions: Vec<&'static str>,
    /// POST /servers succeeds but its answer is lost.
    lose_server_answer: bool,
    /// POST /floatingips succeeds but its answer is lost.
    lose_fip_answer: bool,
    /// The key pair imported, and whether the floating IP exists.
    keypair: Option<String>,
    fip_exists: bool,
}

fn catalog(regions: &[&str]) -> Value {
    let service = |kind: &str, path: &str| {
        let endpoints: Vec<Value> = regions
            .iter()
            .flat_map(|r| {
                ["public", "internal"].iter().map(move |i| {
                    json!({"interface": i, "region_id": r, "region": r,
                        "url": format!("{BASE}/{r}/{i}/{path}")})
                })
            })
            .collect();
        json!({"type": kind, "endpoints": endpoints})
    };
    json!([
        service("compute", "compute/v2.1"),
        service("network", "network"),
        service("image", "image"),
        service("identity", "identity")
    ])
}

fn body(req: &Request) -> Value {
    serde_json::from_slice(&req.body).unwrap_or(Value::Null)
}

/// Installs the scripted cloud; returns its state.
fn cloud(script: Script) -> Rc<RefCell<Script>> {
    let state = Rc::new(RefCell::new(script));
    let s = state.clone();
    mock::on_http(
        move |req: &Request| -> std::result::Result<Response, HttpError> {
            let mut st = s.borrow_mut();
            let url = req.url.clone();
            let path = url.split('?').next().unwrap_or("").to_string();
            let ok = |status: u16, v: Value| Ok(Response::json_of(status, &v));
            if path == format!("{AUTH}/auth/tokens") {
                if let Some((code, v)) = st.auth_error.clone() {
                    return ok(code, v);
                }
                let regions = if st.regions.is_empty() {
                    vec!["RegionOne"]
                } else {
                    st.regions.clone()
                };
                return Ok(Response::json_of(
                    201,
                    &json!({"token": {"catalog": catalog(&regions)}}),
                )
                .with_header("X-Subject-Token", "tok-1"));
            }
            if req.header_value("x-auth-token") != Some("tok-1") {
                return ok(401, json!({"error": {"code": 401, "message": "no token"}}));
            }
            let rel = path
                .strip_prefix(&format!("{BASE}/RegionOne/public"))
                .unwrap_or(&path)
                .to_string();
            match (req.method, rel.as_str()) {
                (Method::Get, "/compute/v2.1/flavors/detail") => ok(
                    200,
                    json!({"flavors": [
                {"id": "1", "name": "m1.tiny"}, {"id": "2", "name": "m1.small"}]}),
                ),
                (Method::Get, "/image/v2/images") => {
                    // Two pages: the image is on the second.
                    if url.contains("marker=") {
                        ok(
                            200,
                            json!({"images": [{"id": "img-2", "name": "debian-12"}]}),
                        )
                    } else {
                        ok(
                            200,
                            json!({"images": [], "next": "/v2/images?marker=x&name=debian-12"}),
                        )
                    }
                }
                (Method::Get, "/network/v2.0/networks") => {
                    let name = url.split("name=").nth(1).unwrap_or("");
                    let id = match name {
                        "private" => "net-1",
                        "public" => "ext-1",
                        _ => "",
                    };
                    if id.is_empty() {
                        ok(200, json!({"networks": []}))
                    } else {
                        ok(200, json!({"networks": [{"id": id, "name": name}]}))
                    }
                }
                (Method::Post, "/compute/v2.1/os-keypairs") => {
                    st.keypair = body(req)["keypair"]["name"].as_str().map(String::from);
                    ok(201, json!({"keypair": body(req)["keypair"]}))
                }
                (Method::Get, "/compute/v2.1/servers/detail") => {
                    let mut list =
                        vec![json!({"id": "other", "name": "m1", "key_name": "someone-elses"})];
                    if st.server_exists && url.contains("name=m1") {
                        list.push(json!({"id": "srv-1", "name": "m1", "key_name": st.keypair}));
                    }
                    ok(200, json!({"servers": list}))
                }
                (Method::Get, "/network/v2.0/floatingips") => {
                    let list = if st.fip_exists && url.contains("port_id=port-1") {
                        vec![json!({"id": "fip-1", "port_id": "port-1"})]
                    } else {
                        vec![]
                    };
                    ok(200, json!({"floatingips": list}))
                }
                (Method::Delete, p) if p.starts_with("/compute/v2.1/os-keypairs/") => {
                    Ok(Response::new(204, ""))
                }
                (Method::Post, "/compute/v2.1/servers") => {
                    if let Some((code, v)) = st.create_error.clone() {
                        return ok(code, v);
                    }
                    st.server_exists = true;
                    if st.lose_server_answer {
                        return Err(HttpError::Transport {
                            url: url.clone(),
                            message: "connection reset".into(),
                        });
                    }
                    ok(202, json!({"server": {"id": "srv-1"}}))
                }
                (Method::Get, "/compute/v2.1/servers/srv-1") => {
                    if !st.server_exists {
                        return ok(
                            404,
                            json!({"itemNotFound": {"code": 404, "message": "Instance srv-1 could not be found."}}),
                        );
                    }
                    let i = st.gets.min(st.statuses.len().saturating_sub(1));
                    st.gets += 1;
                    let status = st.statuses.get(i).copied().unwrap_or("ACTIVE");
                    let mut server = json!({"id": "srv-1", "status": status, "addresses": {"private": [
                    {"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS:type": "fixed"}]}});
                    if status == "ERROR" {
                        server["fault"] = json!({"message": "No valid host was found."});
                    }
                    ok(200, json!({"server": server}))
                }
                (Method::Post, "/compute/v2.1/servers/srv-1/action") => Ok(Response::new(202, "")),
                (Method::Delete, "/compute/v2.1/servers/srv-1") => {
                    let existed = std::mem::replace(&mut st.server_exists, false);
                    if existed {
                        Ok(Response::new(204, ""))
                    } else {
                        ok(
                            404,
                            json!({"itemNotFound": {"code": 404, "message": "Instance srv-1 could not be found."}}),
                        )
                    }
                }
                (Method::Get, "/network/v2.0/ports") => {
                    ok(200, json!({"ports": [{"id": "port-1"}]}))
                }
                (Method::Post, "/network/v2.0/floatingips") if st.lose_fip_answer => {
                    st.fip_exists = true;
                    Err(HttpError::Transport {
                        url: url.clone(),
                        message: "connection reset".into(),
                    })
                }
                (Method::Post, "/network/v2.0/floatingips") => ok(
                    201,
                    json!({"floatingip": {
                "id": "fip-1", "floating_ip_address": "203.0.113.7",
                "port_id": body(req)["floatingip"]["port_id"]}}),
                ),
                (Method::Delete, "/network/v2.0/floatingips/fip-1") => {
                    st.fip_exists = false;
                    Ok(Response::new(204, ""))
                }
                _ => ok(
                    404,
                    json!({"error": {"message": format!("unscripted {} {url}", req.method.as_str())}}),
                ),
            }
        },
    );
    state
}

fn flags(extra: &[(&str, &str)]) -> Flags {
    let mut pairs = vec![
        ("openstack-auth-url", AUTH),
        ("openstack-username", "demo"),
        ("openstack-password", PASSWORD),
        ("openstack-tenant-name", "demo"),
        ("openstack-flavor-name", "m1.small"),
        ("openstack-image-name", "debian-12"),
        ("openstack-net-name", "private"),
        ("openstack-sec-groups", "default, docker"),
        ("openstack-active-timeout", "5"),
    ];
    pairs.extend_from_slice(extra);
    Flags::of(&pairs)
}

fn requests() -> Vec<String> {
    mock::http_requests()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.method.as_str(),
                r.url.replace(&format!("{BASE}/RegionOne/public"), "")
            )
        })
        .collect()
}

fn setup(extra: &[(&str, &str)], script: Script) -> Rc<RefCell<Script>> {
    mock::reset();
    mock::set_machine_public_key(PUBLIC_KEY);
    OpenStack::set_config("m1", &flags(extra)).expect("set-config");
    cloud(script)
}

/// `e` names the machine and the Keystone step, says each of `words`, never the password.
fn keystone_failure_says(e: &Error, words: &[&str]) {
    let m = e.message();
    for w in ["machine m1", "authenticate at Keystone"]
        .iter()
        .chain(words)
    {
        assert!(m.contains(w), "{w:?} not in {m}");
    }
    assert!(!m.contains(PASSWORD), "{m}");
}

#[test]
fn create_imports_the_key_boots_and_records_every_id() {
    setup(
        &[],
        Script {
            statuses: vec!["BUILD", "BUILD", "ACTIVE"],
            ..Script::default()
        },
    );
    OpenStack::create().expect("create");
    let reqs = mock::http_requests();
    // Keystone v3, password, project by name in the default domain; never a v2 tenant list.
    let auth = body(&reqs[0]);
    assert_eq!(auth["auth"]["identity"]["methods"], json!(["password"]));
    assert_eq!(auth["auth"]["identity"]["password"]["user"]["name"], "demo");
    assert_eq!(
        auth["auth"]["scope"]["project"],
        json!({"name": "demo", "domain": {"id": "default"}})
    );
    let keypair = reqs
        .iter()
        .find(|r| r.url.ends_with("/os-keypairs"))
        .expect("keypair import");
    let kp = body(keypair);
    assert_eq!(kp["keypair"]["public_key"], PUBLIC_KEY);
    let name = kp["keypair"]["name"].as_str().expect("name").to_string();
    assert!(name.starts_with("dmw-m1-"), "{name}");
    let create = reqs
        .iter()
        .find(|r| r.url.ends_with("/servers"))
        .expect("server create");
    assert_eq!(
        create.header_value("x-openstack-nova-api-version"),
        Some("2.37")
    );
    let server = body(create)["server"].clone();
    assert_eq!(server["flavorRef"], "2");
    assert_eq!(
        server["imageRef"], "img-2",
        "found through Glance v2 on its second page"
    );
    assert_eq!(server["networks"], json!([{"uuid": "net-1"}]));
    assert_eq!(server["key_name"], name.as_str());
    assert_eq!(
        server["security_groups"],
        json!([{"name": "default"}, {"name": "docker"}])
    );
    assert!(server.get("config_drive").is_none() && server.get("availability_zone").is_none());
    let st = mock::store();
    assert_eq!(st.get("server-id").map(String::as_str), Some("srv-1"));
    assert_eq!(st.get("created-keypair"), Some(&name));
    assert_eq!(st.get("ip").map(String::as_str), Some("10.0.0.5"));
    assert_eq!(
        st.get("secret:password").map(String::as_str),
        Some(PASSWORD)
    );
    assert!(
        requests()
            .iter()
            .all(|r| !r.contains("/v2.0/tenants") && !r.contains("/images/detail"))
    );
    assert_eq!(
        requests()
            .iter()
            .filter(|r| r.starts_with("GET /compute/v2.1/servers/srv-1"))
            .count(),
        3,
        "BUILD is waited for"
    );
    assert!(
        mock::logs()
            .iter()
            .any(|(_, m)| m.contains("Waiting for server srv-1 to be ACTIVE (now BUILD"))
    );
    assert!(mock::logs().iter().all(|(_, m)| !m.contains(PASSWORD)));
    let ssh = OpenStack::ssh_endpoint().expect("ssh");
    assert_eq!(
        (
            ssh.address.as_str(),
            ssh.port,
            ssh.user.as_str(),
            ssh.key_path
        ),
        ("10.0.0.5", 22, "root", None)
    );
}

#[test]
fn floating_ip_is_allocated_on_the_port_and_released_by_rm() {
    setup(
        &[
            ("openstack-floatingip-pool", "public"),
            ("openstack-config-drive", "true"),
            ("openstack-availability-zone", "nova"),
            ("openstack-user-data-file", "#cloud-config\n"),
        ],
        Script::default(),
    );
    OpenStack::create().expect("create");
    let reqs = mock::http_requests();
    let created = reqs
        .iter()
        .find(|r| r.url.ends_with("/servers"))
        .expect("server create");
    assert_eq!(
        body(created)["server"]["user_data"],
        "I2Nsb3VkLWNvbmZpZwo=",
        "the file's contents (read by the host), base64"
    );
    let fip = reqs
        .iter()
        .find(|r| r.url.ends_with("/floatingips"))
        .expect("allocation");
    assert_eq!(
        body(fip)["floatingip"],
        json!({"floating_network_id": "ext-1", "port_id": "port-1"})
    );
    assert!(
        !requests()
            .iter()
            .any(|r| r.starts_with("GET /network/v2.0/floatingips")),
        "never reuses a free floating IP"
    );
    let server = body(
        reqs.iter()
            .find(|r| r.url.ends_with("/servers"))
            .expect("create"),
    )["server"]
        .clone();
    assert_eq!(
        (
            server["config_drive"].clone(),
            server["availability_zone"].clone()
        ),
        (json!(true), json!("nova"))
    );
    assert_eq!(OpenStack::address().expect("ip"), "203.0.113.7");
    assert_eq!(
        mock::store().get("floating-ip-id").map(String::as_str),
        Some("fip-1")
    );
    OpenStack::remove().expect("rm");
    let rm: Vec<String> = requests()
        .into_iter()
        .filter(|r| r.starts_with("DELETE"))
        .collect();
    assert_eq!(rm.len(), 3, "{rm:?}");
    assert!(
        rm[0].ends_with("/floatingips/fip-1")
            && rm[1].ends_with("/servers/srv-1")
            && rm[2].contains("/os-keypairs/dmw-m1-"),
        "{rm:?}"
    );
    let st = mock::store();
    assert!(
        ["server-id", "floating-ip-id", "created-keypair"]
            .iter()
            .all(|k| !st.contains_key(*k)),
        "{st:?}"
    );
    assert!(mock::logs().iter().any(|(_, m)| m.contains(
        "Removed at OpenStack: floating IP 203.0.113.7 (fip-1), server srv-1, key pair dmw-m1-"
    )));
}

#[test]
fn a_server_in_error_names_the_fault_and_rm_cleans_up_after_it() {
    setup(
        &[],
        Script {
            statuses: vec!["BUILD", "ERROR"],
            ..Script::default()
        },
    );
    let e = OpenStack::create().expect_err("ERROR state");
    let m = e.message();
    assert!(
        m.contains("machine m1: wait for the server")
            && m.contains("No valid host was found.")
            && m.contains("dmw rm m1"),
        "{m}"
    );
    assert_eq!(
        mock::store().get("server-id").map(String::as_str),
        Some("srv-1")
    );
    OpenStack::remove().expect("rm after a failed create");
    assert!(
        requests()
            .iter()
            .any(|r| r == "DELETE /compute/v2.1/servers/srv-1")
    );
    assert!(
        requests()
            .iter()
            .any(|r| r.starts_with("DELETE /compute/v2.1/os-keypairs/dmw-m1-"))
    );
    // A second rm has nothing left to do and sends nothing.
    let before = mock::http_requests().len();
    OpenStack::remove().expect("rm again");
    assert_eq!(mock::http_requests().len(), before);
}

#[test]
fn a_refused_server_leaves_only_the_key_pair_which_rm_deletes() {
    setup(
        &[],
        Script {
            create_error: Some((
                403,
                json!({"forbidden": {"code": 403, "message": "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"}}),
            )),
            ..Script::default()
        },
    );
    let e = OpenStack::create().expect_err("quota");
    assert!(matches!(e, Error::Denied(_)), "{e:?}");
    assert!(
        e.message().contains("create the server")
            && e.message().contains("Quota exceeded for instances"),
        "{}",
        e.message()
    );
    assert!(!mock::store().contains_key("server-id"));
    OpenStack::remove().expect("rm");
    assert!(
        requests()
            .iter()
            .any(|r| r.starts_with("DELETE /compute/v2.1/os-keypairs/dmw-m1-"))
    );
    assert!(
        !requests()
            .iter()
            .any(|r| r.contains("DELETE /compute/v2.1/servers"))
    );
}

#[test]
fn a_server_deleted_behind_our_back_is_not_an_error_for_rm() {
    let st = setup(&[], Script::default());
    OpenStack::create().expect("create");
    st.borrow_mut().server_exists = false;
    OpenStack::remove().expect("rm");
    assert!(
        mock::logs()
            .iter()
            .any(|(_, m)| m.contains("Server srv-1 does not exist any more"))
    );
    assert!(!mock::store().contains_key("server-id"));
}

#[test]
fn bad_credentials_give_keystones_words_and_never_the_password() {
    setup(
        &[],
        Script {
            auth_error: Some((
                401,
                json!({"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}),
            )),
            ..Script::default()
        },
    );
    let e = OpenStack::pre_create_check().expect_err("401");
    assert!(matches!(e, Error::Denied(_)), "{e:?}");
    keystone_failure_says(&e, &["401", "requires authentication"]);
}

#[test]
fn application_credentials_need_no_password_or_project() {
    mock::reset();
    OpenStack::set_config(
        "m1",
        &Flags::of(&[
            ("openstack-auth-url", AUTH),
            ("openstack-application-credential-id", "ac-1"),
            ("openstack-application-credential-secret", "ac-secret"),
            ("openstack-flavor-id", "2"),
            ("openstack-image-id", "img-2"),
        ]),
    )
    .expect("set-config");
    cloud(Script::default());
    OpenStack::pre_create_check().expect("check");
    let auth = body(&mock::http_requests()[0]);
    assert_eq!(
        auth,
        json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": "ac-1", "secret": "ac-secret"}}}})
    );
    assert_eq!(
        mock::store()
            .get("secret:application-credential-secret")
            .map(String::as_str),
        Some("ac-secret")
    );
}

#[test]
fn the_catalog_endpoint_is_chosen_by_region_and_interface() {
    let cat = catalog(&["RegionOne", "RegionTwo"]);
    let e = api::endpoint(&cat, "compute", "public", "").expect_err("two regions");
    assert!(
        e.message().contains("RegionOne, RegionTwo") && e.message().contains("--openstack-region"),
        "{}",
        e.message()
    );
    assert_eq!(
        api::endpoint(&cat, "compute", "internal", "RegionTwo").expect("one"),
        format!("{BASE}/RegionTwo/internal/compute/v2.1")
    );
    assert!(api::endpoint(&cat, "volume", "public", "RegionOne").is_err());
    assert_eq!(
        api::tokens_url("https://k:5000/v3/"),
        "https://k:5000/v3/auth/tokens"
    );
    assert_eq!(
        api::tokens_url("https://k:5000"),
        "https://k:5000/v3/auth/tokens"
    );
}

#[test]
fn power_operations_send_nova_actions_and_wait() {
    let st = setup(&[], Script::default());
    OpenStack::create().expect("create");
    st.borrow_mut().statuses = vec!["ACTIVE", "SHUTOFF"];
    st.borrow_mut().gets = 0;
    OpenStack::stop().expect("stop");
    assert_eq!(OpenStack::state().expect("state"), MachineState::Stopped);
    st.borrow_mut().statuses = vec!["ACTIVE"];
    OpenStack::start().expect("start");
    OpenStack::restart().expect("restart");
    let actions: Vec<Value> = mock::http_requests()
        .iter()
        .filter(|r| r.url.ends_with("/action"))
        .map(body)
        .collect();
    assert_eq!(
        actions,
        vec![
            json!({"os-stop": null}),
            json!({"os-start": null}),
            json!({"reboot": {"type": "SOFT"}})
        ]
    );
    st.borrow_mut().statuses = vec!["BUILD"];
    assert_eq!(
        OpenStack::state().expect("state"),
        MachineState::Starting,
        "Nova's BUILD, not BUILDING"
    );
}

#[test]
fn set_config_checks_like_docker_machine() {
    let check = |extra: &[(&str, &str)], drop: &[&str]| {
        mock::reset();
        let base = flags(extra);
        let pairs: Vec<(String, Vec<String>)> = [
            "openstack-auth-url",
            "openstack-username",
            "openstack-password",
            "openstack-tenant-name",
            "openstack-flavor-name",
            "openstack-image-name",
            "openstack-floatingip-pool",
            "openstack-flavor-id",
            "openstack-endpoint-type",
            "openstack-keypair-name",
            "openstack-ip-version",
            "openstack-net-id",
            "openstack-net-name",
        ]
        .iter()
        .filter(|n| !drop.contains(n))
        .filter_map(|n| base.text(n).map(|v| (n.to_string(), vec![v])))
        .collect();
        OpenStack::set_config("m1", &Flags::new(pairs))
            .expect_err("refused")
            .message()
            .to_string()
    };
    assert_eq!(
        check(&[], &["openstack-auth-url"]),
        "OpenStack authentication URL must be specified either using the environment variable OS_AUTH_URL or the CLI option --openstack-auth-url"
    );
    assert!(check(&[], &["openstack-password"]).contains("OS_PASSWORD"));
    assert!(check(&[], &["openstack-tenant-name"]).contains("OS_TENANT_NAME"));
    assert!(check(&[("openstack-flavor-id", "2")], &[]).contains("not both"));
    assert!(check(&[("openstack-net-id", "n")], &[]).contains("not both"));
    assert!(check(&[("openstack-endpoint-type", "public-ish")], &[]).contains("publicURL"));
    assert!(
        check(&[("openstack-keypair-name", "k")], &[])
            .contains("Both --openstack-keypair-name and --openstack-private-key-file")
    );
    assert!(check(&[("openstack-ip-version", "5")], &[]).contains("4 or 6"));
}

#[test]
fn a_users_key_pair_is_used_and_never_deleted() {
    setup(
        &[
            ("openstack-keypair-name", "mine"),
            ("openstack-private-key-file", "/home/u/.ssh/id_ed25519"),
        ],
        Script::default(),
    );
    OpenStack::create().expect("create");
    assert!(!requests().iter().any(|r| r.contains("/os-keypairs")));
    assert_eq!(
        body(
            mock::http_requests()
                .iter()
                .find(|r| r.url.ends_with("/servers"))
                .expect("create")
        )["server"]["key_name"],
        "mine"
    );
    assert_eq!(
        OpenStack::ssh_endpoint().expect("ssh").key_path.as_deref(),
        Some("/home/u/.ssh/id_ed25519")
    );
    OpenStack::remove().expect("rm");
    assert!(!requests().iter().any(|r| r.contains("/os-keypairs")));
    let _ = store::get("ip");
}

#[test]
fn base64_is_standard() {
    for (plain, coded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
    ] {
        assert_eq!(base64(plain.as_bytes()), coded);
    }
}

#[test]
fn ssh_endpoint_has_no_address_before_create() {
    setup(&[], Script::default());
    let ep = OpenStack::ssh_endpoint().expect("endpoint before create");
    assert_eq!((ep.address.as_str(), ep.port), ("", 22));
    assert!(OpenStack::address().is_err());
}

#[test]
fn rm_finds_the_server_when_the_creates_answer_was_lost() {
    let st = setup(
        &[],
        Script {
            lose_server_answer: true,
            ..Script::default()
        },
    );
    let e = OpenStack::create().expect_err("lost answer");
    assert!(
        e.message().contains("create the server") && e.message().contains("connection reset"),
        "{}",
        e.message()
    );
    assert!(!mock::store().contains_key("server-id"));
    OpenStack::remove().expect("rm");
    assert!(
        requests()
            .iter()
            .any(|r| r == "DELETE /compute/v2.1/servers/srv-1"),
        "{:?}",
        requests()
    );
    assert!(
        !requests().iter().any(|r| r.contains("/servers/other")),
        "another machine's server is left alone"
    );
    assert!(!st.borrow().server_exists);
    assert!(
        requests()
            .iter()
            .any(|r| r.starts_with("DELETE /compute/v2.1/os-keypairs/dmw-m1-"))
    );
}

#[test]
fn rm_finds_the_floating_ip_when_the_allocations_answer_was_lost() {
    let st = setup(
        &[("openstack-floatingip-pool", "public")],
        Script {
            lose_fip_answer: true,
            ..Script::default()
        },
    );
    let e = OpenStack::create().expect_err("lost answer");
    assert!(
        e.message().contains("allocate a floating IP"),
        "{}",
        e.message()
    );
    assert!(st.borrow().fip_exists);
    OpenStack::remove().expect("rm");
    let rm: Vec<String> = requests()
        .into_iter()
        .filter(|r| r.starts_with("DELETE"))
        .collect();
    assert!(
        rm[0].ends_with("/floatingips/fip-1"),
        "released before the server: {rm:?}"
    );
    assert!(!st.borrow().fip_exists && !st.borrow().server_exists);
    assert!(
        mock::store().keys().all(|k| !k.starts_with("floating-ip")),
        "{:?}",
        mock::store()
    );
}

#[test]
fn an_api_that_times_out_names_the_machine_the_step_and_the_url() {
    setup(&[], Script::default());
    mock::on_http(|req: &Request| {
        Err(HttpError::Transport {
            url: dmw_guest::http::shown_url(&req.url),
            message: "timed out after 60 s waiting for the answer".into(),
        })
    });
    let e = OpenStack::pre_create_check().expect_err("timeout");
    assert!(matches!(e, Error::Unreachable(_)), "{e:?}");
    keystone_failure_says(
        &e,
        &["http://keystone.test:5000/v3/auth/tokens", "timed out"],
    );
    // Every request carries the driver's own time limit.
    assert_eq!(
        mock::http_requests()[0].timeout,
        Some(std::time::Duration::from_secs(60))
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Nova, Neutron and Keystone answers that lost a field, changed a type, got cut or
    /// came with another status never make the driver panic: create, state, address and
    /// remove each end with an answer or an error.
    #[test]
    fn spoiled_cloud_answers_never_panic(
        plan in mock::spoil_plans(24),
        floating_ip in proptest::prelude::any::<bool>(),
    ) {
        let extra: &[(&str, &str)] = if floating_ip {
            &[("openstack-floatingip-pool", "public")]
        } else {
            &[]
        };
        setup(
            extra,
            Script {
                statuses: vec!["BUILD", "ACTIVE"],
                ..Script::default()
            },
        );
        mock::spoil_answers(plan);
        if OpenStack::create().is_ok() {
            let _ = OpenStack::state();
            let _ = OpenStack::address();
        }
        let _ = OpenStack::remove();
    }
}
