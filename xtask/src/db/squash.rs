//! `cargo xtask db squash --to VERSION [--on ENV]…`: the migrations up to VERSION
//! become one file, `<VERSION>_baseline.sql`, written from the schema they build (the
//! schema diff from an empty database to their replay), checked by replaying it and
//! diffing again, then the histories of the named environments rewritten
//! (`Migrator::squash_history`).
//!
//! Must not: lose anything the squashed files made (rows, objects the diff does not
//! model: refused before writing), leave a project half-squashed (the baseline is
//! written before the old files go), rewrite a history without asking, or touch
//! another app's rows.
//!
//! The baseline's header lists every squashed migration with its checksum, so that a
//! database not named the first time is rewritten later by the same command (the
//! files are squashed already: only the histories are rewritten).

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use plover::{Checksum, Migration, Source, SquashOutcome};

use super::diff::replayed_probe;
use super::{Ask, Ctx, confirm, connect};
use crate::flags::DbSquash;

/// The header line naming one squashed migration: `-- squashed: VERSION NAME SHA256`
/// (not `-- plover:…`, which is a directive).
const SQUASHED: &str = "-- squashed: ";
/// The baseline's name.
const NAME: &str = "baseline";
/// Statements that write rows, which a baseline made from the schema would not repeat.
const DATA: &[&str] = &["INSERT", "UPDATE", "DELETE", "COPY", "TRUNCATE", "MERGE"];

impl DbSquash {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let migrator = ctx.migrator()?;
        let app = migrator.app_name().to_owned();
        let source = migrator.source();
        let Some(at) = source.get(self.to) else {
            bail!(
                "{} is not a migration of {}; --to names the newest migration to squash",
                self.to,
                source.origin()
            );
        };
        // Squashed before: only the histories are left to rewrite.
        let recorded = squashed_in(at);
        if !recorded.is_empty() {
            println!(
                "{} is the baseline of {} squashed migration(s)",
                at.file(),
                recorded.len()
            );
            return self.rewrite(ctx, &recorded).await;
        }

        let squashed: Vec<&Migration> = source
            .migrations()
            .iter()
            .filter(|m| m.version() <= self.to)
            .collect();
        if squashed.len() < 2 {
            bail!(
                "only {} migration(s) up to {}: nothing to squash",
                squashed.len(),
                self.to
            );
        }
        println!(
            "to squash: {} migration(s) up to {}",
            squashed.len(),
            self.to
        );
        for m in &squashed {
            println!("  {}  {}", m.version(), m.name());
        }
        if !self.without_data {
            let writes = data_statements(&squashed);
            if !writes.is_empty() {
                bail!(
                    "the squashed files write rows, which a baseline made from the schema would not:\n{}\nmove them to supabase/seed.sql or a later migration, or pass --without-data to squash anyway (databases migrated already keep their rows; new ones start without them); nothing was changed",
                    writes.join("\n")
                );
            }
        }

        let schemas = ctx.project.app_schemas();
        let subset = Source::from_files(
            source.origin(),
            squashed.iter().map(|m| {
                (
                    format!("{}_{}.sql", m.version_text(), m.name()),
                    m.sql().as_bytes(),
                )
            }),
        )?;
        let wanted =
            replayed_probe(ctx, &plover::Migrator::new(subset).app(&app), &schemas).await?;
        if !wanted.unmodelled.is_empty() {
            bail!(
                "the squashed migrations make objects a baseline from the schema diff cannot make again: {}; nothing was changed",
                wanted.unmodelled.join(", ")
            );
        }
        if !wanted.with_rows.is_empty() && !self.without_data {
            bail!(
                "after the squashed migrations these tables hold rows, which a baseline made from the schema would not: {}; pass --without-data to squash anyway; nothing was changed",
                wanted.with_rows.join(", ")
            );
        }
        let empty = replayed_probe(
            ctx,
            &plover::Migrator::new(Source::default()).app(&app),
            &schemas,
        )
        .await?;
        let diff = plover::schema::diff(&empty.catalog, &wanted.catalog);
        if !diff.manual.is_empty() {
            bail!(
                "the schema diff cannot write everything the squashed migrations make: {}; nothing was changed",
                diff.manual.join("; ")
            );
        }
        let file = format!("{}_{NAME}.sql", at.version_text());
        let text = baseline_text(&squashed, &diff.to_sql());

        // The check: the baseline alone builds the same schema.
        let alone = Source::from_files(source.origin(), [(file.clone(), text.as_bytes())])?;
        let rebuilt =
            replayed_probe(ctx, &plover::Migrator::new(alone).app(&app), &schemas).await?;
        let back = plover::schema::diff(&wanted.catalog, &rebuilt.catalog);
        if !back.is_empty() {
            bail!(
                "the baseline does not build the schema the squashed migrations build; the difference:\n{}nothing was changed",
                back.to_sql()
            );
        }
        println!(
            "{file}: {} statement(s); replayed alone it builds the same schema",
            diff.changes.len()
        );
        if self.dry_run {
            print!("{text}");
            println!("dry run: nothing was changed");
            return Ok(ExitCode::SUCCESS);
        }

        let dir = ctx.project.migrations_dir();
        let path = dir.join(&file);
        let already = squashed.iter().any(|m| m.file().ends_with(&file));
        // Written first, under a temporary name when it replaces a squashed file.
        let tmp = dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
        for m in &squashed {
            let old = dir.join(m.file().rsplit('/').next().unwrap_or_default());
            if !already || old != path {
                std::fs::remove_file(&old).with_context(|| {
                    format!(
                        "removing {} (the baseline is {})",
                        old.display(),
                        tmp.display()
                    )
                })?;
            }
            if let Some(down) = m.down() {
                // Relative to the project when not absolute.
                let down = ctx.project.workdir().join(down.file());
                std::fs::remove_file(&down)
                    .with_context(|| format!("removing the down file {}", down.display()))?;
            }
        }
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "wrote {} and removed the {} squashed file(s)",
            path.display(),
            squashed.len()
        );
        let recorded: Vec<(i64, String, Checksum)> = squashed
            .iter()
            .map(|m| (m.version(), m.name().to_owned(), m.checksum()))
            .collect();
        self.rewrite(ctx, &recorded).await
    }

    /// Rewrites the history of every `--on` environment for the squash `recorded`.
    async fn rewrite(&self, ctx: &Ctx, recorded: &[(i64, String, Checksum)]) -> Result<ExitCode> {
        if self.on.is_empty() {
            println!(
                "no history rewritten: each database that applied the squashed migrations needs `cargo xtask db squash --to {} --on ENV` (until then it reports them missing locally)",
                self.to
            );
            return Ok(ExitCode::SUCCESS);
        }
        let migrator = ctx.migrator()?;
        let squashed: Vec<(i64, Checksum)> = recorded.iter().map(|(v, _, c)| (*v, *c)).collect();
        for env in &self.on {
            let target = ctx.target_of(env)?;
            let given = self
                .confirm
                .iter()
                .find(|c| c.eq_ignore_ascii_case(target.env()))
                .map(String::as_str);
            confirm(
                &target,
                Ask::Destructive,
                given,
                &format!(
                    "replace the history rows of {} squashed migration(s) of app {} with the baseline's",
                    recorded.len(),
                    migrator.app_name()
                ),
            )?;
            let mut client = connect(&target).await?;
            let outcome = migrator
                .squash_history(&mut client, self.to, &squashed)
                .await
                .with_context(|| {
                    format!(
                        "rewriting the history on {target} (run `cargo xtask db squash --to {} --on {env}` again once fixed)",
                        self.to
                    )
                })?;
            match outcome {
                SquashOutcome::Rewritten { removed } => println!(
                    "{}: {removed} history row(s) replaced by the baseline's",
                    target.env()
                ),
                SquashOutcome::NothingApplied => println!(
                    "{}: none of the squashed migrations is applied; `db push` applies the baseline",
                    target.env()
                ),
                SquashOutcome::AlreadyRewritten => {
                    println!("{}: the history records the baseline already", target.env());
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The baselines whose squashed versions `plan` finds missing locally (the history
/// was not rewritten yet), each with how many.
pub fn unrewritten<'m>(
    migrator: &'m plover::Migrator,
    plan: &plover::Plan<'_>,
) -> Vec<(&'m Migration, usize)> {
    let missing: Vec<i64> = plan
        .entries()
        .iter()
        .filter(|e| e.state == plover::State::MissingLocally)
        .map(|e| e.version)
        .collect();
    if missing.is_empty() {
        return Vec::new();
    }
    migrator
        .source()
        .migrations()
        .iter()
        .filter_map(|m| {
            let n = squashed_in(m)
                .iter()
                .filter(|(v, _, _)| missing.contains(v))
                .count();
            (n > 0).then_some((m, n))
        })
        .collect()
}

/// The squashed migrations a baseline's header lists (empty for any other file).
fn squashed_in(m: &Migration) -> Vec<(i64, String, Checksum)> {
    m.sql()
        .lines()
        .take_while(|l| l.starts_with("--"))
        .filter_map(|l| l.strip_prefix(SQUASHED))
        .filter_map(|rest| {
            let mut parts = rest.split_whitespace();
            let version = parts.next()?.parse().ok()?;
            let name = parts.next()?.to_owned();
            let checksum = Checksum::from_hex(parts.next()?)?;
            Some((version, name, checksum))
        })
        .collect()
}

/// The baseline file: a header naming every squashed migration with its checksum,
/// then the schema's SQL.
fn baseline_text(squashed: &[&Migration], sql: &str) -> String {
    let first = squashed.first().map_or(0, |m| m.version());
    let last = squashed.last().map_or(0, |m| m.version());
    let mut text = format!(
        "-- Baseline of {} migrations, {first} to {last}, written by `cargo xtask db squash` from the schema they build.\n",
        squashed.len()
    );
    for m in squashed {
        let _ = writeln!(
            text,
            "{SQUASHED}{} {} {}",
            m.version_text(),
            m.name(),
            m.checksum().to_hex()
        );
    }
    text.push('\n');
    text.push_str(sql);
    text
}

/// Every statement of the squashed files that writes rows, as `file:line: statement`.
fn data_statements(squashed: &[&Migration]) -> Vec<String> {
    let mut out = Vec::new();
    for m in squashed {
        let Ok(statements) = plover::split_sql(m.sql()) else {
            continue;
        };
        for st in statements {
            let first = st
                .sql
                .split(|c: char| !c.is_ascii_alphabetic())
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            if DATA.contains(&first.as_str()) {
                let line = st.sql.lines().next().unwrap_or_default();
                out.push(format!("  {}:{}: {line}", m.file(), st.line));
            }
        }
    }
    out
}
