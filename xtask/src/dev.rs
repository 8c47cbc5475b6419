//! `cargo xtask dev`: the example app on a local native Postgres, migrated on boot.

use anyhow::{Context, Result};
use plover::redact::redact;
use plover::testing::{NativeServer, apply_supabase_shim, quote_ident};
use xshell::{Shell, cmd};

use crate::flags::Dev;

/// The local development database of the example app.
const DATABASE: &str = "money_tracker";

impl Dev {
    pub async fn run(self, sh: &Shell) -> Result<()> {
        let server = NativeServer::shared()
            .await
            .context("starting a local PostgreSQL from the system's server binaries")?;
        let admin = plover::connect(&server.url("postgres")).await?;
        let exists: bool = admin
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
                &[&DATABASE],
            )
            .await
            .context("looking for the development database")?
            .try_get(0)?;
        if !exists {
            admin
                .batch_execute(&format!("CREATE DATABASE {}", quote_ident(DATABASE)))
                .await
                .context("creating the development database")?;
        }
        let url = server.url(DATABASE);
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
                .map_err(|e| anyhow::anyhow!(plover::error::describe(&e)))
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
