//! `db squash` as a process: the example project's first migrations become one
//! baseline file, checked by replaying it; the histories of two databases are
//! rewritten (one at the squash, one later from the baseline's header); a new database
//! built from the squashed set has the same schema; files that write rows are refused.

use anyhow::Result;
use plover_tests::{LocalServer, Run, Workdir, database, json, strings};

/// `db squash --to VERSION --on ENV --confirm ENV` with only `vars`.
fn squash_on(w: &Workdir, vars: &[(&str, &str)], version: &str, env: &str) -> Result<Run> {
    w.db(
        &["squash", "--to", version, "--on", env, "--confirm", env],
        vars,
        None,
    )
}

#[tokio::test]
async fn squash_writes_a_baseline_that_builds_the_same_schema_and_rewrites_histories() -> Result<()>
{
    let w = Workdir::new()?;
    let _local = LocalServer::isolate(&w)?;
    let (a, url_a) = database().await?;
    let (b, url_b) = database().await?;
    let vars = [
        ("STAGING_DATABASE_URL", url_a.as_str()),
        ("DATABASE_URL", url_b.as_str()),
    ];
    w.db(&["push", "--env", "staging"], &vars, None)?
        .expect(0)?;
    w.db(&["push"], &vars, None)?.expect(0)?;
    let files = w.migration_files()?;
    let count = files.len();
    let third = files[2].split('_').next().unwrap_or_default().to_owned();

    let run = w
        .db(&["squash", "--to", &third, "--dry-run"], &vars, None)?
        .expect(0)?;
    assert!(
        run.stdout
            .contains("replayed alone it builds the same schema"),
        "{run}"
    );
    assert!(run.stdout.contains("dry run: nothing was changed"), "{run}");
    assert_eq!(w.migration_files()?, files);

    let run = squash_on(&w, &vars, &third, "staging")?.expect(0)?;
    assert!(
        run.stdout
            .contains("staging: 3 history row(s) replaced by the baseline's"),
        "{run}"
    );
    let now = w.migration_files()?;
    assert_eq!(now.len(), count - 2, "{now:?}");
    assert_eq!(now[0], format!("{third}_baseline.sql"));
    assert_eq!(now[1..], files[3..]);
    let header = std::fs::read_to_string(w.migrations().join(&now[0]))?;
    assert_eq!(header.matches("-- squashed: ").count(), 3, "{header}");

    // staging: every file applied, nothing pending; the Supabase CLI's history too.
    let status = json(
        &w.db(&["status", "--env", "staging", "--json"], &vars, None)?
            .expect(0)?,
    )?;
    assert_eq!(
        (status["applied"].clone(), status["pending"].clone()),
        ((count - 2).into(), 0.into())
    );
    let cli = strings(
        &a.client().await?,
        "SELECT version FROM supabase_migrations.schema_migrations ORDER BY 1",
    )
    .await?;
    assert_eq!(cli.len(), count - 2, "{cli:?}");

    // local was not named: its rows of the squashed files are missing locally now,
    // until the same command rewrites them from the baseline's header.
    let run = w.db(&["status"], &vars, None)?.expect(1)?;
    assert!(
        run.stdout
            .contains("2 version(s) missing locally were squashed into")
            && run
                .stdout
                .contains(&format!("db squash --to {third} --on local")),
        "{run}"
    );
    let run = squash_on(&w, &vars, &third, "local")?.expect(0)?;
    assert!(
        run.stdout
            .contains("is the baseline of 3 squashed migration(s)")
            && run.stdout.contains("local: 3 history row(s) replaced"),
        "{run}"
    );
    w.db(&["status"], &vars, None)?.expect(0)?;
    let run = squash_on(&w, &vars, &third, "local")?.expect(0)?;
    assert!(
        run.stdout
            .contains("local: the history records the baseline already"),
        "{run}"
    );

    // A new database from the squashed set: the same schema as one migrated before.
    let (c, url_c) = database().await?;
    let fresh = [("QA_DATABASE_URL", url_c.as_str())];
    w.db(&["push", "--env", "qa"], &fresh, None)?.expect(0)?;
    let schemas = ["public".to_owned()];
    let before = plover::schema::inspect(&b.client().await?, &schemas).await?;
    let after = plover::schema::inspect(&c.client().await?, &schemas).await?;
    let diff = plover::schema::diff(&before, &after);
    assert!(diff.is_empty(), "{}", diff.to_sql());
    Ok(())
}

#[tokio::test]
async fn squash_refuses_files_that_write_rows() -> Result<()> {
    let w = Workdir::new()?;
    let files = w.migration_files()?;
    let second = files[1].split('_').next().unwrap_or_default().to_owned();
    let seed = format!("{}_kinds.sql", second.parse::<i64>()? - 1);
    std::fs::write(
        w.migrations().join(&seed),
        "create table public.kinds (k text primary key);\ninsert into public.kinds values ('cash');\n",
    )?;
    let before = w.migration_files()?;
    let run = w.db(&["squash", "--to", &second], &[], None)?.expect(2)?;
    assert!(
        run.stderr.contains("the squashed files write rows")
            && run
                .stderr
                .contains(&format!("{seed}:2: insert into public.kinds")),
        "{run}"
    );
    assert_eq!(w.migration_files()?, before);
    Ok(())
}
