//! Static linting of a migrations directory: migration safety and Supabase security.
//!
//! The whole directory is parsed with the real Postgres grammar (`pg_query`) and
//! replayed, file by file in version order, into a small schema model (tables, RLS,
//! policies, functions, views), so a rule knows what earlier files did: a table created
//! in the same change is new (no lock warnings), RLS enabled in a later file of the
//! change counts, a policy dropped in the change leaves a table without one.
//!
//! Which files are *in the change* is given by a [`Baseline`]: the files already
//! applied (or on the base branch). Only files in the change are reported; the others
//! feed the model. Without a baseline every file is in the change.
//!
//! Findings can be suppressed with a reason:
//! `-- plover:lint-ignore RULE[, RULE] -- reason` on its own line before a statement
//! (it covers that statement), or `-- plover:lint-ignore-file RULE -- reason` anywhere
//! in a file (it covers the file). Ignores that suppress nothing are reported.
//!
//! Catalog findings from a database the migrations were applied to (`db lint --live`
//! runs the checks) can be passed to [`lint_live`], which places each at the statement
//! that created its object and applies ignores and levels as for the static rules.
//!
//! The statements inside `DO` blocks and function bodies (PL/pgSQL, and SQL functions
//! written as a string) are linted too, each at its own line in the file: a `DO`
//! block runs with the migration, so its statements are checked by every rule and
//! update the model; a function body runs whenever the function is called, so its
//! statements are checked only by the rules whose [`Scope`] is [`Scope::Always`] and
//! leave the model alone. `EXECUTE` of a constant string counts as a statement;
//! other dynamic SQL is skipped. [`Finding::inside`] says where such a finding is.
//!
//! Architecture invariant: this module is pure. It takes file contents (and catalog
//! findings) and returns findings; it reads no files, runs no git, and never touches a
//! database. Functions' bodies are also token-scanned (for reads of user metadata,
//! the caller and privileged objects), and a file's text byte-scanned for API keys.
//!
//! ```
//! use plover::lint::{lint, Config, Input, InputFile, Baseline};
//!
//! let input = Input {
//!     files: vec![InputFile::new(
//!         "supabase/migrations/20250101000000_notes.sql",
//!         "create table if not exists public.notes (id bigint primary key);",
//!     )],
//!     baseline: Baseline::None,
//!     exposed_schemas: vec!["public".into()],
//!     granted_schemas: vec![],
//! };
//! let report = lint(&input, &Config::default());
//! assert_eq!(report.findings[0].rule.id(), "table-without-rls");
//! assert_eq!((report.findings[0].line, report.findings[0].column), (1, 1));
//! assert!(report.has_errors());
//! ```

mod analyze;
mod output;
mod rules;
mod suppress;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use output::{render_github, render_human, render_json};
pub use rules::{Activation, Group, RULES, Rule, RuleId, Scope, Severity, rules_markdown};

use crate::source::Checksum;

/// A migration file to lint.
#[derive(Clone, Debug)]
pub struct InputFile {
    /// The path shown in findings, e.g. `supabase/migrations/20250101000000_init.sql`.
    pub path: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

impl InputFile {
    /// A file from its path and contents.
    pub fn new(path: impl Into<String>, contents: impl Into<Vec<u8>>) -> InputFile {
        InputFile {
            path: path.into(),
            bytes: contents.into(),
        }
    }
}

/// A migration that is already applied (or on the base branch).
#[derive(Clone, Debug)]
pub struct BaselineFile {
    /// Its version.
    pub version: i64,
    /// Its name, for messages (the file name or the history row's name).
    pub name: String,
    /// The checksum recorded for it, when known.
    pub checksum: Option<Checksum>,
    /// Its SQL as applied (from git); lets an edit of comments only be told apart.
    pub sql: Option<String>,
}

/// What is already applied: everything else is *in the change*.
#[derive(Clone, Debug, Default)]
pub enum Baseline {
    /// Nothing is applied: every file is in the change.
    #[default]
    None,
    /// These versions are applied (or on the base branch).
    Files(Vec<BaselineFile>),
}

/// Everything the linter looks at.
#[derive(Clone, Debug)]
pub struct Input {
    /// Every migration file of the directory (any order; non-`.sql` files are skipped).
    pub files: Vec<InputFile>,
    /// What is already applied.
    pub baseline: Baseline,
    /// The schemas the Data API exposes (`[api] schemas` of supabase/config.toml).
    pub exposed_schemas: Vec<String>,
    /// The schemas `[grants.SCHEMA]` of plover.toml grants on after every push.
    pub granted_schemas: Vec<String>,
}

/// A rule's level after configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// The rule does not run.
    Off,
    /// Findings are warnings.
    Warning,
    /// Findings are errors.
    Error,
}

/// Rule levels: the defaults of [`RULES`] (opt-in rules off, the others at their
/// severity), changed by `[lint.rules]` of plover.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    levels: BTreeMap<RuleId, Level>,
}

/// A bad lint configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LintError {
    /// `[lint.rules]` names a rule that does not exist.
    #[error("unknown lint rule {rule:?} (`cargo xtask db lint --list-rules` shows them)")]
    UnknownRule {
        /// What was written.
        rule: String,
    },
    /// A level other than off, warning, error.
    #[error("lint rule {rule}: unknown level {level:?} (use \"off\", \"warning\" or \"error\")")]
    UnknownLevel {
        /// The rule.
        rule: String,
        /// What was written.
        level: String,
    },
}

impl Config {
    /// Sets a rule's level from its id and `off` / `warning` / `error`.
    ///
    /// ```
    /// let mut config = plover::lint::Config::default();
    /// config.set("create-without-if-not-exists", "warning")?;
    /// assert!(config.set("no-such-rule", "off").is_err());
    /// # Ok::<(), plover::lint::LintError>(())
    /// ```
    pub fn set(&mut self, rule: &str, level: &str) -> Result<(), LintError> {
        let id = RuleId::from_id(rule).ok_or_else(|| LintError::UnknownRule {
            rule: rule.to_owned(),
        })?;
        let level = match level {
            "off" => Level::Off,
            "warning" | "warn" => Level::Warning,
            "error" => Level::Error,
            other => {
                return Err(LintError::UnknownLevel {
                    rule: rule.to_owned(),
                    level: other.to_owned(),
                });
            }
        };
        self.levels.insert(id, level);
        Ok(())
    }

    /// The level a rule runs at: as configured, else off for an
    /// [`Activation::OptIn`] rule and its severity for the others.
    ///
    /// ```
    /// use plover::lint::{Config, Level, RuleId};
    ///
    /// let mut config = Config::default();
    /// assert_eq!(config.level(RuleId::CreatePolicyWithoutDrop), Level::Off);
    /// config.set("create-policy-without-drop", "warning")?;
    /// assert_eq!(config.level(RuleId::CreatePolicyWithoutDrop), Level::Warning);
    /// # Ok::<(), plover::lint::LintError>(())
    /// ```
    pub fn level(&self, rule: RuleId) -> Level {
        if let Some(level) = self.levels.get(&rule) {
            return *level;
        }
        let rule = rule.rule();
        match (rule.activation, rule.severity) {
            (Activation::OptIn, _) => Level::Off,
            (Activation::Default, Severity::Warning) => Level::Warning,
            (Activation::Default, Severity::Error) => Level::Error,
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule.
    pub rule: RuleId,
    /// Its severity after configuration.
    pub severity: Severity,
    /// The file, as given in [`InputFile::path`].
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong here, naming the object.
    pub message: String,
    /// The body the statement is in: `DO block`, or `function schema.name`; `None`
    /// for a statement of the file itself.
    pub inside: Option<String>,
}

impl Finding {
    /// What to do instead (the rule's hint).
    pub fn hint(&self) -> &'static str {
        self.rule.rule().hint
    }
}

/// The result of a lint run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Findings in file, line, column order.
    pub findings: Vec<Finding>,
    /// How many files were in the change (and so reported on).
    pub files_checked: usize,
    /// How many files were read in all (the model replays every file).
    pub files_total: usize,
    /// How many statements were parsed.
    pub statements: usize,
    /// How many `DO` blocks and function bodies were walked for statements.
    pub bodies: usize,
    /// How many statements inside them were checked.
    pub body_statements: usize,
    /// How many dynamic `EXECUTE`s inside them were skipped (not a constant string).
    pub dynamic_skipped: usize,
}

impl Report {
    /// Whether any finding is an error (the command then exits non-zero).
    pub fn has_errors(&self) -> bool {
        self.count(Severity::Error) > 0
    }

    /// How many findings have this severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// Lints a migrations directory: parses every file, replays them in version order into
/// a schema model, and reports the findings of the files in the change.
pub fn lint(input: &Input, config: &Config) -> Report {
    analyze::run(input, config, &[])
}

/// What kind of object a catalog finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// A table (its `CREATE TABLE` is the finding's place).
    Table,
    /// A function or procedure.
    Function,
    /// A view.
    View,
}

/// A finding of a catalog check on a database the migrations were applied to
/// (`db lint --live`), to be mapped back to the statement that created the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveFinding {
    /// One of the [`Group::Live`] rules.
    pub rule: RuleId,
    /// The object's kind.
    pub kind: ObjectKind,
    /// `schema.name`.
    pub object: String,
    /// What is wrong, naming the object.
    pub message: String,
}

/// [`lint`], plus catalog findings from a migrated database: each is placed at the
/// statement of the change that created its object (findings about objects created
/// by applied files are left out, like every finding outside the change), then
/// ignores and levels apply as for the static rules (an object a `DO` block creates
/// is placed at its statement inside the block). Objects whose creating statement is
/// not visible (dynamic SQL, a function the migration calls) are placed at the first
/// line of the newest file in the change.
pub fn lint_live(input: &Input, config: &Config, live: &[LiveFinding]) -> Report {
    analyze::run(input, config, live)
}
