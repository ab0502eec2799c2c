//! The crate's layers, checked: a module imports only from a lower layer (or, among the
//! shared low modules and the process shell, from its own), and no imports form a circle.
//! Read from the source as text: every `crate::MODULE` a file names outside its
//! `#[cfg(test)]` module and its comments.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Lowest first. Modules of one layer may use each other only in layers 0 and 4.
fn layer(module: &str) -> Option<u8> {
    Some(match module {
        "api" | "error" | "flags" | "text" | "corpus" | "memory" | "telemetry" | "metrics"
        | "kubeapi" | "leader" | "owner" | "cluster_name" => 0,
        "engine" | "crd" => 1,
        "rules" | "snapshot" | "reports" => 2,
        "controller" | "admission" | "audit" => 3,
        "admin" | "run" | "cli" | "rule_pages" | "scan" | "fleet" => 4,
        _ => return None,
    })
}

/// Adds to `out[top]` every other top module the file (or, for a directory, every file
/// below it) names.
fn imports(path: &Path, top: &str, out: &mut BTreeMap<String, BTreeSet<String>>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            imports(&entry.path(), top, out);
        }
        return;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        for (i, _) in line.match_indices("crate::") {
            let name: String = line[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() && name != top {
                out.entry(top.to_owned()).or_default().insert(name);
            }
        }
    }
}

#[test]
fn no_module_imports_from_a_higher_layer_or_a_sibling_front_end() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("src").flatten() {
        let path = entry.path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        imports(&path, &name, &mut graph);
    }
    let mut wrong = Vec::new();
    for (from, tos) in &graph {
        let Some(a) = layer(from) else {
            wrong.push(format!("{from} has no layer in tests/layers.rs"));
            continue;
        };
        for to in tos {
            let Some(b) = layer(to) else {
                wrong.push(format!("{to} (imported by {from}) has no layer"));
                continue;
            };
            if b > a || (a == b && !matches!(a, 0 | 4)) {
                wrong.push(format!("{from} (layer {a}) imports {to} (layer {b})"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // No circle, even within a layer.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            return Some(path[i..].to_vec());
        }
        if !done.insert(node.to_owned()) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        let cycle = visit(node, &graph, &mut Vec::new(), &mut done);
        assert_eq!(cycle, None, "an import circle");
    }
}
