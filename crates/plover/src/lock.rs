//! The migration lock: a session advisory lock per (database, app).
//!
//! [`with_lock`] takes the lock, runs a closure, and releases the lock on every path,
//! error paths included; there is no unlock for an early return to skip. When the
//! session dies instead, the server releases the lock itself.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::error::Error;

const TRY_LOCK: &str = "SELECT pg_try_advisory_lock($1)";
const LOCK: &str = "SELECT pg_advisory_lock($1)";
const UNLOCK: &str = "SELECT pg_advisory_unlock($1)";
const DATABASE: &str = "SELECT current_database()::text";
const SET_LOCK_TIMEOUT: &str =
    "SELECT current_setting('lock_timeout'), set_config('lock_timeout', $1, false)";
const RESTORE_LOCK_TIMEOUT: &str = "SELECT set_config('lock_timeout', $1, false)";
/// A bigint advisory lock shows in pg_locks as classid = high 32 bits, objid = low
/// 32 bits, objsubid = 1.
const HOLDER: &str = "
SELECT pid FROM pg_locks
 WHERE locktype = 'advisory' AND granted AND objsubid = 1
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND classid = $1::bigint::oid AND objid = $2::bigint::oid
 LIMIT 1";

/// The lock key of an app in a database: the first 8 bytes of
/// SHA-256("plover\0<database>\0<app>").
pub fn key(database: &str, app: &str) -> i64 {
    let digest = Sha256::digest(format!("plover\0{database}\0{app}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The backend pid holding `key`, if any.
pub async fn holder(client: &Client, key: i64) -> Result<Option<i32>, Error> {
    let high = (key as u64 >> 32) as i64;
    let low = (key as u64 & 0xffff_ffff) as i64;
    let row = client
        .query_opt(HOLDER, &[&high, &low])
        .await
        .map_err(Error::db("looking up who holds the migration lock"))?;
    Ok(row.map(|r| r.get(0)))
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
    let database: String = client
        .query_one(DATABASE, &[])
        .await
        .map_err(Error::db("reading the database name"))?
        .get(0);
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

async fn acquire(client: &Client, app: &str, key: i64, wait: Duration) -> Result<(), Error> {
    let got: bool = client
        .query_one(TRY_LOCK, &[&key])
        .await
        .map_err(Error::db("taking the migration lock"))?
        .get(0);
    if got {
        return Ok(());
    }
    let holder = holder(client, key).await?;
    tracing::info!(
        app,
        holder_pid = holder,
        "waiting up to {wait:?} for the migration lock{}",
        holder
            .map(|p| format!(" held by backend pid {p}"))
            .unwrap_or_default()
    );
    let timeout = |holder| Error::LockTimeout {
        app: app.to_owned(),
        holder,
        waited: wait,
    };
    let ms = wait.as_millis();
    if ms == 0 {
        // lock_timeout = 0 would mean "wait forever".
        return Err(timeout(holder));
    }
    let previous: String = client
        .query_one(SET_LOCK_TIMEOUT, &[&format!("{ms}ms")])
        .await
        .map_err(Error::db("setting lock_timeout for the lock wait"))?
        .get(0);
    let locked = client.query_one(LOCK, &[&key]).await;
    let restored = client.query_one(RESTORE_LOCK_TIMEOUT, &[&previous]).await;
    match locked {
        Ok(_) => {
            if let Err(e) = restored {
                let _ = client.query_one(UNLOCK, &[&key]).await;
                return Err(Error::db("restoring lock_timeout")(e));
            }
        }
        Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            let holder = holder_after(client, key).await.or(holder);
            return Err(timeout(holder));
        }
        Err(e) => return Err(Error::db("waiting for the migration lock")(e)),
    }
    Ok(())
}

async fn holder_after(client: &Client, key: i64) -> Option<i32> {
    holder(client, key).await.ok().flatten()
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
