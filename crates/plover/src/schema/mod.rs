//! Native schema introspection and diff, with no Docker and no shadow stack:
//! [`inspect`] reads a normalized [`Catalog`] of the app's schemas from a database
//! (one query per catalog, sent together), [`diff`] turns two catalogs into the
//! ordered DDL that makes the first into the second, each statement with the hazards
//! it carries (data loss, table rewrite, long lock, index build).
//!
//! Must not: touch anything outside the schemas it is given (a diff never drops an
//! extension or a publication, which other apps may use; it names them in comments);
//! write to a database (`inspect` reads, `diff` is pure).

mod diff;
mod inspect;
mod model;

pub use diff::{Change, Diff, Hazard, HazardKind, diff};
pub use inspect::inspect;
pub use model::*;
