//! The local OpenStack speaks the real API: OpenStack's official SDK (openstacksdk, from
//! the venv scripts/setup makes) runs its whole lifecycle against it.

use std::process::Command;

use super::openstack::{Config, OpenStack};

/// The venv's python (DMW_PY_VENV overrides the path scripts/setup uses).
pub fn venv_python() -> String {
    let venv =
        std::env::var("DMW_PY_VENV").unwrap_or_else(|_| "/var/cache/dmw-testbed/venv".to_string());
    format!("{venv}/bin/python")
}

#[test]
fn openstack_fidelity() {
    if !dmw_testbed::require_root_or_skip("openstack_fidelity") {
        return;
    }
    let cloud = OpenStack::start(Config::default());
    let cfg = cloud.config().clone();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/e2e/clouds/openstack_check.py"
    );
    let out = Command::new(venv_python())
        .arg(script)
        .env("CHECK_AUTH_URL", cloud.auth_url())
        .env("CHECK_USERNAME", &cfg.username)
        .env("CHECK_PASSWORD", &cfg.password)
        .env("CHECK_PROJECT_NAME", &cfg.project_name)
        .env("CHECK_APPLICATION_CREDENTIAL_ID", &cfg.app_credential.0)
        .env("CHECK_APPLICATION_CREDENTIAL_SECRET", &cfg.app_credential.2)
        .env(
            "CHECK_PUBLIC_KEY",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC/MUJYFxX7GWTf6uaKkfjshLLoe3NPVIJNznmhQEUix fidelity",
        )
        .env_remove("OS_CLOUD")
        .env_remove("OS_CLIENT_CONFIG_FILE")
        .output()
        .unwrap_or_else(|e| panic!("run {} (made by scripts/setup): {e}", venv_python()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("check: all passed"),
        "openstacksdk against the local OpenStack failed:\n{stdout}\n{stderr}\nrequests:\n{}",
        cloud.http.request_lines().join("\n")
    );
    let lines = cloud.http.request_lines();
    for want in [
        "GET /identity/v3 -> 200",
        "POST /identity/v3/auth/tokens -> 201",
        "POST /identity/v3/auth/tokens -> 401",
        "POST /compute/v2.1/servers -> 202",
        "POST /compute/v2.1/servers -> 400",
        "POST /network/v2.0/floatingips -> 201",
        "DELETE /compute/v2.1/servers/",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "no request {want:?} in:\n{}",
            lines.join("\n")
        );
    }
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
