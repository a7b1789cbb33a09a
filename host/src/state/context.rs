//! Docker CLI contexts for machines, in the docker CLI's own context store
//! (`$DOCKER_CONFIG` or `~/.docker`: `contexts/meta/<sha256(name)>/meta.json` and
//! `contexts/tls/<sha256(name)>/docker/{ca,cert,key}.pem`), so `docker --context NAME`
//! reaches a machine without `dmw env`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use sha2::{Digest, Sha256};

use crate::state::store::{write_atomic, write_private};

/// The docker CLI's configuration directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker"))
        .ok_or_else(|| {
            anyhow!("cannot find the docker CLI's configuration: set HOME or DOCKER_CONFIG")
        })
}

fn id(name: &str) -> String {
    hex::encode(Sha256::digest(name.as_bytes()))
}

/// Write (or replace) the context `name` for the engine at `url` with the client
/// certificates in `cert_dir` (ca.pem, cert.pem, key.pem).
pub fn write(config_dir: &Path, name: &str, url: &str, cert_dir: &Path) -> Result<()> {
    let meta_dir = config_dir.join("contexts/meta").join(id(name));
    let tls_dir = config_dir
        .join("contexts/tls")
        .join(id(name))
        .join("docker");
    for dir in [&meta_dir, &tls_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let meta = serde_json::json!({
        "Name": name,
        "Metadata": { "Description": format!("dmw machine {name}") },
        "Endpoints": { "docker": { "Host": url, "SkipTLSVerify": false } },
    });
    write_atomic(
        &meta_dir.join("meta.json"),
        meta.to_string().as_bytes(),
        0o644,
    )?;
    // The docker CLI's context TLS directory has the DOCKER_CERT_PATH layout.
    for (file, mode) in crate::state::store::layout::CLIENT_TLS_FILES {
        let bytes = std::fs::read(cert_dir.join(file))
            .with_context(|| format!("cannot read {}", cert_dir.join(file).display()))?;
        if mode == 0o600 {
            write_private(&tls_dir.join(file), &bytes)?;
        } else {
            write_atomic(&tls_dir.join(file), &bytes, mode)?;
        }
    }
    Ok(())
}

/// Rewrite the context `name` (new URL or TLS material) if dmw wrote it; returns whether
/// there was one to rewrite.
pub fn refresh(config_dir: &Path, name: &str, url: &str, cert_dir: &Path) -> Result<bool> {
    if !is_ours(config_dir, name) {
        return Ok(false);
    }
    write(config_dir, name, url, cert_dir)?;
    Ok(true)
}

/// Whether the context `name` exists and dmw wrote it (its description says so).
pub fn is_ours(config_dir: &Path, name: &str) -> bool {
    std::fs::read(
        config_dir
            .join("contexts/meta")
            .join(id(name))
            .join("meta.json"),
    )
    .ok()
    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    .is_some_and(|m| m["Metadata"]["Description"] == format!("dmw machine {name}"))
}

/// Remove the context `name` if dmw wrote it (a context of the same name made by someone
/// else, or none at all, is left alone). If the docker CLI was switched to it, switch back
/// to the default.
pub fn remove(config_dir: &Path, name: &str) -> Result<()> {
    if !is_ours(config_dir, name) {
        return Ok(());
    }
    for dir in [
        config_dir.join("contexts/meta").join(id(name)),
        config_dir.join("contexts/tls").join(id(name)),
    ] {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", dir.display())),
        }
    }
    if current(config_dir)?.as_deref() == Some(name) {
        switch(config_dir, None)?;
    }
    Ok(())
}

/// Whether a context called `name` exists.
pub fn exists(config_dir: &Path, name: &str) -> bool {
    config_dir
        .join("contexts/meta")
        .join(id(name))
        .join("meta.json")
        .is_file()
}

fn config_file(config_dir: &Path) -> PathBuf {
    config_dir.join("config.json")
}

fn read_config(config_dir: &Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    let path = config_file(config_dir);
    match std::fs::read(&path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Default::default()),
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a JSON object", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The docker CLI's current context (`currentContext` in config.json), if set.
pub fn current(config_dir: &Path) -> Result<Option<String>> {
    Ok(read_config(config_dir)?
        .get("currentContext")
        .and_then(|v| v.as_str())
        .map(String::from))
}

/// Make `name` the docker CLI's current context (None: back to `default`), keeping every
/// other setting in config.json.
pub fn switch(config_dir: &Path, name: Option<&str>) -> Result<()> {
    let mut config = read_config(config_dir)?;
    match name {
        Some(n) => config.insert("currentContext".into(), n.into()),
        None => config.remove("currentContext"),
    };
    std::fs::create_dir_all(config_dir)
        .with_context(|| format!("cannot create {}", config_dir.display()))?;
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(config))?;
    write_private(&config_file(config_dir), format!("{text}\n").as_bytes())
}

/// Bring machine `name`'s docker context (if dmw wrote one) up to date with its record's
/// URL and the client certificates in its directory; returns whether there was one.
pub fn refresh_machine(store: &crate::state::store::Store, name: &str) -> Result<bool> {
    let record = store.load(name)?;
    let Some(url) = record.url() else {
        return Ok(false);
    };
    refresh(&docker_config_dir()?, name, &url, &store.machine_dir(name))
}

/// Write machine `name`'s docker context after a create or an import; a failure is a
/// warning (the machine works without it), and a context of the same name that is not
/// dmw's is left as it is.
pub fn write_for_machine(
    store: &crate::state::store::Store,
    name: &str,
    report: &crate::text::report::Reporter,
) {
    // A none machine whose `--url` is not tcp:// has nothing a docker context could hold.
    if let Ok(record) = store.load(name)
        && record.engine_only
        && record.endpoint.is_none()
    {
        report.debug(&format!(
            "no docker context for \"{name}\": its URL is not a tcp://HOST:PORT engine URL"
        ));
        return;
    }
    let written = store
        .load(name)
        .map_err(anyhow::Error::from)
        .and_then(|record| {
            let url = record.url().ok_or_else(|| anyhow!("no address"))?;
            let dir = docker_config_dir()?;
            if exists(&dir, name) && !is_ours(&dir, name) {
                anyhow::bail!(
                    "a docker context named \"{name}\" exists and is not dmw's; left as it is"
                );
            }
            write(&dir, name, &url, &store.machine_dir(name))
        });
    match written {
        Ok(()) => {
            let line = format!(
                "Docker context \"{name}\" written: `docker --context {name} ps`, or `dmw use {name}`"
            );
            // Docker Machine wrote no context: its scripts see no line about one.
            if crate::text::personality::docker_machine() {
                report.debug(&line);
            } else {
                report.info(&line);
            }
        }
        Err(e) => report.warn(&format!("no docker context for \"{name}\": {e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_switch_remove_keeps_other_settings() {
        let tmp = tempfile::tempdir().unwrap();
        let certs = tmp.path().join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(certs.join(f), f).unwrap();
        }
        let cfg = tmp.path().join("docker");
        std::fs::create_dir_all(&cfg).unwrap();
        std::fs::write(
            cfg.join("config.json"),
            r#"{"auths":{"r.example":{}},"currentContext":"other"}"#,
        )
        .unwrap();
        write(&cfg, "h1", "tcp://192.0.2.1:2376", &certs).unwrap();
        assert!(exists(&cfg, "h1"));
        // The docker CLI names the directories by the SHA-256 of the context name.
        let meta =
            std::fs::read_to_string(cfg.join("contexts/meta").join(id("h1")).join("meta.json"))
                .unwrap();
        assert!(meta.contains(r#""Host":"tcp://192.0.2.1:2376""#), "{meta}");
        assert_eq!(id("h1").len(), 64);
        switch(&cfg, Some("h1")).unwrap();
        assert_eq!(current(&cfg).unwrap().as_deref(), Some("h1"));
        remove(&cfg, "h1").unwrap();
        assert!(!exists(&cfg, "h1"));
        assert_eq!(
            current(&cfg).unwrap(),
            None,
            "removing the current context switches back to default"
        );
        let config = std::fs::read_to_string(cfg.join("config.json")).unwrap();
        assert!(
            config.contains("r.example"),
            "other settings are kept: {config}"
        );
    }
}
