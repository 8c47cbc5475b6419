//! `cargo xtask db ...` as a process: the real xtask binary against a real database,
//! in a copy of the repository's `supabase/` folder (`--workdir`). Every command's
//! output is checked for the database password.

use std::path::PathBuf;

use anyhow::{Context, Result};
use plover_tests::{
    SECRET, Workdir, database, json, normalize, snapshot, url_redactions, xtask_db,
};

#[test]
fn new_writes_monotonic_versions_and_takes_piped_sql() -> Result<()> {
    let w = Workdir::new()?;
    let before = w.migration_files()?;
    let newest: i64 = before
        .last()
        .and_then(|f| f.split('_').next())
        .context("no migrations")?
        .parse()?;

    let run = w.db(&["new", "Add Budget-Lines"], &[], None)?.expect(0)?;
    let path = PathBuf::from(run.stdout.trim());
    let file = path
        .file_name()
        .context("no file printed")?
        .to_string_lossy()
        .into_owned();
    let (version, name) = plover::parse_file_name(&file).context("bad name")?;
    assert_eq!(name, "add_budget_lines");
    assert_eq!(version.len(), 14, "{file}");
    assert!(version.parse::<i64>()? > newest, "{file}");
    assert!(path.starts_with(w.migrations()), "{}", path.display());
    let text = std::fs::read_to_string(&path)?;
    assert!(
        text.starts_with("-- add_budget_lines\n-- Created by `cargo xtask db new` at "),
        "{text}"
    );

    // A version from the future: the next one goes past it, never below.
    std::fs::write(
        w.migrations().join("29990101000000_future.sql"),
        "select 1;\n",
    )?;
    let run = w
        .db(
            &["new", "from_stdin"],
            &[],
            Some("create table piped (id int);\n"),
        )?
        .expect(0)?;
    let path = PathBuf::from(run.stdout.trim());
    assert!(path.ends_with("29990101000001_from_stdin.sql"), "{run}");
    let text = std::fs::read_to_string(&path)?;
    assert!(text.ends_with("\ncreate table piped (id int);\n"), "{text}");

    // Every file written parses as the engine reads it.
    plover::Source::from_dir(w.migrations())?;

    let files = w.migration_files()?;
    let run = w.db(&["new", "?? !"], &[], None)?.expect(2)?;
    assert!(run.stderr.contains("has no letters or digits"), "{run}");
    let run = w
        .db(
            &["new", "bad_directive"],
            &[],
            Some("-- plover:no-transactions\nselect 1;\n"),
        )?
        .expect(2)?;
    assert!(run.stderr.contains("unknown directive"), "{run}");
    assert_eq!(
        w.migration_files()?,
        files,
        "a refused `db new` wrote a file"
    );
    Ok(())
}

#[tokio::test]
async fn dry_run_changes_nothing_push_applies_and_status_gates() -> Result<()> {
    let (db, url) = database().await?;
    let client = db.client().await?;
    let w = Workdir::new()?;
    let local = [("DATABASE_URL", url.as_str())];
    let count = w.migration_files()?.len();
    let mut known = url_redactions(&url)?;
    let workdir = w.path().display().to_string();
    known.push((workdir, "[WORKDIR]"));

    // Only pending: exit 0.
    let run = w.db(&["status"], &local, None)?.expect(0)?;
    insta::assert_snapshot!("status_pending", normalize(&run.to_string(), &known));
    assert!(
        run.stdout
            .contains("target: local postgres://postgres:****@"),
        "{run}"
    );
    assert!(
        run.stdout.contains(&format!("0 applied, {count} pending")),
        "{run}"
    );

    let before = snapshot(&client).await?;
    let run = w.db(&["push", "--dry-run"], &local, None)?.expect(0)?;
    assert!(run.stdout.contains(&format!("{count} to apply:")), "{run}");
    assert!(
        run.stdout.contains("create table"),
        "the SQL is shown: {run}"
    );
    assert!(run.stdout.contains("dry run: nothing was applied"), "{run}");
    assert_eq!(
        snapshot(&client).await?,
        before,
        "--dry-run changed the database"
    );

    let run = w.db(&["push"], &local, None)?.expect(0)?;
    assert!(
        run.stdout
            .contains("applied 20250114093012  create_categories  ("),
        "{run}"
    );
    insta::assert_snapshot!("push_applied", normalize(&run.to_string(), &known));
    assert!(
        run.stdout.contains(&format!("{count} applied in ")),
        "{run}"
    );
    let applied: i64 = client
        .query_one(
            "SELECT count(*) FROM plover.migrations WHERE app = 'money_tracker'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(applied as usize, count);

    let run = w.db(&["status"], &local, None)?.expect(0)?;
    assert!(
        run.stdout.contains(&format!("{count} applied, 0 pending")),
        "{run}"
    );
    insta::assert_snapshot!("status_applied", normalize(&run.to_string(), &known));
    let run = w.db(&["push"], &local, None)?.expect(0)?;
    assert!(run.stdout.contains("up to date"), "{run}");

    let status = json(&w.db(&["status", "--json"], &local, None)?.expect(0)?)?;
    assert_eq!(status["app"], "money_tracker");
    assert_eq!(status["target"]["env"], "local");
    assert_eq!(status["needs_attention"], false);
    let migrations = status["migrations"].as_array().context("migrations")?;
    assert_eq!(migrations.len(), count);
    assert!(
        migrations
            .iter()
            .all(|m| m["state"] == "applied" && m["applied_at"].is_string()),
        "{status}"
    );

    // A new file is pending: still 0.
    w.db(
        &["new", "add_notes"],
        &[],
        Some("alter table categories add column note text;\n"),
    )?
    .expect(0)?;
    let status = json(&w.db(&["status", "--json"], &local, None)?.expect(0)?)?;
    assert_eq!(status["pending"], 1);
    // Its version is the time it was made.
    let new = w.migration_files()?.pop().context("no migration")?;
    let new = new.split_once('_').context("a migration file name")?.0;
    known.push((new.to_owned(), "[NEW VERSION]"));

    // An applied file edited: 1, and push refuses without changing anything.
    let first = w.migrations().join(&w.migration_files()?[0]);
    let mut sql = std::fs::read_to_string(&first)?;
    sql.push_str("\n-- edited\n");
    std::fs::write(&first, sql)?;
    let run = w.db(&["status"], &local, None)?.expect(1)?;
    assert!(run.stdout.contains("modified"), "{run}");
    assert!(run.stdout.contains("needs attention:"), "{run}");
    insta::assert_snapshot!("status_modified", normalize(&run.to_string(), &known));
    let status = json(&w.db(&["status", "--json"], &local, None)?.expect(1)?)?;
    assert_eq!(status["needs_attention"], true);
    assert_eq!(status["migrations"][0]["state"], "modified");
    let before = snapshot(&client).await?;
    let run = w.db(&["push"], &local, None)?.expect(2)?;
    assert!(run.stderr.contains("refusing to push"), "{run}");
    insta::assert_snapshot!("push_refused_modified", normalize(&run.to_string(), &known));
    assert_eq!(snapshot(&client).await?, before);
    Ok(())
}

#[tokio::test]
async fn protected_environments_need_their_name() -> Result<()> {
    let (db, url) = database().await?;
    let client = db.client().await?;
    let w = Workdir::new()?;
    let prod = [("PROD_DATABASE_URL", url.as_str())];
    let before = snapshot(&client).await?;

    let run = w.db(&["push", "--env", "prod"], &prod, None)?.expect(2)?;
    assert!(
        run.stdout.contains("(from PROD_DATABASE_URL, protected)"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("prod: it is protected and there is no terminal"),
        "{run}"
    );
    assert!(run.stderr.contains("--confirm prod"), "{run}");
    assert_eq!(snapshot(&client).await?, before);

    let run = w
        .db(
            &["push", "--env", "prod", "--confirm", "staging"],
            &prod,
            None,
        )?
        .expect(2)?;
    assert!(
        run.stderr
            .contains("--confirm staging does not match the environment prod"),
        "{run}"
    );
    assert_eq!(snapshot(&client).await?, before);

    // A dry run needs no confirmation and changes nothing.
    w.db(&["push", "--env", "prod", "--dry-run"], &prod, None)?
        .expect(0)?;
    assert_eq!(snapshot(&client).await?, before);

    w.db(&["push", "--env", "prod", "--confirm", "prod"], &prod, None)?
        .expect(0)?;
    assert_ne!(snapshot(&client).await?, before);
    w.db(&["status", "--env", "prod"], &prod, None)?.expect(0)?;
    Ok(())
}

#[tokio::test]
async fn link_makes_an_environment_the_default() -> Result<()> {
    let (_db, url) = database().await?;
    let w = Workdir::new()?;
    let staging = [("STAGING_DATABASE_URL", url.as_str())];

    let run = w
        .db(&["link", "--env", "nowhere"], &staging, None)?
        .expect(2)?;
    assert!(run.stderr.contains("set NOWHERE_DATABASE_URL, or SUPABASE_PROJECT_REF_NOWHERE + SUPABASE_DB_PASSWORD_NOWHERE"), "{run}");
    assert!(!w.path().join("supabase/.temp/plover-link").exists());

    let run = w
        .db(&["link", "--env", "staging"], &staging, None)?
        .expect(0)?;
    assert!(
        run.stdout
            .contains("linked staging postgres://postgres:****@"),
        "{run}"
    );
    let run = w.db(&["status"], &staging, None)?.expect(0)?;
    assert!(
        run.stdout
            .contains("target: staging postgres://postgres:****@"),
        "{run}"
    );
    assert!(run.stdout.contains("(from STAGING_DATABASE_URL)"), "{run}");
    w.db(&["push"], &staging, None)?.expect(0)?;
    let status = json(&w.db(&["status", "--json"], &staging, None)?.expect(0)?)?;
    assert_eq!(status["target"]["env"], "staging");
    assert_eq!(status["pending"], 0);

    // The Supabase pair, from a .env file: the password goes into the URL, never
    // into the output.
    std::fs::write(
        w.path().join(".env"),
        format!("SUPABASE_PROJECT_REF_QA=nosuchref\nSUPABASE_DB_PASSWORD_QA={SECRET}\n"),
    )?;
    let run = w.db(&["link", "--env", "qa"], &[], None)?.expect(0)?;
    assert!(
        run.stdout
            .contains("linked qa postgres://postgres:****@db.nosuchref.supabase.co:5432/postgres"),
        "{run}"
    );
    Ok(())
}

#[tokio::test]
async fn repair_marks_versions_and_protected_envs_need_their_name() -> Result<()> {
    let (db, url) = database().await?;
    let client = db.client().await?;
    let w = Workdir::new()?;
    let local = [("DATABASE_URL", url.as_str())];
    let prod = [("PROD_DATABASE_URL", url.as_str())];
    let count = w.migration_files()?.len();
    let first = "20250114093012";
    let last = w
        .migration_files()?
        .last()
        .and_then(|f| f.split('_').next().map(str::to_owned))
        .context("no migrations")?;

    // Recorded as applied without running: the table it creates does not exist.
    let run = w
        .db(
            &["repair", "--status", "applied", first, "--confirm", "local"],
            &local,
            None,
        )?
        .expect(0)?;
    assert!(
        run.stdout.contains(&format!("marked {first} applied")),
        "{run}"
    );
    let exists: bool = client
        .query_one("SELECT to_regclass('public.categories') IS NOT NULL", &[])
        .await?
        .get(0);
    assert!(!exists, "repair ran the migration");
    let status = json(&w.db(&["status", "--json"], &local, None)?.expect(0)?)?;
    assert_eq!(status["applied"], 1);
    assert_eq!(status["pending"], count - 1);

    // Reverted: pending again; a version without a history row is an error.
    w.db(
        &[
            "repair",
            "--status",
            "reverted",
            first,
            "--confirm",
            "local",
        ],
        &local,
        None,
    )?
    .expect(0)?;
    let status = json(&w.db(&["status", "--json"], &local, None)?.expect(0)?)?;
    assert_eq!(status["applied"], 0);
    let run = w
        .db(
            &[
                "repair",
                "--status",
                "reverted",
                first,
                "--confirm",
                "local",
            ],
            &local,
            None,
        )?
        .expect(2)?;
    assert!(run.stderr.contains(first), "{run}");

    // prod: refused without --confirm and with the wrong name; nothing changes.
    w.db(&["push"], &local, None)?.expect(0)?;
    let before = snapshot(&client).await?;
    let run = w
        .db(
            &["repair", "--status", "reverted", &last, "--env", "prod"],
            &prod,
            None,
        )?
        .expect(2)?;
    assert!(
        run.stderr
            .contains("prod: it is protected and there is no terminal"),
        "{run}"
    );
    let run = w
        .db(
            &[
                "repair",
                "--status",
                "reverted",
                &last,
                "--env",
                "prod",
                "--confirm",
                "staging",
            ],
            &prod,
            None,
        )?
        .expect(2)?;
    assert!(
        run.stderr.contains("does not match the environment prod"),
        "{run}"
    );
    assert_eq!(snapshot(&client).await?, before);
    w.db(
        &[
            "repair",
            "--status",
            "reverted",
            &last,
            "--env",
            "prod",
            "--confirm",
            "prod",
        ],
        &prod,
        None,
    )?
    .expect(0)?;
    let status = json(
        &w.db(&["status", "--json", "--env", "prod"], &prod, None)?
            .expect(0)?,
    )?;
    assert_eq!(status["pending"], 1);
    Ok(())
}

#[tokio::test]
async fn adopt_takes_over_the_supabase_cli_history() -> Result<()> {
    let (db, url) = database().await?;
    let client = db.client().await?;
    let w = Workdir::new()?;
    let local = [("DATABASE_URL", url.as_str())];
    let count = w.migration_files()?.len();
    // What the Supabase CLI leaves: its table, two of our versions and one unknown.
    client
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS supabase_migrations;
             CREATE TABLE supabase_migrations.schema_migrations
               (version text PRIMARY KEY, statements text[], name text);
             INSERT INTO supabase_migrations.schema_migrations (version, name) VALUES
               ('20250114093012', 'create_categories'),
               ('20250114094538', 'create_transactions'),
               ('19990101000000', 'gone');",
        )
        .await?;

    let run = w
        .db(
            &["adopt", "--from", "supabase", "--confirm", "local"],
            &local,
            None,
        )?
        .expect(0)?;
    assert!(
        run.stdout
            .contains("adopted 2 version(s) from the Supabase CLI: 20250114093012 20250114094538"),
        "{run}"
    );
    assert!(
        run.stdout.contains("19990101000000"),
        "the unknown version is named: {run}"
    );
    let status = json(&w.db(&["status", "--json"], &local, None)?.expect(0)?)?;
    assert_eq!(status["applied"], 2);
    assert_eq!(status["pending"], count - 2);

    // Again: nothing new.
    let run = w
        .db(
            &["adopt", "--from", "supabase", "--confirm", "local"],
            &local,
            None,
        )?
        .expect(0)?;
    assert!(run.stdout.contains("adopted 0 version(s)"), "{run}");
    assert!(
        run.stdout.contains("already in plover's history: 2"),
        "{run}"
    );

    // No such tool's table: refused, naming it.
    let run = w
        .db(
            &["adopt", "--from", "sqlx", "--confirm", "local"],
            &local,
            None,
        )?
        .expect(2)?;
    assert!(run.stderr.contains("_sqlx_migrations"), "{run}");
    Ok(())
}

#[test]
fn db_help_lists_the_commands() -> Result<()> {
    let w = Workdir::new()?;
    let run = xtask_db(w.path(), &["--help"], &[], None, SECRET)?.expect(0)?;
    assert!(run.stdout.contains("reset-local"), "{run}");
    insta::assert_snapshot!("db_help", normalize(&run.to_string(), &[]));
    Ok(())
}
