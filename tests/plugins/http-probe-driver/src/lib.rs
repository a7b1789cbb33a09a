//! Test fixture for the `http` capability: a driver that declares `http` with one allowed
//! host, the host of `--probe-api-url`, and in `create` fetches every `--probe-fetch` URL
//! (GET, or POST with `--probe-post`) through `dmw_guest::http`, sending `--probe-token` as
//! a bearer token, with `--probe-timeout` as the request's own time limit. It also declares
//! the Keystone catalog of `--probe-api-url` (region `--probe-region`, interface
//! `--probe-endpoint-type`), so a token answer fetched from that host allows its endpoints. Each answer is logged and stored (`fetched-N` = `STATUS BODY`); the
//! first failure fails `create` with the SDK's error (which names a denied host).
//! Its machine is `127.0.0.1:1` (nothing listens), so a create that fetched everything
//! stops at the SSH wait. It declares two names of its own besides: `localhost:*` (a name
//! that leads to this computer: refused by address) and `probe.invalid` (no port: https
//! only).

dmw_guest::permissions! {
    capability "http";
    http_host "{probe-api-url}";
    http_host "localhost:*";
    http_host "probe.invalid";
    secret "probe-token";
    http_cacert "probe-cacert";
    http_insecure "probe-insecure";
    http_keystone_catalog "probe-api-url" "probe-region" "probe-endpoint-type";
}

use dmw_guest::driver::{Driver, MachineState, SshEndpoint};
use dmw_guest::flags::{Flag, Flags};
use dmw_guest::http::{self, Request};
use dmw_guest::{Result, store};

/// The probe driver.
struct Probe;

impl Driver for Probe {
    const NAME: &'static str = "probe";
    const DESCRIPTION: &'static str = "Test driver: fetches URLs through the http capability";

    fn create_flags() -> Vec<Flag> {
        vec![
            Flag::text(
                "probe-api-url",
                "The one URL whose host the driver may reach",
            ),
            Flag::text_list("probe-fetch", "A URL to fetch in create"),
            Flag::boolean("probe-post", "POST instead of GET"),
            Flag::text("probe-token", "A bearer token (secret)").env("PROBE_TOKEN"),
            Flag::text("probe-cacert", "A CA bundle for TLS"),
            Flag::boolean("probe-insecure", "Do not verify TLS certificates"),
            Flag::text("probe-region", "Keystone catalog region"),
            Flag::text("probe-endpoint-type", "Keystone catalog interface"),
            Flag::integer(
                "probe-timeout",
                "Seconds to wait for an answer (the request's own limit)",
            ),
        ]
    }

    fn set_config(_machine_name: &str, flags: &Flags) -> Result<()> {
        let urls = flags.list("probe-fetch");
        store::set("count", urls.len());
        for (i, url) in urls.iter().enumerate() {
            store::set(&format!("url-{i}"), url);
        }
        store::set("post", flags.bool("probe-post")?);
        if let Some(t) = flags.int::<u64>("probe-timeout")? {
            store::set("timeout", t);
        }
        if let Some(token) = flags.text("probe-token") {
            store::set_secret("token", &token);
        }
        Ok(())
    }

    fn create() -> Result<()> {
        let count: usize = store::get_or("count", 0)?;
        let post: bool = store::get_or("post", false)?;
        let token = store::get_secret("token");
        for i in 0..count {
            let url = store::require(&format!("url-{i}"))?;
            let mut req = if post {
                Request::post(&url).body(b"probe".to_vec())
            } else {
                Request::get(&url)
            };
            if let Some(secs) = store::get_parsed::<u64>("timeout")? {
                req = req.timeout(std::time::Duration::from_secs(secs));
            }
            if let Some(t) = &token {
                req = req.header("Authorization", &format!("Bearer {t}"));
            }
            let resp = http::send(req).map_err(|e| dmw_guest::Error::from(e).context("probe"))?;
            let body = resp.text();
            let body: String = body.chars().take(200).collect();
            dmw_guest::info(&format!(
                "probe: {} answered {}: {body}",
                http::shown_url(&url),
                resp.status
            ));
            store::set(&format!("fetched-{i}"), format!("{} {body}", resp.status));
        }
        Ok(())
    }

    fn state() -> Result<MachineState> {
        Ok(MachineState::Stopped)
    }

    fn address() -> Result<String> {
        Ok("127.0.0.1".into())
    }

    fn ssh_endpoint() -> Result<SshEndpoint> {
        Ok(SshEndpoint {
            address: "127.0.0.1".into(),
            port: 1,
            user: "root".into(),
            key_path: None,
        })
    }
}

dmw_guest::export_driver!(Probe, "../../../wit");
