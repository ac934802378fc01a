//! The host's rooms import one way down: no two modules use each other, directly or
//! around a loop. A circle is how a codebase stops being readable from the top (to know
//! one room you must know the other first), so one is a test failure naming the loop.
//!
//! Modules are compared at two grains: the top-level rooms (`engine`, `venue`, `config`...)
//! and their direct children (`venue::live`, `venue::paper`...). A module and its own
//! parent or child may use each other (a child implements its parent's trait); code under
//! `#[cfg(test)]` is left out, since a test may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every module of the library: its path (`["venue", "live"]`) and its source.
fn modules(src: &Path) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path: PathBuf = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let Ok(rel) = path.strip_prefix(src) else { continue };
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
            if parts == ["main"] {
                continue; // the binary, above everything
            }
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            out.push((parts, without_tests(&text)));
        }
    }
    out
}

/// The source without its `#[cfg(test)]` items and without line comments.
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            // Skip the item that follows: up to its closing brace at the same indent, or
            // a one-line item.
            let indent = line.len() - line.trim_start().len();
            for next in lines.by_ref() {
                let t = next.trim_start();
                let at = next.len() - t.len();
                if t.ends_with(';') && at == indent && !t.starts_with("#[") {
                    break;
                }
                if t.starts_with('}') && at == indent {
                    break;
                }
            }
            continue;
        }
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The module paths a source names: `crate::a::b::{c, d}` and `super::x`, resolved to the
/// longest known module.
fn uses(module: &[String], text: &str, known: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    let bytes = text.as_bytes();
    for (root, base) in [("crate::", Vec::new()), ("super::", module[..module.len().saturating_sub(1)].to_vec())] {
        let mut from = 0;
        while let Some(at) = text[from..].find(root) {
            let start = from + at;
            from = start + root.len();
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_' || bytes[start - 1] == b':') {
                continue;
            }
            let mut path = base.clone();
            let mut rest = &text[from..];
            let mut paths = Vec::new();
            loop {
                let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
                let ident = &rest[..end];
                if ident.is_empty() {
                    if rest.starts_with('{') {
                        // One level of braces: each entry's first segment.
                        let close = rest.find('}').unwrap_or(rest.len());
                        for entry in rest[1..close].split(',') {
                            let first = entry.trim().split("::").next().unwrap_or_default().trim();
                            let mut p = path.clone();
                            p.push(first.to_string());
                            paths.push(p);
                        }
                    }
                    break;
                }
                path.push(ident.to_string());
                rest = &rest[end..];
                match rest.strip_prefix("::") {
                    Some(r) => rest = r,
                    None => break,
                }
            }
            paths.push(path);
            for mut p in paths {
                while !p.is_empty() && !known.contains(&p) {
                    p.pop();
                }
                if !p.is_empty() {
                    found.insert(p);
                }
            }
        }
    }
    found
}

/// The loops of a graph (its strongly connected parts of more than one node).
fn loops(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    let nodes: Vec<&Vec<String>> = graph.keys().collect();
    let reach = |from: &Vec<String>| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for m in graph.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&Vec<String>, BTreeSet<Vec<String>>> = nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut out: Vec<Vec<Vec<String>>> = Vec::new();
    for n in &nodes {
        if out.iter().any(|l| l.contains(n)) {
            continue;
        }
        let part: Vec<Vec<String>> = nodes.iter().filter(|m| *m != n && reaches[*n].contains(**m) && reaches[**m].contains(*n)).map(|m| (*m).clone()).collect();
        if !part.is_empty() {
            let mut l = vec![(*n).clone()];
            l.extend(part);
            out.push(l);
        }
    }
    out
}

fn related(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn graph_at(grain: usize, mods: &[(Vec<String>, String)], known: &BTreeSet<Vec<String>>) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, text) in mods {
        if module.is_empty() {
            continue;
        }
        let from: Vec<String> = module.iter().take(grain).cloned().collect();
        for used in uses(module, text, known) {
            let to: Vec<String> = used.into_iter().take(grain).collect();
            if !related(&from, &to) {
                graph.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    graph
}

#[test]
fn the_host_has_no_import_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    assert!(mods.len() > 40, "found only {} modules under {}", mods.len(), src.display());
    let known: BTreeSet<Vec<String>> = mods.iter().map(|(m, _)| m.clone()).collect();
    let mut found = Vec::new();
    for grain in [1, 2] {
        for l in loops(&graph_at(grain, &mods, &known)) {
            found.push(l.iter().map(|m| m.join("::")).collect::<Vec<_>>().join(" <-> "));
        }
    }
    assert!(found.is_empty(), "modules that import each other (directly or around a loop):\n  {}", found.join("\n  "));
}

/// The check itself catches a circle, at both grains, and ignores parent and child.
#[test]
fn a_circle_is_found() {
    let m = |p: &str| p.split("::").map(str::to_string).collect::<Vec<_>>();
    let mods = vec![
        (m("engine"), "use crate::checkpoint::Checkpoint;".to_string()),
        (m("checkpoint"), "use crate::engine::{RunStats, Slot};".to_string()),
        (m("venue"), "use crate::venue::live::LiveState; use crate::model::Side;".to_string()),
        (m("venue::live"), "use super::paper::PaperVenue; use crate::venue::Venue;".to_string()),
        (m("venue::paper"), "use crate::venue::{live, Venue};".to_string()),
        (m("model"), "#[cfg(test)]\nmod tests {\n    use crate::venue::Venue;\n}\n".to_string()),
    ];
    let mods: Vec<(Vec<String>, String)> = mods.into_iter().map(|(p, t)| (p, without_tests(&t))).collect();
    let known: BTreeSet<Vec<String>> = mods.iter().map(|(m, _)| m.clone()).collect();
    let top = loops(&graph_at(1, &mods, &known));
    assert_eq!(top, vec![vec![m("checkpoint"), m("engine")]]);
    let rooms = loops(&graph_at(2, &mods, &known));
    assert_eq!(rooms, vec![vec![m("checkpoint"), m("engine")], vec![m("venue::live"), m("venue::paper")]]);
}
