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

pub mod adopt;
pub mod apply;
pub mod conninfo;
pub mod error;
pub mod extensions;
pub mod history;
#[cfg(feature = "lint")]
pub mod lint;
pub mod lock;
pub mod migrator;
pub mod plan;
#[cfg(feature = "project")]
pub mod project;
pub mod redact;
#[cfg(feature = "project")]
pub mod reset;
pub mod source;
pub mod split;

#[cfg(feature = "testing")]
pub mod testing;

pub use adopt::{Adopt, Adopted, SupabaseCliAdopted};
pub use apply::{Applied, Event, OutsideTransaction, OwnTransactions, TransactionMode};
pub use error::{Error, MigrationFailed};
pub use history::SupabaseHistory;
pub use migrator::{Migrator, Repair, Report, connect};
pub use plan::{Missing, OutOfOrder, Plan, SupabaseCli};
pub use source::{Embedded, Migration, Source};

#[doc(hidden)]
pub mod __private {
    pub use include_dir;
}

/// Embeds a migration directory at compile time.
///
/// The path is a string literal and may start with `$CARGO_MANIFEST_DIR`. Editing a
/// file rebuilds the crate (each file is `include_bytes!`'d); so that adding or
/// removing a file rebuilds it too, give the crate a `build.rs` with
/// `println!("cargo:rerun-if-changed=../supabase/migrations");`.
///
/// Symbolic links are followed, as [`Source::from_dir`] follows them: a link to a
/// file is a migration under the link's name. A link that leads nowhere fails the
/// build: include_dir's macro panics with `"<path of the link>" is neither a file nor
/// a directory`. That holds for any entry of the directory, hidden ones included
/// (e.g. an editor's lock file such as Emacs' `.#1_a.sql`).
///
/// ```ignore
/// static MIGRATIONS: plover::Embedded =
///     plover::embed_migrations!("$CARGO_MANIFEST_DIR/../../supabase/migrations");
/// ```
#[macro_export]
macro_rules! embed_migrations {
    ($path:tt) => {{
        use $crate::__private::include_dir;
        $crate::Embedded::new(include_dir::include_dir!($path), $path)
    }};
}
