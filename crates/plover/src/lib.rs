//! plover: Postgres and Supabase schema migrations, compiled into the app and applied
//! safely on boot.
//!
//! ```no_run
//! static MIGRATIONS: plover::Embedded =
//!     plover::embed_migrations!("$CARGO_MANIFEST_DIR/../../supabase/migrations");
//!
//! # async fn boot() -> Result<(), plover::Error> {
//! let mut client = plover::connect("postgres://postgres@127.0.0.1:54322/postgres").await?;
//! plover::Migrator::new(MIGRATIONS.load()?).app("money_tracker").run(&mut client).await?;
//! # Ok(()) }
//! ```
//!
//! See ARCHITECTURE.md for the module map and its invariants.

// The engine's modules are private: what an app uses is re-exported below, one
// list. Leaves first: `checksum`, `conninfo`, `problem`, `session`, `settings`,
// `split` and `supabase` import no other plover module, so `error` (which names
// their types) sits below everything that returns it and the imports form no circle.
mod adopt;
mod apply;
#[cfg(test)]
mod architecture;
mod checksum;
mod conninfo;
mod error;
mod event;
mod files;
mod history;
mod lock;
mod migrator;
mod plan;
mod problem;
mod session;
mod settings;
mod source;
mod split;

#[cfg(feature = "lint")]
pub mod lint;
#[cfg(feature = "project")]
pub mod project;
#[cfg(feature = "schema")]
pub mod schema;
pub mod supabase;
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "refinery")]
pub use adopt::to_refinery;
pub use adopt::{Adopted, SupabaseCliAdopted};
pub use apply::Applied;
pub use checksum::Checksum;
pub use conninfo::{ConnInfo, ConnInfoError, LIBPQ_ENV_VARS, redact};
pub use error::{Error, MigrationFailed, describe};
pub use event::{Event, OutsideTransaction, OwnTransactions};
pub use lock::key as lock_key;
pub use migrator::{DEFAULT_APP, DownReport, Migrator, Repair, Report, SquashOutcome, connect};
pub use plan::{AppliedRow, DownTo, Entry, Plan, Renamed, RowState, State, SupabaseCliRow};
pub use problem::Problem;
pub use session::Session;
pub use settings::{Adopt, Missing, OutOfOrder, SupabaseCli, SupabaseHistory, TransactionMode};
pub use source::{
    DownStyle, Embedded, Migration, Source, Transaction, is_migration_name, parse_down_name,
    parse_file_name,
};
/// plover's SQL splitter, as migrations are split: statements with their line and column.
pub use split::{SplitError, Statement, split as split_sql};

#[doc(hidden)]
pub mod __private {
    pub use crate::source::{Embedded, EmbeddedFile, Transaction};
    pub use plover_macros::embed_migrations;
}

/// Embeds a migration directory at compile time.
///
/// The path is a string literal and may start with `$CARGO_MANIFEST_DIR` (any
/// `$VARIABLE` is replaced by its value; a relative path is taken from the crate's
/// directory). While building, the macro reads the directory with the rules
/// [`Source::from_dir`] uses (one implementation), checks every file and computes the
/// set's history digest, so that [`Embedded::load`] parses nothing and a boot with
/// nothing to do costs one query and no work per file. A file that would not load
/// (a name that does not follow `<version>_<name>.sql`, two files with one version,
/// a file that is not UTF-8, an unknown `-- plover:` directive) fails the build with
/// the message `load` would give, naming the file.
///
/// Editing a file rebuilds the crate (each file is `include_bytes!`'d for cargo to
/// track); so that adding or removing a file rebuilds it too, give the crate a
/// `build.rs` with `println!("cargo:rerun-if-changed=../supabase/migrations");`.
///
/// Symbolic links are followed, as [`Source::from_dir`] follows them: a link to a
/// file is a migration under the link's name. A link that leads nowhere fails the
/// build, naming the link, unless it is hidden (an editor's lock file such as Emacs'
/// `.#1_a.sql`), as `from_dir` passes it over.
///
/// ```ignore
/// static MIGRATIONS: plover::Embedded =
///     plover::embed_migrations!("$CARGO_MANIFEST_DIR/../../supabase/migrations");
/// ```
#[macro_export]
macro_rules! embed_migrations {
    ($path:tt) => {
        $crate::__private::embed_migrations!($crate, $path)
    };
}
