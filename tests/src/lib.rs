//! The end-to-end test harness: migration directories made on the fly, database
//! snapshots to prove "nothing changed", and the workspace's binaries built on demand.
//!
//! Every test gets its own database on the shared native server
//! ([`plover::testing::TestDatabase`]); nothing here is shared between tests but the
//! server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use tokio_postgres::Client;

pub use plover::testing::TestDatabase;

/// The README's Rust code blocks, compiled as doctests of this crate (and run, but for
/// those marked `no_run`, which need a server): a snippet that stops compiling fails
/// the tests. Blocks of other languages are marked with theirs (`sh`, `toml`, `text`).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub mod readme {}

/// What `cargo xtask db gen types --lang rust` writes for the schema of
/// tests/tests/e2e/gen_types.rs: compiled here, so generated code that stops compiling
/// fails the build, and read back by that test.
#[rustfmt::skip]
#[path = "../fixtures/gen_types/types.rs"]
pub mod gen_types;

/// The repository's migrations (`supabase/migrations`), embedded as an app embeds them.
pub static MIGRATIONS: plover::Embedded =
    plover::embed_migrations!("$CARGO_MANIFEST_DIR/../supabase/migrations");

/// A migration directory of its own for one test.
pub struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    /// An empty directory.
    pub fn new() -> Result<Dir> {
        Ok(Dir {
            dir: tempfile::Builder::new()
                .prefix("plover-migrations-")
                .tempdir()
                .context("creating a temporary migration directory")?,
        })
    }

    /// A directory holding these `(file name, sql)` pairs.
    pub fn with(files: &[(&str, &str)]) -> Result<Dir> {
        let d = Dir::new()?;
        for (name, sql) in files {
            d.write(name, sql)?;
        }
        Ok(d)
    }

    /// Writes (or overwrites) one file.
    pub fn write(&self, name: &str, sql: &str) -> Result<()> {
        std::fs::write(self.path().join(name), sql).with_context(|| format!("writing {name}"))
    }

    /// Removes one file.
    pub fn remove(&self, name: &str) -> Result<()> {
        std::fs::remove_file(self.path().join(name)).with_context(|| format!("removing {name}"))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The directory as a validated source.
    pub fn source(&self) -> Result<plover::Source, plover::Error> {
        plover::Source::from_dir(self.path())
    }

    /// A migrator for this directory and `app`, with the Supabase history on.
    pub fn migrator(&self, app: &str) -> Result<plover::Migrator> {
        Ok(plover::Migrator::new(self.source()?)
            .app(app)
            .supabase_history(plover::SupabaseHistory::On))
    }
}

/// Runs `m` expecting an error; checks that the database did not change and that the
/// lock was released (another session can take it at once).
pub async fn refused(db: &TestDatabase, m: &plover::Migrator) -> Result<plover::Error> {
    let mut client = db.client().await?;
    let before = snapshot(&client).await?;
    let err = match m.run(&mut client).await {
        Ok(report) => bail!(
            "the run must be refused, but it applied {:?}",
            report.applied
        ),
        Err(e) => e,
    };
    anyhow::ensure!(
        snapshot(&client).await? == before,
        "the database changed: {err}"
    );
    let other = db.client().await?;
    let key = plover::lock_key(db.name(), m.app_name());
    let free: bool = other
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await?
        .get(0);
    anyhow::ensure!(free, "the migration lock leaked");
    Ok(err)
}

/// Everything a migration can change that a test looks at: relations, columns,
/// indexes, functions, roles' grants on them, plover's and Supabase's history.
/// Two equal snapshots mean the database is as it was.
pub async fn snapshot(client: &Client) -> Result<String> {
    const SNAPSHOT: &str = "
SELECT 'rel ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text || ' rls=' || c.relrowsecurity::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
UNION ALL
SELECT 'col ' || table_schema || '.' || table_name || '.' || column_name || ' ' || data_type
       || ' null=' || is_nullable || ' default=' || coalesce(column_default, '')
  FROM information_schema.columns
 WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'fn ' || n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'schema ' || nspname FROM pg_namespace
UNION ALL
SELECT 'policy ' || schemaname || '.' || tablename || '.' || policyname FROM pg_policies";
    let mut lines: Vec<String> = client
        .query(SNAPSHOT, &[])
        .await
        .context("taking a catalog snapshot")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (label, sql) in [
        (
            "plover",
            "SELECT app || ' ' || version || ' ' || name || ' ' || state || ' ' || statements_done FROM plover.migrations",
        ),
        (
            "supabase",
            "SELECT version || ' ' || coalesce(name, '') FROM supabase_migrations.schema_migrations",
        ),
    ] {
        let exists: bool = client
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&if label == "plover" {
                    "plover.migrations"
                } else {
                    "supabase_migrations.schema_migrations"
                }],
            )
            .await?
            .get(0);
        if exists {
            for r in client.query(sql, &[]).await? {
                lines.push(format!("{label} {}", r.get::<_, String>(0)));
            }
        }
    }
    lines.sort();
    Ok(lines.join("\n"))
}

/// Rows of a one-column text query, in order.
pub async fn strings(client: &Client, sql: &str) -> Result<Vec<String>> {
    Ok(client
        .query(sql, &[])
        .await
        .with_context(|| format!("running {sql}"))?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Checks that plover's history and the Supabase CLI's hold the same versions.
pub async fn assert_supabase_history_agrees(client: &Client) -> Result<()> {
    let plover = strings(
        client,
        "SELECT version::text FROM plover.migrations ORDER BY 1",
    )
    .await?;
    let supabase = strings(
        client,
        "SELECT version FROM supabase_migrations.schema_migrations ORDER BY 1",
    )
    .await?;
    anyhow::ensure!(
        plover == supabase,
        "plover's history {plover:?} differs from the Supabase CLI's {supabase:?}"
    );
    Ok(())
}

/// One run of a workspace binary: its exit code and output.
pub struct Run {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} exited {:?}\n--- stdout\n{}--- stderr\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// Fails unless the run exited with `code`.
    pub fn expect(self, code: i32) -> Result<Run> {
        anyhow::ensure!(self.code == Some(code), "expected exit {code}: {self}");
        Ok(self)
    }
}

/// The JSON a run printed on stdout (`--json`, `--format json`).
pub fn json(run: &Run) -> Result<serde_json::Value> {
    serde_json::from_str(&run.stdout).with_context(|| format!("parsing the JSON of {run}"))
}

/// Whether this process runs as root (as in CI), so it may act as other users.
pub fn is_root() -> Result<bool> {
    Ok(std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)?)
}

/// `text` as a snapshot holds it: each `(found, shown)` of `known` replaced (see
/// [`url_redactions`]; a temporary directory), then what differs from run to run:
/// RFC 3339 times, durations (`12 ms`, `0.3 s`; whole seconds are limits the test set,
/// so they stay) and this machine's host name (`applied_by` is `program@host`).
///
/// ```
/// let known = [("/tmp/plover-xtask-db-Ab12".to_owned(), "[WORKDIR]")];
/// assert_eq!(
///     plover_tests::normalize(
///         "applied 20250114093012  a  (12 ms) at 2025-01-14T09:30:12Z in /tmp/plover-xtask-db-Ab12\n\
///          took the lock after 0.3 s of 300 s; 3 msgs",
///         &known,
///     ),
///     "applied 20250114093012  a  ([N] ms) at [TIME] in [WORKDIR]\n\
///      took the lock after [N] s of 300 s; 3 msgs",
/// );
/// ```
pub fn normalize(text: &str, known: &[(String, &str)]) -> String {
    let mut text = text.to_owned();
    for (found, shown) in known {
        text = text.replace(found.as_str(), shown);
    }
    if let Some(host) = host_name() {
        text = text.replace(&format!("@{host}"), "@[HOST]");
    }
    redact_times_and_durations(&text)
}

/// What [`normalize`] shows instead of the port and the database name of `url`, a test
/// database's URL: `:[PORT]/` and `[DB]`.
pub fn url_redactions(url: &str) -> Result<Vec<(String, &'static str)>> {
    let config: tokio_postgres::Config = url.parse().context("parsing the test database's URL")?;
    let port = config
        .get_ports()
        .first()
        .context("the test database's URL has no port")?;
    let name = config
        .get_dbname()
        .context("the test database's URL has no database name")?;
    Ok(vec![
        (format!(":{port}/"), ":[PORT]/"),
        (name.to_owned(), "[DB]"),
    ])
}

/// The host name plover records in `applied_by` (as `Migrator` finds it).
fn host_name() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

/// `2025-01-14T09:30:12Z` becomes `[TIME]`, `12 ms` `[N] ms`, `0.3 s` `[N] s`.
fn redact_times_and_durations(text: &str) -> String {
    const TIME: &[u8] = b"dddd-dd-ddTdd:dd:ddZ";
    let bytes = text.as_bytes();
    let is_time = |at: usize| {
        bytes.len() >= at + TIME.len()
            && TIME.iter().zip(&bytes[at..]).all(|(want, got)| match want {
                b'd' => got.is_ascii_digit(),
                other => other == got,
            })
    };
    // A unit ends the word: `ms` but not `msg`.
    let unit_at = |at: usize, unit: &str| {
        text[at..].starts_with(unit)
            && !bytes
                .get(at + unit.len())
                .is_some_and(|b| b.is_ascii_alphanumeric())
    };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if !(starts_word && bytes[i].is_ascii_digit()) {
            i += 1;
            continue;
        }
        if is_time(i) {
            out.push_str(&text[copied..i]);
            out.push_str("[TIME]");
            i += TIME.len();
            copied = i;
            continue;
        }
        let mut end = i;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        let whole = end;
        if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
            end += 1;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
        }
        let unit = if unit_at(end, " ms") {
            Some(" ms")
        } else if end > whole && unit_at(end, " s") {
            Some(" s")
        } else {
            None
        };
        if let Some(unit) = unit {
            out.push_str(&text[copied..i]);
            out.push_str("[N]");
            out.push_str(unit);
            copied = end + unit.len();
        }
        i = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Runs `xtask db <args> --workdir <workdir>` with no inherited variable naming a
/// database (only `vars`), `stdin` piped in (or none), and fails if its output
/// contains `secret`.
pub fn xtask_db(
    workdir: &Path,
    args: &[&str],
    vars: &[(&str, &str)],
    stdin: Option<&str>,
    secret: &str,
) -> Result<Run> {
    let mut cmd = Command::new(binary("xtask")?);
    cmd.arg("db").args(args).arg("--workdir").arg(workdir);
    run_cleaned(
        cmd,
        &format!("xtask db {}", args.join(" ")),
        vars,
        stdin,
        secret,
    )
}

/// [`xtask_db`] run as the user and group `uid` (the caller must be root), with HOME
/// set to `workdir`.
pub fn xtask_db_as(
    uid: u32,
    workdir: &Path,
    args: &[&str],
    vars: &[(&str, &str)],
    secret: &str,
) -> Result<Run> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(binary("xtask")?);
    cmd.arg("db")
        .args(args)
        .arg("--workdir")
        .arg(workdir)
        .env("HOME", workdir)
        .uid(uid)
        .gid(uid);
    run_cleaned(
        cmd,
        &format!("xtask db {} (as uid {uid})", args.join(" ")),
        vars,
        None,
        secret,
    )
}

/// [`xtask_db`] at a terminal: the xtask runs on a pseudo-terminal (util-linux
/// `script`) whose input is `typed`; stdout and stderr both land in `Run::stdout`.
pub fn xtask_db_at_terminal(
    workdir: &Path,
    args: &[&str],
    vars: &[(&str, &str)],
    typed: &str,
    secret: &str,
) -> Result<Run> {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let xtask = binary("xtask")?;
    let mut line = vec![quote(&xtask.to_string_lossy()), "db".to_owned()];
    line.extend(args.iter().map(|a| quote(a)));
    line.push("--workdir".to_owned());
    line.push(quote(&workdir.to_string_lossy()));
    let mut cmd = Command::new("script");
    cmd.args(["--quiet", "--return", "--command"])
        .arg(line.join(" "))
        .arg("/dev/null");
    run_cleaned(
        cmd,
        &format!("xtask db {} (at a terminal)", args.join(" ")),
        vars,
        Some(typed),
        secret,
    )
}

/// Runs `cmd` with no inherited variable naming a database (only `vars`), `stdin`
/// piped in (or none), and fails if its output contains `secret`.
fn run_cleaned(
    mut cmd: Command,
    what: &str,
    vars: &[(&str, &str)],
    stdin: Option<&str>,
    secret: &str,
) -> Result<Run> {
    use std::io::Write;
    use std::process::Stdio;
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    for (k, _) in std::env::vars() {
        if k.contains("DATABASE_URL") || k.starts_with("SUPABASE_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(vars.iter().copied());
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    let run = Run {
        what: what.to_owned(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    anyhow::ensure!(
        !run.stdout.contains(secret) && !run.stderr.contains(secret),
        "{} printed the password:\n{run}",
        run.what
    );
    Ok(run)
}

/// The password put into every connection string handed to the xtask (the test
/// server trusts local connections, so any password is accepted).
pub const SECRET: &str = "s3cr3t-pw";

const PLOVER_TOML: &str = "app = \"money_tracker\"\n\n[environments.staging]\nprotected = false\n";

/// A project for the xtask to work on: a copy of the repository's `supabase/` folder, with a plover.toml.
pub struct Workdir {
    /// The temporary directory holding `supabase/`.
    dir: tempfile::TempDir,
}

/// Copies a folder and its sub-folders (the migrations and their `down/` folder).
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// How many migration files a migrations folder holds (its `.sql` files, not its
/// `down/` folder).
pub fn migration_count(dir: &Path) -> Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && entry.file_name().to_string_lossy().ends_with(".sql") {
            n += 1;
        }
    }
    Ok(n)
}

impl Workdir {
    pub fn new() -> Result<Workdir> {
        let dir = tempfile::Builder::new()
            .prefix("plover-xtask-db-")
            .tempdir()?;
        let from = workspace_root().join("supabase");
        let to = dir.path().join("supabase");
        std::fs::create_dir_all(to.join("migrations"))?;
        for file in ["config.toml", "seed.sql"] {
            std::fs::copy(from.join(file), to.join(file))
                .with_context(|| format!("copying {file}"))?;
        }
        copy_dir(&from.join("migrations"), &to.join("migrations"))?;
        std::fs::write(to.join("plover.toml"), PLOVER_TOML)?;
        Ok(Workdir { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn migrations(&self) -> PathBuf {
        self.path().join("supabase").join("migrations")
    }

    /// Removes every migration file and the `down/` folder: a project without
    /// migrations.
    pub fn remove_migrations(&self) -> Result<()> {
        for file in self.migration_files()? {
            std::fs::remove_file(self.migrations().join(file))?;
        }
        let down = self.migrations().join("down");
        if down.exists() {
            std::fs::remove_dir_all(down)?;
        }
        Ok(())
    }

    /// The migrations' file names (not the `down/` folder's), sorted.
    pub fn migration_files(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.migrations())? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Runs `cargo xtask db <args> --workdir <this>` with only `vars` among the
    /// variables that name databases, and `stdin` piped in (or none).
    pub fn db(&self, args: &[&str], vars: &[(&str, &str)], stdin: Option<&str>) -> Result<Run> {
        xtask_db(self.path(), args, vars, stdin, SECRET)
    }

    /// [`Workdir::db`] at a terminal whose input is `typed` ([`xtask_db_at_terminal`]).
    pub fn db_at_terminal(&self, args: &[&str], vars: &[(&str, &str)], typed: &str) -> Result<Run> {
        xtask_db_at_terminal(self.path(), args, vars, typed, SECRET)
    }
}

/// A database with the Supabase shim and its URL with [`SECRET`] as the password.
pub async fn database() -> Result<(TestDatabase, String)> {
    let db = TestDatabase::with_supabase_shim().await?;
    let url = db.url().to_owned();
    let url = match url.split_once("://").and_then(|(scheme, rest)| {
        let (user, host) = rest.split_once('@')?;
        (!user.contains(':')).then(|| format!("{scheme}://{user}:{SECRET}@{host}"))
    }) {
        Some(with_password) => with_password,
        None => anyhow::bail!(
            "the test server's URL already has a password; these tests need one without"
        ),
    };
    // The server accepts it.
    plover::connect(&url).await?;
    Ok((db, url))
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

/// Builds a workspace binary once per test process and returns its path. Uses a
/// target directory of its own, so it never waits on the `cargo test` that runs us.
pub fn binary(package: &str) -> Result<PathBuf> {
    static BUILT: OnceLock<std::sync::Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    if let Some((_, p)) = built.iter().find(|(n, _)| n == package) {
        return Ok(p.clone());
    }
    let root = workspace_root();
    let target = root.join("target").join("e2e");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--quiet", "--package", package, "--bin", package])
        // The xtask with `db lint` compiled in (the default build runs a second one).
        .args(if package == "xtask" {
            &["--features", "lint"][..]
        } else {
            &[]
        })
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .with_context(|| format!("building {package}"))?;
    if !out.status.success() {
        bail!(
            "cargo build -p {package} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let path = target.join("debug").join(package);
    built.push((package.to_owned(), path.clone()));
    Ok(path)
}

/// A copy of one of tests/fixtures/<name>/ (a project with `supabase/`) whose
/// `[db] port` is a free port, for `db reset-local` and friends. Its local database
/// is stopped and deleted on drop.
pub struct Fixture {
    dir: tempfile::TempDir,
    port: u16,
}

impl Fixture {
    pub fn new(name: &str) -> Result<Fixture> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix(&format!("plover-{name}-"))
            .tempdir()?;
        // Reachable by the `postgres` account when we are root.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        copy_tree(&fixture_dir(name), dir.path())?;
        let port = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let config = dir.path().join("supabase/config.toml");
        let text = std::fs::read_to_string(&config)?;
        anyhow::ensure!(
            text.contains("\nport = 54322\n"),
            "{} has no `port = 54322` line to replace",
            config.display()
        );
        // A port and a Docker container name of its own, so parallel runs do not meet.
        let text = text
            .replace("\nport = 54322\n", &format!("\nport = {port}\n"))
            .replace(
                &format!("project_id = \"{name}\""),
                &format!("project_id = \"plover-test-{port}\""),
            );
        std::fs::write(&config, text)?;
        Ok(Fixture { dir, port })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The local database's URL (the password every local database has).
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:postgres@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// The project's migrations with its app name, as the xtask loads them.
    pub fn migrator(&self) -> Result<plover::Migrator> {
        let project = plover::project::Project::load(self.path())?;
        Ok(
            plover::Migrator::new(plover::Source::from_dir(project.migrations_dir())?)
                .app(project.app()),
        )
    }

    /// Runs `cargo xtask db <args> --workdir <this>` with no variable naming a database.
    pub fn db(&self, args: &[&str]) -> Result<Run> {
        xtask_db(self.path(), args, &[], None, "postgres:postgres@")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !self.path().join("supabase/.temp").exists() {
            return;
        }
        match self.db(&["stop", "--no-backup"]) {
            Ok(run) if run.code == Some(0) => {}
            Ok(run) => eprintln!("could not stop the local database: {run}"),
            Err(e) => eprintln!("could not stop the local database: {e:#}"),
        }
    }
}

/// tests/fixtures/<name>.
pub fn fixture_dir(name: &str) -> PathBuf {
    workspace_root().join("tests/fixtures").join(name)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// What each migration of tests/fixtures/supabase-features made, checked by using it.
pub async fn check_supabase_features(client: &Client) -> Result<()> {
    client
        .batch_execute(
            "insert into auth.users (id, email) values ('11111111-1111-1111-1111-111111111111', 'ada@example.com');
             insert into public.profiles (id, username) values ('11111111-1111-1111-1111-111111111111', 'ada');",
        )
        .await?;
    let checks = [
        // gen_random_bytes, unqualified, as the default of api_key
        ("SELECT length(api_key)::text FROM public.profiles", "32"),
        // the index built concurrently is valid
        (
            "SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'public.profiles_created_at_idx'::regclass",
            "true",
        ),
        // the webhook trigger queued one request (never sent)
        (
            "SELECT method || ' ' || url FROM net.http_request_queue",
            "POST https://project.supabase.co/functions/v1/welcome",
        ),
        (
            "SELECT decrypted_secret FROM vault.decrypted_secrets WHERE name = 'welcome_webhook_token'",
            "local-token",
        ),
        (
            "SELECT obj_description('public.profiles'::regclass, 'pg_class')",
            "@graphql({\"totalCount\": {\"enabled\": true}})",
        ),
        (
            "SELECT count(*)::text FROM pg_policies WHERE schemaname = 'storage' AND tablename = 'objects'",
            "2",
        ),
        (
            "SELECT public::text FROM storage.buckets WHERE id = 'avatars'",
            "true",
        ),
        (
            "SELECT tablename::text FROM pg_publication_tables WHERE pubname = 'supabase_realtime'",
            "profiles",
        ),
        (
            "SELECT has_function_privilege('supabase_auth_admin', 'public.custom_access_token_hook(jsonb)', 'execute')::text \
             || ' ' || has_function_privilege('anon', 'public.custom_access_token_hook(jsonb)', 'execute')::text",
            "true false",
        ),
    ];
    for (sql, expected) in checks {
        let got = strings(client, sql).await?;
        anyhow::ensure!(
            got == [expected],
            "{sql}\n  expected {expected:?}, got {got:?}"
        );
    }
    Ok(())
}

/// Whether the Docker tests run: `false` (with a note) when
/// `PLOVER_SKIP_DOCKER_TESTS=1`; an error saying how to get one when no engine
/// answers.
pub fn docker_tests_run() -> Result<bool> {
    if std::env::var("PLOVER_SKIP_DOCKER_TESTS").as_deref() == Ok("1") {
        eprintln!("skipped: PLOVER_SKIP_DOCKER_TESTS=1");
        return Ok(false);
    }
    if let Err(e) = plover::testing::docker::check_engine() {
        bail!(
            "this test needs a Docker engine ({e}); `cargo xtask test` starts one, or set PLOVER_SKIP_DOCKER_TESTS=1"
        );
    }
    Ok(true)
}

/// The Supabase baseline's version in the database (`None` when it has none).
pub async fn baseline_version(client: &Client) -> Result<Option<i32>> {
    let present: bool = client
        .query_one(
            "SELECT to_regprocedure('extensions.plover_shim_version()') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !present {
        return Ok(None);
    }
    Ok(Some(
        client
            .query_one("SELECT extensions.plover_shim_version()", &[])
            .await?
            .get(0),
    ))
}

/// The workdir's local development database on a free port of its own, stopped
/// and deleted on drop.
pub struct LocalServer<'w>(&'w Workdir);

impl<'w> LocalServer<'w> {
    pub fn isolate(w: &'w Workdir) -> Result<LocalServer<'w>> {
        // Reachable by the `postgres` account when we are root.
        std::fs::set_permissions(
            w.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        let port = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let config = w.path().join("supabase/config.toml");
        let text = std::fs::read_to_string(&config)?;
        anyhow::ensure!(
            text.contains("\nport = 54322\n"),
            "config.toml's [db] port moved"
        );
        std::fs::write(
            &config,
            text.replace("\nport = 54322\n", &format!("\nport = {port}\n")),
        )?;
        Ok(LocalServer(w))
    }
}

impl Drop for LocalServer<'_> {
    fn drop(&mut self) {
        match self.0.db(&["stop", "--no-backup"], &[], None) {
            Ok(run) if run.code == Some(0) => {}
            Ok(run) => eprintln!("could not stop the local database: {run}"),
            Err(e) => eprintln!("could not stop the local database: {e:#}"),
        }
    }
}
