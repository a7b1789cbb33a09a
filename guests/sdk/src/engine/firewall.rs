//! Opening the engine's and Swarm mode's ports in the host firewall that an OS family turns
//! on by default (firewalld on the rhel and suse families, ufw on Ubuntu), when it is
//! active. Done at configure-engine, whatever the machine's swarm plans: a firewall that
//! blocks the engine port makes the machine unreachable anyway, and opening the Swarm ports
//! then means any machine can later init or join a cluster without a re-provision.

use crate::cmd::{output_root, run_root};
use crate::{Error, Result, info};

/// What Swarm mode needs between the machines: the managers' port, the nodes' gossip and
/// the overlay networks' VXLAN.
pub const SWARM_PORTS: [&str; 4] = ["2377/tcp", "7946/tcp", "7946/udp", "4789/udp"];

/// Prints `firewalld`, `ufw` or nothing: the active firewall, if any.
const DETECT: &str = "if command -v firewall-cmd >/dev/null 2>&1 && firewall-cmd --state >/dev/null 2>&1; then echo firewalld; \
elif command -v ufw >/dev/null 2>&1 && LC_ALL=C ufw status 2>/dev/null | grep -q '^Status: active'; then echo ufw; fi";

/// An active host firewall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firewall {
    /// firewalld (`firewall-cmd --state` says running).
    Firewalld,
    /// ufw (`ufw status` says active).
    Ufw,
}

/// The active firewall, if any (a failing check counts as none).
pub fn active() -> Result<Option<Firewall>> {
    let out = output_root(DETECT)?;
    if out.exit_code != 0 {
        return Ok(None);
    }
    Ok(match String::from_utf8_lossy(&out.stdout).trim() {
        "firewalld" => Some(Firewall::Firewalld),
        "ufw" => Some(Firewall::Ufw),
        _ => None,
    })
}

/// The ports to open: the engine's TLS port and [`SWARM_PORTS`].
pub fn ports(engine_port: u16) -> Vec<String> {
    std::iter::once(format!("{engine_port}/tcp"))
        .chain(SWARM_PORTS.iter().map(|p| p.to_string()))
        .collect()
}

/// The command that opens `ports` in `firewall` (permanently, and at once).
pub fn open_command(firewall: Firewall, ports: &[String]) -> String {
    match firewall {
        Firewall::Firewalld => {
            let args: Vec<String> = ports.iter().map(|p| format!("--add-port={p}")).collect();
            format!(
                "firewall-cmd --permanent {0} && firewall-cmd {0}",
                args.join(" ")
            )
        }
        Firewall::Ufw => ports
            .iter()
            .map(|p| format!("ufw allow {p}"))
            .collect::<Vec<_>>()
            .join(" && "),
    }
}

/// Opens the engine port and the Swarm ports in the active firewall, if there is one.
pub fn open_engine_and_swarm_ports(engine_port: u16) -> Result<()> {
    let Some(firewall) = active()? else {
        return Ok(());
    };
    let ports = ports(engine_port);
    let name = match firewall {
        Firewall::Firewalld => "firewalld",
        Firewall::Ufw => "ufw",
    };
    info(&format!(
        "Opening {} in {name} (engine and Swarm mode)...",
        ports.join(", ")
    ));
    run_root(&open_command(firewall, &ports)).map(drop).map_err(|e| {
        Error::Failed(format!(
            "{name} is active and opening {} failed: {e}; open them by hand (the engine port is how dmw reaches the machine)",
            ports.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        let p = ports(2376);
        assert_eq!(
            p,
            ["2376/tcp", "2377/tcp", "7946/tcp", "7946/udp", "4789/udp"]
        );
        assert_eq!(
            open_command(Firewall::Firewalld, &p[..2]),
            "firewall-cmd --permanent --add-port=2376/tcp --add-port=2377/tcp && firewall-cmd --add-port=2376/tcp --add-port=2377/tcp"
        );
        assert_eq!(
            open_command(Firewall::Ufw, &p[..2]),
            "ufw allow 2376/tcp && ufw allow 2377/tcp"
        );
    }
}
