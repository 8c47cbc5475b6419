//! plover and the real Supabase CLI on one database: what `supabase db push` applied
//! is adopted, never run again; what plover pushed, `supabase migration list` agrees
//! with; a version the CLI applied with other statements than the file's is refused,
//! naming the `db adopt` command.
//!
//! The CLI is the npm package `supabase`, pinned; `.ci/supabase-cli-up DIR` installs
//! it outside the repository and prints the binary's path, and `cargo xtask test` runs
//! it when npm exists and sets `PLOVER_SUPABASE_CLI`:
//!
//! ```text
//! PLOVER_SUPABASE_CLI=$(.ci/supabase-cli-up /tmp/plover-supabase-cli) \
//!   cargo test -p plover-tests --test e2e -- supabase_cli::
//! ```
//!
//! It runs without Docker (`--db-url`, with `sslmode=disable` for the test server).
//! Without it these tests fail, saying how to get it; `PLOVER_SKIP_SUPABASE_CLI_TESTS=1`
//! opts out on machines without npm.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use plover_tests::{SECRET, TestDatabase, database, snapshot, strings, xtask_db};
use tokio_postgres::Client;

/// A file with what the CLI's splitter and plover's treat differently: comments before
/// and after statements, a `;` in a string, a dollar-quoted body, a last statement
/// without `;`. The insert shows whether it ran twice.
const PLAIN: &str = "-- the shop's first tables
create table item (id int primary key, note text default 'a;b');

/* a function with a body */
create function item_count() returns bigint language plpgsql as $$
begin
  return (select count(*) from item);
end;
$$;
create table log (what text);
insert into log values ('plain ran')
";
/// Wrapped whole in `BEGIN; … COMMIT;`: the CLI records the wrapper, plover does not.
const WRAPPED: &str = "BEGIN;
create table price (item int references item, cents int);
insert into log values ('wrapped ran');
COMMIT;
";
/// A trailing comment, which the CLI records as a statement of its own.
const TRAILING: &str = "alter table item add column name text;
insert into log values ('trailing ran');

-- more to come
";
const LATER: &str = "alter table price add column currency text;
insert into log values ('later ran');
";

/// The CLI's binary, or `None` when `PLOVER_SKIP_SUPABASE_CLI_TESTS=1`; an error with
/// instructions when it is missing.
fn cli() -> Result<Option<PathBuf>> {
    if std::env::var("PLOVER_SKIP_SUPABASE_CLI_TESTS").as_deref() == Ok("1") {
        eprintln!("skipped: PLOVER_SKIP_SUPABASE_CLI_TESTS=1");
        return Ok(None);
    }
    let Some(path) = std::env::var_os("PLOVER_SUPABASE_CLI") else {
        bail!(
            "these tests need the real Supabase CLI: run `.ci/supabase-cli-up /tmp/plover-supabase-cli` \
             (npm installs supabase@2.117.0 there) and set PLOVER_SUPABASE_CLI to the path it prints; \
             `cargo xtask test` does both when npm exists. On a machine without npm, set \
             PLOVER_SKIP_SUPABASE_CLI_TESTS=1"
        );
    };
    let path = PathBuf::from(path);
    anyhow::ensure!(
        path.is_file(),
        "PLOVER_SUPABASE_CLI names {}, which is not a file; run .ci/supabase-cli-up DIR and use the path it prints",
        path.display()
    );
    Ok(Some(path))
}

/// A project in the Supabase CLI's layout (`supabase/migrations`), with a plover.toml
/// naming the app `shop`.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn with(files: &[(&str, &str)]) -> Result<Project> {
        let dir = tempfile::Builder::new()
            .prefix("plover-supabase-cli-")
            .tempdir()?;
        std::fs::create_dir_all(dir.path().join("supabase/migrations"))?;
        std::fs::write(dir.path().join("supabase/plover.toml"), "app = \"shop\"\n")?;
        let p = Project { dir };
        for (name, sql) in files {
            p.write(name, sql)?;
        }
        Ok(p)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, sql: &str) -> Result<()> {
        std::fs::write(self.path().join("supabase/migrations").join(name), sql)
            .with_context(|| format!("writing {name}"))
    }

    fn migrator(&self) -> Result<plover::Migrator> {
        Ok(plover::Migrator::new(plover::Source::from_dir(
            self.path().join("supabase/migrations"),
        )?)
        .app("shop"))
    }

    /// Runs the Supabase CLI in this project against `db`: the URL without a
    /// password in argv (the password, if the server has one, goes in PGPASSWORD).
    fn supabase(&self, cli: &Path, db: &TestDatabase, args: &[&str]) -> Result<Output> {
        let config: tokio_postgres::Config = db.url().parse()?;
        let host = match config.get_hosts() {
            [tokio_postgres::config::Host::Tcp(h), ..] => h.clone(),
            _ => bail!("the test server is not on TCP"),
        };
        let url = format!(
            "postgresql://{}@{host}:{}/{}?sslmode=disable",
            config.get_user().unwrap_or("postgres"),
            config.get_ports().first().copied().unwrap_or(5432),
            config.get_dbname().unwrap_or("postgres"),
        );
        let mut cmd = Command::new(cli);
        cmd.args(args)
            .args(["--db-url", &url, "--workdir"])
            .arg(self.path())
            .current_dir(self.path())
            .env("DO_NOT_TRACK", "1")
            .env("SUPABASE_TELEMETRY_DISABLED", "1")
            .stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.contains("DATABASE_URL")
                || (k.starts_with("SUPABASE_") && k != "SUPABASE_TELEMETRY_DISABLED")
                || k.starts_with("PG")
            {
                cmd.env_remove(k);
            }
        }
        if let Some(password) = config.get_password() {
            cmd.env("PGPASSWORD", String::from_utf8_lossy(password).into_owned());
        }
        let began = Instant::now();
        let out = cmd
            .output()
            .with_context(|| format!("running supabase {}", args.join(" ")))?;
        let out = Output {
            what: format!("supabase {}", args.join(" ")),
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!("{} took {} ms", out.what, began.elapsed().as_millis());
        anyhow::ensure!(out.ok, "{out}");
        Ok(out)
    }

    /// `supabase db push`, answering its question.
    fn supabase_push(&self, cli: &Path, db: &TestDatabase) -> Result<Output> {
        self.supabase(cli, db, &["db", "push", "--yes"])
    }

    /// `supabase migration list`: each version as (local, remote), blank where absent.
    fn supabase_list(&self, cli: &Path, db: &TestDatabase) -> Result<Vec<(String, String)>> {
        let out = self.supabase(cli, db, &["migration", "list"])?;
        let rows: Vec<(String, String)> = out
            .stdout
            .lines()
            .filter(|l| l.contains('`'))
            .map(|l| {
                let cells: Vec<String> = l
                    .split('|')
                    .map(|c| c.trim().trim_matches('`').trim().to_owned())
                    .collect();
                (
                    cells.first().cloned().unwrap_or_default(),
                    cells.get(1).cloned().unwrap_or_default(),
                )
            })
            .collect();
        anyhow::ensure!(!rows.is_empty(), "no migration listed: {out}");
        Ok(rows)
    }

    /// `cargo xtask db <args>` on this project, `--env local` being `url`.
    fn xtask(&self, args: &[&str], url: &str) -> Result<plover_tests::Run> {
        xtask_db(self.path(), args, &[("DATABASE_URL", url)], None, SECRET)
    }
}

struct Output {
    what: String,
    ok: bool,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}\n--- stdout\n{}--- stderr\n{}",
            self.what,
            if self.ok { "succeeded" } else { "failed" },
            self.stdout,
            self.stderr
        )
    }
}

/// The snapshot without plover's own history rows: what the migrations made, and the
/// Supabase CLI's rows.
async fn schema(client: &Client) -> Result<String> {
    Ok(snapshot(client)
        .await?
        .lines()
        .filter(|l| {
            // plover's own tables and functions.
            !l.starts_with("plover ") && !l.contains(" plover.") && *l != "schema plover"
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

async fn log(client: &Client) -> Result<Vec<String>> {
    strings(client, "SELECT what FROM log ORDER BY what").await
}

const V1: &str = "20250101000001";
const V2: &str = "20250101000002";
const V3: &str = "20250101000003";
const V4: &str = "20250101000004";

#[tokio::test]
async fn what_supabase_db_push_applied_is_adopted_by_xtask_push_and_never_run_again() -> Result<()>
{
    let Some(cli) = cli()? else { return Ok(()) };
    let (db, url) = database().await?;
    let client = db.client().await?;
    let project = Project::with(&[
        ("20250101000001_plain.sql", PLAIN),
        ("20250101000002_wrapped.sql", WRAPPED),
        ("20250101000003_trailing.sql", TRAILING),
    ])?;
    project.supabase_push(&cli, &db)?;
    let ran = ["plain ran", "trailing ran", "wrapped ran"];
    assert_eq!(log(&client).await?, ran);
    let before = snapshot(&client).await?;
    let before_schema = schema(&client).await?;

    // status reads what push would adopt, and writes nothing.
    let status = project.xtask(&["status", "--json"], &url)?.expect(0)?;
    let json: serde_json::Value = serde_json::from_str(&status.stdout)?;
    let adopt: Vec<i64> = json["adopt_from_supabase_cli"]
        .as_array()
        .context("adopt_from_supabase_cli")?
        .iter()
        .filter_map(|v| v["version"].as_i64())
        .collect();
    assert_eq!(
        adopt,
        [V1, V2, V3].map(|v| v.parse::<i64>().unwrap()),
        "{status}"
    );
    assert!(
        json["migrations"]
            .as_array()
            .context("migrations")?
            .iter()
            .all(|m| m["state"] == "applied-by-supabase-cli"),
        "{status}"
    );
    let human = project.xtask(&["status"], &url)?.expect(0)?;
    assert!(
        human.stdout.contains(&format!("adopt {V2}  wrapped")),
        "{human}"
    );
    assert_eq!(snapshot(&client).await?, before, "status wrote something");

    // push adopts them, one line each, and runs nothing.
    let push = project.xtask(&["push"], &url)?.expect(0)?;
    for (v, name) in [(V1, "plain"), (V2, "wrapped"), (V3, "trailing")] {
        assert!(
            push.stdout.contains(&format!("adopted {v}  {name}  (")),
            "{push}"
        );
    }
    assert!(
        push.stdout
            .contains("3 adopted from the Supabase CLI, 0 applied"),
        "{push}"
    );
    assert_eq!(log(&client).await?, ran, "a migration ran again");
    assert_eq!(schema(&client).await?, before_schema, "the schema changed");
    assert_eq!(
        strings(
            &client,
            "SELECT version || ' ' || split_part(applied_by, ' by ', 1) FROM plover.migrations WHERE app = 'shop' ORDER BY version"
        )
        .await?,
        [V1, V2, V3].map(|v| format!("{v} adopted from supabase"))
    );

    // A later file is applied by plover, and only it.
    project.write("20250101000004_later.sql", LATER)?;
    let push = project.xtask(&["push"], &url)?.expect(0)?;
    assert!(push.stdout.contains("1 to apply"), "{push}");
    assert!(!push.stdout.contains("adopted "), "{push}");
    assert_eq!(
        log(&client).await?,
        ["later ran", "plain ran", "trailing ran", "wrapped ran"]
    );
    // And both tools agree on what is applied: the CLI has nothing to push.
    let list = project.supabase_list(&cli, &db)?;
    assert_eq!(
        list,
        [V1, V2, V3, V4].map(|v| (v.to_owned(), v.to_owned())),
        "local and remote differ"
    );
    let again = project.supabase_push(&cli, &db)?;
    assert!(
        again.stdout.contains("up to date") || again.stderr.contains("up to date"),
        "{again}"
    );
    assert_eq!(log(&client).await?.len(), 4);
    Ok(())
}

#[tokio::test]
async fn the_app_boot_path_adopts_a_wrapped_file_the_cli_pushed() -> Result<()> {
    let Some(cli) = cli()? else { return Ok(()) };
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    let project = Project::with(&[
        ("20250101000001_plain.sql", PLAIN),
        ("20250101000002_wrapped.sql", WRAPPED),
    ])?;
    project.supabase_push(&cli, &db)?;
    let recorded = strings(
        &client,
        &format!(
            "SELECT array_to_string(statements, ' | ') FROM supabase_migrations.schema_migrations WHERE version = '{V2}'"
        ),
    )
    .await?;
    // What the real CLI records for a wrapped file: the wrapper too.
    assert_eq!(
        recorded,
        [
            "BEGIN | create table price (item int references item, cents int) | insert into log values ('wrapped ran') | COMMIT"
        ]
    );
    project.write("20250101000003_trailing.sql", TRAILING)?;

    // Migrator::run with the defaults, as an app boots: a Supabase project (its
    // source is supabase/migrations), so the CLI's history is read.
    let report = project.migrator()?.run(&mut client).await?;
    let adopted: Vec<String> = report.adopted.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        report.adopted.iter().map(|a| a.version).collect::<Vec<_>>(),
        [V1, V2].map(|v| v.parse::<i64>().unwrap()),
        "{adopted:?}"
    );
    assert!(
        adopted[1].ends_with("20250101000002_wrapped.sql: version 20250101000002 was applied by the Supabase CLI with this file's statements; recorded in plover's history without running it"),
        "{adopted:?}"
    );
    let applied: Vec<i64> = report.applied.iter().map(|a| a.version).collect();
    assert_eq!(applied, [V3.parse::<i64>()?]);
    assert_eq!(report.version, Some(V3.parse()?));
    assert_eq!(
        log(&client).await?,
        ["plain ran", "trailing ran", "wrapped ran"]
    );
    // A second boot does nothing.
    let report = project.migrator()?.run(&mut client).await?;
    assert!(report.adopted.is_empty() && report.applied.is_empty());
    assert_eq!(report.already_applied, 3);
    Ok(())
}

#[tokio::test]
async fn after_plovers_push_supabase_migration_list_agrees() -> Result<()> {
    let Some(cli) = cli()? else { return Ok(()) };
    let (db, url) = database().await?;
    let client = db.client().await?;
    let project = Project::with(&[
        ("20250101000001_plain.sql", PLAIN),
        ("20250101000002_wrapped.sql", WRAPPED),
        ("20250101000003_trailing.sql", TRAILING),
    ])?;
    let began = Instant::now();
    project.xtask(&["push"], &url)?.expect(0)?;
    eprintln!("xtask db push took {} ms", began.elapsed().as_millis());
    let list = project.supabase_list(&cli, &db)?;
    assert_eq!(list, [V1, V2, V3].map(|v| (v.to_owned(), v.to_owned())));
    // The CLI has nothing to push, and runs nothing.
    let push = project.supabase_push(&cli, &db)?;
    assert!(
        push.stdout.contains("up to date") || push.stderr.contains("up to date"),
        "{push}"
    );
    assert_eq!(
        log(&client).await?,
        ["plain ran", "trailing ran", "wrapped ran"]
    );
    // A file added since: the CLI lists it as local only.
    project.write("20250101000004_later.sql", LATER)?;
    let list = project.supabase_list(&cli, &db)?;
    assert_eq!(list.last(), Some(&(V4.to_owned(), String::new())));
    Ok(())
}

#[tokio::test]
async fn a_version_the_cli_applied_with_other_statements_is_refused_naming_db_adopt() -> Result<()>
{
    let Some(cli) = cli()? else { return Ok(()) };
    let (db, url) = database().await?;
    let client = db.client().await?;
    let project = Project::with(&[
        ("20250101000001_plain.sql", PLAIN),
        ("20250101000002_wrapped.sql", WRAPPED),
    ])?;
    project.supabase_push(&cli, &db)?;
    // The file changed after the CLI applied it; and a new one is pending.
    project.write(
        "20250101000002_wrapped.sql",
        &WRAPPED.replace("cents int", "cents bigint"),
    )?;
    project.write("20250101000003_trailing.sql", TRAILING)?;
    let before = snapshot(&client).await?;

    let push = project.xtask(&["push"], &url)?.expect(2)?;
    for wanted in [
        "refusing to push: 1 problem(s) in the plan; nothing was applied",
        "20250101000002_wrapped.sql: version 20250101000002 was applied by the Supabase CLI",
        "statement 1 differs: the CLI ran `create table price (item int references item, cents int)` where the file has `create table price (item int references item, cents bigint)`",
        "cargo xtask db adopt --from supabase --env local",
    ] {
        assert!(push.stderr.contains(wanted), "missing {wanted:?}: {push}");
    }
    assert_eq!(
        snapshot(&client).await?,
        before,
        "the refused push changed something"
    );

    // The engine refuses too, naming the version and the command, and changes nothing.
    let mut c = db.client().await?;
    let e = project.migrator()?.run(&mut c).await.unwrap_err();
    assert!(
        matches!(&e, plover::Error::Plan { problems } if problems.len() == 1 && problems[0].is_supabase_cli()),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("cargo xtask db adopt --from supabase"),
        "{e}"
    );
    assert_eq!(snapshot(&client).await?, before);

    // status says so, read-only: exit 1, the state named, the command printed.
    let status = project.xtask(&["status"], &url)?.expect(1)?;
    assert!(status.stdout.contains("supabase-cli-differs"), "{status}");
    assert!(
        status
            .stdout
            .contains("cargo xtask db adopt --from supabase --env local"),
        "{status}"
    );
    assert_eq!(snapshot(&client).await?, before);

    // The command it names takes them over; then push applies only the new file.
    project
        .xtask(
            &[
                "adopt",
                "--from",
                "supabase",
                "--env",
                "local",
                "--confirm",
                "local",
            ],
            &url,
        )?
        .expect(0)?;
    let push = project.xtask(&["push"], &url)?.expect(0)?;
    assert!(push.stdout.contains("1 to apply"), "{push}");
    assert_eq!(
        log(&client).await?,
        ["plain ran", "trailing ran", "wrapped ran"]
    );
    Ok(())
}

#[tokio::test]
async fn a_reset_after_supabase_db_push_runs_the_files_again() -> Result<()> {
    let Some(cli) = cli()? else { return Ok(()) };
    let (db, url) = database().await?;
    let client = db.client().await?;
    let project = Project::with(&[
        ("20250101000001_plain.sql", PLAIN),
        ("20250101000002_wrapped.sql", WRAPPED),
    ])?;
    project.supabase_push(&cli, &db)?;
    client
        .batch_execute("insert into item (id) values (7)")
        .await?;

    // plover never adopted them: the reset drops what the files make and must run
    // them again, not adopt the CLI's rows of what it just dropped.
    let reset = project
        .xtask(&["reset", "--confirm", "local"], &url)?
        .expect(0)?;
    assert!(!reset.stdout.contains("adopted "), "{reset}");
    assert_eq!(
        strings(&client, "SELECT count(*)::text FROM item").await?,
        ["0"]
    );
    assert_eq!(log(&client).await?, ["plain ran", "wrapped ran"]);
    assert_eq!(
        strings(
            &client,
            "SELECT version::text FROM plover.migrations WHERE app = 'shop' AND applied_by NOT LIKE 'adopted%' ORDER BY 1"
        )
        .await?,
        [V1, V2]
    );
    assert_eq!(
        project.supabase_list(&cli, &db)?,
        [V1, V2].map(|v| (v.to_owned(), v.to_owned()))
    );
    Ok(())
}
