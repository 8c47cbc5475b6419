//! The normalized model of the schemas an app owns: what [`super::inspect`] reads
//! from the catalogs and [`super::diff`] compares. Plain data, ordered (`BTreeMap`s
//! keyed by name), so that two models of equal schemas are equal values and every
//! rendering of one is deterministic.
//!
//! Normalized means: texts are the server's own renderings (`format_type`,
//! `pg_get_expr`, `pg_get_constraintdef`, `pg_get_indexdef`, `pg_get_viewdef`,
//! `pg_get_triggerdef`, `pg_get_functiondef`), so two databases built from the same
//! DDL give equal strings; privileges are exploded and sorted, with the owner's own
//! (implicit) privileges left out; objects that belong to an extension are left out
//! (the extension stands for them); owners are not part of the model.
//!
//! Must not: do I/O; know how the model is read or compared.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A schema-qualified name (schema, name), unquoted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name {
    pub schema: String,
    pub name: String,
}

impl Name {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Name {
        Name {
            schema: schema.into(),
            name: name.into(),
        }
    }
}

/// `schema.name`, each quoted as Postgres' `quote_ident` would.
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", ident(&self.schema), ident(&self.name))
    }
}

/// The keywords Postgres 15 does not accept as bare identifiers everywhere
/// (`pg_get_keywords()` where `catcode <> 'U'`): `quote_ident` quotes them.
const NOT_BARE: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

/// `name` as an SQL identifier, quoted only where Postgres' `quote_ident` would
/// quote it (anything but lower-case ASCII letters, digits and `_` not starting with
/// a digit, or a keyword that is not unreserved).
pub fn ident(name: &str) -> String {
    let bare = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && NOT_BARE.binary_search(&name).is_err();
    if bare {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// `text` as an SQL string literal (`E''` with doubled backslashes where it holds
/// one, as `quote_literal` does).
pub fn literal(text: &str) -> String {
    let quoted = text.replace('\'', "''");
    if text.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

/// The schemas of one side of a diff, as read from one database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    /// The role that read it (`current_user`): a script made to change this database
    /// runs as it, so the objects the script creates are its, with its default
    /// privileges. [`super::diff`] compares no object by it: two equal schemas read by
    /// two roles diff to nothing.
    pub user: String,
    /// The schemas read (the app's, named in plover.toml `schemas`), by name.
    pub schemas: BTreeMap<String, Schema>,
    /// Extensions installed in the database (any schema), by name.
    pub extensions: BTreeMap<String, Extension>,
    /// Enums, domains, composite and range types.
    pub types: BTreeMap<Name, Type>,
    /// Sequences, those of identity columns included (for their options, privileges
    /// and comment: the column makes and drops them).
    pub sequences: BTreeMap<Name, Sequence>,
    /// Tables, partitioned tables and their partitions.
    pub tables: BTreeMap<Name, Table>,
    /// Views and materialized views.
    pub views: BTreeMap<Name, View>,
    /// Functions, procedures and aggregates.
    pub functions: BTreeMap<FunctionId, Function>,
    /// `ALTER DEFAULT PRIVILEGES` in force, by (role, schema or none, object kind): in
    /// the schemas read, and those of no schema (which replace the built-in defaults:
    /// an absent one means EXECUTE on functions and USAGE on types for PUBLIC).
    pub default_privileges: BTreeMap<DefaultPrivilegeKey, Grants>,
    /// Every publication of the database, with the app's tables it holds.
    pub publications: BTreeMap<String, BTreeSet<Name>>,
}

/// One schema.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schema {
    pub comment: Option<String>,
    pub grants: Grants,
}

/// An installed extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    pub schema: String,
    pub version: String,
}

/// A privilege granted on an object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grant {
    /// A role name, or `PUBLIC`.
    pub grantee: String,
    /// `SELECT`, `INSERT`, `USAGE`, `EXECUTE`, …
    pub privilege: String,
    pub grantable: bool,
}

/// The privileges granted on one object, the owner's own left out.
pub type Grants = BTreeSet<Grant>;

/// A user-defined type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Type {
    pub kind: TypeKind,
    pub comment: Option<String>,
    pub grants: Grants,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeKind {
    /// Its labels in sort order.
    Enum { labels: Vec<String> },
    Domain {
        /// `format_type` of the base type.
        base: String,
        not_null: bool,
        default: Option<String>,
        collation: Option<String>,
        /// Named checks, `pg_get_constraintdef` of each.
        checks: BTreeMap<String, String>,
    },
    /// Attributes in order, `(name, format_type)`.
    Composite { attributes: Vec<(String, String)> },
    Range {
        subtype: String,
        /// The full `CREATE TYPE … AS RANGE (…)` options beyond the subtype.
        options: Vec<String>,
    },
}

/// A sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequence {
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
    /// The column that owns it (`OWNED BY`, or the identity column it serves): table
    /// and column.
    pub owned_by: Option<(Name, String)>,
    /// It is an identity column's (`owned_by` names the column).
    pub identity: bool,
    pub comment: Option<String>,
    pub grants: Grants,
}

/// A table (ordinary, partitioned, or a partition).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub unlogged: bool,
    /// `pg_get_partkeydef` of a partitioned table.
    pub partition_key: Option<String>,
    /// The parent and the bound (`pg_get_expr(relpartbound)`) of a partition.
    pub partition_of: Option<(Name, String)>,
    /// In attribute order (dropped columns left out).
    pub columns: Vec<Column>,
    /// By name.
    pub constraints: BTreeMap<String, Constraint>,
    /// Indexes that no constraint owns, by name.
    pub indexes: BTreeMap<String, Index>,
    /// Triggers that no constraint owns, by name.
    pub triggers: BTreeMap<String, Trigger>,
    pub policies: BTreeMap<String, Policy>,
    pub rls_enabled: bool,
    pub rls_forced: bool,
    /// Storage parameters (`reloptions`), `name=value`, sorted.
    pub options: Vec<String>,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: char,
    pub comment: Option<String>,
    pub grants: Grants,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `format_type(atttypid, atttypmod)`.
    pub data_type: String,
    pub not_null: bool,
    /// `pg_get_expr` of the default (not of a generated column).
    pub default: Option<String>,
    pub identity: Option<Identity>,
    /// The expression of a `GENERATED ALWAYS AS (…) STORED` column.
    pub generated: Option<String>,
    /// A collation other than the type's default, qualified.
    pub collation: Option<String>,
    pub comment: Option<String>,
    /// Column privileges.
    pub grants: Grants,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    Always,
    ByDefault,
}

/// A table constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    pub kind: ConstraintKind,
    /// `pg_get_constraintdef`: includes `DEFERRABLE …` and `NOT VALID`.
    pub definition: String,
    pub validated: bool,
    /// The table a foreign key references.
    pub references: Option<Name>,
    pub comment: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConstraintKind {
    PrimaryKey,
    Unique,
    Check,
    ForeignKey,
    Exclusion,
    /// A `NOT NULL` constraint of its own (Postgres 18).
    NotNull,
}

/// An index no constraint owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    /// `pg_get_indexdef`: `CREATE [UNIQUE] INDEX name ON table USING … (…) [WHERE …]`.
    pub definition: String,
    pub unique: bool,
    pub comment: Option<String>,
}

/// A trigger no constraint owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    /// `pg_get_triggerdef`.
    pub definition: String,
    /// `O` enabled (origin), `D` disabled, `R` replica, `A` always.
    pub enabled: char,
    pub comment: Option<String>,
}

/// A row level security policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub permissive: bool,
    /// `ALL`, `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
    pub command: String,
    /// Sorted; `public` for PUBLIC.
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub check: Option<String>,
    pub comment: Option<String>,
}

/// A view or a materialized view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub materialized: bool,
    /// `pg_get_viewdef`.
    pub definition: String,
    /// Its column names in order.
    pub columns: Vec<String>,
    /// `security_invoker=true`, `check_option=local`, … sorted.
    pub options: Vec<String>,
    /// Indexes of a materialized view, by name.
    pub indexes: BTreeMap<String, Index>,
    /// The relations of the app's schemas it reads (tables, views).
    pub depends_on: BTreeSet<Name>,
    pub comment: Option<String>,
    pub grants: Grants,
}

/// A function's identity: schema, name and `pg_get_function_identity_arguments`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FunctionId {
    pub schema: String,
    pub name: String,
    pub arguments: String,
}

impl fmt::Display for FunctionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}({})",
            ident(&self.schema),
            ident(&self.name),
            self.arguments
        )
    }
}

/// A function, procedure or aggregate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    pub kind: FunctionKind,
    /// `pg_get_functiondef` (a `CREATE OR REPLACE …` statement) for functions and
    /// procedures; for aggregates, a rendering of `pg_aggregate`.
    pub definition: String,
    /// `pg_get_function_result` (none for a procedure).
    pub result: Option<String>,
    /// `pg_get_function_arguments`: names, modes, types and defaults.
    pub arguments: String,
    pub language: String,
    pub security_definer: bool,
    /// `i`, `s` or `v`.
    pub volatility: char,
    /// `proconfig`: `search_path=…` and other `SET`s, in order.
    pub config: Vec<String>,
    pub comment: Option<String>,
    pub grants: Grants,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionKind {
    Function,
    Procedure,
    Aggregate,
    Window,
}

/// Whose default privileges, where, on what.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DefaultPrivilegeKey {
    /// The role whose new objects get them (`FOR ROLE`).
    pub role: String,
    /// `IN SCHEMA`, or none for the role's objects anywhere.
    pub schema: Option<String>,
    /// `TABLES`, `SEQUENCES`, `FUNCTIONS`, `TYPES` or `SCHEMAS`.
    pub objects: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_as_quote_ident_quotes_them() {
        assert!(
            NOT_BARE.windows(2).all(|w| w[0] < w[1]),
            "sorted for binary_search"
        );
        assert_eq!(ident("profiles"), "profiles");
        assert_eq!(ident("_x1"), "_x1");
        assert_eq!(ident("a$"), "\"a$\"");
        assert_eq!(ident("User"), "\"User\"");
        assert_eq!(ident("user"), "\"user\"");
        assert_eq!(ident("order"), "\"order\"");
        assert_eq!(ident("name"), "name");
        assert_eq!(ident("1st"), "\"1st\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(ident(""), "\"\"");
        assert_eq!(
            Name::new("public", "Order Items").to_string(),
            "public.\"Order Items\""
        );
    }

    #[test]
    fn literals_double_quotes_and_escape_backslashes() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal("a\\b"), "E'a\\\\b'");
    }
}
