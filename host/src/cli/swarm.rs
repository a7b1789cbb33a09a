//! `dmw swarm init|join|leave|ls`: Swarm mode on dmw machines (logic in `crate::usecase::swarm`).

use super::{CliError, CliResult, each};
use crate::app::App;
use crate::usecase::swarm::{self, AddrOptions, Role};

/// Arguments of `swarm`.
#[derive(clap::Args)]
pub struct SwarmArgs {
    #[command(subcommand)]
    command: SwarmCommand,
}

#[derive(clap::Subcommand)]
enum SwarmCommand {
    /// Make each machine's engine the first manager of a new cluster
    Init {
        /// Machine names
        #[arg(required = true)]
        names: Vec<String>,
        /// Address to advertise to the cluster (default: the machine's address)
        #[arg(long, value_name = "ADDR")]
        advertise_addr: Option<String>,
        /// Swarm option KEY=VALUE: listen-addr, data-path-addr
        #[arg(long = "opt", value_name = "KEY=VALUE")]
        opts: Vec<String>,
    },
    /// Join machines to the cluster of a manager
    Join {
        /// Machine names
        #[arg(required = true)]
        names: Vec<String>,
        /// A manager of the cluster (a dmw machine)
        #[arg(long, value_name = "NAME")]
        manager: String,
        /// The role the machines join as
        #[arg(long = "as", value_enum, default_value_t = Role::Worker)]
        role: Role,
        /// Address to advertise to the cluster (default: the machine's address)
        #[arg(long, value_name = "ADDR")]
        advertise_addr: Option<String>,
        /// Swarm option KEY=VALUE: listen-addr, data-path-addr
        #[arg(long = "opt", value_name = "KEY=VALUE")]
        opts: Vec<String>,
    },
    /// Leave the cluster (a manager is demoted first; refused if quorum would be lost)
    Leave {
        /// Machine names
        #[arg(required = true)]
        names: Vec<String>,
        /// Leave even when it loses quorum or ends the cluster
        #[arg(short, long)]
        force: bool,
    },
    /// List the nodes of the clusters of dmw machines
    Ls {
        /// A cluster name (its first manager's machine name) or one of its machines
        cluster: Option<String>,
    },
}

/// `AddrOptions` from `--advertise-addr` and `--opt` values.
fn addr_options(advertise: Option<String>, opts: &[String]) -> Result<AddrOptions, CliError> {
    let mut o = AddrOptions::default();
    for opt in opts {
        o.set(opt).map_err(|e| CliError::new(format!("{e:#}")))?;
    }
    if advertise.is_some() {
        o.advertise_addr = advertise;
    }
    Ok(o)
}

/// Run `dmw swarm`.
pub async fn run(app: &App, a: SwarmArgs) -> CliResult {
    match a.command {
        SwarmCommand::Init {
            names,
            advertise_addr,
            opts,
        } => {
            let o = addr_options(advertise_addr, &opts)?;
            each::for_each(app, names, |name, report| {
                let o = o.clone();
                async move {
                    let _lock = app
                        .store
                        .lock_existing(&name)
                        .map_err(|e| format!("{e:#}"))?;
                    swarm::init(app, &name, &o, &report)
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("Error: {e:#}"))
                }
            })
            .await
        }
        SwarmCommand::Join {
            names,
            manager,
            role,
            advertise_addr,
            opts,
        } => {
            let o = addr_options(advertise_addr, &opts)?;
            let manager = &manager;
            each::for_each(app, names, |name, report| {
                let o = o.clone();
                async move {
                    let _lock = app
                        .store
                        .lock_existing(&name)
                        .map_err(|e| format!("{e:#}"))?;
                    swarm::join(app, &name, manager, role, &o, &report)
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("Error: {e:#}"))
                }
            })
            .await
        }
        SwarmCommand::Leave { names, force } => {
            each::for_each(app, names, |name, report| async move {
                let _lock = app
                    .store
                    .lock_existing(&name)
                    .map_err(|e| format!("{e:#}"))?;
                swarm::leave(app, &name, force, &report)
                    .await
                    .map_err(|e| format!("Error: {e:#}"))?;
                report.info(&format!("\"{name}\" left its swarm"));
                Ok(())
            })
            .await
        }
        SwarmCommand::Ls { cluster } => {
            let clusters = swarm::list(app, cluster.as_deref())
                .await
                .map_err(|e| CliError::new(format!("Error: {e:#}")))?;
            print!("{}", crate::cli::render::swarm_table(&clusters));
            Ok(())
        }
    }
}
