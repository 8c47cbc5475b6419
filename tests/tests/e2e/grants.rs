//! `[grants.SCHEMA]` of plover.toml against a real server: applied after a push that
//! applies something (schema usage, tables, sequences, functions, and default
//! privileges for what comes later); a role the database lacks refuses the push
//! before anything runs; a privilege of another kind is refused naming the line.

use anyhow::Result;
use plover_tests::{Workdir, database, snapshot, strings};

const TOML: &str = r#"app = "billing"
schemas = ["public", "billing"]

[grants.billing]
tables = { authenticated = ["select", "insert"], service_role = ["all"] }
sequences = { authenticated = ["usage"] }
functions = { authenticated = ["execute"] }
"#;

fn project(toml: &str) -> Result<Workdir> {
    let w = Workdir::new()?;
    w.remove_migrations()?;
    std::fs::write(
        w.migrations().join("20250101000000_billing.sql"),
        "create schema billing;\n\
         create table billing.invoices (id bigserial primary key, total numeric not null);\n\
         revoke execute on all functions in schema billing from public;\n\
         create function billing.total() returns numeric language sql as 'select sum(total) from billing.invoices';\n\
         revoke execute on function billing.total() from public;\n",
    )?;
    std::fs::write(w.path().join("supabase").join("plover.toml"), toml)?;
    Ok(w)
}

#[tokio::test]
async fn grants_are_applied_after_a_push_and_by_default_to_later_objects() -> Result<()> {
    let w = project(TOML)?;
    let (db, url) = database().await?;
    let client = db.client().await?;
    let vars = [("DATABASE_URL", url.as_str())];
    let run = w.db(&["push"], &vars, None)?.expect(0)?;
    assert!(
        run.stdout.contains(
            "grants: [grants.billing] applied (9 statement(s); roles authenticated, service_role)"
        ),
        "{run}"
    );
    let checks = strings(
        &client,
        "SELECT concat_ws(' ',
            has_schema_privilege('authenticated', 'billing', 'usage'),
            has_table_privilege('authenticated', 'billing.invoices', 'select'),
            has_table_privilege('authenticated', 'billing.invoices', 'insert'),
            has_table_privilege('authenticated', 'billing.invoices', 'delete'),
            has_table_privilege('service_role', 'billing.invoices', 'delete'),
            has_sequence_privilege('authenticated', 'billing.invoices_id_seq', 'usage'),
            has_function_privilege('authenticated', 'billing.total()', 'execute'),
            has_table_privilege('anon', 'billing.invoices', 'select'))",
    )
    .await?;
    assert_eq!(checks, ["t t t f t t t f"]);

    // A table made later by the role that migrates: the default privileges reach it.
    client
        .batch_execute("create table billing.later (id int)")
        .await?;
    let later = strings(
        &client,
        "SELECT has_table_privilege('authenticated', 'billing.later', 'select')::text",
    )
    .await?;
    assert_eq!(later, ["true"]);
    Ok(())
}

#[tokio::test]
async fn a_missing_role_refuses_the_push_and_a_wrong_privilege_the_file() -> Result<()> {
    let w = project(&TOML.replace("service_role", "billing_admin"))?;
    let (db, url) = database().await?;
    let client = db.client().await?;
    let vars = [("DATABASE_URL", url.as_str())];
    let before = snapshot(&client).await?;
    let run = w.db(&["push"], &vars, None)?.expect(2)?;
    assert!(
        run.stderr
            .contains("names role(s) this database does not have: billing_admin"),
        "{run}"
    );
    assert_eq!(snapshot(&client).await?, before);

    let w = project(&TOML.replace(
        r#"sequences = { authenticated = ["usage"] }"#,
        r#"sequences = { authenticated = ["execute"] }"#,
    ))?;
    let run = w.db(&["status"], &vars, None)?.expect(2)?;
    assert!(
        run.stderr.contains("plover.toml:4")
            && run
                .stderr
                .contains("sequences.authenticated: `execute` does not apply to sequences"),
        "{run}"
    );
    Ok(())
}
