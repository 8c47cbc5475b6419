//! What Supabase owns in a database, for the engine and the developer tools alike:
//! the schemas no app may claim or drop ([`MANAGED_SCHEMAS`]), and the extensions
//! Supabase projects create with where each comes from off Supabase ([`extensions`]).
//!
//! Must not: touch a database or the file system; import any other plover module.

pub mod extensions;

/// Schemas that Supabase (or an extension it installs) owns and maintains: `db dump`
/// leaves them out unless asked, `db reset --env` never drops them, and no app may
/// claim them in plover.toml `schemas`. `pg_*` schemas are excluded everywhere too.
pub const MANAGED_SCHEMAS: &[&str] = &[
    "_analytics",
    "_realtime",
    "_supavisor",
    "auth",
    "cron",
    "dbdev",
    "extensions",
    "graphql",
    "graphql_public",
    "information_schema",
    "net",
    "pgbouncer",
    "pgmq",
    "pgsodium",
    "pgsodium_masks",
    "pgtle",
    "realtime",
    "repack",
    "storage",
    "supabase_functions",
    "supabase_migrations",
    "tiger",
    "tiger_data",
    "topology",
    "vault",
];

/// Whether `schema` is Supabase's or the system's, never an app's.
pub fn is_managed_schema(schema: &str) -> bool {
    schema.starts_with("pg_") || MANAGED_SCHEMAS.contains(&schema)
}
