//! `cargo xtask db start|stop|reset-local`: the project's local development database,
//! a native cluster under `supabase/.temp/plover-db/` or a Docker container (of the
//! local image of `cargo xtask db image` unless told otherwise, started through
//! `plover::testing::docker::ContainerSpec`), on 127.0.0.1:<[db] port>. Which mode runs is recorded in `supabase/.temp/plover-db/mode`,
//! so `stop` finds it. The password is the well-known local one (`postgres`), and it
//! still never goes into argv.
//!
//! `start`, `stop` and `reset-local` hold the local database's lock
//! (`supabase/.temp/plover-db/lock`, an flock) for their whole run, so two of them
//! never initdb, start or reset at once: a second one says whom it waits for and
//! goes on after it. What an interrupted run leaves is healed on the next start: an
//! unfinished data directory or a stale `postmaster.pid` (`NativeServer::
//! start_persistent`), a cluster without its `postgres` database (created again).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use plover::project::{LOCAL, Project};
use plover::redact;
use plover::testing::docker::{ContainerSpec, Docker, Named, engine_answers};
use plover::testing::{NativeServer, apply_supabase_shim, find_binaries, persistent_data_dir};
use xshell::{Shell, cmd};

use super::Ctx;
use super::progress::Progress;
use crate::flags::{DbResetLocal, DbStart, DbStop, LocalMode};
use crate::image::{self, Missing};

/// The local database's password (as the Supabase CLI's local stack has it).
const PASSWORD: &str = "postgres";

/// The label on the local database's container.
const LOCAL_DB_LABEL: &str = "plover.local-db";

/// SQLSTATE invalid_catalog_name: the database asked for does not exist.
const INVALID_CATALOG_NAME: &str = "3D000";

/// How long a starting server gets to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Where the local database runs, as recorded in the mode file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Running {
    Native { data_dir: PathBuf },
    Docker { container: String },
}

impl DbStart {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let _lock = ClusterLock::take(&ctx.project, "start").await?;
        let started = start(&ctx.sh, &ctx.project, &self.mode).await?;
        println!("{}", ctx.project.local_conninfo("postgres").redacted());
        eprintln!("{started}");
        Ok(ExitCode::SUCCESS)
    }
}

impl DbStop {
    pub fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let project = &ctx.project;
        let _lock = ClusterLock::take_blocking(project, "stop")?;
        let state = state_dir(project);
        let Some(running) = read_mode(project)? else {
            println!("no local database was started here");
            return Ok(ExitCode::SUCCESS);
        };
        match &running {
            Running::Native { data_dir } => {
                let server = NativeServer::persistent(data_dir, project.config().db_port)
                    .context("finding the PostgreSQL binaries to stop the local database")?;
                if server.stop().context("stopping the local database")? {
                    println!(
                        "stopped the local database (native, {})",
                        data_dir.display()
                    );
                } else {
                    println!("the local database was not running");
                }
                if self.no_backup {
                    remove_data(data_dir)?;
                }
            }
            Running::Docker { container } => {
                let sh = &ctx.sh;
                if self.no_backup {
                    cmd!(sh, "docker rm -f -v {container}")
                        .quiet()
                        .ignore_stdout()
                        .run()
                        .with_context(|| format!("removing the container {container}"))?;
                    println!("removed the local database (docker container {container})");
                } else {
                    cmd!(sh, "docker stop {container}")
                        .quiet()
                        .ignore_stdout()
                        .run()
                        .with_context(|| format!("stopping the container {container}"))?;
                    println!("stopped the local database (docker container {container})");
                }
            }
        }
        if self.no_backup {
            let _ = std::fs::remove_file(state.join("mode"));
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl DbResetLocal {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let project = &ctx.project;
        if let Some(env) = ctx.env.as_deref().filter(|e| *e != LOCAL) {
            bail!(
                "reset-local only resets the local database, not --env {env}; drop --env (or pass --env local)"
            );
        }
        let t0 = Instant::now();
        let _lock = ClusterLock::take(project, "reset-local").await?;
        let started = start(&ctx.sh, project, &self.mode).await?;
        eprintln!("{started}");

        let admin = project
            .local_conninfo("template1")
            .connect()
            .await
            .context("connecting to the local database's template1")?;
        admin
            .batch_execute("DROP DATABASE IF EXISTS postgres WITH (FORCE)")
            .await
            .context("dropping the local `postgres` database")?;
        admin
            .batch_execute("CREATE DATABASE postgres")
            .await
            .context("creating the local `postgres` database")?;
        drop(admin);

        let local = project.local_conninfo("postgres");
        let mut client = local
            .connect()
            .await
            .with_context(|| format!("connecting to {local}"))?;
        apply_supabase_shim(&client)
            .await
            .context("applying the Supabase shim")?;
        let migrator = ctx.migrator()?;
        let progress = Progress::new(migrator.source().migrations().len());
        let migrator = progress.watch(migrator);
        let report = migrator.run(&mut client).await;
        progress.finish();
        let report = report.context("applying the migrations to the local database")?;
        println!(
            "applied {} migration(s) (app {}) in {} ms",
            report.applied.len(),
            migrator.app_name(),
            report.total.as_millis()
        );
        for line in super::grants::apply(project, &mut client).await? {
            println!("{line}");
        }

        if self.no_seed {
            println!("seed skipped (--no-seed)");
        } else {
            super::seed::load(project, &client).await?;
        }
        println!(
            "local database reset in {:.1} s: {}",
            t0.elapsed().as_secs_f64(),
            local.redacted()
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// The local development database of the project in `workdir`, started (in the
/// default mode) or found running: its `postgres` database's URL. For `cargo xtask
/// dev` and `db pull`'s shadow database.
pub async fn started(sh: &Shell, workdir: &Path) -> Result<String> {
    let project = Project::load(workdir)
        .with_context(|| format!("reading the project in {}", workdir.display()))?;
    let _lock = ClusterLock::take(&project, "dev").await?;
    let started = start(sh, &project, &LocalMode::default()).await?;
    eprintln!("{started}");
    Ok(project.local_url("postgres"))
}

/// What `start` did, for stderr.
struct Started(String);

impl std::fmt::Display for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Starts the local database in the mode asked for (else the recorded one, else
/// native where server binaries exist, else docker where an engine answers), or
/// finds it running, and waits until it accepts the local URL.
async fn start(sh: &Shell, project: &Project, mode: &LocalMode) -> Result<Started> {
    let port = project.config().db_port;
    let recorded = read_mode(project)?;
    let docker = if mode.docker {
        true
    } else if mode.native {
        false
    } else {
        match &recorded {
            Some(Running::Docker { .. }) => true,
            Some(Running::Native { .. }) => false,
            None => find_binaries().is_err() && engine_answers(),
        }
    };
    let running = if docker {
        Running::Docker {
            container: container_name(project),
        }
    } else {
        Running::Native {
            data_dir: persistent_data_dir(&state_dir(project).join("data")),
        }
    };
    if let Some(previous) = recorded.filter(|r| *r != running) {
        let running_now = match &previous {
            Running::Native { data_dir } => NativeServer::persistent(data_dir, port)
                .map(|s| s.is_running())
                .unwrap_or(false),
            Running::Docker { container } => container_runs(sh, container),
        };
        if running_now {
            bail!(
                "the local database already runs {}; stop it first with `cargo xtask db stop`",
                describe(&previous)
            );
        }
    }
    let message = match &running {
        Running::Native { data_dir } => {
            let data_dir = data_dir.clone();
            let (_, repairs) = tokio::task::spawn_blocking(move || {
                NativeServer::start_persistent(&data_dir, port, PASSWORD)
            })
            .await
            .context("starting the local database")?
            .context("starting the local database from the system's PostgreSQL binaries")?;
            for repair in repairs {
                eprintln!("healed the local database: {repair}");
            }
            format!("local database: {}", describe(&running))
        }
        Running::Docker { container } => {
            start_container(sh, project, container, port, mode)?;
            format!("local database: {}", describe(&running))
        }
    };
    write_mode(project, &running)?;
    if wait_ready(&project.local_url("postgres")).await? == Ready::NoDatabase {
        create_postgres_database(project).await?;
    }
    Ok(Started(message))
}

fn describe(running: &Running) -> String {
    match running {
        Running::Native { data_dir } => format!("native, data in {}", data_dir.display()),
        Running::Docker { container } => format!("docker container {container}"),
    }
}

/// `supabase/.temp/plover-db`: the mode file and, where reachable, the native data.
fn state_dir(project: &Project) -> PathBuf {
    project
        .workdir()
        .join("supabase")
        .join(".temp")
        .join("plover-db")
}

fn read_mode(project: &Project) -> Result<Option<Running>> {
    let file = state_dir(project).join("mode");
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let line = text.trim_end_matches('\n');
    Ok(match line.split_once(' ') {
        Some(("native", dir)) => Some(Running::Native {
            data_dir: dir.into(),
        }),
        Some(("docker", name)) => Some(Running::Docker {
            container: name.into(),
        }),
        _ => bail!(
            "{} is not `native <dir>` or `docker <container>`; delete it and stop the server by hand",
            file.display()
        ),
    })
}

fn write_mode(project: &Project, running: &Running) -> Result<()> {
    let dir = state_dir(project);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = match running {
        Running::Native { data_dir } => format!("native {}\n", data_dir.display()),
        Running::Docker { container } => format!("docker {container}\n"),
    };
    let file = dir.join("mode");
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))
}

/// Removes a stopped native cluster's directory (the data directory's parent when it
/// is one of ours under /var/tmp, else the data directory itself).
fn remove_data(data_dir: &Path) -> Result<()> {
    let target = match data_dir.parent() {
        Some(p)
            if p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("plover-db")) =>
        {
            p
        }
        _ => data_dir,
    };
    if target.exists() {
        std::fs::remove_dir_all(target)
            .with_context(|| format!("removing {}", target.display()))?;
        println!("removed {}", target.display());
    }
    Ok(())
}

/// Creates the local cluster's `postgres` database again (an interrupted
/// `reset-local` drops it), from template1.
async fn create_postgres_database(project: &Project) -> Result<()> {
    eprintln!(
        "the local database has no `postgres` database (a reset-local was interrupted between dropping and creating it); creating it again"
    );
    let admin = project
        .local_conninfo("template1")
        .connect()
        .await
        .context(
            "connecting to the local database's template1 to create `postgres` again; if template1 is gone too, `cargo xtask db stop --no-backup` deletes the local data and the next start begins afresh",
        )?;
    admin
        .batch_execute("CREATE DATABASE postgres")
        .await
        .context("creating the local `postgres` database again")?;
    Ok(())
}

/// The local database's lock: an flock on `supabase/.temp/plover-db/lock`, held by
/// `start`, `stop`, `reset-local` (and `dev`'s start) until they end; the system
/// releases it when the process ends, however it ends. The holder writes its pid and
/// command into the file, so a waiter can name it.
struct ClusterLock {
    _file: File,
}

impl ClusterLock {
    /// [`ClusterLock::take_blocking`] off the async runtime.
    async fn take(project: &Project, command: &'static str) -> Result<ClusterLock> {
        let dir = state_dir(project);
        tokio::task::spawn_blocking(move || ClusterLock::take_in(&dir, command))
            .await
            .context("waiting for the local database's lock")?
    }

    /// Takes the lock for `command`; when another command holds it, says so on
    /// stderr and waits for it.
    fn take_blocking(project: &Project, command: &str) -> Result<ClusterLock> {
        ClusterLock::take_in(&state_dir(project), command)
    }

    fn take_in(dir: &Path, command: &str) -> Result<ClusterLock> {
        let path = dir.join("lock");
        let mut said = false;
        let mut file = loop {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    if !said {
                        let mut holder = String::new();
                        // Empty when the holder has not written itself yet.
                        let _ = file.read_to_string(&mut holder);
                        let holder = match holder.trim().split_once(' ') {
                            Some((pid, cmd)) => format!("`cargo xtask db {cmd}` (pid {pid})"),
                            None => "another `cargo xtask db` command".to_owned(),
                        };
                        eprintln!(
                            "waiting for {holder} to finish with the local database (it holds {})",
                            path.display()
                        );
                        said = true;
                    }
                    file.lock()
                        .with_context(|| format!("waiting for the lock on {}", path.display()))?;
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("locking {}", path.display()));
                }
            }
            // `stop --no-backup` deletes the directory, lock file included, while it
            // holds the lock: a lock on a file no longer at `path` guards nothing.
            if same_file(&file, &path) {
                break file;
            }
        };
        let me = format!("{} {command}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(me.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(ClusterLock { _file: file })
    }
}

/// Whether `file` is the file at `path` now.
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// `plover-db-<project_id>` (characters Docker refuses become `-`).
fn container_name(project: &Project) -> String {
    let id = project.config().project_id.as_deref().unwrap_or("default");
    let id: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("plover-db-{id}")
}

fn container_runs(sh: &Shell, name: &str) -> bool {
    let format = "{{.State.Running}}";
    cmd!(sh, "docker inspect -f {format} {name}")
        .quiet()
        .ignore_stderr()
        .read()
        .is_ok_and(|s| s.trim() == "true")
}

/// Starts the container: found running, restarted when stopped, else created from
/// the image [`docker_image`] chooses, through the library's `ContainerSpec` (the
/// password travels in the container's environment, never argv).
fn start_container(
    sh: &Shell,
    project: &Project,
    name: &str,
    port: u16,
    mode: &LocalMode,
) -> Result<()> {
    let settings = Docker::from_env();
    let (image, tag, bare) = docker_image(sh, project, mode, &settings)?;
    let spec = ContainerSpec {
        network: settings.network,
        bare,
        port,
        password: Some(PASSWORD.into()),
        ..ContainerSpec::new(image, tag)
    };
    let started = spec
        .start_named(name, &[(LOCAL_DB_LABEL, "1")])
        .with_context(|| format!("starting the container {name}"))?;
    if started != Named::Created {
        let runs = container_image(sh, name);
        if let Some(runs) = runs.filter(|runs| *runs != spec.descriptor()) {
            eprintln!(
                "note: the local database runs {runs}, not {}; to move to it, `cargo xtask db stop --no-backup` (deletes the local data), then start again",
                spec.descriptor()
            );
        }
    }
    Ok(())
}

/// The image of a new local container, and whether it is bare: --image, else
/// PLOVER_DOCKER_IMAGE (and _TAG, _BARE), else the local image of `cargo xtask db
/// image` for `[db] major_version`, built first when missing.
pub(crate) fn docker_image(
    sh: &Shell,
    project: &Project,
    mode: &LocalMode,
    settings: &Docker,
) -> Result<(String, String, bool)> {
    if let Some(image) = &mode.image {
        let (name, tag) = split_reference(image).unwrap_or((image, &settings.tag));
        return Ok((name.into(), tag.into(), mode.bare || settings.bare));
    }
    if std::env::var_os("PLOVER_DOCKER_IMAGE").is_some_and(|v| !v.is_empty()) {
        return Ok((
            settings.image.clone(),
            settings.tag.clone(),
            mode.bare || settings.bare,
        ));
    }
    let major = project.config().db_major_version;
    let reference = image::ensure(sh, major, None, Missing::Build)
        .context("finding the local PostgreSQL image (`[db] major_version` of supabase/config.toml); or pass --image")?
        .with_context(|| format!("the local image for PostgreSQL {major} is missing; build it with `sudo cargo xtask db image --major {major}`"))?;
    let (name, tag) = split_reference(&reference)
        .with_context(|| format!("the local image's name {reference} has no tag"))?;
    Ok((name.into(), tag.into(), true))
}

/// `name:tag` split at the tag's colon (a registry's `host:port/` is part of the name).
fn split_reference(reference: &str) -> Option<(&str, &str)> {
    reference
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
}

/// The image the container `name` was created from.
fn container_image(sh: &Shell, name: &str) -> Option<String> {
    let format = "{{.Config.Image}}";
    cmd!(sh, "docker inspect -f {format} {name}")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
        .map(|s| s.trim().to_owned())
}

/// What [`wait_ready`] found.
#[derive(Debug, PartialEq, Eq)]
enum Ready {
    /// The URL's database answers.
    Yes,
    /// The server answers, but the URL's database does not exist.
    NoDatabase,
}

/// Waits until the local URL accepts a connection and answers, or the server says
/// that its database does not exist.
async fn wait_ready(url: &str) -> Result<Ready> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let error = match plover::connect(url).await {
            Ok(client) => match client.simple_query("SELECT 1").await {
                Ok(_) => return Ok(Ready::Yes),
                Err(e) => e.to_string(),
            },
            Err(e) if e.sqlstate() == Some(INVALID_CATALOG_NAME) => return Ok(Ready::NoDatabase),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            bail!(
                "the local database did not accept {} within {} s: {error}",
                redact(url),
                START_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
