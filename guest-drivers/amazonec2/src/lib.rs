//! The `amazonec2` driver: instances at Amazon EC2 (or any EC2-compatible endpoint,
//! `--amazonec2-endpoint`) through the EC2 Query API (`Version=2016-11-15`, form POSTs
//! signed with SigV4, XML answers), as Docker Machine's amazonec2 driver.
//!
//! It reaches only the regional EC2 endpoint or the host of `--amazonec2-endpoint` (the
//! `http` capability), never sees a private key (the `keys` capability lends the machine's
//! public key, imported as an EC2 key pair), and records every id the API returns (key pair,
//! security group it created, spot request, instance) in its store at once, so `dmw rm`
//! cleans up after a failed or interrupted create too. Unlike Docker Machine, `rm` also
//! deletes the security group when this machine created it (docker/machine#4359). The
//! secret key and session token are secrets: stored under `secret:` keys, never logged.
//! The user-data file (`--amazonec2-userdata FILE`) is read by the host (`file`).

dmw_guest::permissions! {
    capability "keys";
    capability "http";
    http_host "{amazonec2-endpoint}";
    http_host "ec2.us-east-1.amazonaws.com";
    http_host "ec2.us-east-2.amazonaws.com";
    http_host "ec2.us-west-1.amazonaws.com";
    http_host "ec2.us-west-2.amazonaws.com";
    http_host "ec2.af-south-1.amazonaws.com";
    http_host "ec2.ap-east-1.amazonaws.com";
    http_host "ec2.ap-south-1.amazonaws.com";
    http_host "ec2.ap-south-2.amazonaws.com";
    http_host "ec2.ap-southeast-1.amazonaws.com";
    http_host "ec2.ap-southeast-2.amazonaws.com";
    http_host "ec2.ap-southeast-3.amazonaws.com";
    http_host "ec2.ap-southeast-4.amazonaws.com";
    http_host "ec2.ap-southeast-5.amazonaws.com";
    http_host "ec2.ap-southeast-7.amazonaws.com";
    http_host "ec2.ap-northeast-1.amazonaws.com";
    http_host "ec2.ap-northeast-2.amazonaws.com";
    http_host "ec2.ap-northeast-3.amazonaws.com";
    http_host "ec2.ca-central-1.amazonaws.com";
    http_host "ec2.ca-west-1.amazonaws.com";
    http_host "ec2.eu-central-1.amazonaws.com";
    http_host "ec2.eu-central-2.amazonaws.com";
    http_host "ec2.eu-west-1.amazonaws.com";
    http_host "ec2.eu-west-2.amazonaws.com";
    http_host "ec2.eu-west-3.amazonaws.com";
    http_host "ec2.eu-south-1.amazonaws.com";
    http_host "ec2.eu-south-2.amazonaws.com";
    http_host "ec2.eu-north-1.amazonaws.com";
    http_host "ec2.il-central-1.amazonaws.com";
    http_host "ec2.me-south-1.amazonaws.com";
    http_host "ec2.me-central-1.amazonaws.com";
    http_host "ec2.mx-central-1.amazonaws.com";
    http_host "ec2.sa-east-1.amazonaws.com";
    secret "amazonec2-secret-key";
    secret "amazonec2-session-token";
    file "amazonec2-userdata";
    env_var "AWS_ACCESS_KEY_ID";
    env_var "AWS_SECRET_ACCESS_KEY";
    env_var "AWS_SESSION_TOKEN";
    env_var "AWS_DEFAULT_REGION";
    env_var "AWS_AMI";
    env_var "AWS_VPC_ID";
    env_var "AWS_ZONE";
    env_var "AWS_SUBNET_ID";
    env_var "AWS_SECURITY_GROUP";
    env_var "AWS_SECURITY_GROUP_READONLY";
    env_var "AWS_TAGS";
    env_var "AWS_INSTANCE_TYPE";
    env_var "AWS_DEVICE_NAME";
    env_var "AWS_ROOT_SIZE";
    env_var "AWS_VOLUME_TYPE";
    env_var "AWS_INSTANCE_PROFILE";
    env_var "AWS_SSH_PORT";
    env_var "AWS_SSH_USER";
    env_var "AWS_SSH_KEYPATH";
    env_var "AWS_KEYPAIR_NAME";
    env_var "AWS_ENDPOINT";
    env_var "AWS_USERDATA";
}

use std::time::{Duration, SystemTime};

use base64::Engine;
use dmw_guest::driver::{Driver, MachineState, SshEndpoint, generated_public_key};
use dmw_guest::flags::{Flag, Flags};
use dmw_guest::http::{self, Request, Response};
use dmw_guest::sigv4::{self, Credentials};
use dmw_guest::{Error, Result, debug, info, store, warn};

/// The EC2 API version spoken.
pub const API_VERSION: &str = "2016-11-15";
/// Docker Machine's default security group.
pub const DEFAULT_GROUP: &str = "docker-machine";
/// The Docker engine's TLS port, opened in the groups this driver manages.
const DOCKER_PORT: u16 = 2376;
/// How often the instance is polled.
const POLL: Duration = Duration::from_secs(3);
/// Longest wait for the instance to run with an address (Docker Machine: 60 × 3 s).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest wait for a terminated instance before its security group is deleted.
const TERMINATE_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest wait for a spot request to be fulfilled.
const SPOT_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest answer body parsed as XML.
const MAX_XML: usize = 4 << 20;

// Store keys.
const ACCESS_KEY: &str = "access-key";
const SECRET_KEY: &str = "secret-key";
const SESSION_TOKEN: &str = "session-token";
const ENDPOINT: &str = "endpoint";
const REGION: &str = "region";
const ZONE: &str = "zone";
const NAME: &str = "name";
const AMI: &str = "ami";
const INSTANCE_TYPE: &str = "instance-type";
const VPC_ID: &str = "vpc-id";
const SUBNET_ID: &str = "subnet-id";
const GROUPS: &str = "security-groups";
const GROUP_READONLY: &str = "security-group-readonly";
const OPEN_PORTS: &str = "open-ports";
const TAGS: &str = "tags";
const DEVICE_NAME: &str = "device-name";
const ROOT_SIZE: &str = "root-size";
const VOLUME_TYPE: &str = "volume-type";
const IAM_PROFILE: &str = "iam-instance-profile";
const SPOT: &str = "request-spot-instance";
const SPOT_PRICE: &str = "spot-price";
const PRIVATE_ONLY: &str = "private-address-only";
const USE_PRIVATE: &str = "use-private-address";
const MONITORING: &str = "monitoring";
const EBS_OPTIMIZED: &str = "ebs-optimized";
const USERDATA: &str = "userdata";
const SSH_USER: &str = "ssh-user";
const SSH_PORT: &str = "ssh-port";
const KEY_PATH: &str = "ssh-keypath";
const KEYPAIR_NAME: &str = "keypair-name";
// What this machine made, recorded as soon as the API returns it.
const IMPORTED_KEY: &str = "imported-key-name";
const CREATED_GROUPS: &str = "created-group-ids";
const GROUP_IDS: &str = "group-ids";
const SPOT_REQUEST: &str = "spot-request-id";
const INSTANCE_ID: &str = "instance-id";
/// The security groups dmw made (tagged [`DMW_GROUP_TAG`]) that this machine uses, made by
/// it or by another machine: the last machine using one deletes it.
const DMW_GROUPS: &str = "dmw-group-ids";
/// This machine's own tag on its instance (recorded before the launch): `rm` finds the
/// instance by it when the launch's answer was lost.
const OWNER_TAG: &str = "owner-tag";
/// The key of the owner tag on an instance.
const OWNER_KEY: &str = "dmw-owner";
/// The tag key dmw puts on the security groups it makes.
const DMW_GROUP_TAG: &str = "dmw-created";
const IP: &str = "ip-address";

/// The amazonec2 driver.
pub struct AmazonEc2;

/// An EC2 error answer: `<Response><Errors><Error><Code>…<Message>…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// EC2's error code (`InvalidInstanceID.NotFound`).
    pub code: String,
    /// EC2's message.
    pub message: String,
}

impl ApiError {
    /// The driver error for this answer at step `what`.
    fn into_error(self, what: &str) -> Error {
        let message = format!(
            "{what}: EC2 answered {} {}: {}",
            self.status, self.code, self.message
        );
        match (self.status, self.code.as_str()) {
            (_, "AuthFailure" | "UnauthorizedOperation" | "SignatureDoesNotMatch")
            | (401 | 403, _) => Error::Denied(message),
            (_, "RequestLimitExceeded" | "Throttling") | (429 | 500..=599, _) => {
                Error::Unreachable(message)
            }
            (400..=499, _) => Error::InvalidInput(message),
            _ => Error::Failed(message),
        }
    }
}

/// A parsed XML answer.
struct Xml(String);

impl Xml {
    fn doc(&self) -> Result<roxmltree::Document<'_>> {
        roxmltree::Document::parse(&self.0).map_err(|e| {
            Error::Failed(format!(
                "EC2's answer is not the XML expected: {e}; it starts {:?}",
                self.0.chars().take(120).collect::<String>()
            ))
        })
    }
}

/// Direct child element `name` of `node`.
fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// Text of direct child `name` of `node` (trimmed; none when absent or empty).
fn child_text(node: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name)
        .and_then(|c| c.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// Follow a path of child element names from `node`.
fn path<'a, 'i>(node: roxmltree::Node<'a, 'i>, names: &[&str]) -> Option<roxmltree::Node<'a, 'i>> {
    names.iter().try_fold(node, |n, name| child(n, name))
}

/// The `item`s of set `set` under `node`.
fn items<'a, 'i>(node: roxmltree::Node<'a, 'i>, set: &str) -> Vec<roxmltree::Node<'a, 'i>> {
    child(node, set)
        .map(|s| {
            s.children()
                .filter(|c| c.is_element() && c.tag_name().name() == "item")
                .collect()
        })
        .unwrap_or_default()
}

/// The first `<Error>` of an error answer, if the body is one.
pub fn api_error(resp: &Response) -> Option<ApiError> {
    let text = resp.text();
    let doc = roxmltree::Document::parse(&text).ok()?;
    let err = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "Error")?;
    let bounded = |s: String| s.chars().take(http::MESSAGE_LIMIT).collect::<String>();
    Some(ApiError {
        status: resp.status,
        code: bounded(child_text(err, "Code").unwrap_or_else(|| "Unknown".into())),
        message: bounded(child_text(err, "Message").unwrap_or_default()),
    })
}

/// The stored credentials.
fn credentials() -> Result<Credentials> {
    let missing = || {
        Error::Failed(
            "the machine's configuration has no AWS credentials; remove it and create it again"
                .into(),
        )
    };
    Ok(Credentials {
        access_key: store::get(ACCESS_KEY).ok_or_else(missing)?,
        secret_key: store::get_secret(SECRET_KEY).ok_or_else(missing)?,
        session_token: store::get_secret(SESSION_TOKEN),
    })
}

/// The EC2 endpoint: `--amazonec2-endpoint`, else the region's.
fn endpoint() -> Result<String> {
    match store::get(ENDPOINT).filter(|e| !e.is_empty()) {
        Some(e) => Ok(e),
        None => Ok(format!(
            "https://ec2.{}.amazonaws.com",
            store::require(REGION)?
        )),
    }
}

/// Send one EC2 action (`Action=…&Version=…&params`), signed; the answer, any status.
fn send(action: &str, params: &[(String, String)], what: &str) -> Result<Response> {
    let mut form = vec![
        ("Action".to_string(), action.to_string()),
        ("Version".to_string(), API_VERSION.to_string()),
    ];
    form.extend(params.iter().cloned());
    let url = format!("{}/", endpoint()?.trim_end_matches('/'));
    let req = Request::post(&url)
        .header(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("User-Agent", "dmw-amazonec2/0.1")
        .body(sigv4::form_encode(&form).into_bytes());
    let req = sigv4::sign(
        req,
        &credentials()?,
        &store::require(REGION)?,
        "ec2",
        SystemTime::now(),
    )?;
    http::send(req).map_err(|e| Error::from(e).context(what))
}

/// One EC2 action that must succeed: its XML answer, or EC2's error in words.
fn call(action: &str, params: &[(String, String)], what: &str) -> Result<Xml> {
    let resp = send(action, params, what)?;
    if resp.is_success() {
        if resp.body.len() > MAX_XML {
            return Err(Error::Failed(format!("{what}: EC2's answer is too large")));
        }
        return Ok(Xml(resp.text()));
    }
    Err(match api_error(&resp) {
        Some(e) => e.into_error(what),
        None => http::error_for(&resp, what),
    })
}

/// One EC2 action whose error answer is handled by the caller: `Ok(Err(code))` for an
/// EC2 error with one of `codes`.
fn call_or(
    action: &str,
    params: &[(String, String)],
    what: &str,
    codes: &[&str],
) -> Result<std::result::Result<Xml, String>> {
    let resp = send(action, params, what)?;
    if resp.is_success() {
        return Ok(Ok(Xml(resp.text())));
    }
    match api_error(&resp) {
        Some(e) if codes.iter().any(|c| e.code == *c) => Ok(Err(e.code)),
        Some(e) => Err(e.into_error(what)),
        None => Err(http::error_for(&resp, what)),
    }
}

/// `(name, value)` owned.
fn p(name: impl Into<String>, value: impl Into<String>) -> (String, String) {
    (name.into(), value.into())
}

/// `Filter.N.Name` / `Filter.N.Value.1` pairs.
fn filters(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .enumerate()
        .flat_map(|(i, (name, value))| {
            [
                p(format!("Filter.{}.Name", i + 1), *name),
                p(format!("Filter.{}.Value.1", i + 1), *value),
            ]
        })
        .collect()
}

/// A comma-separated stored list.
fn stored_list(key: &str) -> Vec<String> {
    store::get(key)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// What DescribeInstances says about one instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Instance {
    state: String,
    public_ip: Option<String>,
    private_ip: Option<String>,
    key_name: Option<String>,
}

/// DescribeInstances for `id`; none when EC2 no longer knows it.
fn describe_instance(id: &str, what: &str) -> Result<Option<Instance>> {
    let answer = match call_or(
        "DescribeInstances",
        &[p("InstanceId.1", id)],
        what,
        &["InvalidInstanceID.NotFound"],
    )? {
        Ok(x) => x,
        Err(_) => return Ok(None),
    };
    let doc = answer.doc()?;
    let root = doc.root_element();
    for reservation in items(root, "reservationSet") {
        for inst in items(reservation, "instancesSet") {
            if child_text(inst, "instanceId").as_deref() == Some(id) {
                return Ok(Some(Instance {
                    state: path(inst, &["instanceState", "name"])
                        .and_then(|n| n.text())
                        .unwrap_or("unknown")
                        .trim()
                        .to_string(),
                    public_ip: child_text(inst, "ipAddress"),
                    private_ip: child_text(inst, "privateIpAddress"),
                    key_name: child_text(inst, "keyName"),
                }));
            }
        }
    }
    Ok(None)
}

/// The stored instance id.
fn instance_id() -> Result<String> {
    store::get(INSTANCE_ID).ok_or_else(|| {
        Error::Failed(
            "the machine has no instance id: its create did not get that far (`dmw rm` removes it)"
                .into(),
        )
    })
}

/// The address to use: the private one with `--amazonec2-private-address-only` or
/// `--amazonec2-use-private-address`, else the public one.
fn chosen_address(inst: &Instance) -> Result<Option<String>> {
    let private = store::get_or(PRIVATE_ONLY, false)? || store::get_or(USE_PRIVATE, false)?;
    Ok(if private {
        inst.private_ip.clone()
    } else {
        inst.public_ip.clone()
    })
}

/// Docker Machine's `k1,v1,k2,v2` tags as pairs.
fn parse_tags(text: &str) -> Result<Vec<(String, String)>> {
    let parts: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if !parts.len().is_multiple_of(2) {
        return Err(Error::InvalidInput(format!(
            "--amazonec2-tags must be key,value pairs (k1,v1,k2,v2), got {text:?}"
        )));
    }
    Ok(parts
        .chunks(2)
        .map(|c| (c[0].to_string(), c[1].to_string()))
        .collect())
}

/// `PORT/PROTO` of `--amazonec2-open-port` (protocol tcp when absent).
fn parse_port(text: &str) -> Result<(u16, String)> {
    let (port, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let port: u16 = port.trim().parse().ok().filter(|p| *p > 0).ok_or_else(|| {
        Error::InvalidInput(format!(
            "--amazonec2-open-port {text:?} is not PORT or PORT/tcp|udp"
        ))
    })?;
    let proto = proto.trim().to_ascii_lowercase();
    if proto != "tcp" && proto != "udp" {
        return Err(Error::InvalidInput(format!(
            "--amazonec2-open-port {text:?}: the protocol must be tcp or udp"
        )));
    }
    Ok((port, proto))
}

/// The instances (pending, running, stopping or stopped) that pass the `(name, value)`
/// filters.
fn live_instances(list: &[(&str, &str)]) -> Result<Vec<String>> {
    let answer = call(
        "DescribeInstances",
        &filters(list),
        "find the machine's instances",
    )?;
    let doc = answer.doc()?;
    let mut ids = Vec::new();
    for reservation in items(doc.root_element(), "reservationSet") {
        for inst in items(reservation, "instancesSet") {
            let state = path(inst, &["instanceState", "name"])
                .and_then(|n| n.text())
                .unwrap_or("")
                .trim()
                .to_string();
            if matches!(
                state.as_str(),
                "pending" | "running" | "stopping" | "stopped"
            ) && let Some(id) = child_text(inst, "instanceId")
            {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

/// Record `id` among the dmw-made security groups this machine uses.
fn remember_dmw_group(id: &str) {
    let mut groups = stored_list(DMW_GROUPS);
    if !groups.iter().any(|g| g == id) {
        groups.push(id.to_string());
        store::set(DMW_GROUPS, groups.join(","));
    }
}

/// Find the security groups by name in the VPC, create the missing ones (recorded at once)
/// and open the SSH port, 2376 and `--amazonec2-open-port` in them unless read-only.
fn security_groups(vpc: &str) -> Result<Vec<String>> {
    let names = stored_list(GROUPS);
    let mut ids = Vec::new();
    let readonly = store::get_or(GROUP_READONLY, false)?;
    let mut wanted = vec![(store::get_or(SSH_PORT, 22u16)?, "tcp".to_string())];
    wanted.push((DOCKER_PORT, "tcp".into()));
    for port in stored_list(OPEN_PORTS) {
        let parsed = parse_port(&port)?;
        if !wanted.contains(&parsed) {
            wanted.push(parsed);
        }
    }
    // A group another create made at the same moment is looked up once more.
    let mut pending: Vec<(String, bool)> = names.into_iter().rev().map(|n| (n, false)).collect();
    while let Some((name, again)) = pending.pop() {
        let what = format!("look up security group {name}");
        let answer = call(
            "DescribeSecurityGroups",
            &filters(&[("group-name", &name), ("vpc-id", vpc)]),
            &what,
        )?;
        let doc = answer.doc()?;
        let found = items(doc.root_element(), "securityGroupInfo")
            .into_iter()
            .find(|g| child_text(*g, "groupName").as_deref() == Some(name.as_str()));
        let (id, open) = match found {
            Some(g) => {
                let id = child_text(g, "groupId")
                    .ok_or_else(|| Error::Failed(format!("{what}: the answer has no groupId")))?;
                let dmws = items(g, "tagSet")
                    .into_iter()
                    .any(|t| child_text(t, "key").as_deref() == Some(DMW_GROUP_TAG));
                if dmws {
                    remember_dmw_group(&id);
                }
                let open: Vec<(u16, String)> = items(g, "ipPermissions")
                    .into_iter()
                    .filter_map(|perm| {
                        Some((
                            child_text(perm, "fromPort")?.parse().ok()?,
                            child_text(perm, "ipProtocol")?,
                        ))
                    })
                    .collect();
                (id, open)
            }
            None => {
                info(&format!("Creating security group {name} in {vpc}"));
                let what = format!("create security group {name}");
                let answer = call_or(
                    "CreateSecurityGroup",
                    &[
                        p("GroupName", &name),
                        p("GroupDescription", "Docker Machine"),
                        p("VpcId", vpc),
                        p("TagSpecification.1.ResourceType", "security-group"),
                        p("TagSpecification.1.Tag.1.Key", DMW_GROUP_TAG),
                        p("TagSpecification.1.Tag.1.Value", "true"),
                    ],
                    &what,
                    &["InvalidGroup.Duplicate"],
                )?;
                let Ok(answer) = answer else {
                    if again {
                        return Err(Error::Failed(format!(
                            "{what}: EC2 says it exists, but it cannot be found in {vpc}"
                        )));
                    }
                    // Another create made it a moment ago (machines made at once): use it.
                    pending.push((name, true));
                    continue;
                };
                let doc = answer.doc()?;
                let id = child_text(doc.root_element(), "groupId")
                    .ok_or_else(|| Error::Failed(format!("{what}: the answer has no groupId")))?;
                let mut created = stored_list(CREATED_GROUPS);
                created.push(id.clone());
                store::set(CREATED_GROUPS, created.join(","));
                remember_dmw_group(&id);
                (id, Vec::new())
            }
        };
        if !readonly {
            let mut params = vec![p("GroupId", &id)];
            let mut n = 0;
            for (port, proto) in &wanted {
                if open.iter().any(|(p, pr)| p == port && pr == proto) {
                    continue;
                }
                n += 1;
                params.extend([
                    p(format!("IpPermissions.{n}.IpProtocol"), proto),
                    p(format!("IpPermissions.{n}.FromPort"), port.to_string()),
                    p(format!("IpPermissions.{n}.ToPort"), port.to_string()),
                    p(format!("IpPermissions.{n}.IpRanges.1.CidrIp"), "0.0.0.0/0"),
                ]);
            }
            if n > 0 {
                let what = format!("open ports in security group {id}");
                match call_or(
                    "AuthorizeSecurityGroupIngress",
                    &params,
                    &what,
                    &["InvalidPermission.Duplicate"],
                )? {
                    Ok(_) => {}
                    Err(_) => debug(&format!("{what}: already open")),
                }
            }
        }
        ids.push(id);
    }
    Ok(ids)
}

/// Without `--amazonec2-ami`: the newest Ubuntu 22.04 LTS image Canonical publishes in the
/// region (Docker Machine's table of AMIs went stale, docker/machine#1272).
fn default_ami() -> Result<String> {
    let what = "find the newest Ubuntu 22.04 image (pass --amazonec2-ami to choose one)";
    let answer = call(
        "DescribeImages",
        &[
            vec![p("Owner.1", "099720720109")],
            filters(&[
                (
                    "name",
                    "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*",
                ),
                ("state", "available"),
            ]),
        ]
        .concat(),
        what,
    )?;
    let doc = answer.doc()?;
    items(doc.root_element(), "imagesSet")
        .into_iter()
        .filter_map(|i| {
            Some((
                child_text(i, "creationDate").unwrap_or_default(),
                child_text(i, "imageId")?,
            ))
        })
        .max()
        .map(|(_, id)| id)
        .ok_or_else(|| {
            Error::InvalidInput(format!("{what}: the region has none; pass --amazonec2-ami"))
        })
}

/// The placement zone: region + `--amazonec2-zone` when that is one letter (`a`), else
/// the zone as given (a full name, or an EC2-compatible cloud's own zone name; Docker
/// Machine took the bare letter with a custom endpoint, which EC2 and moto refuse).
fn placement_zone() -> Result<String> {
    let zone = store::require(ZONE)?;
    if zone.len() == 1 && zone.chars().all(|c| c.is_ascii_lowercase()) {
        Ok(format!("{}{zone}", store::require(REGION)?))
    } else {
        Ok(zone)
    }
}

/// Resolve the VPC and subnet: the subnet's VPC, or a subnet of the VPC in the zone
/// (the zone's default first), or the account's default VPC.
fn resolve_network() -> Result<()> {
    let zone = placement_zone()?;
    let subnet = store::get(SUBNET_ID).filter(|s| !s.is_empty());
    let mut vpc = store::get(VPC_ID).filter(|s| !s.is_empty());
    if vpc.is_none() && subnet.is_none() {
        let what = "find the default VPC";
        let answer = call(
            "DescribeAccountAttributes",
            &[p("AttributeName.1", "default-vpc")],
            what,
        )?;
        let doc = answer.doc()?;
        let found = doc
            .descendants()
            .find(|n| n.is_element() && n.tag_name().name() == "attributeValue")
            .and_then(|n| n.text())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty() && t != "none");
        match found {
            Some(v) => vpc = Some(v),
            None => {
                return Err(Error::InvalidInput(
                    "the account has no default VPC: pass --amazonec2-vpc-id or --amazonec2-subnet-id"
                        .into(),
                ));
            }
        }
    }
    match (subnet, vpc) {
        (Some(subnet), vpc) => {
            let what = format!("look up subnet {subnet}");
            let answer = call("DescribeSubnets", &[p("SubnetId.1", &subnet)], &what)?;
            let doc = answer.doc()?;
            let s = items(doc.root_element(), "subnetSet")
                .into_iter()
                .next()
                .ok_or_else(|| Error::InvalidInput(format!("{what}: it does not exist")))?;
            let its_vpc = child_text(s, "vpcId").unwrap_or_default();
            if let Some(v) = vpc
                && v != its_vpc
            {
                return Err(Error::InvalidInput(format!(
                    "subnet {subnet} is in VPC {its_vpc}, not in --amazonec2-vpc-id {v}"
                )));
            }
            store::set(VPC_ID, its_vpc);
        }
        (None, Some(vpc)) => {
            let what = format!("find a subnet of {vpc} in {zone}");
            let answer = call(
                "DescribeSubnets",
                &filters(&[("vpc-id", &vpc), ("availability-zone", &zone)]),
                &what,
            )?;
            let doc = answer.doc()?;
            let subnets = items(doc.root_element(), "subnetSet");
            let pick = subnets
                .iter()
                .find(|s| child_text(**s, "defaultForAz").as_deref() == Some("true"))
                .or_else(|| subnets.first())
                .and_then(|s| child_text(*s, "subnetId"))
                .ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "{what}: there is none; pass --amazonec2-subnet-id or another --amazonec2-zone"
                    ))
                })?;
            store::set(VPC_ID, &vpc);
            store::set(SUBNET_ID, pick);
        }
        (None, None) => unreachable!("a VPC was found or an error returned above"),
    }
    Ok(())
}

/// Run a power action on the instance.
fn power(action: &str, extra: &[(String, String)]) -> Result<()> {
    let id = instance_id()?;
    let mut params = vec![p("InstanceId.1", &id)];
    params.extend(extra.iter().cloned());
    call(action, &params, &format!("{action} {id}"))?;
    Ok(())
}

impl Driver for AmazonEc2 {
    const NAME: &'static str = "amazonec2";
    const DESCRIPTION: &'static str = "Instances at Amazon EC2 (Query API, SigV4)";

    fn create_flags() -> Vec<Flag> {
        vec![
            Flag::text("amazonec2-access-key", "AWS Access Key").env("AWS_ACCESS_KEY_ID"),
            Flag::text("amazonec2-secret-key", "AWS Secret Key").env("AWS_SECRET_ACCESS_KEY"),
            Flag::text("amazonec2-session-token", "AWS Session Token").env("AWS_SESSION_TOKEN"),
            Flag::text(
                "amazonec2-ami",
                "AWS machine image (default: the newest Ubuntu 22.04 LTS of the region)",
            )
            .env("AWS_AMI"),
            Flag::text("amazonec2-region", "AWS region")
                .default_value("us-east-1")
                .env("AWS_DEFAULT_REGION"),
            Flag::text("amazonec2-vpc-id", "AWS VPC id").env("AWS_VPC_ID"),
            Flag::text("amazonec2-zone", "AWS zone for instance (i.e. a,b,c,d,e)")
                .default_value("a")
                .env("AWS_ZONE"),
            Flag::text("amazonec2-subnet-id", "AWS VPC subnet id").env("AWS_SUBNET_ID"),
            Flag::boolean(
                "amazonec2-security-group-readonly",
                "Skip adding default rules to security groups",
            )
            .env("AWS_SECURITY_GROUP_READONLY"),
            Flag::text_list("amazonec2-security-group", "AWS VPC security group")
                .default_value(DEFAULT_GROUP)
                .env("AWS_SECURITY_GROUP"),
            Flag::text_list(
                "amazonec2-open-port",
                "Make the specified port number accessible from the Internet (PORT or PORT/tcp|udp)",
            ),
            Flag::text("amazonec2-tags", "AWS Tags (e.g. key1,value1,key2,value2)").env("AWS_TAGS"),
            Flag::text("amazonec2-instance-type", "AWS instance type")
                .default_value("t2.micro")
                .env("AWS_INSTANCE_TYPE"),
            Flag::text("amazonec2-device-name", "AWS root device name")
                .default_value("/dev/sda1")
                .env("AWS_DEVICE_NAME"),
            Flag::integer("amazonec2-root-size", "AWS root disk size (in GB)")
                .default_value("16")
                .env("AWS_ROOT_SIZE"),
            Flag::text("amazonec2-volume-type", "Amazon EBS volume type")
                .default_value("gp2")
                .env("AWS_VOLUME_TYPE"),
            Flag::text("amazonec2-iam-instance-profile", "AWS IAM Instance Profile")
                .env("AWS_INSTANCE_PROFILE"),
            Flag::integer("amazonec2-ssh-port", "SSH port")
                .default_value("22")
                .env("AWS_SSH_PORT"),
            Flag::text("amazonec2-ssh-user", "SSH user")
                .default_value("ubuntu")
                .env("AWS_SSH_USER"),
            Flag::boolean(
                "amazonec2-request-spot-instance",
                "Set this flag to request spot instance",
            ),
            Flag::text(
                "amazonec2-spot-price",
                "AWS spot instance bid price (in dollar)",
            )
            .default_value("0.50"),
            Flag::boolean(
                "amazonec2-private-address-only",
                "Only use a private IP address",
            ),
            Flag::boolean(
                "amazonec2-use-private-address",
                "Force the usage of private IP address",
            ),
            Flag::boolean(
                "amazonec2-monitoring",
                "Set this flag to enable CloudWatch monitoring",
            ),
            Flag::boolean(
                "amazonec2-use-ebs-optimized-instance",
                "Create an EBS optimized instance",
            ),
            Flag::text(
                "amazonec2-ssh-keypath",
                "SSH Key for Instance (the private key of --amazonec2-keypair-name)",
            )
            .env("AWS_SSH_KEYPATH"),
            Flag::text(
                "amazonec2-keypair-name",
                "AWS keypair to use; requires --amazonec2-ssh-keypath",
            )
            .env("AWS_KEYPAIR_NAME"),
            Flag::text(
                "amazonec2-endpoint",
                "Optional endpoint URL (hostname only or fully qualified URI)",
            )
            .env("AWS_ENDPOINT"),
            Flag::text(
                "amazonec2-userdata",
                "path to file with cloud-init user data",
            )
            .env("AWS_USERDATA"),
        ]
    }

    fn set_config(machine_name: &str, flags: &Flags) -> Result<()> {
        let text = |name: &str| {
            flags
                .text(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let (Some(access), Some(secret)) =
            (text("amazonec2-access-key"), text("amazonec2-secret-key"))
        else {
            return Err(Error::InvalidInput(
                "amazonec2 driver requires AWS credentials configured with the --amazonec2-access-key and --amazonec2-secret-key options or the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables".into(),
            ));
        };
        if let Some(e) = text("amazonec2-endpoint") {
            let e = e.trim_end_matches('/');
            let e = if e.contains("://") {
                e.to_string()
            } else {
                format!("https://{e}")
            };
            if !(e.starts_with("https://") || e.starts_with("http://"))
                || http::host_of(&e).is_empty()
            {
                return Err(Error::InvalidInput(format!(
                    "--amazonec2-endpoint must be a host name or an http:// or https:// URL, got {e:?}"
                )));
            }
            store::set(ENDPOINT, e);
        }
        let region = text("amazonec2-region").unwrap_or_else(|| "us-east-1".into());
        let region_ok = region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !region_ok || region.is_empty() || region.len() > 32 {
            return Err(Error::InvalidInput(format!(
                "--amazonec2-region {region:?} is not a region name such as us-east-1"
            )));
        }
        let key_path = text("amazonec2-ssh-keypath");
        let keypair = text("amazonec2-keypair-name");
        if keypair.is_some() != key_path.is_some() {
            return Err(Error::InvalidInput(
                "--amazonec2-keypair-name and --amazonec2-ssh-keypath go together: the key pair's name at EC2 and its private key here".into(),
            ));
        }
        let tags = text("amazonec2-tags").unwrap_or_default();
        parse_tags(&tags)?;
        for port in flags.list("amazonec2-open-port") {
            parse_port(&port)?;
        }
        let spot_price = text("amazonec2-spot-price").unwrap_or_else(|| "0.50".into());
        if spot_price.parse::<f64>().map(|v| v <= 0.0).unwrap_or(true) {
            return Err(Error::InvalidInput(format!(
                "--amazonec2-spot-price {spot_price:?} is not a price in dollars"
            )));
        }
        let root_size: u32 = flags.int("amazonec2-root-size")?.unwrap_or(16);
        if !(1..=16_384).contains(&root_size) {
            return Err(Error::InvalidInput(format!(
                "--amazonec2-root-size {root_size} is not between 1 and 16384 GB"
            )));
        }
        store::set(ACCESS_KEY, access);
        store::set_secret(SECRET_KEY, &secret);
        if let Some(t) = text("amazonec2-session-token") {
            store::set_secret(SESSION_TOKEN, &t);
        }
        store::set(NAME, machine_name);
        store::set(REGION, &region);
        for (key, flag, default) in [
            (ZONE, "amazonec2-zone", "a"),
            (INSTANCE_TYPE, "amazonec2-instance-type", "t2.micro"),
            (DEVICE_NAME, "amazonec2-device-name", "/dev/sda1"),
            (VOLUME_TYPE, "amazonec2-volume-type", "gp2"),
            (SSH_USER, "amazonec2-ssh-user", "ubuntu"),
        ] {
            store::set(key, text(flag).unwrap_or_else(|| default.into()));
        }
        for (key, flag) in [
            (AMI, "amazonec2-ami"),
            (VPC_ID, "amazonec2-vpc-id"),
            (SUBNET_ID, "amazonec2-subnet-id"),
            (IAM_PROFILE, "amazonec2-iam-instance-profile"),
            (KEY_PATH, "amazonec2-ssh-keypath"),
            (KEYPAIR_NAME, "amazonec2-keypair-name"),
        ] {
            if let Some(v) = text(flag) {
                store::set(key, v);
            }
        }
        for (key, flag) in [
            (GROUP_READONLY, "amazonec2-security-group-readonly"),
            (SPOT, "amazonec2-request-spot-instance"),
            (PRIVATE_ONLY, "amazonec2-private-address-only"),
            (USE_PRIVATE, "amazonec2-use-private-address"),
            (MONITORING, "amazonec2-monitoring"),
            (EBS_OPTIMIZED, "amazonec2-use-ebs-optimized-instance"),
        ] {
            store::set(key, flags.bool(flag)?);
        }
        let mut groups: Vec<String> = flags
            .list("amazonec2-security-group")
            .iter()
            .flat_map(|g| g.split(','))
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect();
        if groups.is_empty() {
            groups.push(DEFAULT_GROUP.into());
        }
        store::set(GROUPS, groups.join(","));
        store::set(OPEN_PORTS, flags.list("amazonec2-open-port").join(","));
        store::set(TAGS, tags);
        store::set(SPOT_PRICE, spot_price);
        store::set(ROOT_SIZE, root_size);
        store::set(SSH_PORT, flags.port("amazonec2-ssh-port", 22)?);
        if let Some(userdata) = flags.text("amazonec2-userdata").filter(|u| !u.is_empty()) {
            store::set(USERDATA, userdata);
        }
        Ok(())
    }

    fn pre_create_check() -> Result<()> {
        resolve_network()?;
        if store::get(KEYPAIR_NAME).is_none() {
            let name = store::require(NAME)?;
            let what = format!("check that no key pair is named {name}");
            if call_or(
                "DescribeKeyPairs",
                &[p("KeyName.1", &name)],
                &what,
                &["InvalidKeyPair.NotFound"],
            )?
            .is_ok_and(|x| x.0.contains("<keyName>"))
            {
                return Err(Error::InvalidInput(format!(
                    "There is already a keypair with the name {name}.  Please either remove that keypair or use a different machine name."
                )));
            }
        }
        Ok(())
    }

    fn create() -> Result<()> {
        let name = store::require(NAME)?;
        // The key pair: a given one, or the machine's own public key imported.
        let key_name = match store::get(KEYPAIR_NAME) {
            Some(k) => k,
            None => {
                let public = generated_public_key().ok_or_else(|| {
                    Error::Failed("dmw lent no public key for the machine (keys)".into())
                })?;
                info(&format!("Importing key pair {name}..."));
                let material = base64::engine::general_purpose::STANDARD.encode(public.trim());
                // Recorded first: an import whose answer is lost may have made it (and
                // DeleteKeyPair of a name that does not exist succeeds).
                store::set(IMPORTED_KEY, &name);
                match call_or(
                    "ImportKeyPair",
                    &[p("KeyName", &name), p("PublicKeyMaterial", material)],
                    "import the machine's SSH key",
                    &["InvalidKeyPair.Duplicate"],
                )? {
                    Ok(_) => {}
                    Err(_) => {
                        // Someone else's key pair of that name, made since the check: not ours.
                        store::delete(IMPORTED_KEY);
                        return Err(Error::InvalidInput(format!(
                            "There is already a keypair with the name {name}.  Please either remove that keypair or use a different machine name."
                        )));
                    }
                }
                name.clone()
            }
        };

        let vpc = store::require(VPC_ID)?;
        let subnet = store::require(SUBNET_ID)?;
        let group_ids = security_groups(&vpc)?;
        store::set(GROUP_IDS, group_ids.join(","));

        let ami = match store::get(AMI) {
            Some(a) => a,
            None => {
                let a = default_ami()?;
                info(&format!("Using image {a}"));
                store::set(AMI, &a);
                a
            }
        };
        let private_only = store::get_or(PRIVATE_ONLY, false)?;
        let spot = store::get_or(SPOT, false)?;
        let zone = placement_zone()?;
        // The launch specification, shared by RunInstances and RequestSpotInstances.
        let mut spec = vec![
            p("ImageId", &ami),
            p("InstanceType", store::require(INSTANCE_TYPE)?),
            p("Placement.AvailabilityZone", &zone),
            p("KeyName", &key_name),
            p(
                "Monitoring.Enabled",
                store::get_or(MONITORING, false)?.to_string(),
            ),
            p(
                "EbsOptimized",
                store::get_or(EBS_OPTIMIZED, false)?.to_string(),
            ),
            p("NetworkInterface.1.DeviceIndex", "0"),
            p("NetworkInterface.1.SubnetId", &subnet),
            p(
                "NetworkInterface.1.AssociatePublicIpAddress",
                (!private_only).to_string(),
            ),
            p(
                "BlockDeviceMapping.1.DeviceName",
                store::require(DEVICE_NAME)?,
            ),
            p(
                "BlockDeviceMapping.1.Ebs.VolumeSize",
                store::require(ROOT_SIZE)?,
            ),
            p(
                "BlockDeviceMapping.1.Ebs.VolumeType",
                store::require(VOLUME_TYPE)?,
            ),
            p("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true"),
        ];
        for (i, g) in group_ids.iter().enumerate() {
            spec.push(p(
                format!("NetworkInterface.1.SecurityGroupId.{}", i + 1),
                g,
            ));
        }
        if let Some(profile) = store::get(IAM_PROFILE) {
            spec.push(p("IamInstanceProfile.Name", profile));
        }
        if let Some(userdata) = store::get(USERDATA) {
            spec.push(p(
                "UserData",
                base64::engine::general_purpose::STANDARD.encode(userdata.as_bytes()),
            ));
        }
        let mut tags = vec![("Name".to_string(), name.clone())];
        tags.extend(parse_tags(&store::get(TAGS).unwrap_or_default())?);
        // Recorded before the launch: if its answer is lost, `rm` finds the instance by it.
        let owner = dmw_guest::driver::owner_tag(&name);
        store::set(OWNER_TAG, &owner);
        tags.push((OWNER_KEY.to_string(), owner));

        let id = if spot {
            info("Requesting a spot instance...");
            let mut params = vec![
                p("SpotPrice", store::require(SPOT_PRICE)?),
                p("InstanceCount", "1"),
            ];
            params.extend(
                spec.into_iter()
                    .map(|(k, v)| (format!("LaunchSpecification.{k}"), v)),
            );
            let answer = call("RequestSpotInstances", &params, "request a spot instance")?;
            let doc = answer.doc()?;
            let request = items(doc.root_element(), "spotInstanceRequestSet")
                .into_iter()
                .find_map(|r| child_text(r, "spotInstanceRequestId"))
                .ok_or_else(|| {
                    Error::Failed("request a spot instance: the answer has no request id".into())
                })?;
            store::set(SPOT_REQUEST, &request);
            let what = format!("wait for spot request {request}");
            let mut waited = Duration::ZERO;
            let id = loop {
                let answer = call(
                    "DescribeSpotInstanceRequests",
                    &[p("SpotInstanceRequestId.1", &request)],
                    &what,
                )?;
                let doc = answer.doc()?;
                let r = items(doc.root_element(), "spotInstanceRequestSet")
                    .into_iter()
                    .next();
                if let Some(id) = r.and_then(|r| child_text(r, "instanceId")) {
                    break id;
                }
                let state = r
                    .and_then(|r| child_text(r, "state"))
                    .unwrap_or_else(|| "unknown".into());
                if matches!(state.as_str(), "cancelled" | "failed" | "closed") {
                    return Err(Error::Failed(format!(
                        "{what}: EC2 says the request is {state}; `dmw rm` cleans up"
                    )));
                }
                if waited >= SPOT_TIMEOUT {
                    return Err(Error::Unreachable(format!(
                        "{what}: not fulfilled after {} s; `dmw rm` cancels it",
                        SPOT_TIMEOUT.as_secs()
                    )));
                }
                dmw_guest::host::sleep(POLL);
                waited += POLL;
            };
            store::set(INSTANCE_ID, &id);
            let mut params = vec![p("ResourceId.1", &id)];
            for (i, (k, v)) in tags.iter().enumerate() {
                params.push(p(format!("Tag.{}.Key", i + 1), k));
                params.push(p(format!("Tag.{}.Value", i + 1), v));
            }
            call("CreateTags", &params, &format!("tag instance {id}"))?;
            id
        } else {
            info("Launching instance...");
            let mut params = vec![p("MinCount", "1"), p("MaxCount", "1")];
            params.extend(spec);
            params.push(p("TagSpecification.1.ResourceType", "instance"));
            for (i, (k, v)) in tags.iter().enumerate() {
                params.push(p(format!("TagSpecification.1.Tag.{}.Key", i + 1), k));
                params.push(p(format!("TagSpecification.1.Tag.{}.Value", i + 1), v));
            }
            let answer = call("RunInstances", &params, "launch the instance")?;
            let doc = answer.doc()?;
            let id = items(doc.root_element(), "instancesSet")
                .into_iter()
                .find_map(|i| child_text(i, "instanceId"))
                .ok_or_else(|| {
                    Error::Failed("launch the instance: the answer has no instanceId".into())
                })?;
            store::set(INSTANCE_ID, &id);
            id
        };

        info(&format!("Waiting for instance {id} to be running..."));
        let what = format!("wait for instance {id}");
        let mut waited = Duration::ZERO;
        let mut last = String::new();
        loop {
            let inst = describe_instance(&id, &what)?.ok_or_else(|| {
                Error::Failed(format!("{what}: EC2 no longer knows the instance"))
            })?;
            if inst.state == "running"
                && let Some(ip) = chosen_address(&inst)?
            {
                store::set(IP, &ip);
                info(&format!("Instance {id} is running at {ip}"));
                return Ok(());
            }
            if matches!(inst.state.as_str(), "terminated" | "shutting-down") {
                return Err(Error::Failed(format!(
                    "{what}: EC2 says it is {}; `dmw rm` cleans up",
                    inst.state
                )));
            }
            if inst.state != last {
                info(&format!("Instance {id} is {}", inst.state));
                last = inst.state.clone();
            }
            if waited >= RUN_TIMEOUT {
                return Err(Error::Unreachable(format!(
                    "{what}: still {} without the address to use after {} s; `dmw rm` removes it",
                    inst.state,
                    RUN_TIMEOUT.as_secs()
                )));
            }
            dmw_guest::host::sleep(POLL);
            waited += POLL;
        }
    }

    fn state() -> Result<MachineState> {
        let id = instance_id()?;
        let inst =
            describe_instance(&id, &format!("describe instance {id}"))?.ok_or_else(|| {
                Error::InvalidInput(format!("instance {id} does not exist at EC2 any more"))
            })?;
        Ok(match inst.state.as_str() {
            "pending" => MachineState::Starting,
            "running" => MachineState::Running,
            "stopping" | "shutting-down" => MachineState::Stopping,
            "stopped" => MachineState::Stopped,
            "terminated" => MachineState::Error,
            _ => MachineState::None,
        })
    }

    fn address() -> Result<String> {
        // Asked again every time (Docker Machine's GetIP): a public address changes when
        // the instance stops and starts.
        let id = instance_id()?;
        if let Some(inst) = describe_instance(&id, &format!("describe instance {id}"))?
            && let Some(ip) = chosen_address(&inst)?
        {
            store::set(IP, &ip);
            return Ok(ip);
        }
        store::require(IP)
    }

    fn ssh_endpoint() -> Result<SshEndpoint> {
        Ok(SshEndpoint {
            // Empty before create: the instance's address is known once it runs.
            address: store::get(IP).unwrap_or_default(),
            port: store::get_or(SSH_PORT, 22u16)?,
            user: store::get(SSH_USER).unwrap_or_else(|| "ubuntu".into()),
            key_path: store::get(KEY_PATH),
        })
    }

    fn start() -> Result<()> {
        power("StartInstances", &[])
    }

    fn stop() -> Result<()> {
        power("StopInstances", &[p("Force", "false")])
    }

    fn kill() -> Result<()> {
        power("StopInstances", &[p("Force", "true")])
    }

    fn restart() -> Result<()> {
        power("RebootInstances", &[])
    }

    fn remove() -> Result<()> {
        let mut removed = Vec::new();
        // The dmw-made security groups it uses (made by it or by another machine).
        let mut groups = stored_list(CREATED_GROUPS);
        for g in stored_list(DMW_GROUPS) {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        let ids = match (store::get(INSTANCE_ID), store::get(OWNER_TAG)) {
            (Some(id), _) => vec![id],
            // The launch's answer was lost: the instances carrying this machine's own tag.
            (None, Some(owner)) => live_instances(&[(&format!("tag:{OWNER_KEY}"), &owner)])?,
            (None, None) => Vec::new(),
        };
        for id in &ids {
            let what = format!("terminate instance {id}");
            match call_or(
                "TerminateInstances",
                &[p("InstanceId.1", id)],
                &what,
                &["InvalidInstanceID.NotFound"],
            )? {
                Ok(_) => removed.push(format!("instance {id}")),
                Err(_) => info(&format!("Instance {id} was already gone")),
            }
            // Its security groups can go only once the instance is gone.
            if !groups.is_empty() {
                let what = format!("wait for instance {id} to terminate");
                let mut waited = Duration::ZERO;
                while let Some(inst) = describe_instance(id, &what)? {
                    if inst.state == "terminated" {
                        break;
                    }
                    if waited >= TERMINATE_TIMEOUT {
                        warn(&format!(
                            "{what}: still {} after {} s",
                            inst.state,
                            TERMINATE_TIMEOUT.as_secs()
                        ));
                        break;
                    }
                    dmw_guest::host::sleep(POLL);
                    waited += POLL;
                }
            }
        }
        store::delete(INSTANCE_ID);
        store::delete(OWNER_TAG);
        if let Some(request) = store::get(SPOT_REQUEST) {
            let what = format!("cancel spot request {request}");
            match call_or(
                "CancelSpotInstanceRequests",
                &[p("SpotInstanceRequestId.1", &request)],
                &what,
                &["InvalidSpotInstanceRequestID.NotFound"],
            )? {
                Ok(_) => removed.push(format!("spot request {request}")),
                Err(_) => info(&format!("Spot request {request} was already gone")),
            }
            store::delete(SPOT_REQUEST);
        }
        if let Some(key) = store::get(IMPORTED_KEY) {
            // EC2 answers DeleteKeyPair for an unknown name with success.
            call(
                "DeleteKeyPair",
                &[p("KeyName", &key)],
                &format!("delete key pair {key}"),
            )?;
            removed.push(format!("key pair {key}"));
            store::delete(IMPORTED_KEY);
        }
        let mut left = Vec::new();
        for group in groups {
            let what = format!("delete security group {group}");
            let mut waited = Duration::ZERO;
            loop {
                match call_or(
                    "DeleteSecurityGroup",
                    &[p("GroupId", &group)],
                    &what,
                    &["InvalidGroup.NotFound", "DependencyViolation"],
                )? {
                    Ok(_) => removed.push(format!("security group {group}")),
                    Err(code)
                        if code == "DependencyViolation"
                            && let Some(other) =
                                live_instances(&[("instance.group-id", &group)])?
                                    .into_iter()
                                    .find(|i| !ids.contains(i)) =>
                    {
                        // Another machine's instance uses it: the last machine using it
                        // deletes it.
                        info(&format!(
                            "Security group {group} is still used by instance {other}; the last machine using it deletes it"
                        ));
                    }
                    Err(code) if code == "DependencyViolation" && waited < TERMINATE_TIMEOUT => {
                        dmw_guest::host::sleep(POLL);
                        waited += POLL;
                        continue;
                    }
                    Err(code) if code == "DependencyViolation" => {
                        warn(&format!(
                            "{what}: still in use; delete it later (aws ec2 delete-security-group --group-id {group})"
                        ));
                        left.push(group.clone());
                    }
                    Err(_) => info(&format!("Security group {group} was already gone")),
                }
                break;
            }
        }
        store::delete(DMW_GROUPS);
        if left.is_empty() {
            store::delete(CREATED_GROUPS);
        } else {
            store::set(CREATED_GROUPS, left.join(","));
        }
        if removed.is_empty() {
            info("Nothing to remove at EC2");
        } else {
            info(&format!("Removed at EC2: {}", removed.join(", ")));
        }
        Ok(())
    }
}

dmw_guest::export_driver!(AmazonEc2);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
