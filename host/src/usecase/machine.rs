//! Querying a machine's live state: engine first (no plugin needed when it answers), then
//! the driver. Used by `ls`, `status` and `active`.

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::sandbox::plugin::driver::{MachineState, state_name};
use crate::state::store::{LoadError, MachineRecord, MachineStatus};
use crate::text::report::Reporter;

/// What `ls` shows about one machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Machine name.
    pub name: String,
    /// Driver name (`not found` when the record cannot be read).
    pub driver: String,
    /// State text: Running, Stopped, Error, Timeout, Creating, …
    pub state: String,
    /// Engine URL (empty when not running).
    pub url: String,
    /// `v<version>`, `Unknown`, or empty.
    pub docker: String,
    /// Error text, one line.
    pub error: String,
    /// How long the query took (the timeout itself for `Timeout`).
    pub response_time: Duration,
}

impl Observed {
    /// Whether the machine answered as running.
    pub fn is_running(&self) -> bool {
        self.state == "Running"
    }
}

fn one_line(s: &str) -> String {
    // Errors may hold plugin text, also raw in records written by older versions.
    crate::text::sanitize::stored_text(&s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Observe one machine within `timeout`.
pub async fn observe(app: &App, name: &str, timeout: Duration) -> Observed {
    let started = std::time::Instant::now();
    match tokio::time::timeout(timeout, observe_inner(app, name, timeout)).await {
        Ok(o) => {
            let mut o = Observed {
                response_time: started.elapsed(),
                ..o
            };
            let warnings = cert_warnings(app, name);
            if !warnings.is_empty() {
                let mut parts: Vec<String> = Some(o.error.clone())
                    .filter(|e| !e.is_empty())
                    .into_iter()
                    .collect();
                parts.extend(warnings);
                o.error = parts.join("; ");
            }
            o
        }
        Err(_) => {
            let driver = app
                .store
                .load(name)
                .map(|r| r.driver.name)
                .unwrap_or_default();
            Observed {
                name: name.into(),
                driver,
                state: "Timeout".into(),
                response_time: timeout,
                ..Default::default()
            }
        }
    }
}

/// What `ls` and `env` warn about a machine's certificates: its server certificate and
/// the client certificate its docker CLI uses, each when it ends within 30 days or has
/// ended ([`crate::net::tls::ends_soon`]), and a server certificate that does not name the
/// machine's address; each with the command that fixes it.
pub fn cert_warnings(app: &App, name: &str) -> Vec<String> {
    let dir = app.store.machine(name);
    let now = time::OffsetDateTime::now_utc();
    let checks = [
        (
            dir.server_cert(),
            "its server certificate",
            format!("`dmw regenerate-certs {name}`"),
        ),
        (
            dir.client_cert(),
            "the client certificate",
            format!("`dmw regenerate-certs --client-certs {name}`"),
        ),
    ];
    let mut warnings = Vec::new();
    for (path, what, renew) in checks {
        let Ok(pem) = std::fs::read_to_string(&path) else {
            continue;
        };
        if let Ok(Some(end)) = crate::net::tls::ends_soon(&pem, now) {
            let when = if end <= now {
                format!("{what} expired on {}", end.date())
            } else {
                format!(
                    "{what} expires on {} (in {} days)",
                    end.date(),
                    (end - now).whole_days()
                )
            };
            warnings.push(format!("{when}: {renew} renews it"));
        }
    }
    if let Some(warning) = address_not_named(app, name, now) {
        warnings.push(warning);
    }
    warnings
}

/// The warning for a machine whose server certificate (still valid) does not name the
/// address its record holds: the address changed since the certificate was issued (a
/// provider gave the machine a new one at start), so the docker CLI would refuse it.
fn address_not_named(app: &App, name: &str, now: time::OffsetDateTime) -> Option<String> {
    let record = app.store.load(name).ok()?;
    let address = record.endpoint.as_ref()?.address.clone();
    let dir = app.store.machine(name);
    let cert = std::fs::read_to_string(dir.server_cert()).ok()?;
    let ca = std::fs::read_to_string(dir.ca_cert()).ok()?;
    if crate::net::tls::cert_expiry(&cert).ok()? <= now {
        return None;
    }
    match crate::net::tls::server_cert_names(&ca, &cert, &address) {
        Ok(false) => Some(format!(
            "its server certificate does not name its address {address} (the address changed since it was issued): `dmw regenerate-certs {name}` re-issues it"
        )),
        _ => None,
    }
}

/// What `ls` says of a machine whose create was interrupted (dmw killed, the computer
/// off): resumable by `dmw provision` once the machine has an address that dmw provisions.
fn interrupted(record: &MachineRecord) -> String {
    let name = &record.name;
    if record.endpoint.is_some() && !record.engine_only {
        format!(
            "create was interrupted before it finished: `dmw provision {name}` resumes it, `dmw rm {name}` removes it"
        )
    } else {
        format!(
            "create was interrupted before the machine had an address: `dmw rm {name}` removes what it made, then create can run again"
        )
    }
}

async fn observe_inner(app: &App, name: &str, timeout: Duration) -> Observed {
    let record = match app.store.load(name) {
        Ok(r) => r,
        Err(e @ LoadError::Corrupt { .. }) | Err(e @ LoadError::NotFound(_)) => {
            return Observed {
                name: name.into(),
                driver: "not found".into(),
                state: "Error".into(),
                error: one_line(&e.to_string()),
                ..Default::default()
            };
        }
    };
    let mut o = Observed {
        name: name.into(),
        driver: record.driver.name.clone(),
        url: record.shown_url().unwrap_or_default(),
        ..Default::default()
    };
    match record.status {
        MachineStatus::Error => {
            o.state = "Error".into();
            if let Some(e) = &record.error {
                o.error = one_line(&format!("{} failed: {}", e.step, e.message));
            }
            return o;
        }
        MachineStatus::Creating => {
            if app.store.is_locked(name) {
                o.state = "Creating".into();
            } else {
                o.state = "Error".into();
                o.error = interrupted(&record);
            }
            return o;
        }
        MachineStatus::Unprovisioned => {
            // No engine to ask: the provider's state, and in ERRORS what to do.
            let report = Arc::new(Reporter::quiet(app.debug));
            let state = match app.machine_driver(&record, report).await {
                Ok(mut d) => d.state().await,
                Err(e) => Err(e),
            };
            o.url.clear();
            match state {
                Ok(s) => {
                    o.state = state_name(s).into();
                    o.error = format!(
                        "not provisioned (created with --no-provision): `dmw provision {name}` installs Docker"
                    );
                }
                Err(e) => {
                    o.state = "Error".into();
                    o.error = one_line(&format!("{e:#}"));
                }
            }
            return o;
        }
        MachineStatus::Ready => {}
    }
    // The engine gets more than the caller's budget, so an engine that hangs makes the
    // whole query `Timeout` (as in Docker Machine) instead of racing the outer timeout
    // and falling through to the driver's answer.
    let engine_budget = timeout + Duration::from_secs(1);
    let engine_error = match query_engine(app, &record, engine_budget).await {
        Ok(version) => {
            o.state = "Running".into();
            o.docker = format!("v{version}");
            return o;
        }
        Err(e) => e,
    };
    if record.engine_only {
        // As Docker Machine's none driver, a recorded engine is always Running (scripts
        // filter on it); whether its URL answers shows in ERRORS.
        o.state = "Running".into();
        o.docker = "Unknown".into();
        o.error = one_line(&match engine_answers_tcp(&record, timeout).await {
            Ok(()) => format!("Unable to query docker version: {engine_error}"),
            Err(e) => format!("Unable to query docker version: {e}"),
        });
        return o;
    }
    let report = Arc::new(Reporter::quiet(app.debug));
    let state = match app.machine_driver(&record, report).await {
        Ok(mut d) => d.state().await,
        Err(e) => Err(e),
    };
    match state {
        Ok(MachineState::Running) => {
            o.state = "Running".into();
            o.docker = "Unknown".into();
            o.error = one_line(&format!("Unable to query docker version: {engine_error}"));
        }
        Ok(s) => {
            o.state = state_name(s).into();
            o.url.clear();
            o.docker = "Unknown".into();
        }
        Err(e) => {
            o.state = "Error".into();
            o.error = one_line(&format!("{e:#}"));
        }
    }
    o
}

/// Ask the engine for its version over mutual TLS.
pub async fn query_engine(
    app: &App,
    record: &MachineRecord,
    timeout: Duration,
) -> anyhow::Result<String> {
    let url = record.url().ok_or_else(|| anyhow::anyhow!("no address"))?;
    let tls = crate::net::engine_api::ClientTls::load(&app.store.machine_dir(&record.name))?;
    Ok(crate::net::engine_api::server_version(&url, &tls, timeout).await?)
}

/// Whether an engine-only machine's URL accepts a TCP connection (shown in ERRORS and by
/// `status --debug`; its state is Running either way); the error says why not.
pub async fn engine_answers_tcp(record: &MachineRecord, timeout: Duration) -> Result<(), String> {
    let ep = record
        .endpoint
        .as_ref()
        .ok_or_else(|| match &record.engine_url {
            Some(u) => format!("{u:?} is not a tcp://HOST:PORT URL dmw can reach"),
            None => "the machine has no URL".to_string(),
        })?;
    let addr = format!("{}:{}", ep.address, ep.engine_port);
    match tokio::time::timeout(
        timeout,
        tokio::net::TcpStream::connect((ep.address.as_str(), ep.engine_port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot connect to {addr}: {e}")),
        Err(_) => Err(format!(
            "cannot connect to {addr}: no answer within {}s",
            timeout.as_secs()
        )),
    }
}
