//! Every command line flag of `cargo xtask`, in one place.

use clap::{Parser, Subcommand};

/// plover's developer commands.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
pub struct Xtask {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The shared disposable Postgres server that test suites use.
    #[command(subcommand)]
    TestServer(TestServer),
}

#[derive(Debug, Subcommand)]
pub enum TestServer {
    /// Start it (or find it running) and print its connection string.
    Start,
    /// Stop it and remove its data directory.
    Stop,
}
