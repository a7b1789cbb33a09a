//! `dmw plugin inspect` and `install`: what a plugin is and what it asks for, found without
//! running it with any capability (its declaration is read from the file; `info` and
//! `create-flags` run with neither SSH nor certificates, only its empty store and the log).

use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Serialize;

use super::declaration::Declaration;
use super::grants::{self, Installed};
use super::{Kind, Runtime, Source};
use crate::sandbox::capabilities::Offer;
use crate::text::report::Reporter;

/// A create flag's name and the environment variable it reads.
#[derive(Debug, Clone, Serialize)]
pub struct FlagInfo {
    /// Flag name without dashes.
    pub name: String,
    /// Environment variable it falls back to, if any.
    pub env_var: Option<String>,
    /// The plugin's default value, if any (shown as plugin text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// What `dmw plugin inspect` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// `builtin:NAME` or the file's absolute path.
    pub source: String,
    /// sha256 of the component's bytes.
    pub sha256: String,
    /// `driver` or `recipe`.
    pub kind: String,
    /// The plugin's name (from `info`).
    pub name: String,
    /// Its one-line description.
    pub description: String,
    /// What every plugin of its kind gets without asking.
    pub default_grant: String,
    /// What it declares.
    pub declaration: Declaration,
    /// What it asks for beyond the default grant, in words.
    pub asks_beyond_default: Vec<String>,
    /// The programs it runs with any arguments (declared without argument forms): each can
    /// do anything the user can, so approving it is full trust.
    pub full_trust: Vec<String>,
    /// Its imports (WIT interfaces).
    pub imports: Vec<String>,
    /// Its create flags (drivers).
    pub flags: Vec<FlagInfo>,
    /// Whether it may run as it is here, and if not, why.
    pub usable: Result<(), String>,
    /// Whether its bytes (the ones hashed above) are byte for byte a built-in driver's.
    pub builtin_copy: bool,
    /// Whether its flag declarations follow dmw's rules (`plugin::flag_policy`), and if
    /// not, why.
    pub flags_ok: Result<(), String>,
    /// What it was given for one machine (`plugin inspect --machine NAME`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineGrant>,
}

/// What a machine's driver was given when the machine was created: the hosts its
/// declared patterns resolved to with the values the user typed, its TLS settings, and
/// what its VM boots.
#[derive(Debug, Clone, Serialize)]
pub struct MachineGrant {
    /// The machine's name.
    pub machine: String,
    /// The hosts its HTTP requests may reach (each declared pattern, `{flag}` patterns
    /// resolved from the URLs the user typed).
    pub http_hosts: Vec<String>,
    /// Those of them that came from a URL the user typed.
    pub typed_hosts: Vec<String>,
    /// The Keystone whose catalog adds hosts: auth origin, region and interface.
    pub keystone: Option<String>,
    /// The CA bundle its requests trust besides the system's roots.
    pub cacert: Option<String>,
    /// Whether TLS verification is off for it.
    pub insecure: bool,
    /// What its VM boots (`vm`): the image, its format, the kernel and initramfs.
    pub vm: Option<crate::vm::qemu::VmDisk>,
}

impl MachineGrant {
    /// What `record`'s driver was given (its VM's record read from `dir`).
    pub fn of(
        record: &crate::state::store::MachineRecord,
        dir: &crate::state::store::MachineDir,
    ) -> Self {
        let http = record.http.clone().unwrap_or_default();
        MachineGrant {
            machine: record.name.clone(),
            http_hosts: http.hosts.clone(),
            typed_hosts: http.named.clone(),
            keystone: http.keystone.as_ref().map(|k| {
                format!(
                    "{} (region {}, interface {})",
                    k.auth,
                    k.region.as_deref().unwrap_or("any"),
                    k.interface
                )
            }),
            cacert: http.cacert.as_ref().map(|p| p.display().to_string()),
            insecure: http.insecure,
            vm: crate::sandbox::capabilities::vm::recorded_disk(dir),
        }
    }
}

/// A machine's grant in plain words, one fact a line.
pub fn render_machine(m: &MachineGrant) -> String {
    let hosts = if m.http_hosts.is_empty() {
        "none".to_string()
    } else {
        m.http_hosts
            .iter()
            .map(|h| {
                if m.typed_hosts.contains(h) {
                    format!("{h} (from a URL you typed)")
                } else {
                    h.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = format!("for machine \"{}\":\n  http hosts: {hosts}\n", m.machine);
    if let Some(k) = &m.keystone {
        out.push_str(&format!("  and the Keystone service catalog of {k}\n"));
    }
    let tls = match (&m.cacert, m.insecure) {
        (_, true) => "verification off (you typed the insecure flag)".to_string(),
        (Some(ca), false) => format!("system roots and the CA bundle {ca}"),
        (None, false) => "system roots only".to_string(),
    };
    out.push_str(&format!("  http tls:   {tls}\n"));
    if let Some(vm) = &m.vm {
        out.push_str(&format!(
            "  vm boots:   {} ({}){}{}\n",
            vm.base.display(),
            vm.format,
            vm.kernel
                .as_ref()
                .map(|k| format!(", kernel {}", k.display()))
                .unwrap_or_default(),
            vm.initrd
                .as_ref()
                .map(|k| format!(", initramfs {}", k.display()))
                .unwrap_or_default()
        ));
    }
    out
}

impl Inspection {
    /// What becomes of the default of flag `name` for the allow-list: "" when it has none.
    fn default_note(&self, name: &str) -> String {
        match self
            .flags
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.default.as_deref())
        {
            Some(v) => format!(
                "; the driver's default {v:?} is not used for the allow-list: with no URL typed, no host"
            ),
            None => String::new(),
        }
    }

    /// The environment variables its flags read.
    pub fn env_vars(&self) -> Vec<&str> {
        self.flags
            .iter()
            .filter_map(|f| f.env_var.as_deref())
            .collect()
    }
}

/// Inspect a plugin.
pub async fn inspect(runtime: &Runtime, source: &Source) -> Result<Inspection> {
    let probe_kind = Kind::Driver;
    let (bytes, label) = runtime.bytes(source, probe_kind)?;
    let component = runtime.compile(&bytes, &label)?;
    let kind = runtime
        .kind_of(&component)
        .with_context(|| format!("{} is not a dmw plugin", source.reference()))?;
    let declaration = super::grants::read_declaration(&bytes)?;
    let imports = runtime.imports(&component);
    let quiet = Arc::new(Reporter::quiet(false));
    // Only `info` and `create-flags` run: nothing beyond log and store is lent.
    let nothing = super::grants::Grant::default();
    let offer = || Offer::new("plugin", quiet.clone(), Default::default());
    let builtin_copy = kind == Kind::Driver
        && (matches!(source, Source::Builtin(_)) || super::builtin::is_driver_bytes(&bytes));
    let (name, description, flags, flags_ok) = match kind {
        Kind::Driver => {
            let mut d = runtime.driver(&component, &nothing, offer()).await?;
            let info = d.info().await?;
            let raw = d.create_flags().await?;
            let flags_ok = super::flag_policy::check(&info.name, &raw, builtin_copy, &declaration);
            let flags = raw
                .into_iter()
                .map(|f| FlagInfo {
                    name: crate::text::sanitize::plugin_text(
                        &f.name,
                        crate::text::sanitize::NAME_LIMIT,
                    ),
                    env_var: f.env_var.map(|v| {
                        crate::text::sanitize::plugin_text(&v, crate::text::sanitize::NAME_LIMIT)
                    }),
                    default: f.default.filter(|v| !v.trim().is_empty()).map(|v| {
                        crate::text::sanitize::plugin_text(&v, crate::text::sanitize::MESSAGE_LIMIT)
                    }),
                })
                .collect();
            (info.name, info.description, flags, flags_ok)
        }
        Kind::Recipe => {
            let mut r = runtime.recipe(&component, &nothing, offer()).await?;
            let info = r.info().await?;
            (info.name, info.description, Vec::new(), Ok(()))
        }
    };
    let granted = runtime
        .grant(source, kind, &bytes, &component)
        .map(|_| ())
        .map_err(|e| format!("{e:#}"));
    // Every reason it may not run, the grant's and the flags'.
    let usable = match (granted, flags_ok.clone()) {
        (Ok(()), Ok(())) => Ok(()),
        (a, b) => Err([a.err(), b.err()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n")),
    };
    Ok(Inspection {
        source: source.reference(),
        sha256: grants::sha256_hex(&bytes),
        kind: kind.to_string(),
        name: crate::text::sanitize::plugin_text(&name, crate::text::sanitize::NAME_LIMIT),
        description: crate::text::sanitize::plugin_text(
            &description,
            crate::text::sanitize::MESSAGE_LIMIT,
        ),
        default_grant: grants::default_grant_words(kind).to_string(),
        asks_beyond_default: grants::beyond_default(kind, &declaration),
        full_trust: declaration
            .unrestricted_programs()
            .into_iter()
            .map(String::from)
            .collect(),
        declaration,
        imports,
        flags,
        usable,
        builtin_copy,
        flags_ok,
        machine: None,
    })
}

/// The approval `dmw plugin install` records for an inspected plugin file.
pub fn approval(i: &Inspection, path: &std::path::Path) -> Installed {
    Installed {
        name: i.name.clone(),
        kind: i.kind.clone(),
        path: path.to_path_buf(),
        sha256: i.sha256.clone(),
        declaration: i.declaration.clone(),
    }
}

/// The warning for a plugin that runs programs with any arguments (none when it does not).
pub fn full_trust_warning(i: &Inspection) -> Option<String> {
    if i.full_trust.is_empty() {
        return None;
    }
    Some(format!(
        "WARNING — {}: this {} runs {} with any arguments. A program run with any arguments can do anything you can: read, change and delete your files, run any other program, reach any host. Approving it trusts the plugin as much as software you install.\n",
        grants::FULL_TRUST,
        i.kind,
        i.full_trust.join(" and ")
    ))
}

/// The inspection in plain words, one fact a line (after the full-trust warning, if any).
pub fn render(i: &Inspection) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let env = i.env_vars();
    let d = &i.declaration;
    let flag_list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(|f| format!("--{f}"))
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let mut hosts: Vec<String> = d
        .http_hosts
        .iter()
        .map(|h| match grants::pattern_flag(h) {
            Some(flag) => {
                let words = grants::host_words(h);
                let open = words.strip_suffix(')').unwrap_or(&words);
                format!("{open}{})", i.default_note(flag))
            }
            None => h.clone(),
        })
        .collect();
    if let Some(k) = &d.http_keystone_catalog {
        hosts.push(format!(
            "the Keystone service catalog endpoints of --{} for the region --{} and interface --{} (default public; only from an auth URL you type in --{}{})",
            k.auth_url,
            k.region,
            k.interface,
            k.auth_url,
            i.default_note(&k.auth_url)
        ));
    }
    let tls = match (&d.http_cacert, &d.http_insecure) {
        (None, None) => "system roots only".to_string(),
        (ca, insecure) => [
            ca.as_ref().map(|f| format!("CA bundle from --{f}")),
            insecure
                .as_ref()
                .map(|f| format!("--{f} turns verification off")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; "),
    };
    let programs = if d.programs.is_empty() {
        "none".to_string()
    } else {
        grants::program_asks(d).join("; ")
    };
    format!(
        "{}plugin:      {}\nsha256:      {}\nkind:        {} \"{}\": {}\ngets always: {}\nasks for:    {}\nenvironment: {}\nsecrets:     {}\nfile flags:  {}\nhttp hosts:  {}\nhttp tls:    {}\nprograms:    {}\nflags:       {}\nimports:     {}\nusable here: {}\n",
        full_trust_warning(i).unwrap_or_default(),
        i.source,
        i.sha256,
        i.kind,
        i.name,
        i.description,
        i.default_grant,
        list(&i.asks_beyond_default),
        if env.is_empty() {
            "reads no environment variable".to_string()
        } else {
            format!("reads {}", env.join(", "))
        },
        flag_list(&d.secrets),
        flag_list(&d.files),
        list(&hosts),
        tls,
        programs,
        if i.flags.is_empty() {
            "none".to_string()
        } else {
            i.flags
                .iter()
                .map(|f| format!("--{}", f.name))
                .collect::<Vec<_>>()
                .join(" ")
        },
        i.imports.join(", "),
        match &i.usable {
            Ok(()) => "yes".to_string(),
            Err(why) => format!("no: {why}"),
        }
    ) + &i.machine.as_ref().map(render_machine).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machines_grant_says_which_hosts_the_user_typed_and_what_its_vm_boots() {
        let m = MachineGrant {
            machine: "m1".into(),
            http_hosts: vec!["api.example.com".into(), "127.0.0.1:8080".into()],
            typed_hosts: vec!["127.0.0.1:8080".into()],
            keystone: Some("https://keystone:5000 (region any, interface public)".into()),
            cacert: Some("/home/u/ca.pem".into()),
            insecure: false,
            vm: Some(crate::vm::qemu::VmDisk {
                base: "/c/img/disk.qcow2".into(),
                format: "qcow2".into(),
                kernel: Some("/c/img/vmlinuz".into()),
                initrd: None,
            }),
        };
        let text = render_machine(&m);
        for want in [
            "for machine \"m1\":",
            "http hosts: api.example.com, 127.0.0.1:8080 (from a URL you typed)",
            "and the Keystone service catalog of https://keystone:5000",
            "http tls:   system roots and the CA bundle /home/u/ca.pem",
            "vm boots:   /c/img/disk.qcow2 (qcow2), kernel /c/img/vmlinuz",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        let none = MachineGrant {
            http_hosts: vec![],
            keystone: None,
            vm: None,
            insecure: true,
            ..m
        };
        let text = render_machine(&none);
        assert!(
            text.contains("http hosts: none") && text.contains("verification off"),
            "{text}"
        );
        assert!(!text.contains("vm boots"), "{text}");
    }
}
