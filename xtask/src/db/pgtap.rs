//! `cargo xtask db test`: the pgTAP files of supabase/tests, each against a fresh
//! database migrated with the project's migrations (a clone of a template on the
//! test server), with TAP output and an exit code for CI; the Supabase CLI's
//! `supabase test db`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use plover::ConnInfo;
use plover::testing::docker::Docker;
use plover::testing::{AnyProvider, Native, Shim, TestDatabase};

use super::{Ctx, EXIT_ATTENTION};
use crate::flags::DbTest;

/// Creates pgTAP where Supabase has it, unless the migrations already did.
const CREATE_PGTAP: &str = "CREATE EXTENSION IF NOT EXISTS pgtap WITH SCHEMA extensions";

/// Supabase's search path, so tests call pgTAP's functions unqualified.
const PGOPTIONS: &str = "-c search_path=\"$user\",public,extensions";

impl DbTest {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let root = ctx.project.workdir().join("supabase").join("tests");
        let files = if self.files.is_empty() {
            let mut found = Vec::new();
            collect(&root, &mut found)?;
            found.sort();
            found
        } else {
            // Relative to the current directory, else to the project (--workdir).
            let workdir = ctx.project.workdir();
            self.files
                .iter()
                .map(|f| match [f.clone(), workdir.join(f)].into_iter().find(|p| p.is_file()) {
                    Some(found) => Ok(found),
                    None => bail!("{}: no such file (give a path relative to the current directory or to {})", f.display(), workdir.display()),
                })
                .collect::<Result<_>>()?
        };
        if files.is_empty() {
            bail!(
                "no pgTAP files (*.sql) under {}; write one, e.g. supabase/tests/database/rls.test.sql",
                root.display()
            );
        }
        let psql = psql()?;
        let migrator = ctx.migrator()?;
        self.choose_server(ctx)?;
        let started = Instant::now();
        println!(
            "# {} file(s); each runs on a fresh database with the {} migration(s) of app `{}`",
            files.len(),
            migrator.source().migrations().len(),
            migrator.app_name()
        );
        let mut totals = Totals::default();
        for file in &files {
            let shown = file.strip_prefix(ctx.project.workdir()).unwrap_or(file);
            println!("# {}", shown.display());
            let db = TestDatabase::fresh(&migrator, Shim::Apply)
                .await
                .context("preparing a migrated database for the tests")?;
            let client = db.client().await?;
            if let Err(e) = client.batch_execute(CREATE_PGTAP).await {
                let hint = e
                    .as_db_error()
                    .and_then(|d| {
                        plover::supabase::extensions::missing_extension(d.message(), d.detail())
                    })
                    .map(|(name, major)| plover::supabase::extensions::install_hint(&name, major));
                match hint {
                    Some(hint) => bail!("pgTAP is not installed on the test server: {hint}"),
                    None => return Err(e).context("creating the pgtap extension"),
                }
            }
            let outcome = run_file(&psql, &db, file)?;
            totals.add(&outcome);
        }
        println!(
            "# files={} tests={} passed={} failed={} ({:.1}s)",
            files.len(),
            totals.tests,
            totals.passed,
            totals.failed,
            started.elapsed().as_secs_f64()
        );
        if totals.failed_files.is_empty() {
            println!("# all tests passed");
            Ok(ExitCode::SUCCESS)
        } else {
            println!("# failed: {}", totals.failed_files.join(", "));
            Ok(ExitCode::from(EXIT_ATTENTION))
        }
    }
}

impl DbTest {
    /// --native or --docker (the local image unless --image or PLOVER_DOCKER_IMAGE
    /// says otherwise); neither: the test provider's own choice.
    fn choose_server(&self, ctx: &Ctx) -> Result<()> {
        let provider = if self.mode.docker {
            let mut docker = Docker::from_env();
            let (image, tag, bare) =
                super::local::docker_image(&ctx.sh, &ctx.project, &self.mode, &docker)?;
            (docker.image, docker.tag, docker.bare) = (image, tag, bare);
            eprintln!(
                "# test server: docker {} (kept running for the next run; `cargo xtask test-server stop` stops it)",
                docker.descriptor()
            );
            AnyProvider::Docker(docker)
        } else if self.mode.native {
            AnyProvider::Native(Native)
        } else {
            return Ok(());
        };
        if plover::testing::use_provider(provider).is_err() {
            bail!("the test server was chosen already");
        }
        Ok(())
    }
}

/// The `.sql` files under `dir`, recursively (none when it does not exist).
fn collect(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.is_dir() {
            collect(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "sql") {
            found.push(path);
        }
    }
    Ok(())
}

/// psql of the local PostgreSQL binaries, else the one on PATH.
fn psql() -> Result<PathBuf> {
    if let Ok(bin) = plover::testing::find_binaries()
        && bin.join("psql").is_file()
    {
        return Ok(bin.join("psql"));
    }
    which("psql").context(
        "psql is needed to run pgTAP files and was not found; install the PostgreSQL client (Debian/Ubuntu: `apt-get install postgresql-client`)",
    )
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// What one file's TAP said.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    file: String,
    planned: Option<usize>,
    passed: usize,
    failed: usize,
    /// psql stopped on an error (the file's message is printed).
    error: bool,
}

impl Outcome {
    fn ok(&self) -> bool {
        !self.error && self.failed == 0 && self.planned.is_none_or(|n| n == self.passed)
    }
}

/// Runs one file with psql (credentials through libpq's environment, never argv)
/// and prints its TAP.
fn run_file(psql: &Path, db: &TestDatabase, file: &Path) -> Result<Outcome> {
    let conn = ConnInfo::parse(db.url()).context("the test database's URL")?;
    let output = Command::new(psql)
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(file)
        .env_clear()
        .envs(std::env::vars_os().filter(|(k, _)| !k.to_string_lossy().starts_with("PG")))
        .envs(conn.libpq_env())
        .env("PGOPTIONS", PGOPTIONS)
        .output()
        .with_context(|| format!("running {}", psql.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut outcome = parse_tap(&stdout);
    outcome.file = file.display().to_string();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        println!("{line}");
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        println!("# {line}");
    }
    if !output.status.success() {
        outcome.error = true;
        println!("# {} stopped on an error (above)", file.display());
    } else if let Some(n) = outcome.planned
        && n != outcome.passed + outcome.failed
    {
        println!(
            "# planned {n} test(s) but ran {}",
            outcome.passed + outcome.failed
        );
    }
    Ok(outcome)
}

/// Counts a TAP stream: the plan `1..N`, `ok` and `not ok` lines (a `# TODO`
/// failure counts as passed, as TAP says).
fn parse_tap(tap: &str) -> Outcome {
    let mut outcome = Outcome::default();
    for line in tap.lines().map(str::trim) {
        if let Some(n) = line.strip_prefix("1..") {
            outcome.planned = n.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if let Some(rest) = line.strip_prefix("not ok") {
            if rest.contains("# TODO") {
                outcome.passed += 1;
            } else {
                outcome.failed += 1;
            }
        } else if line.starts_with("ok") {
            outcome.passed += 1;
        }
    }
    outcome
}

#[derive(Default)]
struct Totals {
    tests: usize,
    passed: usize,
    failed: usize,
    failed_files: Vec<String>,
}

impl Totals {
    fn add(&mut self, o: &Outcome) {
        self.tests += o.passed + o.failed;
        self.passed += o.passed;
        self.failed += o.failed;
        if !o.ok() {
            self.failed_files.push(o.file.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_a_tap_stream_and_its_plan() {
        let tap = "1..3\nok 1 - a\nnot ok 2 - b\n# Failed test 2\nnot ok 3 - c # TODO later\n";
        let o = parse_tap(tap);
        assert_eq!((o.planned, o.passed, o.failed), (Some(3), 2, 1));
        assert!(!o.ok());
        let short = parse_tap("1..2\nok 1\n");
        assert!(!short.ok(), "a plan not met fails");
        assert!(parse_tap("1..1\nok 1 - fine\n").ok());
    }
}
