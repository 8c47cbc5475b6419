//! A project using what real Supabase projects use and plain PostgreSQL lacks
//! (tests/fixtures/supabase-features: a BEGIN/COMMIT-wrapped file, a non-migration
//! file in supabase/migrations, CREATE INDEX CONCURRENTLY without a directive,
//! `net.http_post` in a trigger function, `vault.create_secret`, `@graphql`
//! comments, storage policies, the `supabase_realtime` publication,
//! `gen_random_bytes`, grants to `supabase_auth_admin`) applies on a test database
//! and through `db reset-local`; and pgvector (tests/fixtures/supabase-vector),
//! which Debian 12's PostgreSQL lacks, fails there with the package to install.

use anyhow::{Result, ensure};
use plover::testing::{Shim, TestDatabase};
use plover_tests::{Fixture, check_supabase_features, strings};

#[tokio::test]
async fn the_features_project_applies_on_a_fresh_test_database() -> Result<()> {
    let project = Fixture::new("supabase-features")?;
    let migrator = project.migrator()?;
    assert_eq!(
        migrator.source().skipped().len(),
        1,
        "seed.sql is skipped as the Supabase CLI skips it"
    );
    let db = TestDatabase::fresh(&migrator, Shim::Apply).await?;
    check_supabase_features(&db.client().await?).await
}

#[tokio::test]
async fn reset_local_native_applies_the_features_project() -> Result<()> {
    let project = Fixture::new("supabase-features")?;
    let run = project.db(&["reset-local", "--native"])?;
    ensure!(run.code == Some(0), "{run}");
    let output = format!("{}{}", run.stdout, run.stderr);
    ensure!(
        output.contains("seed.sql"),
        "the skipped file is not named: {run}"
    );
    ensure!(
        output.contains("20240301090100_created_at_index.sql") && output.contains("CONCURRENTLY"),
        "no notice for the file run outside a transaction: {run}"
    );
    ensure!(
        output
            .contains("seed.sql (from [db.seed] sql_paths) does not exist; nothing seeded from it"),
        "a missing seed file is a warning, as with the Supabase CLI: {run}"
    );
    let client = plover::connect(&project.url()).await?;
    check_supabase_features(&client).await
}

#[tokio::test]
async fn vector_needs_a_server_with_pgvector_and_the_error_names_the_package() -> Result<()> {
    let project = Fixture::new("supabase-vector")?;
    let db = TestDatabase::with_supabase_shim().await?;
    let client = db.client().await?;
    let has_vector = !strings(
        &client,
        "SELECT name FROM pg_available_extensions WHERE name = 'vector'",
    )
    .await?
    .is_empty();
    let mut client = client;
    let result = project.migrator()?.run(&mut client).await;
    if has_vector {
        result?;
        let found = strings(
            &client,
            "SELECT amname::text FROM pg_class c JOIN pg_am a ON a.oid = c.relam \
             WHERE c.oid = 'public.documents_embedding_idx'::regclass",
        )
        .await?;
        ensure!(found == ["hnsw"], "{found:?}");
    } else {
        let Err(plover::Error::Migration(failed)) = result else {
            anyhow::bail!("vector was created on a server without it: {result:?}");
        };
        let hint = failed.hint.clone().unwrap_or_default();
        ensure!(hint.contains("-pgvector"), "{failed}");
        ensure!(hint.contains("db reset-local --docker"), "{failed}");
    }
    Ok(())
}

#[test]
fn a_relative_workdir_reaches_the_native_local_database() -> Result<()> {
    let project = Fixture::new("supabase-vector")?;
    let out = std::process::Command::new(plover_tests::binary("xtask")?)
        .args(["db", "start", "--native", "--workdir", "."])
        .current_dir(project.path())
        .env_remove("DATABASE_URL")
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "db start --workdir . failed: {stderr}"
    );
    ensure!(
        project.path().join("supabase/.temp/plover-db").is_dir()
            || stderr.contains("/var/tmp/plover-db-"),
        "the data is not where the project is: {stderr}"
    );
    Ok(())
}

/// `db reset-local --docker` on plover's local image (`PLOVER_DOCKER_IMAGE` when
/// `cargo xtask test` set it, else the image of `[db] major_version`).
fn docker_reset(project: &Fixture) -> Result<Option<plover_tests::Run>> {
    if !plover_tests::docker_tests_run()? {
        return Ok(None);
    }
    let run = project.db(&["reset-local", "--docker"])?;
    ensure!(run.code == Some(0), "{run}");
    Ok(Some(run))
}

#[tokio::test]
async fn reset_local_docker_applies_the_features_project() -> Result<()> {
    let project = Fixture::new("supabase-features")?;
    let Some(_) = docker_reset(&project)? else {
        return Ok(());
    };
    let client = plover::connect(&project.url()).await?;
    check_supabase_features(&client).await
}

#[tokio::test]
async fn reset_local_docker_applies_the_vector_project_with_its_hnsw_index() -> Result<()> {
    let project = Fixture::new("supabase-vector")?;
    let Some(_) = docker_reset(&project)? else {
        return Ok(());
    };
    let client = plover::connect(&project.url()).await?;
    client
        .batch_execute(
            "insert into public.documents (content, embedding) values
               ('north', '[0,1,0]'), ('east', '[1,0,0]'), ('north-east', '[0.7,0.7,0]')",
        )
        .await?;
    let nearest = strings(
        &client,
        "SELECT content FROM public.match_documents('[0.1,0.9,0]', 2)",
    )
    .await?;
    ensure!(nearest == ["north", "north-east"], "{nearest:?}");
    let method = strings(
        &client,
        "SELECT amname::text FROM pg_class c JOIN pg_am a ON a.oid = c.relam \
         WHERE c.oid = 'public.documents_embedding_idx'::regclass",
    )
    .await?;
    ensure!(method == ["hnsw"], "{method:?}");
    Ok(())
}
