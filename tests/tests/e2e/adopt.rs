//! Adopting the histories of databases migrated by the Supabase CLI, sqlx and
//! refinery: nothing re-runs, only what the other tool had not applied runs, and
//! refusals change nothing. Each other tool is simulated exactly as it writes its
//! table; refinery's own runner is driven for real.

use anyhow::{Context, Result};
use plover::{Adopt, Error};
use plover_tests::{Dir, TestDatabase, snapshot, strings};
use tokio_postgres::Client;

const A: &str = "create table a (id int primary key);\n";
const B: &str = "create table b (id int primary key, a int references a);\n";
const C: &str = "alter table b add column note text;\n";

/// The Supabase CLI's history table, as `supabase db push` creates it.
const SUPABASE_CLI_TABLE: &str = "
CREATE SCHEMA IF NOT EXISTS supabase_migrations;
CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY);
ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS statements text[];
ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS name text;";
const SUPABASE_CLI_INSERT: &str = "INSERT INTO supabase_migrations.schema_migrations (version, name, statements) VALUES ($1, $2, $3)";

/// sqlx's table, as sqlx-postgres creates it.
const SQLX_TABLE: &str = "
CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);";
/// sqlx's checksum is SHA-384 of the file's SQL.
const SQLX_INSERT: &str = "
INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
VALUES ($1, $2, $3, sha384(convert_to($4, 'UTF8')), 1234567)";

/// refinery's table, as refinery creates it without `int8-versions`.
const REFINERY_INT4_TABLE: &str = "
CREATE TABLE IF NOT EXISTS refinery_schema_history(
             version int4 PRIMARY KEY,
             name VARCHAR(255),
             applied_on VARCHAR(255),
             checksum VARCHAR(255));";
const REFINERY_INSERT: &str = "
INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
VALUES ($1, $2, '2025-01-01T00:00:00Z', '1234567890')";

/// What `supabase db push` does with each file: its SQL and its history row in one
/// (implicit) transaction.
async fn supabase_cli_push(client: &mut Client, files: &[(&str, &str)]) -> Result<()> {
    client.batch_execute(SUPABASE_CLI_TABLE).await?;
    for (file, sql) in files {
        let (version, name) = plover::parse_file_name(file).context("a Supabase file name")?;
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute(SUPABASE_CLI_INSERT, &[&version, &name, &vec![*sql]])
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// What `sqlx migrate run` does with each file: its SQL and its history row in one
/// transaction.
async fn sqlx_migrate(client: &mut Client, files: &[(&str, &str)]) -> Result<()> {
    client.batch_execute(SQLX_TABLE).await?;
    for (file, sql) in files {
        let (version, name) = plover::parse_file_name(file).context("a sqlx file name")?;
        let version: i64 = version.parse()?;
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute(
            SQLX_INSERT,
            &[&version, &name.replace('_', " "), &true, sql],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

fn versions(report: &plover::Report) -> Vec<i64> {
    report.applied.iter().map(|a| a.version).collect()
}

#[tokio::test]
async fn supabase_cli_history_is_adopted_and_nothing_reruns() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let files = [
        ("20250101000000_create_a.sql", A),
        ("20250102000000_create_b.sql", B),
    ];
    supabase_cli_push(&mut client, &files).await?;
    // Applied by the CLI from a branch whose file is gone, and a row added by hand.
    client
        .execute(
            SUPABASE_CLI_INSERT,
            &[&"20240101000000", &"old_hotfix", &vec!["select 1"]],
        )
        .await?;
    client
        .execute(
            SUPABASE_CLI_INSERT,
            &[&"manual", &"by hand", &Vec::<String>::new()],
        )
        .await?;
    let dir = Dir::with(&files)?;

    let adopted = dir
        .migrator("shop")?
        .adopt(&mut client, Adopt::Supabase)
        .await?;
    assert_eq!(adopted.adopted, [20250101000000, 20250102000000]);
    assert!(adopted.already.is_empty());
    assert_eq!(adopted.unknown, [20240101000000]);
    assert_eq!(adopted.unreadable, ["manual"]);
    let by = strings(&client, "SELECT applied_by FROM plover.migrations").await?;
    assert!(
        by.iter()
            .all(|b| b.starts_with("adopted from supabase by ")),
        "{by:?}"
    );

    // plover sees them as applied: nothing runs, nothing changes.
    let before = snapshot(&client).await?;
    let report = dir.migrator("shop")?.run(&mut client).await?;
    assert!(report.applied.is_empty(), "{:?}", report.applied);
    assert_eq!(report.already_applied, 2);
    assert_eq!(snapshot(&client).await?, before);

    // Adopting again leaves the rows alone.
    let again = dir
        .migrator("shop")?
        .adopt(&mut client, Adopt::Supabase)
        .await?;
    assert!(again.adopted.is_empty());
    assert_eq!(again.already, [20250101000000, 20250102000000]);
    assert_eq!(snapshot(&client).await?, before);

    // A new file: only it runs, and the Supabase CLI's table learns of it.
    dir.write("20250103000000_note.sql", C)?;
    let report = dir.migrator("shop")?.run(&mut client).await?;
    assert_eq!(versions(&report), [20250103000000]);
    assert_eq!(
        strings(
            &client,
            "SELECT version FROM supabase_migrations.schema_migrations ORDER BY version"
        )
        .await?,
        [
            "20240101000000",
            "20250101000000",
            "20250102000000",
            "20250103000000",
            "manual"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn sqlx_history_is_adopted_and_mirrored_for_supabase() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let files = [("1_create_a.sql", A), ("2_create_b.sql", B)];
    sqlx_migrate(&mut client, &files).await?;
    let dir = Dir::with(&files)?;
    dir.write("3_note.sql", C)?;

    let adopted = dir
        .migrator("shop")?
        .adopt(&mut client, Adopt::Sqlx)
        .await?;
    assert_eq!(adopted.adopted, [1, 2]);
    assert!(adopted.unknown.is_empty() && adopted.already.is_empty());
    assert_eq!(
        strings(
            &client,
            "SELECT version || ' ' || name || ' ' || encode(checksum, 'hex') FROM plover.migrations ORDER BY version"
        )
        .await?,
        [
            format!("1 create_a {}", dir.source()?.migrations()[0].checksum().to_hex()),
            format!("2 create_b {}", dir.source()?.migrations()[1].checksum().to_hex()),
        ],
        "plover's rows carry the local files' checksums"
    );
    // The migrator keeps the Supabase CLI's history, so adopted versions show there.
    assert_eq!(
        strings(
            &client,
            "SELECT version || ' ' || name || ' ' || array_length(statements, 1) FROM supabase_migrations.schema_migrations ORDER BY version"
        )
        .await?,
        ["1 create_a 1", "2 create_b 1"]
    );

    // The file sqlx never applied is the only one that runs.
    let report = dir.migrator("shop")?.run(&mut client).await?;
    assert_eq!(versions(&report), [3]);
    assert_eq!(report.already_applied, 2);
    Ok(())
}

#[tokio::test]
async fn failed_sqlx_migration_is_refused_and_nothing_changes() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    sqlx_migrate(&mut client, &[("1_create_a.sql", A)]).await?;
    client
        .execute(SQLX_INSERT, &[&2i64, &"create b", &false, &B])
        .await?;
    let dir = Dir::with(&[("1_create_a.sql", A), ("2_create_b.sql", B)])?;

    let before = snapshot(&client).await?;
    let e = dir
        .migrator("shop")?
        .adopt(&mut client, Adopt::Sqlx)
        .await
        .expect_err("a dirty sqlx history must be refused");
    assert!(matches!(e, Error::AdoptDirty { version: 2 }), "{e}");
    assert!(
        e.to_string()
            .starts_with("_sqlx_migrations records version 2 as failed (success = false)"),
        "{e}"
    );
    assert_eq!(
        snapshot(&client).await?,
        before,
        "the database changed: {e}"
    );
    // The lock was released on the error path.
    let key = plover::lock_key(db.name(), "shop");
    let free: bool = db
        .client()
        .await?
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await?
        .get(0);
    assert!(free, "the migration lock leaked");
    Ok(())
}

#[tokio::test]
async fn refinery_int4_history_is_adopted() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    client.batch_execute(A).await?;
    client.batch_execute(B).await?;
    client.batch_execute(REFINERY_INT4_TABLE).await?;
    for (v, name) in [(1i32, "create_a"), (2, "create_b")] {
        client.execute(REFINERY_INSERT, &[&v, &name]).await?;
    }
    let dir = Dir::with(&[
        ("1_create_a.sql", A),
        ("2_create_b.sql", B),
        ("3_note.sql", C),
    ])?;

    let adopted = plover::Migrator::new(dir.source()?)
        .app("shop")
        .adopt(&mut client, Adopt::Refinery)
        .await?;
    assert_eq!(adopted.adopted, [1, 2]);
    let by = strings(&client, "SELECT applied_by FROM plover.migrations").await?;
    assert!(
        by.iter()
            .all(|b| b.starts_with("adopted from refinery by ")),
        "{by:?}"
    );
    // Not a Supabase project and no mirror asked for: the CLI's table stays absent.
    assert_eq!(
        strings(
            &client,
            "SELECT coalesce(to_regclass('supabase_migrations.schema_migrations')::text, 'none')"
        )
        .await?,
        ["none"]
    );
    let report = plover::Migrator::new(dir.source()?)
        .app("shop")
        .run(&mut client)
        .await?;
    assert_eq!(versions(&report), [3]);
    Ok(())
}

#[tokio::test]
async fn to_refinery_runs_on_refinerys_runner_then_plover_adopts_it() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[
        ("20250101000000_create-a.sql", A),
        ("20250102000000_create b.sql", B),
    ])?;

    let migrations = plover::to_refinery(&dir.source()?)?;
    let report = refinery_core::Runner::new(&migrations)
        .run_async(&mut client)
        .await?;
    assert_eq!(report.applied_migrations().len(), 2);
    assert_eq!(
        strings(
            &client,
            "SELECT version || ' ' || name || ' ' || pg_typeof(version) FROM refinery_schema_history ORDER BY version"
        )
        .await?,
        [
            "20250101000000 create_a bigint",
            "20250102000000 create_b bigint"
        ]
    );

    let adopted = dir
        .migrator("shop")?
        .adopt(&mut client, Adopt::Refinery)
        .await?;
    assert_eq!(adopted.adopted, [20250101000000, 20250102000000]);
    let before = snapshot(&client).await?;
    assert!(
        dir.migrator("shop")?
            .run(&mut client)
            .await?
            .applied
            .is_empty()
    );
    assert_eq!(snapshot(&client).await?, before);

    // refinery's runner still agrees that everything is applied.
    let again = refinery_core::Runner::new(&plover::to_refinery(&dir.source()?)?)
        .run_async(&mut client)
        .await?;
    assert!(again.applied_migrations().is_empty());

    // A no-transaction file cannot be handed to refinery.
    dir.write(
        "20250103000000_index.sql",
        "-- plover:no-transaction\ncreate index concurrently b_a on b (a);\n",
    )?;
    let e = plover::to_refinery(&dir.source()?).unwrap_err();
    assert!(matches!(e, Error::NoTransactionInRefinery { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("20250103000000_index.sql: is marked"),
        "{e}"
    );
    Ok(())
}

#[tokio::test]
async fn missing_history_table_is_a_clear_error() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[("1_create_a.sql", A)])?;
    let before = snapshot(&client).await?;
    for (from, table) in [
        (Adopt::Supabase, "supabase_migrations.schema_migrations"),
        (Adopt::Sqlx, "_sqlx_migrations"),
        (Adopt::Refinery, "refinery_schema_history"),
    ] {
        let e = dir
            .migrator("shop")?
            .adopt(&mut client, from)
            .await
            .expect_err("no history table to adopt");
        assert!(matches!(e, Error::AdoptTableMissing { .. }), "{e}");
        assert!(
            e.to_string()
                .contains(&format!("table {table} does not exist in this database")),
            "{e}"
        );
    }
    assert_eq!(snapshot(&client).await?, before);
    Ok(())
}

#[tokio::test]
async fn history_without_any_local_file_is_refused() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    sqlx_migrate(
        &mut client,
        &[("7_x.sql", "select 1;"), ("8_y.sql", "select 1;")],
    )
    .await?;
    let dir = Dir::with(&[("1_create_a.sql", A)])?;
    let before = snapshot(&client).await?;
    let e = dir
        .migrator("shop")?
        .adopt(&mut client, Adopt::Sqlx)
        .await
        .expect_err("nothing matches: the wrong directory");
    assert_eq!(
        e.to_string(),
        "_sqlx_migrations records 2 versions (7, 8) but none has a local migration file, so nothing was adopted; point the migrator at the migration directory sqlx applied"
    );
    assert_eq!(snapshot(&client).await?, before);

    // An empty history adopts nothing and is fine.
    client.batch_execute("DELETE FROM _sqlx_migrations").await?;
    let adopted = dir
        .migrator("shop")?
        .adopt(&mut client, Adopt::Sqlx)
        .await?;
    assert_eq!(adopted, plover::Adopted::default());
    Ok(())
}
