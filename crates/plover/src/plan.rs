//! The plan: local migrations against this app's history.
//!
//! [`Plan::new`] is a pure function of a [`Source`] and the history rows of one app;
//! [`Plan::check`] applies the policy ([`OutOfOrder`], [`Missing`]) and says what
//! would run or why nothing may. No I/O here: it is unit-tested without a database.

use std::fmt;
use std::time::SystemTime;

use crate::error::Error;
use crate::source::{Checksum, Migration, Source};

/// One row of an app's history, as the history table holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedRow {
    pub version: i64,
    pub name: String,
    pub checksum: Option<Checksum>,
    pub applied_at: SystemTime,
    pub execution_ms: i64,
    pub applied_by: String,
    pub state: RowState,
}

/// Whether a history row records a finished migration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowState {
    /// Fully applied.
    Applied,
    /// A no-transaction migration that stopped midway.
    Dirty {
        statements_done: i32,
        statements_total: i32,
        error: Option<String>,
    },
}

/// Whether pending migrations older than the newest applied one may run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutOfOrder {
    /// Refuse them (the default): they were probably merged from a branch after a
    /// newer migration shipped, and may depend on a schema that no longer exists.
    #[default]
    Refuse,
    /// Apply them (the Supabase CLI's `--include-all`).
    Allow,
}

/// Whether applied migrations whose files are gone may be ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Missing {
    /// Refuse to migrate (the default).
    #[default]
    Refuse,
    /// Ignore them.
    Allow,
}

/// The state of one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Applied, and the file is unchanged.
    Applied,
    /// Not applied yet, newer than everything applied.
    Pending,
    /// Not applied yet, older than the newest applied version.
    OutOfOrder,
    /// Applied, but the file changed since.
    Modified { recorded: Option<Checksum> },
    /// Applied, but no local file has this version.
    MissingLocally,
    /// A no-transaction run that stopped midway.
    Dirty,
}

/// One version in the plan.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub version: i64,
    pub state: State,
    /// The local file, when there is one.
    pub migration: Option<&'a Migration>,
    /// The history row, when there is one.
    pub applied: Option<AppliedRow>,
}

impl Entry<'_> {
    /// The migration's name, from the file or else from the history row.
    pub fn name(&self) -> &str {
        match (&self.migration, &self.applied) {
            (Some(m), _) => m.name(),
            (None, Some(r)) => &r.name,
            (None, None) => "",
        }
    }
}

/// Something that stops a migration run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    Modified {
        file: String,
        version: i64,
        recorded: Option<Checksum>,
        actual: Checksum,
    },
    MissingLocally {
        version: i64,
        name: String,
    },
    OutOfOrder {
        file: String,
        version: i64,
        newest_applied: i64,
    },
    Dirty {
        file: Option<String>,
        version: i64,
        statements_done: i32,
        statements_total: i32,
        error: Option<String>,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Modified {
                file,
                recorded,
                actual,
                ..
            } => write!(
                f,
                "{file}: modified after it was applied (checksum recorded {}, file now {actual}); restore the file and put the change in a new migration",
                recorded.map_or_else(|| "none".to_string(), |c| c.to_string())
            ),
            Problem::MissingLocally { version, name } => write!(
                f,
                "version {version} ({name}) is applied but its file is missing; restore the file, or allow missing migrations"
            ),
            Problem::OutOfOrder {
                file,
                newest_applied,
                ..
            } => write!(
                f,
                "{file}: pending but older than the newest applied version {newest_applied}; give it a new version, or allow out-of-order migrations (--include-all)"
            ),
            Problem::Dirty {
                file,
                version,
                statements_done,
                statements_total,
                error,
            } => {
                write!(
                    f,
                    "{}: a no-transaction run stopped after {statements_done} of {statements_total} statements",
                    file.clone().unwrap_or_else(|| format!("version {version}"))
                )?;
                if let Some(e) = error {
                    write!(f, " ({e})")?;
                }
                write!(
                    f,
                    "; finish or undo it by hand, then `repair` version {version} as applied or reverted"
                )
            }
        }
    }
}

/// An applied migration whose file has another name now (same version). Only a
/// warning: plover matches migrations by version, so nothing runs again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Renamed {
    pub version: i64,
    /// The name recorded in the history when it was applied.
    pub recorded: String,
    /// The file's name now.
    pub name: String,
    /// The file as shown in messages.
    pub file: String,
    /// The file name it was applied under, e.g. `20250101120000_init.sql`.
    pub recorded_file: String,
}

impl fmt::Display for Renamed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: version {} was applied as `{}` and is now named `{}`; nothing runs again (migrations are matched by version), but rename the file back to {} to keep it in step with the history",
            self.file, self.version, self.recorded, self.name, self.recorded_file
        )
    }
}

/// Local migrations compared with one app's history.
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    entries: Vec<Entry<'a>>,
}

impl<'a> Plan<'a> {
    /// Compares `source` with `history` (the rows of one app, any order).
    pub fn new(source: &'a Source, history: &[AppliedRow]) -> Plan<'a> {
        let mut history: Vec<&AppliedRow> = history.iter().collect();
        history.sort_by_key(|r| r.version);
        let newest_applied = history.last().map(|r| r.version);
        let mut entries = Vec::with_capacity(source.migrations().len().max(history.len()));
        let mut rows = history.into_iter().peekable();
        let mut files = source.migrations().iter().peekable();
        loop {
            let next_file = files.peek().map(|m| m.version());
            let next_row = rows.peek().map(|r| r.version);
            let (migration, applied) = match (next_file, next_row) {
                (None, None) => break,
                (Some(f), Some(r)) if f == r => (files.next(), rows.next()),
                (Some(f), Some(r)) if f < r => (files.next(), None),
                (Some(_), None) => (files.next(), None),
                _ => (None, rows.next()),
            };
            let state = match (migration, applied) {
                (Some(m), None) => {
                    if newest_applied.is_some_and(|n| m.version() < n) {
                        State::OutOfOrder
                    } else {
                        State::Pending
                    }
                }
                (_, Some(r)) if matches!(r.state, RowState::Dirty { .. }) => State::Dirty,
                (Some(m), Some(r)) if r.checksum != Some(m.checksum()) => State::Modified {
                    recorded: r.checksum,
                },
                (Some(_), Some(_)) => State::Applied,
                (None, Some(_)) => State::MissingLocally,
                (None, None) => unreachable!("one side always advances"),
            };
            let version = migration
                .map(|m| m.version())
                .or(applied.map(|r| r.version))
                .unwrap_or_default();
            entries.push(Entry {
                version,
                state,
                migration,
                applied: applied.cloned(),
            });
        }
        Plan { entries }
    }

    /// Every version, local or applied, in order.
    pub fn entries(&self) -> &[Entry<'a>] {
        &self.entries
    }

    /// The newest applied version.
    pub fn newest_applied(&self) -> Option<i64> {
        self.entries
            .iter()
            .filter(|e| e.applied.is_some())
            .map(|e| e.version)
            .max()
    }

    /// What stands in the way under this policy.
    pub fn problems(&self, out_of_order: OutOfOrder, missing: Missing) -> Vec<Problem> {
        let newest_applied = self.newest_applied().unwrap_or_default();
        let file = |e: &Entry<'_>| e.migration.map(|m| m.file().to_owned());
        self.entries
            .iter()
            .filter_map(|e| match (&e.state, &e.applied) {
                (State::Modified { recorded }, _) => Some(Problem::Modified {
                    file: file(e).unwrap_or_default(),
                    version: e.version,
                    recorded: *recorded,
                    actual: e.migration.map(|m| m.checksum())?,
                }),
                (State::MissingLocally, Some(r)) if missing == Missing::Refuse => {
                    Some(Problem::MissingLocally {
                        version: e.version,
                        name: r.name.clone(),
                    })
                }
                (State::OutOfOrder, _) if out_of_order == OutOfOrder::Refuse => {
                    Some(Problem::OutOfOrder {
                        file: file(e).unwrap_or_default(),
                        version: e.version,
                        newest_applied,
                    })
                }
                (
                    State::Dirty,
                    Some(AppliedRow {
                        state:
                            RowState::Dirty {
                                statements_done,
                                statements_total,
                                error,
                            },
                        ..
                    }),
                ) => Some(Problem::Dirty {
                    file: file(e),
                    version: e.version,
                    statements_done: *statements_done,
                    statements_total: *statements_total,
                    error: error.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The migrations to apply, in order, or every problem that forbids it.
    pub fn check(
        &self,
        out_of_order: OutOfOrder,
        missing: Missing,
    ) -> Result<Vec<&'a Migration>, Error> {
        let problems = self.problems(out_of_order, missing);
        if !problems.is_empty() {
            return Err(Error::Plan { problems });
        }
        Ok(self.pending().collect())
    }

    /// Applied migrations whose file was renamed since (same version, new name), in
    /// version order. A warning, never a problem: see [`Renamed`].
    pub fn renamed(&self) -> Vec<Renamed> {
        self.entries
            .iter()
            .filter_map(|e| {
                let (m, row) = (e.migration?, e.applied.as_ref()?);
                (m.name() != row.name).then(|| Renamed {
                    version: e.version,
                    recorded: row.name.clone(),
                    name: m.name().to_owned(),
                    file: m.file().to_owned(),
                    recorded_file: format!("{}_{}.sql", m.version_text(), row.name),
                })
            })
            .collect()
    }

    /// Versions not applied yet (pending and out-of-order), in order.
    pub fn pending(&self) -> impl Iterator<Item = &'a Migration> + '_ {
        self.entries.iter().filter_map(|e| match e.state {
            State::Pending | State::OutOfOrder => e.migration,
            _ => None,
        })
    }

    /// Whether anything is not applied yet or in need of attention.
    pub fn is_up_to_date(&self) -> bool {
        self.entries.iter().all(|e| e.state == State::Applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(files: &[(&str, &str)]) -> Source {
        Source::from_files(
            "m",
            files.iter().map(|(f, s)| (f.to_string(), s.as_bytes())),
        )
        .unwrap()
    }

    fn row(version: i64, sql: &str) -> AppliedRow {
        AppliedRow {
            version,
            name: format!("m{version}"),
            checksum: Some(Checksum::of(sql.as_bytes())),
            applied_at: SystemTime::UNIX_EPOCH,
            execution_ms: 1,
            applied_by: "test".into(),
            state: RowState::Applied,
        }
    }

    fn states(plan: &Plan<'_>) -> Vec<(i64, State)> {
        plan.entries()
            .iter()
            .map(|e| (e.version, e.state.clone()))
            .collect()
    }

    #[test]
    fn applied_pending_and_out_of_order() {
        let s = source(&[
            ("1_a.sql", "a"),
            ("2_b.sql", "b"),
            ("3_c.sql", "c"),
            ("5_e.sql", "e"),
        ]);
        let plan = Plan::new(&s, &[row(1, "a"), row(3, "c")]);
        assert_eq!(
            states(&plan),
            [
                (1, State::Applied),
                (2, State::OutOfOrder),
                (3, State::Applied),
                (5, State::Pending)
            ]
        );
        let e = plan.check(OutOfOrder::Refuse, Missing::Refuse).unwrap_err();
        assert_eq!(
            e.to_string(),
            "refusing to migrate: 1 problem in the plan; nothing was applied\n  - 2_b.sql: pending but older than the newest applied version 3; give it a new version, or allow out-of-order migrations (--include-all)"
        );
        let run: Vec<i64> = plan
            .check(OutOfOrder::Allow, Missing::Refuse)
            .unwrap()
            .iter()
            .map(|m| m.version())
            .collect();
        assert_eq!(run, [2, 5]);
        assert!(!plan.is_up_to_date());
    }

    #[test]
    fn modified_names_the_file_and_both_checksums() {
        let s = source(&[("1_a.sql", "a2")]);
        let plan = Plan::new(&s, &[row(1, "a")]);
        let problems = plan.problems(OutOfOrder::Allow, Missing::Allow);
        let text = problems[0].to_string();
        assert!(
            text.starts_with("1_a.sql: modified after it was applied (checksum recorded "),
            "{text}"
        );
        assert!(text.contains(&Checksum::of(b"a").to_string()), "{text}");
        assert!(text.contains(&Checksum::of(b"a2").to_string()), "{text}");
    }

    #[test]
    fn missing_locally_is_refused_unless_allowed() {
        let s = source(&[("2_b.sql", "b")]);
        let plan = Plan::new(&s, &[row(1, "a"), row(2, "b")]);
        assert_eq!(
            states(&plan),
            [(1, State::MissingLocally), (2, State::Applied)]
        );
        assert!(matches!(
            plan.problems(OutOfOrder::Refuse, Missing::Refuse)[..],
            [Problem::MissingLocally { version: 1, .. }]
        ));
        assert!(
            plan.check(OutOfOrder::Refuse, Missing::Allow)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn dirty_rows_are_refused_always() {
        let s = source(&[("1_a.sql", "a")]);
        let mut r = row(1, "a");
        r.state = RowState::Dirty {
            statements_done: 1,
            statements_total: 2,
            error: Some("boom".into()),
        };
        let plan = Plan::new(&s, &[r]);
        assert_eq!(states(&plan), [(1, State::Dirty)]);
        let e = plan.check(OutOfOrder::Allow, Missing::Allow).unwrap_err();
        assert!(
            e.to_string()
                .contains("1_a.sql: a no-transaction run stopped after 1 of 2 statements (boom)"),
            "{e}"
        );
    }

    #[test]
    fn a_renamed_file_is_a_warning_naming_both_names() {
        let s = source(&[("0001_first.sql", "a"), ("2_m2.sql", "b")]);
        // row() records the names m1 and m2.
        let plan = Plan::new(&s, &[row(1, "a"), row(2, "b")]);
        assert!(plan.is_up_to_date());
        assert!(plan.check(OutOfOrder::Refuse, Missing::Refuse).is_ok());
        let renamed = plan.renamed();
        assert_eq!(
            renamed,
            [Renamed {
                version: 1,
                recorded: "m1".into(),
                name: "first".into(),
                file: "0001_first.sql".into(),
                recorded_file: "0001_m1.sql".into(),
            }]
        );
        assert_eq!(
            renamed[0].to_string(),
            "0001_first.sql: version 1 was applied as `m1` and is now named `first`; nothing runs again (migrations are matched by version), but rename the file back to 0001_m1.sql to keep it in step with the history"
        );
        // A modified file that was also renamed is reported both ways.
        let s = source(&[("1_first.sql", "a2")]);
        let plan = Plan::new(&s, &[row(1, "a")]);
        assert_eq!(plan.renamed().len(), 1);
        assert_eq!(plan.problems(OutOfOrder::Refuse, Missing::Refuse).len(), 1);
    }

    #[test]
    fn empty_history_is_all_pending() {
        let s = source(&[("1_a.sql", "a"), ("2_b.sql", "b")]);
        let plan = Plan::new(&s, &[]);
        assert_eq!(plan.pending().count(), 2);
        assert!(Plan::new(&s, &[row(1, "a"), row(2, "b")]).is_up_to_date());
    }
}
