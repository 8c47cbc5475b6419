//! Running migrations: statements, history rows and timeouts, one transaction per
//! migration (or one for all) with a file sent as one query, transactions pipelined in
//! windows of one round trip each ([`in_window`]), or statement by statement for
//! no-transaction files.
//!
//! A file wrapped whole in `BEGIN; … COMMIT;` runs as any transactional file: the
//! wrapper is left out and plover's own transaction takes its place. A file without
//! `-- plover:no-transaction` that holds a statement PostgreSQL refuses in a
//! transaction block (`CREATE INDEX CONCURRENTLY`, `VACUUM`, …) runs as if it had the
//! directive, with an [`Event::OutsideTransaction`] notice.
//!
//! Callers hold the migration lock and have checked the plan; this module does not
//! decide *what* runs, only runs it and records it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use tokio_postgres::error::ErrorPosition;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, GenericClient, SimpleQueryMessage};

use crate::error::{Error, MigrationFailed};
pub(crate) use crate::event::{Event, OutsideTransaction, OwnTransactions};
use crate::history;
use crate::settings::TransactionMode;
use crate::source::{Migration, Transaction};
use crate::split::{self, Statement};

/// Captures the caller's session (the settings it `SET`, its session authorization
/// and role) and sets plover's timeouts. The settings are read in a subquery, so
/// before `set_config` runs.
const START_SESSION: &str = "
SELECT s.names, s.settings, current_setting('session_authorization'), current_setting('role'),
       set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)
  FROM (SELECT coalesce(array_agg(name ORDER BY name), '{}'::text[]),
               coalesce(array_agg(setting ORDER BY name), '{}'::text[])
          FROM pg_settings WHERE source = 'session') AS s(names, settings)";
/// Every setting back to the connection's defaults (role and session authorization
/// excepted: `RESET ALL` leaves them, [`RESTORE_SESSION`] sets them).
const RESET_SESSION: &str = "RESET ALL";
/// Sets `$1[i]` to `$2[i]` in order. Session authorization comes first and is only
/// set when it changed (setting it resets the role, and only a superuser may set
/// another); the caller's role comes last.
const RESTORE_SESSION: &str = "
SELECT set_config(name, value, false)
  FROM unnest($1::text[], $2::text[]) AS s(name, value)
 WHERE name <> 'session_authorization' OR current_setting(name) <> value";

/// One migration applied by a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub version: i64,
    pub name: String,
    pub file: String,
    pub duration: Duration,
}

/// A pending migration split into statements and checked, before anything runs.
pub(crate) struct Prepared<'a> {
    pub migration: &'a Migration,
    /// The statements that run (a `BEGIN; … COMMIT;` wrapper left out).
    pub statements: Vec<Statement<'a>>,
    /// How it runs: as its directives say, or [`Transaction::None`] when a statement
    /// cannot run in a transaction block (then `outside` says which).
    pub transaction: Transaction,
    pub outside: Option<OutsideTransaction>,
    /// Plain `BEGIN`/`COMMIT` statements that make it run statement by statement.
    pub own: Option<OwnTransactions>,
}

/// Splits a migration and refuses what cannot run: a NUL byte (the protocol cannot
/// carry one), transaction control in a transactional file (but for a wrapper around
/// the whole file, which is left out: [`split::unwrap_transaction`], and plain
/// `BEGIN`/`COMMIT` blocks elsewhere, which make the file run statement by statement
/// with a notice: [`split::without_transaction_blocks`]), and a `COPY`
/// that streams data through the client. A transactional file with a statement that
/// cannot run in a transaction block ([`split::outside_transaction`]) and no wrapper
/// runs without a transaction.
pub(crate) fn prepare(m: &Migration) -> Result<Prepared<'_>, Error> {
    if let Some(offset) = m.sql().find('\0') {
        let (line, column) = split::line_col(m.sql(), offset);
        return Err(Error::NulByte {
            file: m.file().to_owned(),
            line,
            column,
        });
    }
    let mut statements = split::split(m.sql()).map_err(|source| Error::Split {
        file: m.file().to_owned(),
        source,
    })?;
    let mut transaction = m.transaction();
    let mut outside = None;
    let mut own = None;
    if transaction == Transaction::Wrapped {
        if let Some(inner) = split::unwrap_transaction(&statements) {
            // A wrapper around the whole file: its statements run in plover's
            // transaction, as psql runs them in the wrapper's.
            statements = inner.to_vec();
        } else {
            if let Some((_, lines)) = split::without_transaction_blocks(&statements) {
                if let Some(begin) = split::unclosed_begin(&statements) {
                    return Err(Error::UnclosedTransaction {
                        file: m.file().to_owned(),
                        line: begin.line,
                        column: begin.column,
                    });
                }
                transaction = Transaction::None;
                own = Some(OwnTransactions {
                    version: m.version(),
                    file: m.file().to_owned(),
                    lines,
                });
            }
            if own.is_none()
                && !statements
                    .iter()
                    .any(|st| split::is_transaction_control(st.sql))
            {
                outside = statements.iter().find_map(|st| {
                    Some(OutsideTransaction {
                        version: m.version(),
                        file: m.file().to_owned(),
                        line: st.line,
                        column: st.column,
                        statement: split::outside_transaction(st.sql)?,
                    })
                });
                if outside.is_some() {
                    transaction = Transaction::None;
                }
            }
        }
    }
    for st in &statements {
        let first_line = || st.sql.lines().next().unwrap_or_default().trim().to_owned();
        // Plain BEGIN/COMMIT are only still here beside other transaction control
        // (else the file would run with its own transactions): name that one.
        if transaction == Transaction::Wrapped
            && split::is_transaction_control(st.sql)
            && !split::is_plain_begin_or_commit(st.sql)
        {
            return Err(Error::TransactionControl {
                file: m.file().to_owned(),
                line: st.line,
                column: st.column,
                statement: first_line(),
            });
        }
        if let Some(direction) = split::client_copy(st.sql) {
            return Err(Error::ClientCopy {
                file: m.file().to_owned(),
                line: st.line,
                column: st.column,
                direction,
                statement: first_line(),
            });
        }
    }
    Ok(Prepared {
        migration: m,
        statements,
        transaction,
        outside,
        own,
    })
}

/// Settings of one run.
pub(crate) struct Settings<'a> {
    pub app: &'a str,
    pub applied_by: &'a str,
    pub lock_timeout: Duration,
    pub statement_timeout: Option<Duration>,
    pub supabase: bool,
    /// History tables still to create: by the first transaction that writes.
    pub bootstrap: std::sync::Mutex<history::Bootstrap>,
    /// The history writes, prepared once the tables exist.
    pub recorder: tokio::sync::OnceCell<history::Recorder>,
    /// How many migrations this run applies (for progress events).
    pub total: usize,
    pub on_event: &'a (dyn Fn(&Event) + Send + Sync),
}

impl Settings<'_> {
    /// The history tables this run has still to create; the first caller gets them.
    fn take_bootstrap(&self) -> history::Bootstrap {
        std::mem::take(&mut *self.bootstrap.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether the history tables exist and the writes are prepared, so that a
    /// transaction needs nothing first.
    fn is_ready(&self) -> bool {
        self.recorder.get().is_some()
            && !self
                .bootstrap
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_needed()
    }

    /// The prepared history writes (prepared on first use).
    async fn recorder(&self, client: &impl GenericClient) -> Result<&history::Recorder, Error> {
        self.recorder
            .get_or_try_init(|| history::Recorder::prepare(client, self.supabase))
            .await
    }

    fn timeouts(&self) -> (String, String) {
        (
            format!("{}ms", self.lock_timeout.as_millis()),
            format!("{}ms", self.statement_timeout.map_or(0, |d| d.as_millis())),
        )
    }
}

/// The session as the caller handed it over, captured when a run starts: the
/// settings it `SET`, its session authorization and its role.
///
/// Each migration starts from it, with plover's timeouts on top, as psql and the
/// Supabase CLI start each file on a fresh connection: a `SET search_path`, `SET ROLE`
/// or `SET SESSION AUTHORIZATION` in one file does not reach the next. After the run
/// the session is the caller's again.
struct Session {
    /// `(names, values)` for [`RESTORE_SESSION`] between migrations.
    between: (Vec<String>, Vec<String>),
    /// `(names, values)` for [`RESTORE_SESSION`] after the run.
    after: (Vec<String>, Vec<String>),
    /// [`RESTORE_SESSION`], prepared once: the server plans it once per run, not once
    /// per migration.
    restore: tokio_postgres::Statement,
}

impl Session {
    /// Captures the caller's session and sets plover's timeouts (one round trip).
    async fn start(client: &Client, settings: &Settings<'_>) -> Result<Session, Error> {
        let (lock_timeout, statement_timeout) = settings.timeouts();
        let context =
            "reading the session's settings and setting lock_timeout and statement_timeout";
        let params: [(&(dyn ToSql + Sync), Type); 2] = [
            (&lock_timeout, Type::TEXT),
            (&statement_timeout, Type::TEXT),
        ];
        let (row, restore) = tokio::try_join!(
            client.query_typed_one(START_SESSION, &params),
            client.prepare_typed(RESTORE_SESSION, &[Type::TEXT_ARRAY, Type::TEXT_ARRAY]),
        )
        .map_err(Error::db(context))?;
        let mut names: Vec<String> = row.try_get(0).map_err(Error::db(context))?;
        let mut values: Vec<String> = row.try_get(1).map_err(Error::db(context))?;
        let authorization: String = row.try_get(2).map_err(Error::db(context))?;
        let role: String = row.try_get(3).map_err(Error::db(context))?;
        // The role goes back to none first, so that settings only a superuser may
        // make are restored as the session's user, then to the caller's.
        names.splice(0..0, ["session_authorization".into(), "role".into()]);
        values.splice(0..0, [authorization, "none".into()]);
        let mut between = (names.clone(), values.clone());
        for (name, value) in [
            ("lock_timeout", lock_timeout),
            ("statement_timeout", statement_timeout),
            ("role", role.clone()),
        ] {
            between.0.push(name.into());
            between.1.push(value);
        }
        names.push("role".into());
        values.push(role);
        Ok(Session {
            between,
            after: (names, values),
            restore,
        })
    }

    /// Sets the session up for the next migration: `RESET ALL`, then the caller's
    /// session and plover's timeouts. Sent without waiting, so it shares a round trip
    /// with whatever the caller pipelines after it.
    async fn reset(&self, client: &impl GenericClient) -> Result<(), Error> {
        restore(client, &self.restore, &self.between)
            .await
            .map_err(Error::db("resetting the session after a migration"))
    }

    /// Hands the session back as the caller gave it.
    async fn hand_back(&self, client: &Client) -> Result<(), Error> {
        restore(client, &self.restore, &self.after)
            .await
            .map_err(Error::db("restoring the session's settings after the run"))
    }
}

async fn restore(
    client: &impl GenericClient,
    statement: &tokio_postgres::Statement,
    (names, values): &(Vec<String>, Vec<String>),
) -> Result<(), tokio_postgres::Error> {
    let params: [&(dyn ToSql + Sync); 2] = [names, values];
    // In this order on the wire: the reset, then the settings.
    tokio::try_join!(
        biased;
        client.batch_execute(RESET_SESSION),
        client.query(statement, &params),
    )?;
    Ok(())
}

/// Applies `pending` in order and returns what was applied. `lock_timeout` and
/// `statement_timeout` are set on the session for the run; between migrations the
/// session is reset ([`Session`]), and after the run it is the caller's again, on
/// every path.
pub(crate) async fn run(
    client: &mut Client,
    settings: &Settings<'_>,
    pending: &[Prepared<'_>],
    mode: TransactionMode,
) -> Result<Vec<Applied>, Error> {
    (settings.on_event)(&Event::Planned {
        total: pending.len(),
    });
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    if mode == TransactionMode::Single
        && let Some(p) = pending.iter().find(|p| p.transaction == Transaction::None)
    {
        return Err(Error::NoTransactionInSingle {
            file: p.migration.file().to_owned(),
        });
    }
    let session = Session::start(client, settings).await?;

    let mut applied = Vec::with_capacity(pending.len());
    let outcome = match mode {
        TransactionMode::Single => {
            in_transaction(client, settings, &session, pending, &mut applied).await
        }
        TransactionMode::PerMigration => {
            let mut outcome = Ok(());
            let mut rest = pending;
            while let Some(p) = rest.first() {
                let (taken, result) = match p.transaction {
                    Transaction::None => (
                        1,
                        without_transaction(client, settings, &session, p, &mut applied).await,
                    ),
                    // The first transaction of a run creates the tables or prepares
                    // the writes, alone; the rest go in windows.
                    Transaction::Wrapped if settings.is_ready() => {
                        let window = &rest[..window_len(rest)];
                        let result =
                            in_window(client, settings, &session, window, &mut applied).await;
                        (window.len(), result)
                    }
                    Transaction::Wrapped => {
                        let one = &rest[..1];
                        (
                            1,
                            in_transaction(client, settings, &session, one, &mut applied).await,
                        )
                    }
                };
                rest = &rest[taken..];
                outcome = result;
                if outcome.is_err() {
                    break;
                }
            }
            outcome
        }
    };
    let restored = session.hand_back(client).await;
    outcome?;
    restored?;
    Ok(applied)
}

/// Runs `batch` in one transaction, in as few round trips as the protocol allows.
///
/// A migration's text goes to the server as it is in the file (from its first
/// statement to the end of its last), one simple query. Pipelined with it, without
/// waiting: the `BEGIN`, then the session reset (`RESET ALL` and the caller's session,
/// so even a `SET LOCAL` does not reach the next file, and the history writes run with
/// the caller's role), the history row and the Supabase CLI's row, and the `COMMIT`.
/// So one migration in its transaction costs one round trip (one more per run: the
/// history writes prepared, with the tables on a first run); [`in_window`] sends
/// several such transactions in one.
///
/// In [`TransactionMode::Single`] each migration is timed by the client, so it is
/// recorded in the next round trip, with the next file (or the `COMMIT`).
///
/// A failure rolls the transaction back: a statement that fails aborts it, so what
/// was pipelined after it fails too and the `COMMIT` rolls back; when the `COMMIT`
/// never left (a write that could not be encoded stops the pipeline before it), a
/// `ROLLBACK` follows.
async fn in_transaction(
    client: &mut Client,
    settings: &Settings<'_>,
    session: &Session,
    batch: &[Prepared<'_>],
    applied: &mut Vec<Applied>,
) -> Result<(), Error> {
    let before: Vec<i64> = applied.iter().map(|a| a.version).collect();
    let first = applied.len();
    let client = &*client;
    let commit_sent = AtomicBool::new(false);
    let result = async {
        let mut begin = true;
        let bootstrap = settings.take_bootstrap();
        if bootstrap.is_needed() || settings.recorder.get().is_none() {
            // The history tables (a first run) and the prepared writes, in the
            // transaction: the tables are created with the first migration.
            tokio::try_join!(biased; begin_transaction(client), bootstrap.run(client))?;
            settings.recorder(client).await?;
            begin = false;
        }
        let recorder = settings.recorder(client).await?;
        let trip = Trip {
            client,
            settings,
            session,
            recorder,
            before: &before,
            commit_sent: &commit_sent,
        };
        if let [p] = batch {
            applying(settings, p, applied.len() + 1);
            let started = Instant::now();
            trip.send(begin, None, Some((p, Record::Server)), Some(p))
                .await?;
            applied.push(applied_now(p, started.elapsed()));
            return Ok(());
        }
        let mut earlier = None;
        for p in batch {
            applying(settings, p, applied.len() + 1);
            let started = Instant::now();
            trip.send(begin, earlier, Some((p, Record::Later)), None)
                .await?;
            begin = false;
            let a = applied_now(p, started.elapsed());
            earlier = Some((p, millis(a.duration)));
            applied.push(a);
        }
        trip.send(false, earlier, None, batch.last()).await
    }
    .await;
    match result {
        Ok(()) => {
            for a in &applied[first..] {
                (settings.on_event)(&Event::Applied {
                    version: a.version,
                    name: a.name.clone(),
                    duration: a.duration,
                });
            }
            Ok(())
        }
        Err(e) => {
            // A COMMIT sent in an aborted transaction rolled it back. Else end it here;
            // the connection may be gone, then the server has rolled back already.
            if !commit_sent.load(Ordering::Relaxed) {
                let _ = client.batch_execute("ROLLBACK").await;
            }
            applied.truncate(first);
            Err(crate::lock::name_blockers(client, e).await)
        }
    }
}

/// At most this many transactions go to the server before plover waits for their
/// answers ([`in_window`]), and at most this many bytes of migration text (one file
/// always goes, however big).
const WINDOW_MIGRATIONS: usize = 64;
const WINDOW_BYTES: usize = 1 << 20;

/// How many of `pending`'s first migrations go in one window: transactional ones, up
/// to [`WINDOW_MIGRATIONS`] and [`WINDOW_BYTES`]; at least one.
fn window_len(pending: &[Prepared<'_>]) -> usize {
    let mut bytes = 0;
    let n = pending
        .iter()
        .take(WINDOW_MIGRATIONS)
        .take_while(|p| {
            bytes += p.migration.sql().len();
            p.transaction == Transaction::Wrapped && bytes <= WINDOW_BYTES
        })
        .count();
    n.max(1)
}

/// Runs `window`'s migrations, each in its own transaction, sent one after the other
/// without waiting for the server's answers: one round trip for the window rather
/// than one per migration.
///
/// The server runs them in order. Each transaction after the first starts by
/// checking that the one before it is recorded (committed): when a migration fails,
/// its transaction rolls back, so the next one's check fails and it rolls back too,
/// and so on to the end of the window. Nothing after a failure is applied; the
/// first failure is the one reported, with what was applied before it.
async fn in_window(
    client: &mut Client,
    settings: &Settings<'_>,
    session: &Session,
    window: &[Prepared<'_>],
    applied: &mut Vec<Applied>,
) -> Result<(), Error> {
    if let [_] = window {
        return in_transaction(client, settings, session, window, applied).await;
    }
    let client = &*client;
    let recorder = settings.recorder(client).await?;
    let first = applied.len();
    let before: Vec<i64> = applied
        .iter()
        .map(|a| a.version)
        .chain(window.iter().map(|p| p.migration.version()))
        .collect();
    let commits_sent: Vec<AtomicBool> = window.iter().map(|_| AtomicBool::new(false)).collect();
    // The server runs the window's transactions one after the other: a progress display
    // hears of each when the one before it has answered, as in a run without windows.
    applying(settings, &window[0], first + 1);
    let last_answer = std::sync::Mutex::new(Instant::now());
    let transactions = window.iter().enumerate().map(|(i, p)| {
        let trip = Trip {
            client,
            settings,
            session,
            recorder,
            before: &before[..first + i],
            commit_sent: &commits_sent[i],
        };
        let after = i.checked_sub(1).map(|j| window[j].migration.version());
        let last_answer = &last_answer;
        async move {
            trip.send_after(after, true, None, Some((p, Record::Server)), Some(p))
                .await?;
            // Committed, so every one before it did too.
            let now = Instant::now();
            let took = {
                let mut last = last_answer.lock().unwrap_or_else(|e| e.into_inner());
                now.saturating_duration_since(std::mem::replace(&mut *last, now))
            };
            let a = applied_now(p, took);
            (settings.on_event)(&Event::Applied {
                version: a.version,
                name: a.name.clone(),
                duration: a.duration,
            });
            if let Some(next) = window.get(i + 1) {
                applying(settings, next, first + i + 2);
            }
            Ok::<_, Error>(a)
        }
    });
    // In order: each is polled first (so sent) after the one before it.
    let outcomes = in_order(transactions.collect()).await;
    let mut failure = None;
    for outcome in outcomes {
        match outcome {
            Ok(a) if failure.is_none() => applied.push(a),
            Ok(_) => {}
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    let Some(e) = failure else { return Ok(()) };
    // A transaction whose COMMIT never left (a write that could not be encoded) is
    // still open only if it was the last: any later one's COMMIT ended it.
    if commits_sent
        .last()
        .is_some_and(|c| !c.load(Ordering::Relaxed))
    {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    Err(crate::lock::name_blockers(client, e).await)
}

/// Awaits every future of `futures`, polling them in order each time, so each is
/// first polled (and sends its requests) after those before it; their outputs in the
/// same order.
async fn in_order<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(done) => *output = Some(done),
                    Poll::Pending => pending = true,
                }
            }
        }
        match pending {
            true => Poll::Pending,
            false => Poll::Ready(()),
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// When a migration that runs in a round trip is recorded.
#[derive(Clone, Copy)]
enum Record {
    /// In the same round trip, timed by the server.
    Server,
    /// In a later round trip, with the time the client measured.
    Later,
}

/// What every round trip of one transaction shares.
struct Trip<'t> {
    client: &'t Client,
    settings: &'t Settings<'t>,
    session: &'t Session,
    recorder: &'t history::Recorder,
    before: &'t [i64],
    commit_sent: &'t AtomicBool,
}

impl Trip<'_> {
    /// One round trip: sends, in this order and without waiting, `BEGIN` (if `begin`),
    /// the record of a migration that ran before (with its time), a migration (and
    /// its record, when [`Record::Server`]), and `COMMIT` (naming `commit`'s file if it
    /// fails). The first failure ends it; what follows a part that could not be
    /// encoded is not sent.
    async fn send(
        &self,
        begin: bool,
        earlier: Option<(&Prepared<'_>, i64)>,
        file: Option<(&Prepared<'_>, Record)>,
        commit: Option<&Prepared<'_>>,
    ) -> Result<(), Error> {
        self.send_after(None, begin, earlier, file, commit).await
    }

    /// [`Trip::send`], with the transaction refused at its start unless `after` (a
    /// version of this app) is recorded: so a transaction pipelined behind one that
    /// failed fails too ([`in_window`]).
    async fn send_after(
        &self,
        after: Option<i64>,
        begin: bool,
        earlier: Option<(&Prepared<'_>, i64)>,
        file: Option<(&Prepared<'_>, Record)>,
        commit: Option<&Prepared<'_>>,
    ) -> Result<(), Error> {
        let client = self.client;
        tokio::try_join!(
            biased;
            async {
                match begin {
                    true => begin_transaction(client).await,
                    false => Ok(()),
                }
            },
            async {
                match after {
                    Some(version) => self.recorder.require(client, self.settings.app, version).await,
                    None => Ok(()),
                }
            },
            async {
                match earlier {
                    Some((p, ms)) => self.record(p, Some(ms)).await,
                    None => Ok(()),
                }
            },
            async {
                match file {
                    Some((p, _)) => run_file(client, p, self.before).await,
                    None => Ok(()),
                }
            },
            async {
                match file {
                    Some((p, Record::Server)) => self.record(p, None).await,
                    _ => Ok(()),
                }
            },
            async {
                let Some(p) = commit else { return Ok(()) };
                self.commit_sent.store(true, Ordering::Relaxed);
                client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(|e| migration_error(p, None, p.statements.first(), &e, self.before, false))
            },
        )?;
        Ok(())
    }

    /// Resets the session after a migration, then writes its history rows.
    async fn record(&self, p: &Prepared<'_>, execution_ms: Option<i64>) -> Result<(), Error> {
        let statements = statement_texts(p);
        let s = self.settings;
        tokio::try_join!(
            biased;
            self.session.reset(self.client),
            self.recorder.record(
                self.client,
                s.app,
                p.migration,
                execution_ms,
                s.applied_by,
                &statements,
            ),
        )?;
        Ok(())
    }
}

/// Runs down files (prepared, transactional), in the order given (newest first): each
/// in a transaction of its own, together with the deletion of its version's history
/// rows (plover's, and the Supabase CLI's with `settings.supabase`), from the caller's
/// session with plover's timeouts, as migrations run. A failure rolls that one back and
/// stops ([`Error::DownFailed`], naming the versions undone before it); the session is
/// the caller's again on every path.
pub(crate) async fn run_down(
    client: &mut Client,
    settings: &Settings<'_>,
    downs: &[Prepared<'_>],
) -> Result<Vec<Applied>, Error> {
    let session = Session::start(client, settings).await?;
    let mut undone: Vec<Applied> = Vec::with_capacity(downs.len());
    for (i, p) in downs.iter().enumerate() {
        let m = p.migration;
        (settings.on_event)(&Event::Undoing {
            version: m.version(),
            name: m.name().to_owned(),
            index: i + 1,
            total: downs.len(),
        });
        let started = Instant::now();
        let client_ref = &*client;
        let result = async {
            begin_transaction(client_ref).await?;
            run_file(client_ref, p, &[]).await?;
            if !history::delete(client_ref, settings.app, m.version()).await? {
                // Another session deleted it under our lock: refuse rather than guess.
                return Err(Error::NothingToRepair {
                    app: settings.app.to_owned(),
                    version: m.version(),
                });
            }
            if settings.supabase {
                history::unmirror(client_ref, m.version_text()).await?;
            }
            client_ref
                .batch_execute("COMMIT")
                .await
                .map_err(Error::db("committing a rollback"))
        }
        .await;
        if let Err(e) = result {
            let _ = client_ref.batch_execute("ROLLBACK").await;
            let e = crate::lock::name_blockers(client_ref, e).await;
            let _ = session.hand_back(client_ref).await;
            let versions = undone.iter().map(|a| a.version).collect();
            return Err(match e {
                Error::Migration(mut failed) => {
                    failed.down = true;
                    Error::DownFailed {
                        failed,
                        undone: versions,
                    }
                }
                other => other,
            });
        }
        let a = applied_now(p, started.elapsed());
        (settings.on_event)(&Event::Undone {
            version: a.version,
            name: a.name.clone(),
            duration: a.duration,
        });
        undone.push(a);
        session.reset(&*client).await?;
    }
    session.hand_back(client).await?;
    Ok(undone)
}

async fn begin_transaction(client: &Client) -> Result<(), Error> {
    client
        .batch_execute("BEGIN")
        .await
        .map_err(Error::db("starting a transaction"))
}

fn applying(settings: &Settings<'_>, p: &Prepared<'_>, index: usize) {
    let m = p.migration;
    (settings.on_event)(&Event::Applying {
        version: m.version(),
        name: m.name().to_owned(),
        index,
        total: settings.total,
    });
}

fn applied_now(p: &Prepared<'_>, duration: Duration) -> Applied {
    let m = p.migration;
    Applied {
        version: m.version(),
        name: m.name().to_owned(),
        file: m.file().to_owned(),
        duration,
    }
}

/// What a transactional migration sends: the file's text from its first statement to
/// the end of its last (so a `BEGIN; … COMMIT;` wrapper is left out), with that text's
/// byte offset in the file; `None` when it has no statement.
fn body<'a>(p: &Prepared<'a>) -> Option<(&'a str, usize)> {
    let (first, last) = (p.statements.first()?, p.statements.last()?);
    let text = p
        .migration
        .sql()
        .get(first.offset..last.offset + last.sql.len())?;
    Some((text, first.offset))
}

/// Runs a transactional migration's text as one simple query. On failure the server's
/// position, if any, is mapped back to the file; else the failing statement is the
/// one after those the server completed (it sends a `CommandComplete` for each, and
/// the statements it counts are the splitter's: both skip empty ones).
async fn run_file(client: &Client, p: &Prepared<'_>, before: &[i64]) -> Result<(), Error> {
    let Some(sent) = body(p) else { return Ok(()) };
    let mut done = 0;
    let failed = |done: usize, e: tokio_postgres::Error| {
        migration_error(p, Some(sent), p.statements.get(done), &e, before, false)
    };
    let stream = client
        .simple_query_raw(sent.0)
        .await
        .map_err(|e| failed(done, e))?;
    let mut stream = std::pin::pin!(stream);
    while let Some(message) = stream.try_next().await.map_err(|e| failed(done, e))? {
        if let SimpleQueryMessage::CommandComplete(_) = message {
            done += 1;
        }
    }
    Ok(())
}

async fn without_transaction(
    client: &mut Client,
    settings: &Settings<'_>,
    session: &Session,
    p: &Prepared<'_>,
    applied: &mut Vec<Applied>,
) -> Result<(), Error> {
    let m = p.migration;
    let app = settings.app;
    let before: Vec<i64> = applied.iter().map(|a| a.version).collect();
    let total = i32::try_from(p.statements.len()).unwrap_or(i32::MAX);
    settings.take_bootstrap().run_alone(client).await?;
    history::insert_dirty(&*client, app, m, settings.applied_by, total).await?;
    if let Some(own) = &p.own {
        (settings.on_event)(&Event::OwnTransactions(own.clone()));
    }
    if let Some(outside) = &p.outside {
        (settings.on_event)(&Event::OutsideTransaction(outside.clone()));
    }
    (settings.on_event)(&Event::Applying {
        version: m.version(),
        name: m.name().to_owned(),
        index: applied.len() + 1,
        total: settings.total,
    });
    let started = Instant::now();
    // Inside one of the file's own transactions the session may be another role
    // (`SET LOCAL ROLE`) and a failure rolls the block back: progress is recorded
    // after the statements that leave no transaction open.
    let open_after = split::open_after(&p.statements);
    for (i, st) in p.statements.iter().enumerate() {
        if let Err(e) = client.batch_execute(st.sql).await {
            if p.own.is_some() {
                // Inside one of the file's own transactions: end it (rolled back), so
                // the session can record the failure and hand back the lock.
                let _ = client.batch_execute("ROLLBACK").await;
            }
            let sent = Some((st.sql, st.offset));
            let err = migration_error(p, sent, Some(st), &e, &before, true);
            let err = crate::lock::name_blockers(client, err).await;
            if let Error::Migration(f) = &err {
                // Best effort: the session may be gone, and the row is dirty either way.
                let _ = history::failed(&*client, app, m.version(), &f.message).await;
            }
            return Err(err);
        }
        if open_after[i] {
            continue;
        }
        let done = i32::try_from(i + 1).unwrap_or(i32::MAX);
        history::progress(&*client, app, m.version(), done).await?;
    }
    let duration = started.elapsed();
    tokio::try_join!(
        biased;
        session.reset(&*client),
        history::finish(&*client, app, m.version(), millis(duration)),
    )?;
    if settings.supabase {
        history::mirror(&*client, m, &statement_texts(p)).await?;
    }
    (settings.on_event)(&Event::Applied {
        version: m.version(),
        name: m.name().to_owned(),
        duration,
    });
    applied.push(Applied {
        version: m.version(),
        name: m.name().to_owned(),
        file: m.file().to_owned(),
        duration,
    });
    Ok(())
}

/// The statements the Supabase CLI's history records for a migration recorded
/// without running it (repair, adoption): its statements as a run would send them (a
/// `BEGIN; … COMMIT;` wrapper left out), or the whole file when it does not split.
pub(crate) fn mirror_statements(m: &Migration) -> Vec<&str> {
    match split::split(m.sql()) {
        Ok(statements) => {
            let ran = match m.transaction() {
                Transaction::Wrapped => split::unwrap_transaction(&statements),
                Transaction::None => None,
            };
            ran.unwrap_or(&statements).iter().map(|s| s.sql).collect()
        }
        Err(_) => vec![m.sql()],
    }
}

fn statement_texts<'a>(p: &'a Prepared<'_>) -> Vec<&'a str> {
    p.statements.iter().map(|s| s.sql).collect()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Builds the error for a failed query: file:line:col from the server's error
/// position in the text `sent` (with its byte offset in the file) when it sent one,
/// else the failing statement's start.
fn migration_error(
    p: &Prepared<'_>,
    sent: Option<(&str, usize)>,
    statement: Option<&Statement<'_>>,
    e: &tokio_postgres::Error,
    applied_before: &[i64],
    dirty: bool,
) -> Error {
    let m = p.migration;
    let sql = m.sql();
    // The server counts the position in characters from 1.
    let at = sent
        .zip(e.as_db_error().and_then(|d| d.position()))
        .and_then(|((text, offset), position)| match position {
            ErrorPosition::Original(pos) => text
                .char_indices()
                .nth((*pos as usize).checked_sub(1)?)
                .map(|(within, _)| offset + within),
            ErrorPosition::Internal { .. } => None,
        });
    let (line, column) = match (at, statement) {
        (Some(offset), _) => split::line_col(sql, offset),
        (None, Some(st)) => (st.line, st.column),
        (None, None) => (1, 1),
    };
    let (sqlstate, message, detail, hint) = match e.as_db_error() {
        Some(db) => {
            let mut message = db.message().to_owned();
            if let Some(w) = db.where_() {
                message.push_str(&format!(" (where: {w})"));
            }
            // A `CREATE EXTENSION` the server has no files for: say how to get them.
            let hint = crate::supabase::extensions::missing_extension(db.message(), db.detail())
                .map(|(name, major)| crate::supabase::extensions::install_hint(&name, major))
                .or_else(|| db.hint().map(str::to_owned));
            (
                db.code().code().to_owned(),
                message,
                db.detail().map(str::to_owned),
                hint,
            )
        }
        None => (
            e.code().map_or("08006", |c| c.code()).to_owned(),
            format!("connection lost: {e}"),
            None,
            None,
        ),
    };
    Error::Migration(Box::new(MigrationFailed {
        file: m.file().to_owned(),
        version: m.version(),
        line,
        column,
        sqlstate,
        message,
        detail,
        hint,
        source_line: sql
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or_default()
            .trim_end()
            .to_owned(),
        applied_before: applied_before.to_vec(),
        dirty,
        down: false,
        blockers: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(sql: &str) -> Result<usize, Error> {
        let m = Migration::parse("m/1_a.sql", sql.as_bytes())?;
        prepare(&m).map(|p| p.statements.len())
    }

    #[test]
    fn a_nul_byte_is_refused_with_its_position() {
        let e = prepared("create table t (id int);\nselect 'a\0b';\n").unwrap_err();
        assert!(
            matches!(
                e,
                Error::NulByte {
                    line: 2,
                    column: 10,
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().starts_with(
                "m/1_a.sql:2:10: NUL byte in the file, which cannot be sent to PostgreSQL"
            ),
            "{e}"
        );
        // A file saved as UTF-16 is valid UTF-8 full of NUL bytes.
        let utf16: Vec<u8> = "select 1;"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let m = Migration::parse("m/1_a.sql", &utf16).unwrap();
        assert!(matches!(
            prepare(&m),
            Err(Error::NulByte {
                line: 1,
                column: 2,
                ..
            })
        ));
    }

    #[test]
    fn copy_through_the_client_is_refused_with_its_position() {
        let e =
            prepared("create table t (a int);\n  COPY t (a) FROM stdin;\n1\n\\.\n").unwrap_err();
        assert!(
            matches!(
                e,
                Error::ClientCopy {
                    line: 2,
                    column: 3,
                    direction: split::ClientCopy::FromStdin,
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().starts_with(
                "m/1_a.sql:2:3: `COPY t (a) FROM stdin;` reads its rows from the client (COPY ... FROM STDIN)"
            ),
            "{e}"
        );
        assert!(e.to_string().contains("INSERT"), "{e}");
        let e = prepared("copy (select 1) to stdout;").unwrap_err();
        assert!(
            matches!(
                e,
                Error::ClientCopy {
                    direction: split::ClientCopy::ToStdout,
                    ..
                }
            ),
            "{e}"
        );
        // In a no-transaction file too; a server-side file is fine.
        assert!(prepared("-- plover:no-transaction\ncopy t from stdin;").is_err());
        assert_eq!(prepared("copy t from '/srv/t.csv';").unwrap(), 1);
    }

    #[test]
    fn a_byte_order_mark_does_not_shift_positions() {
        let m = Migration::parse("m/1_a.sql", "\u{FEFF}select 1;\n  rollback;".as_bytes()).unwrap();
        let e = prepare(&m).err().unwrap();
        assert!(
            matches!(
                e,
                Error::TransactionControl {
                    line: 2,
                    column: 3,
                    ..
                }
            ),
            "{e}"
        );
        let m = Migration::parse("m/1_a.sql", "\u{FEFF}select 1;".as_bytes()).unwrap();
        let Ok(p) = prepare(&m) else {
            panic!("select 1 must prepare")
        };
        assert_eq!(
            (
                p.statements[0].sql,
                p.statements[0].line,
                p.statements[0].column
            ),
            ("select 1;", 1, 1)
        );
    }
}
