//! The migration lock: a session advisory lock per (database, app), and the sessions
//! that hold locks plover waits for.
//!
//! [`with_lock`] takes the lock, runs a closure, and releases the lock on every path,
//! error paths included; there is no unlock for an early return to skip. When the
//! session dies instead, the server releases the lock itself. While it waits,
//! [`with_lock_watched`] reports the holder ([`Session`]) through
//! [`Event::LockWait`], so a caller can show who it waits for.
//!
//! Waiting polls `pg_try_advisory_lock` between short pauses rather than blocking in
//! `pg_advisory_lock`: a backend blocked in a statement holds a snapshot, and
//! `CREATE INDEX CONCURRENTLY` run by the lock holder waits for every such snapshot
//! to end, which the server then breaks as a deadlock.
//!
//! A migration statement that gives up on `lock_timeout` gets the sessions that
//! hold relation locks in open transactions attached ([`name_blockers`]): the server
//! does not say which lock the statement waited for, so they are the candidates.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio_postgres::{Client, Row};

use crate::error::Error;
use crate::event::Event;
use crate::session::Session;

const TRY_LOCK: &str = "SELECT pg_try_advisory_lock($1)";
const UNLOCK: &str = "SELECT pg_advisory_unlock($1)";
const DATABASE: &str = "SELECT current_database()::text";
/// A bigint advisory lock shows in pg_locks as classid = high 32 bits, objid = low
/// 32 bits, objsubid = 1. The columns after `pid` are those [`Session`] reads.
const HOLDER: &str = "
SELECT l.pid, coalesce(a.application_name, ''), coalesce(a.state, ''),
       coalesce(a.query, ''),
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8,
       ARRAY[]::text[]
  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid
 LIMIT 1";
/// Other sessions of this database in an open transaction that hold (or wait for)
/// locks on its own relations (not the system catalogs: oids from 16384), oldest
/// transaction first, with those locks.
const BLOCKERS: &str = "
SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''),
       coalesce(a.query, ''),
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8,
       array_agg(DISTINCT l.mode || ' on ' || l.relation::regclass::text
                 || CASE WHEN l.granted THEN '' ELSE ' (waiting)' END)
  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'relation' AND l.relation >= 16384
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL
 GROUP BY a.pid, a.application_name, a.state, a.query, a.xact_start
 ORDER BY a.xact_start, a.pid
 LIMIT $1";
/// How many candidate blockers an error lists.
const BLOCKERS_SHOWN: i64 = 5;
/// SQLSTATE lock_not_available: `lock_timeout` (or NOWAIT) gave up.
const LOCK_NOT_AVAILABLE: &str = "55P03";
/// A session's statement is cut to this many characters for display.
const QUERY_SHOWN: usize = 200;

/// The first pause between attempts; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const MAX_PAUSE: Duration = Duration::from_millis(250);

/// A [`Session`] from a row of `pg_stat_activity` columns (pid, application_name,
/// state, query, seconds in transaction, locks).
fn session_from_row(row: &Row, context: &'static str) -> Result<Session, Error> {
    let get_str = |i| row.try_get::<_, String>(i).map_err(Error::db(context));
    let seconds: Option<f64> = row.try_get(4).map_err(Error::db(context))?;
    Ok(Session {
        pid: first(row, context)?,
        application_name: get_str(1)?,
        state: get_str(2)?,
        query: shorten(&get_str(3)?),
        in_transaction_for: seconds
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64),
        locks: row.try_get(5).map_err(Error::db(context))?,
    })
}

/// One line of at most [`QUERY_SHOWN`] characters, passwords hidden.
fn shorten(query: &str) -> String {
    let one_line = query.split_whitespace().collect::<Vec<_>>().join(" ");
    let hidden = hide_passwords(&one_line);
    match hidden.char_indices().nth(QUERY_SHOWN) {
        Some((cut, _)) => format!("{}...", &hidden[..cut]),
        None => hidden,
    }
}

/// The end of the string literal that opens `text` (just past its closing quote, or
/// the end of `text`): a doubled quote stays inside, and so does a backslash-escaped
/// one in an `E'...'` literal.
fn literal_end(text: &str, escaped: bool) -> usize {
    let mut chars = text.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if escaped => {
                chars.next();
            }
            '\'' if text[i + 1..].starts_with('\'') => {
                chars.next();
            }
            '\'' => return i + 1,
            _ => {}
        }
    }
    text.len()
}

/// Replaces the value after each `password` (any case) with `****`: a string
/// literal after spaces or `=` (`PASSWORD 'x'`, `password E'x'`), or the unquoted
/// word after `=` (`password=x` in a connection string).
fn hide_passwords(text: &str) -> String {
    const WORD: &str = "password";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.to_ascii_lowercase().find(WORD) {
        let after = at + WORD.len();
        out.push_str(&rest[..after]);
        rest = &rest[after..];
        let value = rest.trim_start_matches([' ', '=']);
        let separator = &rest[..rest.len() - value.len()];
        let escaped = value.starts_with(['E', 'e']);
        let literal = match value.strip_prefix(['E', 'e']) {
            Some(v) if v.starts_with('\'') => v,
            _ => value,
        };
        let end = if separator.is_empty() {
            0
        } else if literal.starts_with('\'') {
            literal_end(literal, escaped)
        } else if separator.contains('=') {
            literal
                .find(|c: char| c.is_whitespace() || c == '\'' || c == ';')
                .unwrap_or(literal.len())
        } else {
            0
        };
        if end == 0 {
            continue;
        }
        out.push_str(separator);
        out.push_str(&value[..value.len() - literal.len()]);
        out.push_str(if literal.starts_with('\'') {
            "'****'"
        } else {
            "****"
        });
        rest = &literal[end..];
    }
    out.push_str(rest);
    out
}

/// The lock key of an app in a database: the first 8 bytes of
/// SHA-256(`"plover\0<database>\0<app>"`).
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

/// The session holding `key`, if any: pid, application_name, state and statement.
pub async fn holder_session(client: &Client, key: i64) -> Result<Option<Session>, Error> {
    let high = (key as u64 >> 32) as i64;
    let low = (key as u64 & 0xffff_ffff) as i64;
    let context = "looking up who holds the migration lock";
    match client
        .query_opt(HOLDER, &[&high, &low])
        .await
        .map_err(Error::db(context))?
    {
        Some(row) => Ok(Some(session_from_row(&row, context)?)),
        None => Ok(None),
    }
}

/// The other sessions of this database that hold (or wait for) locks on its
/// relations in an open transaction, oldest transaction first (at most five): the
/// candidates for what blocked a statement that hit `lock_timeout`.
pub async fn blockers(client: &Client) -> Result<Vec<Session>, Error> {
    let context = "looking up the sessions that hold locks";
    client
        .query(BLOCKERS, &[&BLOCKERS_SHOWN])
        .await
        .map_err(Error::db(context))?
        .iter()
        .map(|row| session_from_row(row, context))
        .collect()
}

/// For a migration that failed on `lock_timeout` (SQLSTATE 55P03): `e` with the
/// candidate blockers ([`blockers`]) attached. Any other error comes back as it was;
/// so does this one when the lookup itself fails. Call it outside the failed
/// transaction (after the rollback).
pub(crate) async fn name_blockers(client: &Client, e: Error) -> Error {
    match e {
        Error::Migration(mut failed) if failed.sqlstate == LOCK_NOT_AVAILABLE => {
            match blockers(client).await {
                Ok(found) => failed.blockers = Some(found),
                Err(lookup) => {
                    tracing::debug!(error = %lookup, "could not list the sessions holding locks");
                }
            }
            Error::Migration(failed)
        }
        e => e,
    }
}

/// Runs `f` while holding the migration lock of `app`. Waits at most `wait` for the
/// lock. Returns what `f` returned and how long the wait took. (The test pool's
/// template builds take it; runs take [`with_lock_watched`].)
#[cfg(feature = "testing")]
pub async fn with_lock<T>(
    client: &mut Client,
    app: &str,
    wait: Duration,
    f: impl AsyncFnOnce(&mut Client) -> Result<T, Error>,
) -> Result<(T, Duration), Error> {
    with_lock_watched(client, app, wait, &|_| {}, f).await
}

/// [`with_lock`], telling `on_event` about a wait: [`Event::LockWait`] when it starts
/// and after each attempt while it lasts (naming the holder), [`Event::LockTaken`]
/// when it ends with the lock. Nothing is sent when the lock is free.
pub async fn with_lock_watched<T>(
    client: &mut Client,
    app: &str,
    wait: Duration,
    on_event: &(dyn Fn(&Event) + Send + Sync),
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
    acquire(client, app, key, wait, on_event).await?;
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

async fn acquire(
    client: &Client,
    app: &str,
    key: i64,
    wait: Duration,
    on_event: &(dyn Fn(&Event) + Send + Sync),
) -> Result<(), Error> {
    if try_lock(client, key).await? {
        return Ok(());
    }
    let started = Instant::now();
    let mut holder = holder_session(client, key).await?;
    let mut holder_pid = holder.as_ref().map(|s| s.pid);
    tracing::info!(
        app,
        holder_pid,
        "waiting up to {wait:?} for the migration lock{}",
        holder
            .as_ref()
            .map(|s| format!(" held by {s}"))
            .unwrap_or_default()
    );
    let mut pause = FIRST_PAUSE;
    loop {
        on_event(&Event::LockWait {
            app: app.to_owned(),
            holder: holder.clone(),
            waited: started.elapsed(),
            limit: wait,
        });
        let left = wait.saturating_sub(started.elapsed());
        if left.is_zero() {
            // The holder as it is now, else the last one seen.
            let now = holder_session(client, key).await.ok().flatten().or(holder);
            return Err(Error::LockTimeout {
                app: app.to_owned(),
                holder: now.as_ref().map(|s| s.pid),
                holder_session: now.map(Box::new),
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(MAX_PAUSE);
        if try_lock(client, key).await? {
            let waited = started.elapsed();
            tracing::info!(app, ?waited, "took the migration lock");
            on_event(&Event::LockTaken {
                app: app.to_owned(),
                waited,
            });
            return Ok(());
        }
        let now = holder_session(client, key).await?;
        let now_pid = now.as_ref().map(|s| s.pid);
        if now_pid.is_some() && now_pid != holder_pid {
            tracing::info!(
                app,
                holder_pid = now_pid,
                "the migration lock changed hands; still waiting"
            );
            holder_pid = now_pid;
        }
        // Between the attempt and the look-up the holder may have let go: keep the
        // last one seen.
        if now.is_some() {
            holder = now;
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

    #[test]
    fn passwords_are_hidden_in_shown_statements() {
        let check = |input: &str, expected: &str| {
            assert_eq!(super::shorten(input), expected, "{input}");
        };
        check(
            "ALTER ROLE app\n  WITH PASSWORD 'it''s secret' LOGIN",
            "ALTER ROLE app WITH PASSWORD '****' LOGIN",
        );
        check(
            "create role x password E'a\\'b' login",
            "create role x password E'****' login",
        );
        check(
            "SELECT dblink_connect('host=db password=hunter2 user=x')",
            "SELECT dblink_connect('host=db password=**** user=x')",
        );
        check(
            "SELECT password_hash, password FROM users",
            "SELECT password_hash, password FROM users",
        );
        check("SET x = 'password'", "SET x = 'password'");
        check(
            "ALTER USER u PASSWORD 'unterminated",
            "ALTER USER u PASSWORD '****'",
        );
        let long = format!("SELECT {}", "x".repeat(300));
        assert_eq!(super::shorten(&long).chars().count(), 203);
    }

    #[test]
    fn a_session_reads_as_one_line() {
        let s = super::Session {
            pid: 42,
            application_name: "psql".into(),
            state: "idle in transaction".into(),
            query: "LOCK TABLE t IN ACCESS EXCLUSIVE MODE".into(),
            in_transaction_for: Some(std::time::Duration::from_millis(3500)),
            locks: vec!["AccessExclusiveLock on t".into()],
        };
        assert_eq!(
            s.to_string(),
            "backend pid 42 (application_name 'psql', idle in transaction, transaction open for 3 s, holds AccessExclusiveLock on t; last query: LOCK TABLE t IN ACCESS EXCLUSIVE MODE)"
        );
    }
}
