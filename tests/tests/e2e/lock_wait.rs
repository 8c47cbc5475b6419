//! Waiting for locks, as the user sees it: `cargo xtask db push` names the session
//! that holds the migration lock while it waits and when it gives up, and a migration
//! statement that hits `lock_timeout` names the sessions that may block it.
//!
//! The holders are real sessions on the test server, held until the waiter returns
//! or until the waiter says it waits: no sleeps.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use plover_tests::{Dir, TestDatabase, Workdir, binary, database, snapshot};
use tokio_postgres::Client;

/// The app of the repository's `supabase/plover.toml`, which `Workdir` copies.
const APP: &str = "money_tracker";

/// A session with `application_name` set, and its backend pid.
async fn session(db: &TestDatabase, application_name: &str) -> Result<(Client, i32)> {
    let client = db.client().await?;
    client
        .execute(
            "SELECT set_config('application_name', $1, false)",
            &[&application_name],
        )
        .await?;
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    Ok((client, pid))
}

#[tokio::test]
async fn push_names_the_lock_holder_while_waiting_and_when_giving_up() -> Result<()> {
    let (db, url) = database().await?;
    let (holder, pid) = session(&db, "lock-holder-test").await?;
    let key = plover::lock_key(db.name(), APP);
    holder
        .query_one("SELECT pg_advisory_lock($1)", &[&key])
        .await?;
    let before = snapshot(&db.client().await?).await?;

    let w = Workdir::new()?;
    let run = tokio::task::spawn_blocking(move || {
        w.db(
            &["push", "--lock-wait", "1"],
            &[("DATABASE_URL", url.as_str())],
            None,
        )
    })
    .await??
    .expect(2)?;
    let held = format!(
        "held by backend pid {pid} (application_name 'lock-holder-test', idle; last query: SELECT pg_advisory_lock($1))"
    );
    ensure!(
        run.stderr.contains(&format!(
            "waiting up to 1 s for the migration lock of app `{APP}`, {held}"
        )),
        "the wait does not name the holder:\n{run}"
    );
    ensure!(
        run.stderr.contains("timed out after")
            && run.stderr.contains(&format!(
                "waiting for the migration lock of app `{APP}` {held}"
            )),
        "the error does not name the holder:\n{run}"
    );
    ensure!(
        snapshot(&db.client().await?).await? == before,
        "a push that never got the lock changed the database"
    );
    drop(holder);
    Ok(())
}

#[tokio::test]
async fn push_shows_the_wait_then_applies_once_the_holder_lets_go() -> Result<()> {
    let (db, url) = database().await?;
    let (holder, pid) = session(&db, "lock-holder-test").await?;
    let key = plover::lock_key(db.name(), APP);
    holder
        .query_one("SELECT pg_advisory_lock($1)", &[&key])
        .await?;

    let w = Workdir::new()?;
    let mut cmd = Command::new(binary("xtask")?);
    cmd.args(["db", "push", "--workdir"])
        .arg(w.path())
        .env("DATABASE_URL", &url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if (k.contains("DATABASE_URL") && k != "DATABASE_URL") || k.starts_with("SUPABASE_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().context("starting xtask db push")?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let reading = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    // Read stderr until the push says whom it waits for; then let go of the lock.
    let mut stderr = BufReader::new(child.stderr.take().context("no stderr")?);
    let mut seen = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if stderr.read_line(&mut line)? == 0 {
            let _ = child.wait();
            anyhow::bail!("push ended without saying it waits for the lock:\n{seen}");
        }
        seen.push_str(&line);
        if line.starts_with("waiting up to 300 s for the migration lock") {
            break;
        }
    }
    ensure!(
        line.contains(&format!("held by backend pid {pid} ")),
        "the wait does not name the holder: {line}"
    );
    holder
        .query_one("SELECT pg_advisory_unlock($1)", &[&key])
        .await?;
    stderr.read_to_string(&mut seen)?;
    let status = child.wait()?;
    let stdout = reading
        .join()
        .map_err(|_| anyhow::anyhow!("the stdout reader panicked"))??;
    ensure!(
        status.success(),
        "push failed after the lock was freed:\n{stdout}\n{seen}"
    );
    ensure!(
        seen.contains("took the migration lock after "),
        "the end of the wait is not shown:\n{seen}"
    );
    let migrations = w.migration_files()?.len();
    ensure!(
        stdout.contains(&format!("{migrations} applied in ")),
        "not everything was applied:\n{stdout}"
    );
    Ok(())
}

#[tokio::test]
async fn a_lock_timeout_names_the_blocking_session_and_its_statement() -> Result<()> {
    let db = TestDatabase::create().await?;
    db.client()
        .await?
        .batch_execute("CREATE TABLE t (id int)")
        .await?;
    let (blocker, pid) = session(&db, "blocker-test").await?;
    blocker.batch_execute("BEGIN").await?;
    blocker
        .batch_execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .await?;

    let dir = Dir::with(&[("1_add_note.sql", "ALTER TABLE t ADD COLUMN note text;\n")])?;
    let mut client = db.client().await?;
    let e = match dir
        .migrator("shop")?
        .lock_timeout(Duration::from_millis(100))
        .run(&mut client)
        .await
    {
        Ok(report) => anyhow::bail!("the migration ran past the lock: {report:?}"),
        Err(e) => e,
    };
    ensure!(e.sqlstate() == Some("55P03"), "not a lock timeout: {e}");
    let text = e.to_string();
    ensure!(
        text.contains(&format!(
            "backend pid {pid} (application_name 'blocker-test', idle in transaction, transaction open for "
        )),
        "the error does not name the blocking session:\n{text}"
    );
    ensure!(
        text.contains(
            "holds AccessExclusiveLock on t; last query: LOCK TABLE t IN ACCESS EXCLUSIVE MODE)"
        ),
        "the error does not name the blocker's lock and statement:\n{text}"
    );
    // The migration was rolled back and can run once the blocker is gone.
    blocker.batch_execute("ROLLBACK").await?;
    let report = dir.migrator("shop")?.run(&mut client).await?;
    ensure!(report.applied.len() == 1, "{report:?}");
    Ok(())
}
