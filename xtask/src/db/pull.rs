//! `cargo xtask db pull`: schema changes made outside migrations, as a new migration.
//!
//! With no migration yet, the file is a schema-only pg_dump of the app's schemas on
//! the target. Otherwise the migrations are applied to a shadow database on the
//! local development server, both sides are dumped, and the dumps are compared
//! entry by entry ([`parse_dump`], [`diff`], [`render`]: pure functions): what only
//! the target has goes in verbatim, what differs or is gone goes in as comments
//! for a human to turn into ALTER or DROP. No ALTER is generated here.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use plover::Repair;
use plover::project::{
    Protection, Target, Vars, next_version, snake_name, utc_rfc3339, utc_version,
};
use plover::testing::{Provider, TestDatabase, Url, apply_supabase_shim};

use super::new::newest_version;
use super::pgtools::{Scratch, Tools, pattern_quote};
use super::{Ask, Ctx, confirm, connect};
use crate::flags::DbPull;

impl DbPull {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let name = snake_name(&self.name).with_context(|| {
            format!(
                "{:?} has no letters or digits to name a migration after; use e.g. `remote_schema`",
                self.name
            )
        })?;
        let target = ctx.target()?;
        println!("target: {target}");
        let dir = ctx.project.migrations_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let migrator = ctx.migrator()?;
        let schemas = ctx.project.app_schemas();
        let args = pull_args(&schemas);

        let tools = Tools::for_target(&target).await?;
        eprintln!(
            "dumping the schemas {} of {} with {}",
            schemas.join(", "),
            target.env(),
            tools.describe()
        );
        let scratch = Scratch::new("pull-target");
        tools.pg_dump(&target, &args, scratch.path())?;
        let target_dump = scratch.read()?;

        let shadow_dump = if migrator.source().migrations().is_empty() {
            eprintln!("no migrations yet: the whole schema becomes the first one");
            String::new()
        } else {
            shadow_dump(ctx, &migrator, &args, &tools).await?
        };
        let target_entries = parse_dump(&target_dump);
        let shadow_entries = parse_dump(&shadow_dump);
        let diff = diff(&target_entries, &shadow_entries);
        let Some(body) = render(&diff) else {
            println!(
                "no difference: the migrations create the schemas {} exactly as {} has them; nothing written",
                schemas.join(", "),
                target.env()
            );
            return Ok(ExitCode::SUCCESS);
        };

        let newest = newest_version(&dir)?;
        let now = SystemTime::now();
        let version = next_version(utc_version(now), newest);
        let file = format!("{version}_{name}.sql");
        let text = format!(
            "-- {name}\n-- Created by `cargo xtask db pull` from {} at {} ({}).\n\n{body}",
            target.env(),
            utc_rfc3339(now),
            tools.describe()
        );
        super::new::write_migration(&dir, &file, &text)?;
        let mut summary = format!("{} new object(s)", diff.added.len());
        if !diff.changed.is_empty() || !diff.removed.is_empty() {
            summary.push_str(&format!(
                "; {} changed and {} gone from the target, left in the file as comments: write the ALTER or DROP by hand",
                diff.changed.len(),
                diff.removed.len()
            ));
        }
        println!("{summary}");

        let env = target.env();
        let record = if self.record {
            true
        } else if self.no_record {
            false
        } else {
            ask(&format!(
                "record {version} as applied on {env} (it is already there)? [y/N] "
            ))?
        };
        if record {
            record_applied(ctx, &target, version).await?;
            println!("recorded {version} as applied on {env}");
        } else {
            println!(
                "not recorded; to record it as applied on {env}: cargo xtask db repair --status applied {version} --env {env}"
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// pg_dump's arguments for both sides: the app's schemas (quoted: each matches only
/// itself), without owners (the migrations decide who owns what), with grants.
fn pull_args(schemas: &[String]) -> Vec<String> {
    let mut args = vec!["--schema-only".to_owned(), "--no-owner".to_owned()];
    args.extend(
        schemas
            .iter()
            .map(|s| format!("--schema={}", pattern_quote(s))),
    );
    args
}

/// y/N at a terminal; no terminal means no.
fn ask(question: &str) -> Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || !std::io::stderr().is_terminal() {
        return Ok(false);
    }
    eprint!("{question}");
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the answer")?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// `Migrator::repair` with the new file loaded, after the protected-environment check.
async fn record_applied(ctx: &Ctx, target: &Target, version: i64) -> Result<()> {
    let env = target.env();
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if target.protection() == Protection::Protected && !terminal {
        bail!(
            "{env} is protected and there is no terminal to confirm at; the migration is written but not recorded (record it with `cargo xtask db repair --status applied {version} --env {env} --confirm {env}`)"
        );
    }
    confirm(
        target,
        Ask::WhenProtected,
        None,
        &format!("record {version} as applied"),
    )?;
    let migrator = ctx.migrator()?;
    let mut client = connect(target).await?;
    migrator
        .repair(&mut client, version, Repair::Applied)
        .await
        .with_context(|| format!("marking {version} applied on {target}"))?;
    Ok(())
}

/// The migrations applied to a shadow database on the local development server,
/// dumped with `args`. The shadow database is dropped on every path (a
/// `plover::testing::TestDatabase` of our own name on that server).
/// The same pg_dump as the target's when it can dump the local server too, so both
/// dumps print definitions alike.
async fn shadow_dump(
    ctx: &Ctx,
    migrator: &plover::Migrator,
    args: &[String],
    target_tools: &Tools,
) -> Result<String> {
    let admin_url = super::local_database(&ctx.sh, ctx.project.workdir()).await?;
    let server = Url::new(admin_url)
        .server()
        .await
        .context("reading the local development database's address")?;
    let name = format!("plover_shadow_{}", std::process::id());
    // A shadow of a crashed run with the same process id is dropped first.
    let shadow = TestDatabase::create_named(&server, &name)
        .await
        .with_context(|| format!("creating the shadow database {name}"))?;
    let result = async {
        let url = shadow.url();
        let mut client = shadow
            .client()
            .await
            .context("connecting to the shadow database")?;
        apply_supabase_shim(&client)
            .await
            .context("applying the Supabase shim to the shadow database")?;
        let report = migrator
            .run(&mut client)
            .await
            .context("applying the migrations to the shadow database")?;
        let num: String = client
            .query_one("SELECT current_setting('server_version_num')", &[])
            .await
            .context("reading the local server's version")?
            .try_get(0)
            .context("reading the local server's version")?;
        let shadow_major = num.trim().parse::<u32>().unwrap_or(u32::MAX) / 10000;
        drop(client);
        eprintln!(
            "applied {} migration(s) to the shadow database {}",
            report.applied.len(),
            shadow.name()
        );
        let vars = Vars::from_pairs([("SHADOW_DATABASE_URL", url)]);
        let target = ctx.project.target("shadow", &vars)?;
        let own;
        let tools = if shadow_major <= target_tools.major() {
            target_tools
        } else {
            own = Tools::for_target(&target).await?;
            &own
        };
        if shadow_major != target_tools.server_major() {
            eprintln!(
                "warning: the local development server runs PostgreSQL {shadow_major} but the target {}; definitions may print differently and show up as changed",
                target_tools.server_major()
            );
        }
        let scratch = Scratch::new("pull-shadow");
        tools.pg_dump(&target, args, scratch.path())?;
        scratch.read()
    }
    .await;
    if let Err(e) = shadow.close().await {
        eprintln!("warning: could not drop the shadow database {name}: {e}");
    }
    result
}

/// One pg_dump TOC entry: the `-- Name: N; Type: T; Schema: S; Owner: O` header
/// and the statements under it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry<'a> {
    kind: &'a str,
    schema: &'a str,
    name: &'a str,
    /// Header and statements, without pg_dump's session settings.
    text: String,
    /// The statements alone, for comparing.
    body: String,
}

impl Entry<'_> {
    fn key(&self) -> (&str, &str, &str) {
        (self.kind, self.schema, self.name)
    }

    /// `TABLE public.categories`.
    fn label(&self) -> String {
        if self.schema == "-" {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}.{}", self.kind, self.schema, self.name)
        }
    }
}

/// pg_dump's session settings, which must not leak into a migration: plover runs
/// every migration on a normal session (`search_path` included), and psql's
/// `\restrict` is no SQL.
fn is_session_line(line: &str) -> bool {
    const SETTINGS: &[&str] = &[
        "statement_timeout",
        "lock_timeout",
        "idle_in_transaction_session_timeout",
        "transaction_timeout",
        "client_encoding",
        "standard_conforming_strings",
        "check_function_bodies",
        "xmloption",
        "client_min_messages",
        "row_security",
        "default_tablespace",
        "default_table_access_method",
        "default_with_oids",
    ];
    if line.starts_with("SELECT pg_catalog.set_config('search_path'")
        || line.starts_with("\\restrict ")
        || line.starts_with("\\unrestrict ")
    {
        return true;
    }
    line.strip_prefix("SET ")
        .and_then(|rest| rest.split_once(" = "))
        .is_some_and(|(name, value)| SETTINGS.contains(&name) && value.ends_with(';'))
}

/// `-- Name: N; Type: T; Schema: S; Owner: O` → (T, S, N).
fn parse_header(line: &str) -> Option<(&str, &str, &str)> {
    let rest = line.strip_prefix("-- Name: ")?;
    let rest = rest.rfind("; Owner:").map_or(rest, |i| &rest[..i]);
    let (rest, schema) = rest.rsplit_once("; Schema: ")?;
    let (name, kind) = rest.rsplit_once("; Type: ")?;
    Some((kind, schema, name))
}

/// A plain-format pg_dump split into its entries, in dump order; the preamble and
/// the trailer are left out.
fn parse_dump(text: &str) -> Vec<Entry<'_>> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .iter()
        .position(|l| *l == "-- PostgreSQL database dump complete")
        .map_or(lines.len(), |i| {
            if i > 0 && lines[i - 1] == "--" {
                i - 1
            } else {
                i
            }
        });
    let starts: Vec<(usize, (&str, &str, &str))> = (0..end)
        .filter_map(|i| {
            if lines[i] != "--" || lines.get(i + 2) != Some(&"--") {
                return None;
            }
            Some((i, parse_header(lines.get(i + 1)?)?))
        })
        .collect();
    let mut entries = Vec::with_capacity(starts.len());
    for (n, &(start, (kind, schema, name))) in starts.iter().enumerate() {
        let stop = starts.get(n + 1).map_or(end, |&(s, _)| s);
        let kept: Vec<&str> = lines[start + 3..stop]
            .iter()
            .copied()
            .filter(|l| !is_session_line(l))
            .collect();
        let body = kept.join("\n").trim().to_owned();
        let text = format!(
            "{}\n{}\n{}\n\n{body}\n",
            lines[start],
            lines[start + 1],
            "--"
        );
        entries.push(Entry {
            kind,
            schema,
            name,
            text,
            body,
        });
    }
    entries
}

/// What the target has that the migrations do not create, and the other way round.
#[derive(Debug, Default)]
struct Diff<'a> {
    /// Only on the target, in the target's dump order.
    added: Vec<&'a Entry<'a>>,
    /// On both, different: (target, shadow).
    changed: Vec<(&'a Entry<'a>, &'a Entry<'a>)>,
    /// Only in the shadow (the migrations create it; the target no longer has it).
    removed: Vec<&'a Entry<'a>>,
}

fn diff<'a>(target: &'a [Entry<'a>], shadow: &'a [Entry<'a>]) -> Diff<'a> {
    let mut by_key: HashMap<(&str, &str, &str), Vec<&Entry<'a>>> = HashMap::new();
    for e in shadow.iter().rev() {
        by_key.entry(e.key()).or_default().push(e);
    }
    let mut out = Diff::default();
    for t in target {
        match by_key.get_mut(&t.key()).and_then(Vec::pop) {
            None => out.added.push(t),
            Some(s) if s.body != t.body => out.changed.push((t, s)),
            Some(_) => {}
        }
    }
    let mut left: Vec<&Entry<'a>> = by_key.into_values().flatten().collect();
    // Back in the shadow's dump order.
    left.sort_by_key(|e| {
        shadow
            .iter()
            .position(|s| std::ptr::eq(s, *e))
            .unwrap_or(usize::MAX)
    });
    out.removed = left;
    out
}

/// The migration's SQL, or `None` when there is no difference.
fn render(diff: &Diff<'_>) -> Option<String> {
    if diff.added.is_empty() && diff.changed.is_empty() && diff.removed.is_empty() {
        return None;
    }
    let mut out = String::new();
    if !diff.added.is_empty() {
        // As pg_dump's own restore: function bodies may name tables created below.
        out.push_str("SET LOCAL check_function_bodies = false;\n\n");
        for e in &diff.added {
            out.push_str(&if_not_exists(e));
            out.push('\n');
        }
    }
    if !diff.changed.is_empty() || !diff.removed.is_empty() {
        out.push_str(
            "-- ==========================================================================\n\
             -- Differences `db pull` does not turn into SQL: write the ALTER or DROP by\n\
             -- hand above, or delete what the target should not keep.\n\
             -- ==========================================================================\n\n",
        );
    }
    for (t, s) in &diff.changed {
        out.push_str(&format!(
            "-- changed: {}: the target's definition differs from the migrations'; write the ALTER by hand\n-- on the target:\n",
            t.label()
        ));
        out.push_str(&commented(&t.body));
        out.push_str("-- as the migrations create it:\n");
        out.push_str(&commented(&s.body));
        out.push('\n');
    }
    for s in &diff.removed {
        out.push_str(&format!(
            "-- gone from the target: {}: the migrations create it; write the DROP by hand\n",
            s.label()
        ));
        out.push_str(&commented(&s.body));
        out.push('\n');
    }
    Some(out)
}

/// pg_dump's `CREATE SCHEMA x;` as `CREATE SCHEMA IF NOT EXISTS x;`: `public` (and
/// any schema the shim makes) exists before the first migration.
fn if_not_exists(e: &Entry<'_>) -> String {
    if e.kind == "SCHEMA" {
        e.text
            .replace("\nCREATE SCHEMA ", "\nCREATE SCHEMA IF NOT EXISTS ")
    } else {
        e.text.clone()
    }
}

fn commented(body: &str) -> String {
    body.lines()
        .map(|l| {
            if l.is_empty() {
                "--\n".to_owned()
            } else {
                format!("--   {l}\n")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREAMBLE: &str = "\
--
-- PostgreSQL database dump
--

\\restrict abc

-- Dumped from database version 15.18

SET statement_timeout = 0;
SET lock_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;

";

    const TRAILER: &str = "\
--
-- PostgreSQL database dump complete
--

\\unrestrict abc

";

    fn dump(entries: &[&str]) -> String {
        format!("{PREAMBLE}{}{TRAILER}", entries.concat())
    }

    const SCHEMA: &str = "\
--
-- Name: public; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA public;


";
    const CATEGORIES: &str = "\
SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: categories; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.categories (
    id uuid NOT NULL,
    name text NOT NULL
);


";
    const EXTRA: &str = "\
--
-- Name: extra; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.extra (
    id integer NOT NULL
);


";
    const EXTRA_ACL: &str = "\
--
-- Name: TABLE extra; Type: ACL; Schema: public; Owner: -
--

GRANT ALL ON TABLE public.extra TO anon;


";
    const COMMENT: &str = "\
--
-- Name: SCHEMA public; Type: COMMENT; Schema: -; Owner: 
--

COMMENT ON SCHEMA public IS 'standard public schema';


";

    #[test]
    fn headers() {
        assert_eq!(
            parse_header(
                "-- Name: budgets budgets_pkey; Type: CONSTRAINT; Schema: public; Owner: -"
            ),
            Some(("CONSTRAINT", "public", "budgets budgets_pkey"))
        );
        assert_eq!(
            parse_header("-- Name: SCHEMA public; Type: COMMENT; Schema: -; Owner: "),
            Some(("COMMENT", "-", "SCHEMA public"))
        );
        assert_eq!(
            parse_header("-- Name: f(a integer); Type: FUNCTION; Schema: app"),
            Some(("FUNCTION", "app", "f(a integer)"))
        );
        assert_eq!(parse_header("-- Dumped from database version 15"), None);
    }

    #[test]
    fn dumps_split_into_entries_without_session_settings() {
        let text = dump(&[SCHEMA, COMMENT, CATEGORIES]);
        let entries = parse_dump(&text);
        let keys: Vec<_> = entries.iter().map(Entry::key).collect();
        assert_eq!(
            keys,
            [
                ("SCHEMA", "-", "public"),
                ("COMMENT", "-", "SCHEMA public"),
                ("TABLE", "public", "categories"),
            ]
        );
        // The SET lines before the table belong to no statement, the trailer to none.
        assert_eq!(
            entries[1].text,
            "--\n-- Name: SCHEMA public; Type: COMMENT; Schema: -; Owner: \n--\n\nCOMMENT ON SCHEMA public IS 'standard public schema';\n"
        );
        assert_eq!(
            entries[2].body,
            "CREATE TABLE public.categories (\n    id uuid NOT NULL,\n    name text NOT NULL\n);"
        );
        for e in &entries {
            assert!(!e.text.contains("SET "), "{}", e.text);
            assert!(!e.text.contains("restrict"), "{}", e.text);
            assert!(!e.text.contains("dump complete"), "{}", e.text);
        }
        assert!(parse_dump("").is_empty());
    }

    #[test]
    fn only_on_the_target_goes_in_verbatim() {
        let target = dump(&[SCHEMA, CATEGORIES, EXTRA, EXTRA_ACL]);
        let shadow = dump(&[SCHEMA, CATEGORIES]);
        let (t, s) = (parse_dump(&target), parse_dump(&shadow));
        let d = diff(&t, &s);
        assert!(d.changed.is_empty() && d.removed.is_empty(), "{d:?}");
        let sql = render(&d).expect("a difference");
        assert_eq!(
            sql,
            format!(
                "SET LOCAL check_function_bodies = false;\n\n{}\n{}\n",
                EXTRA.trim_end().to_owned() + "\n",
                EXTRA_ACL.trim_end().to_owned() + "\n"
            )
        );
        // Plover takes it as a migration.
        plover::Source::from_files("m", [("1_pull.sql".to_owned(), sql.as_bytes())])
            .expect("a valid migration");
    }

    #[test]
    fn the_same_schema_is_no_difference() {
        let a = dump(&[SCHEMA, CATEGORIES, EXTRA]);
        let (t, s) = (parse_dump(&a), parse_dump(&a));
        assert!(render(&diff(&t, &s)).is_none());
    }

    #[test]
    fn changed_and_removed_entries_become_comments() {
        let changed = CATEGORIES.replace("name text NOT NULL", "name text");
        let target = dump(&[SCHEMA, &changed]);
        let shadow = dump(&[SCHEMA, CATEGORIES, EXTRA]);
        let (t, s) = (parse_dump(&target), parse_dump(&shadow));
        let d = diff(&t, &s);
        assert_eq!(d.added.len(), 0);
        assert_eq!(d.changed.len(), 1);
        assert_eq!(d.removed.len(), 1);
        let sql = render(&d).expect("a difference");
        assert!(!sql.contains("SET LOCAL"), "{sql}");
        assert!(
            sql.contains("-- changed: TABLE public.categories:"),
            "{sql}"
        );
        assert!(sql.contains("--       name text\n"), "{sql}");
        assert!(sql.contains("--       name text NOT NULL\n"), "{sql}");
        assert!(
            sql.contains("-- gone from the target: TABLE public.extra:"),
            "{sql}"
        );
        // Comments only: nothing runs.
        assert!(
            sql.lines().all(|l| l.is_empty() || l.starts_with("--")),
            "{sql}"
        );
    }

    #[test]
    fn a_first_pull_creates_schemas_if_missing() {
        let target = dump(&[SCHEMA, CATEGORIES]);
        let t = parse_dump(&target);
        let sql = render(&diff(&t, &[])).expect("a difference");
        assert!(
            sql.contains("\nCREATE SCHEMA IF NOT EXISTS public;\n"),
            "{sql}"
        );
        assert!(!sql.contains("search_path"), "{sql}");
    }

    #[test]
    fn session_lines() {
        assert!(is_session_line("SET default_tablespace = '';"));
        assert!(is_session_line("SET check_function_bodies = false;"));
        assert!(is_session_line(
            "SELECT pg_catalog.set_config('search_path', '', false);"
        ));
        assert!(is_session_line("\\restrict XYZ"));
        assert!(!is_session_line("SET search_path = app;"));
        assert!(!is_session_line("    SET search_path TO ''"));
    }
}
