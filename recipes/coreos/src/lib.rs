//! The `coreos` recipe: Flatcar Container Linux, CoreOS Container Linux and Fedora CoreOS.
//! These immutable hosts ship Docker Engine with the OS, so the recipe only configures it:
//! a systemd drop-in that runs the OS's own dockerd with mutual TLS, keeping the stock
//! unit's options (containerd socket, SELinux, `$DOCKER_OPTS`, Fedora's `$OPTIONS`...).

dmw_guest::generate!("recipe-plugin");

mod unit;

use dmw_guest::engine::{self, CERT_DIR, DaemonConfig, systemd};
use dmw_guest::{Error, Result, info, run_root, sh_quote};
use exports::dmw::plugin::recipe::{EngineConfig, Guest, InstallMethod, OsInfo, RecipeInfo};

/// Where torcx (Container Linux, Flatcar before 3185) unpacks the engine's binaries.
const TORCX_BIN: &str = "/run/torcx/bin";

/// Prints the stock unit file of docker.service (without drop-ins), after a marker line,
/// and before it the dockerd candidates found on the machine.
const PROBE: &str = "for c in /usr/bin/dockerd /usr/lib/coreos/dockerd /usr/sbin/dockerd \
    /opt/bin/dockerd /usr/local/bin/dockerd /run/torcx/bin/dockerd; do \
    if [ -x \"$c\" ]; then printf 'dmw-dockerd %s %s\\n' \"$c\" \"$(readlink -f \"$c\")\"; fi; done; \
    f=$(systemctl show -p FragmentPath docker.service 2>/dev/null | sed 's/^FragmentPath=//'); \
    echo dmw-unit-file; if [ -n \"$f\" ] && [ -r \"$f\" ]; then cat \"$f\"; fi";

/// The CoreOS-family recipe.
struct CoreOs;

/// Which member of the family `os` is, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    /// Flatcar Container Linux (`ID=flatcar`).
    Flatcar,
    /// CoreOS Container Linux (`ID=coreos`, end of life since 2020).
    ContainerLinux,
    /// Fedora CoreOS (`ID=fedora`, `VARIANT_ID=coreos`).
    FedoraCoreOs,
}

impl Flavor {
    /// The family member `os` describes.
    fn of(os: &OsInfo) -> Option<Flavor> {
        let id = os.id.trim().to_ascii_lowercase();
        let variant = os
            .fields
            .iter()
            .find(|(k, _)| k == "VARIANT_ID")
            .map(|(_, v)| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match id.as_str() {
            "flatcar" => Some(Flavor::Flatcar),
            "coreos" => Some(Flavor::ContainerLinux),
            "fedora" if variant == "coreos" => Some(Flavor::FedoraCoreOs),
            _ if os.id_like.iter().any(|l| l.eq_ignore_ascii_case("flatcar")) => {
                Some(Flavor::Flatcar)
            }
            _ if os.id_like.iter().any(|l| l.eq_ignore_ascii_case("coreos")) => {
                Some(Flavor::ContainerLinux)
            }
            _ => None,
        }
    }

    /// How to get a newer engine on this OS.
    fn upgrade_advice(self) -> &'static str {
        match self {
            Flavor::Flatcar => {
                "Flatcar ships Docker Engine with the OS: update the OS instead (Flatcar updates \
                 itself through update_engine; `update_engine_client -update` forces a check, \
                 then reboot)"
            }
            Flavor::ContainerLinux => {
                "CoreOS Container Linux ships Docker Engine with the OS and is no longer updated: \
                 migrate the machine to Flatcar Container Linux or Fedora CoreOS"
            }
            Flavor::FedoraCoreOs => {
                "Fedora CoreOS ships Docker Engine (moby-engine) with the OS: update the OS \
                 instead (`rpm-ostree upgrade`, or let Zincati do it, then reboot)"
            }
        }
    }
}

/// The family member the engine configuration's OS is, defaulting to Flatcar's wording.
fn flavor(config: &EngineConfig) -> Flavor {
    Flavor::of(&config.os).unwrap_or(Flavor::Flatcar)
}

/// The error for `repo`/`script` install methods on these immutable hosts.
fn immutable(method: &str, flavor: Flavor) -> Error {
    Error::Unsupported(format!(
        "the `{method}` install method is not supported on this OS: its root file system is \
         immutable and Docker Engine ships with it. Use `--engine-install-method auto` (the \
         default), `distro` or `none` to configure the OS's own engine. {}.",
        flavor.upgrade_advice()
    ))
}

/// What the machine has: its dockerd and the stock unit's command line.
struct Found {
    /// Absolute path of the dockerd to run.
    dockerd: String,
    /// Whether that dockerd lives in torcx's run-time directory (needs it in PATH).
    torcx: bool,
    /// The stock ExecStart's options to keep, as systemd command-line words.
    kept: Vec<String>,
}

/// Find dockerd and the stock unit's options on the machine.
fn probe(flavor: Flavor) -> Result<Found> {
    let out = run_root(PROBE)?;
    let (head, unit_text) = out.split_once("dmw-unit-file\n").unwrap_or((&out, ""));
    let stock = unit::exec_start(unit_text);
    let candidates: Vec<(&str, &str)> = head
        .lines()
        .filter_map(|l| l.strip_prefix("dmw-dockerd "))
        .filter_map(|l| l.trim().split_once(' '))
        .collect();
    // Prefer the program the stock unit runs, when it is a plain path we found.
    let from_unit = stock
        .as_ref()
        .and_then(|s| candidates.iter().find(|(p, _)| *p == s.program));
    let chosen = from_unit.or_else(|| candidates.first()).ok_or_else(|| {
        Error::Failed(format!(
            "Docker Engine (dockerd) is not on the machine (looked in /usr/bin, /usr/lib/coreos, \
             /usr/sbin, /opt/bin, /usr/local/bin and {TORCX_BIN}). This OS ships it: {}",
            match flavor {
                Flavor::Flatcar => {
                    "on Flatcar 3745 and later Docker is a system extension; make sure it is not \
                     disabled (remove /etc/extensions/docker-flatcar.raw overrides) and reboot"
                }
                Flavor::ContainerLinux => "check that the torcx docker profile is enabled",
                Flavor::FedoraCoreOs => {
                    "Fedora CoreOS images after moby-engine's removal need it layered: \
                     `rpm-ostree install moby-engine`, then reboot"
                }
            }
        ))
    })?;
    let (path, real) = *chosen;
    Ok(Found {
        dockerd: path.to_string(),
        torcx: path.starts_with(TORCX_BIN) || real.starts_with("/run/torcx/"),
        kept: stock.map(|s| s.kept).unwrap_or_default(),
    })
}

impl Guest for CoreOs {
    fn info() -> RecipeInfo {
        RecipeInfo {
            name: "coreos".into(),
            description: "Flatcar, CoreOS Container Linux and Fedora CoreOS (engine ships with \
                          the OS; systemd)"
                .into(),
        }
    }

    fn applies(os: OsInfo) -> u32 {
        let exact = matches!(
            os.id.trim().to_ascii_lowercase().as_str(),
            "flatcar" | "coreos"
        );
        match Flavor::of(&os) {
            // ID=fedora + VARIANT_ID=coreos is an exact match too (the rhel recipe declines it).
            Some(Flavor::FedoraCoreOs) => 100,
            Some(_) if exact => 100,
            Some(_) => 50,
            None => 0,
        }
    }

    fn set_hostname(name: String) -> Result<()> {
        engine::validate_hostname(&name)?;
        // /etc is writable on all three (only /usr is read-only); hostnamectl writes
        // /etc/hostname and sets the transient name, and nss-myhostname resolves it.
        run_root(&format!("hostnamectl set-hostname {}", sh_quote(&name))).map(drop)
    }

    fn install_engine(config: EngineConfig) -> Result<()> {
        let flavor = flavor(&config);
        match config.install_method {
            InstallMethod::Repo => return Err(immutable("repo", flavor)),
            InstallMethod::Script => return Err(immutable("script", flavor)),
            // `auto` and `distro` both mean the engine that ships with the OS.
            InstallMethod::Auto | InstallMethod::Distro | InstallMethod::None => {}
        }
        let found = probe(flavor)?;
        info(&format!(
            "Docker Engine ships with {} ({}); nothing to install",
            if config.os.pretty_name.is_empty() {
                "the OS"
            } else {
                &config.os.pretty_name
            },
            found.dockerd
        ));
        Ok(())
    }

    fn configure_engine(config: EngineConfig) -> Result<()> {
        let found = probe(flavor(&config))?;
        engine::check_daemon_json()?;
        let tls = engine::install_certs(CERT_DIR)?;
        let unix_socket = systemd::prepare_socket()?;
        let mut env = config.env.clone();
        if found.torcx && !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!(
                "PATH={TORCX_BIN}:/usr/sbin:/usr/bin:/sbin:/bin:/opt/bin"
            ));
        }
        if !found.kept.is_empty() {
            dmw_guest::debug(&format!(
                "keeping the stock unit's dockerd options: {}",
                found.kept.join(" ")
            ));
        }
        let dropin = engine::systemd_dropin(&DaemonConfig {
            // The stock unit's options, in its own systemd syntax ($DOCKER_OPTS...).
            raw_args: &found.kept,
            env: &env,
            ..dmw_guest::engine_options!(config).daemon(&found.dockerd, unix_socket, &tls)
        })?;
        systemd::apply(&dropin, config.port, &tls)
    }

    fn upgrade_engine(config: EngineConfig) -> Result<()> {
        let flavor = flavor(&config);
        Err(Error::Unsupported(format!(
            "dmw cannot upgrade Docker Engine here. {}.",
            flavor.upgrade_advice()
        )))
    }

    fn restart_engine() -> Result<()> {
        systemd::restart_and_wait(engine::stored_port(engine::DEFAULT_PORT)?)
    }
}

export!(CoreOs);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
