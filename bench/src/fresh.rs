//! `cargo xtask bench fresh`: how long a test waits for a freshly migrated database
//! from `plover::testing`, with the pool warm and cold, against replaying every
//! migration into a new database (what `#[sqlx::test]` does) and against a new
//! container per test, measured side by side in one run and reported as ratios.
//!
//! Each round takes one sample of each measurement (rotating their order, so machine
//! noise hits all of them); the container samples are spread over the rounds. A
//! sample is timed from the call until a connected client has answered `SELECT 1`;
//! dropping the database or removing the container is not timed. Before each sample
//! the pools are brought to a known state, untimed: for a warm sample, the clones the
//! process keeps for itself full (it has taken enough of the set to keep them) and no
//! refill running; empty with refills off (`plover::testing::Pool::set_size(0)`) for a
//! cold one; no refill running for the others. So no background clone competes with a
//! measurement except the refill a warm claim itself starts, which a real test suite
//! pays too.
//!
//! What it must not do: assert a timing (it reports, never fails on a figure), leave
//! databases or containers behind (each is dropped after its sample, and everything
//! left on an error path or Ctrl-C is swept at the end, the set's template and pool
//! included), or need Docker (without an engine the container row says so).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use plover::Migrator;
use plover::redact;
use plover::testing::docker::{self, Docker as DockerProvider, Network};
use plover::testing::{self, Claimed, Server, Shim, TestDatabase, quote_ident, state_dir};
use serde_json::json;
use testcontainers::ImageExt;
use tokio_postgres::Client;

use crate::apply::{APP, COUNT_TABLES, Workload, admin_and_version, fmt_ms, fmt_ratio, ms};
use crate::flags::BenchFresh;

/// What "usable" means: the client has answered a query.
const USABLE: &str = "SELECT 1";
/// The label on every container this bench starts, valued `fresh-<pid>`.
const LABEL: &str = "plover.bench";
/// How long a container may take to accept connections.
const CONTAINER_READY: Duration = Duration::from_secs(120);
/// How long the pool may take to refill before the bench gives up.
const REFILL: Duration = Duration::from_secs(120);
/// The goals the issue sets, reported (never asserted).
const GOAL_WARM_P50: Duration = Duration::from_millis(3);
const GOAL_WARM_P95: Duration = Duration::from_millis(6);
const GOAL_REPLAY_RATIO: f64 = 50.0;

impl BenchFresh {
    pub async fn run(self) -> Result<()> {
        if cfg!(debug_assertions) {
            eprintln!(
                "warning: this is a dev build and plover is not optimised in it; \
                 run `cargo run --release -p xtask -- bench fresh` for optimised figures"
            );
        }
        let n = self.migrations as usize;
        let workload = Workload::generate(n);
        let dir = state_dir().join("bench-fresh").join("migrations");
        workload.write(&dir)?;
        let source = plover::Source::from_dir(&dir)
            .with_context(|| format!("loading the generated migrations from {}", dir.display()))?;
        let migrator = Migrator::new(source).app(APP);

        let server = testing::server()
            .await
            .context("starting the test server")?;
        let admin_url = server.url("postgres");
        let (admin, version) = admin_and_version(&admin_url).await?;
        let docker = if self.container_samples == 0 {
            Err("left out (--container-samples 0)".to_owned())
        } else {
            Docker::detect()
        };
        let mut pool = Pool::new(&admin, &migrator);
        eprintln!(
            "bench fresh: {n} migrations ({} tables) in {}, {} samples (containers: {}), \
             PostgreSQL {version} ({} provider) at {}, pool of {}",
            workload.tables,
            dir.display(),
            self.samples,
            match &docker {
                Ok(d) => format!("{} of {}", self.container_samples, describe(&d.settings)),
                Err(reason) => reason.clone(),
            },
            server.provider(),
            redact(&admin_url),
            pool.size,
        );

        let bench = Run {
            server: &server,
            admin: &admin,
            migrator: &migrator,
            tables: workload.tables,
            docker: docker.as_ref().ok(),
        };
        let mut samples = Samples::default();
        let mut leftovers = Vec::new();
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        let result = tokio::select! {
            r = bench.all(&self, &mut pool, &mut samples, &mut leftovers) => r,
            _ = &mut interrupted => Err(anyhow!("interrupted")),
        };
        let cleaned = bench.clean_up(&mut pool, &leftovers).await;
        if let (Err(_), Err(e)) = (&result, &cleaned) {
            eprintln!("bench fresh: cleaning up failed too: {e:#}");
        }
        result?;
        if let (Some(Err(e)), Ok(_)) = (&samples.container_error, &docker) {
            eprintln!("bench fresh: the container row failed: {e:#}");
        }

        let report = Report::new(&samples, docker.as_ref().err());
        if self.json {
            let mut ready = samples.container_ready.clone();
            ready.sort();
            let container_ready = percentile(&ready, 0.5);
            let doc = json!({
                "migrations": n,
                "tables": workload.tables,
                "samples": self.samples,
                "container_samples": self.container_samples,
                "optimised": !cfg!(debug_assertions),
                "server_version": version,
                "provider": server.provider(),
                "pool_size": pool.size,
                "template_build_ms": ms(samples.template_build),
                "warm_split_p50_ms": report.warm_split(&samples).map(|[call, connect, query, again]| json!({
                    "fresh_call": ms(call),
                    "test_connect": ms(connect),
                    "select_1": ms(query),
                    "second_connect_and_select_1_untimed": ms(again),
                })),
                "warm_claimed": samples.warm.len(),
                "warm_asked": samples.warm.len() + samples.warm_missed,
                "cold_claimed": samples.cold.len(),
                "cold_asked": samples.cold.len() + samples.cold_missed,
                "docker": docker.as_ref().map(|d| describe(&d.settings)).ok(),
                "scenarios": report.rows.iter().map(|r| json!({
                    "scenario": r.key,
                    "description": r.name,
                    "p50_ms": r.stats.map(|s| ms(s.p50)),
                    "p95_ms": r.stats.map(|s| ms(s.p95)),
                    "mean_ms": r.stats.map(|s| ms(s.mean)),
                    "n": r.samples.len(),
                    "p50_over_warm_p50": report.ratio(r),
                    "samples_ms": r.samples.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
                    "skipped": r.skipped,
                })).collect::<Vec<_>>(),
                "container_ready_p50_ms": container_ready.map(ms),
                "replay_over_warm_p50": report.get("replay").and_then(|r| report.ratio(r)),
                "container_over_warm_p50": report.get("container").and_then(|r| report.ratio(r)),
                "goals": {
                    "warm_p50_at_most_ms": GOAL_WARM_P50.as_millis(),
                    "warm_p50_met": report.warm.map(|w| w.p50 <= GOAL_WARM_P50),
                    "warm_p95_at_most_ms": GOAL_WARM_P95.as_millis(),
                    "warm_p95_met": report.warm.map(|w| w.p95 <= GOAL_WARM_P95),
                    "replay_over_warm_at_least": GOAL_REPLAY_RATIO,
                    "replay_over_warm_met": report.get("replay")
                        .and_then(|r| report.ratio(r))
                        .map(|r| r >= GOAL_REPLAY_RATIO),
                },
                "summary": report.summary(n, &version, &samples),
            });
            let text = serde_json::to_string_pretty(&doc).context("writing the JSON report")?;
            println!("{text}");
        } else {
            print!("{}", report.table());
            println!();
            print!("{}", report.notes(n, &samples, pool.size));
            println!();
            println!("For a closing note:");
            println!("{}", report.summary(n, &version, &samples));
        }
        cleaned
    }
}

/// A sample of `TestDatabase::fresh`: the time a test waits, split into the call, the
/// test's connect and its `SELECT 1` (plus, untimed, a second connect and `SELECT 1`);
/// the database is dropped with it.
struct Fresh {
    took: Duration,
    parts: [Duration; 4],
    claimed: Claimed,
    db: TestDatabase,
}

/// What every sample needs.
struct Run<'a> {
    server: &'a Server,
    admin: &'a Client,
    migrator: &'a Migrator,
    tables: i64,
    docker: Option<&'a Docker>,
}

/// The measurements of a round, in the order they run (rotated each round).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Warm,
    Cold,
    Replay,
    Container,
    WarmWithoutRefill,
    Connect,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Warm => "warm",
            Step::Cold => "cold",
            Step::Replay => "replay",
            Step::Container => "container",
            Step::WarmWithoutRefill => "warm-no-refill",
            Step::Connect => "connect",
        }
    }
}

impl Run<'_> {
    async fn all(
        &self,
        flags: &BenchFresh,
        pool: &mut Pool<'_>,
        samples: &mut Samples,
        leftovers: &mut Vec<String>,
    ) -> Result<()> {
        // A clean slate: the set's template and pool as an earlier run may have left
        // them, so the one-off template build below is measured too.
        pool.remove().await?;
        pool.set_size(pool.size);
        pool.state = PoolState::Refilling;
        let started = Instant::now();
        let first = TestDatabase::fresh(self.migrator, Shim::Skip)
            .await
            .context("building the template")?;
        samples.template_build = started.elapsed();
        drop(first);

        let k = flags.container_samples as usize;
        let rounds = (flags.samples as usize).max(if self.docker.is_some() { k } else { 0 });
        let container_rounds: Vec<usize> = (0..k).map(|j| j * rounds / k.max(1)).collect();
        for round in 0..rounds {
            let mut steps = Vec::new();
            if round < flags.samples as usize {
                steps.extend([
                    Step::Warm,
                    Step::Cold,
                    Step::Replay,
                    Step::WarmWithoutRefill,
                    Step::Connect,
                ]);
            }
            if self.docker.is_some() && container_rounds.contains(&round) {
                steps.push(Step::Container);
            }
            if steps.is_empty() {
                continue;
            }
            let len = steps.len();
            steps.rotate_left(round % len);
            let mut line = Vec::new();
            for step in steps {
                let took = self.step(step, round, pool, samples, leftovers).await;
                let took = took.with_context(|| format!("round {} of {rounds}", round + 1))?;
                let took = took.map_or("failed".into(), |t| format!("{} ms", fmt_ms(t)));
                line.push(format!("{} {took}", step.name()));
            }
            eprintln!("round {}/{rounds}: {}", round + 1, line.join(", "));
        }
        Ok(())
    }

    /// Runs one sample; `None` when the container row failed (the rest goes on).
    async fn step(
        &self,
        step: Step,
        round: usize,
        pool: &mut Pool<'_>,
        samples: &mut Samples,
        leftovers: &mut Vec<String>,
    ) -> Result<Option<Duration>> {
        Ok(Some(match step {
            Step::Warm => {
                pool.ready_for_warm(self.migrator).await?;
                // Before the claim, which starts the refill.
                pool.state = PoolState::Refilling;
                let f = self.fresh().await?;
                drop(f.db);
                if f.claimed == Claimed::Held {
                    samples.warm.push(f.took);
                    samples.warm_parts.push(f.parts);
                } else {
                    samples.warm_missed += 1;
                }
                f.took
            }
            Step::WarmWithoutRefill => {
                pool.ready_for_warm_without_refill(self.migrator).await?;
                let f = self.fresh().await?;
                drop(f.db);
                if f.claimed == Claimed::Held {
                    samples.warm_without_refill.push(f.took);
                }
                f.took
            }
            Step::Connect => {
                pool.settle().await?;
                let url = self.server.url("postgres");
                let started = Instant::now();
                let client = plover::connect(&url)
                    .await
                    .with_context(|| format!("connecting to {}", redact(&url)))?;
                client
                    .batch_execute(USABLE)
                    .await
                    .context("querying postgres")?;
                let took = started.elapsed();
                samples.connect.push(took);
                took
            }
            Step::Cold => {
                pool.ready_for_cold().await?;
                let f = self.fresh().await?;
                drop(f.db);
                if f.claimed == Claimed::Cold {
                    samples.cold.push(f.took);
                } else {
                    samples.cold_missed += 1;
                }
                f.took
            }
            Step::Replay => {
                pool.settle().await?;
                let name = format!("plover_bench_fresh_{}_{round}", std::process::id());
                leftovers.push(name.clone());
                let took = self.replay(&name).await?;
                drop_database(self.admin, &name).await?;
                leftovers.retain(|l| *l != name);
                samples.replay.push(took);
                took
            }
            Step::Container => {
                let Some(docker) = self.docker else {
                    return Ok(None);
                };
                if matches!(samples.container_error, Some(Err(_))) {
                    return Ok(None);
                }
                pool.settle().await?;
                match docker.sample(self.migrator, self.tables).await {
                    Ok((took, ready)) => {
                        samples.container.push(took);
                        samples.container_ready.push(ready);
                        samples.container_error = Some(Ok(()));
                        took
                    }
                    Err(e) => {
                        samples.container_error = Some(Err(e));
                        return Ok(None);
                    }
                }
            }
        }))
    }

    /// A database from `TestDatabase::fresh`, timed until a connected client has
    /// answered; checked (untimed) to hold every table.
    async fn fresh(&self) -> Result<Fresh> {
        let started = Instant::now();
        let db = TestDatabase::fresh(self.migrator, Shim::Skip)
            .await
            .context("TestDatabase::fresh")?;
        let call = started.elapsed();
        let client = db
            .client()
            .await
            .with_context(|| format!("connecting to {}", db.name()))?;
        let connect = started.elapsed() - call;
        client
            .batch_execute(USABLE)
            .await
            .with_context(|| format!("querying {}", db.name()))?;
        let took = started.elapsed();
        check_tables(&client, self.tables, db.name()).await?;
        // Untimed: a second connection, to tell the first one's cost from any other.
        let started = Instant::now();
        let second = db
            .client()
            .await
            .with_context(|| format!("connecting to {} again", db.name()))?;
        second
            .batch_execute(USABLE)
            .await
            .with_context(|| format!("querying {}", db.name()))?;
        let again = started.elapsed();
        let claimed = db
            .claimed()
            .ok_or_else(|| anyhow!("{} says it was not claimed from a template", db.name()))?;
        Ok(Fresh {
            took,
            parts: [call, connect, took - call - connect, again],
            claimed,
            db,
        })
    }

    /// `CREATE DATABASE`, connect and apply every migration, as `#[sqlx::test]` does
    /// (over an open admin connection, as its pool keeps one).
    async fn replay(&self, name: &str) -> Result<Duration> {
        let url = self.server.url(name);
        let started = Instant::now();
        self.admin
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(name)))
            .await
            .with_context(|| format!("creating database {name}"))?;
        let mut client = plover::connect(&url)
            .await
            .with_context(|| format!("connecting to {}", redact(&url)))?;
        let report = self
            .migrator
            .run(&mut client)
            .await
            .with_context(|| format!("applying the migrations to {name}"))?;
        client
            .batch_execute(USABLE)
            .await
            .with_context(|| format!("querying {name}"))?;
        let took = started.elapsed();
        let n = self.migrator.source().migrations().len();
        ensure!(
            report.applied.len() == n,
            "applied {} of {n} migrations to {name}",
            report.applied.len()
        );
        check_tables(&client, self.tables, name).await?;
        Ok(took)
    }

    /// Drops what an error or Ctrl-C left: replay databases, this run's containers,
    /// and the set's pool and template. Reports the first error.
    async fn clean_up(&self, pool: &mut Pool<'_>, leftovers: &[String]) -> Result<()> {
        let mut first = Ok(());
        for name in leftovers {
            let dropped = drop_database(self.admin, name).await;
            if first.is_ok() {
                first = dropped;
            }
        }
        if let Some(docker) = self.docker {
            let removed = docker.remove_leftovers();
            if first.is_ok() {
                first = removed;
            }
        }
        let removed = pool.remove().await;
        if first.is_ok() {
            first = removed;
        }
        pool.restore_size();
        first
    }
}

/// Checks that `db` holds every table the workload creates.
async fn check_tables(client: &Client, tables: i64, db: &str) -> Result<()> {
    let found: i64 = client
        .query_one(COUNT_TABLES, &[])
        .await
        .with_context(|| format!("counting the tables in {db}"))?
        .get(0);
    ensure!(found == tables, "{db} holds {found} of {tables} tables");
    Ok(())
}

async fn drop_database(admin: &Client, name: &str) -> Result<()> {
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(name)
        ))
        .await
        .with_context(|| format!("dropping database {name}; drop it by hand"))
}

/// The bench's view of the pools of its set ([`testing::Pool`]): the shared pool and
/// the clones this process keeps for itself, refilled by `plover::testing`'s background
/// thread up to [`testing::Pool::size`], which it reads at each top-up.
struct Pool<'a> {
    admin: &'a Client,
    pool: testing::Pool,
    /// The size for warm samples: `PLOVER_TEST_POOL` as given if above 0, else the
    /// pool's default.
    size: usize,
    state: PoolState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PoolState {
    /// No refill in flight (full, or as the bench left it).
    Idle,
    /// A claim asked for a refill that may still be running.
    Refilling,
    /// Refills off (size 0); the pools may hold fewer clones than their size, or none.
    Off,
}

impl<'a> Pool<'a> {
    fn new(admin: &'a Client, migrator: &Migrator) -> Pool<'a> {
        let size = match testing::Pool::size() {
            0 => testing::Pool::DEFAULT_SIZE,
            n => n,
        };
        Pool {
            admin,
            pool: testing::Pool::of(migrator, Shim::Skip),
            size,
            state: PoolState::Idle,
        }
    }

    /// Sets the size the background thread fills the pools to at its next top-up.
    fn set_size(&self, n: usize) {
        testing::Pool::set_size(n);
    }

    /// Back to the size `PLOVER_TEST_POOL` gives.
    fn restore_size(&self) {
        testing::Pool::set_size(None);
    }

    /// The clones this process keeps for itself.
    async fn held(&self) -> Result<Vec<String>> {
        self.pool
            .held(self.admin)
            .await
            .context("listing the process's clones")
    }

    /// Waits until no refill runs ([`testing::Pool::settled`]).
    async fn wait_settled(&mut self) -> Result<()> {
        tokio::time::timeout(REFILL, self.pool.settled())
            .await
            .map_err(|_| {
                anyhow!(
                    "the pool was still refilling after {} s; is the server busy?",
                    REFILL.as_secs()
                )
            })?;
        self.state = PoolState::Idle;
        Ok(())
    }

    /// No refill in flight.
    async fn settle(&mut self) -> Result<()> {
        if self.state == PoolState::Refilling {
            self.wait_settled().await?;
        }
        Ok(())
    }

    /// The process's own clones full and no refill running. Until the process has
    /// taken [`testing::Pool::HELD_AFTER`] databases of the set, and with refills
    /// off, nothing makes them, so untimed claims prime them.
    async fn ready_for_warm(&mut self, migrator: &Migrator) -> Result<()> {
        self.settle().await?;
        let mut primers = 0;
        while self.state == PoolState::Off || self.held().await?.len() < self.size {
            if primers > testing::Pool::HELD_AFTER {
                bail!(
                    "the process kept {} of {} clones after {primers} claims",
                    self.held().await?.len(),
                    self.size
                );
            }
            self.set_size(self.size);
            self.state = PoolState::Refilling;
            let primer = TestDatabase::fresh(migrator, Shim::Skip)
                .await
                .context("priming the pool")?;
            drop(primer);
            primers += 1;
            self.wait_settled().await?;
        }
        Ok(())
    }

    /// Full, with refills off: the next claim is warm and starts no clone.
    async fn ready_for_warm_without_refill(&mut self, migrator: &Migrator) -> Result<()> {
        self.ready_for_warm(migrator).await?;
        self.set_size(0);
        self.state = PoolState::Off;
        Ok(())
    }

    /// Empty, with refills off.
    async fn ready_for_cold(&mut self) -> Result<()> {
        self.settle().await?;
        self.set_size(0);
        self.pool
            .empty(self.admin)
            .await
            .context("emptying the pools")?;
        self.state = PoolState::Off;
        Ok(())
    }

    /// Drops the template and the ready clones, refills off.
    async fn remove(&mut self) -> Result<()> {
        self.set_size(0);
        self.wait_settled().await?;
        self.state = PoolState::Off;
        self.pool.remove(self.admin).await.with_context(|| {
            format!(
                "dropping the template {} and its ready clones",
                self.pool.template()
            )
        })
    }
}

/// How the bench describes the Docker provider's settings.
fn describe(settings: &DockerProvider) -> String {
    let network = match settings.network {
        Network::Host => ", network host",
        _ => "",
    };
    let bare = if settings.bare { ", bare" } else { "" };
    format!("{}{network}{bare}", settings.descriptor())
}

/// A Docker engine that answered, and the provider's settings for the containers to
/// start (`PLOVER_DOCKER_IMAGE`, `_TAG`, `_NETWORK`, `_BARE`, read by the provider).
struct Docker {
    settings: DockerProvider,
    /// Whether a container may have been started and not removed yet.
    open: AtomicBool,
}

impl Docker {
    /// The engine, or why the container row is skipped.
    fn detect() -> Result<Docker, String> {
        match docker::check_engine() {
            Ok(()) => Ok(Docker {
                settings: DockerProvider::from_env(),
                open: AtomicBool::new(false),
            }),
            Err(_) => Err("no Docker engine (start one, see .ci/docker-up)".to_owned()),
        }
    }

    /// A new container (not the provider's shared one), started as the provider
    /// starts its own (`ContainerSpec::launch` of `Docker::disposable_spec`), timed
    /// until its server answers (what `launch` waits for) and the migrations are
    /// applied (what a test needs); removed after, untimed.
    /// Returns the time a test waits and, of it, the time until the server answered.
    async fn sample(&self, migrator: &Migrator, tables: i64) -> Result<(Duration, Duration)> {
        let spec = self
            .settings
            .disposable_spec()
            .context("choosing the container's port and password")?;
        let request = spec
            .request()
            .with_label(LABEL, format!("fresh-{}", std::process::id()));
        self.open.store(true, Ordering::Relaxed);
        let started = Instant::now();
        let launched = spec
            .launch(request, CONTAINER_READY)
            .await
            .with_context(|| format!("starting a container of {}", describe(&self.settings)))?;
        let ready = started.elapsed();
        let url = launched.url("postgres");
        let mut client = plover::connect(&url)
            .await
            .with_context(|| format!("connecting to {}", redact(&url)))?;
        let report = migrator
            .run(&mut client)
            .await
            .context("applying the migrations in the container")?;
        client
            .batch_execute(USABLE)
            .await
            .context("querying the container's server")?;
        let took = started.elapsed();
        let n = migrator.source().migrations().len();
        ensure!(
            report.applied.len() == n,
            "applied {} of {n} migrations in the container",
            report.applied.len()
        );
        check_tables(&client, tables, "the container's database").await?;
        drop(client);
        launched
            .container
            .rm()
            .await
            .context("removing the container")?;
        self.open.store(false, Ordering::Relaxed);
        Ok((took, ready))
    }

    /// Removes every container of this run still there (an error path, Ctrl-C).
    fn remove_leftovers(&self) -> Result<()> {
        if !self.open.load(Ordering::Relaxed) {
            return Ok(());
        }
        let label = format!("{LABEL}=fresh-{}", std::process::id());
        docker::remove_labelled(&label)
            .with_context(|| format!("removing the containers labelled {label}"))?;
        Ok(())
    }
}

/// Every measurement; the misses are samples that did not get the pool state asked
/// for (left out of the figures, counted).
#[derive(Default)]
struct Samples {
    template_build: Duration,
    warm: Vec<Duration>,
    /// Each warm sample split: the call, the test's connect, `SELECT 1`; and a second
    /// connect with `SELECT 1`, untimed.
    warm_parts: Vec<[Duration; 4]>,
    warm_missed: usize,
    cold: Vec<Duration>,
    cold_missed: usize,
    replay: Vec<Duration>,
    container: Vec<Duration>,
    /// Of each container sample, the time until its server accepted a connection.
    container_ready: Vec<Duration>,
    /// Diagnostics: warm with the claim's refill held back, and one connection.
    warm_without_refill: Vec<Duration>,
    connect: Vec<Duration>,
    /// `Some(Err)` once a container sample failed: the row stops there.
    container_error: Option<Result<(), anyhow::Error>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Stats {
    p50: Duration,
    p95: Duration,
    mean: Duration,
}

impl Stats {
    fn of(samples: &[Duration]) -> Option<Stats> {
        let mut s = samples.to_vec();
        s.sort();
        let total: Duration = s.iter().sum();
        Some(Stats {
            p50: percentile(&s, 0.50)?,
            p95: percentile(&s, 0.95)?,
            mean: total / u32::try_from(s.len()).ok()?,
        })
    }
}

/// The `p` quantile of sorted samples, interpolated between the closest ranks (so
/// the 0.5 quantile is the median).
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    let last = sorted.len().checked_sub(1)?;
    let rank = p.clamp(0.0, 1.0) * last as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    let (a, b) = (sorted[lo].as_secs_f64(), sorted[hi].as_secs_f64());
    Some(Duration::from_secs_f64(a + (b - a) * (rank - lo as f64)))
}

/// One line of the table.
struct Row<'a> {
    key: &'static str,
    name: String,
    samples: &'a [Duration],
    stats: Option<Stats>,
    skipped: Option<String>,
}

struct Report<'a> {
    rows: Vec<Row<'a>>,
    warm: Option<Stats>,
}

impl<'a> Report<'a> {
    fn new(s: &'a Samples, docker_skipped: Option<&String>) -> Report<'a> {
        let row = |key, name: &str, samples: &'a [Duration], skipped: Option<String>| Row {
            key,
            name: name.to_owned(),
            samples,
            stats: Stats::of(samples),
            skipped,
        };
        let container_skipped = match (&s.container_error, docker_skipped) {
            (_, Some(reason)) => Some(format!("skipped: {reason}")),
            (Some(Err(e)), _) => Some(format!(
                "failed after {} samples: {}",
                s.container.len(),
                first_line(&format!("{e:#}"))
            )),
            _ => None,
        };
        Report {
            warm: Stats::of(&s.warm),
            rows: vec![
                row(
                    "warm",
                    "warm: a clone the process made ahead",
                    &s.warm,
                    None,
                ),
                row(
                    "cold",
                    "cold: pool empty, cloned on the spot",
                    &s.cold,
                    None,
                ),
                row(
                    "replay",
                    "(a) CREATE DATABASE + replay (sqlx::test)",
                    &s.replay,
                    None,
                ),
                row(
                    "container",
                    "(b) new container + migrations",
                    &s.container,
                    container_skipped,
                ),
                row(
                    "warm_without_refill",
                    "diagnostic: warm, no refill alongside",
                    &s.warm_without_refill,
                    None,
                ),
                row(
                    "connect",
                    "diagnostic: one connect + SELECT 1",
                    &s.connect,
                    None,
                ),
            ],
        }
    }

    /// The p50 of each part of the warm samples: the call, the connect, the query, and
    /// the untimed second connect.
    fn warm_split(&self, s: &Samples) -> Option<[Duration; 4]> {
        let part = |i: usize| {
            let mut v: Vec<Duration> = s.warm_parts.iter().map(|p| p[i]).collect();
            v.sort();
            percentile(&v, 0.5)
        };
        Some([part(0)?, part(1)?, part(2)?, part(3)?])
    }

    /// A row's p50 over the warm p50.
    fn ratio(&self, row: &Row<'_>) -> Option<f64> {
        Some(row.stats?.p50.as_secs_f64() / self.warm?.p50.as_secs_f64())
    }

    fn get(&self, key: &str) -> Option<&Row<'a>> {
        self.rows.iter().find(|r| r.key == key)
    }

    fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<42} {:>11} {:>11} {:>11} {:>4} {:>10}",
            "scenario", "p50", "p95", "mean", "n", "p50/warm"
        );
        for r in &self.rows {
            match (&r.skipped, r.stats) {
                (Some(why), None) => {
                    let _ = writeln!(out, "{:<42} {why}", r.name);
                }
                (why, Some(s)) => {
                    let _ = writeln!(
                        out,
                        "{:<42} {:>8} ms {:>8} ms {:>8} ms {:>4} {:>10}{}",
                        r.name,
                        fmt_ms(s.p50),
                        fmt_ms(s.p95),
                        fmt_ms(s.mean),
                        r.samples.len(),
                        self.ratio(r).map_or("-".into(), fmt_ratio),
                        why.as_ref().map(|w| format!("  ({w})")).unwrap_or_default()
                    );
                }
                (None, None) => {
                    let _ = writeln!(out, "{:<42} no samples", r.name);
                }
            }
        }
        out
    }

    fn notes(&self, n: usize, s: &Samples, pool: usize) -> String {
        let mut out = String::new();
        let asked = |got: usize, missed: usize| format!("{got} of {}", got + missed);
        let _ = writeln!(
            out,
            "timed: from the call until a connected client has answered `SELECT 1`; \
             dropping the database or container is not timed."
        );
        let _ = writeln!(
            out,
            "warm: TestDatabase::fresh(&migrator, Shim::Skip) with {pool} clones the process \
             made ahead for itself (Claimed::Held) and no refill running (the claim's own refill \
             runs alongside, as in a suite); {} samples claimed such a clone (misses are left \
             out).",
            asked(s.warm.len(), s.warm_missed),
        );
        let _ = writeln!(
            out,
            "cold: the same call with the pools emptied and their size 0 (Pool::set_size), so the \
             template is cloned on the spot; {} samples claimed cold. Building the template once ({n} \
             migrations) took {} ms.",
            asked(s.cold.len(), s.cold_missed),
            fmt_ms(s.template_build),
        );
        let _ = writeln!(
            out,
            "(a): CREATE DATABASE over an open admin connection, connect, Migrator::run of all \
             {n}, as #[sqlx::test] creates and migrates a database per test."
        );
        let mut ready = s.container_ready.clone();
        ready.sort();
        let _ = writeln!(
            out,
            "(b): a new testcontainers container per test (not the provider's shared one), \
             waited on until it accepts a connection (p50 {} ms of it), then Migrator::run of \
             all {n}; fsync off as on the test server.",
            percentile(&ready, 0.5).map_or_else(|| "-".into(), fmt_ms),
        );
        let _ = writeln!(
            out,
            "diagnostics: the warm call with the pool's size 0 at claim time, so no clone is \
             made while the test connects; and connecting to the server's `postgres` database \
             plus `SELECT 1`, the floor of any scheme that hands out a new connection (the warm \
             call opens none: it hands over the connection that warmed the clone)."
        );
        if let Some([call, connect, query, again]) = self.warm_split(s) {
            let _ = writeln!(
                out,
                "warm, split (p50 of each part): TestDatabase::fresh {} ms (taking a clone made \
                 for the process from its list, and marking it handed out over its warmed \
                 connection: one round trip), the test's first client (that connection) {} ms, \
                 `SELECT 1` {} ms; a second connect + `SELECT 1` to the same database, untimed, \
                 {} ms.",
                fmt_ms(call),
                fmt_ms(connect),
                fmt_ms(query),
                fmt_ms(again),
            );
        }
        let ratio = |key| self.get(key).and_then(|r| self.ratio(r));
        if let Some(warm) = self.warm {
            let _ = writeln!(
                out,
                "goals: warm p50 {} ms (goal: at most {} ms: {}), p95 {} ms (goal: at most {} \
                 ms: {}); (a)/warm {} (goal: at least {GOAL_REPLAY_RATIO}x: {}).",
                fmt_ms(warm.p50),
                GOAL_WARM_P50.as_millis(),
                met(warm.p50 <= GOAL_WARM_P50),
                fmt_ms(warm.p95),
                GOAL_WARM_P95.as_millis(),
                met(warm.p95 <= GOAL_WARM_P95),
                ratio("replay").map_or("-".into(), |r| format!("{r:.1}x")),
                met(ratio("replay").is_some_and(|r| r >= GOAL_REPLAY_RATIO)),
            );
        }
        out
    }

    fn summary(&self, n: usize, version: &str, s: &Samples) -> String {
        let build = if cfg!(debug_assertions) {
            "dev build"
        } else {
            "release build"
        };
        let fig = |key| {
            let row = self.get(key)?;
            let st = row.stats?;
            Some(format!(
                "p50 {} ms / p95 {} ms (n={})",
                fmt_ms(st.p50),
                fmt_ms(st.p95),
                row.samples.len()
            ))
        };
        let ratio = |key| {
            let row = self.get(key)?;
            Some(format!("{:.1}x the warm p50", self.ratio(row)?))
        };
        let none = || "-".to_owned();
        let p50 = |key| {
            self.get(key)
                .and_then(|r| r.stats)
                .map_or_else(none, |st| fmt_ms(st.p50))
        };
        let container = match self.get("container") {
            Some(r) if r.stats.is_some() => format!(
                "took {} ({})",
                fig("container").unwrap_or_else(none),
                ratio("container").unwrap_or_else(none)
            ),
            Some(r) => format!("was {}", r.skipped.clone().unwrap_or_else(none)),
            None => "was not measured".into(),
        };
        format!(
            "Benchmark ({n} migrations, {build}, PostgreSQL {version}, fsync off, one run): \
             handing a test a fresh migrated database took {} warm ({} of {} claims warm) and \
             {} cold ({}); creating a database and replaying all {n} migrations, as \
             #[sqlx::test] does, took {} ({}); a new container per test {container}. \
             For scale: the warm call with no refill alongside took p50 {} ms, and one \
             connection plus `SELECT 1` p50 {} ms (the warm call opens none).",
            fig("warm").unwrap_or_else(none),
            s.warm.len(),
            s.warm.len() + s.warm_missed,
            fig("cold").unwrap_or_else(none),
            ratio("cold").unwrap_or_else(none),
            fig("replay").unwrap_or_else(none),
            ratio("replay").unwrap_or_else(none),
            p50("warm_without_refill"),
            p50("connect"),
        )
    }
}

fn met(yes: bool) -> &'static str {
    if yes { "met" } else { "not met" }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let d = Duration::from_millis;
        let s: Vec<Duration> = (1..=100).map(d).collect();
        assert_eq!(percentile(&s, 0.5), Some(Duration::from_micros(50_500)));
        assert_eq!(percentile(&s, 0.95), Some(Duration::from_micros(95_050)));
        assert_eq!(percentile(&[d(7)], 0.95), Some(d(7)));
        assert_eq!(percentile(&[], 0.5), None);
        let stats = Stats::of(&[d(3), d(1), d(2)]).unwrap();
        assert_eq!((stats.p50, stats.mean), (d(2), d(2)));
    }

    #[test]
    fn the_report_says_why_a_row_is_missing() {
        let d = Duration::from_millis;
        let s = Samples {
            warm: vec![d(4), d(5)],
            replay: vec![d(400)],
            ..Samples::default()
        };
        let reason = "no Docker engine (start one, see .ci/docker-up)".to_owned();
        let r = Report::new(&s, Some(&reason));
        let table = r.table();
        assert!(table.contains("skipped: no Docker engine (start one, see .ci/docker-up)"));
        assert!(table.contains("no samples"), "{table}");
        let replay = r.get("replay").unwrap();
        assert!((r.ratio(replay).unwrap() - 400.0 / 4.5).abs() < 1e-9);
    }
}
