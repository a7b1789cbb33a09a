//! What the hostile test fixtures share: the verdict their attack gives the e2e tests (a
//! failed call whose message says `HOSTILE-CONTAINED`, or `HOSTILE-BREACH:` and what got
//! through) and the loopback answers of a driver that never makes a machine.

use dmw_guest::driver::SshEndpoint;
use dmw_guest::{Error, Result};

/// The fixture's verdict: `breach` holds what the host let through, `broken` the positive
/// controls that did not work (a fixture whose control fails proves nothing, so that is a
/// breach too). Always an error, so create stops there.
pub fn verdict(mut breach: Vec<String>, broken: Vec<String>) -> Result<()> {
    if breach.is_empty() && broken.is_empty() {
        Err(Error::Failed("HOSTILE-CONTAINED".into()))
    } else {
        breach.extend(broken);
        Err(Error::Failed(format!(
            "HOSTILE-BREACH: {}",
            breach.join("; ")
        )))
    }
}

/// The machine's address: loopback (the fixtures never make one).
pub fn address() -> Result<String> {
    Ok("127.0.0.1".into())
}

/// The SSH endpoint: root on loopback port 22 (never reached: the verdict stops create).
pub fn ssh_endpoint() -> Result<SshEndpoint> {
    Ok(SshEndpoint {
        address: "127.0.0.1".into(),
        port: 22,
        user: "root".into(),
        key_path: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contained_only_when_nothing_got_through_and_the_controls_worked() {
        let message = |r: Result<()>| match r {
            Err(Error::Failed(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(message(verdict(vec![], vec![])), "HOSTILE-CONTAINED");
        assert_eq!(
            message(verdict(vec!["read a".into()], vec!["control b".into()])),
            "HOSTILE-BREACH: read a; control b"
        );
        assert!(message(verdict(vec![], vec!["control".into()])).starts_with("HOSTILE-BREACH"));
    }
}
