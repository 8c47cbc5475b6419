//! `cargo xtask db pull`: schema changes made outside migrations, as a new migration.
//!
//! The migrations are replayed into a shadow database on the local development
//! server and both sides are read from the catalogs ([`super::diff`]); the file is
//! `plover::schema::diff` from the replay to the target: every CREATE, ALTER and DROP
//! that makes the migrations' schema into the target's, with its hazards as comments.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use plover::Repair;
use plover::project::{Protection, Target, snake_name};

use super::diff::{inspect_target, replayed, write_diff_migration};
use super::{Ask, Ctx, confirm, connect};
use crate::flags::DbPull;

impl DbPull {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let name = snake_name(&self.name).with_context(|| {
            format!(
                "{:?} has no letters or digits to name a migration after; use e.g. `remote_schema`",
                self.name
            )
        })?;
        let target = ctx.target()?;
        println!("target: {target}");
        let migrator = ctx.migrator()?;
        let schemas = ctx.project.app_schemas();
        eprintln!(
            "reading the schemas {} of {}",
            schemas.join(", "),
            target.env()
        );
        let after = inspect_target(&target, &schemas).await?;
        if migrator.source().migrations().is_empty() {
            eprintln!("no migrations yet: the whole schema becomes the first one");
        }
        let before = replayed(ctx, &migrator, &schemas).await?;
        let diff = plover::schema::diff(&before, &after);
        if diff.is_empty() {
            println!(
                "no difference: the migrations create the schemas {} exactly as {} has them; nothing written",
                schemas.join(", "),
                target.env()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if diff.changes.is_empty() {
            for m in &diff.manual {
                println!("manual: {m}");
            }
            println!(
                "only differences no statement can make (above): write them by hand; nothing written"
            );
            return Ok(ExitCode::SUCCESS);
        }
        let path = write_diff_migration(
            ctx,
            &name,
            &diff,
            &format!("`cargo xtask db pull` from {}", target.env()),
        )?;
        let version: i64 = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(plover::parse_file_name)
            .and_then(|(v, _)| v.parse().ok())
            .with_context(|| format!("reading the version of {}", path.display()))?;
        let mut summary = format!("{} statement(s)", diff.changes.len());
        let counts = diff.hazard_counts();
        if !counts.is_empty() {
            let list: Vec<String> = counts
                .iter()
                .map(|(k, n)| format!("{n} {}", k.slug()))
                .collect();
            summary.push_str(&format!(
                "; hazards: {} (each marked in the file)",
                list.join(", ")
            ));
        }
        if !diff.manual.is_empty() {
            summary.push_str(&format!(
                "; {} difference(s) to write by hand, listed as `-- manual:` in the file",
                diff.manual.len()
            ));
        }
        println!("{summary}");

        let env = target.env();
        let record = if self.record {
            true
        } else if self.no_record {
            false
        } else {
            ask(&format!(
                "record {version} as applied on {env} (it is already there)? [y/N] "
            ))?
        };
        if record {
            record_applied(ctx, &target, version).await?;
            println!("recorded {version} as applied on {env}");
        } else {
            println!(
                "not recorded; to record it as applied on {env}: cargo xtask db repair --status applied {version} --env {env}"
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// y/N at a terminal; no terminal means no.
fn ask(question: &str) -> Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || !std::io::stderr().is_terminal() {
        return Ok(false);
    }
    eprint!("{question}");
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the answer")?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// `Migrator::repair` with the new file loaded, after the protected-environment check.
async fn record_applied(ctx: &Ctx, target: &Target, version: i64) -> Result<()> {
    let env = target.env();
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if target.protection() == Protection::Protected && !terminal {
        bail!(
            "{env} is protected and there is no terminal to confirm at; the migration is written but not recorded (record it with `cargo xtask db repair --status applied {version} --env {env} --confirm {env}`)"
        );
    }
    confirm(
        target,
        Ask::WhenProtected,
        None,
        &format!("record {version} as applied"),
    )?;
    let migrator = ctx.migrator()?;
    let mut client = connect(target).await?;
    migrator
        .repair(&mut client, version, Repair::Applied)
        .await
        .with_context(|| format!("marking {version} applied on {target}"))?;
    Ok(())
}
