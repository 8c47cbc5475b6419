//! Running migrations: statements, history rows and timeouts, one transaction per
//! migration (or one for all), or statement by statement for no-transaction files.
//!
//! Callers hold the migration lock and have checked the plan; this module does not
//! decide *what* runs, only runs it and records it.

use std::time::{Duration, Instant};

use tokio_postgres::error::ErrorPosition;
use tokio_postgres::{Client, GenericClient};

use crate::error::{Error, MigrationFailed};
use crate::history;
use crate::source::{Migration, Transaction};
use crate::split::{self, Statement};

const SET_SESSION_TIMEOUTS: &str = "
SELECT current_setting('lock_timeout'), current_setting('statement_timeout'),
       set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)";
const RESTORE_SESSION_TIMEOUTS: &str =
    "SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)";

/// How pending migrations are grouped into transactions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransactionMode {
    /// Each migration with its history row in its own transaction (the default).
    #[default]
    PerMigration,
    /// All pending migrations in one transaction: all or nothing. Refused when a
    /// pending file is `-- plover:no-transaction`.
    Single,
}

/// What happens during a run, for progress output.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// The lock is taken and the plan is known: `total` migrations will run.
    Planned { total: usize },
    /// A migration starts.
    Applying {
        version: i64,
        name: String,
        /// 1-based position in this run.
        index: usize,
        total: usize,
    },
    /// A migration is applied (committed, unless the run is one transaction).
    Applied {
        version: i64,
        name: String,
        duration: Duration,
    },
    /// Another session holds the migration lock: the run waits, at most `limit`.
    /// Sent when the wait starts and after each attempt while it lasts.
    LockWait {
        app: String,
        /// Who holds it, as last seen (`None` if it could not be seen).
        holder: Option<crate::lock::Session>,
        waited: Duration,
        limit: Duration,
    },
    /// The migration lock was taken after a wait.
    LockTaken { app: String, waited: Duration },
}

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
    pub statements: Vec<Statement<'a>>,
}

/// Splits a migration and refuses transaction control in a transactional file.
pub(crate) fn prepare(m: &Migration) -> Result<Prepared<'_>, Error> {
    let statements = split::split(m.sql()).map_err(|source| Error::Split {
        file: m.file().to_owned(),
        source,
    })?;
    let control = statements
        .iter()
        .find(|s| split::is_transaction_control(s.sql));
    if let (Transaction::Wrapped, Some(st)) = (m.transaction(), control) {
        return Err(Error::TransactionControl {
            file: m.file().to_owned(),
            line: st.line,
            column: st.column,
            statement: st.sql.lines().next().unwrap_or_default().trim().to_owned(),
        });
    }
    Ok(Prepared {
        migration: m,
        statements,
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

/// Applies `pending` in order and returns what was applied. `lock_timeout` and
/// `statement_timeout` are set on the session for the run and restored after it, on
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
        && let Some(p) = pending
            .iter()
            .find(|p| p.migration.transaction() == Transaction::None)
    {
        return Err(Error::NoTransactionInSingle {
            file: p.migration.file().to_owned(),
        });
    }
    let (lock_timeout, statement_timeout) = settings.timeouts();
    let context = "setting lock_timeout and statement_timeout";
    let previous = client
        .query_one(SET_SESSION_TIMEOUTS, &[&lock_timeout, &statement_timeout])
        .await
        .map_err(Error::db(context))?;
    let prev_lock: String = previous.try_get(0).map_err(Error::db(context))?;
    let prev_statement: String = previous.try_get(1).map_err(Error::db(context))?;

    let mut applied = Vec::with_capacity(pending.len());
    let outcome = match mode {
        TransactionMode::Single => in_transaction(client, settings, pending, &mut applied).await,
        TransactionMode::PerMigration => {
            let mut outcome = Ok(());
            for p in pending {
                outcome = match p.migration.transaction() {
                    Transaction::Wrapped => {
                        in_transaction(client, settings, std::slice::from_ref(p), &mut applied)
                            .await
                    }
                    Transaction::None => {
                        without_transaction(client, settings, p, &mut applied).await
                    }
                };
                if outcome.is_err() {
                    break;
                }
            }
            outcome
        }
    };
    let restored = client
        .query_one(RESTORE_SESSION_TIMEOUTS, &[&prev_lock, &prev_statement])
        .await;
    outcome?;
    restored.map_err(Error::db("restoring lock_timeout and statement_timeout"))?;
    Ok(applied)
}

async fn in_transaction(
    client: &mut Client,
    settings: &Settings<'_>,
    batch: &[Prepared<'_>],
    applied: &mut Vec<Applied>,
) -> Result<(), Error> {
    let before: Vec<i64> = applied.iter().map(|a| a.version).collect();
    let first = applied.len();
    let tx = client
        .transaction()
        .await
        .map_err(Error::db("starting a transaction"))?;
    let result = async {
        settings.take_bootstrap().run(&tx).await?;
        let recorder = settings.recorder(&tx).await?;
        for p in batch {
            let a = execute(&tx, settings, p, applied.len() + 1, &before).await?;
            recorder
                .record(
                    &tx,
                    settings.app,
                    p.migration,
                    millis(a.duration),
                    settings.applied_by,
                    &statement_texts(p),
                )
                .await?;
            applied.push(a);
        }
        Ok::<_, Error>(())
    }
    .await;
    match result {
        Ok(()) => {
            tx.commit().await.map_err(|e| {
                let p = &batch[batch.len() - 1];
                migration_error(p, p.statements.first(), &e, &before, false)
            })?;
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
            // The connection may be gone; then the server has rolled back already.
            let _ = tx.rollback().await;
            applied.truncate(first);
            Err(crate::lock::name_blockers(client, e).await)
        }
    }
}

/// Runs a migration's statements in order, mapping a failure to file:line:col.
async fn execute(
    client: &impl GenericClient,
    settings: &Settings<'_>,
    p: &Prepared<'_>,
    index: usize,
    applied_before: &[i64],
) -> Result<Applied, Error> {
    let m = p.migration;
    (settings.on_event)(&Event::Applying {
        version: m.version(),
        name: m.name().to_owned(),
        index,
        total: settings.total,
    });
    let started = Instant::now();
    for st in &p.statements {
        client
            .batch_execute(st.sql)
            .await
            .map_err(|e| migration_error(p, Some(st), &e, applied_before, false))?;
    }
    Ok(Applied {
        version: m.version(),
        name: m.name().to_owned(),
        file: m.file().to_owned(),
        duration: started.elapsed(),
    })
}

async fn without_transaction(
    client: &mut Client,
    settings: &Settings<'_>,
    p: &Prepared<'_>,
    applied: &mut Vec<Applied>,
) -> Result<(), Error> {
    let m = p.migration;
    let app = settings.app;
    let before: Vec<i64> = applied.iter().map(|a| a.version).collect();
    let total = i32::try_from(p.statements.len()).unwrap_or(i32::MAX);
    settings.take_bootstrap().run_alone(client).await?;
    history::insert_dirty(&*client, app, m, settings.applied_by, total).await?;
    (settings.on_event)(&Event::Applying {
        version: m.version(),
        name: m.name().to_owned(),
        index: applied.len() + 1,
        total: settings.total,
    });
    let started = Instant::now();
    for (i, st) in p.statements.iter().enumerate() {
        if let Err(e) = client.batch_execute(st.sql).await {
            let err = migration_error(p, Some(st), &e, &before, true);
            let err = crate::lock::name_blockers(client, err).await;
            if let Error::Migration(f) = &err {
                // Best effort: the session may be gone, and the row is dirty either way.
                let _ = history::failed(&*client, app, m.version(), &f.message).await;
            }
            return Err(err);
        }
        let done = i32::try_from(i + 1).unwrap_or(i32::MAX);
        history::progress(&*client, app, m.version(), done).await?;
    }
    let duration = started.elapsed();
    history::finish(&*client, app, m.version(), millis(duration)).await?;
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
/// without running it (repair, adoption): its statements, or the whole file when it
/// does not split.
pub(crate) fn mirror_statements(m: &Migration) -> Vec<&str> {
    match split::split(m.sql()) {
        Ok(statements) => statements.iter().map(|s| s.sql).collect(),
        Err(_) => vec![m.sql()],
    }
}

fn statement_texts<'a>(p: &'a Prepared<'_>) -> Vec<&'a str> {
    p.statements.iter().map(|s| s.sql).collect()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Builds the error for a failed statement: file:line:col from the server's error
/// position when it sent one, else the statement's start.
fn migration_error(
    p: &Prepared<'_>,
    statement: Option<&Statement<'_>>,
    e: &tokio_postgres::Error,
    applied_before: &[i64],
    dirty: bool,
) -> Error {
    let m = p.migration;
    let sql = m.sql();
    let (line, column) = match (statement, e.as_db_error().and_then(|d| d.position())) {
        (Some(st), Some(ErrorPosition::Original(pos))) => {
            let within = st
                .sql
                .char_indices()
                .nth((*pos as usize).saturating_sub(1))
                .map_or(0, |(i, _)| i);
            split::line_col(sql, st.offset + within)
        }
        (Some(st), _) => (st.line, st.column),
        (None, _) => (1, 1),
    };
    let (sqlstate, message, detail, hint) = match e.as_db_error() {
        Some(db) => {
            let mut message = db.message().to_owned();
            if let Some(w) = db.where_() {
                message.push_str(&format!(" (where: {w})"));
            }
            (
                db.code().code().to_owned(),
                message,
                db.detail().map(str::to_owned),
                db.hint().map(str::to_owned),
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
        blockers: None,
    }))
}
