//! `cargo xtask db sync --from ENV`: makes the target's app schemas (the local
//! development database by default) equal to ENV's, with `db diff`'s SQL run in one
//! transaction, and optionally copies the rows of named tables.
//!
//! Must not: touch the source (it is only read); leave the target half-synced (one
//! transaction: the schema, then the rows); run anything before the plan was shown
//! and, where the target asks for it, confirmed.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use plover::schema::{Catalog, Name, ident};

use super::diff::{Side, inspect_target, read_side};
use super::{Ask, Ctx, confirm, connect};
use crate::flags::DbSync;

impl DbSync {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let source: Side = self
            .from
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--from: {e}"))?;
        let target = ctx.target()?;
        if source == Side::Env(target.env().to_owned()) {
            bail!("--from {source} is the target itself: nothing to sync");
        }
        let schemas = ctx.project.app_schemas();
        println!("target: {target}");
        eprintln!(
            "reading the schemas {} of {source} and of {}",
            schemas.join(", "),
            target.env()
        );
        let wanted = read_side(ctx, &source, &schemas).await?;
        let current = inspect_target(&target, &schemas).await?;
        let diff = plover::schema::diff(&current, &wanted);
        let tables = self.tables(&wanted)?;
        // Where the rows come from, checked before anything runs.
        let source_target = match (&source, tables.is_empty()) {
            (_, true) => None,
            (Side::Migrations, false) => {
                bail!(
                    "--data copies rows from an environment or a URL, not from the migrations; nothing was changed"
                )
            }
            (Side::Env(env), false) => {
                let vars = plover::project::Vars::from_process_and_dotenv(ctx.project.workdir())?;
                Some(ctx.project.target(env, &vars)?)
            }
            (Side::Url(url), false) => Some(ctx.project.target(
                "given",
                &plover::project::Vars::from_pairs([("GIVEN_DATABASE_URL", url.as_str())]),
            )?),
        };

        if !diff.manual.is_empty() {
            for m in &diff.manual {
                println!("manual: {m}");
            }
            bail!(
                "{} difference(s) no statement can make (above): make them by hand on {}, then sync again; nothing was changed",
                diff.manual.len(),
                target.env()
            );
        }
        if diff.changes.is_empty() && tables.is_empty() {
            println!(
                "{} already has the schemas {} of {source}; nothing to do",
                target.env(),
                schemas.join(", ")
            );
            return Ok(ExitCode::SUCCESS);
        }
        if !diff.changes.is_empty() {
            println!("the schema of {} becomes {source}'s:", target.env());
            print!("{}", diff.to_sql());
        }
        for t in &tables {
            println!("rows of {t}: replaced by {source}'s");
        }
        if self.dry_run {
            println!("--dry-run: nothing was changed");
            return Ok(ExitCode::SUCCESS);
        }
        let what = match (diff.changes.len(), tables.len()) {
            (n, 0) => format!("run these {n} statement(s)"),
            (0, t) => format!("replace the rows of {t} table(s)"),
            (n, t) => format!("run these {n} statement(s) and replace the rows of {t} table(s)"),
        };
        confirm(&target, Ask::Destructive, self.confirm.as_deref(), &what)?;

        let mut client = connect(&target).await?;
        let tx = client
            .transaction()
            .await
            .context("beginning the sync's transaction")?;
        for change in &diff.changes {
            tx.batch_execute(&change.sql)
                .await
                .with_context(|| format!("running on {}: {}", target.env(), change.sql))?;
        }
        let mut counts = Vec::new();
        if !tables.is_empty() {
            let src = source_target
                .as_ref()
                .context("--data needs an environment or a URL to copy rows from")?;
            let from = connect(src).await?;
            let list: Vec<String> = tables.iter().map(ToString::to_string).collect();
            // Emptied together, so that foreign keys among them do not refuse.
            tx.batch_execute(&format!("TRUNCATE {}", list.join(", ")))
                .await
                .with_context(|| format!("emptying {} on {}", list.join(", "), target.env()))?;
            for table in &tables {
                let copied = copy_rows(&from, &tx, table, &wanted).await?;
                counts.push((table.clone(), copied));
            }
        }
        tx.commit()
            .await
            .context("committing the sync (nothing of it was kept)")?;
        if !diff.changes.is_empty() {
            println!(
                "ran {} statement(s) on {}",
                diff.changes.len(),
                target.env()
            );
        }
        if !counts.is_empty() {
            println!("{:<40} {:>12}", "table", "rows");
            for (table, n) in &counts {
                println!("{:<40} {:>12}", table.to_string(), n);
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The tables of --data, each known to `catalog` (`schema.table`, or a table of
    /// the first app schema).
    fn tables(&self, catalog: &Catalog) -> Result<Vec<Name>> {
        let mut out = Vec::new();
        for given in &self.data {
            let name = match given.split_once('.') {
                Some((schema, table)) => Name::new(schema, table),
                None => {
                    let schema = catalog
                        .schemas
                        .keys()
                        .next()
                        .cloned()
                        .unwrap_or_else(|| "public".into());
                    Name::new(schema, given.as_str())
                }
            };
            if !catalog.tables.contains_key(&name) {
                bail!(
                    "--data {given}: {name} is not a table of the source's app schemas; nothing was changed"
                );
            }
            out.push(name);
        }
        Ok(out)
    }
}

/// Copies every row of `table` from `from` into `tx` (emptied before), the columns
/// named so that their order on either side does not matter (generated columns left
/// out), then sets the sequences its columns own to the largest value, and checks
/// both sides count the same rows. Returns the count.
async fn copy_rows(
    from: &tokio_postgres::Client,
    tx: &tokio_postgres::Transaction<'_>,
    table: &Name,
    catalog: &Catalog,
) -> Result<u64> {
    let t = &catalog.tables[table];
    let columns: Vec<String> = t
        .columns
        .iter()
        .filter(|c| c.generated.is_none())
        .map(|c| ident(&c.name))
        .collect();
    let list = columns.join(", ");
    let out = from
        .copy_out(&format!(
            "COPY (SELECT {list} FROM {table}) TO STDOUT (FORMAT binary)"
        ))
        .await
        .with_context(|| format!("reading the rows of {table}"))?;
    // COPY FROM writes identity columns as given, GENERATED ALWAYS or not.
    let sink = tx
        .copy_in(&format!("COPY {table} ({list}) FROM STDIN (FORMAT binary)"))
        .await
        .with_context(|| format!("writing the rows of {table}"))?;
    futures_util::pin_mut!(out);
    futures_util::pin_mut!(sink);
    while let Some(chunk) = out.next().await {
        let chunk = chunk.with_context(|| format!("reading the rows of {table}"))?;
        sink.send(chunk)
            .await
            .with_context(|| format!("writing the rows of {table}"))?;
    }
    let written = sink
        .finish()
        .await
        .with_context(|| format!("writing the rows of {table}"))?;
    let expected: i64 = from
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .with_context(|| format!("counting the rows of {table}"))?
        .get(0);
    if written != expected as u64 {
        bail!(
            "{table}: {written} row(s) written but the source counts {expected}; nothing was kept"
        );
    }
    for c in &t.columns {
        let sequence: Option<String> = tx
            .query_one(
                "SELECT pg_get_serial_sequence($1, $2)",
                &[&table.to_string(), &c.name],
            )
            .await
            .with_context(|| format!("finding the sequence of {table}.{}", c.name))?
            .get(0);
        if let Some(seq) = sequence {
            // An empty table leaves the sequence where it was.
            tx.execute(
                &format!(
                    "SELECT setval($1::text::regclass, max({col})) FROM {table} HAVING max({col}) IS NOT NULL",
                    col = ident(&c.name)
                ),
                &[&seq],
            )
            .await
            .with_context(|| format!("setting {seq} past the largest {table}.{}", c.name))?;
        }
    }
    Ok(written)
}
