//! Every command line flag of the benchmarks (`cargo xtask bench …`), in one place.

use clap::{Args, Parser, Subcommand};

use crate::peers::Peer;

/// Measure plover against `psql -1 -f` on the same generated migrations.
///
/// Applying N small migrations, the no-op boot check on an up-to-date database
/// and loading the source, each side by side with psql in the same run, on the
/// shared test server (fsync off). Reports medians and ratios; asserts nothing.
///
/// `cargo xtask bench` builds the benchmarks in release, as speed is measured (`cargo
/// run -p plover-bench -- ARGS` runs a dev build, where plover itself is not
/// optimised, for a quick check; the bench warns that its figures are not the ones to
/// quote).
///
/// A filesystem busy with other work makes Postgres's file creation noisy; to
/// bench on a private server, set PLOVER_STATE_DIR to a directory of its own (and,
/// as root, TMPDIR to a tmpfs such as /dev/shm for its data directory), then stop
/// it with the same variables and `cargo xtask test-server stop`.
///
/// `cargo xtask bench fresh` measures how long a test waits for a freshly migrated
/// database instead (see `cargo xtask bench fresh --help`); `cargo xtask bench peers`
/// compares plover with psql, refinery, sqlx and the Supabase CLI; `cargo xtask bench
/// boot` times the no-op boot of embedded sets of 100 to 10,000 migrations; `cargo
/// xtask bench diff` compares plover's schema diff with migra and pg-schema-diff.
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
    /// Docker engine answers (`.ci/docker-up` starts one).
    Fresh(BenchFresh),
    /// `cargo xtask db lint` against squawk on the same files, as each is shipped.
    ///
    /// Generates N migration files (default 1000; each a table with RLS, an index, a
    /// policy, grants and a comment: 8 statements) and takes each --project DIR's
    /// supabase/migrations/*.sql. Builds the optimized xtask that `cargo xtask db lint`
    /// runs (release, `lint` feature, target/lint) and installs squawk 2.70.0, the
    /// prebuilt binary of its PyPI package, with .ci/squawk-up into
    /// target/bench-lint/squawk (PLOVER_SQUAWK=/path/to/squawk skips that; squawk is
    /// never a dependency). Checks that the lint read every file, then times whole runs
    /// of that binary's `db lint --format json`, of `squawk <files>`, and of `cargo
    /// xtask db lint` (the same binary behind cargo's up-to-date checks), alternating,
    /// for R rounds. Reports the medians, the minimums and plover/squawk; asserts
    /// nothing.
    Lint(BenchLint),
    /// `db copy-schema` against `pg_dump -n SCHEMA | psql --single-transaction`.
    ///
    /// Generates about --mb MB of tables (default 1024) in schema `shop` of a database
    /// on the test server (customers, orders with an enum column, events with jsonb
    /// and uuid; keys, foreign keys, indexes), or takes --source-url, a database that
    /// holds a schema `shop`. Then, for R rounds, copies it into a fresh database with
    /// each tool, alternating which goes first: the xtask binary's `db copy-schema
    /// --from URL --to URL --schema shop` (the dev build `cargo xtask` runs;
    /// PLOVER_XTASK overrides) and pg_dump piped into psql (the test server's PostgreSQL binaries).
    /// Checks each copy's row counts against the source. Reports medians, MB/s of the
    /// tables' size on disk, and plover/pg_dump; asserts nothing.
    CopySchema(BenchCopySchema),
    /// plover against psql, refinery, sqlx and the Supabase CLI, side by side.
    ///
    /// For each N (default 100 and 1000) generates N migrations once (the same SQL
    /// for every tool, in each tool's own file names), then for R rounds gives each
    /// tool a fresh database, in an order rotated per round: `psql -1 -f`, refinery
    /// 0.10 (int8-versions), sqlx 0.9's migrator, the Supabase CLI's `db push
    /// --db-url` (2.117.0, from PLOVER_SUPABASE_CLI or where `.ci/supabase-cli-up
    /// /tmp/plover-supabase-cli` installs it; skipped, with the reason, when
    /// missing) and plover apply everything, then run again on the up-to-date
    /// database (the no-op run; psql keeps no history). "connect only" connects and
    /// closes: the no-op runs are also reported beyond it. Every tool connects through
    /// a loopback proxy in the bench that counts network turns (the times the client
    /// waited for the server; a pipelined burst is one) and sync points (ReadyForQuery
    /// messages) and reads the serving backends' CPU; the client CPU comes from
    /// getrusage. Reports medians, plover's ratio to each tool (plover/x: below 1,
    /// plover took less), the no-op's flatness across the sizes, and the ratios the
    /// project's targets are stated in; asserts nothing.
    ///
    /// N = 10000 works: each tool's database is dropped as soon as it is measured, and
    /// psql's 10,000 `-f` arguments take about 0.5 MB of Linux's 2 MB. `psql -1`
    /// cannot hold 10,000 migrations' locks in one transaction on a server with the
    /// default max_locks_per_transaction; its row then says so and the run goes on.
    /// The slower tools can be held to the smaller sizes: `--migrations
    /// 100,1000,10000 --peers psql:1000,refinery,sqlx:1000,supabase:1000`.
    ///
    /// `cargo xtask bench peers` builds the bench in release; `cargo run -p
    /// plover-bench -- peers …` runs a dev build (figures not worth quoting, for a
    /// quick check).
    Peers(BenchPeers),
    /// An app's boot with nothing to do, from a set embedded at compile time.
    ///
    /// For each N (100, 1000 and 10000 by default), applies a set of N generated
    /// migrations embedded with `plover::embed_migrations!` to a database of its own,
    /// then boots R times on it each way, alternating: from the embedded set
    /// (`Embedded::load`: checked and digested at build time) and from the same texts
    /// parsed at boot (`Source::from_files`). Reports the median time beyond connecting
    /// (load, `Migrator::new`, run) at each N and how flat it stays from the smallest N
    /// to the largest; asserts nothing.
    ///
    /// The sets are generated and embedded only when the bench is built with
    /// PLOVER_BENCH_BOOT set, so that other builds stay fast:
    /// `PLOVER_BENCH_BOOT=1 cargo xtask bench boot`.
    Boot(BenchBoot),
    /// plover's schema diff against migra and pg-schema-diff on the same two databases.
    ///
    /// On the shared test server: A, a generated schema in `public` (N tables with
    /// columns of several types, identity keys, foreign keys, checks, plain, partial
    /// and unique indexes, RLS and policies, enums, functions, triggers, views with
    /// security_invoker, comments), and B, A with a set of changes (columns added,
    /// dropped, retyped, made NOT NULL, new defaults, indexes, new and changed policies,
    /// changed function bodies and views, an enum value added, a new enum and table, a
    /// table dropped, RLS forced, comments). For R rounds, in an order rotated per
    /// round, each tool produces the SQL from A to B, timed: plover's library path
    /// (`schema::inspect` of both, `schema::diff`, `to_sql`) in process, and as whole
    /// processes `xtask db diff --from URL --to URL` (the xtask built in the bench's
    /// profile, or PLOVER_XTASK), migra (`--unsafe --schema public`) and the PyPI
    /// package pg-schema-diff. Then
    /// each tool's output is run with `psql -1 -v ON_ERROR_STOP=1` on a fresh copy of
    /// A (applies? the first error) and judged: plover's diff from the copy to B, the
    /// tool's own diff, and `pg_dump --schema-only` of both (round-trips?). Reports
    /// medians, plover/x, statement counts and the verdicts; asserts nothing.
    ///
    /// The peers come from `.ci/diff-peers-up DIR` (a virtualenv; default
    /// /tmp/plover-diff-peers) or PLOVER_MIGRA and PLOVER_PG_SCHEMA_DIFF; a missing one is
    /// skipped with the reason. Each output is kept in the bench's state directory.
    ///
    /// `--roundtrip DIR…` measures nothing: for each project directory (with
    /// `supabase/migrations`, or a migrations directory) it replays the migrations
    /// into A (with the Supabase baseline), applies plover's diff from a database with
    /// the baseline only (B) to A on B, statement by statement, and reports per project
    /// whether it replayed, applied (the first failing statement), round-trips (plover's
    /// diff from A to B is then empty) and has the same `pg_dump --schema-only`; the
    /// app schemas are `public` and those the migrations made that are not Supabase's.
    Diff(BenchDiff),
}

#[derive(Debug, Args)]
pub struct BenchDiff {
    /// How many tables A has.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(2..))]
    pub tables: u32,
    /// How many times each tool produces the diff (medians and minimums are reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Instead of the bench: the diff round trip of each project directory given.
    #[arg(long, num_args = 1.., value_name = "DIR", conflicts_with = "scale")]
    pub roundtrip: Vec<std::path::PathBuf>,
    /// Instead of the bench: inspect and diff a schema of 1,000 tables, 5,000 indexes,
    /// 1,000 policies and 1,000 functions (--rounds times), and check its diff from an
    /// empty database applies and diffs back to nothing.
    #[arg(long)]
    pub scale: bool,
}

#[derive(Debug, Args)]
pub struct BenchBoot {
    /// The sizes to measure, comma-separated, of 100, 1000 and 10000.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1000, 10000])]
    pub migrations: Vec<u32>,
    /// How many boots each way at each size (medians are reported).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchPeers {
    /// How many migrations to generate; several sizes, comma-separated, are run in turn.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1000], value_parser = clap::value_parser!(u32).range(1..))]
    pub migrations: Vec<u32>,
    /// How many rounds at each size (medians and minimums are reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// The tools to measure besides plover and "connect only" (which always run: the
    /// ratios and the no-op's time beyond connecting need them), comma-separated, of
    /// psql, refinery, sqlx, supabase; TOOL:MAX runs TOOL only at sizes up to MAX.
    #[arg(long, value_delimiter = ',', default_value = "psql,refinery,sqlx,supabase", value_parser = parse_peer_choice)]
    pub peers: Vec<PeerChoice>,
    /// Print the results as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// A tool `--peers` names, and the largest size it runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerChoice {
    pub peer: Peer,
    /// `None`: every size.
    pub up_to: Option<u32>,
}

fn parse_peer_choice(s: &str) -> Result<PeerChoice, String> {
    let (name, up_to) = match s.split_once(':') {
        Some((name, max)) => {
            let max = max.parse::<u32>().map_err(|e| {
                format!("{max:?} after {name}: is not a number of migrations ({e})")
            })?;
            (name, Some(max))
        }
        None => (s, None),
    };
    let peer = Peer::from_slug(name).ok_or_else(|| {
        format!(
            "{name:?} is not a tool the bench knows; name some of psql, refinery, sqlx, supabase"
        )
    })?;
    Ok(PeerChoice { peer, up_to })
}

#[derive(Debug, Args)]
pub struct BenchCopySchema {
    /// About how many MB of tables to generate.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub mb: u32,
    /// A database holding a schema `shop` to copy instead (nothing is generated).
    #[arg(long, value_name = "URL")]
    pub source_url: Option<String>,
    /// How many copies with each tool (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
}

#[derive(Debug, Args)]
pub struct BenchLint {
    /// How many migration files to generate.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub files: u32,
    /// How many rounds of each (medians and minimums are reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// A project directory holding supabase/migrations, measured too (repeatable).
    #[arg(long, value_name = "DIR")]
    pub project: Vec<std::path::PathBuf>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(args: &[&str]) -> Result<Vec<PeerChoice>, clap::Error> {
        let argv = ["cargo xtask bench", "peers"].iter().chain(args);
        match Bench::try_parse_from(argv)?.command {
            Some(BenchCommand::Peers(p)) => Ok(p.peers),
            other => panic!("not the peers command: {other:?}"),
        }
    }

    #[test]
    fn peers_default_to_every_tool_at_every_size() {
        let all = peers(&[]).unwrap();
        let names: Vec<Peer> = all.iter().map(|c| c.peer).collect();
        assert_eq!(
            names,
            [Peer::Psql, Peer::Refinery, Peer::Sqlx, Peer::Supabase]
        );
        assert!(all.iter().all(|c| c.up_to.is_none()));
    }

    #[test]
    fn peers_take_a_largest_size() {
        assert_eq!(
            peers(&["--peers", "refinery,supabase:1000"]).unwrap(),
            [
                PeerChoice {
                    peer: Peer::Refinery,
                    up_to: None
                },
                PeerChoice {
                    peer: Peer::Supabase,
                    up_to: Some(1000)
                },
            ]
        );
        assert!(peers(&["--peers", "flyway"]).is_err());
        assert!(peers(&["--peers", "psql:many"]).is_err());
    }
}
