//! `cargo xtask bench peers`: plover against the tools people use instead (`psql -1
//! -f`, refinery, sqlx's migrator and the Supabase CLI's `db push`) on the same
//! generated migrations, side by side in one run, reported as ratios to plover.
//!
//! Each size N gets its migration files written once, in each tool's own naming; then
//! every round gives each tool a fresh database (the tools' order rotated per round),
//! times the tool applying everything, and times it again on the up-to-date database
//! (the no-op run; psql has none). Every tool connects through the round-trip proxy
//! ([`crate::wire`]), which counts round trips and reads the backends' CPU; the client
//! CPU comes from getrusage (the bench process for in-process tools, less the proxy
//! thread; the waited-for children for psql and the CLI).
//!
//! What it must not do: assert a timing, put a password in a child's argv, or reach
//! into plover's internals (it migrates through the public [`Migrator`]).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use nix::sys::resource::{UsageWho, getrusage};
use plover::redact;
use plover::testing::{Native, NativeServer, Provider, state_dir};
use plover::{Migrator, Source, SupabaseHistory};
use serde_json::json;

use crate::apply::{APP, Databases, Workload, admin_and_version, fmt_ms, median, ms};
use crate::flags::BenchPeers;
use crate::wire::{Proxy, Tally};

/// The Supabase CLI's version the bench expects (`.ci/supabase-cli-up` installs it).
const SUPABASE_CLI_VERSION: &str = "2.117.0";
/// Where `.ci/supabase-cli-up /tmp/plover-supabase-cli` puts the CLI.
const SUPABASE_CLI_DEFAULT: &str = "/tmp/plover-supabase-cli/node_modules/.bin/supabase";

/// The workload's tables (refinery and sqlx keep their history tables in `public`).
const COUNT_TABLES: &str =
    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 't\\_%'";

/// The tools measured, plover first (the ratios' denominator).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    Plover,
    Psql,
    Refinery,
    Sqlx,
    Supabase,
    /// Not a tool: connecting and closing, the floor under every no-op run.
    Connect,
}

impl Peer {
    const ALL: [Peer; 6] = [
        Peer::Plover,
        Peer::Psql,
        Peer::Refinery,
        Peer::Sqlx,
        Peer::Supabase,
        Peer::Connect,
    ];

    fn name(self) -> &'static str {
        match self {
            Peer::Plover => "plover",
            Peer::Psql => "psql -1 -f",
            Peer::Refinery => "refinery 0.10",
            Peer::Sqlx => "sqlx 0.9",
            Peer::Supabase => "supabase db push",
            Peer::Connect => "connect only",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Peer::Plover => "plover",
            Peer::Psql => "psql",
            Peer::Refinery => "refinery",
            Peer::Sqlx => "sqlx",
            Peer::Supabase => "supabase",
            Peer::Connect => "connect",
        }
    }

    /// Runs inside the bench process (its CPU is the process's, less the proxy's).
    fn in_process(self) -> bool {
        matches!(
            self,
            Peer::Plover | Peer::Refinery | Peer::Sqlx | Peer::Connect
        )
    }

    /// Applies migrations.
    fn has_apply(self) -> bool {
        self != Peer::Connect
    }

    /// Keeps a history, so a second run has nothing to do.
    fn has_noop(self) -> bool {
        self != Peer::Psql
    }
}

/// The file name `peer` gives the workload's `<14 digits>_<name>.sql`: the Supabase
/// CLI's own for plover, psql, sqlx and the CLI, `V<version>__<name>.sql` for
/// refinery.
pub(crate) fn file_name(peer: Peer, supabase_name: &str) -> Result<String> {
    let (version, rest) = supabase_name
        .split_once('_')
        .filter(|(v, r)| {
            v.len() == 14 && v.bytes().all(|b| b.is_ascii_digit()) && r.ends_with(".sql")
        })
        .ok_or_else(|| anyhow!("{supabase_name} is not named <14 digits>_<name>.sql"))?;
    Ok(match peer {
        Peer::Refinery => format!("V{version}__{rest}"),
        Peer::Plover | Peer::Psql | Peer::Sqlx | Peer::Supabase | Peer::Connect => {
            supabase_name.to_owned()
        }
    })
}

/// Where each tool's files go under the bench's directory.
struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The Supabase CLI's work directory (its files in `supabase/migrations`).
    fn supabase_workdir(&self) -> PathBuf {
        self.root.join("supabase-project")
    }

    fn dir(&self, peer: Peer) -> PathBuf {
        match peer {
            Peer::Plover | Peer::Psql | Peer::Supabase | Peer::Connect => {
                self.supabase_workdir().join("supabase").join("migrations")
            }
            Peer::Refinery => self.root.join("refinery"),
            Peer::Sqlx => self.root.join("sqlx"),
        }
    }

    /// Writes the workload for every tool, replacing an earlier run's files.
    fn write(&self, workload: &Workload) -> Result<()> {
        if self.root.exists() {
            std::fs::remove_dir_all(&self.root)
                .with_context(|| format!("removing {}", self.root.display()))?;
        }
        for peer in [Peer::Plover, Peer::Refinery, Peer::Sqlx] {
            let dir = self.dir(peer);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (name, sql) in &workload.files {
                let path = dir.join(file_name(peer, name)?);
                std::fs::write(&path, sql)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Ok(())
    }
}

/// Apply, or the no-op run on the up-to-date database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Apply,
    Noop,
}

/// One run of one tool.
#[derive(Clone, Copy, Debug)]
struct Sample {
    wall: Duration,
    client_cpu: Duration,
    /// `None` when a backend's CPU could not be read.
    server_cpu: Option<Duration>,
    round_trips: u64,
    connections: u64,
}

/// The samples of one size.
struct SizeResults {
    n: usize,
    /// `(peer, phase, samples)`.
    series: Vec<(Peer, Phase, Vec<Sample>)>,
}

impl SizeResults {
    fn push(&mut self, peer: Peer, phase: Phase, sample: Sample) {
        match self
            .series
            .iter_mut()
            .find(|(p, ph, _)| *p == peer && *ph == phase)
        {
            Some((_, _, s)) => s.push(sample),
            None => self.series.push((peer, phase, vec![sample])),
        }
    }

    fn get(&self, peer: Peer, phase: Phase) -> Option<&[Sample]> {
        self.series
            .iter()
            .find(|(p, ph, _)| *p == peer && *ph == phase)
            .map(|(_, _, s)| s.as_slice())
    }
}

/// What every run needs.
struct Bench<'a> {
    server: &'a NativeServer,
    proxy: Proxy,
    psql: PathBuf,
    supabase: Option<PathBuf>,
    layout: Layout,
}

impl BenchPeers {
    pub async fn run(self) -> Result<()> {
        if cfg!(debug_assertions) {
            eprintln!(
                "warning: this is a dev build and plover is not optimised in it; \
                 run `cargo run --release -p xtask -- bench peers` for optimised figures"
            );
        }
        let server = NativeServer::shared()
            .await
            .context("starting the shared test server")?;
        let test_server = Native
            .server()
            .await
            .context("starting the shared test server")?;
        let admin_url = server.url("postgres");
        let (_admin, version) = admin_and_version(&admin_url).await?;
        let psql = match server.bin_dir().join("psql") {
            p if p.is_file() => p,
            _ => PathBuf::from("psql"),
        };
        let supabase = supabase_cli();
        let mut peers: Vec<Peer> = Peer::ALL.to_vec();
        if let Err(reason) = &supabase {
            eprintln!("bench: {} skipped: {reason}", Peer::Supabase.name());
            peers.retain(|p| *p != Peer::Supabase);
        }
        let proxy = Proxy::start(server.port())?;
        eprintln!(
            "bench: peers at N = {:?}, {} rounds, PostgreSQL {version} at {} through a \
             round-trip proxy on 127.0.0.1:{}",
            self.migrations,
            self.rounds,
            redact(&admin_url),
            proxy.port(),
        );
        let mut bench = Bench {
            server: &server,
            proxy,
            psql,
            supabase: supabase.as_ref().ok().cloned(),
            layout: Layout {
                root: state_dir().join("bench").join("peers"),
            },
        };

        let mut results = Vec::new();
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        for &n in &self.migrations {
            let workload = Workload::generate(n as usize);
            bench.layout.write(&workload)?;
            let mut size = SizeResults {
                n: n as usize,
                series: Vec::new(),
            };
            for round in 0..self.rounds {
                let mut order = peers.clone();
                let len = order.len();
                order.rotate_left(round as usize % len);
                let mut dbs = Databases::new(&test_server);
                let result = tokio::select! {
                    r = bench.round(&workload, n, round, &order, &mut dbs, &mut size) => r,
                    _ = &mut interrupted => Err(anyhow!("interrupted")),
                };
                let dropped = dbs.drop_all().await;
                result
                    .with_context(|| format!("N = {n}, round {} of {}", round + 1, self.rounds))?;
                dropped?;
                eprintln!(
                    "N = {n}, round {}/{}: {}",
                    round + 1,
                    self.rounds,
                    progress(&size, &peers)
                );
            }
            results.push(size);
        }

        if self.json {
            let doc = json!({
                "rounds": self.rounds,
                "optimised": !cfg!(debug_assertions),
                "server_version": version,
                "skipped": supabase.as_ref().err().map(|reason| json!({ Peer::Supabase.slug(): reason })),
                "sizes": results.iter().map(|size| to_json(size, &peers)).collect::<Vec<_>>(),
            });
            let text = serde_json::to_string_pretty(&doc).context("writing the JSON report")?;
            println!("{text}");
            return Ok(());
        }
        for size in &results {
            print!("{}", table(size, &peers, self.rounds));
            println!();
        }
        print!("{}", notes());
        if let Err(reason) = &supabase {
            println!("{}: skipped ({reason}).", Peer::Supabase.name());
        }
        println!();
        println!("For a closing note:");
        println!("{}", summary(&results, &peers, self.rounds, &version));
        Ok(())
    }
}

impl Bench<'_> {
    async fn round(
        &mut self,
        workload: &Workload,
        n: u32,
        round: u32,
        order: &[Peer],
        dbs: &mut Databases<'_>,
        size: &mut SizeResults,
    ) -> Result<()> {
        let pid = std::process::id();
        for &peer in order {
            let db = dbs
                .create(&format!("bench_{pid}_peers_{n}_{round}_{}", peer.slug()))
                .await?;
            if peer.has_apply() {
                let apply = self.measure(peer, Phase::Apply, &db, workload).await?;
                self.check_tables(&db, peer, workload).await?;
                size.push(peer, Phase::Apply, apply);
            }
            if peer.has_noop() {
                let noop = self.measure(peer, Phase::Noop, &db, workload).await?;
                size.push(peer, Phase::Noop, noop);
            }
        }
        Ok(())
    }

    /// Runs `peer` on `db` once, timed, with its CPU and round trips.
    async fn measure(
        &mut self,
        peer: Peer,
        phase: Phase,
        db: &str,
        workload: &Workload,
    ) -> Result<Sample> {
        // Nothing left over from an earlier run.
        self.proxy.settle().await?;
        let own = cpu(UsageWho::RUSAGE_SELF)?;
        let children = cpu(UsageWho::RUSAGE_CHILDREN)?;
        let proxy = self.proxy.cpu();
        let started = Instant::now();
        self.run(peer, phase, db, workload)
            .await
            .with_context(|| format!("{} ({phase:?}) on {db}", peer.name()))?;
        let wall = started.elapsed();
        let client_cpu = if peer.in_process() {
            cpu(UsageWho::RUSAGE_SELF)?
                .saturating_sub(own)
                .saturating_sub(self.proxy.cpu().saturating_sub(proxy))
        } else {
            cpu(UsageWho::RUSAGE_CHILDREN)?.saturating_sub(children)
        };
        let tally: Tally = self.proxy.settle().await?;
        if tally.encrypted > 0 {
            bail!(
                "the server accepted TLS on {} connection(s) of {}, so the proxy cannot count \
                 round trips; bench a server without TLS",
                tally.encrypted,
                peer.name()
            );
        }
        Ok(Sample {
            wall,
            client_cpu,
            server_cpu: (tally.cpu_unknown == 0).then_some(tally.server_cpu),
            round_trips: tally.round_trips,
            connections: tally.connections,
        })
    }

    /// The URL of `db` through the proxy (no password: the test server trusts
    /// loopback).
    fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{db}?sslmode=disable",
            self.proxy.port()
        )
    }

    async fn run(&self, peer: Peer, phase: Phase, db: &str, workload: &Workload) -> Result<()> {
        let n = workload.files.len();
        let url = self.url(db);
        let dir = self.layout.dir(peer);
        match peer {
            Peer::Plover => {
                let source =
                    Source::from_dir(&dir).with_context(|| format!("loading {}", dir.display()))?;
                let migrator = Migrator::new(source)
                    .app(APP)
                    .supabase_history(SupabaseHistory::Off);
                let mut client = plover::connect(&url)
                    .await
                    .with_context(|| format!("connecting to {}", redact(&url)))?;
                let report = migrator.run(&mut client).await?;
                let expected = if phase == Phase::Apply { n } else { 0 };
                ensure!(
                    report.applied.len() == expected,
                    "plover applied {} migrations, not {expected}",
                    report.applied.len()
                );
            }
            Peer::Refinery => {
                let migrations = refinery_core::load_sql_migrations(&dir)
                    .with_context(|| format!("loading {}", dir.display()))?;
                let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .with_context(|| format!("connecting to {}", redact(&url)))?;
                let connection = tokio::spawn(connection);
                let report = refinery_core::Runner::new(&migrations)
                    .run_async(&mut client)
                    .await?;
                drop(client);
                let _ = connection.await;
                let expected = if phase == Phase::Apply { n } else { 0 };
                ensure!(
                    report.applied_migrations().len() == expected,
                    "refinery applied {} migrations, not {expected}",
                    report.applied_migrations().len()
                );
            }
            Peer::Sqlx => {
                use sqlx::Connection as _;
                let migrator = sqlx::migrate::Migrator::new(dir.as_path())
                    .await
                    .with_context(|| format!("loading {}", dir.display()))?;
                let mut conn = sqlx::PgConnection::connect(&url)
                    .await
                    .with_context(|| format!("connecting to {}", redact(&url)))?;
                migrator.run(&mut conn).await?;
                conn.close().await?;
            }
            Peer::Connect => {
                let client = plover::connect(&url)
                    .await
                    .with_context(|| format!("connecting to {}", redact(&url)))?;
                drop(client);
            }
            Peer::Psql => {
                ensure!(phase == Phase::Apply, "psql keeps no history to run again");
                let mut cmd = Command::new(&self.psql);
                cmd.current_dir(&dir)
                    .env("PGHOST", "127.0.0.1")
                    .env("PGPORT", self.proxy.port().to_string())
                    .env("PGUSER", "postgres")
                    .env("PGDATABASE", db)
                    .env("PGSSLMODE", "disable")
                    .env_remove("PGPASSWORD")
                    .args(["-X", "-q", "-1", "-v", "ON_ERROR_STOP=1"]);
                for (name, _) in &workload.files {
                    cmd.arg("-f").arg(name);
                }
                output(cmd, "psql")?;
            }
            Peer::Supabase => {
                let cli = self
                    .supabase
                    .as_ref()
                    .ok_or_else(|| anyhow!("the Supabase CLI is missing"))?;
                let workdir = self.layout.supabase_workdir();
                let mut cmd = Command::new(cli);
                cmd.args(["db", "push", "--include-all", "--yes", "--db-url"])
                    .arg(&url)
                    .arg("--workdir")
                    .arg(&workdir)
                    .current_dir(&workdir);
                supabase_env(&mut cmd);
                let out = output(cmd, "supabase db push")?;
                if phase == Phase::Noop {
                    ensure!(
                        out.contains("up to date"),
                        "supabase db push on the up-to-date database did not say so: {out}"
                    );
                }
            }
        }
        Ok(())
    }

    /// Checks that `db` holds every table the workload creates (directly, not through
    /// the proxy).
    async fn check_tables(&self, db: &str, peer: Peer, workload: &Workload) -> Result<()> {
        let url = self.server.url(db);
        let client = plover::connect(&url)
            .await
            .with_context(|| format!("connecting to {}", redact(&url)))?;
        let tables: i64 = client
            .query_one(COUNT_TABLES, &[])
            .await
            .with_context(|| format!("counting the tables {} created in {db}", peer.name()))?
            .get(0);
        ensure!(
            tables == workload.tables,
            "{} created {tables} of {} tables in {db}",
            peer.name(),
            workload.tables
        );
        Ok(())
    }
}

/// Runs `cmd` to its end (stdin closed) and returns its stdout and stderr together,
/// or an error with them when it failed.
fn output(mut cmd: Command, what: &str) -> Result<String> {
    cmd.stdin(Stdio::null());
    let out =
        tokio::task::block_in_place(|| cmd.output()).with_context(|| format!("running {what}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success(),
        "{what} failed ({}): {text}",
        out.status
    );
    Ok(text)
}

/// No telemetry, and none of the caller's database settings, for the Supabase CLI.
fn supabase_env(cmd: &mut Command) {
    cmd.env("DO_NOT_TRACK", "1")
        .env("SUPABASE_TELEMETRY_DISABLED", "1");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.contains("DATABASE_URL")
            || (k.starts_with("SUPABASE_") && k != "SUPABASE_TELEMETRY_DISABLED")
            || k.starts_with("PG")
        {
            cmd.env_remove(&*k);
        }
    }
}

/// The Supabase CLI: PLOVER_SUPABASE_CLI, or where `.ci/supabase-cli-up
/// /tmp/plover-supabase-cli` installs it; the reason it is skipped otherwise.
fn supabase_cli() -> Result<PathBuf, String> {
    let path = std::env::var_os("PLOVER_SUPABASE_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SUPABASE_CLI_DEFAULT));
    if !path.is_file() {
        return Err(format!(
            "{} is not there; run `.ci/supabase-cli-up /tmp/plover-supabase-cli` (npm installs \
             supabase@{SUPABASE_CLI_VERSION}) or set PLOVER_SUPABASE_CLI",
            path.display()
        ));
    }
    let mut cmd = Command::new(&path);
    cmd.arg("--version");
    supabase_env(&mut cmd);
    match output(cmd, "supabase --version") {
        Ok(v) if v.trim() == SUPABASE_CLI_VERSION => Ok(path),
        Ok(v) => Err(format!(
            "{} is version {}, not {SUPABASE_CLI_VERSION}; run .ci/supabase-cli-up DIR",
            path.display(),
            v.trim()
        )),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// The CPU time `who` has used so far (user + system).
fn cpu(who: UsageWho) -> Result<Duration> {
    let usage = getrusage(who).context("getrusage")?;
    let d = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    Ok(d(usage.user_time()) + d(usage.system_time()))
}

/// Medians of a series.
struct Medians {
    wall: Duration,
    min: Duration,
    client_cpu: Duration,
    server_cpu: Option<Duration>,
    round_trips: u64,
    connections: u64,
}

impl Medians {
    fn of(s: &[Sample]) -> Medians {
        let pick = |f: fn(&Sample) -> Duration| median(&s.iter().map(f).collect::<Vec<_>>());
        let server: Option<Vec<Duration>> = s.iter().map(|x| x.server_cpu).collect();
        let mut rt: Vec<u64> = s.iter().map(|x| x.round_trips).collect();
        rt.sort_unstable();
        let mut conns: Vec<u64> = s.iter().map(|x| x.connections).collect();
        conns.sort_unstable();
        Medians {
            wall: pick(|x| x.wall),
            min: s.iter().map(|x| x.wall).min().unwrap_or_default(),
            client_cpu: pick(|x| x.client_cpu),
            server_cpu: server.map(|v| median(&v)),
            round_trips: rt.get(rt.len() / 2).copied().unwrap_or(0),
            connections: conns.get(conns.len() / 2).copied().unwrap_or(0),
        }
    }
}

fn ratio(a: Duration, b: Duration) -> String {
    if b.is_zero() {
        return "-".into();
    }
    format!("{:.2}", a.as_secs_f64() / b.as_secs_f64())
}

/// One size's series as JSON: medians, minimums, every sample, and plover's ratios.
fn to_json(size: &SizeResults, peers: &[Peer]) -> serde_json::Value {
    let mut series = Vec::new();
    for phase in [Phase::Apply, Phase::Noop] {
        let base = size.get(Peer::Plover, phase).map(Medians::of);
        for &peer in peers {
            let Some(s) = size.get(peer, phase) else {
                continue;
            };
            let m = Medians::of(s);
            let over = |b: Option<Duration>, x: Option<Duration>| match (b, x) {
                (Some(b), Some(x)) if !x.is_zero() => Some(b.as_secs_f64() / x.as_secs_f64()),
                _ => None,
            };
            series.push(json!({
                "tool": peer.slug(),
                "phase": match phase { Phase::Apply => "apply", Phase::Noop => "noop" },
                "median_ms": ms(m.wall),
                "min_ms": ms(m.min),
                "round_trips": m.round_trips,
                "connections": m.connections,
                "client_cpu_ms": ms(m.client_cpu),
                "server_cpu_ms": m.server_cpu.map(ms),
                "plover_over_tool": {
                    "time": over(base.as_ref().map(|b| b.wall), Some(m.wall)),
                    "client_cpu": over(base.as_ref().map(|b| b.client_cpu), Some(m.client_cpu)),
                    "server_cpu": over(base.as_ref().and_then(|b| b.server_cpu), m.server_cpu),
                },
                "samples_ms": s.iter().map(|x| ms(x.wall)).collect::<Vec<_>>(),
            }));
        }
    }
    json!({ "migrations": size.n, "series": series })
}

fn progress(size: &SizeResults, peers: &[Peer]) -> String {
    let mut parts = Vec::new();
    for &peer in peers {
        let last = |phase| {
            size.get(peer, phase)
                .and_then(|s| s.last())
                .map(|s| fmt_ms(s.wall))
        };
        match (last(Phase::Apply), last(Phase::Noop)) {
            (Some(a), Some(z)) => parts.push(format!("{} {a}/{z} ms", peer.slug())),
            (Some(a), None) => parts.push(format!("{} {a} ms", peer.slug())),
            _ => {}
        }
    }
    format!("apply/no-op: {}", parts.join(", "))
}

fn table(size: &SizeResults, peers: &[Peer], rounds: u32) -> String {
    let mut out = String::new();
    let n = size.n;
    for phase in [Phase::Apply, Phase::Noop] {
        let what = match phase {
            Phase::Apply => format!("apply {n} migrations to a fresh database"),
            Phase::Noop => format!("no-op run on the up-to-date database ({n} migrations)"),
        };
        let _ = writeln!(out, "N = {n}, {what}, medians of {rounds} rounds:");
        let _ = writeln!(
            out,
            "  {:<17} {:>10} {:>10} {:>8} {:>8} {:>7} {:>6} {:>11} {:>8} {:>11} {:>8}",
            "tool",
            "wall",
            "min",
            "plover/x",
            "trips",
            "/migr",
            "conns",
            "client CPU",
            "plover/x",
            "server CPU",
            "plover/x"
        );
        let base = size.get(Peer::Plover, phase).map(Medians::of);
        for &peer in peers {
            let Some(s) = size.get(peer, phase) else {
                if phase == Phase::Noop {
                    let _ = writeln!(
                        out,
                        "  {:<17} (no history: nothing to run again)",
                        peer.name()
                    );
                }
                continue;
            };
            let m = Medians::of(s);
            let per_migration = if peer == Peer::Connect {
                "-".to_owned()
            } else {
                format!("{:.2}", m.round_trips as f64 / n as f64)
            };
            let vs = |f: fn(&Medians) -> Option<Duration>| match (&base, f(&m)) {
                (Some(b), Some(x)) => f(b).map_or("-".into(), |b| ratio(b, x)),
                _ => "-".into(),
            };
            let _ = writeln!(
                out,
                "  {:<17} {:>7} ms {:>7} ms {:>8} {:>8} {:>7} {:>6} {:>8} ms {:>8} {:>8} ms {:>8}",
                peer.name(),
                fmt_ms(m.wall),
                fmt_ms(m.min),
                vs(|m| Some(m.wall)),
                m.round_trips,
                per_migration,
                m.connections,
                fmt_ms(m.client_cpu),
                vs(|m| Some(m.client_cpu)),
                m.server_cpu.map_or("-".into(), fmt_ms),
                vs(|m| m.server_cpu),
            );
        }
    }
    out
}

fn notes() -> String {
    "wall: from loading the files to the tool's end, connecting included (a whole process \
     for psql and the Supabase CLI); every tool connects through the bench's loopback proxy, \
     which adds the same hop to each round trip.\n\
     plover/x: plover's median over this tool's (below 1: plover took less).\n\
     connect only: connecting (plover::connect) and closing, the floor under every no-op run.\n\
     trips: the server's ReadyForQuery messages (one per simple query or Sync), connection \
     start-up included; /migr divides by N; conns: connections opened.\n\
     client CPU: getrusage of the bench process less the proxy thread (plover, refinery, sqlx) \
     or of the waited-for child (psql, the Supabase CLI, which starts processes of its own); \
     server CPU: the backends serving the tool's connections (/proc schedstat), not the \
     server's background processes.\n\
     plover runs with its history only (SupabaseHistory::Off); refinery with its defaults \
     (int8-versions, `V<version>__<name>.sql`); sqlx's Migrator::new on a directory; the \
     Supabase CLI as `db push --include-all --yes --db-url`; psql as `-X -q -1 -v \
     ON_ERROR_STOP=1 -f <each file>`. The test server runs with fsync off.\n"
        .to_owned()
}

fn summary(results: &[SizeResults], peers: &[Peer], rounds: u32, version: &str) -> String {
    let build = if cfg!(debug_assertions) {
        "dev build"
    } else {
        "release build"
    };
    let mut parts = Vec::new();
    for size in results {
        for phase in [Phase::Apply, Phase::Noop] {
            let Some(base) = size.get(Peer::Plover, phase).map(Medians::of) else {
                continue;
            };
            let what = match phase {
                Phase::Apply => "apply",
                Phase::Noop => "no-op",
            };
            let mut line = format!(
                "{what} at N = {}: plover {} ms, {} round trips ({:.2}/migration)",
                size.n,
                fmt_ms(base.wall),
                base.round_trips,
                base.round_trips as f64 / size.n as f64
            );
            if let (Phase::Noop, Some(connect)) = (phase, size.get(Peer::Connect, phase)) {
                let connect = Medians::of(connect).wall;
                let _ = write!(
                    line,
                    " ({} ms beyond a {} ms connect)",
                    fmt_ms(base.wall.saturating_sub(connect)),
                    fmt_ms(connect)
                );
            }
            for &peer in peers
                .iter()
                .filter(|p| !matches!(p, Peer::Plover | Peer::Connect))
            {
                let Some(s) = size.get(peer, phase) else {
                    continue;
                };
                let m = Medians::of(s);
                let server = match (base.server_cpu, m.server_cpu) {
                    (Some(b), Some(x)) => ratio(b, x),
                    _ => "-".into(),
                };
                let _ = write!(
                    line,
                    "; {} {} ms, {} round trips (plover/{}: time {}, client CPU {}, server \
                     CPU {server})",
                    peer.name(),
                    fmt_ms(m.wall),
                    m.round_trips,
                    peer.slug(),
                    ratio(base.wall, m.wall),
                    ratio(base.client_cpu, m.client_cpu),
                );
            }
            parts.push(line);
        }
    }
    format!(
        "Peers (medians of {rounds} rounds, {build}, PostgreSQL {version}, fsync off, each tool \
         on a fresh database per round, through a counting loopback proxy): {}.",
        parts.join(". ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tool_gets_its_own_file_names() {
        let name = "20250101000000_create_t_1.sql";
        assert_eq!(file_name(Peer::Plover, name).unwrap(), name);
        assert_eq!(file_name(Peer::Supabase, name).unwrap(), name);
        assert_eq!(file_name(Peer::Sqlx, name).unwrap(), name);
        assert_eq!(
            file_name(Peer::Refinery, name).unwrap(),
            "V20250101000000__create_t_1.sql"
        );
        assert!(file_name(Peer::Refinery, "1_a.sql").is_err());
        assert!(file_name(Peer::Refinery, "20250101000000-a.sql").is_err());
    }

    /// refinery parses the names it is given as the versions plover and sqlx see.
    #[test]
    fn refinery_reads_the_versions_back() {
        let w = Workload::generate(3);
        for (name, _) in &w.files {
            let refinery = file_name(Peer::Refinery, name).unwrap();
            let stem = refinery.trim_end_matches(".sql");
            let (_, version, rest) = refinery_core::parse_migration_name(stem).unwrap();
            assert_eq!(version.to_string(), name[..14]);
            assert_eq!(format!("{}_{rest}.sql", &name[..14]), *name);
        }
    }
}
