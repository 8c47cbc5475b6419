//! `cargo xtask bench lint`: `db lint` against squawk on the same files, side by side
//! in one run: generated migrations, and the projects named with `--project`. Each runs
//! as a whole process, as shipped: plover's is the optimized binary `cargo xtask db
//! lint` runs (`xtask_launch::lint_build`), squawk's the prebuilt binary of its PyPI
//! package, installed for the benchmark by `.ci/squawk-up`, never a dependency.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use xshell::{Shell, cmd};
use xtask_launch::{forget_crate_env, lint_build};

use crate::flags::BenchLint;

/// One set of files both tools lint.
struct Workload {
    label: String,
    /// The project directory (`db lint --workdir`).
    dir: PathBuf,
    /// Its migration files, in name order (squawk's arguments).
    files: Vec<PathBuf>,
    bytes: u64,
    /// Removes a generated project when the run ends.
    _generated: Option<RemoveOnDrop>,
}

/// The medians and minimums of one tool on one workload.
struct Timing {
    median: Duration,
    min: Duration,
}

impl BenchLint {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let root = sh.current_dir();
        let rounds = self.rounds as usize;

        eprintln!(
            "building the optimized xtask `db lint` runs ({})...",
            lint_build::binary(&root).display()
        );
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(&cargo);
        forget_crate_env(&mut build);
        let built = build
            .arg("build")
            .arg("--quiet")
            .args(lint_build::cargo_args(&root))
            .status()
            .context("building the xtask for db lint")?;
        ensure!(built.success(), "building the xtask for db lint failed");
        let xtask = lint_build::binary(&root);
        let squawk = squawk(sh, &root)?;
        let squawk_version = cmd!(sh, "{squawk} --version")
            .quiet()
            .read()
            .context("squawk --version")?;

        let mut workloads = vec![generated(&root, self.files as usize)?];
        for dir in &self.project {
            workloads.push(project(dir)?);
        }

        println!(
            "db lint (as `cargo xtask db lint` runs it) and {squawk_version}, whole runs, {rounds} rounds, alternating:"
        );
        for w in &workloads {
            let statements = statements_linted(&xtask, w)?;
            let mut ours = Vec::with_capacity(rounds);
            let mut theirs = Vec::with_capacity(rounds);
            let mut via_cargo = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                ours.push(time(&mut lint_command(&xtask, &w.dir), "xtask db lint")?);
                theirs.push(time(Command::new(&squawk).args(&w.files), "squawk")?);
                let mut c = Command::new(&cargo);
                forget_crate_env(&mut c);
                c.current_dir(&root)
                    .args(["xtask", "db", "lint", "--format", "json", "--workdir"])
                    .arg(&w.dir);
                via_cargo.push(time(&mut c, "cargo xtask db lint")?);
            }
            let (o, t, c) = (timing(ours), timing(theirs), timing(via_cargo));
            println!(
                "{}: {} files, {:.1} MB, {statements} statements",
                w.label,
                w.files.len(),
                w.bytes as f64 / 1e6
            );
            let row = |name: &str, t: &Timing| {
                println!(
                    "  {name:<34} median {:8.1} ms  min {:8.1} ms",
                    ms(t.median),
                    ms(t.min)
                );
            };
            row("plover db lint (the binary)", &o);
            row(&squawk_version, &t);
            row("cargo xtask db lint (with cargo)", &c);
            println!(
                "  plover/squawk {:.2}x (median); through cargo's up-to-date checks {:.2}x",
                o.median.as_secs_f64() / t.median.as_secs_f64(),
                c.median.as_secs_f64() / t.median.as_secs_f64()
            );
        }
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn timing(mut samples: Vec<Duration>) -> Timing {
    samples.sort();
    Timing {
        median: samples[samples.len() / 2],
        min: samples[0],
    }
}

fn lint_command(xtask: &Path, dir: &Path) -> Command {
    let mut c = Command::new(xtask);
    c.args(["db", "lint", "--format", "json", "--workdir"])
        .arg(dir);
    c
}

/// Runs the lint once and checks that it read every file: the statements it linted.
fn statements_linted(xtask: &Path, w: &Workload) -> Result<u64> {
    let out = lint_command(xtask, &w.dir)
        .output()
        .with_context(|| format!("running {}", xtask.display()))?;
    if !matches!(out.status.code(), Some(0 | 1)) {
        bail!(
            "db lint could not run on {}:\n{}",
            w.dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading db lint's JSON report")?;
    let checked = report["files_checked"].as_u64().unwrap_or(0);
    ensure!(
        checked == w.files.len() as u64,
        "db lint checked {checked} of the {} files of {}",
        w.files.len(),
        w.dir.display()
    );
    Ok(report["statements"].as_u64().unwrap_or(0))
}

/// N generated migration files in a project of their own under the temporary directory.
fn generated(root: &Path, files: usize) -> Result<Workload> {
    let dir = std::env::temp_dir().join(format!("plover-bench-lint-{}", std::process::id()));
    let cleanup = RemoveOnDrop(dir.clone());
    let migrations = dir.join("supabase").join("migrations");
    std::fs::create_dir_all(&migrations)
        .with_context(|| format!("creating {}", migrations.display()))?;
    std::fs::copy(
        root.join("supabase").join("config.toml"),
        dir.join("supabase").join("config.toml"),
    )
    .context("copying supabase/config.toml")?;
    let mut paths = Vec::with_capacity(files);
    let mut bytes = 0;
    for i in 0..files {
        let path = migrations.join(format!("{}_table_{i}.sql", 20250101000000_i64 + i as i64));
        let sql = generated_migration(i);
        bytes += sql.len() as u64;
        std::fs::write(&path, sql).with_context(|| format!("writing {}", path.display()))?;
        paths.push(path);
    }
    Ok(Workload {
        label: format!("{files} generated files"),
        dir,
        files: paths,
        bytes,
        _generated: Some(cleanup),
    })
}

/// A project directory with `supabase/migrations/*.sql`.
fn project(dir: &Path) -> Result<Workload> {
    let migrations = dir.join("supabase").join("migrations");
    let mut files = Vec::new();
    let mut bytes = 0;
    let entries = std::fs::read_dir(&migrations).with_context(|| {
        format!(
            "reading {}: --project takes a directory holding supabase/migrations",
            migrations.display()
        )
    })?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", migrations.display()))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "sql") {
            bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            files.push(path);
        }
    }
    ensure!(
        !files.is_empty(),
        "no .sql file in {}",
        migrations.display()
    );
    files.sort();
    let label = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(Workload {
        label,
        dir: dir.to_path_buf(),
        files,
        bytes,
        _generated: None,
    })
}

/// PLOVER_SQUAWK, else squawk as `.ci/squawk-up` installs it under target/bench-lint.
fn squawk(sh: &Shell, root: &Path) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("PLOVER_SQUAWK") {
        return Ok(PathBuf::from(path));
    }
    let script = root.join(".ci").join("squawk-up");
    let dir = root.join("target").join("bench-lint").join("squawk");
    let path = cmd!(sh, "{script} {dir}")
        .read()
        .context("installing squawk with .ci/squawk-up (or set PLOVER_SQUAWK)")?;
    Ok(PathBuf::from(path.trim()))
}

/// One whole run; findings (a non-zero exit) are fine, a signal is not.
fn time(cmd: &mut Command, what: &str) -> Result<Duration> {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {what}"))?;
    let elapsed = start.elapsed();
    ensure!(status.code().is_some(), "{what} was killed by a signal");
    Ok(elapsed)
}

/// One generated migration: a table with RLS, an index, a policy, grants and a comment.
fn generated_migration(i: usize) -> String {
    format!(
        "-- migration {i}\n\
         create table if not exists public.t{i} (\n  \
           id bigint generated always as identity primary key,\n  \
           user_id uuid not null default auth.uid(),\n  \
           name text not null,\n  \
           created_at timestamptz not null default now()\n\
         );\n\
         alter table public.t{i} enable row level security;\n\
         create index if not exists t{i}_user_id_idx on public.t{i} (user_id);\n\
         drop policy if exists \"own rows\" on public.t{i};\n\
         create policy \"own rows\" on public.t{i} for select to authenticated\n  \
           using ((select auth.uid()) = user_id);\n\
         revoke all on table public.t{i} from anon;\n\
         grant select, insert on table public.t{i} to authenticated;\n\
         comment on table public.t{i} is 'table {i}';\n"
    )
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
