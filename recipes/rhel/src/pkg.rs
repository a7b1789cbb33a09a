//! Installing and upgrading Docker Engine with dnf or yum.

use crate::Target;
use dmw_guest::engine::{self, check_url};
use dmw_guest::{Error, ExecOutput, Result, info, output_root, run_root, sh_quote, status_root};

/// Docker's package repositories, `<base>/<distro>` below it.
pub const DOCKER_REPO: &str = "https://download.docker.com/linux";
/// Where Docker's repository definition goes.
pub const REPO_FILE: &str = "/etc/yum.repos.d/docker-ce.repo";
/// Where Docker's signing key goes (imported into rpm, named by the repository file).
pub const KEY_FILE: &str = "/etc/pki/rpm-gpg/docker-ce.gpg";
/// Docker's packages from its repository.
const REPO_PACKAGES: &str = "docker-ce docker-ce-cli containerd.io";
/// Every engine package an upgrade may touch (Docker's, Fedora's, the OSes' own).
const ENGINE_PACKAGES: [&str; 6] = [
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "moby-engine",
    "docker",
    "docker-engine",
];

/// The package manager: dnf when the machine has it (EL8+, Fedora, AL2023), else yum.
pub fn package_manager() -> Result<&'static str> {
    Ok(if status_root("command -v dnf >/dev/null 2>&1")? {
        "dnf"
    } else {
        "yum"
    })
}

/// Whether dnf/yum failed because the package does not exist in any enabled repository.
fn not_found(out: &ExecOutput) -> bool {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.contains("No match for argument") || text.contains("No package ")
}

/// Whether dnf failed on a conflict with the OS's container tools (podman, runc, buildah).
fn container_tools_conflict(out: &ExecOutput) -> bool {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (text.contains("conflict") || text.contains("problem with installed package"))
        && ["podman", "runc", "buildah"]
            .iter()
            .any(|p| text.contains(p))
}

/// `<pm> install -y <packages>`; `hint` is added to the error when a package is not found.
fn install(pm: &str, packages: &str, hint: &str) -> Result<()> {
    let command = format!("{pm} install -y {packages}");
    let out = output_root(&command)?;
    if out.exit_code == 0 {
        return Ok(());
    }
    let err = dmw_guest::command_error(&command, &out);
    if not_found(&out) {
        return Err(Error::Failed(format!("{}\n{hint}", err.message())));
    }
    if container_tools_conflict(&out) {
        return Err(Error::Failed(format!(
            "{}\nDocker's packages conflict with the OS's container tools (podman, runc, \
             buildah). Remove them on the machine (`{pm} remove -y podman runc buildah`) and \
             provision again.",
            err.message()
        )));
    }
    Err(err)
}

/// The `distro` method: the OS's own engine package, where it has one.
pub fn install_distro(target: &Target) -> Result<()> {
    if let Target::El {
        version, pretty, ..
    } = target
    {
        if *version >= 8 {
            return Err(Error::Unsupported(format!(
                "{pretty} ships Podman, not Docker Engine: its repositories have no dockerd \
                 (the `docker` name there is podman-docker, an emulation). Use \
                 --engine-install-method repo (Docker's repository) or \
                 --engine-install-method script."
            )));
        }
        if *version <= 6 {
            return Err(Error::Unsupported(format!(
                "{pretty} has no systemd; the el6 recipe handles it (--engine-install-method \
                 distro with EPEL's docker-io)"
            )));
        }
    }
    let pm = package_manager()?;
    let (what, command_hint) = match target {
        Target::Fedora(_) => {
            info("Installing Docker Engine from Fedora's packages (moby-engine)...");
            return install(
                pm,
                "moby-engine",
                "Fedora's moby-engine package was not found: check the machine's dnf repositories \
                 (fedora, updates), or use --engine-install-method repo.",
            );
        }
        Target::Amazon(2) => {
            info("Installing Docker Engine from Amazon Linux 2's packages (docker)...");
            if status_root("command -v amazon-linux-extras >/dev/null 2>&1")? {
                return run_root("amazon-linux-extras install -y docker")
                    .map(drop)
                    .map_err(|e| e.context("installing docker from amazon-linux-extras failed"));
            }
            ("docker", "Amazon Linux 2")
        }
        Target::Amazon(_) => {
            info("Installing Docker Engine from Amazon Linux's packages (docker)...");
            ("docker", "Amazon Linux")
        }
        Target::El { version: 7, id, .. } if id == "ol" => {
            info("Installing Docker Engine from Oracle Linux 7's addons (docker-engine)...");
            return install(
                pm,
                "docker-engine",
                "docker-engine was not found: enable the ol7_addons repository on the machine \
                 (`yum-config-manager --enable ol7_addons`) and provision again, or use \
                 --engine-install-method repo.",
            );
        }
        Target::El { .. } => {
            info("Installing Docker Engine from the OS's extras repository (docker)...");
            ("docker", "the extras repository")
        }
    };
    install(
        pm,
        what,
        &format!(
            "The `{what}` package was not found in {command_hint}: enable that repository on the \
             machine (on RHEL 7: `subscription-manager repos --enable rhel-7-server-extras-rpms`), \
             or use --engine-install-method repo."
        ),
    )
}

/// Docker's repository for `target`: `(base URL of the distro directory, release directory)`.
pub fn repo_location(target: &Target, repo_url: &str) -> Result<(String, u32)> {
    let base = match repo_url.trim().trim_end_matches('/') {
        "" => DOCKER_REPO,
        url => url,
    };
    let (dir, version) = match target {
        Target::Fedora(v) => ("fedora", *v),
        // Docker publishes RHEL packages from 8 on; RHEL 7 uses the CentOS 7 ones.
        Target::El { id, version, .. } if id == "rhel" && *version >= 8 => ("rhel", *version),
        Target::El { version, .. } => ("centos", *version),
        Target::Amazon(_) => {
            return Err(Error::Unsupported(
                "Docker publishes no packages for Amazon Linux; use --engine-install-method \
                 distro (Amazon's own docker package)"
                    .into(),
            ));
        }
    };
    let base = format!("{base}/{dir}");
    check_url("the repository URL", &base)?;
    Ok((base, version))
}

/// The contents of /etc/yum.repos.d/docker-ce.repo for `base` (`…/centos`) and `version`.
pub fn repo_file(base: &str, version: u32) -> String {
    format!(
        "# Written by dmw: Docker's package repository.\n\
         [docker-ce-stable]\n\
         name=Docker CE Stable - $basearch\n\
         baseurl={base}/{version}/$basearch/stable\n\
         enabled=1\n\
         gpgcheck=1\n\
         gpgkey=file://{KEY_FILE}\n"
    )
}

/// Make sure curl is there.
fn ensure_curl(pm: &str) -> Result<()> {
    if !status_root("command -v curl >/dev/null 2>&1")? {
        install(
            pm,
            "curl",
            "curl was not found in the machine's repositories.",
        )?;
    }
    Ok(())
}

/// The `repo` method: Docker's repository, its key downloaded and imported first so a
/// wrong mirror or a blocked network fails here with a clear message.
pub fn install_repo(target: &Target, repo_url: &str) -> Result<()> {
    let (base, version) = repo_location(target, repo_url)?;
    info(&format!(
        "Installing Docker Engine from Docker's repository ({base}/{version})..."
    ));
    let pm = package_manager()?;
    ensure_curl(pm)?;
    let key_url = format!("{base}/gpg");
    run_root(&format!(
        "set -e; mkdir -p /etc/pki/rpm-gpg; curl -fsSL {} -o {KEY_FILE}.new; \
         mv {KEY_FILE}.new {KEY_FILE}; rpm --import {KEY_FILE}",
        sh_quote(&key_url)
    ))
    .map_err(|e| {
        e.context(&format!(
            "downloading Docker's signing key from {key_url} failed (check --engine-repo-url \
             and that the machine can reach it)"
        ))
    })?;
    dmw_guest::host::upload(REPO_FILE, repo_file(&base, version).as_bytes(), 0o644)?;
    install(
        pm,
        REPO_PACKAGES,
        &format!(
            "Docker's packages were not found in {base}/{version}: check that Docker publishes \
             this release there (or that your mirror has it), or use --engine-install-method \
             distro or script."
        ),
    )
}

/// The `script` method: download the install script (curl is installed first when
/// missing), then run it with sh (never piped).
pub fn install_script(install_url: &str) -> Result<()> {
    engine::install_script(install_url, "", || ensure_curl(package_manager()?))
}

/// The engine packages rpm says are installed.
pub fn installed_engine_packages() -> Result<Vec<String>> {
    let out = output_root(&format!(
        "rpm -q --qf '%{{NAME}}\\n' {} 2>/dev/null",
        ENGINE_PACKAGES.join(" ")
    ))?;
    let listing = String::from_utf8_lossy(&out.stdout);
    Ok(listing
        .lines()
        .map(str::trim)
        .filter(|l| ENGINE_PACKAGES.contains(l))
        .map(str::to_string)
        .collect())
}

/// Upgrade whichever engine packages are installed (never a full system update).
pub fn upgrade_installed() -> Result<()> {
    let installed = installed_engine_packages()?;
    if installed.is_empty() {
        return Err(Error::Failed(
            "no Docker Engine package (docker-ce, moby-engine, docker) is installed with rpm on \
             the machine, so dmw cannot upgrade it; upgrade the engine the way it was installed"
                .into(),
        ));
    }
    let pm = package_manager()?;
    run_root(&format!("{pm} upgrade -y {}", installed.join(" ")))
        .map(drop)
        .map_err(|e| e.context("upgrading Docker Engine's packages failed"))
}
