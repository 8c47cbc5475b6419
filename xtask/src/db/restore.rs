//! `cargo xtask db restore FILE --env NAME`: a backup written by `db reset` back in
//! place of the app, in one transaction (`Migrator::restore`), after the same plan
//! and confirmation as `db reset`.

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::reset::{plan, show};
use super::{Ask, Ctx, confirm, connect};
use crate::flags::DbRestore;

impl DbRestore {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let script = std::fs::read_to_string(&self.file)
            .with_context(|| format!("reading the backup {}", self.file.display()))?;
        let target = ctx.target()?;
        let migrator = ctx.migrator()?;
        let schemas = ctx.project.app_schemas();
        println!("target: {target}");
        println!("app: {}", migrator.app_name());
        println!("backup: {}", self.file.display());
        let mut client = connect(&target).await?;
        let plan = plan(&migrator, &mut client, &schemas, &self.also_drop).await?;
        show(&plan, "drop before loading the backup");
        confirm(
            &target,
            Ask::Destructive,
            self.confirm.as_deref(),
            &format!(
                "replace app {}'s objects and history with the backup",
                migrator.app_name()
            ),
        )?;
        let progress = super::progress::Progress::new(0);
        let migrator = progress.watch(migrator);
        let restored = plover::project::reset::restore(
            &migrator,
            &mut client,
            &plan,
            &script,
            Some(plover::testing::SUPABASE_SHIM),
        )
        .await;
        progress.finish();
        let restored =
            restored.with_context(|| format!("restoring {} into {target}", self.file.display()))?;
        println!(
            "dropped {} object(s) and {} history row(s); ran {} statement(s) of the backup",
            restored.dropped.len(),
            restored.history_rows,
            restored.statements
        );
        for fk in &restored.not_valid {
            println!(
                "warning: foreign key {fk} was added NOT VALID: rows it references are not in this database (VALIDATE CONSTRAINT once they are)"
            );
        }
        println!("restored {}", target.env());
        Ok(ExitCode::SUCCESS)
    }
}
