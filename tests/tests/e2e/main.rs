//! plover's end-to-end tests: one test binary, one module per area (one link step,
//! one test process). The harness they share (databases, migration directories,
//! the xtask and app binaries, snapshots of CLI output) is the `plover_tests` library.
//!
//! Run one area with a filter on its module: `cargo test -p plover-tests --test e2e -- engine::`.
//!
//! What `cargo xtask db` prints for people (status, push, lint, reset's refusals, the
//! help) is also compared with snapshots in `snapshots/` (insta), after
//! `plover_tests::normalize` has replaced what differs between runs. A change of that
//! output fails the test; after a deliberate one, `INSTA_UPDATE=always cargo test -p
//! plover-tests --test e2e -- <test>` rewrites the snapshots, to be read in the diff and
//! committed. Under `CI=true` a mismatch only fails (no `.snap.new` is written).
//!
//! Tests run in parallel threads of this one process, so none may change the process
//! environment or anything else every test sees; a test that needs a process of its
//! own runs this binary again as a child, filtered to one test by its full name
//! (`module::test`).

mod adopt;
mod app;
mod copy_schema;
mod docker;
mod down;
mod embed;
mod engine;
mod engine_input;
mod extensions;
mod fleet;
mod gen_types;
mod grants;
mod lock_wait;
mod schema_diff;
mod squash;
mod supabase_baseline;
mod supabase_cli;
mod supabase_features;
mod supabase_files;
mod testing;
mod xtask_db;
mod xtask_diff;
mod xtask_dump;
mod xtask_lint;
mod xtask_local;
mod xtask_pgtap;
mod xtask_reset;
mod xtask_safety;
