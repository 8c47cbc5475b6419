//! `cargo xtask db repair`: record versions as applied or reverted through
//! `Migrator::repair`, after a confirmation on every target but the local cluster.

use std::process::ExitCode;

use anyhow::{Context, Result};
use plover::Repair;

use super::{Ask, Ctx, confirm, connect};
use crate::flags::{DbRepair, RepairStatus};

impl DbRepair {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let target = ctx.target()?;
        let migrator = ctx.migrator()?;
        println!("target: {target}");
        println!("app: {}", migrator.app_name());
        let (repair, word) = match self.status {
            RepairStatus::Applied => (Repair::Applied, "applied"),
            RepairStatus::Reverted => (Repair::Reverted, "reverted"),
        };
        confirm(
            &target,
            Ask::Destructive,
            self.confirm.as_deref(),
            &format!("mark {} version(s) {word}", self.versions.len()),
        )?;
        // Lock waits are shown, naming the holder.
        let progress = super::progress::Progress::new(0);
        let migrator = progress.watch(migrator);
        let mut client = connect(&target).await?;
        for version in &self.versions {
            migrator
                .repair(&mut client, *version, repair)
                .await
                .with_context(|| format!("marking {version} {word} on {target}"))?;
            println!("marked {version} {word}");
        }
        Ok(ExitCode::SUCCESS)
    }
}
