//! `cargo xtask`: parses the command line and dispatches; each command lives in a
//! module of its own.

mod flags;
mod test_server;

use anyhow::Result;
use clap::Parser;

#[tokio::main]
async fn main() -> Result<()> {
    let flags = flags::Xtask::parse();
    match flags.command {
        flags::Command::TestServer(cmd) => cmd.run().await,
    }
}
