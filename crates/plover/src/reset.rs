//! Resetting an app on a shared database: drop what the app's migrations made, forget
//! the app's history, and apply every migration again.
//!
//! Only the app's own schemas are touched. `public`, which every database has and
//! whose owner, grants and default privileges Supabase configures, is emptied and
//! kept; any other app schema is dropped with everything in it (its migrations create
//! it again). Before anything is dropped, objects elsewhere that depend on the app's
//! objects are looked up: in Supabase's managed schemas (a trigger on `auth.users`
//! calling the app's function) they are dropped with the app and reported, since the
//! app's migrations made them; anywhere else (another app's view on this app's table)
//! the reset refuses and names them. The drop and the history delete run in one
//! transaction under the app's migration lock, so a refused or failed reset changes
//! nothing.
//!
//! Architecture invariant: this module never drops a schema that
//! [`is_managed_schema`] names, nor plover's own `plover` schema, nor another app's
//! history rows.

use tokio_postgres::{Client, GenericClient};

use crate::error::Error;
use crate::lock;
use crate::migrator::{Migrator, Report};
use crate::project::is_managed_schema;

/// Objects outside the app's schemas that depend on objects inside them, with the
/// schema each belongs to (for a trigger, rule, policy or default: its table's). `$1`
/// is the app's schemas.
const DEPENDENTS: &str = "
WITH app_ns AS (SELECT oid FROM pg_namespace WHERE nspname = ANY($1::text[])),
app_objects AS (
    SELECT 'pg_class'::regclass::oid AS classid, oid AS objid FROM pg_class
     WHERE relnamespace IN (SELECT oid FROM app_ns)
    UNION ALL
    SELECT 'pg_proc'::regclass::oid, oid FROM pg_proc WHERE pronamespace IN (SELECT oid FROM app_ns)
    UNION ALL
    SELECT 'pg_type'::regclass::oid, oid FROM pg_type WHERE typnamespace IN (SELECT oid FROM app_ns)
),
dependents AS (
    SELECT DISTINCT d.classid, d.objid, d.objsubid, d.refclassid, d.refobjid
      FROM pg_depend d
      JOIN app_objects a ON a.classid = d.refclassid AND a.objid = d.refobjid
     WHERE d.deptype IN ('n', 'a')
),
placed AS (
    SELECT o.type, o.identity, r.identity AS depends_on,
           CASE d.classid
             WHEN 'pg_rewrite'::regclass::oid THEN
               (SELECT c.relnamespace FROM pg_rewrite w JOIN pg_class c ON c.oid = w.ev_class WHERE w.oid = d.objid)
             WHEN 'pg_trigger'::regclass::oid THEN
               (SELECT c.relnamespace FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.oid = d.objid)
             WHEN 'pg_policy'::regclass::oid THEN
               (SELECT c.relnamespace FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE p.oid = d.objid)
             WHEN 'pg_attrdef'::regclass::oid THEN
               (SELECT c.relnamespace FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid WHERE a.oid = d.objid)
             WHEN 'pg_constraint'::regclass::oid THEN
               (SELECT connamespace FROM pg_constraint WHERE oid = d.objid)
             ELSE (SELECT oid FROM pg_namespace WHERE nspname = o.schema)
           END AS ns
      FROM dependents d
      CROSS JOIN LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) o
      CROSS JOIN LATERAL pg_identify_object(d.refclassid, d.refobjid, 0) r
)
SELECT p.type, p.identity, p.depends_on, n.nspname::text
  FROM placed p LEFT JOIN pg_namespace n ON n.oid = p.ns
 WHERE p.ns IS NULL OR p.ns NOT IN (SELECT oid FROM app_ns)
 ORDER BY 4, 2, 3";

/// The DROP statements that empty schema `$1` (kept itself): extensions installed in
/// it, then relations, routines and types, skipping extension members and objects
/// that exist only as part of another (a range's constructors, a table's row type).
const CONTENTS: &str = "
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = $1),
objects AS (
    SELECT 1 AS pass, 'pg_class'::regclass::oid AS classid, c.oid AS objid, NULL::text AS keyword
      FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM ns)
       AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    UNION ALL
    SELECT 2, 'pg_proc'::regclass::oid, p.oid, NULL FROM pg_proc p
     WHERE p.pronamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT 3, 'pg_type'::regclass::oid, t.oid, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END
      FROM pg_type t WHERE t.typnamespace = (SELECT oid FROM ns)
       AND (t.typtype IN ('d', 'e', 'r')
            OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
    UNION ALL
    SELECT 4, 'pg_collation'::regclass::oid, oid, NULL FROM pg_collation
     WHERE collnamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT 4, 'pg_ts_config'::regclass::oid, oid, NULL FROM pg_ts_config
     WHERE cfgnamespace = (SELECT oid FROM ns)
    UNION ALL
    SELECT 4, 'pg_ts_dict'::regclass::oid, oid, NULL FROM pg_ts_dict
     WHERE dictnamespace = (SELECT oid FROM ns)
)
SELECT format('DROP EXTENSION IF EXISTS %I CASCADE', e.extname), 'extension', quote_ident(e.extname)
  FROM pg_extension e WHERE e.extnamespace = (SELECT oid FROM ns)
UNION ALL
(SELECT format('DROP %s IF EXISTS %s CASCADE',
               coalesce(o.keyword, upper(i.type)), i.identity), i.type, i.identity
   FROM objects o
   CROSS JOIN LATERAL pg_identify_object(o.classid, o.objid, 0) i
  WHERE NOT EXISTS (SELECT 1 FROM pg_depend d
                     WHERE d.classid = o.classid AND d.objid = o.objid AND d.deptype IN ('e', 'i'))
  ORDER BY o.pass, i.identity)";

const SCHEMA_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)";
const DROP_SCHEMA: &str = "SELECT format('DROP SCHEMA %I CASCADE', $1::text)";
const SET_LOCK_TIMEOUT: &str = "SELECT set_config('lock_timeout', $1, true)";

/// An object outside the app's schemas that depends on one of the app's objects.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dependent {
    /// What it is, as `pg_identify_object` says: `trigger`, `view column`, ...
    pub kind: String,
    /// Its identity, e.g. `on_signup on auth.users`.
    pub identity: String,
    /// The app's object it depends on.
    pub depends_on: String,
    /// The schema it belongs to (its table's, for a trigger or policy), if any.
    pub schema: Option<String>,
}

impl std::fmt::Display for Dependent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (depends on {})",
            self.kind, self.identity, self.depends_on
        )
    }
}

/// What [`Migrator::reset`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Reset {
    /// Schemas dropped with everything in them.
    pub dropped_schemas: Vec<String>,
    /// Objects dropped from schemas that were kept (`public`), as `kind identity`.
    pub dropped_objects: Vec<String>,
    /// Objects in Supabase's managed schemas dropped with the app's objects (the app's
    /// migrations create them again).
    pub cascaded: Vec<Dependent>,
    /// The app's history rows deleted.
    pub history_rows: usize,
    /// The migrations applied again.
    pub report: Report,
}

impl Migrator {
    /// Drops what this app's migrations made in `schemas` and its history rows, then
    /// applies every migration again, all under the app's migration lock.
    ///
    /// Refuses (changing nothing) when `schemas` is empty or names a Supabase-managed
    /// schema or `plover`, or when an object outside `schemas` and outside Supabase's
    /// managed schemas depends on the app's objects. The drop is one transaction; if
    /// a migration then fails, the error says so and the app's schemas stay as the
    /// migrations before it left them.
    pub async fn reset(&self, client: &mut Client, schemas: &[String]) -> Result<Reset, Error> {
        check_schemas(schemas)?;
        let (reset, _) = lock::with_lock(
            client,
            self.app_name(),
            self.lock_wait_setting(),
            async |client| {
                let tx = client
                    .transaction()
                    .await
                    .map_err(Error::db("starting the reset's transaction"))?;
                let timeout = format!("{}ms", self.lock_timeout_setting().as_millis());
                tx.execute(SET_LOCK_TIMEOUT, &[&timeout])
                    .await
                    .map_err(Error::db("setting lock_timeout for the reset"))?;
                let mut reset = drop_app(&tx, schemas).await?;
                reset.history_rows = crate::history::delete_app(
                    &tx,
                    self.app_name(),
                    self.source(),
                    self.supabase(),
                )
                .await?;
                tx.commit()
                    .await
                    .map_err(Error::db("committing the reset"))?;
                // The session lock is re-entrant: `run` takes it again in this session.
                reset.report = self.run(client).await?;
                Ok(reset)
            },
        )
        .await?;
        Ok(reset)
    }
}

fn check_schemas(schemas: &[String]) -> Result<(), Error> {
    if schemas.is_empty() {
        return Err(Error::ResetRefused {
            reason: "no schema to reset; list the app's schemas in supabase/plover.toml `schemas`"
                .into(),
        });
    }
    if let Some(s) = schemas
        .iter()
        .find(|s| is_managed_schema(s) || s.as_str() == "plover")
    {
        return Err(Error::ResetRefused {
            reason: format!(
                "`{s}` is managed by Supabase or plover, not by the app; remove it from supabase/plover.toml `schemas`"
            ),
        });
    }
    Ok(())
}

/// Checks dependents, then empties `public` and drops every other schema in `schemas`.
async fn drop_app(client: &impl GenericClient, schemas: &[String]) -> Result<Reset, Error> {
    let context = "looking up objects that depend on the app's schemas";
    let rows = client
        .query(DEPENDENTS, &[&schemas])
        .await
        .map_err(Error::db(context))?;
    let mut cascaded = Vec::new();
    let mut foreign = Vec::new();
    for row in rows {
        let dependent = Dependent {
            kind: row.try_get(0).map_err(Error::db(context))?,
            identity: row.try_get(1).map_err(Error::db(context))?,
            depends_on: row.try_get(2).map_err(Error::db(context))?,
            schema: row.try_get(3).map_err(Error::db(context))?,
        };
        match dependent.schema.as_deref() {
            Some(s) if !is_managed_schema(s) => foreign.push(dependent),
            _ => cascaded.push(dependent),
        }
    }
    if !foreign.is_empty() {
        let list: Vec<String> = foreign
            .iter()
            .map(|d| format!("{d} in schema {}", d.schema.as_deref().unwrap_or("(none)")))
            .collect();
        return Err(Error::ResetRefused {
            reason: format!(
                "objects outside the app's schemas ({}) depend on the app's objects, and a reset would drop them:\n  - {}\nadd their schema to supabase/plover.toml `schemas` if it is this app's, or remove the dependency first",
                schemas.join(", "),
                list.join("\n  - ")
            ),
        });
    }
    let mut reset = Reset {
        cascaded,
        ..Reset::default()
    };
    for schema in schemas {
        let context = "reading the app's schemas";
        let exists: bool = lock::first(
            &client
                .query_one(SCHEMA_EXISTS, &[schema])
                .await
                .map_err(Error::db(context))?,
            context,
        )?;
        if !exists {
            continue;
        }
        if schema == "public" {
            let context = "listing the objects in schema public";
            for row in client
                .query(CONTENTS, &[schema])
                .await
                .map_err(Error::db(context))?
            {
                let drop: String = row.try_get(0).map_err(Error::db(context))?;
                let kind: String = row.try_get(1).map_err(Error::db(context))?;
                let identity: String = row.try_get(2).map_err(Error::db(context))?;
                client
                    .batch_execute(&drop)
                    .await
                    .map_err(Error::db("dropping the app's objects"))?;
                reset.dropped_objects.push(format!("{kind} {identity}"));
            }
        } else {
            let context = "quoting a schema name";
            let drop: String = lock::first(
                &client
                    .query_one(DROP_SCHEMA, &[schema])
                    .await
                    .map_err(Error::db(context))?,
                context,
            )?;
            client
                .batch_execute(&drop)
                .await
                .map_err(Error::db("dropping the app's schema"))?;
            reset.dropped_schemas.push(schema.clone());
        }
    }
    Ok(reset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_managed_and_empty_schema_lists() {
        for bad in [
            &[][..],
            &["auth".to_owned()][..],
            &["plover".to_owned()][..],
        ] {
            assert!(
                matches!(check_schemas(bad), Err(Error::ResetRefused { .. })),
                "{bad:?}"
            );
        }
        let err = check_schemas(&["public".into(), "storage".into()]).unwrap_err();
        assert!(err.to_string().contains("`storage` is managed"), "{err}");
        assert!(check_schemas(&["public".into(), "money".into()]).is_ok());
    }
}
