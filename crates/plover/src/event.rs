//! What a run reports while it goes, for progress output: [`Event`] and the notices it
//! carries.
//!
//! Must not: import any plover module but [`session`](crate::session) (the lock's
//! holder is named in a lock wait).

use std::time::Duration;

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
    /// A rollback (`Migrator::down`) starts undoing a migration with its down file.
    Undoing {
        version: i64,
        name: String,
        /// 1-based position in this rollback (newest first).
        index: usize,
        total: usize,
    },
    /// A migration is undone: its down file ran and its history rows are deleted,
    /// committed together.
    Undone {
        version: i64,
        name: String,
        duration: Duration,
    },
    /// Another session holds the migration lock: the run waits, at most `limit`.
    /// Sent when the wait starts and after each attempt while it lasts.
    LockWait {
        app: String,
        /// Who holds it, as last seen (`None` if it could not be seen).
        holder: Option<crate::session::Session>,
        waited: Duration,
        limit: Duration,
    },
    /// The migration lock was taken after a wait.
    LockTaken { app: String, waited: Duration },
    /// A file without `-- plover:no-transaction` holds a statement that cannot run in
    /// a transaction block, so it runs statement by statement as if it had the
    /// directive. Sent before its `Applying`; also logged as a warning.
    OutsideTransaction(OutsideTransaction),
    /// A file holds plain `BEGIN`/`COMMIT` statements that do not wrap the whole file,
    /// so it runs statement by statement with its own transactions, as psql and the
    /// Supabase CLI run it. Sent before its `Applying`; also logged as a warning.
    OwnTransactions(OwnTransactions),
}

/// Why a file without `-- plover:no-transaction` runs statement by statement with its
/// own transactions (`split::without_transaction_blocks`). Its `Display` is the
/// notice shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnTransactions {
    pub version: i64,
    pub file: String,
    /// 1-based lines of its `BEGIN`/`COMMIT` statements.
    pub lines: Vec<usize>,
}

impl std::fmt::Display for OwnTransactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.lines.iter().map(usize::to_string).collect();
        write!(
            f,
            "{}: BEGIN/COMMIT at line(s) {} do not wrap the whole file, so it runs statement by statement with its own transactions, as psql and the Supabase CLI run it, with its progress recorded (a failure midway leaves it dirty: what its COMMITs committed stays); put `-- plover:no-transaction` on its first line to say so, or wrap the whole file in one BEGIN; … COMMIT;",
            self.file,
            lines.join(", ")
        )
    }
}

/// Why a file without `-- plover:no-transaction` runs outside a transaction: its
/// first statement that cannot run in one. Its `Display` is the notice shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutsideTransaction {
    pub version: i64,
    pub file: String,
    /// 1-based line and column of the statement.
    pub line: usize,
    pub column: usize,
    /// What it is, e.g. `CREATE INDEX CONCURRENTLY`.
    pub statement: &'static str,
}

impl std::fmt::Display for OutsideTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: `{}` cannot run inside a transaction block, so this file runs statement by statement with its progress recorded, as a `-- plover:no-transaction` file does (a failure midway leaves it dirty); put that directive on its first line to say so",
            self.file, self.line, self.column, self.statement
        )
    }
}
