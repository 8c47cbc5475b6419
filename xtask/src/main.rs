//! `cargo xtask`: parses the command line and dispatches; each command lives in a
//! module of its own.

mod bench;
mod bench_fresh;
mod bench_lint;
mod db;
mod dev;
mod flags;
mod test;
mod test_server;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let flags = flags::Xtask::parse();
    let sh = xshell::Shell::new()?;
    sh.change_dir(project_root());
    let done = match flags.command {
        // `db` commands have exit codes of their own (see `cargo xtask db --help`).
        flags::Command::Db(cmd) => return Ok(cmd.run(&project_root()).await),
        flags::Command::Dev(cmd) => cmd.run(&sh).await,
        flags::Command::Test(cmd) => cmd.run(&sh).await,
        flags::Command::TestServer(cmd) => cmd.run(&sh).await,
        flags::Command::Bench(cmd) => match cmd.command {
            Some(flags::BenchCommand::Fresh(fresh)) => fresh.run().await,
            Some(flags::BenchCommand::Lint(lint)) => lint.run(&sh),
            None => cmd.run().await,
        },
        flags::Command::BenchFresh(cmd) => cmd.run().await,
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// The workspace root: xtask's manifest directory's parent.
pub fn project_root() -> std::path::PathBuf {
    let xtask = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}
