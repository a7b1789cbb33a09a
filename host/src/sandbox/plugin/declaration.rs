//! What a plugin declares it needs beyond the default grant, read from its file without
//! running it: a custom section `dmw:permissions` in any core module of the component
//! (the guest SDK's `dmw_guest::permissions!` writes it).
//!
//! The section is text, one entry a line after the header `dmw-permissions 1`:
//! `capability NAME` (ssh, certs, http, keys, process, files, vm), `http-host PATTERN`,
//! `program NAME` (runs NAME with any arguments: full trust) or `program NAME ["ARG", …]`
//! (runs NAME only with arguments that match one of its declared forms, see
//! [`args_match`]), `secret FLAG` (the flag's value is a secret), `env-var NAME` (an
//! environment variable outside the driver's prefix that its flags may read),
//! `http-cacert FLAG` (the flag naming a CA bundle for its HTTP requests) and
//! `http-insecure FLAG` (the boolean flag that turns TLS verification off), `file FLAG`
//! (the flag's value is a local file the user names, which the host reads — at most 64 KiB,
//! `user_file::read` — and passes to the driver as the value: a plugin cannot read files,
//! e.g. cloud-init user data; an ask, and the flag may have no default),
//! `http-keystone-catalog AUTH-URL-FLAG REGION-FLAG INTERFACE-FLAG` (the hosts of the
//! Keystone service catalog endpoints for that region and interface, learnt from the token
//! answer of the auth URL's host, are allowed too: `capabilities::http`). Entries added
//! later keep the header `dmw-permissions 1`: an older section still parses, and a section
//! that uses them is refused by an older dmw as an unknown entry. A plugin without the
//! section declares nothing.

use anyhow::{Result, anyhow, bail};

/// The custom section's name.
pub const SECTION: &str = "dmw:permissions";

/// The header line of the section's text.
const HEADER: &str = "dmw-permissions 1";

/// The largest section accepted, and the most entries of one kind.
const MAX_SECTION: usize = 64 * 1024;
const MAX_ENTRIES: usize = 64;

pub use crate::net::http::KeystoneCatalogFlags;
pub use crate::sandbox::capabilities::forms::{ProgramArgs, args_match, describe_form};

/// A plugin's declaration.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Declaration {
    /// Capabilities it asks for (checked to be ones this host provides by
    /// `grants::read_declaration`).
    pub capabilities: Vec<String>,
    /// HTTP hosts it may reach (patterns; `{flag-name}` stands for the host of the value the
    /// user typed for that flag, never its default).
    pub http_hosts: Vec<String>,
    /// Local programs it may run (each with any arguments, unless it has forms in
    /// [`program_args`](Self::program_args)).
    pub programs: Vec<String>,
    /// The argument forms of the programs declared with them: such a program runs only
    /// with arguments matching one of its forms. A program without forms runs with any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub program_args: Vec<ProgramArgs>,
    /// Flags whose values are secrets (stored 0600 only, `<redacted>` everywhere else).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Environment variables outside its own prefix that its flags may read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_vars: Vec<String>,
    /// Flags whose value names a local file the host reads and passes on as the value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// The flag whose value is a CA bundle file trusted for its HTTP requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_cacert: Option<String>,
    /// The boolean flag that turns TLS verification off for its HTTP requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_insecure: Option<String>,
    /// The flags naming a Keystone auth URL, region and interface whose service catalog
    /// endpoints it may reach too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_keystone_catalog: Option<KeystoneCatalogFlags>,
}

impl Declaration {
    /// Its HTTP entries, for the `http` capability to resolve.
    pub fn http_ask(&self) -> crate::net::http::HttpAsk {
        crate::net::http::HttpAsk {
            http_hosts: self.http_hosts.clone(),
            http_cacert: self.http_cacert.clone(),
            http_insecure: self.http_insecure.clone(),
            http_keystone_catalog: self.http_keystone_catalog.clone(),
        }
    }
}

/// Most patterns in one form, and the longest pattern.
const MAX_FORM_ARGS: usize = 64;
const MAX_PATTERN: usize = 1024;

/// Check the patterns of a `program` entry (see [`ProgramArgs`]).
fn check_form(line: &str, args: &[String]) -> Result<()> {
    if args.len() > MAX_FORM_ARGS {
        bail!("its {SECTION} entry {line:?} has more than {MAX_FORM_ARGS} argument patterns");
    }
    for (i, p) in args.iter().enumerate() {
        if p.len() > MAX_PATTERN || p.chars().any(char::is_control) {
            bail!(
                "its {SECTION} entry {line:?} has an argument pattern that is longer than {MAX_PATTERN} bytes or holds a control character"
            );
        }
        let stars = p.matches('*').count();
        let ok = match stars {
            0 => true,
            1 => p.ends_with('*'),
            2 => p == "**" && i + 1 == args.len(),
            _ => false,
        };
        if !ok {
            bail!(
                "its {SECTION} entry {line:?} has the argument pattern {p:?}: `*` may only end a pattern, and `**` only stand alone as the last one"
            );
        }
    }
    Ok(())
}

impl Declaration {
    /// The argument forms of a declared `program`; none: it runs with any arguments.
    pub fn forms_of(&self, program: &str) -> Vec<&ProgramArgs> {
        self.program_args
            .iter()
            .filter(|f| f.program == program)
            .collect()
    }

    /// The declared programs that run with any arguments (full trust).
    pub fn unrestricted_programs(&self) -> Vec<&str> {
        self.programs
            .iter()
            .filter(|p| self.forms_of(p).is_empty())
            .map(String::as_str)
            .collect()
    }
}

/// Whether `name` is a flag name (`[a-z0-9-]`, not starting or ending with `-`).
fn is_flag_name(name: &str) -> bool {
    name.len() <= 64
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Whether `name` is an environment variable name (`[A-Z][A-Z0-9_]*`).
fn is_env_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Read the declaration of a component (its bytes): none found means nothing declared.
pub fn read(wasm: &[u8]) -> Result<Declaration> {
    let mut sections = Vec::new();
    custom_sections(wasm, 0, &mut sections)?;
    let mut found = sections.into_iter().filter(|(name, _)| name == SECTION);
    let Some((_, data)) = found.next() else {
        return Ok(Declaration::default());
    };
    if found.next().is_some() {
        bail!("the plugin carries two {SECTION} sections");
    }
    parse(&data)
}

/// Parse the section's text.
pub fn parse(data: &[u8]) -> Result<Declaration> {
    if data.len() > MAX_SECTION {
        bail!("its {SECTION} section is larger than {MAX_SECTION} bytes");
    }
    let text =
        std::str::from_utf8(data).map_err(|_| anyhow!("its {SECTION} section is not UTF-8"))?;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some(HEADER) {
        bail!("its {SECTION} section does not start with \"{HEADER}\"");
    }
    let mut d = Declaration::default();
    // Programs declared without argument patterns (any arguments).
    let mut bare_programs: Vec<String> = Vec::new();
    for line in lines {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        let value = value.trim();
        if key == "http-keystone-catalog" {
            let names: Vec<&str> = value.split_whitespace().collect();
            let [auth_url, region, interface] = names[..] else {
                bail!(
                    "its {SECTION} entry {line:?} does not name three flags (auth URL, region, interface)"
                )
            };
            if ![auth_url, region, interface]
                .iter()
                .all(|n| is_flag_name(n))
            {
                bail!("its {SECTION} entry {line:?} does not name flags (a-z, 0-9, -)");
            }
            let flags = KeystoneCatalogFlags {
                auth_url: auth_url.to_string(),
                region: region.to_string(),
                interface: interface.to_string(),
            };
            if d.http_keystone_catalog
                .as_ref()
                .is_some_and(|f| *f != flags)
            {
                bail!("its {SECTION} section has more than one {key} entry");
            }
            d.http_keystone_catalog = Some(flags);
            continue;
        }
        if key == "program"
            && let Some((program, json)) = value.split_once(' ')
        {
            let program = program.trim();
            let args: Vec<String> = serde_json::from_str(json.trim()).map_err(|_| {
                anyhow!("its {SECTION} entry {line:?} does not give the program's argument patterns as a JSON list of strings")
            })?;
            if program.is_empty()
                || program.len() > 253
                || !program.chars().all(|c| c.is_ascii_graphic())
            {
                bail!("its {SECTION} section has a bad entry {line:?}");
            }
            check_form(line, &args)?;
            if bare_programs.iter().any(|p| p == program) {
                bail!(
                    "its {SECTION} section declares the program {program} both with any arguments and with argument patterns: declare one or the other"
                );
            }
            if d.program_args.len() >= MAX_ENTRIES {
                bail!("its {SECTION} section has more than {MAX_ENTRIES} program forms");
            }
            let form = ProgramArgs {
                program: program.to_string(),
                args,
            };
            if !d.program_args.contains(&form) {
                d.program_args.push(form);
            }
            if !d.programs.iter().any(|p| p == program) {
                if d.programs.len() >= MAX_ENTRIES {
                    bail!("its {SECTION} section has more than {MAX_ENTRIES} program entries");
                }
                d.programs.push(program.to_string());
            }
            continue;
        }
        let ok =
            !value.is_empty() && value.len() <= 253 && value.chars().all(|c| c.is_ascii_graphic());
        if !ok {
            bail!("its {SECTION} section has a bad entry {line:?}");
        }
        let list = match key {
            "capability" => &mut d.capabilities,
            "http-host" => &mut d.http_hosts,
            "program" => {
                if d.program_args.iter().any(|f| f.program == value) {
                    bail!(
                        "its {SECTION} section declares the program {value} both with any arguments and with argument patterns: declare one or the other"
                    );
                }
                bare_programs.push(value.to_string());
                &mut d.programs
            }
            "secret" | "file" | "http-cacert" | "http-insecure" if !is_flag_name(value) => {
                bail!("its {SECTION} entry {line:?} does not name a flag (a-z, 0-9, -)")
            }
            "secret" => &mut d.secrets,
            "file" => &mut d.files,
            "env-var" if !is_env_name(value) => {
                bail!(
                    "its {SECTION} entry {line:?} does not name an environment variable (A-Z, 0-9, _)"
                )
            }
            "env-var" => &mut d.env_vars,
            "http-cacert" | "http-insecure" => {
                let slot = if key == "http-cacert" {
                    &mut d.http_cacert
                } else {
                    &mut d.http_insecure
                };
                if slot.as_deref().is_some_and(|v| v != value) {
                    bail!("its {SECTION} section has more than one {key} entry");
                }
                *slot = Some(value.to_string());
                continue;
            }
            _ => bail!("its {SECTION} section has an unknown entry {line:?}"),
        };
        if list.len() >= MAX_ENTRIES {
            bail!("its {SECTION} section has more than {MAX_ENTRIES} {key} entries");
        }
        if !list.iter().any(|v| v == value) {
            list.push(value.to_string());
        }
    }
    Ok(d)
}

/// An unsigned LEB128 number at `*pos`.
pub(super) fn leb(bytes: &[u8], pos: &mut usize) -> Result<usize> {
    let mut value: u64 = 0;
    for shift in (0..35).step_by(7) {
        let b = *bytes
            .get(*pos)
            .ok_or_else(|| anyhow!("truncated WebAssembly binary"))?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return usize::try_from(value).map_err(|_| anyhow!("bad WebAssembly binary"));
        }
    }
    bail!("bad LEB128 number in the WebAssembly binary")
}

/// Collect the custom sections of a module or component and of every module and component
/// nested in it.
fn custom_sections(bytes: &[u8], depth: usize, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    if depth > 8 {
        bail!("components nested too deeply");
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        bail!("not a WebAssembly binary");
    }
    let component = bytes[6..8] == [1, 0];
    let mut pos = 8;
    while pos < bytes.len() {
        let id = bytes[pos];
        pos += 1;
        let size = leb(bytes, &mut pos)?;
        let end = pos
            .checked_add(size)
            .filter(|e| *e <= bytes.len())
            .ok_or_else(|| anyhow!("truncated WebAssembly section"))?;
        let body = &bytes[pos..end];
        match id {
            0 => {
                let mut p = 0;
                let len = leb(body, &mut p)?;
                let name = body
                    .get(p..p + len)
                    .ok_or_else(|| anyhow!("truncated custom section name"))?;
                out.push((
                    String::from_utf8_lossy(name).into_owned(),
                    body[p + len..].to_vec(),
                ));
            }
            // In a component: a core module (1) or a nested component (4).
            1 | 4 if component => custom_sections(body, depth + 1, out)?,
            _ => {}
        }
        pos = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(name: &str, data: &[u8]) -> Vec<u8> {
        let mut body = vec![name.len() as u8];
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(data);
        let mut s = vec![0u8, body.len() as u8];
        s.extend(body);
        s
    }

    #[test]
    fn reads_the_section_of_a_nested_module() {
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend(section(
            SECTION,
            b"dmw-permissions 1\ncapability keys\nhttp-host {acme-url}\n",
        ));
        let mut component = b"\0asm\x0d\0\x01\0".to_vec();
        component.push(1);
        component.push(module.len() as u8);
        component.extend(module);
        let d = read(&component).expect("read");
        assert_eq!(d.capabilities, vec!["keys"]);
        assert_eq!(d.http_hosts, vec!["{acme-url}"]);
        let k = parse(
            b"dmw-permissions 1\nhttp-keystone-catalog os-auth-url os-region os-endpoint-type\n",
        )
        .expect("keystone");
        assert_eq!(
            k.http_keystone_catalog,
            Some(KeystoneCatalogFlags {
                auth_url: "os-auth-url".into(),
                region: "os-region".into(),
                interface: "os-endpoint-type".into(),
            })
        );
        for bad in [
            "http-keystone-catalog os-auth-url os-region",
            "http-keystone-catalog A B C",
            "http-keystone-catalog a b c d",
        ] {
            assert!(
                parse(format!("dmw-permissions 1\n{bad}\n").as_bytes()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn secrets_env_vars_and_tls_flags() {
        let d = parse(
            b"dmw-permissions 1\ncapability http\nhttp-host {acme-url}\nsecret acme-token\nsecret acme-password\nfile acme-userdata\nenv-var OS_PASSWORD\nhttp-cacert acme-cacert\nhttp-insecure acme-insecure\n",
        )
        .expect("parse");
        assert_eq!(d.secrets, vec!["acme-token", "acme-password"]);
        assert_eq!(d.env_vars, vec!["OS_PASSWORD"]);
        assert_eq!(d.files, vec!["acme-userdata"]);
        assert_eq!(d.http_cacert.as_deref(), Some("acme-cacert"));
        assert_eq!(d.http_insecure.as_deref(), Some("acme-insecure"));
        // An older approval (without the new fields) still reads, and an old section parses.
        let old: Declaration =
            serde_json::from_str(r#"{"capabilities":["keys"],"http_hosts":[],"programs":[]}"#)
                .expect("old json");
        assert!(old.secrets.is_empty() && old.http_cacert.is_none());
        for text in [
            "dmw-permissions 1\nsecret Acme_Token\n",
            "dmw-permissions 1\nenv-var os_password\n",
            "dmw-permissions 1\nenv-var 1X\n",
            "dmw-permissions 1\nhttp-cacert a\nhttp-cacert b\n",
            "dmw-permissions 1\nhttp-insecure -x\n",
        ] {
            assert!(parse(text.as_bytes()).is_err(), "{text:?}");
        }
    }

    #[test]
    fn programs_with_argument_forms() {
        let d = parse(
            br#"dmw-permissions 1
program qemu-img ["info", "--output=json", "*"]
program qemu-img ["create", "-f", "qcow2", "-b", "*", "overlay.qcow2", "*"]
program qemu-system-x86_64
program echo ["said:", "--x=*", "**"]
"#,
        )
        .expect("parse");
        assert_eq!(d.programs, vec!["qemu-img", "qemu-system-x86_64", "echo"]);
        assert_eq!(d.forms_of("qemu-img").len(), 2);
        assert_eq!(d.unrestricted_programs(), vec!["qemu-system-x86_64"]);
        let info = &d.forms_of("qemu-img")[0].args;
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(args_match(
            info,
            &args(&["info", "--output=json", "/x.qcow2"])
        ));
        // A value never becomes an option; no extra, no missing, no other literal.
        assert!(!args_match(
            info,
            &args(&["info", "--output=json", "--image-opts"])
        ));
        assert!(!args_match(
            info,
            &args(&["info", "--output=json", "a", "b"])
        ));
        assert!(!args_match(info, &args(&["info", "--output=json"])));
        assert!(!args_match(info, &args(&["convert", "--output=json", "a"])));
        assert!(!args_match(info, &args(&["INFO", "--output=json", "a"])));
        let echo = &d.forms_of("echo")[0].args;
        assert!(args_match(echo, &args(&["said:", "--x=1"])));
        assert!(args_match(echo, &args(&["said:", "--x=", "-rest", "more"])));
        assert!(!args_match(echo, &args(&["said:", "--y=1"])));
        assert!(args_match(&[], &[]) && !args_match(&[], &args(&["x"])));
        assert_eq!(
            describe_form(d.forms_of("echo")[0]),
            "echo said: <--x=…> <any further arguments>"
        );
        assert_eq!(
            describe_form(d.forms_of("qemu-img")[0]),
            "qemu-img info --output=json <a value>"
        );
        for bad in [
            "program x [\"a*b\"]",
            "program x [\"**\", \"a\"]",
            "program x [\"***\"]",
            "program x [\"*a*\"]",
            "program x not-json",
            "program x [1]",
            "program x [\"a\\u0007\"]",
            "program x\nprogram x [\"a\"]",
            "program x [\"a\"]\nprogram x",
        ] {
            assert!(
                parse(format!("dmw-permissions 1\n{bad}\n").as_bytes()).is_err(),
                "{bad}"
            );
        }
        // An approval written before forms existed still reads: any arguments.
        let old: Declaration = serde_json::from_str(
            r#"{"capabilities":["process"],"http_hosts":[],"programs":["qemu-img"]}"#,
        )
        .expect("old json");
        assert_eq!(old.unrestricted_programs(), vec!["qemu-img"]);
    }

    #[test]
    fn no_section_declares_nothing() {
        let module = b"\0asm\x01\0\0\0".to_vec();
        assert_eq!(read(&module).expect("read"), Declaration::default());
    }

    #[test]
    fn bad_declarations_are_refused() {
        for text in [
            "capability keys\n",
            "dmw-permissions 1\nshell yes\n",
            "dmw-permissions 1\nprogram a\u{1b}b\n",
        ] {
            assert!(parse(text.as_bytes()).is_err(), "{text:?}");
        }
        assert!(read(b"\0asm\x01\0\0\0\0\x7f").is_err(), "truncated");
    }
}
