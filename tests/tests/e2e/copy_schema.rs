//! `db copy-schema` between two real databases: objects, rows, sequences, grants and
//! policies under a new name; a copy that fails midway, or is killed midway, keeps
//! nothing on the target and never changes the source.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use plover_tests::{Run, Workdir, binary, database, snapshot, strings};

/// A schema with what an app's schema has: an enum (and an array of it, copied as
/// text), serial and identity keys, a generated column, a foreign key, an index, a
/// view, a function, grants to Supabase's roles and an RLS policy on `auth.uid()`.
const BILLING: &str = "
create schema billing;
create type billing.kind as enum ('card', 'bank');
create table billing.accounts (
    id bigserial primary key,
    owner uuid not null default auth.uid(),
    kinds billing.kind[] not null,
    note text
);
create table billing.lines (
    id int generated always as identity primary key,
    account bigint not null references billing.accounts,
    amount numeric(12, 2) not null,
    doubled numeric generated always as (amount * 2) stored,
    at timestamptz not null default now()
);
create index lines_account on billing.lines (account);
create view billing.totals as select account, sum(amount) as total from billing.lines group by account;
create function billing.total(a bigint) returns numeric language sql stable
    as 'select sum(amount) from billing.lines where account = a';
grant usage on schema billing to authenticated;
grant select on billing.accounts, billing.lines to authenticated;
alter table billing.accounts enable row level security;
create policy own on billing.accounts for select to authenticated using (owner = auth.uid());
insert into billing.accounts (owner, kinds, note)
select gen_random_uuid(), array['card', 'bank']::billing.kind[], 'account ' || g
  from generate_series(1, 300) g;
insert into billing.lines (account, amount, at)
select 1 + g % 300, g / 7.0, timestamptz '2025-01-01' + g * interval '1 minute'
  from generate_series(1, 2000) g;
-- A sequence behind the largest key (rows inserted with explicit ids): the copy sets
-- it past them.
insert into billing.accounts (id, owner, kinds) values (5000, gen_random_uuid(), '{card}');
";

const ACCOUNTS: &str =
    "SELECT string_agg(format('%s %s %s %s', id, owner, kinds, note), ';' ORDER BY id) FROM ";
const LINES: &str = "SELECT string_agg(format('%s %s %s %s %s', id, account, amount, doubled, at), ';' ORDER BY id) FROM ";

/// `db copy-schema --from FROM --to TO --schema SCHEMA EXTRA…` with only `vars`
/// (`--confirm local` for `local`, which is DATABASE_URL here).
fn copy(
    w: &Workdir,
    vars: &[(&str, &str)],
    (from, to): (&str, &str),
    schema: &str,
    extra: &[&str],
) -> Result<Run> {
    let mut args = vec![
        "copy-schema",
        "--from",
        from,
        "--to",
        to,
        "--schema",
        schema,
    ];
    if to == "local" {
        args.extend_from_slice(&["--confirm", "local"]);
    }
    args.extend_from_slice(extra);
    w.db(&args, vars, None)
}

async fn one(client: &tokio_postgres::Client, sql: &str) -> Result<String> {
    Ok(strings(client, sql)
        .await?
        .into_iter()
        .next()
        .unwrap_or_default())
}

/// billing on prod becomes billing_v2 on local, where a schema billing of local's own
/// stays as it was; run again, refused.
#[tokio::test]
async fn copy_schema_copies_objects_rows_sequences_grants_under_a_new_name() -> Result<()> {
    let (src, src_url) = database().await?;
    let (dst, dst_url) = database().await?;
    let source = src.client().await?;
    let target = dst.client().await?;
    source.batch_execute(BILLING).await?;
    target
        .batch_execute("create schema billing; create table billing.own (id int); insert into billing.own values (7);")
        .await?;
    let source_before = snapshot(&source).await?;
    let w = Workdir::new()?;
    let vars = [
        ("PROD_DATABASE_URL", src_url.as_str()),
        ("DATABASE_URL", dst_url.as_str()),
    ];

    let run = copy(
        &w,
        &vars,
        ("prod", "local"),
        "billing:billing_v2",
        &["--dry-run"],
    )?
    .expect(0)?;
    assert!(run.stdout.contains("to copy: 2 table(s)"), "{run}");
    assert!(run.stdout.contains("dry run: nothing was changed"), "{run}");
    let missing: bool = target
        .query_one("SELECT to_regnamespace('billing_v2') IS NULL", &[])
        .await?
        .get(0);
    assert!(missing, "a dry run created the schema");

    let run = copy(&w, &vars, ("prod", "local"), "billing:billing_v2", &[])?.expect(0)?;
    assert!(
        run.stdout.contains("copied billing.accounts: 301 row(s)"),
        "{run}"
    );
    assert!(
        run.stdout.contains("(text, "),
        "an enum array goes as text: {run}"
    );
    assert!(
        run.stdout.contains("copied billing.lines: 2000 row(s)"),
        "{run}"
    );
    assert!(
        run.stdout.contains("(binary, "),
        "built-in types go as binary: {run}"
    );
    assert!(
        run.stdout
            .contains("row counts: equal on both sides for every table"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("billing_v2.total(a bigint) names the schema billing"),
        "{run}"
    );

    // The rows, as the source has them (generated columns computed again).
    for (query, table) in [(ACCOUNTS, "accounts"), (LINES, "lines")] {
        assert_eq!(
            one(&target, &format!("{query} billing_v2.{table}")).await?,
            one(&source, &format!("{query} billing.{table}")).await?,
            "{table}"
        );
    }
    // Sequences: past the largest key, and as the source's for the identity.
    let next = strings(
        &target,
        "SELECT nextval('billing_v2.accounts_id_seq')::text UNION ALL SELECT nextval('billing_v2.lines_id_seq')::text",
    )
    .await?;
    assert_eq!(next, ["5001", "2001"]);
    // Objects, grants, the policy, the foreign key (renamed with the schema).
    let objects = strings(
        &target,
        "SELECT o FROM (SELECT c.relname::text || ' ' || c.relkind::text AS o FROM pg_class c WHERE c.relnamespace = 'billing_v2'::regnamespace) s ORDER BY o COLLATE \"C\"",
    )
    .await?;
    assert_eq!(
        objects,
        [
            "accounts r",
            "accounts_id_seq S",
            "accounts_pkey i",
            "lines r",
            "lines_account i",
            "lines_id_seq S",
            "lines_pkey i",
            "totals v",
        ]
    );
    let grants = strings(
        &target,
        "SELECT table_name || ' ' || privilege_type FROM information_schema.role_table_grants WHERE table_schema = 'billing_v2' AND grantee = 'authenticated' ORDER BY 1",
    )
    .await?;
    assert_eq!(grants, ["accounts SELECT", "lines SELECT"]);
    let policy = strings(
        &target,
        "SELECT policyname || ' ' || qual FROM pg_policies WHERE schemaname = 'billing_v2'",
    )
    .await?;
    assert_eq!(policy, ["own (owner = auth.uid())"]);
    let fk = strings(
        &target,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'billing_v2.lines'::regclass AND contype = 'f'",
    )
    .await?;
    assert_eq!(
        fk,
        ["FOREIGN KEY (account) REFERENCES billing_v2.accounts(id)"]
    );
    // The target's own schema billing is as it was; the source did not change.
    assert_eq!(
        strings(&target, "SELECT id::text FROM billing.own").await?,
        ["7"]
    );
    assert_eq!(snapshot(&source).await?, source_before);

    // Again: billing_v2 exists now, so nothing happens.
    let target_before = snapshot(&target).await?;
    let run = copy(&w, &vars, ("prod", "local"), "billing:billing_v2", &[])?.expect(2)?;
    assert!(
        run.stderr.contains("already has a schema billing_v2"),
        "{run}"
    );
    assert_eq!(snapshot(&target).await?, target_before);

    // A URL holding a password is refused, and the password never printed.
    let run = copy(&w, &vars, (&src_url, "local"), "billing:billing_v4", &[])?.expect(2)?;
    assert!(run.stderr.contains("must not hold a password"), "{run}");

    // Like reset: a target other than the local development database needs its name.
    let run = w
        .db(
            &[
                "copy-schema",
                "--from",
                "prod",
                "--to",
                "local",
                "--schema",
                "billing:billing_v5",
            ],
            &vars,
            None,
        )?
        .expect(2)?;
    assert!(run.stderr.contains("--confirm local"), "{run}");

    // A protected target needs its name.
    let protected = [
        ("PROD_DATABASE_URL", dst_url.as_str()),
        ("STAGING_DATABASE_URL", src_url.as_str()),
    ];
    let run = copy(
        &w,
        &protected,
        ("staging", "prod"),
        "billing:billing_v3",
        &[],
    )?
    .expect(2)?;
    assert!(run.stderr.contains("--confirm prod"), "{run}");
    assert_eq!(snapshot(&target).await?, target_before);
    Ok(())
}

/// The target lacks what a foreign key of the schema references: the post-data
/// section fails after every row was copied; the error names pg_dump's line, and
/// nothing of the copy is kept.
#[tokio::test]
async fn a_copy_that_fails_midway_keeps_nothing() -> Result<()> {
    let (src, src_url) = database().await?;
    let (dst, dst_url) = database().await?;
    let source = src.client().await?;
    let target = dst.client().await?;
    source
        .batch_execute(&format!(
            "create table public.currencies (code text primary key); insert into public.currencies values ('EUR');
             {BILLING}
             alter table billing.lines add column currency text not null default 'EUR' references public.currencies;"
        ))
        .await?;
    let (source_before, target_before) = (snapshot(&source).await?, snapshot(&target).await?);
    let w = Workdir::new()?;
    let vars = [
        ("PROD_DATABASE_URL", src_url.as_str()),
        ("DATABASE_URL", dst_url.as_str()),
    ];
    let run = copy(&w, &vars, ("prod", "local"), "billing", &[])?.expect(2)?;
    assert!(
        run.stdout.contains("copied billing.lines: 2000 row(s)"),
        "{run}"
    );
    assert!(
        run.stderr.contains("pg_dump's post-data section, line ")
            && run.stderr.contains("nothing was kept")
            && run.stderr.contains("currencies"),
        "{run}"
    );
    assert_eq!(snapshot(&target).await?, target_before);
    assert_eq!(snapshot(&source).await?, source_before);
    Ok(())
}

/// The copy is killed (SIGKILL) while it waits, after every row was sent, for a lock
/// another session holds on the target: nothing is kept, the source is unchanged,
/// and the same copy then runs to the end.
#[tokio::test]
async fn a_killed_copy_keeps_nothing_and_runs_again() -> Result<()> {
    let (src, src_url) = database().await?;
    let (dst, dst_url) = database().await?;
    let source = src.client().await?;
    let mut target = dst.client().await?;
    let both = "create table public.currencies (code text primary key); insert into public.currencies values ('EUR');";
    source
        .batch_execute(&format!(
            "{both}
             {BILLING}
             alter table billing.lines add column currency text not null default 'EUR' references public.currencies;"
        ))
        .await?;
    target.batch_execute(both).await?;
    let (source_before, target_before) = (snapshot(&source).await?, snapshot(&target).await?);

    // The foreign key to public.currencies (post-data) waits for this lock.
    let holder = target.transaction().await?;
    holder
        .batch_execute("LOCK TABLE public.currencies IN ACCESS EXCLUSIVE MODE")
        .await?;
    let w = Workdir::new()?;
    let mut cmd = Command::new(binary("xtask")?);
    cmd.args([
        "db",
        "copy-schema",
        "--from",
        "prod",
        "--to",
        "local",
        "--schema",
        "billing",
        "--confirm",
        "local",
        "--workdir",
    ])
    .arg(w.path())
    .env("PROD_DATABASE_URL", &src_url)
    .env("DATABASE_URL", &dst_url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.contains("DATABASE_URL") || k.starts_with("SUPABASE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("PROD_DATABASE_URL", &src_url)
        .env("DATABASE_URL", &dst_url);
    let mut child = cmd.spawn().context("starting xtask db copy-schema")?;
    let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
    let mut seen = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line)? == 0 {
            let _ = child.wait();
            bail!("copy-schema ended before copying billing.lines:\n{seen}");
        }
        seen.push_str(&line);
        if line.starts_with("copied billing.lines: 2000 row(s)") {
            break;
        }
    }
    // Every row is in the target's transaction; wait until it waits for the lock.
    let watcher = dst.client().await?;
    loop {
        let waiting: bool = watcher
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'plover copy-schema' AND wait_event_type = 'Lock')",
                &[],
            )
            .await?
            .get(0);
        if waiting {
            break;
        }
        tokio::task::yield_now().await;
    }
    child.kill().context("killing xtask db copy-schema")?;
    let status = child.wait()?;
    assert!(!status.success(), "copy-schema was not killed");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest)?;
    assert!(!rest.contains("copied schema billing"), "{seen}{rest}");
    holder.rollback().await?;

    assert_eq!(snapshot(&target).await?, target_before);
    assert_eq!(snapshot(&source).await?, source_before);
    // The same copy, run again, completes (the killed one's transaction is gone).
    let vars = [
        ("PROD_DATABASE_URL", src_url.as_str()),
        ("DATABASE_URL", dst_url.as_str()),
    ];
    let run = copy(&w, &vars, ("prod", "local"), "billing", &[])?.expect(0)?;
    assert!(run.stdout.contains("copied schema billing"), "{run}");
    assert_eq!(
        one(&target, &format!("{LINES} billing.lines")).await?,
        one(&source, &format!("{LINES} billing.lines")).await?
    );
    Ok(())
}
