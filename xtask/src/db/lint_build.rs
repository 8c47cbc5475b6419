//! `cargo xtask db lint` in an xtask built without the `lint` feature (`cargo xtask`
//! turns it on where libclang is installed, see xtask/launch; without libclang, or
//! run as `cargo run -p xtask`, it is off): builds the optimized xtask with it that
//! `cargo xtask db lint` runs (`xtask_launch::lint_build`: release, into
//! `target/lint`), with cargo's progress, and runs that with the same arguments.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use xtask_launch::{forget_crate_env, lint_build};

use super::{Ctx, EXIT_FAILED};
use crate::flags::DbLint;

/// Set in the child, so a child that somehow lacks the feature cannot loop.
const GUARD: &str = "PLOVER_XTASK_LINT_CHILD";

impl DbLint {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        if std::env::var_os(GUARD).is_some() {
            bail!("this xtask was built for `db lint` but without its `lint` feature");
        }
        let root = ctx.sh.current_dir();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!(
            "building an optimized `db lint` (with the Postgres parser, pg_query) into {} once: minutes the first time",
            lint_build::target_dir(&root).display()
        );
        let mut build = Command::new(&cargo);
        forget_crate_env(&mut build);
        let built = build
            .arg("build")
            .args(lint_build::cargo_args(&root))
            .status()
            .context("running cargo to build the lint")?;
        if !built.success() {
            bail!(
                "building `db lint` failed (see above); its Postgres parser (pg_query) needs libclang: \
                 apt-get install libclang1-14 libclang-common-14-dev (as root, .ci/libclang-up does it)"
            );
        }
        let xtask = lint_build::binary(&root);
        let status = Command::new(&xtask)
            .args(std::env::args_os().skip(1))
            .env(GUARD, "1")
            .status()
            .with_context(|| format!("running {}", xtask.display()))?;
        Ok(match status.code() {
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(EXIT_FAILED)),
            None => ExitCode::from(EXIT_FAILED),
        })
    }
}
