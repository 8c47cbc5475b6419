//! The lint run: load the files, replay them into the schema model statement by
//! statement, check each statement of the change, then the end state of the change;
//! finally apply ignores and the configured levels.
//!
//! | module | job |
//! |---|---|
//! | `load` | the input files as the engine loads a directory (`Source`), and the baseline compared as the engine compares a history (`Plan`) |
//! | `model` | the tables, functions and views seen so far |
//! | `replay` | one file: split, parse, hand each statement on |
//! | `statement` | the dispatch by statement kind, and the checks on no single object |
//! | `tables`, `security` | the checks on tables, and on policies, functions, views, grants |
//! | `privileges` | who of the API roles may execute each function and read each materialized view |
//! | `secrets` | API keys written into a file (service-role JWTs, secret keys) |
//! | `end` | the rules on the end state of the change; `--live` findings placed |
//! | `finish` | ignores, levels, positions, order |
//! | `ast` | helpers over the parse tree |

mod ast;
mod end;
mod finish;
mod load;
mod model;
mod privileges;
mod replay;
mod secrets;
mod security;
mod statement;
mod tables;

use std::collections::HashSet;

use crate::lint::suppress::Ignore;
use crate::lint::{
    Config, Finding, Group, Input, Level, LiveFinding, ObjectKind, Report, RuleId, Severity,
};
use crate::source::{Migration, Transaction};
use model::Model;

/// A position: which file, which statement, which byte of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pos {
    file: usize,
    stmt: Option<usize>,
    offset: usize,
}

/// A finding before ignores and levels are applied.
struct Raw {
    rule: RuleId,
    pos: Pos,
    message: String,
}

/// A finding about a file outside the replay (it did not load, or is gone): (rule,
/// the file as shown, message). It is placed at line 1, column 1.
type Unloadable = (RuleId, String, String);

/// Where a file stands against the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// New or not applied: reported on, its objects are new.
    InChange,
    /// Applied (or on the base): feeds the model only.
    Applied,
}

/// One loaded migration file in the run.
struct File<'s> {
    migration: &'s Migration,
    status: Status,
    /// Start line of each statement, once split.
    stmt_lines: Vec<usize>,
    ignores: Vec<Ignore>,
}

/// Per statement: where it is and how its file runs.
#[derive(Clone, Copy)]
struct Stmt<'a> {
    file: usize,
    index: usize,
    /// Byte offset of the statement in the file.
    offset: usize,
    sql: &'a str,
    in_change: bool,
    transaction: Transaction,
}

impl Stmt<'_> {
    fn pos(&self, location: i32) -> Pos {
        let rel = usize::try_from(location).unwrap_or(0).min(self.sql.len());
        Pos {
            file: self.file,
            stmt: Some(self.index),
            offset: self.offset + rel,
        }
    }
}

/// The state of one run.
struct Linter<'c> {
    config: &'c Config,
    exposed: HashSet<String>,
    raw: Vec<Raw>,
    model: Model,
    /// Enum values added earlier in the current transactional file: (type as
    /// `schema.name`, value).
    enum_values: Vec<(String, String)>,
    /// `DROP POLICY IF EXISTS` seen in the current file: (table, policy).
    dropped_policies: HashSet<(String, String)>,
    statements: usize,
}

pub(super) fn run(input: &Input, config: &Config, live: &[LiveFinding]) -> Report {
    let mut linter = Linter {
        config,
        exposed: input.exposed_schemas.iter().cloned().collect(),
        raw: Vec::new(),
        model: Model::default(),
        enum_values: Vec::new(),
        dropped_policies: HashSet::new(),
        statements: 0,
    };
    let load::Loaded {
        source,
        mut unloadable,
    } = load::load(&input.files);
    let mut files: Vec<File<'_>> = source
        .migrations()
        .iter()
        .map(|migration| File {
            migration,
            status: Status::InChange,
            stmt_lines: Vec::new(),
            ignores: Vec::new(),
        })
        .collect();

    let total_files = files.len();
    linter.history(&mut files, &source, &input.baseline, &mut unloadable);

    for (index, file) in files.iter_mut().enumerate() {
        linter.replay(index, file);
    }
    linter.end_of_change();
    linter.live(live, &files);
    linter.finish(files, unloadable, total_files)
}

impl Linter<'_> {
    fn report(&mut self, rule: RuleId, pos: Pos, message: String) {
        if self.config.level(rule) != Level::Off {
            self.raw.push(Raw { rule, pos, message });
        }
    }

    fn stmt_report(&mut self, rule: RuleId, s: &Stmt<'_>, location: i32, message: String) {
        if s.in_change {
            self.report(rule, s.pos(location), message);
        }
    }

    fn is_exposed(&self, qualified: &str) -> bool {
        let schema = qualified.split('.').next().unwrap_or("public");
        self.exposed.contains(schema)
    }
}
