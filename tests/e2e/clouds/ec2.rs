//! A local Amazon EC2 Query API (version 2016-11-15), written from AWS's EC2 API reference
//! and error guide (../shared/reference/clouds.md §4): form POSTs (or GET queries)
//! `Action=…&Version=…` signed with SigV4 (checked here with an implementation of its own:
//! a bad signature or an unknown key is `401 AuthFailure`), XML answers in the
//! `http://ec2.amazonaws.com/doc/2016-11-15/` namespace, errors as
//! `<Response><Errors><Error><Code>…</Code><Message>…</Message></Error></Errors>…`.
//! One VPC with one subnet per zone (the account's default VPC), key pairs, security
//! groups, images and instances. Running an instance boots a testbed host in the
//! background with the instance's key pair authorised for root and reports the host's
//! address as its public and private address; stop/start/reboot map onto the host,
//! termination deletes it (the instance stays describable as `terminated`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use sha2::{Digest, Sha256};

use super::digitalocean::fingerprint;
use super::fleet::Fleet;
use super::server::{Faults, Handler, Request, Response, Server, percent_decode};

/// The namespace of every answer.
pub const NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// The account's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The one valid access key id.
    pub access_key: String,
    /// Its secret key.
    pub secret_key: String,
    /// The region (signatures must be scoped to it).
    pub region: String,
    /// Most instances that may exist (not terminated) at once.
    pub max_instances: usize,
    /// Faults injected into the answers (none by default).
    pub faults: Faults,
    /// An instance started again gets a new public address, as on EC2 without an Elastic
    /// IP (off by default: most tests keep one address).
    pub new_address_at_start: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            access_key: "AKIADMWLOCAL0EXAMPLE".into(),
            secret_key: "dmwLocalEc2Secret/K7MDENG+bPxRfiCYEXAMPLE".into(),
            region: "us-east-1".into(),
            max_instances: 5,
            faults: Faults::default(),
            new_address_at_start: false,
        }
    }
}

/// A key pair.
#[derive(Clone, Debug)]
pub struct KeyPair {
    /// `key-…`.
    pub id: String,
    /// Name.
    pub name: String,
    /// MD5 fingerprint of the key blob, colon form.
    pub fingerprint: String,
    /// The OpenSSH public key line.
    pub public_key: String,
}

/// A security group.
#[derive(Clone, Debug)]
pub struct Group {
    /// `sg-…`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// VPC.
    pub vpc: String,
    /// Open (protocol, from port, to port, cidr).
    pub rules: Vec<(String, u16, u16, String)>,
    /// Tags (given at creation with `TagSpecification`).
    pub tags: Vec<(String, String)>,
}

/// An instance.
#[derive(Clone, Debug)]
pub struct Instance {
    /// `i-…`.
    pub id: String,
    /// pending | running | stopping | stopped | shutting-down | terminated.
    pub state: String,
    /// Image.
    pub image: String,
    /// Instance type.
    pub instance_type: String,
    /// Key pair name.
    pub key_name: Option<String>,
    /// Subnet.
    pub subnet: String,
    /// Zone.
    pub zone: String,
    /// Security group ids.
    pub groups: Vec<String>,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// User data as sent (base64).
    pub user_data: Option<String>,
    /// The host's address once booted.
    pub addr: Option<Ipv4Addr>,
    /// Root volume size in GiB.
    pub root_size: Option<u32>,
    /// Launch time.
    pub launched: String,
}

#[derive(Default)]
struct State {
    keys: BTreeMap<String, KeyPair>,
    groups: BTreeMap<String, Group>,
    instances: BTreeMap<String, Instance>,
}

struct Inner {
    cfg: Config,
    fleet: Arc<Fleet>,
    state: Mutex<State>,
    next: AtomicU64,
}

/// The running API.
pub struct Ec2 {
    /// The HTTP server (its requests are recorded).
    pub http: Server,
    inner: Arc<Inner>,
}

/// The default VPC and its subnets (one per zone).
pub const VPC: &str = "vpc-0d3a1c00000000001";
const VPC_CIDR: &str = "172.31.0.0/16";
const SUBNETS: &[(&str, &str, &str)] = &[
    ("subnet-0d3a1c0000000000a", "us-east-1a", "172.31.0.0/20"),
    ("subnet-0d3a1c0000000000b", "us-east-1b", "172.31.16.0/20"),
];
const DEFAULT_GROUP: &str = "sg-0d3a1c00000000001";
/// Images (id, name, owner, created).
const IMAGES: &[(&str, &str, &str, &str)] = &[
    (
        "ami-0d3a1c000000deb12",
        "debian-12-amd64-20240717-1811",
        "136693071363",
        "2024-07-17T18:11:00.000Z",
    ),
    (
        "ami-0d3a1c000000ub2204",
        "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20240701",
        "099720720109",
        "2024-07-01T00:00:00.000Z",
    ),
];
const INSTANCE_TYPES: &[&str] = &["t2.micro", "t2.small", "t3.micro", "t3.small", "m5.large"];

impl Ec2 {
    /// Starts the API on 127.0.0.1 with its own fleet.
    pub fn start(cfg: Config) -> Ec2 {
        let mut state = State::default();
        state.groups.insert(
            DEFAULT_GROUP.into(),
            Group {
                id: DEFAULT_GROUP.into(),
                name: "default".into(),
                description: "default VPC security group".into(),
                vpc: VPC.into(),
                rules: Vec::new(),
                tags: Vec::new(),
            },
        );
        let inner = Arc::new(Inner {
            cfg,
            fleet: Arc::new(Fleet::new()),
            state: Mutex::new(state),
            next: AtomicU64::new(0x0d3a_1c00_0001_0000),
        });
        let h = inner.clone();
        let handler: Handler = inner
            .cfg
            .faults
            .wrap(Arc::new(move |req: &Request| h.handle(req)));
        Ec2 {
            http: Server::start(handler),
            inner,
        }
    }

    /// The endpoint to give clients (`--amazonec2-endpoint`, boto3's `endpoint_url`).
    pub fn url(&self) -> String {
        self.http.url.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// The instances (terminated ones too).
    pub fn instances(&self) -> Vec<Instance> {
        self.inner.lock().instances.values().cloned().collect()
    }

    /// The key pairs.
    pub fn key_pairs(&self) -> Vec<KeyPair> {
        self.inner.lock().keys.values().cloned().collect()
    }

    /// The security groups other than the VPC's default one.
    pub fn groups(&self) -> Vec<Group> {
        self.inner
            .lock()
            .groups
            .values()
            .filter(|g| g.id != DEFAULT_GROUP)
            .cloned()
            .collect()
    }

    /// Everything a client made that still exists (instances not terminated, key pairs,
    /// security groups, testbed hosts), one line each; empty when it cleaned up.
    pub fn leftovers(&self) -> Vec<String> {
        let st = self.inner.lock();
        let mut out: Vec<String> = st
            .instances
            .values()
            .filter(|i| i.state != "terminated")
            .map(|i| format!("instance {} ({})", i.id, i.state))
            .collect();
        out.extend(st.keys.values().map(|k| format!("key pair {}", k.name)));
        out.extend(
            st.groups
                .values()
                .filter(|g| g.id != DEFAULT_GROUP)
                .map(|g| format!("security group {} ({})", g.id, g.name)),
        );
        drop(st);
        out.extend(
            self.inner
                .fleet
                .ids()
                .into_iter()
                .map(|i| format!("testbed host of instance {i}")),
        );
        out
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn request_id() -> String {
    "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE".into()
}

/// A successful answer: `<ActionResponse xmlns=NS><requestId/>inner</ActionResponse>`.
fn ok(action: &str, inner: &str) -> Response {
    Response::text(
        200,
        "text/xml;charset=UTF-8",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{NS}\"><requestId>{}</requestId>{inner}</{action}Response>",
            request_id()
        ),
    )
}

/// EC2's error answer.
fn error(status: u16, code: &str, message: &str) -> Response {
    Response::text(
        status,
        "text/xml;charset=UTF-8",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
            esc(code),
            esc(message),
            request_id()
        ),
    )
}

fn auth_failure() -> Response {
    error(
        401,
        "AuthFailure",
        "AWS was not able to validate the provided access credentials",
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-SHA256 (RFC 2104) over sha2.
fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut k = if key.len() > 64 {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(64, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::digest([ipad.as_slice(), data].concat());
    Sha256::digest([opad.as_slice(), inner.as_slice()].concat()).to_vec()
}

fn uri_encode(s: &str, keep_slash: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b'/' if keep_slash => "/".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The form parameters of a request: its query and, for a form POST, its body.
fn params(req: &Request) -> Vec<(String, String)> {
    let mut out = req.query.clone();
    out.extend(req.text().split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (percent_decode(k, true), percent_decode(v, true))
    }));
    out
}

/// Values of `Prefix.1`, `Prefix.2`, ….
fn numbered(p: &[(String, String)], prefix: &str) -> Vec<String> {
    (1..)
        .map_while(|n| {
            p.iter()
                .find(|(k, _)| *k == format!("{prefix}.{n}"))
                .map(|(_, v)| v.clone())
        })
        .collect()
}

/// `Filter.N.Name` → values.
fn filters(p: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    (1..)
        .map_while(|n| {
            let name = p
                .iter()
                .find(|(k, _)| *k == format!("Filter.{n}.Name"))?
                .1
                .clone();
            Some((name, numbered(p, &format!("Filter.{n}.Value"))))
        })
        .collect()
}

fn filter_ok(fs: &[(String, Vec<String>)], name: &str, value: &str) -> bool {
    fs.iter()
        .filter(|(n, _)| n == name)
        .all(|(_, vs)| vs.iter().any(|v| glob(v, value)))
}

/// EC2 filter wildcards: `*` any run, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

fn param<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Standard base64 (padding optional); none for anything else.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn state_code(state: &str) -> u8 {
    match state {
        "pending" => 0,
        "running" => 16,
        "shutting-down" => 32,
        "terminated" => 48,
        "stopping" => 64,
        _ => 80,
    }
}

fn state_xml(state: &str) -> String {
    format!("<code>{}</code><name>{state}</name>", state_code(state))
}

/// The tags of `TagSpecification.N` whose `ResourceType` is `kind` (the first without one).
fn spec_tags(p: &[(String, String)], kind: &str) -> Vec<(String, String)> {
    let mut tags = Vec::new();
    for s in 1..=8 {
        let ty = param(p, &format!("TagSpecification.{s}.ResourceType"));
        if ty.is_some_and(|t| t != kind) || (ty.is_none() && s > 1) {
            continue;
        }
        for n in 1.. {
            let Some(k) = param(p, &format!("TagSpecification.{s}.Tag.{n}.Key")) else {
                break;
            };
            let v = param(p, &format!("TagSpecification.{s}.Tag.{n}.Value")).unwrap_or_default();
            tags.push((k.to_string(), v.to_string()));
        }
    }
    tags
}

/// Whether `tags` pass the `tag:KEY` filters among `fs`.
fn tag_filters_ok(fs: &[(String, Vec<String>)], tags: &[(String, String)]) -> bool {
    fs.iter()
        .filter_map(|(n, vs)| n.strip_prefix("tag:").map(|k| (k, vs)))
        .all(|(k, vs)| {
            tags.iter()
                .any(|(tk, tv)| tk == k && vs.iter().any(|v| glob(v, tv)))
        })
}

fn tags_xml(tags: &[(String, String)]) -> String {
    let items: String = tags
        .iter()
        .map(|(k, v)| {
            format!(
                "<item><key>{}</key><value>{}</value></item>",
                esc(k),
                esc(v)
            )
        })
        .collect();
    format!("<tagSet>{items}</tagSet>")
}

fn instance_xml(i: &Instance, st: &State) -> String {
    let groups: String = i
        .groups
        .iter()
        .map(|g| {
            let name = st.groups.get(g).map(|g| g.name.clone()).unwrap_or_default();
            format!(
                "<item><groupId>{g}</groupId><groupName>{}</groupName></item>",
                esc(&name)
            )
        })
        .collect();
    let addr = i
        .addr
        .filter(|_| i.state != "terminated")
        .map(|a| {
            let dashed = a.to_string().replace('.', "-");
            format!(
                "<privateDnsName>ip-{dashed}.ec2.internal</privateDnsName><dnsName>ec2-{dashed}.compute-1.amazonaws.com</dnsName><privateIpAddress>{a}</privateIpAddress><ipAddress>{a}</ipAddress>"
            )
        })
        .unwrap_or_else(|| "<privateDnsName/><dnsName/>".into());
    let vpc = if i.state == "terminated" {
        String::new()
    } else {
        format!("<subnetId>{}</subnetId><vpcId>{VPC}</vpcId>", i.subnet)
    };
    format!(
        "<item><instanceId>{id}</instanceId><imageId>{image}</imageId><instanceState>{state}</instanceState>{addr}<reason/>{key}<amiLaunchIndex>0</amiLaunchIndex><productCodes/><instanceType>{itype}</instanceType><launchTime>{launched}</launchTime><placement><availabilityZone>{zone}</availabilityZone><groupName/><tenancy>default</tenancy></placement><monitoring><state>disabled</state></monitoring>{vpc}<sourceDestCheck>true</sourceDestCheck><groupSet>{groups}</groupSet><architecture>x86_64</architecture><rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/sda1</rootDeviceName><virtualizationType>hvm</virtualizationType>{tags}<hypervisor>xen</hypervisor><ebsOptimized>false</ebsOptimized></item>",
        id = i.id,
        image = esc(&i.image),
        state = state_xml(&i.state),
        key = i
            .key_name
            .as_ref()
            .map(|k| format!("<keyName>{}</keyName>", esc(k)))
            .unwrap_or_default(),
        itype = esc(&i.instance_type),
        launched = i.launched,
        zone = i.zone,
        tags = tags_xml(&i.tags),
    )
}

fn group_xml(g: &Group) -> String {
    let perms: String = g
        .rules
        .iter()
        .map(|(proto, from, to, cidr)| {
            format!(
                "<item><ipProtocol>{proto}</ipProtocol><fromPort>{from}</fromPort><toPort>{to}</toPort><groups/><ipRanges><item><cidrIp>{cidr}</cidrIp></item></ipRanges><ipv6Ranges/><prefixListIds/></item>"
            )
        })
        .collect();
    format!(
        "<item><ownerId>123456789012</ownerId><groupId>{}</groupId><groupName>{}</groupName><groupDescription>{}</groupDescription><vpcId>{}</vpcId><ipPermissions>{perms}</ipPermissions><ipPermissionsEgress><item><ipProtocol>-1</ipProtocol><groups/><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges><ipv6Ranges/><prefixListIds/></item></ipPermissionsEgress>{}</item>",
        g.id,
        esc(&g.name),
        esc(&g.description),
        g.vpc,
        tags_xml(&g.tags)
    )
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_id(&self, prefix: &str) -> String {
        format!("{prefix}-{:017x}", self.next.fetch_add(1, Ordering::SeqCst))
    }

    /// SigV4 as AWS checks it: the credential scope, the signed headers, the payload hash.
    fn verify(&self, req: &Request) -> Result<(), Response> {
        let auth = req.header("authorization").ok_or_else(|| {
            error(
                401,
                "AuthFailure",
                "AWS was not able to validate the provided access credentials",
            )
        })?;
        let rest = auth
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or_else(auth_failure)?;
        let mut credential = "";
        let mut signed = "";
        let mut signature = "";
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = v;
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = v;
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = v;
            }
        }
        let scope: Vec<&str> = credential.split('/').collect();
        let [key, day, region, service, "aws4_request"] = scope.as_slice() else {
            return Err(auth_failure());
        };
        if *key != self.cfg.access_key || *region != self.cfg.region || *service != "ec2" {
            return Err(auth_failure());
        }
        let date = req.header("x-amz-date").unwrap_or_default();
        if !date.starts_with(day) || !signed.split(';').any(|h| h == "host") {
            return Err(auth_failure());
        }
        let mut headers = String::new();
        for name in signed.split(';') {
            let values: Vec<String> = req
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            headers.push_str(&format!("{name}:{}\n", values.join(",")));
        }
        let mut query: Vec<String> = req
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k, false), uri_encode(v, false)))
            .collect();
        query.sort();
        let canonical = format!(
            "{}\n{}\n{}\n{headers}\n{signed}\n{}",
            req.method,
            uri_encode(&req.path, true),
            query.join("&"),
            hex(&Sha256::digest(&req.body))
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{day}/{region}/{service}/aws4_request\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut k = hmac(
            format!("AWS4{}", self.cfg.secret_key).as_bytes(),
            day.as_bytes(),
        );
        for part in [*region, *service, "aws4_request"] {
            k = hmac(&k, part.as_bytes());
        }
        if hex(&hmac(&k, to_sign.as_bytes())) != signature {
            return Err(auth_failure());
        }
        Ok(())
    }

    fn handle(self: &Arc<Self>, req: &Request) -> Response {
        if let Err(denied) = self.verify(req) {
            return denied;
        }
        let p = params(req);
        let action = param(&p, "Action").unwrap_or_default().to_string();
        if param(&p, "Version").is_none() {
            return error(
                400,
                "MissingParameter",
                "The request must contain the parameter Version",
            );
        }
        match action.as_str() {
            "DescribeAccountAttributes" => ok(
                &action,
                &format!(
                    "<accountAttributeSet><item><attributeName>default-vpc</attributeName><attributeValueSet><item><attributeValue>{VPC}</attributeValue></item></attributeValueSet></item><item><attributeName>supported-platforms</attributeName><attributeValueSet><item><attributeValue>VPC</attributeValue></item></attributeValueSet></item></accountAttributeSet>"
                ),
            ),
            "DescribeRegions" => ok(
                &action,
                &format!(
                    "<regionInfo><item><regionName>{}</regionName><regionEndpoint>ec2.{}.amazonaws.com</regionEndpoint></item></regionInfo>",
                    self.cfg.region, self.cfg.region
                ),
            ),
            "DescribeVpcs" => ok(
                &action,
                &format!(
                    "<vpcSet><item><vpcId>{VPC}</vpcId><state>available</state><cidrBlock>{VPC_CIDR}</cidrBlock><isDefault>true</isDefault><instanceTenancy>default</instanceTenancy></item></vpcSet>"
                ),
            ),
            "DescribeSubnets" => self.describe_subnets(&action, &p),
            "DescribeImages" => self.describe_images(&action, &p),
            "DescribeKeyPairs" => self.describe_keys(&action, &p),
            "ImportKeyPair" => self.import_key(&action, &p),
            "DeleteKeyPair" => {
                let name = param(&p, "KeyName").unwrap_or_default();
                self.lock().keys.remove(name);
                ok(&action, "<return>true</return>")
            }
            "DescribeSecurityGroups" => self.describe_groups(&action, &p),
            "CreateSecurityGroup" => self.create_group(&action, &p),
            "AuthorizeSecurityGroupIngress" => self.authorize(&action, &p),
            "DeleteSecurityGroup" => self.delete_group(&action, &p),
            "RunInstances" => self.run_instances(&action, &p),
            "DescribeInstances" => self.describe_instances(&action, &p),
            "StartInstances" | "StopInstances" | "RebootInstances" | "TerminateInstances" => {
                self.power(&action, &p)
            }
            "CreateTags" => {
                let ids = numbered(&p, "ResourceId");
                let mut st = self.lock();
                for id in &ids {
                    let Some(i) = st.instances.get_mut(id) else {
                        return error(400, "InvalidID", &format!("The ID '{id}' is not valid"));
                    };
                    for n in 1.. {
                        let Some(k) = param(&p, &format!("Tag.{n}.Key")) else {
                            break;
                        };
                        let v = param(&p, &format!("Tag.{n}.Value")).unwrap_or_default();
                        i.tags.retain(|(tk, _)| tk != k);
                        i.tags.push((k.to_string(), v.to_string()));
                    }
                }
                ok(&action, "<return>true</return>")
            }
            "" => error(
                400,
                "MissingAction",
                "The request must contain the parameter Action",
            ),
            other => error(
                400,
                "InvalidAction",
                &format!("The action {other} is not valid for this web service."),
            ),
        }
    }

    fn describe_subnets(&self, action: &str, p: &[(String, String)]) -> Response {
        let ids = numbered(p, "SubnetId");
        for id in &ids {
            if !SUBNETS.iter().any(|s| s.0 == id) {
                return error(
                    400,
                    "InvalidSubnetID.NotFound",
                    &format!("The subnet ID '{id}' does not exist"),
                );
            }
        }
        let fs = filters(p);
        let items: String = SUBNETS
            .iter()
            .filter(|s| ids.is_empty() || ids.iter().any(|i| i == s.0))
            .filter(|s| {
                filter_ok(&fs, "vpc-id", VPC)
                    && filter_ok(&fs, "availability-zone", s.1)
                    && filter_ok(&fs, "subnet-id", s.0)
            })
            .map(|s| {
                format!(
                    "<item><subnetId>{}</subnetId><state>available</state><vpcId>{VPC}</vpcId><cidrBlock>{}</cidrBlock><availableIpAddressCount>4091</availableIpAddressCount><availabilityZone>{}</availabilityZone><defaultForAz>true</defaultForAz><mapPublicIpOnLaunch>true</mapPublicIpOnLaunch></item>",
                    s.0, s.2, s.1
                )
            })
            .collect();
        ok(action, &format!("<subnetSet>{items}</subnetSet>"))
    }

    fn describe_images(&self, action: &str, p: &[(String, String)]) -> Response {
        let ids = numbered(p, "ImageId");
        let owners = numbered(p, "Owner");
        let fs = filters(p);
        let items: String = IMAGES
            .iter()
            .filter(|i| ids.is_empty() || ids.iter().any(|x| x == i.0))
            .filter(|i| owners.is_empty() || owners.iter().any(|o| o == i.2))
            .filter(|i| filter_ok(&fs, "name", i.1) && filter_ok(&fs, "state", "available"))
            .map(|i| {
                format!(
                    "<item><imageId>{}</imageId><imageLocation>{}/{}</imageLocation><imageState>available</imageState><imageOwnerId>{}</imageOwnerId><creationDate>{}</creationDate><isPublic>true</isPublic><architecture>x86_64</architecture><imageType>machine</imageType><name>{}</name><rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/sda1</rootDeviceName><virtualizationType>hvm</virtualizationType></item>",
                    i.0, i.2, esc(i.1), i.2, i.3, esc(i.1)
                )
            })
            .collect();
        ok(action, &format!("<imagesSet>{items}</imagesSet>"))
    }

    fn key_xml(k: &KeyPair) -> String {
        format!(
            "<item><keyPairId>{}</keyPairId><keyFingerprint>{}</keyFingerprint><keyName>{}</keyName><keyType>ed25519</keyType><tagSet/></item>",
            k.id,
            k.fingerprint,
            esc(&k.name)
        )
    }

    fn describe_keys(&self, action: &str, p: &[(String, String)]) -> Response {
        let names = numbered(p, "KeyName");
        let st = self.lock();
        for n in &names {
            if !st.keys.contains_key(n) {
                return error(
                    400,
                    "InvalidKeyPair.NotFound",
                    &format!("The key pair '{n}' does not exist"),
                );
            }
        }
        let items: String = st
            .keys
            .values()
            .filter(|k| names.is_empty() || names.contains(&k.name))
            .map(Self::key_xml)
            .collect();
        ok(action, &format!("<keySet>{items}</keySet>"))
    }

    fn import_key(&self, action: &str, p: &[(String, String)]) -> Response {
        let name = param(p, "KeyName").unwrap_or_default().to_string();
        if name.is_empty() || name.len() > 255 {
            return error(
                400,
                "MissingParameter",
                "The request must contain the parameter KeyName",
            );
        }
        let material = param(p, "PublicKeyMaterial")
            .and_then(base64_decode)
            .and_then(|m| String::from_utf8(m).ok())
            .map(|m| m.trim().to_string())
            .unwrap_or_default();
        let Some(fp) = fingerprint(&material).filter(|_| {
            !material.contains('\n')
                && (material.starts_with("ssh-") || material.starts_with("ecdsa-"))
        }) else {
            return error(
                400,
                "InvalidKeyPair.Format",
                "Key is not in valid OpenSSH public key format",
            );
        };
        let mut st = self.lock();
        if st.keys.contains_key(&name) {
            return error(
                400,
                "InvalidKeyPair.Duplicate",
                &format!("The keypair '{name}' already exists."),
            );
        }
        let key = KeyPair {
            id: self.new_id("key"),
            name: name.clone(),
            fingerprint: fp,
            public_key: material,
        };
        st.keys.insert(name, key.clone());
        ok(
            action,
            &format!(
                "<keyFingerprint>{}</keyFingerprint><keyName>{}</keyName><keyPairId>{}</keyPairId>",
                key.fingerprint,
                esc(&key.name),
                key.id
            ),
        )
    }

    fn describe_groups(&self, action: &str, p: &[(String, String)]) -> Response {
        let ids = numbered(p, "GroupId");
        let names = numbered(p, "GroupName");
        let fs = filters(p);
        let st = self.lock();
        for id in &ids {
            if !st.groups.contains_key(id) {
                return error(
                    400,
                    "InvalidGroup.NotFound",
                    &format!("The security group '{id}' does not exist"),
                );
            }
        }
        let items: String = st
            .groups
            .values()
            .filter(|g| ids.is_empty() || ids.contains(&g.id))
            .filter(|g| names.is_empty() || names.contains(&g.name))
            .filter(|g| {
                filter_ok(&fs, "group-name", &g.name)
                    && filter_ok(&fs, "vpc-id", &g.vpc)
                    && filter_ok(&fs, "group-id", &g.id)
            })
            .map(group_xml)
            .collect();
        ok(
            action,
            &format!("<securityGroupInfo>{items}</securityGroupInfo>"),
        )
    }

    fn create_group(&self, action: &str, p: &[(String, String)]) -> Response {
        let name = param(p, "GroupName").unwrap_or_default().to_string();
        let description = param(p, "GroupDescription").unwrap_or_default().to_string();
        let vpc = param(p, "VpcId").unwrap_or(VPC).to_string();
        if name.is_empty() || description.is_empty() {
            return error(
                400,
                "MissingParameter",
                "The request must contain the parameters GroupName and GroupDescription",
            );
        }
        if vpc != VPC {
            return error(
                400,
                "InvalidVpcID.NotFound",
                &format!("The vpc ID '{vpc}' does not exist"),
            );
        }
        let mut st = self.lock();
        if st.groups.values().any(|g| g.name == name && g.vpc == vpc) {
            return error(
                400,
                "InvalidGroup.Duplicate",
                &format!("The security group '{name}' already exists for VPC '{vpc}'"),
            );
        }
        let id = self.new_id("sg");
        let tags = spec_tags(p, "security-group");
        st.groups.insert(
            id.clone(),
            Group {
                id: id.clone(),
                name,
                description,
                vpc,
                rules: Vec::new(),
                tags,
            },
        );
        ok(
            action,
            &format!("<return>true</return><groupId>{id}</groupId>"),
        )
    }

    fn authorize(&self, action: &str, p: &[(String, String)]) -> Response {
        let id = param(p, "GroupId").unwrap_or_default().to_string();
        let mut st = self.lock();
        let Some(g) = st.groups.get_mut(&id) else {
            return error(
                400,
                "InvalidGroup.NotFound",
                &format!("The security group '{id}' does not exist"),
            );
        };
        let mut new = Vec::new();
        for n in 1.. {
            let Some(proto) = param(p, &format!("IpPermissions.{n}.IpProtocol")) else {
                break;
            };
            let port = |k: &str| {
                param(p, &format!("IpPermissions.{n}.{k}"))
                    .and_then(|v| v.parse::<u16>().ok())
                    .unwrap_or(0)
            };
            let cidr =
                param(p, &format!("IpPermissions.{n}.IpRanges.1.CidrIp")).unwrap_or("0.0.0.0/0");
            let rule = (
                proto.to_string(),
                port("FromPort"),
                port("ToPort"),
                cidr.to_string(),
            );
            if g.rules.contains(&rule) || new.contains(&rule) {
                return error(
                    400,
                    "InvalidPermission.Duplicate",
                    &format!(
                        "the specified rule \"peer: {cidr}, {}, from port: {}, to port: {}, ALLOW\" already exists",
                        rule.0.to_uppercase(),
                        rule.1,
                        rule.2
                    ),
                );
            }
            new.push(rule);
        }
        g.rules.extend(new);
        ok(action, "<return>true</return>")
    }

    fn delete_group(&self, action: &str, p: &[(String, String)]) -> Response {
        let id = param(p, "GroupId").unwrap_or_default().to_string();
        let mut st = self.lock();
        if !st.groups.contains_key(&id) || id == DEFAULT_GROUP {
            return error(
                400,
                "InvalidGroup.NotFound",
                &format!("The security group '{id}' does not exist"),
            );
        }
        if st
            .instances
            .values()
            .any(|i| i.state != "terminated" && i.groups.contains(&id))
        {
            return error(
                400,
                "DependencyViolation",
                &format!("resource {id} has a dependent object"),
            );
        }
        st.groups.remove(&id);
        ok(action, "<return>true</return>")
    }

    fn run_instances(self: &Arc<Self>, action: &str, p: &[(String, String)]) -> Response {
        let image = param(p, "ImageId").unwrap_or_default().to_string();
        if !IMAGES.iter().any(|i| i.0 == image) {
            return error(
                400,
                "InvalidAMIID.NotFound",
                &format!("The image id '[{image}]' does not exist"),
            );
        }
        let instance_type = param(p, "InstanceType").unwrap_or("m1.small").to_string();
        if !INSTANCE_TYPES.contains(&instance_type.as_str()) {
            return error(
                400,
                "InvalidParameterValue",
                &format!("Invalid value '{instance_type}' for InstanceType."),
            );
        }
        let (min, max) = (
            param(p, "MinCount").and_then(|v| v.parse::<u32>().ok()),
            param(p, "MaxCount").and_then(|v| v.parse::<u32>().ok()),
        );
        if min != Some(1) || max != Some(1) {
            return error(
                400,
                "InvalidParameterValue",
                "this server runs exactly one instance per call (MinCount=MaxCount=1)",
            );
        }
        let subnet = param(p, "NetworkInterface.1.SubnetId")
            .or_else(|| param(p, "SubnetId"))
            .unwrap_or(SUBNETS[0].0)
            .to_string();
        let Some(&(_, subnet_zone, _)) = SUBNETS.iter().find(|s| s.0 == subnet) else {
            return error(
                400,
                "InvalidSubnetID.NotFound",
                &format!("The subnet ID '{subnet}' does not exist"),
            );
        };
        let zone = param(p, "Placement.AvailabilityZone")
            .unwrap_or(subnet_zone)
            .to_string();
        if zone != subnet_zone {
            return error(
                400,
                "InvalidParameterValue",
                &format!("Invalid Availability Zone ({zone})"),
            );
        }
        let mut groups = numbered(p, "NetworkInterface.1.SecurityGroupId");
        groups.extend(numbered(p, "SecurityGroupId"));
        let mut st = self.lock();
        for g in &groups {
            if !st.groups.contains_key(g) {
                return error(
                    400,
                    "InvalidGroup.NotFound",
                    &format!("The security group '{g}' does not exist"),
                );
            }
        }
        if groups.is_empty() {
            groups.push(DEFAULT_GROUP.into());
        }
        let key_name = param(p, "KeyName").map(str::to_string);
        let public_key = match &key_name {
            None => None,
            Some(k) => match st.keys.get(k) {
                Some(key) => Some(key.public_key.clone()),
                None => {
                    return error(
                        400,
                        "InvalidKeyPair.NotFound",
                        &format!("The key pair '{k}' does not exist"),
                    );
                }
            },
        };
        let running = st
            .instances
            .values()
            .filter(|i| i.state != "terminated")
            .count();
        if running >= self.cfg.max_instances {
            return error(
                400,
                "InstanceLimitExceeded",
                &format!(
                    "You have requested more instances ({}) than your current instance limit of {} allows for the specified instance type.",
                    running + 1,
                    self.cfg.max_instances
                ),
            );
        }
        let tags = spec_tags(p, "instance");
        let id = self.new_id("i");
        let inst = Instance {
            id: id.clone(),
            state: "pending".into(),
            image,
            instance_type,
            key_name,
            subnet,
            zone,
            groups,
            tags,
            user_data: param(p, "UserData").map(str::to_string),
            addr: None,
            root_size: param(p, "BlockDeviceMapping.1.Ebs.VolumeSize").and_then(|v| v.parse().ok()),
            launched: now(),
        };
        st.instances.insert(id.clone(), inst.clone());
        let shown = instance_xml(&inst, &st);
        drop(st);
        let me = self.clone();
        std::thread::spawn(move || {
            let booted = me.fleet.boot(&id, public_key.as_deref());
            let mut st = me.lock();
            match (st.instances.get_mut(&id), booted) {
                (Some(i), Ok(addr)) if i.state == "pending" => {
                    i.addr = Some(addr);
                    i.state = "running".into();
                }
                // Terminated while it booted: its host goes too (as EC2 frees it).
                (Some(i), Ok(_)) if i.state == "terminated" || i.state == "shutting-down" => {
                    drop(st);
                    me.fleet.delete(&id);
                }
                (Some(i), Ok(addr)) => i.addr = Some(addr),
                (Some(i), Err(e)) => {
                    eprintln!("ec2 test server: instance {id} did not boot: {e}");
                    i.state = "terminated".into();
                }
                (None, _) => {}
            }
        });
        ok(
            action,
            &format!(
                "<reservationId>{}</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>{shown}</instancesSet>",
                self.new_id("r")
            ),
        )
    }

    fn describe_instances(&self, action: &str, p: &[(String, String)]) -> Response {
        let ids = numbered(p, "InstanceId");
        let fs = filters(p);
        let st = self.lock();
        for id in &ids {
            if !st.instances.contains_key(id) {
                return error(
                    400,
                    "InvalidInstanceID.NotFound",
                    &format!("The instance ID '{id}' does not exist"),
                );
            }
        }
        let items: String = st
            .instances
            .values()
            .filter(|i| ids.is_empty() || ids.contains(&i.id))
            .filter(|i| filter_ok(&fs, "instance-state-name", &i.state))
            .filter(|i| tag_filters_ok(&fs, &i.tags))
            .filter(|i| {
                fs.iter()
                    .filter(|(n, _)| n == "instance.group-id")
                    .all(|(_, vs)| i.groups.iter().any(|g| vs.contains(g)))
            })
            .map(|i| {
                format!(
                    "<item><reservationId>r-{}</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>{}</instancesSet></item>",
                    &i.id[2..],
                    instance_xml(i, &st)
                )
            })
            .collect();
        ok(action, &format!("<reservationSet>{items}</reservationSet>"))
    }

    fn power(self: &Arc<Self>, action: &str, p: &[(String, String)]) -> Response {
        let ids = numbered(p, "InstanceId");
        if ids.is_empty() {
            return error(
                400,
                "MissingParameter",
                "The request must contain the parameter InstanceId",
            );
        }
        let mut st = self.lock();
        for id in &ids {
            if !st.instances.contains_key(id) {
                return error(
                    400,
                    "InvalidInstanceID.NotFound",
                    &format!("The instance ID '{id}' does not exist"),
                );
            }
        }
        let mut changes = String::new();
        for id in ids {
            let Some(i) = st.instances.get_mut(&id) else {
                continue;
            };
            let before = i.state.clone();
            let (now, allowed) = match action {
                "StopInstances" => (
                    "stopping",
                    matches!(before.as_str(), "running" | "stopping" | "stopped"),
                ),
                "StartInstances" => (
                    "pending",
                    matches!(before.as_str(), "stopped" | "running" | "pending"),
                ),
                "RebootInstances" => ("running", before == "running"),
                _ => ("shutting-down", true),
            };
            if !allowed {
                return error(
                    400,
                    "IncorrectInstanceState",
                    &format!(
                        "The instance '{id}' is not in a state from which it can be {}.",
                        action.trim_end_matches("Instances").to_lowercase()
                    ),
                );
            }
            if action == "RebootInstances" {
                let me = self.clone();
                let id2 = id.clone();
                std::thread::spawn(move || {
                    if let Err(e) = me.fleet.reboot(&id2) {
                        eprintln!("ec2 test server: reboot {id2}: {e}");
                    }
                });
                continue;
            }
            // Already there: nothing happens (EC2 answers with the same state).
            let settled = match action {
                "StopInstances" => before == "stopped" || before == "stopping",
                "StartInstances" => before == "running" || before == "pending",
                _ => before == "terminated" || before == "shutting-down",
            };
            if !settled {
                i.state = now.into();
                let me = self.clone();
                let id2 = id.clone();
                let action = action.to_string();
                std::thread::spawn(move || {
                    let (done, result) = match action.as_str() {
                        "StopInstances" => ("stopped", me.fleet.stop(&id2)),
                        "StartInstances" => ("running", me.fleet.start(&id2)),
                        _ => {
                            me.fleet.delete(&id2);
                            ("terminated", Ok(()))
                        }
                    };
                    if let Err(e) = &result {
                        eprintln!("ec2 test server: {action} {id2}: {e}");
                    }
                    let moved = (action == "StartInstances"
                        && result.is_ok()
                        && me.cfg.new_address_at_start)
                        .then(|| me.fleet.change_addr(&id2))
                        .and_then(|r| {
                            r.map_err(|e| eprintln!("ec2 test server: new address of {id2}: {e}"))
                                .ok()
                        });
                    if let Some(i) = me.lock().instances.get_mut(&id2) {
                        if moved.is_some() {
                            i.addr = moved;
                        }
                        i.state = done.into();
                        if done == "terminated" {
                            i.addr = None;
                        }
                    }
                });
            }
            let shown = st
                .instances
                .get(&id)
                .map(|i| i.state.clone())
                .unwrap_or_default();
            changes.push_str(&format!(
                "<item><instanceId>{id}</instanceId><currentState>{}</currentState><previousState>{}</previousState></item>",
                state_xml(&shown),
                state_xml(&before)
            ));
        }
        if action == "RebootInstances" {
            return ok(action, "<return>true</return>");
        }
        ok(action, &format!("<instancesSet>{changes}</instancesSet>"))
    }
}
