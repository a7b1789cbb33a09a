//! Swarm-mode calls of the Docker Engine API over the machine's mutual-TLS client:
//! `/swarm/init`, `/swarm` (join tokens), `/swarm/join`, `/swarm/leave`, `/nodes`, and the
//! `Swarm` section of `/info`. Join tokens never appear in `Debug` output or messages.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ClientTls, EngineError, request};

/// How long init, join and leave may take (dockerd answers them only when done).
pub const SWARM_CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// The `Swarm` section of `GET /info`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SwarmInfo {
    /// This engine's node ID (empty outside a swarm).
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// The address this node advertises.
    #[serde(rename = "NodeAddr")]
    pub node_addr: String,
    /// `inactive`, `pending`, `active`, `error` or `locked`.
    #[serde(rename = "LocalNodeState")]
    pub local_node_state: String,
    /// Whether this node is a manager.
    #[serde(rename = "ControlAvailable")]
    pub control_available: bool,
    /// The engine's error about its swarm state, if any.
    #[serde(rename = "Error")]
    pub error: String,
    /// Managers this node knows.
    #[serde(rename = "RemoteManagers")]
    pub remote_managers: Option<Vec<RemoteManager>>,
    /// The cluster (only on managers).
    #[serde(rename = "Cluster")]
    pub cluster: Option<ClusterRef>,
}

impl SwarmInfo {
    /// Whether the engine is part of a swarm.
    pub fn is_active(&self) -> bool {
        self.local_node_state == "active"
    }

    /// The cluster ID, when the engine knows it (managers).
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster
            .as_ref()
            .map(|c| c.id.as_str())
            .filter(|id| !id.is_empty())
    }
}

/// A manager as another node knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RemoteManager {
    /// Its node ID.
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// `address:port` of its swarm listener.
    #[serde(rename = "Addr")]
    pub addr: String,
}

/// The cluster's identity in `/info`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ClusterRef {
    /// Cluster ID.
    #[serde(rename = "ID")]
    pub id: String,
}

/// The join tokens of a cluster (`GET /swarm`): secrets, never printed or logged.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct JoinTokens {
    /// Token to join as a worker.
    #[serde(rename = "Worker")]
    pub worker: String,
    /// Token to join as a manager.
    #[serde(rename = "Manager")]
    pub manager: String,
}

impl fmt::Debug for JoinTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JoinTokens([redacted])")
    }
}

/// What `GET /swarm` says about the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SwarmInspect {
    /// Cluster ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// The join tokens.
    #[serde(rename = "JoinTokens")]
    pub join_tokens: JoinTokens,
}

/// One node of `GET /nodes`; `spec` is kept whole so an update sends back every field.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Node {
    /// Node ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// The object version an update must name.
    #[serde(rename = "Version")]
    pub version: ObjectVersion,
    /// The node's spec (`Role`, `Availability`, `Labels`, …).
    #[serde(rename = "Spec")]
    pub spec: Value,
    /// Host name and engine.
    #[serde(rename = "Description")]
    pub description: NodeDescription,
    /// `ready`, `down`, … and the node's address.
    #[serde(rename = "Status")]
    pub status: NodeStatus,
    /// Present on managers.
    #[serde(rename = "ManagerStatus")]
    pub manager_status: Option<ManagerStatus>,
}

impl Node {
    /// `manager` or `worker`.
    pub fn role(&self) -> &str {
        self.spec.get("Role").and_then(Value::as_str).unwrap_or("")
    }

    /// `active`, `pause` or `drain`.
    pub fn availability(&self) -> &str {
        self.spec
            .get("Availability")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// Whether this node leads the managers.
    pub fn is_leader(&self) -> bool {
        self.manager_status.as_ref().is_some_and(|m| m.leader)
    }

    /// Whether this is a manager the leader can reach.
    pub fn is_reachable_manager(&self) -> bool {
        self.manager_status
            .as_ref()
            .is_some_and(|m| m.reachability == "reachable")
    }
}

/// An object version (`Version.Index`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ObjectVersion {
    /// The index to pass as `?version=`.
    #[serde(rename = "Index")]
    pub index: u64,
}

/// A node's description.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NodeDescription {
    /// Its host name.
    #[serde(rename = "Hostname")]
    pub hostname: String,
    /// Its engine.
    #[serde(rename = "Engine")]
    pub engine: EngineDescription,
}

/// A node's engine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct EngineDescription {
    /// Engine version.
    #[serde(rename = "EngineVersion")]
    pub engine_version: String,
}

/// A node's status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NodeStatus {
    /// `unknown`, `down`, `ready` or `disconnected`.
    #[serde(rename = "State")]
    pub state: String,
    /// The node's address as the managers see it.
    #[serde(rename = "Addr")]
    pub addr: String,
}

/// A manager's status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ManagerStatus {
    /// Whether it is the leader.
    #[serde(rename = "Leader")]
    pub leader: bool,
    /// `unknown`, `unreachable` or `reachable`.
    #[serde(rename = "Reachability")]
    pub reachability: String,
    /// `address:port` of its swarm listener.
    #[serde(rename = "Addr")]
    pub addr: String,
}

/// Addresses for `init` and `join`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwarmAddrs {
    /// `ListenAddr` (default `0.0.0.0:2377`).
    pub listen_addr: Option<String>,
    /// `AdvertiseAddr`: the machine's address.
    pub advertise_addr: String,
    /// `DataPathAddr`, when given.
    pub data_path_addr: Option<String>,
}

impl SwarmAddrs {
    fn body(&self) -> Value {
        let mut body = json!({
            "ListenAddr": self.listen_addr.as_deref().unwrap_or("0.0.0.0:2377"),
            "AdvertiseAddr": self.advertise_addr,
        });
        if let Some(d) = &self.data_path_addr {
            body["DataPathAddr"] = json!(d);
        }
        body
    }
}

/// Runs a request and decodes its JSON answer.
async fn call<T: DeserializeOwned>(
    url: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    tls: &ClientTls,
    timeout: Duration,
) -> Result<T, EngineError> {
    let (ep, resp) = request(url, method, path, body, tls, timeout).await?;
    serde_json::from_slice(&resp.body).map_err(|e| EngineError::BadJson {
        addr: ep.authority,
        reason: e.to_string(),
    })
}

/// `GET /info`, its `Swarm` section.
pub async fn info(url: &str, tls: &ClientTls, timeout: Duration) -> Result<SwarmInfo, EngineError> {
    #[derive(Deserialize)]
    struct Info {
        #[serde(rename = "Swarm", default)]
        swarm: SwarmInfo,
    }
    let i: Info = call(url, "GET", "/info", None, tls, timeout).await?;
    Ok(i.swarm)
}

/// `POST /swarm/init`: a new cluster led by this engine; returns its node ID.
pub async fn init(url: &str, tls: &ClientTls, addrs: &SwarmAddrs) -> Result<String, EngineError> {
    let mut body = addrs.body();
    body["ForceNewCluster"] = json!(false);
    call(
        url,
        "POST",
        "/swarm/init",
        Some(&body),
        tls,
        SWARM_CHANGE_TIMEOUT,
    )
    .await
}

/// `GET /swarm` (managers only): the cluster ID and join tokens.
pub async fn inspect(
    url: &str,
    tls: &ClientTls,
    timeout: Duration,
) -> Result<SwarmInspect, EngineError> {
    call(url, "GET", "/swarm", None, tls, timeout).await
}

/// `POST /swarm/join`: this engine joins the cluster of `remote_addrs` with `token`.
pub async fn join(
    url: &str,
    tls: &ClientTls,
    addrs: &SwarmAddrs,
    remote_addrs: &[String],
    token: &str,
) -> Result<(), EngineError> {
    let mut body = addrs.body();
    body["RemoteAddrs"] = json!(remote_addrs);
    body["JoinToken"] = json!(token);
    request(
        url,
        "POST",
        "/swarm/join",
        Some(&body),
        tls,
        SWARM_CHANGE_TIMEOUT,
    )
    .await
    .map(|_| ())
}

/// `POST /swarm/leave?force=`.
pub async fn leave(url: &str, tls: &ClientTls, force: bool) -> Result<(), EngineError> {
    let path = format!("/swarm/leave?force={force}");
    request(url, "POST", &path, None, tls, SWARM_CHANGE_TIMEOUT)
        .await
        .map(|_| ())
}

/// `GET /nodes` (managers only).
pub async fn nodes(
    url: &str,
    tls: &ClientTls,
    timeout: Duration,
) -> Result<Vec<Node>, EngineError> {
    call(url, "GET", "/nodes", None, tls, timeout).await
}

/// `POST /nodes/{id}/update?version=`: sets `Role` and/or `Availability`, keeping the rest
/// of the node's spec.
pub async fn update_node(
    url: &str,
    tls: &ClientTls,
    node: &Node,
    role: Option<&str>,
    availability: Option<&str>,
    timeout: Duration,
) -> Result<(), EngineError> {
    let mut spec = match &node.spec {
        Value::Object(_) => node.spec.clone(),
        _ => json!({}),
    };
    if let Some(r) = role {
        spec["Role"] = json!(r);
    }
    if let Some(a) = availability {
        spec["Availability"] = json!(a);
    }
    let path = format!("/nodes/{}/update?version={}", node.id, node.version.index);
    request(url, "POST", &path, Some(&spec), tls, timeout)
        .await
        .map(|_| ())
}

/// `DELETE /nodes/{id}?force=`.
pub async fn remove_node(
    url: &str,
    tls: &ClientTls,
    id: &str,
    force: bool,
    timeout: Duration,
) -> Result<(), EngineError> {
    let path = format!("/nodes/{id}?force={force}");
    request(url, "DELETE", &path, None, tls, timeout)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_redacted_in_debug() {
        let s: SwarmInspect = serde_json::from_str(
            r#"{"ID":"c1","JoinTokens":{"Worker":"SWMTKN-1-secretw","Manager":"SWMTKN-1-secretm"}}"#,
        )
        .unwrap();
        assert_eq!(s.join_tokens.worker, "SWMTKN-1-secretw");
        let shown = format!("{s:?}");
        assert!(!shown.contains("SWMTKN"), "{shown}");
    }

    #[test]
    fn info_and_nodes_parse() {
        let i: SwarmInfo = serde_json::from_str(
            r#"{"NodeID":"n1","NodeAddr":"172.31.0.26","LocalNodeState":"active","ControlAvailable":true,"Error":"","RemoteManagers":[{"NodeID":"n1","Addr":"172.31.0.26:2377"}],"Nodes":3,"Managers":1,"Cluster":{"ID":"c1","Version":{"Index":10}}}"#,
        )
        .unwrap();
        assert!(i.is_active() && i.control_available);
        assert_eq!(i.cluster_id(), Some("c1"));
        let inactive: SwarmInfo = serde_json::from_str(
            r#"{"NodeID":"","LocalNodeState":"inactive","RemoteManagers":null,"Cluster":null}"#,
        )
        .unwrap();
        assert!(!inactive.is_active());
        assert_eq!(inactive.cluster_id(), None);
        let n: Vec<Node> = serde_json::from_str(
            r#"[{"ID":"n1","Version":{"Index":9},"Spec":{"Labels":{},"Role":"manager","Availability":"active"},"Description":{"Hostname":"h","Engine":{"EngineVersion":"20.10.24"}},"Status":{"State":"ready","Addr":"172.31.0.26"},"ManagerStatus":{"Leader":true,"Reachability":"reachable","Addr":"172.31.0.26:2377"}}]"#,
        )
        .unwrap();
        assert_eq!(n[0].role(), "manager");
        assert_eq!(n[0].availability(), "active");
        assert!(n[0].is_leader() && n[0].is_reachable_manager());
        assert_eq!(n[0].version.index, 9);
    }

    #[test]
    fn init_and_join_bodies() {
        let a = SwarmAddrs {
            listen_addr: None,
            advertise_addr: "172.31.0.26".into(),
            data_path_addr: Some("172.31.0.26".into()),
        };
        assert_eq!(
            a.body(),
            json!({"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"172.31.0.26","DataPathAddr":"172.31.0.26"})
        );
    }
}
