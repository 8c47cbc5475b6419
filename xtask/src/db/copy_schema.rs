//! `cargo xtask db copy-schema --from ENV --to ENV --schema OLD[:NEW]`: one app's
//! schema, objects and rows, copied from one database into another under the same or
//! a new name, in one transaction on the target.
//!
//! The order is pg_dump's: the objects without indexes and constraints (pg_dump's
//! pre-data section of OLD), the rows (COPY streamed from the source straight into the
//! target, binary where every column has a built-in type), then indexes, constraints,
//! foreign keys (checked once, on the full tables), triggers and policies (post-data);
//! then sequences are set to the source's value, or past the largest value of the
//! column they feed, the row counts of both sides compared table by table, and OLD
//! renamed to NEW. The source is read in one repeatable-read, read-only transaction
//! whose snapshot pg_dump shares, so objects and rows are of one moment.
//!
//! Must not: write to the source; leave anything on the target unless everything
//! matched (an error or an interruption rolls the transaction back); replace or drop
//! anything on the target (NEW must not exist there); print a password.
//!
//! A schema OLD that exists on the target while NEW is another name is renamed aside
//! inside the transaction and back before it commits, so no other session ever sees
//! it change.

use std::fmt::Write as _;
use std::io::Cursor;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, TryStreamExt};
use plover::project::Target;
use plover::schema::ident;
use tokio_postgres::{Client, IsolationLevel, Transaction};

use super::pgtools::{Scratch, Tools, pattern_quote};
use super::{Ask, Ctx, confirm, connect};
use crate::flags::DbCopySchema;

/// How many bytes of rows go to the target in one message.
const CHUNK: usize = 1 << 20;

/// What other sessions see of this command's connections.
const APPLICATION_NAME: &str = "plover copy-schema";

/// The first OID of objects not built into the server: a type below it has the same
/// OID and binary format in every database.
const FIRST_NORMAL_OID: u32 = 16384;

/// A table of the schema, as the source has it.
struct Table {
    name: String,
    /// The columns COPY carries (generated ones are computed again), quoted, in order.
    columns: Vec<String>,
    /// Whether every one of those columns has a type whose binary form names no
    /// database's OID: built-in, an enum (sent as its label), a domain over a
    /// built-in type. Then COPY is binary; else text (an array or a composite of a
    /// user type carries its OID, which differs between databases).
    builtin_types: bool,
    /// `pg_table_size` on the source.
    bytes: i64,
}

/// A sequence of the schema, and the column it feeds when that column is in the schema.
struct Sequence {
    name: String,
    owner: Option<(String, String)>,
}

/// What was copied of one table.
struct Copied {
    table: String,
    source_rows: i64,
    copied_rows: u64,
    target_rows: i64,
    bytes: u64,
    binary: bool,
}

impl DbCopySchema {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let (old, new) = parse_schema(&self.schema)?;
        let from = ctx.target_of(&self.from).context("--from")?;
        let to = ctx.target_of(&self.to).context("--to")?;
        println!("from: {from}");
        println!("to: {to}");
        if from.server() == to.server() {
            bail!(
                "--from and --to are the same database ({}): copy-schema copies between databases; nothing was changed",
                to.server()
            );
        }
        println!(
            "schema: {old} on {} becomes {new} on {}",
            label(&from),
            label(&to)
        );

        let mut source = connect_named(&from).await?;
        let mut target = connect_named(&to).await?;
        let tables = tables(&source, &old).await?;
        let sequences = sequences(&source, &old).await?;
        if !schema_exists(&source, &old)
            .await
            .with_context(|| format!("reading the schemas of {from}"))?
        {
            bail!("{} has no schema {old}; nothing was changed", from.server());
        }
        if schema_exists(&target, &new)
            .await
            .with_context(|| format!("reading the schemas of {to}"))?
        {
            bail!(
                "{} already has a schema {new}: copy-schema only creates (drop or rename it there first, or copy under another name with --schema {old}:OTHER); nothing was changed",
                to.server()
            );
        }
        let hold = if old != new
            && schema_exists(&target, &old)
                .await
                .with_context(|| format!("reading the schemas of {to}"))?
        {
            Some(format!("plover_copy_hold_{}", std::process::id()))
        } else {
            None
        };

        let total_bytes: i64 = tables.iter().map(|t| t.bytes).sum();
        println!(
            "to copy: {} table(s) ({} on disk), {} sequence(s), with the schema's other objects, grants and policies:",
            tables.len(),
            human_bytes(total_bytes.max(0) as u64),
            sequences.len()
        );
        for t in &tables {
            println!("  {old}.{}  {}", t.name, human_bytes(t.bytes.max(0) as u64));
        }
        if self.dry_run {
            println!("dry run: nothing was changed");
            return Ok(ExitCode::SUCCESS);
        }
        confirm(
            &to,
            Ask::Destructive,
            self.confirm.as_deref(),
            &format!(
                "create the schema {new} with {} table(s) from {}",
                tables.len(),
                label(&from)
            ),
        )?;

        let t0 = Instant::now();
        // The source's moment: every read below, pg_dump's included, sees this snapshot.
        let src = source
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .with_context(|| format!("starting a read-only transaction on {from}"))?;
        let snapshot: String = src
            .query_one("SELECT pg_export_snapshot()", &[])
            .await
            .with_context(|| format!("exporting a snapshot on {from}"))?
            .get(0);
        let phase = Instant::now();
        let bar = super::spinner(format!("reading the objects of {old} with pg_dump"));
        let dumped = dump_sections(&from, &old, &snapshot).await;
        bar.finish_and_clear();
        let (pre, post) = dumped?;
        println!(
            "read the objects of {old} with pg_dump ({})",
            seconds(phase.elapsed())
        );
        let phase = Instant::now();

        let tx = target
            .transaction()
            .await
            .with_context(|| format!("starting a transaction on {to}"))?;
        if let Some(hold) = &hold {
            tx.batch_execute(&format!(
                "ALTER SCHEMA {} RENAME TO {}",
                ident(&old),
                ident(hold)
            ))
            .await
            .with_context(|| {
                format!("renaming {to}'s own schema {old} aside for the copy (in the transaction)")
            })?;
        }
        run_dump_section(&tx, &pre, "pre-data", &to).await?;
        println!(
            "created the objects of {old} (pg_dump's pre-data section, {})",
            seconds(phase.elapsed())
        );

        let progress = Bytes::new(total_bytes.max(0) as u64);
        let mut copied = Vec::with_capacity(tables.len());
        for (i, t) in tables.iter().enumerate() {
            progress.table(&format!("{old}.{}", t.name), i + 1, tables.len());
            let phase = Instant::now();
            let c = copy_table(&src, &tx, &old, t, &progress)
                .await
                .with_context(|| {
                    format!("copying the rows of {old}.{} (nothing was kept)", t.name)
                })?;
            println!(
                "copied {old}.{}: {} row(s), {} ({}, {})",
                t.name,
                c.copied_rows,
                human_bytes(c.bytes),
                if c.binary { "binary" } else { "text" },
                seconds(phase.elapsed())
            );
            copied.push(c);
        }
        progress.finish();

        let phase = Instant::now();
        let bar = super::spinner("creating indexes, constraints, triggers and policies");
        let post_result = run_dump_section(&tx, &post, "post-data", &to).await;
        bar.finish_and_clear();
        post_result?;
        println!(
            "created the indexes, constraints, foreign keys (checked), triggers and policies of {old} ({})",
            seconds(phase.elapsed())
        );
        let phase = Instant::now();

        let sequences = set_sequences(&src, &tx, &old, &sequences).await?;
        for c in &mut copied {
            c.target_rows = tx
                .query_one(
                    &format!("SELECT count(*) FROM {}.{}", ident(&old), ident(&c.table)),
                    &[],
                )
                .await
                .with_context(|| format!("counting the rows of {old}.{} on {to}", c.table))?
                .get(0);
        }
        println!(
            "counted the rows on both sides and set the sequences ({})",
            seconds(phase.elapsed())
        );
        let wrong: Vec<&Copied> = copied
            .iter()
            .filter(|c| {
                c.source_rows != c.target_rows || c.copied_rows != c.source_rows.max(0) as u64
            })
            .collect();
        if !wrong.is_empty() {
            let list: Vec<String> = wrong
                .iter()
                .map(|c| {
                    format!(
                        "{}: source {}, copied {}, target {}",
                        c.table, c.source_rows, c.copied_rows, c.target_rows
                    )
                })
                .collect();
            bail!(
                "row counts differ, so nothing was kept on {to}: {}",
                list.join("; ")
            );
        }
        if old != new {
            let mut sql = format!("ALTER SCHEMA {} RENAME TO {};", ident(&old), ident(&new));
            if let Some(hold) = &hold {
                let _ = write!(
                    sql,
                    "ALTER SCHEMA {} RENAME TO {};",
                    ident(hold),
                    ident(&old)
                );
            }
            tx.batch_execute(&sql)
                .await
                .with_context(|| format!("renaming {old} to {new} on {to}"))?;
        }
        let by_text = if old != new {
            named_by_text(&tx, &old, &new).await?
        } else {
            Vec::new()
        };
        tx.commit()
            .await
            .with_context(|| format!("committing the copy on {to} (nothing of it was kept)"))?;
        // The source's transaction only read; ending it releases its snapshot.
        src.rollback().await.ok();
        let elapsed = t0.elapsed();

        print_summary(&copied, &sequences, &old, &new);
        for f in &by_text {
            eprintln!(
                "warning: {new}.{f} names the schema {old} in its body or settings, which are text: it still refers to {old} there"
            );
        }
        let rows: u64 = copied.iter().map(|c| c.copied_rows).sum();
        let bytes: u64 = copied.iter().map(|c| c.bytes).sum();
        println!(
            "copied schema {old} of {} to {new} on {}: {} table(s), {rows} row(s), {} of COPY data in {} ({}/s)",
            label(&from),
            label(&to),
            copied.len(),
            human_bytes(bytes),
            seconds(elapsed),
            human_bytes((bytes as f64 / elapsed.as_secs_f64().max(1e-9)) as u64)
        );
        drop(source);
        Ok(ExitCode::SUCCESS)
    }
}

async fn schema_exists(client: &Client, name: &str) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&name],
        )
        .await?;
    Ok(row.get(0))
}

/// `OLD` or `OLD:NEW`.
fn parse_schema(given: &str) -> Result<(String, String)> {
    let (old, new) = given.split_once(':').unwrap_or((given, given));
    for (what, name) in [("OLD", old), ("NEW", new)] {
        if name.is_empty() {
            bail!("--schema {given}: {what} is empty (OLD or OLD:NEW)");
        }
        if name.starts_with("pg_") || name == "information_schema" {
            bail!("--schema {given}: {name} is a system schema");
        }
    }
    Ok((old.to_owned(), new.to_owned()))
}

/// An environment's name, or for a URL its server (`host:port/database`).
fn label(target: &Target) -> String {
    match target.env() {
        "given" => target.server(),
        env => env.to_owned(),
    }
}

async fn connect_named(target: &Target) -> Result<Client> {
    let client = connect(target).await?;
    client
        .batch_execute(&format!("SET application_name = '{APPLICATION_NAME}'"))
        .await
        .with_context(|| format!("setting application_name on {target}"))?;
    Ok(client)
}

/// The schema's ordinary tables (partitions included, partitioned parents and
/// extension-owned tables not), in name order.
async fn tables(client: &Client, schema: &str) -> Result<Vec<Table>> {
    let rows = client
        .query(
            "SELECT c.relname::text,
                    coalesce(array_agg(quote_ident(a.attname) ORDER BY a.attnum)
                             FILTER (WHERE a.attnum IS NOT NULL), '{}'),
                    coalesce(bool_and(ty.oid < $2 OR ty.typtype = 'e'
                                      OR (ty.typtype = 'd' AND ty.typbasetype < $2)), true),
                    pg_table_size(c.oid)
               FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_attribute a
                      ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                     AND a.attgenerated = ''
               LEFT JOIN pg_type ty ON ty.oid = a.atttypid
              WHERE n.nspname = $1 AND c.relkind = 'r'
                AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                 WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                   AND d.deptype = 'e')
              GROUP BY c.oid, c.relname
              ORDER BY c.relname",
            &[&schema, &tokio_postgres::types::Oid::from(FIRST_NORMAL_OID)],
        )
        .await
        .with_context(|| format!("listing the tables of {schema}"))?;
    Ok(rows
        .iter()
        .map(|r| Table {
            name: r.get(0),
            columns: r.get(1),
            builtin_types: r.get(2),
            bytes: r.get(3),
        })
        .collect())
}

/// The schema's sequences, each with the table and column it feeds (serial or
/// identity) when that table is in the schema.
async fn sequences(client: &Client, schema: &str) -> Result<Vec<Sequence>> {
    let rows = client
        .query(
            "SELECT s.relname::text, t.relname::text, a.attname::text
               FROM pg_class s
               JOIN pg_namespace n ON n.oid = s.relnamespace
               LEFT JOIN pg_depend d
                      ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
                     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                     AND d.refobjsubid > 0
               LEFT JOIN pg_class t ON t.oid = d.refobjid AND t.relnamespace = n.oid
               LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
                     AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
              WHERE n.nspname = $1 AND s.relkind = 'S'
              ORDER BY s.relname",
            &[&schema],
        )
        .await
        .with_context(|| format!("listing the sequences of {schema}"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let table: Option<String> = r.get(1);
            let column: Option<String> = r.get(2);
            Sequence {
                name: r.get(0),
                owner: table.zip(column),
            }
        })
        .collect())
}

/// pg_dump's pre-data and post-data sections of `schema` on `from`, as of `snapshot`,
/// without owners (the target's objects belong to whoever copies), with grants.
async fn dump_sections(from: &Target, schema: &str, snapshot: &str) -> Result<(String, String)> {
    let tools = Tools::for_target(from).await?;
    let mut out = Vec::with_capacity(2);
    for section in ["pre-data", "post-data"] {
        let file = Scratch::new(&format!("copy-schema-{section}"));
        let args = [
            format!("--section={section}"),
            format!("--schema={}", pattern_quote(schema)),
            format!("--snapshot={snapshot}"),
            "--no-owner".to_owned(),
        ];
        tools.pg_dump(from, &args, file.path()).with_context(|| {
            format!(
                "dumping the {section} objects of {schema} with {}",
                tools.describe()
            )
        })?;
        out.push(without_meta_commands(&file.read()?));
    }
    let post = out.pop().unwrap_or_default();
    let pre = out.pop().unwrap_or_default();
    Ok((pre, post))
}

/// pg_dump's script without the psql meta-commands it writes around it (`\restrict KEY`
/// and `\unrestrict KEY`, pg_dump 15.14, 16.10, 17.6 and later), which the server
/// would not understand.
fn without_meta_commands(script: &str) -> String {
    script
        .lines()
        .filter(|l| !(l.starts_with("\\restrict ") || l.starts_with("\\unrestrict ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs one section of pg_dump's script in the target's transaction, in one round
/// trip behind a savepoint. When it fails, it is rolled back to the savepoint and run
/// again a statement at a time, so that the error names the statement that fails
/// and its line in the script (the server's position is not always given).
async fn run_dump_section(
    tx: &Transaction<'_>,
    script: &str,
    section: &str,
    to: &Target,
) -> Result<()> {
    let context = |at: Option<&plover::Statement<'_>>| match at {
        Some(st) => format!(
            "creating the copy's objects on {to} (pg_dump's {section} section, line {}: `{}`); nothing was kept",
            st.line,
            st.sql.lines().next().unwrap_or_default().trim()
        ),
        None => format!(
            "creating the copy's objects on {to} (pg_dump's {section} section); nothing was kept"
        ),
    };
    tx.batch_execute("SAVEPOINT plover_copy_section")
        .await
        .with_context(|| context(None))?;
    let Err(first) = tx.batch_execute(script).await else {
        return Ok(());
    };
    let statements = match (
        tx.batch_execute("ROLLBACK TO SAVEPOINT plover_copy_section")
            .await,
        plover::split_sql(script),
    ) {
        (Ok(()), Ok(statements)) => statements,
        _ => return Err(anyhow::Error::new(first).context(context(None))),
    };
    for st in &statements {
        if let Err(e) = tx.batch_execute(st.sql).await {
            return Err(anyhow::Error::new(e).context(context(Some(st))));
        }
    }
    // Statement by statement it went through: report the first error as it was.
    Err(anyhow::Error::new(first).context(context(None)))
}

/// Streams one table's rows from the source's transaction into the target's: binary
/// when no column's binary form names an OID ([`Table::builtin_types`]), else text.
/// Counts the source's rows in the same snapshot first. `FREEZE`: the table was
/// created in this (sub)transaction, so its rows are written frozen and all-visible,
/// and the index builds and counts after it do no visibility work (a third less time
/// for 1.3 GB; nothing is visible to others before the commit anyway).
async fn copy_table(
    src: &Transaction<'_>,
    tx: &Transaction<'_>,
    schema: &str,
    t: &Table,
    progress: &Bytes,
) -> Result<Copied> {
    let table = format!("{}.{}", ident(schema), ident(&t.name));
    let source_rows: i64 = src
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .context("counting the source's rows")?
        .get(0);
    let list = if t.columns.is_empty() {
        String::new()
    } else {
        format!(" ({})", t.columns.join(", "))
    };
    let format = if t.builtin_types {
        " (FORMAT binary)"
    } else {
        ""
    };
    let out = src
        .copy_out(&format!("COPY {table}{list} TO STDOUT{format}"))
        .await
        .context("reading the rows on the source")?;
    let sink = tx
        .copy_in(&format!(
            "COPY {table}{list} FROM STDIN (FREEZE{})",
            if t.builtin_types {
                ", FORMAT binary"
            } else {
                ""
            }
        ))
        .await
        .context("writing the rows on the target")?;
    futures_util::pin_mut!(sink);
    futures_util::pin_mut!(out);
    // The source sends a message per row; they go on in chunks of CHUNK bytes, so
    // that the target's side handles a few large messages.
    let mut bytes = 0u64;
    let mut buf = Vec::with_capacity(CHUNK + CHUNK / 8);
    while let Some(row) = out
        .try_next()
        .await
        .context("reading the rows on the source")?
    {
        bytes += row.len() as u64;
        buf.extend_from_slice(&row);
        if buf.len() >= CHUNK {
            progress.add(buf.len() as u64);
            let full = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + CHUNK / 8));
            sink.as_mut()
                .send(Cursor::new(full))
                .await
                .context("writing the rows on the target")?;
        }
    }
    if !buf.is_empty() {
        progress.add(buf.len() as u64);
        sink.as_mut()
            .send(Cursor::new(buf))
            .await
            .context("writing the rows on the target")?;
    }
    let copied_rows = sink
        .as_mut()
        .finish()
        .await
        .context("finishing the rows on the target")?;
    Ok(Copied {
        table: t.name.clone(),
        source_rows,
        copied_rows,
        target_rows: -1,
        bytes,
        binary: t.builtin_types,
    })
}

/// Sets each sequence to the source's value, or past the largest value of the column
/// it feeds when that is larger. Returns each sequence with the value it now has.
async fn set_sequences(
    src: &Transaction<'_>,
    tx: &Transaction<'_>,
    schema: &str,
    sequences: &[Sequence],
) -> Result<Vec<(String, i64, bool)>> {
    let mut out = Vec::with_capacity(sequences.len());
    for s in sequences {
        let seq = format!("{}.{}", ident(schema), ident(&s.name));
        let row = src
            .query_one(&format!("SELECT last_value, is_called FROM {seq}"), &[])
            .await
            .with_context(|| format!("reading the sequence {seq} on the source"))?;
        let (mut value, mut called): (i64, bool) = (row.get(0), row.get(1));
        if let Some((table, column)) = &s.owner {
            let max: Option<i64> = tx
                .query_one(
                    &format!(
                        "SELECT max({})::bigint FROM {}.{}",
                        ident(column),
                        ident(schema),
                        ident(table)
                    ),
                    &[],
                )
                .await
                .with_context(|| format!("reading the largest {table}.{column} on the target"))?
                .get(0);
            if let Some(max) = max.filter(|&m| m > value || (m == value && !called)) {
                (value, called) = (max, true);
            }
        }
        tx.execute(
            "SELECT setval($1::text::regclass, $2, $3)",
            &[&seq, &value, &called],
        )
        .await
        .with_context(|| format!("setting the sequence {seq} on the target"))?;
        out.push((s.name.clone(), value, called));
    }
    Ok(out)
}

/// The functions of `new` whose body or settings name `old` as text (after the
/// rename they still point there).
async fn named_by_text(tx: &Transaction<'_>, old: &str, new: &str) -> Result<Vec<String>> {
    let rows = tx
        .query(
            "SELECT p.proname::text || '(' || pg_get_function_identity_arguments(p.oid) || ')'
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = $1
                AND (strpos(lower(p.prosrc), lower($2) || '.') > 0
                     OR strpos(lower(p.prosrc), lower($3) || '.') > 0
                     OR EXISTS (SELECT 1 FROM unnest(p.proconfig) c
                                 WHERE c ILIKE 'search_path=%' AND strpos(c, $2) > 0))
              ORDER BY 1",
            &[&new, &old, &ident(old)],
        )
        .await
        .context("looking for functions that name the old schema")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

fn print_summary(copied: &[Copied], sequences: &[(String, i64, bool)], old: &str, new: &str) {
    let width = copied
        .iter()
        .map(|c| c.table.len() + new.len() + 1)
        .chain([5])
        .max()
        .unwrap_or(5);
    println!(
        "{:<width$}  {:>12}  {:>12}  {:>12}  {:>10}",
        "table", "source rows", "copied", "target rows", "data"
    );
    for c in copied {
        println!(
            "{:<width$}  {:>12}  {:>12}  {:>12}  {:>10}",
            format!("{new}.{}", c.table),
            c.source_rows,
            c.copied_rows,
            c.target_rows,
            human_bytes(c.bytes)
        );
    }
    println!("row counts: equal on both sides for every table");
    for (name, value, called) in sequences {
        let next = if *called { value + 1 } else { *value };
        println!(
            "sequence {new}.{name}: next value {next} (as on {old}'s source, or past the largest row)"
        );
    }
}

/// Bytes streamed so far, as a bar on stderr at a terminal.
struct Bytes {
    bar: indicatif::ProgressBar,
}

impl Bytes {
    fn new(total: u64) -> Bytes {
        use std::io::IsTerminal;
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(total)
        } else {
            indicatif::ProgressBar::hidden()
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:30} {bytes} of ~{total_bytes} ({bytes_per_sec}) {msg} [{elapsed}]",
        ) {
            bar.set_style(style);
        }
        Bytes { bar }
    }

    fn table(&self, name: &str, index: usize, total: usize) {
        self.bar.set_message(format!("{name} ({index}/{total})"));
    }

    fn add(&self, n: u64) {
        self.bar.inc(n);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_old_and_new() {
        assert_eq!(
            parse_schema("billing").unwrap(),
            ("billing".into(), "billing".into())
        );
        assert_eq!(
            parse_schema("billing:billing_v2").unwrap(),
            ("billing".into(), "billing_v2".into())
        );
        assert!(parse_schema("billing:").is_err());
        assert!(parse_schema("pg_catalog").is_err());
    }

    #[test]
    fn meta_commands_are_left_out() {
        let script = "\\restrict abc\nSET x = 1;\nCREATE TABLE a ();\n\\unrestrict abc";
        assert_eq!(
            without_meta_commands(script),
            "SET x = 1;\nCREATE TABLE a ();"
        );
    }
}
