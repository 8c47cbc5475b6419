//! Resetting (and restoring) one app on a database it may share: drop exactly the
//! objects that the app's migrations make, forget the app's history, and apply every
//! migration again (or load a backup in their place).
//!
//! Which objects are the app's is learned, not assumed: the app's migrations are
//! replayed on a scratch database ([`app_objects`]), and the objects the
//! replay added (tables, columns, constraints, indexes, views, functions, types,
//! policies, triggers, schemas, extensions...) are compared by identity with the
//! target's catalog ([`Catalog`]). On the target:
//! - the app's objects that exist are dropped (in Supabase's managed schemas only the
//!   policies, triggers and rules the app attached to Supabase's tables; anything else
//!   the app made there is kept and listed);
//! - anything else in the app's schemas (another app's table in a shared `public`, a
//!   hand-made index on an app table) makes the reset refuse and list it, unless the
//!   user names it (`also_drop`);
//! - a dry run of the drops in a transaction that is rolled back finds what `CASCADE`
//!   would take with them; anything that is neither the app's nor named makes it
//!   refuse too.
//!
//! The real drop re-reads the catalog under the app's migration lock, refuses if it no
//! longer matches the plan, checks again after dropping that nothing else went, and
//! deletes the app's history rows in the same transaction: a refused or failed reset
//! changes nothing.
//!
//! Architecture invariant: this module never drops an object that is not in the plan
//! the caller showed the user, never another app's history rows, and builds every
//! DROP statement on the server (`format('%I')`), never from text.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::{Client, GenericClient, Transaction};

use crate::error::Error;
use crate::lock;
use crate::migrator::{Migrator, Report};
use crate::supabase::is_managed_schema;

/// Every object plover compares across databases, outside `pg_*`, `information_schema`
/// and the history schemas: `type`, `identity` (both as `pg_identify_object` says),
/// schema (a sub-object's is its table's), parent relation (for sub-objects), the pass
/// it is dropped in, the DROP statement, and for policies, triggers and rules the
/// statement that creates them again. Extension members and objects that exist only
/// as parts of others (array types, a constraint's index, partitions' clones) are left
/// out: they come and go with their owner.
const OBJECTS: &str = "
WITH raw AS (
    SELECT 'pg_namespace'::regclass::oid AS classid, n.oid AS objid, 0 AS subid, NULL::oid AS rel,
           n.oid AS ns, 90 AS pass, format('DROP SCHEMA IF EXISTS %I', n.nspname) AS drop,
           NULL::text AS create
      FROM pg_namespace n
    UNION ALL
    SELECT 'pg_extension'::regclass::oid, e.oid, 0, NULL, e.extnamespace, 80,
           format('DROP EXTENSION IF EXISTS %I', e.extname), NULL
      FROM pg_extension e
    UNION ALL
    SELECT 'pg_class'::regclass::oid, c.oid, 0, NULL, c.relnamespace,
           CASE c.relkind WHEN 'v' THEN 30 WHEN 'm' THEN 30 WHEN 'S' THEN 45 ELSE 40 END,
           format('DROP %s IF EXISTS %I.%I CASCADE',
                  CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                 WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                  n.nspname, c.relname), NULL
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    UNION ALL
    SELECT 'pg_class'::regclass::oid, c.oid, 0, i.indrelid, c.relnamespace, 20,
           format('DROP INDEX IF EXISTS %I.%I CASCADE', n.nspname, c.relname),
           pg_get_indexdef(c.oid) || ';'
      FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('i', 'I')
    UNION ALL
    SELECT 'pg_proc'::regclass::oid, p.oid, 0, NULL, p.pronamespace, 50,
           format('DROP %s IF EXISTS %I.%I(%s) CASCADE',
                  CASE p.prokind WHEN 'a' THEN 'AGGREGATE' WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                  n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), NULL
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    UNION ALL
    SELECT 'pg_type'::regclass::oid, t.oid, 0, NULL, t.typnamespace, 60,
           format('DROP %s IF EXISTS %I.%I CASCADE', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                  n.nspname, t.typname), NULL
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE t.typtype IN ('d', 'e', 'r')
        OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
    UNION ALL
    SELECT 'pg_collation'::regclass::oid, o.oid, 0, NULL, o.collnamespace, 70,
           format('DROP COLLATION IF EXISTS %I.%I CASCADE', n.nspname, o.collname), NULL
      FROM pg_collation o JOIN pg_namespace n ON n.oid = o.collnamespace
    UNION ALL
    SELECT 'pg_ts_config'::regclass::oid, o.oid, 0, NULL, o.cfgnamespace, 70,
           format('DROP TEXT SEARCH CONFIGURATION IF EXISTS %I.%I CASCADE', n.nspname, o.cfgname), NULL
      FROM pg_ts_config o JOIN pg_namespace n ON n.oid = o.cfgnamespace
    UNION ALL
    SELECT 'pg_ts_dict'::regclass::oid, o.oid, 0, NULL, o.dictnamespace, 70,
           format('DROP TEXT SEARCH DICTIONARY IF EXISTS %I.%I CASCADE', n.nspname, o.dictname), NULL
      FROM pg_ts_dict o JOIN pg_namespace n ON n.oid = o.dictnamespace
    UNION ALL
    SELECT 'pg_policy'::regclass::oid, p.oid, 0, p.polrelid, c.relnamespace, 10,
           format('DROP POLICY IF EXISTS %I ON %I.%I', p.polname, n.nspname, c.relname),
           format('CREATE POLICY %I ON %I.%I AS %s FOR %s TO %s%s%s;', p.polname, n.nspname, c.relname,
                  CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                  CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                  CASE WHEN p.polroles = '{0}' THEN 'PUBLIC'
                       ELSE (SELECT string_agg(quote_ident(r.rolname), ', ' ORDER BY r.rolname)
                               FROM pg_roles r WHERE r.oid = ANY (p.polroles)) END,
                  coalesce(' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')', ''),
                  coalesce(' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', ''))
      FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    UNION ALL
    SELECT 'pg_trigger'::regclass::oid, t.oid, 0, t.tgrelid, c.relnamespace, 10,
           format('DROP TRIGGER IF EXISTS %I ON %I.%I', t.tgname, n.nspname, c.relname),
           pg_get_triggerdef(t.oid) || ';'
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 'pg_rewrite'::regclass::oid, r.oid, 0, r.ev_class, c.relnamespace, 10,
           format('DROP RULE IF EXISTS %I ON %I.%I', r.rulename, n.nspname, c.relname),
           pg_get_ruledef(r.oid)
      FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE r.rulename <> '_RETURN'
    UNION ALL
    SELECT 'pg_constraint'::regclass::oid, o.oid, 0, o.conrelid, c.relnamespace, 15,
           format('ALTER TABLE %I.%I DROP CONSTRAINT IF EXISTS %I CASCADE', n.nspname, c.relname, o.conname),
           NULL
      FROM pg_constraint o JOIN pg_class c ON c.oid = o.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE o.conislocal AND o.conparentid = 0
    UNION ALL
    SELECT 'pg_class'::regclass::oid, c.oid, a.attnum, c.oid, c.relnamespace, 16,
           format('ALTER TABLE %I.%I DROP COLUMN IF EXISTS %I CASCADE', n.nspname, c.relname, a.attname),
           NULL
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped AND a.attislocal
    UNION ALL
    SELECT 'pg_event_trigger'::regclass::oid, e.oid, 0, NULL, NULL, 10,
           format('DROP EVENT TRIGGER IF EXISTS %I', e.evtname), NULL
      FROM pg_event_trigger e
)
SELECT o.type, o.identity, n.nspname::text, p.identity, r.pass, r.drop, r.create
  FROM raw r
  LEFT JOIN pg_namespace n ON n.oid = r.ns
  CROSS JOIN LATERAL pg_identify_object(r.classid, r.objid, r.subid) o
  LEFT JOIN LATERAL pg_identify_object('pg_class'::regclass, r.rel, 0) p ON r.rel IS NOT NULL
 WHERE (n.nspname IS NULL
        OR (n.nspname !~ '^pg_' AND n.nspname NOT IN ('information_schema', 'plover', 'supabase_migrations')))
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = r.classid AND d.objid = r.objid AND d.objsubid = 0
                      AND d.deptype IN ('e', 'i', 'P', 'S'))
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE r.rel IS NOT NULL AND d.classid = 'pg_class'::regclass AND d.objid = r.rel
                      AND d.objsubid = 0 AND d.deptype = 'e')";

/// Qualifies every name that `pg_get_expr` and friends print, for the current
/// transaction, so the CREATE statements read back work under any search_path.
const QUALIFY_NAMES: &str = "SELECT set_config('search_path', '', true)";
const SET_LOCK_TIMEOUT: &str = "SELECT set_config('lock_timeout', $1, true)";

/// The app's history rows as INSERT statements (built on the server, `%L`-quoted).
const HISTORY_INSERTS: &str = "
SELECT format('INSERT INTO plover.migrations (app, version, name, checksum, applied_at, execution_ms, applied_by, state, statements_done, statements_total, last_error) VALUES (%L, %s, %L, %L, %L, %s, %L, %L, %s, %s, %L);',
              app, version, name, checksum, applied_at, execution_ms, applied_by, state,
              statements_done, statements_total, last_error), version
  FROM plover.migrations WHERE app = $1 ORDER BY version";

/// The Supabase CLI's rows of the versions `$1`, as upserts.
const MIRROR_INSERTS: &str = "
SELECT format('INSERT INTO supabase_migrations.schema_migrations (version, name, statements) VALUES (%L, %L, %L) ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, statements = EXCLUDED.statements;',
              version, name, statements)
  FROM supabase_migrations.schema_migrations WHERE version = ANY ($1::text[]) ORDER BY version";

/// Kinds that live on a table rather than in a schema of their own.
const ATTACHED: &[&str] = &["policy", "trigger", "rule"];

/// One object of a database's catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Object {
    /// What it is, as `pg_identify_object` says: `table`, `table column`, `policy`...
    pub kind: String,
    /// Its identity, e.g. `public.notes`, `p_owner on public.notes`, `public.f(integer)`.
    pub identity: String,
    /// The schema it is in (a column's, index's or policy's is its table's).
    pub schema: Option<String>,
    /// The relation it belongs to, for columns, constraints, indexes, policies,
    /// triggers and rules.
    pub parent: Option<String>,
    pass: i32,
    drop: String,
    create: Option<String>,
}

impl Object {
    fn key(&self) -> (String, String) {
        (self.kind.clone(), self.identity.clone())
    }
}

impl std::fmt::Display for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.identity)?;
        match &self.parent {
            Some(parent) if !self.identity.contains(" on ") && self.kind != "table column" => {
                write!(f, " on {parent}")
            }
            _ => Ok(()),
        }
    }
}

/// The objects of one database, keyed by (kind, identity).
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    objects: BTreeMap<(String, String), Object>,
}

impl Catalog {
    /// Reads the catalog (one query).
    pub async fn read(client: &impl GenericClient) -> Result<Catalog, Error> {
        let context = "reading the database's catalog";
        let rows = client
            .query(OBJECTS, &[])
            .await
            .map_err(Error::db(context))?;
        let mut objects = BTreeMap::new();
        for row in rows {
            let object = Object {
                kind: row.try_get(0).map_err(Error::db(context))?,
                identity: row.try_get(1).map_err(Error::db(context))?,
                schema: row.try_get(2).map_err(Error::db(context))?,
                parent: row.try_get(3).map_err(Error::db(context))?,
                pass: row.try_get(4).map_err(Error::db(context))?,
                drop: row.try_get(5).map_err(Error::db(context))?,
                create: row.try_get(6).map_err(Error::db(context))?,
            };
            objects.insert(object.key(), object);
        }
        Ok(Catalog { objects })
    }

    /// How many objects it holds.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    fn contains(&self, key: &(String, String)) -> bool {
        self.objects.contains_key(key)
    }
}

/// What an app's migrations make: the objects a replay of them added to a database.
#[derive(Clone, Debug, Default)]
pub struct AppObjects {
    keys: BTreeSet<(String, String)>,
}

impl AppObjects {
    /// The objects in `after` that are not in `before`.
    pub fn between(before: &Catalog, after: &Catalog) -> AppObjects {
        AppObjects {
            keys: after
                .objects
                .keys()
                .filter(|k| !before.contains(k))
                .cloned()
                .collect(),
        }
    }

    /// How many objects the migrations make.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the migrations make nothing.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn contains(&self, o: &Object) -> bool {
        self.keys.contains(&(o.kind.clone(), o.identity.clone()))
    }
}

/// What a reset (or restore) will drop, decided before anything changes.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ResetPlan {
    /// The schemas the app owns (plover.toml `schemas`).
    pub schemas: Vec<String>,
    /// What will be dropped, in order (an object's columns, indexes, constraints,
    /// policies and triggers go with it and are not listed).
    pub drop: Vec<Object>,
    /// Objects not made by the app's migrations that were named to go too.
    pub named: Vec<Object>,
    /// The app's objects in Supabase's managed schemas that are kept (only policies,
    /// triggers and rules are dropped there).
    pub kept: Vec<Object>,
    /// Objects in the app's schemas that the app's migrations do not make: another
    /// app's or hand-made. The reset refuses while any is left unnamed.
    pub unowned: Vec<Object>,
    /// Objects that dropping would take with it (CASCADE) and that are neither the
    /// app's nor named: found by a dry run that was rolled back. The reset refuses
    /// while any is left.
    pub casualties: Vec<Object>,
    /// Names given to `also_drop` that matched nothing the app does not own.
    pub unmatched: Vec<String>,
    app: AppObjects,
    also_drop: Vec<String>,
}

impl ResetPlan {
    /// Why the reset cannot go ahead as planned, if it cannot.
    pub fn refusal(&self) -> Option<String> {
        let mut why = Vec::new();
        if !self.unmatched.is_empty() {
            why.push(format!(
                "--also-drop {} matches no object outside the app's migrations",
                self.unmatched.join(", ")
            ));
        }
        if !self.unowned.is_empty() {
            why.push(format!(
                "the app's schemas ({}) hold objects that its migrations do not make (another app's, or made by hand), and a reset would drop them:\n{}\nname each one to drop it too (--also-drop IDENTITY), or move it out of the app's schemas",
                self.schemas.join(", "),
                bullets(&self.unowned)
            ));
        }
        if !self.casualties.is_empty() {
            why.push(format!(
                "objects that are not the app's depend on the app's objects, and dropping those would take them too:\n{}\nremove the dependency first, or name each one to drop it too (--also-drop IDENTITY)",
                bullets(&self.casualties)
            ));
        }
        (!why.is_empty()).then(|| why.join("\n"))
    }

    /// The app's policies and triggers on tables of Supabase's managed schemas (which
    /// a backup of the app's schemas does not hold), as CREATE statements.
    pub fn attached_in_managed_schemas(&self) -> Vec<&str> {
        self.drop
            .iter()
            .filter(|o| o.schema.as_deref().is_some_and(is_managed_schema))
            .filter_map(|o| o.create.as_deref())
            .collect()
    }
}

fn bullets(objects: &[Object]) -> String {
    objects
        .iter()
        .map(|o| format!("  - {o}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sorts the target's objects into the plan (pure: no database).
fn classify(
    target: &Catalog,
    app: &AppObjects,
    schemas: &[String],
    also_drop: &[String],
) -> ResetPlan {
    // Schemas the migrations create count as the app's too.
    let mut app_schemas: BTreeSet<&str> = schemas.iter().map(String::as_str).collect();
    for (kind, identity) in &app.keys {
        if kind == "schema" && !is_managed_schema(unquote(identity)) {
            app_schemas.insert(unquote(identity));
        }
    }
    let named = |o: &Object| {
        also_drop
            .iter()
            .any(|n| *n == o.identity || *n == format!("{} {}", o.kind, o.identity))
    };
    let mut plan = ResetPlan {
        schemas: schemas.to_vec(),
        app: app.clone(),
        also_drop: also_drop.to_vec(),
        ..ResetPlan::default()
    };
    let mut dropped_parents: BTreeSet<&str> = BTreeSet::new();
    let mut unowned_parents: BTreeSet<&str> = BTreeSet::new();
    let mut matched: BTreeSet<&str> = BTreeSet::new();
    // Relations first, so that their parts can be placed under them.
    let mut objects: Vec<&Object> = target.objects.values().collect();
    objects.sort_by_key(|o| (o.parent.is_some(), o.pass, o.identity.clone()));
    for o in objects {
        let in_managed = o.schema.as_deref().is_some_and(is_managed_schema);
        if app.contains(o) {
            if in_managed && !ATTACHED.contains(&o.kind.as_str()) {
                plan.kept.push(o.clone());
                continue;
            }
            match &o.parent {
                Some(p) if dropped_parents.contains(p.as_str()) => {}
                _ => {
                    if o.parent.is_none() {
                        dropped_parents.insert(&o.identity);
                    }
                    plan.drop.push(o.clone());
                }
            }
            continue;
        }
        let in_app_schema = o.schema.as_deref().is_some_and(|s| app_schemas.contains(s));
        if !in_app_schema || o.kind == "schema" {
            continue;
        }
        if let Some(p) = &o.parent
            && unowned_parents.contains(p.as_str())
        {
            continue;
        }
        if named(o) {
            matched.extend(
                also_drop
                    .iter()
                    .map(String::as_str)
                    .filter(|n| *n == o.identity || *n == format!("{} {}", o.kind, o.identity)),
            );
            if o.parent.is_none() {
                dropped_parents.insert(&o.identity);
                unowned_parents.insert(&o.identity);
            }
            plan.named.push(o.clone());
            continue;
        }
        if o.parent.is_none() {
            unowned_parents.insert(&o.identity);
        }
        plan.unowned.push(o.clone());
    }
    plan.unmatched = also_drop
        .iter()
        .filter(|n| !matched.contains(n.as_str()))
        .cloned()
        .collect();
    plan.drop.sort_by_key(|o| (o.pass, o.identity.clone()));
    plan
}

/// `"My Schema"` → `My Schema` (pg_identify_object quotes identities that need it).
fn unquote(identity: &str) -> &str {
    identity
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(identity)
}

/// What [`reset`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Reset {
    /// What was dropped, as `kind identity`, in order.
    pub dropped: Vec<String>,
    /// The app's history rows deleted.
    pub history_rows: usize,
    /// The migrations applied again.
    pub report: Report,
}

/// What [`restore`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Restored {
    /// What was dropped before loading, as `kind identity`.
    pub dropped: Vec<String>,
    /// The app's history rows deleted before loading.
    pub history_rows: usize,
    /// Statements of the backup run.
    pub statements: usize,
    /// Foreign keys to tables outside the backup whose rows are missing here: added
    /// `NOT VALID` (`ALTER TABLE … VALIDATE CONSTRAINT` once the rows are there).
    pub not_valid: Vec<String>,
}

/// The objects this app's migrations make: replays them on `scratch` (an empty
/// database with the same baseline as the target, e.g. the Supabase shim) and
/// compares its catalog before and after. `scratch` is left migrated.
pub async fn app_objects(migrator: &Migrator, scratch: &mut Client) -> Result<AppObjects, Error> {
    let before = Catalog::read(&*scratch).await?;
    migrator.run(scratch).await?;
    let after = Catalog::read(&*scratch).await?;
    Ok(AppObjects::between(&before, &after))
}

/// Decides what a reset of this app on `client` drops, changing nothing: the
/// target's catalog against `app` (see [`app_objects`]), then a dry run
/// of the drops in a transaction that is rolled back, to find what `CASCADE` would
/// take with them. `also_drop` names objects the app does not own that may go too
/// (`public.notes` or `table public.notes`). Check [`ResetPlan::refusal`].
pub async fn plan_reset(
    migrator: &Migrator,
    client: &mut Client,
    app: &AppObjects,
    schemas: &[String],
    also_drop: &[String],
) -> Result<ResetPlan, Error> {
    check_schemas(schemas)?;
    let tx = client
        .transaction()
        .await
        .map_err(Error::db("starting the reset's dry run"))?;
    set_lock_timeout(migrator, &tx).await?;
    let target = Catalog::read(&tx).await?;
    let mut plan = classify(&target, app, schemas, also_drop);
    if plan.unowned.is_empty() && plan.unmatched.is_empty() {
        plan.casualties = drop_and_check(&tx, &plan, &target).await?;
    }
    tx.rollback()
        .await
        .map_err(Error::db("rolling back the reset's dry run"))?;
    Ok(plan)
}

/// Drops what `plan` lists and the app's history rows, then applies every
/// migration again, all under the app's migration lock.
///
/// Refuses, changing nothing, when the plan has a [`refusal`](ResetPlan::refusal),
/// when the database no longer matches the plan, or when the drop took anything
/// the plan did not list. The drop is one transaction; if a migration then fails,
/// the error says so and the app's schemas stay as the migrations before it left
/// them.
pub async fn reset(
    migrator: &Migrator,
    client: &mut Client,
    plan: &ResetPlan,
) -> Result<Reset, Error> {
    refuse_unless_clean(plan)?;
    let (reset, _) = lock::with_lock_watched(
        client,
        migrator.app_name(),
        migrator.lock_wait_setting(),
        migrator.on_event_setting(),
        async |client| {
            let tx = client
                .transaction()
                .await
                .map_err(Error::db("starting the reset's transaction"))?;
            let (dropped, history_rows) = drop_planned(migrator, &tx, plan).await?;
            tx.commit()
                .await
                .map_err(Error::db("committing the reset"))?;
            // The session lock is re-entrant: `run` takes it again in this session.
            let report = migrator.run(client).await?;
            Ok(Reset {
                dropped,
                history_rows,
                report,
            })
        },
    )
    .await?;
    Ok(reset)
}

/// Puts a backup in the place of the app: drops what `plan` lists and the app's
/// history rows (as [`reset`] does), then runs `script` (a backup that
/// `db reset` wrote: pg_dump's plain SQL plus the app's history), all in one
/// transaction under the app's migration lock. `prelude` runs first when schema
/// `auth` is missing (the Supabase shim, for a fresh database). A foreign key to a
/// table outside the backup is added `NOT VALID` and validated at the end; when
/// rows it references are missing here it stays `NOT VALID` and is reported.
pub async fn restore(
    migrator: &Migrator,
    client: &mut Client,
    plan: &ResetPlan,
    script: &str,
    prelude: Option<&str>,
) -> Result<Restored, Error> {
    refuse_unless_clean(plan)?;
    let statements = backup_statements(script)?;
    let (restored, _) = lock::with_lock_watched(
        client,
        migrator.app_name(),
        migrator.lock_wait_setting(),
        migrator.on_event_setting(),
        async |client| {
            let tx = client
                .transaction()
                .await
                .map_err(Error::db("starting the restore's transaction"))?;
            let (dropped, history_rows) = drop_planned(migrator, &tx, plan).await?;
            if let Some(prelude) = prelude {
                let has_auth: bool = lock::first(
                    &tx.query_one("SELECT to_regnamespace('auth') IS NOT NULL", &[])
                        .await
                        .map_err(Error::db("looking for schema auth"))?,
                    "looking for schema auth",
                )?;
                if !has_auth {
                    tx.batch_execute(prelude)
                        .await
                        .map_err(Error::db("preparing the database for the backup"))?;
                }
            }
            let mut deferred = Vec::new();
            for s in &statements {
                let sql = match &s.foreign_key {
                    Some(fk) => {
                        deferred.push(fk.clone());
                        format!("{} NOT VALID;", s.sql.trim_end().trim_end_matches(';'))
                    }
                    None => s.sql.clone(),
                };
                tx.batch_execute(&sql)
                    .await
                    .map_err(|e| Error::RestoreFailed {
                        line: s.line,
                        message: crate::error::describe(&e),
                    })?;
            }
            // pg_dump's header set the search_path to ''; names are qualified below.
            let mut not_valid = Vec::new();
            for (table, constraint) in deferred {
                tx.batch_execute("SAVEPOINT plover_validate")
                    .await
                    .map_err(Error::db("validating a foreign key"))?;
                let validate = validate_sql(&tx, &table, &constraint).await?;
                match tx.batch_execute(&validate).await {
                    Ok(()) => tx.batch_execute("RELEASE SAVEPOINT plover_validate").await,
                    Err(_) => {
                        not_valid.push(format!("{constraint} on {table}"));
                        tx.batch_execute("ROLLBACK TO SAVEPOINT plover_validate")
                            .await
                    }
                }
                .map_err(Error::db("validating a foreign key"))?;
            }
            tx.commit()
                .await
                .map_err(Error::db("committing the restore"))?;
            crate::history::notify_pgrst(&*client).await?;
            Ok(Restored {
                dropped,
                history_rows,
                statements: statements.len(),
                not_valid,
            })
        },
    )
    .await?;
    Ok(restored)
}

/// The app's history rows (and their Supabase CLI rows) as SQL that recreates them
/// in any database: the history tables' DDL, then one INSERT per row.
pub async fn history_backup(
    migrator: &Migrator,
    client: &impl GenericClient,
) -> Result<String, Error> {
    let context = "reading the app's history for the backup";
    let mut out = String::new();
    if !crate::history::table_exists(client, "plover.migrations").await? {
        return Ok(out);
    }
    out.push_str(crate::history::BOOTSTRAP.trim());
    out.push('\n');
    let mut versions = Vec::new();
    for row in client
        .query(HISTORY_INSERTS, &[&migrator.app_name()])
        .await
        .map_err(Error::db(context))?
    {
        let insert: String = row.try_get(0).map_err(Error::db(context))?;
        let version: i64 = row.try_get(1).map_err(Error::db(context))?;
        out.push_str(&insert);
        out.push('\n');
        versions.push(
            migrator
                .source()
                .get(version)
                .map_or_else(|| version.to_string(), |m| m.version_text().to_owned()),
        );
    }
    if migrator.supabase()
        && crate::history::table_exists(client, "supabase_migrations.schema_migrations").await?
    {
        out.push_str(crate::history::BOOTSTRAP_SUPABASE.trim());
        out.push('\n');
        for row in client
            .query(MIRROR_INSERTS, &[&versions])
            .await
            .map_err(Error::db(context))?
        {
            let insert: String = row.try_get(0).map_err(Error::db(context))?;
            out.push_str(&insert);
            out.push('\n');
        }
    }
    Ok(out)
}

/// lock_timeout, and qualified names in the CREATE statements read back.
async fn set_lock_timeout(migrator: &Migrator, tx: &Transaction<'_>) -> Result<(), Error> {
    tx.execute(QUALIFY_NAMES, &[])
        .await
        .map_err(Error::db("setting search_path for the reset"))?;
    let timeout = format!("{}ms", migrator.lock_timeout_setting().as_millis());
    tx.execute(SET_LOCK_TIMEOUT, &[&timeout])
        .await
        .map_err(Error::db("setting lock_timeout for the reset"))?;
    Ok(())
}

/// Inside the caller's transaction: re-reads the catalog, refuses if it no longer
/// matches `plan`, drops, checks nothing else went, deletes the app's history rows.
async fn drop_planned(
    migrator: &Migrator,
    tx: &Transaction<'_>,
    plan: &ResetPlan,
) -> Result<(Vec<String>, usize), Error> {
    set_lock_timeout(migrator, tx).await?;
    let target = Catalog::read(tx).await?;
    let now = classify(&target, &plan.app, &plan.schemas, &plan.also_drop);
    let listed = |p: &ResetPlan| -> Vec<String> {
        p.drop
            .iter()
            .chain(&p.named)
            .map(ToString::to_string)
            .collect()
    };
    if let Some(reason) = now.refusal() {
        return Err(Error::ResetRefused { reason });
    }
    if listed(&now) != listed(plan) {
        return Err(Error::ResetRefused {
            reason: "the database changed since the reset was planned; run the command again to see the new plan".into(),
        });
    }
    let casualties = drop_and_check(tx, &now, &target).await?;
    if !casualties.is_empty() {
        return Err(Error::ResetRefused {
            reason: format!(
                "dropping the app's objects would also drop objects that are not the app's:\n{}",
                bullets(&casualties)
            ),
        });
    }
    let history_rows = crate::history::delete_app(
        tx,
        migrator.app_name(),
        migrator.source(),
        migrator.supabase(),
    )
    .await?;
    Ok((listed(&now), history_rows))
}

fn refuse_unless_clean(plan: &ResetPlan) -> Result<(), Error> {
    match plan.refusal() {
        Some(reason) => Err(Error::ResetRefused { reason }),
        None => Ok(()),
    }
}

/// Runs the plan's drops in `tx` and returns what went that was neither the app's,
/// nor named, nor part of a named object.
async fn drop_and_check(
    tx: &Transaction<'_>,
    plan: &ResetPlan,
    before: &Catalog,
) -> Result<Vec<Object>, Error> {
    let mut drops: Vec<&Object> = plan.drop.iter().chain(&plan.named).collect();
    drops.sort_by_key(|o| o.pass);
    for o in &drops {
        tx.batch_execute(&o.drop)
            .await
            .map_err(|e| Error::ResetRefused {
                reason: format!(
                    "dropping {o} failed: {}; nothing was dropped",
                    crate::error::describe(&e)
                ),
            })?;
    }
    let after = Catalog::read(tx).await?;
    let named: BTreeSet<&str> = plan
        .named
        .iter()
        .filter(|o| o.parent.is_none())
        .map(|o| o.identity.as_str())
        .collect();
    Ok(before
        .objects
        .values()
        .filter(|o| !after.contains(&o.key()))
        .filter(|o| !plan.app.contains(o))
        .filter(|o| !plan.named.iter().any(|n| n.key() == o.key()))
        .filter(|o| !o.parent.as_deref().is_some_and(|p| named.contains(p)))
        .cloned()
        .collect())
}

/// One statement of a backup, with a foreign key to a table outside it marked.
#[derive(Debug)]
struct BackupStatement {
    sql: String,
    line: usize,
    /// (table, constraint) of an `ADD CONSTRAINT … FOREIGN KEY … REFERENCES` to a
    /// schema the backup does not create.
    foreign_key: Option<(String, String)>,
}

/// The backup's statements, without pg_dump's `\restrict` lines (psql meta-commands
/// that only psql understands); a foreign key to a schema the backup does not create
/// is marked to be added NOT VALID.
fn backup_statements(script: &str) -> Result<Vec<BackupStatement>, Error> {
    let cleaned: String = script
        .split_inclusive('\n')
        .map(|line| {
            if line.starts_with("\\restrict ") || line.starts_with("\\unrestrict ") {
                "\n"
            } else {
                line
            }
        })
        .collect();
    if let Some((i, _)) = cleaned
        .lines()
        .enumerate()
        .find(|(_, l)| l.starts_with('\\'))
    {
        return Err(Error::RestoreFailed {
            line: i + 1,
            message: "psql meta-commands are not supported in a backup; only pg_dump's \\restrict lines are".into(),
        });
    }
    let statements = crate::split::split(&cleaned).map_err(|e| Error::RestoreFailed {
        line: match e {
            crate::split::SplitError::Unterminated { line, .. } => line,
        },
        message: e.to_string(),
    })?;
    let created: BTreeSet<String> = statements
        .iter()
        .filter_map(|s| {
            let rest = s.sql.strip_prefix("CREATE SCHEMA ")?;
            let rest = rest.strip_prefix("IF NOT EXISTS ").unwrap_or(rest);
            Some(rest.trim_end_matches(';').trim().to_owned())
        })
        .collect();
    Ok(statements
        .iter()
        .map(|s| BackupStatement {
            sql: s.sql.to_owned(),
            line: s.line,
            foreign_key: outside_foreign_key(s.sql, &created),
        })
        .collect())
}

/// For pg_dump's `ALTER TABLE ONLY "s"."t" ADD CONSTRAINT "c" FOREIGN KEY (…)
/// REFERENCES "o"."u"(…)`, (`"s"."t"`, `"c"`) when schema `"o"` is not created by the
/// backup.
fn outside_foreign_key(sql: &str, created: &BTreeSet<String>) -> Option<(String, String)> {
    let rest = sql.strip_prefix("ALTER TABLE ONLY ")?;
    let (table, rest) = rest.split_once(char::is_whitespace)?;
    let rest = rest.trim_start().strip_prefix("ADD CONSTRAINT ")?;
    let (constraint, rest) = rest.split_once(" FOREIGN KEY ")?;
    let (_, referenced) = rest.split_once(" REFERENCES ")?;
    let schema = referenced.split('.').next()?.trim();
    if created.contains(schema) || rest.contains(" NOT VALID") {
        return None;
    }
    Some((table.to_owned(), constraint.trim().to_owned()))
}

/// `ALTER TABLE <table> VALIDATE CONSTRAINT <constraint>` with both taken from the
/// backup's own (quoted) text and re-quoted on the server.
async fn validate_sql(
    tx: &Transaction<'_>,
    table: &str,
    constraint: &str,
) -> Result<String, Error> {
    let context = "quoting a foreign key's names";
    let row = tx
        .query_one(
            "SELECT format('ALTER TABLE %s VALIDATE CONSTRAINT %I', $1::text::regclass, $2::text)",
            &[&table, &unquote(constraint).replace("\"\"", "\"")],
        )
        .await
        .map_err(Error::db(context))?;
    lock::first(&row, context)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, identity: &str, schema: &str, parent: Option<&str>) -> Object {
        Object {
            kind: kind.into(),
            identity: identity.into(),
            schema: Some(schema.into()),
            parent: parent.map(Into::into),
            pass: if parent.is_some() { 10 } else { 40 },
            drop: format!("DROP {identity}"),
            create: None,
        }
    }

    fn catalog(objects: &[Object]) -> Catalog {
        Catalog {
            objects: objects.iter().map(|o| (o.key(), o.clone())).collect(),
        }
    }

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

    #[test]
    fn only_the_apps_objects_are_dropped_and_the_rest_is_listed() {
        let budgets = object("table", "public.budgets", "public", None);
        let budgets_id = object(
            "table column",
            "public.budgets.id",
            "public",
            Some("public.budgets"),
        );
        let policy = object(
            "policy",
            "own on public.budgets",
            "public",
            Some("public.budgets"),
        );
        let hand_index = object(
            "index",
            "public.budgets_by_hand",
            "public",
            Some("public.budgets"),
        );
        let notes = object("table", "public.notes", "public", None);
        let notes_id = object(
            "table column",
            "public.notes.id",
            "public",
            Some("public.notes"),
        );
        let on_signup = object(
            "trigger",
            "on_signup on auth.users",
            "auth",
            Some("auth.users"),
        );
        let auth_fn = object("function", "auth.helper()", "auth", None);
        let users = object("table", "auth.users", "auth", None);
        let target = catalog(&[
            budgets.clone(),
            budgets_id.clone(),
            policy.clone(),
            hand_index.clone(),
            notes.clone(),
            notes_id,
            on_signup.clone(),
            auth_fn.clone(),
            users,
        ]);
        let app = AppObjects::between(
            &catalog(&[]),
            &catalog(&[
                budgets.clone(),
                budgets_id,
                policy,
                on_signup.clone(),
                auth_fn.clone(),
            ]),
        );
        let public = ["public".to_owned()];

        let plan = classify(&target, &app, &public, &[]);
        let shown = |v: &[Object]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            shown(&plan.drop),
            ["trigger on_signup on auth.users", "table public.budgets"]
        );
        assert_eq!(shown(&plan.kept), ["function auth.helper()"]);
        assert_eq!(
            shown(&plan.unowned),
            [
                "table public.notes",
                "index public.budgets_by_hand on public.budgets"
            ]
        );
        let refusal = plan.refusal().unwrap();
        assert!(refusal.contains("  - table public.notes"), "{refusal}");

        // Named, they go too; a name that matches nothing is refused.
        let plan = classify(
            &target,
            &app,
            &public,
            &["public.notes".into(), "index public.budgets_by_hand".into()],
        );
        assert_eq!(plan.refusal(), None);
        assert_eq!(
            shown(&plan.named),
            [
                "table public.notes",
                "index public.budgets_by_hand on public.budgets"
            ]
        );
        let plan = classify(&target, &app, &public, &["public.nothing".into()]);
        assert!(
            plan.refusal()
                .unwrap()
                .contains("--also-drop public.nothing matches no object")
        );
    }

    #[test]
    fn backups_run_without_meta_commands_and_defer_outside_foreign_keys() {
        let script = "\\restrict abc\nCREATE SCHEMA IF NOT EXISTS \"public\";\nCREATE SCHEMA \"money\";\n\
ALTER TABLE ONLY \"public\".\"t\"\n    ADD CONSTRAINT \"t_u_fkey\" FOREIGN KEY (\"u\") REFERENCES \"auth\".\"users\"(\"id\");\n\
ALTER TABLE ONLY \"money\".\"x\"\n    ADD CONSTRAINT \"x_t_fkey\" FOREIGN KEY (\"t\") REFERENCES \"public\".\"t\"(\"id\");\n\\unrestrict abc\n";
        let statements = backup_statements(script).unwrap();
        assert_eq!(statements.len(), 4);
        assert_eq!(
            statements[2].foreign_key,
            Some(("\"public\".\"t\"".into(), "\"t_u_fkey\"".into()))
        );
        assert_eq!(statements[2].line, 4);
        assert_eq!(statements[3].foreign_key, None);
        let err = backup_statements("SELECT 1;\n\\i other.sql\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
