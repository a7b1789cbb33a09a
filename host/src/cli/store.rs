//! `dmw store …`: the machine store shared by a team (see [`crate::state::store::shared`] and
//! [`crate::usecase::team_store`]).

use clap::{Args, Subcommand};

use super::{CliError, CliResult};
use crate::app::App;
use crate::usecase::team_store::{self, Membership, Moved};

/// `dmw store ...`.
#[derive(Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Use this store for every command: s3://BUCKET/PREFIX[?endpoint=URL], etcd://HOST:PORT[,…]/PREFIX, a directory, or "default"
    Use {
        /// The store URL
        url: String,
    },
    /// Make your store identity (if you have none) and join the store's recipients when it has none
    Init,
    /// Show where the store is, who may read its secrets and which machines' keys you cannot read
    Info,
    /// Break the lock of a machine whose command is gone (its holder is named)
    Unlock {
        /// Machine name
        name: String,
    },
    /// Copy every machine of a file store (default ~/.dmw) into a shared store (default: the one in use)
    Push {
        /// The shared store to copy into (s3://… or etcd://…)
        url: Option<String>,
        /// The file store to copy from
        #[arg(long, value_name = "PATH")]
        from: Option<std::path::PathBuf>,
    },
    /// Pull the shared store into its working copy now (every command does it first), or copy its machines into a file store
    Pull {
        /// Also copy every machine whose keys you can read into this file store (e.g. ~/.dmw)
        #[arg(long, value_name = "PATH")]
        into: Option<std::path::PathBuf>,
    },
    /// The store's recipients: those who can read its private keys
    Recipients {
        #[command(subcommand)]
        command: RecipientsCommand,
    },
}

#[derive(Subcommand)]
enum RecipientsCommand {
    /// List them
    Ls,
    /// Add recipients (age1… or an SSH public key line) and re-encrypt every secret to them
    Add {
        /// Recipient lines
        #[arg(required = true)]
        recipients: Vec<String>,
    },
    /// Trust the store's current recipients on this computer (after another member added some)
    Approve,
    /// Remove recipients and re-encrypt every secret without them
    Rm {
        /// Recipient lines
        #[arg(required = true)]
        recipients: Vec<String>,
    },
}

/// Run `dmw store …`.
pub async fn run(app: &App, a: StoreArgs) -> CliResult {
    let shared = || {
        app.store.shared().ok_or_else(|| {
            CliError::new(format!(
                "the store {} is a directory on this computer, not a shared store: `dmw store use s3://BUCKET/PREFIX` or `etcd://HOST:PORT/PREFIX` (or DMW_STORAGE_PATH) chooses one",
                app.store.root().display()
            ))
        })
    };
    match a.command {
        StoreCommand::Use { url } => {
            let joined = team_store::use_store(&url)?;
            println!("Every command now uses the store {url}");
            if let Some(j) = joined {
                print_joined(&j);
            }
            Ok(())
        }
        StoreCommand::Init => {
            let j = team_store::join(shared()?)?;
            print_joined(&j);
            Ok(())
        }
        StoreCommand::Info => {
            let s = shared()?;
            println!("Store: {}", s.url());
            println!("Working copy: {}", app.store.root().display());
            for r in team_store::recipients(s)? {
                println!("Recipient: {r}");
            }
            for k in s.locked_out() {
                println!("Not readable with your identity: {k}");
            }
            Ok(())
        }
        StoreCommand::Unlock { name } => {
            match team_store::unlock(shared()?, &name)? {
                Some(info) => eprintln!(
                    "WARNING: broke the lock of {} ({}); if that command still runs, its changes may conflict with the next one",
                    name,
                    info.describe(&name)
                ),
                None => println!("{name} was not locked"),
            }
            Ok(())
        }
        StoreCommand::Push { url, from } => {
            let from = match from {
                Some(f) => f,
                None => team_store::home_store()?,
            };
            let opened;
            let to = match url {
                Some(u) => {
                    opened = team_store::open_shared(&u)?;
                    &opened
                }
                None => {
                    shared()?;
                    &app.store
                }
            };
            let (pushed, ca) = team_store::push(&from, to)?;
            if ca {
                println!("Copied the CA of {} into the shared store", from.display());
            }
            print_moved(&pushed, "the shared store");
            Ok(())
        }
        StoreCommand::Pull { into } => {
            let s = shared()?;
            let names = app.store.list()?;
            println!(
                "{} machine(s) in {} (working copy {})",
                names.len(),
                s.url(),
                app.store.root().display()
            );
            if let Some(into) = into {
                let (moved, ca) = team_store::pull_into(&app.store, &into)?;
                if ca {
                    println!("Copied the CA into {}", into.display());
                }
                print_moved(&moved, &into.display().to_string());
            }
            Ok(())
        }
        StoreCommand::Recipients { command } => {
            let s = shared()?;
            match command {
                RecipientsCommand::Ls => {
                    for r in team_store::recipients(s)? {
                        println!("{r}");
                    }
                }
                RecipientsCommand::Approve => {
                    let list = team_store::approve_recipients(s)?;
                    println!("This computer now encrypts to {} recipient(s):", list.len());
                    for r in list {
                        println!("{r}");
                    }
                }
                RecipientsCommand::Add { recipients } => {
                    let (list, n) = team_store::change_recipients(s, &recipients, &[])?;
                    println!(
                        "{} recipient(s); {n} secret object(s) re-encrypted",
                        list.len()
                    );
                }
                RecipientsCommand::Rm { recipients } => {
                    let (list, n) = team_store::change_recipients(s, &[], &recipients)?;
                    println!(
                        "{} recipient(s); {n} secret object(s) re-encrypted",
                        list.len()
                    );
                    eprintln!(
                        "WARNING: a removed member may keep copies of the keys they could read: re-issue them (`dmw regenerate-certs --client-certs`, new machine keys) to lock them out"
                    );
                }
            }
            Ok(())
        }
    }
}

fn print_moved(moved: &[Moved], dest: &str) {
    for m in moved {
        match m {
            Moved::Copied(n) => println!("Copied {n}"),
            Moved::Exists(n) => println!("Skipped {n}: {dest} has a machine of that name"),
            Moved::Unreadable(n) => {
                println!("Skipped {n}: its private keys are not readable with your store identity")
            }
        }
    }
}

fn print_joined(j: &team_store::Joined) {
    if let Some(p) = &j.identity_created {
        println!(
            "Created your store identity {} (keep it private)",
            p.display()
        );
    }
    match j.membership {
        Membership::First => println!(
            "Secrets are encrypted to you ({}); add members with `dmw store recipients add KEY`",
            j.recipient
        ),
        Membership::Recipient => println!("You can read the store's secrets ({})", j.recipient),
        Membership::Outside => println!(
            "You can list and inspect machines, not use their keys, until a member runs:\n  dmw store recipients add {}",
            j.recipient
        ),
    }
}
