//! `cargo xtask db link --env NAME`: remember the default environment.

use std::process::ExitCode;

use anyhow::{Context, Result};
use plover::project::Vars;

use super::Ctx;
use crate::flags::DbLink;

impl DbLink {
    pub fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let env = ctx
            .env
            .as_deref()
            .context("db link needs --env NAME, e.g. `cargo xtask db link --env staging`")?;
        // Only an environment that resolves can be linked: a typo fails here, not later.
        let vars = Vars::from_process_and_dotenv(ctx.project.workdir())?;
        let target = ctx.project.target(env, &vars)?;
        let path = ctx.project.link(env)?;
        println!("linked {target}");
        println!(
            "commands without --env now use {env} (recorded in {})",
            path.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}
