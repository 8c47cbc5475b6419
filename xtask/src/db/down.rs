//! `cargo xtask db down`: roll back the newest migrations with their down files,
//! through `Migrator::down`, after showing the plan (and the lines that drop or
//! delete) and a confirmation on every target but the local cluster.

use std::process::ExitCode;

use anyhow::{Context, Result};
use plover::DownTo;

use super::{Ask, Ctx, confirm, connect};
use crate::flags::DbDown;

impl DbDown {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
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
