"""Docker Engine helpers for recipes, as in the Rust SDK's `dmw_guest::engine`: the
hostname, finding dockerd, the certificates (through the `certs` capability), dmw's systemd
drop-in with mutual TLS, restarting the engine (once more after a pause when it fails, with
the journal's own reason) and waiting until it listens. `SystemdEngine` gives a recipe its
configure, upgrade and restart methods.
"""

import re
import time

from wit_world.imports import certs
from wit_world.exports.recipe import InstallMethod

from . import (
    command_error, debug, fail, info, invalid, output_root, run_root, sh_quote, status_root, store_get,
    store_set, unsupported, upload, warn,
)

# Where the engine's certificates go.
CERT_DIR = "/etc/docker"
# The engine port used when none was stored.
DEFAULT_PORT = 2376
# Store key: the TLS port the engine was configured with (for restart-engine).
PORT_KEY = "engine-port"
# dmw's drop-in for docker.service.
DROPIN_PATH = "/etc/systemd/system/docker.service.d/10-dmw.conf"
# Docker Machine's drop-in, removed (it would win over dmw's on an imported machine).
DOCKER_MACHINE_DROPIN_PATH = "/etc/systemd/system/docker.service.d/10-machine.conf"
UNIT = "docker.service"
SOCKET_UNIT = "docker.socket"
DOCKER_SOCK = "/var/run/docker.sock"
# How many times, one second apart, the engine's port is looked for.
LISTEN_ATTEMPTS = 60
# How long a failed restart waits before its one retry.
RETRY_PAUSE = 5
# Lists the listening TCP sockets: ss, else netstat, else the kernel's tables.
LISTING = ("if command -v ss >/dev/null 2>&1; then ss -tln; "
           "elif command -v netstat >/dev/null 2>&1; then netstat -tln; "
           "else cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; fi")
# Prints dockerd's absolute path (empty: not installed), also CentOS 7's dockerd-current.
FIND_DOCKERD = ("p=$(command -v dockerd 2>/dev/null) || p=; "
                "if [ -z \"$p\" ]; then for c in /usr/bin/dockerd /usr/sbin/dockerd "
                "/usr/local/bin/dockerd /usr/local/sbin/dockerd /usr/bin/dockerd-current; do "
                "if [ -x \"$c\" ]; then p=$c; break; fi; done; fi; printf '%s\\n' \"$p\"")

_LABEL = re.compile(r"^[A-Za-z0-9-]{1,63}$")


def validate_hostname(name):
    """Refuse a name that is not a hostname (letters, digits, '-' and '.')."""
    labels = name.split(".")
    ok = 0 < len(name) <= 253 and all(
        _LABEL.match(l) and not l.startswith("-") and not l.endswith("-") for l in labels)
    if not ok:
        invalid(f"{name!r} is not a valid hostname: use letters, digits, '-' and '.', "
                "at most 63 characters between dots")


def hostname_script(name):
    """A root script setting the hostname now and at boot, mapped to 127.0.1.1."""
    validate_hostname(name)
    q = sh_quote(name)
    escaped = name.replace(".", "\\.")
    return (
        "set -e\n"
        f"hostname {q} 2>/dev/null || hostnamectl set-hostname {q}\n"
        f"printf '%s\\n' {q} > /etc/hostname\n"
        f"if ! grep -Eq '^[^#]*[[:space:]]{escaped}([[:space:]]|$)' /etc/hosts 2>/dev/null; then\n"
        "  if grep -Eq '^127\\.0\\.1\\.1[[:space:]]' /etc/hosts; then\n"
        f"    sed 's/^127\\.0\\.1\\.1[[:space:]].*/127.0.1.1 {name}/' /etc/hosts > /etc/hosts.dmw-new\n"
        "    cat /etc/hosts.dmw-new > /etc/hosts\n"
        "    rm -f /etc/hosts.dmw-new\n"
        "  else\n"
        f"    printf '127.0.1.1 %s\\n' {q} >> /etc/hosts\n"
        "  fi\n"
        "fi\n"
    )


def set_hostname(name):
    """Set the machine's hostname (the recipe's `set-hostname`)."""
    run_root(hostname_script(name))


def find_dockerd():
    """dockerd's absolute path on the target, or None."""
    out = output_root(FIND_DOCKERD)
    path = out.stdout.decode("utf-8", "replace").strip()
    return path if out.exit_code == 0 and path.startswith("/") else None


def keep_installed():
    """Whether dockerd is already installed (then it is kept, and says so)."""
    path = find_dockerd()
    if path:
        info(f"Docker Engine is already installed ({path}); not installing it")
    return path is not None


def require_dockerd():
    """dockerd's path, or an error telling the user to install it."""
    path = find_dockerd()
    if not path:
        fail("Docker Engine (dockerd) is not installed on the machine: it is not in PATH, "
             "/usr/bin, /usr/sbin or /usr/local/bin. Install it, or choose an install method "
             "other than `none`.")
    return path


def installed_dockerd():
    """dockerd's path after an installer ran, or an error saying it left none."""
    path = find_dockerd()
    if not path:
        fail("the installation finished but dockerd is still not found on the machine; "
             "see the provisioning log for the installer's output")
    info(f"Docker Engine installed ({path})")
    return path


def check_daemon_json():
    """Fail when /etc/docker/daemon.json sets `hosts` (dockerd refuses it next to -H)."""
    if status_root("[ -f /etc/docker/daemon.json ] && grep -q '\"hosts\"' /etc/docker/daemon.json"):
        fail("/etc/docker/daemon.json on the machine sets \"hosts\", which conflicts with the "
             "-H flags dmw gives dockerd; remove \"hosts\" from that file and provision again")


def install_certs(directory=CERT_DIR):
    """Issue the server certificate and install it with the CA into `directory`."""
    info("Copying certs to the remote machine...")
    return certs.install_server_cert(directory)


def _one_line(what, value):
    if "\n" in value or "\r" in value or "\0" in value:
        invalid(f"{what} {value!r} must be one line")


def systemd_word(word):
    """One word of an ExecStart= line, quoted for systemd."""
    escaped = word.replace("%", "%%").replace("$", "$$")
    if escaped and not any(c.isspace() or c in "\"'\\;" for c in escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def daemon_args(config, tls, socket):
    """dockerd's arguments: TLS listeners, then the user's engine options."""
    if config.port == 0:
        invalid("the engine port must not be 0")
    args = ["-H", f"tcp://0.0.0.0:{config.port}", "-H", socket, "--tlsverify"]
    for flag, path in (("--tlscacert", tls.ca_path), ("--tlscert", tls.cert_path),
                       ("--tlskey", tls.key_path)):
        _one_line("certificate path", path)
        args += [flag, path]
    if config.storage_driver.strip():
        _one_line("storage driver", config.storage_driver)
        args += ["--storage-driver", config.storage_driver.strip()]
    for label in config.labels:
        _one_line("engine label", label)
        if "=" not in label or label.startswith("="):
            invalid(f"engine label {label!r} must have the form key=value")
        args += ["--label", label]
    for flag, values, what in (("--insecure-registry", config.insecure_registries, "insecure registry"),
                               ("--registry-mirror", config.registry_mirrors, "registry mirror")):
        for value in values:
            _one_line(what, value)
            args += [flag, value]
    for opt in config.extra_flags:
        _one_line("engine option", opt)
        opt = opt.strip().lstrip("-")
        if not opt or opt.startswith("="):
            invalid(f"engine option {opt!r} must have the form flag=value or flag")
        args.append(f"--{opt}")
    return args


def systemd_dropin(dockerd, config, tls, socket):
    """dmw's drop-in making `dockerd` serve mutual TLS on `config.port`."""
    _one_line("dockerd path", dockerd)
    if not dockerd.startswith("/"):
        invalid(f"the dockerd path {dockerd!r} is not absolute")
    words = [systemd_word(dockerd)] + [systemd_word(a) for a in daemon_args(config, tls, socket)]
    text = (f"# Written by dmw: Docker Engine with mutual TLS on port {config.port}.\n"
            "# dmw rewrites this file when it provisions the machine.\n"
            f"[Service]\nExecStart=\nExecStart={' '.join(words)}\n")
    for var in config.env:
        _one_line("engine environment", var)
        name, sep, _ = var.partition("=")
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            invalid(f"engine environment {var!r} must have the form NAME=value on one line")
        value = var.replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
        text += f'Environment="{value}"\n'
    return text


def prepare_socket():
    """`fd://` when the unit is socket-activated (the socket enabled), else the socket path."""
    if status_root(f"systemctl cat {SOCKET_UNIT} >/dev/null 2>&1 && "
                   f"systemctl cat {UNIT} 2>/dev/null | grep -q 'fd://'"):
        run_root(f"systemctl unmask {SOCKET_UNIT} && systemctl enable {SOCKET_UNIT}")
        return "fd://"
    return f"unix://{DOCKER_SOCK}"


# What Swarm mode needs between machines: managers' port, gossip, overlay VXLAN.
SWARM_PORTS = ["2377/tcp", "7946/tcp", "7946/udp", "4789/udp"]
# Prints `firewalld`, `ufw` or nothing: the active host firewall, if any.
DETECT_FIREWALL = ("if command -v firewall-cmd >/dev/null 2>&1 && firewall-cmd --state >/dev/null 2>&1; "
                   "then echo firewalld; elif command -v ufw >/dev/null 2>&1 && "
                   "LC_ALL=C ufw status 2>/dev/null | grep -q '^Status: active'; then echo ufw; fi")


def open_engine_and_swarm_ports(port):
    """Open the engine port and Swarm mode's ports in an active firewalld or ufw."""
    out = output_root(DETECT_FIREWALL)
    firewall = out.stdout.decode("utf-8", "replace").strip() if out.exit_code == 0 else ""
    if firewall not in ("firewalld", "ufw"):
        return
    ports = [f"{port}/tcp"] + SWARM_PORTS
    info(f"Opening {', '.join(ports)} in {firewall} (engine and Swarm mode)...")
    if firewall == "firewalld":
        args = " ".join(f"--add-port={p}" for p in ports)
        command = f"firewall-cmd --permanent {args} && firewall-cmd {args}"
    else:
        command = " && ".join(f"ufw allow {p}" for p in ports)
    out = output_root(command)
    if out.exit_code != 0:
        fail(f"{firewall} is active and opening {', '.join(ports)} failed: "
             f"{command_error(command, out).value}; open them by hand (the engine port is how "
             "dmw reaches the machine)")


def remember_port(port):
    """Keep the port the engine was configured with, for restart-engine."""
    store_set(PORT_KEY, port)


def stored_port(default=DEFAULT_PORT):
    """The port the engine was configured with (`default` when none)."""
    value = store_get(PORT_KEY, str(default))
    try:
        port = int(value)
    except ValueError:
        fail(f"the stored engine port {value!r} is not a number; provision the machine again")
    return port if 0 < port < 65536 else default


def _listening(listing, port):
    suffix, hexport = f":{port}", f":{port:04X}"
    for line in listing.splitlines():
        cols = line.split()
        if len(cols) >= 4 and cols[0].endswith(":"):
            if cols[1].upper().endswith(hexport) and cols[3] == "0A":
                return True
        elif len(cols) >= 4 and cols[3].endswith(suffix):
            return True
    return False


def diagnostics():
    """docker.service's status and journal, for error messages."""
    out = output_root(f"systemctl status {UNIT} --no-pager -l 2>&1 | head -n 12; echo; "
                      f"echo '--- journalctl -u {UNIT} -n 30 ---'; "
                      f"journalctl -u {UNIT} -n 30 --no-pager 2>&1")
    return out.stdout.decode("utf-8", "replace").rstrip()


def cause_line(journal):
    """The journal line that says why dockerd did not start (not gRPC's noise), or None."""
    lines = journal.splitlines()
    for test in (lambda l: any(w in l.lower() for w in (
                     "failed to start daemon", "unable to configure the docker daemon",
                     "error starting daemon", "level=fatal")),
                 lambda l: "level=error" in l.lower() and "grpc" not in l.lower()):
        for line in reversed(lines):
            if test(line):
                text = line.strip()
                if "]: " in text and "[" in text.split("]: ")[0]:
                    text = text.split("]: ", 1)[1]
                return text[:400]
    return None


def _advice(port):
    return ("Fix the cause the log below shows (a conflicting /etc/docker/daemon.json, a bad "
            f"engine option, another program on port {port}...), then provision the machine again.")


def wait_listening(port):
    """Wait until the engine listens on `port`; stop early when docker.service failed."""
    poll = f"{LISTING}; echo \"dmw-unit-state $(systemctl is-active {UNIT} 2>/dev/null)\""
    state = ""
    for attempt in range(LISTEN_ATTEMPTS):
        text = output_root(poll).stdout.decode("utf-8", "replace")
        if _listening(text, port):
            debug(f"the engine listens on port {port}")
            return
        states = [l[len("dmw-unit-state"):].strip() for l in text.splitlines()
                  if l.startswith("dmw-unit-state")]
        state = states[-1] if states else ""
        if state == "failed":
            break
        if attempt + 1 < LISTEN_ATTEMPTS:
            time.sleep(1)
    why = (f"{UNIT} failed to start" if state == "failed" else
           f"nothing listens on port {port} after {LISTEN_ATTEMPTS} s ({UNIT} is {state or 'unknown'})")
    fail(f"Docker Engine did not come up with TLS on port {port}: {why}.\n{_advice(port)}\n{diagnostics()}")


def restart_and_wait(port):
    """Restart docker.service and wait until it listens on `port`; a failed restart is tried
    once more after a pause, saying why it failed."""
    info("Restarting docker...")
    command = f"systemctl daemon-reload && systemctl restart {UNIT}"
    out = output_root(command)
    if out.exit_code != 0:
        journal = diagnostics()
        cause = cause_line(journal) or f"exit status {out.exit_code}"
        warn(f"{UNIT} did not start ({cause}); trying once more in {RETRY_PAUSE} s")
        time.sleep(RETRY_PAUSE)
        output_root(f"systemctl reset-failed {UNIT}")
        out = output_root(command)
        if out.exit_code != 0:
            journal = diagnostics()
            cause = cause_line(journal) or f"exit status {out.exit_code}"
            fail(f"{UNIT} did not start: {cause}\n{_advice(port)}\n{journal}")
    wait_listening(port)


def unchanged(dropin, tls, port):
    """Whether the engine already runs with exactly this drop-in and these certificates."""
    if tls.fresh:
        return False
    current = output_root(f"cat {DROPIN_PATH} 2>/dev/null")
    if current.exit_code != 0 or current.stdout != dropin.encode("utf-8"):
        return False
    if not status_root(f"systemctl is-active --quiet {UNIT}"):
        return False
    remember_port(port)
    info("Docker Engine already runs with this configuration and these certificates; "
         "not restarting it")
    return True


def configure(config):
    """The configure step of a systemd recipe: find dockerd, refuse a conflicting
    daemon.json, install the certificates, write the drop-in, open the engine and Swarm
    ports in an active firewall, enable, restart and wait."""
    dockerd = require_dockerd()
    check_daemon_json()
    tls = install_certs()
    socket = prepare_socket()
    dropin = systemd_dropin(dockerd, config, tls, socket)
    open_engine_and_swarm_ports(config.port)
    if unchanged(dropin, tls, config.port):
        return
    info("Setting Docker configuration on the remote daemon...")
    upload(DROPIN_PATH, dropin, 0o644)
    run_root(f"rm -f {DOCKER_MACHINE_DROPIN_PATH} && systemctl daemon-reload && "
             f"systemctl enable {UNIT}")
    remember_port(config.port)
    restart_and_wait(config.port)


class SystemdEngine:
    """configure-engine, upgrade-engine and restart-engine of a systemd recipe: a recipe
    class inherits them and defines `upgrade_packages(self)`."""

    def configure_engine(self, config):
        configure(config)

    def upgrade_engine(self, config):
        if config.install_method == InstallMethod.NONE:
            unsupported("the engine's install method is `none`: dmw does not manage its "
                        "packages; upgrade Docker Engine on the machine yourself")
        info("Upgrading docker...")
        self.upgrade_packages()
        restart_and_wait(stored_port(config.port))

    def restart_engine(self):
        restart_and_wait(stored_port())

    def upgrade_packages(self):
        """Upgrade the engine's packages (a recipe defines it)."""
        raise NotImplementedError


__all__ = [
    "CERT_DIR", "DROPIN_PATH", "SystemdEngine", "cause_line", "check_daemon_json", "configure",
    "find_dockerd", "hostname_script", "install_certs", "installed_dockerd", "keep_installed",
    "require_dockerd", "restart_and_wait", "set_hostname", "stored_port", "systemd_dropin",
    "wait_listening",
]
