//! `cargo xtask db status`: every migration's state on the target, read-only; versions
//! the Supabase CLI applied are shown as what `db push` would do with them (adopt, or
//! refuse with the `db adopt` command), and nothing is written.

use std::process::ExitCode;

use anyhow::Result;
use plover::project::utc_rfc3339;
use plover::{Entry, State};
use plover::{Missing, OutOfOrder};
use serde_json::json;

use super::{Ctx, EXIT_ATTENTION, connect};
use crate::flags::DbStatus;

impl DbStatus {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let target = ctx.target()?;
        let migrator = ctx.migrator()?;
        let client = connect(&target).await?;
        let plan = migrator.plan(&client).await?;
        let problems: Vec<String> = plan
            .problems(OutOfOrder::Refuse, Missing::Refuse)
            .iter()
            .map(ToString::to_string)
            .collect();
        let renamed: Vec<String> = plan.renamed().iter().map(ToString::to_string).collect();
        let skipped: Vec<String> = migrator.source().skipped_warnings().collect();
        let attention = plan.entries().iter().any(|e| {
            !matches!(
                e.state,
                State::Applied | State::Pending | State::AppliedBySupabaseCli
            )
        });
        let adoptable: Vec<&plover::Migration> = plan.adoptable().collect();
        let cli_problems = plan
            .problems(OutOfOrder::Refuse, Missing::Refuse)
            .iter()
            .any(plover::Problem::is_supabase_cli);
        let count =
            |wanted: fn(&State) -> bool| plan.entries().iter().filter(|e| wanted(&e.state)).count();
        let applied = count(|s| *s == State::Applied);
        let pending = count(|s| *s == State::Pending);

        if self.json {
            let migrations: Vec<_> = plan.entries().iter().map(entry_json).collect();
            let out = json!({
                "target": {
                    "env": target.env(),
                    "url": target.redacted(),
                    "from": target.from(),
                    "protected": target.protection() == plover::project::Protection::Protected,
                },
                "app": migrator.app_name(),
                "migrations": migrations,
                "applied": applied,
                "pending": pending,
                "needs_attention": attention,
                "problems": problems,
                "renamed": renamed,
                "skipped": migrator.source().skipped(),
                "adopt_from_supabase_cli": adoptable
                    .iter()
                    .map(|m| json!({"version": m.version(), "name": m.name(), "file": m.file()}))
                    .collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            println!("target: {target}");
            println!("app: {}", migrator.app_name());
            let width = plan
                .entries()
                .iter()
                .map(|e| e.name().len())
                .max()
                .unwrap_or(0);
            for e in plan.entries() {
                println!("  {:<14}  {:<width$}  {}", e.version, e.name(), describe(e));
            }
            let others = plan.entries().len() - applied - pending - adoptable.len();
            print!("{applied} applied, {pending} pending");
            if !adoptable.is_empty() {
                print!(", {} applied by the Supabase CLI", adoptable.len());
            }
            if others > 0 {
                print!(", {others} need attention");
            }
            println!();
            if !adoptable.is_empty() {
                println!(
                    "push would adopt (record without running) what the Supabase CLI applied with the files' statements:"
                );
                for m in &adoptable {
                    println!("  adopt {}  {}", m.version(), m.name());
                }
            }
            if !problems.is_empty() {
                println!("needs attention:");
                for p in &problems {
                    println!("  - {p}");
                }
            }
            if cli_problems {
                println!("{}", super::push::adopt_command(&target));
            }
            for warning in renamed.iter().chain(&skipped) {
                eprintln!("warning: {warning}");
            }
        }
        Ok(if attention {
            ExitCode::from(EXIT_ATTENTION)
        } else {
            ExitCode::SUCCESS
        })
    }
}

fn state_name(state: &State) -> &'static str {
    match state {
        State::Applied => "applied",
        State::Pending => "pending",
        State::OutOfOrder => "out-of-order",
        State::Modified { .. } => "modified",
        State::MissingLocally => "missing-locally",
        State::Dirty => "dirty",
        State::AppliedBySupabaseCli => "applied-by-supabase-cli",
        State::SupabaseCliDiffers { .. } => "supabase-cli-differs",
    }
}

/// One line's state column: `applied 2025-01-14T09:30:12Z by xtask@host (12 ms)`.
fn describe(e: &Entry<'_>) -> String {
    let mut s = state_name(&e.state).to_owned();
    if let Some(row) = &e.applied {
        s.push_str(&format!(
            " {} by {} ({} ms)",
            utc_rfc3339(row.applied_at),
            row.applied_by,
            row.execution_ms
        ));
    }
    s
}

fn entry_json(e: &Entry<'_>) -> serde_json::Value {
    json!({
        "version": e.version,
        "name": e.name(),
        "state": state_name(&e.state),
        "file": e.migration.map(|m| m.file()),
        "applied_at": e.applied.as_ref().map(|r| utc_rfc3339(r.applied_at)),
        "applied_by": e.applied.as_ref().map(|r| &r.applied_by),
        "execution_ms": e.applied.as_ref().map(|r| r.execution_ms),
    })
}
