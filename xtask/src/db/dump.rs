//! `cargo xtask db dump`: pg_dump with the Supabase CLI's exclusions.
//!
//! Like `supabase db dump`: the schema by default, `--data-only` the rows,
//! `--roles` the roles; Supabase's managed schemas, the migration histories and
//! the reserved roles are left out so the file can be applied to another project.
//! Which pg_dump runs is [`Tools`]'s business; the arguments and the filters are
//! pure functions here.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use plover::supabase::MANAGED_SCHEMAS;

use super::Ctx;
use super::pgtools::{Scratch, Tools, write_private};
use crate::flags::DbDump;

/// plover's own history schema: left out like `supabase_migrations`.
const PLOVER_SCHEMA: &str = "plover";

/// Extension schemas the Supabase CLI also leaves out, as pg_dump patterns (they do
/// not fit the exact names of [`MANAGED_SCHEMAS`]).
const EXTRA_SCHEMA_PATTERNS: &[&str] = &["pg_*", "timescaledb_*", "_timescaledb_*"];

/// Managed schemas whose rows a data dump keeps, as the Supabase CLI does: users,
/// files and jobs move with the project.
const DATA_KEPT_SCHEMAS: &[&str] = &[
    "auth",
    "storage",
    "supabase_functions",
    "cron",
    "net",
    "pgmq",
];

/// Migration histories inside the kept schemas: the new project has its own.
const DATA_EXCLUDED_TABLES: &[&str] = &[
    "auth.schema_migrations",
    "storage.migrations",
    "supabase_functions.migrations",
];

/// Roles Supabase creates in every project (the Supabase CLI's list): a roles dump
/// leaves them out, as the new project has them already.
const RESERVED_ROLES: &[&str] = &[
    "anon",
    "authenticated",
    "authenticator",
    "dashboard_user",
    "pgbouncer",
    "postgres",
    "service_role",
    "supabase_admin",
    "supabase_auth_admin",
    "supabase_functions_admin",
    "supabase_read_only_user",
    "supabase_realtime_admin",
    "supabase_replication_admin",
    "supabase_storage_admin",
    "pgsodium_keyholder",
    "pgsodium_keyiduser",
    "pgsodium_keymaker",
    "pgtle_admin",
];

/// What to dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Schema,
    Data,
    Roles,
}

impl What {
    fn word(self) -> &'static str {
        match self {
            What::Schema => "schema",
            What::Data => "data",
            What::Roles => "roles",
        }
    }
}

impl DbDump {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        let what = if self.data_only {
            What::Data
        } else if self.roles {
            What::Roles
        } else {
            What::Schema
        };
        if what == What::Roles && !self.schemas.is_empty() {
            bail!("--schema does not apply to --roles (roles belong to the whole server)");
        }
        let target = ctx.target()?;
        let tools = Tools::for_target(&target).await?;
        eprintln!(
            "dumping the {} of {target} with {}",
            what.word(),
            tools.describe()
        );
        let scratch = Scratch::new("dump");
        let mut args = dump_args(what, &self.schemas);
        if tools.major() < 14 {
            // --extension came with pg_dump 14.
            args.retain(|a| !a.starts_with("--extension"));
        }
        let text = if what == What::Roles {
            tools.pg_dumpall(&target, &args, scratch.path())?;
            filter_roles(&scratch.read()?)
        } else {
            tools.pg_dump(&target, &args, scratch.path())?;
            let text = scratch.read()?;
            if what == What::Schema {
                filter_schema(&text)
            } else {
                text
            }
        };
        match &self.file {
            Some(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                write_private(path, text.as_bytes())?;
                eprintln!("wrote the {} to {}", what.word(), path.display());
            }
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .context("writing the dump to stdout")?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// pg_dump's (or pg_dumpall's) arguments, without the connection.
fn dump_args(what: What, schemas: &[String]) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    match what {
        What::Roles => {
            args.extend(["--roles-only".into(), "--no-role-passwords".into()]);
            return args;
        }
        What::Schema => {
            args.push("--schema-only".into());
            if schemas.is_empty() {
                // As `supabase db dump`: every extension, and no event triggers
                // (those are the platform's).
                args.push("--extension=*".into());
            }
        }
        What::Data => args.push("--data-only".into()),
    }
    if schemas.is_empty() {
        let excluded = MANAGED_SCHEMAS
            .iter()
            .copied()
            .filter(|s| what != What::Data || !DATA_KEPT_SCHEMAS.contains(s))
            .chain([PLOVER_SCHEMA])
            .chain(EXTRA_SCHEMA_PATTERNS.iter().copied());
        args.extend(excluded.map(|s| format!("--exclude-schema={s}")));
    } else {
        args.extend(schemas.iter().map(|s| format!("--schema={s}")));
    }
    if what == What::Data {
        args.extend(
            DATA_EXCLUDED_TABLES
                .iter()
                .map(|t| format!("--exclude-table={t}")),
        );
    }
    args
}

/// pg_dumpall's roles without Supabase's reserved ones: their `CREATE ROLE`,
/// `ALTER ROLE` and the memberships granted to them are dropped, so the file
/// applies to another project. Passwords were never dumped (`--no-role-passwords`).
fn filter_roles(text: &str) -> String {
    let reserved = |name: &str| {
        let name = name.trim_matches('"');
        RESERVED_ROLES.contains(&name) || name.starts_with("pg_")
    };
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let words: Vec<&str> = line
            .trim_end()
            .trim_end_matches(';')
            .split_whitespace()
            .collect();
        let drop = match words.as_slice() {
            ["CREATE", "ROLE", name, ..] | ["ALTER", "ROLE", name, ..] => reserved(name),
            // GRANT a TO b [WITH ...] [GRANTED BY c]
            ["GRANT", rest @ ..] => rest
                .iter()
                .position(|w| *w == "TO")
                .and_then(|i| rest.get(i + 1))
                .is_some_and(|g| reserved(g)),
            _ => false,
        };
        if !drop {
            out.push_str(line);
        }
    }
    out
}

/// A schema dump with the statements only Supabase may run commented out, as the
/// Supabase CLI does: default privileges of `supabase_admin` and comments on
/// extensions (owned by the platform).
fn filter_schema(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.starts_with("ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin")
            || line.starts_with("COMMENT ON EXTENSION ")
        {
            out.push_str("-- ");
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(args: &[String], arg: &str) -> bool {
        args.iter().any(|a| a == arg)
    }

    #[test]
    fn schema_dumps_leave_managed_schemas_out() {
        let args = dump_args(What::Schema, &[]);
        assert_eq!(args[0], "--schema-only");
        for s in [
            "auth",
            "storage",
            "supabase_migrations",
            "plover",
            "pg_*",
            "extensions",
        ] {
            assert!(
                has(&args, &format!("--exclude-schema={s}")),
                "{s}: {args:?}"
            );
        }
        assert!(!has(&args, "--exclude-schema=public"));
        // --schema replaces the exclusions.
        let args = dump_args(What::Schema, &["auth".into(), "public".into()]);
        assert_eq!(
            args,
            ["--schema-only", "--schema=auth", "--schema=public"].map(String::from)
        );
    }

    #[test]
    fn data_dumps_keep_users_but_not_histories() {
        let args = dump_args(What::Data, &[]);
        assert_eq!(args[0], "--data-only");
        assert!(!has(&args, "--exclude-schema=auth"), "{args:?}");
        assert!(!has(&args, "--exclude-schema=storage"), "{args:?}");
        for s in ["supabase_migrations", "plover", "realtime", "vault"] {
            assert!(
                has(&args, &format!("--exclude-schema={s}")),
                "{s}: {args:?}"
            );
        }
        for t in DATA_EXCLUDED_TABLES {
            assert!(has(&args, &format!("--exclude-table={t}")), "{t}: {args:?}");
        }
    }

    #[test]
    fn roles_leave_reserved_ones_out() {
        let dump = "\
--
-- Roles
--

CREATE ROLE anon;
ALTER ROLE anon WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
CREATE ROLE reporting;
ALTER ROLE reporting WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;
ALTER ROLE \"Quoted\" SET statement_timeout TO '5s';
GRANT anon TO authenticator GRANTED BY postgres;
GRANT reporting TO alice GRANTED BY postgres;
GRANT reporting TO \"service_role\";
";
        let kept = filter_roles(dump);
        assert_eq!(
            kept,
            "\
--
-- Roles
--

CREATE ROLE reporting;
ALTER ROLE reporting WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;
ALTER ROLE \"Quoted\" SET statement_timeout TO '5s';
GRANT reporting TO alice GRANTED BY postgres;
"
        );
    }

    #[test]
    fn platform_statements_are_commented_out() {
        assert_eq!(
            filter_schema(
                "COMMENT ON EXTENSION pgcrypto IS 'x';\nCREATE TABLE public.t ();\nALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public GRANT ALL ON TABLES TO anon;\n"
            ),
            "-- COMMENT ON EXTENSION pgcrypto IS 'x';\nCREATE TABLE public.t ();\n-- ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public GRANT ALL ON TABLES TO anon;\n"
        );
    }
}
