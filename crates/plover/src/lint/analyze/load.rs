//! Loading: the input files read as the engine reads a migrations directory
//! ([`Source::from_files`]), and each file's standing against the baseline worked out
//! as the engine compares a directory with its history ([`Plan`]).
//!
//! Both are thin layers over the engine, and differ from it on purpose in one way:
//! where the engine stops (a file it cannot load, two files with one version, a file
//! edited after it was applied), lint reports a finding and goes on, so one run shows
//! every problem. A `.sql` file whose name has no version, which the engine skips as
//! the Supabase CLI does, is reported too (`file-invalid`): it would never run.

use std::collections::BTreeMap;
use std::time::SystemTime;

use pg_query::protobuf;

use super::{File, Level, Linter, Pos, RuleId, Status, Unloadable};
use crate::error::Error;
use crate::lint::{Baseline, BaselineFile, InputFile};
use crate::plan::{AppliedRow, Plan, RowState, State};
use crate::source::{Checksum, Source};

/// The files of a run.
pub(super) struct Loaded {
    /// The migrations that loaded, one per version.
    pub(super) source: Source,
    /// The files that did not.
    pub(super) unloadable: Vec<Unloadable>,
}

/// Loads every file the engine would, each on its own so that a bad one is a finding
/// and the rest still load; of two files with one version the first by name is kept.
pub(super) fn load(files: &[InputFile]) -> Loaded {
    let origin = files
        .first()
        .and_then(|f| f.path.rsplit_once('/'))
        .map_or("", |(dir, _)| dir);
    let mut unloadable: Vec<Unloadable> = Vec::new();
    let mut loaded: Vec<(i64, &InputFile)> = Vec::new();
    for f in files {
        match Source::from_files(origin, [(f.path.clone(), f.bytes.as_slice())]) {
            Err(e) => unloadable.push((RuleId::FileInvalid, f.path.clone(), e.to_string())),
            Ok(one) => {
                if !one.skipped().is_empty() {
                    let e = Error::InvalidFileName {
                        file: f.path.clone(),
                    };
                    unloadable.push((RuleId::FileInvalid, f.path.clone(), e.to_string()));
                }
                loaded.extend(one.migrations().iter().map(|m| (m.version(), f)));
            }
        }
    }
    loaded.sort_by(|a, b| (a.0, &a.1.path).cmp(&(b.0, &b.1.path)));
    let mut kept: Vec<(i64, &InputFile)> = Vec::new();
    for (version, f) in loaded {
        if let Some((prev_version, prev)) = kept.last()
            && *prev_version == version
        {
            unloadable.push((
                RuleId::DuplicateVersion,
                f.path.clone(),
                format!(
                    "version {version} is also used by {}; this file is skipped",
                    prev.path
                ),
            ));
            continue;
        }
        kept.push((version, f));
    }
    // Each file loaded on its own and the versions are distinct, so this does not
    // fail; were it to, the error is a finding, not a panic.
    let source = Source::from_files(
        origin,
        kept.iter()
            .map(|(_, f)| (f.path.clone(), f.bytes.as_slice())),
    )
    .unwrap_or_else(|e| {
        unloadable.push((RuleId::FileInvalid, origin.to_owned(), e.to_string()));
        Source::default()
    });
    Loaded { source, unloadable }
}

/// A baseline file as a history row, for [`Plan`]. Without a checksum the one of its
/// SQL stands in; without either, the row has none.
fn applied_row(b: &BaselineFile) -> AppliedRow {
    AppliedRow {
        version: b.version,
        name: b.name.clone(),
        checksum: b
            .checksum
            .or_else(|| b.sql.as_deref().map(|sql| Checksum::of(sql.as_bytes()))),
        applied_at: SystemTime::UNIX_EPOCH,
        execution_ms: 0,
        applied_by: String::new(),
        state: RowState::Applied,
        down_checksum: None,
    }
}

impl Linter<'_> {
    /// Marks files as applied or in the change; reports edited, deleted and
    /// out-of-order versions. `files` are `source`'s migrations, in its order.
    pub(super) fn history(
        &mut self,
        files: &mut [File<'_>],
        source: &Source,
        baseline: &Baseline,
        unloadable: &mut Vec<Unloadable>,
    ) {
        let Baseline::Files(applied) = baseline else {
            return;
        };
        // One row per version, the last given winning.
        let by_version: BTreeMap<i64, &BaselineFile> =
            applied.iter().map(|b| (b.version, b)).collect();
        let rows: Vec<AppliedRow> = by_version.values().map(|b| applied_row(b)).collect();
        let plan = Plan::new(source, &rows);
        let newest = plan.newest_applied();
        let index_of: BTreeMap<i64, usize> = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.migration.version(), i))
            .collect();
        for entry in plan.entries() {
            let Some(&index) = index_of.get(&entry.version) else {
                if entry.state == State::MissingLocally
                    && self.config.level(RuleId::HistoryDeleted) != Level::Off
                {
                    for b in applied.iter().filter(|b| b.version == entry.version) {
                        unloadable.push((
                            RuleId::HistoryDeleted,
                            b.name.clone(),
                            format!(
                                "version {} was applied (or is on the base branch) but its file is gone",
                                b.version
                            ),
                        ));
                    }
                }
                continue;
            };
            let m = files[index].migration;
            let pos = Pos {
                file: index,
                stmt: None,
                offset: 0,
                inner: None,
            };
            match &entry.state {
                State::Applied => files[index].status = Status::Applied,
                State::Modified { recorded } => {
                    files[index].status = Status::Applied;
                    // Nothing recorded to compare with: not known to be edited.
                    if recorded.is_none() {
                        continue;
                    }
                    let comments_only =
                        by_version[&entry.version]
                            .sql
                            .as_deref()
                            .is_some_and(|old| {
                                let old = old.strip_prefix('\u{FEFF}').unwrap_or(old);
                                without_comments(old) == without_comments(m.sql())
                            });
                    if comments_only {
                        self.report(
                            RuleId::HistoryCommentEdited,
                            pos,
                            format!("{} was applied; only its comments changed since", m.name()),
                        );
                    } else {
                        self.report(
                            RuleId::HistoryEdited,
                            pos,
                            format!(
                                "{} was applied (or is on the base branch) and has been changed since",
                                m.name()
                            ),
                        );
                    }
                }
                State::OutOfOrder => {
                    if let Some(newest) = newest {
                        self.report(
                            RuleId::HistoryOutOfOrder,
                            pos,
                            format!(
                                "version {} is older than {newest}, the newest applied (or base) version",
                                m.version()
                            ),
                        );
                    }
                }
                // Pending is the change; the rows are all applied and the Supabase
                // CLI's are not weighed, so no other state arises.
                _ => {}
            }
        }
    }
}

/// The token stream without comments and whitespace: equal for two texts that differ
/// only in comments and layout.
fn without_comments(sql: &str) -> Option<Vec<String>> {
    let scan = pg_query::scan(sql).ok()?;
    Some(
        scan.tokens
            .iter()
            .filter(|t| {
                t.token != protobuf::Token::SqlComment as i32
                    && t.token != protobuf::Token::CComment as i32
            })
            .filter_map(|t| {
                let start = usize::try_from(t.start).ok()?;
                let end = usize::try_from(t.end).ok()?;
                sql.get(start..end).map(str::to_owned)
            })
            .collect(),
    )
}
