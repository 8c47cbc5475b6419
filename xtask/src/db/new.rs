//! `cargo xtask db new <name>`: a new, empty (or piped) migration file with a version
//! above every existing one.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result};
use plover::parse_file_name;
use plover::project::{next_version, snake_name, utc_rfc3339, utc_version};

use super::Ctx;
use crate::flags::DbNew;

impl DbNew {
    pub fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let name = snake_name(&self.name).with_context(|| {
            format!(
                "{:?} has no letters or digits to name a migration after; use e.g. `add_budgets`",
                self.name
            )
        })?;
        let dir = ctx.project.migrations_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let newest = newest_version(&dir)?;
        let now = SystemTime::now();
        let version = next_version(utc_version(now), newest);

        let mut body = String::new();
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            stdin
                .lock()
                .read_to_string(&mut body)
                .context("reading the migration's SQL from stdin (it must be UTF-8)")?;
        }
        let mut text = format!(
            "-- {name}\n-- Created by `cargo xtask db new` at {}.\n\n",
            utc_rfc3339(now)
        );
        text.push_str(&body);
        if !text.ends_with('\n') {
            text.push('\n');
        }

        // A piped body with an unknown directive fails here, before the file exists.
        write_migration(&dir, &format!("{version}_{name}.sql"), &text)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Writes a new migration file `dir/file` and prints its path. The text is checked
/// first with the parser `push` and the apps use, so a file plover would refuse is
/// never written; an existing file is never overwritten.
pub(super) fn write_migration(dir: &Path, file: &str, text: &str) -> Result<PathBuf> {
    plover::Source::from_files("supabase/migrations", [(file.to_owned(), text.as_bytes())])
        .with_context(|| format!("checking {file}"))?;
    let path = dir.join(file);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    out.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    println!("{}", path.display());
    Ok(path)
}

/// The highest version among the directory's migration file names (the files are
/// not read: a broken file must not stop anyone from adding the next one).
pub(super) fn newest_version(dir: &Path) -> Result<Option<i64>> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name();
        let Some((digits, _)) = name.to_str().and_then(parse_file_name) else {
            continue;
        };
        let version: i64 = digits.parse().with_context(|| {
            format!(
                "{}: version does not fit in a 64-bit integer",
                entry.path().display()
            )
        })?;
        newest = newest.max(Some(version));
    }
    Ok(newest)
}
