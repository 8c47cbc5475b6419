//! The engine against a real server on awkward input: symlinked migrations, NUL bytes
//! and `COPY … FROM STDIN`, byte-order marks, session settings made by a migration,
//! and files renamed after they were applied.

use std::time::Duration;

use anyhow::{Context, Result};
use plover::{Error, TransactionMode};
use plover_tests::{Dir, Workdir, database, refused, strings};

#[tokio::test]
async fn symlinks_to_files_are_migrations_and_a_dangling_one_is_named() -> Result<()> {
    let (db, _) = database().await?;
    let dir = Dir::with(&[("1_a.sql", "create table a (id int);\n")])?;
    let elsewhere = tempfile::tempdir()?;
    std::fs::write(
        elsewhere.path().join("shared.sql"),
        "create table b (id int);\n",
    )?;
    std::os::unix::fs::symlink(
        elsewhere.path().join("shared.sql"),
        dir.path().join("2_b.sql"),
    )?;
    // Editors' lock files are hidden dangling links: ignored, like any hidden file.
    std::os::unix::fs::symlink("root@host.1234:1700000000", dir.path().join(".#1_a.sql"))?;

    let mut client = db.client().await?;
    let report = dir.migrator("shop")?.run(&mut client).await?;
    let applied: Vec<(i64, &str)> = report
        .applied
        .iter()
        .map(|a| (a.version, a.name.as_str()))
        .collect();
    assert_eq!(applied, [(1, "a"), (2, "b")]);
    assert_eq!(
        strings(&client, "SELECT to_regclass('public.b')::text").await?,
        ["b"]
    );

    // A link that leads nowhere stops the load, naming the link, whatever its name.
    for name in ["3_c.sql", "notes.md"] {
        let link = dir.path().join(name);
        std::os::unix::fs::symlink(elsewhere.path().join("gone.sql"), &link)?;
        let e = dir.migrator("shop").expect_err("a dangling link must fail");
        let text = e.to_string();
        assert!(
            e.downcast_ref::<Error>()
                .is_some_and(|e| matches!(e, Error::BrokenSymlink { .. })),
            "{text}"
        );
        assert!(
            text.starts_with(&format!(
                "{}: symbolic link to {} leads nowhere",
                link.display(),
                elsewhere.path().join("gone.sql").display()
            )),
            "{text}"
        );
        std::fs::remove_file(&link)?;
    }
    assert!(
        dir.migrator("shop")?
            .run(&mut client)
            .await?
            .applied
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn a_nul_byte_is_refused_before_anything_runs() -> Result<()> {
    let (db, _) = database().await?;
    let dir = Dir::with(&[
        ("1_a.sql", "create table a (id int);\n"),
        (
            "2_b.sql",
            "create table b (id int);\ninsert into b values (1);\nselect 'x\0y';\n",
        ),
    ])?;
    let e = refused(&db, &dir.migrator("shop")?).await?;
    assert!(
        matches!(
            e,
            Error::NulByte {
                line: 3,
                column: 10,
                ..
            }
        ),
        "{e}"
    );
    let text = e.to_string();
    let file = dir.path().join("2_b.sql");
    assert!(
        text.starts_with(&format!(
            "{}:3:10: NUL byte in the file, which cannot be sent to PostgreSQL",
            file.display()
        )),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn copy_from_stdin_is_refused_before_anything_runs() -> Result<()> {
    let (db, _) = database().await?;
    let dir = Dir::with(&[
        ("1_a.sql", "create table a (id int, note text);\n"),
        (
            "2_b.sql",
            "insert into a values (0, 'x');\n-- as pg_dump writes it\nCOPY public.a (id, note) FROM stdin;\n1\tone\n\\.\n",
        ),
    ])?;
    let e = refused(&db, &dir.migrator("shop")?).await?;
    let text = e.to_string();
    let file = dir.path().join("2_b.sql");
    assert!(
        text.starts_with(&format!(
            "{}:3:1: `COPY public.a (id, note) FROM stdin;` reads its rows from the client (COPY ... FROM STDIN)",
            file.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("write the rows as INSERT statements"),
        "{text}"
    );

    // In a no-transaction file too: nothing runs, no dirty row is left.
    dir.write(
        "2_b.sql",
        "-- plover:no-transaction\ninsert into a values (0, 'x');\ncopy a from STDIN;\n",
    )?;
    let e = refused(&db, &dir.migrator("shop")?).await?;
    assert!(matches!(e, Error::ClientCopy { line: 3, .. }), "{e}");

    // And its mirror image, which no migration can receive either.
    dir.write("2_b.sql", "copy (select 1) to stdout;\n")?;
    let e = refused(&db, &dir.migrator("shop")?).await?;
    assert!(e.to_string().contains("TO STDOUT"), "{e}");
    Ok(())
}

#[tokio::test]
async fn a_byte_order_mark_is_ignored_and_the_checksum_keeps_it() -> Result<()> {
    let (db, _) = database().await?;
    let dir = Dir::with(&[("1_a.sql", "\u{FEFF}create tabel a (id int);\n")])?;
    // Positions count from after the mark, as editors show them.
    let e = refused(&db, &dir.migrator("shop")?).await?;
    match &e {
        Error::Migration(f) => {
            assert_eq!((f.line, f.column), (1, 8), "{e}");
            assert!(f.message.contains("\"tabel\""), "{e}");
        }
        other => panic!("expected a migration error, got {other}"),
    }

    dir.write("1_a.sql", "\u{FEFF}create table a (id int);\n")?;
    let mut client = db.client().await?;
    dir.migrator("shop")?.run(&mut client).await?;
    let checksum: Vec<u8> = client
        .query_one(
            "SELECT checksum FROM plover.migrations WHERE version = 1",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(
        checksum,
        *plover::Checksum::of("\u{FEFF}create table a (id int);\n".as_bytes()).as_bytes()
    );
    // The history of a file applied with its mark stays valid.
    assert!(
        dir.migrator("shop")?
            .run(&mut client)
            .await?
            .applied
            .is_empty()
    );
    Ok(())
}

/// Files that record what each migration sees, then change the session.
fn session_files(no_transaction: bool) -> Vec<(&'static str, String)> {
    const SEEN: &str = "insert into seen select {n}, current_setting('search_path'), current_user::text, session_user::text, current_setting('application_name'), current_setting('lock_timeout');\n";
    let seen = |n: u8| SEEN.replace("{n}", &n.to_string());
    vec![
        (
            "1_a.sql",
            format!(
                "create schema other;\ncreate table public.seen (file int, search_path text, current_user_ text, session_user_ text, application_name text, lock_timeout text);\n{}set search_path = other;\nset application_name = 'migration';\nset lock_timeout = '9s';\nset role authenticated;\n",
                seen(1)
            ),
        ),
        (
            "2_b.sql",
            format!(
                "{}create table t2 (id int);\nset session authorization authenticated;\nset local search_path = other;\n",
                seen(2)
            ),
        ),
        (
            "3_c.sql",
            format!(
                "{}{}create table t3 (id int);\nset search_path = other;\n",
                if no_transaction {
                    "-- plover:no-transaction\n"
                } else {
                    ""
                },
                seen(3)
            ),
        ),
        ("4_d.sql", format!("{}create table t4 (id int);\n", seen(4))),
    ]
}

/// Runs the session files on a client that made settings of its own, and checks that
/// every file started from them and that the client has them back.
async fn check_fresh_sessions(mode: TransactionMode, no_transaction: bool) -> Result<()> {
    let (db, _) = database().await?;
    let files = session_files(no_transaction);
    let refs: Vec<(&str, &str)> = files.iter().map(|(f, s)| (*f, s.as_str())).collect();
    let dir = Dir::with(&refs)?;
    let mut client = db.client().await?;
    client
        // log_statement is a setting only a superuser may make.
        .batch_execute(
            "SET application_name = 'caller'; SET lock_timeout = '7s'; SET log_statement = 'ddl'",
        )
        .await?;
    let me: String = client
        .query_one("SELECT current_user::text", &[])
        .await?
        .get(0);
    let default_path: String = client
        .query_one("SELECT current_setting('search_path')", &[])
        .await?
        .get(0);

    let report = dir
        .migrator("shop")?
        .transaction_mode(mode)
        .lock_timeout(Duration::from_millis(1500))
        .run(&mut client)
        .await?;
    assert_eq!(report.applied.len(), 4);

    let expected: Vec<String> = (1..=4)
        .map(|n| format!("{n} {default_path} {me} {me} caller 1500ms"))
        .collect();
    assert_eq!(
        strings(
            &client,
            "SELECT concat_ws(' ', file, search_path, current_user_, session_user_, application_name, lock_timeout) FROM public.seen ORDER BY file"
        )
        .await?,
        expected
    );
    // Unqualified tables land in public, owned by the connection's user.
    assert_eq!(
        strings(
            &client,
            "SELECT n.nspname || '.' || c.relname || ' ' || pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname IN ('t2', 't3', 't4') ORDER BY 1"
        )
        .await?,
        [
            format!("public.t2 {me}"),
            format!("public.t3 {me}"),
            format!("public.t4 {me}")
        ]
    );
    // The client has its own settings back, and none of the migrations'.
    assert_eq!(
        strings(
            &client,
            "SELECT concat_ws(' ', current_setting('search_path'), current_user, session_user, current_setting('application_name'), current_setting('lock_timeout'), current_setting('statement_timeout'), current_setting('log_statement'))"
        )
        .await?,
        [format!("{default_path} {me} {me} caller 7s 0 ddl")]
    );
    Ok(())
}

#[tokio::test]
async fn each_migration_starts_with_the_callers_session() -> Result<()> {
    check_fresh_sessions(TransactionMode::PerMigration, false).await
}

#[tokio::test]
async fn each_migration_starts_with_the_callers_session_in_no_transaction_files() -> Result<()> {
    check_fresh_sessions(TransactionMode::PerMigration, true).await
}

#[tokio::test]
async fn each_migration_starts_with_the_callers_session_in_one_transaction() -> Result<()> {
    check_fresh_sessions(TransactionMode::Single, false).await
}

#[tokio::test]
async fn a_failed_run_hands_the_session_back_too() -> Result<()> {
    let (db, _) = database().await?;
    // A no-transaction file's settings outlive its failure on the server.
    let dir = Dir::with(&[(
        "1_a.sql",
        "-- plover:no-transaction\nset search_path = pg_temp;\nset lock_timeout = '9s';\nselect 1/0;\n",
    )])?;
    let mut client = db.client().await?;
    const SETTINGS: &str = "SELECT concat_ws(' ', current_setting('search_path'), current_user, current_setting('lock_timeout'))";
    let before = strings(&client, SETTINGS).await?;
    let e = dir.migrator("shop")?.run(&mut client).await.unwrap_err();
    assert_eq!(e.sqlstate(), Some("22012"), "{e}");
    assert_eq!(strings(&client, SETTINGS).await?, before);
    Ok(())
}

#[tokio::test]
async fn a_file_renamed_after_it_was_applied_is_a_warning_naming_both_names() -> Result<()> {
    let (db, _) = database().await?;
    let dir = Dir::with(&[
        ("1_a.sql", "create table a (id int);\n"),
        ("2_b.sql", "create table b (id int);\n"),
    ])?;
    let mut client = db.client().await?;
    let first = dir.migrator("shop")?.run(&mut client).await?;
    assert!(first.renamed.is_empty());

    std::fs::rename(dir.path().join("2_b.sql"), dir.path().join("2_add_b.sql"))?;
    dir.write("3_c.sql", "create table c (id int);\n")?;
    let report = dir.migrator("shop")?.run(&mut client).await?;
    let applied: Vec<i64> = report.applied.iter().map(|a| a.version).collect();
    assert_eq!(applied, [3], "the rename must not block the run");
    assert_eq!(report.renamed.len(), 1);
    let r = &report.renamed[0];
    assert_eq!(
        (r.version, r.recorded.as_str(), r.name.as_str()),
        (2, "b", "add_b")
    );
    let text = r.to_string();
    assert!(
        text.contains("version 2 was applied as `b` and is now named `add_b`")
            && text.contains("rename the file back to 2_b.sql"),
        "{text}"
    );
    // The history keeps the name it was applied under.
    assert_eq!(
        strings(
            &client,
            "SELECT name FROM plover.migrations WHERE version = 2"
        )
        .await?,
        ["b"]
    );
    // The read-only plan says the same.
    let m = dir.migrator("shop")?;
    assert_eq!(m.plan(&client).await?.renamed(), report.renamed);
    Ok(())
}

#[tokio::test]
async fn the_xtask_warns_about_renamed_files_and_follows_symlinks() -> Result<()> {
    let (_db, url) = database().await?;
    let w = Workdir::new()?;
    let local = [("DATABASE_URL", url.as_str())];
    w.db(&["push"], &local, None)?.expect(0)?;

    let first = w.migration_files()?[0].clone();
    let (version, name) = plover::parse_file_name(&first).context("a migration")?;
    let renamed = format!("{version}_renamed.sql");
    std::fs::rename(w.migrations().join(&first), w.migrations().join(&renamed))?;
    let warning = format!(
        "warning: {}: version {version} was applied as `{name}` and is now named `renamed`",
        w.migrations().join(&renamed).display()
    );
    let run = w.db(&["status"], &local, None)?.expect(0)?;
    assert!(run.stderr.contains(&warning), "{run}");
    assert!(
        run.stderr
            .contains(&format!("rename the file back to {first}")),
        "{run}"
    );
    let run = w.db(&["status", "--json"], &local, None)?.expect(0)?;
    let status: serde_json::Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(status["renamed"].as_array().map(Vec::len), Some(1), "{run}");
    let run = w.db(&["push"], &local, None)?.expect(0)?;
    assert!(run.stdout.contains("up to date"), "{run}");
    assert!(run.stderr.contains(&warning), "{run}");

    // A symlinked file is a migration for the xtask as for the app; a dangling one
    // stops it, named.
    let elsewhere = tempfile::tempdir()?;
    std::fs::write(
        elsewhere.path().join("notes.sql"),
        "create table notes (id int);\n",
    )?;
    std::os::unix::fs::symlink(
        elsewhere.path().join("notes.sql"),
        w.migrations().join("29990101000000_notes.sql"),
    )?;
    let run = w.db(&["status"], &local, None)?.expect(0)?;
    assert!(run.stdout.contains(", 1 pending"), "{run}");
    let link = w.migrations().join("29990101000001_gone.sql");
    std::os::unix::fs::symlink(elsewhere.path().join("gone.sql"), &link)?;
    let run = w.db(&["status"], &local, None)?.expect(2)?;
    assert!(
        run.stderr
            .contains(&format!("{}: symbolic link to ", link.display())),
        "{run}"
    );
    Ok(())
}
