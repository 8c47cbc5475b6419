//! `cargo xtask db ...`: the project's migrations from a terminal or CI.
//!
//! Glue only: the project layout and target resolution live in `plover::project`,
//! planning and applying in `plover::Migrator`. This module turns flags into a
//! [`Ctx`], dispatches to one file per command, and maps results to exit codes. It
//! must never print a connection string unredacted, nor take a secret from argv.

mod link;
mod new;
mod push;
mod status;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use plover::project::{Project, Target, Vars};

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
                DbCommand::Push(cmd) => cmd.run(&ctx).await,
                DbCommand::Link(cmd) => cmd.run(&ctx),
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
