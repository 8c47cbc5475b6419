//! The seed files of `[db.seed]` in supabase/config.toml, loaded into a database by
//! `db reset-local`, and by `db push` and `db reset` with `--include-seed`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plover::project::Project;

/// Loads every seed file into `client`, in order, printing each; says so and loads
/// nothing when `[db.seed] enabled = false`. A failing file stops the load with the
/// server's error and the file's name.
pub async fn load(project: &Project, client: &tokio_postgres::Client) -> Result<()> {
    let config = project.config();
    if !config.seed_enabled {
        println!("seed skipped ([db.seed] enabled = false)");
        return Ok(());
    }
    let supabase = project.workdir().join("supabase");
    for file in seed_files(&supabase, &config.seed_paths)? {
        let sql = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| anyhow::anyhow!(plover::describe(&e)))
            .with_context(|| format!("loading {}", file.display()))?;
        let shown = file.strip_prefix(project.workdir()).unwrap_or(&file);
        println!("seeded from {}", shown.display());
    }
    Ok(())
}

/// The seed files of `[db.seed] sql_paths`, relative to `supabase/`, in the order
/// given; `*` and `?` in a file name match within its directory (sorted). A path
/// without wildcards that does not exist is skipped with a warning, as the
/// Supabase CLI does; a pattern may match nothing.
fn seed_files(supabase: &Path, paths: &[String]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let full = supabase.join(path.strip_prefix("./").unwrap_or(path));
        let name = full
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("[db.seed] sql_paths: {path:?} names no file"))?;
        if !name.contains(['*', '?']) {
            if !full.is_file() {
                // As the Supabase CLI: a warning, the seed goes on without it.
                eprintln!(
                    "warning: seed file {} (from [db.seed] sql_paths) does not exist; nothing seeded from it",
                    full.display()
                );
                continue;
            }
            files.push(full);
            continue;
        }
        let dir = full.parent().unwrap_or(supabase);
        let mut matched: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {} for [db.seed] sql_paths", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .filter(|e| e.file_name().to_str().is_some_and(|n| wildcard(name, n)))
            .map(|e| e.path())
            .collect();
        matched.sort();
        files.extend(matched);
    }
    Ok(files)
}

/// `*` (any run) and `?` (one character) matching of a whole file name.
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic backtracking over the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards_match_whole_names() {
        for (p, n, want) in [
            ("*.sql", "a.sql", true),
            ("*.sql", "a.sql.bak", false),
            ("seed_??.sql", "seed_01.sql", true),
            ("seed_??.sql", "seed_1.sql", false),
            ("*", "x", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
        ] {
            assert_eq!(wildcard(p, n), want, "{p} vs {n}");
        }
    }
}
