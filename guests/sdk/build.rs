//! Derives the SDK's binding macros from `wit/`, so the WIT version and the list of host
//! interfaces are spelled once, in `wit/` itself: the package line (`package
//! dmw:plugin@X.Y.Z;`) gives the version, the `driver-plugin` and `recipe-plugin` worlds'
//! `import` lines give the interfaces each kind of plugin may import. Writes
//! `$OUT_DIR/bindings.rs` (the import bindings and the `generate!` macro), included by
//! `src/lib.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The WIT folder, relative to this crate.
const WIT: &str = "../../wit";

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(WIT);
    println!("cargo:rerun-if-changed={}", dir.display());
    let text = wit_text(&dir);
    let version = package_version(&text);
    let driver = world_imports(&text, "driver-plugin");
    let recipe = world_imports(&text, "recipe-plugin");
    let mut all: Vec<String> = Vec::new();
    for name in driver.iter().chain(&recipe) {
        if !all.contains(name) {
            all.push(name.clone());
        }
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(
        out.join("bindings.rs"),
        generated(&version, &all, &driver, &recipe),
    )
    .expect("write bindings.rs");
}

/// Every `.wit` file of the folder, in name order, joined.
fn wit_text(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wit"))
        .collect();
    files.sort();
    let mut text = String::new();
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        text.push_str(&std::fs::read_to_string(&f).expect("read a .wit file"));
        text.push('\n');
    }
    text
}

/// The version of `package dmw:plugin@VERSION;`.
fn package_version(text: &str) -> String {
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("package dmw:plugin@")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .expect("wit/ declares `package dmw:plugin@VERSION;`")
}

/// The interfaces `world NAME { … }` imports, in order.
fn world_imports(text: &str, world: &str) -> Vec<String> {
    let head = format!("world {world} {{");
    let mut lines = text.lines().skip_while(|l| l.trim() != head);
    assert!(lines.next().is_some(), "wit/ has no `{head}`");
    lines
        .take_while(|l| l.trim() != "}")
        .filter_map(|l| l.trim().strip_prefix("import ")?.strip_suffix(';'))
        .map(|s| s.trim().to_string())
        .collect()
}

/// The `with` entries mapping `types` and each of `imports` onto the SDK's modules.
fn with_map(version: &str, imports: &[String]) -> String {
    let mut map = String::new();
    for name in std::iter::once("types").chain(imports.iter().map(String::as_str)) {
        let _ = writeln!(
            map,
            "                \"dmw:plugin/{name}@{version}\": ::dmw_guest::bindings::dmw::plugin::{},",
            name.replace('-', "_")
        );
    }
    map
}

/// The text of `bindings.rs`.
fn generated(version: &str, all: &[String], driver: &[String], recipe: &[String]) -> String {
    let imports: String = all
        .iter()
        .map(|n| format!("                import dmw:plugin/{n}@{version};\n"))
        .collect();
    let driver_with = with_map(version, driver);
    let recipe_with = with_map(version, recipe);
    format!(
        r#"/// Guest bindings for the host interfaces of `dmw:plugin@{version}` (imports only).
///
/// Plugin crates reuse these types with wit-bindgen's `with` option, so a
/// `types::Error` made by a helper here is the very type their exports return.
pub mod bindings {{
    wit_bindgen::generate!({{
        path: "{WIT}",
        inline: "
            package dmw:guest-sdk;

            /// Every interface a dmw plugin may import.
            world imports {{
{imports}            }}
        ",
        world: "dmw:guest-sdk/imports",
        generate_all,
    }});
}}

/// Generate a plugin's export bindings for a world of `dmw:plugin` (`"driver-plugin"` or
/// `"recipe-plugin"`), reusing this crate's import bindings. Call it at the plugin's crate
/// root, then implement `exports::dmw::plugin::<driver|recipe>::Guest` and call `export!`.
/// The WIT folder is `../../wit` relative to the plugin's Cargo.toml unless given:
/// `dmw_guest::generate!("driver-plugin", "path/to/wit")`.
#[macro_export]
macro_rules! generate {{
    ("driver-plugin") => {{
        $crate::generate!("driver-plugin", "../../wit");
    }};
    ("recipe-plugin") => {{
        $crate::generate!("recipe-plugin", "../../wit");
    }};
    ("driver-plugin", $path:literal) => {{
        $crate::__wit_bindgen::generate!({{
            path: $path,
            world: "dmw:plugin/driver-plugin",
            runtime_path: "::dmw_guest::__wit_bindgen::rt",
            with: {{
{driver_with}            }},
        }});
    }};
    ("recipe-plugin", $path:literal) => {{
        $crate::__wit_bindgen::generate!({{
            path: $path,
            world: "dmw:plugin/recipe-plugin",
            runtime_path: "::dmw_guest::__wit_bindgen::rt",
            with: {{
{recipe_with}            }},
        }});
    }};
}}
"#
    )
}
