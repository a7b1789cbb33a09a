//! `dmw plugin declare`: write a plugin's permissions into a component built by any
//! language's tool. Python (componentize-py) and JavaScript (componentize-js) cannot put a
//! custom section inside a core module the way the Rust SDK's `permissions!` does, so the
//! section is added at the component's top level, where [`super::declaration::read`] finds
//! it as well: inspect, install and load treat both the same.
//!
//! The permissions come from a TOML file whose keys mirror the section's entries:
//!
//! ```toml
//! capabilities = ["http"]
//! http-hosts = ["{example-api-url}"]
//! secrets = ["example-token"]
//! files = ["example-userdata"]
//! env-vars = ["EXAMPLE_REGION"]
//! http-cacert = "example-cacert"
//! http-insecure = "example-insecure"
//! http-keystone-catalog = { auth-url = "a-url", region = "a-region", interface = "an-interface" }
//!
//! [[programs]]
//! name = "qemu-img"
//! args = [["info", "*"]]   # the argument forms it may run with; absent: any (full trust)
//! ```
//!
//! The text written is parsed back by the same parser that reads every plugin, so a file
//! this command accepts declares exactly what it says, and nothing the host would refuse.

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

use super::declaration::{self, Declaration, SECTION};

/// The permissions file (`PERMS.toml`), as written by a plugin's author.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PermissionsFile {
    /// Capabilities beyond the plugin kind's default grant.
    #[serde(default)]
    capabilities: Vec<String>,
    /// HTTP hosts it may reach (`{flag}` for the host of a URL the user types).
    #[serde(default)]
    http_hosts: Vec<String>,
    /// Local programs it may run.
    #[serde(default)]
    programs: Vec<Program>,
    /// Flags whose values are secrets.
    #[serde(default)]
    secrets: Vec<String>,
    /// Flags naming a local file the host reads for it.
    #[serde(default)]
    files: Vec<String>,
    /// Environment variables outside its prefix its flags may read.
    #[serde(default)]
    env_vars: Vec<String>,
    /// The flag naming a CA bundle for its HTTP requests.
    http_cacert: Option<String>,
    /// The boolean flag turning TLS verification off.
    http_insecure: Option<String>,
    /// The flags of a Keystone service catalog it may reach.
    http_keystone_catalog: Option<Keystone>,
}

/// A `[[programs]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Program {
    /// The program's name.
    name: String,
    /// Its argument forms; none: any arguments.
    args: Option<Vec<Vec<String>>>,
}

/// The `http-keystone-catalog` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Keystone {
    /// The auth URL flag.
    auth_url: String,
    /// The region flag.
    region: String,
    /// The interface flag.
    interface: String,
}

/// Parse a permissions file's text.
pub fn parse_file(text: &str) -> Result<PermissionsFile> {
    toml::from_str(text).map_err(|e| anyhow!("{}", e.message().trim()))
}

/// The one-word check every value passes before it becomes a line of the section: a value
/// that holds a space or a line break would make a line say something else.
fn word<'a>(what: &str, value: &'a str) -> Result<&'a str> {
    if value.is_empty() || !value.chars().all(|c| c.is_ascii_graphic()) {
        bail!("{what} {value:?} must be one word of printable ASCII");
    }
    Ok(value)
}

impl PermissionsFile {
    /// The section's text for these permissions, checked by the parser every plugin's
    /// section goes through (and for capabilities this host provides).
    pub fn section_text(&self) -> Result<String> {
        let mut text = String::from("dmw-permissions 1\n");
        let mut line = |key: &str, value: &str| -> Result<()> {
            text.push_str(&format!("{key} {}\n", word(key, value)?));
            Ok(())
        };
        for c in &self.capabilities {
            line("capability", c)?;
        }
        for h in &self.http_hosts {
            line("http-host", h)?;
        }
        for s in &self.secrets {
            line("secret", s)?;
        }
        for f in &self.files {
            line("file", f)?;
        }
        for e in &self.env_vars {
            line("env-var", e)?;
        }
        if let Some(f) = &self.http_cacert {
            line("http-cacert", f)?;
        }
        if let Some(f) = &self.http_insecure {
            line("http-insecure", f)?;
        }
        if let Some(k) = &self.http_keystone_catalog {
            let key = "http-keystone-catalog";
            let (a, r, i) = (
                word(key, &k.auth_url)?,
                word(key, &k.region)?,
                word(key, &k.interface)?,
            );
            text.push_str(&format!("{key} {a} {r} {i}\n"));
        }
        for p in &self.programs {
            let name = word("program", &p.name)?;
            match &p.args {
                None => text.push_str(&format!("program {name}\n")),
                Some(forms) if forms.is_empty() => {
                    bail!(
                        "program {name} has `args = []`: give its argument forms, or leave `args` out to let it run with any arguments"
                    )
                }
                Some(forms) => {
                    for form in forms {
                        text.push_str(&format!(
                            "program {name} {}\n",
                            serde_json::to_string(form)?
                        ));
                    }
                }
            }
        }
        super::grants::check_declaration(declaration::parse(text.as_bytes())?)?;
        Ok(text)
    }
}

/// Add the section `text` at the top level of `component` (a component's bytes). Refused:
/// a core module, and a component whose core modules already declare (the Rust SDK's
/// section: two declarations would disagree); a top-level section written before is
/// replaced. Returns the new bytes and what they declare, read back as every plugin is.
pub fn declare(component: &[u8], text: &str) -> Result<(Vec<u8>, Declaration)> {
    let wanted = super::grants::check_declaration(declaration::parse(text.as_bytes())?)?;
    if component.len() < 8 || &component[..4] != b"\0asm" {
        bail!("it is not a WebAssembly binary");
    }
    if component[6..8] != [1, 0] {
        bail!(
            "it is a core WebAssembly module, not a component: build it for wasm32-wasip2 (or with componentize-py / componentize-js)"
        );
    }
    let mut out = component[..8].to_vec();
    let mut pos = 8;
    while pos < component.len() {
        let start = pos;
        let id = component[pos];
        pos += 1;
        let size = declaration::leb(component, &mut pos)?;
        let end = pos
            .checked_add(size)
            .filter(|e| *e <= component.len())
            .ok_or_else(|| anyhow!("truncated WebAssembly section"))?;
        let top_level_declaration = id == 0 && {
            let mut p = pos;
            let len = declaration::leb(component, &mut p)?;
            component.get(p..p + len) == Some(SECTION.as_bytes())
        };
        if !top_level_declaration {
            out.extend_from_slice(&component[start..end]);
        }
        pos = end;
    }
    if declaration::read(&out)
        .context("its sections cannot be read")?
        .ne(&Declaration::default())
    {
        bail!(
            "one of its core modules already declares its permissions (the Rust SDK's `permissions!`): change them there"
        );
    }
    let mut body = Vec::new();
    push_leb(&mut body, SECTION.len());
    body.extend_from_slice(SECTION.as_bytes());
    body.extend_from_slice(text.as_bytes());
    out.push(0);
    push_leb(&mut out, body.len());
    out.extend(body);
    let read = super::grants::read_declaration(&out)?;
    if read != wanted {
        bail!("the section written does not read back as declared");
    }
    Ok((out, read))
}

/// Append `n` as unsigned LEB128.
fn push_leb(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty component (the preamble only).
    const EMPTY: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn a_permissions_file_becomes_the_section_every_plugin_is_read_by() {
        let file = parse_file(
            r#"
capabilities = ["http", "process"]
http-hosts = ["{example-api-url}"]
secrets = ["example-token"]
env-vars = ["EXAMPLE_REGION"]
http-keystone-catalog = { auth-url = "a-url", region = "a-region", interface = "an-interface" }

[[programs]]
name = "qemu-img"
args = [["info", "*"], ["create", "-f", "qcow2", "**"]]

[[programs]]
name = "true"
"#,
        )
        .expect("parse");
        let text = file.section_text().expect("text");
        let (wasm, d) = declare(EMPTY, &text).expect("declare");
        assert_eq!(d.capabilities, vec!["http", "process"]);
        assert_eq!(d.http_hosts, vec!["{example-api-url}"]);
        assert_eq!(d.forms_of("qemu-img").len(), 2);
        assert_eq!(d.unrestricted_programs(), vec!["true"]);
        assert_eq!(
            d.http_keystone_catalog.as_ref().map(|k| k.region.as_str()),
            Some("a-region")
        );
        // Declared again: the top-level section is replaced, not doubled.
        let (again, d2) = declare(&wasm, "dmw-permissions 1\ncapability keys\n").expect("again");
        assert_eq!(d2.capabilities, vec!["keys"]);
        assert_eq!(declaration::read(&again).expect("read"), d2);
    }

    #[test]
    fn what_the_host_would_refuse_is_refused_when_declaring() {
        for (toml, why) in [
            ("capability = [\"ssh\"]", "unknown field"),
            ("capabilities = [\"root\"]", "which dmw does not know"),
            ("capabilities = [\"ssh\\ncapability vm\"]", "one word"),
            ("secrets = [\"Not A Flag\"]", "one word"),
            ("secrets = [\"NOT_A_FLAG\"]", "does not name a flag"),
            ("[[programs]]\nname = \"x\"\nargs = []", "args = []"),
            (
                "[[programs]]\nname = \"x\"\nargs = [[\"*a\"]]",
                "`*` may only end",
            ),
        ] {
            let e = parse_file(toml)
                .and_then(|f| f.section_text())
                .and_then(|t| declare(EMPTY, &t).map(drop))
                .expect_err(toml);
            assert!(format!("{e:#}").contains(why), "{toml}: {e:#}");
        }
        let text = "dmw-permissions 1\ncapability ssh\n";
        let core = b"\0asm\x01\0\0\0";
        assert!(
            format!("{:#}", declare(core, text).expect_err("core")).contains("not a component")
        );
    }

    #[test]
    fn a_component_whose_module_declares_is_refused() {
        // A component holding a core module with the Rust SDK's section.
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        let mut body = vec![SECTION.len() as u8];
        body.extend(SECTION.as_bytes());
        body.extend(b"dmw-permissions 1\ncapability vm\n");
        module.push(0);
        module.push(body.len() as u8);
        module.extend(body);
        let mut component = EMPTY.to_vec();
        component.push(1);
        component.push(module.len() as u8);
        component.extend(module);
        let e = declare(&component, "dmw-permissions 1\ncapability ssh\n").expect_err("both");
        assert!(e.to_string().contains("already declares"), "{e}");
    }
}
