//! Reads the [`Catalog`] of a database's app schemas: one catalog query per kind of
//! object (never one per object), all sent at once on one connection, so the whole
//! read costs about one network turn. They run in one read-only snapshot with an
//! empty `search_path`, so that every expression, type and name the server renders
//! is schema-qualified (as pg_dump reads them): the model does not depend on the
//! caller's search path, and the DDL made from it runs under any.
//!
//! Must not: write anything; read Supabase's or the system's schemas as app objects
//! (only the schemas asked for, and extensions by name); include what an extension
//! owns.

use std::collections::BTreeMap;

use tokio_postgres::{Client, Row};

use super::model::*;
use crate::Error;

/// Separates the fields of a value packed into one text (role names, privileges):
/// the unit separator, which no identifier in practice holds.
const SEP: char = '\u{1f}';

/// `ARRAY[grantee SEP privilege SEP grantable]` of the ACL `acl` (the object kind's
/// default when NULL), less the owner's own privileges.
fn grants(acl: &str, kind: char, owner: &str) -> String {
    format!(
        "ARRAY(SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END \
         || E'\\x1f' || x.privilege_type || E'\\x1f' || x.is_grantable::text \
         FROM aclexplode(coalesce({acl}, acldefault('{kind}', {owner}))) x \
         WHERE x.grantee <> {owner} ORDER BY 1)"
    )
}

/// No row of `pg_depend` ties the object (`oid` of `class`) to an extension.
fn not_extension_member(class: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{class}'::regclass \
         AND e.objid = {oid} AND e.deptype = 'e')"
    )
}

fn schemas_sql() -> String {
    format!(
        "SELECT n.nspname, obj_description(n.oid, 'pg_namespace'), {} \
         FROM pg_namespace n WHERE n.nspname = ANY($1)",
        grants("n.nspacl", 'n', "n.nspowner")
    )
}

const EXTENSIONS: &str = "SELECT e.extname, n.nspname, e.extversion \
     FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace";

fn types_sql() -> String {
    format!(
        "SELECT n.nspname, t.typname, t.typtype::text, obj_description(t.oid, 'pg_type'), {grants}, \
           ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder), \
           CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END, \
           t.typnotnull, t.typdefault, \
           CASE WHEN t.typtype = 'd' AND t.typcollation <> 0 \
                 AND t.typcollation <> (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype) \
             THEN (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) \
                   FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace \
                   WHERE co.oid = t.typcollation) END, \
           ARRAY(SELECT c.conname || E'\\x1f' || pg_get_constraintdef(c.oid) FROM pg_constraint c \
                 WHERE c.contypid = t.oid ORDER BY c.conname), \
           ARRAY(SELECT a.attname || E'\\x1f' || format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
                 WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), \
           CASE WHEN t.typtype = 'r' THEN format_type(r.rngsubtype, NULL) END, \
           ARRAY_REMOVE(ARRAY[ \
             CASE WHEN r.rngsubopc <> 0 AND NOT (SELECT oc.opcdefault FROM pg_opclass oc WHERE oc.oid = r.rngsubopc) \
               THEN 'SUBTYPE_OPCLASS = ' || (SELECT quote_ident(ocn.nspname) || '.' || quote_ident(oc.opcname) \
                 FROM pg_opclass oc JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace WHERE oc.oid = r.rngsubopc) END, \
             CASE WHEN r.rngcanonical <> 0 THEN 'CANONICAL = ' || r.rngcanonical::regproc::text END, \
             CASE WHEN r.rngsubdiff <> 0 THEN 'SUBTYPE_DIFF = ' || r.rngsubdiff::regproc::text END \
           ], NULL) \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         LEFT JOIN pg_range r ON r.rngtypid = t.oid \
         WHERE n.nspname = ANY($1) AND {member} \
           AND (t.typtype IN ('e', 'd', 'r') \
                OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))",
        grants = grants("t.typacl", 'T', "t.typowner"),
        member = not_extension_member("pg_type", "t.oid"),
    )
}

/// Sequences, with the column that owns them (`OWNED BY`, an `a` dependency) or that
/// they serve as its identity (an `i` dependency).
fn sequences_sql() -> String {
    format!(
        "SELECT n.nspname, c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, \
           s.seqmin, s.seqmax, s.seqcache, s.seqcycle, \
           tn.nspname, tc.relname, a.attname, \
           obj_description(c.oid, 'pg_class'), {grants}, coalesce(d.deptype = 'i', false) \
         FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid \
           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0 \
         LEFT JOIN pg_class tc ON tc.oid = d.refobjid \
         LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace \
         LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
         WHERE n.nspname = ANY($1) AND {member}",
        grants = grants("c.relacl", 's', "c.relowner"),
        member = not_extension_member("pg_class", "c.oid"),
    )
}

/// Tables (`r`, `p`), views (`v`) and materialized views (`m`).
fn relations_sql() -> String {
    format!(
        "SELECT n.nspname, c.relname, c.relkind::text, c.relpersistence::text, \
           CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END, \
           (SELECT pn.nspname FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent \
              JOIN pg_namespace pn ON pn.oid = p.relnamespace WHERE i.inhrelid = c.oid AND c.relispartition), \
           (SELECT p.relname FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent \
              WHERE i.inhrelid = c.oid AND c.relispartition), \
           CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END, \
           c.relrowsecurity, c.relforcerowsecurity, \
           ARRAY(SELECT o FROM unnest(coalesce(c.reloptions, '{{}}')) o ORDER BY o), \
           c.relreplident::text, obj_description(c.oid, 'pg_class'), {grants}, \
           CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END, \
           ARRAY(SELECT DISTINCT rn.nspname || E'\\x1f' || ref.relname \
                 FROM pg_rewrite rw JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid \
                 JOIN pg_class ref ON ref.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass \
                 JOIN pg_namespace rn ON rn.oid = ref.relnamespace \
                 WHERE rw.ev_class = c.oid AND ref.oid <> c.oid AND rn.nspname = ANY($1)) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm') AND {member}",
        grants = grants("c.relacl", 'r', "c.relowner"),
        member = not_extension_member("pg_class", "c.oid"),
    )
}

fn columns_sql() -> String {
    format!(
        "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
           CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END, \
           nullif(a.attidentity::text, ''), \
           CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END, \
           CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation \
             THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END, \
           col_description(c.oid, a.attnum), \
           ARRAY(SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END \
                   || E'\\x1f' || x.privilege_type || E'\\x1f' || x.is_grantable::text \
                 FROM aclexplode(a.attacl) x WHERE x.grantee <> c.relowner ORDER BY 1) \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation \
         LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace \
         WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm') AND a.attnum > 0 \
           AND NOT a.attisdropped AND {member} \
         ORDER BY n.nspname, c.relname, a.attnum",
        member = not_extension_member("pg_class", "c.oid"),
    )
}

/// Constraints of tables, those a partition inherits from its parent left out (the
/// parent's stand for them), and `NOT NULL` ones (the column's flag stands for them).
const CONSTRAINTS: &str = "SELECT n.nspname, c.relname, con.conname, con.contype::text, \
       pg_get_constraintdef(con.oid), con.convalidated, rn.nspname, r.relname, \
       obj_description(con.oid, 'pg_constraint') \
     FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     LEFT JOIN pg_class r ON r.oid = con.confrelid \
     LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace \
     WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p') \
       AND con.contype IN ('p', 'u', 'c', 'f', 'x') AND con.conparentid = 0 \
       AND (con.contype <> 'c' OR con.conislocal)";

/// Indexes no constraint owns, those a partition got from its parent's left out. A
/// partitioned table's is read without the `ONLY` `pg_get_indexdef` writes (which
/// would make it on the parent alone, invalid until each partition's is attached):
/// it stands for the partitions' too.
const INDEXES: &str = "SELECT n.nspname, c.relname, ic.relname, \
       CASE WHEN c.relkind = 'p' THEN regexp_replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ') \
         ELSE pg_get_indexdef(i.indexrelid) END, \
       i.indisunique, obj_description(i.indexrelid, 'pg_class') \
     FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
     JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'm') \
       AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid \
                       AND con.contype IN ('p', 'u', 'x')) \
       AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)";

const TRIGGERS: &str = "SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid), \
       t.tgenabled::text, obj_description(t.oid, 'pg_trigger') \
     FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = ANY($1) AND NOT t.tgisinternal AND t.tgparentid = 0";

const POLICIES: &str = "SELECT n.nspname, c.relname, p.polname, p.polpermissive, p.polcmd::text, \
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END \
             FROM unnest(p.polroles) r ORDER BY 1), \
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid), \
       obj_description(p.oid, 'pg_policy') \
     FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY($1)";

/// Functions, procedures and aggregates, less what an extension owns and what the
/// server made for another object (a range type's constructors).
fn functions_sql() -> String {
    format!(
        "SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), p.prokind::text, \
           CASE WHEN p.prokind = 'a' THEN \
             (SELECT 'SFUNC = ' || a.aggtransfn::regproc::text \
                || ', STYPE = ' || format_type(a.aggtranstype, NULL) \
                || CASE WHEN a.aggfinalfn <> 0 THEN ', FINALFUNC = ' || a.aggfinalfn::regproc::text ELSE '' END \
                || CASE WHEN a.aggcombinefn <> 0 THEN ', COMBINEFUNC = ' || a.aggcombinefn::regproc::text ELSE '' END \
                || CASE WHEN a.agginitval IS NOT NULL THEN ', INITCOND = ' || quote_literal(a.agginitval) ELSE '' END \
              FROM pg_aggregate a WHERE a.aggfnoid = p.oid) \
           ELSE pg_get_functiondef(p.oid) END, \
           CASE WHEN p.prokind <> 'p' THEN pg_get_function_result(p.oid) END, \
           pg_get_function_arguments(p.oid), l.lanname, p.prosecdef, p.provolatile::text, \
           coalesce(p.proconfig, '{{}}'), obj_description(p.oid, 'pg_proc'), {grants} \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         JOIN pg_language l ON l.oid = p.prolang \
         WHERE n.nspname = ANY($1) AND {member} \
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass \
                           AND d.objid = p.oid AND d.deptype = 'i')",
        grants = grants("p.proacl", 'f', "p.proowner"),
        member = not_extension_member("pg_proc", "p.oid"),
    )
}

/// Default privileges in the app's schemas, and those of no schema (which replace the
/// built-in defaults of their kind for the role's new objects anywhere).
const DEFAULT_PRIVILEGES: &str = "SELECT pg_get_userbyid(d.defaclrole), n.nspname, d.defaclobjtype::text, \
       ARRAY(SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END \
               || E'\\x1f' || x.privilege_type || E'\\x1f' || x.is_grantable::text \
             FROM aclexplode(d.defaclacl) x WHERE x.grantee <> d.defaclrole ORDER BY 1) \
     FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace \
     WHERE d.defaclnamespace = 0 OR n.nspname = ANY($1)";

/// The snapshot every query reads, and the empty search path that makes the server
/// qualify every name it renders.
const BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL search_path = ''";

const CURRENT_USER: &str = "SELECT current_user::text";

/// Every publication (the database's, not an app's: a diff adds and drops the app's
/// tables in them, never a publication), with the app's tables it holds.
const PUBLICATIONS: &str = "SELECT p.pubname, n.nspname, c.relname \
     FROM pg_publication p \
     LEFT JOIN (pg_publication_rel pr JOIN pg_class c ON c.oid = pr.prrelid \
                JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = ANY($1)) \
       ON pr.prpubid = p.oid";

/// Reads the model of `schemas` (and the database's extensions) from `client`, in a
/// read-only transaction of its own: call it outside a transaction block.
pub async fn inspect(client: &Client, schemas: &[String]) -> Result<Catalog, Error> {
    let read = read_all(client, schemas).await;
    let end = if read.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = client
        .batch_execute(end)
        .await
        .map_err(Error::db("ending the catalog snapshot"));
    let catalog = read?;
    ended?;
    Ok(catalog)
}

async fn read_all(client: &Client, schemas: &[String]) -> Result<Catalog, Error> {
    let p: &[&(dyn tokio_postgres::types::ToSql + Sync)] = &[&schemas];
    let (schemas_sql, types_sql, sequences_sql, relations_sql, columns_sql, functions_sql) = (
        schemas_sql(),
        types_sql(),
        sequences_sql(),
        relations_sql(),
        columns_sql(),
        functions_sql(),
    );
    let read = |context| Error::db(context);
    // All at once: tokio-postgres pipelines queries issued together on one connection.
    let (
        (),
        user_rows,
        schema_rows,
        extension_rows,
        type_rows,
        sequence_rows,
        relation_rows,
        column_rows,
        constraint_rows,
        index_rows,
        trigger_rows,
        policy_rows,
        function_rows,
        default_rows,
        publication_rows,
    ) = tokio::try_join!(
        async {
            client
                .batch_execute(BEGIN)
                .await
                .map_err(read("starting the catalog snapshot"))
        },
        async {
            client
                .query(CURRENT_USER, &[])
                .await
                .map_err(read("reading current_user"))
        },
        async {
            client
                .query(&schemas_sql, p)
                .await
                .map_err(read("reading pg_namespace"))
        },
        async {
            client
                .query(EXTENSIONS, &[])
                .await
                .map_err(read("reading pg_extension"))
        },
        async {
            client
                .query(&types_sql, p)
                .await
                .map_err(read("reading pg_type"))
        },
        async {
            client
                .query(&sequences_sql, p)
                .await
                .map_err(read("reading pg_sequence"))
        },
        async {
            client
                .query(&relations_sql, p)
                .await
                .map_err(read("reading pg_class"))
        },
        async {
            client
                .query(&columns_sql, p)
                .await
                .map_err(read("reading pg_attribute"))
        },
        async {
            client
                .query(CONSTRAINTS, p)
                .await
                .map_err(read("reading pg_constraint"))
        },
        async {
            client
                .query(INDEXES, p)
                .await
                .map_err(read("reading pg_index"))
        },
        async {
            client
                .query(TRIGGERS, p)
                .await
                .map_err(read("reading pg_trigger"))
        },
        async {
            client
                .query(POLICIES, p)
                .await
                .map_err(read("reading pg_policy"))
        },
        async {
            client
                .query(&functions_sql, p)
                .await
                .map_err(read("reading pg_proc"))
        },
        async {
            client
                .query(DEFAULT_PRIVILEGES, p)
                .await
                .map_err(read("reading pg_default_acl"))
        },
        async {
            client
                .query(PUBLICATIONS, p)
                .await
                .map_err(read("reading pg_publication_rel"))
        },
    )?;

    let mut catalog = Catalog::default();
    if let Some(row) = user_rows.first() {
        catalog.user = get(row, 0)?;
    }
    for row in &schema_rows {
        catalog.schemas.insert(
            get(row, 0)?,
            Schema {
                comment: get(row, 1)?,
                grants: grant_set(get(row, 2)?),
            },
        );
    }
    for row in &extension_rows {
        catalog.extensions.insert(
            get(row, 0)?,
            Extension {
                schema: get(row, 1)?,
                version: get(row, 2)?,
            },
        );
    }
    for row in &type_rows {
        let kind = match get::<String>(row, 2)?.as_str() {
            "e" => TypeKind::Enum {
                labels: get(row, 5)?,
            },
            "d" => TypeKind::Domain {
                base: get(row, 6)?,
                not_null: get(row, 7)?,
                default: get(row, 8)?,
                collation: get(row, 9)?,
                checks: get::<Vec<String>>(row, 10)?
                    .iter()
                    .map(|c| split2(c))
                    .collect(),
            },
            "c" => TypeKind::Composite {
                attributes: get::<Vec<String>>(row, 11)?
                    .iter()
                    .map(|a| split2(a))
                    .collect(),
            },
            _ => TypeKind::Range {
                subtype: get(row, 12)?,
                options: get(row, 13)?,
            },
        };
        catalog.types.insert(
            Name::new(get::<String>(row, 0)?, get::<String>(row, 1)?),
            Type {
                kind,
                comment: get(row, 3)?,
                grants: grant_set(get(row, 4)?),
            },
        );
    }
    for row in &sequence_rows {
        let owned_by = match (
            get::<Option<String>>(row, 9)?,
            get::<Option<String>>(row, 10)?,
            get::<Option<String>>(row, 11)?,
        ) {
            (Some(schema), Some(table), Some(column)) => Some((Name::new(schema, table), column)),
            _ => None,
        };
        catalog.sequences.insert(
            Name::new(get::<String>(row, 0)?, get::<String>(row, 1)?),
            Sequence {
                data_type: get(row, 2)?,
                start: get(row, 3)?,
                increment: get(row, 4)?,
                min: get(row, 5)?,
                max: get(row, 6)?,
                cache: get(row, 7)?,
                cycle: get(row, 8)?,
                owned_by,
                identity: get(row, 14)?,
                comment: get(row, 12)?,
                grants: grant_set(get(row, 13)?),
            },
        );
    }

    let mut columns: BTreeMap<Name, Vec<Column>> = BTreeMap::new();
    for row in &column_rows {
        let identity = match get::<Option<String>>(row, 6)?.as_deref() {
            Some("a") => Some(Identity::Always),
            Some("d") => Some(Identity::ByDefault),
            _ => None,
        };
        columns
            .entry(Name::new(get::<String>(row, 0)?, get::<String>(row, 1)?))
            .or_default()
            .push(Column {
                name: get(row, 2)?,
                data_type: get(row, 3)?,
                not_null: get(row, 4)?,
                default: get(row, 5)?,
                identity,
                generated: get(row, 7)?,
                collation: get(row, 8)?,
                comment: get(row, 9)?,
                grants: grant_set(get(row, 10)?),
            });
    }
    let mut indexes: BTreeMap<Name, BTreeMap<String, Index>> = BTreeMap::new();
    for row in &index_rows {
        indexes
            .entry(Name::new(get::<String>(row, 0)?, get::<String>(row, 1)?))
            .or_default()
            .insert(
                get(row, 2)?,
                Index {
                    definition: get(row, 3)?,
                    unique: get(row, 4)?,
                    comment: get(row, 5)?,
                },
            );
    }
    for row in &relation_rows {
        let name = Name::new(get::<String>(row, 0)?, get::<String>(row, 1)?);
        let kind: String = get(row, 2)?;
        let comment = get(row, 12)?;
        let grants = grant_set(get(row, 13)?);
        let options: Vec<String> = get(row, 10)?;
        let cols = columns.remove(&name).unwrap_or_default();
        let idx = indexes.remove(&name).unwrap_or_default();
        if kind == "v" || kind == "m" {
            let depends_on = get::<Vec<String>>(row, 15)?
                .iter()
                .map(|d| {
                    let (schema, name) = split2(d);
                    Name::new(schema, name)
                })
                .collect();
            catalog.views.insert(
                name,
                View {
                    materialized: kind == "m",
                    definition: get::<Option<String>>(row, 14)?.unwrap_or_default(),
                    columns: cols.into_iter().map(|c| c.name).collect(),
                    options,
                    indexes: idx,
                    depends_on,
                    comment,
                    grants,
                },
            );
            continue;
        }
        let partition_of = match (
            get::<Option<String>>(row, 5)?,
            get::<Option<String>>(row, 6)?,
            get::<Option<String>>(row, 7)?,
        ) {
            (Some(schema), Some(parent), Some(bound)) => Some((Name::new(schema, parent), bound)),
            _ => None,
        };
        catalog.tables.insert(
            name,
            Table {
                unlogged: get::<String>(row, 3)? == "u",
                partition_key: get(row, 4)?,
                partition_of,
                columns: cols,
                indexes: idx,
                rls_enabled: get(row, 8)?,
                rls_forced: get(row, 9)?,
                options,
                replica_identity: get::<String>(row, 11)?.chars().next().unwrap_or('d'),
                comment,
                grants,
                ..Table::default()
            },
        );
    }
    for row in &constraint_rows {
        let Some(table) = catalog
            .tables
            .get_mut(&Name::new(get::<String>(row, 0)?, get::<String>(row, 1)?))
        else {
            continue;
        };
        let kind = match get::<String>(row, 3)?.as_str() {
            "p" => ConstraintKind::PrimaryKey,
            "u" => ConstraintKind::Unique,
            "c" => ConstraintKind::Check,
            "f" => ConstraintKind::ForeignKey,
            _ => ConstraintKind::Exclusion,
        };
        let references = match (
            get::<Option<String>>(row, 6)?,
            get::<Option<String>>(row, 7)?,
        ) {
            (Some(schema), Some(name)) => Some(Name::new(schema, name)),
            _ => None,
        };
        table.constraints.insert(
            get(row, 2)?,
            Constraint {
                kind,
                definition: get(row, 4)?,
                validated: get(row, 5)?,
                references,
                comment: get(row, 8)?,
            },
        );
    }
    for row in &trigger_rows {
        let Some(table) = catalog
            .tables
            .get_mut(&Name::new(get::<String>(row, 0)?, get::<String>(row, 1)?))
        else {
            continue;
        };
        table.triggers.insert(
            get(row, 2)?,
            Trigger {
                definition: get(row, 3)?,
                enabled: get::<String>(row, 4)?.chars().next().unwrap_or('O'),
                comment: get(row, 5)?,
            },
        );
    }
    for row in &policy_rows {
        let Some(table) = catalog
            .tables
            .get_mut(&Name::new(get::<String>(row, 0)?, get::<String>(row, 1)?))
        else {
            continue;
        };
        let command = match get::<String>(row, 4)?.as_str() {
            "r" => "SELECT",
            "a" => "INSERT",
            "w" => "UPDATE",
            "d" => "DELETE",
            _ => "ALL",
        };
        table.policies.insert(
            get(row, 2)?,
            Policy {
                permissive: get(row, 3)?,
                command: command.to_owned(),
                roles: get(row, 5)?,
                using: get(row, 6)?,
                check: get(row, 7)?,
                comment: get(row, 8)?,
            },
        );
    }
    for row in &function_rows {
        let kind = match get::<String>(row, 3)?.as_str() {
            "p" => FunctionKind::Procedure,
            "a" => FunctionKind::Aggregate,
            "w" => FunctionKind::Window,
            _ => FunctionKind::Function,
        };
        catalog.functions.insert(
            FunctionId {
                schema: get(row, 0)?,
                name: get(row, 1)?,
                arguments: get(row, 2)?,
            },
            Function {
                kind,
                definition: get::<Option<String>>(row, 4)?.unwrap_or_default(),
                result: get(row, 5)?,
                arguments: get(row, 6)?,
                language: get(row, 7)?,
                security_definer: get(row, 8)?,
                volatility: get::<String>(row, 9)?.chars().next().unwrap_or('v'),
                config: get(row, 10)?,
                comment: get(row, 11)?,
                grants: grant_set(get(row, 12)?),
            },
        );
    }
    for row in &default_rows {
        let objects = match get::<String>(row, 2)?.as_str() {
            "r" => "TABLES",
            "S" => "SEQUENCES",
            "f" => "FUNCTIONS",
            "T" => "TYPES",
            _ => "SCHEMAS",
        };
        catalog.default_privileges.insert(
            DefaultPrivilegeKey {
                role: get(row, 0)?,
                schema: get(row, 1)?,
                objects: objects.to_owned(),
            },
            grant_set(get(row, 3)?),
        );
    }
    for row in &publication_rows {
        let tables = catalog.publications.entry(get(row, 0)?).or_default();
        if let (Some(schema), Some(table)) = (
            get::<Option<String>>(row, 1)?,
            get::<Option<String>>(row, 2)?,
        ) {
            tables.insert(Name::new(schema, table));
        }
    }
    Ok(catalog)
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, Error> {
    row.try_get(i).map_err(Error::db("reading a catalog row"))
}

/// `a SEP b` split in two (all of it in the first when there is no separator).
fn split2(packed: &str) -> (String, String) {
    match packed.split_once(SEP) {
        Some((a, b)) => (a.to_owned(), b.to_owned()),
        None => (packed.to_owned(), String::new()),
    }
}

/// Grants packed as `grantee SEP privilege SEP grantable`.
fn grant_set(packed: Vec<String>) -> Grants {
    packed
        .iter()
        .filter_map(|g| {
            let mut parts = g.split(SEP);
            Some(Grant {
                grantee: parts.next()?.to_owned(),
                privilege: parts.next()?.to_owned(),
                grantable: parts.next()? == "true",
            })
        })
        .collect()
}
