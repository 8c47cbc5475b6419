//! `cargo xtask db gen types --lang rust|typescript`: types for the app's tables, views,
//! enums and functions, read from the catalogs of the migrations' replay (or of an
//! environment): Rust structs with `tokio_postgres::Row` conversions, or the
//! `Database` type in the shape the Supabase CLI's `gen types typescript` writes
//! (`Tables`/`Views`/`Functions`/`Enums`/`CompositeTypes` per schema; `Row`, `Insert`,
//! `Update` and `Relationships` per table; keys in name order), followed by the
//! generic helpers (`Tables<"t">`, `TablesInsert`, `TablesUpdate`, `Enums`,
//! `CompositeTypes`) and `Constants` apps import from the CLI's file.
//!
//! Must not: write anything to a database (one read-only query per catalog); invent
//! a type it cannot map (a column whose type has no Rust mapping is left out of its
//! struct with a comment naming it; TypeScript has `unknown`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result};
use tokio_postgres::Client;

use super::Ctx;
use super::diff::{Side, with_replay};
use crate::flags::{GenLang, GenTypes};

/// A column's (or an argument's) type: the base type's schema and name (a domain's
/// base type; an array's element), whether it is an array, and its `typtype`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ty {
    schema: String,
    name: String,
    array: bool,
    /// `e` enum, `c` composite, `b` base, `p` pseudo, `r` range…
    kind: String,
}

#[derive(Clone, Debug)]
struct Column {
    name: String,
    ty: Ty,
    nullable: bool,
    /// A default, an identity BY DEFAULT or a serial: optional on insert.
    has_default: bool,
    /// GENERATED ALWAYS (identity or stored expression): never written.
    always: bool,
}

#[derive(Clone, Debug)]
struct Relationship {
    name: String,
    columns: Vec<String>,
    one_to_one: bool,
    table: String,
    referenced_columns: Vec<String>,
}

#[derive(Clone, Debug, Default)]
struct Relation {
    view: bool,
    columns: Vec<Column>,
    relationships: Vec<Relationship>,
}

#[derive(Clone, Debug)]
struct Function {
    args: Vec<(String, Ty)>,
    returns: Returns,
}

#[derive(Clone, Debug)]
enum Returns {
    Type {
        ty: Ty,
        set: bool,
    },
    /// `RETURNS TABLE (…)`.
    Table(Vec<(String, Ty)>),
}

/// Everything of one schema, by name.
#[derive(Clone, Debug, Default)]
struct Schema {
    relations: BTreeMap<String, Relation>,
    enums: BTreeMap<String, Vec<String>>,
    functions: BTreeMap<String, Function>,
}

const COLUMNS: &str = "
SELECT n.nspname::text, c.relname::text, c.relkind IN ('v', 'm') AS view, a.attname::text,
       NOT a.attnotnull OR c.relkind IN ('v', 'm') AS nullable,
       a.atthasdef OR a.attidentity = 'd' AS has_default,
       a.attidentity = 'a' OR a.attgenerated <> '' AS always,
       bn.nspname::text, bt.typname::text, et.oid IS NOT NULL AS array, bt.typtype::text
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_type t0 ON t0.oid = a.atttypid
  JOIN pg_type t ON t.oid = CASE WHEN t0.typtype = 'd' THEN t0.typbasetype ELSE t0.oid END
  LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
  JOIN pg_type bt ON bt.oid = coalesce(et.oid, t.oid)
  JOIN pg_namespace bn ON bn.oid = bt.typnamespace
 WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
   AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY 1, 2, 4";

const ENUMS: &str = "
SELECT n.nspname::text, t.typname::text, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
  FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = ANY($1)
 GROUP BY 1, 2 ORDER BY 1, 2";

/// Foreign keys between tables of the schemas (one to a table outside them, such as
/// `auth.users`, is left out, as the Supabase CLI leaves it).
const RELATIONSHIPS: &str = "
SELECT n.nspname::text, c.relname::text, con.conname::text,
       array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
       EXISTS (SELECT 1 FROM pg_index i
                WHERE i.indrelid = con.conrelid AND i.indisunique
                  AND (SELECT array_agg(x ORDER BY x) FROM unnest(i.indkey::int2[]) x)
                    = (SELECT array_agg(x ORDER BY x) FROM unnest(con.conkey) x)),
       fc.relname::text,
       array(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i)
  FROM pg_constraint con
  JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_class fc ON fc.oid = con.confrelid JOIN pg_namespace fn ON fn.oid = fc.relnamespace
 WHERE con.contype = 'f' AND n.nspname = ANY($1) AND fn.nspname = ANY($1)
 ORDER BY 1, 2, 3";

/// Plain functions (not aggregates, procedures or trigger functions) with their
/// input arguments, and the output columns of `RETURNS TABLE`.
const FUNCTIONS: &str = "
SELECT n.nspname::text, p.proname::text, p.proretset,
       coalesce(p.proargnames, '{}')::text[], coalesce(p.proargmodes::text[], '{}'),
       coalesce(p.proallargtypes, p.proargtypes::oid[]) AS types,
       p.prorettype
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = ANY($1) AND p.prokind = 'f'
   AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
 ORDER BY 1, 2, p.oid";

/// A type by OID, as [`Ty`].
const TYPE: &str = "
SELECT bn.nspname::text, bt.typname::text, et.oid IS NOT NULL, bt.typtype::text
  FROM pg_type t0
  JOIN pg_type t ON t.oid = CASE WHEN t0.typtype = 'd' THEN t0.typbasetype ELSE t0.oid END
  LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
  JOIN pg_type bt ON bt.oid = coalesce(et.oid, t.oid)
  JOIN pg_namespace bn ON bn.oid = bt.typnamespace
 WHERE t0.oid = $1";

impl GenTypes {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let schemas = if self.schema.is_empty() {
            ctx.project.app_schemas()
        } else {
            self.schema.clone()
        };
        let side: Side = self
            .from
            .as_deref()
            .unwrap_or("migrations")
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--from: {e}"))?;
        let model = match &side {
            Side::Migrations => {
                with_replay(ctx, &ctx.migrator()?, async |client: &Client| {
                    read(client, &schemas).await
                })
                .await?
            }
            Side::Env(given) | Side::Url(given) => {
                let target = ctx.target_of(given)?;
                read(&super::connect(&target).await?, &schemas).await?
            }
        };
        let origin = match &side {
            Side::Migrations => "the migrations (replayed)".to_owned(),
            Side::Env(env) => env.clone(),
            Side::Url(url) => plover::redact(url),
        };
        let text = match self.lang {
            GenLang::Rust => rust(&model, &origin),
            GenLang::Typescript => typescript(&model),
        };
        match &self.output {
            Some(path) => {
                std::fs::write(path, &text)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
            None => print!("{text}"),
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The catalogs of `schemas`.
async fn read(client: &Client, schemas: &[String]) -> Result<BTreeMap<String, Schema>> {
    let mut model: BTreeMap<String, Schema> = schemas
        .iter()
        .map(|s| (s.clone(), Schema::default()))
        .collect();
    let context = "reading the catalogs for the types";
    for r in client.query(COLUMNS, &[&schemas]).await.context(context)? {
        let schema = model.entry(r.get(0)).or_default();
        let relation = schema.relations.entry(r.get(1)).or_default();
        relation.view = r.get(2);
        relation.columns.push(Column {
            name: r.get(3),
            nullable: r.get(4),
            has_default: r.get(5),
            always: r.get(6),
            ty: Ty {
                schema: r.get(7),
                name: r.get(8),
                array: r.get(9),
                kind: r.get(10),
            },
        });
    }
    for r in client.query(ENUMS, &[&schemas]).await.context(context)? {
        model
            .entry(r.get(0))
            .or_default()
            .enums
            .insert(r.get(1), r.get(2));
    }
    for r in client
        .query(RELATIONSHIPS, &[&schemas])
        .await
        .context(context)?
    {
        if let Some(relation) = model
            .get_mut(&r.get::<_, String>(0))
            .and_then(|s| s.relations.get_mut(&r.get::<_, String>(1)))
        {
            relation.relationships.push(Relationship {
                name: r.get(2),
                columns: r.get(3),
                one_to_one: r.get(4),
                table: r.get(5),
                referenced_columns: r.get(6),
            });
        }
    }
    let ty_of = async |oid: u32| -> Result<Ty> {
        let r = client.query_one(TYPE, &[&oid]).await.context(context)?;
        Ok(Ty {
            schema: r.get(0),
            name: r.get(1),
            array: r.get(2),
            kind: r.get(3),
        })
    };
    for r in client
        .query(FUNCTIONS, &[&schemas])
        .await
        .context(context)?
    {
        let names: Vec<String> = r.get(3);
        let modes: Vec<String> = r.get(4);
        let types: Vec<u32> = r.get(5);
        let mut args = Vec::new();
        let mut table = Vec::new();
        for (i, oid) in types.iter().enumerate() {
            let mode = modes.get(i).map_or("i", String::as_str);
            let name = names.get(i).cloned().unwrap_or_default();
            match mode {
                "i" | "b" | "v" => args.push((name, ty_of(*oid).await?)),
                "t" => table.push((name, ty_of(*oid).await?)),
                _ => {}
            }
        }
        let returns = if table.is_empty() {
            Returns::Type {
                ty: ty_of(r.get(6)).await?,
                set: r.get(2),
            }
        } else {
            Returns::Table(table)
        };
        // Overloads: the first by OID keeps the name (the CLI writes a union).
        model
            .entry(r.get(0))
            .or_default()
            .functions
            .entry(r.get(1))
            .or_insert(Function { args, returns });
    }
    Ok(model)
}

/// A base type as TypeScript, as the Supabase CLI maps it.
fn ts_type(ty: &Ty) -> String {
    let base = match ty.name.as_str() {
        _ if ty.kind == "e" => format!("Database[\"{}\"][\"Enums\"][\"{}\"]", ty.schema, ty.name),
        "int2" | "int4" | "int8" | "float4" | "float8" | "numeric" | "oid" => "number".into(),
        "bool" => "boolean".into(),
        "json" | "jsonb" => "Json".into(),
        "void" => "undefined".into(),
        "record" => "Record<string, unknown>".into(),
        "text" | "varchar" | "bpchar" | "char" | "name" | "uuid" | "date" | "time" | "timetz"
        | "timestamp" | "timestamptz" | "interval" | "inet" | "cidr" | "macaddr" | "bytea"
        | "citext" | "tsvector" | "tsquery" | "xml" | "money" | "bit" | "varbit" | "vector"
        | "int4range" | "int8range" | "numrange" | "tsrange" | "tstzrange" | "daterange" => {
            "string".into()
        }
        _ => "unknown".into(),
    };
    if ty.array { format!("{base}[]") } else { base }
}

/// `name: T` / `name?: T` lines of an object type, indented by `indent`.
fn ts_fields(out: &mut String, indent: usize, fields: &[(String, bool, String)]) {
    if fields.is_empty() {
        let _ = writeln!(out, "{:indent$}[_ in never]: never", "");
        return;
    }
    for (name, optional, ty) in fields {
        let _ = writeln!(
            out,
            "{:indent$}{}{}: {ty}",
            "",
            ts_key(name),
            if *optional { "?" } else { "" }
        );
    }
}

/// A key as written in an object type: bare when it is an identifier.
fn ts_key(name: &str) -> String {
    let bare = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

fn typescript(model: &BTreeMap<String, Schema>) -> String {
    let mut out = String::from(
        "export type Json =\n  | string\n  | number\n  | boolean\n  | null\n  | { [key: string]: Json | undefined }\n  | Json[]\n\nexport type Database = {\n",
    );
    let never = |out: &mut String, key: &str| {
        let _ = writeln!(out, "    {key}: {{\n      [_ in never]: never\n    }}");
    };
    for (schema, s) in model {
        let _ = writeln!(out, "  {}: {{", ts_key(schema));
        for (key, views) in [("Tables", false), ("Views", true)] {
            let relations: Vec<(&String, &Relation)> = s
                .relations
                .iter()
                .filter(|(_, r)| r.view == views)
                .collect();
            if relations.is_empty() {
                never(&mut out, key);
                continue;
            }
            let _ = writeln!(out, "    {key}: {{");
            for (name, r) in relations {
                let _ = writeln!(out, "      {}: {{", ts_key(name));
                let ty = |c: &Column| {
                    let t = ts_type(&c.ty);
                    if c.nullable { format!("{t} | null") } else { t }
                };
                let row: Vec<_> = r
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), false, ty(c)))
                    .collect();
                out.push_str("        Row: {\n");
                ts_fields(&mut out, 10, &row);
                out.push_str("        }\n");
                if !views {
                    let insert: Vec<_> = r
                        .columns
                        .iter()
                        .map(|c| match c.always {
                            true => (c.name.clone(), true, "never".to_owned()),
                            false => (c.name.clone(), c.nullable || c.has_default, ty(c)),
                        })
                        .collect();
                    let update: Vec<_> = r
                        .columns
                        .iter()
                        .map(|c| match c.always {
                            true => (c.name.clone(), true, "never".to_owned()),
                            false => (c.name.clone(), true, ty(c)),
                        })
                        .collect();
                    out.push_str("        Insert: {\n");
                    ts_fields(&mut out, 10, &insert);
                    out.push_str("        }\n        Update: {\n");
                    ts_fields(&mut out, 10, &update);
                    out.push_str("        }\n");
                }
                if r.relationships.is_empty() {
                    out.push_str("        Relationships: []\n");
                } else {
                    out.push_str("        Relationships: [\n");
                    for rel in &r.relationships {
                        let list = |v: &[String]| {
                            v.iter()
                                .map(|c| format!("{c:?}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        let _ = write!(
                            out,
                            "          {{\n            foreignKeyName: {:?}\n            columns: [{}]\n            isOneToOne: {}\n            referencedRelation: {:?}\n            referencedColumns: [{}]\n          }},\n",
                            rel.name,
                            list(&rel.columns),
                            rel.one_to_one,
                            rel.table,
                            list(&rel.referenced_columns)
                        );
                    }
                    out.push_str("        ]\n");
                }
                out.push_str("      }\n");
            }
            out.push_str("    }\n");
        }
        if s.functions.is_empty() {
            never(&mut out, "Functions");
        } else {
            out.push_str("    Functions: {\n");
            for (name, f) in &s.functions {
                let _ = writeln!(out, "      {}: {{", ts_key(name));
                if f.args.is_empty() {
                    out.push_str("        Args: Record<PropertyKey, never>\n");
                } else {
                    out.push_str("        Args: {\n");
                    let mut args: Vec<_> = f
                        .args
                        .iter()
                        .map(|(n, t)| (n.clone(), false, ts_type(t)))
                        .collect();
                    args.sort();
                    ts_fields(&mut out, 10, &args);
                    out.push_str("        }\n");
                }
                match &f.returns {
                    Returns::Type { ty, set } => {
                        let t = ts_type(ty);
                        let _ = writeln!(
                            out,
                            "        Returns: {}",
                            if *set { format!("{t}[]") } else { t }
                        );
                    }
                    Returns::Table(columns) => {
                        out.push_str("        Returns: {\n");
                        let mut cols: Vec<_> = columns
                            .iter()
                            .map(|(n, t)| (n.clone(), false, ts_type(t)))
                            .collect();
                        cols.sort();
                        ts_fields(&mut out, 10, &cols);
                        out.push_str("        }[]\n");
                    }
                }
                out.push_str("      }\n");
            }
            out.push_str("    }\n");
        }
        if s.enums.is_empty() {
            never(&mut out, "Enums");
        } else {
            out.push_str("    Enums: {\n");
            for (name, values) in &s.enums {
                let union: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
                let line = format!("      {}: {}", ts_key(name), union.join(" | "));
                // As prettier writes a union that does not fit in 80 columns.
                if line.len() > 80 {
                    let _ = writeln!(out, "      {}:", ts_key(name));
                    for v in &union {
                        let _ = writeln!(out, "        | {v}");
                    }
                } else {
                    let _ = writeln!(out, "{line}");
                }
            }
            out.push_str("    }\n");
        }
        never(&mut out, "CompositeTypes");
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    if let Some(default) = model
        .keys()
        .find(|k| *k == "public")
        .or_else(|| model.keys().next())
    {
        out.push_str(&ts_helpers(default));
        out.push_str(&ts_constants(model));
    }
    out
}

/// The generic helpers the Supabase CLI's file exports, with the same parameters
/// (written here, not taken from it): `Tables<"t">` (a table's or view's `Row`),
/// `TablesInsert<"t">`, `TablesUpdate<"t">`, `Enums<"e">` and `CompositeTypes<"c">` of
/// the `default` schema, or `Tables<{ schema: "s" }, "t">` for another one.
fn ts_helpers(default: &str) -> String {
    let mut out = format!(
        "
type SchemaName = keyof Database
type DefaultSchema = {default:?}
type InSchema = {{ schema: SchemaName }}
type Readable<S extends SchemaName> = Database[S][\"Tables\"] & Database[S][\"Views\"]
type Writable<S extends SchemaName> = Database[S][\"Tables\"]
type Typed<S extends SchemaName> = Database[S][\"Enums\"]
type Composite<S extends SchemaName> = Database[S][\"CompositeTypes\"]
"
    );
    // (helper, what it reads, the member taken or none)
    let helpers = [
        ("Tables", "Readable", Some("Row")),
        ("TablesInsert", "Writable", Some("Insert")),
        ("TablesUpdate", "Writable", Some("Update")),
        ("Enums", "Typed", None),
        ("CompositeTypes", "Composite", None),
    ];
    for (helper, of, member) in helpers {
        let pick = |set: &str, key: &str| match member {
            Some(m) => format!("{of}<{set}>[{key}] extends {{ {m}: infer T }} ? T : never"),
            None => format!("{of}<{set}>[{key}]"),
        };
        let _ = write!(
            out,
            "
export type {helper}<
  NameOrSchema extends keyof {of}<DefaultSchema> | InSchema,
  Name extends NameOrSchema extends InSchema
    ? keyof {of}<NameOrSchema[\"schema\"]>
    : never = never,
> = NameOrSchema extends InSchema
  ? {}
  : {}
",
            pick("NameOrSchema[\"schema\"]", "Name"),
            pick(
                "DefaultSchema",
                &format!("NameOrSchema & keyof {of}<DefaultSchema>")
            )
        );
    }
    out
}

/// `Constants`: each schema's enum labels as arrays, as the Supabase CLI's file has
/// them (`Constants.public.Enums.mood`).
fn ts_constants(model: &BTreeMap<String, Schema>) -> String {
    let mut out = String::from("\nexport const Constants = {\n");
    for (schema, s) in model {
        let _ = writeln!(out, "  {}: {{", ts_key(schema));
        if s.enums.is_empty() {
            out.push_str("    Enums: {},\n");
        } else {
            out.push_str("    Enums: {\n");
            for (name, values) in &s.enums {
                let labels: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
                let _ = writeln!(out, "      {}: [{}],", ts_key(name), labels.join(", "));
            }
            out.push_str("    },\n");
        }
        out.push_str("  },\n");
    }
    out.push_str("} as const\n");
    out
}

/// A base type as Rust, for `tokio_postgres::Row::try_get` (with tokio-postgres's
/// `with-uuid-1`, `with-chrono-0_4` and `with-serde_json-1` features, and
/// rust_decimal's `db-tokio-postgres`), or `None`.
fn rust_type(ty: &Ty, enums: &BTreeMap<(String, String), String>) -> Option<String> {
    let base = match ty.name.as_str() {
        _ if ty.kind == "e" => enums.get(&(ty.schema.clone(), ty.name.clone()))?.clone(),
        "bool" => "bool".into(),
        "int2" => "i16".into(),
        "int4" => "i32".into(),
        "int8" => "i64".into(),
        "float4" => "f32".into(),
        "float8" => "f64".into(),
        "oid" => "u32".into(),
        "text" | "varchar" | "bpchar" | "name" | "citext" => "String".into(),
        "uuid" => "uuid::Uuid".into(),
        "numeric" => "rust_decimal::Decimal".into(),
        "date" => "chrono::NaiveDate".into(),
        "time" => "chrono::NaiveTime".into(),
        "timestamp" => "chrono::NaiveDateTime".into(),
        "timestamptz" => "chrono::DateTime<chrono::Utc>".into(),
        "json" | "jsonb" => "serde_json::Value".into(),
        "bytea" => "Vec<u8>".into(),
        "inet" => "std::net::IpAddr".into(),
        _ => return None,
    };
    Some(if ty.array {
        format!("Vec<{base}>")
    } else {
        base
    })
}

/// `snake_case` or any name as a Rust type name: `budget_items` → `BudgetItems`.
fn pascal(name: &str) -> String {
    let mut out = String::new();
    for part in name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'T');
    }
    out
}

/// A column or schema name as a Rust field or module name.
fn snake(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    const KEYWORDS: &[&str] = &[
        "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn",
        "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
        "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
        "where", "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final",
        "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
    ];
    if KEYWORDS.contains(&out.as_str()) {
        out = format!("r#{out}");
    }
    out
}

/// The struct name of each table and view of a schema: its name in PascalCase, with
/// `Row` (then a number) added when an enum of the schema or an earlier struct has that
/// name already (a table `status` beside an enum `status`: `StatusRow`).
fn struct_names(s: &Schema) -> BTreeMap<String, String> {
    let mut taken: std::collections::BTreeSet<String> = s.enums.keys().map(|n| pascal(n)).collect();
    let mut names = BTreeMap::new();
    for name in s.relations.keys() {
        let base = pascal(name);
        let mut ident = base.clone();
        let mut n = 1;
        while taken.contains(&ident) {
            ident = if n == 1 {
                format!("{base}Row")
            } else {
                format!("{base}Row{n}")
            };
            n += 1;
        }
        taken.insert(ident.clone());
        names.insert(name.clone(), ident);
    }
    names
}

fn rust(model: &BTreeMap<String, Schema>, origin: &str) -> String {
    let mut out = format!(
        "//! Types of the app's tables and views, written by `cargo xtask db gen types --lang rust`\n//! from {origin}. Regenerate instead of editing.\n//!\n//! Needs tokio-postgres with the features `with-uuid-1`, `with-chrono-0_4` and\n//! `with-serde_json-1`, postgres-types with `derive`, and rust_decimal with\n//! `db-tokio-postgres`, for the columns of those types.\n#![allow(dead_code, unused_qualifications, clippy::all)]\n"
    );
    // Every enum of every schema, by (schema, name), as the Rust path it gets.
    let enums: BTreeMap<(String, String), String> = model
        .iter()
        .flat_map(|(schema, s)| {
            s.enums.keys().map(move |name| {
                (
                    (schema.clone(), name.clone()),
                    format!("crate_types::{}::{}", snake(schema), pascal(name)),
                )
            })
        })
        .collect();
    for (schema, s) in model {
        let _ = writeln!(
            out,
            "\n/// Schema `{schema}`.\npub mod {} {{",
            snake(schema)
        );
        for (name, values) in &s.enums {
            let _ = writeln!(
                out,
                "    /// Enum `{schema}.{name}`.\n    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, postgres_types::ToSql, postgres_types::FromSql)]\n    #[postgres(name = {name:?})]\n    pub enum {} {{",
                pascal(name)
            );
            for v in values {
                let _ = writeln!(
                    out,
                    "        #[postgres(name = {v:?})]\n        {},",
                    pascal(v)
                );
            }
            out.push_str("    }\n\n");
        }
        let names = struct_names(s);
        for (name, r) in &s.relations {
            let kind = if r.view { "View" } else { "Table" };
            let ident = &names[name];
            let _ = writeln!(
                out,
                "    /// {kind} `{schema}.{name}`: a row as `SELECT *` returns it.\n    #[derive(Debug, Clone, PartialEq)]\n    pub struct {ident} {{"
            );
            let mut fields = Vec::new();
            for c in &r.columns {
                match rust_type(&c.ty, &enums) {
                    Some(t) => {
                        // An enum of this schema by its name, of another through `super`.
                        let t = t
                            .replace(&format!("crate_types::{}::", snake(schema)), "")
                            .replace("crate_types::", "super::");
                        let t = if c.nullable {
                            format!("Option<{t}>")
                        } else {
                            t
                        };
                        let _ = writeln!(out, "        pub {}: {t},", snake(&c.name));
                        fields.push(c);
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            "        // `{}` ({}.{}{}) has no Rust mapping here: select it cast to text.",
                            c.name,
                            c.ty.schema,
                            c.ty.name,
                            if c.ty.array { "[]" } else { "" }
                        );
                    }
                }
            }
            out.push_str("    }\n\n");
            let _ = writeln!(
                out,
                "    impl TryFrom<&tokio_postgres::Row> for {ident} {{\n        type Error = tokio_postgres::Error;\n\n        fn try_from(row: &tokio_postgres::Row) -> Result<Self, Self::Error> {{\n            Ok(Self {{"
            );
            for c in fields {
                let _ = writeln!(
                    out,
                    "                {}: row.try_get({:?})?,",
                    snake(&c.name),
                    c.name
                );
            }
            out.push_str("            })\n        }\n    }\n\n");
        }
        while out.ends_with("\n\n") {
            out.pop();
        }
        out.push_str("}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_rust_names() {
        assert_eq!(pascal("budget_items"), "BudgetItems");
        assert_eq!(pascal("2fa codes"), "T2faCodes");
        assert_eq!(snake("type"), "r#type");
        assert_eq!(snake("Created At"), "created_at");
        assert_eq!(ts_key("created_at"), "created_at");
        assert_eq!(ts_key("created at"), "\"created at\"");
    }

    #[test]
    fn a_struct_whose_name_an_enum_or_another_struct_has_gets_row() {
        let mut s = Schema::default();
        s.enums.insert("status".into(), vec!["on".into()]);
        for name in ["status", "Status", "orders"] {
            s.relations.insert(name.into(), Relation::default());
        }
        let names = struct_names(&s);
        assert_eq!(names["orders"], "Orders");
        // Keys in name order: "Status" comes before "status".
        assert_eq!(names["Status"], "StatusRow");
        assert_eq!(names["status"], "StatusRow2");
    }
}
