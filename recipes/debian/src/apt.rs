//! Installing and upgrading Docker Engine with apt.

use dmw_guest::engine::{self, check_url};
use dmw_guest::{
    Error, ExecOutput, LOCK_ATTEMPTS, LOCK_INTERVAL, Result, info, output_root, run_root,
    run_root_retrying, sh_quote, status_root,
};

/// Docker's repository, `<base>/<distro>` (`gpg`, `dists/` below it).
const DOCKER_REPO: &str = "https://download.docker.com/linux";
/// Where the repository's signing key goes.
const KEYRING: &str = "/etc/apt/keyrings/docker.asc";
/// Docker's packages from its repository.
const REPO_PACKAGES: &str = "docker-ce docker-ce-cli containerd.io";
/// Every engine package an upgrade may touch.
const ENGINE_PACKAGES: [&str; 4] = ["docker.io", "docker-ce", "docker-ce-cli", "containerd.io"];
/// apt-get, non-interactive, keeping changed config files, waiting for dpkg's lock.
const APT_GET: &str = "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=60 \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold";

/// Whether apt failed because another apt or dpkg (e.g. unattended-upgrades) holds a lock.
pub fn lock_held(out: &ExecOutput) -> bool {
    let err = String::from_utf8_lossy(&out.stderr);
    [
        "Could not get lock",
        "Unable to lock",
        "Unable to acquire the dpkg frontend lock",
        "is another process using it",
    ]
    .iter()
    .any(|needle| err.contains(needle))
}

/// Run `apt-get <args>` as root, retrying while the package database is locked.
fn apt_get(args: &str) -> Result<String> {
    run_root_retrying(
        &format!("{APT_GET} {args}"),
        LOCK_ATTEMPTS,
        LOCK_INTERVAL,
        lock_held,
    )
}

/// `apt-get update`, with a hint when it fails.
fn update() -> Result<()> {
    apt_get("update").map(drop).map_err(|e| {
        e.context(
            "refreshing the package lists failed (check the machine's network and its apt sources)",
        )
    })
}

/// Install `packages` (space-separated) without recommends.
fn install(packages: &str) -> Result<()> {
    apt_get(&format!("install --no-install-recommends {packages}"))
        .map(drop)
        .map_err(|e| {
            if e.message().contains("Unable to locate package") {
                Error::Failed(format!(
                    "{}\nA package ({packages}) is not in the machine's apt sources: check \
                     /etc/apt/sources.list (Debian's docker.io is in `main` from Debian 11, \
                     Ubuntu's in `universe`), or use another --engine-install-method.",
                    e.message()
                ))
            } else {
                e
            }
        })
}

/// The packages that make Debian's engine start and pull images: docker.io (it Depends on
/// containerd, runc, iptables and tini), CA certificates for registries, and AppArmor's
/// parser when the kernel enforces AppArmor outside a container.
pub const DISTRO_PACKAGES_SCRIPT: &str = "p='docker.io ca-certificates'; \
    if [ -z \"${container:-}\" ] && grep -qs Y /sys/module/apparmor/parameters/enabled; then \
    p=\"$p apparmor\"; fi; printf '%s\\n' \"$p\"";

/// The packages the `distro` method always installs.
pub const DISTRO_PACKAGES_BASE: &str = "docker.io ca-certificates";

/// The `distro` method: Debian's or Ubuntu's own docker.io.
pub fn install_distro() -> Result<()> {
    info("Installing Docker Engine from the distribution's packages (docker.io)...");
    let probed = run_root(DISTRO_PACKAGES_SCRIPT)?;
    // The probe only adds to the base list; whatever it prints, never install nothing.
    let packages = match probed.trim() {
        "" => DISTRO_PACKAGES_BASE.to_string(),
        p => p.to_string(),
    };
    update()?;
    install(&packages)
}

/// Make sure curl (with CA certificates) is there.
fn ensure_curl() -> Result<()> {
    if !status_root("command -v curl >/dev/null 2>&1")? {
        update()?;
        install("curl ca-certificates")?;
    }
    Ok(())
}

/// Which of Docker's repositories (`debian`, `ubuntu`, `raspbian`) and suite fit this OS.
pub fn repo_target(fields: &[(String, String)]) -> Result<(String, String)> {
    let get = |k: &str| {
        fields
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let id = get("ID").unwrap_or_default().to_ascii_lowercase();
    let like = get("ID_LIKE").unwrap_or_default().to_ascii_lowercase();
    let like = |x: &str| like.split_whitespace().any(|l| l == x);
    let (distro, codename) = match id.as_str() {
        "debian" | "raspbian" => (id.clone(), get("VERSION_CODENAME")),
        "ubuntu" => (
            "ubuntu".to_string(),
            get("VERSION_CODENAME").or_else(|| get("UBUNTU_CODENAME")),
        ),
        _ if like("ubuntu") => ("ubuntu".to_string(), get("UBUNTU_CODENAME")),
        _ if like("debian") => (
            "debian".to_string(),
            get("DEBIAN_CODENAME").or_else(|| get("VERSION_CODENAME")),
        ),
        _ => {
            return Err(Error::Unsupported(format!(
                "Docker's apt repository has no packages for {id:?}"
            )));
        }
    };
    let codename = codename.ok_or_else(|| {
        Error::Failed(format!(
            "/etc/os-release names no release codename for {distro}, so Docker's \
             repository suite is unknown; use the `distro` or `script` install method"
        ))
    })?;
    if !codename
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(Error::Failed(format!(
            "unexpected release codename {codename:?} in /etc/os-release"
        )));
    }
    Ok((distro, codename))
}

/// The repository for `distro`: `<repo_url>/<distro>`, with Docker's own base
/// (`https://download.docker.com/linux`) when `repo_url` is empty.
pub fn repo_base(repo_url: &str, distro: &str) -> String {
    match repo_url.trim().trim_end_matches('/') {
        "" => format!("{DOCKER_REPO}/{distro}"),
        url => format!("{url}/{distro}"),
    }
}

/// The `repo` method: Docker's apt repository, signed by its key. `fields` are the
/// machine's os-release fields (as the host read them), `repo_url` the repository base.
pub fn install_repo(fields: &[(String, String)], repo_url: &str) -> Result<()> {
    let (distro, codename) = repo_target(fields)?;
    let base = repo_base(repo_url, &distro);
    check_url("the repository URL", &base)?;
    info(&format!(
        "Installing Docker Engine from Docker's repository ({base} {codename})..."
    ));
    ensure_curl()?;
    let key_url = sh_quote(&format!("{base}/gpg"));
    let line = sh_quote(&format!("{base} {codename} stable"));
    run_root(&format!(
        "set -e; install -m 0755 -d /etc/apt/keyrings; \
         curl -fsSL {key_url} -o {KEYRING}.new; chmod a+r {KEYRING}.new; mv {KEYRING}.new {KEYRING}; \
         printf 'deb [arch=%s signed-by={KEYRING}] %s\\n' \"$(dpkg --print-architecture)\" {line} \
         > /etc/apt/sources.list.d/docker.list"
    ))
    .map_err(|e| {
        e.context(&format!(
            "adding Docker's apt repository failed (check --engine-repo-url ({base}) and that \
             the machine can reach it)"
        ))
    })?;
    update()?;
    install(REPO_PACKAGES)
}

/// The `script` method: download the install script (curl is installed first when
/// missing), then run it with sh.
pub fn install_script(install_url: &str) -> Result<()> {
    engine::install_script(install_url, "", ensure_curl)
}

/// Upgrade whichever engine packages are installed (never a full system upgrade).
pub fn upgrade_installed() -> Result<()> {
    let query = format!(
        "dpkg-query -W -f='${{Package}} ${{db:Status-Status}}\\n' {} 2>/dev/null",
        ENGINE_PACKAGES.join(" ")
    );
    let out = output_root(&query)?;
    let listing = String::from_utf8_lossy(&out.stdout);
    let installed: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, st)| st.trim() == "installed")
        .map(|(p, _)| p)
        .collect();
    if installed.is_empty() {
        return Err(Error::Failed(
            "no Docker Engine package (docker.io, docker-ce) is installed with apt on the machine, \
             so dmw cannot upgrade it; upgrade the engine the way it was installed"
                .into(),
        ));
    }
    update()?;
    apt_get(&format!("install --only-upgrade {}", installed.join(" "))).map(drop)
}
