//! plover's history table and the Supabase CLI's mirror of it.
//!
//! One row per (app, version) in `plover.migrations`. Each app reads and writes only
//! its own rows. Every statement is a constant with `$n` parameters.
//!
//! Architecture invariant: this module knows nothing of files; it stores what it is
//! given.

use std::time::SystemTime;

use tokio_postgres::types::ToSql;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient, Row, Statement};

use crate::error::Error;
use crate::plan::{AppliedRow, RowState, SupabaseCliRow, supabase_version};
use crate::source::{Checksum, Migration};

/// Creates the history schema and table. Runs inside the caller's transaction (the
/// first migration's, so a failed first run leaves nothing behind) under a
/// transaction-level advisory lock, so concurrent first runs of different apps do
/// not race on `CREATE ... IF NOT EXISTS`.
pub(crate) const BOOTSTRAP: &str = "
SELECT pg_advisory_xact_lock(7042061431592171371);
CREATE SCHEMA IF NOT EXISTS plover;
CREATE TABLE IF NOT EXISTS plover.migrations (
    app              text        NOT NULL,
    version          bigint      NOT NULL,
    name             text        NOT NULL,
    checksum         bytea       NOT NULL,
    applied_at       timestamptz NOT NULL DEFAULT now(),
    execution_ms     bigint      NOT NULL DEFAULT 0,
    applied_by       text        NOT NULL,
    state            text        NOT NULL DEFAULT 'applied' CHECK (state IN ('applied', 'dirty')),
    statements_done  integer     NOT NULL DEFAULT 0,
    statements_total integer     NOT NULL DEFAULT 0,
    last_error       text,
    down_checksum    bytea,
    PRIMARY KEY (app, version)
);
COMMENT ON TABLE plover.migrations IS 'plover migration history: one row per (app, version)';
COMMENT ON COLUMN plover.migrations.down_checksum IS
    'SHA-256 of the migration''s down file when it was applied (null: it had none)';";

/// Adds `down_checksum` to a `plover.migrations` created before it, under the same
/// lock as [`BOOTSTRAP`]. Nullable without a default: a catalog change, no rewrite.
/// Older plover versions keep writing their rows (null there).
pub(crate) const UPGRADE_DOWN_CHECKSUM: &str = "
SELECT pg_advisory_xact_lock(7042061431592171371);
ALTER TABLE plover.migrations ADD COLUMN IF NOT EXISTS down_checksum bytea;
COMMENT ON COLUMN plover.migrations.down_checksum IS
    'SHA-256 of the migration''s down file when it was applied (null: it had none)';";

/// Each app's history digest ([`REMEMBER_DIGEST`]), written by a run that ends with
/// nothing left to do and read by the next run's one-query check ([`is_up_to_date`]).
/// A trigger deletes an app's digest on any change to its rows in `plover.migrations`
/// (plover's or anyone's), in the changing transaction, so a digest that is there
/// describes the history as it is. Row-level, so that one app's writes never wait on
/// another's. Runs after [`BOOTSTRAP`], or alone under the same lock on a database
/// whose history predates it.
pub(crate) const BOOTSTRAP_DIGESTS: &str = "
CREATE TABLE IF NOT EXISTS plover.digests (
    app         text        PRIMARY KEY,
    digest      bytea       NOT NULL,
    migrations  integer     NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE plover.digests IS
    'plover: a digest of each app''s rows in plover.migrations, so that a boot with nothing to do costs one query; deleted by a trigger on any change to those rows';
CREATE OR REPLACE FUNCTION plover.forget_digest() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM plover.digests;
    ELSIF TG_OP = 'INSERT' THEN
        DELETE FROM plover.digests WHERE app = NEW.app;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM plover.digests WHERE app = OLD.app;
    ELSE
        DELETE FROM plover.digests WHERE app IN (OLD.app, NEW.app);
    END IF;
    RETURN NULL;
END
$fn$;
DO $do$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_trigger
                    WHERE tgrelid = 'plover.migrations'::regclass AND tgname = 'forget_digest') THEN
        CREATE TRIGGER forget_digest AFTER INSERT OR UPDATE OR DELETE ON plover.migrations
            FOR EACH ROW EXECUTE FUNCTION plover.forget_digest();
        CREATE TRIGGER forget_digests AFTER TRUNCATE ON plover.migrations
            FOR EACH STATEMENT EXECUTE FUNCTION plover.forget_digest();
    END IF;
END
$do$;";

/// The lock [`BOOTSTRAP`] takes, for [`BOOTSTRAP_DIGESTS`] run alone.
const BOOTSTRAP_LOCK: &str = "SELECT pg_advisory_xact_lock(7042061431592171371);";

/// Fails (division by zero) unless the app's version `$2` is recorded: the first
/// statement of a transaction pipelined behind another, so that it fails when that
/// one did not commit.
const REQUIRE: &str =
    "SELECT 1 / count(*)::integer FROM plover.migrations WHERE app = $1 AND version = $2";

/// Stores the app's history digest, computed by the server from the rows as they are:
/// SHA-256 of one line per row in version order, `<version> <state> <checksum hex>
/// <name as UTF-8 hex>`, joined by newlines. [`digest_of`] computes the same from
/// files.
const REMEMBER_DIGEST: &str = "
INSERT INTO plover.digests (app, digest, migrations)
SELECT $1,
       sha256(convert_to(coalesce(string_agg(
           version::text || ' ' || state || ' ' || encode(checksum, 'hex') || ' '
               || encode(convert_to(name, 'UTF8'), 'hex'),
           E'\\n' ORDER BY version), ''), 'UTF8')),
       count(*)::integer
  FROM plover.migrations WHERE app = $1
ON CONFLICT (app) DO UPDATE
   SET digest = EXCLUDED.digest, migrations = EXCLUDED.migrations, computed_at = now()";

/// The app's stored history digest, if any.
const STORED_DIGEST: &str = "SELECT digest FROM plover.digests WHERE app = $1";

/// SQLSTATE undefined_table.
const UNDEFINED_TABLE: &str = "42P01";

/// The Supabase CLI's history table, created as the CLI creates it.
pub(crate) const BOOTSTRAP_SUPABASE: &str = "
SELECT pg_advisory_xact_lock(7042061431592171371);
CREATE SCHEMA IF NOT EXISTS supabase_migrations;
CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY);
ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS statements text[];
ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS name text;";

const EXISTS: &str = "
SELECT to_regclass('plover.migrations') IS NOT NULL,
       EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = to_regclass('supabase_migrations.schema_migrations')
                  AND attname = 'name' AND NOT attisdropped),
       to_regclass('plover.digests') IS NOT NULL,
       EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = to_regclass('plover.migrations')
                  AND attname = 'down_checksum' AND NOT attisdropped)";

const LOAD: &str = "
SELECT version, name, checksum, applied_at, execution_ms, applied_by, state,
       statements_done, statements_total, last_error, down_checksum
  FROM plover.migrations WHERE app = $1 ORDER BY version";

/// [`LOAD`] for a table that predates `down_checksum` (read-only commands do not
/// upgrade it).
const LOAD_WITHOUT_DOWN: &str = "
SELECT version, name, checksum, applied_at, execution_ms, applied_by, state,
       statements_done, statements_total, last_error, NULL::bytea AS down_checksum
  FROM plover.migrations WHERE app = $1 ORDER BY version";

/// `execution_ms` is `$5`, or when that is null the time since the transaction began,
/// measured by the server: a migration sent in one round trip with its `BEGIN` and
/// this insert cannot be timed by the client before the insert is on its way.
const INSERT_APPLIED: &str = "
INSERT INTO plover.migrations (app, version, name, checksum, execution_ms, applied_by, down_checksum)
VALUES ($1, $2, $3, $4,
        coalesce($5, (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint), $6, $7)";

const INSERT_DIRTY: &str = "
INSERT INTO plover.migrations (app, version, name, checksum, applied_by, state, statements_total, down_checksum)
VALUES ($1, $2, $3, $4, $5, 'dirty', $6, $7)";

const PROGRESS: &str =
    "UPDATE plover.migrations SET statements_done = $3 WHERE app = $1 AND version = $2";

const FAILED: &str = "UPDATE plover.migrations SET last_error = $3 WHERE app = $1 AND version = $2";

const FINISH: &str = "
UPDATE plover.migrations
   SET state = 'applied', applied_at = now(), execution_ms = $3, last_error = NULL,
       statements_done = statements_total
 WHERE app = $1 AND version = $2";

const MARK_APPLIED: &str = "
UPDATE plover.migrations
   SET state = 'applied', checksum = $3, last_error = NULL, statements_done = statements_total,
       down_checksum = $4
 WHERE app = $1 AND version = $2";

const DELETE: &str = "DELETE FROM plover.migrations WHERE app = $1 AND version = $2";

#[cfg(feature = "project")]
const DELETE_APP: &str = "DELETE FROM plover.migrations WHERE app = $1 RETURNING version";

const MIRROR: &str = "
INSERT INTO supabase_migrations.schema_migrations (version, name, statements)
VALUES ($1, $2, $3)
ON CONFLICT (version) DO NOTHING";

const UNMIRROR: &str = "DELETE FROM supabase_migrations.schema_migrations WHERE version = $1";

const NOTIFY_PGRST: &str = "NOTIFY pgrst, 'reload schema'";

// Other tools' history tables, read to adopt them (see `adopt`). Unqualified names
// resolve through search_path, as sqlx and refinery resolve them.
const TABLE_EXISTS: &str = "SELECT to_regclass($1::text) IS NOT NULL";
const SUPABASE_VERSIONS: &str =
    "SELECT version FROM supabase_migrations.schema_migrations ORDER BY version";
// The Supabase CLI's rows, read to find what it applied that plover's history lacks
// (see `plan::SupabaseCli`). A table from a CLI old enough to have no `statements`
// column is read without them.
const SUPABASE_CLI_TABLE: &str = "
SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL,
       EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = to_regclass('supabase_migrations.schema_migrations')
                  AND attname = 'statements' AND NOT attisdropped)";
const SUPABASE_CLI_ROWS: &str =
    "SELECT version, statements FROM supabase_migrations.schema_migrations ORDER BY version";
const SUPABASE_CLI_VERSIONS: &str =
    "SELECT version, NULL::text[] FROM supabase_migrations.schema_migrations ORDER BY version";
const OTHER_APPS_VERSIONS: &str = "SELECT DISTINCT version FROM plover.migrations WHERE app <> $1";
const SQLX_VERSIONS: &str = "SELECT version, success FROM _sqlx_migrations ORDER BY version";
const REFINERY_VERSIONS: &str =
    "SELECT version::bigint FROM refinery_schema_history ORDER BY version";

/// The tables a first write must create.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bootstrap {
    pub plover: bool,
    pub supabase: bool,
    /// `plover.digests` and its trigger: created with `plover`, or else alone at the
    /// end of a run ([`remember_digest`]), where a failure (say, no right to create in
    /// the schema) costs nothing but the one-query check.
    pub digests: bool,
    /// `plover.migrations` predates its `down_checksum` column
    /// ([`UPGRADE_DOWN_CHECKSUM`]); added before the first write.
    pub down_checksum: bool,
}

impl Bootstrap {
    pub fn is_needed(&self) -> bool {
        self.plover || self.supabase || self.down_checksum
    }

    /// Creates what is missing in a transaction of its own.
    pub async fn run_alone(&self, client: &mut Client) -> Result<(), Error> {
        if !self.is_needed() {
            return Ok(());
        }
        let tx = client
            .transaction()
            .await
            .map_err(Error::db("starting a transaction"))?;
        self.run(&tx).await?;
        tx.commit()
            .await
            .map_err(Error::db("creating the history tables"))
    }

    /// Creates what is missing, in the caller's transaction.
    pub async fn run(&self, client: &impl GenericClient) -> Result<(), Error> {
        if self.plover {
            client
                .batch_execute(BOOTSTRAP)
                .await
                .map_err(Error::db("creating the history table plover.migrations"))?;
        }
        if self.plover {
            client
                .batch_execute(BOOTSTRAP_DIGESTS)
                .await
                .map_err(Error::db("creating the table plover.digests"))?;
        }
        if self.down_checksum && !self.plover {
            client
                .batch_execute(UPGRADE_DOWN_CHECKSUM)
                .await
                .map_err(Error::db(
                    "adding the column down_checksum to plover.migrations (created by an older plover)",
                ))?;
        }
        if self.supabase {
            client
                .batch_execute(BOOTSTRAP_SUPABASE)
                .await
                .map_err(Error::db(
                    "creating the Supabase CLI's table supabase_migrations.schema_migrations",
                ))?;
        }
        Ok(())
    }
}

/// This app's history in version order (empty when the table does not exist yet),
/// and what a first write must create (the Supabase CLI's table only if `supabase`).
pub(crate) async fn inspect(
    client: &impl GenericClient,
    app: &str,
    supabase: bool,
) -> Result<(Vec<AppliedRow>, Bootstrap), Error> {
    let row = client
        .query_one(EXISTS, &[])
        .await
        .map_err(Error::db("checking for the history tables"))?;
    let context = "checking for the history tables";
    let plover: bool = row.try_get(0).map_err(Error::db(context))?;
    let supabase_exists: bool = row.try_get(1).map_err(Error::db(context))?;
    let digests: bool = row.try_get(2).map_err(Error::db(context))?;
    let down_checksum: bool = row.try_get(3).map_err(Error::db(context))?;
    let bootstrap = Bootstrap {
        plover: !plover,
        supabase: supabase && !supabase_exists,
        digests: !digests,
        down_checksum: plover && !down_checksum,
    };
    if !plover {
        return Ok((Vec::new(), bootstrap));
    }
    let load = if down_checksum {
        LOAD
    } else {
        LOAD_WITHOUT_DOWN
    };
    let rows = client
        .query(load, &[&app])
        .await
        .map_err(Error::db("reading the history table plover.migrations"))?;
    Ok((
        rows.iter().map(row_to_applied).collect::<Result<_, _>>()?,
        bootstrap,
    ))
}

/// Whether the app's stored history digest is `expected` ([`digest_of`] the files):
/// then every file is applied, unchanged and under its name, and nothing else is
/// recorded, so there is nothing to do. One round trip, nothing prepared, no lock.
/// `false` when there is no digest (the history changed since one was stored, or
/// none was) or the table is missing; an error only when the server could not answer.
pub(crate) async fn is_up_to_date(
    client: &Client,
    app: &str,
    expected: &[u8; 32],
) -> Result<bool, Error> {
    match client
        .query_typed(STORED_DIGEST, &[(&app as &(dyn ToSql + Sync), Type::TEXT)])
        .await
    {
        Ok(rows) => Ok(rows.first().is_some_and(|row| {
            row.try_get::<_, &[u8]>(0)
                .is_ok_and(|stored| stored == expected)
        })),
        Err(e) if e.code().is_some_and(|c| c.code() == UNDEFINED_TABLE) => Ok(false),
        Err(e) if e.as_db_error().is_some() => {
            tracing::debug!(app, error = %e, "could not read the history digest");
            Ok(false)
        }
        Err(e) => Err(Error::db("reading the history digest")(e)),
    }
}

/// Stores the app's history digest as the server computes it from the rows now
/// ([`REMEMBER_DIGEST`]), creating `plover.digests` first when `create` (a history
/// that predates it). Called under the migration lock at the end of a run that leaves
/// nothing to do. A failure is logged, not returned: the next run takes the long way.
pub(crate) async fn remember_digest(client: &mut Client, app: &str, create: bool) {
    let result = async {
        if create {
            let tx = client
                .transaction()
                .await
                .map_err(Error::db("starting a transaction"))?;
            tx.batch_execute(&format!("{BOOTSTRAP_LOCK}{BOOTSTRAP_DIGESTS}"))
                .await
                .map_err(Error::db("creating the table plover.digests"))?;
            tx.commit()
                .await
                .map_err(Error::db("creating the table plover.digests"))?;
        }
        client
            .query_typed(
                REMEMBER_DIGEST,
                &[(&app as &(dyn ToSql + Sync), Type::TEXT)],
            )
            .await
            .map_err(Error::db("storing the history digest in plover.digests"))
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(app, error = %e, "could not store the history digest; the next run reads the whole history");
    }
}

/// The digest [`REMEMBER_DIGEST`] stores for a history that records exactly
/// `migrations` (version, name, checksum), all applied.
pub(crate) fn digest_of<'m>(
    migrations: impl IntoIterator<Item = (i64, &'m str, Checksum)>,
) -> [u8; 32] {
    crate::files::history_digest(
        migrations
            .into_iter()
            .map(|(version, name, checksum)| (version, name, *checksum.as_bytes())),
    )
}

fn row_to_applied(row: &Row) -> Result<AppliedRow, Error> {
    let get = Error::db("reading a row of plover.migrations");
    let checksum: Vec<u8> = row.try_get("checksum").map_err(get)?;
    let down_checksum: Option<Vec<u8>> = row.try_get("down_checksum").map_err(get)?;
    let state: String = row.try_get("state").map_err(get)?;
    Ok(AppliedRow {
        version: row.try_get("version").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        checksum: Checksum::from_slice(&checksum),
        down_checksum: down_checksum.as_deref().and_then(Checksum::from_slice),
        applied_at: row.try_get::<_, SystemTime>("applied_at").map_err(get)?,
        execution_ms: row.try_get("execution_ms").map_err(get)?,
        applied_by: row.try_get("applied_by").map_err(get)?,
        state: if state == "dirty" {
            RowState::Dirty {
                statements_done: row.try_get("statements_done").map_err(get)?,
                statements_total: row.try_get("statements_total").map_err(get)?,
                error: row.try_get("last_error").map_err(get)?,
            }
        } else {
            RowState::Applied
        },
    })
}

/// What `down_checksum` records for `m`: its down file's checksum, if it has one.
fn down_checksum(m: &Migration) -> Option<Vec<u8>> {
    m.down().map(|d| d.checksum().0.to_vec())
}

/// Records a finished migration (inside its transaction).
pub(crate) async fn insert_applied(
    client: &impl GenericClient,
    app: &str,
    m: &Migration,
    execution_ms: i64,
    applied_by: &str,
) -> Result<(), Error> {
    client
        .execute(
            INSERT_APPLIED,
            &[
                &app,
                &m.version(),
                &m.name(),
                &&m.checksum().0[..],
                &Some(execution_ms),
                &applied_by,
                &down_checksum(m),
            ],
        )
        .await
        .map_err(Error::db("recording the migration in plover.migrations"))?;
    Ok(())
}

/// The two writes of every applied migration, prepared once per run: its history row
/// and (when on) the Supabase CLI's row, sent together.
pub(crate) struct Recorder {
    insert: Statement,
    mirror: Option<Statement>,
    require: Statement,
}

impl Recorder {
    /// Prepares the statements; the history tables must exist.
    pub async fn prepare(client: &impl GenericClient, supabase: bool) -> Result<Recorder, Error> {
        let context = "preparing the history writes";
        let (insert, mirror, require) = tokio::try_join!(
            client.prepare(INSERT_APPLIED),
            async {
                match supabase {
                    true => client.prepare(MIRROR).await.map(Some),
                    false => Ok(None),
                }
            },
            client.prepare(REQUIRE),
        )
        .map_err(Error::db(context))?;
        Ok(Recorder {
            insert,
            mirror,
            require,
        })
    }

    /// Fails unless `version` of `app` is recorded ([`REQUIRE`]).
    pub async fn require(
        &self,
        client: &impl GenericClient,
        app: &str,
        version: i64,
    ) -> Result<(), Error> {
        client
            .execute(&self.require, &[&app, &version])
            .await
            .map_err(Error::db(
                "checking that the migration before this one was recorded",
            ))?;
        Ok(())
    }

    /// Records an applied migration (inside its transaction), pipelining the writes.
    /// `execution_ms` is `None` when the migration ran since its transaction began:
    /// the server measures it then (see [`INSERT_APPLIED`]).
    pub async fn record(
        &self,
        client: &impl GenericClient,
        app: &str,
        m: &Migration,
        execution_ms: Option<i64>,
        applied_by: &str,
        statements: &[&str],
    ) -> Result<(), Error> {
        let (version, name, checksum) = (m.version(), m.name(), m.checksum());
        let checksum = &checksum.0[..];
        let down = down_checksum(m);
        let params: [&(dyn ToSql + Sync); 7] = [
            &app,
            &version,
            &name,
            &checksum,
            &execution_ms,
            &applied_by,
            &down,
        ];
        let insert = client.execute(&self.insert, &params);
        let mirror = async {
            match &self.mirror {
                Some(s) => {
                    client
                        .execute(s, &[&m.version_text(), &m.name(), &statements])
                        .await
                }
                None => Ok(0),
            }
        };
        // In this order on the wire; a write that cannot be encoded sends nothing after it.
        tokio::try_join!(biased; insert, mirror).map_err(Error::db(
            "recording the migration in plover.migrations and supabase_migrations.schema_migrations",
        ))?;
        Ok(())
    }
}

/// Records the start of a no-transaction migration as dirty.
pub(crate) async fn insert_dirty(
    client: &impl GenericClient,
    app: &str,
    m: &Migration,
    applied_by: &str,
    statements_total: i32,
) -> Result<(), Error> {
    client
        .execute(
            INSERT_DIRTY,
            &[
                &app,
                &m.version(),
                &m.name(),
                &&m.checksum().0[..],
                &applied_by,
                &statements_total,
                &down_checksum(m),
            ],
        )
        .await
        .map_err(Error::db(
            "recording the start of a no-transaction migration",
        ))?;
    Ok(())
}

pub(crate) async fn progress(
    client: &impl GenericClient,
    app: &str,
    version: i64,
    done: i32,
) -> Result<(), Error> {
    client
        .execute(PROGRESS, &[&app, &version, &done])
        .await
        .map_err(Error::db(
            "recording progress of a no-transaction migration",
        ))?;
    Ok(())
}

pub(crate) async fn failed(
    client: &impl GenericClient,
    app: &str,
    version: i64,
    error: &str,
) -> Result<(), Error> {
    client
        .execute(FAILED, &[&app, &version, &error])
        .await
        .map_err(Error::db(
            "recording the failure of a no-transaction migration",
        ))?;
    Ok(())
}

pub(crate) async fn finish(
    client: &impl GenericClient,
    app: &str,
    version: i64,
    execution_ms: i64,
) -> Result<(), Error> {
    client
        .execute(FINISH, &[&app, &version, &execution_ms])
        .await
        .map_err(Error::db("recording the end of a no-transaction migration"))?;
    Ok(())
}

/// Marks a (dirty) row as applied with the given checksum; false if there is no row.
pub(crate) async fn mark_applied(
    client: &impl GenericClient,
    app: &str,
    m: &Migration,
) -> Result<bool, Error> {
    let n = client
        .execute(
            MARK_APPLIED,
            &[&app, &m.version(), &&m.checksum().0[..], &down_checksum(m)],
        )
        .await
        .map_err(Error::db("marking a migration as applied"))?;
    Ok(n > 0)
}

/// Deletes a row (the migration counts as not applied); false if there was none.
pub(crate) async fn delete(
    client: &impl GenericClient,
    app: &str,
    version: i64,
) -> Result<bool, Error> {
    let n = client
        .execute(DELETE, &[&app, &version])
        .await
        .map_err(Error::db("deleting a row of plover.migrations"))?;
    Ok(n > 0)
}

/// Writes the Supabase CLI's row for a migration.
pub(crate) async fn mirror(
    client: &impl GenericClient,
    m: &Migration,
    statements: &[&str],
) -> Result<(), Error> {
    client
        .execute(MIRROR, &[&m.version_text(), &m.name(), &statements])
        .await
        .map_err(Error::db(
            "recording the migration in supabase_migrations.schema_migrations",
        ))?;
    Ok(())
}

pub(crate) async fn unmirror(client: &impl GenericClient, version_text: &str) -> Result<(), Error> {
    client
        .execute(UNMIRROR, &[&version_text])
        .await
        .map_err(Error::db(
            "deleting from supabase_migrations.schema_migrations",
        ))?;
    Ok(())
}

/// Deletes every history row of `app` and, with `supabase`, the Supabase CLI's rows of
/// those versions and of every local file (versions the CLI applied and plover never
/// adopted are gone from the database too, so a later run must not adopt them);
/// returns how many of plover's rows went.
#[cfg(feature = "project")]
pub(crate) async fn delete_app(
    client: &impl GenericClient,
    app: &str,
    source: &crate::source::Source,
    supabase: bool,
) -> Result<usize, Error> {
    let context = "deleting the app's history rows";
    let rows = match table_exists(client, "plover.migrations").await? {
        true => client
            .query(DELETE_APP, &[&app])
            .await
            .map_err(Error::db(context))?,
        false => Vec::new(),
    };
    if supabase && table_exists(client, "supabase_migrations.schema_migrations").await? {
        let mut texts = std::collections::BTreeSet::new();
        for row in &rows {
            let version: i64 = row.try_get(0).map_err(Error::db(context))?;
            texts.insert(
                source
                    .get(version)
                    .map(|m| m.version_text().to_owned())
                    .unwrap_or_else(|| version.to_string()),
            );
        }
        texts.extend(
            source
                .migrations()
                .iter()
                .map(|m| m.version_text().to_owned()),
        );
        for text in &texts {
            unmirror(client, text).await?;
        }
    }
    Ok(rows.len())
}

/// Tells PostgREST to reload its schema cache.
pub(crate) async fn notify_pgrst(client: &impl GenericClient) -> Result<(), Error> {
    client
        .batch_execute(NOTIFY_PGRST)
        .await
        .map_err(Error::db("notifying PostgREST (NOTIFY pgrst)"))
}

/// Whether a table exists (`table` as the tool names it, resolved through search_path).
pub(crate) async fn table_exists(client: &impl GenericClient, table: &str) -> Result<bool, Error> {
    let context = "checking for another tool's history table";
    let row = client
        .query_one(TABLE_EXISTS, &[&table])
        .await
        .map_err(Error::db(context))?;
    row.try_get(0).map_err(Error::db(context))
}

/// The versions in the Supabase CLI's table, as the text it stores.
pub(crate) async fn supabase_versions(client: &impl GenericClient) -> Result<Vec<String>, Error> {
    let context = "reading supabase_migrations.schema_migrations";
    let rows = client
        .query(SUPABASE_VERSIONS, &[])
        .await
        .map_err(Error::db(context))?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(Error::db(context)))
        .collect()
}

/// The Supabase CLI's rows (none when its table does not exist), but for versions
/// another app records in `plover.migrations` (`plover_exists`): those rows are that
/// app's mirror, not the CLI's work.
pub(crate) async fn supabase_cli(
    client: &impl GenericClient,
    app: &str,
    plover_exists: bool,
) -> Result<Vec<SupabaseCliRow>, Error> {
    let context = "reading supabase_migrations.schema_migrations";
    let row = client
        .query_one(SUPABASE_CLI_TABLE, &[])
        .await
        .map_err(Error::db(context))?;
    let exists: bool = row.try_get(0).map_err(Error::db(context))?;
    let with_statements: bool = row.try_get(1).map_err(Error::db(context))?;
    if !exists {
        return Ok(Vec::new());
    }
    let read = if with_statements {
        SUPABASE_CLI_ROWS
    } else {
        SUPABASE_CLI_VERSIONS
    };
    let rows = client.query(read, &[]).await.map_err(Error::db(context))?;
    let mut cli = rows
        .iter()
        .map(|r| {
            Ok(SupabaseCliRow {
                version: r.try_get(0).map_err(Error::db(context))?,
                statements: r.try_get(1).map_err(Error::db(context))?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    if plover_exists && !cli.is_empty() {
        let context = "reading the versions of other apps in plover.migrations";
        let others = client
            .query(OTHER_APPS_VERSIONS, &[&app])
            .await
            .map_err(Error::db(context))?
            .iter()
            .map(|r| r.try_get(0).map_err(Error::db(context)))
            .collect::<Result<std::collections::BTreeSet<i64>, Error>>()?;
        cli.retain(|row| supabase_version(&row.version).is_none_or(|v| !others.contains(&v)));
    }
    Ok(cli)
}

/// sqlx's versions, each with its `success` flag.
pub(crate) async fn sqlx_versions(client: &impl GenericClient) -> Result<Vec<(i64, bool)>, Error> {
    let context = "reading _sqlx_migrations";
    let rows = client
        .query(SQLX_VERSIONS, &[])
        .await
        .map_err(Error::db(context))?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0).map_err(Error::db(context))?,
                r.try_get(1).map_err(Error::db(context))?,
            ))
        })
        .collect()
}

/// refinery's versions (int4 or int8 columns alike).
pub(crate) async fn refinery_versions(client: &impl GenericClient) -> Result<Vec<i64>, Error> {
    let context = "reading refinery_schema_history";
    let rows = client
        .query(REFINERY_VERSIONS, &[])
        .await
        .map_err(Error::db(context))?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(Error::db(context)))
        .collect()
}
