//! `cargo xtask db lint` as a process: the real xtask binary on a copy of the
//! repository's `supabase/` folder (`--workdir`). Only the `--env` test needs a
//! database (the shared test server, through `plover_tests::database`).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use plover_tests::{Workdir, database, json, normalize};

const BAD: &str = "20991231000000_bad.sql";
const BAD_SQL: &str = "-- a table the API exposes, without RLS\n\
                       create table if not exists public.notes (id bigint primary key);\n\
                       \n\
                       delete from public.legacy_notes;\n";

fn write(w: &Workdir, name: &str, sql: &str) -> Result<()> {
    std::fs::write(w.migrations().join(name), sql).with_context(|| format!("writing {name}"))
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=plover",
            "-c",
            "user.email=plover@example.com",
        ])
        .args(args)
        .output()
        .context("running git")?;
    ensure!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn the_repository_migrations_lint_clean() -> Result<()> {
    let w = Workdir::new()?;
    let run = w.db(&["lint", "--format", "human"], &[], None)?.expect(0)?;
    ensure!(
        run.stdout.contains("0 error(s), 0 warning(s)"),
        "unexpected output: {run}"
    );
    Ok(())
}

#[test]
fn a_bad_migration_fails_with_file_line_and_column() -> Result<()> {
    let w = Workdir::new()?;
    write(&w, BAD, BAD_SQL)?;
    let run = w.db(&["lint", "--format", "human"], &[], None)?.expect(1)?;
    for wanted in [
        format!("supabase/migrations/{BAD}:2:1: error[table-without-rls]: public.notes"),
        format!("supabase/migrations/{BAD}:4:1: error[mutation-without-where]"),
        "hint: ".to_owned(),
        "2 error(s), 0 warning(s)".to_owned(),
    ] {
        ensure!(run.stdout.contains(&wanted), "no {wanted:?} in {run}");
    }
    // The existing migrations say nothing.
    ensure!(!run.stdout.contains("create_categories"), "{run}");
    insta::assert_snapshot!("lint_human", normalize(&run.to_string(), &[]));
    Ok(())
}

#[test]
fn json_and_github_formats() -> Result<()> {
    let w = Workdir::new()?;
    write(&w, BAD, BAD_SQL)?;
    let run = w.db(&["lint", "--format", "json"], &[], None)?.expect(1)?;
    let doc = json(&run)?;
    ensure!(doc["errors"] == 2, "{run}");
    ensure!(doc["findings"][0]["rule"] == "table-without-rls", "{run}");
    ensure!(doc["findings"][0]["line"] == 2, "{run}");
    ensure!(
        doc["findings"][0]["file"] == format!("supabase/migrations/{BAD}").as_str(),
        "{run}"
    );

    // GitHub annotations, chosen automatically under GitHub Actions.
    let run = w
        .db(&["lint"], &[("GITHUB_ACTIONS", "true")], None)?
        .expect(1)?;
    let first = run.stdout.lines().next().unwrap_or_default();
    let wanted = format!(
        "::error file=supabase/migrations/{BAD},line=2,col=1,title=plover lint%3A table-without-rls::"
    );
    ensure!(first.starts_with(&wanted), "{run}");
    Ok(())
}

#[test]
fn ignores_and_config() -> Result<()> {
    let w = Workdir::new()?;
    write(
        &w,
        BAD,
        "-- plover:lint-ignore-file table-without-rls -- a scratch table, never exposed in practice\n\
         create table if not exists public.notes (id bigint primary key);\n\
         -- plover:lint-ignore mutation-without-where -- budgets are recomputed from scratch\n\
         delete from public.legacy_notes;\n\
         create schema extra;\n",
    )?;
    // The style rules are opt-in: `create schema` without IF NOT EXISTS says nothing.
    let run = w
        .db(&["lint", "--format", "human", "--deny-warnings"], &[], None)?
        .expect(0)?;
    ensure!(
        !run.stdout.contains("create-without-if-not-exists"),
        "{run}"
    );

    // [lint.rules] in plover.toml turns one on.
    let toml = w.path().join("supabase").join("plover.toml");
    let mut text = std::fs::read_to_string(&toml)?;
    text.push_str("\n[lint.rules]\ncreate-without-if-not-exists = \"warning\"\n");
    std::fs::write(&toml, &text)?;
    let run = w.db(&["lint", "--format", "human"], &[], None)?.expect(0)?;
    ensure!(
        run.stdout.contains("warning[create-without-if-not-exists]"),
        "{run}"
    );
    w.db(&["lint", "--deny-warnings"], &[], None)?.expect(1)?;

    // An unknown rule is a failure to run, not a finding.
    std::fs::write(&toml, format!("{text}no-such-rule = \"off\"\n"))?;
    let run = w.db(&["lint"], &[], None)?.expect(2)?;
    ensure!(run.stderr.contains("no-such-rule"), "{run}");
    Ok(())
}

#[test]
fn base_limits_the_report_to_the_change() -> Result<()> {
    let w = Workdir::new()?;
    git(w.path(), &["init", "--quiet"])?;
    git(w.path(), &["add", "-A"])?;
    git(w.path(), &["commit", "--quiet", "-m", "base"])?;
    // The committed files are the base: a new one is the change.
    write(
        &w,
        BAD,
        "create index if not exists transactions_note_idx on public.transactions (note);\n",
    )?;
    let run = w
        .db(&["lint", "--base", "HEAD", "--format", "json"], &[], None)?
        .expect(1)?;
    let doc = json(&run)?;
    ensure!(doc["files_checked"] == 1, "{run}");
    ensure!(
        doc["findings"][0]["rule"] == "index-without-concurrently",
        "the table exists on the base, so the lock matters: {run}"
    );
    // Without --base every file is new, and so is the table.
    let run = w.db(&["lint", "--format", "json"], &[], None)?.expect(0)?;
    ensure!(json(&run)?["errors"] == 0, "{run}");

    // Editing a migration that is on the base is reported.
    let first = w
        .migration_files()?
        .into_iter()
        .next()
        .context("no files")?;
    let path = w.migrations().join(&first);
    let sql = std::fs::read_to_string(&path)?;
    std::fs::write(&path, sql.replace("not null", "null"))?;
    let run = w
        .db(&["lint", "--base", "HEAD", "--format", "human"], &[], None)?
        .expect(1)?;
    ensure!(
        run.stdout.contains(&format!(
            "supabase/migrations/{first}:1:1: error[history-edited]"
        )),
        "{run}"
    );
    Ok(())
}

#[test]
fn list_rules_prints_the_table() -> Result<()> {
    let w = Workdir::new()?;
    let run = w.db(&["lint", "--list-rules"], &[], None)?.expect(0)?;
    ensure!(run.stdout.starts_with("| rule | severity |"), "{run}");
    ensure!(
        run.stdout.contains("| `table-without-rls` | error |"),
        "{run}"
    );
    Ok(())
}

#[tokio::test]
async fn env_reports_only_what_is_not_applied_there() -> Result<()> {
    let (_db, url) = database().await?;
    let w = Workdir::new()?;
    let staging = [("STAGING_DATABASE_URL", url.as_str())];
    w.db(&["push", "--env", "staging"], &staging, None)?
        .expect(0)?;
    // The applied tables exist there: an index on one takes a lock.
    write(
        &w,
        BAD,
        "create index if not exists budgets_month_idx on public.budgets (month);\n",
    )?;
    let run = w
        .db(
            &["lint", "--env", "staging", "--format", "json"],
            &staging,
            None,
        )?
        .expect(1)?;
    let doc = json(&run)?;
    ensure!(doc["files_checked"] == 1, "{run}");
    ensure!(
        doc["findings"][0]["rule"] == "index-without-concurrently",
        "{run}"
    );
    // An applied file edited since is reported.
    let first = w
        .migration_files()?
        .into_iter()
        .next()
        .context("no files")?;
    let path = w.migrations().join(&first);
    let sql = std::fs::read_to_string(&path)?;
    std::fs::write(&path, format!("{sql}\n-- a late comment\n"))?;
    let run = w
        .db(
            &["lint", "--env", "staging", "--format", "human"],
            &staging,
            None,
        )?
        .expect(1)?;
    ensure!(run.stdout.contains("error[history-edited]"), "{run}");
    Ok(())
}

#[test]
fn live_runs_catalog_checks_and_maps_them_to_statements() -> Result<()> {
    let w = Workdir::new()?;
    // The repository's migrations pass the catalog checks too.
    let run = w
        .db(&["lint", "--live", "--format", "human"], &[], None)?
        .expect(0)?;
    ensure!(run.stdout.contains("0 error(s), 0 warning(s)"), "{run}");

    write(
        &w,
        BAD,
        "create table if not exists public.notes (\n\
         \x20 id bigint primary key,\n\
         \x20 category_id uuid references public.categories (id)\n\
         );\n\
         alter table public.notes enable row level security;\n\
         do $$ begin execute 'create table public.seen (id int)'; execute format('create table public.%I (id int)', 'hidden'); end $$;\n\
         create or replace function public.plain() returns int language sql as $$ select 1 $$;\n\
         create or replace view public.everything as select 1 as one;\n\
         create table if not exists public.open (id int primary key);\n\
         drop policy if exists p on public.open;\n\
         create policy p on public.open for select to authenticated using (id > 0);\n",
    )?;
    let run = w
        .db(&["lint", "--live", "--format", "json"], &[], None)?
        .expect(1)?;
    let doc = json(&run)?;
    let found: Vec<(String, i64)> = doc["findings"]
        .as_array()
        .context("no findings")?
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_owned(),
                f["line"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    // public.seen is created by a constant EXECUTE of the DO block (line 6), public.hidden
    // by dynamic SQL that no statement shows (the first line of the newest file).
    for wanted in [
        ("live-fk-without-index", 1),
        ("live-rls-disabled", 1),
        ("live-table-without-primary-key", 1),
        ("live-rls-disabled", 6),
        ("live-table-without-primary-key", 6),
        ("live-function-search-path", 7),
        ("live-security-definer-view", 8),
        ("live-policy-without-rls", 9),
    ] {
        ensure!(
            found.contains(&(wanted.0.to_owned(), wanted.1)),
            "no {wanted:?} in {found:?}\n{run}"
        );
    }
    // Without --live only the static rules speak.
    let run = w.db(&["lint", "--format", "json"], &[], None)?.expect(1)?;
    ensure!(!run.stdout.contains("\"live-"), "{run}");
    Ok(())
}
