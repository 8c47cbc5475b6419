//! `cargo xtask dev`: the example app on the local development database (`cargo xtask
//! db start`), migrated on boot.

use anyhow::{Context, Result};
use plover::redact;
use plover::testing::apply_supabase_shim;
use xshell::{Shell, cmd};

use crate::flags::Dev;

impl Dev {
    pub async fn run(self, sh: &Shell) -> Result<()> {
        let url = crate::db::local_database(sh, &sh.current_dir())
            .await
            .context("starting the local development database (`cargo xtask db start`)")?;
        let client = plover::connect(&url).await?;
        apply_supabase_shim(&client)
            .await
            .context("applying the Supabase shim")?;
        eprintln!("database: {}", redact(&url));

        // The app applies the migrations itself, as it does in production.
        cmd!(sh, "cargo run --quiet --package app -- migrate")
            .env("DATABASE_URL", &url)
            .run()
            .context("migrating with the app")?;
        if !self.no_seed {
            let seed = sh
                .read_file("supabase/seed.sql")
                .context("reading supabase/seed.sql")?;
            client
                .batch_execute(&seed)
                .await
                .map_err(|e| anyhow::anyhow!(plover::describe(&e)))
                .context("loading supabase/seed.sql")?;
            eprintln!("seeded from supabase/seed.sql");
        }
        let bind = self.bind;
        cmd!(sh, "cargo run --quiet --package app -- serve --bind {bind}")
            .env("DATABASE_URL", &url)
            .run()
            .context("running the app")?;
        Ok(())
    }
}
