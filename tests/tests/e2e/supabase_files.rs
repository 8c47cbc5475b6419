//! Migration folders as Supabase projects write them, which the Supabase CLI accepts:
//! files wrapped in `BEGIN; … COMMIT;`, `.sql` files that are not migrations, and
//! `CREATE INDEX CONCURRENTLY` without `-- plover:no-transaction`. Through the engine
//! and through `cargo xtask db push`, against a real server.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use plover::Checksum;
use plover::{Error, Event, OutsideTransaction, TransactionMode};
use plover_tests::{
    Dir, TestDatabase, Workdir, assert_supabase_history_agrees, database, refused, snapshot,
    strings,
};

const WRAPPED: &str = "-- Written for psql: one transaction.\n\
                       \n\
                       BEGIN;\n\
                       create table notes (id int primary key);\n\
                       insert into notes values (1);\n\
                       COMMIT;\n\
                       -- done\n";

#[tokio::test]
async fn a_file_wrapped_in_begin_commit_runs_in_plovers_transaction() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[
        ("20240101000000_notes.sql", WRAPPED),
        (
            "20240102000000_more.sql",
            "start transaction;\ninsert into notes values (2);\nend transaction;\n",
        ),
    ])?;
    let report = dir.migrator("shop")?.run(&mut client).await?;
    assert_eq!(report.applied.len(), 2);
    assert_eq!(
        strings(&client, "SELECT id::text FROM notes ORDER BY id").await?,
        ["1", "2"]
    );
    assert_eq!(
        strings(
            &client,
            "SELECT version || ' ' || state || ' ' || encode(checksum, 'hex') FROM plover.migrations ORDER BY version"
        )
        .await?,
        [
            format!("20240101000000 applied {}", Checksum::of(WRAPPED.as_bytes()).to_hex()),
            format!(
                "20240102000000 applied {}",
                Checksum::of(b"start transaction;\ninsert into notes values (2);\nend transaction;\n")
                    .to_hex()
            ),
        ],
        "the checksum is over the file's bytes, wrapper included"
    );
    // The mirror holds the statements that ran: the wrapper is plover's transaction.
    assert_eq!(
        strings(
            &client,
            "SELECT array_to_string(statements, ' | ') FROM supabase_migrations.schema_migrations ORDER BY version"
        )
        .await?,
        [
            "create table notes (id int primary key); | insert into notes values (1);",
            "insert into notes values (2);",
        ]
    );
    assert_supabase_history_agrees(&client).await?;

    // The wrapper does not commit on its own: a failure leaves nothing, history included.
    dir.write(
        "20240103000000_bad.sql",
        "BEGIN;\ncreate table tags (id int);\ninsert into notes values (1);\nCOMMIT;\n",
    )?;
    let e = refused(&db, &dir.migrator("shop")?).await?;
    let Error::Migration(f) = &e else {
        panic!("{e}")
    };
    assert!(f.line == 3 && f.sqlstate == "23505" && !f.dirty, "{e}");
    Ok(())
}

#[tokio::test]
async fn rollback_savepoint_and_modes_are_still_refused_before_anything_runs() -> Result<()> {
    let db = TestDatabase::create().await?;
    for (sql, line) in [
        ("begin;\ncreate table a (id int);\nrollback;\n", 3),
        (
            "begin;\ncreate table a (id int);\nsavepoint s;\ncreate table b (id int);\ncommit;\n",
            3,
        ),
        (
            "begin isolation level serializable;\ncreate table a (id int);\ncommit;\n",
            1,
        ),
    ] {
        let dir = Dir::with(&[
            ("1_first.sql", "create table z (id int);\n"),
            ("2_x.sql", sql),
        ])?;
        let e = refused(&db, &dir.migrator("shop")?).await?;
        assert!(
            matches!(&e, Error::TransactionControl { file, line: l, .. } if file.ends_with("2_x.sql") && *l == line),
            "{sql:?}: {e}"
        );
        assert!(
            e.to_string().contains("in a transactional migration"),
            "{e}"
        );
    }
    Ok(())
}

/// Plain BEGIN/COMMIT that do not wrap the whole file, as real projects have them
/// (a block in the middle, two blocks, a stray COMMIT at the end): psql and the
/// Supabase CLI run them as written, and so does plover, statement by statement with
/// a notice, each block's `SET LOCAL` ending with it (a block acting as another
/// role, as dbdev's migrations do, does not stop plover recording its progress).
#[tokio::test]
async fn begin_commit_blocks_run_as_written_statement_by_statement_with_a_notice() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[
        (
            "20240101000000_blocks.sql",
            "create table a (id int);\nbegin;\nset local search_path = nowhere;\nset local role pg_read_all_data;\nselect count(*) from public.a;\nend;\n\
             begin;\ninsert into a values (1);\ncommit;\ninsert into a values (2);\n",
        ),
        (
            "20240102000000_stray.sql",
            "BEGIN;\ninsert into a values (3);\nCOMMIT;\ninsert into a values (4);\nCOMMIT;\n",
        ),
    ])?;
    let notices = Arc::new(Mutex::new(Vec::new()));
    let seen = notices.clone();
    let report = dir
        .migrator("shop")?
        .on_event(move |e| {
            if let Event::OwnTransactions(o) = e {
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((o.file.clone(), o.lines.clone()));
            }
        })
        .run(&mut client)
        .await?;
    assert_eq!(report.applied.len(), 2);
    assert_eq!(
        strings(&client, "SELECT id::text FROM a ORDER BY id").await?,
        ["1", "2", "3", "4"]
    );
    let notices = notices.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let lines: Vec<Vec<usize>> = notices.iter().map(|(_, l)| l.clone()).collect();
    assert_eq!(lines, [vec![2, 6, 7, 9], vec![1, 3, 5]]);
    assert!(notices[0].0.ends_with("20240101000000_blocks.sql"));
    // The mirror holds the statements that ran, as the CLI's does.
    assert_eq!(
        strings(
            &client,
            "SELECT array_to_string(statements, ' | ') FROM supabase_migrations.schema_migrations WHERE version = '20240102000000'"
        )
        .await?,
        ["BEGIN; | insert into a values (3); | COMMIT; | insert into a values (4); | COMMIT;"]
    );
    assert_supabase_history_agrees(&client).await?;

    // A failure inside a block rolls the block back; what a COMMIT committed stays,
    // and the file is dirty until repaired.
    dir.write(
        "20240103000000_half.sql",
        "begin;\ncreate table b (id int);\ncommit;\nbegin;\ncreate table c (id int);\ninsert into a values (1 / 0);\ncommit;\n",
    )?;
    let Err(e) = dir.migrator("shop")?.run(&mut client).await else {
        panic!("a division by zero was applied");
    };
    let Error::Migration(f) = &e else {
        panic!("{e}")
    };
    assert!(f.line == 6 && f.sqlstate == "22012" && f.dirty, "{e}");
    assert_eq!(
        strings(
            &client,
            "SELECT coalesce(to_regclass('b')::text, '-') || ' ' || coalesce(to_regclass('c')::text, '-')"
        )
        .await?,
        ["b -"]
    );
    // The session is usable and the lock free: the next run reports the dirty file.
    let e = refused(&db, &dir.migrator("shop")?).await?;
    assert!(e.to_string().contains("20240103000000"), "{e}");

    // A BEGIN that is never committed is refused before anything runs.
    let other = Dir::with(&[(
        "20240104000000_open.sql",
        "create table d (id int);\nbegin;\ninsert into d values (1);\n",
    )])?;
    let e = refused(&db, &other.migrator("other")?).await?;
    assert!(
        matches!(&e, Error::UnclosedTransaction { line: 2, .. }),
        "{e}"
    );
    Ok(())
}

#[tokio::test]
async fn sql_files_that_are_not_migrations_are_skipped_and_near_misses_are_errors() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[
        ("20240101000000_init.sql", "create table t (id int);\n"),
        ("seed.sql", "insert into no_such_table values (1);\n"),
        ("local_20240101_x.sql", "this is not sql;\n"),
        ("README.md", "notes\n"),
    ])?;
    let source = dir.source()?;
    let shown = |name: &str| dir.path().join(name).display().to_string();
    assert_eq!(
        source.skipped(),
        [shown("local_20240101_x.sql"), shown("seed.sql")]
    );
    let warnings: Vec<String> = source.skipped_warnings().collect();
    assert!(
        warnings[1].starts_with(&format!("skipping {}: not a migration", shown("seed.sql"))),
        "{warnings:?}"
    );
    let report = dir.migrator("shop")?.run(&mut client).await?;
    assert_eq!(report.applied.len(), 1);
    assert_eq!(
        strings(
            &client,
            "SELECT version::text FROM plover.migrations ORDER BY 1"
        )
        .await?,
        ["20240101000000"]
    );

    for near_miss in ["20240101120000-init.sql", "20240101120000.sql"] {
        dir.write(near_miss, "create table u (id int);\n")?;
        let e = dir.source().unwrap_err();
        assert!(matches!(&e, Error::InvalidFileName { file } if file.ends_with(near_miss)));
        assert!(
            e.to_string().contains(&format!(
                "{near_miss}: file name does not match <version>_<name>.sql"
            )),
            "{e}"
        );
        dir.remove(near_miss)?;
    }
    Ok(())
}

/// The index statements of a no-transaction test: `header` on line 1, then two
/// `CREATE INDEX CONCURRENTLY`, the second on a column that does not exist.
fn failing_cic(header: &str) -> String {
    format!(
        "{header}\n\
         create index concurrently t_b on t (b);\n\
         create index concurrently t_c on t (no_such_column);\n"
    )
}

/// Runs `2_idx.sql` (one good `CREATE INDEX CONCURRENTLY`), then `3_more.sql`
/// ([`failing_cic`] with `header`), on a fresh database; returns the notices sent, the
/// failure, and what the database holds after it.
async fn cic_run(header: &str) -> Result<(Vec<OutsideTransaction>, Error, String)> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[
        ("1_t.sql", "create table t (a int, b int);\n"),
        (
            "2_idx.sql",
            &format!("{header}\ncreate index concurrently t_a on t (a);\n"),
        ),
    ])?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let watched = |m: plover::Migrator| {
        let sink = sink.clone();
        m.on_event(move |e| {
            if let Event::OutsideTransaction(o) = e {
                sink.lock().unwrap().push(o.clone());
            }
        })
    };
    let report = watched(dir.migrator("shop")?).run(&mut client).await?;
    assert_eq!(report.applied.len(), 2);
    assert_eq!(
        strings(
            &client,
            "SELECT c.relname || ' valid=' || i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 't'::regclass"
        )
        .await?,
        ["t_a valid=true"]
    );
    assert_eq!(
        strings(&client, "SELECT state || ' ' || statements_done || '/' || statements_total FROM plover.migrations WHERE version = 2").await?,
        ["applied 1/1"]
    );
    assert_supabase_history_agrees(&client).await?;

    dir.write("3_more.sql", &failing_cic(header))?;
    let e = watched(dir.migrator("shop")?)
        .run(&mut client)
        .await
        .err()
        .context("the second index must fail")?;
    let state = strings(
        &client,
        "SELECT version || ' ' || state || ' ' || statements_done || '/' || statements_total || ' ' || coalesce(last_error, '') FROM plover.migrations ORDER BY version",
    )
    .await?
    .join("\n")
        + "\n"
        + &snapshot(&client).await?;
    // The dirty row blocks the next run, whatever the file says now.
    dir.write("3_more.sql", "select 1;\n")?;
    let blocked = refused(&db, &dir.migrator("shop")?).await?.to_string();
    assert!(
        blocked.contains("3_more.sql: a no-transaction run stopped after 1 of 2 statements"),
        "{blocked}"
    );
    let notices = seen.lock().unwrap().clone();
    Ok((notices, e, state))
}

#[tokio::test]
async fn create_index_concurrently_without_the_directive_runs_as_if_it_had_it() -> Result<()> {
    let (notices, e, state) = cic_run("-- indexes, built without locking writes").await?;
    let Error::Migration(f) = &e else {
        panic!("{e}")
    };
    assert!(f.dirty && f.line == 3 && f.version == 3, "{e}");
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(notices[0].file.ends_with("2_idx.sql"), "{notices:?}");
    assert_eq!(
        (notices[1].version, notices[1].line, notices[1].column),
        (3, 2, 1)
    );
    assert_eq!(notices[1].statement, "CREATE INDEX CONCURRENTLY");
    assert!(
        notices[1].to_string().ends_with(
            "3_more.sql:2:1: `CREATE INDEX CONCURRENTLY` cannot run inside a transaction block, so this file runs statement by statement with its progress recorded, as a `-- plover:no-transaction` file does (a failure midway leaves it dirty); put that directive on its first line to say so"
        ),
        "{}",
        notices[1]
    );

    // Exactly what a file with the directive leaves: the first index, a dirty row.
    let (directive_notices, directive_e, directive_state) =
        cic_run("-- plover:no-transaction").await?;
    assert!(directive_notices.is_empty(), "{directive_notices:?}");
    assert_eq!(state, directive_state);
    assert!(state.contains("3 dirty 1/2 "), "{state}");
    assert!(state.contains("t_b"), "{state}");
    let Error::Migration(g) = &directive_e else {
        panic!("{directive_e}")
    };
    assert_eq!(
        (f.line, f.column, &f.message),
        (g.line, g.column, &g.message)
    );
    Ok(())
}

#[tokio::test]
async fn a_file_that_cannot_run_in_a_transaction_is_refused_in_single_mode() -> Result<()> {
    let db = TestDatabase::create().await?;
    let dir = Dir::with(&[
        ("1_t.sql", "create table t (a int);\n"),
        ("2_idx.sql", "vacuum t;\n"),
    ])?;
    let m = dir
        .migrator("shop")?
        .transaction_mode(TransactionMode::Single);
    let e = refused(&db, &m).await?;
    assert!(
        matches!(&e, Error::NoTransactionInSingle { file } if file.ends_with("2_idx.sql")),
        "{e}"
    );
    Ok(())
}

#[tokio::test]
async fn push_warns_about_skipped_files_and_files_run_without_a_transaction() -> Result<()> {
    let (db, url) = database().await?;
    let client = db.client().await?;
    let w = Workdir::new()?;
    std::fs::write(w.migrations().join("local_20240101_x.sql"), "select 1;\n")?;
    std::fs::write(
        w.migrations().join("29990101000000_index_names.sql"),
        "-- no directive\ncreate index concurrently if not exists categories_name_idx on public.categories (name);\n",
    )?;
    let local = [("DATABASE_URL", url.as_str())];
    let warning = "warning: skipping ";
    let run = w.db(&["status"], &local, None)?.expect(0)?;
    assert!(
        run.stderr.contains(warning)
            && run.stderr.contains("local_20240101_x.sql: not a migration"),
        "{run}"
    );
    let run = w.db(&["push"], &local, None)?.expect(0)?;
    assert!(
        run.stderr.contains(warning)
            && run.stderr.contains("local_20240101_x.sql: not a migration"),
        "{run}"
    );
    assert!(
        run.stderr.contains(
            "29990101000000_index_names.sql:2:1: `CREATE INDEX CONCURRENTLY` cannot run inside a transaction block"
        ),
        "{run}"
    );
    assert!(run.stderr.contains("notice: "), "{run}");
    assert!(
        run.stdout
            .contains("applied 29990101000000  index_names  ("),
        "{run}"
    );
    assert_eq!(
        strings(
            &client,
            "SELECT i.indisvalid::text FROM pg_index i WHERE i.indexrelid = 'public.categories_name_idx'::regclass"
        )
        .await?,
        ["true"]
    );
    Ok(())
}
