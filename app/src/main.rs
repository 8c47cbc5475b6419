//! The money tracker's entry point: parse the command line and dispatch to a
//! command; an error becomes exit code 1. No command logic lives here.

mod cli;
mod db;
mod http;
mod input;
mod migrate;
mod serve;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let command = Cli::parse().resolve();
    cli::init_logging();
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", cli::report(&e));
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::run(&cli::database_url()?, args).await,
        Command::Migrate => migrate::migrate(&cli::database_url()?).await,
        Command::Migrations => migrate::list(),
    }
}
