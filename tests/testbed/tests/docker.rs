//! Docker Engine inside a host: installed with apt-get, or from the docker variant.

use dmw_testbed::{Host, Options, image_tarball, require_root_or_skip};

/// Imports the busybox tarball into the host's Docker and runs `echo ok` in it.
fn import_and_run(h: &Host) {
    let tarball = image_tarball().expect("image tarball");
    h.push(&tarball, "/tmp/busybox.tar")
        .expect("copy the image");
    h.ssh_ok("root", "docker import /tmp/busybox.tar dmw-busybox")
        .expect("docker import");
    let out = h
        .ssh_ok("root", "docker run --rm dmw-busybox echo ok")
        .expect("docker run");
    assert_eq!(out.trim(), "ok");
}

#[test]
fn apt_get_installs_docker_and_it_runs_an_image() {
    if !require_root_or_skip("apt_get_installs_docker_and_it_runs_an_image") {
        return;
    }
    let h = Host::boot(&Options::default()).expect("boot");
    h.ssh_ok(
        "dmw",
        "sudo apt-get -q update && sudo DEBIAN_FRONTEND=noninteractive apt-get -q install -y docker.io",
    )
    .expect("apt-get install docker.io");
    import_and_run(&h);
}

#[test]
fn docker_variant_runs_an_image() {
    if !require_root_or_skip("docker_variant_runs_an_image") {
        return;
    }
    let opts = Options {
        docker: true,
        ..Options::default()
    };
    let h = Host::boot(&opts).expect("boot");
    h.ssh_ok("root", "systemctl is-active docker.service")
        .expect("docker is running");
    import_and_run(&h);
}
