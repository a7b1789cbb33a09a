//! What a plugin declares it needs beyond the default grant, read from its file without
//! running it: a custom section `dmw:permissions` in any core module of the component
//! (the guest SDK's `dmw_guest::permissions!` writes it).
//!
//! The section is text, one entry a line after the header `dmw-permissions 1`:
//! `capability NAME` (ssh, certs, http, keys, process, files), `http-host PATTERN`,
//! `program NAME`. A plugin without the section declares nothing.

use anyhow::{Result, anyhow, bail};

/// The custom section's name.
pub const SECTION: &str = "dmw:permissions";

/// The header line of the section's text.
const HEADER: &str = "dmw-permissions 1";

/// The largest section accepted, and the most entries of one kind.
const MAX_SECTION: usize = 64 * 1024;
const MAX_ENTRIES: usize = 64;

/// Every capability a plugin may name.
pub const CAPABILITIES: &[&str] = &["ssh", "certs", "http", "keys", "process", "files"];

/// A plugin's declaration.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Declaration {
    /// Capabilities it asks for (each one of [`CAPABILITIES`]).
    pub capabilities: Vec<String>,
    /// HTTP hosts it may reach (patterns; `{flag-name}` stands for the host of that flag's value).
    pub http_hosts: Vec<String>,
    /// Local programs it may run.
    pub programs: Vec<String>,
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
    for line in lines {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        let value = value.trim();
        let ok =
            !value.is_empty() && value.len() <= 253 && value.chars().all(|c| c.is_ascii_graphic());
        if !ok {
            bail!("its {SECTION} section has a bad entry {line:?}");
        }
        let list = match key {
            "capability" => {
                if !CAPABILITIES.contains(&value) {
                    bail!(
                        "it declares the capability {value:?}, which dmw does not know (known: {})",
                        CAPABILITIES.join(", ")
                    );
                }
                &mut d.capabilities
            }
            "http-host" => &mut d.http_hosts,
            "program" => &mut d.programs,
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
fn leb(bytes: &[u8], pos: &mut usize) -> Result<usize> {
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
            "dmw-permissions 1\ncapability root\n",
            "dmw-permissions 1\nshell yes\n",
            "dmw-permissions 1\nprogram a\u{1b}b\n",
        ] {
            assert!(parse(text.as_bytes()).is_err(), "{text:?}");
        }
        assert!(read(b"\0asm\x01\0\0\0\0\x7f").is_err(), "truncated");
    }
}
