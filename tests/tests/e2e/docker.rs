//! The Docker provider against real containers: a migrated database and the Supabase
//! shim on it, reuse by later calls and by another process, replacement of a dead
//! container, and `stop` leaving nothing behind.
//!
//! Each test has a state directory, hence a container, of its own, and removes it
//! when it ends (even on failure). The image comes from `PLOVER_DOCKER_*` (`cargo
//! xtask test` sets them to the local image of `cargo xtask db image`):
//!
//! ```text
//! PLOVER_DOCKER_IMAGE=plover-postgres PLOVER_DOCKER_TAG=17-<hash> PLOVER_DOCKER_NETWORK=host \
//! PLOVER_DOCKER_BARE=1 cargo test -p plover-tests --test e2e -- docker::
//! ```
//!
//! except for the local images' own tests, which ask `cargo xtask db image --major 17`
//! (and `--major 15`) for them (building them first when missing, which needs root).
//!
//! Without an engine these tests fail, saying how to get one; `PLOVER_SKIP_DOCKER_TESTS=1`
//! opts out on machines without Docker.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use plover::testing::docker::{self, Docker};
use plover::testing::{self, Provider, Server, quote_ident};
use plover_tests::{
    Dir, MIGRATIONS, check_supabase_features, fixture_dir, strings, workspace_root, xtask_db,
};
use tokio_postgres::Client;

/// Set in the child process of `later_calls_and_processes_reuse_the_container`.
const CHILD: &str = "PLOVER_DOCKER_TEST_CHILD";

/// The provider under test, with a state directory (and so a container) of its own;
/// the container is removed when the fixture drops.
struct Fixture {
    docker: Docker,
    dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Err(e) = self.docker.stop() {
            eprintln!("plover: could not remove the test's container: {e}");
        }
    }
}

/// The fixture, or `None` when `PLOVER_SKIP_DOCKER_TESTS=1`; an error with
/// instructions when no engine answers.
fn fixture() -> Result<Option<Fixture>> {
    if std::env::var("PLOVER_SKIP_DOCKER_TESTS").as_deref() == Ok("1") {
        eprintln!("skipped: PLOVER_SKIP_DOCKER_TESTS=1");
        return Ok(None);
    }
    if let Err(e) = docker::check_engine() {
        bail!(
            "these tests need a Docker engine ({e}). On a CI machine without a registry, \
             `.ci/docker-up` starts one and `cargo xtask db image` builds the local image; \
             `cargo xtask test` does both and sets PLOVER_DOCKER_*. On a machine without \
             Docker, set PLOVER_SKIP_DOCKER_TESTS=1"
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("plover-docker-state-")
        .tempdir()
        .context("creating a state directory")?;
    let mut docker = Docker::from_env();
    docker.state_dir = Some(dir.path().to_path_buf());
    Ok(Some(Fixture { docker, dir }))
}

/// The server, timed (a start or a reuse).
async fn server(docker: &Docker) -> Result<Server> {
    let began = Instant::now();
    let server = docker.server().await?;
    eprintln!(
        "docker server {} on port {} in {} ms",
        docker.descriptor(),
        server.port(),
        began.elapsed().as_millis()
    );
    assert_eq!(server.provider(), "docker");
    Ok(server)
}

/// When the server process started: equal values mean the same server.
async fn started(server: &Server) -> Result<String> {
    let client = plover::connect(&server.url("postgres")).await?;
    Ok(strings(&client, "SELECT pg_postmaster_start_time()::text")
        .await?
        .remove(0))
}

/// Gone means: no container of the state directory, and no state file.
fn assert_gone(f: &Fixture) -> Result<()> {
    assert_eq!(f.docker.containers()?, Vec::<String>::new());
    assert!(!f.dir.path().join("docker.state").exists());
    Ok(())
}

#[tokio::test]
async fn migrates_a_database_on_the_container_with_the_supabase_shim() -> Result<()> {
    let Some(f) = fixture()? else { return Ok(()) };
    let server = server(&f.docker).await?;

    let admin = plover::connect(&server.url("postgres")).await?;
    let name = "plover_docker_e2e";
    admin
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(name)))
        .await?;
    let mut client = plover::connect(&server.url(name)).await?;

    // The shim, twice (it is idempotent), unless the image is a real Supabase one.
    testing::apply_supabase_shim(&client).await?;
    testing::apply_supabase_shim(&client).await?;
    // A real Supabase image has Supabase's own supabase_auth_admin, without the
    // baseline's comment.
    let real_supabase: bool = client
        .query_one(
            "SELECT coalesce(shobj_description(oid, 'pg_authid'), '') NOT LIKE 'plover supabase baseline%'
               FROM pg_roles WHERE rolname = 'supabase_auth_admin'",
            &[],
        )
        .await?
        .get(0);
    if !real_supabase {
        assert_eq!(
            plover_tests::baseline_version(&client).await?,
            Some(testing::SHIM_VERSION as i32)
        );
    }

    let dir = Dir::with(&[
        (
            "1_notes.sql",
            "create table notes (id int primary key, owner uuid not null default auth.uid());\n\
             alter table notes enable row level security;\n\
             create policy own on notes using (owner = auth.uid());\n",
        ),
        ("2_grant.sql", "grant select on notes to authenticated;\n"),
    ])?;
    let report = dir.migrator("docker")?.run(&mut client).await?;
    assert_eq!(report.applied.len(), 2);
    assert_eq!(
        strings(
            &client,
            "SELECT app || ' ' || version || ':' || name FROM plover.migrations ORDER BY version"
        )
        .await?,
        ["docker 1:notes", "docker 2:grant"]
    );
    assert!(
        dir.migrator("docker")?
            .run(&mut client)
            .await?
            .applied
            .is_empty()
    );

    drop(client);
    admin
        .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", quote_ident(name)))
        .await?;
    assert!(f.docker.stop()?, "stop must remove the running container");
    assert_gone(&f)
}

#[tokio::test]
async fn later_calls_and_processes_reuse_the_container() -> Result<()> {
    let Some(f) = fixture()? else { return Ok(()) };
    let first = server(&f.docker).await?;
    let again = server(&f.docker).await?;
    assert_eq!(first, again);
    assert_eq!(started(&first).await?, started(&again).await?);
    let containers = f.docker.containers()?;
    assert_eq!(containers.len(), 1);

    // Another process, through `plover::testing`'s own choice of provider, and a
    // migrated database with the shim (the repository's Supabase migrations).
    let out = Command::new(std::env::current_exe()?)
        .args(["--exact", "docker::child_reports_its_server", "--nocapture"])
        .env(CHILD, "1")
        .env("PLOVER_TEST_PROVIDER", "docker")
        .env("PLOVER_STATE_DIR", f.dir.path())
        .env_remove("PLOVER_TEST_DATABASE_URL")
        .output()
        .context("running the child test process")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the child failed:\n{stdout}\n{stderr}"
    );
    let report = stdout
        .lines()
        .find_map(|l| l.strip_prefix("child: "))
        .with_context(|| format!("no report from the child:\n{stdout}\n{stderr}"))?;
    assert_eq!(
        report,
        format!(
            "port={} started={} provider=docker migrated=true",
            first.port(),
            started(&first).await?
        )
    );
    assert_eq!(f.docker.containers()?, containers);

    assert!(f.docker.stop()?);
    assert_gone(&f)
}

/// Runs only as the child of `later_calls_and_processes_reuse_the_container`.
#[tokio::test]
async fn child_reports_its_server() -> Result<()> {
    if std::env::var_os(CHILD).is_none() {
        return Ok(());
    }
    let db = testing::fresh(&MIGRATIONS).await?;
    let client = db.client().await?;
    let migrated = !strings(&client, "SELECT name FROM plover.migrations")
        .await?
        .is_empty();
    let server = testing::server().await?;
    println!(
        "child: port={} started={} provider={} migrated={migrated}",
        server.port(),
        started(&server).await?,
        server.provider()
    );
    Ok(())
}

#[tokio::test]
async fn a_dead_container_is_replaced_and_stop_leaves_nothing() -> Result<()> {
    let Some(f) = fixture()? else { return Ok(()) };
    let first = server(&f.docker).await?;
    let first_started = started(&first).await?;
    let [first_id] = <[String; 1]>::try_from(f.docker.containers()?)
        .map_err(|ids| anyhow::anyhow!("expected one container, found {ids:?}"))?;

    // The server shuts down (fast shutdown of the container's main process): the
    // container exits, and stays as a stopped container.
    let admin = plover::connect(&first.url("postgres")).await?;
    let _ = admin
        .batch_execute("COPY (SELECT 1) TO PROGRAM 'kill -INT 1'")
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while plover::connect(&first.url("postgres")).await.is_ok() {
        assert!(Instant::now() < deadline, "the server did not shut down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let second = server(&f.docker).await?;
    assert_ne!(started(&second).await?, first_started);
    let ids = f.docker.containers()?;
    assert_eq!(ids.len(), 1, "the dead container must be removed: {ids:?}");
    assert_ne!(ids[0], first_id);

    assert!(f.docker.stop()?);
    assert_gone(&f)?;
    assert!(!f.docker.stop()?, "a second stop has nothing to do");

    // After a stop, the next call starts a fresh container; stop removes it too.
    let third = server(&f.docker).await?;
    assert_ne!(started(&third).await?, first_started);
    assert_eq!(f.docker.containers()?.len(), 1);
    assert!(f.docker.stop()?);
    assert_gone(&f)
}

/// The local image of `cargo xtask db image --major <major>` (built when missing):
/// the image's name and tag.
fn local_image(major: u16) -> Result<(String, String)> {
    let major = major.to_string();
    let run = xtask_db(
        &workspace_root(),
        &["image", "--major", &major],
        &[],
        None,
        "no password is involved",
    )?
    .expect(0)?;
    let reference = run.stdout.trim();
    let (name, tag) = reference
        .rsplit_once(':')
        .with_context(|| format!("`db image` printed no image name:\n{run}"))?;
    Ok((name.to_owned(), tag.to_owned()))
}

/// A container of the local image for `major` (host network, a state directory of
/// its own) and a client of its `postgres` database, whose server is that major.
async fn on_local_image(major: u16) -> Result<Option<(Fixture, Client)>> {
    let Some(mut f) = fixture()? else {
        return Ok(None);
    };
    let (image, tag) = local_image(major)?;
    assert!(tag.starts_with(&format!("{major}-")), "{tag}");
    f.docker.image = image;
    f.docker.tag = tag;
    f.docker.network = docker::Network::Host;
    f.docker.bare = true;
    let server = server(&f.docker).await?;
    let client = plover::connect(&server.url("postgres")).await?;
    assert_eq!(
        strings(
            &client,
            "SELECT current_setting('server_version_num')::int / 10000 || ''"
        )
        .await?,
        [major.to_string()]
    );
    Ok(Some((f, client)))
}

/// pgvector: a vector column, an HNSW index, a nearest-neighbour query through it.
async fn nearest_neighbour_through_hnsw(client: &Client) -> Result<()> {
    client
        .batch_execute(
            "CREATE EXTENSION vector;
             CREATE TABLE documents (id int PRIMARY KEY, embedding vector(3));
             CREATE INDEX documents_embedding ON documents USING hnsw (embedding vector_cosine_ops);
             INSERT INTO documents VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0,0,1]');
             SET enable_seqscan = off;",
        )
        .await
        .context("pgvector")?;
    assert_eq!(
        strings(
            client,
            "SELECT id || '' FROM documents ORDER BY embedding <=> '[0.1,0.9,0]' LIMIT 1"
        )
        .await?,
        ["2"]
    );
    let plan = strings(
        client,
        "EXPLAIN SELECT id FROM documents ORDER BY embedding <=> '[0.1,0.9,0]' LIMIT 1",
    )
    .await?
    .join("\n");
    assert!(plan.contains("documents_embedding"), "{plan}");
    Ok(())
}

#[tokio::test]
async fn the_local_image_has_real_supabase_extensions_and_the_stand_ins() -> Result<()> {
    let Some((f, client)) = on_local_image(17).await? else {
        return Ok(());
    };

    nearest_neighbour_through_hnsw(&client).await?;

    // pg_cron needs shared_preload_libraries: the image's configuration has it.
    client
        .batch_execute(
            "CREATE EXTENSION pg_cron;
             SELECT cron.schedule('nightly', '0 3 * * *', 'SELECT 1');",
        )
        .await
        .context("pg_cron")?;
    assert_eq!(
        strings(&client, "SELECT jobname FROM cron.job").await?,
        ["nightly"]
    );

    // pgTAP, plpgsql_check and http load.
    client
        .batch_execute(
            "CREATE EXTENSION pgtap; CREATE EXTENSION plpgsql_check; CREATE EXTENSION http;",
        )
        .await
        .context("pgtap, plpgsql_check, http")?;
    client.batch_execute("SELECT no_plan()").await?;
    assert_eq!(
        strings(&client, "SELECT ok(true, 'pgtap runs')").await?,
        ["ok 1 - pgtap runs"]
    );
    // The real http, not plover's stand-in for servers without it.
    assert_eq!(
        strings(
            &client,
            "SELECT (comment LIKE '%stand-in%')::text FROM pg_available_extensions WHERE name = 'http'"
        )
        .await?,
        ["false"]
    );

    // Every stand-in of crates/plover/extensions is installable.
    let available = strings(&client, "SELECT name FROM pg_available_extensions").await?;
    let dir = workspace_root().join("crates/plover/extensions");
    for entry in std::fs::read_dir(&dir).into_iter().flatten() {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(extension) = name.strip_suffix(".control") {
            assert!(
                available.iter().any(|a| a == extension),
                "stand-in {extension} is not in the image"
            );
        }
    }

    drop(client);
    assert!(f.docker.stop()?);
    assert_gone(&f)
}

/// The 15 image has pgvector, built from Debian 13's source package (Debian 12 has
/// none), and keeps every packaged extension through the build's clean-up.
#[tokio::test]
async fn the_local_15_image_has_pgvector_built_from_debian_source() -> Result<()> {
    let Some((f, client)) = on_local_image(15).await? else {
        return Ok(());
    };

    nearest_neighbour_through_hnsw(&client).await?;
    assert_eq!(
        strings(
            &client,
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        )
        .await?,
        ["0.8.0"]
    );

    // The build's packages are purged, not the image's own.
    client
        .batch_execute(
            "CREATE EXTENSION pg_cron; CREATE EXTENSION pgtap; CREATE EXTENSION plpgsql_check;
             CREATE EXTENSION hypopg; CREATE EXTENSION pg_stat_statements;",
        )
        .await
        .context("the packaged extensions")?;

    drop(client);
    assert!(f.docker.stop()?);
    assert_gone(&f)
}

/// The test database of a project with what real Supabase projects use: the
/// Supabase features fixture and pgvector (with an HNSW index), on a database of the
/// provider's container with the baseline.
#[tokio::test]
async fn real_supabase_features_and_pgvector_apply_on_a_test_database_of_the_container()
-> Result<()> {
    let Some(f) = fixture()? else { return Ok(()) };
    let server = server(&f.docker).await?;
    let admin = plover::connect(&server.url("postgres")).await?;
    let name = "plover_docker_features";
    admin
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(name)))
        .await?;
    let mut client = plover::connect(&server.url(name)).await?;
    testing::apply_supabase_shim(&client).await?;
    for (project, app) in [
        ("supabase-features", "features"),
        ("supabase-vector", "documents"),
    ] {
        let source = plover::Source::from_dir(fixture_dir(project).join("supabase/migrations"))?;
        plover::Migrator::new(source)
            .app(app)
            .run(&mut client)
            .await?;
    }
    // A new session, as a test would open: the baseline's search path holds.
    let client = plover::connect(&server.url(name)).await?;
    check_supabase_features(&client).await?;
    client
        .batch_execute("insert into public.documents (content, embedding) values ('a', '[1,0,0]'), ('b', '[0,1,0]')")
        .await?;
    assert_eq!(
        strings(
            &client,
            "SELECT content FROM public.match_documents('[0,1,0.1]', 1)"
        )
        .await?,
        ["b"]
    );
    drop(client);
    admin
        .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", quote_ident(name)))
        .await?;
    Ok(())
}
