//! `plover::testing`: fresh migrated databases from a template pool, isolation,
//! templates that follow the migrations, cleanup after killed runs, RLS as a user,
//! and the native provider as an unprivileged user.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use plover::testing::{self, Shim, TestDatabase};
use plover_tests::{Dir, MIGRATIONS, is_root, strings};

async fn exists(name: &str) -> Result<bool> {
    let server = testing::server().await?;
    let admin = plover::connect(&server.url("postgres")).await?;
    Ok(admin
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&name],
        )
        .await?
        .try_get(0)?)
}

/// The README's example: Row Level Security tested as real users.
#[tokio::test]
async fn rls_users_see_only_their_rows_anon_nothing_service_role_everything() -> Result<()> {
    let db = testing::fresh(&MIGRATIONS).await?;
    let alice = db.create_user("alice@example.com").await?;
    let bob = db.create_user("bob@example.com").await?;

    // Each user writes through RLS; user_id defaults to auth.uid().
    for user in [&alice, &bob] {
        let client = db.as_user(user).await?;
        client
            .execute(
                "INSERT INTO categories (name, kind) VALUES ($1, 'expense')",
                &[&format!("food of {}", user.email)],
            )
            .await?;
    }

    let as_alice = db.as_user(&alice).await?;
    let seen = strings(&as_alice, "SELECT name FROM categories ORDER BY name").await?;
    assert_eq!(seen, ["food of alice@example.com"]);
    // Alice cannot touch Bob's row either.
    let changed = as_alice
        .execute(
            "UPDATE categories SET name = 'mine' WHERE name LIKE '%bob%'",
            &[],
        )
        .await?;
    assert_eq!(changed, 0);

    let anon = db.as_anon().await?;
    let denied = anon.query("SELECT * FROM categories", &[]).await;
    assert!(denied.is_err(), "anon must not read categories");

    let service = db.as_service_role().await?;
    assert_eq!(
        strings(&service, "SELECT count(*)::text FROM categories").await?,
        ["2"]
    );
    Ok(())
}

#[tokio::test]
async fn parallel_tests_never_see_each_others_rows() -> Result<()> {
    let dir = Arc::new(Dir::with(&[(
        "1_items.sql",
        "create table items (id int primary key, owner text);",
    )])?);
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let body = |owner: &'static str| {
        let (dir, barrier) = (dir.clone(), barrier.clone());
        async move {
            let db = TestDatabase::fresh(&dir.migrator("items")?, Shim::Skip).await?;
            let client = db.client().await?;
            for i in 0..50 {
                client
                    .execute("INSERT INTO items VALUES ($1, $2)", &[&i, &owner])
                    .await?;
            }
            // Both have written before either reads.
            barrier.wait().await;
            let owners = strings(&client, "SELECT DISTINCT owner FROM items").await?;
            assert_eq!(owners, [owner]);
            assert_eq!(
                strings(&client, "SELECT count(*)::text FROM items").await?,
                ["50"]
            );
            Ok::<_, anyhow::Error>(db.name().to_owned())
        }
    };
    let (a, b) = tokio::try_join!(tokio::spawn(body("a")), tokio::spawn(body("b")))?;
    let (a, b) = (a?, b?);
    assert_ne!(a, b);
    // Dropped with their handles.
    assert!(!exists(&a).await? && !exists(&b).await?);
    Ok(())
}

#[tokio::test]
async fn a_changed_migration_gets_a_new_template() -> Result<()> {
    let dir = Dir::with(&[("1_t.sql", "create table t (a int);")])?;
    let first = dir.migrator("tpl")?;
    // Two taken, so the process keeps clones of the first set ready.
    drop(TestDatabase::fresh(&first, Shim::Skip).await?);
    let db = TestDatabase::fresh(&first, Shim::Skip).await?;
    let first_pool = testing::Pool::of(&first, Shim::Skip);
    first_pool.settled().await;
    let server = testing::server().await?;
    let admin = plover::connect(&server.url("postgres")).await?;
    let held = first_pool.held(&admin).await?;
    assert_eq!(held.len(), testing::Pool::size(), "{held:?}");
    assert_eq!(
        strings(
            &db.client().await?,
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = 't'"
        )
        .await?,
        ["a"]
    );
    dir.write("1_t.sql", "create table t (b int);")?;
    let second = dir.migrator("tpl")?;
    assert_ne!(
        testing::template_key(&first, Shim::Skip),
        testing::template_key(&second, Shim::Skip)
    );
    let db2 = TestDatabase::fresh(&second, Shim::Skip).await?;
    // None of the first set's clones.
    assert!(!held.iter().any(|h| h == db2.name()), "{held:?}");
    assert_eq!(
        strings(
            &db2.client().await?,
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = 't'"
        )
        .await?,
        ["b"]
    );
    // A migration added later, too.
    dir.write("2_u.sql", "create table u (id int);")?;
    let db3 = TestDatabase::fresh(&dir.migrator("tpl")?, Shim::Skip).await?;
    assert_eq!(
        strings(&db3.client().await?, "SELECT to_regclass('u')::text").await?,
        ["u"]
    );
    Ok(())
}

#[tokio::test]
async fn the_pool_hands_out_warm_clones() -> Result<()> {
    // A set of its own (a unique comment), so no earlier run has warmed its pool.
    let unique = format!(
        "-- {:?}\ncreate table w (id int);",
        std::time::SystemTime::now()
    );
    let dir = Dir::with(&[("1_w.sql", &unique)])?;
    let m = dir.migrator("warm")?;
    let pool = testing::Pool::of(&m, Shim::Skip);
    let first = TestDatabase::fresh(&m, Shim::Skip).await?;
    assert_eq!(first.claimed(), Some(testing::Claimed::Cold));
    // The background thread tops the shared pool up.
    pool.settled().await;
    let second = TestDatabase::fresh(&m, Shim::Skip).await?;
    assert_eq!(second.claimed(), Some(testing::Claimed::Warm));
    assert_eq!(
        strings(
            &second.client().await?,
            "SELECT version::text FROM plover.migrations"
        )
        .await?,
        ["1"]
    );
    // Two taken: the process now keeps clones of its own, and hands them out with the
    // connection that warmed them.
    pool.settled().await;
    let third = TestDatabase::fresh(&m, Shim::Skip).await?;
    assert_eq!(third.claimed(), Some(testing::Claimed::Held));
    assert_eq!(
        strings(
            &third.client().await?,
            "SELECT version::text FROM plover.migrations"
        )
        .await?,
        ["1"]
    );
    Ok(())
}

/// Run in a child process by the next test: takes a database, says its name, and
/// waits to be killed.
#[tokio::test]
#[ignore = "a helper run by killed_test_processes_leave_nothing_behind"]
async fn child_holds_a_database_until_killed() -> Result<()> {
    let db = TestDatabase::create().await?;
    println!("holding {}", db.name());
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(())
}

#[tokio::test]
async fn killed_test_processes_leave_nothing_behind() -> Result<()> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--ignored",
            "--exact",
            "testing::child_holds_a_database_until_killed",
            "--nocapture",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let name = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("holding ").map(str::to_owned))
        .context("the child did not report its database")?;
    assert!(exists(&name).await?);
    child.kill()?;
    child.wait()?;
    // What every new test process does first:
    let server = testing::server().await?;
    let admin = plover::connect(&server.url("postgres")).await?;
    let dropped = testing::clean_up(&admin).await?;
    assert!(dropped.contains(&name), "{dropped:?}");
    assert!(!exists(&name).await?);
    Ok(())
}

/// Run in a child process by the tests below, as `PLOVER_CHILD_MODE` says: takes three
/// databases of a set of its own, the third from the clones its process made for
/// itself, lets its pools refill, says which databases it was handed and which clones
/// its process holds unused, then ends: `exit` drops its databases first, `leak`
/// forgets two (the first, from the shared pool, and the held one), `kill` waits to be
/// killed.
#[tokio::test]
#[ignore = "a helper run by the tests of what ended test processes leave"]
async fn child_takes_databases_then_ends() -> Result<()> {
    let mode = std::env::var("PLOVER_CHILD_MODE")?;
    let unique = format!(
        "-- {:?}\ncreate table k (id int);",
        std::time::SystemTime::now()
    );
    let dir = Dir::with(&[("1_k.sql", &unique)])?;
    let m = dir.migrator("ended")?;
    let pool = testing::Pool::of(&m, Shim::Skip);
    let server = testing::server().await?;
    let admin = plover::connect(&server.url("postgres")).await?;
    let first = TestDatabase::fresh(&m, Shim::Skip).await?;
    let second = TestDatabase::fresh(&m, Shim::Skip).await?;
    pool.settled().await;
    let held = TestDatabase::fresh(&m, Shim::Skip).await?;
    ensure!(
        held.claimed() == Some(testing::Claimed::Held),
        "the third database was {:?}",
        held.claimed()
    );
    pool.settled().await;
    let unused = pool.held(&admin).await?;
    ensure!(
        !unused.is_empty(),
        "no clone was made ready for the process"
    );
    println!(
        "handed {} {} {} unused {}",
        first.name(),
        second.name(),
        held.name(),
        unused.join(" ")
    );
    match mode.as_str() {
        "exit" => drop((first, second, held)),
        "leak" => {
            std::mem::forget(first);
            std::mem::forget(held);
        }
        _ => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
        }
    }
    Ok(())
}

/// What a child run of `child_takes_databases_then_ends` said: the databases it was
/// handed, in order (two from the shared pool or cloned then, one of the clones its
/// process made for itself), and the clones its process held unused.
struct Ended {
    child: std::process::Child,
    handed: Vec<String>,
    unused: Vec<String>,
}

/// Starts `child_takes_databases_then_ends` in `mode` and reads what it says. Unless
/// killed, the child has ended when this returns, but is not reaped: until
/// [`std::process::Child::wait`] its pid stays in /proc, so no cleanup (of this test
/// or of another test's process) takes it for ended and drops its databases.
fn ended_child(mode: &str) -> Result<Ended> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--ignored",
            "--exact",
            "testing::child_takes_databases_then_ends",
            "--nocapture",
        ])
        .env("PLOVER_CHILD_MODE", mode)
        .env("PLOVER_TEST_POOL", "2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let said = lines
        .find_map(|l| l.strip_prefix("handed ").map(str::to_owned))
        .context("the child did not report its databases")?;
    if mode != "kill" {
        // To the end of its output: it has ended.
        lines.for_each(drop);
    }
    let (handed, unused) = said.split_once(" unused ").context("no unused clones")?;
    let words = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    Ok(Ended {
        child,
        handed: words(handed),
        unused: words(unused),
    })
}

/// The clones a process made for itself are its own: killed, it leaves them to the
/// next process's cleanup.
#[tokio::test]
async fn a_killed_processs_held_clones_are_dropped_by_the_next() -> Result<()> {
    let Ended {
        mut child,
        handed,
        unused,
    } = ended_child("kill")?;
    for name in handed.iter().chain(&unused) {
        assert!(exists(name).await?, "{name}");
    }
    child.kill()?;
    child.wait()?;
    // What every new test process does first:
    let server = testing::server().await?;
    let admin = plover::connect(&server.url("postgres")).await?;
    testing::clean_up(&admin).await?;
    for name in handed.iter().chain(&unused) {
        assert!(!exists(name).await?, "{name}");
    }
    Ok(())
}

/// Every process ends with clones it made for itself unused (statics are never
/// dropped): no test had them, so the leftover check of `cargo xtask test` does not
/// report them, and drops them.
#[tokio::test]
async fn an_ended_processs_unused_clones_are_dropped_not_reported() -> Result<()> {
    let Ended {
        mut child,
        handed,
        unused,
    } = ended_child("exit")?;
    let server = testing::server().await?;
    let admin = plover::connect(&server.url("postgres")).await?;
    for name in &handed {
        assert!(!exists(name).await?, "{name} was dropped with its handle");
    }
    // The child has ended and left them.
    for name in &unused {
        assert!(name.starts_with("plover_held_"), "{name}");
        assert!(exists(name).await?, "{name}");
    }
    let left = testing::left_behind(&admin).await?;
    assert!(child.wait()?.success());
    let left_after = testing::left_behind(&admin).await?;
    for name in &unused {
        assert!(!left.contains(name), "{name} reported in {left:?}");
        assert!(
            !left_after.contains(name),
            "{name} reported in {left_after:?}"
        );
        assert!(!exists(name).await?, "{name} was not dropped");
    }
    Ok(())
}

/// A database handed to a test and never dropped is reported after its process ended,
/// a held clone as much as a renamed one; the clones no test had are not.
#[tokio::test]
async fn a_leaked_test_database_is_reported() -> Result<()> {
    let Ended {
        mut child,
        handed,
        unused,
    } = ended_child("leak")?;
    let server = testing::server().await?;
    let admin = plover::connect(&server.url("postgres")).await?;
    let leaked = [handed[0].clone(), handed[2].clone()];
    let left = testing::left_behind(&admin).await;
    // Whatever was found, the next process's cleanup drops them.
    assert!(child.wait()?.success());
    testing::clean_up(&admin).await?;
    let left = left?;
    assert!(leaked[0].starts_with("plover_test_"), "{leaked:?}");
    assert!(leaked[1].starts_with("plover_held_"), "{leaked:?}");
    for name in &leaked {
        assert!(left.contains(name), "{name} not reported in {left:?}");
        assert!(!exists(name).await?, "{name}");
    }
    assert!(!left.contains(&handed[1]), "{} was dropped", handed[1]);
    for name in &unused {
        assert!(!left.contains(name), "{name} reported in {left:?}");
    }
    Ok(())
}

#[tokio::test]
#[ignore = "a helper run by the_native_provider_works_as_an_unprivileged_user"]
async fn child_runs_native_as_this_user() -> Result<()> {
    let db = testing::fresh(&MIGRATIONS).await?;
    let n = strings(
        &db.client().await?,
        "SELECT count(*)::text FROM plover.migrations",
    )
    .await?;
    println!("migrations {}", n[0]);
    drop(db);
    testing::stop_shared()?;
    Ok(())
}

#[test]
fn the_native_provider_works_as_an_unprivileged_user() -> Result<()> {
    use std::os::unix::process::CommandExt;
    if !is_root()? {
        // The whole suite already runs as an ordinary user.
        return Ok(());
    }
    // As root (CI), run a child as `nobody` with its own server.
    let state = tempfile::Builder::new()
        .prefix("plover-nobody-")
        .tempdir()?;
    std::os::unix::fs::chown(state.path(), Some(65534), Some(65534))?;
    let out = Command::new(std::env::current_exe()?)
        .args([
            "--ignored",
            "--exact",
            "testing::child_runs_native_as_this_user",
            "--nocapture",
        ])
        .env("PLOVER_STATE_DIR", state.path())
        .env("PLOVER_TEST_PROVIDER", "native")
        .env("HOME", state.path())
        .uid(65534)
        .gid(65534)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "the child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let n =
        plover_tests::migration_count(&plover_tests::workspace_root().join("supabase/migrations"))?;
    assert!(stdout.contains(&format!("migrations {n}")), "{stdout}");
    Ok(())
}
