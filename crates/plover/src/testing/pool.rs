//! Templates and the pool of ready clones: a migrated database in the time of a
//! rename and a connect.
//!
//! The migration set (and the Supabase shim) is applied once into a template database
//! named after the set's hash; clones are made with `CREATE DATABASE ... TEMPLATE` by a
//! background thread and parked as `plover_ready_<hash>_*`. A test claims one by
//! renaming it to its own name, which is atomic across processes: two processes can
//! never claim the same clone. Leftovers of crashed test processes are dropped the
//! first time a process asks for a database.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::{Server, TestingError, apply_supabase_shim, quote_ident};
use crate::Migrator;

/// Bump when the shim changes, so templates built with an older shim are not reused.
pub const SHIM_VERSION: u32 = 1;

const READY: &str = "
SELECT datname::text FROM pg_database
 WHERE left(datname, length($1)) = $1 ORDER BY datname";
const TEMPLATE_READY: &str = "SELECT datistemplate FROM pg_database WHERE datname = $1";
const OURS: &str = "
SELECT datname::text FROM pg_database WHERE left(datname, length($1)) = $1";

/// Whether the Supabase shim goes into the template before the migrations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Shim {
    /// Apply it (the default; it skips itself on a real Supabase image).
    #[default]
    Apply,
    /// Plain Postgres as it comes.
    Skip,
}

/// How many ready clones the pool keeps per template: `PLOVER_TEST_POOL`, default 4.
fn pool_size() -> usize {
    std::env::var("PLOVER_TEST_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

/// The template's key: the migration set, the app, and the shim.
pub fn template_key(migrator: &Migrator, shim: Shim) -> String {
    let mut h = Sha256::new();
    h.update(migrator.source().digest().0);
    h.update(migrator.app_name().as_bytes());
    h.update([0]);
    h.update(match shim {
        Shim::Apply => SHIM_VERSION.to_be_bytes(),
        Shim::Skip => [0; 4],
    });
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

/// Drops this machine's test databases whose process is gone (a crashed or killed
/// test run); returns their names.
pub async fn clean_up(admin: &Client) -> Result<Vec<String>, TestingError> {
    let mut dropped = Vec::new();
    {
        let prefix = format!("plover_test_{}_", host_tag());
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
                let sql = format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(&name)
                );
                match admin.batch_execute(&sql).await {
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
    let q = quote_ident(name);
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {q} WITH (FORCE)"))
        .await
        .map_err(crate::Error::db("dropping an unfinished template"))?;
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
/// ready; then asks the background thread to top the pool up.
pub(crate) async fn claim(
    server: &Server,
    admin: &Client,
    template: &str,
    target: &str,
) -> Result<Claimed, TestingError> {
    let prefix = ready_prefix(template);
    let rows = admin
        .query(READY, &[&prefix])
        .await
        .map_err(crate::Error::db("listing ready test databases"))?;
    let mut claimed = Claimed::Cold;
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
            Ok(()) => {
                claimed = Claimed::Warm;
                break;
            }
            // Another process got it first, or it is still being created.
            Err(e)
                if e.code() == Some(&SqlState::UNDEFINED_DATABASE)
                    || e.code() == Some(&SqlState::OBJECT_IN_USE) =>
            {
                continue;
            }
            Err(e) => return Err(crate::Error::db("claiming a ready test database")(e).into()),
        }
    }
    if claimed == Claimed::Cold {
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE {}",
                quote_ident(target),
                quote_ident(template)
            ))
            .await
            .map_err(crate::Error::db("cloning the template"))?;
    }
    refill(Refill {
        admin_url: server.url("postgres"),
        template: template.to_owned(),
    });
    Ok(claimed)
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

struct Refill {
    admin_url: String,
    template: String,
}

/// Hands a refill to the process's background thread, which outlives each test's
/// runtime.
fn refill(r: Refill) {
    static TX: OnceLock<Option<mpsc::Sender<Refill>>> = OnceLock::new();
    let tx = TX.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Refill>();
        std::thread::Builder::new()
            .name("plover-pool".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                while let Ok(first) = rx.recv() {
                    // Coalesce a burst of requests into one top-up per template.
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    batch.sort_by(|a, b| a.template.cmp(&b.template));
                    batch.dedup_by(|a, b| a.template == b.template);
                    for r in batch {
                        if let Err(e) = rt.block_on(top_up(&r)) {
                            eprintln!("plover: could not refill the test database pool: {e}");
                        }
                    }
                }
            })
            .ok()
            .map(|_| tx)
    });
    if let Some(tx) = tx {
        let _ = tx.send(r);
    }
}

async fn top_up(r: &Refill) -> Result<(), TestingError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let admin = crate::connect(&r.admin_url).await?;
    let prefix = ready_prefix(&r.template);
    let ready = admin
        .query(READY, &[&prefix])
        .await
        .map_err(crate::Error::db("listing ready test databases"))?
        .len();
    for _ in ready..pool_size() {
        let name = format!(
            "{prefix}{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE {}",
                quote_ident(&name),
                quote_ident(&r.template)
            ))
            .await
            .map_err(crate::Error::db("cloning the template for the pool"))?;
    }
    Ok(())
}
