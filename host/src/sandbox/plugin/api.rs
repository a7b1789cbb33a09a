//! The plugin API versions this host loads: the WIT package version it implements and
//! the check of a component's exports against it.

use anyhow::{Result, bail};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::Kind;

/// The WIT package version this host implements.
pub const API_VERSION: &str = "0.1.3";

/// Check that a component exports the interface of `kind` at a version this host supports.
pub(super) fn check_api(engine: &Engine, component: &Component, kind: Kind) -> Result<()> {
    let want = match kind {
        Kind::Driver => "dmw:plugin/driver@",
        Kind::Recipe => "dmw:plugin/recipe@",
    };
    let ty = component.component_type();
    let found: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let Some(export) = found.iter().find(|n| n.starts_with(want)) else {
        bail!(
            "it does not export {}{API_VERSION} (it exports: {}); is it a {kind}?",
            want,
            if found.is_empty() {
                "nothing".to_string()
            } else {
                found.join(", ")
            }
        );
    };
    let version = &export[want.len()..];
    if api_compatible(version) {
        Ok(())
    } else {
        bail!(
            "it was built for plugin API {version}; this dmw supports {API_VERSION} (rebuild it against wit/ of this dmw)"
        )
    }
}

/// Whether a plugin built against `version` can be loaded (same major, or same minor for 0.x).
pub fn api_compatible(version: &str) -> bool {
    let key = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        Some((major, minor))
    };
    match (key(version), key(API_VERSION)) {
        (Some((0, a)), Some((0, b))) => a == b,
        (Some((a, _)), Some((b, _))) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions() {
        assert!(api_compatible("0.1.0"));
        assert!(api_compatible("0.1.7"));
        assert!(!api_compatible("0.2.0"));
        assert!(!api_compatible("1.0.0"));
        assert!(!api_compatible("x"));
    }

    #[test]
    fn the_version_is_the_one_wit_declares() {
        let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let declared = std::fs::read_dir(&wit)
            .expect("wit/")
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
            .find_map(|l| {
                l.trim()
                    .strip_prefix("package dmw:plugin@")?
                    .strip_suffix(';')
                    .map(str::to_string)
            })
            .expect("wit/ declares the package");
        assert_eq!(API_VERSION, declared);
    }
}
