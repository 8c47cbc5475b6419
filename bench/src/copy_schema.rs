//! `cargo xtask bench copy-schema`: `db copy-schema` against `pg_dump -n SCHEMA | psql
//! --single-transaction` on the same schema, each into a fresh database, side by side
//! in one run. Both are whole processes: the xtask binary `cargo xtask` runs (the dev
//! build; PLOVER_XTASK overrides) and the PostgreSQL client tools of the test server's
//! binaries. Reports medians, MB/s of the tables' size on disk and plover/pg_dump;
//! asserts nothing, but checks every copy (row counts of every table against the
//! source) so that a fast wrong copy is not a result.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use plover::ConnInfo;
use plover::testing::{TestDatabase, find_binaries};
use tokio_postgres::Client;

use crate::flags::BenchCopySchema;

const SCHEMA: &str = "shop";

impl BenchCopySchema {
    pub async fn run(self) -> Result<()> {
        let mut generated = None;
        let source_url = match &self.source_url {
            Some(url) => url.clone(),
            None => {
                let db = TestDatabase::create()
                    .await
                    .context("creating the source database")?;
                eprintln!(
                    "bench: generating about {} MB in schema {SCHEMA}...",
                    self.mb
                );
                generate(&db.client().await?, self.mb).await?;
                let url = db.url().to_owned();
                generated = Some(db);
                url
            }
        };
        let source = plover::connect(&source_url).await?;
        let (tables, bytes) = sizes(&source).await?;
        ensure!(
            !tables.is_empty(),
            "the source has no table in schema {SCHEMA}"
        );
        let xtask = crate::diff::xtask(false).map_err(|why| anyhow::anyhow!(why))?;
        let bin = find_binaries().context("finding the PostgreSQL client tools")?;
        let project =
            std::env::temp_dir().join(format!("plover-bench-copy-{}", std::process::id()));
        std::fs::create_dir_all(project.join("supabase").join("migrations"))?;
        std::fs::write(
            project.join("supabase").join("config.toml"),
            "project_id = \"bench-copy\"\n",
        )?;

        println!(
            "copy-schema: schema {SCHEMA}, {} tables, {:.1} MB on disk (tables only), {} rounds, alternating:",
            tables.len(),
            bytes as f64 / 1e6,
            self.rounds
        );
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for round in 0..self.rounds {
            // Alternate who goes first, so that neither always meets a warmer cache.
            for first in [round % 2 == 0, round % 2 != 0] {
                let target = TestDatabase::create()
                    .await
                    .context("creating a target database")?;
                let elapsed = if first {
                    let t = copy_schema(&xtask, &project, &source_url, target.url())?;
                    ours.push(t);
                    t
                } else {
                    let t = dump_restore(&bin, &source_url, target.url())?;
                    theirs.push(t);
                    t
                };
                check(&source, &target.client().await?, &tables).await?;
                eprintln!(
                    "bench: round {}: {} {:.1} s",
                    round + 1,
                    if first { "plover" } else { "pg_dump | psql" },
                    elapsed.as_secs_f64()
                );
            }
        }
        let _ = std::fs::remove_dir_all(&project);
        drop(generated);
        let (o, t) = (median(ours), median(theirs));
        let mbps = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
        println!(
            "  {:<46} median {:7.2} s  {:7.1} MB/s",
            "plover db copy-schema (xtask binary)",
            o.as_secs_f64(),
            mbps(o)
        );
        println!(
            "  {:<46} median {:7.2} s  {:7.1} MB/s",
            "pg_dump -n | psql --single-transaction",
            t.as_secs_f64(),
            mbps(t)
        );
        println!(
            "  plover/pg_dump {:.2}x (median time; below 1 is faster)",
            o.as_secs_f64() / t.as_secs_f64()
        );
        Ok(())
    }
}

/// Fills schema `shop` with about `mb` MB of tables: customers, orders (an enum
/// column, so that table goes as text), events (jsonb, uuid), with keys, foreign keys
/// and indexes.
async fn generate(client: &Client, mb: u32) -> Result<()> {
    // One customer, 3 orders and 4.5 events take about 1,295 bytes of table (measured
    // on PostgreSQL 15: 1,295 MB for a million customers).
    let unit = (f64::from(mb) * 1e6 / 1295.0).max(1.0) as i64;
    let (customers, orders, events) = (unit, 3 * unit, unit * 9 / 2);
    client
        .batch_execute(&format!(
            "create schema {SCHEMA};
create type {SCHEMA}.status as enum ('new', 'paid', 'shipped', 'cancelled');
create table {SCHEMA}.customers (id bigserial primary key, email text not null unique, name text, created_at timestamptz not null default now());
create table {SCHEMA}.orders (id bigint generated always as identity primary key, customer_id bigint not null references {SCHEMA}.customers, amount numeric(12,2) not null, status {SCHEMA}.status not null, note text, created_at timestamptz not null, meta jsonb);
create table {SCHEMA}.events (id bigserial primary key, order_id bigint references {SCHEMA}.orders, kind text not null, at timestamptz not null, payload jsonb, ref uuid);
create index on {SCHEMA}.orders (customer_id);
create index on {SCHEMA}.events (order_id);
insert into {SCHEMA}.customers (email, name, created_at)
  select 'user' || g || '@example.com', 'Customer ' || g, now() - g * interval '1 minute' from generate_series(1, {customers}) g;
insert into {SCHEMA}.orders (customer_id, amount, status, note, created_at, meta)
  select 1 + (g % {customers}), (g % 100000) / 100.0, (array['new','paid','shipped','cancelled'])[1 + g % 4]::{SCHEMA}.status,
         'order note number ' || g, now() - g * interval '1 second', jsonb_build_object('sku', 'SKU-' || (g % 5000), 'qty', g % 7)
    from generate_series(1, {orders}) g;
insert into {SCHEMA}.events (order_id, kind, at, payload, ref)
  select 1 + (g % {orders}), (array['created','paid','packed','shipped','delivered'])[1 + g % 5], now() - g * interval '1 second',
         jsonb_build_object('by', 'worker-' || (g % 50), 'attempt', g % 3, 'message', repeat('x', 40)), md5(g::text)::uuid
    from generate_series(1, {events}) g;
analyze;"
        ))
        .await
        .context("generating the source schema")?;
    Ok(())
}

/// The schema's tables with their row counts, and their total size on disk.
async fn sizes(client: &Client) -> Result<(Vec<(String, i64)>, i64)> {
    let rows = client
        .query(
            "SELECT c.relname::text, pg_table_size(c.oid) FROM pg_class c
              WHERE c.relnamespace = to_regnamespace($1) AND c.relkind = 'r' ORDER BY 1",
            &[&SCHEMA],
        )
        .await
        .context("listing the source's tables")?;
    let mut tables = Vec::new();
    let mut bytes = 0;
    for r in rows {
        let name: String = r.get(0);
        bytes += r.get::<_, i64>(1);
        let count: i64 = client
            .query_one(&format!("SELECT count(*) FROM {SCHEMA}.{name}"), &[])
            .await?
            .get(0);
        tables.push((name, count));
    }
    Ok((tables, bytes))
}

/// Every table of the copy holds as many rows as the source's.
async fn check(_source: &Client, target: &Client, tables: &[(String, i64)]) -> Result<()> {
    for (name, expected) in tables {
        let count: i64 = target
            .query_one(&format!("SELECT count(*) FROM {SCHEMA}.{name}"), &[])
            .await
            .with_context(|| format!("counting {SCHEMA}.{name} in the copy"))?
            .get(0);
        ensure!(
            count == *expected,
            "{SCHEMA}.{name}: {count} rows in the copy, {expected} in the source"
        );
    }
    Ok(())
}

fn copy_schema(
    xtask: &std::path::Path,
    project: &std::path::Path,
    from: &str,
    to: &str,
) -> Result<Duration> {
    let start = Instant::now();
    let out = Command::new(xtask)
        .args([
            "db",
            "copy-schema",
            "--from",
            from,
            "--to",
            to,
            "--schema",
            SCHEMA,
            "--confirm",
            "given",
            "--workdir",
        ])
        .arg(project)
        .stdin(Stdio::null())
        .output()
        .context("running xtask db copy-schema")?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        bail!(
            "db copy-schema failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}

/// `pg_dump -n SCHEMA` piped into `psql --single-transaction`, connections through
/// libpq's environment.
fn dump_restore(bin: &std::path::Path, from: &str, to: &str) -> Result<Duration> {
    let env = |url: &str| -> Result<Vec<(&'static str, std::ffi::OsString)>> {
        Ok(ConnInfo::parse(url)?.libpq_env())
    };
    let start = Instant::now();
    let mut dump = Command::new(bin.join("pg_dump"))
        .args(["--schema", SCHEMA])
        .envs(env(from)?)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting pg_dump")?;
    let pipe = dump.stdout.take().context("pg_dump's stdout")?;
    let restore = Command::new(bin.join("psql"))
        .args([
            "--quiet",
            "--no-psqlrc",
            "--single-transaction",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .envs(env(to)?)
        .stdin(pipe)
        .stdout(Stdio::null())
        .output()
        .context("running psql")?;
    let dumped = dump.wait().context("waiting for pg_dump")?;
    let elapsed = start.elapsed();
    ensure!(dumped.success(), "pg_dump failed");
    ensure!(
        restore.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&restore.stderr)
    );
    Ok(elapsed)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}
