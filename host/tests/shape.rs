//! The shape of the host's code, read from its sources (docs/architecture.md, "Host"):
//!
//! - no import cycle among the top-level modules of `host/src` (a module's files naming
//!   `crate::OTHER` make an arrow to OTHER; test modules and comments left out), so each
//!   wing can be read, tested and replaced from the bottom up;
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

/// The top-level modules `code` names through `crate::NAME` or `crate::{NAME, …}`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(list) = rest.strip_prefix('{') {
            let list = &list[..list.find('}').unwrap_or(list.len())];
            // Only the first segment of each entry (`a::b`, `c`) is a module of the crate.
            let mut depth = 0usize;
            let mut start = true;
            for (j, ch) in list.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth = depth.saturating_sub(1),
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        found.insert(ident(&list[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

/// The module graph: top-level module → the modules it names → the files that do.
fn graph(src: &Path) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut g: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for path in sources(src) {
        let rel = path.strip_prefix(src).expect("under src");
        let first = rel
            .components()
            .next()
            .expect("a component")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if first == "lib" || first == "main" {
            continue;
        }
        for m in named_modules(&code(&path)) {
            if m != first {
                g.entry(first.clone())
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
    let caps = src().join("capabilities");
    for path in sources(&caps) {
        let code = code(&path);
        for word in ["HostState", "crate::plugin"] {
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
    let code = "use crate::{store::MachineDir, tls, net::{Sender, HttpSettings}};\nlet x = crate::vm::qemu::QEMU;";
    let found: Vec<String> = named_modules(code).into_iter().collect();
    assert_eq!(found, vec!["net", "store", "tls", "vm"]);
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
