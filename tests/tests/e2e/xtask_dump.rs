//! `cargo xtask db dump` and `db pull` as a process: the real xtask binary, the real
//! pg_dump, against databases of the shared test server; every file they write is
//! applied to a fresh database (with psql for dumps, through plover for pulled
//! migrations). `pull` builds its shadow database on a local development server of
//! the test's own (its own port), which a guard stops and deletes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use plover_tests::{LocalServer, Run, Workdir, database, snapshot, strings};

const STAGING: &str = "STAGING_DATABASE_URL";

/// `db push --env staging` of the workdir's migrations to `url`.
fn push(w: &Workdir, url: &str, extra: &[&str]) -> Result<Run> {
    let mut args = vec!["push", "--env", "staging"];
    args.extend_from_slice(extra);
    w.db(&args, &[(STAGING, url)], None)?.expect(0)
}

/// `db <args> --env staging` against `url`.
fn staging(w: &Workdir, args: &[&str], url: &str) -> Result<Run> {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--env", "staging"]);
    w.db(&all, &[(STAGING, url)], None)
}

/// Applies `file` to `url` with psql, stopping at the first error.
fn psql_file(url: &str, file: &Path) -> Result<()> {
    let psql = plover::testing::find_binaries()?.join("psql");
    let out = Command::new(&psql)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(file)
        .arg(url)
        .output()
        .with_context(|| format!("running {}", psql.display()))?;
    ensure!(
        out.status.success(),
        "psql -f {} failed:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The catalog snapshot without plover's and the Supabase CLI's histories (which
/// dumps leave out on purpose).
async fn app_snapshot(url: &str) -> Result<String> {
    let client = plover::connect(url).await?;
    Ok(snapshot(&client)
        .await?
        .lines()
        .filter(|l| {
            !l.starts_with("plover ")
                && !l.starts_with("supabase ")
                && !l.contains("plover")
                && !l.contains("supabase_migrations")
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

fn tempdir(prefix: &str) -> Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix(prefix).tempdir()?)
}

/// The one migration file `pull` printed.
fn pulled_file(run: &Run) -> Result<PathBuf> {
    let line = run
        .stdout
        .lines()
        .find(|l| l.ends_with(".sql"))
        .with_context(|| format!("no file printed: {run}"))?;
    Ok(PathBuf::from(line.trim()))
}

#[tokio::test]
async fn schema_dump_applies_to_an_empty_database_and_recreates_the_schema() -> Result<()> {
    let w = Workdir::new()?;
    let (_db, url) = database().await?;
    push(&w, &url, &[])?;
    let out = tempdir("plover-dump-")?;
    let file = out.path().join("nested/schema.sql");
    let run = staging(
        &w,
        &[
            "dump",
            "--schema-only",
            "-f",
            file.to_str().context("path")?,
        ],
        &url,
    )?
    .expect(0)?;
    assert!(run.stderr.contains("with pg_dump "), "{run}");
    assert!(
        run.stderr
            .contains(&format!("wrote the schema to {}", file.display())),
        "{run}"
    );
    assert!(run.stdout.is_empty(), "{run}");
    let text = std::fs::read_to_string(&file)?;
    assert!(text.contains("CREATE TABLE public.categories"), "{text}");
    assert!(text.contains("CREATE POLICY"), "{text}");

    let (_fresh, fresh_url) = database().await?;
    psql_file(&fresh_url, &file)?;
    assert_eq!(app_snapshot(&fresh_url).await?, app_snapshot(&url).await?);
    Ok(())
}

#[tokio::test]
async fn default_dump_is_the_schema_without_managed_schemas() -> Result<()> {
    let w = Workdir::new()?;
    let (_db, url) = database().await?;
    push(&w, &url, &[])?;
    let run = staging(&w, &["dump"], &url)?.expect(0)?;
    let text = &run.stdout;
    assert!(text.contains("CREATE TABLE public.transactions"), "{run}");
    assert!(!text.contains("COPY "), "the default dump has rows: {run}");
    for managed in [
        "CREATE SCHEMA auth",
        "CREATE TABLE auth.users",
        "CREATE FUNCTION auth.uid",
        "CREATE SCHEMA storage",
        "CREATE TABLE storage.objects",
        "supabase_migrations",
        "plover.migrations",
        "CREATE SCHEMA extensions",
    ] {
        assert!(!text.contains(managed), "{managed} in the default dump");
    }
    // --schema names what to dump, managed or not.
    let run = staging(&w, &["dump", "--schema", "auth"], &url)?.expect(0)?;
    assert!(run.stdout.contains("CREATE TABLE auth.users"), "{run}");
    assert!(!run.stdout.contains("public.categories"), "{run}");
    Ok(())
}

#[tokio::test]
async fn data_dump_round_trips_the_seed_rows() -> Result<()> {
    let w = Workdir::new()?;
    let (_db, url) = database().await?;
    push(&w, &url, &["--include-seed"])?;
    let out = tempdir("plover-dump-")?;
    let file = out.path().join("data.sql");
    staging(
        &w,
        &["dump", "--data-only", "-f", file.to_str().context("path")?],
        &url,
    )?
    .expect(0)?;
    let text = std::fs::read_to_string(&file)?;
    assert!(!text.contains("CREATE TABLE"), "DDL in a data dump");
    assert!(!text.contains("supabase_migrations"), "history in the dump");
    assert!(!text.contains("plover.migrations"), "history in the dump");

    // A fresh database with the schema (migrations) takes the rows.
    let (_fresh, fresh_url) = database().await?;
    push(&w, &fresh_url, &[])?;
    psql_file(&fresh_url, &file)?;
    let rows = "SELECT string_agg(t, E'\\n' ORDER BY t) FROM ( \
        SELECT 'user ' || id || ' ' || email AS t FROM auth.users \
        UNION ALL SELECT 'category ' || id || ' ' || name FROM public.categories \
        UNION ALL SELECT 'transaction ' || id || ' ' || amount FROM public.transactions \
        UNION ALL SELECT 'budget ' || id || ' ' || amount_limit FROM public.budgets) rows";
    let original = strings(&plover::connect(&url).await?, rows).await?;
    let restored = strings(&plover::connect(&fresh_url).await?, rows).await?;
    assert!(
        original[0].contains("user ") && original[0].contains("category "),
        "the seed loaded nothing: {original:?}"
    );
    assert_eq!(restored, original);
    Ok(())
}

/// Drops a cluster-wide role on drop.
struct Role(String);

impl Drop for Role {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let server = plover::testing::server().await?;
                let admin = plover::connect(&server.url("postgres")).await?;
                admin
                    .batch_execute(&format!("DROP ROLE IF EXISTS {name}"))
                    .await?;
                anyhow::Ok(())
            })
        })
        .join();
    }
}

#[tokio::test]
async fn roles_dump_has_project_roles_without_reserved_ones_or_passwords() -> Result<()> {
    let w = Workdir::new()?;
    let (db, url) = database().await?;
    let role = Role(format!("plover_dump_role_{}", std::process::id()));
    db.client()
        .await?
        .batch_execute(&format!(
            "CREATE ROLE {0} LOGIN PASSWORD 'role-pw-do-not-print'; GRANT authenticated TO {0}",
            role.0
        ))
        .await?;
    let run = staging(&w, &["dump", "--roles"], &url)?.expect(0)?;
    let text = &run.stdout;
    assert!(text.contains(&format!("CREATE ROLE {};", role.0)), "{run}");
    assert!(
        text.contains(&format!("GRANT authenticated TO {}", role.0)),
        "{run}"
    );
    for reserved in [
        "postgres",
        "anon",
        "authenticated",
        "service_role",
        "authenticator",
    ] {
        assert!(
            !text.contains(&format!("CREATE ROLE {reserved};")),
            "{reserved}: {run}"
        );
        assert!(
            !text.contains(&format!("ALTER ROLE {reserved} ")),
            "{reserved}: {run}"
        );
        assert!(
            !text.contains(&format!("TO {reserved} "))
                && !text.contains(&format!("TO {reserved};")),
            "{reserved}: {run}"
        );
    }
    assert!(!text.contains("role-pw-do-not-print"), "{run}");
    assert!(!text.contains("PASSWORD"), "{run}");
    assert!(!text.contains("SCRAM-SHA-256"), "{run}");
    // --schema means nothing for roles.
    let run = staging(&w, &["dump", "--roles", "--schema", "public"], &url)?.expect(2)?;
    assert!(run.stderr.contains("--schema does not apply"), "{run}");
    Ok(())
}

#[tokio::test]
async fn an_old_pg_dump_without_docker_fails_naming_both_versions() -> Result<()> {
    let w = Workdir::new()?;
    let (db, url) = database().await?;
    let server_version: String = db
        .client()
        .await?
        .query_one("SHOW server_version", &[])
        .await?
        .get(0);
    let bin = tempdir("plover-fake-pg-")?;
    let fake = bin.path().join("pg_dump");
    std::fs::write(&fake, "#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6'\n")?;
    std::fs::set_permissions(&fake, PermissionsExt::from_mode(0o755))?;
    let no_docker = bin.path().join("no-docker.sock");
    let run = w
        .db(
            &["dump", "--env", "staging"],
            &[
                (STAGING, url.as_str()),
                ("PLOVER_PG_BIN", bin.path().to_str().context("path")?),
                ("DOCKER_HOST", &format!("unix://{}", no_docker.display())),
            ],
            None,
        )?
        .expect(2)?;
    assert!(run.stderr.contains("the local pg_dump is 9.6"), "{run}");
    assert!(
        run.stderr
            .contains(&format!("runs PostgreSQL {server_version}")),
        "{run}"
    );
    assert!(run.stderr.contains("PLOVER_PG_BIN"), "{run}");
    assert!(run.stdout.is_empty(), "{run}");
    Ok(())
}

#[tokio::test]
async fn pull_without_migrations_writes_the_schema_as_the_first_migration() -> Result<()> {
    let full = Workdir::new()?;
    let (_db, url) = database().await?;
    push(&full, &url, &[])?;

    let w = Workdir::new()?;
    let _local = LocalServer::isolate(&w)?;
    w.remove_migrations()?;
    let run = staging(&w, &["pull", "initial schema", "--no-record"], &url)?.expect(0)?;
    let file = pulled_file(&run)?;
    assert!(
        file.file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with("_initial_schema.sql")),
        "{run}"
    );
    assert_eq!(w.migration_files()?.len(), 1);
    assert!(
        run.stdout
            .contains("cargo xtask db repair --status applied"),
        "{run}"
    );
    let text = std::fs::read_to_string(&file)?;
    assert!(!text.contains("set_config('search_path'"), "{text}");
    assert!(!text.contains("\\restrict"), "{text}");

    // It applies through plover to an empty database and recreates the app's schema.
    let (_fresh, fresh_url) = database().await?;
    let run = push(&w, &fresh_url, &[])?;
    assert!(run.stdout.contains("initial_schema"), "{run}");
    assert_eq!(app_snapshot(&fresh_url).await?, app_snapshot(&url).await?);
    Ok(())
}

#[tokio::test]
async fn pull_captures_a_table_made_outside_migrations_and_records_it() -> Result<()> {
    let w = Workdir::new()?;
    let _local = LocalServer::isolate(&w)?;
    let (db, url) = database().await?;
    push(&w, &url, &[])?;
    let before = w.migration_files()?;
    db.client()
        .await?
        .batch_execute(
            "CREATE TABLE public.pulled_notes (id bigint PRIMARY KEY, body text NOT NULL)",
        )
        .await?;

    let run = staging(&w, &["pull", "--record"], &url)?.expect(0)?;
    let file = pulled_file(&run)?;
    let text = std::fs::read_to_string(&file)?;
    assert_eq!(
        text.matches("CREATE TABLE ").count(),
        1,
        "more than the new table:\n{text}"
    );
    assert!(
        text.contains("CREATE TABLE public.pulled_notes ("),
        "{text}"
    );
    assert!(!text.contains("-- changed:"), "{text}");
    assert!(!text.contains("-- gone from the target:"), "{text}");
    assert!(!text.contains("set_config('search_path'"), "{text}");
    assert_eq!(w.migration_files()?.len(), before.len() + 1);
    assert!(run.stdout.contains("recorded "), "{run}");

    // Recorded: the target is clean.
    let run = staging(&w, &["status"], &url)?.expect(0)?;
    assert!(
        run.stdout
            .contains(&format!("{} applied, 0 pending", before.len() + 1)),
        "{run}"
    );
    // The file applies on top of the migrations in a fresh database.
    let (_fresh, fresh_url) = database().await?;
    push(&w, &fresh_url, &[])?;
    assert_eq!(app_snapshot(&fresh_url).await?, app_snapshot(&url).await?);
    // No shadow database is left on the local server.
    let local = plover::connect(&format!(
        "postgres://postgres:postgres@127.0.0.1:{}/postgres",
        local_port(&w)?
    ))
    .await?;
    let left = strings(
        &local,
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'plover_shadow_%'",
    )
    .await?;
    assert!(left.is_empty(), "shadow databases left: {left:?}");
    Ok(())
}

#[tokio::test]
async fn pull_without_a_difference_writes_nothing() -> Result<()> {
    let w = Workdir::new()?;
    let _local = LocalServer::isolate(&w)?;
    let (_db, url) = database().await?;
    push(&w, &url, &[])?;
    let before = w.migration_files()?;
    let run = staging(&w, &["pull"], &url)?.expect(0)?;
    assert!(run.stdout.contains("no difference"), "{run}");
    assert!(run.stdout.contains("nothing written"), "{run}");
    assert_eq!(w.migration_files()?, before);
    Ok(())
}

/// The `[db] port` LocalServer wrote.
fn local_port(w: &Workdir) -> Result<u16> {
    let text = std::fs::read_to_string(w.path().join("supabase/config.toml"))?;
    let mut in_db = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_db = line == "[db]";
        } else if in_db && let Some(port) = line.strip_prefix("port = ") {
            return Ok(port.parse()?);
        }
    }
    anyhow::bail!("no [db] port in config.toml")
}

/// The Docker path, forced with PLOVER_PG_DUMP=docker and the local image (no
/// registry is reachable here): needs an engine and PLOVER_DOCKER_IMAGE as set by
/// `cargo xtask test`; PLOVER_SKIP_DOCKER_TESTS=1 opts out.
#[tokio::test]
async fn docker_pg_dump_dumps_with_the_password_in_its_environment() -> Result<()> {
    if !plover_tests::docker_tests_run()? {
        return Ok(());
    }
    let Some(name) = std::env::var_os("PLOVER_DOCKER_IMAGE") else {
        anyhow::bail!(
            "this test needs PLOVER_DOCKER_IMAGE (no registry is reachable here): run it through `cargo xtask test`, or set PLOVER_SKIP_DOCKER_TESTS=1"
        );
    };
    let tag = std::env::var("PLOVER_DOCKER_TAG").unwrap_or_else(|_| "17".into());
    let image = format!("{}:{tag}", name.to_string_lossy());
    let w = Workdir::new()?;
    let (_db, url) = database().await?;
    push(&w, &url, &[])?;
    let vars = [
        (STAGING, url.as_str()),
        ("PLOVER_PG_DUMP", "docker"),
        ("PLOVER_DUMP_IMAGE", image.as_str()),
    ];
    let run = w
        .db(&["dump", "--env", "staging"], &vars, None)?
        .expect(0)?;
    assert!(
        run.stderr.contains(&format!("with docker {image}")),
        "{run}"
    );
    assert!(
        run.stdout.contains("CREATE TABLE public.categories"),
        "{run}"
    );
    let run = w
        .db(&["dump", "--roles", "--env", "staging"], &vars, None)?
        .expect(0)?;
    assert!(run.stdout.contains("Roles"), "{run}");
    // A forced Docker without an engine says so.
    let run = w
        .db(
            &["dump", "--env", "staging"],
            &[
                (STAGING, url.as_str()),
                ("PLOVER_PG_DUMP", "docker"),
                ("DOCKER_HOST", "unix:///nonexistent/plover-docker.sock"),
            ],
            None,
        )?
        .expect(2)?;
    assert!(run.stderr.contains("PLOVER_PG_DUMP=docker"), "{run}");
    Ok(())
}

#[tokio::test]
async fn pull_records_on_a_protected_environment_only_after_its_name() -> Result<()> {
    let full = Workdir::new()?;
    let (_db, url) = database().await?;
    push(&full, &url, &[])?;
    let w = Workdir::new()?;
    let _local = LocalServer::isolate(&w)?;
    w.remove_migrations()?;
    // prod is protected by default; no terminal here to type its name at.
    let run = w
        .db(
            &["pull", "--record", "--env", "prod"],
            &[("PROD_DATABASE_URL", url.as_str())],
            None,
        )?
        .expect(2)?;
    assert!(run.stderr.contains("prod is protected"), "{run}");
    let version = w.migration_files()?.first().cloned().context("no file")?;
    let version = version.split('_').next().context("no version")?.to_owned();
    assert!(
        run.stderr.contains(&format!(
            "cargo xtask db repair --status applied {version} --env prod --confirm prod"
        )),
        "{run}"
    );
    let client = plover::connect(&url).await?;
    let recorded = strings(
        &client,
        "SELECT version::text FROM plover.migrations ORDER BY 1",
    )
    .await?;
    assert!(
        !recorded.contains(&version),
        "recorded without a confirmation"
    );
    Ok(())
}
