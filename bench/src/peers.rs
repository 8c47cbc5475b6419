//! `cargo xtask bench peers`: plover against the tools people use instead (`psql -1
//! -f`, refinery, sqlx's migrator and the Supabase CLI's `db push`) on the same
//! generated migrations, side by side in one run, reported as ratios to plover.
//!
//! Each size N gets its migration files written once, in each tool's own naming; then
//! every round gives each tool a fresh database (the tools' order rotated per round),
//! times the tool applying everything, and times it again on the up-to-date database
//! (the no-op run; psql has none), then drops the database. Every tool connects through
//! the counting proxy ([`crate::wire`]), which counts network turns and sync points and
//! reads the backends' CPU; the client CPU comes from getrusage (the bench process for
//! in-process tools, less the proxy thread; the waited-for children for psql and the
//! CLI). Besides the tables, it prints the ratios the project's targets are stated in
//! (at [`TARGET_N`] migrations) and how flat plover's no-op run stays across the sizes.
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
use plover::testing::{NativeServer, state_dir};
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

/// The tools measured, plover first (the ratios' numerator).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Plover,
    /// plover's no-op run with the set embedded by `embed_migrations!` (checked and
    /// digested at build time), on plover's up-to-date database right after plover's
    /// own no-op run; only where the bench was built with the embedded sets
    /// (PLOVER_BENCH_BOOT, `boot::embedded`).
    PloverEmbedded,
    Psql,
    Refinery,
    Sqlx,
    Supabase,
    /// Not a tool: connecting and closing, the floor under every no-op run (timed on
    /// a database connected to once before, as every no-op run's is by its apply).
    Connect,
}

impl Peer {
    const ALL: [Peer; 7] = [
        Peer::Plover,
        Peer::PloverEmbedded,
        Peer::Psql,
        Peer::Refinery,
        Peer::Sqlx,
        Peer::Supabase,
        Peer::Connect,
    ];

    fn name(self) -> &'static str {
        match self {
            Peer::Plover => "plover",
            Peer::PloverEmbedded => "plover, embedded",
            Peer::Psql => "psql -1 -f",
            Peer::Refinery => "refinery 0.10",
            Peer::Sqlx => "sqlx 0.9",
            Peer::Supabase => "supabase db push",
            Peer::Connect => "connect only",
        }
    }

    /// The tool `--peers` names `slug` (one of the peers: plover and "connect only"
    /// always run).
    pub(crate) fn from_slug(slug: &str) -> Option<Peer> {
        Peer::ALL
            .into_iter()
            .filter(|p| matches!(p, Peer::Psql | Peer::Refinery | Peer::Sqlx | Peer::Supabase))
            .find(|p| p.slug() == slug)
    }

    fn slug(self) -> &'static str {
        match self {
            Peer::Plover => "plover",
            Peer::PloverEmbedded => "plover-embedded",
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
            Peer::Plover | Peer::PloverEmbedded | Peer::Refinery | Peer::Sqlx | Peer::Connect
        )
    }

    /// Applies migrations (plover, embedded, runs on plover's database).
    fn has_apply(self) -> bool {
        !matches!(self, Peer::Connect | Peer::PloverEmbedded)
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
        Peer::Plover
        | Peer::PloverEmbedded
        | Peer::Psql
        | Peer::Sqlx
        | Peer::Supabase
        | Peer::Connect => supabase_name.to_owned(),
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
            Peer::Plover | Peer::PloverEmbedded | Peer::Psql | Peer::Supabase | Peer::Connect => {
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
    /// Network turns: the times the tool waited for the server.
    turns: u64,
    /// ReadyForQuery messages.
    sync_points: u64,
    connections: u64,
}

/// A tool cannot do the job at this size (a limit of the tool, not a failure of the
/// bench): reported in its row, and it is not run again at this size.
#[derive(Debug)]
struct Unable(String);

impl std::fmt::Display for Unable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unable {}

/// The samples of one size.
struct SizeResults {
    n: usize,
    /// The tools run at this size, plover first, "connect only" last.
    peers: Vec<Peer>,
    /// The tools that could not do the job at this size, and why.
    unable: Vec<(Peer, String)>,
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

    fn unable(&self, peer: Peer) -> Option<&str> {
        self.unable
            .iter()
            .find(|(p, _)| *p == peer)
            .map(|(_, why)| why.as_str())
    }

    fn medians(&self, peer: Peer, phase: Phase) -> Option<Medians> {
        self.get(peer, phase).map(Medians::of)
    }

    /// `peer`'s no-op median less the connect-only median, in ms (negative when the
    /// noise is larger than the difference).
    fn beyond_connect(&self, peer: Peer) -> Option<f64> {
        let noop = self.medians(peer, Phase::Noop)?;
        let connect = self.medians(Peer::Connect, Phase::Noop)?;
        Some(ms(noop.wall) - ms(connect.wall))
    }

    /// The plover the targets judge in `phase`: the no-op of the embedded set where
    /// it ran (what an app boots with), else plover with its set built at run time.
    fn judged(&self, phase: Phase) -> Peer {
        if phase == Phase::Noop && self.get(Peer::PloverEmbedded, phase).is_some() {
            Peer::PloverEmbedded
        } else {
            Peer::Plover
        }
    }

    /// The judged plover's median over `peer`'s, of the whole runs.
    fn plover_over(&self, peer: Peer, phase: Phase) -> Option<f64> {
        let plover = self.medians(self.judged(phase), phase)?;
        let other = self.medians(peer, phase)?;
        over(plover.wall, other.wall)
    }

    /// The judged plover's no-op time beyond connecting over `peer`'s.
    fn plover_over_beyond_connect(&self, peer: Peer) -> Option<f64> {
        let (plover, other) = (
            self.beyond_connect(self.judged(Phase::Noop))?,
            self.beyond_connect(peer)?,
        );
        (other > 0.0).then(|| plover / other)
    }
}

/// The build the bench runs in, which is plover's.
fn build() -> &'static str {
    if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
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
                 `cargo xtask bench peers` builds the bench in release for figures worth quoting"
            );
        }
        let (server, test_server) = crate::apply::shared_servers().await?;
        let admin_url = server.url("postgres");
        let (_admin, version) = admin_and_version(&admin_url).await?;
        let psql = match server.bin_dir().join("psql") {
            p if p.is_file() => p,
            _ => PathBuf::from("psql"),
        };
        let mut chosen = self.peers.clone();
        let supabase = supabase_cli();
        let supabase_skipped = match &supabase {
            Err(reason) if chosen.iter().any(|c| c.peer == Peer::Supabase) => {
                eprintln!("bench: {} skipped: {reason}", Peer::Supabase.name());
                chosen.retain(|c| c.peer != Peer::Supabase);
                Some(reason.clone())
            }
            _ => None,
        };
        // plover and "connect only" at every size, plover's embedded set where the
        // bench embeds one of that size; the others where --peers says.
        let peers_at = |n: u32| -> Vec<Peer> {
            Peer::ALL
                .into_iter()
                .filter(|&p| {
                    matches!(p, Peer::Plover | Peer::Connect)
                        || (p == Peer::PloverEmbedded
                            && crate::boot::embedded(n as usize).is_some())
                        || chosen
                            .iter()
                            .any(|c| c.peer == p && c.up_to.is_none_or(|max| n <= max))
                })
                .collect()
        };
        let proxy = Proxy::start(server.port())?;
        eprintln!(
            "bench: peers at N = {:?}, {} rounds, {} build, PostgreSQL {version} at {} through \
             a counting proxy on 127.0.0.1:{}",
            self.migrations,
            self.rounds,
            build(),
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
            if let Some(set) = crate::boot::embedded(n as usize) {
                same_set(&set.load()?, &workload.load()?)
                    .with_context(|| format!("the embedded set of {n} is not the workload"))?;
            }
            let peers = peers_at(n);
            let mut size = SizeResults {
                n: n as usize,
                peers: peers.clone(),
                unable: Vec::new(),
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
                    progress(&size)
                );
            }
            results.push(size);
        }

        if self.json {
            let doc = json!({
                "rounds": self.rounds,
                "build": build(),
                "optimised": !cfg!(debug_assertions),
                "server_version": version,
                "skipped": supabase_skipped.map(|reason| json!({ Peer::Supabase.slug(): reason })),
                "targets": targets_json(),
                "sizes": results.iter().map(to_json).collect::<Vec<_>>(),
                "noop_flatness": flatness(&results).map(|f| json!({
                    "tool": f.peer.slug(),
                    "from_migrations": f.from.0,
                    "from_beyond_connect_ms": f.from.1,
                    "to_migrations": f.to.0,
                    "to_beyond_connect_ms": f.to.1,
                    "ratio": f.ratio(),
                })),
            });
            let text = serde_json::to_string_pretty(&doc).context("writing the JSON report")?;
            println!("{text}");
            return Ok(());
        }
        println!(
            "bench peers: {} build{}, PostgreSQL {version} (fsync off), medians of {} rounds",
            build(),
            if cfg!(debug_assertions) {
                " (plover not optimised: not the figures to quote)"
            } else {
                ""
            },
            self.rounds
        );
        println!();
        for size in &results {
            print!("{}", table(size, self.rounds));
            println!();
        }
        print!("{}", target_lines(&results));
        println!();
        print!("{}", notes());
        if let Some(reason) = &supabase_skipped {
            println!("{}: skipped ({reason}).", Peer::Supabase.name());
        }
        println!();
        println!("For a closing note:");
        println!("{}", summary(&results, self.rounds, &version));
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
            if size.unable(peer).is_some() || peer == Peer::PloverEmbedded {
                continue;
            }
            let db = dbs
                .create(&format!("bench_{pid}_peers_{n}_{round}_{}", peer.slug()))
                .await?;
            if peer.has_apply() {
                let apply = match self.measure(peer, Phase::Apply, &db, workload).await {
                    Err(e) if e.downcast_ref::<Unable>().is_some() => {
                        let reason = format!("{:#}", e.root_cause());
                        eprintln!("bench: {} at N = {n}: {reason}", peer.name());
                        size.unable.push((peer, reason));
                        dbs.drop_all().await?;
                        continue;
                    }
                    apply => apply?,
                };
                self.check_tables(&db, peer, workload).await?;
                size.push(peer, Phase::Apply, apply);
            }
            if peer == Peer::Connect {
                // The first connection to a new database builds its relation cache
                // file; every other tool's no-op run finds it built by its apply.
                self.run(peer, Phase::Noop, &db, workload).await?;
            }
            if peer.has_noop() {
                let noop = self.measure(peer, Phase::Noop, &db, workload).await?;
                size.push(peer, Phase::Noop, noop);
            }
            // The same boot from the embedded set, on the same up-to-date database.
            if peer == Peer::Plover && size.peers.contains(&Peer::PloverEmbedded) {
                let embedded = Peer::PloverEmbedded;
                let noop = self.measure(embedded, Phase::Noop, &db, workload).await?;
                size.push(embedded, Phase::Noop, noop);
            }
            // At N = 10000 a database holds some 40,000 relations: one at a time.
            dbs.drop_all().await?;
        }
        Ok(())
    }

    /// Runs `peer` on `db` once, timed, with its CPU, turns and sync points.
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
                 turns; bench a server without TLS",
                tally.encrypted,
                peer.name()
            );
        }
        Ok(Sample {
            wall,
            client_cpu,
            server_cpu: (tally.cpu_unknown == 0).then_some(tally.server_cpu),
            sync_points: tally.sync_points,
            turns: tally.turns,
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
            // The in-process tools build their sets from the files in memory, as their
            // embedding macros hand them over at an app's boot.
            Peer::PloverEmbedded => {
                ensure!(
                    phase == Phase::Noop,
                    "plover, embedded only runs on plover's database"
                );
                let set = crate::boot::embedded(n)
                    .ok_or_else(|| anyhow!("this build of the bench embeds no set of {n}"))?;
                let source = set.load().context("loading the embedded set")?;
                let migrator = Migrator::new(source)
                    .app(APP)
                    .supabase_history(SupabaseHistory::Off);
                let mut client = plover::connect(&url)
                    .await
                    .with_context(|| format!("connecting to {}", redact(&url)))?;
                let report = migrator.run(&mut client).await?;
                ensure!(
                    report.applied.is_empty() && report.already_applied == n,
                    "plover, embedded applied {} and found {} of {n} applied",
                    report.applied.len(),
                    report.already_applied
                );
            }
            Peer::Plover => {
                let files = workload
                    .files
                    .iter()
                    .map(|(name, sql)| (format!("supabase/migrations/{name}"), sql.as_bytes()));
                let source = Source::from_files("supabase/migrations", files)
                    .context("loading plover's migrations")?;
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
                let migrations = workload
                    .files
                    .iter()
                    .map(|(name, sql)| {
                        let name = file_name(Peer::Refinery, name)?;
                        let stem = name.trim_end_matches(".sql");
                        refinery_core::Migration::unapplied(stem, sql)
                            .with_context(|| format!("loading {name} for refinery"))
                    })
                    .collect::<Result<Vec<_>>>()?;
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
                use sqlx::SqlSafeStr as _;
                use sqlx::migrate::{Migration, MigrationType};
                let migrations = workload
                    .files
                    .iter()
                    .map(|(name, sql)| {
                        let (version, rest) = name
                            .split_once('_')
                            .ok_or_else(|| anyhow!("{name} has no version"))?;
                        let description = rest.trim_end_matches(".sql").replace('_', " ");
                        Ok(Migration::new(
                            version.parse()?,
                            description.into(),
                            MigrationType::Simple,
                            sqlx::AssertSqlSafe(sql.clone()).into_sql_str(),
                            false,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let migrator = sqlx::migrate::Migrator::with_migrations(migrations);
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
                match output(cmd, "psql") {
                    Err(e) if format!("{e:#}").contains("out of shared memory") => {
                        return Err(Unable(format!(
                            "could not apply {n} migrations in one transaction: the locks it \
                             holds outgrow the server's lock table (out of shared memory; \
                             max_locks_per_transaction)"
                        ))
                        .into());
                    }
                    result => {
                        result?;
                    }
                }
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

/// Whether `embedded` holds exactly `workload`'s migrations (versions, names,
/// checksums): the embedded no-op is then the boot of the set the others applied.
fn same_set(embedded: &Source, workload: &Source) -> Result<()> {
    let key = |s: &Source| -> Vec<(i64, String, plover::Checksum)> {
        s.migrations()
            .iter()
            .map(|m| (m.version(), m.name().to_owned(), m.checksum()))
            .collect()
    };
    let (e, w) = (key(embedded), key(workload));
    ensure!(
        e == w,
        "{} migrations embedded, {} in the workload, first difference at {:?}; rebuild the \
         bench (`PLOVER_BENCH_BOOT=1 cargo xtask bench peers`)",
        e.len(),
        w.len(),
        e.iter().zip(&w).position(|(a, b)| a != b)
    );
    Ok(())
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
    turns: u64,
    sync_points: u64,
    connections: u64,
}

impl Medians {
    fn of(s: &[Sample]) -> Medians {
        let pick = |f: fn(&Sample) -> Duration| median(&s.iter().map(f).collect::<Vec<_>>());
        let count = |f: fn(&Sample) -> u64| {
            let mut v: Vec<u64> = s.iter().map(f).collect();
            v.sort_unstable();
            v.get(v.len() / 2).copied().unwrap_or(0)
        };
        let server: Option<Vec<Duration>> = s.iter().map(|x| x.server_cpu).collect();
        Medians {
            wall: pick(|x| x.wall),
            min: s.iter().map(|x| x.wall).min().unwrap_or_default(),
            client_cpu: pick(|x| x.client_cpu),
            server_cpu: server.map(|v| median(&v)),
            turns: count(|x| x.turns),
            sync_points: count(|x| x.sync_points),
            connections: count(|x| x.connections),
        }
    }
}

/// `a / b`, when `b` is not zero.
fn over(a: Duration, b: Duration) -> Option<f64> {
    (!b.is_zero()).then(|| a.as_secs_f64() / b.as_secs_f64())
}

fn fmt_over(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}"))
}

fn per(count: u64, n: usize) -> String {
    format!("{:.2}", count as f64 / n as f64)
}

/// The targets the project holds plover to, each a ratio measured side by side with
/// the tool in one run, at [`TARGET_N`] migrations.
const TARGET_N: usize = 1000;
/// Applying: plover's time over `psql -1 -f`'s, at most.
const APPLY_OVER_PSQL: f64 = 0.9;
/// Applying: plover's time over refinery's, at most.
const APPLY_OVER_REFINERY: f64 = 0.8;
/// The no-op run: plover's time beyond connecting, at most (ms).
const NOOP_BEYOND_CONNECT_MS: f64 = 1.0;
/// The no-op run: plover's time over refinery's, at most.
const NOOP_OVER_REFINERY: f64 = 0.5;

fn targets_json() -> serde_json::Value {
    json!({
        "migrations": TARGET_N,
        "apply_plover_over_psql_at_most": APPLY_OVER_PSQL,
        "apply_plover_over_refinery_at_most": APPLY_OVER_REFINERY,
        "noop_beyond_connect_ms_at_most": NOOP_BEYOND_CONNECT_MS,
        "noop_plover_over_refinery_at_most": NOOP_OVER_REFINERY,
        "noop_flat_across_sizes": true,
    })
}

/// plover's no-op time beyond connecting at the smallest and the largest size.
struct Flatness {
    /// plover's embedded set or its set built at run time.
    peer: Peer,
    /// `(N, ms)`.
    from: (usize, f64),
    to: (usize, f64),
}

impl Flatness {
    fn ratio(&self) -> Option<f64> {
        (self.from.1 > 0.0).then(|| self.to.1 / self.from.1)
    }
}

fn flatness(results: &[SizeResults]) -> Option<Flatness> {
    // The embedded set where every size has one, else the set built at run time.
    let peer = if results
        .iter()
        .all(|s| s.judged(Phase::Noop) == Peer::PloverEmbedded)
    {
        Peer::PloverEmbedded
    } else {
        Peer::Plover
    };
    let with = |s: &SizeResults| s.beyond_connect(peer).map(|ms| (s.n, ms));
    let from = results.iter().filter_map(with).min_by_key(|(n, _)| *n)?;
    let to = results.iter().filter_map(with).max_by_key(|(n, _)| *n)?;
    (to.0 > from.0).then_some(Flatness { peer, from, to })
}

/// One size's series as JSON: medians, minimums, every sample, plover's ratios, and
/// the ratios the targets are stated in.
fn to_json(size: &SizeResults) -> serde_json::Value {
    let mut series = Vec::new();
    for phase in [Phase::Apply, Phase::Noop] {
        let base = size.medians(Peer::Plover, phase);
        for &peer in &size.peers {
            let Some(s) = size.get(peer, phase) else {
                continue;
            };
            let m = Medians::of(s);
            let vs = |f: fn(&Medians) -> Option<Duration>| match (base.as_ref().and_then(f), f(&m))
            {
                (Some(b), Some(x)) => over(b, x),
                _ => None,
            };
            series.push(json!({
                "tool": peer.slug(),
                "phase": match phase { Phase::Apply => "apply", Phase::Noop => "noop" },
                "median_ms": ms(m.wall),
                "min_ms": ms(m.min),
                "beyond_connect_ms": (phase == Phase::Noop).then(|| size.beyond_connect(peer)).flatten(),
                "turns": m.turns,
                "sync_points": m.sync_points,
                "connections": m.connections,
                "client_cpu_ms": ms(m.client_cpu),
                "server_cpu_ms": m.server_cpu.map(ms),
                "plover_over_tool": {
                    "time": vs(|m| Some(m.wall)),
                    "client_cpu": vs(|m| Some(m.client_cpu)),
                    "server_cpu": vs(|m| m.server_cpu),
                },
                "samples_ms": s.iter().map(|x| ms(x.wall)).collect::<Vec<_>>(),
            }));
        }
    }
    json!({
        "migrations": size.n,
        "tools": size.peers.iter().map(|p| p.slug()).collect::<Vec<_>>(),
        "unable": size.unable.iter().map(|(p, why)| (p.slug().to_owned(), json!(why))).collect::<serde_json::Map<_, _>>(),
        "series": series,
        "targets": {
            "apply_plover_over_psql": size.plover_over(Peer::Psql, Phase::Apply),
            "apply_plover_over_refinery": size.plover_over(Peer::Refinery, Phase::Apply),
            "noop_judged": size.judged(Phase::Noop).slug(),
            "noop_beyond_connect_ms": size.beyond_connect(size.judged(Phase::Noop)),
            "noop_plover_over_refinery": size.plover_over(Peer::Refinery, Phase::Noop),
            "noop_beyond_connect_plover_over_refinery": size.plover_over_beyond_connect(Peer::Refinery),
        },
    })
}

fn progress(size: &SizeResults) -> String {
    let mut parts = Vec::new();
    for &peer in &size.peers {
        let last = |phase| {
            size.get(peer, phase)
                .and_then(|s| s.last())
                .map(|s| fmt_ms(s.wall))
        };
        match (last(Phase::Apply), last(Phase::Noop)) {
            (Some(a), Some(z)) => parts.push(format!("{} {a}/{z} ms", peer.slug())),
            (Some(a), None) => parts.push(format!("{} {a} ms", peer.slug())),
            (None, Some(z)) => parts.push(format!("{} {z} ms", peer.slug())),
            (None, None) => {}
        }
    }
    format!("apply/no-op: {}", parts.join(", "))
}

fn table(size: &SizeResults, rounds: u32) -> String {
    let mut out = String::new();
    let n = size.n;
    for phase in [Phase::Apply, Phase::Noop] {
        let what = match phase {
            Phase::Apply => format!("apply {n} migrations to a fresh database"),
            Phase::Noop => format!("no-op run on the up-to-date database ({n} migrations)"),
        };
        let _ = writeln!(out, "N = {n}, {what}, medians of {rounds} rounds:");
        let _ = write!(
            out,
            "  {:<17} {:>10} {:>10} {:>8} {:>6} {:>6} {:>6} {:>6} {:>5} {:>11} {:>8} {:>11} {:>8}",
            "tool",
            "wall",
            "min",
            "plover/x",
            "turns",
            "/migr",
            "syncs",
            "/migr",
            "conns",
            "client CPU",
            "plover/x",
            "server CPU",
            "plover/x"
        );
        if phase == Phase::Noop {
            let _ = write!(out, " {:>14}", "beyond connect");
        }
        out.push('\n');
        let base = size.medians(Peer::Plover, phase);
        for &peer in &size.peers {
            let Some(s) = size.get(peer, phase) else {
                if let Some(why) = size.unable(peer) {
                    if phase == Phase::Apply {
                        let _ = writeln!(out, "  {:<17} {why}", peer.name());
                    }
                } else if phase == Phase::Noop {
                    let _ = writeln!(
                        out,
                        "  {:<17} (no history: nothing to run again)",
                        peer.name()
                    );
                }
                continue;
            };
            let m = Medians::of(s);
            let per_migration = |count| {
                if peer == Peer::Connect {
                    "-".to_owned()
                } else {
                    per(count, n)
                }
            };
            let vs = |f: fn(&Medians) -> Option<Duration>| match (base.as_ref().and_then(f), f(&m))
            {
                (Some(b), Some(x)) => fmt_over(over(b, x)),
                _ => "-".into(),
            };
            let _ = write!(
                out,
                "  {:<17} {:>7} ms {:>7} ms {:>8} {:>6} {:>6} {:>6} {:>6} {:>5} {:>8} ms {:>8} {:>8} ms {:>8}",
                peer.name(),
                fmt_ms(m.wall),
                fmt_ms(m.min),
                vs(|m| Some(m.wall)),
                m.turns,
                per_migration(m.turns),
                m.sync_points,
                per_migration(m.sync_points),
                m.connections,
                fmt_ms(m.client_cpu),
                vs(|m| Some(m.client_cpu)),
                m.server_cpu.map_or("-".into(), fmt_ms),
                vs(|m| m.server_cpu),
            );
            if phase == Phase::Noop {
                let beyond = match (peer, size.beyond_connect(peer)) {
                    (Peer::Connect, _) | (_, None) => "-".to_owned(),
                    (_, Some(x)) => format!("{x:.2} ms"),
                };
                let _ = write!(out, " {beyond:>14}");
            }
            out.push('\n');
        }
    }
    out
}

/// The figures the targets are stated in, for every size, each judged against its
/// target at [`TARGET_N`], and plover's no-op flatness across the sizes.
fn target_lines(results: &[SizeResults]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Targets (plover/x: plover's median over the tool's; judged at N = {TARGET_N}{}):",
        if cfg!(debug_assertions) {
            ", but this is a dev build: judge on a release one"
        } else {
            ", release build"
        }
    );
    let judge = |size: &SizeResults, peer: Peer, value: Option<f64>, at_most: f64, unit: &str| {
        let n = size.n;
        let Some(v) = value else {
            return match size.unable(peer) {
                Some(_) => format!("- ({} could not, see above)", peer.name()),
                None => "-".into(),
            };
        };
        let shown = format!("{v:.2}{unit}");
        if n != TARGET_N {
            return shown;
        }
        let verdict = if v <= at_most { "met" } else { "missed" };
        format!("{shown} (target <= {at_most}{unit}: {verdict})")
    };
    for size in results {
        let n = size.n;
        let _ = writeln!(
            out,
            "  N = {n}: apply plover/psql {}, plover/refinery {}; no-op {} beyond \
             connect {}, plover/refinery {} (of the times beyond connect: {})",
            judge(
                size,
                Peer::Psql,
                size.plover_over(Peer::Psql, Phase::Apply),
                APPLY_OVER_PSQL,
                ""
            ),
            judge(
                size,
                Peer::Refinery,
                size.plover_over(Peer::Refinery, Phase::Apply),
                APPLY_OVER_REFINERY,
                ""
            ),
            size.judged(Phase::Noop).name(),
            judge(
                size,
                Peer::Plover,
                size.beyond_connect(size.judged(Phase::Noop)),
                NOOP_BEYOND_CONNECT_MS,
                " ms"
            ),
            judge(
                size,
                Peer::Refinery,
                size.plover_over(Peer::Refinery, Phase::Noop),
                NOOP_OVER_REFINERY,
                ""
            ),
            fmt_over(size.plover_over_beyond_connect(Peer::Refinery)),
        );
    }
    match flatness(results) {
        Some(f) => {
            let _ = writeln!(
                out,
                "  no-op flatness: {} {:.2} ms beyond connect at N = {}, {:.2} ms at N = {}: \
                 {} (target: flat, about 1)",
                f.peer.name(),
                f.to.1,
                f.to.0,
                f.from.1,
                f.from.0,
                f.ratio()
                    .map_or("- (nothing beyond connect at the smaller N)".into(), |r| {
                        format!("{r:.2}x")
                    }),
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  no-op flatness: needs two sizes (e.g. --migrations 100,1000,10000)"
            );
        }
    }
    out
}

fn notes() -> String {
    "wall: from building the migration set to the tool's end, connecting included: the \
     in-process tools (plover, refinery, sqlx) build theirs from the files in memory, as \
     their embedding macros hand them over at an app's boot, checksums computed then \
     (sqlx's migrate! computes them at compile time: here sqlx pays its SHA-384 at run \
     time); psql and the Supabase CLI are whole processes reading the files; every tool connects through the bench's loopback proxy, \
     which adds the same hop to each network turn.\n\
     plover/x: plover's median over this tool's (below 1: plover took less).\n\
     plover, embedded: plover's no-op run with the same set embedded by embed_migrations! \
     (checked and digested at build time, as an app ships it), on plover's database right \
     after plover's own no-op run; present when the bench was built with PLOVER_BENCH_BOOT \
     set and N is 100, 1000 or 10000; the no-op targets judge it where present.\n\
     connect only: connecting (plover::connect) and closing, the floor under every no-op run \
     (on a database connected to once before, as the no-op runs' are); \
     beyond connect: the no-op median less connect only's (building the set included).\n\
     turns: network turns, the times the client waited for the server's answer (the startup \
     is one; messages pipelined in one burst are one; a Terminate waits for nothing; for a \
     pipelining tool an upper bound, as a write that reaches the proxy just after an answer \
     it did not wait for counts as a turn); syncs: \
     the server's ReadyForQuery messages (one per simple query or Sync); /migr divides by N; \
     conns: connections opened.\n\
     client CPU: getrusage of the bench process less the proxy thread (plover, refinery, sqlx) \
     or of the waited-for child (psql, the Supabase CLI, which starts processes of its own); \
     server CPU: the backends serving the tool's connections (/proc schedstat), not the \
     server's background processes.\n\
     plover runs with its history only (SupabaseHistory::Off); refinery with its defaults \
     (int8-versions, `V<version>__<name>.sql`, Migration::unapplied); sqlx's \
     Migrator::with_migrations; the \
     Supabase CLI as `db push --include-all --yes --db-url`; psql as `-X -q -1 -v \
     ON_ERROR_STOP=1 -f <each file>`. The test server runs with fsync off.\n"
        .to_owned()
}

fn summary(results: &[SizeResults], rounds: u32, version: &str) -> String {
    let mut parts = Vec::new();
    for size in results {
        for phase in [Phase::Apply, Phase::Noop] {
            let Some(base) = size.medians(Peer::Plover, phase) else {
                continue;
            };
            let what = match phase {
                Phase::Apply => "apply",
                Phase::Noop => "no-op",
            };
            let mut line = format!(
                "{what} at N = {}: plover {} ms, {} turns ({}/migration), {} sync points",
                size.n,
                fmt_ms(base.wall),
                base.turns,
                per(base.turns, size.n),
                base.sync_points,
            );
            if let (Phase::Noop, Some(connect)) = (phase, size.medians(Peer::Connect, phase)) {
                let _ = write!(
                    line,
                    " ({:.2} ms beyond a {} ms connect)",
                    size.beyond_connect(Peer::Plover).unwrap_or_default(),
                    fmt_ms(connect.wall)
                );
            }
            for &peer in size
                .peers
                .iter()
                .filter(|p| !matches!(p, Peer::Plover | Peer::Connect))
            {
                let Some(m) = size.medians(peer, phase) else {
                    continue;
                };
                let server = match (base.server_cpu, m.server_cpu) {
                    (Some(b), Some(x)) => fmt_over(over(b, x)),
                    _ => "-".into(),
                };
                let _ = write!(
                    line,
                    "; {} {} ms, {} turns (plover/{}: time {}, client CPU {}, server CPU {server})",
                    peer.name(),
                    fmt_ms(m.wall),
                    m.turns,
                    peer.slug(),
                    fmt_over(over(base.wall, m.wall)),
                    fmt_over(over(base.client_cpu, m.client_cpu)),
                );
            }
            parts.push(line);
        }
    }
    format!(
        "Peers (medians of {rounds} rounds, {} build, PostgreSQL {version}, fsync off, each tool \
         on a fresh database per round, through a counting loopback proxy): {}.",
        build(),
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
