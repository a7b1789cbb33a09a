//! Local cloud test servers: small servers speaking the providers' real APIs (checked
//! with the providers' official clients), whose instances are real testbed hosts.
//! Shared by several clouds' tests, so not every helper is used by each.
#![allow(dead_code)]

pub mod churn;
pub mod digitalocean;
pub mod ec2;
pub mod fleet;
pub mod openstack;
pub mod server;

/// The venv's python (DMW_PY_VENV overrides the path scripts/setup uses).
pub fn venv_python() -> std::path::PathBuf {
    dmw_testbed::venv_program("python")
}

/// The public key the fidelity scripts import.
pub const CHECK_PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC/MUJYFxX7GWTf6uaKkfjshLLoe3NPVIJNznmhQEUix fidelity";

/// Run a provider's official client against a local cloud: `tests/e2e/clouds/{script}`
/// with the venv's python, `env` set (and `CHECK_PUBLIC_KEY`) and `unset` removed; it must
/// print `check: all passed`, and each of `want` must start a request line `http` saw
/// (`client` names the client in failure messages).
pub fn run_check(
    client: &str,
    script: &str,
    http: &server::Server,
    env: &[(&str, &str)],
    unset: &[&str],
    want: &[&str],
) {
    let path = format!(
        "{}/../tests/e2e/clouds/{script}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut cmd = std::process::Command::new(venv_python());
    cmd.arg(&path).env("CHECK_PUBLIC_KEY", CHECK_PUBLIC_KEY);
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in unset {
        cmd.env_remove(k);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "run {} (made by scripts/setup): {e}",
            venv_python().display()
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = http.request_lines();
    assert!(
        out.status.success() && stdout.contains("check: all passed"),
        "{client} against the local cloud failed:\n{stdout}\n{stderr}\nrequests:\n{}",
        lines.join("\n")
    );
    for want in want {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "no request {want:?} in:\n{}",
            lines.join("\n")
        );
    }
}

#[cfg(test)]
mod amazonec2_chain;
#[cfg(test)]
mod amazonec2_moto;
#[cfg(test)]
mod digitalocean_chain;
#[cfg(test)]
mod digitalocean_fidelity;
#[cfg(test)]
mod ec2_fidelity;
#[cfg(test)]
mod openstack_fidelity;
