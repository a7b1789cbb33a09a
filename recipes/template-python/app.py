"""A recipe template for ops teams, in Python: "acme", a company's golden image of a
RHEL-like OS (`ID=acme`) whose Docker Engine comes from an internal yum mirror — the Rust
template (recipes/template) rewritten. Copy this folder, rename it, change the marked
places and build it with `dmw plugin build`; docs/writing-a-recipe.md walks through it.
Everything generic (finding dockerd, certificates, the systemd drop-in, waiting for the
engine, readable errors) comes from the `dmw_guest` package.
"""

import wit_world
from wit_world.exports.recipe import InstallMethod, OsInfo, RecipeInfo

from dmw_guest import info, run_root, unsupported, upload
from dmw_guest import engine

# CHANGE: the os-release `ID` your machines carry.
OS_ID = "acme"

# CHANGE: where your engine packages live when `--engine-repo-url` is not given.
DEFAULT_MIRROR = "https://mirror.acme.example/docker-ce"

# CHANGE: the packages that make up your engine.
PACKAGES = "docker-ce docker-ce-cli containerd.io"


def repo_file(repo_url):
    """The yum repository file pointing at the mirror (`repo_url` overrides the default)."""
    base = repo_url.strip().rstrip("/") or DEFAULT_MIRROR
    return (f"[acme-docker]\nname=Docker Engine (ACME mirror)\nbaseurl={base}/$basearch\n"
            f"enabled=1\ngpgcheck=1\ngpgkey={base}/gpg\n")


class Recipe(engine.SystemdEngine, wit_world.exports.Recipe):
    """The recipe: configure, upgrade and restart come from `engine.SystemdEngine`."""

    def info(self) -> RecipeInfo:
        return RecipeInfo(name="acme", description="ACME golden image (template recipe, Python)")

    def applies(self, os: OsInfo) -> int:
        # Claim only our own image, above the built-in rhel recipe (50 for ID_LIKE=rhel).
        return 200 if os.id == OS_ID else 0

    def set_hostname(self, name: str) -> None:
        engine.set_hostname(name)

    def install_engine(self, config) -> None:
        if engine.keep_installed():
            return
        if config.install_method in (InstallMethod.AUTO, InstallMethod.REPO, InstallMethod.DISTRO):
            info("Installing Docker Engine from the ACME mirror...")
            upload("/etc/yum.repos.d/acme-docker.repo", repo_file(config.repo_url), 0o644)
            run_root(f"yum install -y {PACKAGES}")
        elif config.install_method == InstallMethod.SCRIPT:
            unsupported("the acme recipe installs from the mirror only; "
                        "use --engine-install-method auto")
        else:
            engine.require_dockerd()
            return
        engine.installed_dockerd()

    def upgrade_packages(self) -> None:
        # CHANGE: how your engine's packages are upgraded.
        run_root(f"yum upgrade -y {PACKAGES}")
