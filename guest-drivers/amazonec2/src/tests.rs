//! The driver against a scripted EC2 (Query API shapes of the 2016-11-15 reference).

use super::*;
use dmw_guest::http::{HttpError, Request as Req};
use dmw_guest::mock;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

#[derive(Default)]
struct Fake {
    keys: Vec<String>,
    groups: Vec<(String, String)>,
    rules: Vec<(String, String)>,
    instances: BTreeMap<String, String>,
    fail_run: bool,
    /// The launch works but its answer is lost (the connection drops).
    lose_run_answer: bool,
    /// The owner tag of each instance launched.
    owners: BTreeMap<String, String>,
    last_run: Vec<(String, String)>,
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let dec = |s: &str| {
                let mut out = Vec::new();
                let b = s.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    if b[i] == b'%' && i + 2 < b.len() {
                        out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("hex"));
                        i += 3;
                    } else if b[i] == b'+' {
                        out.push(b' ');
                        i += 1;
                    } else {
                        out.push(b[i]);
                        i += 1;
                    }
                }
                String::from_utf8(out).expect("utf8")
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn ok(action: &str, inner: &str) -> Response {
    Response::new(
        200,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{NS}\"><requestId>r-1</requestId>{inner}</{action}Response>"
        ),
    )
}

fn err(status: u16, code: &str, message: &str) -> Response {
    Response::new(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>r-2</RequestID></Response>"
        ),
    )
}

fn fake() -> Rc<RefCell<Fake>> {
    mock::reset();
    mock::set_machine_public_key("ssh-ed25519 AAAATEST dmw");
    let state = Rc::new(RefCell::new(Fake::default()));
    let s = state.clone();
    mock::on_http(move |r: &Req| -> std::result::Result<Response, HttpError> {
        let auth = r.header_value("authorization").unwrap_or_default();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
                && auth.contains("/eu-west-1/ec2/aws4_request"),
            "{auth}"
        );
        assert!(r.header_value("x-amz-date").is_some());
        assert_eq!(r.url, "http://ec2.test:8080/");
        let params = form(&r.body);
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(get("Version"), "2016-11-15");
        let mut f = s.borrow_mut();
        let action = get("Action");
        Ok(match action.as_str() {
            "DescribeSubnets" => ok(
                &action,
                "<subnetSet><item><subnetId>subnet-1</subnetId><vpcId>vpc-1</vpcId><defaultForAz>false</defaultForAz></item></subnetSet>",
            ),
            "DescribeKeyPairs" if f.keys.contains(&get("KeyName.1")) => ok(
                &action,
                &format!(
                    "<keySet><item><keyName>{}</keyName></item></keySet>",
                    get("KeyName.1")
                ),
            ),
            "DescribeKeyPairs" => err(
                400,
                "InvalidKeyPair.NotFound",
                "The key pair does not exist",
            ),
            "ImportKeyPair" => {
                assert_eq!(
                    get("PublicKeyMaterial"),
                    base64::engine::general_purpose::STANDARD.encode("ssh-ed25519 AAAATEST dmw")
                );
                f.keys.push(get("KeyName"));
                ok(
                    &action,
                    &format!(
                        "<keyName>{}</keyName><keyPairId>key-1</keyPairId>",
                        get("KeyName")
                    ),
                )
            }
            "DeleteKeyPair" => {
                let k = get("KeyName");
                f.keys.retain(|x| *x != k);
                ok(&action, "<return>true</return>")
            }
            "DescribeSecurityGroups" => {
                assert_eq!(get("Filter.2.Value.1"), "vpc-1");
                let name = get("Filter.1.Value.1");
                let found: String = f
                    .groups
                    .iter()
                    .filter(|g| g.1 == name)
                    .map(|g| format!("<item><groupId>{}</groupId><groupName>{}</groupName><ipPermissions/></item>", g.0, g.1))
                    .collect();
                ok(
                    &action,
                    &format!("<securityGroupInfo>{found}</securityGroupInfo>"),
                )
            }
            "CreateSecurityGroup" => {
                assert_eq!(get("GroupDescription"), "Docker Machine");
                f.groups.push(("sg-1".into(), get("GroupName")));
                ok(&action, "<return>true</return><groupId>sg-1</groupId>")
            }
            "AuthorizeSecurityGroupIngress" => {
                for n in 1..=3 {
                    let port = get(&format!("IpPermissions.{n}.FromPort"));
                    if !port.is_empty() {
                        f.rules.push((get("GroupId"), port));
                    }
                }
                ok(&action, "<return>true</return>")
            }
            "DeleteSecurityGroup" => {
                let g = get("GroupId");
                if f.instances.values().any(|s| s != "terminated") {
                    err(
                        400,
                        "DependencyViolation",
                        "resource sg-1 has a dependent object",
                    )
                } else {
                    f.groups.retain(|x| x.0 != g);
                    ok(&action, "<return>true</return>")
                }
            }
            "RunInstances" if f.fail_run => err(
                400,
                "InvalidAMIID.NotFound",
                "The image id '[ami-nope]' does not exist",
            ),
            "RunInstances" => {
                f.last_run = params.clone();
                f.instances.insert("i-0abc".into(), "pending".into());
                let owner = (1..)
                    .map_while(|n| {
                        let k = get(&format!("TagSpecification.1.Tag.{n}.Key"));
                        (!k.is_empty())
                            .then(|| (k, get(&format!("TagSpecification.1.Tag.{n}.Value"))))
                    })
                    .find(|(k, _)| k == "dmw-owner")
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                f.owners.insert("i-0abc".into(), owner);
                if f.lose_run_answer {
                    return Err(HttpError::Transport {
                        url: r.url.clone(),
                        message: "connection reset".into(),
                    });
                }
                ok(
                    &action,
                    "<reservationId>r-1</reservationId><instancesSet><item><instanceId>i-0abc</instanceId><instanceState><code>0</code><name>pending</name></instanceState></item></instancesSet>",
                )
            }
            "DescribeInstances" if get("InstanceId.1").is_empty() => {
                // By filter: the owner tag (the only one the driver asks by).
                assert_eq!(get("Filter.1.Name"), "tag:dmw-owner");
                let want = get("Filter.1.Value.1");
                let found: String = f
                    .instances
                    .iter()
                    .filter(|(id, st)| {
                        f.owners.get(*id) == Some(&want) && st.as_str() != "terminated"
                    })
                    .map(|(id, st)| {
                        format!(
                            "<item><instancesSet><item><instanceId>{id}</instanceId><instanceState><code>16</code><name>{st}</name></instanceState></item></instancesSet></item>"
                        )
                    })
                    .collect();
                ok(
                    &action,
                    &format!("<reservationSet>{found}</reservationSet>"),
                )
            }
            "DescribeInstances" => {
                let id = get("InstanceId.1");
                match f.instances.get_mut(&id) {
                    None => err(
                        400,
                        "InvalidInstanceID.NotFound",
                        &format!("The instance ID '{id}' does not exist"),
                    ),
                    Some(st) => {
                        let shown = st.clone();
                        *st = match st.as_str() {
                            "pending" => "running".into(),
                            "stopping" => "stopped".into(),
                            "shutting-down" => "terminated".into(),
                            other => other.into(),
                        };
                        let ip = if shown == "running" {
                            "<ipAddress>192.0.2.9</ipAddress>"
                        } else {
                            ""
                        };
                        ok(
                            &action,
                            &format!(
                                "<reservationSet><item><instancesSet><item><instanceId>{id}</instanceId><instanceState><code>16</code><name>{shown}</name></instanceState><privateIpAddress>10.0.0.4</privateIpAddress>{ip}<networkInterfaceSet><item><attachment><status>x</status></attachment></item></networkInterfaceSet></item></instancesSet></item></reservationSet>"
                            ),
                        )
                    }
                }
            }
            "StopInstances" | "StartInstances" | "RebootInstances" | "TerminateInstances" => {
                let id = get("InstanceId.1");
                match f.instances.get_mut(&id) {
                    None => err(400, "InvalidInstanceID.NotFound", "gone"),
                    Some(st) => {
                        *st = match action.as_str() {
                            "StopInstances" => "stopping",
                            "StartInstances" => "pending",
                            "TerminateInstances" => "shutting-down",
                            _ => st.as_str(),
                        }
                        .to_string();
                        ok(&action, "<instancesSet/>")
                    }
                }
            }
            other => err(400, "InvalidAction", &format!("no action {other}")),
        })
    });
    state
}

fn configure(extra: &[(&str, &str)]) {
    let mut pairs = vec![
        ("amazonec2-access-key", "AKIDTEST"),
        ("amazonec2-secret-key", SECRET),
        ("amazonec2-endpoint", "http://ec2.test:8080/"),
        ("amazonec2-region", "eu-west-1"),
        ("amazonec2-ami", "ami-123"),
        ("amazonec2-subnet-id", "subnet-1"),
        ("amazonec2-tags", "team,dmw, env,test"),
        ("amazonec2-userdata", "#cloud-config\n"),
    ];
    pairs.extend_from_slice(extra);
    AmazonEc2::set_config("m1", &Flags::of(&pairs)).expect("config");
}

#[test]
fn lifecycle_imports_the_key_makes_a_group_and_removes_everything() {
    let state = fake();
    configure(&[]);
    AmazonEc2::pre_create_check().expect("check");
    assert_eq!(mock::store().get(VPC_ID).map(String::as_str), Some("vpc-1"));
    AmazonEc2::create().expect("create");
    let store = mock::store();
    assert_eq!(store.get(IMPORTED_KEY).map(String::as_str), Some("m1"));
    assert_eq!(store.get(CREATED_GROUPS).map(String::as_str), Some("sg-1"));
    assert_eq!(store.get(INSTANCE_ID).map(String::as_str), Some("i-0abc"));
    assert_eq!(AmazonEc2::address().expect("ip"), "192.0.2.9");
    {
        let f = state.borrow();
        assert_eq!(
            f.rules,
            vec![
                ("sg-1".to_string(), "22".to_string()),
                ("sg-1".into(), "2376".into())
            ]
        );
        let run: BTreeMap<_, _> = f.last_run.iter().cloned().collect();
        assert_eq!(run["ImageId"], "ami-123");
        assert_eq!(run["Placement.AvailabilityZone"], "eu-west-1a");
        assert_eq!(run["NetworkInterface.1.SecurityGroupId.1"], "sg-1");
        assert_eq!(run["UserData"], "I2Nsb3VkLWNvbmZpZwo=");
        assert_eq!(run["TagSpecification.1.Tag.1.Value"], "m1");
        assert_eq!(run["TagSpecification.1.Tag.3.Key"], "env");
        assert_eq!(run["BlockDeviceMapping.1.Ebs.VolumeSize"], "16");
    }
    assert_eq!(AmazonEc2::state().expect("state"), MachineState::Running);
    AmazonEc2::stop().expect("stop");
    assert_eq!(AmazonEc2::state().expect("state"), MachineState::Stopping);
    assert_eq!(AmazonEc2::state().expect("state"), MachineState::Stopped);
    AmazonEc2::start().expect("start");
    AmazonEc2::restart().expect("restart");
    AmazonEc2::remove().expect("remove");
    {
        let f = state.borrow();
        assert!(f.keys.is_empty() && f.groups.is_empty(), "{:?}", f.groups);
        assert_eq!(f.instances["i-0abc"], "terminated");
    }
    let logs: Vec<String> = mock::logs().into_iter().map(|(_, m)| m).collect();
    assert!(
        logs.iter()
            .any(|l| l == "Removed at EC2: instance i-0abc, key pair m1, security group sg-1"),
        "{logs:?}"
    );
    assert!(!logs.iter().any(|l| l.contains(SECRET)), "{logs:?}");
    let holders: Vec<String> = mock::store()
        .into_iter()
        .filter(|(_, v)| v.contains(SECRET))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(holders, vec!["secret:secret-key"]);
    AmazonEc2::remove().expect("again");
    assert!(
        mock::logs()
            .iter()
            .any(|(_, m)| m == "Nothing to remove at EC2")
    );
}

/// The launch's answer is lost: the create fails, and `rm` finds the instance by the owner
/// tag recorded before the launch, terminates it, and removes the key pair and group.
#[test]
fn an_instance_whose_launch_answer_was_lost_is_found_by_its_owner_tag() {
    let state = fake();
    state.borrow_mut().lose_run_answer = true;
    configure(&[]);
    AmazonEc2::pre_create_check().expect("check");
    AmazonEc2::create().expect_err("the answer is lost");
    assert_eq!(mock::store().get(INSTANCE_ID), None);
    assert!(mock::store().contains_key(OWNER_TAG));
    AmazonEc2::remove().expect("remove");
    let f = state.borrow();
    assert_eq!(
        f.instances.get("i-0abc").map(String::as_str),
        Some("terminated"),
        "{:?}",
        f.instances
    );
    assert!(f.keys.is_empty() && f.groups.is_empty());
    assert_eq!(mock::store().get(OWNER_TAG), None);
}

#[test]
fn a_failed_launch_keeps_what_was_made_for_rm() {
    let state = fake();
    state.borrow_mut().fail_run = true;
    configure(&[]);
    AmazonEc2::pre_create_check().expect("check");
    let err = AmazonEc2::create().expect_err("bad ami");
    assert!(
        matches!(&err, Error::InvalidInput(m) if m == "launch the instance: EC2 answered 400 InvalidAMIID.NotFound: The image id '[ami-nope]' does not exist"),
        "{err:?}"
    );
    assert_eq!(
        mock::store().get(IMPORTED_KEY).map(String::as_str),
        Some("m1")
    );
    AmazonEc2::remove().expect("remove");
    let f = state.borrow();
    assert!(f.keys.is_empty() && f.groups.is_empty());
}

#[test]
fn an_existing_key_pair_name_is_refused_before_anything_is_made() {
    let state = fake();
    state.borrow_mut().keys.push("m1".into());
    configure(&[]);
    let err = AmazonEc2::pre_create_check().expect_err("dup");
    assert!(
        err.message()
            .contains("There is already a keypair with the name m1"),
        "{err:?}"
    );
}

#[test]
fn auth_failures_are_denied_with_ec2s_words() {
    mock::reset();
    mock::on_http(|_| {
        Ok(err(
            401,
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
        ))
    });
    configure(&[]);
    let e = AmazonEc2::pre_create_check().expect_err("401");
    assert!(
        matches!(&e, Error::Denied(m) if m == "look up subnet subnet-1: EC2 answered 401 AuthFailure: AWS was not able to validate the provided access credentials"),
        "{e:?}"
    );
}

#[test]
fn flags_are_checked() {
    mock::reset();
    let e = AmazonEc2::set_config("m", &Flags::of(&[])).expect_err("no creds");
    assert!(e.message().contains("--amazonec2-access-key"), "{e:?}");
    let base = [("amazonec2-access-key", "a"), ("amazonec2-secret-key", "s")];
    for bad in [
        ("amazonec2-tags", "a,b,c"),
        ("amazonec2-open-port", "x/tcp"),
        ("amazonec2-endpoint", "ftp://x"),
        ("amazonec2-region", "US East"),
        ("amazonec2-keypair-name", "k"),
        ("amazonec2-spot-price", "free"),
    ] {
        let mut pairs = base.to_vec();
        pairs.push(bad);
        assert!(
            AmazonEc2::set_config("m", &Flags::of(&pairs)).is_err(),
            "{bad:?}"
        );
    }
    let mut pairs = base.to_vec();
    pairs.push(("amazonec2-endpoint", "ec2.example.org"));
    AmazonEc2::set_config("m", &Flags::of(&pairs)).expect("host-only endpoint");
    assert_eq!(
        mock::store().get(ENDPOINT).map(String::as_str),
        Some("https://ec2.example.org")
    );
    // Without an endpoint the region's is used, and the zone is region + letter.
    mock::reset();
    AmazonEc2::set_config("m", &Flags::of(&base)).expect("defaults");
    assert_eq!(
        endpoint().expect("ep"),
        "https://ec2.us-east-1.amazonaws.com"
    );
    assert_eq!(placement_zone().expect("zone"), "us-east-1a");
    assert_eq!(
        mock::store().get(GROUPS).map(String::as_str),
        Some("docker-machine")
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// EC2 answers (XML) that lost a tag or its text, got cut or came with another status
    /// never make the driver panic: pre-create check, create, state, address and remove
    /// each end with an answer or an error.
    #[test]
    fn spoiled_api_answers_never_panic(
        plan in mock::spoil_plans(24),
    ) {
        let _state = fake();
        configure(&[]);
        mock::spoil_answers(plan);
        if AmazonEc2::pre_create_check().is_ok() && AmazonEc2::create().is_ok() {
            let _ = AmazonEc2::state();
            let _ = AmazonEc2::address();
        }
        let _ = AmazonEc2::remove();
    }
}
