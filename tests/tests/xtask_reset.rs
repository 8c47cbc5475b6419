//! `cargo xtask db reset --env NAME` and `db push --include-seed` as processes: the
//! real xtask binary against a real database. A reset must be confirmed, must back up
//! first (a backup that restores the data), and must touch only its own app.

use std::path::PathBuf;

use anyhow::{Context, Result};
use plover_tests::{Dir, Run, TestDatabase, Workdir, database, snapshot, strings};

/// The app's data, in a stable order, for comparing before and after.
const DATA: &str = "
SELECT format('%s %s %s', c.name, t.amount, t.note)
  FROM public.transactions t JOIN public.categories c ON c.id = t.category_id
 ORDER BY 1";

/// Runs `psql -v ON_ERROR_STOP=1 -1 -f file` against `url` (a URL without a password).
fn psql_file(url: &str, file: &std::path::Path) -> Result<()> {
    let out = std::process::Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-d", url, "-f"])
        .arg(file)
        .output()
        .context("running psql (install postgresql-client)")?;
    anyhow::ensure!(
        out.status.success(),
        "psql -f {} failed:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The backup path `db reset` printed.
fn backup_path(w: &Workdir, run: &Run) -> Result<PathBuf> {
    let line = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("backup: "))
        .with_context(|| format!("no backup line: {run}"))?;
    Ok(w.path().join(line))
}

#[tokio::test]
async fn reset_needs_the_name_on_every_remote_environment() -> Result<()> {
    let (db, url) = database().await?;
    let client = db.client().await?;
    let w = Workdir::new()?;
    let vars = [
        ("PROD_DATABASE_URL", url.as_str()),
        ("STAGING_DATABASE_URL", url.as_str()),
    ];
    w.db(&["push", "--env", "staging"], &vars, None)?
        .expect(0)?;
    let before = snapshot(&client).await?;

    // Protected prod: no terminal, no --confirm.
    let run = w.db(&["reset", "--env", "prod"], &vars, None)?.expect(2)?;
    assert!(
        run.stderr
            .contains("prod: it is protected and there is no terminal"),
        "{run}"
    );
    // Unprotected staging still asks: a reset is destructive everywhere.
    let run = w
        .db(&["reset", "--env", "staging"], &vars, None)?
        .expect(2)?;
    assert!(
        run.stderr
            .contains("staging: this is destructive and there is no terminal"),
        "{run}"
    );
    // A wrong name, given or typed.
    let run = w
        .db(
            &["reset", "--env", "prod", "--confirm", "staging"],
            &vars,
            None,
        )?
        .expect(2)?;
    assert!(
        run.stderr
            .contains("--confirm staging does not match the environment prod"),
        "{run}"
    );
    let run = w
        .db(&["reset", "--env", "prod"], &vars, Some("prdo\n"))?
        .expect(2)?;
    assert!(run.stderr.contains("no terminal"), "{run}");

    assert_eq!(snapshot(&client).await?, before);
    assert!(
        !w.path().join("supabase/.temp/backups").exists(),
        "a refused reset took a backup"
    );
    Ok(())
}

#[tokio::test]
async fn reset_backs_up_drops_reapplies_and_the_backup_restores() -> Result<()> {
    let (db, url) = database().await?;
    let client = db.client().await?;
    let w = Workdir::new()?;
    let vars = [("STAGING_DATABASE_URL", url.as_str())];

    // push --include-seed: migrations, then the seed users and their rows.
    let run = w
        .db(&["push", "--env", "staging", "--include-seed"], &vars, None)?
        .expect(0)?;
    assert!(
        run.stdout.contains("seeded from supabase/seed.sql"),
        "{run}"
    );
    client
        .batch_execute(
            "INSERT INTO public.transactions (user_id, category_id, amount, note)
             SELECT user_id, id, 42.42, 'made after the seed'
               FROM public.categories ORDER BY id LIMIT 1",
        )
        .await?;
    let data = strings(&client, DATA).await?;
    assert!(
        data.iter().any(|r| r.contains("made after the seed")),
        "{data:?}"
    );
    let history = strings(
        &client,
        "SELECT version::text FROM plover.migrations ORDER BY 1",
    )
    .await?;

    let run = w
        .db(
            &["reset", "--env", "staging", "--confirm", "staging"],
            &vars,
            None,
        )?
        .expect(0)?;
    assert!(run.stdout.contains("seed skipped"), "{run}");
    let backup = backup_path(&w, &run)?;
    assert!(
        backup.starts_with(w.path().join("supabase/.temp/backups"))
            && backup
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("staging-")),
        "{}",
        backup.display()
    );

    // The app's rows are gone, its history is whole again, Supabase's data is kept.
    assert_eq!(strings(&client, DATA).await?, Vec::<String>::new());
    assert_eq!(
        strings(
            &client,
            "SELECT version::text FROM plover.migrations ORDER BY 1"
        )
        .await?,
        history
    );
    plover_tests::assert_supabase_history_agrees(&client).await?;
    assert_eq!(
        strings(&client, "SELECT count(*)::text FROM auth.users").await?,
        ["2"]
    );
    w.db(&["status", "--env", "staging"], &vars, None)?
        .expect(0)?;

    // The backup restores the data, and the history, into an empty database.
    let empty = TestDatabase::with_supabase_shim().await?;
    let auth_users = "INSERT INTO auth.users (id, email) VALUES
        ('11111111-1111-4111-8111-111111111111', 'alice@example.com'),
        ('22222222-2222-4222-8222-222222222222', 'bob@example.com')";
    empty.client().await?.batch_execute(auth_users).await?;
    psql_file(empty.url(), &backup)?;
    let restored = empty.client().await?;
    assert_eq!(strings(&restored, DATA).await?, data);
    assert_eq!(
        strings(
            &restored,
            "SELECT version::text FROM plover.migrations ORDER BY 1"
        )
        .await?,
        history
    );

    // --include-seed loads the seed after re-applying.
    let run = w
        .db(
            &[
                "reset",
                "--env",
                "staging",
                "--confirm",
                "staging",
                "--include-seed",
            ],
            &vars,
            None,
        )?
        .expect(0)?;
    assert!(
        run.stdout.contains("seeded from supabase/seed.sql"),
        "{run}"
    );
    let reseeded = strings(&client, DATA).await?;
    assert!(!reseeded.is_empty());
    assert!(!reseeded.iter().any(|r| r.contains("made after the seed")));
    Ok(())
}

/// A second app sharing the database, with its own schema and history.
const LEDGER: &[(&str, &str)] = &[(
    "1_ledger.sql",
    "CREATE SCHEMA ledger;
     CREATE TABLE ledger.entries (id int PRIMARY KEY, note text);
     INSERT INTO ledger.entries VALUES (1, 'kept'), (2, 'also kept');",
)];

#[tokio::test]
async fn a_reset_leaves_other_apps_alone_and_reports_what_cascaded() -> Result<()> {
    let (db, url) = database().await?;
    let mut client = db.client().await?;
    let w = Workdir::new()?;
    let vars = [("STAGING_DATABASE_URL", url.as_str())];
    w.db(&["push", "--env", "staging"], &vars, None)?
        .expect(0)?;
    let ledger = Dir::with(LEDGER)?;
    ledger.migrator("ledger")?.run(&mut client).await?;
    // The app's own trigger on auth.users (Supabase's managed schema) goes with the app.
    client
        .batch_execute(
            "CREATE FUNCTION public.on_signup() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN new; END$$;
             CREATE TRIGGER on_signup AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION public.on_signup();",
        )
        .await?;
    let ledger_state = "
        SELECT format('%s %s', e.id, e.note) FROM ledger.entries e
        UNION ALL
        SELECT format('history %s %s', version, name) FROM plover.migrations WHERE app = 'ledger'
        ORDER BY 1";
    let before = strings(&client, ledger_state).await?;
    assert_eq!(before.len(), 3, "{before:?}");

    let run = w
        .db(
            &["reset", "--env", "staging", "--confirm", "staging"],
            &vars,
            None,
        )?
        .expect(0)?;
    assert!(
        run.stdout.contains(
            "also dropped, as it depended on the app: trigger on_signup on auth.users (depends on public.on_signup())"
        ),
        "{run}"
    );
    assert_eq!(strings(&client, ledger_state).await?, before);
    assert_eq!(
        strings(
            &client,
            "SELECT count(*)::text FROM pg_trigger WHERE tgname = 'on_signup'"
        )
        .await?,
        ["0"]
    );
    // The app's history is whole again, and the other app's still agrees with its files.
    w.db(&["status", "--env", "staging"], &vars, None)?
        .expect(0)?;
    let report = ledger.migrator("ledger")?.run(&mut client).await?;
    assert!(report.applied.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_reset_refuses_when_another_schema_depends_on_the_app() -> Result<()> {
    let (db, url) = database().await?;
    let client = db.client().await?;
    let w = Workdir::new()?;
    let vars = [("STAGING_DATABASE_URL", url.as_str())];
    w.db(&["push", "--env", "staging"], &vars, None)?
        .expect(0)?;
    client
        .batch_execute(
            "CREATE SCHEMA reports;
             CREATE VIEW reports.category_names AS SELECT name FROM public.categories;",
        )
        .await?;
    let before = snapshot(&client).await?;

    let run = w
        .db(
            &["reset", "--env", "staging", "--confirm", "staging"],
            &vars,
            None,
        )?
        .expect(2)?;
    assert!(
        run.stderr.contains("refusing to reset")
            && run.stderr.contains("reports.category_names")
            && run.stderr.contains("in schema reports")
            && run.stderr.contains("nothing was changed"),
        "{run}"
    );
    assert_eq!(snapshot(&client).await?, before);

    // A managed schema listed as the app's is refused before anything is dropped.
    std::fs::write(
        w.path().join("supabase/plover.toml"),
        "app = \"money_tracker\"\nschemas = [\"public\", \"auth\"]\n",
    )?;
    let run = w
        .db(
            &["reset", "--env", "staging", "--confirm", "staging"],
            &vars,
            None,
        )?
        .expect(2)?;
    assert!(
        run.stderr.contains("`auth` is managed by Supabase"),
        "{run}"
    );
    assert_eq!(snapshot(&client).await?, before);
    Ok(())
}

#[tokio::test]
async fn at_a_terminal_the_typed_name_confirms() -> Result<()> {
    let (db, url) = database().await?;
    let client = db.client().await?;
    let w = Workdir::new()?;
    let vars = [("PROD_DATABASE_URL", url.as_str())];

    // A push to protected prod: a wrong name refuses, changing nothing.
    let before = snapshot(&client).await?;
    let run = w
        .db_at_terminal(&["push", "--env", "prod"], &vars, "staging\n")?
        .expect(2)?;
    assert!(
        run.stdout
            .contains("prod: it is protected; type the environment's name to apply 6 migration(s)"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("the confirmation did not match prod; nothing was changed"),
        "{run}"
    );
    assert_eq!(snapshot(&client).await?, before);

    // The right name applies.
    let run = w
        .db_at_terminal(&["push", "--env", "prod"], &vars, "prod\n")?
        .expect(0)?;
    assert!(run.stdout.contains("6 applied"), "{run}");

    // A reset asks too, and takes the typed name.
    let run = w
        .db_at_terminal(&["reset", "--env", "prod"], &vars, "prod\n")?
        .expect(0)?;
    assert!(
        run.stdout.contains("backup: supabase/.temp/backups/prod-"),
        "{run}"
    );
    assert!(run.stdout.contains("applied 6 migration(s)"), "{run}");
    Ok(())
}
