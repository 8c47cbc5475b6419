//! Rollbacks (`Migrator::down`, `db down`) and baselines (`db baseline`) against a
//! real server: down files newest first with their history rows, refusals that run
//! nothing, a down file that fails midway, another app's history left alone; a
//! database built by other means recorded as migrated.

use anyhow::{Result, bail};
use plover::{DownTo, Error};
use plover_tests::{Dir, LocalServer, TestDatabase, Workdir, database, json, snapshot, strings};

const A: &str = "create table a (id int primary key);\ninsert into a values (1), (2);\n";
const A_DOWN: &str = "drop table a;\n";
const B: &str = "create table b (id int primary key, a int references a);\n";
const B_DOWN: &str = "drop table b;\n";
const C: &str = "alter table b add column note text;\n";
const C_DOWN: &str = "alter table b drop column note;\n";

fn shop() -> Result<Dir> {
    Dir::with(&[
        ("1_a.sql", A),
        ("1_a.down.sql", A_DOWN),
        ("2_b.sql", B),
        ("2_b_down.sql", B_DOWN),
        ("3_c.sql", C),
        ("3_c.down.sql", C_DOWN),
    ])
}

async fn history(client: &tokio_postgres::Client) -> Result<Vec<String>> {
    strings(
        client,
        "SELECT app || ':' || version FROM plover.migrations ORDER BY app, version",
    )
    .await
}

async fn cli_history(client: &tokio_postgres::Client) -> Result<Vec<String>> {
    strings(
        client,
        "SELECT version FROM supabase_migrations.schema_migrations ORDER BY version",
    )
    .await
}

#[tokio::test]
async fn down_undoes_newest_first_with_the_history_rows_and_up_again_reapplies() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let dir = shop()?;
    let m = dir.migrator("shop")?;
    m.run(&mut client).await?;
    // Another app's history on the same database is never touched.
    let other = Dir::with(&[("7_o.sql", "create table o (id int);\n")])?;
    other.migrator("other")?.run(&mut client).await?;

    let planned: Vec<i64> = m
        .down_plan(&client, DownTo::Last(2))
        .await?
        .iter()
        .map(|m| m.version())
        .collect();
    assert_eq!(planned, [3, 2]);

    let report = m.down(&mut client, DownTo::Last(1)).await?;
    let undone: Vec<(i64, bool)> = report
        .undone
        .iter()
        .map(|u| (u.version, u.file.ends_with("/3_c.down.sql")))
        .collect();
    assert_eq!(undone, [(3, true)]);
    assert_eq!(report.version, Some(2));
    let columns = strings(
        &client,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'b' ORDER BY 1",
    )
    .await?;
    assert_eq!(columns, ["a", "id"]);
    assert_eq!(history(&client).await?, ["other:7", "shop:1", "shop:2"]);
    assert_eq!(cli_history(&client).await?, ["1", "2", "7"]);

    // --to 0: everything of the app, newest first (b before a, which b references).
    let report = m.down_to(&mut client, 0).await?;
    let undone: Vec<i64> = report.undone.iter().map(|u| u.version).collect();
    assert_eq!(undone, [2, 1]);
    assert_eq!(report.version, None);
    assert_eq!(history(&client).await?, ["other:7"]);
    assert_eq!(cli_history(&client).await?, ["7"]);
    let tables = strings(
        &client,
        "SELECT relname::text FROM pg_class WHERE relname IN ('a', 'b', 'o') ORDER BY 1",
    )
    .await?;
    assert_eq!(tables, ["o"]);

    // Nothing left: an empty rollback; then the ups apply again, all three.
    assert!(
        m.down(&mut client, DownTo::Last(5))
            .await?
            .undone
            .is_empty()
    );
    let again = m.run(&mut client).await?;
    assert_eq!(again.applied.len(), 3);
    Ok(())
}

#[tokio::test]
async fn down_refuses_before_running_anything() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[
        ("1_a.sql", A),
        ("1_a.down.sql", A_DOWN),
        ("2_b.sql", B),
        ("3_c.sql", C),
        ("3_c.down.sql", C_DOWN),
    ])?;
    dir.migrator("shop")?.run(&mut client).await?;
    let before = snapshot(&client).await?;

    // 2 has no down file: undoing 3 and 2 runs neither.
    let e = dir
        .migrator("shop")?
        .down(&mut client, DownTo::Last(2))
        .await
        .unwrap_err();
    let Error::DownRefused { problems, .. } = &e else {
        bail!("expected a refusal, got {e}");
    };
    assert_eq!(problems.len(), 1, "{e}");
    assert!(
        problems[0].contains("2_b.sql has no down file: write ")
            && problems[0].ends_with("2_b.down.sql"),
        "{e}"
    );
    assert_eq!(snapshot(&client).await?, before);

    // An up file edited since it was applied; a target version that is not applied.
    dir.write("3_c.sql", "alter table b add column note varchar(10);\n")?;
    let e = dir
        .migrator("shop")?
        .down(&mut client, DownTo::Last(1))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("3_c.sql changed since it was applied"),
        "{e}"
    );
    dir.write("3_c.sql", C)?;
    let e = dir
        .migrator("shop")?
        .down_to(&mut client, 9)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("version 9 is not applied"), "{e}");

    // A down file edited since its migration was applied is refused; once recorded
    // (repair), a down file that cannot run in a transaction is refused, not run half.
    dir.write(
        "3_c.down.sql",
        "-- plover:no-transaction\nalter table b drop column note;\n",
    )?;
    let e = dir
        .migrator("shop")?
        .down(&mut client, DownTo::Last(1))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("3_c.down.sql changed since")
            && e.to_string().contains("db repair --status applied 3"),
        "{e}"
    );
    dir.migrator("shop")?
        .repair(&mut client, 3, plover::Repair::Applied)
        .await?;
    let before = snapshot(&client).await?;
    let e = dir
        .migrator("shop")?
        .down(&mut client, DownTo::Last(1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot run in a transaction"), "{e}");
    assert_eq!(snapshot(&client).await?, before);
    Ok(())
}

#[tokio::test]
async fn a_failing_down_file_is_rolled_back_and_stops_the_rollback() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let dir = shop()?;
    // 2's down file fails on its second statement, after dropping b.
    dir.write("2_b_down.sql", "drop table b;\nselect 1 / 0;\n")?;
    dir.migrator("shop")?.run(&mut client).await?;

    let e = dir
        .migrator("shop")?
        .down(&mut client, DownTo::Version(0))
        .await
        .unwrap_err();
    let Error::DownFailed { failed, undone } = &e else {
        bail!("expected a failed rollback, got {e}");
    };
    assert_eq!(undone, &[3]);
    assert!(failed.file.ends_with("2_b_down.sql"), "{e}");
    assert_eq!((failed.line, failed.sqlstate.as_str()), (2, "22012"), "{e}");
    assert!(e.to_string().contains("undone before the failure"), "{e}");
    assert!(
        failed.down
            && e.to_string()
                .contains("the down file was rolled back; its migration stays applied")
            && !e.to_string().contains("nothing of it remains"),
        "{e}"
    );
    // 3 is undone; 2's drop was rolled back with it: b is there, 1 and 2 recorded.
    assert_eq!(history(&client).await?, ["shop:1", "shop:2"]);
    let b: bool = client
        .query_one("SELECT to_regclass('public.b') IS NOT NULL", &[])
        .await?
        .get(0);
    assert!(b, "the failed down file was not rolled back");
    Ok(())
}

/// `db down` on the example project, whose newest migration has a down file in
/// `supabase/migrations/down/`: the plan names what it drops; a protected environment
/// needs its name; then the rollback, and `db push` applies the migration again.
#[tokio::test]
async fn db_down_shows_what_it_drops_asks_and_undoes() -> Result<()> {
    let (db, url) = database().await?;
    let client = db.client().await?;
    let w = Workdir::new()?;
    let local = [("DATABASE_URL", url.as_str())];
    let prod = [("PROD_DATABASE_URL", url.as_str())];
    let newest = "20250224113540";
    w.db(&["push"], &local, None)?.expect(0)?;
    let count = w.migration_files()?.len();

    let run = w.db(&["down", "--dry-run"], &local, None)?.expect(0)?;
    assert!(
        run.stdout.contains(&format!(
            "  {newest}  add_updated_at_columns  with supabase/migrations/down/{newest}_add_updated_at_columns.sql"
        )) || run.stdout.contains(&format!("down/{newest}_add_updated_at_columns.sql")),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("alter table public.budgets drop column if exists updated_at;"),
        "{run}"
    );
    assert!(run.stdout.contains("dry run: nothing was changed"), "{run}");

    // A protected environment without its name, or an older migration without a down
    // file: refused, nothing changes.
    let before = snapshot(&client).await?;
    let run = w.db(&["down", "--env", "prod"], &prod, None)?.expect(2)?;
    assert!(run.stderr.contains("--confirm prod"), "{run}");
    let run = w
        .db(&["down", "--last", "2", "--confirm", "local"], &local, None)?
        .expect(2)?;
    assert!(
        run.stderr
            .contains("20250210083016_index_transactions_concurrently.sql has no down file"),
        "{run}"
    );
    assert_eq!(snapshot(&client).await?, before);

    let run = w
        .db(&["down", "--env", "prod", "--confirm", "prod"], &prod, None)?
        .expect(0)?;
    assert!(
        run.stdout
            .contains("undid 1 migration(s); now at 20250210083016"),
        "{run}"
    );
    let columns = strings(
        &client,
        "SELECT table_name::text FROM information_schema.columns WHERE column_name = 'updated_at' AND table_schema = 'public'",
    )
    .await?;
    assert!(columns.is_empty(), "{columns:?}");
    let status = json(&w.db(&["status", "--json"], &local, None)?.expect(0)?)?;
    assert_eq!(status["pending"], 1);
    assert_eq!(status["applied"], count - 1);

    w.db(&["push"], &local, None)?.expect(0)?;
    let status = json(&w.db(&["status", "--json"], &local, None)?.expect(0)?)?;
    assert_eq!(status["applied"], count);
    Ok(())
}

/// A database built without plover (the first three files run by hand) is baselined at
/// the third: those are recorded, nothing runs, and `db push` applies the rest.
#[tokio::test]
async fn db_baseline_records_without_running_and_push_applies_the_rest() -> Result<()> {
    let (db, url) = database().await?;
    let client = db.client().await?;
    let w = Workdir::new()?;
    let local = [("DATABASE_URL", url.as_str())];
    let files = w.migration_files()?;
    let count = files.len();
    for f in &files[..3] {
        client
            .batch_execute(&std::fs::read_to_string(w.migrations().join(f))?)
            .await?;
    }
    let third = files[2].split('_').next().unwrap_or_default().to_owned();

    // Not a migration: refused, nothing recorded.
    let before = snapshot(&client).await?;
    let run = w
        .db(
            &["baseline", "20990101000000", "--confirm", "local"],
            &local,
            None,
        )?
        .expect(2)?;
    assert!(
        run.stderr
            .contains("version 20990101000000 is not a migration"),
        "{run}"
    );
    assert_eq!(snapshot(&client).await?, before);

    let run = w
        .db(&["baseline", &third, "--confirm", "local"], &local, None)?
        .expect(0)?;
    assert!(
        run.stdout
            .contains("to record as applied (nothing runs), up to"),
        "{run}"
    );
    assert!(
        run.stdout.contains(&format!(
            "recorded 3 migration(s) as applied, up to {third}"
        )),
        "{run}"
    );
    let status = json(&w.db(&["status", "--json"], &local, None)?.expect(0)?)?;
    assert_eq!(
        (status["applied"].clone(), status["pending"].clone()),
        (3.into(), (count - 3).into())
    );
    assert_eq!(cli_history(&client).await?.len(), 3);
    // Again: nothing more to record.
    let run = w
        .db(&["baseline", &third, "--confirm", "local"], &local, None)?
        .expect(0)?;
    assert!(run.stdout.contains("recorded 0 migration(s)"), "{run}");

    let run = w.db(&["push"], &local, None)?.expect(0)?;
    assert_eq!(
        run.stdout.matches("applied 2025").count(),
        count - 3,
        "{run}"
    );
    Ok(())
}

/// The down file's checksum is recorded when its migration is applied: a down file
/// edited (or removed) since then is shown by `db status` and refused by a rollback
/// until `db repair --status applied` records it as reviewed.
#[tokio::test]
async fn an_edited_applied_down_file_is_reported_and_refused_until_recorded() -> Result<()> {
    let (db, url) = database().await?;
    let mut client = db.client().await?;
    let w = Workdir::new()?;
    let local = [("DATABASE_URL", url.as_str())];
    w.db(&["push"], &local, None)?.expect(0)?;
    let newest = "20250224113540";
    let down = w
        .migrations()
        .join(format!("down/{newest}_add_updated_at_columns.sql"));
    let recorded: Option<Vec<u8>> = client
        .query_one(
            "SELECT down_checksum FROM plover.migrations WHERE version = $1",
            &[&newest.parse::<i64>()?],
        )
        .await?
        .get(0);
    assert_eq!(
        recorded.as_deref(),
        Some(&plover::Checksum::of(&std::fs::read(&down)?).as_bytes()[..])
    );
    // Older migrations had no down file: nothing recorded.
    let without: i64 = client
        .query_one(
            "SELECT count(*) FROM plover.migrations WHERE down_checksum IS NULL",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(without as usize, w.migration_files()?.len() - 1);

    let text = std::fs::read_to_string(&down)?;
    std::fs::write(&down, format!("{text}-- reviewed again\n"))?;
    let status = json(&w.db(&["status", "--json"], &local, None)?.expect(0)?)?;
    let newest_entry = status["migrations"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|m| m["version"] == newest.parse::<i64>().unwrap())
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(newest_entry["down_edited"], true, "{status}");
    let run = w.db(&["status"], &local, None)?.expect(0)?;
    assert!(run.stdout.contains("down file edited since"), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "down/{newest}_add_updated_at_columns.sql is not the down file"
        )),
        "{run}"
    );

    let before = snapshot(&client).await?;
    let run = w
        .db(&["down", "--confirm", "local"], &local, None)?
        .expect(2)?;
    assert!(
        run.stderr
            .contains(&format!("db repair --status applied {newest}")),
        "{run}"
    );
    assert_eq!(snapshot(&client).await?, before);

    w.db(
        &[
            "repair",
            "--status",
            "applied",
            newest,
            "--confirm",
            "local",
        ],
        &local,
        None,
    )?
    .expect(0)?;
    let status = json(&w.db(&["status", "--json"], &local, None)?.expect(0)?)?;
    assert!(
        status["down_edited"].as_array().is_some_and(Vec::is_empty),
        "{status}"
    );
    w.db(&["down", "--confirm", "local"], &local, None)?
        .expect(0)?;

    // A history table from before the column: read as it is, upgraded by the first
    // write, with the down checksum recorded from then on.
    client
        .batch_execute("ALTER TABLE plover.migrations DROP COLUMN down_checksum")
        .await?;
    w.db(&["status"], &local, None)?.expect(0)?;
    let dir = Dir::with(&[("1_a.sql", A), ("1_a.down.sql", A_DOWN)])?;
    dir.migrator("shop")?.run(&mut client).await?;
    let recorded: Option<Vec<u8>> = client
        .query_one(
            "SELECT down_checksum FROM plover.migrations WHERE app = 'shop'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(
        recorded.as_deref(),
        Some(&plover::Checksum::of(A_DOWN.as_bytes()).as_bytes()[..])
    );
    Ok(())
}

/// `db down --check` in a shadow database on the local development server: the
/// example project's down file restores its schema; a down file that fails, one that
/// leaves a column, and a migration that no longer applies after it are each named.
#[tokio::test]
async fn db_down_check_runs_each_down_file_after_its_migration_and_compares() -> Result<()> {
    let w = Workdir::new()?;
    let _local = LocalServer::isolate(&w)?;
    let run = w.db(&["down", "--check"], &[], None)?.expect(0)?;
    assert!(
        run.stdout.contains("checking 1 down file(s)")
            && run.stdout.contains("every down file restores the schemas"),
        "{run}"
    );

    w.remove_migrations()?;
    let m = w.migrations();
    std::fs::create_dir_all(m.join("down"))?;
    let files = [
        (
            "20250101000000_a.sql",
            "create table public.a (id int primary key);\n",
        ),
        ("down/20250101000000_a.sql", "drop table public.a;\n"),
        ("20250102000000_b.sql", "create table public.b (id int);\n"),
        (
            "down/20250102000000_b.sql",
            "-- the wrong table\ndrop table public.missing;\n",
        ),
        (
            "20250103000000_c.sql",
            "alter table public.a add column note text;\ncreate index a_note on public.a (note);\n",
        ),
        ("down/20250103000000_c.sql", "drop index public.a_note;\n"),
        ("20250104000000_d.sql", "create table public.d (id int);\n"),
    ];
    for (name, sql) in files {
        std::fs::write(m.join(name), sql)?;
    }
    let run = w.db(&["down", "--check"], &[], None)?.expect(2)?;
    let out = &run.stdout;
    assert!(
        out.contains("ok      supabase/migrations/down/20250101000000_a.sql"),
        "{run}"
    );
    assert!(
        out.contains("FAILED  supabase/migrations/down/20250102000000_b.sql:\n")
            && out.contains(
                "supabase/migrations/down/20250102000000_b.sql:2:1: table \"missing\" does not exist"
            )
            && out.contains("the down file was rolled back; its migration stays applied"),
        "{run}"
    );
    assert!(
        out.contains("DIFFERS supabase/migrations/down/20250103000000_c.sql")
            && out.to_lowercase().contains("drop column note"),
        "{run}"
    );
    assert!(
        out.contains("stopped: supabase/migrations/20250103000000_c.sql does not apply again")
            && out.contains("already exists"),
        "{run}"
    );
    assert!(
        out.contains("1 migration(s) without a down file") && out.contains("3 finding(s)"),
        "{run}"
    );

    // Fixed: every down file restores, and each migration applies again after it.
    std::fs::write(
        m.join("down/20250102000000_b.sql"),
        "drop table public.b;\n",
    )?;
    std::fs::write(
        m.join("down/20250103000000_c.sql"),
        "drop index public.a_note;\nalter table public.a drop column note;\n",
    )?;
    let run = w.db(&["down", "--check"], &[], None)?.expect(0)?;
    assert_eq!(run.stdout.matches("\nok      ").count(), 3, "{run}");
    Ok(())
}
