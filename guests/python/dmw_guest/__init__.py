"""dmw's guest SDK for Python plugins, built into WebAssembly components by
componentize-py (`dmw plugin build`). It mirrors the Rust SDK (guests/sdk): errors the host
shows as the plugin's words, commands on the target with readable failures, uploads, the
log and the plugin's store. The engine helpers of recipes are in `dmw_guest.engine`.

Every value a plugin passes to the host is checked by the host again: these helpers make
a plugin's failures clear, they are not its sandbox.
"""

from componentize_py_types import Err
from wit_world.imports import log, ssh, store, types

# How many lines of a failed command's output an error keeps.
TAIL_LINES = 20


def fail(message):
    """Raise the host's `failed` error with `message` (shown to the user as is)."""
    raise Err(types.Error_Failed(message))


def invalid(message):
    """Raise the host's `invalid-input` error: a value the user gave cannot work."""
    raise Err(types.Error_InvalidInput(message))


def unsupported(message):
    """Raise the host's `unsupported` error: this plugin cannot do what was asked."""
    raise Err(types.Error_Unsupported(message))


def info(message):
    """Show `message` as progress (and in the provisioning log)."""
    log.write(log.Level.INFO, message)


def warn(message):
    """Show `message` as a warning."""
    log.write(log.Level.WARN, message)


def debug(message):
    """Write `message` to the provisioning log only."""
    log.write(log.Level.DEBUG, message)


# Bytes a shell word may hold unquoted (besides letters and digits), as the Rust SDK's.
_SHELL_SAFE = set("@%_-+=:,./")


def sh_quote(text):
    """`text` as one word for a POSIX shell (left as is when nothing in it needs quoting)."""
    if text and all((c.isascii() and c.isalnum()) or c in _SHELL_SAFE for c in text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


def _tail(text, lines=TAIL_LINES):
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(kept)


def command_error(command, out):
    """The error of `command` that exited non-zero, with the end of its output."""
    stderr = out.stderr.decode("utf-8", "replace")
    text = stderr if stderr.strip() else out.stdout.decode("utf-8", "replace")
    status = "killed by a signal" if out.exit_code < 0 else f"exit status {out.exit_code}"
    return types.Error_Failed(
        f"ssh command error:\ncommand : {command}\nerr     : {status}\noutput  : {_tail(text)}"
    )


def output(command):
    """Run `command` on the target as the SSH user: its exit code, stdout and stderr."""
    return ssh.exec(command)


def output_root(command):
    """Run `command` on the target as root (sudo when the user is not root)."""
    return ssh.exec_root(command)


def run_root(command):
    """Run `command` as root; its stdout as text, or the command's error when it fails."""
    out = output_root(command)
    if out.exit_code != 0:
        raise Err(command_error(command, out))
    return out.stdout.decode("utf-8", "replace")


def status_root(command):
    """Whether `command`, run as root, exits 0."""
    return output_root(command).exit_code == 0


def upload(path, contents, mode=0o644):
    """Write `contents` (text or bytes) to `path` on the target as root, with `mode`."""
    if isinstance(contents, str):
        contents = contents.encode("utf-8")
    ssh.upload(path, contents, mode)


def store_get(key, default=None):
    """The plugin's stored value of `key` for this machine, or `default`."""
    value = store.get(key)
    return default if value is None else value


def store_set(key, value):
    """Keep `value` (made text) under `key` for this machine."""
    store.set(key, str(value))
