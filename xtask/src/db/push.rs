//! `cargo xtask db push`: the plan, a confirmation on protected targets, then
//! `Migrator::run` with a progress bar and the lock wait shown (`progress`); versions
//! the Supabase CLI applied with the files' statements are adopted by the run and
//! listed, others refused with the `db adopt` command. `--dry-run` prints the SQL and
//! changes nothing.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use plover::{Missing, OutOfOrder};

use super::{Ask, Ctx, confirm, connect};
use crate::flags::DbPush;

impl DbPush {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        if let Some(file) = &self.fleet {
            return super::fleet::push(&self, ctx, file).await;
        }
        let target = ctx.target()?;
        let out_of_order = if self.include_all {
            OutOfOrder::Allow
        } else {
            OutOfOrder::Refuse
        };
        let migrator = ctx
            .migrator()?
            .out_of_order(out_of_order)
            .lock_wait(Duration::from_secs(self.lock_wait));
        println!("target: {target}");
        println!("app: {}", migrator.app_name());
        let mut client = connect(&target).await?;

        let plan = migrator.plan(&client).await?;
        let problems = plan.problems(out_of_order, Missing::Refuse);
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
            let adopt = match problems.iter().any(plover::Problem::is_supabase_cli) {
                true => format!("\n{}", adopt_command(&target)),
                false => String::new(),
            };
            bail!(
                "refusing to push: {} problem(s) in the plan; nothing was applied\n{}{adopt}",
                problems.len(),
                list.join("\n")
            );
        }
        for r in plan.renamed() {
            eprintln!("warning: {r}");
        }
        let pending: Vec<&plover::Migration> = plan.pending().collect();
        let adoptable: Vec<&plover::Migration> = plan.adoptable().collect();
        if !adoptable.is_empty() {
            println!(
                "{} applied by the Supabase CLI with the files' statements, to adopt (record in plover's history without running):",
                adoptable.len()
            );
            for m in &adoptable {
                println!("  {}  {}", m.version(), m.name());
            }
        }
        if pending.is_empty() && adoptable.is_empty() {
            println!("up to date: nothing to push");
            if self.include_seed && !self.dry_run {
                confirm(
                    &target,
                    Ask::WhenProtected,
                    self.confirm.as_deref(),
                    "load the seed files",
                )?;
                super::seed::load(&ctx.project, &client).await?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        if !pending.is_empty() {
            println!("{} to apply:", pending.len());
            for m in &pending {
                println!("  {}  {}", m.version(), m.name());
            }
        }
        if self.dry_run {
            for m in &pending {
                let file = std::path::Path::new(m.file());
                let shown = file.strip_prefix(ctx.project.workdir()).unwrap_or(file);
                println!("\n-- {}\n{}", shown.display(), m.sql().trim_end());
            }
            if self.include_seed {
                println!("\nthe seed files would be loaded afterwards (--include-seed)");
            }
            println!("\ndry run: nothing was applied nor adopted");
            return Ok(ExitCode::SUCCESS);
        }
        confirm(
            &target,
            Ask::WhenProtected,
            self.confirm.as_deref(),
            &format!(
                "{}apply {} migration(s){}",
                match adoptable.len() {
                    0 => String::new(),
                    n => format!("adopt {n} version(s) the Supabase CLI applied and "),
                },
                pending.len(),
                if self.include_seed {
                    " and load the seed files"
                } else {
                    ""
                }
            ),
        )?;
        drop(plan);
        super::grants::check_roles(&ctx.project, &client).await?;

        let progress = super::progress::Progress::new(pending.len());
        let report = progress.watch(migrator).run(&mut client).await;
        progress.finish();
        let report = report.with_context(|| format!("pushing to {target}"))?;
        for a in &report.adopted {
            println!(
                "adopted {}  {}  (applied by the Supabase CLI with the file's statements; recorded without running it)",
                a.version, a.name
            );
        }
        println!(
            "{}{} applied in {} ms (lock wait {} ms); version now {}",
            match report.adopted.len() {
                0 => String::new(),
                n => format!("{n} adopted from the Supabase CLI, "),
            },
            report.applied.len(),
            report.total.as_millis(),
            report.lock_wait.as_millis(),
            report
                .version
                .map_or_else(|| "none".to_owned(), |v| v.to_string())
        );
        if !report.applied.is_empty() {
            for line in super::grants::apply(&ctx.project, &mut client).await? {
                println!("{line}");
            }
        }
        if self.include_seed {
            super::seed::load(&ctx.project, &client).await?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The line that says how to take over versions the Supabase CLI applied that a push
/// refuses to adopt on its own: the exact `db adopt` command for `target`.
pub(super) fn adopt_command(target: &plover::project::Target) -> String {
    format!(
        "to record what the Supabase CLI applied without running it, once the database is checked to hold what the files say: cargo xtask db adopt --from supabase --env {}",
        target.env()
    )
}
