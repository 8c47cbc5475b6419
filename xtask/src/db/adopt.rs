//! `cargo xtask db adopt`: take over another tool's history through
//! `Migrator::adopt`, after a confirmation on every target but the local cluster;
//! runs no migration SQL.

use std::process::ExitCode;

use anyhow::{Context, Result};
use plover::Adopt;

use super::{Ask, Ctx, confirm, connect};
use crate::flags::{AdoptFrom, DbAdopt};

impl DbAdopt {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let target = ctx.target()?;
        let migrator = ctx.migrator()?;
        let from = match self.from {
            AdoptFrom::Supabase => Adopt::Supabase,
            AdoptFrom::Sqlx => Adopt::Sqlx,
            AdoptFrom::Refinery => Adopt::Refinery,
        };
        println!("target: {target}");
        println!("app: {}", migrator.app_name());
        confirm(
            &target,
            Ask::Destructive,
            self.confirm.as_deref(),
            &format!("record {from}'s applied versions in plover's history"),
        )?;
        // Lock waits are shown, naming the holder.
        let progress = super::progress::Progress::new(0);
        let migrator = progress.watch(migrator);
        let mut client = connect(&target).await?;
        let adopted = migrator
            .adopt(&mut client, from)
            .await
            .with_context(|| format!("adopting {from}'s history on {target}"))?;
        let list = |v: &[i64]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "adopted {} version(s) from {from}: {}",
            adopted.adopted.len(),
            list(&adopted.adopted)
        );
        println!(
            "already in plover's history: {}: {}",
            adopted.already.len(),
            list(&adopted.already)
        );
        if !adopted.unknown.is_empty() {
            println!(
                "warning: {from} applied {} version(s) with no local file (nothing recorded for them): {}",
                adopted.unknown.len(),
                list(&adopted.unknown)
            );
        }
        if !adopted.unreadable.is_empty() {
            println!(
                "warning: skipped versions that are not numbers: {}",
                adopted.unreadable.join(" ")
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
