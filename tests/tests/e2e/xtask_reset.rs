//! `cargo xtask db reset --env NAME` and `db push --include-seed` as processes: the
//! real xtask binary against a real database. A reset must be confirmed, must back up
//! first (a backup that restores the data), and must touch only its own app.

use std::path::PathBuf;

use anyhow::{Context, Result};
use plover_tests::{
    Dir, Run, TestDatabase, Workdir, database, normalize, snapshot, strings, url_redactions,
};

/// The app's data, in a stable order, for comparing before and after.
const DATA: &str = "
SELECT format('%s %s %s', c.name, t.amount, t.note)
  FROM public.transactions t JOIN public.categories c ON c.id = t.category_id
 ORDER BY 1";

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
    let known = url_redactions(&url)?;

    // Protected prod: no terminal, no --confirm.
    let run = w.db(&["reset", "--env", "prod"], &vars, None)?.expect(2)?;
    assert!(
        run.stderr
            .contains("prod: it is protected and there is no terminal"),
        "{run}"
    );
    insta::assert_snapshot!(
        "reset_refused_protected",
        normalize(&run.to_string(), &known)
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
    insta::assert_snapshot!(
        "reset_refused_unprotected",
        normalize(&run.to_string(), &known)
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
    insta::assert_snapshot!(
        "reset_refused_wrong_name",
        normalize(&run.to_string(), &known)
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

    // Only its owner can read the backup: it holds the app's rows.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", backup.display());
    }

    // `db restore` puts the backup back over the reset database: data and history.
    let shown = backup.to_string_lossy().into_owned();
    let run = w
        .db(
            &[
                "restore",
                &shown,
                "--env",
                "staging",
                "--confirm",
                "staging",
            ],
            &vars,
            None,
        )?
        .expect(0)?;
    assert!(
        run.stdout.contains("  - table public.transactions"),
        "{run}"
    );
    assert_eq!(strings(&client, DATA).await?, data);
    assert_eq!(
        strings(
            &client,
            "SELECT version::text FROM plover.migrations ORDER BY 1"
        )
        .await?,
        history
    );
    plover_tests::assert_supabase_history_agrees(&client).await?;
    w.db(&["status", "--env", "staging"], &vars, None)?
        .expect(0)?;

    // And into a fresh database, with the shim and its users: all of it.
    let fresh = TestDatabase::with_supabase_shim().await?;
    let auth_users = "INSERT INTO auth.users (id, email) VALUES
        ('11111111-1111-4111-8111-111111111111', 'alice@example.com'),
        ('22222222-2222-4222-8222-222222222222', 'bob@example.com')";
    fresh.client().await?.batch_execute(auth_users).await?;
    let fresh_url = fresh.url().to_owned();
    let fresh_vars = [("FRESH_DATABASE_URL", fresh_url.as_str())];
    let run = w
        .db(
            &["restore", &shown, "--env", "fresh", "--confirm", "fresh"],
            &fresh_vars,
            None,
        )?
        .expect(0)?;
    assert!(!run.stdout.contains("NOT VALID"), "{run}");
    let restored = fresh.client().await?;
    assert_eq!(strings(&restored, DATA).await?, data);
    assert_eq!(
        strings(
            &restored,
            "SELECT version::text FROM plover.migrations ORDER BY 1"
        )
        .await?,
        history
    );
    w.db(&["status", "--env", "fresh"], &fresh_vars, None)?
        .expect(0)?;

    // An empty database (no Supabase at all): the shim comes first, and the foreign
    // keys to users that are not there are added NOT VALID and named.
    let empty = TestDatabase::create().await?;
    let empty_url = empty.url().to_owned();
    let empty_vars = [("EMPTY_DATABASE_URL", empty_url.as_str())];
    let run = w
        .db(
            &["restore", &shown, "--env", "empty", "--confirm", "empty"],
            &empty_vars,
            None,
        )?
        .expect(0)?;
    assert!(
        run.stdout.contains(
            "\"transactions_user_id_fkey\" on \"public\".\"transactions\" was added NOT VALID"
        ),
        "{run}"
    );
    assert_eq!(strings(&empty.client().await?, DATA).await?, data);

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
async fn a_reset_leaves_other_apps_alone_and_drops_its_own_trigger_on_auth_users() -> Result<()> {
    let (db, url) = database().await?;
    let mut client = db.client().await?;
    let w = Workdir::new()?;
    let vars = [("STAGING_DATABASE_URL", url.as_str())];
    // The app's own trigger on auth.users (Supabase's managed schema), made by a migration.
    std::fs::write(
        w.migrations().join("20990101000000_on_signup.sql"),
        "CREATE FUNCTION public.on_signup() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN new; END$$;
         CREATE TRIGGER on_signup AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION public.on_signup();",
    )?;
    w.db(&["push", "--env", "staging"], &vars, None)?
        .expect(0)?;
    let ledger = Dir::with(LEDGER)?;
    ledger.migrator("ledger")?.run(&mut client).await?;
    let ledger_state = "
        SELECT format('%s %s', e.id, e.note) FROM ledger.entries e
        UNION ALL
        SELECT format('history %s %s', version, name) FROM plover.migrations WHERE app = 'ledger'
        ORDER BY 1";
    let before = strings(&client, ledger_state).await?;
    assert_eq!(before.len(), 3, "{before:?}");
    let trigger = "SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = 'on_signup'";

    let run = w
        .db(
            &["reset", "--env", "staging", "--confirm", "staging"],
            &vars,
            None,
        )?
        .expect(0)?;
    for dropped in [
        "  - trigger on_signup on auth.users",
        "  - function public.on_signup()",
        "  - table public.categories",
    ] {
        assert!(run.stdout.contains(dropped), "{dropped}: {run}");
    }
    assert!(!run.stdout.contains("ledger"), "{run}");
    assert_eq!(strings(&client, ledger_state).await?, before);
    // Dropped with the app, made again by its migration.
    assert_eq!(strings(&client, trigger).await?, ["auth.users"]);
    w.db(&["status", "--env", "staging"], &vars, None)?
        .expect(0)?;
    let report = ledger.migrator("ledger")?.run(&mut client).await?;
    assert!(report.applied.is_empty());

    // The backup holds the trigger on auth.users (pg_dump of `public` does not), so a
    // restore into a fresh database brings it back.
    let backup = backup_path(&w, &run)?;
    let fresh = TestDatabase::with_supabase_shim().await?;
    let fresh_url = fresh.url().to_owned();
    let shown = backup.to_string_lossy().into_owned();
    w.db(
        &["restore", &shown, "--env", "fresh", "--confirm", "fresh"],
        &[("FRESH_DATABASE_URL", fresh_url.as_str())],
        None,
    )?
    .expect(0)?;
    assert_eq!(
        strings(&fresh.client().await?, trigger).await?,
        ["auth.users"]
    );
    Ok(())
}

/// A second app in the same `public` schema (the default `schemas`), with its rows.
const NOTES: &[(&str, &str)] = &[(
    "1_notes.sql",
    "CREATE TABLE public.notes (id int PRIMARY KEY, body text);
     INSERT INTO public.notes SELECT i, 'note ' || i FROM generate_series(1, 50) i;",
)];

#[tokio::test]
async fn a_reset_refuses_to_drop_another_apps_objects_in_a_shared_schema() -> Result<()> {
    let (db, url) = database().await?;
    let mut client = db.client().await?;
    let w = Workdir::new()?;
    let vars = [("STAGING_DATABASE_URL", url.as_str())];
    w.db(&["push", "--env", "staging", "--include-seed"], &vars, None)?
        .expect(0)?;
    let notes = Dir::with(NOTES)?;
    notes.migrator("notes")?.run(&mut client).await?;
    // A hand-made index on one of the app's tables is not the app's either.
    client
        .batch_execute("CREATE INDEX categories_by_hand ON public.categories (name)")
        .await?;
    let before = snapshot(&client).await?;
    let data = strings(&client, DATA).await?;

    let run = w
        .db(
            &["reset", "--env", "staging", "--confirm", "staging"],
            &vars,
            None,
        )?
        .expect(2)?;
    for listed in [
        "refusing to reset: the app's schemas (public) hold objects that its migrations do not make",
        "  - table public.notes\n",
        "  - index public.categories_by_hand on public.categories",
        "--also-drop IDENTITY",
        "nothing was changed",
    ] {
        assert!(run.stderr.contains(listed), "{listed}: {run}");
    }
    assert_eq!(snapshot(&client).await?, before);
    assert_eq!(strings(&client, DATA).await?, data);
    assert!(
        !w.path().join("supabase/.temp/backups").exists(),
        "a refused reset took a backup"
    );
    // Naming only one of them is not enough; a name that matches nothing is refused.
    let run = w
        .db(
            &[
                "reset",
                "--env",
                "staging",
                "--confirm",
                "staging",
                "--also-drop",
                "public.categories_by_hand",
                "--also-drop",
                "public.nothing",
            ],
            &vars,
            None,
        )?
        .expect(2)?;
    assert!(
        run.stderr
            .contains("--also-drop public.nothing matches no object outside the app's migrations"),
        "{run}"
    );
    assert!(run.stderr.contains("  - table public.notes"), "{run}");
    assert_eq!(snapshot(&client).await?, before);

    // The index named, the other app's table moved to a schema of its own: the reset
    // goes ahead, and the other app's rows and history survive.
    client
        .batch_execute("CREATE SCHEMA notes; ALTER TABLE public.notes SET SCHEMA notes")
        .await?;
    let run = w
        .db(
            &[
                "reset",
                "--env",
                "staging",
                "--confirm",
                "staging",
                "--also-drop",
                "index public.categories_by_hand",
            ],
            &vars,
            None,
        )?
        .expect(0)?;
    assert!(
        run.stdout
            .contains("named with --also-drop; drop too:\n  - index public.categories_by_hand on public.categories"),
        "{run}"
    );
    assert_eq!(
        strings(&client, "SELECT count(*)::text FROM notes.notes").await?,
        ["50"]
    );
    assert_eq!(
        strings(
            &client,
            "SELECT count(*)::text FROM plover.migrations WHERE app = 'notes'"
        )
        .await?,
        ["1"]
    );
    assert_eq!(strings(&client, DATA).await?, Vec::<String>::new());
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
            && run
                .stderr
                .contains("objects that are not the app's depend on the app's objects")
            && run.stderr.contains("  - view reports.category_names")
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

    // A reset asks too, after listing by name what it will drop, and takes the typed name.
    let run = w
        .db_at_terminal(&["reset", "--env", "prod"], &vars, "prod\n")?
        .expect(0)?;
    let listed = run
        .stdout
        .find("  - table public.transactions")
        .with_context(|| format!("the plan is not listed: {run}"))?;
    let asked = run
        .stdout
        .find("type the environment's name")
        .with_context(|| format!("no prompt: {run}"))?;
    assert!(listed < asked, "{run}");
    assert!(
        run.stdout.contains("backup: supabase/.temp/backups/prod-"),
        "{run}"
    );
    assert!(run.stdout.contains("applied 6 migration(s)"), "{run}");
    Ok(())
}
