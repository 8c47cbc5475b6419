//! `cargo xtask db reset --env NAME`: confirm, back up with pg_dump, then
//! `Migrator::reset` (drop the app's objects and history rows, re-apply), and the seed
//! files with `--include-seed`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};
use plover::project::Target;

use super::pgtools::{Tools, pattern_quote};
use super::{Ask, Ctx, confirm, connect};
use crate::flags::DbReset;

/// The schemas backed up besides the app's: the history tables.
const HISTORY_SCHEMAS: &[&str] = &["plover", "supabase_migrations"];

impl DbReset {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let target = ctx.target()?;
        let migrator = ctx.migrator()?;
        let schemas = ctx.project.app_schemas();
        println!("target: {target}");
        println!("app: {}", migrator.app_name());
        println!("app schemas: {}", schemas.join(", "));
        confirm(
            &target,
            Ask::Destructive,
            self.confirm.as_deref(),
            &format!(
                "drop app {}'s objects in {} and re-apply its migrations",
                migrator.app_name(),
                schemas.join(", ")
            ),
        )?;

        let t0 = Instant::now();
        let bar = super::spinner("backing up with pg_dump");
        let backup = backup(ctx, &target, &schemas).await;
        bar.finish_and_clear();
        let backup = backup?;
        let shown = backup
            .strip_prefix(ctx.project.workdir())
            .unwrap_or(&backup);
        println!("backup: {}", shown.display());

        let mut client = connect(&target).await?;
        let bar = super::spinner("dropping the app's objects and re-applying its migrations");
        let reset = migrator.reset(&mut client, &schemas).await;
        bar.finish_and_clear();
        let reset = reset
            .with_context(|| {
                format!(
                    "resetting {target} (the backup is {}; restore it into an empty database with `psql -v ON_ERROR_STOP=1 -1 -f FILE`)",
                    backup.display()
                )
            })?;
        for schema in &reset.dropped_schemas {
            println!("dropped schema {schema}");
        }
        println!(
            "dropped {} object(s) from kept schemas; deleted {} history row(s)",
            reset.dropped_objects.len(),
            reset.history_rows
        );
        for d in &reset.cascaded {
            println!("also dropped, as it depended on the app: {d}");
        }
        println!(
            "applied {} migration(s) in {} ms; version now {}",
            reset.report.applied.len(),
            reset.report.total.as_millis(),
            reset
                .report
                .version
                .map_or_else(|| "none".to_owned(), |v| v.to_string())
        );
        if self.include_seed {
            super::seed::load(&ctx.project, &client).await?;
        } else {
            println!("seed skipped (pass --include-seed to load it)");
        }
        println!(
            "reset {} in {:.1} s",
            target.env(),
            t0.elapsed().as_secs_f64()
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// pg_dump of the app's schemas and the history schemas (schema and data) to
/// `supabase/.temp/backups/<env>-<UTC timestamp>.sql`; returns the path.
async fn backup(ctx: &Ctx, target: &Target, schemas: &[String]) -> Result<PathBuf> {
    let tools = Tools::for_target(target).await?;
    let stamp = plover::project::utc_version(SystemTime::now());
    let dir = ctx
        .project
        .workdir()
        .join("supabase")
        .join(".temp")
        .join("backups");
    let mut path = dir.join(format!("{}-{stamp}.sql", target.env()));
    let mut n = 1;
    while path.exists() {
        path = dir.join(format!("{}-{stamp}-{n}.sql", target.env()));
        n += 1;
    }
    let mut args: Vec<String> = schemas
        .iter()
        .map(String::as_str)
        .chain(HISTORY_SCHEMAS.iter().copied())
        .map(|s| format!("--schema={}", pattern_quote(s)))
        .collect();
    args.push("--quote-all-identifiers".into());
    tools
        .pg_dump(target, &args, &path)
        .with_context(|| format!("backing up {target} with {}", tools.describe()))?;
    // The database it is restored into has `public` already: create it only if missing.
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the backup {}", path.display()))?;
    let fixed = text.replace(
        "\nCREATE SCHEMA \"public\";\n",
        "\nCREATE SCHEMA IF NOT EXISTS \"public\";\n",
    );
    if fixed != text {
        std::fs::write(&path, fixed)
            .with_context(|| format!("writing the backup {}", path.display()))?;
    }
    Ok(path)
}
