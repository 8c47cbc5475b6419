//! The engine against a real server: plan policies, refusals that change nothing,
//! no-transaction files, killed connections, locks, several apps, Supabase's history.

use std::time::Duration;

use anyhow::Result;
use plover::{Error, Missing, OutOfOrder, Repair, TransactionMode};
use plover_tests::{Dir, TestDatabase, assert_supabase_history_agrees, refused, snapshot, strings};

const A: &str = "create table a (id int primary key);\n";
const B: &str = "create table b (id int primary key, a int references a);\n";
const C: &str = "alter table b add column note text;\n";

#[tokio::test]
async fn applies_in_order_once_and_reports() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[("1_a.sql", A), ("2_b.sql", B)])?;
    let m = dir.migrator("shop")?;

    let report = m.run(&mut client).await?;
    let applied: Vec<i64> = report.applied.iter().map(|a| a.version).collect();
    assert_eq!(applied, [1, 2]);
    assert_eq!(report.version, Some(2));

    let again = m.run(&mut client).await?;
    assert!(again.applied.is_empty());
    assert_eq!(again.already_applied, 2);

    dir.write("3_c.sql", C)?;
    let third = dir.migrator("shop")?.run(&mut client).await?;
    assert_eq!(third.applied.len(), 1);
    assert_eq!(
        strings(
            &client,
            "SELECT version || ':' || name FROM plover.migrations ORDER BY version"
        )
        .await?,
        ["1:a", "2:b", "3:c"]
    );
    Ok(())
}

#[tokio::test]
async fn edited_deleted_and_out_of_order_files_are_refused() -> Result<()> {
    let db = TestDatabase::create().await?;
    let dir = Dir::with(&[("1_a.sql", A), ("3_c.sql", "create table c (id int);")])?;
    dir.migrator("shop")?.run(&mut db.client().await?).await?;

    dir.write("1_a.sql", "create table a (id bigint primary key);\n")?;
    let e = refused(&db, &dir.migrator("shop")?).await?.to_string();
    assert!(
        e.contains("1_a.sql: modified after it was applied (checksum recorded "),
        "{e}"
    );
    assert!(e.contains("nothing was applied"), "{e}");
    dir.write("1_a.sql", A)?;

    dir.remove("3_c.sql")?;
    dir.write("4_d.sql", "create table d (id int);")?;
    let e = refused(&db, &dir.migrator("shop")?).await?.to_string();
    assert!(
        e.contains("version 3 (c) is applied but its file is missing"),
        "{e}"
    );
    dir.remove("4_d.sql")?;
    let allowed = plover::Migrator::new(dir.source()?)
        .app("shop")
        .missing(Missing::Allow);
    assert!(
        allowed
            .run(&mut db.client().await?)
            .await?
            .applied
            .is_empty()
    );
    dir.write("3_c.sql", "create table c (id int);")?;

    dir.write("2_b.sql", B)?;
    let e = refused(&db, &dir.migrator("shop")?).await?.to_string();
    assert!(
        e.contains("2_b.sql: pending but older than the newest applied version 3"),
        "{e}"
    );
    let report = dir
        .migrator("shop")?
        .out_of_order(OutOfOrder::Allow)
        .run(&mut db.client().await?)
        .await?;
    assert_eq!(report.applied.len(), 1);
    Ok(())
}

#[test]
fn bad_names_and_duplicates_fail_before_any_connection() -> Result<()> {
    let dir = Dir::with(&[("1_a.sql", A), ("2-add_b.sql", B)])?;
    let e = dir.source().unwrap_err().to_string();
    assert!(e.ends_with("2-add_b.sql: file name does not match <version>_<name>.sql (the Supabase CLI's rule, e.g. 20250101120000_add_budgets.sql); rename it"), "{e}");

    let dir = Dir::with(&[("1_a.sql", A), ("01_b.sql", B)])?;
    let e = dir.source().unwrap_err().to_string();
    assert!(
        e.contains("01_b.sql and ") && e.contains("1_a.sql share version 1"),
        "{e}"
    );
    Ok(())
}

#[tokio::test]
async fn a_rollback_is_refused_before_anything_runs() -> Result<()> {
    let db = TestDatabase::create().await?;
    let dir = Dir::with(&[
        ("1_a.sql", A),
        (
            "2_b.sql",
            "-- a function whose body has BEGIN/END is fine\n\
             create function f() returns int language plpgsql as $$ begin return 1; end $$;\n\
             create table x (id int);\n\
             rollback;\n",
        ),
    ])?;
    let e = refused(&db, &dir.migrator("shop")?).await?;
    assert!(
        matches!(e, Error::TransactionControl { line: 4, .. }),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("2_b.sql:4:1: `rollback;` in a transactional migration"),
        "{e}"
    );
    Ok(())
}

#[tokio::test]
async fn syntax_error_names_file_line_and_column_and_rolls_back() -> Result<()> {
    let db = TestDatabase::create().await?;
    let sql = "-- budgets\n\
               create table budgets (\n\
               \x20   id int primary key,\n\
               \x20   amount numeric\n\
               );\n\
               \n\
               create tabel budget_lines (id int);\n";
    let dir = Dir::with(&[("1_a.sql", A), ("2_budgets.sql", sql)])?;
    let mut client = db.client().await?;
    // 1_a applies; 2_budgets fails and leaves nothing of itself.
    let before_a = snapshot(&client).await?;
    let e = dir.migrator("shop")?.run(&mut client).await.unwrap_err();
    let Error::Migration(f) = &e else {
        panic!("expected a migration error, got {e}")
    };
    assert_eq!((f.line, f.column), (7, 8), "{e}");
    assert_eq!(f.sqlstate, "42601");
    assert_eq!(f.applied_before, [1]);
    let text = e.to_string();
    assert!(
        text.contains("2_budgets.sql:7:8: syntax error at or near \"tabel\" (SQLSTATE 42601)"),
        "{text}"
    );
    assert!(
        text.contains("7 | create tabel budget_lines (id int);"),
        "{text}"
    );
    assert_ne!(
        snapshot(&client).await?,
        before_a,
        "1_a should have applied"
    );
    let gone: bool = client
        .query_one("SELECT to_regclass('budgets') IS NULL", &[])
        .await?
        .get(0);
    assert!(
        gone,
        "the failed migration's first statement must be rolled back"
    );
    assert_eq!(
        strings(&client, "SELECT version::text FROM plover.migrations").await?,
        ["1"]
    );
    Ok(())
}

#[tokio::test]
async fn a_killed_connection_leaves_nothing_and_the_next_run_applies() -> Result<()> {
    let db = TestDatabase::create().await?;
    let dir = Dir::with(&[(
        "1_slow.sql",
        "create table slow (id int);\ninsert into slow values (1);\nselect pg_sleep(600);\n",
    )])?;
    let m = dir.migrator("shop")?;
    let mut victim = db.client().await?;
    let victim_pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    let run = tokio::spawn(async move { m.run(&mut victim).await });

    // Wait until the migration is inside pg_sleep, then kill its backend.
    let watcher = db.client().await?;
    loop {
        let sleeping: bool = watcher
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'PgSleep')",
                &[&victim_pid],
            )
            .await?
            .get(0);
        if sleeping {
            break;
        }
        tokio::task::yield_now().await;
    }
    watcher
        .query_one("SELECT pg_terminate_backend($1)", &[&victim_pid])
        .await?;
    let e = run.await?.unwrap_err();
    assert!(e.to_string().contains("1_slow.sql:3:1"), "{e}");

    let client = db.client().await?;
    let gone: bool = client
        .query_one("SELECT to_regclass('slow') IS NULL", &[])
        .await?
        .get(0);
    assert!(gone, "nothing of the killed migration may remain");
    // Even the history table, created in the first migration's transaction, is gone.
    let no_history: bool = client
        .query_one("SELECT to_regclass('plover.migrations') IS NULL", &[])
        .await?
        .get(0);
    assert!(no_history);
    // The lock died with the session.
    let key = plover::lock_key(db.name(), "shop");
    assert!(
        client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await?
            .get::<_, bool>(0)
    );
    client
        .query_one("SELECT pg_advisory_unlock($1)", &[&key])
        .await?;

    dir.write(
        "1_slow.sql",
        "create table slow (id int);\ninsert into slow values (1);\n",
    )?;
    let report = dir.migrator("shop")?.run(&mut db.client().await?).await?;
    assert_eq!(report.applied.len(), 1);
    Ok(())
}

#[tokio::test]
async fn no_transaction_files_run_statement_by_statement_and_go_dirty_midway() -> Result<()> {
    let db = TestDatabase::create().await?;
    let cic = "-- plover:no-transaction\n\
               create index concurrently if not exists t_a on t (a);\n\
               create index concurrently if not exists t_b on t (b);\n";
    let dir = Dir::with(&[
        ("1_t.sql", "create table t (a int, b int, c int);\n"),
        ("2_idx.sql", cic),
    ])?;
    let mut client = db.client().await?;
    let report = dir.migrator("shop")?.run(&mut client).await?;
    assert_eq!(report.applied.len(), 2);
    assert_eq!(
        strings(
            &client,
            "SELECT indexname::text FROM pg_indexes WHERE tablename = 't' ORDER BY 1"
        )
        .await?,
        ["t_a", "t_b"]
    );
    assert_eq!(
        strings(&client, "SELECT state || ' ' || statements_done || '/' || statements_total FROM plover.migrations WHERE version = 2").await?,
        ["applied 2/2"]
    );

    // The second statement fails: the first index stays, the row is dirty.
    dir.write(
        "3_more.sql",
        "-- plover:no-transaction\n\
         create index concurrently if not exists t_c on t (c);\n\
         create index concurrently if not exists t_d on t (no_such_column);\n",
    )?;
    let e = dir.migrator("shop")?.run(&mut client).await.unwrap_err();
    let Error::Migration(f) = &e else {
        panic!("{e}")
    };
    assert!(f.dirty && f.line == 3, "{e}");
    assert!(e.to_string().contains("recorded as dirty"), "{e}");
    assert_eq!(
        strings(&client, "SELECT state || ' ' || statements_done || '/' || statements_total FROM plover.migrations WHERE version = 3").await?,
        ["dirty 1/2"]
    );

    // The next run reports the dirty state and refuses, whatever the file says now.
    dir.write(
        "3_more.sql",
        "-- plover:no-transaction\n\
         create index concurrently if not exists t_c on t (c);\n\
         create index concurrently if not exists t_d on t (b, c);\n",
    )?;
    let e = refused(&db, &dir.migrator("shop")?).await?.to_string();
    assert!(
        e.contains("3_more.sql: a no-transaction run stopped after 1 of 2 statements"),
        "{e}"
    );
    assert!(
        e.contains("column \"no_such_column\" does not exist"),
        "{e}"
    );

    // Repaired as reverted, it runs again (its statements are idempotent).
    let m = dir.migrator("shop")?;
    m.repair(&mut client, 3, Repair::Reverted).await?;
    assert_eq!(m.run(&mut client).await?.applied.len(), 1);
    assert!(m.plan(&client).await?.is_up_to_date());
    Ok(())
}

#[tokio::test]
async fn two_apps_share_a_database_without_seeing_each_other() -> Result<()> {
    let db = TestDatabase::create().await?;
    let billing = Dir::with(&[
        (
            "20250101000000_billing.sql",
            "create schema billing; create table billing.invoices (id int);",
        ),
        (
            "20250301000000_billing_more.sql",
            "alter table billing.invoices add column total numeric;",
        ),
    ])?;
    let crm = Dir::with(&[(
        "20250201000000_crm.sql",
        "create schema crm; create table crm.contacts (id int);",
    )])?;
    let mut client = db.client().await?;
    assert_eq!(
        billing
            .migrator("billing")?
            .run(&mut client)
            .await?
            .applied
            .len(),
        2
    );
    // crm's only version is older than billing's newest: not out-of-order for crm.
    assert_eq!(
        crm.migrator("crm")?.run(&mut client).await?.applied.len(),
        1
    );
    // And billing's versions are not "missing" for crm, nor crm's for billing.
    let crm_plan = crm.migrator("crm")?;
    let plan = crm_plan.plan(&client).await?;
    assert!(plan.is_up_to_date(), "{:?}", plan.entries());
    assert!(
        billing
            .migrator("billing")?
            .run(&mut client)
            .await?
            .applied
            .is_empty()
    );
    assert_eq!(
        strings(
            &client,
            "SELECT app || ' ' || version FROM plover.migrations ORDER BY app, version"
        )
        .await?,
        [
            "billing 20250101000000",
            "billing 20250301000000",
            "crm 20250201000000"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn supabase_history_holds_the_same_versions() -> Result<()> {
    let db = TestDatabase::create().await?;
    let dir = Dir::with(&[
        ("20250101000000_a.sql", A),
        (
            "20250102000000_b.sql",
            "-- two statements\ncreate table b (id int);\ncreate index on b (id);\n",
        ),
    ])?;
    let mut client = db.client().await?;
    dir.migrator("shop")?.run(&mut client).await?;
    assert_eq!(
        strings(&client, "SELECT version || ' ' || name || ' ' || array_length(statements, 1) FROM supabase_migrations.schema_migrations ORDER BY version").await?,
        ["20250101000000 a 1", "20250102000000 b 2"]
    );
    assert_supabase_history_agrees(&client).await?;
    // Off means off.
    let db2 = TestDatabase::create().await?;
    let mut c2 = db2.client().await?;
    dir.migrator("shop")?
        .supabase_history(plover::SupabaseHistory::Off)
        .run(&mut c2)
        .await?;
    let exists: bool = c2
        .query_one(
            "SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    assert!(!exists);
    Ok(())
}

#[tokio::test]
async fn concurrent_runners_apply_each_migration_exactly_once() -> Result<()> {
    let db = TestDatabase::create().await?;
    let files: Vec<(String, String)> = (1..=20)
        .map(|i| {
            (
                format!("{i}_t{i}.sql"),
                format!("create table t{i} (id int);\n"),
            )
        })
        .collect();
    let mut refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    // CREATE INDEX CONCURRENTLY waits for every open snapshot: runners waiting for the
    // lock must not hold one, or the server breaks the wait as a deadlock.
    refs.push((
        "21_idx.sql",
        "-- plover:no-transaction\ncreate index concurrently if not exists t1_id on t1 (id);\n",
    ));
    let dir = Dir::with(&refs)?;
    let mut runs = Vec::new();
    for _ in 0..8 {
        let m = dir.migrator("shop")?;
        let mut client = db.client().await?;
        runs.push(tokio::spawn(async move { m.run(&mut client).await }));
    }
    let mut applied = 0;
    for r in runs {
        applied += r.await??.applied.len();
    }
    assert_eq!(applied, 21);
    let client = db.client().await?;
    let n: i64 = client
        .query_one("SELECT count(DISTINCT version) FROM plover.migrations", &[])
        .await?
        .get(0);
    assert_eq!(n, 21);
    Ok(())
}

#[tokio::test]
async fn lock_wait_is_bounded_and_names_the_holder() -> Result<()> {
    let db = TestDatabase::create().await?;
    let dir = Dir::with(&[("1_a.sql", A)])?;
    let holder = db.client().await?;
    let key = plover::lock_key(db.name(), "shop");
    holder
        .query_one("SELECT pg_advisory_lock($1)", &[&key])
        .await?;
    let holder_pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);

    let mut client = db.client().await?;
    let e = dir
        .migrator("shop")?
        .lock_wait(Duration::from_millis(200))
        .run(&mut client)
        .await
        .unwrap_err();
    match &e {
        Error::LockTimeout { holder, .. } => assert_eq!(*holder, Some(holder_pid)),
        other => panic!("expected a lock timeout, got {other}"),
    }
    assert!(
        e.to_string()
            .contains(&format!("held by backend pid {holder_pid}")),
        "{e}"
    );
    // lock_timeout was restored on the waiting session.
    assert_eq!(strings(&client, "SHOW lock_timeout").await?, ["0"]);
    // Another app is not blocked by this app's lock.
    dir.migrator("other")?.run(&mut client).await?;
    Ok(())
}

#[tokio::test]
async fn timeouts_apply_during_the_run_and_are_reset_after() -> Result<()> {
    let db = TestDatabase::create().await?;
    let dir = Dir::with(&[
        (
            "1_a.sql",
            "create table seen (lock_timeout text, statement_timeout text);\n",
        ),
        (
            "2_b.sql",
            "insert into seen select current_setting('lock_timeout'), current_setting('statement_timeout');\n",
        ),
        (
            "3_c.sql",
            "-- plover:no-transaction\ninsert into seen select current_setting('lock_timeout'), current_setting('statement_timeout');\n",
        ),
    ])?;
    let mut client = db.client().await?;
    dir.migrator("shop")?
        .lock_timeout(Duration::from_millis(1500))
        .statement_timeout(Some(Duration::from_secs(90)))
        .run(&mut client)
        .await?;
    assert_eq!(
        strings(
            &client,
            "SELECT lock_timeout || ' ' || statement_timeout FROM seen"
        )
        .await?,
        ["1500ms 90s", "1500ms 90s"]
    );
    assert_eq!(strings(&client, "SHOW lock_timeout").await?, ["0"]);
    assert_eq!(strings(&client, "SHOW statement_timeout").await?, ["0"]);

    // A statement_timeout that fires is a clear migration error, rolled back.
    dir.write(
        "4_slow.sql",
        "insert into seen values ('x', 'y');\nselect pg_sleep(5);\n",
    )?;
    let e = dir
        .migrator("shop")?
        .statement_timeout(Some(Duration::from_millis(50)))
        .run(&mut client)
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate(), Some("57014"), "{e}");
    assert_eq!(
        strings(&client, "SELECT count(*)::text FROM seen").await?,
        ["2"]
    );
    Ok(())
}

#[tokio::test]
async fn single_transaction_mode_is_all_or_nothing() -> Result<()> {
    let db = TestDatabase::create().await?;
    let dir = Dir::with(&[
        ("1_a.sql", A),
        ("2_b.sql", B),
        ("3_bad.sql", "select 1/0;\n"),
    ])?;
    let m = dir
        .migrator("shop")?
        .transaction_mode(TransactionMode::Single);
    let e = refused(&db, &m).await?;
    assert_eq!(e.sqlstate(), Some("22012"), "{e}");

    dir.write("3_bad.sql", "-- plover:no-transaction\nselect 1;\n")?;
    let m = dir
        .migrator("shop")?
        .transaction_mode(TransactionMode::Single);
    let e = refused(&db, &m).await?;
    assert!(matches!(e, Error::NoTransactionInSingle { .. }), "{e}");

    dir.remove("3_bad.sql")?;
    let m = dir
        .migrator("shop")?
        .transaction_mode(TransactionMode::Single);
    assert_eq!(m.run(&mut db.client().await?).await?.applied.len(), 2);
    Ok(())
}

#[tokio::test]
async fn repair_records_without_running() -> Result<()> {
    let db = TestDatabase::create().await?;
    let dir = Dir::with(&[("1_a.sql", A), ("2_b.sql", B)])?;
    let mut client = db.client().await?;
    // Adopt a database where 1_a was applied by hand.
    client.batch_execute(A).await?;
    let m = dir.migrator("shop")?;
    m.repair(&mut client, 1, Repair::Applied).await?;
    let report = m.run(&mut client).await?;
    let applied: Vec<i64> = report.applied.iter().map(|a| a.version).collect();
    assert_eq!(applied, [2]);
    assert_eq!(
        strings(
            &client,
            "SELECT version FROM supabase_migrations.schema_migrations ORDER BY 1"
        )
        .await?,
        ["1", "2"]
    );
    let e = m
        .repair(&mut client, 9, Repair::Reverted)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::NothingToRepair { version: 9, .. }),
        "{e}"
    );
    Ok(())
}

/// Transactional migrations go to the server in windows of up to 64, each window one
/// round trip: the first of a run alone (it prepares the history writes), then 59
/// more in one window, and 129 in three.
#[tokio::test]
async fn transactional_migrations_cost_one_round_trip_per_window() -> Result<()> {
    async fn round_trips(files: usize) -> Result<usize> {
        let db = TestDatabase::create().await?;
        let proxy = RoundTripProxy::start(db.url()).await?;
        let mut client = proxy.client().await?;
        let dir = Dir::new()?;
        for i in 1..=files {
            dir.write(
                &format!("{i}_t{i}.sql"),
                &format!(
                    "create table t{i} (id int primary key);\n\
                     insert into t{i} values (1), (2);\n\
                     comment on table t{i} is 'ünïcode';\n"
                ),
            )?;
        }
        let before = proxy.round_trips();
        let report = dir.migrator("shop")?.run(&mut client).await?;
        assert_eq!(report.applied.len(), files);
        Ok(proxy.round_trips() - before)
    }
    let (ten, sixty, more) = (
        round_trips(10).await?,
        round_trips(60).await?,
        round_trips(130).await?,
    );
    assert_eq!(
        (sixty - ten, more - sixty),
        (0, 2),
        "10 migrations took {ten} round trips, 60 {sixty}, 130 {more}"
    );
    Ok(())
}

/// Progress inside a window reads as without one: each migration is announced when
/// the one before it has committed, then reported applied, in order.
#[tokio::test]
async fn progress_events_follow_the_server_through_a_window() -> Result<()> {
    let db = TestDatabase::create().await?;
    let dir = Dir::new()?;
    for i in 1..=5 {
        dir.write(&format!("{i}_t{i}.sql"), &format!("create table t{i} ();"))?;
    }
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let report = dir
        .migrator("shop")?
        .on_event(move |e| {
            let line = match e {
                plover::Event::Applying { version, index, .. } => {
                    format!("applying {version} ({index}/5)")
                }
                plover::Event::Applied { version, .. } => format!("applied {version}"),
                _ => return,
            };
            log.lock().unwrap().push(line);
        })
        .run(&mut db.client().await?)
        .await?;
    assert_eq!(report.applied.len(), 5);
    let expected: Vec<String> = (1..=5)
        .flat_map(|v| [format!("applying {v} ({v}/5)"), format!("applied {v}")])
        .collect();
    assert_eq!(*seen.lock().unwrap(), expected);
    Ok(())
}

/// A migration that fails in the middle of a window: those before it are applied,
/// it and every one after it (already sent) are not, and its error names its file,
/// line and column.
#[tokio::test]
async fn a_failure_inside_a_window_applies_nothing_after_it() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let dir = Dir::new()?;
    for i in 1..=12 {
        let sql = match i {
            7 => "create table t7 ();\nselect 1 / 0;\n".to_owned(),
            _ => format!("create table t{i} ();"),
        };
        dir.write(&format!("{i}_t{i}.sql"), &sql)?;
    }
    let err = dir.migrator("shop")?.run(&mut client).await.unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("7_t7.sql:2:"), "{shown}");
    assert!(shown.contains("division by zero"), "{shown}");
    let recorded: Vec<i64> = client
        .query(
            "SELECT version FROM plover.migrations ORDER BY version",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(recorded, [1, 2, 3, 4, 5, 6]);
    let tables: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tables, ["t1", "t2", "t3", "t4", "t5", "t6"]);
    let mirrored: i64 = client
        .query_one(
            "SELECT count(*) FROM supabase_migrations.schema_migrations",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(mirrored, 6);
    // The session is idle, in no transaction.
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    let state: String = db
        .client()
        .await?
        .query_one("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .await?
        .get(0);
    assert_eq!(state, "idle");
    Ok(())
}

/// A boot with nothing to do asks one question (is the stored history digest the
/// files'?) in one round trip, however many migrations there are, and takes no lock.
#[tokio::test]
async fn a_boot_with_nothing_to_do_costs_one_round_trip() -> Result<()> {
    async fn noop_round_trips(files: usize) -> Result<usize> {
        let db = TestDatabase::create().await?;
        let dir = Dir::new()?;
        for i in 1..=files {
            dir.write(&format!("{i}_t{i}.sql"), &format!("create table t{i} ();"))?;
        }
        let first = dir.migrator("shop")?.run(&mut db.client().await?).await?;
        assert_eq!(first.applied.len(), files);
        // Held by another session: a run that took the lock would time out.
        let holder = db.client().await?;
        let database: String = holder
            .query_one("SELECT current_database()::text", &[])
            .await?
            .get(0);
        holder
            .execute(
                "SELECT pg_advisory_lock($1)",
                &[&plover::lock_key(&database, "shop")],
            )
            .await?;
        let proxy = RoundTripProxy::start(db.url()).await?;
        let mut client = proxy.client().await?;
        let before = proxy.round_trips();
        let report = dir
            .migrator("shop")?
            .lock_wait(Duration::from_millis(200))
            .run(&mut client)
            .await?;
        assert!(report.applied.is_empty());
        assert_eq!(report.already_applied, files);
        assert_eq!(report.version, Some(files as i64));
        Ok(proxy.round_trips() - before)
    }
    assert_eq!(noop_round_trips(3).await?, 1);
    assert_eq!(noop_round_trips(60).await?, 1);
    Ok(())
}

/// The stored digest never hides a change to the history: made by hand (a row
/// deleted, a checksum changed), by another tool, or by a plover from before the
/// digests (no table), the next run reads the whole history and acts on it.
#[tokio::test]
async fn a_history_changed_by_hand_is_read_again() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let dir = Dir::new()?;
    dir.write("1_a.sql", "create table if not exists a ();")?;
    dir.write("2_b.sql", "create table if not exists b ();")?;
    // plover's history alone: the Supabase CLI's would adopt a deleted row back.
    let shop = || -> Result<plover::Migrator> {
        Ok(dir
            .migrator("shop")?
            .supabase_history(plover::SupabaseHistory::Off))
    };
    shop()?.run(&mut client).await?;
    let noop = shop()?.run(&mut client).await?;
    assert_eq!((noop.applied.len(), noop.already_applied), (0, 2));

    // A row deleted by hand: the migration runs again.
    client
        .execute(
            "DELETE FROM plover.migrations WHERE app = 'shop' AND version = 2",
            &[],
        )
        .await?;
    let again = shop()?.run(&mut client).await?;
    assert_eq!(
        again.applied.iter().map(|a| a.version).collect::<Vec<_>>(),
        [2]
    );

    // A checksum changed by hand: refused as modified.
    client
        .execute(
            "UPDATE plover.migrations SET checksum = sha256('x') WHERE app = 'shop' AND version = 1",
            &[],
        )
        .await?;
    let err = shop()?.run(&mut client).await.unwrap_err();
    assert!(err.to_string().contains("1_a.sql"), "{err}");
    client
        .execute(
            "DELETE FROM plover.migrations WHERE app = 'shop' AND version = 1",
            &[],
        )
        .await?;
    let out_of_order = shop()?.out_of_order(OutOfOrder::Allow);
    assert_eq!(out_of_order.run(&mut client).await?.applied.len(), 1);

    // The whole history truncated: everything runs again.
    client.batch_execute("TRUNCATE plover.migrations").await?;
    assert_eq!(shop()?.run(&mut client).await?.applied.len(), 2);

    // A history from before the digests: the next run creates them, the one after
    // finds its digest.
    client
        .batch_execute("DROP TABLE plover.digests; DROP FUNCTION plover.forget_digest() CASCADE")
        .await?;
    let noop = shop()?.run(&mut client).await?;
    assert_eq!((noop.applied.len(), noop.already_applied), (0, 2));
    let stored: i64 = client
        .query_one(
            "SELECT count(*) FROM plover.digests WHERE app = 'shop'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(stored, 1);
    let triggers: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'plover.migrations'::regclass AND NOT tgisinternal",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(triggers, 2);
    Ok(())
}

/// One app's writes do not take another app's digest: the other's boot stays one
/// query.
#[tokio::test]
async fn another_apps_migration_keeps_this_apps_digest() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let (shop, blog) = (Dir::new()?, Dir::new()?);
    shop.write("1_shop.sql", "create table shop ();")?;
    blog.write("5_blog.sql", "create table blog ();")?;
    shop.migrator("shop")?.run(&mut client).await?;
    blog.migrator("blog")?.run(&mut client).await?;
    blog.write("6_more.sql", "create table blog_more ();")?;
    blog.migrator("blog")?.run(&mut client).await?;
    let digests: Vec<String> = client
        .query("SELECT app FROM plover.digests ORDER BY app", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(digests, ["blog", "shop"]);
    Ok(())
}

/// A TCP proxy on 127.0.0.1 to a test database's server that counts round trips: the
/// times the client sends after the server has sent.
pub(crate) struct RoundTripProxy {
    port: u16,
    config: tokio_postgres::Config,
    turns: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl RoundTripProxy {
    pub(crate) async fn start(url: &str) -> Result<RoundTripProxy> {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let config: tokio_postgres::Config = url.parse()?;
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let proxy_port = listener.local_addr()?.port();
        let turns = Arc::new(AtomicUsize::new(0));
        let counted = turns.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                    return;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let answered = Arc::new(AtomicBool::new(false));
                let (turns, answered_too) = (counted.clone(), answered.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0; 1 << 16];
                    while let Ok(n @ 1..) = read(&client_read, &mut buf).await {
                        if answered.swap(false, Ordering::SeqCst) {
                            turns.fetch_add(1, Ordering::SeqCst);
                        }
                        if write_all(&server_write, &buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let mut buf = vec![0; 1 << 16];
                    while let Ok(n @ 1..) = read(&server_read, &mut buf).await {
                        answered_too.store(true, Ordering::SeqCst);
                        if write_all(&client_write, &buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(RoundTripProxy {
            port: proxy_port,
            config,
            turns,
        })
    }

    /// A connection to the test database through the proxy.
    pub(crate) async fn client(&self) -> Result<tokio_postgres::Client> {
        let mut config = tokio_postgres::Config::new();
        config.host("127.0.0.1").port(self.port);
        if let Some(user) = self.config.get_user() {
            config.user(user);
        }
        if let Some(password) = self.config.get_password() {
            config.password(password);
        }
        if let Some(dbname) = self.config.get_dbname() {
            config.dbname(dbname);
        }
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    pub(crate) fn round_trips(&self) -> usize {
        self.turns.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn read(from: &tokio::net::tcp::OwnedReadHalf, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        from.readable().await?;
        match from.try_read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            read => return read,
        }
    }
}

async fn write_all(to: &tokio::net::tcp::OwnedWriteHalf, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        to.writable().await?;
        match to.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
