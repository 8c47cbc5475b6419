//! `cargo xtask db diff`: the SQL that turns one schema into another, from
//! `plover::schema` (catalog introspection and a pure diff), with no Docker and no
//! pg_dump. Also the pieces `db pull`, `db status --drift` and `db sync` share: what
//! a side of a diff is ([`Side`]), reading its catalog ([`read_side`]), and the
//! migrations replayed into a disposable database ([`replayed`]).
//!
//! Must not: change the databases it reads (the shadow database of the migrations is
//! its own, dropped on every path); take a password from argv.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use plover::project::{Target, Vars, next_version, snake_name, utc_rfc3339, utc_version};
use plover::schema::{Catalog, Diff};
use plover::testing::{Provider, TestDatabase, Url, apply_supabase_shim};
use serde_json::json;

use super::new::newest_version;
use super::{Ctx, connect};
use crate::flags::{DbDiff, DiffFormat};

/// One side of a diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Side {
    /// The project's migrations replayed (after the Supabase baseline) into a
    /// disposable database on the local development server.
    Migrations,
    /// An environment (`local`, `staging`, `prod`, …) as every command resolves it.
    Env(String),
    /// A connection URL without a password (libpq's PGPASSWORD or ~/.pgpass give it).
    Url(String),
}

impl std::str::FromStr for Side {
    type Err = String;

    fn from_str(s: &str) -> Result<Side, String> {
        if s == "migrations" {
            return Ok(Side::Migrations);
        }
        if s.contains("://") || s.contains('=') {
            let info = plover::ConnInfo::parse(s).map_err(|e| format!("{e}"))?;
            if info.config().get_password().is_some() {
                return Err(format!(
                    "{} holds a password, which must not travel in a command line; put the URL in NAME_DATABASE_URL (in the environment or .env) and pass the environment's name, or give the password with PGPASSWORD",
                    plover::redact(s)
                ));
            }
            return Ok(Side::Url(s.to_owned()));
        }
        Ok(Side::Env(s.to_owned()))
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Side::Migrations => f.write_str("the migrations"),
            Side::Env(env) => f.write_str(env),
            Side::Url(url) => f.write_str(&plover::redact(url)),
        }
    }
}

impl DbDiff {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let schemas = ctx.project.app_schemas();
        // Parsed here, not by clap, whose error would repeat the value (a password).
        let side = |flag: &str, text: &str| -> Result<Side> {
            text.parse()
                .map_err(|e: String| anyhow::anyhow!("--{flag}: {e}"))
        };
        let to = match &self.to {
            Some(text) => side("to", text)?,
            None => Side::Env(ctx.project.choose_env(ctx.env.as_deref())?),
        };
        let from = match &self.from {
            Some(text) => side("from", text)?,
            None => Side::Migrations,
        };
        if from == to {
            bail!("--from and --to are both {from}: nothing to compare");
        }
        eprintln!(
            "comparing the schemas {} of {from} (from) and {to} (to)",
            schemas.join(", ")
        );
        let before = read_side(ctx, &from, &schemas).await?;
        let after = read_side(ctx, &to, &schemas).await?;
        let diff = plover::schema::diff(&before, &after);

        match self.format {
            DiffFormat::Json => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&to_json(&diff, &from, &to))
                        .context("writing the JSON")?
                );
            }
            DiffFormat::Sql => print!("{}", diff.to_sql()),
        }
        if let Some(name) = &self.file {
            if diff.is_empty() {
                eprintln!("no difference: no migration written");
            } else if diff.changes.is_empty() {
                eprintln!(
                    "only differences a human must write (see `-- manual:` above): no migration written"
                );
            } else {
                let path = write_diff_migration(
                    ctx,
                    name,
                    &diff,
                    &format!(
                        "`cargo xtask db diff --from {} --to {}`",
                        describe(&from),
                        describe(&to)
                    ),
                )?;
                eprintln!("wrote {}", path.display());
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// How a side is named on a command line (a URL redacted).
fn describe(side: &Side) -> String {
    match side {
        Side::Migrations => "migrations".into(),
        Side::Env(env) => env.clone(),
        Side::Url(url) => plover::redact(url),
    }
}

/// `diff` as a new migration file `<version>_<name>.sql`, its header naming where it
/// came from; returns its path.
pub(super) fn write_diff_migration(
    ctx: &Ctx,
    name: &str,
    diff: &Diff,
    origin: &str,
) -> Result<std::path::PathBuf> {
    let name = snake_name(name).with_context(|| {
        format!(
            "{name:?} has no letters or digits to name a migration after; use e.g. `add_budgets`"
        )
    })?;
    let dir = ctx.project.migrations_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let now = SystemTime::now();
    let version = next_version(utc_version(now), newest_version(&dir)?);
    let file = format!("{version}_{name}.sql");
    let text = format!(
        "-- {name}\n-- Written by {origin} at {}.\n{}",
        utc_rfc3339(now),
        diff.to_sql()
    );
    super::new::write_migration(&dir, &file, &text)
}

/// The diff for `--format json`: every statement with its hazards, the manual
/// changes, the notes and the hazard counts.
fn to_json(diff: &Diff, from: &Side, to: &Side) -> serde_json::Value {
    json!({
        "from": describe(from),
        "to": describe(to),
        "empty": diff.is_empty(),
        "statements": diff.changes.iter().map(|c| json!({
            "sql": c.sql,
            "hazards": c.hazards.iter().map(|h| json!({
                "kind": h.kind.slug(),
                "message": h.message,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "manual": diff.manual,
        "notes": diff.notes,
        "hazards": diff.hazard_counts().into_iter().map(|(k, n)| (k.slug().to_owned(), json!(n))).collect::<serde_json::Map<_, _>>(),
    })
}

/// The catalog of `side`'s `schemas`.
pub(super) async fn read_side(ctx: &Ctx, side: &Side, schemas: &[String]) -> Result<Catalog> {
    match side {
        Side::Migrations => {
            let migrator = ctx.migrator()?;
            replayed(ctx, &migrator, schemas).await
        }
        Side::Env(env) => {
            let vars = Vars::from_process_and_dotenv(ctx.project.workdir())?;
            let target = ctx.project.target(env, &vars)?;
            inspect_target(&target, schemas).await
        }
        Side::Url(url) => {
            let vars = Vars::from_pairs([("GIVEN_DATABASE_URL", url.as_str())]);
            let target = ctx.project.target("given", &vars)?;
            inspect_target(&target, schemas).await
        }
    }
}

/// The catalog of `target`'s `schemas`.
pub(super) async fn inspect_target(target: &Target, schemas: &[String]) -> Result<Catalog> {
    let client = connect(target).await?;
    plover::schema::inspect(&client, schemas)
        .await
        .with_context(|| format!("reading the schemas of {target}"))
}

/// `migrator`'s migrations applied, after the Supabase baseline, to a shadow database
/// `plover_shadow_<pid>` on the local development server (started if needed), and
/// the catalog of `schemas` there. The shadow database is dropped on every path.
pub(super) async fn replayed(
    ctx: &Ctx,
    migrator: &plover::Migrator,
    schemas: &[String],
) -> Result<Catalog> {
    Ok(replayed_probe(ctx, migrator, schemas).await?.catalog)
}

/// What a replay left in the shadow database beside the catalog.
pub(super) struct Replay {
    pub catalog: Catalog,
    /// Objects of the schemas the catalog does not model (rules, foreign tables,
    /// triggers on views, collations, operators, text search objects, statistics),
    /// each as `kind schema.name`.
    pub unmodelled: Vec<String>,
    /// Tables of the schemas that hold rows, `schema.table`.
    pub with_rows: Vec<String>,
}

/// Objects of `$1`'s schemas that `plover::schema` does not model.
const UNMODELLED: &str = "
SELECT 'rule ' || n.nspname || '.' || c.relname || '.' || r.rulename
  FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE r.rulename <> '_RETURN' AND n.nspname = ANY($1)
UNION ALL
SELECT 'foreign table ' || n.nspname || '.' || c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'f' AND n.nspname = ANY($1)
UNION ALL
SELECT 'trigger on a view ' || n.nspname || '.' || c.relname || '.' || t.tgname
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'v' AND n.nspname = ANY($1)
UNION ALL
SELECT 'collation ' || n.nspname || '.' || o.collname
  FROM pg_collation o JOIN pg_namespace n ON n.oid = o.collnamespace WHERE n.nspname = ANY($1)
UNION ALL
SELECT 'operator ' || n.nspname || '.' || o.oprname
  FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE n.nspname = ANY($1)
UNION ALL
SELECT 'text search configuration ' || n.nspname || '.' || o.cfgname
  FROM pg_ts_config o JOIN pg_namespace n ON n.oid = o.cfgnamespace WHERE n.nspname = ANY($1)
UNION ALL
SELECT 'statistics ' || n.nspname || '.' || o.stxname
  FROM pg_statistic_ext o JOIN pg_namespace n ON n.oid = o.stxnamespace WHERE n.nspname = ANY($1)
ORDER BY 1";

/// [`replayed`], with what the catalog leaves out ([`Replay`]).
pub(super) async fn replayed_probe(
    ctx: &Ctx,
    migrator: &plover::Migrator,
    schemas: &[String],
) -> Result<Replay> {
    with_replay(ctx, migrator, async |client| {
        let catalog = plover::schema::inspect(client, schemas)
            .await
            .context("reading the shadow database's schemas")?;
        let unmodelled = client
            .query(UNMODELLED, &[&schemas])
            .await
            .context("listing the shadow database's objects")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut with_rows = Vec::new();
        for name in catalog.tables.keys() {
            let some: bool = client
                .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {name})"), &[])
                .await
                .with_context(|| format!("looking for rows in {name}"))?
                .get(0);
            if some {
                with_rows.push(name.to_string());
            }
        }
        Ok(Replay {
            catalog,
            unmodelled,
            with_rows,
        })
    })
    .await
}

/// `migrator`'s migrations applied, after the Supabase baseline, to a shadow database
/// `plover_shadow_<pid>` on the local development server (started if needed), then
/// `read` on it. The shadow database is dropped on every path.
pub(super) async fn with_replay<T>(
    ctx: &Ctx,
    migrator: &plover::Migrator,
    read: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T>,
) -> Result<T> {
    with_shadow(ctx, async |client, name| {
        let bar = super::spinner(format!(
            "applying {} migration(s) to the shadow database {name}",
            migrator.source().migrations().len()
        ));
        let report = migrator.run(client).await;
        bar.finish_and_clear();
        let report = report.context("applying the migrations to the shadow database")?;
        eprintln!(
            "applied {} migration(s) to the shadow database {name}",
            report.applied.len()
        );
        read(client).await
    })
    .await
}

/// A shadow database `plover_shadow_<pid>` on the local development server (started
/// if needed) with the Supabase baseline, given to `work` with its name. It is dropped
/// on every path.
pub(super) async fn with_shadow<T>(
    ctx: &Ctx,
    work: impl AsyncFnOnce(&mut tokio_postgres::Client, &str) -> Result<T>,
) -> Result<T> {
    let admin_url = super::local_database(&ctx.sh, ctx.project.workdir()).await?;
    let server = Url::new(admin_url)
        .server()
        .await
        .context("reading the local development database's address")?;
    let name = format!("plover_shadow_{}", std::process::id());
    // A shadow of a crashed run with the same process id is dropped first.
    let shadow = TestDatabase::create_named(&server, &name)
        .await
        .with_context(|| format!("creating the shadow database {name}"))?;
    let result = async {
        let mut client = shadow
            .client()
            .await
            .context("connecting to the shadow database")?;
        apply_supabase_shim(&client)
            .await
            .context("applying the Supabase baseline to the shadow database")?;
        work(&mut client, &name).await
    }
    .await;
    if let Err(e) = shadow.close().await {
        eprintln!("warning: could not drop the shadow database {name}: {e}");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_parse_and_refuse_passwords() {
        assert_eq!("migrations".parse::<Side>(), Ok(Side::Migrations));
        assert_eq!("prod".parse::<Side>(), Ok(Side::Env("prod".into())));
        assert_eq!(
            "postgres://u@127.0.0.1:5432/db".parse::<Side>(),
            Ok(Side::Url("postgres://u@127.0.0.1:5432/db".into()))
        );
        let e = "postgres://u:s3cret@127.0.0.1/db"
            .parse::<Side>()
            .unwrap_err();
        assert!(e.contains("NAME_DATABASE_URL"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}
