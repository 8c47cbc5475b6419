//! `cargo xtask bench lint`: `db lint` against squawk on the same generated files,
//! side by side in one run. Both run as whole processes, as a developer or CI runs
//! them; squawk is installed from crates.io for the benchmark, never a dependency.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use xshell::{Shell, cmd};

use crate::flags::BenchLint;

/// squawk's last release that builds with the workspace's rustc.
const SQUAWK_VERSION: &str = "2.66.0";

impl BenchLint {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let root = sh.current_dir();
        let files = self.files as usize;
        let rounds = self.rounds as usize;

        let lint_target = root.join("target").join("lint");
        eprintln!("building a release xtask with `db lint` (target/lint)...");
        cmd!(
            sh,
            "cargo build --release --quiet --package xtask --features lint --target-dir {lint_target}"
        )
        .run()
        .context("building the release xtask with the lint feature")?;
        let xtask = lint_target.join("release").join("xtask");
        let squawk = squawk(sh, &root)?;

        let dir = std::env::temp_dir().join(format!("plover-bench-lint-{}", std::process::id()));
        let _cleanup = RemoveOnDrop(dir.clone());
        let migrations = dir.join("supabase").join("migrations");
        std::fs::create_dir_all(&migrations)
            .with_context(|| format!("creating {}", migrations.display()))?;
        std::fs::copy(
            root.join("supabase").join("config.toml"),
            dir.join("supabase").join("config.toml"),
        )
        .context("copying supabase/config.toml")?;
        let mut paths = Vec::with_capacity(files);
        for i in 0..files {
            let path = migrations.join(format!("{}_table_{i}.sql", 20250101000000_i64 + i as i64));
            std::fs::write(&path, generated_migration(i))
                .with_context(|| format!("writing {}", path.display()))?;
            paths.push(path);
        }

        let mut ours = Vec::with_capacity(rounds);
        let mut theirs = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            ours.push(time(
                Command::new(&xtask)
                    .args(["db", "lint", "--format", "json", "--workdir"])
                    .arg(&dir),
                "xtask db lint",
            )?);
            theirs.push(time(Command::new(&squawk).args(&paths), "squawk")?);
        }
        ours.sort();
        theirs.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (o, t) = (ours[rounds / 2], theirs[rounds / 2]);
        println!(
            "linting {files} files ({} statements), {rounds} rounds, side by side:",
            files * 8
        );
        println!(
            "  plover db lint  median {:8.1} ms  min {:8.1} ms",
            ms(o),
            ms(ours[0])
        );
        println!(
            "  squawk {SQUAWK_VERSION}   median {:8.1} ms  min {:8.1} ms",
            ms(t),
            ms(theirs[0])
        );
        println!(
            "  plover/squawk   {:.2}x (median)",
            o.as_secs_f64() / t.as_secs_f64()
        );
        Ok(())
    }
}

/// PLOVER_SQUAWK, else squawk installed (once) under target/bench-lint.
fn squawk(sh: &Shell, root: &Path) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("PLOVER_SQUAWK") {
        return Ok(PathBuf::from(path));
    }
    let prefix = root.join("target").join("bench-lint").join("squawk");
    let bin = prefix.join("bin").join("squawk");
    if !bin.exists() {
        eprintln!("installing squawk {SQUAWK_VERSION} from crates.io (target/bench-lint)...");
        cmd!(
            sh,
            "cargo install --quiet squawk --version {SQUAWK_VERSION} --locked --root {prefix}"
        )
        .run()
        .context("cargo install squawk")?;
    }
    Ok(bin)
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
