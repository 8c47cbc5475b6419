//! `cargo xtask db start|stop|reset-local` as a process: the real xtask binary starts a
//! local development database of its own (native as root here and in CI; docker when
//! an engine answers) on a free port, in a copy of the repository's `supabase/`
//! folder. A guard stops it and deletes its data whatever happens.
//!
//! The docker tests need an engine, and the local image of `cargo xtask db image`
//! (`cargo xtask test` starts the one and builds the other; building needs root);
//! without them they fail, saying how to get them; `PLOVER_SKIP_DOCKER_TESTS=1` opts out.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use plover_tests::{Run, is_root, workspace_root, xtask_db, xtask_db_as};

/// A copy of the repository's `supabase/` folder whose `[db] port` is a free port.
struct Workdir {
    dir: tempfile::TempDir,
    port: u16,
    /// Run the xtask as this user (we are root) instead of as ourselves.
    user: Option<u32>,
}

impl Workdir {
    fn new() -> Result<Workdir> {
        let dir = tempfile::Builder::new()
            .prefix("plover-xtask-local-")
            .tempdir()?;
        // Reachable by the `postgres` account when we are root, so the data lands
        // under supabase/.temp as on a developer's checkout.
        std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755))?;
        let from = workspace_root().join("supabase");
        let to = dir.path().join("supabase");
        std::fs::create_dir_all(to.join("migrations"))?;
        for file in ["seed.sql", "plover.toml"] {
            std::fs::copy(from.join(file), to.join(file))
                .with_context(|| format!("copying {file}"))?;
        }
        plover_tests::copy_dir(&from.join("migrations"), &to.join("migrations"))?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let config = std::fs::read_to_string(from.join("config.toml"))?;
        ensure!(
            config.contains("\nport = 54322\n"),
            "config.toml's [db] port moved"
        );
        std::fs::write(
            to.join("config.toml"),
            config.replace("\nport = 54322\n", &format!("\nport = {port}\n")),
        )?;
        Ok(Workdir {
            dir,
            port,
            user: None,
        })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn url(&self) -> String {
        format!(
            "postgres://postgres:postgres@127.0.0.1:{}/postgres",
            self.port
        )
    }

    fn port_open(&self) -> bool {
        TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok()
    }

    /// Runs `cargo xtask db <args> --workdir <this>` without any variable naming a
    /// database.
    fn db(&self, args: &[&str]) -> Result<Run> {
        const SECRET: &str = "postgres:postgres@";
        match self.user {
            Some(uid) => xtask_db_as(uid, self.path(), args, &[], SECRET),
            None => xtask_db(self.path(), args, &[], None, SECRET),
        }
    }
}

/// Stops the local database and deletes its data (directory or container) on drop.
struct Stopper<'w>(&'w Workdir);

impl Drop for Stopper<'_> {
    fn drop(&mut self) {
        match self.0.db(&["stop", "--no-backup"]) {
            Ok(run) if run.code == Some(0) => {}
            Ok(run) => eprintln!("could not stop the local database: {run}"),
            Err(e) => eprintln!("could not stop the local database: {e:#}"),
        }
    }
}

async fn count(url: &str, sql: &str) -> Result<i64> {
    let client = plover::connect(url).await?;
    Ok(client
        .query_one(sql, &[])
        .await
        .with_context(|| sql.to_owned())?
        .get(0))
}

/// reset-local twice, status, a manual row gone after the second reset, stop.
async fn reset_twice_then_stop(w: &Workdir, mode: &[&str]) -> Result<()> {
    let migrations = plover_tests::migration_count(&w.path().join("supabase/migrations"))?;
    let mut args = vec!["reset-local"];
    args.extend_from_slice(mode);
    let run = w.db(&args)?.expect(0)?;
    assert!(
        run.stdout.contains(&format!(
            "applied {migrations} migration(s) (app money_tracker)"
        )),
        "{run}"
    );
    assert!(
        run.stdout.contains("seeded from supabase/seed.sql"),
        "{run}"
    );
    assert!(
        run.stdout.contains(&format!(
            "postgres://postgres:****@127.0.0.1:{}/postgres",
            w.port
        )),
        "{run}"
    );
    let url = w.url();
    assert_eq!(count(&url, "SELECT count(*) FROM auth.users").await?, 2);
    let categories = count(&url, "SELECT count(*) FROM public.categories").await?;
    assert!(categories > 0, "no seeded categories");
    let run = w.db(&["status"])?.expect(0)?;
    assert!(
        run.stdout
            .contains(&format!("{migrations} applied, 0 pending")),
        "{run}"
    );

    plover::connect(&url)
        .await?
        .batch_execute(
            "INSERT INTO public.categories (user_id, name, kind) \
             VALUES ('11111111-1111-4111-8111-111111111111', 'manual row', 'expense')",
        )
        .await
        .context("inserting a manual row")?;
    assert_eq!(
        count(&url, "SELECT count(*) FROM public.categories").await?,
        categories + 1
    );
    // A connection left open does not stop the reset (DROP ... WITH (FORCE)).
    let _open = plover::connect(&url).await?;
    let run = w.db(&args)?.expect(0)?;
    assert!(run.stdout.contains("local database reset in "), "{run}");
    assert_eq!(
        count(&url, "SELECT count(*) FROM public.categories").await?,
        categories,
        "the manual row survived the reset"
    );
    w.db(&["status"])?.expect(0)?;

    let run = w.db(&["stop"])?.expect(0)?;
    assert!(run.stdout.contains("stopped the local database"), "{run}");
    ensure!(!w.port_open(), "port {} still open after `db stop`", w.port);
    Ok(())
}

#[tokio::test]
async fn reset_local_native_is_repeatable_and_stops() -> Result<()> {
    let w = Workdir::new()?;
    let stopper = Stopper(&w);
    reset_twice_then_stop(&w, &["--native"]).await?;

    let data = w.path().join("supabase/.temp/plover-db/data");
    ensure!(
        data.join("PG_VERSION").is_file(),
        "no cluster in {}",
        data.display()
    );
    // Started again from the kept data; --no-seed leaves the seed tables empty.
    let run = w.db(&["reset-local", "--no-seed"])?.expect(0)?;
    assert!(run.stdout.contains("seed skipped (--no-seed)"), "{run}");
    assert_eq!(count(&w.url(), "SELECT count(*) FROM auth.users").await?, 0);
    // Not the local database of another --env.
    let run = w.db(&["reset-local", "--env", "staging"])?.expect(2)?;
    assert!(
        run.stderr.contains("only resets the local database"),
        "{run}"
    );

    drop(stopper);
    ensure!(
        !w.port_open(),
        "port {} still open after `db stop --no-backup`",
        w.port
    );
    ensure!(!data.exists(), "{} left behind", data.display());
    Ok(())
}

/// The account ordinary-user runs use: `nobody`.
const NOBODY: u32 = 65534;

/// A [`Workdir`] whose commands run as `nobody` when we are root (as ourselves
/// otherwise), so that its native data lands in `supabase/.temp/plover-db/data`.
fn workdir_as_caller_or_nobody() -> Result<Workdir> {
    let mut w = Workdir::new()?;
    if is_root()? {
        chown_nobody(w.path())?;
        w.user = Some(NOBODY);
    }
    Ok(w)
}

fn chown_nobody(path: &Path) -> Result<()> {
    let status = Command::new("chown")
        .args(["-R", &format!("{NOBODY}:{NOBODY}")])
        .arg(path)
        .status()?;
    ensure!(status.success(), "chown -R {} failed", path.display());
    Ok(())
}

/// The local cluster answers with everything `reset-local` gives: the migrations
/// applied and the seed loaded.
async fn assert_reset(w: &Workdir) -> Result<()> {
    assert_eq!(count(&w.url(), "SELECT count(*) FROM auth.users").await?, 2);
    let migrations = plover_tests::migration_count(&w.path().join("supabase/migrations"))?;
    let run = w.db(&["status"])?.expect(0)?;
    assert!(
        run.stdout
            .contains(&format!("{migrations} applied, 0 pending")),
        "{run}"
    );
    Ok(())
}

#[tokio::test]
async fn concurrent_reset_locals_take_turns_and_leave_a_usable_cluster() -> Result<()> {
    let w = workdir_as_caller_or_nobody()?;
    let stopper = Stopper(&w);
    // Both start at the same moment, on a project that has no cluster yet.
    let start = std::sync::Barrier::new(2);
    let runs: Vec<Result<Run>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    w.db(&["reset-local", "--native"])
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a runner panicked"))?)
            .collect()
    });
    let runs = runs.into_iter().collect::<Result<Vec<Run>>>()?;
    for run in &runs {
        ensure!(
            run.code == Some(0),
            "a concurrent reset-local failed: {run}"
        );
    }
    // One of them took its turn after the other one (unless the first was done before
    // the second started): then it said whom it waited for, or, when it looked before
    // the holder had written itself into the lock file, that another command holds it.
    for run in &runs {
        if let Some(line) = run.stderr.lines().find(|l| l.starts_with("waiting for ")) {
            assert!(
                (line.contains("`cargo xtask db reset-local` (pid ")
                    || line.contains("another `cargo xtask db` command"))
                    && line.contains("supabase/.temp/plover-db/lock"),
                "{run}"
            );
        }
    }
    assert_reset(&w).await?;
    drop(stopper);
    Ok(())
}

#[tokio::test]
async fn reset_local_recreates_a_dropped_postgres_database() -> Result<()> {
    let w = workdir_as_caller_or_nobody()?;
    let stopper = Stopper(&w);
    w.db(&["reset-local", "--native"])?.expect(0)?;
    // What an interrupted reset-local leaves: the server up, `postgres` dropped. It is
    // dropped from a database of its own, so that no session of ours lingers in
    // template1 (CREATE DATABASE copies it, and refuses while others are in it).
    plover::connect(&w.url())
        .await?
        .batch_execute("CREATE DATABASE scratch")
        .await?;
    let scratch = format!("postgres://postgres:postgres@127.0.0.1:{}/scratch", w.port);
    let drop_postgres = async || -> Result<()> {
        plover::connect(&scratch)
            .await?
            .batch_execute("DROP DATABASE postgres WITH (FORCE)")
            .await?;
        Ok(())
    };
    drop_postgres().await?;
    let run = w.db(&["reset-local", "--native"])?.expect(0)?;
    assert!(
        run.stderr
            .contains("the local database has no `postgres` database"),
        "{run}"
    );
    assert_reset(&w).await?;
    // `start` heals it too.
    drop_postgres().await?;
    let run = w.db(&["start"])?.expect(0)?;
    assert!(run.stderr.contains("creating it again"), "{run}");
    let url = w.url();
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_database WHERE datname = 'postgres'"
        )
        .await?,
        1
    );
    drop(stopper);
    Ok(())
}

#[tokio::test]
async fn reset_local_heals_an_unfinished_initdb() -> Result<()> {
    let w = workdir_as_caller_or_nobody()?;
    let stopper = Stopper(&w);
    let data = w.path().join("supabase/.temp/plover-db/data");

    // An initdb killed early: files, no PG_VERSION.
    std::fs::create_dir_all(data.join("global"))?;
    std::fs::write(data.join("global/pg_control"), b"half")?;
    if w.user.is_some() {
        chown_nobody(&w.path().join("supabase/.temp"))?;
    }
    let run = w.db(&["reset-local", "--native"])?.expect(0)?;
    assert!(
        run.stderr
            .contains("held files but no cluster (no PG_VERSION"),
        "{run}"
    );
    assert_reset(&w).await?;

    // An initdb stopped after PG_VERSION: kept, moved aside, never deleted.
    w.db(&["stop"])?.expect(0)?;
    let conf = data.join("postgresql.conf");
    let text = std::fs::read_to_string(&conf)?;
    let cut = text
        .find("# plover: a local development database")
        .context("no plover settings in postgresql.conf")?;
    std::fs::write(&conf, &text[..cut])?;
    let run = w.db(&["reset-local", "--native"])?.expect(0)?;
    assert!(run.stderr.contains("its initdb did not finish"), "{run}");
    let aside: Vec<_> = std::fs::read_dir(w.path().join("supabase/.temp/plover-db"))?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("data.unfinished-")
        })
        .collect();
    ensure!(aside.len() == 1, "no data.unfinished-* directory kept");
    ensure!(
        aside[0].path().join("PG_VERSION").is_file(),
        "the kept directory lost its data"
    );
    assert_reset(&w).await?;
    drop(stopper);
    Ok(())
}

#[tokio::test]
async fn reset_local_removes_a_stale_pid_file() -> Result<()> {
    let w = workdir_as_caller_or_nobody()?;
    let stopper = Stopper(&w);
    let data = w.path().join("supabase/.temp/plover-db/data");
    w.db(&["reset-local", "--native", "--no-seed"])?.expect(0)?;
    // A postmaster.pid naming a live process that is not the server (a pid taken by
    // another program of the same user after a crash): the server refuses to start
    // over it.
    let pid_file = std::fs::read_to_string(data.join("postmaster.pid"))?;
    w.db(&["stop"])?.expect(0)?;
    let mut other = Command::new("cat");
    other
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    if let Some(uid) = w.user {
        std::os::unix::process::CommandExt::uid(&mut other, uid);
    }
    let mut other = other.spawn()?;
    let rest = pid_file.split_once('\n').map_or("", |(_, rest)| rest);
    std::fs::write(
        data.join("postmaster.pid"),
        format!("{}\n{rest}", other.id()),
    )?;
    let run = w.db(&["reset-local", "--native"]);
    other.kill()?;
    other.wait()?;
    let run = run?.expect(0)?;
    assert!(
        run.stderr.contains("removed a stale ")
            && run.stderr.contains(&format!(
                "process {} is not this cluster's server",
                other.id()
            )),
        "{run}"
    );
    assert_reset(&w).await?;
    drop(stopper);
    Ok(())
}

#[tokio::test]
async fn reset_local_native_works_for_an_ordinary_user() -> Result<()> {
    if !is_root()? {
        // The native test above already runs as an ordinary user.
        return Ok(());
    }
    // As root (CI): a project owned by `nobody`, and every command run as `nobody`,
    // so the cluster is initialised and run by the caller itself, not `postgres`.
    let mut w = Workdir::new()?;
    let status = Command::new("chown")
        .args(["-R", &format!("{NOBODY}:{NOBODY}")])
        .arg(w.path())
        .status()?;
    ensure!(status.success(), "chown -R failed");
    w.user = Some(NOBODY);
    let stopper = Stopper(&w);
    reset_twice_then_stop(&w, &["--native"]).await?;
    let data = w.path().join("supabase/.temp/plover-db/data");
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&data)?);
    ensure!(
        owner == NOBODY,
        "{} is owned by uid {owner}",
        data.display()
    );
    drop(stopper);
    ensure!(!data.exists(), "{} left behind", data.display());
    Ok(())
}

#[tokio::test]
async fn reset_local_docker_is_repeatable_and_leaves_no_container() -> Result<()> {
    if !plover_tests::docker_tests_run()? {
        return Ok(());
    }
    if std::env::var_os("PLOVER_DOCKER_IMAGE").is_none() {
        bail!(
            "this test needs PLOVER_DOCKER_IMAGE (no registry is reachable here): run it through `cargo xtask test`, or set PLOVER_SKIP_DOCKER_TESTS=1"
        );
    }
    let w = Workdir::new()?;
    // A container name of its own, so parallel runs do not meet.
    let config = w.path().join("supabase/config.toml");
    let text = std::fs::read_to_string(&config)?.replace(
        "project_id = \"money-tracker\"",
        &format!("project_id = \"plover-test-{}\"", w.port),
    );
    std::fs::write(&config, text)?;
    let container = format!("plover-db-plover-test-{}", w.port);
    {
        let _stopper = Stopper(&w);
        reset_twice_then_stop(&w, &["--docker"]).await?;
    }
    let left = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("name=^{container}$")])
        .output()?;
    ensure!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "container {container} left behind"
    );
    Ok(())
}

#[tokio::test]
async fn reset_local_docker_defaults_to_the_local_image_with_real_extensions() -> Result<()> {
    if !plover_tests::docker_tests_run()? {
        return Ok(());
    }
    let w = Workdir::new()?;
    // A container of its own, PostgreSQL 17, and migrations that need the image's
    // extensions.
    let config = w.path().join("supabase/config.toml");
    let text = std::fs::read_to_string(&config)?;
    let major = text
        .lines()
        .find(|l| l.starts_with("major_version"))
        .context("config.toml has no [db] major_version")?;
    let text = text
        .replace(
            "project_id = \"money-tracker\"",
            &format!("project_id = \"plover-test-{}\"", w.port),
        )
        .replace(major, "major_version = 17");
    std::fs::write(&config, text)?;
    std::fs::write(
        w.path()
            .join("supabase/migrations/20990101000000_extensions.sql"),
        "create extension vector;\n\
         create table public.documents (id int primary key, embedding vector(3));\n\
         create index documents_embedding on public.documents using hnsw (embedding vector_cosine_ops);\n\
         create extension pg_cron;\n\
         select cron.schedule('nightly', '0 3 * * *', 'select 1');\n\
         create extension pgtap;\n",
    )?;
    let container = format!("plover-db-plover-test-{}", w.port);
    {
        let _stopper = Stopper(&w);
        // Neither PLOVER_DOCKER_IMAGE nor --image: the local image of `db image`.
        let vars = [("PLOVER_DOCKER_IMAGE", ""), ("PLOVER_DOCKER_TAG", "")];
        let run = xtask_db(
            w.path(),
            &["reset-local", "--docker", "--no-seed"],
            &vars,
            None,
            "postgres:postgres@",
        )?
        .expect(0)?;
        assert!(run.stdout.contains("applied 7 migration(s)"), "{run}");
        let image = Command::new("docker")
            .args(["inspect", "-f", "{{.Config.Image}}", &container])
            .output()?;
        let image = String::from_utf8_lossy(&image.stdout);
        assert!(image.starts_with("plover-postgres:17-"), "{image}");

        let client = plover::connect(&w.url()).await?;
        // pgTAP wants a plan before its first test.
        client.batch_execute("SELECT no_plan()").await?;
        let row = client
            .query_one(
                "SELECT current_setting('server_version_num')::int / 10000,
                        (SELECT amname::text FROM pg_class c JOIN pg_am a ON a.oid = c.relam
                          WHERE c.relname = 'documents_embedding'),
                        (SELECT jobname FROM cron.job),
                        ok(true)",
                &[],
            )
            .await?;
        assert_eq!(row.get::<_, i32>(0), 17);
        assert_eq!(row.get::<_, String>(1), "hnsw");
        assert_eq!(row.get::<_, String>(2), "nightly");
        assert_eq!(row.get::<_, String>(3), "ok 1");
    }
    let left = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("name=^{container}$")])
        .output()?;
    ensure!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "container {container} left behind"
    );
    Ok(())
}
