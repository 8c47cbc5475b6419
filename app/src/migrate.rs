//! The embedded migrations and the two commands about them: `migrate` (apply and
//! exit) and `migrations` (list), plus the migration step `serve` runs on boot.
//!
//! Applying goes through plover's `Migrator` and nothing else: this module takes no
//! lock and runs no SQL of its own.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use plover::ConnInfo;

/// The app's migrations, compiled in. `build.rs` makes adding or removing a file
/// rebuild the app.
static MIGRATIONS: plover::Embedded =
    plover::embed_migrations!("$CARGO_MANIFEST_DIR/../supabase/migrations");

/// The app name under which plover records (and locks) this app's history.
pub const APP: &str = "money_tracker";

/// The embedded migrations, parsed and validated.
pub fn source() -> Result<plover::Source> {
    MIGRATIONS.load().context("loading the embedded migrations")
}

/// Applies what is pending, under plover's lock, logging each migration.
pub async fn apply(db: &ConnInfo) -> Result<plover::Report> {
    let source = source()?;
    let shown = db.redacted();
    tracing::info!(database = %shown, app = APP, migrations = source.len(), "migrating");
    let mut client = db
        .connect()
        .await
        .with_context(|| format!("connecting to {shown} to migrate"))?;
    let report = plover::Migrator::new(source)
        .app(APP)
        .on_event(log_event)
        .run(&mut client)
        .await
        .with_context(|| format!("migrating {shown} (app {APP})"))?;
    tracing::info!(
        applied = report.applied.len(),
        already_applied = report.already_applied,
        schema_version = ?report.version,
        lock_wait = ?report.lock_wait,
        took = ?report.total,
        "migrated"
    );
    Ok(report)
}

/// `app migrate`: applies what is pending and prints a one-line summary.
pub async fn migrate(db: &ConnInfo) -> Result<()> {
    let report = apply(db).await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}",
        summary(report.applied.len(), report.version, report.total)
    )
    .and_then(|()| out.flush())
    .context("writing the summary to stdout")
}

/// `app migrations`: one `<version> <name>` line per embedded migration.
pub fn list() -> Result<()> {
    let source = source()?;
    let mut out = std::io::stdout().lock();
    for m in source.migrations() {
        writeln!(out, "{} {}", m.version(), m.name()).context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")
}

/// `applied 2 migrations, schema version 20250224113540, took 41.20ms`
fn summary(applied: usize, version: Option<i64>, took: Duration) -> String {
    let version = version.map_or_else(|| "none".to_owned(), |v| v.to_string());
    let plural = if applied == 1 { "" } else { "s" };
    format!("applied {applied} migration{plural}, schema version {version}, took {took:.2?}")
}

fn log_event(event: &plover::Event) {
    match event {
        plover::Event::Planned { total } if *total > 0 => {
            tracing::info!(pending = total, "applying pending migrations");
        }
        plover::Event::Applying {
            version,
            name,
            index,
            total,
        } => tracing::debug!(version, name, "applying migration {index}/{total}"),
        plover::Event::Applied {
            version,
            name,
            duration,
        } => tracing::info!(version, name, took = ?duration, "applied migration"),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_load() {
        let source = source().expect("the embedded migrations are valid");
        assert!(!source.migrations().is_empty());
        assert!(
            source
                .migrations()
                .windows(2)
                .all(|w| w[0].version() < w[1].version())
        );
    }

    #[test]
    fn summaries() {
        assert_eq!(
            summary(2, Some(20250224113540), Duration::from_micros(41_204)),
            "applied 2 migrations, schema version 20250224113540, took 41.20ms"
        );
        assert_eq!(
            summary(1, Some(1), Duration::from_millis(1500)),
            "applied 1 migration, schema version 1, took 1.50s"
        );
        assert_eq!(
            summary(0, None, Duration::from_millis(3)),
            "applied 0 migrations, schema version none, took 3.00ms"
        );
    }
}
