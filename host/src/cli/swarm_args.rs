//! Docker Machine's `--swarm-*` create flags, mapped onto Swarm mode: the ones that still
//! mean something become a [`SwarmPlan`]; the legacy Swarm ones are accepted (scripts pass
//! them) and ignored, with one warning line saying why.

use crate::usecase::swarm::{AddrOptions, Role, SwarmPlan};

/// The `--swarm-*` flags of `create`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SwarmCreateArgs {
    /// Join a Swarm-mode cluster (as a worker; name a manager with --swarm-join)
    #[arg(long)]
    pub swarm: bool,
    /// Make the machine a Swarm-mode manager: a new cluster, or with --swarm-join a manager of that one
    #[arg(long, visible_alias = "swarm-master")]
    pub swarm_manager: bool,
    /// A manager machine whose cluster to join
    #[arg(long, value_name = "NAME")]
    pub swarm_join: Option<String>,
    /// Address to advertise to the cluster (default: the machine's address)
    #[arg(long, value_name = "ADDR")]
    pub swarm_addr: Option<String>,
    /// Swarm option for a new cluster: listen-addr=ADDR[:PORT] or data-path-addr=ADDR
    #[arg(long, value_name = "KEY=VALUE")]
    pub swarm_opt: Vec<String>,
    /// Swarm option for joining: listen-addr=ADDR[:PORT] or data-path-addr=ADDR
    #[arg(long, value_name = "KEY=VALUE")]
    pub swarm_join_opt: Vec<String>,
    /// Ignored: Swarm mode has no discovery service (use --swarm-join NAME)
    #[arg(long, value_name = "URL")]
    pub swarm_discovery: Option<String>,
    /// Ignored: Swarm mode runs no swarm container
    #[arg(long, value_name = "IMAGE")]
    pub swarm_image: Option<String>,
    /// Ignored: Swarm mode always spreads tasks (use placement preferences on services)
    #[arg(long, value_name = "STRATEGY")]
    pub swarm_strategy: Option<String>,
    /// Ignored: Swarm mode has no separate manager endpoint (use `env --swarm NAME`)
    #[arg(long, value_name = "HOST")]
    pub swarm_host: Option<String>,
    /// Ignored: Swarm mode's features come with the engine (use --engine-opt experimental)
    #[arg(long)]
    pub swarm_experimental: bool,
}

impl SwarmCreateArgs {
    /// The one warning line naming the legacy Swarm flags given, which Swarm mode has no
    /// use for and `create` ignores; `None` when none was given.
    pub fn ignored_warning(&self) -> Option<String> {
        let given: Vec<&str> = [
            ("--swarm-discovery", self.swarm_discovery.is_some()),
            ("--swarm-strategy", self.swarm_strategy.is_some()),
            ("--swarm-image", self.swarm_image.is_some()),
            ("--swarm-host", self.swarm_host.is_some()),
            ("--swarm-experimental", self.swarm_experimental),
        ]
        .into_iter()
        .filter_map(|(flag, set)| set.then_some(flag))
        .collect();
        if given.is_empty() {
            return None;
        }
        Some(format!(
            "Ignoring {}: legacy Swarm flags; Swarm mode is built into Docker Engine (no swarm container, discovery service, strategy or manager port), so they have nothing to set",
            given.join(", ")
        ))
    }

    /// The plan, or the one sentence explaining why the flags given make none.
    pub fn plan(&self) -> Result<Option<SwarmPlan>, String> {
        let mut addrs = AddrOptions::default();
        let opts = if self.swarm_join.is_some() {
            &self.swarm_join_opt
        } else {
            &self.swarm_opt
        };
        for o in opts {
            addrs.set(o).map_err(|e| format!("{e:#}"))?;
        }
        if self.swarm_addr.is_some() {
            addrs.advertise_addr = self.swarm_addr.clone();
        }
        let any_option = self.swarm_addr.is_some()
            || !self.swarm_opt.is_empty()
            || !self.swarm_join_opt.is_empty();
        match (&self.swarm_join, self.swarm_manager, self.swarm) {
            (Some(m), manager, _) => Ok(Some(SwarmPlan::Join {
                manager: m.clone(),
                role: if manager { Role::Manager } else { Role::Worker },
                addrs,
            })),
            (None, true, _) => {
                if !self.swarm_join_opt.is_empty() {
                    return Err("--swarm-join-opt applies when joining: use --swarm-opt for a new cluster".into());
                }
                Ok(Some(SwarmPlan::Init(addrs)))
            }
            (None, false, true) => Err(
                "--swarm joins a Swarm-mode cluster: name one of its managers with --swarm-join NAME, or start a cluster with --swarm-manager".into(),
            ),
            (None, false, false) if any_option => Err(
                "the --swarm-addr, --swarm-opt and --swarm-join-opt flags need --swarm-manager or --swarm --swarm-join NAME".into(),
            ),
            (None, false, false) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        let a = SwarmCreateArgs::default();
        assert_eq!(a.plan(), Ok(None));
        let init = SwarmCreateArgs {
            swarm: true,
            swarm_manager: true,
            swarm_addr: Some("10.0.0.1".into()),
            ..Default::default()
        };
        assert!(
            matches!(init.plan(), Ok(Some(SwarmPlan::Init(a))) if a.advertise_addr.as_deref() == Some("10.0.0.1"))
        );
        let join = SwarmCreateArgs {
            swarm: true,
            swarm_join: Some("m1".into()),
            ..Default::default()
        };
        assert!(matches!(
            join.plan(),
            Ok(Some(SwarmPlan::Join {
                role: Role::Worker,
                ..
            }))
        ));
        let mgr = SwarmCreateArgs {
            swarm_manager: true,
            swarm_join: Some("m1".into()),
            ..Default::default()
        };
        assert!(matches!(
            mgr.plan(),
            Ok(Some(SwarmPlan::Join {
                role: Role::Manager,
                ..
            }))
        ));
        let alone = SwarmCreateArgs {
            swarm: true,
            ..Default::default()
        };
        assert!(alone.plan().unwrap_err().contains("--swarm-join NAME"));
        // Docker Machine's `--swarm --swarm-master --swarm-discovery token://…`: a new
        // cluster, the legacy flags ignored with one warning.
        let legacy = SwarmCreateArgs {
            swarm: true,
            swarm_manager: true,
            swarm_discovery: Some("token://x".into()),
            swarm_strategy: Some("binpack".into()),
            swarm_experimental: true,
            ..Default::default()
        };
        assert!(matches!(legacy.plan(), Ok(Some(SwarmPlan::Init(_)))));
        let warning = legacy.ignored_warning().expect("warning");
        assert!(
            warning.starts_with(
                "Ignoring --swarm-discovery, --swarm-strategy, --swarm-experimental: legacy Swarm flags;"
            ),
            "{warning}"
        );
        assert_eq!(SwarmCreateArgs::default().ignored_warning(), None);
        let strategy = SwarmCreateArgs {
            swarm_strategy: Some("binpack".into()),
            ..Default::default()
        };
        assert_eq!(strategy.plan(), Ok(None));
    }
}
