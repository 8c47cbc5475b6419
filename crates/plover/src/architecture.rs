//! ARCHITECTURE.md's invariants on the crate's shape, checked on its sources: the
//! modules import each other without a circle, and the leaves import nothing above
//! them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that import no other plover module (`event` and `problem` import one
/// leaf each, named here).
const LEAVES: &[(&str, &[&str])] = &[
    ("checksum", &[]),
    ("conninfo", &[]),
    ("event", &["session"]),
    // Compiled by plover-macros too, where no other plover module exists.
    ("files", &[]),
    ("problem", &["checksum"]),
    ("session", &[]),
    ("settings", &[]),
    ("split", &[]),
    ("supabase", &[]),
];

/// The engine never imports the developer tools, the linter or the test databases.
const ENGINE: &[&str] = &[
    "adopt", "apply", "checksum", "conninfo", "error", "event", "files", "history", "lock",
    "migrator", "plan", "problem", "session", "settings", "source", "split",
];
const ABOVE_ENGINE: &[&str] = &["lint", "project", "schema", "testing"];

/// Each top-level module of `src` with the top-level modules its code (not its
/// comments, not its unit tests) names as `crate::<module>`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&src).expect("src is readable") {
        let path = entry.expect("src entry").path();
        let name = path
            .file_stem()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        let files = if path.is_dir() {
            rs_files(&path)
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" {
            vec![path.clone()]
        } else {
            continue;
        };
        let mut uses = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file");
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let rest = &line[i + "crate::".len()..];
                    let module: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    // `crate::Error` and other re-exports at the root are not modules.
                    if !module.is_empty() && module != name {
                        uses.insert(module);
                    }
                }
            }
        }
        graph.insert(name, uses);
    }
    graph
}

fn rs_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a module directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files.extend(rs_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn modules_import_each_other_without_a_circle() {
    let graph = imports();
    // The reading sees the imports (so an empty graph cannot pass for a clean one).
    assert!(graph["migrator"].contains("apply") && graph["lock"].contains("error"));
    // Kahn's algorithm: a graph without a circle empties completely.
    let mut left = graph.clone();
    loop {
        let free: Vec<String> = left
            .iter()
            .filter(|(_, uses)| uses.iter().all(|u| !left.contains_key(u)))
            .map(|(m, _)| m.clone())
            .collect();
        if free.is_empty() {
            break;
        }
        for m in free {
            left.remove(&m);
        }
    }
    assert!(left.is_empty(), "modules in an import circle: {left:?}");
}

#[test]
fn leaves_import_only_what_they_may() {
    let graph = imports();
    for (leaf, allowed) in LEAVES {
        let uses = graph
            .get(*leaf)
            .unwrap_or_else(|| panic!("no module {leaf}"));
        let extra: Vec<_> = uses
            .iter()
            .filter(|u| !allowed.contains(&u.as_str()))
            .collect();
        assert!(extra.is_empty(), "{leaf} imports {extra:?}");
    }
}

#[test]
fn the_engine_never_imports_the_tools_above_it() {
    let graph = imports();
    for module in ENGINE {
        let uses = graph
            .get(*module)
            .unwrap_or_else(|| panic!("no module {module}"));
        for above in ABOVE_ENGINE {
            assert!(!uses.contains(*above), "{module} imports {above}");
        }
    }
}
