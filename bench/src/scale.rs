//! `cargo xtask bench diff --scale`: the "plan past one machine" size, a
//! schema of 1,000 tables (row level security on), 5,000 indexes, 1,000 policies and
//! 1,000 functions. Times `schema::inspect` of it and `schema::diff` against itself
//! and against an empty database (the whole schema as a script), per round; then
//! applies that script to the empty database once and checks the diff back is empty,
//! so the figures are of a diff that works.
//!
//! What it must not do: assert a timing (it reports).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use plover::schema;
use plover::testing::apply_supabase_shim;
use serde_json::json;

use crate::apply::{Databases, admin_and_version, fmt_ms, median, ms};

/// The schema: per table, 5 indexes (plain, partial, expression, descending, two
/// columns), RLS and a policy, and a SQL function.
const LARGE: &str = "DO $$
BEGIN
  FOR i IN 1..1000 LOOP
    EXECUTE format('CREATE TABLE public.t%s (id bigint PRIMARY KEY, owner uuid, a int, b text, c date, d numeric)', i);
    EXECUTE format('CREATE INDEX t%s_owner_idx ON public.t%s (owner)', i, i);
    EXECUTE format('CREATE INDEX t%s_a_idx ON public.t%s (a) WHERE a > 0', i, i);
    EXECUTE format('CREATE INDEX t%s_b_idx ON public.t%s (lower(b))', i, i);
    EXECUTE format('CREATE INDEX t%s_c_idx ON public.t%s (c DESC)', i, i);
    EXECUTE format('CREATE INDEX t%s_d_idx ON public.t%s (d, a)', i, i);
    EXECUTE format('ALTER TABLE public.t%s ENABLE ROW LEVEL SECURITY', i);
    EXECUTE format('CREATE POLICY t%s_own ON public.t%s FOR SELECT TO authenticated USING (owner = (SELECT auth.uid()))', i, i);
    EXECUTE format('CREATE FUNCTION public.f%s(x int) RETURNS int LANGUAGE sql IMMUTABLE AS ''SELECT x + %s''', i, i);
  END LOOP;
END $$;";

/// Runs the scale measurement, `rounds` times.
pub async fn run(rounds: u32, json_out: bool) -> Result<()> {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a dev build and plover is not optimised in it; \
             `cargo xtask bench diff --scale` builds the bench in release for figures worth quoting"
        );
    }
    let (server, test_server) = crate::apply::shared_servers().await?;
    let (_admin, version) = admin_and_version(&server.url("postgres")).await?;
    let schemas = vec!["public".to_owned()];
    let mut dbs = Databases::new(&test_server);
    let pid = std::process::id();
    let result = async {
        let a = dbs.create(&format!("bench_{pid}_scale_a")).await?;
        let b = dbs.create(&format!("bench_{pid}_scale_b")).await?;
        let ca = plover::connect(&server.url(&a)).await?;
        let cb = plover::connect(&server.url(&b)).await?;
        for c in [&ca, &cb] {
            apply_supabase_shim(c).await?;
        }
        let started = Instant::now();
        ca.batch_execute(LARGE).await.context("building the large schema")?;
        eprintln!("scale: built 1,000 tables in {} ms", fmt_ms(started.elapsed()));

        let (mut inspect, mut same, mut whole) = (Vec::new(), Vec::new(), Vec::new());
        let mut statements = 0;
        for round in 0..rounds {
            let t = Instant::now();
            let big = schema::inspect(&ca, &schemas).await?;
            inspect.push(t.elapsed());
            let t = Instant::now();
            let d = schema::diff(&big, &big);
            same.push(t.elapsed());
            ensure!(d.is_empty(), "the schema differs from itself:\n{}", d.to_sql());
            let t = Instant::now();
            let empty = schema::inspect(&cb, &schemas).await?;
            let d = schema::diff(&empty, &big);
            let _ = d.to_sql();
            whole.push(t.elapsed());
            statements = d.changes.len();
            eprintln!(
                "round {}/{rounds}: inspect {} ms, diff with itself {} ms, inspect empty + diff + to_sql {} ms",
                round + 1,
                fmt_ms(inspect[inspect.len() - 1]),
                fmt_ms(same[same.len() - 1]),
                fmt_ms(whole[whole.len() - 1]),
            );
        }
        // The script works: applied to the empty database, nothing is left to do.
        let d = schema::diff(&schema::inspect(&cb, &schemas).await?, &schema::inspect(&ca, &schemas).await?);
        let t = Instant::now();
        cb.batch_execute(&d.to_sql())
            .await
            .context("applying the whole schema's diff")?;
        let applied = t.elapsed();
        let back = schema::diff(&schema::inspect(&cb, &schemas).await?, &schema::inspect(&ca, &schemas).await?);
        ensure!(back.is_empty(), "the diff back is not empty:\n{}", back.to_sql());
        Ok::<_, anyhow::Error>((inspect, same, whole, statements, applied))
    }
    .await;
    let dropped = dbs.drop_all().await;
    let (inspect, same, whole, statements, applied) = result?;
    dropped?;
    let total = median(&inspect) + median(&same);
    if json_out {
        let doc = json!({
            "optimised": !cfg!(debug_assertions),
            "server_version": version,
            "rounds": rounds,
            "tables": 1000, "indexes": 5000, "policies": 1000, "functions": 1000,
            "inspect_median_ms": ms(median(&inspect)),
            "diff_with_itself_median_ms": ms(median(&same)),
            "inspect_and_diff_median_ms": ms(total),
            "from_empty_median_ms": ms(median(&whole)),
            "from_empty_statements": statements,
            "apply_ms": ms(applied),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let build = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    println!(
        "bench diff --scale: {build} build, PostgreSQL {version} (fsync off), 1,000 tables (RLS), 5,000 indexes, 1,000 policies, 1,000 functions, medians of {rounds} rounds"
    );
    let line = |what: &str, d: Duration| println!("  {what:<52} {:>9} ms", fmt_ms(d));
    line("inspect", median(&inspect));
    line("diff against itself", median(&same));
    line("inspect + diff (target: under 1 s)", total);
    line(
        "inspect an empty database + diff to the schema + SQL",
        median(&whole),
    );
    println!(
        "  the whole schema as {statements} statements, applied in {} ms; the diff back is empty",
        fmt_ms(applied)
    );
    println!();
    println!("For a closing note:");
    println!(
        "Scale ({build} build, PostgreSQL {version}, medians of {rounds} rounds): inspect of 1,000 tables, 5,000 indexes, 1,000 policies and 1,000 functions {} ms, diff against itself {} ms (inspect + diff {} ms); from an empty database {} ms for {statements} statements, which applied and diffed back to nothing.",
        fmt_ms(median(&inspect)),
        fmt_ms(median(&same)),
        fmt_ms(total),
        fmt_ms(median(&whole)),
    );
    Ok(())
}
