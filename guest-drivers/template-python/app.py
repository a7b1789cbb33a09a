"""A driver template in Python: "existing", an existing Linux machine reached over SSH
(like the built-in `generic` driver), configured with `--existing-*` flags — the Rust
template (guest-drivers/template) in Python. Copy this folder, rename it, change the places
marked CHANGE and build it with `dmw plugin build`; docs/writing-a-driver.md walks through
it. Start, stop and kill are "not supported" by default (`BaseDriver`); an existing machine
can at least reboot.

The rules the host enforces: every flag starts with the driver's name and a dash
(`existing-host`), every environment variable with its upper-case name and an underscore
(`EXISTING_HOST`).
"""

import wit_world
from wit_world.exports.driver import FlagKind, SshDetails

from dmw_guest import info, invalid, store_get, store_set
from dmw_guest.driver import BaseDriver, Flags, flag, plain, reboot_over_ssh

# Flags (and store keys). CHANGE: your flags.
HOST = "existing-host"
USER = "existing-ssh-user"
SSH_PORT = "existing-ssh-port"
KEY = "existing-ssh-key"
ENGINE_PORT = "existing-engine-port"


class Driver(BaseDriver, wit_world.exports.Driver):
    # CHANGE: your driver's name (the flags carry it) and one line about your provider.
    NAME = "existing"
    DESCRIPTION = "An existing machine reached over SSH (Python template driver)"

    def create_flags(self):
        return [
            flag(HOST, "IP address or DNS name of the machine", env="EXISTING_HOST"),
            flag(USER, "SSH user", default="root", env="EXISTING_SSH_USER"),
            flag(SSH_PORT, "SSH port", FlagKind.INTEGER, "22", "EXISTING_SSH_PORT"),
            flag(KEY, "SSH private key file", default="", env="EXISTING_SSH_KEY"),
            flag(ENGINE_PORT, "Docker engine port", FlagKind.INTEGER, "2376",
                 "EXISTING_ENGINE_PORT"),
        ]

    def set_config(self, machine_name, values):
        flags = Flags(values)
        host = flags.required_text(HOST, "existing driver requires the --existing-host option")
        store_set(HOST, plain(HOST, host, "an IP address or DNS name"))
        user = (flags.text(USER) or "").strip() or "root"
        store_set(USER, plain(USER, user, "a user name"))
        store_set(SSH_PORT, flags.port(SSH_PORT, 22))
        store_set(ENGINE_PORT, flags.port(ENGINE_PORT, 2376))
        store_set(KEY, (flags.text(KEY) or "").strip())

    def pre_create_check(self):
        # CHANGE: check what `create` needs (credentials, quotas) before anything is made.
        if store_get(SSH_PORT) == store_get(ENGINE_PORT):
            invalid("--existing-ssh-port and --existing-engine-port must differ")

    def create(self):
        # CHANGE: make the machine at your provider and store what identifies it.
        info(f"Using the existing machine at {self.address()}")

    def address(self):
        host = store_get(HOST)
        if not host:
            invalid("the machine has no --existing-host")
        return host

    def ssh_endpoint(self):
        # Only a key path the user typed: the host refuses any other.
        return SshDetails(address=store_get(HOST, ""), port=int(store_get(SSH_PORT, "22")),
                          user=store_get(USER, "root"), key_path=store_get(KEY) or None)

    def engine_port(self):
        return int(store_get(ENGINE_PORT, "2376"))

    def restart(self):
        reboot_over_ssh()
