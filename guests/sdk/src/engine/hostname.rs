//! Setting the machine's hostname now and at boot, and making it resolve locally.

use crate::cmd::sh_quote;
use crate::{Error, Result};

/// Which boot-time files [`hostname_script_with`] writes besides /etc/hostname.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostnameOptions {
    /// Also set `HOSTNAME=` in /etc/sysconfig/network (EL6 and older read it at boot).
    pub sysconfig_network: bool,
}

/// Check that `name` is a valid hostname (letters, digits, `-` and `.`, at most 253).
pub fn validate_hostname(name: &str) -> Result<()> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(Error::InvalidInput(format!(
            "{name:?} is not a valid hostname: use letters, digits, '-' and '.', \
             at most 63 characters between dots"
        )));
    }
    Ok(())
}

/// A root shell script that sets the hostname to `name` now and at boot, and maps it to
/// 127.0.1.1 in /etc/hosts unless it is already there (idempotent; Docker Machine §6.4).
pub fn hostname_script(name: &str) -> Result<String> {
    hostname_script_with(name, HostnameOptions::default())
}

/// [`hostname_script`], also writing the boot-time files that `options` asks for.
pub fn hostname_script_with(name: &str, options: HostnameOptions) -> Result<String> {
    validate_hostname(name)?;
    let q = sh_quote(name);
    let re = name.replace('.', "\\.");
    let mut script = format!(
        "set -e\n\
         hostname {q} 2>/dev/null || hostnamectl set-hostname {q}\n\
         printf '%s\\n' {q} > /etc/hostname\n\
         if ! grep -Eq '^[^#]*[[:space:]]{re}([[:space:]]|$)' /etc/hosts 2>/dev/null; then\n\
         \x20 if grep -Eq '^127\\.0\\.1\\.1[[:space:]]' /etc/hosts; then\n\
         \x20   sed 's/^127\\.0\\.1\\.1[[:space:]].*/127.0.1.1 {name}/' /etc/hosts > /etc/hosts.dmw-new\n\
         \x20   cat /etc/hosts.dmw-new > /etc/hosts\n\
         \x20   rm -f /etc/hosts.dmw-new\n\
         \x20 else\n\
         \x20   printf '127.0.1.1 %s\\n' {q} >> /etc/hosts\n\
         \x20 fi\n\
         fi\n"
    );
    if options.sysconfig_network {
        // A validated hostname has no characters that sed or the shell would interpret.
        let line = sh_quote(&format!("HOSTNAME={name}"));
        script.push_str(&format!(
            "if grep -q '^HOSTNAME=' /etc/sysconfig/network 2>/dev/null; then\n\
             \x20 sed -i 's/^HOSTNAME=.*/HOSTNAME={name}/' /etc/sysconfig/network\n\
             else\n\
             \x20 printf '%s\\n' {line} >> /etc/sysconfig/network\n\
             fi\n"
        ));
    }
    Ok(script)
}
