//! The process's interface: flags and subcommands, `DATABASE_URL`, logging to stderr
//! (`RUST_LOG`), and how an error is shown.
//!
//! No command runs here. The connection string is read from the environment and
//! never taken as a flag, so it stays out of argv and `--help`.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use plover::ConnInfo;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// The money tracker: migrates its database on boot, then serves HTTP.
///
/// Environment: DATABASE_URL (required by `serve` and `migrate`), BIND, RUST_LOG.
/// Exit codes: 0 success, 1 error (printed to stderr), 2 bad usage.
#[derive(Debug, Parser)]
#[command(name = "app", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Flags of `serve`, the default command.
    #[command(flatten)]
    pub serve: Serve,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve HTTP (the default).
    Serve(Serve),
    /// Apply pending migrations and exit (for an initContainer or a Job).
    Migrate,
    /// List the embedded migrations, one `<version> <name>` per line; needs no database.
    Migrations,
}

#[derive(Debug, Clone, Args)]
pub struct Serve {
    /// Address to listen on, `host:port`; port 0 picks a free port. Checked when
    /// binding, so a stray BIND does not break `migrate` or `migrations`.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
}

impl Cli {
    /// The command to run: `serve` when none is given.
    pub fn resolve(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

/// The connection string from `DATABASE_URL`, parsed once; a value that does not
/// parse is an error naming the variable, never showing the value.
pub fn database_url() -> Result<ConnInfo> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => {
            ConnInfo::parse(&url).map_err(|e| anyhow::anyhow!("DATABASE_URL {e}"))
        }
        Ok(_) => bail!(
            "DATABASE_URL is empty; set it to the database's connection string, e.g. postgres://postgres@127.0.0.1:54322/postgres"
        ),
        Err(std::env::VarError::NotPresent) => bail!(
            "DATABASE_URL is not set; set it to the database's connection string, e.g. postgres://postgres@127.0.0.1:54322/postgres"
        ),
        Err(e) => Err(e).context("reading DATABASE_URL"),
    }
}

/// The error and its causes, one per paragraph; multi-line messages (plover's name
/// the file and line of a failed migration) are kept whole and indented. No backtrace,
/// even with `RUST_BACKTRACE` set: this is for the operator, not a crash report.
pub fn report(e: &anyhow::Error) -> String {
    let mut out = format!("error: {e}");
    for cause in e.chain().skip(1) {
        out.push_str("\ncaused by:");
        for line in cause.to_string().lines() {
            out.push_str("\n    ");
            out.push_str(line);
        }
    }
    out
}

/// Logs to stderr, filtered by `RUST_LOG`; by default `info`, without the server's
/// notices (`... does not exist, skipping`) that tokio-postgres logs at info.
pub fn init_logging() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::builder()
            .with_default_directive(LevelFilter::INFO.into())
            .parse_lossy(directives),
        _ => EnvFilter::new("info,tokio_postgres=warn"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Command {
        let mut argv = vec!["app"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .expect("valid arguments")
            .resolve()
    }

    #[test]
    fn serve_is_the_default() {
        let Command::Serve(s) = parse(&["--bind", "127.0.0.1:0"]) else {
            panic!("expected serve");
        };
        assert_eq!(s.bind, "127.0.0.1:0");
        let Command::Serve(s) = parse(&["serve", "--bind", "[::1]:9000"]) else {
            panic!("expected serve");
        };
        assert_eq!(s.bind, "[::1]:9000");
        assert!(matches!(parse(&["migrate"]), Command::Migrate));
        assert!(matches!(parse(&["migrations"]), Command::Migrations));
    }

    #[test]
    fn bad_usage_is_refused() {
        assert!(Cli::try_parse_from(["app", "migrate", "--bind", "127.0.0.1:0"]).is_err());
    }

    #[test]
    fn errors_show_every_cause_indented() {
        let e = anyhow::anyhow!("refusing to migrate\n  - a.sql: modified").context("migrating db");
        assert_eq!(
            report(&e),
            "error: migrating db\ncaused by:\n    refusing to migrate\n      - a.sql: modified"
        );
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
