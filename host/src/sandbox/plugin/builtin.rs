//! The plugins compiled into the dmw binary (built by host/build.rs from guest-drivers/ and recipes/).

/// A plugin embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// Name used on the command line (`--driver generic`).
    pub name: &'static str,
    /// The component's bytes.
    pub wasm: &'static [u8],
}

/// Built-in drivers.
pub const DRIVERS: &[Builtin] = &[
    Builtin {
        name: "generic",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/dmw_driver_generic.wasm")),
    },
    Builtin {
        name: "none",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/dmw_driver_none.wasm")),
    },
    Builtin {
        name: "digitalocean",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/dmw_driver_digitalocean.wasm")),
    },
    Builtin {
        name: "openstack",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/dmw_driver_openstack.wasm")),
    },
    Builtin {
        name: "amazonec2",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/dmw_driver_amazonec2.wasm")),
    },
    Builtin {
        name: "qemu",
        wasm: include_bytes!(concat!(env!("OUT_DIR"), "/dmw_driver_qemu.wasm")),
    },
];

/// A built-in recipe, embedded from OUT_DIR.
macro_rules! recipe {
    ($name:literal) => {
        Builtin {
            name: $name,
            wasm: include_bytes!(concat!(env!("OUT_DIR"), "/dmw_recipe_", $name, ".wasm")),
        }
    };
}

/// Built-in recipes. The one whose `applies` scores highest for a machine's OS is chosen
/// (ties break by name), so the order here does not matter.
pub const RECIPES: &[Builtin] = &[
    recipe!("alpine"),
    recipe!("arch"),
    recipe!("boot2docker"),
    recipe!("coreos"),
    recipe!("debian"),
    recipe!("el6"),
    recipe!("rancheros"),
    recipe!("rhel"),
    recipe!("suse"),
];

/// Whether `bytes` (a plugin file's, as loaded: never read again by path) are byte for
/// byte one of the built-in drivers (its own `.wasm`, used by path as
/// `--driver ./openstack.wasm`): only such a file may carry a built-in driver's name.
pub fn is_driver_bytes(bytes: &[u8]) -> bool {
    DRIVERS.iter().any(|d| d.wasm == bytes)
}

/// The built-in driver called `name`.
pub fn driver(name: &str) -> Option<Builtin> {
    DRIVERS.iter().copied().find(|b| b.name == name)
}

/// The built-in recipe called `name`.
pub fn recipe(name: &str) -> Option<Builtin> {
    RECIPES.iter().copied().find(|b| b.name == name)
}
