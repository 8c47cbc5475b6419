//! Another backend, as `pg_stat_activity` shows it (the lock's holder, a blocker).
//!
//! Must not: import any other plover module (errors and events name sessions).

use std::fmt;
use std::time::Duration;

/// Another backend, as `pg_stat_activity` shows it: the holder of a lock plover waits
/// for. `Display` gives one line: pid, application_name, state and statement.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Session {
    /// The backend pid (`pg_backend_pid()` in that session).
    pub pid: i32,
    /// Its `application_name` (may be empty).
    pub application_name: String,
    /// `active`, `idle`, `idle in transaction`, ...; empty when our role may not see
    /// it.
    pub state: String,
    /// Its current statement (`active`) or last one: whitespace collapsed, string
    /// literals after `password` hidden, cut at 200 characters.
    pub query: String,
    /// How long its transaction has been open, when it is in one.
    pub in_transaction_for: Option<Duration>,
    /// The relation locks it holds or waits for, e.g. `AccessExclusiveLock on t`
    /// (only for the candidates of a lock timeout).
    pub locks: Vec<String>,
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backend pid {} (application_name '{}'",
            self.pid, self.application_name
        )?;
        if !self.state.is_empty() {
            write!(f, ", {}", self.state)?;
        }
        if let Some(d) = self.in_transaction_for {
            write!(f, ", transaction open for {} s", d.as_secs())?;
        }
        if !self.locks.is_empty() {
            write!(f, ", holds {}", self.locks.join(", "))?;
        }
        let label = if self.state == "active" {
            "query"
        } else {
            "last query"
        };
        write!(f, "; {label}: {})", self.query)
    }
}
