//! Templates and the pools of ready clones: a migrated database in the time of one
//! round trip.
//!
//! The migration set (and the Supabase baseline) is applied once into a template
//! database named after the set's hash (`plover_tpl_<key>`). Clones are made with
//! `CREATE DATABASE ... TEMPLATE` by a background thread of each test process, and get
//! the template's `ALTER DATABASE ... SET` settings too (the baseline's search path),
//! which `CREATE DATABASE` does not copy. A template has two pools:
//!
//! - **The shared pool**, `plover_ready_<key>_<pid>_<n>`: parked clones, warmed once and
//!   left without a session. Any process claims one by renaming it to its own name
//!   (`plover_test_<host>_<pid>_<n>`), which is atomic across processes: two processes
//!   can never claim the same clone. It serves a process's first databases of a set
//!   (all of them under a runner that starts a process per test, such as nextest), and
//!   it outlives the processes that fill it.
//! - **A process's held clones**, `plover_held_<host>_<pid>_<n>`: once a process has
//!   taken [`Pool::HELD_AFTER`] databases of a set, its thread makes clones for that
//!   process alone, each created under a name of the process (so no other process
//!   ever takes it) and warmed by a connection that stays open, undriven while it
//!   waits ([`Parked`]). A hand-out takes one from memory, marks it handed out
//!   (`COMMENT ON DATABASE`, one round trip on that connection, driven by the caller's
//!   runtime: no other thread in between) and hands the connection over as the
//!   test's first client. Renaming
//!   it to a `plover_test_` name instead would need that connection closed first
//!   (`ALTER DATABASE ... RENAME` refuses a database with sessions) and a new one
//!   opened after, which alone costs more than the whole hand-out should.
//!
//! Handed out means `plover_test_*`, or `plover_held_*` with the mark: that is what
//! [`left_behind`] reports. A held clone without the mark was never a test's, and every
//! process leaves its unused ones when it ends (statics are never dropped): they are
//! dropped, not reported, by [`left_behind`] and, with everything else of ended
//! processes, by the next process's [`clean_up`]. A clone is named by its `CREATE
//! DATABASE`, so one being made when its process ends is never taken for a test's.
//! Held clones are filed by template, so a changed set never gets a stale one.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::parked::Parked;
use super::{Server, TestingError, apply_supabase_shim, quote_ident};
use crate::Migrator;

/// The Supabase baseline's version (`extensions.plover_shim_version()`). Templates are
/// keyed by the baseline's text, so those built with an older one are not reused.
pub const SHIM_VERSION: u32 = 2;

/// Databases handed to tests that are not held clones: `plover_test_<host>_<pid>_<n>`.
const TEST: &str = "plover_test_";
/// Clones a process made for itself: `plover_held_<host>_<pid>_<n>`.
const HELD: &str = "plover_held_";
/// Clones being made and warmed, before they are parked in the shared pool:
/// `plover_fill_<host>_<pid>_<n>`.
const FILL: &str = "plover_fill_";
/// The comment a held clone gets when it is handed out: from then on it is a test's.
pub(crate) const MARK: &str = "plover: handed out to a test";

const READY: &str = "
SELECT datname::text FROM pg_database
 WHERE left(datname, length($1)) = $1 ORDER BY datname";
const EXISTING: &str = "SELECT datname::text FROM pg_database WHERE datname = ANY($1)";
const TEMPLATE_READY: &str = "SELECT datistemplate FROM pg_database WHERE datname = $1";
const OURS: &str = "
SELECT datname::text FROM pg_database WHERE left(datname, length($1)) = $1";
/// Held clones never handed out (no comment): `$1` the prefix.
const UNMARKED: &str = "
SELECT datname::text FROM pg_database
 WHERE left(datname, length($1)) = $1 AND shobj_description(oid, 'pg_database') IS NULL";
/// Databases handed out to tests: `$1` [`TEST`], `$2` [`HELD`] (marked ones only).
const HANDED_OUT: &str = "
SELECT datname::text FROM pg_database
 WHERE left(datname, length($1)) = $1
    OR (left(datname, length($2)) = $2 AND shobj_description(oid, 'pg_database') IS NOT NULL)
 ORDER BY 1";
/// A database's own settings (`ALTER DATABASE ... SET`, and `ALTER ROLE ... IN DATABASE
/// ... SET` with the role's name): one `name=value` a row.
const DATABASE_SETTINGS: &str = "
SELECT coalesce(r.rolname::text, ''), c.setting
  FROM pg_db_role_setting s
  JOIN pg_database d ON d.oid = s.setdatabase
  LEFT JOIN pg_roles r ON r.oid = s.setrole
 CROSS JOIN unnest(s.setconfig) AS c(setting)
 WHERE d.datname = $1";
const SET_LOCAL: &str = "SELECT set_config($1, $2, true)";

/// Whether the Supabase baseline goes into the template before the migrations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shim {
    /// Apply it (the default; it skips itself on a real Supabase database).
    #[default]
    Apply,
    /// Plain Postgres as it comes.
    Skip,
}

/// The size set by [`Pool::set_size`]; [`NO_SIZE`] when none is.
static SIZE: AtomicUsize = AtomicUsize::new(NO_SIZE);
const NO_SIZE: usize = usize::MAX;

/// The pools of ready clones of one migration set's template: the shared pool's and
/// this process's held clones' names, and the size every pool of this process is
/// filled to.
///
/// Tests never need it ([`TestDatabase::fresh`](super::TestDatabase::fresh) takes
/// from the pools by itself); it is for tools that look at the pools or bring them to
/// a known state, such as `cargo xtask bench fresh`.
///
/// ```no_run
/// # async fn f(migrator: &plover::Migrator) -> Result<(), plover::testing::TestingError> {
/// use plover::testing::{Pool, Shim};
///
/// let server = plover::testing::server().await?;
/// let admin = plover::connect(&server.url("postgres")).await?;
/// let pool = Pool::of(migrator, Shim::Skip);
/// Pool::set_size(0); // refills off from now on
/// pool.settled().await; // the last refill has ended
/// pool.empty(&admin).await?; // the next claim clones on the spot
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    template: String,
}

impl Pool {
    /// How many ready clones a pool keeps when `PLOVER_TEST_POOL` is unset.
    pub const DEFAULT_SIZE: usize = 4;

    /// How many databases of a set a process takes (from the shared pool) before its
    /// thread makes clones of that set for the process alone. Under a runner that
    /// starts a process per test (nextest), a test that takes one database makes no
    /// clone for its process, which would go unused.
    pub const HELD_AFTER: usize = 2;

    /// The pools of `migrator`'s template (its set and app name) with or without the
    /// Supabase baseline, as [`TestDatabase::fresh`](super::TestDatabase::fresh)
    /// names it.
    pub fn of(migrator: &Migrator, shim: Shim) -> Pool {
        Pool {
            template: format!("plover_tpl_{}", template_key(migrator, shim)),
        }
    }

    /// The template database's name: `plover_tpl_<key>`.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// How many ready clones every pool of this process is filled to at its next
    /// top-up (the shared pool of each template it uses, and its own held clones of
    /// each it has taken [`Pool::HELD_AFTER`] of): [`Pool::set_size`]'s, else
    /// `PLOVER_TEST_POOL`, else [`Pool::DEFAULT_SIZE`]. 0 turns refills off.
    pub fn size() -> usize {
        match SIZE.load(Ordering::Relaxed) {
            NO_SIZE => std::env::var("PLOVER_TEST_POOL")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(Pool::DEFAULT_SIZE),
            n => n,
        }
    }

    /// Sets [`Pool::size`] for this process (the environment is left alone); `None`
    /// goes back to `PLOVER_TEST_POOL`.
    pub fn set_size(size: impl Into<Option<usize>>) {
        SIZE.store(
            size.into().filter(|&n| n != NO_SIZE).unwrap_or(NO_SIZE),
            Ordering::Relaxed,
        );
    }

    /// The shared pool's ready clones (any process may claim them), in order.
    pub async fn ready(&self, admin: &Client) -> Result<Vec<String>, TestingError> {
        names(
            admin,
            READY,
            &ready_prefix(&self.template),
            "listing ready test databases",
        )
        .await
    }

    /// This process's held clones of the template on `admin`'s server, oldest first:
    /// made for it alone, each with the open connection that warmed it, and handed
    /// out before the shared pool is tried.
    pub async fn held(&self, admin: &Client) -> Result<Vec<String>, TestingError> {
        let ours = held_names(&self.template);
        let existing: HashSet<String> =
            names(admin, EXISTING, &ours, "listing held test databases")
                .await?
                .into_iter()
                .collect();
        Ok(ours.into_iter().filter(|n| existing.contains(n)).collect())
    }

    /// Waits until no refill of this template is asked for or running in this
    /// process: then its pools stay as they are until the next hand-out (or another
    /// process's).
    pub async fn settled(&self) {
        loop {
            let mut notified = std::pin::pin!(SETTLED.notified());
            notified.as_mut().enable();
            let filling = local()
                .iter()
                .any(|((_, t), l)| *t == self.template && l.filling.is_some());
            if !filling {
                return;
            }
            notified.await;
        }
    }

    /// Drops the shared pool's ready clones and this process's held ones (a refill
    /// running meanwhile may make more: set the size to 0 and wait for
    /// [`Pool::settled`] first).
    pub async fn empty(&self, admin: &Client) -> Result<(), TestingError> {
        let held = self.held(admin).await?;
        // Out of this process's pool (their connections closed) before they are dropped.
        for clones in local()
            .iter_mut()
            .filter(|((_, t), _)| *t == self.template)
            .map(|(_, l)| &mut l.held)
        {
            clones.retain(|c| !held.contains(&c.name));
        }
        for name in held.iter().chain(&self.ready(admin).await?) {
            drop_database(admin, name, "dropping a ready test database").await?;
        }
        Ok(())
    }

    /// Drops the template, then the ready clones. The template goes first, so no
    /// clone can be begun after; one that a refill had begun is made ready after this
    /// returns, so call it with no refill running (the size 0 and [`Pool::settled`]).
    /// The next [`TestDatabase::fresh`](super::TestDatabase::fresh) of a process that
    /// has not used the template yet builds it again.
    pub async fn remove(&self, admin: &Client) -> Result<(), TestingError> {
        let context = "looking up a template database";
        let exists = admin
            .query_opt(TEMPLATE_READY, &[&self.template])
            .await
            .map_err(crate::Error::db(context))?
            .is_some();
        if exists {
            // A template cannot be dropped while marked as one.
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE {} WITH IS_TEMPLATE false",
                    quote_ident(&self.template)
                ))
                .await
                .map_err(crate::Error::db("unmarking a template database"))?;
            drop_database(admin, &self.template, "dropping a template database").await?;
        }
        self.empty(admin).await
    }
}

/// The names `query` lists for its one parameter.
async fn names<P>(
    admin: &Client,
    query: &str,
    param: &P,
    context: &'static str,
) -> Result<Vec<String>, TestingError>
where
    P: tokio_postgres::types::ToSql + Sync,
{
    admin
        .query(query, &[param])
        .await
        .map_err(crate::Error::db(context))?
        .iter()
        .map(|row| row.try_get(0).map_err(crate::Error::db(context)))
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// `DROP DATABASE IF EXISTS … WITH (FORCE)`: its sessions are terminated.
pub(crate) async fn drop_database(
    admin: &Client,
    name: &str,
    context: &'static str,
) -> Result<(), TestingError> {
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(name)
        ))
        .await
        .map_err(crate::Error::db(context))?;
    Ok(())
}

/// The template's key: the migration set, the app, and the baseline (its text).
pub fn template_key(migrator: &Migrator, shim: Shim) -> String {
    let mut h = Sha256::new();
    h.update(migrator.source().digest().0);
    h.update(migrator.app_name().as_bytes());
    h.update([0]);
    // The baseline's text, not just its version, so any change to it rebuilds.
    match shim {
        Shim::Apply => h.update(super::SUPABASE_SHIM.as_bytes()),
        Shim::Skip => h.update([0; 4]),
    }
    hex::encode(&h.finalize()[..8])
}

/// A short tag of this machine, so cleanup only touches this machine's databases.
pub(crate) fn host_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        hex::encode(&Sha256::digest(host.trim().as_bytes())[..3])
    })
}

/// A new name of this process's: `<kind><host>_<pid>_<n>`.
fn process_name(kind: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{kind}{}_{}_{}",
        host_tag(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A name for a test database of this process: `plover_test_<host>_<pid>_<n>`.
pub(crate) fn test_database_name() -> String {
    process_name(TEST)
}

/// Whether the process whose pid follows `prefix` in `name` has ended.
fn ended(prefix: &str, name: &str) -> bool {
    let pid = name[prefix.len()..].split('_').next().unwrap_or("");
    !pid.parse::<u32>().is_ok_and(|p| {
        p == std::process::id() || std::path::Path::new(&format!("/proc/{p}")).exists()
    })
}

/// Drops this machine's test databases whose process is gone, once per process.
pub(crate) async fn clean_up_once(admin: &Client) -> Result<(), TestingError> {
    static DONE: tokio::sync::OnceCell<Vec<String>> = tokio::sync::OnceCell::const_new();
    DONE.get_or_try_init(|| clean_up(admin)).await?;
    Ok(())
}

/// Drops this machine's test databases whose process is gone (a crashed, killed or
/// ended test run): those handed out, and its held clones and half-made ones; returns
/// their names.
pub async fn clean_up(admin: &Client) -> Result<Vec<String>, TestingError> {
    let mut dropped = Vec::new();
    for kind in [TEST, HELD, FILL] {
        let prefix = format!("{kind}{}_", host_tag());
        for name in names(admin, OURS, &prefix, "listing test databases").await? {
            if ended(&prefix, &name) {
                match drop_database(admin, &name, "dropping a leftover test database").await {
                    Ok(()) => dropped.push(name),
                    Err(e) => {
                        eprintln!("plover: could not drop leftover test database {name}: {e}")
                    }
                }
            }
        }
    }
    Ok(dropped)
}

/// The databases handed out to tests and still on the server, as `cargo xtask test`
/// checks after a run: `plover_test_*` and the held clones marked handed out, of any
/// process. First the clones of this machine's ended processes that no test ever had
/// are dropped (held clones without the mark, half-made ones): every process leaves
/// its unused held clones when it ends, and they are not leaks.
///
/// ```no_run
/// # async fn f() -> Result<(), plover::testing::TestingError> {
/// let server = plover::testing::server().await?;
/// let admin = plover::connect(&server.url("postgres")).await?;
/// let left = plover::testing::left_behind(&admin).await?;
/// assert!(left.is_empty(), "test databases left behind: {left:?}");
/// # Ok(()) }
/// ```
pub async fn left_behind(admin: &Client) -> Result<Vec<String>, TestingError> {
    for (kind, unused) in [(HELD, UNMARKED), (FILL, OURS)] {
        let prefix = format!("{kind}{}_", host_tag());
        for name in names(admin, unused, &prefix, "listing unused test databases").await? {
            if ended(&prefix, &name) {
                drop_database(admin, &name, "dropping an unused test database").await?;
            }
        }
    }
    let context = "listing test databases";
    admin
        .query(HANDED_OUT, &[&TEST, &HELD])
        .await
        .map_err(crate::Error::db(context))?
        .iter()
        .map(|row| row.try_get(0).map_err(crate::Error::db(context)))
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// The template of `migrator` on `server`, built if needed. Once a process has seen a
/// template ready it asks the server no more; the first call of a process also drops
/// the leftovers of dead test processes.
pub(crate) async fn known_template(
    server: &Server,
    migrator: &Migrator,
    shim: Shim,
) -> Result<String, TestingError> {
    static KNOWN: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let key = (server.url("postgres"), template_key(migrator, shim));
    let known = |k: &(String, String)| KNOWN.lock().is_ok_and(|v| v.contains(k));
    if known(&key) {
        return Ok(format!("plover_tpl_{}", key.1));
    }
    let mut admin = crate::connect(&key.0).await?;
    clean_up_once(&admin).await?;
    let name = template(server, &mut admin, migrator, shim).await?;
    if let Ok(mut v) = KNOWN.lock() {
        v.push(key);
    }
    Ok(name)
}

/// Makes sure the template of `migrator` exists, building it if needed; returns its
/// name. Concurrent builders (threads or processes) serialise on an advisory lock.
pub(crate) async fn template(
    server: &Server,
    admin: &mut Client,
    migrator: &Migrator,
    shim: Shim,
) -> Result<String, TestingError> {
    let name = format!("plover_tpl_{}", template_key(migrator, shim));
    if is_template(admin, &name).await? {
        return Ok(name);
    }
    let url = server.url(&name);
    let lock_name = format!("template {name}");
    let (built, _) = crate::lock::with_lock(
        admin,
        &lock_name,
        Duration::from_secs(600),
        async |admin: &mut Client| Ok(build(admin, &name, &url, migrator, shim).await),
    )
    .await?;
    built?;
    Ok(name)
}

/// Builds the template in place. A database counts as a template only once marked so
/// at the end, so the leftover of a crashed build is dropped and rebuilt.
async fn build(
    admin: &Client,
    name: &str,
    url: &str,
    migrator: &Migrator,
    shim: Shim,
) -> Result<(), TestingError> {
    if is_template(admin, name).await? {
        return Ok(());
    }
    drop_database(admin, name, "dropping an unfinished template").await?;
    let q = quote_ident(name);
    admin
        .batch_execute(&format!("CREATE DATABASE {q}"))
        .await
        .map_err(crate::Error::db("creating a template database"))?;
    let mut client = crate::connect(url).await?;
    if shim == Shim::Apply {
        apply_supabase_shim(&client).await?;
    }
    migrator.run(&mut client).await?;
    drop(client);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {q} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true"
        ))
        .await
        .map_err(crate::Error::db("marking the template database"))?;
    Ok(())
}

async fn is_template(admin: &Client, name: &str) -> Result<bool, TestingError> {
    let context = "looking up a template database";
    let row = admin
        .query_opt(TEMPLATE_READY, &[&name])
        .await
        .map_err(crate::Error::db(context))?;
    Ok(match row {
        Some(r) => r.try_get(0).map_err(crate::Error::db(context))?,
        None => false,
    })
}

/// A database handed to a test: its name, where it came from, and for a held clone
/// the open connection that warmed it.
pub(crate) struct HandedOut {
    pub name: String,
    pub claimed: Claimed,
    pub warm: Option<Parked>,
}

/// Hands out a database of `template` on `server`: one of this process's held clones
/// (marked handed out over the connection that warmed it, which comes along), else one
/// from the shared pool claimed by rename, else one cloned now, both by the pool
/// thread. Then the pools are topped up.
pub(crate) async fn claim(server: &Server, template: &str) -> Result<HandedOut, TestingError> {
    let key: Key = (server.url("postgres"), template.to_owned());
    local().entry(key.clone()).or_default().taken += 1;
    let handed = match take_held(&key).await {
        Some(held) => held,
        None => claim_shared(server, template).await?,
    };
    ask_top_up(server, &key);
    Ok(handed)
}

/// The oldest of this process's held clones of the key's template, marked handed out
/// over its own connection, driven by the caller's runtime until the mark is made.
/// One that cannot be marked (its database was dropped meanwhile) is passed over.
async fn take_held(key: &Key) -> Option<HandedOut> {
    loop {
        let mut held = local().get_mut(key)?.held.pop_front()?;
        let mark = format!(
            "COMMENT ON DATABASE {} IS '{MARK}'",
            quote_ident(&held.name)
        );
        match held.warm.execute(&mark).await {
            Ok(()) => {
                return Some(HandedOut {
                    name: held.name,
                    claimed: Claimed::Held,
                    warm: Some(held.warm),
                });
            }
            Err(e) => {
                eprintln!(
                    "plover: could not hand out test database {}: {e}",
                    held.name
                );
                drop(held.warm);
                // Marked or not, no test has it: it must not be taken for a leak.
                let _ = super::drop_now(&key.0, &held.name).await;
            }
        }
    }
}

/// Claims a clone from the shared pool under a new name of this process, or clones
/// one now when none is ready, on the pool thread.
async fn claim_shared(server: &Server, template: &str) -> Result<HandedOut, TestingError> {
    let target = test_database_name();
    let (reply, answer) = tokio::sync::oneshot::channel();
    send(Job::Claim {
        server: server.clone(),
        template: template.to_owned(),
        target: target.clone(),
        reply,
    })?;
    let claimed = answer.await.map_err(|_| TestingError::Io {
        what: "claiming a test database".into(),
        source: std::io::Error::other("the pool thread stopped"),
    })??;
    Ok(HandedOut {
        name: target,
        claimed,
        warm: None,
    })
}

/// Runs on the pool thread, over an admin connection it keeps open, so a claim from
/// the shared pool costs two round trips and no connect.
async fn claim_on(admin: &Client, template: &str, target: &str) -> Result<Claimed, TestingError> {
    for ready in names(
        admin,
        READY,
        &ready_prefix(template),
        "listing ready test databases",
    )
    .await?
    {
        let sql = format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_ident(&ready),
            quote_ident(target)
        );
        match admin.batch_execute(&sql).await {
            Ok(()) => return Ok(Claimed::Warm),
            // Another process got it first.
            Err(e)
                if e.code() == Some(&SqlState::UNDEFINED_DATABASE)
                    || e.code() == Some(&SqlState::OBJECT_IN_USE) =>
            {
                continue;
            }
            Err(e) => return Err(crate::Error::db("claiming a ready test database")(e).into()),
        }
    }
    clone(admin, template, target, "cloning the template").await?;
    Ok(Claimed::Cold)
}

/// `CREATE DATABASE target TEMPLATE template`, then the template's own settings, which
/// the server does not copy: each is set from the value it has in the template (with
/// `set_config` in a transaction, then `SET ... FROM CURRENT`, so list values such as
/// a search path keep their quoting).
async fn clone(
    admin: &Client,
    template: &str,
    target: &str,
    context: &'static str,
) -> Result<(), TestingError> {
    admin
        .batch_execute(&format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(target),
            quote_ident(template)
        ))
        .await
        .map_err(crate::Error::db(context))?;
    let context = "copying the template's settings to a clone";
    let mut settings = Vec::new();
    for row in admin
        .query(DATABASE_SETTINGS, &[&template])
        .await
        .map_err(crate::Error::db(context))?
    {
        let role: String = row.try_get(0).map_err(crate::Error::db(context))?;
        let setting: String = row.try_get(1).map_err(crate::Error::db(context))?;
        if let Some((name, value)) = setting.split_once('=') {
            settings.push((role, name.to_owned(), value.to_owned()));
        }
    }
    if settings.is_empty() {
        return Ok(());
    }
    admin
        .batch_execute("BEGIN")
        .await
        .map_err(crate::Error::db(context))?;
    let copied = async {
        for (role, name, value) in &settings {
            admin.execute(SET_LOCAL, &[name, value]).await?;
            let scope = match role.as_str() {
                "" => format!("DATABASE {}", quote_ident(target)),
                role => format!(
                    "ROLE {} IN DATABASE {}",
                    quote_ident(role),
                    quote_ident(target)
                ),
            };
            admin
                .batch_execute(&format!(
                    "ALTER {scope} SET {} FROM CURRENT",
                    quote_ident(name)
                ))
                .await?;
        }
        Ok::<(), tokio_postgres::Error>(())
    }
    .await;
    let end = if copied.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = admin.batch_execute(end).await;
    copied.map_err(crate::Error::db(context))?;
    ended.map_err(crate::Error::db(context))?;
    Ok(())
}

/// Where a test's database came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claimed {
    /// A clone this process made ahead for itself, handed over with the connection
    /// that warmed it (the database is named `plover_held_*`).
    Held,
    /// A clone from the shared pool (a rename).
    Warm,
    /// No clone was ready: the template was cloned on the spot.
    Cold,
}

fn ready_prefix(template: &str) -> String {
    format!(
        "plover_ready_{}_",
        template.trim_start_matches("plover_tpl_")
    )
}

/// A server (its admin URL) and a template.
type Key = (String, String);

/// What this process keeps of one template's pools on one server.
#[derive(Default)]
struct Local {
    /// Held clones ready to hand out, oldest first.
    held: VecDeque<Held>,
    /// Databases of the template this process has taken.
    taken: usize,
    /// `Some` while a top-up is asked for or running; `Some(true)` once asked again
    /// meanwhile, so that it counts once more before it ends.
    filling: Option<bool>,
}

/// A clone made for this process alone, with the connection that warmed it (kept
/// open and undriven: it becomes the test's first client).
struct Held {
    name: String,
    warm: Parked,
}

fn local() -> MutexGuard<'static, HashMap<Key, Local>> {
    static LOCAL: LazyLock<Mutex<HashMap<Key, Local>>> = LazyLock::new(Mutex::default);
    // Every change is made whole under the lock, so a panic elsewhere leaves it sound.
    LOCAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Told when a top-up ends, for [`Pool::settled`].
static SETTLED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// The names of this process's held clones of `template`, on any server.
fn held_names(template: &str) -> Vec<String> {
    local()
        .iter()
        .filter(|((_, t), _)| t == template)
        .flat_map(|(_, l)| l.held.iter().map(|c| c.name.clone()))
        .collect()
}

/// Work for the pool thread.
enum Job {
    /// Claim from the shared pool, or clone now.
    Claim {
        server: Server,
        template: String,
        target: String,
        reply: tokio::sync::oneshot::Sender<Result<Claimed, TestingError>>,
    },
    /// Top the pools of a template up.
    TopUp { server: Server, template: String },
}

/// Hands a job to the process's pool thread, which outlives each test's runtime: it
/// keeps one admin connection per server for claims, runs top-ups in tasks of their
/// own alongside, and drives the held clones' connections.
fn send(job: Job) -> Result<(), TestingError> {
    static TX: OnceLock<Option<tokio::sync::mpsc::UnboundedSender<Job>>> = OnceLock::new();
    let tx = TX.get_or_init(|| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        std::thread::Builder::new()
            .name("plover-pool".into())
            .spawn(move || rt.block_on(serve(rx)))
            .ok()
            .map(|_| tx)
    });
    tx.as_ref()
        .and_then(|tx| tx.send(job).ok())
        .ok_or_else(|| TestingError::Io {
            what: "starting the pool thread".into(),
            source: std::io::Error::other("the pool thread is not running"),
        })
}

async fn serve(mut rx: tokio::sync::mpsc::UnboundedReceiver<Job>) {
    let mut admins: HashMap<String, Client> = HashMap::new();
    while let Some(job) = rx.recv().await {
        match job {
            Job::Claim {
                server,
                template,
                target,
                reply,
            } => {
                let url = server.url("postgres");
                if admins.get(&url).is_none_or(Client::is_closed) {
                    match crate::connect(&url).await {
                        Ok(c) => {
                            admins.insert(url.clone(), c);
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e.into()));
                            continue;
                        }
                    }
                }
                let Some(admin) = admins.get(&url) else {
                    continue;
                };
                let _ = reply.send(claim_on(admin, &template, &target).await);
            }
            Job::TopUp { server, template } => {
                tokio::spawn(top_up(server, template));
            }
        }
    }
}

/// Asks the pool thread to top the key's pools up. One top-up at a time per key: one
/// asked for while another runs makes that one count once more before it ends, so
/// no hand-out goes unreplaced.
fn ask_top_up(server: &Server, key: &Key) {
    {
        let mut local = local();
        let l = local.entry(key.clone()).or_default();
        if let Some(again) = &mut l.filling {
            *again = true;
            return;
        }
        l.filling = Some(false);
    }
    let job = Job::TopUp {
        server: server.clone(),
        template: key.1.clone(),
    };
    if let Err(e) = send(job) {
        if let Some(l) = local().get_mut(key) {
            l.filling = None;
        }
        SETTLED.notify_waiters();
        eprintln!("plover: could not refill the test database pool: {e}");
    }
}

/// Fills the key's pools, counting once more each time it was asked again meanwhile,
/// then says it has ended.
async fn top_up(server: Server, template: String) {
    let key: Key = (server.url("postgres"), template);
    let filled = async {
        let admin = filler(&key.0).await?;
        loop {
            fill(&server, &admin, &key).await?;
            let mut local = local();
            let l = local.entry(key.clone()).or_default();
            if l.filling != Some(true) {
                l.filling = None;
                drop(local);
                idle_fillers().entry(key.0.clone()).or_default().push(admin);
                return Ok::<(), TestingError>(());
            }
            l.filling = Some(false);
        }
    }
    .await;
    if filled.is_err()
        && let Some(l) = local().get_mut(&key)
    {
        l.filling = None;
    }
    SETTLED.notify_waiters();
    if let Err(e) = filled {
        eprintln!("plover: could not refill the test database pool: {e}");
    }
}

/// Admin connections of ended top-ups, per server, kept for the next: a top-up starts
/// with every hand-out, and a connect would make the server start a backend while
/// the test uses its database. One top-up uses one at a time (cloning copies the
/// template's settings in a transaction of its own).
fn idle_fillers() -> MutexGuard<'static, HashMap<String, Vec<Client>>> {
    static IDLE: LazyLock<Mutex<HashMap<String, Vec<Client>>>> = LazyLock::new(Mutex::default);
    IDLE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An idle admin connection to `url` for a top-up, else a new one.
async fn filler(url: &str) -> Result<Client, TestingError> {
    let idle = idle_fillers()
        .get_mut(url)
        .and_then(|idle| std::iter::from_fn(|| idle.pop()).find(|c| !c.is_closed()));
    match idle {
        Some(admin) => Ok(admin),
        None => Ok(crate::connect(url).await?),
    }
}

/// Makes clones until this process's held clones (once it has taken
/// [`Pool::HELD_AFTER`] databases of the template) and then the shared pool hold
/// [`Pool::size`]; the held ones first, since this process's tests wait for them.
async fn fill(server: &Server, admin: &Client, key: &Key) -> Result<(), TestingError> {
    let template = &key.1;
    loop {
        let size = Pool::size();
        let (held, taken) = local().get(key).map_or((0, 0), |l| (l.held.len(), l.taken));
        if taken >= Pool::HELD_AFTER && held < size {
            let held = make_held(server, admin, template).await?;
            local().entry(key.clone()).or_default().held.push_back(held);
            continue;
        }
        let prefix = ready_prefix(template);
        let ready = names(admin, READY, &prefix, "listing ready test databases").await?;
        if ready.len() >= size {
            return Ok(());
        }
        park(server, admin, template, &prefix).await?;
    }
}

/// A clone for this process alone, created under a held name of the process, then
/// warmed by a connection that stays open, undriven until a test takes it (a clone has
/// no relation cache file, pg_internal.init, until its first connection builds it,
/// which would otherwise cost the test ~3 ms). If the process ends first, it is a
/// clone no test had.
async fn make_held(server: &Server, admin: &Client, template: &str) -> Result<Held, TestingError> {
    let name = process_name(HELD);
    let made = async {
        clone(
            admin,
            template,
            &name,
            "cloning the template for this process",
        )
        .await?;
        let mut warm = Parked::open(&server.url(&name)).await?;
        warm.execute("SELECT 1")
            .await
            .map_err(crate::Error::db("warming a held test database"))?;
        Ok::<_, TestingError>(warm)
    }
    .await;
    match made {
        Ok(warm) => Ok(Held { name, warm }),
        Err(e) => {
            // Not left half-made.
            let _ = drop_database(admin, &name, "dropping a half-made clone").await;
            Err(e)
        }
    }
}

/// A clone for the shared pool: made under a staging name and connected to once, then
/// parked under `prefix` (the connection closed, since a rename needs none open).
async fn park(
    server: &Server,
    admin: &Client,
    template: &str,
    prefix: &str,
) -> Result<(), TestingError> {
    let staging = process_name(FILL);
    let suffix = &staging[FILL.len() + host_tag().len() + 1..];
    clone(
        admin,
        template,
        &staging,
        "cloning the template for the pool",
    )
    .await?;
    let warm = crate::connect(&server.url(&staging)).await?;
    warm.batch_execute("SELECT 1")
        .await
        .map_err(crate::Error::db("warming a ready test database"))?;
    drop(warm);
    // RENAME waits (up to 5 s, in the server) for that session to end.
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_ident(&staging),
            quote_ident(&format!("{prefix}{suffix}"))
        ))
        .await
        .map_err(crate::Error::db("parking a ready test database"))?;
    Ok(())
}
