//! `cargo xtask bench …` and `cargo xtask bench-fresh …`: run the benchmarks' crate
//! (bench/, package `plover-bench`) with the same arguments. The benchmarks live
//! there so that building the xtask builds none of their dependencies.
//!
//! The bench is built in release whatever the xtask's profile: speed is measured in
//! release builds, and a dev build of plover (unoptimised) would make every ratio
//! wrong. `bench lint` is the exception: it times a release xtask it builds itself,
//! so its bench process runs in the xtask's profile and costs no release build. A dev
//! build for a quick check is `cargo run -p plover-bench -- ARGS`. Nothing in CI or
//! the tests runs the bench (its unit tests run in `cargo test`'s dev profile). The
//! xtask's process becomes cargo's, so output, exit codes and Ctrl-C (the bench
//! cleans up on it) are the bench's own.

use std::ffi::OsString;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};
use xshell::{Shell, cmd};
use xtask_launch::{exec, forget_crate_env};

use crate::flags::{Bench, BenchFresh};

impl Bench {
    pub fn run(self, sh: &Shell) -> Result<ExitCode> {
        run_bench(sh, self.args)
    }
}

impl BenchFresh {
    pub fn run(self, sh: &Shell) -> Result<ExitCode> {
        run_bench(sh, [OsString::from("fresh")].into_iter().chain(self.args))
    }
}

/// `cargo run --release --package plover-bench -- ARGS` (for `lint`, in the xtask's
/// own profile), in place of this process.
fn run_bench(sh: &Shell, args: impl IntoIterator<Item = OsString>) -> Result<ExitCode> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let args: Vec<OsString> = args.into_iter().collect();
    let lint = args.first().is_some_and(|a| a == "lint");
    let release = (!lint || !cfg!(debug_assertions)).then_some("--release");
    let run = cmd!(
        sh,
        "{cargo} run {release...} --package plover-bench -- {args...}"
    );
    let mut run: Command = run.into();
    forget_crate_env(&mut run);
    exec(run).context("running cargo for the bench")
}
