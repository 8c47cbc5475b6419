//! What a [`Migrator`](crate::Migrator) can be told, in one place: how pending
//! migrations are grouped into transactions, which plan problems may be allowed,
//! how the Supabase CLI's history is treated, and whose history to adopt.
//!
//! Must not: import any other plover module.

use std::fmt;

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

/// What a run does with a version the Supabase CLI applied (it is in
/// `supabase_migrations.schema_migrations`) that this app's history lacks, when it is
/// one of this app's files. Either way such a version never runs again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SupabaseCli {
    /// Adopt it (the default): record it in plover's history with the file's checksum,
    /// without running it, when the statements the CLI recorded are the ones plover
    /// would run for the file ([`State::AppliedBySupabaseCli`](crate::State::AppliedBySupabaseCli)); refuse when they are
    /// not ([`State::SupabaseCliDiffers`](crate::State::SupabaseCliDiffers)).
    #[default]
    Adopt,
    /// Refuse to migrate until it is adopted by hand (`cargo xtask db adopt --from
    /// supabase`, or [`Migrator::adopt`](crate::Migrator::adopt)(crate::Migrator::adopt)).
    Refuse,
}

/// Whether the Supabase CLI's table is kept in step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SupabaseHistory {
    /// On for a Supabase project (a source from `.../supabase/migrations`), else off.
    #[default]
    Auto,
    /// Always write `supabase_migrations.schema_migrations`.
    On,
    /// Never touch it.
    Off,
}

/// Whose history [`Migrator::adopt`](crate::Migrator::adopt) reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Adopt {
    /// The Supabase CLI: `supabase_migrations.schema_migrations`, keyed by the file
    /// name's version digits.
    Supabase,
    /// sqlx: `_sqlx_migrations`. A row with `success = false` (sqlx's dirty state) is
    /// refused.
    Sqlx,
    /// refinery: `refinery_schema_history` (int4 or int8 versions).
    Refinery,
}

impl Adopt {
    /// The tool's history table, as the tool names it.
    ///
    /// ```
    /// assert_eq!(plover::Adopt::Sqlx.table(), "_sqlx_migrations");
    /// ```
    pub fn table(self) -> &'static str {
        match self {
            Adopt::Supabase => "supabase_migrations.schema_migrations",
            Adopt::Sqlx => "_sqlx_migrations",
            Adopt::Refinery => "refinery_schema_history",
        }
    }

    /// The word recorded in `applied_by` ("adopted from sqlx by ...").
    pub(crate) fn key(self) -> &'static str {
        match self {
            Adopt::Supabase => "supabase",
            Adopt::Sqlx => "sqlx",
            Adopt::Refinery => "refinery",
        }
    }
}

impl fmt::Display for Adopt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Adopt::Supabase => "the Supabase CLI",
            Adopt::Sqlx => "sqlx",
            Adopt::Refinery => "refinery",
        })
    }
}
