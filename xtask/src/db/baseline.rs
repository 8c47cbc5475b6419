//! `cargo xtask db baseline VERSION`: record every migration up to VERSION as applied
//! on a database built by other means, through `Migrator::baseline`, after showing
//! what it records and a confirmation on every target but the local cluster.

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{Ask, Ctx, confirm, connect};
use crate::flags::DbBaseline;

impl DbBaseline {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let target = ctx.target()?;
        let migrator = ctx.migrator()?;
        println!("target: {target}");
        println!("app: {}", migrator.app_name());
        let mut client = connect(&target).await?;
        let plan = migrator
            .plan(&client)
            .await
            .with_context(|| format!("reading the history on {target}"))?;
        let todo: Vec<_> = plan
            .pending()
            .filter(|m| m.version() <= self.version)
            .collect();
        println!(
            "to record as applied (nothing runs), up to {}: {}",
            self.version,
            todo.len()
        );
        for m in &todo {
            println!("  {}  {}", m.version(), m.name());
        }
        confirm(
            &target,
            Ask::Destructive,
            self.confirm.as_deref(),
            &format!("record {} migration(s) as applied", todo.len()),
        )?;
        let migrator = super::progress::Progress::new(0).watch(migrator);
        let recorded = migrator
            .baseline(&mut client, self.version)
            .await
            .with_context(|| format!("recording the baseline on {target}"))?;
        println!(
            "recorded {} migration(s) as applied, up to {}",
            recorded.len(),
            self.version
        );
        Ok(ExitCode::SUCCESS)
    }
}
