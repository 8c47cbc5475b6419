//! Secrets, confirmations and input edge cases of `cargo xtask db ...` (and the app),
//! as processes against a real database: passwords with any character are never
//! printed, logged or put in a child's argv; destructive commands ask everywhere but
//! the local cluster; environment names are case-insensitive. Every run's output is
//! checked for the password it was given.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use plover::ConnInfo;
use plover_tests::{
    LocalServer, Run, Workdir, binary, database, snapshot, xtask_db, xtask_db_at_terminal,
};
use tokio_postgres::config::Host;

/// The parts of the test server's URL: (host, port, user, database).
fn parts(url: &str) -> Result<(String, u16, String, String)> {
    let conn = ConnInfo::parse(url)?;
    let c = conn.config();
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        other => anyhow::bail!("the test server is not on TCP: {other:?}"),
    };
    Ok((
        host,
        c.get_ports().first().copied().unwrap_or(5432),
        c.get_user().context("no user")?.to_owned(),
        c.get_dbname().context("no database")?.to_owned(),
    ))
}

/// The test server's URL with `password` written in raw, unencoded, as people paste it.
fn with_raw_password(url: &str, password: &str) -> Result<String> {
    let (host, port, user, db) = parts(url)?;
    Ok(format!("postgres://{user}:{password}@{host}:{port}/{db}"))
}

/// `host:port/database` of the test server, as prompts show it.
fn server(url: &str) -> Result<String> {
    let (host, port, _, db) = parts(url)?;
    Ok(format!("{host}:{port}/{db}"))
}

fn mode(path: &Path) -> Result<u32> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode()
        & 0o777)
}

/// A directory whose `pg_dump` logs its command line to `argv.log`, then runs the real one.
fn logging_pg_dump() -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix("plover-argv-").tempdir()?;
    let real = plover::testing::find_binaries()?.join("pg_dump");
    let log = dir.path().join("argv.log");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
        log.display(),
        real.display()
    );
    let fake = dir.path().join("pg_dump");
    std::fs::write(&fake, script)?;
    std::fs::set_permissions(&fake, PermissionsExt::from_mode(0o755))?;
    Ok(dir)
}

#[tokio::test]
async fn passwords_with_any_character_are_never_printed_nor_in_pg_dumps_argv() -> Result<()> {
    let (_db, url) = database().await?;
    let (host, port, user, dbname) = parts(&url)?;
    let w = Workdir::new()?;
    let tools = logging_pg_dump()?;
    let bin = tools.path().to_str().context("path")?;
    // (the connection string, the password as written in it, as the server gets it)
    let cases = [
        (
            with_raw_password(&url, "S3cr/et?pw#1")?,
            "S3cr/et?pw#1",
            "S3cr/et?pw#1",
        ),
        (
            with_raw_password(&url, "S3cr%40at%2F2")?,
            "S3cr%40at%2F2",
            "S3cr@at/2",
        ),
        (
            format!("host={host} port={port} user={user} dbname={dbname} password='S3cr et\\'\"3'"),
            "S3cr et\\'\"3",
            "S3cr et'\"3",
        ),
    ];
    for (n, (conn, written, password)) in cases.iter().enumerate() {
        let vars = [
            ("STAGING_DATABASE_URL", conn.as_str()),
            ("PLOVER_PG_BIN", bin),
        ];
        let db = |args: &[&str], secret: &str| xtask_db(w.path(), args, &vars, None, secret);
        for secret in [*password, *written] {
            let run = db(&["status", "--env", "staging"], secret)?.expect(0)?;
            assert!(
                run.stdout.contains(&format!(
                    "target: staging postgres://{user}:****@{host}:{port}/{dbname}"
                )),
                "{run}"
            );
        }
        if n == 0 {
            db(&["push", "--env", "staging"], password)?.expect(0)?;
        }
        let out = w.path().join(format!("dump-{n}.sql"));
        let out_arg = out.to_str().context("path")?;
        let run = db(&["dump", "--env", "staging", "-f", out_arg], password)?.expect(0)?;
        assert!(run.stderr.contains("wrote the schema"), "{run}");
        let dump = std::fs::read_to_string(&out)?;
        assert!(dump.contains("CREATE TABLE public.categories"), "{dump}");
        assert_eq!(mode(&out)?, 0o600, "a dump is readable by others");
        let argv = std::fs::read_to_string(tools.path().join("argv.log"))?;
        assert!(argv.contains("--schema-only"), "{argv}");
        assert!(
            !argv.contains(password),
            "pg_dump's argv holds the password:\n{argv}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_app_never_logs_the_password() -> Result<()> {
    let (_db, url) = database().await?;
    let secret = "S3cr/et?app#pw";
    let out = Command::new(binary("app")?)
        .arg("migrate")
        .env("DATABASE_URL", with_raw_password(&url, secret)?)
        .env("RUST_LOG", "info")
        .output()?;
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(!all.contains(secret) && !all.contains("S3cr"), "{all}");
    assert!(all.contains(":****@"), "the redacted URL is logged: {all}");

    // A bare password in DATABASE_URL: the error names the variable, not the value.
    let out = Command::new(binary("app")?)
        .arg("migrate")
        .env("DATABASE_URL", "S3cret bare pw")
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("DATABASE_URL does not parse"), "{err}");
    assert!(!err.contains("S3cret"), "{err}");
    Ok(())
}

#[test]
fn a_value_that_is_not_a_connection_string_is_never_echoed() -> Result<()> {
    let w = Workdir::new()?;
    for (var, env) in [
        ("STAGING_DATABASE_URL", "staging"),
        ("DATABASE_URL", "local"),
    ] {
        for secret in ["S3cr3t-bare-pw", "S3cr3t bare=pw"] {
            let run = xtask_db(
                w.path(),
                &["status", "--env", env],
                &[(var, secret)],
                None,
                secret,
            )?
            .expect(2)?;
            assert!(
                run.stderr
                    .contains(&format!("{var} does not parse as a connection string")),
                "{run}"
            );
            assert!(!run.stderr.contains("S3cr"), "{run}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn an_unencoded_at_sign_gets_a_percent_encoding_hint() -> Result<()> {
    let (_db, url) = database().await?;
    let w = Workdir::new()?;
    let conn = with_raw_password(&url, "S3c@ret")?;
    let run = xtask_db(
        w.path(),
        &["status", "--env", "staging"],
        &[("STAGING_DATABASE_URL", conn.as_str())],
        None,
        "S3c@ret",
    )?
    .expect(2)?;
    assert!(
        run.stderr.contains("STAGING_DATABASE_URL does not parse"),
        "{run}"
    );
    assert!(run.stderr.contains("`@` as %40"), "{run}");
    assert!(
        !run.stderr.contains("ret@") && !run.stderr.contains("S3c"),
        "{run}"
    );
    Ok(())
}

#[tokio::test]
async fn environment_names_are_case_insensitive() -> Result<()> {
    let (db, url) = database().await?;
    let client = db.client().await?;
    let w = Workdir::new()?;
    let prod = [("PROD_DATABASE_URL", url.as_str())];
    let before = snapshot(&client).await?;

    for name in ["PROD", "Prod"] {
        let run = w.db(&["status", "--env", name], &prod, None)?.expect(0)?;
        assert!(run.stdout.contains("target: prod postgres://"), "{run}");
        assert!(run.stdout.contains("protected)"), "{run}");
        let run = w.db(&["push", "--env", name], &prod, None)?.expect(2)?;
        assert!(
            run.stderr.contains(&format!(
                "prod: it is protected and there is no terminal to confirm at; nothing was changed on {}",
                server(&url)?
            )),
            "{run}"
        );
    }
    assert_eq!(
        snapshot(&client).await?,
        before,
        "a refused push changed the database"
    );
    w.db(&["push", "--env", "PROD", "--confirm", "Prod"], &prod, None)?
        .expect(0)?;

    // The link records the canonical name, so later commands know it is protected.
    w.db(&["link", "--env", "PROD"], &prod, None)?.expect(0)?;
    let linked = std::fs::read_to_string(w.path().join("supabase/.temp/plover-link"))?;
    assert_eq!(linked.trim(), "prod");
    let version = w
        .migration_files()?
        .last()
        .cloned()
        .context("no migrations")?;
    let version = version.split('_').next().context("no version")?;
    let run = w
        .db(&["repair", "--status", "reverted", version], &prod, None)?
        .expect(2)?;
    assert!(run.stderr.contains("prod: it is protected"), "{run}");
    let status = w.db(&["status", "--json"], &prod, None)?.expect(0)?;
    let status: serde_json::Value = serde_json::from_str(&status.stdout)?;
    assert_eq!(status["pending"], 0, "a refused repair changed the history");
    assert_eq!(status["target"]["protected"], true);
    Ok(())
}

#[tokio::test]
async fn destructive_commands_ask_on_every_target_but_the_local_cluster() -> Result<()> {
    let (db, url) = database().await?;
    let client = db.client().await?;
    let w = Workdir::new()?;
    let server = server(&url)?;
    let vars = [
        ("DATABASE_URL", url.as_str()),
        ("STAGING_DATABASE_URL", url.as_str()),
    ];
    // Unprotected staging: a push does not ask.
    w.db(&["push", "--env", "staging"], &vars, None)?
        .expect(0)?;
    let before = snapshot(&client).await?;
    let version = w
        .migration_files()?
        .last()
        .cloned()
        .context("no migrations")?;
    let version = version.split('_').next().context("no version")?;

    // `local` from DATABASE_URL may be anywhere: a reset asks.
    let run = w.db(&["reset"], &vars, None)?.expect(2)?;
    assert!(
        run.stderr.contains(&format!(
            "local: this is destructive (`local` is DATABASE_URL here, not the local development database) and there is no terminal to confirm at; nothing was changed on {server}"
        )),
        "{run}"
    );
    // So do repair and adopt, on an unprotected environment.
    for args in [
        &[
            "repair", "--status", "reverted", version, "--env", "staging",
        ][..],
        &["adopt", "--from", "supabase", "--env", "staging"][..],
        &["repair", "--status", "reverted", version][..],
    ] {
        let run = w.db(args, &vars, None)?.expect(2)?;
        assert!(run.stderr.contains("this is destructive"), "{run}");
        assert!(
            run.stderr
                .contains(&format!("nothing was changed on {server}")),
            "{run}"
        );
    }
    assert_eq!(
        snapshot(&client).await?,
        before,
        "a refused command changed the database"
    );
    assert!(!w.path().join("supabase/.temp/backups").exists());

    // At a terminal, the prompt shows where; the name is taken in any case.
    let run = xtask_db_at_terminal(
        w.path(),
        &[
            "repair", "--status", "reverted", version, "--env", "staging",
        ],
        &vars,
        "STAGING\n",
        plover_tests::SECRET,
    )?
    .expect(0)?;
    assert!(
        run.stdout.contains(&format!(
            "staging: this is destructive; type the environment's name to mark 1 version(s) reverted on {server}: "
        )),
        "{run}"
    );
    assert!(
        run.stdout.contains(&format!("marked {version} reverted")),
        "{run}"
    );
    Ok(())
}

#[tokio::test]
async fn reset_backups_are_private() -> Result<()> {
    let (_db, url) = database().await?;
    let w = Workdir::new()?;
    let vars = [("STAGING_DATABASE_URL", url.as_str())];
    w.db(&["push", "--env", "staging"], &vars, None)?
        .expect(0)?;
    let run = w
        .db(
            &["reset", "--env", "staging", "--confirm", "staging"],
            &vars,
            None,
        )?
        .expect(0)?;
    let backups: Vec<_> =
        std::fs::read_dir(w.path().join("supabase/.temp/backups"))?.collect::<Result<_, _>>()?;
    assert_eq!(backups.len(), 1, "{run}");
    assert_eq!(
        mode(&backups[0].path())?,
        0o600,
        "a backup is readable by others"
    );
    Ok(())
}

#[tokio::test]
async fn status_into_a_closed_pipe_exits_without_a_panic() -> Result<()> {
    let (_db, url) = database().await?;
    let w = Workdir::new()?;
    let (reader, writer) = std::io::pipe()?;
    drop(reader);
    let mut cmd = Command::new(binary("xtask")?);
    cmd.args(["db", "status", "--json", "--env", "staging", "--workdir"])
        .arg(w.path())
        .env("STAGING_DATABASE_URL", &url)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.contains("DATABASE_URL") && k != "STAGING_DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.trim().is_empty(), "{stderr}");
    assert_ne!(
        out.status.code(),
        Some(0),
        "a closed stdout is not a success"
    );
    Ok(())
}

#[tokio::test]
async fn pull_passes_schema_names_as_exact_patterns() -> Result<()> {
    let (db, url) = database().await?;
    let client = db.client().await?;
    client
        .batch_execute(
            r#"CREATE SCHEMA "My Schema";
               CREATE TABLE "My Schema".notes (id int PRIMARY KEY);
               CREATE SCHEMA my_schema_other;
               CREATE TABLE my_schema_other.decoy (id int);"#,
        )
        .await?;
    let w = Workdir::new()?;
    let _local = LocalServer::isolate(&w)?;
    w.remove_migrations()?;
    std::fs::write(
        w.path().join("supabase/plover.toml"),
        "app = \"money_tracker\"\nschemas = [\"My Schema\"]\n",
    )?;
    let run = w
        .db(
            &["pull", "--env", "staging", "--no-record"],
            &[("STAGING_DATABASE_URL", url.as_str())],
            None,
        )?
        .expect(0)?;
    let files = w.migration_files()?;
    let file = files
        .first()
        .with_context(|| format!("no migration written: {run}"))?;
    let text = std::fs::read_to_string(w.migrations().join(file))?;
    assert!(text.contains(r#"CREATE TABLE "My Schema".notes"#), "{text}");
    assert!(!text.contains("decoy"), "{text}");
    Ok(())
}

#[test]
fn dotenv_errors_name_the_line_and_empty_apps_are_refused() -> Result<()> {
    let w = Workdir::new()?;
    std::fs::write(
        w.path().join(".env"),
        "OK=1\nSTAGING_DATABASE_URL=postgres://u:S3cr3t pw@h/d\n",
    )?;
    let run: Run = xtask_db(
        w.path(),
        &["status", "--env", "staging"],
        &[],
        None,
        "S3cr3t",
    )?
    .expect(2)?;
    assert!(
        run.stderr.contains(".env:2: cannot parse this line"),
        "{run}"
    );
    std::fs::remove_file(w.path().join(".env"))?;

    for app in ["\"\"", "\"  \""] {
        std::fs::write(
            w.path().join("supabase/plover.toml"),
            format!("# the app\napp = {app}\n"),
        )?;
        let run = w.db(&["status"], &[], None)?.expect(2)?;
        assert!(
            run.stderr.contains("supabase/plover.toml:2: app is empty"),
            "{run}"
        );
    }
    Ok(())
}
