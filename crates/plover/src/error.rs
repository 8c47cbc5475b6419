//! The one error type of the engine.
//!
//! Every variant names what went wrong (file, version, line, SQLSTATE) and says what
//! to do next. Messages are lowercase and end without a period. This module must not
//! do I/O; it only describes failures.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::problem::Problem;
use crate::settings::Adopt;
use crate::split::{ClientCopy, SplitError};

/// Everything that can go wrong while loading, planning or applying migrations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A migration directory or file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A symbolic link in a migration directory whose target cannot be read (it does
    /// not exist, or the links loop).
    #[error(
        "{}: symbolic link to {} leads nowhere ({source}); point it at an existing migration file or remove it",
        path.display(),
        target.display()
    )]
    BrokenSymlink {
        path: PathBuf,
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A `.sql` file whose name is not `<digits>_<name>.sql`.
    #[error(
        "{file}: file name does not match <version>_<name>.sql (the Supabase CLI's rule, e.g. 20250101120000_add_budgets.sql); rename it"
    )]
    InvalidFileName { file: String },

    /// The version digits do not fit in a signed 64-bit integer.
    #[error(
        "{file}: version does not fit in a 64-bit integer; use a UTC timestamp (YYYYMMDDHHMMSS)"
    )]
    VersionOverflow { file: String },

    /// Two files share one version.
    #[error(
        "{first} and {second} share version {version}; give one of them a new version (cargo xtask db new)"
    )]
    DuplicateVersion {
        version: i64,
        first: String,
        second: String,
    },

    /// A file is not valid UTF-8.
    #[error("{file}:{line}: file is not valid UTF-8; save it as UTF-8")]
    NotUtf8 { file: String, line: usize },

    /// A `-- plover:` comment that plover does not know.
    #[error("{file}:{line}: unknown directive `-- plover:{directive}`; known: no-transaction")]
    UnknownDirective {
        file: String,
        line: usize,
        directive: String,
    },

    /// A down file that undoes no migration of the set, names another one, or undoes
    /// one another down file undoes.
    #[error("{file}: {reason}")]
    DownFile { file: String, reason: String },

    /// An unterminated quote, dollar quote or comment.
    #[error("{file}: {source}")]
    Split {
        file: String,
        #[source]
        source: SplitError,
    },

    /// Transaction control other than plain `BEGIN`/`COMMIT` blocks (`ROLLBACK`,
    /// `SAVEPOINT`, `BEGIN ISOLATION LEVEL …`, `PREPARE TRANSACTION`…) in a file that
    /// plover runs in a transaction.
    #[error(
        "{file}:{line}:{column}: `{statement}` in a transactional migration; plover runs each file in its own transaction (a file of plain BEGIN/COMMIT blocks runs statement by statement instead), so remove it, or put `-- plover:no-transaction` on the first line to manage transactions yourself"
    )]
    TransactionControl {
        file: String,
        line: usize,
        column: usize,
        statement: String,
    },

    /// A file of plain `BEGIN`/`COMMIT` blocks whose last `BEGIN` is never committed.
    #[error(
        "{file}:{line}:{column}: this BEGIN is never committed, so the file would end inside a transaction; add a COMMIT after its statements, or remove the BEGIN"
    )]
    UnclosedTransaction {
        file: String,
        line: usize,
        column: usize,
    },

    /// A NUL byte in a migration: the protocol cannot carry one in SQL text.
    #[error(
        "{file}:{line}:{column}: NUL byte in the file, which cannot be sent to PostgreSQL; remove it (a file full of them was probably saved as UTF-16: save it as UTF-8)"
    )]
    NulByte {
        file: String,
        line: usize,
        column: usize,
    },

    /// A `COPY … FROM STDIN` or `COPY … TO STDOUT`: its rows go through a client
    /// that streams them, and plover sends statements only.
    #[error(
        "{file}:{line}:{column}: `{statement}` {}",
        match direction {
            ClientCopy::FromStdin => "reads its rows from the client (COPY ... FROM STDIN), which needs a client that streams data such as psql, and plover sends statements only; write the rows as INSERT statements, or load them from supabase/seed.sql or a script",
            ClientCopy::ToStdout => "sends its rows to the client (COPY ... TO STDOUT), and a migration has nobody to receive them; remove it",
        }
    )]
    ClientCopy {
        file: String,
        line: usize,
        column: usize,
        direction: ClientCopy,
        statement: String,
    },

    /// A `-- plover:no-transaction` file, or one with a statement that cannot run in a
    /// transaction block, cannot run inside the single transaction that
    /// [`TransactionMode::Single`](crate::TransactionMode::Single) asks for.
    #[error(
        "{file}: runs without a transaction (`-- plover:no-transaction`, or a statement such as CREATE INDEX CONCURRENTLY) and cannot run inside a single transaction; apply with one transaction per migration"
    )]
    NoTransactionInSingle { file: String },

    /// The plan has problems that must be resolved before anything is applied.
    #[error("{}", ProblemList(problems))]
    Plan { problems: Vec<Problem> },

    /// The migration lock was not granted in time.
    #[error(
        "timed out after {waited:?} waiting for the migration lock of app `{app}`{}; another migration is running, or a session holds the lock (see pg_stat_activity)",
        match (holder_session, holder) {
            (Some(s), _) => format!(" held by {s}"),
            (None, Some(p)) => format!(" held by backend pid {p}"),
            (None, None) => String::new(),
        }
    )]
    LockTimeout {
        app: String,
        holder: Option<i32>,
        /// The holder's application_name, state and statement, when they were seen.
        holder_session: Option<Box<crate::session::Session>>,
        waited: Duration,
    },

    /// A migration failed on the server. Nothing of it remains unless it was a
    /// `no-transaction` file, whose history row is then left dirty.
    #[error("{0}")]
    Migration(Box<MigrationFailed>),

    /// A database call outside a migration failed. The message holds the server's
    /// error (or the connection's) in full.
    #[error("{context}: {}", describe(error))]
    Database {
        context: &'static str,
        error: tokio_postgres::Error,
    },

    /// A connection string given to [`connect`](crate::connect) that does not parse
    /// (its text is never shown).
    #[error("the URL given to connect {0}")]
    ConnectionString(#[from] crate::conninfo::ConnInfoError),

    /// `repair` was asked for a version that has no history row for this app.
    #[error("version {version} has no history row for app `{app}`; nothing to repair")]
    NothingToRepair { app: String, version: i64 },

    /// A rollback (`Migrator::down`) refused before running anything: a version to undo
    /// has no down file, no file, an edited file, or is dirty; or the target version is
    /// not applied.
    #[error("cannot roll back app `{app}`; nothing was run:{}", problems.iter().map(|p| format!("\n  - {p}")).collect::<String>())]
    DownRefused { app: String, problems: Vec<String> },

    /// `Migrator::baseline` refused; nothing was recorded.
    #[error("cannot baseline app `{app}`; nothing was recorded:{}", problems.iter().map(|p| format!("\n  - {p}")).collect::<String>())]
    BaselineRefused { app: String, problems: Vec<String> },

    /// `Migrator::squash_history` refused; the history was not changed.
    #[error("cannot rewrite the history of app `{app}` for the squash; nothing was changed:{}", problems.iter().map(|p| format!("\n  - {p}")).collect::<String>())]
    SquashRefused { app: String, problems: Vec<String> },

    /// A down file failed; the ones before it were undone (their transactions
    /// committed), it was rolled back.
    #[error("{failed}{}", undone_before(undone))]
    DownFailed {
        failed: Box<MigrationFailed>,
        /// Versions undone by this run before the failure, newest first.
        undone: Vec<i64>,
    },

    /// `project::reset::reset` refused; nothing was changed.
    #[error("refusing to reset: {reason}; nothing was changed")]
    ResetRefused { reason: String },

    /// `project::reset::restore` failed at a statement of the
    /// backup; its transaction was rolled back, so nothing was changed.
    #[error("restoring the backup failed at line {line}: {message}; nothing was changed")]
    RestoreFailed { line: usize, message: String },

    /// [`Migrator::adopt`](crate::Migrator::adopt) found no history table of the tool.
    #[error(
        "cannot adopt {from}'s history: table {} does not exist in this database; check the database URL and search_path, or adopt from the tool that migrated this database",
        from.table()
    )]
    AdoptTableMissing { from: Adopt },

    /// sqlx recorded a failed migration (`success = false`): its database is dirty.
    #[error(
        "_sqlx_migrations records version {version} as failed (success = false): sqlx left the database dirty, and nothing was adopted; finish or undo that migration by hand and fix its row (delete it, or set success = true), then adopt again"
    )]
    AdoptDirty { version: i64 },

    /// The other tool recorded versions, but none of them has a local file.
    #[error(
        "{} records {} but none has a local migration file, so nothing was adopted; point the migrator at the migration directory {from} applied",
        from.table(),
        VersionList(versions)
    )]
    AdoptNoLocalFiles { from: Adopt, versions: Vec<String> },

    /// refinery runs every migration in a transaction; a no-transaction file cannot be
    /// handed to it.
    #[error(
        "{file}: is marked `-- plover:no-transaction`, and refinery runs every migration inside a transaction; apply this set with plover (Migrator::run) instead of refinery's runner"
    )]
    NoTransactionInRefinery { file: String },

    /// refinery refused a converted migration.
    #[error(
        "{file}: refinery cannot take this migration ({message}); give the file a version that fits a 64-bit integer"
    )]
    Refinery { file: String, message: String },
}

impl Error {
    pub(crate) fn db(context: &'static str) -> impl Fn(tokio_postgres::Error) -> Error + Copy {
        move |error| Error::Database { context, error }
    }

    /// The SQLSTATE of a failed migration or database call, when the server sent one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Migration(m) => Some(&m.sqlstate),
            Error::Database { error, .. } => error.code().map(|c| c.code()),
            _ => None,
        }
    }
}

/// A driver error in one line: the server's message, SQLSTATE, detail and hint, or
/// the connection error with its causes.
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(d) = db.detail() {
            s.push_str(&format!("; detail: {d}"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; hint: {h}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}

/// "3 versions (1, 2, 3)", the first few only.
struct VersionList<'a>(&'a [String]);

impl fmt::Display for VersionList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 5;
        let n = self.0.len();
        write!(f, "{n} version{} (", if n == 1 { "" } else { "s" })?;
        write!(f, "{}", self.0[..n.min(SHOWN)].join(", "))?;
        if n > SHOWN {
            write!(f, ", ...")?;
        }
        write!(f, ")")
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "refusing to migrate: {n} problem{} in the plan; nothing was applied",
            if n == 1 { "" } else { "s" }
        )?;
        for p in self.0 {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// The details of a failed migration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationFailed {
    pub file: String,
    pub version: i64,
    pub line: usize,
    pub column: usize,
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// The text of the offending line.
    pub source_line: String,
    /// Versions applied by this run before the failure.
    pub applied_before: Vec<i64>,
    /// Whether a dirty history row was left (no-transaction files only).
    pub dirty: bool,
    /// Whether the file was a down file (`Migrator::down`): its transaction was
    /// rolled back, so the migration it undoes stays applied.
    pub down: bool,
    /// After a `lock_timeout` (SQLSTATE 55P03): the sessions holding relation locks
    /// in open transactions then, oldest first (`lock::blockers`); `None` otherwise.
    pub blockers: Option<Vec<crate::session::Session>>,
}

impl fmt::Display for MigrationFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let MigrationFailed {
            file,
            line,
            column,
            sqlstate,
            message,
            detail,
            hint,
            source_line,
            applied_before,
            dirty,
            down,
            blockers,
            ..
        } = self;
        write!(f, "{file}:{line}:{column}: {message} (SQLSTATE {sqlstate})")?;
        let gutter = line.to_string();
        write!(f, "\n  {gutter} | {source_line}")?;
        let pad: String = source_line
            .chars()
            .take(column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "\n  {} | {pad}^", " ".repeat(gutter.len()))?;
        if let Some(d) = detail {
            write!(f, "\n  detail: {d}")?;
        }
        if let Some(h) = hint {
            write!(f, "\n  hint: {h}")?;
        }
        match blockers.as_deref() {
            Some([]) => write!(
                f,
                "\n  waited for a lock; no other session holds relation locks in an open transaction now (the blocker has finished): run it again"
            )?,
            Some(sessions) => {
                write!(
                    f,
                    "\n  waited for a lock; sessions holding relation locks in open transactions, oldest first (the server does not say which one blocked; end it, or wait for it, then run again):"
                )?;
                for s in sessions {
                    write!(f, "\n    - {s}")?;
                }
            }
            None => {}
        }
        if *dirty {
            write!(
                f,
                "\n  this no-transaction migration stopped midway and is recorded as dirty: fix the database by hand, then mark it with `repair`"
            )?;
        } else if *down {
            write!(
                f,
                "\n  the down file was rolled back; its migration stays applied"
            )?;
        } else {
            write!(
                f,
                "\n  the migration was rolled back; nothing of it remains"
            )?;
        }
        if !applied_before.is_empty() {
            write!(
                f,
                "\n  applied before the failure: {}",
                applied_before
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
        }
        Ok(())
    }
}

fn undone_before(undone: &[i64]) -> String {
    if undone.is_empty() {
        return "\n  nothing was undone".to_owned();
    }
    let list: Vec<String> = undone.iter().map(i64::to_string).collect();
    format!(
        "\n  undone before the failure (their history rows are gone): {}",
        list.join(", ")
    )
}
