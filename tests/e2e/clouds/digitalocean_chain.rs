//! `dmw create --driver digitalocean` against the local DigitalOcean: a droplet that is a
//! real testbed host, provisioned into a Docker host you can `docker run` on; ls, stop,
//! start, restart and rm work through the API's power actions; after rm no droplet, key or
//! host is left; the access token appears nowhere but in the 0600 machine record.

use super::digitalocean::{Config, DigitalOcean};
use crate::support::{Dmw, assert_secret_only_in_record, docker_run_ok, ls_row};

fn state(dmw: &Dmw, name: &str) -> String {
    let ls = dmw.ok(&["ls"]);
    ls_row(&ls, name)
        .and_then(|r| r.get(3).cloned())
        .unwrap_or_else(|| panic!("{name} not in ls:\n{ls}"))
}

#[test]
fn digitalocean_chain() {
    if !dmw_testbed::require_root_or_skip("digitalocean_chain") {
        return;
    }
    // DigitalOcean's burst limit answers the first create 429 with retry-after: the host
    // waits and sends it again.
    let cloud = DigitalOcean::start(Config {
        throttle_first_create: true,
        ..Config::default()
    });
    let dmw = Dmw::new();
    let token = cloud.config().token.clone();
    let userdata = dmw.storage.with_file_name("user-data.yml");
    std::fs::write(&userdata, "#cloud-config\npackages: []\n").expect("user data");
    let api = cloud.url();
    let out = dmw
        .command(&[
            "create",
            "--driver",
            "digitalocean",
            "--digitalocean-api-url",
            &api,
            "--digitalocean-image",
            "debian-12-x64",
            "--digitalocean-region",
            "ams3",
            "--digitalocean-tags",
            "dmw,e2e",
            "--digitalocean-userdata",
            &userdata.display().to_string(),
            "--engine-install-method",
            "distro",
            "do1",
        ])
        // The token from the environment, as Docker Machine users pass it.
        .env("DIGITALOCEAN_ACCESS_TOKEN", &token)
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
    assert!(stdout.contains("answered 429; retrying in 1 s"), "{stdout}");
    // What the driver was given for this machine: the API host from the URL typed.
    let api_host = api.trim_start_matches("http://").trim_end_matches('/');
    let granted = dmw.ok(&["plugin", "inspect", "--machine", "do1"]);
    assert!(
        granted.contains("for machine \"do1\":")
            && granted.contains(&format!("{api_host} (from a URL you typed)"))
            && granted.contains("http tls:   system roots only"),
        "{granted}"
    );
    let json = dmw.ok(&["plugin", "inspect", "--machine", "do1", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["machine"]["machine"], "do1", "{json}");
    assert!(
        v["machine"]["typed_hosts"]
            .as_array()
            .is_some_and(|h| !h.is_empty()),
        "{json}"
    );
    let creates: Vec<String> = cloud
        .http
        .request_lines()
        .into_iter()
        .filter(|l| l.starts_with("POST /v2/droplets ->"))
        .collect();
    assert_eq!(
        creates,
        vec!["POST /v2/droplets -> 429", "POST /v2/droplets -> 202"]
    );
    let droplets = cloud.droplets();
    assert_eq!(droplets.len(), 1);
    let d = &droplets[0];
    assert_eq!(
        (d.name.as_str(), d.region.as_str(), d.image.as_str()),
        ("do1", "ams3", "debian-12-x64")
    );
    // The user's tags, then the machine's own (rm finds the droplet by it if the create's
    // answer is lost).
    assert_eq!(d.tags[..2], ["dmw", "e2e"]);
    assert!(
        d.tags.len() == 3 && d.tags[2].starts_with("dmw:do1:"),
        "{:?}",
        d.tags
    );
    assert_eq!(
        d.user_data.as_deref(),
        Some("#cloud-config\npackages: []\n")
    );
    let keys = cloud.keys();
    assert_eq!(keys.len(), 1);
    let machine_pub =
        std::fs::read_to_string(dmw.machine_dir("do1").join("id_ssh.pub")).expect("pub");
    assert_eq!(keys[0].public_key.trim(), machine_pub.trim());

    docker_run_ok(&dmw, "do1");
    assert_eq!(state(&dmw, "do1"), "Running");
    dmw.ok(&["stop", "do1"]);
    assert_eq!(state(&dmw, "do1"), "Stopped");
    dmw.ok(&["start", "do1"]);
    assert_eq!(state(&dmw, "do1"), "Running");
    dmw.ok(&["restart", "do1"]);
    docker_run_ok(&dmw, "do1");

    // The token: nowhere in output or logs, only in the 0600 record (shown <redacted>).
    assert!(!stdout.contains(&token) && !stderr.contains(&token));
    assert_secret_only_in_record(&dmw, "do1", &token);
    let log = std::fs::read_to_string(dmw.machine_dir("do1").join("provision.log")).expect("log");
    assert!(
        log.contains(&format!("POST {api}/v2/droplets → 202")),
        "{log}"
    );

    let rm = dmw.ok(&["rm", "-y", "do1"]);
    assert!(rm.contains("Removed at DigitalOcean: SSH key"), "{rm}");
    assert_eq!(cloud.leftovers(), Vec::<String>::new());
}

#[test]
fn digitalocean_errors_are_clear_and_leave_nothing() {
    let cloud = DigitalOcean::start(Config::default());
    let dmw = Dmw::new();
    let api = cloud.url();
    // Bad credentials: the provider's words, the step, nothing made or kept.
    let create = |token: &str, extra: &[&str], name: &str| {
        let mut args = vec![
            "create",
            "-d",
            "digitalocean",
            "--digitalocean-api-url",
            &api,
            "--digitalocean-access-token",
            token,
        ];
        args.extend(extra);
        args.push(name);
        dmw.run(&args)
    };
    let r = create("wrong-token", &[], "bad");
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("Error creating machine \"bad\"")
            && r.stderr.contains("pre-create check")
            && r.stderr.contains("401: Unable to authenticate you"),
        "{r:?}"
    );
    assert!(
        !r.stderr.contains("wrong-token") && !r.stdout.contains("wrong-token"),
        "{r:?}"
    );
    assert!(!dmw.machine_dir("bad").exists());
    // An invalid size: the key uploaded first is deleted by rm.
    let token = cloud.config().token.clone();
    let r = create(&token, &["--digitalocean-size", "s-64vcpu-huge"], "big");
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("create machine failed")
            && r.stderr.contains("422: You specified an invalid size"),
        "{r:?}"
    );
    assert_eq!(
        cloud.keys().len(),
        1,
        "the key was uploaded before the droplet failed"
    );
    let rm = dmw.ok(&["rm", "-y", "big"]);
    assert!(rm.contains("Removed at DigitalOcean: SSH key"), "{rm}");
    assert_eq!(cloud.leftovers(), Vec::<String>::new());
    // A host it may not reach: the API URL decides the allow-list, not the driver.
    assert!(
        dmw.ok(&["plugin", "inspect", "builtin:digitalocean"])
            .contains("http hosts:  {digitalocean-api-url}")
    );
}
