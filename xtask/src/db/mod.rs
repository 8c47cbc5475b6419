//! `cargo xtask db ...`: the project's migrations from a terminal or CI.
//!
//! Glue only: the project layout and target resolution live in `plover::project`,
//! planning and applying in `plover::Migrator`. This module turns flags into a
//! [`Ctx`], dispatches to one file per command, and maps results to exit codes. It
//! must never print a connection string unredacted, nor take a secret from argv.

mod adopt;
mod link;
#[cfg(feature = "lint")]
mod lint;
#[cfg(not(feature = "lint"))]
mod lint_build;
mod local;

pub use local::started as local_database;
mod dump;
mod new;
mod pgtools;
mod progress;
mod pull;
mod push;
mod repair;
mod reset;
mod seed;
mod status;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, Result, bail};
use plover::project::{Project, Protection, Target, Vars};

use crate::flags::{Db, DbCommand};

/// `db status` found something that needs attention.
pub const EXIT_ATTENTION: u8 = 1;
/// The command failed or was refused.
pub const EXIT_FAILED: u8 = 2;

impl Db {
    /// Runs the command; errors are printed here and become [`EXIT_FAILED`].
    pub async fn run(self, workspace_root: &Path) -> ExitCode {
        let result = async {
            let ctx = Ctx::new(
                self.workdir.unwrap_or_else(|| workspace_root.to_owned()),
                self.env,
            )?;
            match self.command {
                DbCommand::New(cmd) => cmd.run(&ctx),
                DbCommand::Status(cmd) => cmd.run(&ctx).await,
                DbCommand::Lint(cmd) => cmd.run(&ctx).await,
                DbCommand::Push(cmd) => cmd.run(&ctx).await,
                DbCommand::Link(cmd) => cmd.run(&ctx),
                DbCommand::Start(cmd) => cmd.run(&ctx).await,
                DbCommand::Stop(cmd) => cmd.run(&ctx),
                DbCommand::ResetLocal(cmd) => cmd.run(&ctx).await,
                DbCommand::Repair(cmd) => cmd.run(&ctx).await,
                DbCommand::Adopt(cmd) => cmd.run(&ctx).await,
                DbCommand::Reset(cmd) => cmd.run(&ctx).await,
                DbCommand::Dump(cmd) => cmd.run(&ctx).await,
                DbCommand::Pull(cmd) => cmd.run(&ctx).await,
            }
        }
        .await;
        match result {
            Ok(code) => code,
            Err(e) => {
                // The chain without a backtrace (RUST_BACKTRACE is for panics here).
                eprintln!("error: {e}");
                for cause in e.chain().skip(1) {
                    eprintln!("  caused by: {cause}");
                }
                ExitCode::from(EXIT_FAILED)
            }
        }
    }
}

/// What every `db` command works on: the project and the `--env` asked for.
pub struct Ctx {
    project: Project,
    env: Option<String>,
}

impl Ctx {
    fn new(workdir: PathBuf, env: Option<String>) -> Result<Ctx> {
        let project = Project::load(&workdir)
            .with_context(|| format!("reading the project in {}", workdir.display()))?;
        Ok(Ctx { project, env })
    }

    /// The database to talk to: `--env`, else the linked environment, else `local`.
    fn target(&self) -> Result<Target> {
        let env = self.project.choose_env(self.env.as_deref())?;
        let vars = Vars::from_process_and_dotenv(self.project.workdir())?;
        Ok(self.project.target(&env, &vars)?)
    }

    /// The project's migrations, with its app name.
    fn migrator(&self) -> Result<plover::Migrator> {
        let dir = self.project.migrations_dir();
        let source = plover::Source::from_dir(&dir)
            .with_context(|| format!("loading the migrations in {}", dir.display()))?;
        Ok(plover::Migrator::new(source).app(self.project.app()))
    }
}

/// Connects to `target`; the error names it redacted.
async fn connect(target: &Target) -> Result<tokio_postgres::Client> {
    plover::connect(target.url())
        .await
        .with_context(|| format!("connecting to {target}"))
}

/// On a protected target: `--confirm NAME`, or the name typed back at a terminal
/// (`what` says what is about to happen, e.g. "apply 3 migration(s)"). A `--confirm`
/// that names another environment is refused everywhere.
fn confirm(target: &Target, given: Option<&str>, what: &str) -> Result<()> {
    confirm_when(target, target.protection(), given, what)
}

/// [`confirm`] with the protection given: `Protection::Protected` asks even on an
/// environment that is not marked protected (for `db reset`).
fn confirm_when(
    target: &Target,
    protection: Protection,
    given: Option<&str>,
    what: &str,
) -> Result<()> {
    let env = target.env();
    if let Some(name) = given {
        if name != env {
            bail!(
                "--confirm {name} does not match the environment {env}; nothing was changed (pass --confirm {env} to {what} there)"
            );
        }
        return Ok(());
    }
    if protection == Protection::Unprotected {
        return Ok(());
    }
    let stdin = std::io::stdin();
    let why = if target.protection() == Protection::Unprotected {
        "this is destructive"
    } else {
        "it is protected"
    };
    if !stdin.is_terminal() || !std::io::stderr().is_terminal() {
        bail!(
            "{env}: {why} and there is no terminal to confirm at; nothing was changed (pass --confirm {env} to {what} there)"
        );
    }
    eprint!("{env}: {why}; type the environment's name to {what}: ");
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the confirmation")?;
    if line.trim() != env {
        bail!("the confirmation did not match {env}; nothing was changed");
    }
    Ok(())
}

/// A spinner with `message` on stderr while something slow runs (pg_dump, a reset);
/// hidden when stderr is not a terminal. Call `finish_and_clear` when done.
fn spinner(message: impl Into<std::borrow::Cow<'static, str>>) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}
