//! The lint run: load the files, replay them into the schema model statement by
//! statement, check each statement of the change, then the end state of the change;
//! finally apply ignores and the configured levels.
//!
//! | module | job |
//! |---|---|
//! | `load` | the input files as the engine loads a directory (`Source`), and the baseline compared as the engine compares a history (`Plan`) |
//! | `model` | the tables, functions and views seen so far |
//! | `ahead` | every file split and parsed ahead of the replay, on every core |
//! | `replay` | one file: hand each parsed statement on |
//! | `body` | the statements inside `DO` blocks and function bodies, handed on like the file's |
//! | `statement` | the dispatch by statement kind, and the checks on no single object |
//! | `tables`, `security` | the checks on tables, and on policies, functions, views, grants |
//! | `privileges` | who of the API roles may execute each function and read each materialized view |
//! | `secrets` | API keys written into a file (service-role JWTs, secret keys) |
//! | `end` | the rules on the end state of the change; `--live` findings placed |
//! | `finish` | ignores, levels, positions, order |
//! | `ast` | helpers over the parse tree |

mod ahead;
mod ast;
mod body;
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
    Config, Finding, Group, Input, Level, LiveFinding, ObjectKind, Report, RuleId, Scope, Severity,
};
use crate::source::{Migration, Transaction};
use model::Model;

/// A position: which file, which statement, which byte of the file, and the body
/// (`DO` block, function) it is inside, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pos {
    file: usize,
    stmt: Option<usize>,
    offset: usize,
    inner: Option<Inner>,
}

/// A statement inside a `DO` block or function body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Inner {
    /// Which body: an index into `Linter::bodies`.
    body: usize,
    /// The byte offset in the file of the statement's start (where an ignore comment
    /// before it points).
    start: usize,
}

/// When a statement runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Runs {
    /// With the migration: a statement of the file, or of a `DO` block.
    Migration,
    /// Whenever a function is called: a statement of its body. Only
    /// [`Scope::Always`](crate::lint::Scope) rules judge it, and it leaves the model
    /// alone.
    Called,
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
    /// Start offset of each statement inside a body (for ignores before one).
    inner_starts: Vec<usize>,
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
    runs: Runs,
    /// Whether `sql` is the file's text at `offset`, so a location in it is a place in
    /// the file; otherwise (an `EXECUTE` string with doubled quotes, say) every
    /// finding points at `offset`.
    exact: bool,
    inner: Option<Inner>,
}

impl Stmt<'_> {
    fn pos(&self, location: i32) -> Pos {
        let rel = if self.exact {
            usize::try_from(location).unwrap_or(0).min(self.sql.len())
        } else {
            0
        };
        Pos {
            file: self.file,
            stmt: Some(self.index),
            offset: self.offset + rel,
            inner: self.inner,
        }
    }
}

/// The state of one run.
struct Linter<'c> {
    config: &'c Config,
    exposed: HashSet<String>,
    /// Schemas with a `[grants.SCHEMA]` table in plover.toml: their tables get the
    /// app's grants after every push.
    granted: HashSet<String>,
    raw: Vec<Raw>,
    model: Model,
    /// Enum values added earlier in the current transactional file: (type as
    /// `schema.name`, value).
    enum_values: Vec<(String, String)>,
    /// `DROP POLICY IF EXISTS` seen in the current file: (table, policy).
    dropped_policies: HashSet<(String, String)>,
    statements: usize,
    /// What each body walked is, for messages: `DO block`, `function schema.name`.
    body_labels: Vec<String>,
    /// The model before the function body being walked changed it.
    saved: Option<body::Saved>,
    /// Statements found inside bodies.
    body_statements: usize,
    /// Dynamic `EXECUTE`s skipped inside bodies.
    dynamic_skipped: usize,
    /// Whether `check_function_bodies` is on in the current file (a `SET` turns it off).
    check_function_bodies: bool,
    /// Start offsets of the current file's statements inside bodies.
    inner_starts: Vec<usize>,
}

pub(super) fn run(input: &Input, config: &Config, live: &[LiveFinding]) -> Report {
    let mut linter = Linter {
        config,
        exposed: input.exposed_schemas.iter().cloned().collect(),
        granted: input.granted_schemas.iter().cloned().collect(),
        raw: Vec::new(),
        model: Model::default(),
        enum_values: Vec::new(),
        dropped_policies: HashSet::new(),
        statements: 0,
        body_labels: Vec::new(),
        saved: None,
        body_statements: 0,
        dynamic_skipped: 0,
        check_function_bodies: true,
        inner_starts: Vec::new(),
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
            inner_starts: Vec::new(),
            ignores: Vec::new(),
        })
        .collect();

    let total_files = files.len();
    linter.history(&mut files, &source, &input.baseline, &mut unloadable);

    let sqls: Vec<&str> = files.iter().map(|f| f.migration.sql()).collect();
    ahead::run(&sqls, |parsed| {
        for (index, file) in files.iter_mut().enumerate() {
            linter.replay(index, file, parsed(index));
        }
    });
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

    /// Reports a finding on a statement of the change; in a function body only for the
    /// rules that judge those ([`Scope::Always`](crate::lint::Scope)).
    fn stmt_report(&mut self, rule: RuleId, s: &Stmt<'_>, location: i32, message: String) {
        if s.in_change && (s.runs == Runs::Migration || rule.rule().scope == Scope::Always) {
            self.report(rule, s.pos(location), message);
        }
    }

    fn is_exposed(&self, qualified: &str) -> bool {
        let schema = qualified.split('.').next().unwrap_or("public");
        self.exposed.contains(schema)
    }
}
