//! `cargo xtask bench …` (the xtask runs this crate with the same arguments):
//! parses the command line and dispatches; each benchmark lives in a module of its
//! own. A crate of its own so that building the xtask builds none of the
//! benchmarks' dependencies (testcontainers).
//!
//! What it must not do: assert a timing (machines are noisy; it reports, never
//! fails on a figure), or reach into plover's internals: it migrates through the
//! public `Migrator` and takes databases from the public `plover::testing`.

mod apply;
mod boot;
mod copy_schema;
mod diff;
mod diff_workload;
mod flags;
mod fresh;
mod lint;
mod peers;
mod roundtrip;
mod scale;
mod wire;
mod workload;

use anyhow::Result;
use clap::Parser;

#[tokio::main]
async fn main() -> Result<()> {
    let flags = flags::Bench::parse();
    let sh = xshell::Shell::new()?;
    sh.change_dir(workspace_root());
    match flags.command {
        Some(flags::BenchCommand::Boot(boot)) => boot.run().await,
        Some(flags::BenchCommand::CopySchema(copy)) => copy.run().await,
        Some(flags::BenchCommand::Diff(diff)) => diff.run().await,
        Some(flags::BenchCommand::Fresh(fresh)) => fresh.run().await,
        Some(flags::BenchCommand::Lint(lint)) => lint.run(&sh),
        Some(flags::BenchCommand::Peers(peers)) => peers.run().await,
        None => flags.run().await,
    }
}

/// The workspace root: this crate's manifest directory's parent.
fn workspace_root() -> std::path::PathBuf {
    let bench = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    bench.parent().unwrap_or(bench).to_path_buf()
}
