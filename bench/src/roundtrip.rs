//! `cargo xtask bench diff --roundtrip DIR…`: plover's schema diff round trip on
//! real projects' migrations, one project per directory (a project with
//! `supabase/migrations`, or a migrations directory itself).
//!
//! For each project, on the shared test server: A, a database with the Supabase
//! baseline and the project's migrations replayed by `Migrator` (a project whose
//! migrations fail, say on an extension the server lacks, "did not replay"); B, a
//! database with the baseline only. The app schemas are `public` and every schema
//! the migrations made that is neither Supabase's ([`is_managed_schema`]), plover's
//! history nor an extension's. Then `diff(inspect(B), inspect(A))` is applied to B
//! statement by statement (the first failing statement kept), and the project
//! round-trips when `diff(inspect(A), inspect(B))` is empty; `pg_dump --schema-only`
//! of the app schemas of both is compared too. Each project's diff is kept in the
//! state directory (`bench/roundtrip/<project>.sql`).
//!
//! What it must not do: keep a database (both are dropped after each project, on
//! errors too), or reach into plover's internals (it migrates through `Migrator` and
//! compares through `plover::schema`).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, ensure};
use plover::schema::{self, Catalog};
use plover::supabase::is_managed_schema;
use plover::testing::{NativeServer, Server, TestDatabase, apply_supabase_shim, state_dir};
use plover::{Migrator, Source, SupabaseHistory};
use serde_json::json;

use crate::diff::{first_difference, normalize_dump, one_line};

/// The schemas of a database, less those an extension made.
const SCHEMAS: &str = "SELECT n.nspname FROM pg_namespace n \
     WHERE NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass \
                       AND d.objid = n.oid AND d.deptype = 'e') \
     ORDER BY 1";

/// The app name the replay records its history under (in plover's own schema).
const APP: &str = "roundtrip";
/// plover's history schema: not the app's.
const HISTORY_SCHEMA: &str = "plover";

/// What happened to one project.
struct Outcome {
    project: String,
    migrations: usize,
    /// `Err`: the replay's error (the project did not replay).
    replayed: Result<(), String>,
    schemas: Vec<String>,
    /// The statements of `diff(B, A)`.
    statements: usize,
    /// The first statement of `diff(B, A)` that failed on B, and its error.
    failed: Option<(String, String)>,
    /// What `diff(A, B)` still has after applying: count and first.
    left: Option<(usize, Option<String>)>,
    dump: Option<Result<(), String>>,
}

impl Outcome {
    fn round_trips(&self) -> bool {
        self.replayed.is_ok() && self.failed.is_none() && matches!(self.left, Some((0, _)))
    }
}

/// Runs the round trip on each project directory and prints the results.
pub(crate) async fn run(dirs: &[PathBuf], json_out: bool) -> Result<()> {
    let (native, server) = crate::apply::shared_servers().await?;
    let mut outcomes = Vec::new();
    for (k, dir) in dirs.iter().enumerate() {
        let (project, migrations) = project_dir(dir)?;
        eprintln!("roundtrip: {project} ({})", migrations.display());
        let outcome = project_round_trip(&server, &native, k, &project, &migrations)
            .await
            .with_context(|| format!("round trip of {project}"))?;
        eprintln!("  {}", line(&outcome));
        outcomes.push(outcome);
    }
    if json_out {
        let doc: Vec<serde_json::Value> = outcomes.iter().map(to_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).context("writing the JSON report")?
        );
    } else {
        print!("{}", table(&outcomes));
    }
    Ok(())
}

/// The project's name and its migrations directory: `DIR/supabase/migrations` when
/// there is one, else DIR.
fn project_dir(dir: &Path) -> Result<(String, PathBuf)> {
    let supabase = dir.join("supabase").join("migrations");
    let migrations = if supabase.is_dir() {
        supabase
    } else {
        dir.to_path_buf()
    };
    ensure!(
        migrations.is_dir(),
        "{} is not a directory; name a project (with supabase/migrations) or a migrations \
         directory",
        dir.display()
    );
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    Ok((name, migrations))
}

async fn project_round_trip(
    server: &Server,
    native: &NativeServer,
    k: usize,
    project: &str,
    migrations: &Path,
) -> Result<Outcome> {
    let pid = std::process::id();
    let a = TestDatabase::create_named(server, &format!("bench_{pid}_rt_{k}_a")).await?;
    let b = TestDatabase::create_named(server, &format!("bench_{pid}_rt_{k}_b")).await;
    let b = match b {
        Ok(b) => b,
        Err(e) => {
            let _ = a.close().await;
            return Err(e.into());
        }
    };
    let out_dir = state_dir().join("bench").join("roundtrip");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let result = compare(native, project, migrations, &a, &b, &out_dir).await;
    let (da, db) = (a.close().await, b.close().await);
    let outcome = result?;
    da.context("dropping database A")?;
    db.context("dropping database B")?;
    Ok(outcome)
}

async fn compare(
    native: &NativeServer,
    project: &str,
    migrations: &Path,
    a: &TestDatabase,
    b: &TestDatabase,
    out_dir: &Path,
) -> Result<Outcome> {
    let source = Source::from_dir(migrations)
        .with_context(|| format!("loading {}", migrations.display()))?;
    let mut outcome = Outcome {
        project: project.to_owned(),
        migrations: source.len(),
        replayed: Ok(()),
        schemas: Vec::new(),
        statements: 0,
        failed: None,
        left: None,
        dump: None,
    };
    let mut client_a = a.client().await?;
    let client_b = b.client().await?;
    apply_supabase_shim(&client_a).await?;
    apply_supabase_shim(&client_b).await?;
    let migrator = Migrator::new(source)
        .app(APP)
        .supabase_history(SupabaseHistory::Off);
    if let Err(e) = migrator.run(&mut client_a).await {
        outcome.replayed = Err(one_line(&format!("{e:#}")));
        return Ok(outcome);
    }
    // A new connection: the replay may have changed the session.
    drop(client_a);
    let client_a = a.client().await?;

    let in_a = schema_names(&client_a).await?;
    let in_b: BTreeSet<String> = schema_names(&client_b).await?.into_iter().collect();
    let mut schemas: Vec<String> = in_a
        .into_iter()
        .filter(|s| {
            s == "public" || (!in_b.contains(s) && !is_managed_schema(s) && s != HISTORY_SCHEMA)
        })
        .collect();
    schemas.sort();
    schemas.dedup();
    outcome.schemas = schemas.clone();

    let catalog_a = schema::inspect(&client_a, &schemas).await?;
    let forward = schema::diff(&schema::inspect(&client_b, &schemas).await?, &catalog_a);
    outcome.statements = forward.changes.len();
    let file = out_dir.join(format!("{project}.sql"));
    std::fs::write(&file, forward.to_sql())
        .with_context(|| format!("writing {}", file.display()))?;
    for change in &forward.changes {
        if let Err(e) = client_b.batch_execute(&change.sql).await {
            let message = match e.as_db_error() {
                Some(d) => format!("{} ({})", d.message(), d.code().code()),
                None => e.to_string(),
            };
            outcome.failed = Some((one_line(&change.sql), one_line(&message)));
            break;
        }
    }
    // A fresh connection: a failed statement leaves none behind it in a block.
    let client_b = b.client().await?;
    let back: Catalog = schema::inspect(&client_b, &schemas).await?;
    let left = schema::diff(&catalog_a, &back);
    outcome.left = Some((
        left.changes.len() + left.manual.len(),
        left.changes.first().map(|c| one_line(&c.sql)).or_else(|| {
            left.manual
                .first()
                .map(|m| format!("manual: {}", one_line(m)))
        }),
    ));
    let (dump_a, dump_b) = (
        dump(native, a.name(), &schemas)?,
        dump(native, b.name(), &schemas)?,
    );
    outcome.dump = Some(first_difference(&dump_b, &dump_a, "A"));
    Ok(outcome)
}

async fn schema_names(client: &tokio_postgres::Client) -> Result<Vec<String>> {
    Ok(client
        .query(SCHEMAS, &[])
        .await
        .context("listing the schemas")?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// `pg_dump --schema-only` of `schemas` in `db`, normalized.
fn dump(native: &NativeServer, db: &str, schemas: &[String]) -> Result<String> {
    let pg_dump = match native.bin_dir().join("pg_dump") {
        p if p.is_file() => p,
        _ => PathBuf::from("pg_dump"),
    };
    let mut cmd = Command::new(pg_dump);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("PG") {
            cmd.env_remove(&*k);
        }
    }
    cmd.env("PGHOST", "127.0.0.1")
        .env("PGPORT", native.port().to_string())
        .env("PGUSER", "postgres")
        .env("PGDATABASE", db)
        .env("PGSSLMODE", "disable")
        .args(["--schema-only", "--no-owner"])
        .stdin(Stdio::null());
    for s in schemas {
        cmd.arg("--schema").arg(s);
    }
    let out = cmd.output().context("running pg_dump")?;
    if !out.status.success() {
        return Err(anyhow!(
            "pg_dump of {db} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(normalize_dump(&String::from_utf8_lossy(&out.stdout)))
}

fn line(o: &Outcome) -> String {
    match &o.replayed {
        Err(e) => format!("did not replay: {e}"),
        Ok(()) => {
            let applied = match &o.failed {
                None => format!("{} statements applied", o.statements),
                Some((stmt, err)) => format!("failed at {stmt}: {err}"),
            };
            let left = match &o.left {
                Some((0, _)) => "round-trips".to_owned(),
                Some((k, first)) => format!(
                    "{k} differences left, first: {}",
                    first.as_deref().unwrap_or("-")
                ),
                None => "-".into(),
            };
            let dump = match &o.dump {
                Some(Ok(())) => "pg_dump equal".to_owned(),
                Some(Err(d)) => format!("pg_dump differs: {d}"),
                None => "-".into(),
            };
            format!("schemas {}; {applied}; {left}; {dump}", o.schemas.join(","))
        }
    }
}

fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "project\tmigrations\treplayed\tschemas\tstatements\tapplies\tround_trips\tpg_dump_equal\tfirst_failure"
    );
    for o in outcomes {
        let replayed = o.replayed.is_ok();
        let first = match (&o.replayed, &o.failed, &o.left, &o.dump) {
            (Err(e), ..) => e.clone(),
            (_, Some((stmt, err)), ..) => format!("{stmt} -> {err}"),
            (_, _, Some((k, Some(first))), _) if *k > 0 => format!("left: {first}"),
            (_, _, _, Some(Err(d))) => format!("pg_dump: {d}"),
            _ => String::new(),
        };
        let yes = |b: bool| if b { "yes" } else { "no" };
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            o.project,
            o.migrations,
            yes(replayed),
            if replayed {
                o.schemas.join(",")
            } else {
                "-".into()
            },
            if replayed {
                o.statements.to_string()
            } else {
                "-".into()
            },
            if replayed {
                yes(o.failed.is_none())
            } else {
                "-"
            },
            if replayed { yes(o.round_trips()) } else { "-" },
            match &o.dump {
                Some(d) => yes(d.is_ok()),
                None => "-",
            },
            first.replace('\t', " "),
        );
    }
    let replayed = outcomes.iter().filter(|o| o.replayed.is_ok()).count();
    let round_trip = outcomes.iter().filter(|o| o.round_trips()).count();
    let dumps = outcomes
        .iter()
        .filter(|o| matches!(o.dump, Some(Ok(()))))
        .count();
    let _ = writeln!(
        out,
        "\n{} projects: {replayed} replayed; of those, {round_trip} round-trip (plover's diff \
         back is empty) and {dumps} have equal pg_dump --schema-only of their app schemas.",
        outcomes.len()
    );
    out
}

fn to_json(o: &Outcome) -> serde_json::Value {
    json!({
        "project": o.project,
        "migrations": o.migrations,
        "replayed": o.replayed.is_ok(),
        "replay_error": o.replayed.as_ref().err(),
        "schemas": o.schemas,
        "statements": o.statements,
        "applies": o.replayed.is_ok().then_some(o.failed.is_none()),
        "failed_statement": o.failed.as_ref().map(|(s, e)| json!({ "sql": s, "error": e })),
        "round_trips": o.replayed.is_ok().then(|| o.round_trips()),
        "left": o.left.as_ref().map(|(k, first)| json!({ "count": k, "first": first })),
        "pg_dump_equal": o.dump.as_ref().map(|d| d.is_ok()),
        "pg_dump_first_difference": o.dump.as_ref().and_then(|d| d.clone().err()),
    })
}
