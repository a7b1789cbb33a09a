//! The local DigitalOcean speaks the real API: DigitalOcean's official Python client
//! (pydo, from the venv scripts/setup makes) runs a droplet's whole lifecycle against it.

use std::process::Command;

use super::digitalocean::{Config, DigitalOcean};
use super::openstack_fidelity::venv_python;

#[test]
fn digitalocean_fidelity() {
    if !dmw_testbed::require_root_or_skip("digitalocean_fidelity") {
        return;
    }
    let cloud = DigitalOcean::start(Config::default());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/e2e/clouds/digitalocean_check.py"
    );
    let out = Command::new(venv_python())
        .arg(script)
        .env("CHECK_ENDPOINT", cloud.url())
        .env("CHECK_TOKEN", &cloud.config().token)
        .env(
            "CHECK_PUBLIC_KEY",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC/MUJYFxX7GWTf6uaKkfjshLLoe3NPVIJNznmhQEUix fidelity",
        )
        .env_remove("DIGITALOCEAN_ACCESS_TOKEN")
        .output()
        .unwrap_or_else(|e| panic!("run {} (made by scripts/setup): {e}", venv_python()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("check: all passed"),
        "pydo against the local DigitalOcean failed:\n{stdout}\n{stderr}\nrequests:\n{}",
        cloud.http.request_lines().join("\n")
    );
    let lines = cloud.http.request_lines();
    for want in [
        "GET /v2/regions -> 401",
        "POST /v2/account/keys -> 201",
        "POST /v2/account/keys -> 422",
        "POST /v2/droplets -> 202",
        "POST /v2/droplets/",
        "DELETE /v2/droplets/",
        "DELETE /v2/account/keys/",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "no request {want:?} in:\n{}",
            lines.join("\n")
        );
    }
    assert!(
        cloud
            .http
            .requests()
            .iter()
            .all(|(r, _)| r.header("user-agent").is_some_and(|u| u.contains("pydo"))),
        "not every request came from pydo"
    );
    assert_eq!(cloud.leftovers(), Vec::<String>::new());
}
