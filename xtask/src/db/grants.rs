//! `[grants.SCHEMA]` of plover.toml applied to a database: every table's statements
//! (`plover::project::SchemaGrants::statements`) in one transaction, after a push
//! that applied something and after `db reset-local`'s migrations.
//!
//! Must not: run anything when no `[grants]` table is set; leave a part applied (one
//! transaction: a role that does not exist fails it whole, naming the statement).

use anyhow::{Context, Result};
use plover::project::Project;

/// Refuses, before anything runs, when `[grants]` names a role the database lacks.
pub async fn check_roles(project: &Project, client: &tokio_postgres::Client) -> Result<()> {
    let mut named: Vec<String> = Vec::new();
    for g in project.plover().grants.values() {
        named.extend(g.roles().into_iter().map(str::to_owned));
    }
    if named.is_empty() {
        return Ok(());
    }
    named.sort();
    named.dedup();
    let missing: Vec<String> = client
        .query(
            "SELECT r FROM unnest($1::text[]) r WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) ORDER BY 1",
            &[&named],
        )
        .await
        .context("looking up the roles of [grants]")?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "[grants] of plover.toml names role(s) this database does not have: {}; create them (a migration, or the Supabase baseline) or fix plover.toml; nothing was applied",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Applies the project's `[grants]` to `client`; returns a line per schema to show.
pub async fn apply(project: &Project, client: &mut tokio_postgres::Client) -> Result<Vec<String>> {
    let grants = &project.plover().grants;
    let mut lines = Vec::new();
    if grants.is_empty() {
        return Ok(lines);
    }
    let tx = client
        .transaction()
        .await
        .context("starting the grants' transaction")?;
    for (schema, g) in grants {
        let statements = g.statements(schema);
        for sql in &statements {
            tx.batch_execute(sql)
                .await
                .with_context(|| format!("applying [grants.{schema}] of plover.toml: {sql}"))?;
        }
        lines.push(format!(
            "grants: [grants.{schema}] applied ({} statement(s); roles {})",
            statements.len(),
            g.roles().join(", ")
        ));
    }
    tx.commit()
        .await
        .context("committing the grants of plover.toml")?;
    Ok(lines)
}
