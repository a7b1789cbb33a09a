//! The local OpenStack speaks the real API: OpenStack's official SDK (openstacksdk, from
//! the venv scripts/setup makes) runs its whole lifecycle against it.

use super::openstack::{Config, OpenStack};
use super::run_check;

#[test]
fn openstack_fidelity() {
    if !dmw_testbed::require_root_or_skip("openstack_fidelity") {
        return;
    }
    let cloud = OpenStack::start(Config::default());
    let cfg = cloud.config().clone();
    run_check(
        "openstacksdk",
        "openstack_check.py",
        &cloud.http,
        &[
            ("CHECK_AUTH_URL", &cloud.auth_url()),
            ("CHECK_USERNAME", &cfg.username),
            ("CHECK_PASSWORD", &cfg.password),
            ("CHECK_PROJECT_NAME", &cfg.project_name),
            ("CHECK_APPLICATION_CREDENTIAL_ID", &cfg.app_credential.0),
            ("CHECK_APPLICATION_CREDENTIAL_SECRET", &cfg.app_credential.2),
        ],
        &["OS_CLOUD", "OS_CLIENT_CONFIG_FILE"],
        &[
            "GET /identity/v3 -> 200",
            "POST /identity/v3/auth/tokens -> 201",
            "POST /identity/v3/auth/tokens -> 401",
            "POST /compute/v2.1/servers -> 202",
            "POST /compute/v2.1/servers -> 400",
            "POST /network/v2.0/floatingips -> 201",
            "DELETE /compute/v2.1/servers/",
        ],
    );
    // Nova answered with the microversion the SDK negotiated.
    assert!(
        cloud
            .http
            .requests()
            .iter()
            .any(|(r, _)| r.header("openstack-api-version").is_some()),
        "the SDK sent no microversion"
    );
    assert_eq!(cloud.leftovers(), Vec::<String>::new());
}
