//! The handles tools use besides tests' own databases, on the test server:
//! [`TestDatabase::create_named`] and [`TestDatabase::close`], and [`Pool`].

use super::*;

const DATABASE_EXISTS: &str = "SELECT count(*) FROM pg_database WHERE datname = $1";
const SESSIONS: &str = "SELECT pid FROM pg_stat_activity WHERE datname = $1";
const COMMENT: &str = "
SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1";

async fn exists(admin: &Client, name: &str) -> i64 {
    admin
        .query_one(DATABASE_EXISTS, &[&name])
        .await
        .unwrap()
        .get(0)
}

async fn comment(admin: &Client, name: &str) -> Option<String> {
    admin.query_one(COMMENT, &[&name]).await.unwrap().get(0)
}

async fn backend(client: &Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// A migration set of its own (by app name), so no other test shares its template.
fn migrator(app: &str) -> crate::Migrator {
    let files = [(
        "m/1_t.sql".to_owned(),
        &b"create table t (id int primary key);"[..],
    )];
    crate::Migrator::new(crate::Source::from_files("m", files).unwrap()).app(app)
}

#[tokio::test]
async fn a_named_database_replaces_a_leftover_and_close_drops_it_under_open_sessions() {
    let server = server().await.unwrap();
    let admin = crate::connect(&server.url("postgres")).await.unwrap();
    let name = format!("plover_scratch_{}", std::process::id());
    // What a crashed run left: a database of that name, with a table and a session.
    admin
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
        .await
        .unwrap();
    let left = crate::connect(&server.url(&name)).await.unwrap();
    left.batch_execute("CREATE TABLE old (id int)")
        .await
        .unwrap();

    let db = TestDatabase::create_named(&server, &name).await.unwrap();
    assert_eq!(db.name(), name);
    assert_eq!(db.url(), server.url(&name));
    assert_eq!(db.claimed(), None);
    let client = db.client().await.unwrap();
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'old'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "the leftover was replaced by an empty database");

    // A session still open does not keep it: its connection is terminated.
    db.close().await.unwrap();
    assert_eq!(exists(&admin, &name).await, 0);
    assert!(client.batch_execute("SELECT 1").await.is_err());
}

#[tokio::test]
async fn a_named_database_goes_with_its_handle() {
    let server = server().await.unwrap();
    let admin = crate::connect(&server.url("postgres")).await.unwrap();
    let name = format!("plover_scratch_drop_{}", std::process::id());
    let db = TestDatabase::create_named(&server, &name).await.unwrap();
    let _session = db.client().await.unwrap();
    assert_eq!(exists(&admin, &name).await, 1);
    drop(db);
    assert_eq!(exists(&admin, &name).await, 0);
}

/// One test for the process-wide size, so no other test changes it meanwhile.
#[tokio::test]
async fn the_pool_names_the_template_fresh_builds_and_removes_it_with_its_clones() {
    let server = server().await.unwrap();
    let admin = crate::connect(&server.url("postgres")).await.unwrap();
    let migrator = migrator(&format!("pool_{}", std::process::id()));
    let pool = Pool::of(&migrator, Shim::Skip);
    assert_ne!(pool, Pool::of(&migrator, Shim::Apply));

    // The size is the process's, the environment is left alone.
    let env = std::env::var_os("PLOVER_TEST_POOL");
    Pool::set_size(2);
    assert_eq!(Pool::size(), 2);
    assert_eq!(std::env::var_os("PLOVER_TEST_POOL"), env);

    let db = TestDatabase::fresh(&migrator, Shim::Skip).await.unwrap();
    assert_eq!(db.claimed(), Some(Claimed::Cold));
    assert!(db.name().starts_with("plover_test_"), "{}", db.name());
    assert_eq!(exists(&admin, pool.template()).await, 1);
    // The claim started a refill, which parks clones in the shared pool and stops at
    // the size. One database taken makes no clone for this process yet, so a process
    // per test (nextest) leaves none unused.
    pool.settled().await;
    let ready = pool.ready(&admin).await.unwrap();
    assert_eq!(
        ready.len(),
        2,
        "ready clones of {}: {ready:?}",
        pool.template()
    );
    for name in &ready {
        assert_eq!(exists(&admin, name).await, 1);
    }
    assert_eq!(pool.held(&admin).await.unwrap(), Vec::<String>::new());
    drop(db);

    // The second comes from the shared pool; from then on the process keeps clones of
    // its own, under its own names, each with one session open: the one that warmed it.
    let second = TestDatabase::fresh(&migrator, Shim::Skip).await.unwrap();
    assert_eq!(second.claimed(), Some(Claimed::Warm));
    assert!(
        second.name().starts_with("plover_test_"),
        "{}",
        second.name()
    );
    drop(second);
    pool.settled().await;
    let held = pool.held(&admin).await.unwrap();
    assert_eq!(
        held.len(),
        2,
        "held clones of {}: {held:?}",
        pool.template()
    );
    assert_eq!(pool.ready(&admin).await.unwrap().len(), 2, "refilled too");
    let ours = format!("plover_held_{}_{}_", pool::host_tag(), std::process::id());
    let mut sessions = Vec::new();
    for name in &held {
        assert!(
            name.starts_with(&ours),
            "{name} is not a held name of this process"
        );
        assert_eq!(
            comment(&admin, name).await,
            None,
            "{name} is marked before its hand-out"
        );
        let pids = admin.query(SESSIONS, &[name]).await.unwrap();
        assert_eq!(pids.len(), 1, "{name}");
        sessions.push(pids[0].get::<_, i32>(0));
    }
    // Not handed out, so not a leftover.
    let left = left_behind(&admin).await.unwrap();
    assert!(!held.iter().any(|n| left.contains(n)), "{left:?}");

    // A held hand-out is the oldest, marked handed out, and its first client is the
    // session that warmed it; a second client is a new one.
    let warm = TestDatabase::fresh(&migrator, Shim::Skip).await.unwrap();
    assert_eq!(warm.claimed(), Some(Claimed::Held));
    assert_eq!(warm.name(), held[0]);
    assert_eq!(warm.url(), server.url(&held[0]));
    assert_eq!(
        comment(&admin, warm.name()).await.as_deref(),
        Some(pool::MARK)
    );
    let client = warm.client().await.unwrap();
    assert_eq!(backend(&client).await, sessions[0]);
    assert!(!sessions.contains(&backend(&warm.client().await.unwrap()).await));
    // Handed out, so a leftover while it lives; the other is still not.
    let left = left_behind(&admin).await.unwrap();
    assert!(left.contains(&held[0]), "{left:?}");
    assert!(!left.contains(&held[1]), "{left:?}");
    drop(client);
    drop(warm);
    assert_eq!(exists(&admin, &held[0]).await, 0);

    // Refills off: emptied, it stays empty and the next claim is cold.
    Pool::set_size(0);
    assert_eq!(Pool::size(), 0);
    pool.settled().await;
    pool.empty(&admin).await.unwrap();
    assert_eq!(exists(&admin, &held[1]).await, 0);
    assert!(pool.held(&admin).await.unwrap().is_empty());
    assert!(pool.ready(&admin).await.unwrap().is_empty());
    let cold = TestDatabase::fresh(&migrator, Shim::Skip).await.unwrap();
    assert_eq!(cold.claimed(), Some(Claimed::Cold));
    drop(cold);

    pool.settled().await;
    pool.remove(&admin).await.unwrap();
    assert_eq!(exists(&admin, pool.template()).await, 0);
    assert!(pool.ready(&admin).await.unwrap().is_empty());

    Pool::set_size(None);
    let from_env = env
        .and_then(|v| v.to_str()?.parse().ok())
        .unwrap_or(Pool::DEFAULT_SIZE);
    assert_eq!(Pool::size(), from_env);
}
