"""Driver helpers, as in the Rust SDK's `dmw_guest::driver` and `dmw_guest::flags`: create
flags with defaults and environment variables, reading the values the host passes, the
state of an existing machine from SSH reachability, reboot over SSH, and `BaseDriver`,
whose defaults (nothing to make or delete, power actions unsupported) a driver overrides.
"""

from wit_world.exports.driver import DriverInfo, Flag, FlagKind, MachineState
from wit_world.imports import ssh

from componentize_py_types import Err

from . import command_error, invalid, output_root, unsupported

# How long the state check waits for the machine's SSH port.
STATE_TIMEOUT_MS = 15_000


def flag(name, usage, kind=FlagKind.TEXT, default=None, env=None):
    """A create flag: `name` without dashes (it must start with the driver's name and a
    dash), one line of help, its kind, default (text) and environment variable."""
    return Flag(name=name, usage=usage, kind=kind, default=default, env_var=env)


class Flags:
    """The flag values the host passes to `set_config` (every declared flag, defaults
    applied)."""

    def __init__(self, values):
        self._values = {v.name: list(v.values) for v in values}

    def text(self, name):
        """The flag's (last) value, or None."""
        values = self._values.get(name) or []
        return values[-1] if values else None

    def required_text(self, name, message):
        """The flag's value, trimmed; `message` as the error when it is absent or empty."""
        value = (self.text(name) or "").strip()
        if not value:
            invalid(message)
        return value

    def port(self, name, default):
        """The flag as a TCP port (`default` when absent or empty)."""
        value = (self.text(name) or "").strip()
        if not value:
            return default
        if not value.isdigit() or not 1 <= int(value) <= 65535:
            invalid(f"--{name} must be a TCP port between 1 and 65535, got {value!r}")
        return int(value)


def plain(flag_name, value, what):
    """`value` when it has no spaces, control characters or '/', else the error for it."""
    if any(c.isspace() or ord(c) < 32 or c == "/" for c in value):
        invalid(f"--{flag_name} {value!r} is not {what}")
    return value


def state_from_ssh():
    """Running when the machine's SSH port accepts a connection, else Stopped."""
    return MachineState.RUNNING if ssh.reachable(STATE_TIMEOUT_MS) else MachineState.STOPPED


def reboot_over_ssh():
    """Reboot the machine over SSH (`shutdown -r now` as root); a dropped connection is
    the reboot working."""
    command = "shutdown -r now"
    try:
        out = output_root(command)
    except Exception:  # noqa: BLE001 — the connection drops as the machine goes down
        return
    if out.exit_code > 0 and out.exit_code != 255:
        raise Err(command_error(command, out))


class BaseDriver:
    """A driver's defaults: a subclass sets NAME and DESCRIPTION and defines
    create_flags, set_config, address and ssh_endpoint."""

    NAME = "driver"
    DESCRIPTION = ""
    PROVISIONS = True

    def info(self):
        return DriverInfo(name=self.NAME, description=self.DESCRIPTION,
                          provisions=self.PROVISIONS)

    def pre_create_check(self):
        pass

    def create(self):
        pass

    def state(self):
        self.address()
        return state_from_ssh()

    def engine_port(self):
        return 2376

    def start(self):
        unsupported(f"{self.NAME} driver does not support start")

    def stop(self):
        unsupported(f"{self.NAME} driver does not support stop")

    def restart(self):
        unsupported(f"{self.NAME} driver does not support restart")

    def kill(self):
        unsupported(f"{self.NAME} driver does not support kill")

    def remove(self):
        pass
