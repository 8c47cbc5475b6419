//! `cargo xtask db status`: every migration's state on the target, read-only; versions
//! the Supabase CLI applied are shown as what `db push` would do with them (adopt, or
//! refuse with the `db adopt` command), and nothing is written. With `--drift`, also
//! whether the target's schemas are what its applied migrations create.

use std::process::ExitCode;

use anyhow::{Context, Result};
use plover::project::utc_rfc3339;
use plover::schema::Diff;
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
        let down_edited: Vec<String> = plan
            .entries()
            .iter()
            .filter(|e| e.down_edited())
            .filter_map(|e| e.migration)
            .map(|m| {
                let down = m.down().map_or_else(
                    || format!("the down file of {}", m.file()),
                    |d| d.file().to_owned(),
                );
                format!(
                    "{down} is not the down file {} was applied with (edited or removed since); `db down` refuses it until it is reviewed and recorded with `db repair --status applied {}`",
                    m.file(),
                    m.version()
                )
            })
            .collect();
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
        let drift = if self.drift {
            Some(drift(ctx, &target, &migrator, &plan).await?)
        } else {
            None
        };
        let drifted = drift.as_ref().is_some_and(|d| matches!(d, Drift::Found(_)));

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
                "down_edited": down_edited,
                "skipped": migrator.source().skipped(),
                "adopt_from_supabase_cli": adoptable
                    .iter()
                    .map(|m| json!({"version": m.version(), "name": m.name(), "file": m.file()}))
                    .collect::<Vec<_>>(),
                "drift": drift.as_ref().map(Drift::to_json),
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
            for (baseline, n) in super::squash::unrewritten(&migrator, &plan) {
                println!(
                    "{n} version(s) missing locally were squashed into {}: `cargo xtask db squash --to {} --on {}` rewrites this history",
                    baseline.file(),
                    baseline.version(),
                    target.env()
                );
            }
            for warning in renamed.iter().chain(&skipped).chain(&down_edited) {
                eprintln!("warning: {warning}");
            }
            if let Some(d) = &drift {
                print!("{}", d.render(target.env()));
            }
        }
        Ok(if attention || drifted {
            ExitCode::from(EXIT_ATTENTION)
        } else {
            ExitCode::SUCCESS
        })
    }
}

/// Whether the target's schemas are what its applied migrations create.
enum Drift {
    /// Equal.
    None,
    /// The SQL that would turn the applied migrations' schema into the target's.
    Found(Diff),
    /// Not checked, and why (a modified or missing applied file).
    Unchecked(String),
}

impl Drift {
    fn render(&self, env: &str) -> String {
        match self {
            Drift::None => {
                "drift: none (the schemas are what the applied migrations create)\n".into()
            }
            Drift::Unchecked(why) => format!("drift: not checked: {why}\n"),
            Drift::Found(diff) => {
                let mut out = format!(
                    "drift: {env} differs from what its applied migrations create; {} statement(s) would make the migrations' schema into {env}'s:\n",
                    diff.changes.len()
                );
                for c in &diff.changes {
                    let first = c.sql.lines().next().unwrap_or_default();
                    out.push_str(&format!("  {first}\n"));
                }
                for m in &diff.manual {
                    out.push_str(&format!("  manual: {m}\n"));
                }
                out.push_str(&format!(
                    "capture it as a migration with `cargo xtask db pull --env {env}`, or see the SQL with `cargo xtask db diff --env {env}`\n"
                ));
                out
            }
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Drift::None => json!({"checked": true, "drifted": false}),
            Drift::Unchecked(why) => json!({"checked": false, "reason": why}),
            Drift::Found(diff) => json!({
                "checked": true,
                "drifted": true,
                "statements": diff.changes.iter().map(|c| json!({
                    "sql": c.sql,
                    "hazards": c.hazards.iter().map(|h| h.kind.slug()).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "manual": diff.manual,
            }),
        }
    }
}

/// Replays the migrations the target recorded as applied (their local files) into a
/// shadow database and compares its schemas with the target's.
async fn drift(
    ctx: &Ctx,
    target: &plover::project::Target,
    migrator: &plover::Migrator,
    plan: &plover::Plan<'_>,
) -> Result<Drift> {
    let mut files = Vec::new();
    for e in plan.entries() {
        match (&e.state, e.migration) {
            (State::Applied | State::AppliedBySupabaseCli, Some(m)) => {
                files.push((m.file().to_owned(), m.sql().as_bytes()));
            }
            (State::Modified { .. } | State::MissingLocally | State::Dirty, _) => {
                return Ok(Drift::Unchecked(format!(
                    "{} {} is {}: its applied text is not the local file's",
                    e.version,
                    e.name(),
                    state_name(&e.state)
                )));
            }
            _ => {}
        }
    }
    let origin = migrator.source().origin().to_owned();
    let applied = plover::Source::from_files(origin, files)
        .context("loading the applied migrations' files")?;
    let replay = plover::Migrator::new(applied).app(migrator.app_name());
    let schemas = ctx.project.app_schemas();
    let before = super::diff::replayed(ctx, &replay, &schemas).await?;
    let after = super::diff::inspect_target(target, &schemas).await?;
    let diff = plover::schema::diff(&before, &after);
    Ok(if diff.is_empty() {
        Drift::None
    } else {
        Drift::Found(diff)
    })
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
    if e.down_edited() {
        s.push_str(", down file edited since");
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
        "down_file": e.migration.and_then(|m| m.down()).map(|d| d.file()),
        "down_edited": e.down_edited(),
    })
}
