//! Every command line flag of `cargo xtask`, in one place.

use clap::{Args, Parser, Subcommand};

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
    /// Run the example app on a local PostgreSQL, migrated on boot.
    ///
    /// Starts (or reuses) a native PostgreSQL from the system's server binaries,
    /// creates the `money_tracker` database, applies the Supabase shim, lets the app
    /// apply `supabase/migrations`, loads `supabase/seed.sql`, and serves until
    /// interrupted. `cargo xtask test-server stop` stops the PostgreSQL.
    Dev(Dev),
    /// Measure plover against `psql -1 -f` on the same generated migrations.
    ///
    /// Applying N small migrations, the no-op boot check on an up-to-date database
    /// and loading the source, each side by side with psql in the same run, on the
    /// shared test server (fsync off). Reports medians and ratios; asserts nothing.
    ///
    /// `cargo xtask bench` runs a dev build, where plover itself is not optimised
    /// (the workspace optimises only dependencies in dev); for figures worth quoting
    /// run `cargo run --release -p xtask -- bench`.
    ///
    /// A filesystem busy with other work makes Postgres's file creation noisy; to
    /// bench on a private server, set PLOVER_STATE_DIR to a directory of its own (and,
    /// as root, TMPDIR to a tmpfs such as /dev/shm for its data directory), then stop
    /// it with the same variables and `cargo xtask test-server stop`.
    Bench(Bench),
}

#[derive(Debug, Args)]
pub struct Dev {
    /// Where the app listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Skip loading supabase/seed.sql.
    #[arg(long)]
    pub no_seed: bool,
}

#[derive(Debug, Args)]
pub struct Bench {
    /// How many migration files to generate.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub migrations: u32,
    /// How many rounds of each measurement (medians and minimums are reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TestServer {
    /// Start it (or find it running) and print its connection string.
    Start,
    /// Stop it and remove its data directory.
    Stop,
}
