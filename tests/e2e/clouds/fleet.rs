//! "Instances are testbed hosts": the cloud test servers boot a real Debian host (with
//! Debian's docker.io) for each instance, authorise the public key the client registered
//! for root, and map power actions and deletion onto the host. One fleet can serve
//! several cloud servers.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::{Arc, Mutex};

use dmw_testbed::{Host, Options};

/// The hosts behind a cloud server's instances, by instance id.
#[derive(Default)]
pub struct Fleet {
    hosts: Mutex<HashMap<String, Instance>>,
}

struct Instance {
    host: Arc<Host>,
    /// Extra addresses added to the host (a cloud's floating IPs), in order.
    aliases: Vec<Ipv4Addr>,
}

impl Fleet {
    /// An empty fleet.
    pub fn new() -> Fleet {
        Fleet::default()
    }

    /// Boots a docker host for instance `id` and authorises `public_key` (one OpenSSH line)
    /// for root, if given; returns its address. Blocks until the host has booted.
    pub fn boot(&self, id: &str, public_key: Option<&str>) -> io::Result<Ipv4Addr> {
        let key = public_key.map(str::trim);
        if let Some(key) = key
            && (key.contains('\n') || !(key.starts_with("ssh-") || key.starts_with("ecdsa-")))
        {
            return Err(io::Error::other(format!(
                "refusing an authorized key that is not one OpenSSH line: {key:?}"
            )));
        }
        let host = Host::boot(&Options {
            docker: true,
            ..Options::default()
        })?;
        if let Some(key) = key {
            let ssh = host.root_dir().join("root/.ssh");
            std::fs::create_dir_all(&ssh)?;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(ssh.join("authorized_keys"))?;
            writeln!(f, "{key}")?;
        }
        let addr = host.addr();
        self.lock().insert(
            id.to_string(),
            Instance {
                host: Arc::new(host),
                aliases: Vec::new(),
            },
        );
        Ok(addr)
    }

    /// The instance's host, if it exists.
    fn host(&self, id: &str) -> io::Result<Arc<Host>> {
        self.lock()
            .get(id)
            .map(|i| i.host.clone())
            .ok_or_else(|| io::Error::other(format!("no host for instance {id}")))
    }

    /// The instance's (primary) address.
    pub fn addr(&self, id: &str) -> Option<Ipv4Addr> {
        self.lock().get(id).map(|i| i.host.addr())
    }

    /// Shuts the instance's host down (its disk and address stay).
    pub fn stop(&self, id: &str) -> io::Result<()> {
        self.host(id)?.stop()
    }

    /// Boots the instance's host again.
    pub fn start(&self, id: &str) -> io::Result<()> {
        self.host(id)?.start()
    }

    /// Gives the instance's host another address of its /29 (what a cloud does to a server
    /// without a reserved IP when it is powered on again) and returns it.
    pub fn change_addr(&self, id: &str) -> io::Result<Ipv4Addr> {
        self.host(id)?.change_addr()
    }

    /// Stops and starts the instance's host.
    pub fn reboot(&self, id: &str) -> io::Result<()> {
        self.host(id)?.restart()
    }

    /// Deletes the instance's host (kills it, removes its files and network); false if unknown.
    pub fn delete(&self, id: &str) -> bool {
        let gone = self.lock().remove(id);
        // Dropping the last Arc<Host> tears it down.
        gone.is_some()
    }

    /// Adds another address of the host's /29 to its interface (a floating IP that really
    /// reaches the instance) and returns it: `want` if given (re-adding one it had), else
    /// the next free one.
    pub fn add_alias(&self, id: &str, want: Option<Ipv4Addr>) -> io::Result<Ipv4Addr> {
        let mut hosts = self.lock();
        let inst = hosts
            .get_mut(id)
            .ok_or_else(|| io::Error::other(format!("no host for instance {id}")))?;
        // The testbed gives the host .2 of its slot's /29; .3 to .6 are free.
        let base = u32::from(inst.host.addr());
        let alias = match want {
            Some(a) => a,
            None => (base + 1..base + 5)
                .map(Ipv4Addr::from)
                .find(|a| !inst.aliases.contains(a))
                .ok_or_else(|| io::Error::other(format!("instance {id} has no free address")))?,
        };
        if inst.aliases.contains(&alias) {
            return Ok(alias);
        }
        ip(&[
            "-n",
            inst.host.name(),
            "addr",
            "add",
            &format!("{alias}/29"),
            "dev",
            "eth0",
        ])?;
        inst.aliases.push(alias);
        Ok(alias)
    }

    /// Removes an address added by [`Fleet::add_alias`] (no-op when the host is gone).
    pub fn remove_alias(&self, id: &str, alias: Ipv4Addr) -> io::Result<()> {
        let mut hosts = self.lock();
        let Some(inst) = hosts.get_mut(id) else {
            return Ok(());
        };
        if let Some(pos) = inst.aliases.iter().position(|a| *a == alias) {
            inst.aliases.remove(pos);
            ip(&[
                "-n",
                inst.host.name(),
                "addr",
                "del",
                &format!("{alias}/29"),
                "dev",
                "eth0",
            ])?;
        }
        Ok(())
    }

    /// Ids of the instances that still have a host.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// One line per instance that still has a host: "testbed host of {what}{id}".
    pub fn leftovers(&self, what: &str) -> Vec<String> {
        self.ids()
            .into_iter()
            .map(|i| format!("testbed host of {what}{i}"))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instance>> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
