//! The module rules inside crates, read from the sources: no two modules of a crate
//! import each other (directly or round a longer circle), the server's routes never
//! reach a store or the whole application state, and its `http` layer never
//! reaches a route. `layering.rs` keeps the rules between crates.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// `src/http/extract.rs` → `http::extract`; `src/http/mod.rs` → `http`; the crate
/// root (`lib.rs`, `main.rs`) → ``.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without its comments (doc links name modules too).
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim_start().starts_with("//"))
}

/// The modules the file of `module` names through `crate::…` paths (those inside
/// `use crate::{a::x, b::y}` groups too) and, at its top level, `super::…` ones,
/// each resolved to the deepest module that exists.
fn imports(module: &str, text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let parent = module.rsplit_once("::").map_or("", |(parent, _)| parent);
    let mut paths = Vec::new();
    for line in code_lines(text) {
        // Indented `super::` is inside an inline module (tests) and means this file.
        if let Some(path) = line.strip_prefix("use super::") {
            let path = path.trim_end_matches(';');
            paths.push(if parent.is_empty() {
                path.to_owned()
            } else {
                format!("{parent}::{path}")
            });
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                // `crate::{a::b, c}`: each member, one level deep is enough here.
                let end = group.find('}').unwrap_or(group.len());
                for member in group[..end].split(',') {
                    paths.push(member.trim().to_owned());
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(after.len());
                paths.push(after[..end].to_owned());
            }
            rest = after;
        }
    }
    paths
        .iter()
        .filter_map(|path| {
            let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            (1..=segments.len())
                .rev()
                .map(|n| segments[..n].join("::"))
                .find(|candidate| modules.contains(candidate))
        })
        .collect()
}

struct Crate {
    name: String,
    /// Module → its source text.
    files: BTreeMap<String, String>,
}

fn crates() -> Vec<Crate> {
    let root = workspace_root();
    let mut found = Vec::new();
    for dir in ["crates", "examples"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let src = entry.path().join("src");
            if !src.is_dir() {
                continue;
            }
            let files = sources(&src)
                .into_iter()
                .filter_map(|file| {
                    let text = std::fs::read_to_string(&file).ok()?;
                    Some((module_of(&src, &file), text))
                })
                .collect();
            found.push(Crate {
                name: entry.file_name().to_string_lossy().into_owned(),
                files,
            });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// The circles among `edges`: each a strongly connected set of two or more modules.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Kosaraju: finish order on the graph, then components on the reversed graph.
    let nodes: Vec<&String> = edges.keys().collect();
    let mut visited = BTreeSet::new();
    let mut order = Vec::new();
    for start in &nodes {
        if visited.contains(*start) {
            continue;
        }
        let mut stack = vec![((*start).clone(), false)];
        while let Some((node, done)) = stack.pop() {
            if done {
                order.push(node);
                continue;
            }
            if !visited.insert(node.clone()) {
                continue;
            }
            stack.push((node.clone(), true));
            for next in edges.get(&node).into_iter().flatten() {
                if !visited.contains(next) {
                    stack.push((next.clone(), false));
                }
            }
        }
    }
    let mut reversed: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for (from, tos) in edges {
        for to in tos {
            reversed.entry(to).or_default().push(from);
        }
    }
    let mut assigned = BTreeSet::new();
    let mut found = Vec::new();
    for node in order.iter().rev() {
        if assigned.contains(node) {
            continue;
        }
        let mut component = Vec::new();
        let mut stack = vec![node];
        while let Some(current) = stack.pop() {
            if !assigned.insert(current.clone()) {
                continue;
            }
            component.push(current.clone());
            for previous in reversed.get(current).into_iter().flatten() {
                if !assigned.contains(*previous) {
                    stack.push(previous);
                }
            }
        }
        if component.len() > 1 {
            component.sort();
            found.push(component);
        }
    }
    found
}

#[test]
fn no_two_modules_of_a_crate_import_each_other() {
    let mut problems = Vec::new();
    for krate in crates() {
        let modules: BTreeSet<String> = krate.files.keys().cloned().collect();
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (module, text) in &krate.files {
            let targets = imports(module, text, &modules)
                .into_iter()
                // A module naming its own items, or a parent its children through
                // `mod` declarations, is no import.
                .filter(|target| target != module && !target.is_empty())
                .collect();
            edges.insert(module.clone(), targets);
        }
        for circle in circles(&edges) {
            problems.push(format!("{}: {}", krate.name, circle.join(" ↔ ")));
        }
    }
    assert!(
        problems.is_empty(),
        "modules that import each other (split what both need into a module both \
         import, or move it to the side that owns it):\n{}",
        problems.join("\n")
    );
    // The reader must see modules at all, or the test proves nothing.
    assert!(
        crates()
            .iter()
            .any(|c| c.files.contains_key("services::grants"))
    );
}

/// Handlers parse, call one service and render: a store, a cache or the whole
/// application state in a route is a decision made outside the services.
#[test]
fn server_routes_reach_services_only_and_http_reaches_no_route() {
    let server = crates()
        .into_iter()
        .find(|c| c.name == "tessera-server")
        .expect("the tessera-server crate");
    let mut problems = Vec::new();
    for (module, text) in &server.files {
        let code: String = code_lines(text).collect::<Vec<_>>().join("\n");
        if module.starts_with("routes") {
            for forbidden in ["tessera_store", "AppState", "crate::stores", "crate::state"] {
                if code.contains(forbidden) {
                    problems.push(format!("{module} names {forbidden}"));
                }
            }
        }
        if module.starts_with("http") && code.contains("crate::routes") {
            problems.push(format!("{module} names crate::routes"));
        }
        if module.starts_with("services") && code.contains("crate::routes") {
            problems.push(format!("{module} names crate::routes"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(server.files.keys().any(|m| m.starts_with("routes::")));
}
