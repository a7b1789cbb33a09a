//! Checks for values that cross the plugin boundary (or come from another tool's store):
//! machine addresses, SSH users and ports. A driver is untrusted, so everything it
//! returns is checked where it enters the host, before it is recorded, printed for a
//! shell, written into an ssh_config or put into a certificate.

use std::net::IpAddr;

/// Longest DNS name (RFC 1035, without the trailing dot).
const MAX_DNS_NAME: usize = 253;
/// Longest DNS label.
const MAX_DNS_LABEL: usize = 63;
/// Longest SSH user name accepted.
const MAX_USER: usize = 64;

/// Checks that `s` is an IP address (v4 or v6, no brackets, no zone) or an RFC 1123 DNS
/// name (labels of ASCII letters, digits and `-`, not starting or ending with `-`, at most
/// 63 bytes each and 253 in all). Anything else — `/`, `:` outside an IPv6 literal,
/// spaces, quotes, control characters, wildcards, a leading `-` — is refused.
pub fn address(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if s.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    dns_name(s)
}

/// Checks that `s` is an RFC 1123 DNS name (see [`address`]); IP addresses are not names.
pub fn dns_name(s: &str) -> Result<(), String> {
    if s.len() > MAX_DNS_NAME {
        return Err(format!("it is longer than {MAX_DNS_NAME} bytes"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(if c == '*' {
            "wildcards are not allowed".into()
        } else {
            format!("the character {c:?} is not allowed")
        });
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Err("it has an empty label".into());
        }
        if label.len() > MAX_DNS_LABEL {
            return Err(format!("a label is longer than {MAX_DNS_LABEL} bytes"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'".into());
        }
    }
    Ok(())
}

/// Checks an SSH login name: `[A-Za-z0-9_][A-Za-z0-9_.-]*`, optionally ending in `$`, at
/// most 64 bytes (so never empty, never starting with `-`, never holding a space, quote or
/// control character).
pub fn ssh_user(s: &str) -> Result<(), String> {
    let body = s.strip_suffix('$').unwrap_or(s);
    let mut chars = body.chars();
    match chars.next() {
        None => return Err("it is empty".into()),
        Some(c) if !(c.is_ascii_alphanumeric() || c == '_') => {
            return Err(format!("it starts with {c:?}"));
        }
        Some(_) => {}
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        return Err(format!("the character {c:?} is not allowed"));
    }
    if s.len() > MAX_USER {
        return Err(format!("it is longer than {MAX_USER} bytes"));
    }
    Ok(())
}

/// Checks a TCP port: anything but 0.
pub fn port(p: u16) -> Result<(), String> {
    if p == 0 {
        Err("port 0 is not a port".into())
    } else {
        Ok(())
    }
}

/// The standard complaint about an address: `address "X", which is not an IP address or DNS name (why)`.
pub fn address_problem(value: &str) -> Option<String> {
    address(value)
        .err()
        .map(|why| format!("address {value:?}, which is not an IP address or DNS name ({why})"))
}

/// The standard complaint about an SSH user: `SSH user "X", which is not a valid user name (why)`.
pub fn ssh_user_problem(value: &str) -> Option<String> {
    ssh_user(value)
        .err()
        .map(|why| format!("SSH user {value:?}, which is not a valid user name ({why})"))
}

/// Refuses an engine address or port from driver `driver` that is not an IP address or
/// DNS name, or port 0 (driver output is untrusted: it ends up in shells and certificates).
pub fn check_engine_values(driver: &str, address: &str, engine_port: u16) -> anyhow::Result<()> {
    if let Some(p) = address_problem(address) {
        anyhow::bail!("driver {driver} returned {p}");
    }
    if let Err(why) = port(engine_port) {
        anyhow::bail!("driver {driver} returned engine port {engine_port}: {why}");
    }
    Ok(())
}

/// Refuses an SSH endpoint (`address`, `user`, `ssh_port`) from driver `driver` whose
/// address, user or port is not valid (it ends up in ssh_config files and ssh's arguments).
pub fn check_ssh_values(
    driver: &str,
    address: &str,
    user: &str,
    ssh_port: u16,
) -> anyhow::Result<()> {
    if let Some(p) = address_problem(address) {
        anyhow::bail!("driver {driver} returned SSH {p}");
    }
    if let Some(p) = ssh_user_problem(user) {
        anyhow::bail!("driver {driver} returned {p}");
    }
    if let Err(why) = port(ssh_port) {
        anyhow::bail!("driver {driver} returned SSH port {ssh_port}: {why}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses() {
        for a in [
            "127.0.0.1",
            "10.0.0.2",
            "::1",
            "fe80::1",
            "2001:db8::17",
            "localhost",
            "example.com",
            "my-host.example.com",
            "a",
            "1host",
            "xn--bcher-kva.example",
        ] {
            assert!(address(a).is_ok(), "{a:?} should be accepted");
        }
        let label = "a".repeat(63);
        assert!(address(&format!("{label}.{label}")).is_ok());
    }

    #[test]
    fn bad_addresses() {
        for a in [
            "",
            "127.0.0.1/$(id)",
            "127.0.0.1/$(id>F)",
            "-oProxyCommand=x",
            "a b",
            "host\n",
            "host\r",
            "\thost",
            "*.x",
            "*",
            "x.*",
            "[::1]",
            "10.0.0.1:2376",
            "fe80::1%eth0",
            "-host",
            "host-",
            "a..b",
            "a.",
            ".a",
            "a_b",
            "h\"q",
            "h'q",
            "h;id",
            "h`id`",
            "h$x",
            "h\u{1b}]0;t\u{7}",
            "h\u{202e}x",
            "exämple.com",
        ] {
            assert!(address(a).is_err(), "{a:?} should be refused");
        }
        assert!(address(&"a".repeat(64)).is_err());
        let long = vec!["a".repeat(63); 5].join(".");
        assert!(address(&long).is_err(), "longer than 253");
        assert_eq!(
            address("*.example.com").unwrap_err(),
            "wildcards are not allowed"
        );
    }

    #[test]
    fn users() {
        for u in ["root", "docker", "ubuntu", "_svc", "a.b-c", "WIN$", "u1"] {
            assert!(ssh_user(u).is_ok(), "{u:?} should be accepted");
        }
        for u in [
            "",
            "-oProxyCommand=x",
            "root\n  ProxyCommand sh -c 'touch /tmp/x'",
            "a b",
            "a@b",
            "a$b",
            "$",
            ".hidden",
            "r\"oot",
            "r'oot",
            "root%h",
            "root\u{0}",
        ] {
            assert!(ssh_user(u).is_err(), "{u:?} should be refused");
        }
        assert!(ssh_user(&"u".repeat(64)).is_ok());
        assert!(ssh_user(&"u".repeat(65)).is_err());
    }

    #[test]
    fn ports() {
        assert!(port(0).is_err());
        assert!(port(22).is_ok());
    }

    #[test]
    fn driver_values_are_checked() {
        let e = check_engine_values("x", "127.0.0.1/$(id>F)", 2376).unwrap_err();
        assert_eq!(
            e.to_string(),
            "driver x returned address \"127.0.0.1/$(id>F)\", which is not an IP address or DNS name (the character '/' is not allowed)"
        );
        assert!(check_engine_values("x", "10.0.0.2", 0).is_err());
        let e =
            check_ssh_values("x", "10.0.0.2", "root\n  ProxyCommand sh -c 'id'", 22).unwrap_err();
        assert!(
            e.to_string().contains("which is not a valid user name"),
            "{e}"
        );
        assert!(check_ssh_values("x", "10.0.0.2", "root", 22).is_ok());
        assert!(check_ssh_values("x", "10.0.0.2", "root", 0).is_err());
        assert!(check_ssh_values("x", "-oProxyCommand=id", "root", 22).is_err());
    }
}
