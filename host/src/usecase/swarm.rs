//! Docker Swarm mode from dmw machines: init, join, leave (quorum-safe), the cluster's nodes
//! and its leader, all over each machine's mutual-TLS engine API. The cluster facts are kept
//! in the machine records (`store::SwarmMembership`); join tokens are read from a manager
//! when needed and never printed, logged or stored.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::app::App;
use crate::net::engine_api::ClientTls;
use crate::net::engine_api::swarm::{self as api, Node, SwarmAddrs, SwarmInfo};
use crate::state::store::{MachineRecord, SwarmMembership};
use crate::text::report::Reporter;

/// The port Swarm managers listen on for the cluster.
pub const MANAGER_PORT: u16 = 2377;
/// Timeout of the quick queries (`/info`, `/nodes`, `/swarm`).
const QUERY: Duration = Duration::from_secs(15);

/// A node's role in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Runs tasks and takes part in the managers' Raft quorum.
    Manager,
    /// Runs tasks only.
    Worker,
}

impl Role {
    /// `manager` or `worker`, as the engine spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        }
    }
}

/// Address options for init and join (`--swarm-addr`, `--swarm-opt`, `--swarm-join-opt`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrOptions {
    /// Advertise address (default: the machine's address).
    pub advertise_addr: Option<String>,
    /// Listen address (default `0.0.0.0:2377`).
    pub listen_addr: Option<String>,
    /// Data-path address, when given.
    pub data_path_addr: Option<String>,
}

impl AddrOptions {
    /// Reads one `KEY=VALUE` of `--swarm-opt`/`--swarm-join-opt` (`advertise-addr`,
    /// `listen-addr`, `data-path-addr`); anything else is refused with the reason.
    pub fn set(&mut self, opt: &str) -> Result<()> {
        let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
        let key = key.trim_start_matches('-');
        if value.is_empty() {
            bail!("swarm option {opt:?} has no value: use KEY=VALUE");
        }
        let slot = match key {
            "advertise-addr" | "addr" => &mut self.advertise_addr,
            "listen-addr" => &mut self.listen_addr,
            "data-path-addr" => &mut self.data_path_addr,
            _ => bail!(
                "swarm option {key:?} is not supported: Swarm mode is built into Docker Engine and dmw sets only advertise-addr, listen-addr and data-path-addr (KEY=VALUE); use `docker swarm update` on a manager for the cluster's other settings"
            ),
        };
        *slot = Some(value.to_owned());
        Ok(())
    }
}

/// One machine's engine: where it is and how to talk to it.
struct Engine {
    name: String,
    url: String,
    address: String,
    tls: ClientTls,
}

impl Engine {
    fn of(app: &App, record: &MachineRecord) -> Result<Engine> {
        let name = &record.name;
        let (url, address) = match (&record.url(), &record.endpoint) {
            (Some(url), Some(ep)) => (url.clone(), ep.address.clone()),
            _ => bail!("machine \"{name}\" has no address yet"),
        };
        let tls = ClientTls::load(&app.store.machine_dir(name))
            .with_context(|| format!("machine \"{name}\""))?;
        Ok(Engine {
            name: name.clone(),
            url,
            address,
            tls,
        })
    }

    async fn info(&self) -> Result<SwarmInfo> {
        api::info(&self.url, &self.tls, QUERY)
            .await
            .with_context(|| format!("asking the engine of \"{}\" about its swarm", self.name))
    }

    async fn nodes(&self) -> Result<Vec<Node>> {
        api::nodes(&self.url, &self.tls, QUERY)
            .await
            .with_context(|| format!("listing the nodes on \"{}\"", self.name))
    }

    fn addrs(&self, opts: &AddrOptions) -> SwarmAddrs {
        SwarmAddrs {
            listen_addr: opts.listen_addr.clone(),
            advertise_addr: opts
                .advertise_addr
                .clone()
                .unwrap_or_else(|| self.address.clone()),
            data_path_addr: opts.data_path_addr.clone(),
        }
    }
}

/// Saves `membership` in the machine's record (the caller holds the machine's lock).
fn record_membership(app: &App, name: &str, membership: Option<SwarmMembership>) -> Result<()> {
    let mut record = app.store.load(name)?;
    record.swarm = membership;
    app.store.save(&record)
}

/// Fail unless `name`'s engine is outside any swarm.
async fn not_in_a_swarm(name: &str, engine: &Engine) -> Result<()> {
    let info = engine.info().await?;
    if info.is_active() {
        bail!(
            "machine \"{name}\" is already in a swarm (node {}); `dmw swarm leave {name}` first",
            info.node_id
        );
    }
    Ok(())
}

/// What create does about Swarm mode after provisioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwarmPlan {
    /// Initialise a new cluster.
    Init(AddrOptions),
    /// Join the cluster of the named manager.
    Join {
        /// The manager machine.
        manager: String,
        /// The role to join as.
        role: Role,
        /// Addresses.
        addrs: AddrOptions,
    },
}

/// `name`'s engine initialises a new cluster named after the machine; returns the facts
/// saved in its record.
pub async fn init(
    app: &App,
    name: &str,
    opts: &AddrOptions,
    report: &Reporter,
) -> Result<SwarmMembership> {
    let record = app.store.load(name)?;
    let engine = Engine::of(app, &record)?;
    not_in_a_swarm(name, &engine).await?;
    report.info(&format!("Initialising Swarm mode on \"{name}\"..."));
    let addrs = engine.addrs(opts);
    let node_id = api::init(&engine.url, &engine.tls, &addrs)
        .await
        .with_context(|| format!("swarm init on \"{name}\""))?;
    let info = engine.info().await?;
    let membership = SwarmMembership {
        cluster: name.to_owned(),
        cluster_id: info.cluster_id().unwrap_or_default().to_owned(),
        node_id,
        role: Role::Manager.as_str().into(),
        advertise_addr: addrs.advertise_addr,
    };
    record_membership(app, name, Some(membership.clone()))?;
    report.info(&format!(
        "\"{name}\" leads the new swarm \"{name}\" (manager)"
    ));
    Ok(membership)
}

/// `name`'s engine joins the cluster `manager` belongs to, as `role`; the join token is
/// read from `manager`'s engine and goes only into the join request.
pub async fn join(
    app: &App,
    name: &str,
    manager: &str,
    role: Role,
    opts: &AddrOptions,
    report: &Reporter,
) -> Result<SwarmMembership> {
    if name == manager {
        bail!("machine \"{name}\" cannot join itself: name another machine with --manager");
    }
    let mgr_record = app
        .store
        .load(manager)
        .with_context(|| format!("the manager \"{manager}\""))?;
    let mgr = Engine::of(app, &mgr_record)?;
    let mgr_info = mgr.info().await?;
    if !mgr_info.is_active() || !mgr_info.control_available {
        bail!(
            "machine \"{manager}\" is not a swarm manager: make it one with `dmw swarm init {manager}` (or `dmw create --swarm-manager`)"
        );
    }
    let record = app.store.load(name)?;
    let engine = Engine::of(app, &record)?;
    not_in_a_swarm(name, &engine).await?;
    let swarm = api::inspect(&mgr.url, &mgr.tls, QUERY)
        .await
        .with_context(|| format!("reading the join token from \"{manager}\""))?;
    let token = match role {
        Role::Manager => &swarm.join_tokens.manager,
        Role::Worker => &swarm.join_tokens.worker,
    };
    let mut remotes: Vec<String> = mgr_info
        .remote_managers
        .iter()
        .flatten()
        .map(|m| m.addr.clone())
        .filter(|a| !a.is_empty())
        .collect();
    if remotes.is_empty() {
        remotes.push(format!("{}:{MANAGER_PORT}", mgr.address));
    }
    report.info(&format!(
        "Joining \"{name}\" to the swarm of \"{manager}\" as a {}...",
        role.as_str()
    ));
    let addrs = engine.addrs(opts);
    if let Err(e) = api::join(&engine.url, &engine.tls, &addrs, &remotes, token).await {
        // dockerd keeps trying in the background after its own timeout: stop it, so the
        // machine really stays outside any swarm, as its record says.
        let cancelled = match engine.info().await {
            Ok(i) if i.local_node_state == "inactive" => true,
            _ => api::leave(&engine.url, &engine.tls, true).await.is_ok(),
        };
        if !cancelled {
            report.warn(&format!(
                "the engine of \"{name}\" may still be trying to join; `dmw swarm leave --force {name}` stops it"
            ));
        }
        bail!(
            "machine \"{name}\" could not join the swarm of \"{manager}\" at {}: the engine of \"{name}\" must reach port {MANAGER_PORT}/tcp of \"{manager}\" (Swarm's manager port; check firewalls between them): {e}",
            remotes.join(", ")
        );
    }
    let info = engine.info().await?;
    let cluster = mgr_record
        .swarm
        .as_ref()
        .map(|m| m.cluster.clone())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| manager.to_owned());
    let membership = SwarmMembership {
        cluster,
        cluster_id: swarm.id,
        node_id: info.node_id,
        role: role.as_str().into(),
        advertise_addr: addrs.advertise_addr,
    };
    record_membership(app, name, Some(membership.clone()))?;
    report.info(&format!(
        "\"{name}\" joined the swarm \"{}\" as a {}",
        membership.cluster,
        role.as_str()
    ));
    Ok(membership)
}

/// The records of every machine dmw knows in the cluster `cluster_id`.
fn members(app: &App, cluster_id: &str) -> Vec<MachineRecord> {
    let Ok(names) = app.store.list() else {
        return Vec::new();
    };
    names
        .iter()
        .filter_map(|n| app.store.load(n).ok())
        .filter(|r| {
            r.swarm
                .as_ref()
                .is_some_and(|m| !cluster_id.is_empty() && m.cluster_id == cluster_id)
        })
        .collect()
}

/// A machine of the cluster whose engine answers as a manager, other than `except`;
/// recorded managers are tried first.
async fn live_manager(app: &App, cluster_id: &str, except: &str) -> Option<Engine> {
    let mut records = members(app, cluster_id);
    records.sort_by_key(|r| !r.swarm.as_ref().is_some_and(SwarmMembership::is_manager));
    for r in records.iter().filter(|r| r.name != except) {
        let Ok(engine) = Engine::of(app, r) else {
            continue;
        };
        if let Ok(info) = engine.info().await
            && info.is_active()
            && info.control_available
        {
            return Some(engine);
        }
    }
    None
}

/// The machine name of a node: by the recorded node ID, else by its address.
fn machine_of<'a>(node: &Node, records: &'a [MachineRecord]) -> Option<&'a MachineRecord> {
    records
        .iter()
        .find(|r| r.swarm.as_ref().is_some_and(|m| m.node_id == node.id))
        .or_else(|| {
            records.iter().find(|r| {
                r.endpoint
                    .as_ref()
                    .is_some_and(|e| !node.status.addr.is_empty() && e.address == node.status.addr)
            })
        })
}

/// Why a manager's leaving would lose quorum, if it would: `managers` is the number of
/// managers now, `reachable` how many of them the leader reaches (the leaving one included).
pub fn quorum_loss(managers: usize, reachable: usize) -> Option<String> {
    if managers <= 1 {
        return None;
    }
    let after = managers - 1;
    let need = after / 2 + 1;
    let left = reachable.saturating_sub(1);
    (left < need).then(|| {
        format!(
            "the {after} remaining manager(s) need {need} reachable for quorum and only {left} would be"
        )
    })
}

/// How many other nodes the cluster of `name` has when `name` is its last manager (leaving
/// would end the cluster for them); `None` when it is not, or is alone.
pub async fn last_manager_with_others(app: &App, name: &str) -> Result<Option<usize>> {
    let record = app.store.load(name)?;
    if !record
        .swarm
        .as_ref()
        .is_some_and(SwarmMembership::is_manager)
    {
        return Ok(None);
    }
    let engine = Engine::of(app, &record)?;
    let info = engine.info().await?;
    if !info.is_active() || !info.control_available {
        return Ok(None);
    }
    let nodes = engine.nodes().await?;
    let managers = nodes.iter().filter(|n| n.role() == "manager").count();
    Ok((managers <= 1 && nodes.len() > 1).then(|| nodes.len() - 1))
}

/// `name` leaves its cluster safely: a worker is drained, leaves and is removed from the
/// managers' node list; a manager is demoted first when a quorum remains (refused when it
/// would not, unless `force`); the last manager leaves only alone, or with `force`.
pub async fn leave(app: &App, name: &str, force: bool, report: &Reporter) -> Result<()> {
    let record = app.store.load(name)?;
    let engine = Engine::of(app, &record)?;
    let info = engine.info().await?;
    if !info.is_active() {
        if record.swarm.is_some() {
            record_membership(app, name, None)?;
        }
        report.info(&format!("\"{name}\" is not in a swarm"));
        return Ok(());
    }
    let cluster_id = record
        .swarm
        .as_ref()
        .map(|m| m.cluster_id.clone())
        .or_else(|| info.cluster_id().map(str::to_owned))
        .unwrap_or_default();
    let node_id = info.node_id.clone();
    let mut demoted = false;
    let other_manager = if info.control_available {
        let nodes = engine.nodes().await?;
        let managers: Vec<&Node> = nodes.iter().filter(|n| n.role() == "manager").collect();
        let reachable = managers.iter().filter(|n| n.is_reachable_manager()).count();
        if managers.len() <= 1 {
            if nodes.len() > 1 && !force {
                bail!(
                    "machine \"{name}\" is the last manager of its swarm, which has {} other node(s): leaving would end the cluster; promote another manager first (`dmw swarm join` a new one with --as manager), or use --force",
                    nodes.len() - 1
                );
            }
            report.info(&format!("\"{name}\" leaves its swarm (last manager)"));
            api::leave(&engine.url, &engine.tls, true)
                .await
                .with_context(|| format!("swarm leave on \"{name}\""))?;
            record_membership(app, name, None)?;
            return Ok(());
        }
        if let Some(why) = quorum_loss(managers.len(), reachable) {
            if !force {
                bail!(
                    "machine \"{name}\" is a manager and leaving would lose the swarm's quorum: {why}; bring the unreachable managers back first, or use --force"
                );
            }
            report.warn(&format!("\"{name}\" leaves although {why} (--force)"));
            api::leave(&engine.url, &engine.tls, true)
                .await
                .with_context(|| format!("swarm leave on \"{name}\""))?;
            record_membership(app, name, None)?;
            return Ok(());
        }
        let me = nodes
            .iter()
            .find(|n| n.id == node_id)
            .ok_or_else(|| anyhow!("\"{name}\" is not in its own node list"))?;
        report.info(&format!("Demoting \"{name}\" to a worker..."));
        api::update_node(
            &engine.url,
            &engine.tls,
            me,
            Some("worker"),
            Some("drain"),
            QUERY,
        )
        .await
        .with_context(|| format!("demoting \"{name}\""))?;
        demoted = true;
        wait_demoted(&engine).await?;
        live_manager(app, &cluster_id, name).await
    } else {
        live_manager(app, &cluster_id, name).await
    };
    if let Some(mgr) = &other_manager
        && !demoted
        && let Ok(nodes) = mgr.nodes().await
        && let Some(me) = nodes.iter().find(|n| n.id == node_id)
    {
        report.info(&format!("Draining \"{name}\"..."));
        if let Err(e) = api::update_node(&mgr.url, &mgr.tls, me, None, Some("drain"), QUERY).await {
            report.warn(&format!("could not drain \"{name}\": {e}"));
        }
    }
    report.info(&format!("\"{name}\" leaves its swarm..."));
    api::leave(&engine.url, &engine.tls, force)
        .await
        .with_context(|| format!("swarm leave on \"{name}\""))?;
    match &other_manager {
        Some(mgr) => api::remove_node(&mgr.url, &mgr.tls, &node_id, true, QUERY)
            .await
            .with_context(|| format!("removing the node of \"{name}\" on \"{}\"", mgr.name))?,
        None => report.warn(&format!(
            "no manager of the swarm answered: node {node_id} (\"{name}\") stays in its node list as down until `docker node rm` on a manager"
        )),
    }
    record_membership(app, name, None)?;
    Ok(())
}

/// Waits until a demoted manager's engine says it no longer manages.
async fn wait_demoted(engine: &Engine) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if !engine.info().await?.control_available {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "\"{}\" was still a manager 60 s after its demotion",
                engine.name
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One node of `dmw swarm ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    /// The machine's name (`-` for a node dmw does not know).
    pub machine: String,
    /// The node's host name.
    pub hostname: String,
    /// `manager` or `worker`.
    pub role: String,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    /// `ready`, `down`, …
    pub status: String,
    /// Engine version.
    pub engine_version: String,
    /// Whether it leads the managers.
    pub leader: bool,
}

/// A cluster as `dmw swarm ls` shows it.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Its name in dmw.
    pub name: String,
    /// The machine whose engine answered.
    pub asked: String,
    /// Its nodes, in the order the manager gave them.
    pub nodes: Vec<NodeRow>,
}

/// The cluster IDs and names dmw knows, each once; `only` keeps the cluster of that
/// machine or cluster name.
fn clusters(app: &App, only: Option<&str>) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for n in app.store.list()? {
        let Ok(r) = app.store.load(&n) else { continue };
        let Some(m) = &r.swarm else { continue };
        if only.is_some_and(|o| o != m.cluster && o != r.name) {
            continue;
        }
        if !out.iter().any(|(id, _)| *id == m.cluster_id) {
            out.push((m.cluster_id.clone(), m.cluster.clone()));
        }
    }
    if let Some(o) = only
        && out.is_empty()
    {
        bail!("no machine of dmw is in a swarm named \"{o}\" (nor is a machine \"{o}\" in one)");
    }
    Ok(out)
}

/// The nodes of each cluster (of `only`: a cluster name or one of its machines).
pub async fn list(app: &App, only: Option<&str>) -> Result<Vec<Cluster>> {
    let mut out = Vec::new();
    for (id, name) in clusters(app, only)? {
        let mgr = live_manager(app, &id, "")
            .await
            .ok_or_else(|| anyhow!("no manager of the swarm \"{name}\" answers"))?;
        let nodes = mgr.nodes().await?;
        let records: Vec<MachineRecord> = app
            .store
            .list()?
            .iter()
            .filter_map(|n| app.store.load(n).ok())
            .collect();
        let rows = nodes
            .iter()
            .map(|n| NodeRow {
                machine: machine_of(n, &records)
                    .map(|r| r.name.clone())
                    .unwrap_or_else(|| "-".into()),
                hostname: n.description.hostname.clone(),
                role: n.role().to_owned(),
                availability: n.availability().to_owned(),
                status: n.status.state.clone(),
                engine_version: n.description.engine.engine_version.clone(),
                leader: n.is_leader(),
            })
            .collect();
        out.push(Cluster {
            name,
            asked: mgr.name.clone(),
            nodes: rows,
        });
    }
    Ok(out)
}

/// The machine leading the cluster that `name` (a machine or cluster name) belongs to.
pub async fn leader(app: &App, name: &str) -> Result<String> {
    let clusters = list(app, Some(name)).await?;
    let cluster = clusters
        .first()
        .ok_or_else(|| anyhow!("\"{name}\" is in no swarm"))?;
    let node = cluster
        .nodes
        .iter()
        .find(|n| n.leader)
        .ok_or_else(|| anyhow!("the swarm \"{}\" has no leader right now", cluster.name))?;
    if node.machine == "-" {
        bail!(
            "the leader of the swarm \"{}\" (host {}) is not a dmw machine",
            cluster.name,
            node.hostname
        );
    }
    Ok(node.machine.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum() {
        assert_eq!(quorum_loss(1, 1), None);
        assert_eq!(quorum_loss(3, 3), None);
        assert!(quorum_loss(3, 2).is_some());
        assert_eq!(quorum_loss(5, 4), None);
        assert!(quorum_loss(2, 1).is_some());
        assert_eq!(quorum_loss(2, 2), None);
    }

    #[test]
    fn options() {
        let mut o = AddrOptions::default();
        o.set("listen-addr=0.0.0.0:2377").unwrap();
        o.set("--data-path-addr=10.0.0.1").unwrap();
        assert_eq!(o.listen_addr.as_deref(), Some("0.0.0.0:2377"));
        assert_eq!(o.data_path_addr.as_deref(), Some("10.0.0.1"));
        assert!(o.set("strategy=binpack").is_err());
        assert!(o.set("listen-addr").is_err());
    }
}
