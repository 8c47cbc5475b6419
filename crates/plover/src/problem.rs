//! What stops a migration run: the plan's problems, with the message each shows.
//!
//! Must not: import any plover module but [`checksum`](crate::checksum) (errors carry
//! problems).

use std::fmt;

use crate::checksum::Checksum;

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
    /// The Supabase CLI applied the version with other statements than the file's.
    SupabaseCliDiffers {
        file: String,
        version: i64,
        reason: String,
    },
    /// The Supabase CLI applied the version with the file's statements, and the
    /// policy is [`SupabaseCli::Refuse`](crate::SupabaseCli::Refuse).
    SupabaseCliApplied {
        file: String,
        version: i64,
    },
}

impl Problem {
    /// Whether the problem is a version the Supabase CLI applied and plover's history
    /// lacks (`cargo xtask db adopt --from supabase` records it).
    pub fn is_supabase_cli(&self) -> bool {
        matches!(
            self,
            Problem::SupabaseCliDiffers { .. } | Problem::SupabaseCliApplied { .. }
        )
    }
}

/// How to record a version the Supabase CLI applied, said by both Supabase problems.
const ADOPT_BY_HAND: &str = "plover runs nothing it applied; if the database holds what the file says, record the version without running it with `cargo xtask db adopt --from supabase` (`Migrator::adopt` with `Adopt::Supabase`)";

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
            Problem::SupabaseCliDiffers {
                file,
                version,
                reason,
            } => write!(
                f,
                "{file}: version {version} was applied by the Supabase CLI (supabase_migrations.schema_migrations) but not with this file's statements ({reason}); {ADOPT_BY_HAND}, else restore the file as it was applied and put the change in a new migration"
            ),
            Problem::SupabaseCliApplied { file, version } => write!(
                f,
                "{file}: version {version} was applied by the Supabase CLI (supabase_migrations.schema_migrations) and plover's history lacks it; {ADOPT_BY_HAND}, or let runs adopt such versions (SupabaseCli::Adopt)"
            ),
        }
    }
}
