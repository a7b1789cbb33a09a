//! The one grants policy: which capabilities a plugin instance gets, from its kind, where it
//! comes from (built in, installed, or a file used by path), what it declares
//! ([`super::declaration`]) and what the user approved (`dmw plugin install`, recorded here
//! pinned by the file's sha256).
//!
//! - Every plugin gets `log` and `store`; drivers also `ssh`, recipes `ssh` and `certs`, to the
//!   one machine being worked on: the default grant.
//! - A built-in plugin is trusted with what it declares.
//! - A file used by path gets the default grant only: if it declares more, it stops before it
//!   runs, with what it asks for and the command that allows it.
//! - An installed file gets what the user approved, as long as its sha256 is the approved one.
//! - A component that imports a capability it did not declare (beyond the default) is refused.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::declaration::Declaration;
use super::{HostState, Kind};
use crate::sandbox::capabilities::{self, Capability, Lent, Offer};

/// Capabilities every plugin of `kind` gets without asking.
pub fn default_capabilities(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Driver => &["ssh"],
        Kind::Recipe => &["ssh", "certs"],
    }
}

/// Capabilities this dmw provides to plugins that were granted them: one line each.
pub const PROVIDED: &[Capability<HostState>] = &capabilities::provided::<HostState>();

/// The names of the capabilities this dmw provides.
pub fn provided_names() -> Vec<&'static str> {
    PROVIDED.iter().map(|c| c.name).collect()
}

/// A plugin's declaration ([`super::declaration::read`]), refused when it asks for a capability
/// this dmw does not provide.
pub fn read_declaration(wasm: &[u8]) -> Result<Declaration> {
    check_declaration(super::declaration::read(wasm)?)
}

/// `declared`, if every capability it names is one this host provides.
pub fn check_declaration(declared: Declaration) -> Result<Declaration> {
    let known = provided_names();
    if let Some(unknown) = declared
        .capabilities
        .iter()
        .find(|c| !known.contains(&c.as_str()))
    {
        bail!(
            "it declares the capability {unknown:?}, which dmw does not know (known: {})",
            known.join(", ")
        );
    }
    Ok(declared)
}

/// The capability contexts an instance granted `grant` is lent from `offer`: `log` and
/// `store` always, every other capability only when granted.
pub fn lend(grant: &Grant, offer: &Offer) -> Lent {
    let mut lent = Lent::new(&offer.plugin);
    for capability in capabilities::always::<HostState>() {
        (capability.lend)(offer, &mut lent);
    }
    for capability in PROVIDED.iter().filter(|c| grant.has(c.name)) {
        (capability.lend)(offer, &mut lent);
    }
    lent
}

/// What one plugin instance may use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grant {
    /// The capabilities granted (beyond `log` and `store`, which every plugin has).
    pub capabilities: Vec<String>,
    /// What the plugin declared (its HTTP hosts, programs, secret flags, TLS flags), as granted.
    pub declaration: Declaration,
    /// Built into dmw, or a file byte for byte one of the built-in drivers — decided from
    /// the very bytes that were hashed and compiled: it may keep a built-in's name and
    /// Docker Machine's historic flag names (`plugin::flag_policy`).
    pub builtin: bool,
}

impl Grant {
    /// Whether `capability` was granted.
    pub fn has(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

/// Where a plugin's bytes come from, for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin<'a> {
    /// Compiled into dmw.
    Builtin,
    /// A file (by path, or by the name it was installed under).
    File(&'a Path),
}

/// A plugin file the user approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    /// The name it is used by (`--driver NAME`): the plugin's own, from `info`.
    pub name: String,
    /// `driver` or `recipe`.
    pub kind: String,
    /// The file, absolute.
    pub path: PathBuf,
    /// The approved file's sha256 (hex).
    pub sha256: String,
    /// What it declared, as approved.
    pub declaration: Declaration,
}

/// The approvals, in `<store>/plugins/grants.json` (0600).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    /// Approved plugins, by name.
    pub plugins: Vec<Installed>,
}

impl Registry {
    /// Read the registry (a missing file is an empty registry).
    pub fn load(path: &Path) -> Result<Registry> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("the plugin grants {} are damaged", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Write the registry atomically (0600).
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            crate::state::store::set_mode(dir, 0o700)?;
        }
        let mut json = serde_json::to_vec_pretty(self).context("cannot encode the grants")?;
        json.push(b'\n');
        crate::state::store::write_private(path, &json)
    }

    /// The approved plugin called `name` of `kind`.
    pub fn named(&self, name: &str, kind: Kind) -> Option<&Installed> {
        self.plugins
            .iter()
            .find(|p| p.name == name && p.kind == kind.to_string())
    }

    /// Record an approval, replacing an earlier one of the same name and kind.
    pub fn approve(&mut self, entry: Installed) {
        self.plugins
            .retain(|p| !(p.name == entry.name && p.kind == entry.kind));
        self.plugins.push(entry);
        self.plugins.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

/// The sha256 of a file's bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// What a declaration asks for beyond the default grant of `kind`, in plain words.
pub fn beyond_default(kind: Kind, d: &Declaration) -> Vec<String> {
    let defaults = default_capabilities(kind);
    let mut asks: Vec<String> = d
        .capabilities
        .iter()
        .filter(|c| !defaults.contains(&c.as_str()))
        .map(|c| match c.as_str() {
            "vm" => format!("capability vm ({VM_WORDS})"),
            _ => format!("capability {c}"),
        })
        .collect();
    // A literal address of special use says what it reaches (`127.0.0.1:8080`: your own
    // computer), since such an address is allowed only because the pattern names it; a
    // `{flag}` pattern says that only a URL the user types counts.
    asks.extend(
        d.http_hosts
            .iter()
            .map(|h| match crate::net::http::literal_special_use(h) {
                Some(kind) => format!("HTTP host {h} ({kind})"),
                None => format!("HTTP host {}", host_words(h)),
            }),
    );
    asks.extend(d.http_keystone_catalog.iter().map(|k| {
        format!(
            "HTTP hosts of the Keystone service catalog at {{{}}} (region {{{}}}, interface {{{}}}; only from an auth URL you type in --{})",
            k.auth_url, k.region, k.interface, k.auth_url
        )
    }));
    asks.extend(program_asks(d));
    asks.extend(
        d.files
            .iter()
            .map(|f| format!("reads a local file you name in --{f}")),
    );
    asks.extend(
        d.env_vars
            .iter()
            .map(|v| format!("environment variable {v}")),
    );
    asks
}

/// What the `vm` capability lets a plugin do, in words.
pub const VM_WORDS: &str = "runs one local virtual machine per machine under QEMU, started by dmw with a command line dmw builds and QEMU's sandbox: it uses the memory, CPUs and disk size the driver asks for, and boots only images from dmw's image cache or files you name on the command line";

/// What a declaration's programs ask for, in words: a program with argument forms "runs
/// PROGRAM only as …"; one without "runs PROGRAM with any arguments: it can do anything you
/// can" (full trust, see [`FULL_TRUST`]).
pub fn program_asks(d: &Declaration) -> Vec<String> {
    d.programs
        .iter()
        .map(|p| {
            let forms = d.forms_of(p);
            if forms.is_empty() {
                full_trust_words(p)
            } else {
                format!(
                    "runs the local program {p} only as {}",
                    forms
                        .iter()
                        .map(|f| format!("`{}`", super::declaration::describe_form(f)))
                        .collect::<Vec<_>>()
                        .join(" or ")
                )
            }
        })
        .collect()
}

/// What a program declared without argument forms is, in words.
pub fn full_trust_words(program: &str) -> String {
    format!("runs {program} with any arguments: it can do anything you can ({FULL_TRUST})")
}

/// The name of the approval a program without argument forms needs.
pub const FULL_TRUST: &str = "FULL TRUST";

/// The flag a `{flag}` or `{flag}:*` host pattern stands for, if it is one.
pub fn pattern_flag(pattern: &str) -> Option<&str> {
    pattern
        .strip_suffix(":*")
        .unwrap_or(pattern)
        .strip_prefix('{')?
        .strip_suffix('}')
}

/// A host pattern in words: `{flag}` patterns say that only a URL the user types counts.
pub fn host_words(pattern: &str) -> String {
    match pattern_flag(pattern) {
        Some(flag) if pattern.ends_with(":*") => {
            format!("{pattern} (any port of the host of a URL you type in --{flag})")
        }
        Some(flag) => format!("{pattern} (the host of a URL you type in --{flag})"),
        None => pattern.to_string(),
    }
}

/// Check the component's imports against its declaration: every `dmw:plugin` interface it
/// imports must be `types`, `log`, `store`, a default capability of `kind` or a declared one.
/// A component that imports `wasi:http` must declare the capability `http`.
pub fn check_imports(imports: &[String], kind: Kind, d: &Declaration) -> Result<()> {
    for name in imports {
        if name.starts_with("wasi:http/") && !d.capabilities.iter().any(|c| c == "http") {
            let iface = name.split('@').next().unwrap_or(name);
            bail!(
                "it imports {iface} but does not declare the capability http: its declaration does not match its code"
            );
        }
        let Some(rest) = name.strip_prefix("dmw:plugin/") else {
            continue;
        };
        let iface = rest.split('@').next().unwrap_or(rest);
        let allowed = ["types", "log", "store"].contains(&iface)
            || default_capabilities(kind).contains(&iface)
            || d.capabilities.iter().any(|c| c == iface);
        if !allowed {
            bail!(
                "it imports dmw:plugin/{iface} but does not declare the capability {iface}: its declaration does not match its code"
            );
        }
    }
    Ok(())
}

/// Decide the grant of a plugin whose bytes hash to `sha256`.
pub fn decide(
    kind: Kind,
    origin: Origin<'_>,
    sha256: &str,
    d: &Declaration,
    registry: &Registry,
) -> Result<Grant> {
    let mut capabilities: Vec<String> = default_capabilities(kind)
        .iter()
        .map(|c| c.to_string())
        .collect();
    let asks = beyond_default(kind, d);
    if let Origin::File(path) = origin
        && !asks.is_empty()
    {
        let approved = registry
            .plugins
            .iter()
            .find(|p| p.sha256 == sha256 && p.kind == kind.to_string());
        match approved {
            Some(p) if covers(&p.declaration, d) => {}
            _ => {
                let changed = registry
                    .plugins
                    .iter()
                    .find(|p| p.path == path && p.kind == kind.to_string());
                let shown = path.display();
                if let Some(p) = changed {
                    bail!(
                        "the {kind} file {shown} changed since you installed it as \"{}\" (sha256 {} then, {sha256} now); it asks for: {}. Check it with `dmw plugin inspect {shown}` and approve it again with `dmw plugin install {shown}`",
                        p.name,
                        p.sha256,
                        asks.join(", ")
                    );
                }
                bail!(
                    "the {kind} file {shown} asks for more than dmw grants a plugin used by path ({}): {}. Check it with `dmw plugin inspect {shown}` and allow it with `dmw plugin install {shown}`",
                    default_grant_words(kind),
                    asks.join(", ")
                );
            }
        }
    }
    for c in &d.capabilities {
        if !capabilities.contains(c) {
            capabilities.push(c.clone());
        }
    }
    Ok(Grant {
        capabilities,
        declaration: d.clone(),
        builtin: origin == Origin::Builtin,
    })
}

/// Whether an approved declaration covers everything `d` asks for.
fn covers(approved: &Declaration, d: &Declaration) -> bool {
    let all = |have: &[String], want: &[String]| want.iter().all(|w| have.contains(w));
    all(&approved.capabilities, &d.capabilities)
        && all(&approved.http_hosts, &d.http_hosts)
        && (d.http_keystone_catalog.is_none()
            || approved.http_keystone_catalog == d.http_keystone_catalog)
        && all(&approved.programs, &d.programs)
        && d.programs.iter().all(|p| {
            // Approved with any arguments, or every form asked for was approved.
            let had = approved.forms_of(p);
            had.is_empty() || {
                let want = d.forms_of(p);
                !want.is_empty() && want.iter().all(|f| had.contains(f))
            }
        })
        && all(&approved.env_vars, &d.env_vars)
        && all(&approved.files, &d.files)
}

/// The default grant of `kind`, in words.
pub fn default_grant_words(kind: Kind) -> &'static str {
    match kind {
        Kind::Driver => "log, its own store, SSH to the machine being worked on",
        Kind::Recipe => {
            "log, its own store, SSH and the server certificate of the machine being worked on"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(caps: &[&str]) -> Declaration {
        Declaration {
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            ..Declaration::default()
        }
    }

    #[test]
    fn a_file_that_asks_for_more_stops_until_approved() {
        let path = Path::new("/x/acme.wasm");
        let d = decl(&["keys"]);
        let mut reg = Registry::default();
        let err = decide(Kind::Driver, Origin::File(path), "aa", &d, &reg).expect_err("stops");
        let text = format!("{err}");
        assert!(
            text.contains("capability keys") && text.contains("dmw plugin install /x/acme.wasm"),
            "{text}"
        );
        reg.approve(Installed {
            name: "acme".into(),
            kind: "driver".into(),
            path: path.into(),
            sha256: "aa".into(),
            declaration: d.clone(),
        });
        let g = decide(Kind::Driver, Origin::File(path), "aa", &d, &reg).expect("approved");
        assert!(g.has("keys") && g.has("ssh") && !g.has("certs"));
        let err = decide(Kind::Driver, Origin::File(path), "bb", &d, &reg).expect_err("changed");
        assert!(
            format!("{err}").contains("changed since you installed it"),
            "{err}"
        );
    }

    #[test]
    fn foreign_environment_variables_need_approval() {
        let path = Path::new("/x/acme.wasm");
        let d = Declaration {
            env_vars: vec!["OS_PASSWORD".into()],
            ..Declaration::default()
        };
        assert_eq!(
            beyond_default(Kind::Driver, &d),
            vec!["environment variable OS_PASSWORD"]
        );
        let mut reg = Registry::default();
        let err = decide(Kind::Driver, Origin::File(path), "aa", &d, &reg).expect_err("stops");
        assert!(format!("{err}").contains("OS_PASSWORD"), "{err}");
        reg.approve(Installed {
            name: "acme".into(),
            kind: "driver".into(),
            path: path.into(),
            sha256: "aa".into(),
            declaration: Declaration::default(),
        });
        assert!(decide(Kind::Driver, Origin::File(path), "aa", &d, &reg).is_err());
        // A file flag is an ask: the host reads a file of the user's for the plugin.
        let file = Declaration {
            files: vec!["acme-userdata".into()],
            ..Declaration::default()
        };
        assert_eq!(
            beyond_default(Kind::Driver, &file),
            vec!["reads a local file you name in --acme-userdata"]
        );
        let err = decide(Kind::Driver, Origin::File(path), "ff", &file, &reg)
            .expect_err("a file flag stops a plugin used by path");
        assert!(format!("{err}").contains("--acme-userdata"), "{err}");
        let mut without_files = Registry::default();
        without_files.approve(Installed {
            name: "acme".into(),
            kind: "driver".into(),
            path: path.into(),
            sha256: "ff".into(),
            declaration: Declaration::default(),
        });
        assert!(
            decide(
                Kind::Driver,
                Origin::File(path),
                "ff",
                &file,
                &without_files
            )
            .is_err(),
            "an approval without the file flag does not cover it"
        );
        let mut with_files = Registry::default();
        with_files.approve(Installed {
            name: "acme".into(),
            kind: "driver".into(),
            path: path.into(),
            sha256: "ff".into(),
            declaration: file.clone(),
        });
        assert!(decide(Kind::Driver, Origin::File(path), "ff", &file, &with_files).is_ok());
        assert!(decide(Kind::Driver, Origin::Builtin, "ff", &file, &reg).is_ok());
        // Secrets and TLS flags are no ask: they protect the user.
        let quiet = Declaration {
            secrets: vec!["acme-token".into()],
            http_cacert: Some("acme-cacert".into()),
            ..Declaration::default()
        };
        assert!(beyond_default(Kind::Driver, &quiet).is_empty());
    }

    #[test]
    fn programs_are_asked_for_with_their_forms_and_any_arguments_is_full_trust() {
        use super::super::declaration::ProgramArgs;
        let path = Path::new("/x/acme.wasm");
        let form = |args: &[&str]| ProgramArgs {
            program: "qemu-img".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        let restricted = Declaration {
            capabilities: vec!["process".into()],
            programs: vec!["qemu-img".into(), "qemu-system-x86_64".into()],
            program_args: vec![form(&["info", "*"])],
            ..Declaration::default()
        };
        let asks = beyond_default(Kind::Driver, &restricted);
        assert!(
            asks.contains(&"runs the local program qemu-img only as `qemu-img info <a value>`".to_string())
                && asks.contains(&"runs qemu-system-x86_64 with any arguments: it can do anything you can (FULL TRUST)".to_string()),
            "{asks:?}"
        );
        let approve = |d: &Declaration| {
            let mut reg = Registry::default();
            reg.approve(Installed {
                name: "acme".into(),
                kind: "driver".into(),
                path: path.into(),
                sha256: "aa".into(),
                declaration: d.clone(),
            });
            reg
        };
        // Approved with a form: a new form, or any arguments, is not covered.
        let reg = approve(&restricted);
        assert!(decide(Kind::Driver, Origin::File(path), "aa", &restricted, &reg).is_ok());
        let wider = Declaration {
            program_args: vec![form(&["info", "*"]), form(&["convert", "**"])],
            ..restricted.clone()
        };
        assert!(decide(Kind::Driver, Origin::File(path), "aa", &wider, &reg).is_err());
        let any = Declaration {
            program_args: Vec::new(),
            ..restricted.clone()
        };
        assert!(decide(Kind::Driver, Origin::File(path), "aa", &any, &reg).is_err());
        // Approved with any arguments (an approval from before forms): forms are narrower.
        let reg = approve(&any);
        assert!(decide(Kind::Driver, Origin::File(path), "aa", &restricted, &reg).is_ok());
    }

    #[test]
    fn a_literal_special_address_says_what_it_reaches() {
        let d = Declaration {
            http_hosts: vec![
                "127.0.0.1:8080".into(),
                "169.254.169.254".into(),
                "api.example.test".into(),
            ],
            ..Declaration::default()
        };
        assert_eq!(
            beyond_default(Kind::Driver, &d),
            vec![
                "HTTP host 127.0.0.1:8080 (loopback: a service on your own computer)",
                "HTTP host 169.254.169.254 (link-local: the cloud metadata service and your own network segment)",
                "HTTP host api.example.test",
            ]
        );
    }

    #[test]
    fn defaults_builtins_and_every_known_capability_provided() {
        let reg = Registry::default();
        let g = decide(
            Kind::Recipe,
            Origin::File(Path::new("/r.wasm")),
            "x",
            &decl(&[]),
            &reg,
        )
        .expect("default grant");
        assert_eq!(g.capabilities, vec!["ssh", "certs"]);
        let g =
            decide(Kind::Driver, Origin::Builtin, "x", &decl(&["keys"]), &reg).expect("builtin");
        assert!(g.has("keys"));
        // The names a declaration may use are the capabilities provided: one list.
        assert_eq!(
            provided_names(),
            vec!["ssh", "certs", "keys", "http", "process", "files", "vm"]
        );
    }

    #[test]
    fn an_unknown_capability_is_refused_naming_the_known_ones() {
        // A core module whose only section is `dmw:permissions` (sizes below 128 bytes).
        let module = |text: &str| {
            let name = super::super::declaration::SECTION.as_bytes();
            let mut body = vec![name.len() as u8];
            body.extend(name);
            body.extend(text.as_bytes());
            let mut m = b"\0asm\x01\0\0\0".to_vec();
            m.push(0);
            m.push(body.len() as u8);
            m.extend(body);
            m
        };
        let ok = read_declaration(&module("dmw-permissions 1\ncapability vm\n")).expect("vm");
        assert_eq!(ok.capabilities, vec!["vm"]);
        let e =
            read_declaration(&module("dmw-permissions 1\ncapability root\n")).expect_err("unknown");
        assert!(
            e.to_string()
                .contains("\"root\", which dmw does not know (known: ssh, certs"),
            "{e}"
        );
    }

    #[test]
    fn imports_must_be_declared() {
        let imports = vec![
            "wasi:cli/environment@0.2.6".to_string(),
            "dmw:plugin/log@0.1.2".to_string(),
            "dmw:plugin/ssh@0.1.2".to_string(),
        ];
        assert!(check_imports(&imports, Kind::Driver, &decl(&[])).is_ok());
        let certs = vec!["dmw:plugin/certs@0.1.2".to_string()];
        assert!(check_imports(&certs, Kind::Recipe, &decl(&[])).is_ok());
        let err = check_imports(&certs, Kind::Driver, &decl(&[])).expect_err("undeclared");
        assert!(
            format!("{err}").contains("does not declare the capability certs"),
            "{err}"
        );
        assert!(check_imports(&certs, Kind::Driver, &decl(&["certs"])).is_ok());
        let http = vec!["wasi:http/outgoing-handler@0.2.12".to_string()];
        let err = check_imports(&http, Kind::Driver, &decl(&[])).expect_err("undeclared");
        assert!(
            format!("{err}").contains("does not declare the capability http"),
            "{err}"
        );
        assert!(check_imports(&http, Kind::Driver, &decl(&["http"])).is_ok());
        // `keys`, at the current version or an older compatible one, only when declared.
        for keys in [
            "dmw:plugin/keys@0.1.2",
            "dmw:plugin/keys@0.1.1",
            "dmw:plugin/keys@0.1.0",
        ] {
            let imports = vec![keys.to_string()];
            let err = check_imports(&imports, Kind::Driver, &decl(&[])).expect_err("undeclared");
            assert!(
                format!("{err}").contains("does not declare the capability keys"),
                "{err}"
            );
            assert!(check_imports(&imports, Kind::Driver, &decl(&["keys"])).is_ok());
        }
    }
}
