//! The local EC2 speaks the real API: AWS's official Python SDK (boto3, from the venv
//! scripts/setup makes) signs its requests (checked here), imports a key pair, makes a
//! security group, runs an instance (a testbed host), waits with boto3's own waiters for
//! running, stopped, running and terminated, and cleans up.

use std::process::Command;

use super::ec2::{Config, Ec2};
use super::openstack_fidelity::venv_python;

#[test]
fn ec2_fidelity() {
    if !dmw_testbed::require_root_or_skip("ec2_fidelity") {
        return;
    }
    let cloud = Ec2::start(Config::default());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/e2e/clouds/ec2_check.py"
    );
    let out = Command::new(venv_python())
        .arg(script)
        .env("CHECK_ENDPOINT", cloud.url())
        .env("CHECK_ACCESS_KEY", &cloud.config().access_key)
        .env("CHECK_SECRET_KEY", &cloud.config().secret_key)
        .env(
            "CHECK_PUBLIC_KEY",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC/MUJYFxX7GWTf6uaKkfjshLLoe3NPVIJNznmhQEUix fidelity",
        )
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap_or_else(|e| panic!("run {} (made by scripts/setup): {e}", venv_python()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("check: all passed"),
        "boto3 against the local EC2 failed:\n{stdout}\n{stderr}\nrequests:\n{}",
        cloud.http.request_lines().join("\n")
    );
    let requests = cloud.http.requests();
    assert!(
        requests
            .iter()
            .all(|(r, _)| r.header("user-agent").is_some_and(|u| u.contains("Boto3"))),
        "not every request came from boto3"
    );
    // Exactly the one wrong-secret call was refused; every other signature checked out.
    let refused = requests.iter().filter(|(_, s)| *s == 401).count();
    assert_eq!(refused, 1, "{}", cloud.http.request_lines().join("\n"));
    assert_eq!(cloud.leftovers(), Vec::<String>::new());
}
