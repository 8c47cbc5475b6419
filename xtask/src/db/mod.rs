//! `cargo xtask db ...`: the project's migrations from a terminal or CI.
//!
//! Glue only: the project layout and target resolution live in `plover::project`,
//! planning and applying in `plover::Migrator`. This module turns flags into a
//! [`Ctx`], dispatches to one file per command, and maps results to exit codes. It
//! must never print a connection string unredacted, nor take a secret from argv.

mod adopt;
mod baseline;
mod copy_schema;
mod diff;
mod down;
mod image;
mod link;
#[cfg(feature = "lint")]
mod lint;
#[cfg(not(feature = "lint"))]
mod lint_build;
mod local;

pub use local::started as local_database;
mod dump;
mod extensions;
mod fleet;
mod gen_types;
mod grants;
pub use extensions::install_native as install_stand_ins;
mod new;
mod pgtap;
mod pgtools;
mod progress;
mod pull;
mod push;
mod repair;
mod reset;
mod restore;
mod seed;
mod squash;
mod status;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, Result, bail};
use plover::project::{LOCAL, Project, Protection, Target, Vars};
use xshell::Shell;

use crate::flags::{Db, DbCommand};

/// `db status` found something that needs attention.
pub const EXIT_ATTENTION: u8 = 1;
/// The command failed or was refused.
pub const EXIT_FAILED: u8 = 2;

impl Db {
    /// Runs the command in the project under --workdir, else the workspace (`sh`'s
    /// directory); errors are printed here and become [`EXIT_FAILED`].
    pub async fn run(self, sh: Shell) -> ExitCode {
        let result = async {
            let workdir = self.workdir.unwrap_or_else(|| sh.current_dir());
            let ctx = Ctx::new(sh, workdir, self.env)?;
            match self.command {
                DbCommand::New(cmd) => cmd.run(&ctx),
                DbCommand::Status(cmd) => cmd.run(&ctx).await,
                DbCommand::Lint(cmd) => cmd.run(&ctx).await,
                DbCommand::Push(cmd) => cmd.run(&ctx).await,
                DbCommand::Link(cmd) => cmd.run(&ctx),
                DbCommand::Start(cmd) => cmd.run(&ctx).await,
                DbCommand::Stop(cmd) => cmd.run(&ctx),
                DbCommand::ResetLocal(cmd) => cmd.run(&ctx).await,
                DbCommand::Image(cmd) => cmd.run(&ctx),
                DbCommand::Repair(cmd) => cmd.run(&ctx).await,
                DbCommand::Down(cmd) => cmd.run(&ctx).await,
                DbCommand::Baseline(cmd) => cmd.run(&ctx).await,
                DbCommand::Squash(cmd) => cmd.run(&ctx).await,
                DbCommand::Adopt(cmd) => cmd.run(&ctx).await,
                DbCommand::Reset(cmd) => cmd.run(&ctx).await,
                DbCommand::Restore(cmd) => cmd.run(&ctx).await,
                DbCommand::Dump(cmd) => cmd.run(&ctx).await,
                DbCommand::Pull(cmd) => cmd.run(&ctx).await,
                DbCommand::Diff(cmd) => cmd.run(&ctx).await,
                DbCommand::Sync(cmd) => cmd.run(&ctx).await,
                DbCommand::CopySchema(cmd) => cmd.run(&ctx).await,
                DbCommand::Extensions(cmd) => cmd.run(&ctx),
                DbCommand::Gen(cmd) => match cmd.command {
                    crate::flags::GenCommand::Types(types) => types.run(&ctx).await,
                },
                DbCommand::Test(cmd) => cmd.run(&ctx).await,
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

/// What every `db` command works on: the project and the `--env` asked for, and the
/// xtask's shell (in the workspace root, which holds the local image's recipe).
pub struct Ctx {
    sh: Shell,
    project: Project,
    env: Option<String>,
}

impl Ctx {
    fn new(sh: Shell, workdir: PathBuf, env: Option<String>) -> Result<Ctx> {
        // Absolute, so paths handed to child processes (initdb as another user, from
        // `/`) still lead there.
        let workdir = std::fs::canonicalize(&workdir)
            .with_context(|| format!("--workdir {}: no such directory", workdir.display()))?;
        let project = Project::load(&workdir)
            .with_context(|| format!("reading the project in {}", workdir.display()))?;
        Ok(Ctx { sh, project, env })
    }

    /// The database to talk to: `--env`, else the linked environment, else `local`.
    fn target(&self) -> Result<Target> {
        let env = self.project.choose_env(self.env.as_deref())?;
        let vars = Vars::from_process_and_dotenv(self.project.workdir())?;
        Ok(self.project.target(&env, &vars)?)
    }

    /// A named environment (as `--env` takes it), or a URL (given without a
    /// password, which comes from PGPASSWORD or ~/.pgpass).
    fn target_of(&self, given: &str) -> Result<Target> {
        if given.contains("://") {
            if plover::ConnInfo::parse(given).is_ok_and(|c| c.config().get_password().is_some()) {
                bail!(
                    "{}: a URL here must not hold a password (it would stay in your shell's history and in `ps`): put it in PGPASSWORD or ~/.pgpass, or name an environment whose <NAME>_DATABASE_URL holds the URL",
                    plover::redact(given)
                );
            }
            return Ok(self
                .project
                .target("given", &Vars::from_pairs([("GIVEN_DATABASE_URL", given)]))?);
        }
        let env = self.project.choose_env(Some(given))?;
        let vars = Vars::from_process_and_dotenv(self.project.workdir())?;
        Ok(self.project.target(&env, &vars)?)
    }

    /// The project's migrations, with its app name; warns about each `.sql` file
    /// skipped as not a migration.
    fn migrator(&self) -> Result<plover::Migrator> {
        let dir = self.project.migrations_dir();
        let source = plover::Source::from_dir(&dir)
            .with_context(|| format!("loading the migrations in {}", dir.display()))?;
        for warning in source.skipped_warnings() {
            eprintln!("warning: {warning}");
        }
        for warning in cli_reads_down_files(&source) {
            eprintln!("warning: {warning}");
        }
        Ok(plover::Migrator::new(source).app(self.project.app()))
    }
}

/// In a Supabase project, down files beside their migrations: the Supabase CLI reads
/// every `<digits>_*.sql` file there as a migration, so its `db push` would run them.
fn cli_reads_down_files(source: &plover::Source) -> Vec<String> {
    if !source.is_supabase() {
        return Vec::new();
    }
    source
        .migrations()
        .iter()
        .filter_map(|m| m.down())
        .filter(|d| !d.file().contains("/down/"))
        .map(|d| {
            format!(
                "{}: the Supabase CLI reads this as a migration of version {} and would run it on `supabase db push`; if you use the CLI too, move it to {}/down/{}_{}.sql",
                d.file(),
                d.version_text(),
                source.origin(),
                d.version_text(),
                d.name()
            )
        })
        .collect()
}

/// Connects to `target`; the error names it redacted.
async fn connect(target: &Target) -> Result<tokio_postgres::Client> {
    target
        .conninfo()
        .connect()
        .await
        .with_context(|| format!("connecting to {target}"))
}

/// Which targets a command asks on before it changes anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// A destructive command (reset, repair, adopt): asks on every target but the
    /// plover-managed local cluster (and there too when it is marked protected).
    Destructive,
    /// Asks on protected environments only (push, seed loading).
    WhenProtected,
}

/// Why a command must be confirmed on `target`, or `None` when it need not be.
fn why_confirm(target: &Target, ask: Ask) -> Option<&'static str> {
    if target.protection() == Protection::Protected {
        return Some("it is protected");
    }
    match ask {
        Ask::WhenProtected => None,
        Ask::Destructive if target.is_local_cluster() => None,
        Ask::Destructive if target.env() == LOCAL => Some(
            "this is destructive (`local` is DATABASE_URL here, not the local development database)",
        ),
        Ask::Destructive => Some("this is destructive"),
    }
}

/// Asks before `what` (e.g. "apply 3 migration(s)") happens on `target`, when `ask`
/// says so: `--confirm NAME` (`given`, any case), or the environment's name typed
/// back at a terminal. Without either it refuses. A `--confirm` that names another
/// environment is refused everywhere. Every prompt and refusal shows the target's
/// server (`host:port/database`).
fn confirm(target: &Target, ask: Ask, given: Option<&str>, what: &str) -> Result<()> {
    let env = target.env();
    let server = target.server();
    if let Some(name) = given {
        if !name.eq_ignore_ascii_case(env) {
            bail!(
                "--confirm {name} does not match the environment {env} ({server}); nothing was changed (pass --confirm {env} to {what} there)"
            );
        }
        return Ok(());
    }
    let Some(why) = why_confirm(target, ask) else {
        return Ok(());
    };
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || !std::io::stderr().is_terminal() {
        bail!(
            "{env}: {why} and there is no terminal to confirm at; nothing was changed on {server} (pass --confirm {env} to {what} there)"
        );
    }
    eprint!("{env}: {why}; type the environment's name to {what} on {server}: ");
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the confirmation")?;
    if !line.trim().eq_ignore_ascii_case(env) {
        bail!("the confirmation did not match {env}; nothing was changed on {server}");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn target(env: &str, vars: &[(&str, &str)], plover_toml: Option<&str>) -> Target {
        let project = Project::parse("/w", None, plover_toml).unwrap();
        project
            .target(env, &Vars::from_pairs(vars.iter().copied()))
            .unwrap()
    }

    #[test]
    fn down_files_beside_migrations_of_a_supabase_project_are_flagged() {
        let files = [
            ("supabase/migrations/1_a.sql", "create table a ();"),
            ("supabase/migrations/1_a.down.sql", "drop table a;"),
            ("supabase/migrations/2_b.sql", "create table b ();"),
            ("supabase/migrations/down/2_b.sql", "drop table b;"),
        ];
        let load = |origin: &str| {
            plover::Source::from_files(
                origin,
                files.iter().map(|(f, s)| (f.to_string(), s.as_bytes())),
            )
            .unwrap()
        };
        let warnings = cli_reads_down_files(&load("supabase/migrations"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0]
                .starts_with("supabase/migrations/1_a.down.sql: the Supabase CLI reads this")
                && warnings[0].ends_with("move it to supabase/migrations/down/1_a.sql"),
            "{warnings:?}"
        );
        assert!(cli_reads_down_files(&load("db/migrations")).is_empty());
    }

    #[test]
    fn only_the_local_cluster_is_destroyed_without_asking() {
        let url = [
            ("DATABASE_URL", "postgres://u@db.example.com/x"),
            ("STAGING_DATABASE_URL", "postgres://u@db.example.com/x"),
            ("PROD_DATABASE_URL", "postgres://u@db.example.com/x"),
        ];
        let cluster = target("local", &[], None);
        assert_eq!(why_confirm(&cluster, Ask::Destructive), None);
        assert_eq!(why_confirm(&cluster, Ask::WhenProtected), None);
        // `local` from DATABASE_URL may point anywhere.
        let local = target("local", &url, None);
        assert!(why_confirm(&local, Ask::Destructive).is_some_and(|w| w.contains("DATABASE_URL")));
        assert_eq!(why_confirm(&local, Ask::WhenProtected), None);
        let staging = target("staging", &url, None);
        assert_eq!(
            why_confirm(&staging, Ask::Destructive),
            Some("this is destructive")
        );
        assert_eq!(why_confirm(&staging, Ask::WhenProtected), None);
        for env in ["prod", "PROD", "Prod"] {
            let prod = target(env, &url, None);
            assert_eq!(
                why_confirm(&prod, Ask::WhenProtected),
                Some("it is protected")
            );
            assert_eq!(
                why_confirm(&prod, Ask::Destructive),
                Some("it is protected")
            );
        }
        // A local cluster marked protected asks too.
        let guarded = target(
            "local",
            &[],
            Some("[environments.local]\nprotected = true\n"),
        );
        assert_eq!(
            why_confirm(&guarded, Ask::Destructive),
            Some("it is protected")
        );
    }

    #[test]
    fn confirm_names_the_server_and_takes_any_case() {
        let vars = [(
            "PROD_DATABASE_URL",
            "postgres://u:s3cr3t@db.example.com:6543/x",
        )];
        let prod = target("prod", &vars, None);
        confirm(&prod, Ask::WhenProtected, Some("PROD"), "push").unwrap();
        let e = confirm(&prod, Ask::WhenProtected, Some("staging"), "push")
            .unwrap_err()
            .to_string();
        assert!(e.contains("(db.example.com:6543/x)"), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
    }
}
