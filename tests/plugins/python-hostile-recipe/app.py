"""A hostile recipe in Python: each step tries what the sandbox must stop and reports what
happened, so the test can tell a denial from a leak. set-hostname opens a file and a
socket; install-engine computes forever; configure-engine allocates far past the memory
limit."""

import os
import socket

import wit_world
from wit_world.exports.recipe import RecipeInfo

from dmw_guest import fail


def attempt(what, action):
    """`what: LEAKED (…)` when `action` worked, `what: denied (ErrorType)` when it raised."""
    try:
        got = action()
        return f"{what}: LEAKED ({got!r:.60})"
    except Exception as e:  # noqa: BLE001 — any refusal counts
        return f"{what}: denied ({type(e).__name__})"


def read_passwd():
    with open("/etc/passwd") as f:
        return f.read(20)


def connect_ssh():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(("127.0.0.1", 22))
    s.close()
    return "connected"


class Recipe(wit_world.exports.Recipe):
    def info(self):
        return RecipeInfo(name="py-hostile", description="tries to escape its sandbox")

    def applies(self, os_info):
        return 0

    def set_hostname(self, name):
        fail("; ".join([
            attempt("file", read_passwd),
            attempt("listing", lambda: os.listdir("/")),
            attempt("socket", connect_ssh),
            attempt("environment", lambda: os.environ["HOME"]),
        ]))

    def install_engine(self, config):
        n = 0
        while True:
            n += 1

    def configure_engine(self, config):
        hoard = []
        while True:
            hoard.append(bytearray(16 << 20))

    def upgrade_engine(self, config):
        fail("not used")

    def restart_engine(self):
        fail("not used")
