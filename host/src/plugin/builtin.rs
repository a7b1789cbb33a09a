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
pub const DRIVERS: &[Builtin] = &[Builtin {
    name: "generic",
    wasm: include_bytes!(concat!(env!("OUT_DIR"), "/dmw_driver_generic.wasm")),
}];

/// Built-in recipes, tried in this order (ties in score break by name).
pub const RECIPES: &[Builtin] = &[Builtin {
    name: "debian",
    wasm: include_bytes!(concat!(env!("OUT_DIR"), "/dmw_recipe_debian.wasm")),
}];

/// The built-in driver called `name`.
pub fn driver(name: &str) -> Option<Builtin> {
    DRIVERS.iter().copied().find(|b| b.name == name)
}

/// The built-in recipe called `name`.
pub fn recipe(name: &str) -> Option<Builtin> {
    RECIPES.iter().copied().find(|b| b.name == name)
}
