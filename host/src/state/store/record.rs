//! The machine record (`config.json`): everything dmw knows about one machine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the record format written by this dmw.
pub const RECORD_VERSION: u32 = 1;

/// Where a machine is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MachineStatus {
    /// `create` is under way (or died before finishing).
    Creating,
    /// Provisioned: the engine answered over mutual TLS.
    Ready,
    /// It exists at its provider and dmw has not provisioned it (`create --no-provision`):
    /// no SSH contact yet, no engine; `dmw provision` does both.
    Unprovisioned,
    /// A step failed; `error` says which.
    Error,
}

/// The step older records named for a `--no-provision` machine (status `error`), read as
/// [`MachineStatus::Unprovisioned`] (see [`MachineRecord::upgrade`]).
pub const LEGACY_NOT_PROVISIONED_STEP: &str = "provision (skipped: --no-provision)";

/// The step that failed and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    /// Pipeline step, e.g. `wait for SSH`.
    pub step: String,
    /// What went wrong and what to do.
    pub message: String,
}

/// Which plugin drives the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverRef {
    /// Driver name (its `info().name`).
    pub name: String,
    /// `builtin:<name>` or the absolute path of a `.wasm` file.
    pub source: String,
}

impl DriverRef {
    /// A built-in plugin.
    pub fn builtin(name: &str) -> DriverRef {
        DriverRef {
            name: name.into(),
            source: format!("builtin:{name}"),
        }
    }
}

/// How Docker Engine is installed (`--engine-install-method`); stored in the record as
/// the lower-case name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum InstallMethod {
    /// The recipe's choice: Docker's packages where Docker publishes them for the OS, else the OS's; an installed engine is kept.
    #[default]
    Auto,
    /// Docker's packages.
    Repo,
    /// The OS's packages.
    Distro,
    /// The install script (`--engine-install-url`).
    Script,
    /// Nothing is installed.
    None,
}

impl InstallMethod {
    /// Every method, in the order the help lists them.
    pub const ALL: [InstallMethod; 5] = [
        InstallMethod::Auto,
        InstallMethod::Repo,
        InstallMethod::Distro,
        InstallMethod::Script,
        InstallMethod::None,
    ];

    /// The name as typed and stored: `auto`, `repo`, …
    pub fn as_str(self) -> &'static str {
        match self {
            InstallMethod::Auto => "auto",
            InstallMethod::Repo => "repo",
            InstallMethod::Distro => "distro",
            InstallMethod::Script => "script",
            InstallMethod::None => "none",
        }
    }
}

impl std::fmt::Display for InstallMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for InstallMethod {
    type Err = String;

    /// A stored or typed name; the empty string (records written before the default was
    /// stored) is `auto`.
    fn from_str(s: &str) -> Result<InstallMethod, String> {
        if s.is_empty() {
            return Ok(InstallMethod::Auto);
        }
        InstallMethod::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown engine install method {s:?}: use auto, repo, distro, script or none"
                )
            })
    }
}

impl Serialize for InstallMethod {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for InstallMethod {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<InstallMethod, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How the engine is installed and configured; stored so `provision` can re-apply it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineOptions {
    /// auto | repo | distro | script | none.
    pub install_method: InstallMethod,
    /// Script URL for the `script` method.
    pub install_url: String,
    /// Base URL of Docker's package repository (a mirror) for the `repo` method.
    pub repo_url: String,
    /// `--engine-storage-driver`.
    pub storage_driver: String,
    /// `--engine-label` values.
    pub labels: Vec<String>,
    /// `--engine-insecure-registry` values.
    pub insecure_registries: Vec<String>,
    /// `--engine-registry-mirror` values.
    pub registry_mirrors: Vec<String>,
    /// `--engine-opt` values.
    pub opts: Vec<String>,
    /// `--engine-env` values.
    pub env: Vec<String>,
}

/// How to reach the machine, cached so `env`, `ip`, `url` need no plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// IP or hostname.
    pub address: String,
    /// Engine TLS port.
    pub engine_port: u16,
    /// SSH login.
    pub ssh_address: String,
    /// SSH port.
    pub ssh_port: u16,
    /// SSH user.
    pub ssh_user: String,
}

impl Endpoint {
    /// The endpoint of an engine URL dmw can reach over TLS (a none machine's recorded URL):
    /// `tcp://HOST[:PORT]` with an IP address or DNS name; `None` for any other text, which
    /// is kept as the user's own and never dialled.
    pub fn of_engine_url(url: &str) -> Option<Endpoint> {
        let parsed = dmw_text::parse_engine_url(url, &["tcp"]).ok()?;
        crate::text::validate::check_engine_values("none", &parsed.host, parsed.port).ok()?;
        Some(Endpoint {
            address: parsed.host,
            engine_port: parsed.port,
            ssh_address: String::new(),
            ssh_port: 0,
            ssh_user: String::new(),
        })
    }

    /// Check every value (records written by older versions or imported from another store
    /// are checked again before they are used): the engine address and port, and — unless
    /// the machine has no SSH access (`ssh_port` 0) — the SSH address, port and user. The
    /// error says what is wrong, e.g. `address "a b", which is not …`.
    pub fn check(&self) -> Result<(), String> {
        use crate::text::validate::{address_problem, port, ssh_user_problem};
        if let Some(p) = address_problem(&self.address) {
            return Err(p);
        }
        port(self.engine_port).map_err(|why| format!("engine port: {why}"))?;
        if self.ssh_port == 0 && self.ssh_address.is_empty() && self.ssh_user.is_empty() {
            return Ok(());
        }
        if let Some(p) = address_problem(&self.ssh_address) {
            return Err(format!("SSH {p}"));
        }
        port(self.ssh_port).map_err(|why| format!("SSH port: {why}"))?;
        if let Some(p) = ssh_user_problem(&self.ssh_user) {
            return Err(p);
        }
        Ok(())
    }

    /// The engine URL, `tcp://address:port`.
    pub fn url(&self) -> String {
        if self.address.contains(':') {
            format!("tcp://[{}]:{}", self.address, self.engine_port)
        } else {
            format!("tcp://{}:{}", self.address, self.engine_port)
        }
    }
}

/// Everything dmw stores about one machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineRecord {
    /// Record format version.
    pub config_version: u32,
    /// Machine name.
    pub name: String,
    /// The driver plugin.
    pub driver: DriverRef,
    /// The driver's private key-value state (its `store` interface).
    #[serde(default)]
    pub driver_state: BTreeMap<String, String>,
    /// The recipe that provisioned it (chosen from os-release or `--recipe`).
    #[serde(default)]
    pub recipe: Option<DriverRef>,
    /// The recipe's private key-value state.
    #[serde(default)]
    pub recipe_state: BTreeMap<String, String>,
    /// Life-cycle status.
    pub status: MachineStatus,
    /// The failed step, when status is `error`.
    #[serde(default)]
    pub error: Option<StepError>,
    /// Addresses, known once the driver created the machine.
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// Engine options.
    #[serde(default)]
    pub engine: EngineOptions,
    /// Extra SANs for the server certificate (`--tls-san`).
    #[serde(default)]
    pub tls_sans: Vec<String>,
    /// `PRETTY_NAME` of the machine's OS.
    #[serde(default)]
    pub os: Option<String>,
    /// Engine version seen at the last successful check.
    #[serde(default)]
    pub docker_version: Option<String>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// The machine is only an engine URL (its driver does not provision, e.g. `none`):
    /// no SSH access, nothing to provision; state comes from the URL.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub engine_only: bool,
    /// The engine URL exactly as the user typed it (`create -d none --url URL`), which
    /// `url`, `ls` and `ip` show as Docker Machine did; the endpoint holds it only when it
    /// is a `tcp://HOST[:PORT]` URL dmw can reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_url: Option<String>,
    /// Where the machine was adopted from (`dmw import`), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<Imported>,
    /// The machine's SSH key pair was made by dmw (no key file of the user's): its public
    /// half is lent to a driver granted `keys`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generated_key: bool,
    /// What the driver's `http` capability may reach for this machine and how (its allowed
    /// hosts with its flags resolved, CA bundle, insecure mode), for a driver granted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<crate::net::http::HttpSettings>,
    /// Its place in a Swarm-mode cluster, if dmw made it join one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<SwarmMembership>,
    /// dmw has never provisioned it (created with `--no-provision`; cleared when a
    /// provisioning succeeds): its first SSH connection pins the host key, also after a
    /// provisioning that failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub never_provisioned: bool,
}

/// A machine's place in a Swarm-mode cluster, as recorded when it joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwarmMembership {
    /// The cluster's name in dmw: the machine that initialised it.
    pub cluster: String,
    /// The engine's cluster ID.
    pub cluster_id: String,
    /// This engine's node ID.
    pub node_id: String,
    /// `manager` or `worker` when it joined (`dmw swarm ls` shows the live role).
    pub role: String,
    /// The address it advertises to the cluster.
    pub advertise_addr: String,
}

impl Default for SwarmMembership {
    fn default() -> Self {
        SwarmMembership {
            cluster: String::new(),
            cluster_id: String::new(),
            node_id: String::new(),
            role: "worker".into(),
            advertise_addr: String::new(),
        }
    }
}

impl SwarmMembership {
    /// Whether it joined as a manager.
    pub fn is_manager(&self) -> bool {
        self.role == "manager"
    }

    /// Docker Machine's SWARM column: the cluster's name, with ` (manager)` on managers.
    pub fn column(&self) -> String {
        if self.is_manager() {
            format!("{} (manager)", self.cluster)
        } else {
            self.cluster.clone()
        }
    }
}

/// The authority of a URL as Go's `url.Parse` puts it in `Host`: what follows `scheme://`
/// up to the path, query or fragment, without any `user@`.
pub fn url_host(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return String::new();
    };
    if scheme.is_empty() {
        return String::new();
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    match authority.rsplit_once('@') {
        Some((_, host)) => host.to_string(),
        None => authority.to_string(),
    }
}

/// A machine adopted from a Docker Machine store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    /// The Docker Machine storage path it came from.
    pub from: String,
    /// When it was imported (RFC 3339).
    pub at: String,
}

impl MachineRecord {
    /// A new record in state `creating`.
    pub fn new(name: &str, driver: DriverRef, engine: EngineOptions) -> MachineRecord {
        let created_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        MachineRecord {
            config_version: RECORD_VERSION,
            name: name.into(),
            driver,
            driver_state: BTreeMap::new(),
            recipe: None,
            recipe_state: BTreeMap::new(),
            status: MachineStatus::Creating,
            error: None,
            endpoint: None,
            engine,
            tls_sans: Vec::new(),
            os: None,
            docker_version: None,
            created_at,
            engine_only: false,
            engine_url: None,
            imported: None,
            generated_key: false,
            http: None,
            swarm: None,
            never_provisioned: false,
        }
    }

    /// Bring a record written by an older dmw to this one's meaning: a `--no-provision`
    /// machine was status `error` with [`LEGACY_NOT_PROVISIONED_STEP`].
    pub fn upgrade(mut self) -> MachineRecord {
        if self.status == MachineStatus::Error
            && self
                .error
                .as_ref()
                .is_some_and(|e| e.step == LEGACY_NOT_PROVISIONED_STEP)
        {
            self.status = MachineStatus::Unprovisioned;
            self.error = None;
            self.never_provisioned = true;
        }
        self
    }

    /// Mark it provisioned: the engine answered.
    pub fn mark_ready(&mut self) {
        self.status = MachineStatus::Ready;
        self.error = None;
        self.never_provisioned = false;
    }

    /// Why the machine has no SSH access, if it has none (the `none` driver).
    pub fn no_ssh_reason(&self) -> Option<String> {
        self.engine_only.then(|| {
            format!(
                "machine \"{}\" uses the {} driver: it has no SSH access (dmw only knows its engine URL)",
                self.name, self.driver.name
            )
        })
    }

    /// The engine URL, if the address is known.
    pub fn url(&self) -> Option<String> {
        self.endpoint.as_ref().map(Endpoint::url)
    }

    /// The URL `url` and `ls` print: the recorded `--url` of an engine-only machine as
    /// typed, else the endpoint's URL.
    pub fn shown_url(&self) -> Option<String> {
        self.engine_url.clone().or_else(|| self.url())
    }

    /// What `ip` prints: the address, or for a recorded `--url` the URL's `host:port` as
    /// Go's `url.Parse(...).Host` gave it to Docker Machine's none driver (empty for a
    /// URL without `//`).
    pub fn shown_ip(&self) -> Option<String> {
        match &self.engine_url {
            Some(u) => Some(url_host(u)),
            None => self.endpoint.as_ref().map(|e| e.address.clone()),
        }
    }

    /// A copy safe to show on a terminal: the texts that came from plugins (the stored
    /// error, the driver's name, the plugins' state values) made inert, as records written
    /// before the host sanitised plugin text may hold raw control characters; the values
    /// of secret store keys ([`crate::text::sanitize::is_secret_key`]) shown as `<redacted>`.
    pub fn for_display(&self) -> MachineRecord {
        use crate::text::sanitize::stored_text;
        let mut r = self.clone();
        if let Some(e) = r.error.as_mut() {
            e.message = stored_text(&e.message);
            e.step = stored_text(&e.step);
        }
        r.driver.name = stored_text(&r.driver.name);
        for v in r
            .driver_state
            .values_mut()
            .chain(r.recipe_state.values_mut())
        {
            *v = stored_text(v);
        }
        for (k, v) in r.driver_state.iter_mut().chain(r.recipe_state.iter_mut()) {
            if crate::text::sanitize::is_secret_key(k) {
                *v = crate::text::sanitize::REDACTED.to_string();
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_host_is_gos_url_host() {
        assert_eq!(url_host("tcp://127.0.0.1:2999"), "127.0.0.1:2999");
        assert_eq!(url_host("tcp://u@h:1/p?q#f"), "h:1");
        assert_eq!(url_host("tcp://[::1]:2376"), "[::1]:2376");
        assert_eq!(url_host("none"), "");
        assert_eq!(url_host("://h"), "");
    }

    #[test]
    fn a_legacy_no_provision_record_reads_as_unprovisioned_until_provisioned() {
        let mut r = MachineRecord::new(
            "np",
            DriverRef::builtin("amazonec2"),
            EngineOptions::default(),
        );
        r.status = MachineStatus::Error;
        r.error = Some(StepError {
            step: LEGACY_NOT_PROVISIONED_STEP.into(),
            message: "created with --no-provision".into(),
        });
        let json = serde_json::to_string(&r).expect("json");
        let mut read: MachineRecord = serde_json::from_str::<MachineRecord>(&json)
            .expect("read")
            .upgrade();
        assert_eq!(read.status, MachineStatus::Unprovisioned);
        assert!(read.never_provisioned && read.error.is_none());
        // Written back, it says so in this version's words.
        let json = serde_json::to_string(&read).expect("json");
        assert!(
            json.contains("\"status\":\"unprovisioned\"")
                && json.contains("\"never_provisioned\":true"),
            "{json}"
        );
        read.mark_ready();
        assert_eq!(read.status, MachineStatus::Ready);
        assert!(!read.never_provisioned);
        assert!(
            !serde_json::to_string(&read)
                .expect("json")
                .contains("never_provisioned")
        );
        // Another failed step is left as it is.
        let mut failed = read.clone();
        failed.status = MachineStatus::Error;
        failed.error = Some(StepError {
            step: "wait for SSH".into(),
            message: "no answer".into(),
        });
        let kept = failed.clone().upgrade();
        assert_eq!((kept.status, kept.error), (failed.status, failed.error));
    }

    #[test]
    fn endpoints_are_checked_value_by_value() {
        let mut ep = Endpoint {
            address: "10.0.0.2".into(),
            engine_port: 2376,
            ssh_address: "10.0.0.2".into(),
            ssh_port: 22,
            ssh_user: "root".into(),
        };
        assert!(ep.check().is_ok());
        let engine_only = Endpoint {
            ssh_address: String::new(),
            ssh_port: 0,
            ssh_user: String::new(),
            ..ep.clone()
        };
        assert!(engine_only.check().is_ok());
        ep.ssh_user = "root\n ProxyCommand x".into();
        let e = ep.check().unwrap_err();
        assert!(e.starts_with("SSH user \"root\\n ProxyCommand x\""), "{e}");
        ep.ssh_user = "root".into();
        ep.address = "127.0.0.1/$(id)".into();
        let e = ep.check().unwrap_err();
        assert_eq!(
            e,
            "address \"127.0.0.1/$(id)\", which is not an IP address or DNS name (the character '/' is not allowed)"
        );
    }
}
