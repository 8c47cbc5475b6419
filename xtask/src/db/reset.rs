//! `cargo xtask db reset --env NAME`: learn the app's objects (a replay on a scratch
//! database), show the plan, confirm, back up, then `Migrator::reset` (drop exactly
//! the plan's objects and the app's history rows, re-apply), and the seed files with
//! `--include-seed`. The planning and the output of the plan are shared with
//! `db restore`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};
use plover::project::Target;
use plover::project::reset::{self, AppObjects, ResetPlan};
use plover::supabase::is_managed_schema;

use super::pgtools::{Scratch, Tools, pattern_quote, write_private};
use super::{Ask, Ctx, confirm, connect};
use crate::flags::DbReset;

impl DbReset {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let target = ctx.target()?;
        let migrator = ctx.migrator()?;
        let schemas = ctx.project.app_schemas();
        println!("target: {target}");
        println!("app: {}", migrator.app_name());
        println!("app schemas: {}", schemas.join(", "));
        let mut client = connect(&target).await?;
        let plan = plan(&migrator, &mut client, &schemas, &self.also_drop).await?;
        show(&plan, "drop");

        confirm(
            &target,
            Ask::Destructive,
            self.confirm.as_deref(),
            &format!(
                "drop these {} object(s) of app {} and re-apply its migrations",
                plan.drop.len() + plan.named.len(),
                migrator.app_name()
            ),
        )?;

        let t0 = Instant::now();
        let bar = super::spinner("backing up with pg_dump");
        let backup = backup(ctx, &target, &client, &migrator, &plan).await;
        bar.finish_and_clear();
        let backup = backup?;
        let shown = backup
            .strip_prefix(ctx.project.workdir())
            .unwrap_or(&backup);
        println!("backup: {}", shown.display());

        // Lock waits, then one line per migration applied again.
        let progress = super::progress::Progress::new(migrator.source().migrations().len());
        let migrator = progress.watch(migrator);
        let reset = reset::reset(&migrator, &mut client, &plan).await;
        progress.finish();
        let reset = reset.with_context(|| {
            format!(
                "resetting {target} (the backup is {}; put it back with `cargo xtask db restore {} --env {}`)",
                shown.display(),
                shown.display(),
                target.env()
            )
        })?;
        println!(
            "dropped {} object(s); deleted {} history row(s)",
            reset.dropped.len(),
            reset.history_rows
        );
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

/// The objects the app's migrations make, learned by replaying them on a scratch
/// database (the test server's provider, with the Supabase shim), then the plan on
/// `client`. Fails with the refusal when the plan cannot go ahead.
pub(super) async fn plan(
    migrator: &plover::Migrator,
    client: &mut tokio_postgres::Client,
    schemas: &[String],
    also_drop: &[String],
) -> Result<ResetPlan> {
    let bar = super::spinner(format!(
        "replaying {} migration(s) on a scratch database to learn which objects they make",
        migrator.source().migrations().len()
    ));
    let app = app_objects(migrator).await;
    bar.finish_and_clear();
    let app = app?;
    let plan = reset::plan_reset(migrator, client, &app, schemas, also_drop)
        .await
        .context("planning what to drop")?;
    if let Some(reason) = plan.refusal() {
        bail!(plover::Error::ResetRefused { reason });
    }
    Ok(plan)
}

async fn app_objects(migrator: &plover::Migrator) -> Result<AppObjects> {
    let context = "replaying the app's migrations on a scratch database (to learn which objects they make; `cargo xtask test`'s server, PLOVER_TEST_* settings apply)";
    let scratch = plover::testing::TestDatabase::with_supabase_shim()
        .await
        .context(context)?;
    let mut client = scratch.client().await.context(context)?;
    reset::app_objects(migrator, &mut client)
        .await
        .context(context)
}

/// Prints the plan: what goes (`verb`), what is named, what is kept.
pub(super) fn show(plan: &ResetPlan, verb: &str) {
    println!(
        "the app's migrations make these {} object(s) here; {verb}:",
        plan.drop.len()
    );
    for o in &plan.drop {
        println!("  - {o}");
    }
    if !plan.named.is_empty() {
        println!("not made by the app's migrations, named with --also-drop; {verb} too:");
        for o in &plan.named {
            println!("  - {o}");
        }
    }
    if !plan.kept.is_empty() {
        println!(
            "kept: the app's objects in Supabase's schemas (only its policies, triggers and rules are dropped there):"
        );
        for o in &plan.kept {
            println!("  - {o}");
        }
    }
}

/// The backup: pg_dump of the schemas the plan's objects are in (rows as INSERTs, no
/// owners), the app's policies and triggers on Supabase's tables, and its history
/// rows, in `supabase/.temp/backups/<env>-<UTC timestamp>.sql` (mode 0600).
async fn backup(
    ctx: &Ctx,
    target: &Target,
    client: &tokio_postgres::Client,
    migrator: &plover::Migrator,
    plan: &ResetPlan,
) -> Result<PathBuf> {
    let tools = Tools::for_target(target).await?;
    let now = SystemTime::now();
    let stamp = plover::project::utc_version(now);
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
    let mut schemas: Vec<String> = plan.schemas.clone();
    for o in plan.drop.iter().chain(&plan.named) {
        if let Some(s) = o.schema.as_deref()
            && !is_managed_schema(s)
            && !schemas.iter().any(|k| k == s)
        {
            schemas.push(s.to_owned());
        }
    }
    let mut args: Vec<String> = schemas
        .iter()
        .map(|s| format!("--schema={}", pattern_quote(s)))
        .collect();
    args.extend(
        [
            "--no-owner",
            "--inserts",
            "--rows-per-insert=1000",
            "--quote-all-identifiers",
        ]
        .map(String::from),
    );
    let dump = Scratch::new("reset-backup");
    tools
        .pg_dump(target, &args, dump.path())
        .with_context(|| format!("backing up {target} with {}", tools.describe()))?;
    // The database it is restored into has `public` already: create it only if missing.
    let dumped = dump.read()?.replace(
        "\nCREATE SCHEMA \"public\";\n",
        "\nCREATE SCHEMA IF NOT EXISTS \"public\";\n",
    );
    let history = reset::history_backup(migrator, client)
        .await
        .context("reading the app's history for the backup")?;
    let mut text = format!(
        "-- plover backup of app `{}` (schemas {}) from environment `{}`, taken {} by `db reset`.\n\
         -- Put it back with: cargo xtask db restore FILE --env {}\n",
        migrator.app_name(),
        schemas.join(", "),
        target.env(),
        plover::project::utc_rfc3339(now),
        target.env(),
    );
    text.push_str(&dumped);
    let attached = plan.attached_in_managed_schemas();
    if !attached.is_empty() {
        text.push_str("\n-- plover: the app's policies, triggers and rules on Supabase's tables\n");
        for create in attached {
            text.push_str(create);
            text.push('\n');
        }
    }
    if !history.is_empty() {
        text.push_str("\n-- plover: the app's history\n");
        text.push_str(&history);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_private(&path, text.as_bytes())?;
    Ok(path)
}
