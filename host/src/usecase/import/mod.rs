//! `dmw import`: adopt machines from a Docker Machine store without re-provisioning them.
//!
//! Each `machines/NAME/config.json` of a `generic` or `none` machine becomes a dmw record
//! (made through the built-in driver's `set-config`, as `create` does). The machine keeps
//! the TLS material Docker Machine made for it (its engine trusts Docker Machine's CA): the
//! CA certificate, client certificate and key are copied into the dmw machine directory,
//! which is its `DOCKER_CERT_PATH`, together with the server certificate and the SSH key.
//! Docker Machine keeps no host key, so an imported machine pins it on first connection.
//! Other drivers, name clashes and incomplete machines are skipped with the reason.

pub mod docker_machine;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};

use crate::app::App;
use crate::sandbox::plugin::driver::FlagValue;
use crate::sandbox::plugin::{Source, builtin};
use crate::state::store::layout::{CA_CERT, CLIENT_CERT, CLIENT_KEY, SERVER_CERT, SERVER_KEY};
use crate::state::store::{
    Endpoint, EngineOptions, Imported, InstallMethod, MachineDir, MachineRecord, MachineStatus,
    Store,
};
use crate::text::report::Reporter;
use docker_machine::HostConfig;

/// Drivers whose machines can be imported.
pub const SUPPORTED_DRIVERS: &[&str] = &["generic", "none"];

/// TLS files of the machine directory: (file name, mode, required).
const TLS_FILES: &[(&str, u32, bool)] = &[
    (CA_CERT, 0o644, true),
    (CLIENT_CERT, 0o644, true),
    (CLIENT_KEY, 0o600, true),
    (SERVER_CERT, 0o644, false),
    (SERVER_KEY, 0o600, false),
];

/// What `import` will do with one machine of the source store.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Adopt it.
    Import(Box<Candidate>),
    /// Leave it, for this reason.
    Skip {
        /// Machine name (the directory's).
        name: String,
        /// Its driver, if the config could be read.
        driver: String,
        /// Why it is not imported.
        reason: String,
    },
}

/// A machine that can be adopted.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Machine name.
    pub name: String,
    /// Driver name (`generic` or `none`).
    pub driver: String,
    /// The driver's create flags, from Docker Machine's driver settings.
    pub flags: Vec<FlagValue>,
    /// Engine options, from `HostOptions.EngineOptions`.
    pub engine: EngineOptions,
    /// The SSH private key to copy (generic machines).
    pub ssh_key: Option<PathBuf>,
    /// The TLS files to copy: (source, file name in the machine directory, mode).
    pub tls: Vec<(PathBuf, &'static str, u32)>,
    /// A none machine's URL, kept as Docker Machine recorded it (any text, as `create -d
    /// none --url` takes it); reached only when it is `tcp://HOST[:PORT]`.
    pub engine_url: Option<String>,
    /// One line for the user: where the machine is.
    pub summary: String,
}

fn flag(name: &str, value: impl ToString) -> FlagValue {
    FlagValue {
        name: name.into(),
        values: vec![value.to_string()],
    }
}

/// The first of `candidates` that is a file.
fn first_file(candidates: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
    candidates.into_iter().find(|p| p.is_file())
}

/// A path from config.json, or the same file name under `fallback_dir` (the store may have
/// been moved since Docker Machine wrote the absolute paths).
fn moved(path: &str, fallback_dir: &Path) -> Vec<PathBuf> {
    if path.is_empty() {
        return Vec::new();
    }
    let p = PathBuf::from(path);
    let mut out = vec![p.clone()];
    if let Some(file) = p.file_name() {
        out.push(fallback_dir.join(file));
    }
    out
}

/// Decide, for every machine of the Docker Machine store at `source`, what import does.
pub fn plan(store: &Store, source: &Path) -> Result<Vec<Plan>> {
    // Docker Machine's store has dmw's top-level layout (machines/, certs/).
    let machines = Store::new(source).machines_dir();
    if !machines.is_dir() {
        bail!(
            "{} is not a Docker Machine store: it has no machines/ directory (pass the storage path, e.g. ~/.docker/machine)",
            source.display()
        );
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&machines)
        .with_context(|| format!("cannot list {}", machines.display()))?
    {
        let entry = entry.with_context(|| format!("cannot list {}", machines.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            names.push(name);
        }
    }
    names.sort_by(|a, b| crate::text::natsort::natural_cmp(a, b));
    Ok(names
        .into_iter()
        .map(|name| plan_one(store, source, &name))
        .collect())
}

fn plan_one(store: &Store, source: &Path, name: &str) -> Plan {
    let dir = Store::new(source).machine_dir(name);
    let skip = |driver: &str, reason: String| Plan::Skip {
        name: name.to_string(),
        driver: driver.to_string(),
        reason,
    };
    let config = match HostConfig::load(&dir) {
        Ok(c) => c,
        Err(e) => return skip("", format!("{e:#}")),
    };
    let driver = config.driver_name.clone();
    if !SUPPORTED_DRIVERS.contains(&driver.as_str()) {
        return skip(
            &driver,
            format!(
                "driver \"{driver}\" is not built into dmw (import takes {} machines)",
                SUPPORTED_DRIVERS.join(" and ")
            ),
        );
    }
    if !crate::text::names::is_valid(name) {
        return skip(
            &driver,
            crate::text::names::INVALID_NAME_MESSAGE.to_string(),
        );
    }
    if store.exists(name) {
        return skip(
            &driver,
            format!(
                "a dmw machine named \"{name}\" already exists; remove it (`dmw rm {name}`) or rename the Docker Machine one to import it"
            ),
        );
    }
    match candidate(source, &dir, name, &config) {
        Ok(c) => Plan::Import(Box::new(c)),
        Err(e) => skip(&driver, format!("{e:#}")),
    }
}

fn candidate(source: &Path, dir: &Path, name: &str, config: &HostConfig) -> Result<Candidate> {
    let auth = &config.host_options.auth_options;
    // Docker Machine's certs/ and machine directories have dmw's file names.
    let certs_dir = Store::new(source).certs();
    let certs = certs_dir.path();
    let files = MachineDir::at(dir);
    // The machine directory's copies first (what DOCKER_CERT_PATH pointed at), then the
    // AuthOptions paths, then the store's certs/.
    let sources: [(&str, Vec<PathBuf>); 5] = [
        (
            CA_CERT,
            [
                vec![files.ca_cert()],
                moved(&auth.ca_cert_path, certs),
                vec![certs_dir.ca_cert()],
            ]
            .concat(),
        ),
        (
            CLIENT_CERT,
            [
                vec![files.client_cert()],
                moved(&auth.client_cert_path, certs),
                vec![certs_dir.client_cert()],
            ]
            .concat(),
        ),
        (
            CLIENT_KEY,
            [
                vec![files.client_key()],
                moved(&auth.client_key_path, certs),
                vec![certs_dir.client_key()],
            ]
            .concat(),
        ),
        (
            SERVER_CERT,
            [
                moved(&auth.server_cert_path, dir),
                vec![files.server_cert()],
            ]
            .concat(),
        ),
        (
            SERVER_KEY,
            [moved(&auth.server_key_path, dir), vec![files.server_key()]].concat(),
        ),
    ];
    let mut tls = Vec::new();
    for ((file, candidates), (_, mode, required)) in sources.into_iter().zip(TLS_FILES) {
        match first_file(candidates) {
            Some(p) => tls.push((p, file, *mode)),
            None if *required => bail!(
                "its TLS file {file} is missing (looked in {} and {})",
                dir.display(),
                certs.display()
            ),
            None => {}
        }
    }
    let e = &config.host_options.engine_options;
    let engine = EngineOptions {
        install_method: if e.install_url == "none" {
            InstallMethod::None
        } else {
            InstallMethod::Auto
        },
        install_url: if e.install_url.is_empty() || e.install_url == "none" {
            "https://get.docker.com".into()
        } else {
            e.install_url.clone()
        },
        repo_url: String::new(),
        storage_driver: e.storage_driver.clone(),
        labels: e.labels.clone(),
        insecure_registries: e.insecure_registry.clone(),
        registry_mirrors: e.registry_mirror.clone(),
        opts: e.arbitrary_flags.clone(),
        env: e.env.clone(),
    };
    match config.driver_name.as_str() {
        "none" => {
            let url = config.driver_text("URL");
            if url.is_empty() {
                bail!("its config.json has no Driver.URL");
            }
            // Printed by `ls`, `url` and `inspect`: one line of text, as create takes it.
            if url.chars().any(char::is_control) {
                bail!("its config.json has a Driver.URL with control characters");
            }
            Ok(Candidate {
                name: name.into(),
                driver: "none".into(),
                flags: vec![flag("url", &url)],
                engine,
                ssh_key: None,
                tls,
                engine_url: Some(url.clone()),
                summary: url,
            })
        }
        _ => {
            let ip = config.driver_text("IPAddress");
            if ip.is_empty() {
                bail!("its config.json has no Driver.IPAddress");
            }
            let user = Some(config.driver_text("SSHUser"))
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "root".into());
            let ssh_port = Some(config.driver_port("SSHPort"))
                .filter(|p| *p != 0)
                .unwrap_or(22);
            let engine_port = Some(config.driver_port("EnginePort"))
                .filter(|p| *p != 0)
                .unwrap_or(2376);
            // Another tool's store is untrusted input, like a driver's answers.
            if let Some(p) = crate::text::validate::address_problem(&ip) {
                bail!(
                    "its config.json has Driver.IPAddress {}",
                    p.trim_start_matches("address ")
                );
            }
            if let Some(p) = crate::text::validate::ssh_user_problem(&user) {
                bail!(
                    "its config.json has Driver.SSHUser {}",
                    p.trim_start_matches("SSH user ")
                );
            }
            let key = first_file(
                [
                    moved(&config.driver_text("SSHKeyPath"), dir),
                    vec![dir.join("id_rsa")],
                ]
                .concat(),
            )
            .ok_or_else(|| {
                anyhow!(
                    "its SSH key is missing (Driver.SSHKeyPath {:?}, nor {})",
                    config.driver_text("SSHKeyPath"),
                    dir.join("id_rsa").display()
                )
            })?;
            Ok(Candidate {
                name: name.into(),
                driver: "generic".into(),
                flags: vec![
                    flag("generic-ip-address", &ip),
                    flag("generic-ssh-user", &user),
                    flag("generic-ssh-key", ""),
                    flag("generic-ssh-port", ssh_port),
                    flag("generic-engine-port", engine_port),
                ],
                engine,
                ssh_key: Some(key),
                tls,
                engine_url: None,
                summary: format!("{user}@{ip}:{ssh_port}, engine port {engine_port}"),
            })
        }
    }
}

/// Adopt one machine: claim its name, let the built-in driver take its settings, copy its
/// SSH key and TLS files, and save the record. On failure nothing is left behind.
pub async fn apply(app: &App, source: &Path, c: &Candidate, report: Arc<Reporter>) -> Result<()> {
    app.store.claim(&c.name)?;
    // Held while adopting (in a shared store: the machine is pushed when it is released).
    let _lock = app.store.lock(&c.name)?;
    let result = adopt(app, source, c, report).await;
    if result.is_err() {
        // The source store is untouched; remove the half-made copy.
        let _ = app.store.remove(&c.name);
    }
    result
}

async fn adopt(app: &App, source: &Path, c: &Candidate, report: Arc<Reporter>) -> Result<()> {
    let b = builtin::driver(&c.driver).ok_or_else(|| anyhow!("no built-in driver {}", c.driver))?;
    let mut driver = app.new_driver(&Source::Builtin(b), report).await?;
    let info = driver.info().await?;
    driver.set_config(&c.name, &c.flags).await?;
    driver.pre_create_check().await?;
    let endpoint = match &c.engine_url {
        // The none driver's URL, as create records it: any text, reached only as tcp://.
        Some(url) => Endpoint::of_engine_url(url),
        None => {
            let address = driver.address().await?;
            let engine_port = driver.engine_port().await?;
            crate::text::validate::check_engine_values(&info.name, &address, engine_port)?;
            let (ssh_address, ssh_port, ssh_user) = if info.provisions {
                let ep = driver.ssh_endpoint().await?;
                crate::text::validate::check_ssh_values(
                    &info.name,
                    &ep.address,
                    &ep.user,
                    ep.port,
                )?;
                (ep.address, ep.port, ep.user)
            } else {
                (String::new(), 0, String::new())
            };
            Some(Endpoint {
                address,
                engine_port,
                ssh_address,
                ssh_port,
                ssh_user,
            })
        }
    };
    let files = app.store.machine(&c.name);
    let dir = files.path();
    if let Some(key) = &c.ssh_key {
        let bytes =
            std::fs::read(key).with_context(|| format!("cannot read SSH key {}", key.display()))?;
        russh::keys::decode_secret_key(&String::from_utf8_lossy(&bytes), None)
            .map_err(|e| anyhow!("cannot use SSH key {}: {e}", key.display()))?;
        crate::state::store::write_private(&files.ssh_key(), &bytes)?;
        let public = PathBuf::from(format!("{}.pub", key.display()));
        if let Ok(p) = std::fs::read(&public) {
            crate::state::store::write_atomic(&files.ssh_public_key(), &p, 0o644)?;
        }
    }
    for (from, file, mode) in &c.tls {
        let bytes =
            std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
        crate::state::store::write_atomic(&dir.join(file), &bytes, *mode)?;
    }
    // The client material must load as a DOCKER_CERT_PATH before the machine is recorded.
    crate::net::engine_api::ClientTls::load(dir)
        .with_context(|| format!("the TLS files of {} cannot be used", c.name))?;
    let mut record = MachineRecord::new(
        &c.name,
        crate::state::store::DriverRef::builtin(&info.name),
        c.engine.clone(),
    );
    record.driver_state = driver.state_kv();
    record.engine_only = !info.provisions;
    record.endpoint = endpoint;
    record.engine_url = c.engine_url.clone();
    record.status = MachineStatus::Ready;
    record.imported = Some(Imported {
        from: source.display().to_string(),
        at: record.created_at.clone(),
    });
    app.store.save(&record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(root: &Path, name: &str, driver: &str, driver_json: &str, files: &[&str]) {
        let dir = root.join("machines").join(name);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join("config.json"),
            format!(
                r#"{{"ConfigVersion": 3, "DriverName": "{driver}", "Driver": {driver_json}, "Name": "{name}"}}"#
            ),
        )
        .expect("config");
        for f in files {
            std::fs::write(dir.join(f), "x").expect("file");
        }
    }

    #[test]
    fn plans_imports_and_skips_with_reasons() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("dm");
        let certs = src.join("certs");
        std::fs::create_dir_all(&certs).expect("certs");
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(certs.join(f), "x").expect("cert");
        }
        let store = Store::new(tmp.path().join("dmw"));
        let generic =
            r#"{"IPAddress": "10.0.0.5", "SSHUser": "", "SSHPort": 0, "EnginePort": 2376}"#;
        machine(&src, "g1", "generic", generic, &["id_rsa", "server.pem"]);
        machine(&src, "nokey", "generic", generic, &[]);
        machine(&src, "n1", "none", r#"{"URL": "tcp://10.0.0.6:2376"}"#, &[]);
        machine(&src, "n-any", "none", r#"{"URL": "none"}"#, &[]);
        machine(
            &src,
            "n-ctl",
            "none",
            r#"{"URL": "tcp://h:1\u001b[2J"}"#,
            &[],
        );
        machine(&src, "vb", "virtualbox", "{}", &[]);
        machine(&src, "taken", "none", r#"{"URL": "tcp://h:1"}"#, &[]);
        machine(&src, "bad_name", "none", r#"{"URL": "tcp://h:1"}"#, &[]);
        machine(
            &src,
            "evil-ip",
            "generic",
            r#"{"IPAddress": "127.0.0.1/$(id)", "SSHUser": "", "SSHPort": 0, "EnginePort": 2376}"#,
            &["id_rsa"],
        );
        machine(
            &src,
            "evil-user",
            "generic",
            r#"{"IPAddress": "10.0.0.7", "SSHUser": "root\n  ProxyCommand sh -c 'id'", "SSHPort": 0, "EnginePort": 2376}"#,
            &["id_rsa"],
        );
        std::fs::create_dir_all(src.join("machines/broken")).expect("dir");
        store.claim("taken").expect("claim");

        let plans = plan(&store, &src).expect("plan");
        let by_name = |n: &str| {
            plans
                .iter()
                .find(|p| match p {
                    Plan::Import(c) => c.name == n,
                    Plan::Skip { name, .. } => name == n,
                })
                .unwrap_or_else(|| panic!("{n} not planned"))
        };
        match by_name("g1") {
            Plan::Import(c) => {
                assert_eq!(c.summary, "root@10.0.0.5:22, engine port 2376");
                assert!(c.ssh_key.as_ref().is_some_and(|k| k.ends_with("g1/id_rsa")));
                let files: Vec<&str> = c.tls.iter().map(|t| t.1).collect();
                assert_eq!(files, ["ca.pem", "cert.pem", "key.pem", "server.pem"]);
                assert!(
                    c.tls[0].0.starts_with(&certs),
                    "store certs/ as the fallback"
                );
            }
            p => panic!("{p:?}"),
        }
        assert!(matches!(by_name("n1"), Plan::Import(c) if c.summary == "tcp://10.0.0.6:2376"));
        // Any URL, as Docker Machine's none driver recorded it; one line of text only.
        assert!(
            matches!(by_name("n-any"), Plan::Import(c) if c.engine_url.as_deref() == Some("none"))
        );
        let reason = |n: &str| match by_name(n) {
            Plan::Skip { reason, .. } => reason.clone(),
            p => panic!("{p:?}"),
        };
        assert!(
            reason("n-ctl").contains("control characters"),
            "{}",
            reason("n-ctl")
        );
        assert!(
            reason("nokey").contains("SSH key is missing"),
            "{}",
            reason("nokey")
        );
        assert!(reason("vb").contains("driver \"virtualbox\" is not built into dmw"));
        assert!(reason("taken").contains("already exists"));
        assert!(
            reason("evil-ip").contains(
                "Driver.IPAddress \"127.0.0.1/$(id)\", which is not an IP address or DNS name"
            ),
            "{}",
            reason("evil-ip")
        );
        assert!(
            reason("evil-user").contains("Driver.SSHUser \"root\\n  ProxyCommand sh -c 'id'\", which is not a valid user name"),
            "{}",
            reason("evil-user")
        );
        assert!(reason("bad_name").contains("Invalid hostname"));
        assert!(
            reason("broken").contains("cannot read"),
            "{}",
            reason("broken")
        );
        assert!(plan(&store, &tmp.path().join("nowhere")).is_err());
    }
}
