//! `db push --fleet FILE` against several real databases: the canary alone first, the
//! rest a few at a time, the first failure stopping new pushes, a summary table, and a
//! state file with which the next run skips the targets already pushed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use plover_tests::{TestDatabase, Workdir, binary, database, strings};

const T: &str = "create table public.t (id int primary key);\n";
const U: &str = "create table public.u (id int);\n";

/// A project with two migrations of its own.
fn project() -> Result<Workdir> {
    let w = Workdir::new()?;
    w.remove_migrations()?;
    std::fs::write(w.migrations().join("20250101000000_t.sql"), T)?;
    std::fs::write(w.migrations().join("20250102000000_u.sql"), U)?;
    Ok(w)
}

async fn tables(db: &TestDatabase) -> Result<Vec<String>> {
    strings(
        &db.client().await?,
        "SELECT relname::text FROM pg_class WHERE relname IN ('t', 'u') AND relkind = 'r' ORDER BY 1",
    )
    .await
}

#[tokio::test]
async fn a_fleet_push_stops_at_the_first_failure_and_resumes_where_it_stopped() -> Result<()> {
    let w = project()?;
    let mut dbs = Vec::new();
    let mut vars = Vec::new();
    for name in ["A", "B", "C", "D"] {
        let (db, url) = database().await?;
        dbs.push(db);
        vars.push((format!("TENANT_{name}_DATABASE_URL"), url));
    }
    // tenant_b already has a table t: its first migration fails.
    dbs[1]
        .client()
        .await?
        .batch_execute("create table public.t (id int)")
        .await?;
    let fleet = w.path().join("tenants.txt");
    std::fs::write(
        &fleet,
        "# the canary\ntenant_a\ntenant_b\n\ntenant_c  # eu\ntenant_d\n",
    )?;
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let fleet_arg = fleet.to_string_lossy().into_owned();

    let run = w
        .db(
            &["push", "--fleet", &fleet_arg, "--concurrency", "1"],
            &vars,
            None,
        )?
        .expect(2)?;
    assert!(
        run.stdout.contains("applied 2, version now 20250102000000"),
        "{run}"
    );
    assert!(run.stdout.contains("FAILED: "), "{run}");
    assert!(
        run.stdout.contains("relation \"t\" already exists"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("4 target(s): 1 failed, 2 not started, 1 pushed"),
        "{run}"
    );
    assert_eq!(tables(&dbs[0]).await?, ["t", "u"]);
    assert_eq!(tables(&dbs[1]).await?, ["t"]);
    assert!(tables(&dbs[2]).await?.is_empty());
    assert!(tables(&dbs[3]).await?.is_empty());
    let state = std::fs::read_to_string(w.path().join("tenants.txt.state.json"))?;
    assert_eq!(
        state.matches("\"version\": 20250102000000").count(),
        1,
        "{state}"
    );

    // Fixed; the same command again: tenant_a is skipped, the rest pushed.
    dbs[1]
        .client()
        .await?
        .batch_execute("drop table public.t")
        .await?;
    let run = w
        .db(&["push", "--fleet", &fleet_arg], &vars, None)?
        .expect(0)?;
    assert!(
        run.stdout
            .contains("1 target(s) pushed with this migration set by an earlier run"),
        "{run}"
    );
    assert!(
        run.stdout.contains("4 target(s): 1 done before, 3 pushed"),
        "{run}"
    );
    for db in &dbs {
        assert_eq!(tables(db).await?, ["t", "u"]);
    }
    // Once more: every target is in the state file.
    let run = w
        .db(&["push", "--fleet", &fleet_arg], &vars, None)?
        .expect(0)?;
    assert!(run.stdout.contains("4 target(s): 4 done before"), "{run}");
    Ok(())
}

#[tokio::test]
async fn a_failing_canary_stops_the_fleet_and_a_bad_file_pushes_nothing() -> Result<()> {
    let w = project()?;
    let (bad, bad_url) = database().await?;
    let (good, good_url) = database().await?;
    bad.client()
        .await?
        .batch_execute("create table public.t (id int)")
        .await?;
    let vars = [
        ("CANARY_DATABASE_URL", bad_url.as_str()),
        ("REST_DATABASE_URL", good_url.as_str()),
    ];
    let fleet = w.path().join("fleet.txt");

    // The same database twice: refused before anything.
    std::fs::write(&fleet, "rest\ncanary\nREST\n")?;
    let fleet_arg = fleet.to_string_lossy().into_owned();
    let run = w
        .db(&["push", "--fleet", &fleet_arg], &vars, None)?
        .expect(2)?;
    assert!(
        run.stderr.contains("fleet.txt:3:") && run.stderr.contains("line 1 already"),
        "{run}"
    );
    assert!(tables(&good).await?.is_empty());

    std::fs::write(&fleet, "canary\nrest\n")?;
    let run = w
        .db(&["push", "--fleet", &fleet_arg, "--dry-run"], &vars, None)?
        .expect(0)?;
    assert!(
        run.stdout.contains("would apply 2 (dry run)")
            && run.stdout.contains("2 target(s): 2 to push"),
        "{run}"
    );
    assert!(!w.path().join("fleet.txt.state.json").exists());
    let run = w
        .db(&["push", "--fleet", &fleet_arg], &vars, None)?
        .expect(2)?;
    assert!(
        run.stdout.contains("2 target(s): 1 failed, 1 not started"),
        "{run}"
    );
    assert!(tables(&good).await?.is_empty());
    Ok(())
}

/// A fleet run killed while a target waits for its migration lock: the targets pushed
/// before it are in the state file already, the wait named the target and the holder,
/// and the next run pushes only the rest.
#[tokio::test]
async fn a_killed_fleet_run_leaves_the_targets_it_pushed_in_the_state_file() -> Result<()> {
    let w = project()?;
    let mut dbs = Vec::new();
    let mut vars = Vec::new();
    for name in ["A", "B", "C"] {
        let (db, url) = database().await?;
        dbs.push(db);
        vars.push((format!("TENANT_{name}_DATABASE_URL"), url));
    }
    // Another session holds tenant_c's migration lock (the app of the copied plover.toml).
    let holder = dbs[2].client().await?;
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    let key = plover::lock_key(dbs[2].name(), "money_tracker");
    holder
        .query_one("SELECT pg_advisory_lock($1)", &[&key])
        .await?;
    let fleet = w.path().join("tenants.txt");
    std::fs::write(&fleet, "tenant_a\ntenant_b\ntenant_c\n")?;
    let fleet_arg = fleet.to_string_lossy().into_owned();

    let mut cmd = Command::new(binary("xtask")?);
    cmd.args(["db", "push", "--fleet", &fleet_arg, "--concurrency", "1"])
        .arg("--workdir")
        .arg(w.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.contains("DATABASE_URL") || k.starts_with("SUPABASE_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in &vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().context("starting xtask db push --fleet")?;
    // Read until tenant_c says it waits; the two before it are done by then.
    let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
    let mut seen = String::new();
    let mut line = String::new();
    let waiting = loop {
        line.clear();
        if stdout.read_line(&mut line)? == 0 {
            let _ = child.wait();
            bail!("the fleet ended without waiting for tenant_c's lock:\n{seen}");
        }
        seen.push_str(&line);
        if line.starts_with("tenant_c (") && line.contains("waiting up to") {
            break line.clone();
        }
    };
    let state = std::fs::read_to_string(w.path().join("tenants.txt.state.json"))?;
    child.kill()?;
    child.wait()?;
    ensure!(
        waiting.contains(&format!("held by backend pid {pid} ")),
        "the wait does not name the holder: {waiting}"
    );
    ensure!(
        state.matches("\"version\": 20250102000000").count() == 2,
        "the state file does not hold the two targets pushed before the wait:\n{state}\n{seen}"
    );
    assert!(tables(&dbs[2]).await?.is_empty());

    holder
        .query_one("SELECT pg_advisory_unlock($1)", &[&key])
        .await?;
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = w
        .db(&["push", "--fleet", &fleet_arg], &vars, None)?
        .expect(0)?;
    assert!(
        run.stdout
            .contains("2 target(s) pushed with this migration set by an earlier run")
            && run.stdout.contains("3 target(s): 2 done before, 1 pushed"),
        "{run}"
    );
    for db in &dbs {
        assert_eq!(tables(db).await?, ["t", "u"]);
    }
    Ok(())
}
