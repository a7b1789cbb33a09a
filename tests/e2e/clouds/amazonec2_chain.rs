//! `dmw create --driver amazonec2` against the local EC2: an instance that is a real
//! testbed host, provisioned into a Docker host you can `docker run` on; stop, start and
//! restart go through the API; after rm no instance, key pair, security group or host is
//! left; the secret key appears nowhere but in the 0600 machine record.

use super::ec2::{Config, Ec2};
use crate::support::{Dmw, docker_run_ok, files_containing, ls_row};

/// A session token (temporary credentials), passed as AWS_SESSION_TOKEN.
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEdmwLocalSessionToken0123456789";

#[test]
fn amazonec2_chain() {
    if !dmw_testbed::require_root_or_skip("amazonec2_chain") {
        return;
    }
    // An instance started again gets a new public address (EC2 without an Elastic IP).
    let cloud = Ec2::start(Config {
        new_address_at_start: true,
        ..Config::default()
    });
    let dmw = Dmw::new();
    let (key, secret) = (
        cloud.config().access_key.clone(),
        cloud.config().secret_key.clone(),
    );
    let userdata = dmw.storage.with_file_name("user-data.yml");
    std::fs::write(&userdata, "#cloud-config\npackages: []\n").expect("user data");
    let endpoint = cloud.url();
    let out = dmw
        .command(&[
            "create",
            "--driver",
            "amazonec2",
            "--amazonec2-endpoint",
            &endpoint,
            "--amazonec2-ami",
            "ami-0d3a1c000000deb12",
            "--amazonec2-ssh-user",
            "root",
            "--amazonec2-tags",
            "team,dmw",
            "--amazonec2-open-port",
            "8080/tcp",
            "--amazonec2-userdata",
            &userdata.display().to_string(),
            "--engine-install-method",
            "distro",
            "ec2",
        ])
        // The credentials from the environment, as Docker Machine users pass them.
        .env("AWS_ACCESS_KEY_ID", &key)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .output()
        .expect("create");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "create failed:\n{stdout}\n{stderr}\nrequests:\n{}",
        cloud.http.request_lines().join("\n")
    );
    assert!(stdout.contains("Docker is up and running!"), "{stdout}");
    let instances = cloud.instances();
    assert_eq!(instances.len(), 1);
    let i = &instances[0];
    assert_eq!(i.image, "ami-0d3a1c000000deb12");
    assert_eq!(i.zone, "us-east-1a");
    assert_eq!(i.root_size, Some(16));
    assert_eq!(
        i.tags[..2],
        [
            ("Name".to_string(), "ec2".to_string()),
            ("team".into(), "dmw".into())
        ]
    );
    // The machine's own tag, recorded before the launch (`rm` finds the instance by it if
    // the launch's answer is lost).
    assert_eq!(i.tags.len(), 3, "{:?}", i.tags);
    assert_eq!(i.tags[2].0, "dmw-owner");
    assert!(i.tags[2].1.starts_with("dmw:ec2:"), "{:?}", i.tags);
    assert_eq!(
        i.user_data.as_deref(),
        Some("I2Nsb3VkLWNvbmZpZwpwYWNrYWdlczogW10K"),
        "base64 of the file"
    );
    let keys = cloud.key_pairs();
    assert_eq!(keys.len(), 1);
    let machine_pub =
        std::fs::read_to_string(dmw.machine_dir("ec2").join("id_ssh.pub")).expect("pub");
    assert_eq!(keys[0].public_key.trim(), machine_pub.trim());
    let groups = cloud.groups();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, "docker-machine");
    let ports: Vec<u16> = groups[0].rules.iter().map(|r| r.1).collect();
    assert_eq!(ports, vec![22, 2376, 8080]);
    assert_eq!(i.groups, vec![groups[0].id.clone()]);

    docker_run_ok(&dmw, "ec2");
    let status = || dmw.ok(&["status", "ec2"]).trim().to_string();
    assert_eq!(status(), "Running");
    let before = dmw.ok(&["url", "ec2"]);
    dmw.ok(&["stop", "ec2"]);
    assert_eq!(status(), "Stopped");
    // `start` follows the instance to its new address: the record takes it, the server
    // certificate is re-issued for it, and the engine answers there (no x509 error).
    let start = dmw.ok(&["start", "ec2"]);
    assert_eq!(status(), "Running");
    let after = dmw.ok(&["url", "ec2"]);
    assert_ne!(before.trim(), after.trim(), "{start}");
    let new = after
        .trim()
        .trim_start_matches("tcp://")
        .trim_end_matches(":2376");
    assert!(
        start.contains(&format!("came up at a new address {new}"))
            && start.contains("Regenerating TLS certificates"),
        "{start}"
    );
    let row = ls_row(&dmw.ok(&["ls"]), "ec2").expect("listed").join(" ");
    assert!(!row.contains("does not name"), "{row}");
    docker_run_ok(&dmw, "ec2");
    dmw.ok(&["restart", "ec2"]);
    docker_run_ok(&dmw, "ec2");

    // The secret: nowhere in output or logs, only in the 0600 record (shown <redacted>).
    assert!(!stdout.contains(&secret) && !stderr.contains(&secret));
    let record = dmw.machine_dir("ec2").join("config.json");
    assert_eq!(
        files_containing(&dmw.storage, &secret),
        vec![record.clone()]
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&record)
        .expect("record")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let inspect = dmw.ok(&["inspect", "ec2"]);
    assert!(
        !inspect.contains(&secret) && inspect.contains("<redacted>"),
        "{inspect}"
    );

    // The session token is signed into every request and kept like the secret.
    assert_eq!(
        files_containing(&dmw.storage, SESSION_TOKEN),
        vec![record.clone()]
    );
    assert!(
        cloud
            .http
            .requests()
            .iter()
            .all(
                |(r, _)| r.header("x-amz-security-token") == Some(SESSION_TOKEN)
                    && r.header("authorization")
                        .is_some_and(|a| a.contains("x-amz-security-token"))
            ),
        "a request without the session token"
    );

    let rm = dmw.ok(&["rm", "-y", "ec2"]);
    assert!(
        rm.contains("Removed at EC2: instance i-")
            && rm.contains("key pair ec2")
            && rm.contains("security group sg-"),
        "{rm}"
    );
    assert_eq!(cloud.leftovers(), Vec::<String>::new());
    // Every request was signed with the right key (none refused).
    assert!(
        cloud.http.requests().iter().all(|(_, s)| *s != 401),
        "{}",
        cloud.http.request_lines().join("\n")
    );
}

#[test]
fn amazonec2_errors_are_clear_and_leave_nothing() {
    let cloud = Ec2::start(Config::default());
    let dmw = Dmw::new();
    let endpoint = cloud.url();
    let key = cloud.config().access_key.clone();
    let secret = cloud.config().secret_key.clone();
    let create = |name: &str, secret: &str, extra: &[&str]| {
        let mut args = vec![
            "create",
            "-d",
            "amazonec2",
            "--amazonec2-endpoint",
            &endpoint,
            "--amazonec2-access-key",
            &key,
            "--amazonec2-secret-key",
            secret,
        ];
        args.extend_from_slice(extra);
        args.push(name);
        dmw.run(&args)
    };
    // A wrong secret: EC2's words, the step, nothing made or kept, the secret not shown.
    let r = create("bad", "wrong-secret-value", &[]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("Error creating machine \"bad\"")
            && r.stderr.contains("pre-create check")
            && r.stderr
                .contains("401 AuthFailure: AWS was not able to validate"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("wrong-secret-value") && !r.stdout.contains("wrong-secret-value"));
    assert!(!dmw.machine_dir("bad").exists());
    // An image that does not exist: the key pair and group made first are removed by rm.
    let r = create("noami", &secret, &["--amazonec2-ami", "ami-0000000000nope"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("create machine failed")
            && r.stderr.contains(
                "InvalidAMIID.NotFound: The image id '[ami-0000000000nope]' does not exist"
            ),
        "{r:?}"
    );
    assert_eq!(cloud.key_pairs().len(), 1);
    assert_eq!(cloud.groups().len(), 1);
    let rm = dmw.ok(&["rm", "-y", "noami"]);
    assert!(
        rm.contains("Removed at EC2: key pair noami, security group sg-"),
        "{rm}"
    );
    assert_eq!(cloud.leftovers(), Vec::<String>::new());
    // A quota error (EC2's InstanceLimitExceeded): its words; rm removes what was made.
    let full = Ec2::start(Config {
        max_instances: 0,
        ..Config::default()
    });
    let full_url = full.url();
    let r = dmw.run(&[
        "create",
        "-d",
        "amazonec2",
        "--amazonec2-endpoint",
        &full_url,
        "--amazonec2-access-key",
        &key,
        "--amazonec2-secret-key",
        &secret,
        "--amazonec2-ami",
        "ami-0d3a1c000000deb12",
        "quota",
    ]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("launch the instance: EC2 answered 400 InstanceLimitExceeded: You have requested more instances (1) than your current instance limit of 0"),
        "{r:?}"
    );
    dmw.ok(&["rm", "-y", "quota"]);
    assert_eq!(full.leftovers(), Vec::<String>::new());
    // The allow-list is the endpoint's host (or the region's EC2 endpoint), nothing else.
    let inspect = dmw.ok(&["plugin", "inspect", "builtin:amazonec2"]);
    assert!(
        inspect.contains(
            "http hosts:  {amazonec2-endpoint} (the host of a URL you type in --amazonec2-endpoint), ec2.us-east-1.amazonaws.com"
        ),
        "{inspect}"
    );
}

#[test]
fn amazonec2_no_provision_then_provision() {
    if !dmw_testbed::require_root_or_skip("amazonec2_no_provision_then_provision") {
        return;
    }
    let cloud = Ec2::start(Config::default());
    let dmw = Dmw::new();
    let endpoint = cloud.url();
    let key = cloud.config().access_key.clone();
    let secret = cloud.config().secret_key.clone();
    let out = dmw.ok(&[
        "create",
        "-d",
        "amazonec2",
        "--amazonec2-endpoint",
        &endpoint,
        "--amazonec2-access-key",
        &key,
        "--amazonec2-secret-key",
        &secret,
        "--amazonec2-ami",
        "ami-0d3a1c000000deb12",
        "--amazonec2-ssh-user",
        "root",
        "--engine-install-method",
        "distro",
        "--no-provision",
        "np",
    ]);
    assert!(out.contains("not provisioned (--no-provision)"), "{out}");
    assert!(!out.contains("Waiting for SSH"), "{out}");
    let ls = dmw.ok(&["ls"]);
    assert!(
        ls.contains("--no-provision") && ls.contains("dmw provision np"),
        "{ls}"
    );
    // `dmw provision` finishes it: SSH, the engine, TLS.
    dmw.ok(&["provision", "np"]);
    docker_run_ok(&dmw, "np");
    dmw.ok(&["rm", "-y", "np"]);
    assert_eq!(cloud.leftovers(), Vec::<String>::new());
}
