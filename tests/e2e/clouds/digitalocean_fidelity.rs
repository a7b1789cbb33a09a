//! The local DigitalOcean speaks the real API: DigitalOcean's official Python client
//! (pydo, from the venv scripts/setup makes) runs a droplet's whole lifecycle against it.

use super::digitalocean::{Config, DigitalOcean};
use super::run_check;

#[test]
fn digitalocean_fidelity() {
    if !dmw_testbed::require_root_or_skip("digitalocean_fidelity") {
        return;
    }
    let cloud = DigitalOcean::start(Config::default());
    run_check(
        "pydo",
        "digitalocean_check.py",
        &cloud.http,
        &[
            ("CHECK_ENDPOINT", &cloud.url()),
            ("CHECK_TOKEN", &cloud.config().token),
        ],
        &["DIGITALOCEAN_ACCESS_TOKEN"],
        &[
            "GET /v2/regions -> 401",
            "POST /v2/account/keys -> 201",
            "POST /v2/account/keys -> 422",
            "POST /v2/droplets -> 202",
            "POST /v2/droplets/",
            "DELETE /v2/droplets/",
            "DELETE /v2/account/keys/",
        ],
    );
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
