//! `cargo xtask bench`: plover against `psql -1 -f` on the same generated migration
//! files, measured side by side in one run and reported as ratios.
//!
//! Each round creates fresh databases on the shared test server, runs every
//! measurement once (rotating their order, so machine noise hits all of them), and
//! drops the databases again, on error paths and Ctrl-C too. The numbers are
//! medians and minimums over the rounds.
//!
//! What it must not do: assert a timing (machines are noisy; it reports, never
//! fails on a figure), or reach into plover's internals: it migrates through the
//! public [`Migrator`] like an app does.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use plover::redact;
use plover::testing::{Native, NativeServer, Provider, Server, TestDatabase, state_dir};
use plover::{Migrator, Source, SupabaseHistory};
use serde_json::json;

use crate::flags::Bench;

/// The app name plover records the runs under.
pub(crate) const APP: &str = "bench";
/// The origin the in-memory set is loaded under, as `Embedded::load` would name a
/// Supabase project's embedded directory.
const ORIGIN: &str = "supabase/migrations";
pub(crate) const COUNT_TABLES: &str = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'";
pub(crate) const SERVER_VERSION: &str = "SELECT current_setting('server_version')";

impl Bench {
    pub async fn run(self) -> Result<()> {
        if cfg!(debug_assertions) {
            eprintln!(
                "warning: this is a dev build and plover is not optimised in it; \
                 `cargo xtask bench` builds the bench in release for figures worth quoting"
            );
        }
        let n = self.migrations as usize;
        let workload = Workload::generate(n);
        let dir = state_dir().join("bench").join("migrations");
        workload.write(&dir)?;

        let (server, test_server) = shared_servers().await?;
        let admin_url = server.url("postgres");
        let (_admin, version) = admin_and_version(&admin_url).await?;
        let psql = match server.bin_dir().join("psql") {
            p if p.is_file() => p,
            _ => PathBuf::from("psql"),
        };
        eprintln!(
            "bench: {n} migrations ({} tables) in {}, {} rounds, PostgreSQL {version} at {}, psql {}",
            workload.tables,
            dir.display(),
            self.rounds,
            redact(&admin_url),
            psql.display(),
        );

        let bench = Run {
            server: &server,
            psql: &psql,
            dir: &dir,
            workload: &workload,
        };
        let mut samples = Samples::default();
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        for round in 0..self.rounds {
            let mut dbs = Databases::new(&test_server);
            let result = tokio::select! {
                r = bench.round(round, &mut dbs, &mut samples) => r,
                _ = &mut interrupted => Err(anyhow!("interrupted")),
            };
            let dropped = dbs.drop_all().await;
            result.with_context(|| format!("round {} of {}", round + 1, self.rounds))?;
            dropped?;
            eprintln!(
                "round {}/{}: {}",
                round + 1,
                self.rounds,
                samples.last_line()
            );
        }

        let report = samples.report();
        if self.json {
            let doc = json!({
                "migrations": n,
                "tables": workload.tables,
                "rounds": self.rounds,
                "optimised": !cfg!(debug_assertions),
                "server_version": version,
                "series": samples.series().iter().map(|(name, s)| {
                    (name.to_string(), json!({
                        "median_ms": ms(median(s)),
                        "min_ms": ms(min(s)),
                        "samples_ms": s.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
                    }))
                }).collect::<serde_json::Map<_, _>>(),
                "comparisons": report.iter().map(|c| json!({
                    "scenario": c.scenario,
                    "baseline": c.baseline,
                    "plover_median_ms": ms(c.plover.median),
                    "plover_min_ms": ms(c.plover.min),
                    "psql_median_ms": ms(c.psql.median),
                    "psql_min_ms": ms(c.psql.min),
                    "ratio": c.ratio(),
                })).collect::<Vec<_>>(),
            });
            let text = serde_json::to_string_pretty(&doc).context("writing the JSON report")?;
            println!("{text}");
        } else {
            print!("{}", table(&report));
            println!();
            print!("{}", notes(n, &samples));
            println!();
            println!("For a closing note:");
            println!("{}", summary(n, self.rounds, &version, &samples));
        }
        Ok(())
    }
}

/// The generated migration files, in version order.
pub(crate) struct Workload {
    /// `(file name, SQL)`.
    pub(crate) files: Vec<(String, String)>,
    /// How many tables applying them creates in `public`.
    pub(crate) tables: i64,
}

impl Workload {
    /// `n` generated migrations ([`crate::workload::files`]).
    pub(crate) fn generate(n: usize) -> Workload {
        let (files, tables) = crate::workload::files(n);
        Workload { files, tables }
    }

    /// Writes the files to `dir`, replacing what an earlier run left there.
    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, sql) in &self.files {
            let path = dir.join(name);
            std::fs::write(&path, sql).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// Parses and checksums the files held in memory with `Source::from_files`: what
    /// an app's boot pays before connecting when it builds its set at run time (an
    /// `embed_migrations!` set was checked and digested at build time, and its load
    /// costs next to nothing: `cargo xtask bench boot`).
    pub(crate) fn load(&self) -> Result<Source> {
        Source::from_files(
            ORIGIN,
            self.files
                .iter()
                .map(|(name, sql)| (format!("{ORIGIN}/{name}"), sql.as_bytes())),
        )
        .context("loading the generated migrations")
    }
}

/// What every round needs.
struct Run<'a> {
    server: &'a NativeServer,
    psql: &'a Path,
    dir: &'a Path,
    workload: &'a Workload,
}

/// The measurements of a round, in the order they run (rotated each round).
#[derive(Clone, Copy, Debug)]
enum Step {
    Plover,
    PloverMirror,
    Psql,
}

impl Run<'_> {
    async fn round(
        &self,
        round: u32,
        dbs: &mut Databases<'_>,
        samples: &mut Samples,
    ) -> Result<()> {
        let n = self.workload.files.len();
        let pid = std::process::id();
        let plover_db = dbs.create(&format!("bench_{pid}_{round}_plover")).await?;
        let mirror_db = dbs.create(&format!("bench_{pid}_{round}_mirror")).await?;
        let psql_db = dbs.create(&format!("bench_{pid}_{round}_psql")).await?;

        let mut steps = [Step::Plover, Step::PloverMirror, Step::Psql];
        let len = steps.len();
        steps.rotate_left(round as usize % len);
        for step in steps {
            match step {
                Step::Plover => {
                    let (connect, run, statements) =
                        self.plover_apply(&plover_db, SupabaseHistory::Off).await?;
                    samples.connect.push(connect);
                    samples.apply.push(run);
                    samples.apply_statements.push(statements);
                }
                Step::PloverMirror => {
                    let (connect, run, statements) =
                        self.plover_apply(&mirror_db, SupabaseHistory::On).await?;
                    samples.connect.push(connect);
                    samples.apply_mirror.push(run);
                    samples.apply_mirror_statements.push(statements);
                }
                Step::Psql => {
                    let connect = self.psql(&psql_db, &["-c".into(), "select 1".into()])?;
                    let mut args: Vec<OsString> =
                        vec!["-1".into(), "-v".into(), "ON_ERROR_STOP=1".into()];
                    for (name, _) in &self.workload.files {
                        args.push("-f".into());
                        args.push(name.into());
                    }
                    let apply = self.psql(&psql_db, &args)?;
                    self.check_tables(&psql_db, "psql").await?;
                    samples.psql_connect.push(connect);
                    samples.psql_apply.push(apply);
                    samples.psql_apply_net.push(apply.saturating_sub(connect));
                }
            }
        }

        // The no-op boot check: what an app pays on boot once everything is applied.
        // On the mirror database, with the mirror on, as a Supabase project boots.
        let boot = Instant::now();
        let source = self.workload.load()?;
        let load = boot.elapsed();
        let url = self.server.url(&mirror_db);
        let started = Instant::now();
        let mut client = plover::connect(&url)
            .await
            .with_context(|| format!("connecting to {}", redact(&url)))?;
        let connect = started.elapsed();
        let migrator = Migrator::new(source)
            .app(APP)
            .supabase_history(SupabaseHistory::On);
        let started = Instant::now();
        let report = migrator
            .run(&mut client)
            .await
            .with_context(|| format!("the no-op run on {mirror_db}"))?;
        let run = started.elapsed();
        let total = boot.elapsed();
        ensure!(
            report.applied.is_empty() && report.already_applied == n,
            "the no-op run on {mirror_db} applied {} and found {} of {n} already applied",
            report.applied.len(),
            report.already_applied
        );
        samples.load.push(load);
        samples.connect.push(connect);
        samples.noop.push(run);
        samples.noop_boot.push(total);
        Ok(())
    }

    /// Connects (timed) and applies everything to the empty database `db` (timed),
    /// checking that all N were applied. Returns the connect time, the run time and
    /// the time the run spent in the migrations' own statements.
    async fn plover_apply(
        &self,
        db: &str,
        mirror: SupabaseHistory,
    ) -> Result<(Duration, Duration, Duration)> {
        let n = self.workload.files.len();
        let migrator = Migrator::new(self.workload.load()?)
            .app(APP)
            .supabase_history(mirror);
        let url = self.server.url(db);
        let started = Instant::now();
        let mut client = plover::connect(&url)
            .await
            .with_context(|| format!("connecting to {}", redact(&url)))?;
        let connect = started.elapsed();
        let started = Instant::now();
        let report = migrator
            .run(&mut client)
            .await
            .with_context(|| format!("applying the migrations to {db} with plover"))?;
        let run = started.elapsed();
        ensure!(
            report.applied.len() == n,
            "plover applied {} of {n} migrations to {db}",
            report.applied.len()
        );
        self.check_tables(db, "plover").await?;
        let statements = report.applied.iter().map(|a| a.duration).sum();
        Ok((connect, run, statements))
    }

    /// Runs psql on `db` from the migrations directory and times the whole process.
    /// The connection goes through the environment, not argv.
    fn psql(&self, db: &str, args: &[OsString]) -> Result<Duration> {
        let mut cmd = Command::new(self.psql);
        cmd.current_dir(self.dir)
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.server.port().to_string())
            .env("PGUSER", "postgres")
            .env("PGDATABASE", db)
            .args(["-X", "-q"])
            .args(args);
        let started = Instant::now();
        let out = tokio::task::block_in_place(|| cmd.output())
            .with_context(|| format!("running {}", self.psql.display()))?;
        let took = started.elapsed();
        ensure!(
            out.status.success(),
            "psql on {db} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(took)
    }

    /// Checks that `db` holds every table the workload creates.
    async fn check_tables(&self, db: &str, by: &str) -> Result<()> {
        let url = self.server.url(db);
        let client = plover::connect(&url)
            .await
            .with_context(|| format!("connecting to {}", redact(&url)))?;
        let tables: i64 = client
            .query_one(COUNT_TABLES, &[])
            .await
            .with_context(|| format!("counting the tables {by} created in {db}"))?
            .get(0);
        ensure!(
            tables == self.workload.tables,
            "{by} created {tables} of {} tables in {db}",
            self.workload.tables
        );
        Ok(())
    }
}

/// The shared test server, twice: as itself (URLs, binaries) and as the provider
/// hands it out for test databases.
pub(crate) async fn shared_servers() -> Result<(NativeServer, Server)> {
    let server = NativeServer::shared()
        .await
        .context("starting the shared test server")?;
    let test_server = Native
        .server()
        .await
        .context("starting the shared test server")?;
    Ok((server, test_server))
}

/// The databases of a round; [`Databases::drop_all`] drops them (each also goes
/// when its handle drops).
pub(crate) struct Databases<'a> {
    server: &'a Server,
    dbs: Vec<TestDatabase>,
}

impl<'a> Databases<'a> {
    pub(crate) fn new(server: &'a Server) -> Databases<'a> {
        Databases {
            server,
            dbs: Vec::new(),
        }
    }

    pub(crate) async fn create(&mut self, name: &str) -> Result<String> {
        let db = TestDatabase::create_named(self.server, name)
            .await
            .with_context(|| format!("creating database {name}"))?;
        self.dbs.push(db);
        Ok(name.to_owned())
    }

    /// Drops every database created so far, even when one fails; reports the first
    /// error.
    pub(crate) async fn drop_all(&mut self) -> Result<()> {
        let mut first = Ok(());
        for db in std::mem::take(&mut self.dbs) {
            let name = db.name().to_owned();
            let dropped = db
                .close()
                .await
                .with_context(|| format!("dropping database {name}; drop it by hand"));
            if first.is_ok() {
                first = dropped;
            }
        }
        first
    }
}

/// Every measurement, one sample per round (connect: three per round).
#[derive(Default)]
struct Samples {
    load: Vec<Duration>,
    connect: Vec<Duration>,
    apply: Vec<Duration>,
    apply_statements: Vec<Duration>,
    apply_mirror: Vec<Duration>,
    apply_mirror_statements: Vec<Duration>,
    noop: Vec<Duration>,
    noop_boot: Vec<Duration>,
    psql_connect: Vec<Duration>,
    psql_apply: Vec<Duration>,
    psql_apply_net: Vec<Duration>,
}

impl Samples {
    fn series(&self) -> [(&'static str, &[Duration]); 11] {
        [
            ("plover_load", &self.load),
            ("plover_connect", &self.connect),
            ("plover_apply", &self.apply),
            ("plover_apply_statements", &self.apply_statements),
            ("plover_apply_mirror", &self.apply_mirror),
            (
                "plover_apply_mirror_statements",
                &self.apply_mirror_statements,
            ),
            ("plover_noop_run", &self.noop),
            ("plover_noop_boot", &self.noop_boot),
            ("psql_connect", &self.psql_connect),
            ("psql_apply", &self.psql_apply),
            ("psql_apply_minus_connect", &self.psql_apply_net),
        ]
    }

    /// The latest round, for the progress line.
    fn last_line(&self) -> String {
        let last = |s: &[Duration]| s.last().copied().map_or("-".into(), fmt_ms);
        format!(
            "plover {} ms, plover+mirror {} ms, psql {} ms (connect {} ms), no-op {} ms, load {} ms",
            last(&self.apply),
            last(&self.apply_mirror),
            last(&self.psql_apply),
            last(&self.psql_connect),
            last(&self.noop),
            last(&self.load),
        )
    }

    fn report(&self) -> Vec<Comparison> {
        let psql = Stats::of(&self.psql_apply);
        let psql_net = Stats::of(&self.psql_apply_net);
        let row = |scenario, plover: &[Duration], baseline, psql| Comparison {
            scenario,
            plover: Stats::of(plover),
            baseline,
            psql,
        };
        vec![
            row("apply, history only", &self.apply, "psql", psql),
            row("apply, history only", &self.apply, "psql-conn", psql_net),
            row(
                "apply, Supabase mirror on",
                &self.apply_mirror,
                "psql",
                psql,
            ),
            row(
                "apply, Supabase mirror on",
                &self.apply_mirror,
                "psql-conn",
                psql_net,
            ),
            row(
                "no-op boot check (beyond connect)",
                &self.noop,
                "psql",
                psql,
            ),
            row(
                "no-op boot: load+connect+check",
                &self.noop_boot,
                "psql",
                psql,
            ),
            row("load source from memory", &self.load, "psql", psql),
            row(
                "connect",
                &self.connect,
                "psql -c",
                Stats::of(&self.psql_connect),
            ),
        ]
    }
}

/// One line of the table: a plover series against a psql one.
struct Comparison {
    scenario: &'static str,
    plover: Stats,
    baseline: &'static str,
    psql: Stats,
}

impl Comparison {
    /// plover's median over psql's.
    fn ratio(&self) -> f64 {
        self.plover.median.as_secs_f64() / self.psql.median.as_secs_f64()
    }
}

#[derive(Clone, Copy)]
struct Stats {
    median: Duration,
    min: Duration,
}

impl Stats {
    fn of(samples: &[Duration]) -> Stats {
        Stats {
            median: median(samples),
            min: min(samples),
        }
    }
}

pub(crate) fn median(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    match s.len() {
        0 => Duration::ZERO,
        len if len % 2 == 1 => s[len / 2],
        len => (s[len / 2 - 1] + s[len / 2]) / 2,
    }
}

fn min(samples: &[Duration]) -> Duration {
    samples.iter().copied().min().unwrap_or_default()
}

/// A superuser connection to `url` and the server's version, for the report.
pub(crate) async fn admin_and_version(url: &str) -> Result<(tokio_postgres::Client, String)> {
    let admin = plover::connect(url)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;
    let version: String = admin
        .query_one(SERVER_VERSION, &[])
        .await
        .context("reading the server version")?
        .get(0);
    Ok((admin, version))
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn fmt_ms(d: Duration) -> String {
    match ms(d) {
        x if x < 10.0 => format!("{x:.2}"),
        x => format!("{x:.1}"),
    }
}

/// Two decimals, or four for small ratios (the no-op check).
pub(crate) fn fmt_ratio(r: f64) -> String {
    if r >= 0.1 {
        format!("{r:.2}")
    } else {
        format!("{r:.4}")
    }
}

fn table(report: &[Comparison]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:>12} {:>12}  {:<9} {:>12} {:>12} {:>7}",
        "scenario", "plover med", "plover min", "vs", "psql med", "psql min", "ratio"
    );
    for c in report {
        let _ = writeln!(
            out,
            "{:<34} {:>9} ms {:>9} ms  {:<9} {:>9} ms {:>9} ms {:>7}",
            c.scenario,
            fmt_ms(c.plover.median),
            fmt_ms(c.plover.min),
            c.baseline,
            fmt_ms(c.psql.median),
            fmt_ms(c.psql.min),
            fmt_ratio(c.ratio())
        );
    }
    out
}

fn notes(n: usize, s: &Samples) -> String {
    let mut out = String::new();
    let m = |x: &[Duration]| fmt_ms(median(x));
    let _ = writeln!(
        out,
        "apply: Migrator::run on a fresh empty database over an open connection, {n} migrations, \
         one transaction each; of it, the migrations' own statements took {} ms (history only) \
         and {} ms (mirror on), the rest is plover's bookkeeping (lock, plan, BEGIN/COMMIT, \
         timeouts, history rows, mirror rows).",
        m(&s.apply_statements),
        m(&s.apply_mirror_statements),
    );
    let _ = writeln!(
        out,
        "psql: `psql -X -q -1 -v ON_ERROR_STOP=1 -f <each file>` timed as a whole process; \
         psql-conn subtracts the same round's `psql -X -q -c 'select 1'` ({} ms median).",
        m(&s.psql_connect),
    );
    let _ = writeln!(
        out,
        "no-op boot: Migrator::run (Supabase mirror on) on the up-to-date database over a fresh \
         connection, i.e. the time beyond connecting; load+connect+check adds loading the source \
         and connecting, as an app's boot does."
    );
    let _ = writeln!(
        out,
        "load: Source::from_files on the {n} files held in memory (parse + SHA-256), a set \
         built at run time (an embed_migrations! set is checked and digested at build time: \
         `cargo xtask bench boot`)."
    );
    let _ = writeln!(
        out,
        "ratio: plover median / baseline median; the test server runs with fsync off."
    );
    out
}

fn summary(n: usize, rounds: u32, version: &str, s: &Samples) -> String {
    let m = |x: &[Duration]| median(x);
    let psql = m(&s.psql_apply);
    let psql_net = m(&s.psql_apply_net);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let build = if cfg!(debug_assertions) {
        "dev build"
    } else {
        "release build"
    };
    format!(
        "Benchmark ({n} small migrations, medians of {rounds} rounds, {build}, PostgreSQL {version}, \
         fsync off): applying all {n}, plover took {} ms against {} ms for `psql -1 -f` \
         ({:.2}x; {:.2}x against psql's {} ms beyond its {} ms connect); with the Supabase \
         mirror on, {} ms ({:.2}x; {:.2}x). The no-op boot check on the up-to-date database took \
         {} ms beyond connecting ({:.2}% of psql's apply), {} ms with loading the source \
         ({} ms) and connecting ({} ms).",
        fmt_ms(m(&s.apply)),
        fmt_ms(psql),
        ratio(m(&s.apply), psql),
        ratio(m(&s.apply), psql_net),
        fmt_ms(psql_net),
        fmt_ms(m(&s.psql_connect)),
        fmt_ms(m(&s.apply_mirror)),
        ratio(m(&s.apply_mirror), psql),
        ratio(m(&s.apply_mirror), psql_net),
        fmt_ms(m(&s.noop)),
        100.0 * ratio(m(&s.noop), psql),
        fmt_ms(m(&s.noop_boot)),
        fmt_ms(m(&s.load)),
        fmt_ms(m(&s.connect)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_fourteen_increasing_digits() {
        use crate::workload::{MAX, version};
        assert_eq!(version(0), "20250101000000");
        assert_eq!(version(61), "20250101010100");
        assert_eq!(version(1440 * 7), "20250108000000");
        assert_eq!(version(MAX - 1), "20250131235900");
        let w = Workload::generate(10_000);
        assert!(w.files.windows(2).all(|p| p[0].0 < p[1].0));
        let s = w.load().unwrap();
        assert_eq!(s.migrations().len(), 10_000);
    }

    #[test]
    fn the_workload_loads_as_a_supabase_set() {
        let w = Workload::generate(9);
        let s = w.load().unwrap();
        assert_eq!(s.migrations().len(), 9);
        assert!(s.is_supabase());
        assert_eq!(w.tables, 7);
    }

    #[test]
    fn medians() {
        let d = Duration::from_millis;
        assert_eq!(median(&[d(3), d(1), d(2)]), d(2));
        assert_eq!(
            median(&[d(4), d(1), d(2), d(3)]),
            Duration::from_micros(2500)
        );
        assert_eq!(min(&[d(4), d(1)]), d(1));
    }
}
