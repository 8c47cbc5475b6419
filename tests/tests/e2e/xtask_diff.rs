//! `cargo xtask db diff` as a process: the real xtask binary against databases of the
//! shared test server, the migrations replayed on a local development server of the
//! test's own. Every SQL it prints for a change is applied and the diff taken again.

use anyhow::{Context, Result};
use plover_tests::{LocalServer, Run, Workdir, database, strings};

const STAGING: &str = "STAGING_DATABASE_URL";

fn staging(w: &Workdir, args: &[&str], url: &str) -> Result<Run> {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--env", "staging"]);
    w.db(&all, &[(STAGING, url)], None)
}

/// The statements of a printed diff (comment lines left out).
fn statements(sql: &str) -> Vec<String> {
    sql.split(";\n")
        .map(|s| {
            s.lines()
                .filter(|l| !l.starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|s| !s.trim().is_empty())
        .collect()
}

#[tokio::test]
async fn diff_turns_the_migrations_into_a_changed_target_and_then_finds_nothing() -> Result<()> {
    let w = Workdir::new()?;
    let _local = LocalServer::isolate(&w)?;
    let (db, url) = database().await?;
    staging(&w, &["push"], &url)?.expect(0)?;

    // Nothing changed yet: nothing but a comment.
    let run = staging(&w, &["diff"], &url)?.expect(0)?;
    assert!(
        run.stdout.starts_with("-- plover diff: no differences\n"),
        "{run}"
    );
    assert!(statements(&run.stdout).is_empty(), "{run}");

    // Changes made outside the migrations.
    let client = db.client().await?;
    client
        .batch_execute(
            "ALTER TABLE public.budgets ADD COLUMN note text;
             ALTER TABLE public.budgets DROP COLUMN created_at;
             CREATE INDEX budgets_month_idx ON public.budgets (month);
             ALTER POLICY \"Users can view their own budgets\" ON public.budgets
               USING ((select auth.uid()) = user_id AND amount_limit > 0);
             CREATE TABLE public.tags (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);
             ALTER TABLE public.tags ENABLE ROW LEVEL SECURITY;
             CREATE POLICY \"Tags are readable by signed-in users\" ON public.tags
               FOR SELECT TO authenticated USING (true);",
        )
        .await?;

    let run = staging(&w, &["diff"], &url)?.expect(0)?;
    let sql = &run.stdout;
    assert!(
        sql.contains("ALTER TABLE public.budgets ADD COLUMN note text;"),
        "{run}"
    );
    assert!(
        sql.contains("-- hazard data-loss: drops column public.budgets.created_at"),
        "{run}"
    );
    assert!(
        sql.contains("ALTER TABLE public.budgets DROP COLUMN created_at;"),
        "{run}"
    );
    assert!(
        sql.contains("CREATE INDEX budgets_month_idx ON public.budgets USING btree (month);"),
        "{run}"
    );
    assert!(
        sql.contains("-- hazard index-build: builds budgets_month_idx"),
        "{run}"
    );
    assert!(
        sql.contains("ALTER POLICY \"Users can view their own budgets\" ON public.budgets USING"),
        "{run}"
    );
    assert!(sql.contains("CREATE TABLE public.tags ("), "{run}");
    // The header counts the hazards.
    assert!(
        sql.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("-- hazards: ")),
        "{run}"
    );
    // Nothing outside the app's schemas, and nothing about the owner's own rights
    // (the migrations' runner owns what they create).
    assert!(!sql.contains("TABLE auth."), "{run}");
    assert!(!sql.contains("FROM postgres;"), "{run}");

    // Written as a migration, it makes the migrations equal the target again.
    let before = w.migration_files()?;
    let run = staging(&w, &["diff", "-f", "capture drift"], &url)?.expect(0)?;
    let files = w.migration_files()?;
    assert_eq!(files.len(), before.len() + 1, "{run}");
    let file = files
        .iter()
        .find(|f| f.ends_with("_capture_drift.sql"))
        .with_context(|| format!("no capture_drift file: {files:?}"))?;
    let text = std::fs::read_to_string(w.migrations().join(file))?;
    assert!(
        text.starts_with(
            "-- capture_drift\n-- Written by `cargo xtask db diff --from migrations --to staging`"
        ),
        "{text}"
    );
    let run = staging(&w, &["diff"], &url)?.expect(0)?;
    assert!(
        run.stdout.starts_with("-- plover diff: no differences\n"),
        "{run}"
    );
    // The file passes the lint `db push` users run before merging (warnings at most).
    let run = w.db(&["lint"], &[], None)?.expect(0)?;
    assert!(!run.stdout.contains("error["), "{run}");

    // And a fresh database migrated with the new file equals the target.
    let (_fresh, fresh_url) = database().await?;
    w.db(
        &["push", "--env", "fresh"],
        &[("FRESH_DATABASE_URL", fresh_url.as_str())],
        None,
    )?
    .expect(0)?;
    let run = w
        .db(
            &["diff", "--from", "fresh", "--to", "staging"],
            &[
                (STAGING, url.as_str()),
                ("FRESH_DATABASE_URL", fresh_url.as_str()),
            ],
            None,
        )?
        .expect(0)?;
    assert!(
        run.stdout.starts_with("-- plover diff: no differences\n"),
        "{run}"
    );
    Ok(())
}

#[tokio::test]
async fn diff_as_json_lists_statements_with_their_hazards() -> Result<()> {
    let w = Workdir::new()?;
    let (a, a_url) = database().await?;
    let (_b, b_url) = database().await?;
    a.client()
        .await?
        .batch_execute("CREATE TABLE public.gone (id int PRIMARY KEY, body text)")
        .await?;
    let vars = [
        ("A_DATABASE_URL", a_url.as_str()),
        ("B_DATABASE_URL", b_url.as_str()),
    ];
    let run = w
        .db(
            &["diff", "--from", "a", "--to", "b", "--format", "json"],
            &vars,
            None,
        )?
        .expect(0)?;
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).with_context(|| format!("{run}"))?;
    assert_eq!(doc["from"], "a");
    assert_eq!(doc["to"], "b");
    assert_eq!(doc["empty"], false);
    let statements = doc["statements"].as_array().context("statements")?;
    let drop = statements
        .iter()
        .find(|s| s["sql"] == "DROP TABLE public.gone;")
        .with_context(|| format!("no DROP TABLE: {run}"))?;
    assert_eq!(drop["hazards"][0]["kind"], "data-loss");
    assert_eq!(doc["hazards"]["data-loss"], 1);

    // The other way round: the table comes back, with no hazard on a new table.
    let run = w
        .db(&["diff", "--from", "b", "--to", "a"], &vars, None)?
        .expect(0)?;
    assert!(
        run.stdout
            .contains("CREATE TABLE public.gone (\n    id integer NOT NULL,\n    body text\n);"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("ALTER TABLE public.gone ADD CONSTRAINT gone_pkey PRIMARY KEY (id);"),
        "{run}"
    );
    assert!(!run.stdout.contains("-- hazard"), "{run}");
    // Reading changed nothing: b still has no such table.
    let b = plover::connect(&b_url).await?;
    let tables = strings(
        &b,
        "SELECT tablename::text FROM pg_tables WHERE tablename = 'gone'",
    )
    .await?;
    assert!(tables.is_empty(), "{tables:?}");
    Ok(())
}

#[tokio::test]
async fn a_url_with_a_password_is_refused_without_printing_it() -> Result<()> {
    let w = Workdir::new()?;
    let run = w
        .db(
            &[
                "diff",
                "--from",
                "postgres://u:Sup3rS3cret@127.0.0.1:1/x",
                "--to",
                "local",
            ],
            &[],
            None,
        )?
        .expect(2)?;
    assert!(
        !run.stdout.contains("Sup3rS3cret") && !run.stderr.contains("Sup3rS3cret"),
        "{run}"
    );
    assert!(run.stderr.contains("NAME_DATABASE_URL"), "{run}");
    Ok(())
}

#[tokio::test]
async fn status_drift_compares_the_applied_migrations_with_the_target() -> Result<()> {
    let w = Workdir::new()?;
    let _local = LocalServer::isolate(&w)?;
    let (db, url) = database().await?;
    staging(&w, &["push"], &url)?.expect(0)?;
    // A pending migration is not drift: only what was applied is replayed.
    std::fs::write(
        w.migrations().join("29990101000000_pending.sql"),
        "create table public.later (id int);\n",
    )?;
    let run = staging(&w, &["status", "--drift"], &url)?.expect(0)?;
    assert!(run.stdout.contains("drift: none"), "{run}");
    assert!(run.stdout.contains(", 1 pending"), "{run}");

    db.client()
        .await?
        .batch_execute("ALTER TABLE public.budgets ADD COLUMN note text")
        .await?;
    let run = staging(&w, &["status", "--drift"], &url)?.expect(1)?;
    assert!(
        run.stdout
            .contains("drift: staging differs from what its applied migrations create"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("  ALTER TABLE public.budgets ADD COLUMN note text;"),
        "{run}"
    );
    assert!(!run.stdout.contains("later"), "{run}");
    let run = staging(&w, &["status", "--drift", "--json"], &url)?.expect(1)?;
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(doc["drift"]["drifted"], true, "{run}");
    // Without --drift, status reads nothing more than before.
    staging(&w, &["status"], &url)?.expect(0)?;
    Ok(())
}

#[tokio::test]
async fn sync_makes_the_target_equal_to_the_source_with_rows_or_changes_nothing() -> Result<()> {
    let w = Workdir::new()?;
    let (a, a_url) = database().await?;
    let (_b, b_url) = database().await?;
    a.client()
        .await?
        .batch_execute(
            "CREATE TABLE public.owners (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);
             CREATE TABLE public.tags (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                       owner_id bigint NOT NULL REFERENCES public.owners (id), label text);
             INSERT INTO public.owners (name) SELECT 'o' || g FROM generate_series(1, 5) g;
             INSERT INTO public.tags (owner_id, label) SELECT 1 + g % 5, 't' || g FROM generate_series(1, 40) g;",
        )
        .await?;
    let vars = [
        ("A_DATABASE_URL", a_url.as_str()),
        ("B_DATABASE_URL", b_url.as_str()),
    ];
    let tables = |url: String| async move {
        let c = plover::connect(&url).await?;
        strings(
            &c,
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        .await
    };

    // No terminal and no --confirm: refused before anything runs.
    let run = w
        .db(&["sync", "--from", "a", "--env", "b"], &vars, None)?
        .expect(2)?;
    assert!(run.stderr.contains("--confirm b"), "{run}");
    assert!(tables(b_url.clone()).await?.is_empty());

    // The rows of tags alone break their foreign key on b: the whole sync is undone.
    let run = w
        .db(
            &[
                "sync",
                "--from",
                "a",
                "--env",
                "b",
                "--data",
                "tags",
                "--confirm",
                "b",
            ],
            &vars,
            None,
        )?
        .expect(2)?;
    assert!(run.stderr.contains("public.tags"), "{run}");
    assert!(tables(b_url.clone()).await?.is_empty(), "{run}");

    let run = w
        .db(
            &[
                "sync",
                "--from",
                "a",
                "--env",
                "b",
                "--data",
                "owners,public.tags",
                "--confirm",
                "b",
            ],
            &vars,
            None,
        )?
        .expect(0)?;
    assert!(run.stdout.contains("public.tags"), "{run}");
    assert!(run.stdout.contains("40"), "{run}");
    let run = w
        .db(&["diff", "--from", "a", "--to", "b"], &vars, None)?
        .expect(0)?;
    assert!(
        run.stdout.starts_with("-- plover diff: no differences\n"),
        "{run}"
    );
    let b = plover::connect(&b_url).await?;
    let next = strings(
        &b,
        "INSERT INTO public.tags (owner_id, label) VALUES (1, 'new') RETURNING id::text",
    )
    .await?;
    assert_eq!(next, ["41"], "the identity continues past the copied rows");
    // Nothing left to do the second time.
    let run = w
        .db(
            &["sync", "--from", "a", "--env", "b", "--confirm", "b"],
            &vars,
            None,
        )?
        .expect(0)?;
    assert!(run.stdout.contains("nothing to do"), "{run}");
    Ok(())
}
