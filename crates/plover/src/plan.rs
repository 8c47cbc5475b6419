//! The plan: local migrations against this app's history.
//!
//! [`Plan::new`] is a pure function of a [`Source`] and the history rows of one app;
//! [`Plan::with_supabase_cli`] also weighs what the Supabase CLI recorded
//! (`supabase_migrations.schema_migrations`) for versions this app's history lacks:
//! the same statements as the file make the version adoptable (recorded without
//! running it), others a problem. [`Plan::check`] applies the policy ([`OutOfOrder`],
//! [`Missing`], [`SupabaseCli`]) and says what would run or why nothing may. No I/O
//! here: it is unit-tested without a database.

use std::fmt;
use std::time::SystemTime;

use crate::error::Error;
use crate::problem::Problem;
use crate::settings::{Missing, OutOfOrder, SupabaseCli};
use crate::source::{Checksum, Migration, Source};
use crate::split;

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
    /// The checksum of the migration's down file when it was applied (`None`: it had
    /// none, or the row predates the column).
    pub down_checksum: Option<Checksum>,
}

impl AppliedRow {
    /// Whether `m`'s down file is not the one recorded when `m` was applied: edited
    /// since, or removed. `false` when none was recorded (the down file came later).
    pub fn down_edited(&self, m: &Migration) -> bool {
        self.down_checksum
            .is_some_and(|recorded| m.down().map(|d| d.checksum()) != Some(recorded))
    }
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

/// One row of the Supabase CLI's history, `supabase_migrations.schema_migrations`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupabaseCliRow {
    /// The version as the CLI stores it: the file name's leading digits, as text.
    pub version: String,
    /// The statements the CLI ran, as it recorded them (`None` when it recorded none:
    /// an old CLI, or a row written by hand).
    pub statements: Option<Vec<String>>,
}

/// The Supabase CLI's version text as a number: ASCII digits that fit an `i64`.
pub(crate) fn supabase_version(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Why the statements the Supabase CLI recorded for `m` are not the ones plover runs
/// for it, or `None` when they are.
///
/// Both sides are compared after the same normalisation, which keeps every byte
/// that reaches the server but for the separators around statements: each text is
/// split with plover's splitter (the CLI keeps a statement's leading comments and
/// records a trailing comment as a statement of its own; plover leaves both out),
/// each statement loses its `;` and the blanks around it (the CLI strips them), empty
/// statements and a leading byte-order mark go, and a whole-file `BEGIN; … COMMIT;`
/// wrapper, or else plain `BEGIN`/`COMMIT` statements elsewhere, are left out (the CLI
/// records them; plover runs the rest in its own transaction and records it without
/// them). Comments after a statement's last
/// token go as well.
pub(crate) fn supabase_cli_differs(m: &Migration, recorded: Option<&[String]>) -> Option<String> {
    let Some(recorded) = recorded else {
        return Some("no statements recorded".into());
    };
    let cli = normalised(recorded.iter().map(String::as_str));
    let file = normalised(std::iter::once(m.sql()));
    if cli == file {
        return None;
    }
    let shown = |s: &str| {
        let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
        match one_line.char_indices().nth(60) {
            Some((at, _)) => format!("`{}…`", &one_line[..at]),
            None => format!("`{one_line}`"),
        }
    };
    let at = cli.iter().zip(&file).position(|(a, b)| a != b);
    Some(match at {
        Some(i) => format!(
            "statement {} differs: the CLI ran {} where the file has {}",
            i + 1,
            shown(cli[i]),
            shown(file[i])
        ),
        None => format!(
            "the CLI ran {} statement(s) where the file has {}",
            cli.len(),
            file.len()
        ),
    })
}

/// Statements as compared by [`supabase_cli_differs`].
fn normalised<'s>(texts: impl Iterator<Item = &'s str>) -> Vec<&'s str> {
    let bare = |s: &'s str| {
        let s = s
            .trim_start_matches('\u{feff}')
            .trim()
            .trim_end_matches(';')
            .trim();
        // Without its `;`, a statement ends at its last token: a comment before the
        // `;` goes too, as the CLI's text has none after its last token.
        match split::split(s).as_deref() {
            Ok([one]) => one.sql.trim_end_matches(';').trim(),
            _ => s,
        }
    };
    let mut statements = Vec::new();
    for text in texts {
        match split::split(text) {
            Ok(split) => statements.extend(split.iter().map(|st| split::Statement {
                sql: bare(st.sql),
                ..st.clone()
            })),
            Err(_) => statements.push(split::Statement {
                sql: bare(text),
                offset: 0,
                line: 1,
                column: 1,
            }),
        }
    }
    statements.retain(|st| !st.sql.is_empty());
    if let Some(inner) = split::unwrap_transaction(&statements) {
        return inner.iter().map(|st| st.sql).collect();
    }
    // Plain BEGIN/COMMIT elsewhere: the CLI ran them, plover leaves them out.
    match split::without_transaction_blocks(&statements) {
        Some((kept, _)) => kept.iter().map(|st| st.sql).collect(),
        None => statements.iter().map(|st| st.sql).collect(),
    }
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
    /// Not in this app's history, but the Supabase CLI applied it with the statements
    /// plover would run for the file: a run adopts it (records it without running it),
    /// under [`SupabaseCli::Adopt`].
    AppliedBySupabaseCli,
    /// Not in this app's history; the Supabase CLI applied it, but not with the file's
    /// statements (`reason` says how they differ). Refused: adopt it by hand once the
    /// database is checked.
    SupabaseCliDiffers { reason: String },
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

    /// Whether the file's down file is not the one recorded when it was applied
    /// ([`AppliedRow::down_edited`]).
    pub fn down_edited(&self) -> bool {
        match (&self.migration, &self.applied) {
            (Some(m), Some(row)) => row.down_edited(m),
            _ => false,
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
    supabase_cli: SupabaseCli,
}

impl<'a> Plan<'a> {
    /// Compares `source` with `history` (the rows of one app, any order).
    pub fn new(source: &'a Source, history: &[AppliedRow]) -> Plan<'a> {
        Plan::with_supabase_cli(source, history, &[], SupabaseCli::Adopt)
    }

    /// Compares `source` with `history` (the rows of one app, any order) and with the
    /// Supabase CLI's rows `cli` (any order; leave out versions that another app's
    /// history records, which are its mirror rows). A local file whose version is in
    /// `cli` but not in `history` was applied by the CLI: it is
    /// [`State::AppliedBySupabaseCli`] when the CLI recorded the file's statements
    /// (compared as [`SupabaseCli`] documents), else [`State::SupabaseCliDiffers`];
    /// either way it counts as applied when deciding what is out of order. Rows that
    /// match no local file are ignored here.
    pub fn with_supabase_cli(
        source: &'a Source,
        history: &[AppliedRow],
        cli: &[SupabaseCliRow],
        policy: SupabaseCli,
    ) -> Plan<'a> {
        let mut history: Vec<&AppliedRow> = history.iter().collect();
        history.sort_by_key(|r| r.version);
        let recorded: std::collections::BTreeSet<i64> = history.iter().map(|r| r.version).collect();
        let by_cli: std::collections::BTreeMap<i64, State> = cli
            .iter()
            .filter_map(|row| {
                let version = supabase_version(&row.version)?;
                let m = source.get(version)?;
                if recorded.contains(&version) {
                    return None;
                }
                let state = match supabase_cli_differs(m, row.statements.as_deref()) {
                    None => State::AppliedBySupabaseCli,
                    Some(reason) => State::SupabaseCliDiffers { reason },
                };
                Some((version, state))
            })
            .collect();
        let newest_applied = history
            .last()
            .map(|r| r.version)
            .max(by_cli.keys().next_back().copied());
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
                (Some(m), None) if by_cli.contains_key(&m.version()) => {
                    by_cli[&m.version()].clone()
                }
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
        Plan {
            entries,
            supabase_cli: policy,
        }
    }

    /// Every version, local or applied, in order.
    pub fn entries(&self) -> &[Entry<'a>] {
        &self.entries
    }

    /// The newest applied version (by plover, or by the Supabase CLI).
    pub fn newest_applied(&self) -> Option<i64> {
        self.entries
            .iter()
            .filter(|e| {
                e.applied.is_some()
                    || matches!(
                        e.state,
                        State::AppliedBySupabaseCli | State::SupabaseCliDiffers { .. }
                    )
            })
            .map(|e| e.version)
            .max()
    }

    /// The versions the Supabase CLI applied with the file's statements, which a run
    /// adopts (records without running them), in order.
    pub fn adoptable(&self) -> impl Iterator<Item = &'a Migration> + '_ {
        self.entries.iter().filter_map(|e| match e.state {
            State::AppliedBySupabaseCli => e.migration,
            _ => None,
        })
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
                (State::SupabaseCliDiffers { reason }, _) => Some(Problem::SupabaseCliDiffers {
                    file: file(e).unwrap_or_default(),
                    version: e.version,
                    reason: reason.clone(),
                }),
                (State::AppliedBySupabaseCli, _) if self.supabase_cli == SupabaseCli::Refuse => {
                    Some(Problem::SupabaseCliApplied {
                        file: file(e).unwrap_or_default(),
                        version: e.version,
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// The migrations to apply, in order, or every problem that forbids it. Versions
    /// to adopt are not among them: see [`Plan::adoptable`].
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

/// How far a rollback goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownTo {
    /// The newest `n` applied migrations.
    Last(usize),
    /// Every applied migration newer than this version, which stays applied (0: all).
    Version(i64),
}

/// The applied migrations a rollback undoes, newest first, each with its down file.
/// Refuses, naming every problem at once, when a version to undo is dirty, has no
/// file or no down file, or its file changed since it was applied (its down file was
/// written for what ran) or its down file changed since then ([`AppliedRow::down_edited`]),
/// or when the target version of [`DownTo::Version`] is not applied.
pub fn down<'s>(
    source: &'s Source,
    rows: &[AppliedRow],
    to: DownTo,
    app: &str,
) -> Result<Vec<&'s Migration>, Error> {
    let mut applied: Vec<&AppliedRow> = rows.iter().collect();
    applied.sort_by_key(|r| std::cmp::Reverse(r.version));
    let mut problems = Vec::new();
    let undo: Vec<&AppliedRow> = match to {
        DownTo::Last(n) => applied.iter().take(n).copied().collect(),
        DownTo::Version(v) => {
            if v != 0 && !applied.iter().any(|r| r.version == v) {
                problems.push(format!(
                    "version {v} is not applied, so there is nothing to roll back to; `db status` lists the applied ones"
                ));
            }
            applied
                .iter()
                .take_while(|r| r.version > v)
                .copied()
                .collect()
        }
    };
    if let Some(dirty) = applied.iter().find(|r| r.state != RowState::Applied) {
        problems.push(format!(
            "version {} ({}) is dirty: a no-transaction migration stopped midway; finish or undo it by hand, then `db repair`",
            dirty.version, dirty.name
        ));
    }
    let mut out = Vec::with_capacity(undo.len());
    for row in undo {
        let Some(m) = source.get(row.version) else {
            problems.push(format!(
                "version {} ({}) is applied but its file is gone: its down file with it",
                row.version, row.name
            ));
            continue;
        };
        if row.checksum.is_some_and(|c| c != m.checksum()) {
            problems.push(format!(
                "{} changed since it was applied: its down file undoes the new text, not what ran",
                m.file()
            ));
            continue;
        }
        if m.down().is_none() {
            let dir = m.file().rsplit_once('/').map_or("", |(d, _)| d);
            let dir = if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            };
            problems.push(format!(
                "{} has no down file: write {dir}{}_{}.down.sql",
                m.file(),
                m.version_text(),
                m.name()
            ));
            continue;
        }
        if row.down_edited(m) {
            let down = m.down().map_or("", |d| d.file());
            problems.push(format!(
                "{down} changed since {} was applied (the down file then had another checksum): review it, then record it with `db repair --status applied {}`",
                m.file(),
                m.version()
            ));
            continue;
        }
        out.push(m);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Error::DownRefused {
            app: app.to_owned(),
            problems,
        })
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
            down_checksum: None,
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

    /// Exactly what `supabase db push` (CLI 2.117.0) recorded for these files.
    const CLI_RECORDED: &[(&str, &str, &[&str])] = &[
        (
            "20240101000001_plain.sql",
            "-- a comment at the top\ncreate table a (id int primary key, note text default 'x;y');\n\n/* block comment */\ncreate function f() returns int language plpgsql as $$\nbegin\n  return 1;\nend;\n$$;\ninsert into a values (1, 'it''s');\nselect 1\n",
            &[
                "-- a comment at the top\ncreate table a (id int primary key, note text default 'x;y')",
                "/* block comment */\ncreate function f() returns int language plpgsql as $$\nbegin\n  return 1;\nend;\n$$",
                "insert into a values (1, 'it''s')",
                "select 1",
            ],
        ),
        (
            "20240101000002_wrapped.sql",
            "BEGIN;\ncreate table b (id int);\nCOMMIT;\n",
            &["BEGIN", "create table b (id int)", "COMMIT"],
        ),
        (
            "20240101000003_trail.sql",
            "create table c (id int);   \n\n-- trailing comment\n",
            &["create table c (id int)", "-- trailing comment"],
        ),
        (
            "20240101000004_atomic.sql",
            "create function one() returns int language sql\nbegin atomic\n  select 1;\nend;\ncreate table t1 (id int);;\n;\ncreate table t2 (id int) -- trailing inline\n;\n",
            &[
                "create function one() returns int language sql\nbegin atomic\n  select 1;\nend",
                "create table t1 (id int)",
                "create table t2 (id int) -- trailing inline",
            ],
        ),
        (
            "20240101000005_crlf.sql",
            "begin;\r\ncreate table crlf (id int);\r\ncommit",
            &["begin", "create table crlf (id int)", "commit"],
        ),
        (
            "20240101000006_cic.sql",
            "-- plover:no-transaction\ncreate index concurrently i on t1 (id);\n",
            &["-- plover:no-transaction\ncreate index concurrently i on t1 (id)"],
        ),
        (
            "20240101000007_blocks.sql",
            "create table d (id int);\nbegin;\ninsert into d values (1);\ncommit;\nend;\n",
            &[
                "create table d (id int)",
                "begin",
                "insert into d values (1)",
                "commit",
                "end",
            ],
        ),
    ];

    fn recorded(statements: &[&str]) -> Vec<String> {
        statements.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn what_the_supabase_cli_records_matches_the_file() {
        let s = source(
            &CLI_RECORDED
                .iter()
                .map(|(file, sql, _)| (*file, *sql))
                .collect::<Vec<_>>(),
        );
        for (m, (file, _, statements)) in s.migrations().iter().zip(CLI_RECORDED) {
            assert_eq!(
                supabase_cli_differs(m, Some(&recorded(statements))),
                None,
                "{file}"
            );
            // What plover's own mirror writes (no wrapper, no comments) matches too.
            let mirror: Vec<String> = crate::apply::mirror_statements(m)
                .iter()
                .map(|s| s.to_string())
                .collect();
            assert_eq!(supabase_cli_differs(m, Some(&mirror)), None, "{file}");
            // So does the whole file as one statement.
            assert_eq!(
                supabase_cli_differs(m, Some(&[m.sql().to_owned()])),
                None,
                "{file}"
            );
        }
    }

    #[test]
    fn other_statements_than_the_files_differ_and_say_where() {
        let s = source(&[(
            "1_a.sql",
            "create table a (id int);\ncreate index on a (id);\n",
        )]);
        let m = &s.migrations()[0];
        let check = |statements: Option<&[&str]>, expected: &str| {
            let statements = statements.map(recorded);
            assert_eq!(
                supabase_cli_differs(m, statements.as_deref()).as_deref(),
                Some(expected)
            );
        };
        check(
            Some(&["create table a (id bigint)", "create index on a (id)"]),
            "statement 1 differs: the CLI ran `create table a (id bigint)` where the file has `create table a (id int)`",
        );
        check(
            Some(&["create table a (id int)"]),
            "the CLI ran 1 statement(s) where the file has 2",
        );
        check(None, "no statements recorded");
        // Only separators are forgiven: blanks inside a statement count.
        check(
            Some(&["create table a (id  int)", "create index on a (id)"]),
            "statement 1 differs: the CLI ran `create table a (id int)` where the file has `create table a (id int)`",
        );
        // Plain BEGIN/COMMIT are left out on both sides, but a ROLLBACK is a statement.
        check(
            Some(&[
                "rollback",
                "create table a (id int)",
                "create index on a (id)",
            ]),
            "statement 1 differs: the CLI ran `rollback` where the file has `create table a (id int)`",
        );
    }

    fn cli(version: &str, statements: Option<&[&str]>) -> SupabaseCliRow {
        SupabaseCliRow {
            version: version.into(),
            statements: statements.map(recorded),
        }
    }

    #[test]
    fn versions_the_supabase_cli_applied_are_adopted_or_refused_never_pending() {
        let s = source(&[
            ("1_a.sql", "a"),
            ("2_b.sql", "b"),
            ("3_c.sql", "c"),
            ("4_d.sql", "d"),
            ("5_e.sql", "e"),
        ]);
        let rows = [
            cli("1", Some(&["changed"])), // in plover's history: plover's own mirror
            cli("0003", Some(&["c"])),
            cli("4", Some(&["d2"])),
            cli("9", Some(&["another app's"])),
            cli("manual", None),
        ];
        let plan = Plan::with_supabase_cli(&s, &[row(1, "a")], &rows, SupabaseCli::Adopt);
        let differs = State::SupabaseCliDiffers {
            reason: "statement 1 differs: the CLI ran `d2` where the file has `d`".into(),
        };
        assert_eq!(
            states(&plan),
            [
                (1, State::Applied),
                (2, State::OutOfOrder), // older than what the CLI applied
                (3, State::AppliedBySupabaseCli),
                (4, differs),
                (5, State::Pending),
            ]
        );
        let adopt: Vec<i64> = plan.adoptable().map(|m| m.version()).collect();
        assert_eq!(adopt, [3]);
        assert_eq!(plan.newest_applied(), Some(4));
        let problems = plan.problems(OutOfOrder::Allow, Missing::Refuse);
        assert_eq!(
            problems,
            [Problem::SupabaseCliDiffers {
                file: "4_d.sql".into(),
                version: 4,
                reason: "statement 1 differs: the CLI ran `d2` where the file has `d`".into(),
            }]
        );
        assert!(problems[0].is_supabase_cli());
        assert_eq!(
            problems[0].to_string(),
            "4_d.sql: version 4 was applied by the Supabase CLI (supabase_migrations.schema_migrations) but not with this file's statements (statement 1 differs: the CLI ran `d2` where the file has `d`); plover runs nothing it applied; if the database holds what the file says, record the version without running it with `cargo xtask db adopt --from supabase` (`Migrator::adopt` with `Adopt::Supabase`), else restore the file as it was applied and put the change in a new migration"
        );

        // Without the differing row: version 2 may run out of order, 3 is adopted.
        let plan = Plan::with_supabase_cli(&s, &[row(1, "a")], &rows[..2], SupabaseCli::Adopt);
        let run: Vec<i64> = plan
            .check(OutOfOrder::Allow, Missing::Refuse)
            .unwrap()
            .iter()
            .map(|m| m.version())
            .collect();
        assert_eq!(run, [2, 4, 5]);
        assert!(!plan.is_up_to_date());

        // Refused by policy: named, never pending.
        let plan = Plan::with_supabase_cli(&s, &[row(1, "a")], &rows[..2], SupabaseCli::Refuse);
        let problems = plan.problems(OutOfOrder::Allow, Missing::Refuse);
        assert_eq!(
            problems,
            [Problem::SupabaseCliApplied {
                file: "3_c.sql".into(),
                version: 3
            }]
        );
        assert!(
            problems[0]
                .to_string()
                .contains("cargo xtask db adopt --from supabase")
        );
    }
}
