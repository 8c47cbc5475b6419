//! `cargo xtask bench …` and `cargo xtask bench-fresh …`: run the benchmarks' crate
//! (bench/, package `plover-bench`) with the same arguments. The benchmarks live
//! there so that building the xtask builds none of their dependencies.
//!
//! The bench is built in the xtask's own profile: `cargo xtask bench` runs a dev
//! build (the bench says so: plover is not optimised in it), `cargo run --release
//! -p xtask -- bench` a release one. The xtask's process becomes cargo's, so
//! output, exit codes and Ctrl-C (the bench cleans up on it) are the bench's own.

use std::ffi::OsString;
use std::process::{Command, ExitCode};

use anyhow::Result;
use xshell::{Shell, cmd};

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

/// `cargo run [--release] --package plover-bench -- ARGS`, in place of this process.
fn run_bench(sh: &Shell, args: impl IntoIterator<Item = OsString>) -> Result<ExitCode> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let release = (!cfg!(debug_assertions)).then_some("--release");
    let args: Vec<OsString> = args.into_iter().collect();
    let run = cmd!(
        sh,
        "{cargo} run {release...} --package plover-bench -- {args...}"
    );
    let mut run: Command = run.into();
    forget_crate_env(&mut run);
    exec(run)
}

/// Leaves out of `command`'s environment what cargo set for the xtask's run
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...), as xtask/launch does for the
/// xtask's build: build scripts that watch those (ring's does) would see them change
/// between builds and rebuild, with everything above them, on every switch.
fn forget_crate_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_MANIFEST_LINKS",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&name.as_ref())
        {
            command.env_remove(name.as_ref());
        }
    }
}

#[cfg(unix)]
fn exec(mut command: Command) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let error = command.exec();
    Err(anyhow::Error::new(error).context("running cargo for the bench"))
}

#[cfg(not(unix))]
fn exec(mut command: Command) -> Result<ExitCode> {
    use anyhow::Context;
    let status = command.status().context("running cargo for the bench")?;
    Ok(ExitCode::from(
        status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(1),
    ))
}
