//! Docker Machine-shaped views of a machine record, so `inspect` and `ls --format` scripts
//! written for `docker-machine` find the field paths they use (`.Driver.IPAddress`,
//! `.DriverName`, `.HostOptions.EngineOptions.Labels`, `.EngineOptions.Labels`, …).

use std::path::Path;

use serde_json::{Value, json};

use crate::state::store::{EngineOptions, MachineRecord, SwarmMembership};

/// Top-level keys [`inspect_aliases`] adds to the `inspect` JSON.
pub const INSPECT_ALIAS_KEYS: [&str; 4] = ["Name", "DriverName", "Driver", "HostOptions"];

/// Docker Machine's `EngineOptions` object for our engine options.
pub fn engine_options(e: &EngineOptions) -> Value {
    json!({
        "ArbitraryFlags": e.opts,
        "Env": e.env,
        "InsecureRegistry": e.insecure_registries,
        "Labels": e.labels,
        "RegistryMirror": e.registry_mirrors,
        "StorageDriver": e.storage_driver,
        "InstallURL": e.install_url,
        "TlsVerify": true,
    })
}

/// Docker Machine's `SwarmOptions` for a machine outside any swarm.
pub fn swarm_options() -> Value {
    swarm_options_of(None)
}

/// Docker Machine's `SwarmOptions` for a machine's Swarm-mode membership: `IsSwarm`,
/// `Master` (a manager), `Agent` (a worker), `Address` (the advertise address).
pub fn swarm_options_of(m: Option<&SwarmMembership>) -> Value {
    json!({
        "IsSwarm": m.is_some(),
        "Address": m.map(|m| m.advertise_addr.clone()).unwrap_or_default(),
        "Discovery": "",
        "Agent": m.is_some_and(|m| !m.is_manager()),
        "Master": m.is_some_and(SwarmMembership::is_manager),
        "Host": "",
        "Image": "",
        "Strategy": "",
        "ArbitraryFlags": [],
        "ArbitraryJoinFlags": [],
        "IsExperimental": false,
    })
}

/// The Docker Machine keys of `inspect`: `Name`, `DriverName`, `Driver` (the base driver's
/// fields) and `HostOptions` (`EngineOptions`, `SwarmOptions`, `AuthOptions`).
pub fn inspect_aliases(record: &MachineRecord, storage: &Path) -> Vec<(&'static str, Value)> {
    let store = crate::state::store::Store::new(storage);
    let dir = store.machine(&record.name);
    let machine_dir = dir.path().to_path_buf();
    let certs = store.certs();
    let path = |p: &Path| p.display().to_string();
    let ep = record.endpoint.as_ref();
    let server_cert = dir.server_cert();
    let (server_cert, server_key) = if server_cert.exists() {
        (path(&server_cert), path(&dir.server_key()))
    } else {
        (String::new(), String::new())
    };
    let mut driver = json!({
        "IPAddress": record.shown_ip().unwrap_or_default(),
        "MachineName": record.name,
        "SSHUser": ep.map(|e| e.ssh_user.clone()).unwrap_or_default(),
        "SSHPort": ep.map(|e| e.ssh_port).unwrap_or_default(),
        "SSHKeyPath": path(&dir.ssh_key()),
        "StorePath": path(storage),
        "EnginePort": ep.map(|e| e.engine_port).unwrap_or(2376),
        "SwarmMaster": record.swarm.as_ref().is_some_and(SwarmMembership::is_manager),
        "SwarmHost": "",
        "SwarmDiscovery": "",
    });
    // Docker Machine's none driver kept its `--url` as `Driver.URL`.
    if let (Some(url), Some(map)) = (&record.engine_url, driver.as_object_mut()) {
        map.insert("URL".into(), Value::String(url.clone()));
    }
    let host_options = json!({
        "Driver": "",
        "EngineOptions": engine_options(&record.engine),
        "SwarmOptions": swarm_options_of(record.swarm.as_ref()),
        "AuthOptions": {
            "CertDir": path(certs.path()),
            "CaCertPath": path(&certs.ca_cert()),
            "CaPrivateKeyPath": path(&certs.ca_key()),
            "ClientCertPath": path(&certs.client_cert()),
            "ClientKeyPath": path(&certs.client_key()),
            "ServerCertPath": server_cert,
            "ServerKeyPath": server_key,
            "ServerCertSANs": record.tls_sans,
            "StorePath": path(&machine_dir),
        },
    });
    vec![
        ("Name", Value::String(record.name.clone())),
        ("DriverName", Value::String(record.driver.name.clone())),
        ("Driver", driver),
        ("HostOptions", host_options),
    ]
}

/// The `inspect` document: the record's own (snake_case) fields in their order, then the
/// Docker Machine aliases.
#[derive(Debug, serde::Serialize)]
pub struct InspectView<'a> {
    #[serde(flatten)]
    record: &'a MachineRecord,
    #[serde(rename = "Name")]
    name: Value,
    #[serde(rename = "DriverName")]
    driver_name: Value,
    #[serde(rename = "Driver")]
    driver: Value,
    #[serde(rename = "HostOptions")]
    host_options: Value,
}

impl<'a> InspectView<'a> {
    /// The view of `record` in the store at `storage`.
    pub fn new(record: &'a MachineRecord, storage: &Path) -> InspectView<'a> {
        let mut aliases = inspect_aliases(record, storage).into_iter().map(|(_, v)| v);
        let mut next = || aliases.next().unwrap_or_default();
        InspectView {
            record,
            name: next(),
            driver_name: next(),
            driver: next(),
            host_options: next(),
        }
    }
}

/// The `inspect` JSON as a value (see [`InspectView`]).
pub fn inspect_json(record: &MachineRecord, storage: &Path) -> Result<Value, serde_json::Error> {
    serde_json::to_value(InspectView::new(record, storage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::{DriverRef, Endpoint};

    #[test]
    fn aliases_follow_docker_machine_paths() {
        let mut r = MachineRecord::new(
            "web1",
            DriverRef::builtin("generic"),
            EngineOptions {
                labels: vec!["env=prod".into()],
                ..Default::default()
            },
        );
        r.endpoint = Some(Endpoint {
            address: "192.0.2.7".into(),
            engine_port: 2376,
            ssh_address: "192.0.2.7".into(),
            ssh_port: 2222,
            ssh_user: "dmw".into(),
        });
        let v = inspect_json(&r, Path::new("/s")).unwrap_or_default();
        assert_eq!(v["name"], "web1", "the record's own fields stay");
        assert_eq!(v["Name"], "web1");
        assert_eq!(v["DriverName"], "generic");
        assert_eq!(v["Driver"]["IPAddress"], "192.0.2.7");
        assert_eq!(v["Driver"]["SSHPort"], 2222);
        assert_eq!(v["Driver"]["SSHUser"], "dmw");
        assert_eq!(v["Driver"]["SSHKeyPath"], "/s/machines/web1/id_ssh");
        assert_eq!(v["Driver"]["StorePath"], "/s");
        assert_eq!(
            v["HostOptions"]["EngineOptions"]["Labels"],
            json!(["env=prod"])
        );
        assert_eq!(
            v["HostOptions"]["AuthOptions"]["CaCertPath"],
            "/s/certs/ca.pem"
        );
        assert_eq!(
            v["HostOptions"]["AuthOptions"]["StorePath"],
            "/s/machines/web1"
        );
        let keys: Vec<&String> = v
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        for k in INSPECT_ALIAS_KEYS {
            assert!(keys.iter().any(|x| *x == k), "{k} in {keys:?}");
        }
    }
}
