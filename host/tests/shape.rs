//! The shape of the host's code, read from its sources (docs/architecture.md, "Host"):
//!
//! - `host/src` holds wings only (folders named for what they are for), and no import
//!   cycle runs among the modules of the wings (a module's files naming `crate::WING::OTHER`
//!   — or, from a wing's own modules, `super::OTHER` — make an arrow to `WING::OTHER`; the
//!   face `cli`, `vm` and `app` are one node each; test modules and comments left out), so
//!   each module can be read, tested and replaced from the bottom up;
//! - the capabilities are written against `CapabilityView`: no capability module names the
//!   runtime's state type or reaches into `plugin`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read source dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The code of a file without its unit-test module and without comments.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read source");
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The wings whose modules are nodes of their own (`net::ssh`, `usecase::power`); every
/// other top-level module is one node.
const WINGS: &[&str] = &["net", "sandbox", "state", "text", "usecase"];

/// The identifier at the start of `s`.
fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The node a path names, from its segments after `crate::`: `net::ssh::Foo` → `net::ssh`,
/// `cli::render::x` → `cli`.
fn node_of(path: &str) -> String {
    let first = ident(path);
    if WINGS.contains(&first.as_str())
        && let Some(rest) = path[first.len()..].strip_prefix("::")
    {
        let second = ident(rest);
        if !second.is_empty() {
            return format!("{first}::{second}");
        }
    }
    first
}

/// The nodes `code` names through `crate::PATH` or `crate::{PATH, …}`, and, when `wing` is
/// given (a file of one of its modules' roots), through `super::NAME` as `wing::NAME`.
fn named_modules(code: &str, wing: Option<&str>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(list) = rest.strip_prefix('{') {
            let list = &list[..list.find('}').unwrap_or(list.len())];
            // Only the start of each entry (`a::b`, `c`) is a path from the crate.
            let mut depth = 0usize;
            let mut start = true;
            for (j, ch) in list.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth = depth.saturating_sub(1),
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        found.insert(node_of(&list[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(node_of(rest));
        }
    }
    if let Some(wing) = wing {
        for (i, _) in code.match_indices("super::") {
            let before = &code[..i];
            if before.ends_with("super::") || before.ends_with("::") {
                continue;
            }
            let name = ident(&code[i + "super::".len()..]);
            if !name.is_empty() && name != "super" {
                found.insert(format!("{wing}::{name}"));
            }
        }
    }
    found.retain(|m| !m.is_empty() && m != "crate");
    found
}

/// The module graph: node → the nodes it names → the files that do.
fn graph(src: &Path) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut g: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for path in sources(src) {
        let rel = path.strip_prefix(src).expect("under src");
        let parts: Vec<String> = rel
            .components()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .collect();
        let first = parts[0].clone();
        if first == "lib" || first == "main" {
            continue;
        }
        let wing = WINGS.contains(&first.as_str());
        let node = match parts.get(1) {
            Some(second) if wing && second != "mod" => format!("{first}::{second}"),
            _ => first.clone(),
        };
        // `super::` from a module's root file (`wing/m.rs`, `wing/m/mod.rs`) names a
        // sibling in the wing.
        let root_file = wing
            && (parts.len() == 2 || (parts.len() == 3 && parts[2] == "mod"))
            && parts[1] != "mod";
        let names = named_modules(&code(&path), root_file.then_some(first.as_str()));
        for m in names {
            if m != node && m != first {
                g.entry(node.clone())
                    .or_default()
                    .entry(m)
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
    }
    g
}

/// A cycle through `start`, if one exists (depth-first search).
fn cycle_from(
    g: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    start: &str,
) -> Option<Vec<String>> {
    fn walk(
        g: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
        node: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in g.get(node).map(|m| m.keys()).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(g, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    walk(g, start, start, &mut path, &mut seen).then_some(path)
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_host_is_wings_only() {
    let mut loose = Vec::new();
    for entry in std::fs::read_dir(src()).expect("read src").flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let allowed =
            entry.path().is_dir() || ["lib.rs", "main.rs", "app.rs"].contains(&name.as_str());
        if !allowed {
            loose.push(name);
        }
    }
    assert!(
        loose.is_empty(),
        "host/src holds wings (folders) only; put {loose:?} in the wing it belongs to"
    );
}

#[test]
fn the_host_modules_import_each_other_without_a_cycle() {
    let g = graph(&src());
    assert!(
        g.contains_key("cli") && g["cli"].contains_key("app"),
        "the graph is read: {g:?}"
    );
    for start in g.keys() {
        if let Some(cycle) = cycle_from(&g, start) {
            let mut arrows = Vec::new();
            for (i, from) in cycle.iter().enumerate() {
                let to = &cycle[(i + 1) % cycle.len()];
                let files: Vec<&String> = g[from][to].iter().collect();
                arrows.push(format!("{from} -> {to} (in {files:?})"));
            }
            panic!(
                "an import cycle among host modules: {}. Move what the lower module needs into it (or into a module below both) instead of naming the higher one",
                arrows.join(", ")
            );
        }
    }
}

#[test]
fn capabilities_never_name_the_runtime() {
    let caps = src().join("sandbox").join("capabilities");
    let found = sources(&caps);
    assert!(found.len() > 5, "the capabilities are read: {found:?}");
    for path in found {
        let code = code(&path);
        for word in ["HostState", "sandbox::plugin", "super::super::plugin"] {
            assert!(
                !code.contains(word),
                "{} names {word}: a capability is written against CapabilityView and the contract, never the runtime",
                path.display()
            );
        }
    }
}

#[test]
fn the_reader_sees_crate_paths_and_lists() {
    let code = "use crate::{state::store::MachineDir, app, net::http::{Sender, HttpSettings}};\nlet x = crate::vm::qemu::QEMU;\nlet y = crate::cli::render::x;\nuse super::wait;\nuse super::super::z;";
    let found: Vec<String> = named_modules(code, Some("usecase")).into_iter().collect();
    assert_eq!(
        found,
        vec![
            "app",
            "cli",
            "net::http",
            "state::store",
            "usecase::wait",
            "vm"
        ]
    );
    let found: Vec<String> = named_modules(code, None).into_iter().collect();
    assert_eq!(found, vec!["app", "cli", "net::http", "state::store", "vm"]);
    let mut g: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    g.entry("a".into())
        .or_default()
        .entry("b".into())
        .or_default();
    g.entry("b".into())
        .or_default()
        .entry("c".into())
        .or_default();
    assert_eq!(cycle_from(&g, "a"), None);
    g.entry("c".into())
        .or_default()
        .entry("a".into())
        .or_default();
    assert_eq!(
        cycle_from(&g, "a"),
        Some(vec!["a".to_string(), "b".to_string(), "c".to_string()])
    );
}
