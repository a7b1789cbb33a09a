//! Running a packaged engine under systemd with dmw's drop-in: shared by the suse and arch
//! recipes (arch includes this file with `#[path]`); a candidate for dmw-guest's `engine`.

use dmw_guest::engine::{self, DROPIN_PATH, UnixSocket};
use dmw_guest::{Error, Result, command_error, info, output_root, run_root, status_root, store};

use crate::common::PORT_KEY;

/// The systemd unit of the engine.
pub const UNIT: &str = "docker.service";
/// The socket unit that upstream's (and Arch's) packaging ships next to it.
pub const SOCKET_UNIT: &str = "docker.socket";

/// How dockerd should get its local socket. The package's own unit decides: when it starts
/// dockerd with `-H fd://` and a docker.socket exists (upstream's and Arch's units, where
/// docker.service Requires= the socket), keep socket activation and make sure the socket is
/// enabled; otherwise (SUSE's unit) dockerd binds /var/run/docker.sock itself.
pub fn prepare_socket() -> Result<UnixSocket<'static>> {
    let activated = status_root(&format!(
        "systemctl cat {SOCKET_UNIT} >/dev/null 2>&1 && systemctl cat {UNIT} 2>/dev/null | grep -q 'fd://'"
    ))?;
    if activated {
        run_root(&format!(
            "systemctl unmask {SOCKET_UNIT} && systemctl enable {SOCKET_UNIT}"
        ))?;
        Ok(UnixSocket::Activated)
    } else {
        Ok(UnixSocket::Path("/var/run/docker.sock"))
    }
}

/// Install `dropin` (from [`engine::systemd_dropin`]), enable the engine at boot, remember
/// `port`, restart the engine and wait until it listens there.
pub fn apply(dropin: &str, port: u16) -> Result<()> {
    info("Setting Docker configuration on the remote daemon...");
    dmw_guest::host::upload(DROPIN_PATH, dropin.as_bytes(), 0o644)?;
    run_root(&format!(
        "systemctl daemon-reload && systemctl enable {UNIT}"
    ))?;
    store::set(PORT_KEY, port);
    restart_and_wait(port)
}

/// Restart the engine unit and wait until it listens on `port` with TLS; a failed restart's
/// error carries the unit's status and journal.
pub fn restart_and_wait(port: u16) -> Result<()> {
    info("Restarting docker...");
    let command = format!("systemctl daemon-reload && systemctl restart {UNIT}");
    let out = output_root(&command)?;
    if out.exit_code != 0 {
        let err = command_error(&command, &out);
        return Err(Error::Failed(format!(
            "{}\n{}\nFix the cause shown above (a conflicting /etc/docker/daemon.json, a bad \
             engine option...), then provision the machine again.",
            err.message(),
            engine::unit_diagnostics(UNIT)
        )));
    }
    engine::wait_listening(port, UNIT)
}
