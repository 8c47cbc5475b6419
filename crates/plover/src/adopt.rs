//! Adopting another tool's history: the Supabase CLI's, sqlx's or refinery's.
//!
//! A database migrated by another tool gets plover's own history rows for every local
//! migration that tool recorded as applied, with the local file's checksum, in one
//! transaction under the migration lock. Versions plover already records are left
//! alone; versions the other tool recorded without a local file are reported, never
//! invented; local versions it does not list stay pending. With the `refinery`
//! feature, [`to_refinery`] also hands a [`Source`] to refinery's runner for teams that
//! keep it.
//!
//! Runs adopt on their own what the Supabase CLI applied with the files' statements
//! ([`SupabaseCli`](crate::plan::SupabaseCli); [`adopt_supabase_cli`] records them, and
//! each lands in [`Report::adopted`](crate::Report::adopted) as a
//! [`SupabaseCliAdopted`]); [`Migrator::adopt`](crate::Migrator::adopt) takes over a whole history by hand,
//! whatever the statements.
//!
//! Architecture invariant: adoption runs no migration SQL. This module decides what
//! to record; the SQL, the other tools' tables included, lives in `history`.

use std::collections::BTreeSet;
use std::fmt;

use tokio_postgres::{Client, GenericClient};

#[cfg(feature = "refinery")]
use crate::apply;
use crate::error::Error;
use crate::history;
use crate::plan::{AppliedRow, supabase_version};
use crate::settings::Adopt;
use crate::source::{Migration, Source};

/// What [`Migrator::adopt`](crate::Migrator::adopt) recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Adopted {
    /// Versions written to plover's history by this call, in order.
    pub adopted: Vec<i64>,
    /// Versions the other tool recorded that plover's history already held (left
    /// alone).
    pub already: Vec<i64>,
    /// Versions the other tool recorded that have no local file: nothing was written
    /// for them. Worth a warning: the database has changes this source does not know.
    pub unknown: Vec<i64>,
    /// Versions the other tool recorded that are not a number (Supabase only: its
    /// version column is text); skipped.
    pub unreadable: Vec<String>,
}

/// A version the Supabase CLI applied with the file's statements, which a run
/// recorded in plover's history without running it. Its `Display` is the line shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupabaseCliAdopted {
    pub version: i64,
    pub name: String,
    /// The file as shown in messages.
    pub file: String,
}

impl fmt::Display for SupabaseCliAdopted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: version {} was applied by the Supabase CLI with this file's statements; recorded in plover's history without running it",
            self.file, self.version
        )
    }
}

/// Records `migrations` (versions the Supabase CLI applied with their files'
/// statements, see [`Plan::adoptable`](crate::Plan::adoptable)) in plover's history
/// with their files' checksums, in one transaction of their own, creating plover's
/// table first when `bootstrap` says so. The caller holds the migration lock. The
/// Supabase CLI's rows are where they came from: they are left as they are.
pub(crate) async fn adopt_supabase_cli(
    client: &mut Client,
    app: &str,
    migrations: &[&Migration],
    bootstrap: history::Bootstrap,
    applied_by: &str,
) -> Result<Vec<SupabaseCliAdopted>, Error> {
    if migrations.is_empty() {
        return Ok(Vec::new());
    }
    let applied_by = format!("adopted from {} by {applied_by}", Adopt::Supabase.key());
    let tx = client
        .transaction()
        .await
        .map_err(Error::db("starting a transaction"))?;
    bootstrap.run(&tx).await?;
    for m in migrations {
        history::insert_applied(&tx, app, m, 0, &applied_by).await?;
    }
    tx.commit().await.map_err(Error::db(
        "committing the versions adopted from the Supabase CLI",
    ))?;
    Ok(migrations
        .iter()
        .map(|m| SupabaseCliAdopted {
            version: m.version(),
            name: m.name().to_owned(),
            file: m.file().to_owned(),
        })
        .collect())
}

/// What the other tool recorded as applied.
pub(crate) struct Recorded {
    pub(crate) versions: BTreeSet<i64>,
    pub(crate) unreadable: Vec<String>,
}

pub(crate) async fn recorded(client: &impl GenericClient, from: Adopt) -> Result<Recorded, Error> {
    if !history::table_exists(client, from.table()).await? {
        return Err(Error::AdoptTableMissing { from });
    }
    let mut recorded = Recorded {
        versions: BTreeSet::new(),
        unreadable: Vec::new(),
    };
    match from {
        Adopt::Supabase => {
            for text in history::supabase_versions(client).await? {
                match supabase_version(&text) {
                    Some(v) => {
                        recorded.versions.insert(v);
                    }
                    None => recorded.unreadable.push(text),
                }
            }
        }
        Adopt::Sqlx => {
            let rows = history::sqlx_versions(client).await?;
            if let Some(&(version, _)) = rows.iter().find(|(_, success)| !success) {
                return Err(Error::AdoptDirty { version });
            }
            recorded.versions = rows.into_iter().map(|(v, _)| v).collect();
        }
        Adopt::Refinery => {
            recorded.versions = history::refinery_versions(client)
                .await?
                .into_iter()
                .collect();
        }
    }
    Ok(recorded)
}

/// The other tool's versions sorted against the local files and plover's history.
#[derive(Debug)]
pub(crate) struct Sorted<'a> {
    pub(crate) adopt: Vec<&'a Migration>,
    pub(crate) already: Vec<i64>,
    pub(crate) unknown: Vec<i64>,
}

pub(crate) fn sort<'a>(
    source: &'a Source,
    recorded: &BTreeSet<i64>,
    history: &[AppliedRow],
) -> Sorted<'a> {
    let in_history: BTreeSet<i64> = history.iter().map(|r| r.version).collect();
    let mut sorted = Sorted {
        adopt: Vec::new(),
        already: Vec::new(),
        unknown: Vec::new(),
    };
    for &v in recorded {
        match source.get(v) {
            None => sorted.unknown.push(v),
            Some(_) if in_history.contains(&v) => sorted.already.push(v),
            Some(m) => sorted.adopt.push(m),
        }
    }
    sorted
}

/// Converts a set for refinery's runner: `<version>_<name>.sql` becomes
/// `V<version>__<name>`, the name reduced to what refinery's name pattern accepts
/// (ASCII letters, digits and `_`; anything else becomes `_`).
///
/// Refuses `-- plover:no-transaction` files (refinery runs every migration in a
/// transaction) and files plover itself would refuse to run (stray `BEGIN`/`COMMIT`,
/// unterminated quotes), naming the file.
///
/// Versions are refinery's `int8-versions` (i64), so Supabase timestamps fit. A
/// `refinery_schema_history` table created by refinery without that feature has an
/// int4 `version` column, which refinery's driver then cannot read: widen it first
/// with `ALTER TABLE refinery_schema_history ALTER COLUMN version TYPE bigint`.
///
/// ```no_run
/// # fn convert() -> Result<(), plover::Error> {
/// let source = plover::Source::from_dir("supabase/migrations")?;
/// let migrations = plover::to_refinery(&source)?;
/// // With refinery-core's `tokio-postgres` driver:
/// // runner.run_async(&mut client).await
/// let runner = refinery_core::Runner::new(&migrations);
/// # let _ = runner; Ok(()) }
/// ```
#[cfg(feature = "refinery")]
pub fn to_refinery(source: &Source) -> Result<Vec<refinery_core::Migration>, Error> {
    source
        .migrations()
        .iter()
        .map(|m| {
            if m.transaction() == crate::source::Transaction::None {
                return Err(Error::NoTransactionInRefinery {
                    file: m.file().to_owned(),
                });
            }
            apply::prepare(m)?;
            let name = format!("V{}__{}", m.version(), refinery_name(m.name()));
            refinery_core::Migration::unapplied(&name, m.sql()).map_err(|e| Error::Refinery {
                file: m.file().to_owned(),
                message: e.to_string(),
            })
        })
        .collect()
}

/// A migration name refinery accepts (`\w+`), and that is safe in the SQL refinery
/// builds with it: ASCII letters, digits and `_`, anything else replaced by `_`.
#[cfg(feature = "refinery")]
fn refinery_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() { "migration".into() } else { s }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::plan::RowState;

    fn source(files: &[&str]) -> Source {
        Source::from_files(
            "supabase/migrations",
            files.iter().map(|f| (f.to_string(), &b"select 1;"[..])),
        )
        .unwrap()
    }

    fn row(version: i64) -> AppliedRow {
        AppliedRow {
            version,
            name: "x".into(),
            checksum: None,
            applied_at: SystemTime::UNIX_EPOCH,
            execution_ms: 0,
            applied_by: "test".into(),
            state: RowState::Applied,
            down_checksum: None,
        }
    }

    #[test]
    fn recorded_versions_sort_into_adopt_already_and_unknown() {
        let s = source(&["1_a.sql", "2_b.sql", "3_c.sql", "4_d.sql"]);
        let recorded: BTreeSet<i64> = [1, 2, 3, 9].into();
        let sorted = sort(&s, &recorded, &[row(2)]);
        let adopt: Vec<i64> = sorted.adopt.iter().map(|m| m.version()).collect();
        assert_eq!(adopt, [1, 3]);
        assert_eq!(sorted.already, [2]);
        assert_eq!(sorted.unknown, [9]);
    }

    #[test]
    fn supabase_versions_are_digits() {
        let check = |text, expected| assert_eq!(supabase_version(text), expected, "{text:?}");
        check("20250101120000", Some(20250101120000));
        check("0001", Some(1));
        check("", None);
        check("+1", None);
        check(" 1", None);
        check("v1", None);
        check("99999999999999999999", None);
    }

    #[test]
    fn adopt_names_its_table() {
        assert_eq!(
            Error::AdoptTableMissing {
                from: Adopt::Refinery
            }
            .to_string(),
            "cannot adopt refinery's history: table refinery_schema_history does not exist in this database; check the database URL and search_path, or adopt from the tool that migrated this database"
        );
    }

    #[cfg(feature = "refinery")]
    #[test]
    fn refinery_names_are_word_characters() {
        let check = |name, expected| assert_eq!(refinery_name(name), expected, "{name:?}");
        check("add_budgets", "add_budgets");
        check("add-budgets v2", "add_budgets_v2");
        check("it's", "it_s");
        check("café", "caf_");
        check("", "migration");
    }

    #[cfg(feature = "refinery")]
    #[test]
    fn to_refinery_converts_names_and_refuses_no_transaction_files() {
        let s = Source::from_files(
            "supabase/migrations",
            [
                (
                    "supabase/migrations/20250101120000_add-budgets.sql".to_string(),
                    &b"create table b (id int);"[..],
                ),
                (
                    "supabase/migrations/0002_.sql".to_string(),
                    &b"select 1;"[..],
                ),
            ],
        )
        .unwrap();
        let converted = to_refinery(&s).unwrap();
        let names: Vec<String> = converted.iter().map(|m| m.to_string()).collect();
        assert_eq!(names, ["V2__migration", "V20250101120000__add_budgets"]);
        assert_eq!(converted[1].sql(), Some("create table b (id int);"));

        let s = Source::from_files(
            "supabase/migrations",
            [(
                "supabase/migrations/3_index.sql".to_string(),
                &b"-- plover:no-transaction\ncreate index concurrently i on b (id);"[..],
            )],
        )
        .unwrap();
        let e = to_refinery(&s).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "supabase/migrations/3_index.sql: is marked `-- plover:no-transaction`"
            ),
            "{e}"
        );

        let s = Source::from_files(
            "supabase/migrations",
            [("4_rollback.sql".to_string(), &b"select 1;\nrollback;"[..])],
        )
        .unwrap();
        assert!(matches!(
            to_refinery(&s),
            Err(Error::TransactionControl { line: 2, .. })
        ));
    }
}
