//! The local EC2 speaks the real API: AWS's official Python SDK (boto3, from the venv
//! scripts/setup makes) signs its requests (checked here), imports a key pair, makes a
//! security group, runs an instance (a testbed host), waits with boto3's own waiters for
//! running, stopped, running and terminated, and cleans up.

use super::ec2::{Config, Ec2};
use super::run_check;

#[test]
fn ec2_fidelity() {
    if !dmw_testbed::require_root_or_skip("ec2_fidelity") {
        return;
    }
    let cloud = Ec2::start(Config::default());
    run_check(
        "boto3",
        "ec2_check.py",
        &cloud.http,
        &[
            ("CHECK_ENDPOINT", &cloud.url()),
            ("CHECK_ACCESS_KEY", &cloud.config().access_key),
            ("CHECK_SECRET_KEY", &cloud.config().secret_key),
        ],
        &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"],
        &[],
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
