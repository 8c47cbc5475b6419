//! Every command line flag of the benchmarks (`cargo xtask bench …`), in one place.

use clap::{Args, Parser, Subcommand};

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
///
/// `cargo xtask bench fresh` measures how long a test waits for a freshly migrated
/// database instead (see `cargo xtask bench fresh --help`); `cargo xtask bench peers`
/// compares plover with psql, refinery, sqlx and the Supabase CLI.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask bench",
    bin_name = "cargo xtask bench",
    args_conflicts_with_subcommands = true
)]
pub struct Bench {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
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
pub enum BenchCommand {
    /// Time to hand a test a fresh migrated database, against replaying the migrations
    /// and against a container per test.
    ///
    /// On N generated migrations (default 200), side by side in one run: a database
    /// from `plover::testing::TestDatabase::fresh` with the pool warm (a ready clone is
    /// renamed) and cold (the template is cloned on the spot); (a) `CREATE DATABASE`
    /// and replaying every migration into it, as `#[sqlx::test]` does; (b) a new
    /// testcontainers container per test, migrated. Each sample is timed from the call
    /// until a connected client has answered `SELECT 1`. Reports p50, p95, mean and
    /// each p50 against the warm one; asserts nothing.
    ///
    /// The test server is the one `plover::testing` picks (native by default). The
    /// container row uses PLOVER_DOCKER_IMAGE, PLOVER_DOCKER_TAG, PLOVER_DOCKER_NETWORK
    /// and PLOVER_DOCKER_BARE as the Docker provider does, and is skipped when no
    /// Docker engine answers (`.ci/docker-up` starts one). For figures worth quoting run
    /// `cargo run --release -p xtask -- bench fresh`.
    Fresh(BenchFresh),
    /// `cargo xtask db lint` against squawk on the same generated migration files.
    ///
    /// Generates N migration files (default 1000; each a table with RLS, an index, a
    /// policy, grants and a comment: 8 statements), builds a release xtask with the
    /// `lint` feature (into target/lint) and installs squawk 2.66.0 from crates.io into
    /// target/bench-lint (PLOVER_SQUAWK=/path/to/squawk skips that; squawk is never a
    /// dependency), then times whole runs of `xtask db lint --format json` on the
    /// directory and `squawk <files>`, alternating, for R rounds. Reports the medians,
    /// the minimums and plover/squawk; asserts nothing.
    Lint(BenchLint),
    /// plover against psql, refinery, sqlx and the Supabase CLI, side by side.
    ///
    /// For each N (default 100 and 1000) generates N migrations once (the same SQL
    /// for every tool, in each tool's own file names), then for R rounds gives each
    /// tool a fresh database, in an order rotated per round: `psql -1 -f`, refinery
    /// 0.10 (int8-versions), sqlx 0.9's migrator, the Supabase CLI's `db push
    /// --db-url` (2.117.0, from PLOVER_SUPABASE_CLI or where `.ci/supabase-cli-up
    /// /tmp/plover-supabase-cli` installs it; skipped, with the reason, when
    /// missing) and plover apply everything, then run again on the up-to-date
    /// database (the no-op run; psql keeps no history). Every tool connects through
    /// a loopback proxy in the bench that counts round trips (ReadyForQuery messages)
    /// and reads the serving backends' CPU; the client CPU comes from getrusage.
    /// Reports medians and ratios to plover; asserts nothing. For figures worth
    /// quoting run `cargo run --release -p xtask -- bench peers`.
    Peers(BenchPeers),
}

#[derive(Debug, Args)]
pub struct BenchPeers {
    /// How many migrations to generate; several sizes, comma-separated, are run in turn.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1000], value_parser = clap::value_parser!(u32).range(1..))]
    pub migrations: Vec<u32>,
    /// How many rounds at each size (medians and minimums are reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Print the results as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchLint {
    /// How many migration files to generate.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub files: u32,
    /// How many rounds of each (medians and minimums are reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
}

#[derive(Debug, Args)]
pub struct BenchFresh {
    /// How many migration files to generate.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub migrations: u32,
    /// Samples of the warm, cold and replay measurements each.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub samples: u32,
    /// Samples of the container-per-test measurement (each starts a container); 0
    /// leaves the row out.
    #[arg(long, default_value_t = 5)]
    pub container_samples: u32,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}
