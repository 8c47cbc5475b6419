//! The migration lock: a session advisory lock per (database, app).
//!
//! [`with_lock`] takes the lock, runs a closure, and releases the lock on every path,
//! error paths included; there is no unlock for an early return to skip. When the
//! session dies instead, the server releases the lock itself.
//!
//! Waiting polls `pg_try_advisory_lock` between short pauses rather than blocking in
//! `pg_advisory_lock`: a backend blocked in a statement holds a snapshot, and
//! `CREATE INDEX CONCURRENTLY` run by the lock holder waits for every such snapshot
//! to end, which the server then breaks as a deadlock.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio_postgres::{Client, Row};

use crate::error::Error;

const TRY_LOCK: &str = "SELECT pg_try_advisory_lock($1)";
const UNLOCK: &str = "SELECT pg_advisory_unlock($1)";
const DATABASE: &str = "SELECT current_database()::text";
/// A bigint advisory lock shows in pg_locks as classid = high 32 bits, objid = low
/// 32 bits, objsubid = 1.
const HOLDER: &str = "
SELECT pid FROM pg_locks
 WHERE locktype = 'advisory' AND granted AND objsubid = 1
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND classid = $1::bigint::oid AND objid = $2::bigint::oid
 LIMIT 1";

/// The first pause between attempts; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// The lock key of an app in a database: the first 8 bytes of
/// SHA-256("plover\0<database>\0<app>").
pub fn key(database: &str, app: &str) -> i64 {
    let digest = Sha256::digest(format!("plover\0{database}\0{app}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Reads column 0 of a row whose type the query fixes.
pub(crate) fn first<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    context: &'static str,
) -> Result<T, Error> {
    row.try_get(0).map_err(Error::db(context))
}

/// The backend pid holding `key`, if any.
pub async fn holder(client: &Client, key: i64) -> Result<Option<i32>, Error> {
    let high = (key as u64 >> 32) as i64;
    let low = (key as u64 & 0xffff_ffff) as i64;
    let context = "looking up who holds the migration lock";
    match client
        .query_opt(HOLDER, &[&high, &low])
        .await
        .map_err(Error::db(context))?
    {
        Some(row) => Ok(Some(first(&row, context)?)),
        None => Ok(None),
    }
}

/// Runs `f` while holding the migration lock of `app`. Waits at most `wait` for the
/// lock, logging which backend holds it. Returns what `f` returned and how long the
/// wait took.
pub async fn with_lock<T>(
    client: &mut Client,
    app: &str,
    wait: Duration,
    f: impl AsyncFnOnce(&mut Client) -> Result<T, Error>,
) -> Result<(T, Duration), Error> {
    let started = Instant::now();
    let context = "reading the database name";
    let row = client
        .query_one(DATABASE, &[])
        .await
        .map_err(Error::db(context))?;
    let database: String = first(&row, context)?;
    let key = key(&database, app);
    acquire(client, app, key, wait).await?;
    let waited = started.elapsed();
    let result = f(client).await;
    if let Err(e) = client.query_one(UNLOCK, &[&key]).await {
        // The session is gone or broken; the server releases its locks with it.
        tracing::warn!(app, error = %e, "could not release the migration lock explicitly");
    }
    result.map(|t| (t, waited))
}

async fn try_lock(client: &Client, key: i64) -> Result<bool, Error> {
    let context = "taking the migration lock";
    let row = client
        .query_one(TRY_LOCK, &[&key])
        .await
        .map_err(Error::db(context))?;
    first(&row, context)
}

async fn acquire(client: &Client, app: &str, key: i64, wait: Duration) -> Result<(), Error> {
    if try_lock(client, key).await? {
        return Ok(());
    }
    let started = Instant::now();
    let mut holder_pid = holder(client, key).await?;
    tracing::info!(
        app,
        holder_pid,
        "waiting up to {wait:?} for the migration lock{}",
        holder_pid
            .map(|p| format!(" held by backend pid {p}"))
            .unwrap_or_default()
    );
    let mut pause = FIRST_PAUSE;
    loop {
        let left = wait.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(Error::LockTimeout {
                app: app.to_owned(),
                holder: holder(client, key).await.ok().flatten().or(holder_pid),
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(MAX_PAUSE);
        if try_lock(client, key).await? {
            tracing::info!(app, waited = ?started.elapsed(), "took the migration lock");
            return Ok(());
        }
        let now = holder(client, key).await?;
        if now.is_some() && now != holder_pid {
            tracing::info!(
                app,
                holder_pid = now,
                "the migration lock changed hands; still waiting"
            );
            holder_pid = now;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_differ_by_database_and_app() {
        let a = super::key("postgres", "a");
        assert_ne!(a, super::key("postgres", "b"));
        assert_ne!(a, super::key("other", "a"));
        assert_eq!(a, super::key("postgres", "a"));
    }
}
