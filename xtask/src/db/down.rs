//! `cargo xtask db down`: roll back the newest migrations with their down files,
//! through `Migrator::down`, after showing the plan (and the lines that drop or
//! delete) and a confirmation on every target but the local cluster.
//!
//! `db down --check` touches no environment: in a shadow database it applies the
//! migrations in order, and right after each one with a down file runs the down file
//! (through `Migrator::down`, as a rollback would), compares the app's schemas with
//! those from before the migration, and applies the migration again (those after the
//! last down file are not applied). A down file that
//! fails, leaves a difference, or after which the migration no longer applies, is a
//! finding (exit 2).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result};
use plover::{DownTo, Migration, Migrator, Source};

use super::{Ask, Ctx, confirm, connect};
use crate::flags::DbDown;

impl DbDown {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        if self.check {
            return check(ctx).await;
        }
        let target = ctx.target()?;
        let migrator = ctx.migrator()?;
        let to = match self.to {
            Some(version) => DownTo::Version(version),
            None => DownTo::Last(self.last.unwrap_or(1)),
        };
        println!("target: {target}");
        println!("app: {}", migrator.app_name());
        let mut client = connect(&target).await?;
        let plan = migrator
            .down_plan(&client, to)
            .await
            .with_context(|| format!("planning the rollback on {target}"))?;
        if plan.is_empty() {
            println!("nothing to roll back: no migration of this app is applied there");
            return Ok(ExitCode::SUCCESS);
        }
        println!("to undo, newest first:");
        let mut destroys = Vec::new();
        for m in &plan {
            let Some(down) = m.down() else { continue };
            println!("  {}  {}  with {}", m.version(), m.name(), down.file());
            destroys.extend(destructive_lines(down.file(), down.sql()));
        }
        if !destroys.is_empty() {
            println!("what they drop or delete:");
            for line in &destroys {
                println!("  {line}");
            }
        }
        if self.dry_run {
            println!("dry run: nothing was changed");
            return Ok(ExitCode::SUCCESS);
        }
        confirm(
            &target,
            Ask::Destructive,
            self.confirm.as_deref(),
            &format!("undo {} migration(s)", plan.len()),
        )?;
        let progress = super::progress::Progress::new(plan.len());
        let migrator = progress.watch(migrator);
        let result = migrator.down(&mut client, to).await;
        progress.finish();
        let report = result.with_context(|| format!("rolling back on {target}"))?;
        match report.version {
            Some(v) => println!("undid {} migration(s); now at {v}", report.undone.len()),
            None => println!(
                "undid {} migration(s); none of this app's is applied now",
                report.undone.len()
            ),
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// How one down file did in the check.
enum Checked {
    /// The schemas are as before the migration (that it applies again is checked after).
    Restores,
    /// The down file failed (rolled back), or the rollback refused.
    Fails(String),
    /// The schemas differ from those before the migration: what would restore them.
    Differs(plover::schema::Diff),
}

/// `db down --check`: every down file run in a shadow database right after its
/// migration, the schemas compared with those from before it.
async fn check(ctx: &Ctx) -> Result<ExitCode> {
    let migrator = ctx.migrator()?;
    // Files named from the project's folder, in this command's lines and the engine's.
    let source = relative(migrator.source(), ctx.project.workdir())?;
    let app = migrator.app_name().to_owned();
    let schemas = ctx.project.app_schemas();
    let with_down = source
        .migrations()
        .iter()
        .filter(|m| m.down().is_some())
        .count();
    if with_down == 0 {
        println!(
            "no migration of {} has a down file: nothing to check",
            source.origin()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "checking {with_down} down file(s) of {} migration(s): each run right after its migration in a shadow database, the schemas {} compared with those from before it",
        source.migrations().len(),
        schemas.join(", ")
    );
    let mut findings = 0;
    let mut stopped = None;
    super::diff::with_shadow(ctx, async |client, name| {
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(with_down as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        for (i, m) in source.migrations().iter().enumerate() {
            let Some(down) = m.down() else { continue };
            // The migrations before this one (those after the last down file checked).
            Migrator::new(subset(&source, i)?)
                .app(&app)
                .run(client)
                .await
                .with_context(|| {
                    format!(
                        "applying the migrations before {} to the shadow database {name}",
                        m.file()
                    )
                })?;
            let before = plover::schema::inspect(client, &schemas)
                .await
                .context("reading the shadow database's schemas")?;
            // This one, with its down file.
            let upto = Migrator::new(subset(&source, i + 1)?).app(&app);
            upto.run(client)
                .await
                .with_context(|| format!("applying {} to the shadow database {name}", m.file()))?;
            let checked = match upto.down(client, DownTo::Last(1)).await {
                Err(e) => Checked::Fails(format!("{e:#}")),
                Ok(_) => {
                    let after = plover::schema::inspect(client, &schemas)
                        .await
                        .context("reading the shadow database's schemas")?;
                    let back = plover::schema::diff(&after, &before);
                    if back.is_empty() {
                        Checked::Restores
                    } else {
                        Checked::Differs(back)
                    }
                }
            };
            let undone = !matches!(checked, Checked::Fails(_));
            bar.suspend(|| report(m, down, &checked));
            if !matches!(checked, Checked::Restores) {
                findings += 1;
            }
            if undone {
                // Applied again, as after a rollback and a fix pushed.
                if let Err(e) = upto.run(client).await {
                    findings += 1;
                    stopped = Some(format!(
                        "{} does not apply again after {}: {e:#}",
                        m.file(),
                        down.file()
                    ));
                    break;
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(())
    })
    .await?;
    if let Some(why) = &stopped {
        println!("stopped: {why}");
    }
    let without = source.migrations().len() - with_down;
    if without > 0 {
        println!("{without} migration(s) without a down file (not checked)");
    }
    if findings > 0 {
        println!("{findings} finding(s)");
        return Ok(ExitCode::from(super::EXIT_FAILED));
    }
    println!("every down file restores the schemas from before its migration");
    Ok(ExitCode::SUCCESS)
}

/// The first `n` migrations of `source`, with their down files.
fn subset(source: &Source, n: usize) -> Result<Source> {
    renamed(source, n, |f| f.to_owned())
}

/// `source` with its files named from `workdir`.
fn relative(source: &Source, workdir: &std::path::Path) -> Result<Source> {
    let prefix = format!("{}/", workdir.display());
    let rel = |f: &str| f.strip_prefix(&prefix).unwrap_or(f).to_owned();
    renamed(source, source.migrations().len(), rel)
}

/// The first `n` migrations of `source` with their down files, each file named
/// `name(file)`.
fn renamed(source: &Source, n: usize, name: impl Fn(&str) -> String) -> Result<Source> {
    let mut files: Vec<(String, &[u8])> = Vec::new();
    for m in &source.migrations()[..n] {
        files.push((name(m.file()), m.sql().as_bytes()));
        if let Some(down) = m.down() {
            files.push((name(down.file()), down.sql().as_bytes()));
        }
    }
    let origin = name(source.origin());
    Ok(Source::from_files(origin, files)?.with_supabase(source.is_supabase()))
}

fn report(m: &Migration, down: &Migration, checked: &Checked) {
    match checked {
        Checked::Restores => println!("ok      {}", down.file()),
        Checked::Fails(why) => {
            println!("FAILED  {}:", down.file());
            for line in why.lines() {
                println!("          {line}");
            }
        }
        Checked::Differs(back) => {
            println!(
                "DIFFERS {}: after it the schemas are not those from before {}; what would make them so:",
                down.file(),
                m.file()
            );
            for line in back.to_sql().lines() {
                if !line.is_empty()
                    && !line.starts_with("-- plover diff:")
                    && !line.starts_with("-- hazard")
                {
                    println!("          {line}");
                }
            }
        }
    }
}

/// The lines of a down file that drop or delete something (`file:line: text`), so the
/// plan names what the rollback destroys.
fn destructive_lines(file: &str, sql: &str) -> Vec<String> {
    sql.lines()
        .enumerate()
        .filter(|(_, line)| {
            let l = line.trim_start().to_ascii_lowercase();
            l.starts_with("drop ")
                || l.starts_with("truncate")
                || l.starts_with("delete ")
                || (l.starts_with("alter ") && l.contains(" drop "))
        })
        .map(|(i, line)| format!("{file}:{}: {}", i + 1, line.trim()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_names_what_a_down_file_drops() {
        let sql = "-- undo budgets\nDROP TABLE public.budgets;\n  alter table t drop column c;\nalter table t add column d int;\ndelete from settings where k = 'x';\nselect 1;";
        assert_eq!(
            destructive_lines("m/1_a.down.sql", sql),
            [
                "m/1_a.down.sql:2: DROP TABLE public.budgets;",
                "m/1_a.down.sql:3: alter table t drop column c;",
                "m/1_a.down.sql:5: delete from settings where k = 'x';",
            ]
        );
    }
}
