//! Builds the built-in guests (guest-drivers/, recipes/) for wasm32-wasip2 and places
//! the components in OUT_DIR, where `plugin::builtin` embeds them.
//!
//! The guests are their own cargo workspace (guests/Cargo.toml) with their own target
//! directory (target/wasm), so this nested build never waits on the outer build's lock.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const GUESTS: &[&str] = &[
    "dmw_driver_generic",
    "dmw_driver_none",
    "dmw_driver_digitalocean",
    "dmw_driver_openstack",
    "dmw_driver_amazonec2",
    "dmw_driver_qemu",
    "dmw_recipe_debian",
    "dmw_recipe_rhel",
    "dmw_recipe_el6",
    "dmw_recipe_suse",
    "dmw_recipe_arch",
    "dmw_recipe_alpine",
    "dmw_recipe_coreos",
    "dmw_recipe_rancheros",
    "dmw_recipe_boot2docker",
];
const TEST_FIXTURES: &[(&str, &str)] = &[
    ("DMW_TEST_CRASHY_DRIVER", "dmw_test_crashy_driver"),
    ("DMW_TEST_RECORDING_DRIVER", "dmw_test_recording_driver"),
    (
        "DMW_TEST_HOSTILE_KEYS_DRIVER",
        "dmw_test_hostile_keys_driver",
    ),
    (
        "DMW_TEST_HOSTILE_FLAGS_DRIVER",
        "dmw_test_hostile_flags_driver",
    ),
    (
        "DMW_TEST_HOSTILE_OUTPUT_DRIVER",
        "dmw_test_hostile_output_driver",
    ),
    (
        "DMW_TEST_HOSTILE_LIMITS_DRIVER",
        "dmw_test_hostile_limits_driver",
    ),
    ("DMW_TEST_KEYS_DRIVER", "dmw_test_keys_driver"),
    ("DMW_TEST_HTTP_PROBE_DRIVER", "dmw_test_http_probe_driver"),
    (
        "DMW_TEST_HOSTILE_PROCESS_DRIVER",
        "dmw_test_hostile_process_driver",
    ),
    (
        "DMW_TEST_HOSTILE_ARGS_DRIVER",
        "dmw_test_hostile_args_driver",
    ),
    ("DMW_TEST_HOSTILE_VM_DRIVER", "dmw_test_hostile_vm_driver"),
    (
        "DMW_TEST_HOSTILE_FILES_DRIVER",
        "dmw_test_hostile_files_driver",
    ),
    (
        "DMW_TEST_HOSTILE_FILE_DEFAULTS_DRIVER",
        "dmw_test_hostile_file_defaults_driver",
    ),
    (
        "DMW_TEST_HOSTILE_OUTPUT_RECIPE",
        "dmw_test_hostile_output_recipe",
    ),
    ("DMW_TEST_TEMPLATE_RECIPE", "dmw_recipe_template"),
    ("DMW_TEST_TEMPLATE_DRIVER", "dmw_driver_template"),
    // The built-in OpenStack driver, also used by path (`--driver ./openstack.wasm`).
    ("DMW_TEST_OPENSTACK_DRIVER", "dmw_driver_openstack"),
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ has a parent")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for dir in [
        "wit",
        "crates/dmw-text",
        "crates/dmw-sigv4",
        "guests/sdk",
        "guests/Cargo.toml",
        "guests/Cargo.lock",
        "guest-drivers",
        "recipes",
        "tests/plugins",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=DMW_GUEST_TARGET_DIR");

    let target_dir = env::var_os("DMW_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/wasm"));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root.join("guests"))
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .env("CARGO_TARGET_DIR", &target_dir);
    // Settings of the outer (native) build must not leak into the guest build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the guests: {e}"));
    if !status.success() {
        panic!(
            "building the built-in guests failed (see above). Is the wasm32-wasip2 target installed? Run `rustup target add wasm32-wasip2` (or scripts/setup)."
        );
    }
    let built = target_dir.join("wasm32-wasip2/release");
    for guest in GUESTS {
        copy(
            &built.join(format!("{guest}.wasm")),
            &out_dir.join(format!("{guest}.wasm")),
        );
    }
    // Test fixtures built with the guests (tests/plugins/), for the end-to-end tests.
    for (var, fixture) in TEST_FIXTURES {
        let path = out_dir.join(format!("{fixture}.wasm"));
        copy(&built.join(format!("{fixture}.wasm")), &path);
        println!("cargo:rustc-env={var}={}", path.display());
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", from.display(), to.display()));
}
