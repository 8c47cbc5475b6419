//! `cargo xtask bench diff`: plover's schema diff against migra and the
//! `pg-schema-diff` package on the same pair of databases, side by side in one run.
//!
//! Two databases on the shared test server: A, a generated app schema, and B, A with
//! a set of changes ([`crate::diff_workload`]). Each round times every tool producing
//! the SQL that turns A into B (tools in an order rotated per round): plover's
//! library path (`connect` both, `schema::inspect` A, then B, `schema::diff`,
//! `to_sql`), in process; the xtask's `db diff --from URL --to URL`, migra and
//! pg-schema-diff as whole processes. Then, once
//! per tool, it checks the last output: does it **apply** (`psql -1 -v
//! ON_ERROR_STOP=1 -f` on a fresh copy of A, the first error kept), and does it
//! **round-trip** (plover's `diff(inspect(copy), inspect(B))` is empty; the tool's
//! own diff from the copy to B is empty; `pg_dump --schema-only` of the copy and of B
//! are the same text).
//!
//! The peers are never dependencies: `.ci/diff-peers-up DIR` installs them into a
//! virtualenv outside the repository; the bench finds them through PLOVER_MIGRA and
//! PLOVER_PG_SCHEMA_DIFF or in [`PEERS_DEFAULT`], and skips a missing one, saying why.
//! The xtask is PLOVER_XTASK, else built in the bench's own profile.
//!
//! What it must not do: assert a timing, put a password in a child's argv (the test
//! server trusts loopback: the URLs carry none), or reach into plover's internals (it
//! calls the public `plover::schema`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use plover::redact;
use plover::schema::{self, Catalog};
use plover::testing::{Server, TestDatabase, state_dir};
use serde_json::json;

use crate::apply::{admin_and_version, fmt_ms, median, ms};
use crate::diff_workload;
use crate::flags::BenchDiff;

/// Where `.ci/diff-peers-up` installs the peers when given no other directory.
pub(crate) const PEERS_DEFAULT: &str = "/tmp/plover-diff-peers";

/// The schemas compared: every object the workload makes is in `public`, the one
/// schema every tool compared reads (the `pg-schema-diff` package reads nothing else).
const SCHEMAS: &[&str] = &["public"];

/// The tools measured, plover first (the ratios' numerator).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tool {
    /// `schema::inspect` of both databases and `schema::diff`, in process.
    Plover,
    /// `cargo xtask db diff --from URL --to URL`, the binary, as a user runs it.
    Xtask,
    Migra,
    PgSchemaDiff,
}

impl Tool {
    fn slug(self) -> &'static str {
        match self {
            Tool::Plover => "plover",
            Tool::Xtask => "xtask",
            Tool::Migra => "migra",
            Tool::PgSchemaDiff => "pg-schema-diff",
        }
    }

    /// The package a peer is installed from, its executable's name in the
    /// virtualenv, and the variable that names it instead.
    fn package(self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            Tool::Plover | Tool::Xtask => None,
            Tool::Migra => Some(("migra", "migra", "PLOVER_MIGRA")),
            Tool::PgSchemaDiff => {
                Some(("pg-schema-diff", "pg-schema-diff", "PLOVER_PG_SCHEMA_DIFF"))
            }
        }
    }
}

/// A tool ready to run: its name with the version, and its executable (none for
/// plover).
struct Ready {
    tool: Tool,
    name: String,
    exe: Option<PathBuf>,
}

/// What one run of a tool produced.
struct Output {
    wall: Duration,
    sql: String,
    /// plover only: connect, inspect A, inspect B, diff and `to_sql`.
    phases: Option<[Duration; 4]>,
}

/// The verdicts on a tool's last output.
struct Checked {
    statements: usize,
    /// `None`: it applied; else the first error.
    apply_error: Option<String>,
    /// plover's diff from the copy to B after applying: `None` when it did not apply;
    /// else the statements left (empty: round-trips) and the first of them.
    plover_left: Option<(usize, Option<String>)>,
    /// The tool's own diff from the copy to B: `None` when it did not apply; else the
    /// statements left and the first of them.
    own_left: Option<(usize, Option<String>)>,
    /// `pg_dump --schema-only` of the copy against B's: `None` when it did not
    /// apply; else `Ok` when equal, or the first line that differs.
    dump: Option<Result<(), String>>,
    file: PathBuf,
}

/// All the results of one tool.
struct ToolResult {
    ready: Ready,
    outputs: Vec<Output>,
    checked: Option<Checked>,
}

impl ToolResult {
    fn median(&self) -> Duration {
        median(&self.outputs.iter().map(|o| o.wall).collect::<Vec<_>>())
    }

    fn min(&self) -> Duration {
        self.outputs
            .iter()
            .map(|o| o.wall)
            .min()
            .unwrap_or_default()
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

impl BenchDiff {
    pub async fn run(self) -> Result<()> {
        if !self.roundtrip.is_empty() {
            return crate::roundtrip::run(&self.roundtrip, self.json).await;
        }
        if self.scale {
            return crate::scale::run(self.rounds, self.json).await;
        }
        if cfg!(debug_assertions) {
            eprintln!(
                "warning: this is a dev build and plover is not optimised in it; \
                 `cargo xtask bench diff` builds the bench in release for figures worth quoting"
            );
        }
        let n = self.tables as usize;
        let (server, test_server) = crate::apply::shared_servers().await?;
        let (_admin, version) = admin_and_version(&server.url("postgres")).await?;
        let pg_bin = server.bin_dir().to_path_buf();

        let mut ready = vec![Ready {
            tool: Tool::Plover,
            name: "plover (library)".into(),
            exe: None,
        }];
        let mut skipped = Vec::new();
        match xtask(!cfg!(debug_assertions)) {
            Ok(exe) => ready.push(Ready {
                tool: Tool::Xtask,
                name: "plover (xtask db diff)".into(),
                exe: Some(exe),
            }),
            Err(why) => {
                eprintln!("bench: xtask db diff skipped: {why}");
                skipped.push((Tool::Xtask, why));
            }
        }
        for tool in [Tool::Migra, Tool::PgSchemaDiff] {
            match find_peer(tool) {
                Ok(r) => ready.push(r),
                Err(why) => {
                    eprintln!("bench: {} skipped: {why}", tool.slug());
                    skipped.push((tool, why));
                }
            }
        }

        let changes = diff_workload::changes(n);
        eprintln!(
            "bench: diff of {n} tables and {} changes, {} rounds, {} build, PostgreSQL {version} \
             at {}",
            changes.len(),
            self.rounds,
            build(),
            redact(&server.url("postgres")),
        );
        let dir = state_dir().join("bench").join("diff");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

        let mut dbs = Vec::new();
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        let run = Run {
            server: &test_server,
            port: server.port(),
            pg_bin: &pg_bin,
            dir: &dir,
            n,
        };
        let result = tokio::select! {
            r = run.all(&mut dbs, &mut ready, self.rounds) => r,
            _ = &mut interrupted => Err(anyhow!("interrupted")),
        };
        let mut dropped = Ok(());
        for db in dbs {
            let name = db.name().to_owned();
            let d = db
                .close()
                .await
                .with_context(|| format!("dropping database {name}; drop it by hand"));
            if dropped.is_ok() {
                dropped = d;
            }
        }
        let results = result?;
        dropped?;

        let report = Report {
            n,
            changes: changes.len(),
            rounds: self.rounds,
            version: &version,
            results: &results,
            skipped: &skipped,
        };
        if self.json {
            let text =
                serde_json::to_string_pretty(&report.json()).context("writing the JSON report")?;
            println!("{text}");
        } else {
            print!("{}", report.text());
        }
        Ok(())
    }
}

/// The peer `tool`: its variable's path, or where `.ci/diff-peers-up` puts it, and its
/// version; the reason it is skipped otherwise.
fn find_peer(tool: Tool) -> Result<Ready, String> {
    let (package, exe_name, var) = tool
        .package()
        .ok_or_else(|| "plover is no peer".to_owned())?;
    let exe = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(PEERS_DEFAULT).join("bin").join(exe_name));
    if !exe.is_file() {
        return Err(format!(
            "{} is not there; run `.ci/diff-peers-up {PEERS_DEFAULT}` (pip installs migra and \
             pg-schema-diff into a virtualenv there) or set {var}",
            exe.display()
        ));
    }
    // The virtualenv's python beside the executable knows the package's version.
    let python = exe.with_file_name("python");
    let version = Command::new(&python)
        .args([
            "-c",
            &format!("import importlib.metadata as m; print(m.version('{package}'))"),
        ])
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "(version unknown)".into());
    let name = match tool {
        // The package of that name is a Python tool of its own (schemadrift), not
        // stripe's Go program of the same name.
        Tool::PgSchemaDiff => format!("pg-schema-diff {version} (PyPI)"),
        _ => format!("{package} {version}"),
    };
    Ok(Ready {
        tool,
        name,
        exe: Some(exe),
    })
}

/// The xtask binary: PLOVER_XTASK, else `cargo build --package xtask` in release when
/// `release` (`db diff`: the bench's own profile) or in the dev profile `cargo xtask`
/// runs; the reason it is skipped otherwise.
pub(crate) fn xtask(release: bool) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("PLOVER_XTASK") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "PLOVER_XTASK names {}, which is not a file",
                path.display()
            ))
        };
    }
    let root = crate::workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    xtask_launch::forget_crate_env(&mut cmd);
    cmd.current_dir(&root)
        .args(["build", "--quiet", "--package", "xtask"])
        .stdin(Stdio::null());
    if release {
        cmd.arg("--release");
    }
    eprintln!(
        "bench: building the {} xtask...",
        if release { "release" } else { "dev" }
    );
    let out = tokio::task::block_in_place(|| cmd.output())
        .map_err(|e| format!("running cargo build --package xtask: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build --package xtask failed: {}",
            one_line(&String::from_utf8_lossy(&out.stderr))
        ));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let exe = target
        .join(if release { "release" } else { "debug" })
        .join("xtask");
    if exe.is_file() {
        Ok(exe)
    } else {
        Err(format!("cargo built no {}", exe.display()))
    }
}

/// What every step needs.
struct Run<'a> {
    server: &'a Server,
    port: u16,
    pg_bin: &'a Path,
    dir: &'a Path,
    n: usize,
}

impl Run<'_> {
    /// Builds the databases (into `dbs`, which the caller drops), times every tool
    /// `rounds` times, then checks each tool's last output.
    async fn all(
        &self,
        dbs: &mut Vec<TestDatabase>,
        ready: &mut Vec<Ready>,
        rounds: u32,
    ) -> Result<Vec<ToolResult>> {
        let pid = std::process::id();
        let a = format!("bench_{pid}_diff_a");
        let b = format!("bench_{pid}_diff_b");
        dbs.push(self.database(&a, &diff_workload::schema_a(self.n)).await?);
        dbs.push(self.database(&b, &diff_workload::schema_b(self.n)).await?);

        let mut results: Vec<ToolResult> = std::mem::take(ready)
            .into_iter()
            .map(|ready| ToolResult {
                ready,
                outputs: Vec::new(),
                checked: None,
            })
            .collect();
        for round in 0..rounds {
            let len = results.len();
            for k in 0..len {
                let result = &mut results[(k + round as usize) % len];
                let out = self
                    .produce(&result.ready, &a, &b)
                    .await
                    .with_context(|| format!("{} (round {})", result.ready.name, round + 1))?;
                result.outputs.push(out);
            }
            let line: Vec<String> = results
                .iter()
                .filter_map(|r| {
                    let last = r.outputs.last()?;
                    Some(format!("{} {} ms", r.ready.tool.slug(), fmt_ms(last.wall)))
                })
                .collect();
            eprintln!("round {}/{rounds}: {}", round + 1, line.join(", "));
        }

        let b_dump = self.dump(&b).await?;
        let b_catalog = self.inspect(&b).await?;
        for result in &mut results {
            let slug = result.ready.tool.slug();
            let copy = format!("bench_{pid}_diff_copy_{}", slug.replace('-', "_"));
            dbs.push(
                self.database(&copy, &diff_workload::schema_a(self.n))
                    .await?,
            );
            let sql = result
                .outputs
                .last()
                .map(|o| o.sql.clone())
                .unwrap_or_default();
            let checked = self
                .check(&result.ready, &sql, &copy, &b, &b_catalog, &b_dump)
                .await
                .with_context(|| format!("checking {}'s output", result.ready.name))?;
            result.checked = Some(checked);
        }
        Ok(results)
    }

    /// A database `name` with `sql` run in it.
    async fn database(&self, name: &str, sql: &str) -> Result<TestDatabase> {
        let db = TestDatabase::create_named(self.server, name)
            .await
            .with_context(|| format!("creating database {name}"))?;
        let client = db.client().await?;
        client
            .batch_execute(sql)
            .await
            .with_context(|| format!("building the bench's schema in {name}"))?;
        Ok(db)
    }

    /// The URL of `db` as plover takes it.
    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// `db` read by `schema::inspect`.
    async fn inspect(&self, db: &str) -> Result<Catalog> {
        let client = plover::connect(&self.url(db))
            .await
            .with_context(|| format!("connecting to {db}"))?;
        Ok(schema::inspect(&client, &schemas()).await?)
    }

    /// `tool`'s SQL that turns `from` into `to`, timed.
    async fn produce(&self, ready: &Ready, from: &str, to: &str) -> Result<Output> {
        let started = Instant::now();
        match (ready.tool, &ready.exe) {
            (Tool::Plover, _) => {
                let (from_url, to_url) = (self.url(from), self.url(to));
                let a = plover::connect(&from_url)
                    .await
                    .with_context(|| format!("connecting to {}", redact(&from_url)))?;
                let b = plover::connect(&to_url)
                    .await
                    .with_context(|| format!("connecting to {}", redact(&to_url)))?;
                let connected = started.elapsed();
                let ca = schema::inspect(&a, &schemas()).await?;
                let inspected_a = started.elapsed();
                let cb = schema::inspect(&b, &schemas()).await?;
                let inspected_b = started.elapsed();
                let sql = schema::diff(&ca, &cb).to_sql();
                let wall = started.elapsed();
                Ok(Output {
                    wall,
                    sql,
                    phases: Some([
                        connected,
                        inspected_a - connected,
                        inspected_b - inspected_a,
                        wall - inspected_b,
                    ]),
                })
            }
            (tool, Some(exe)) => {
                let sql = self.peer_sql(tool, exe, from, to)?;
                Ok(Output {
                    wall: started.elapsed(),
                    sql,
                    phases: None,
                })
            }
            (_, None) => Err(anyhow!("{} has no executable", ready.name)),
        }
    }

    /// Runs a peer (or the xtask) from `from` to `to` and returns its SQL.
    fn peer_sql(&self, tool: Tool, exe: &Path, from: &str, to: &str) -> Result<String> {
        let mut cmd = Command::new(exe);
        match tool {
            Tool::Xtask => {
                cmd.args(["db", "diff", "--workdir"])
                    .arg(self.project()?)
                    .arg("--from")
                    .arg(self.url(from))
                    .arg("--to")
                    .arg(self.url(to));
            }
            Tool::Migra => {
                // SQLAlchemy 2 reads a bare postgresql:// as psycopg 3; migra's
                // extra installs psycopg2.
                let url = |db: &str| {
                    format!(
                        "postgresql+psycopg2://postgres@127.0.0.1:{}/{db}",
                        self.port
                    )
                };
                cmd.args(["--unsafe", "--schema", "public"])
                    .arg(url(from))
                    .arg(url(to));
            }
            Tool::PgSchemaDiff => {
                let url = |db: &str| format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port);
                cmd.args(["diff", "--format", "sql", "--no-step-summary", "--source"])
                    .arg(url(from))
                    .arg("--target")
                    .arg(url(to));
            }
            Tool::Plover => return Err(anyhow!("plover runs in process, not as a peer")),
        }
        peer_env(&mut cmd);
        cmd.stdin(Stdio::null());
        let out = tokio::task::block_in_place(|| cmd.output())
            .with_context(|| format!("running {}", exe.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        // migra exits 2 when there are differences, 0 when there are none.
        let ok = match tool {
            Tool::Migra => matches!(out.status.code(), Some(0 | 2)),
            _ => out.status.success(),
        };
        ensure!(
            ok,
            "{} failed ({}): {}{}",
            tool.slug(),
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(stdout)
    }

    /// Applies `sql` to `copy` (a fresh A) and judges the result against `to`.
    async fn check(
        &self,
        ready: &Ready,
        sql: &str,
        copy: &str,
        to: &str,
        to_catalog: &Catalog,
        to_dump: &str,
    ) -> Result<Checked> {
        let file = self.dir.join(format!("{}.sql", ready.tool.slug()));
        std::fs::write(&file, sql).with_context(|| format!("writing {}", file.display()))?;
        let statements = count_statements(sql);
        let apply_error = self.psql_file(copy, &file)?;
        let (mut plover_left, mut own_left, mut dump) = (None, None, None);
        if apply_error.is_none() {
            let d = schema::diff(&self.inspect(copy).await?, to_catalog);
            plover_left = Some((d.changes.len() + d.manual.len(), first_left(&d)));
            own_left = Some(match ready.tool {
                Tool::Plover => (d.changes.len() + d.manual.len(), first_left(&d)),
                tool => {
                    let exe = ready
                        .exe
                        .as_deref()
                        .ok_or_else(|| anyhow!("{} has no executable", ready.name))?;
                    let own = self.peer_sql(tool, exe, copy, to)?;
                    (count_statements(&own), first_statement(&own))
                }
            });
            dump = Some(first_difference(&self.dump(copy).await?, to_dump, "B"));
        }
        Ok(Checked {
            statements,
            apply_error,
            plover_left,
            own_left,
            dump,
            file,
        })
    }

    /// Runs `file` on `db` with `psql -1 -v ON_ERROR_STOP=1`: `None` when it ran, else
    /// the first error.
    fn psql_file(&self, db: &str, file: &Path) -> Result<Option<String>> {
        let mut cmd = Command::new(self.tool_path("psql"));
        self.libpq_env(&mut cmd, db);
        cmd.args(["-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(file)
            .stdin(Stdio::null());
        let out = tokio::task::block_in_place(|| cmd.output()).context("running psql")?;
        if out.status.success() {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr
            .lines()
            .find(|l| l.contains("ERROR:"))
            .or_else(|| stderr.lines().next())
            .unwrap_or("psql failed without a message");
        // psql names the file and the line: keep the line.
        let first = match first.split_once(".sql:") {
            Some((_, rest)) => format!("line {rest}"),
            None => first.to_owned(),
        };
        Ok(Some(first.split_whitespace().collect::<Vec<_>>().join(" ")))
    }

    /// `pg_dump --schema-only` of the compared schemas of `db`, normalized: comments,
    /// blank lines and the random `\restrict` pair left out.
    async fn dump(&self, db: &str) -> Result<String> {
        let mut cmd = Command::new(self.tool_path("pg_dump"));
        self.libpq_env(&mut cmd, db);
        cmd.args(["--schema-only", "--no-owner"]);
        for s in SCHEMAS {
            cmd.args(["--schema", s]);
        }
        cmd.stdin(Stdio::null());
        let out = tokio::task::block_in_place(|| cmd.output()).context("running pg_dump")?;
        ensure!(
            out.status.success(),
            "pg_dump of {db} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(normalize_dump(&String::from_utf8_lossy(&out.stdout)))
    }

    /// The project the xtask runs in: an empty Supabase project (app schema
    /// `public`), in the bench's directory.
    fn project(&self) -> Result<PathBuf> {
        let root = self.dir.join("project");
        let supabase = root.join("supabase");
        std::fs::create_dir_all(supabase.join("migrations"))
            .with_context(|| format!("creating {}", supabase.display()))?;
        let config = supabase.join("config.toml");
        if !config.is_file() {
            std::fs::write(&config, "project_id = \"bench-diff\"\n")
                .with_context(|| format!("writing {}", config.display()))?;
        }
        Ok(root)
    }

    fn tool_path(&self, name: &str) -> PathBuf {
        match self.pg_bin.join(name) {
            p if p.is_file() => p,
            _ => PathBuf::from(name),
        }
    }

    fn libpq_env(&self, cmd: &mut Command, db: &str) {
        peer_env(cmd);
        cmd.env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "postgres")
            .env("PGDATABASE", db)
            .env("PGSSLMODE", "disable");
    }
}

fn schemas() -> Vec<String> {
    SCHEMAS.iter().map(|s| (*s).to_owned()).collect()
}

/// None of the caller's database settings for a child.
fn peer_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.contains("DATABASE_URL") || k.starts_with("PG") {
            cmd.env_remove(&*k);
        }
    }
}

/// The first statement (or manual step) a plover diff still has, on one line.
fn first_left(d: &schema::Diff) -> Option<String> {
    d.changes
        .first()
        .map(|c| one_line(&c.sql))
        .or_else(|| d.manual.first().map(|m| format!("manual: {}", one_line(m))))
}

pub(crate) fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}

/// `pg_dump`'s text without its comments, blank lines, session settings and the
/// random `\restrict KEY` / `\unrestrict KEY` pair, and with each run of GRANT and
/// REVOKE lines sorted: pg_dump prints an object's privileges in the order they were
/// granted, which means nothing.
pub(crate) fn normalize_dump(dump: &str) -> String {
    let kept: Vec<&str> = dump
        .lines()
        .filter(|l| {
            let t = l.trim();
            !(t.is_empty()
                || t.starts_with("--")
                || t.starts_with("\\restrict")
                || t.starts_with("\\unrestrict")
                || t.starts_with("SET ")
                || t.starts_with("SELECT pg_catalog.set_config"))
        })
        .collect();
    let is_acl = |l: &str| l.starts_with("GRANT ") || l.starts_with("REVOKE ");
    let mut out: Vec<&str> = Vec::with_capacity(kept.len());
    let mut i = 0;
    while i < kept.len() {
        let end = (i..kept.len())
            .find(|&j| !is_acl(kept[j]))
            .unwrap_or(kept.len());
        if end > i {
            let mut run = kept[i..end].to_vec();
            run.sort_unstable();
            out.extend(run);
            i = end;
        } else {
            out.push(kept[i]);
            i += 1;
        }
    }
    out.join("\n")
}

/// `Ok` when the two dumps are equal, else the first line of `got` that differs from
/// `want`, the dump of the database called `target`.
pub(crate) fn first_difference(got: &str, want: &str, target: &str) -> Result<(), String> {
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    match g.iter().zip(&w).position(|(a, b)| a != b) {
        Some(i) => Err(format!(
            "{:?} where {target} has {:?}",
            g[i].trim(),
            w[i].trim()
        )),
        None if g.len() == w.len() => Ok(()),
        None if g.len() > w.len() => Err(format!("{:?} beyond {target}'s end", g[w.len()].trim())),
        None => Err(format!("{:?} of {target} missing", w[g.len()].trim())),
    }
}

/// The statements of a SQL script, split as psql does (quotes, dollar quotes,
/// comments), without transaction control (`BEGIN`, `COMMIT`) and empty ones.
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut current = String::new();
    let mut i = 0;
    let push = |current: &mut String, out: &mut Vec<String>| {
        let s = std::mem::take(current);
        let t = s.trim();
        let word = t
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if !t.is_empty() && !matches!(word.as_str(), "begin" | "commit" | "end") {
            out.push(t.to_owned());
        }
    };
    while i < b.len() {
        let rest = &sql[i..];
        if rest.starts_with("--") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
        } else if b[i] == b'\'' || b[i] == b'"' {
            let q = b[i];
            let mut j = i + 1;
            while j < b.len() {
                if b[j] == q {
                    if b.get(j + 1) == Some(&q) {
                        j += 2;
                        continue;
                    }
                    break;
                }
                j += 1;
            }
            let end = (j + 1).min(b.len());
            current.push_str(&sql[i..end]);
            i = end;
        } else if b[i] == b'$'
            && let Some(tag) = dollar_tag(rest)
        {
            let body = &rest[tag.len()..];
            let end = body
                .find(tag)
                .map_or(rest.len(), |e| tag.len() + e + tag.len());
            current.push_str(&rest[..end]);
            i += end;
        } else if b[i] == b';' {
            push(&mut current, &mut out);
            i += 1;
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            current.push(c);
            i += c.len_utf8();
        }
    }
    push(&mut current, &mut out);
    out
}

/// `$tag$` at the start of `s`, when it opens a dollar quote.
fn dollar_tag(s: &str) -> Option<&str> {
    let end = s[1..].find('$')? + 2;
    let tag = &s[..end];
    tag[1..end - 1]
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_')
        .then_some(tag)
        .filter(|t| !t[1..].starts_with(|c: char| c.is_ascii_digit()))
}

fn count_statements(sql: &str) -> usize {
    statements(sql).len()
}

fn first_statement(sql: &str) -> Option<String> {
    statements(sql).first().map(|s| one_line(s))
}

/// The results, as a table or JSON.
struct Report<'a> {
    n: usize,
    changes: usize,
    rounds: u32,
    version: &'a str,
    results: &'a [ToolResult],
    skipped: &'a [(Tool, String)],
}

fn yes_no(left: Option<&(usize, Option<String>)>) -> String {
    match left {
        None => "-".into(),
        Some((0, _)) => "yes".into(),
        Some((k, _)) => format!("no ({k} left)"),
    }
}

fn dump_verdict(dump: Option<&Result<(), String>>) -> &'static str {
    match dump {
        None => "-",
        Some(Ok(())) => "yes",
        Some(Err(_)) => "no",
    }
}

impl Report<'_> {
    fn plover(&self) -> Option<&ToolResult> {
        self.results.iter().find(|r| r.ready.tool == Tool::Plover)
    }

    fn over(&self, r: &ToolResult) -> Option<f64> {
        let p = self.plover()?.median();
        let x = r.median();
        (!x.is_zero()).then(|| p.as_secs_f64() / x.as_secs_f64())
    }

    /// plover's phases, medians.
    fn phases(&self) -> Option<[Duration; 4]> {
        let p = self.plover()?;
        let all: Vec<[Duration; 4]> = p.outputs.iter().filter_map(|o| o.phases).collect();
        let pick = |k: usize| median(&all.iter().map(|x| x[k]).collect::<Vec<_>>());
        (!all.is_empty()).then(|| [pick(0), pick(1), pick(2), pick(3)])
    }

    fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "bench diff: {} build{}, PostgreSQL {} (fsync off), A = {} generated tables, B = A \
             with {} changes, medians of {} rounds",
            build(),
            if cfg!(debug_assertions) {
                " (plover not optimised: not the figures to quote)"
            } else {
                ""
            },
            self.version,
            self.n,
            self.changes,
            self.rounds
        );
        out.push('\n');
        let _ = writeln!(
            out,
            "  {:<28} {:>10} {:>10} {:>8} {:>6} {:>7} {:>13} {:>13} {:>8}",
            "tool",
            "median",
            "min",
            "plover/x",
            "stmts",
            "applies",
            "round-trips",
            "own diff",
            "pg_dump"
        );
        for r in self.results {
            let c = r.checked.as_ref();
            let _ = writeln!(
                out,
                "  {:<28} {:>7} ms {:>7} ms {:>8} {:>6} {:>7} {:>13} {:>13} {:>8}",
                r.ready.name,
                fmt_ms(r.median()),
                fmt_ms(r.min()),
                self.over(r).map_or("-".into(), |x| format!("{x:.2}")),
                c.map_or("-".into(), |c| c.statements.to_string()),
                c.map_or("-", |c| if c.apply_error.is_none() { "yes" } else { "no" }),
                yes_no(c.and_then(|c| c.plover_left.as_ref())),
                yes_no(c.and_then(|c| c.own_left.as_ref())),
                dump_verdict(c.and_then(|c| c.dump.as_ref())),
            );
        }
        for (tool, why) in self.skipped {
            let _ = writeln!(out, "  {:<28} skipped: {why}", tool.slug());
        }
        out.push('\n');
        for r in self.results {
            let Some(c) = &r.checked else { continue };
            let mut lines = Vec::new();
            if let Some(e) = &c.apply_error {
                lines.push(format!("first error: {e}"));
            }
            if let Some((k, Some(first))) = &c.plover_left
                && *k > 0
            {
                lines.push(format!("plover's diff to B still has {k}, first: {first}"));
            }
            if r.ready.tool != Tool::Plover
                && let Some((k, Some(first))) = &c.own_left
                && *k > 0
            {
                lines.push(format!("its own diff to B still has {k}, first: {first}"));
            }
            if let Some(Err(d)) = &c.dump {
                lines.push(format!("pg_dump differs first at {d}"));
            }
            lines.push(format!("output: {}", c.file.display()));
            let _ = writeln!(out, "{}:", r.ready.name);
            for l in lines {
                let _ = writeln!(out, "  {l}");
            }
        }
        if let Some([connect, a, b, d]) = self.phases() {
            let _ = writeln!(
                out,
                "plover's time, medians: connect both {} ms, inspect A {} ms, inspect B {} ms, \
                 diff and to_sql {} ms",
                fmt_ms(connect),
                fmt_ms(a),
                fmt_ms(b),
                fmt_ms(d)
            );
        }
        out.push('\n');
        out.push_str(NOTES);
        out.push('\n');
        let _ = writeln!(out, "For a closing note:");
        let _ = writeln!(out, "{}", self.summary());
        out
    }

    fn summary(&self) -> String {
        let parts: Vec<String> = self
            .results
            .iter()
            .map(|r| {
                let c = r.checked.as_ref();
                let applies = match c.and_then(|c| c.apply_error.as_ref()) {
                    None => "applies".to_owned(),
                    Some(e) => format!("does not apply ({e})"),
                };
                let rt = match c.and_then(|c| c.plover_left.as_ref()) {
                    Some((0, _)) => "round-trips".to_owned(),
                    Some((k, _)) => format!("does not round-trip ({k} differences left)"),
                    None => "so no round trip".to_owned(),
                };
                let dump = match c.and_then(|c| c.dump.as_ref()) {
                    Some(Ok(())) => ", pg_dump equal",
                    Some(Err(_)) => ", pg_dump differs",
                    None => "",
                };
                let vs = match (r.ready.tool, self.over(r)) {
                    (Tool::Plover, _) | (_, None) => String::new(),
                    (_, Some(x)) => format!(" (plover/{}: {x:.2})", r.ready.tool.slug()),
                };
                format!(
                    "{} {} ms{vs}, {} statements, {applies}, {rt}{dump}",
                    r.ready.name,
                    fmt_ms(r.median()),
                    c.map_or(0, |c| c.statements),
                )
            })
            .collect();
        let skipped: Vec<String> = self
            .skipped
            .iter()
            .map(|(t, _)| format!("{} skipped", t.slug()))
            .collect();
        format!(
            "Diff (medians of {} rounds, {} build, PostgreSQL {}, A = {} generated tables, B = A \
             with {} changes): {}{}.",
            self.rounds,
            build(),
            self.version,
            self.n,
            self.changes,
            parts.join("; "),
            if skipped.is_empty() {
                String::new()
            } else {
                format!("; {}", skipped.join(", "))
            }
        )
    }

    fn json(&self) -> serde_json::Value {
        let left = |l: Option<&(usize, Option<String>)>| {
            l.map(|(k, first)| json!({ "left": k, "first": first }))
        };
        let tools: Vec<serde_json::Value> = self
            .results
            .iter()
            .map(|r| {
                let c = r.checked.as_ref();
                json!({
                    "tool": r.ready.tool.slug(),
                    "name": r.ready.name,
                    "median_ms": ms(r.median()),
                    "min_ms": ms(r.min()),
                    "plover_over_tool": self.over(r),
                    "samples_ms": r.outputs.iter().map(|o| ms(o.wall)).collect::<Vec<_>>(),
                    "statements": c.map(|c| c.statements),
                    "applies": c.map(|c| c.apply_error.is_none()),
                    "apply_error": c.and_then(|c| c.apply_error.clone()),
                    "plover_diff_after": c.and_then(|c| left(c.plover_left.as_ref())),
                    "own_diff_after": c.and_then(|c| left(c.own_left.as_ref())),
                    "pg_dump_equal": c.and_then(|c| c.dump.as_ref().map(|d| d.is_ok())),
                    "pg_dump_first_difference": c.and_then(|c| c.dump.as_ref().and_then(|d| d.clone().err())),
                    "output": c.map(|c| c.file.display().to_string()),
                })
            })
            .collect();
        json!({
            "tables": self.n,
            "changes": self.changes,
            "rounds": self.rounds,
            "build": build(),
            "optimised": !cfg!(debug_assertions),
            "server_version": self.version,
            "tools": tools,
            "plover_phases_ms": self.phases().map(|[c, a, b, d]| json!({
                "connect": ms(c), "inspect_a": ms(a), "inspect_b": ms(b), "diff": ms(d),
            })),
            "skipped": self.skipped.iter().map(|(t, why)| (t.slug().to_owned(), json!(why))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

const NOTES: &str = "\
median, min: the time to produce the SQL from A to B: plover's library path in process \
(connect to both, schema::inspect A then B, schema::diff, to_sql); plover (xtask db diff) \
is the xtask binary of the bench's profile run as `db diff --from URL --to URL` in an empty \
project (PLOVER_XTASK names another), a whole process like the peers (Python's start \
included for them). plover/x: plover's median over the tool's (below 1: \
plover took less).
stmts: the statements of the output, split as psql does, BEGIN/COMMIT not counted.
applies: `psql -X -1 -v ON_ERROR_STOP=1 -f` of the output on a fresh copy of A.
round-trips: after applying, plover's diff(inspect(copy), inspect(B)) is empty; own diff: \
the tool's own diff from the copy to B is empty; pg_dump: `pg_dump --schema-only` of the \
copy and of B are the same text (comments left out; column order counts).
migra runs as `migra --unsafe --schema public` (drops allowed); pg-schema-diff is the \
PyPI package of that name (a Python tool, schemadrift, that reads tables, columns, indexes, \
foreign keys and enums of `public`), run as `diff --format sql --source A --target B`: it \
validates no plan, so it needs no temporary database. stripe's Go pg-schema-diff is on no \
package registry this machine reaches, so it is not measured.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_split_as_psql_does() {
        let sql = "BEGIN;\n-- a comment; with a semicolon\n\
                   create function f() returns text language sql as $$ select 'a;b' $$;\n\
                   create function g() returns int language plpgsql as $body$ begin return 1; end $body$;\n\
                   comment on table t is 'it''s; here';\n/* x; y */ select \"a;b\" from t;\n\
                   select $1;\nCOMMIT;\n";
        let s = statements(sql);
        assert_eq!(s.len(), 5, "{s:#?}");
        assert!(s[0].ends_with("$$ select 'a;b' $$"));
        assert!(s[1].ends_with("end $body$"));
        assert_eq!(s[4], "select $1");
        assert!(statements("-- plover diff: no differences\n").is_empty());
    }

    #[test]
    fn dumps_compare_without_comments_and_restrict_keys() {
        let a = "--\n-- PostgreSQL dump\n\\restrict abc\nSET x = 1;\nCREATE TABLE t (\n    id integer\n);\n\\unrestrict abc\n";
        let b = "\\restrict def\n\nCREATE TABLE t (\n    id integer\n);\n";
        assert_eq!(
            first_difference(&normalize_dump(a), &normalize_dump(b), "B"),
            Ok(())
        );
        let c = "CREATE TABLE t (\n    id bigint\n);\n";
        assert!(first_difference(&normalize_dump(c), &normalize_dump(b), "B").is_err());
        // An object's privileges in another order are the same privileges.
        let d = "GRANT SELECT ON TABLE t TO b;\nGRANT ALL ON TABLE t TO a;\n";
        let e = "GRANT ALL ON TABLE t TO a;\nGRANT SELECT ON TABLE t TO b;\n";
        assert_eq!(
            first_difference(&normalize_dump(d), &normalize_dump(e), "B"),
            Ok(())
        );
        let f = "GRANT ALL ON TABLE t TO a;\n";
        assert!(first_difference(&normalize_dump(d), &normalize_dump(f), "B").is_err());
    }
}
