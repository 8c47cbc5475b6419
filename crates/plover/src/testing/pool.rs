//! Templates and the pool of ready clones: a migrated database in the time of a
//! rename and a connect.
//!
//! The migration set (and the Supabase baseline) is applied once into a template
//! database named after the set's hash; clones are made with `CREATE DATABASE ...
//! TEMPLATE` by a background thread and parked as `plover_ready_<hash>_*`. A clone gets
//! the template's `ALTER DATABASE ... SET` settings too (the baseline's search path),
//! which `CREATE DATABASE` does not copy. A test claims one by
//! renaming it to its own name, which is atomic across processes: two processes can
//! never claim the same clone. Leftovers of crashed test processes are dropped the
//! first time a process asks for a database.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::{Server, TestingError, apply_supabase_shim, quote_ident};
use crate::Migrator;

/// The Supabase baseline's version (`extensions.plover_shim_version()`). Templates are
/// keyed by the baseline's text, so those built with an older one are not reused.
pub const SHIM_VERSION: u32 = 2;

const READY: &str = "
SELECT datname::text FROM pg_database
 WHERE left(datname, length($1)) = $1 ORDER BY datname";
const TEMPLATE_READY: &str = "SELECT datistemplate FROM pg_database WHERE datname = $1";
const OURS: &str = "
SELECT datname::text FROM pg_database WHERE left(datname, length($1)) = $1";
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

/// The pool of ready clones of one migration set's template: its database names,
/// and the size every pool of this process is filled to.
///
/// Tests never need it ([`TestDatabase::fresh`](super::TestDatabase::fresh) claims
/// from the pool by itself); it is for tools that look at the pool or bring it to a
/// known state, such as `cargo xtask bench fresh`.
///
/// ```no_run
/// # async fn f(migrator: &plover::Migrator) -> Result<(), plover::testing::TestingError> {
/// use plover::testing::{Pool, Shim};
///
/// let server = plover::testing::server().await?;
/// let admin = plover::connect(&server.url("postgres")).await?;
/// let pool = Pool::of(migrator, Shim::Skip);
/// Pool::set_size(0); // refills off from now on
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

    /// The pool of `migrator`'s template (its set and app name) with or without the
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
    /// top-up: [`Pool::set_size`]'s, else `PLOVER_TEST_POOL`, else
    /// [`Pool::DEFAULT_SIZE`]. 0 turns refills off.
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

    /// The ready clones' names, in order.
    pub async fn ready(&self, admin: &Client) -> Result<Vec<String>, TestingError> {
        let context = "listing ready test databases";
        admin
            .query(READY, &[&ready_prefix(&self.template)])
            .await
            .map_err(crate::Error::db(context))?
            .iter()
            .map(|row| row.try_get(0).map_err(crate::Error::db(context)))
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }

    /// Drops the ready clones (a refill running meanwhile may park more: set the
    /// size to 0 and let the last refill finish first).
    pub async fn empty(&self, admin: &Client) -> Result<(), TestingError> {
        for name in self.ready(admin).await? {
            drop_database(admin, &name, "dropping a ready test database").await?;
        }
        Ok(())
    }

    /// Drops the template, then the ready clones. The template goes first, so no
    /// clone can be begun after; one that a refill had begun is parked after this
    /// returns, so call it with no refill running (the pool full, or the size 0 and
    /// the last refill done). The next
    /// [`TestDatabase::fresh`](super::TestDatabase::fresh) of a process that has
    /// not used the template yet builds it again.
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
fn host_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        hex::encode(&Sha256::digest(host.trim().as_bytes())[..3])
    })
}

/// A name for a test database of this process: `plover_test_<host>_<pid>_<n>`.
pub(crate) fn test_database_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "plover_test_{}_{}_{}",
        host_tag(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Drops this machine's test databases whose process is gone, once per process.
pub(crate) async fn clean_up_once(admin: &Client) -> Result<(), TestingError> {
    static DONE: tokio::sync::OnceCell<Vec<String>> = tokio::sync::OnceCell::const_new();
    DONE.get_or_try_init(|| clean_up(admin)).await?;
    Ok(())
}

/// Drops this machine's test databases (and half-made pool clones) whose process is
/// gone (a crashed or killed test run); returns their names.
pub async fn clean_up(admin: &Client) -> Result<Vec<String>, TestingError> {
    let mut dropped = Vec::new();
    for kind in ["plover_test_", FILL] {
        let prefix = format!("{kind}{}_", host_tag());
        let rows = admin
            .query(OURS, &[&prefix])
            .await
            .map_err(crate::Error::db("listing test databases"))?;
        for row in rows {
            let name: String = row
                .try_get(0)
                .map_err(crate::Error::db("listing test databases"))?;
            let pid = name[prefix.len()..].split('_').next().unwrap_or("");
            let alive = pid.parse::<u32>().is_ok_and(|p| {
                p == std::process::id() || std::path::Path::new(&format!("/proc/{p}")).exists()
            });
            if !alive {
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

/// Claims a ready clone of `template` as `target`, or clones one now when none is
/// ready; then the pool is topped up. Runs on the pool thread, over an admin
/// connection it keeps open, so a warm claim costs two round trips and no connect.
pub(crate) async fn claim(
    server: &Server,
    template: &str,
    target: &str,
) -> Result<Claimed, TestingError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    send(Job::Claim {
        server: server.clone(),
        template: template.to_owned(),
        target: target.to_owned(),
        reply,
    })?;
    answer.await.map_err(|_| TestingError::Io {
        what: "claiming a test database".into(),
        source: std::io::Error::other("the pool thread stopped"),
    })?
}

async fn claim_on(admin: &Client, template: &str, target: &str) -> Result<Claimed, TestingError> {
    let prefix = ready_prefix(template);
    let rows = admin
        .query(READY, &[&prefix])
        .await
        .map_err(crate::Error::db("listing ready test databases"))?;
    for row in rows {
        let ready: String = row
            .try_get(0)
            .map_err(crate::Error::db("listing ready test databases"))?;
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

/// Whether a claim found a ready clone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// A clone from the pool (a rename).
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

/// Work for the pool thread.
enum Job {
    Claim {
        server: Server,
        template: String,
        target: String,
        reply: tokio::sync::oneshot::Sender<Result<Claimed, TestingError>>,
    },
}

/// Clones being made and warmed, before they are parked as ready:
/// `plover_fill_<host>_<pid>_<n>`.
const FILL: &str = "plover_fill_";

/// Hands a job to the process's pool thread, which outlives each test's runtime: it
/// keeps one admin connection per server for claims, and tops pools up in tasks of
/// their own (one at a time per template) alongside.
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
    let filling: Arc<Mutex<HashSet<String>>> = Arc::default();
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
                // One top-up at a time per template; it re-counts after every clone,
                // so claims made meanwhile are made up for.
                let fresh = filling
                    .lock()
                    .map(|mut f| f.insert(template.clone()))
                    .unwrap_or(false);
                if fresh {
                    let filling = filling.clone();
                    tokio::spawn(async move {
                        if let Err(e) = top_up(&server, &template).await {
                            eprintln!("plover: could not refill the test database pool: {e}");
                        }
                        if let Ok(mut f) = filling.lock() {
                            f.remove(&template);
                        }
                    });
                }
            }
        }
    }
}

async fn top_up(server: &Server, template: &str) -> Result<(), TestingError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let admin = crate::connect(&server.url("postgres")).await?;
    let prefix = ready_prefix(template);
    loop {
        let ready = admin
            .query(READY, &[&prefix])
            .await
            .map_err(crate::Error::db("listing ready test databases"))?
            .len();
        if ready >= Pool::size() {
            return Ok(());
        }
        let suffix = format!(
            "{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        // Made under a staging name and connected to once before it is parked: a
        // clone has no relation cache file (pg_internal.init) until its first
        // connection builds it, which would otherwise cost the test ~3 ms.
        let staging = format!("{FILL}{}_{suffix}", host_tag());
        clone(
            &admin,
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
    }
}
