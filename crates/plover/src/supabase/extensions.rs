//! The extensions Supabase projects create, and where each comes from off Supabase.
//!
//! Some are real builds that a distribution packages (Debian/Ubuntu:
//! `postgresql-<major>-pgvector`…; plover's local image has them); the ones only
//! Supabase ships (`pg_net`, `pg_graphql`, `supabase_vault`, `pgsodium`, `pgjwt`,
//! `wrappers`, `pg_jsonschema`, `pgmq`) have plover **stand-ins**: real extensions (a
//! control file and a SQL script, in this crate's `extensions/` directory) with
//! the objects and signatures migrations use, inert where the real one talks to
//! the network. Each file's header says what it does and does not do.
//!
//! When a migration's `CREATE EXTENSION` fails because the server lacks the files,
//! [`missing_extension`] finds the name in the server's error and [`install_hint`]
//! says how to get it.
//!
//! Must not: touch a database or the file system (`xtask db extensions` writes the
//! stand-ins into a server's extension directory).

/// Where an extension comes from when the server is not Supabase's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Part of PostgreSQL itself (`contrib`): present wherever the server is.
    Contrib,
    /// A real build in a distribution package; the name is the Debian/Ubuntu
    /// package without its `postgresql-<major>-` prefix.
    Package(&'static str),
    /// A plover stand-in ([`STAND_IN_FILES`]).
    StandIn,
    /// Only Supabase ships it; plover has no stand-in.
    SupabaseOnly,
}

/// One extension a Supabase project may create.
#[derive(Debug, Clone, Copy)]
pub struct Extension {
    pub name: &'static str,
    pub origin: Origin,
}

const fn ext(name: &'static str, origin: Origin) -> Extension {
    Extension { name, origin }
}

/// The extensions Supabase offers that plover knows where to find.
pub const SUPABASE_EXTENSIONS: &[Extension] = &[
    ext("pgcrypto", Origin::Contrib),
    ext("uuid-ossp", Origin::Contrib),
    ext("pg_stat_statements", Origin::Contrib),
    ext("pg_trgm", Origin::Contrib),
    ext("citext", Origin::Contrib),
    ext("hstore", Origin::Contrib),
    ext("ltree", Origin::Contrib),
    ext("unaccent", Origin::Contrib),
    ext("fuzzystrmatch", Origin::Contrib),
    ext("btree_gin", Origin::Contrib),
    ext("btree_gist", Origin::Contrib),
    ext("cube", Origin::Contrib),
    ext("earthdistance", Origin::Contrib),
    ext("pg_walinspect", Origin::Contrib),
    ext("postgres_fdw", Origin::Contrib),
    ext("dblink", Origin::Contrib),
    ext("tablefunc", Origin::Contrib),
    ext("intarray", Origin::Contrib),
    ext("moddatetime", Origin::Contrib),
    ext("vector", Origin::Package("pgvector")),
    ext("pg_cron", Origin::Package("cron")),
    ext("http", Origin::Package("http")),
    ext("pgtap", Origin::Package("pgtap")),
    ext("plpgsql_check", Origin::Package("plpgsql-check")),
    ext("pg_partman", Origin::Package("partman")),
    ext("postgis", Origin::Package("postgis-3")),
    ext("pgrouting", Origin::Package("pgrouting")),
    ext("hypopg", Origin::Package("hypopg")),
    ext("pgaudit", Origin::Package("pgaudit")),
    ext("pg_repack", Origin::Package("repack")),
    ext("rum", Origin::Package("rum")),
    ext("timescaledb", Origin::Package("timescaledb")),
    ext("pg_net", Origin::StandIn),
    ext("pg_graphql", Origin::StandIn),
    ext("supabase_vault", Origin::StandIn),
    ext("pgsodium", Origin::StandIn),
    ext("pgjwt", Origin::StandIn),
    ext("wrappers", Origin::StandIn),
    ext("pg_jsonschema", Origin::StandIn),
    ext("pgmq", Origin::StandIn),
    ext("pg_hashids", Origin::SupabaseOnly),
    ext("pgroonga", Origin::SupabaseOnly),
    ext("plv8", Origin::SupabaseOnly),
    ext("index_advisor", Origin::SupabaseOnly),
    ext("pg_tle", Origin::SupabaseOnly),
];

/// One file of a stand-in: its name in the server's extension directory and its
/// bytes.
#[derive(Debug, Clone, Copy)]
pub struct StandInFile {
    pub name: &'static str,
    pub contents: &'static str,
}

macro_rules! stand_in {
    ($($file:literal),* $(,)?) => {
        &[$(StandInFile {
            name: $file,
            contents: include_str!(concat!("../../extensions/", $file)),
        }),*]
    };
}

/// The stand-ins' files, for a server's `$(pg_config --sharedir)/extension`.
pub const STAND_IN_FILES: &[StandInFile] = stand_in![
    "pg_net.control",
    "pg_net--0.14.0.sql",
    "pg_graphql.control",
    "pg_graphql--1.5.11.sql",
    "supabase_vault.control",
    "supabase_vault--0.3.1.sql",
    "pgsodium.control",
    "pgsodium--3.1.8.sql",
    "pgjwt.control",
    "pgjwt--0.2.0.sql",
    "wrappers.control",
    "wrappers--0.5.0.sql",
    "pg_jsonschema.control",
    "pg_jsonschema--0.3.3.sql",
    "pgmq.control",
    "pgmq--1.5.1.sql",
    // pgsql-http is packaged for some majors only (Debian: 17, not 15).
    "http.control",
    "http--1.6.sql",
];

/// Text every stand-in's control file holds, telling it from a real build's.
pub const STAND_IN_MARK: &str = "plover stand-in";

/// The extension a stand-in file is part of: `pg_net` for `pg_net.control` and
/// `pg_net--0.14.0.sql`.
pub fn extension_of(file: &str) -> &str {
    file.split(['.', '-']).next().unwrap_or(file)
}

/// Whether plover has a stand-in for `name` (also for some packaged extensions,
/// for the servers whose distribution lacks them: `http`).
pub fn has_stand_in(name: &str) -> bool {
    STAND_IN_FILES
        .iter()
        .any(|f| f.name.strip_suffix(".control") == Some(name))
}

/// The extension named `name`, if plover knows it.
pub fn find(name: &str) -> Option<&'static Extension> {
    SUPABASE_EXTENSIONS.iter().find(|e| e.name == name)
}

/// The extension a server error says it cannot find, and the server's major
/// version when the error's path shows it: PostgreSQL 15 says `could not open
/// extension control file ".../15/extension/NAME.control"`, 16 and later say
/// `extension "NAME" is not available` (the path in the detail).
pub fn missing_extension(message: &str, detail: Option<&str>) -> Option<(String, Option<u32>)> {
    let path_text = [Some(message), detail]
        .into_iter()
        .flatten()
        .find_map(|text| {
            let start = text.find("extension control file \"")? + "extension control file \"".len();
            let rest = &text[start..];
            Some(&rest[..rest.find('"')?])
        });
    let name = match path_text {
        Some(path) => path
            .rsplit('/')
            .next()?
            .strip_suffix(".control")?
            .to_owned(),
        None => {
            let rest = message.strip_prefix("extension \"")?;
            let (name, tail) = rest.split_once('"')?;
            if tail.trim() != "is not available" {
                return None;
            }
            name.to_owned()
        }
    };
    // Debian-style paths: .../postgresql/<major>/extension/NAME.control
    let major = path_text.and_then(|path| {
        let mut parts = path.rsplit('/').skip(2);
        parts.next()?.parse().ok()
    });
    Some((name, major))
}

/// How to get the extension `name` onto a server of major version `major`.
pub fn install_hint(name: &str, major: Option<u32>) -> String {
    let major = major.map_or_else(|| "<major>".to_owned(), |m| m.to_string());
    match find(name).map(|e| e.origin) {
        Some(Origin::Contrib) => format!(
            "{name} is part of PostgreSQL's contrib: install the server's full package (Debian/Ubuntu: `apt-get install postgresql-{major}`)"
        ),
        Some(Origin::Package(package)) if has_stand_in(name) => format!(
            "{name} is not installed on this server: install it (Debian/Ubuntu: `apt-get install postgresql-{major}-{package}`, where the distribution has it), or plover's stand-in (`sudo cargo xtask db extensions --install`), or use plover's local image (`cargo xtask db reset-local --docker`)"
        ),
        Some(Origin::Package(package)) => format!(
            "{name} is not installed on this server: install it (Debian/Ubuntu: `apt-get install postgresql-{major}-{package}`), or use plover's local image, which has it (`cargo xtask db reset-local --docker`)"
        ),
        Some(Origin::StandIn) => format!(
            "{name} ships only with Supabase; plover has a stand-in: install the stand-ins into this server (`sudo cargo xtask db extensions --install`), or use plover's local image, which has them (`cargo xtask db reset-local --docker`)"
        ),
        Some(Origin::SupabaseOnly) => format!(
            "{name} ships only with Supabase and plover has no stand-in for it: run this project against a Supabase database (or the Supabase CLI's local stack)"
        ),
        None => format!(
            "{name} is not installed on this server: install it there (its package, or from source), then run again"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stand_in_has_a_marked_control_file_and_the_script_of_its_default_version() {
        let stand_ins: Vec<_> = SUPABASE_EXTENSIONS
            .iter()
            .filter(|e| e.origin == Origin::StandIn)
            .collect();
        let packaged_with_stand_in = SUPABASE_EXTENSIONS
            .iter()
            .filter(|e| matches!(e.origin, Origin::Package(_)) && has_stand_in(e.name));
        assert_eq!(packaged_with_stand_in.clone().count(), 1, "http");
        assert_eq!((stand_ins.len() + 1) * 2, STAND_IN_FILES.len());
        for e in stand_ins.into_iter().chain(packaged_with_stand_in) {
            let control = STAND_IN_FILES
                .iter()
                .find(|f| f.name == format!("{}.control", e.name))
                .unwrap_or_else(|| panic!("no control file for {}", e.name));
            assert!(control.contents.contains(STAND_IN_MARK), "{}", e.name);
            let version = control
                .contents
                .lines()
                .find_map(|l| l.strip_prefix("default_version = '"))
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or_else(|| panic!("no default_version in {}.control", e.name));
            let script = format!("{}--{version}.sql", e.name);
            assert!(
                STAND_IN_FILES.iter().any(|f| f.name == script),
                "{script} is missing"
            );
        }
    }

    #[test]
    fn finds_the_missing_extension_in_the_errors_of_15_and_of_16_and_later() {
        assert_eq!(
            missing_extension(
                "could not open extension control file \"/usr/share/postgresql/15/extension/vector.control\": No such file or directory",
                None
            ),
            Some(("vector".to_owned(), Some(15)))
        );
        assert_eq!(
            missing_extension(
                "extension \"pg_net\" is not available",
                Some(
                    "Could not open extension control file \"/usr/share/postgresql/17/extension/pg_net.control\": No such file or directory."
                )
            ),
            Some(("pg_net".to_owned(), Some(17)))
        );
        assert_eq!(
            missing_extension("extension \"http\" is not available", None),
            Some(("http".to_owned(), None))
        );
        assert_eq!(
            missing_extension("relation \"x\" does not exist", None),
            None
        );
    }

    #[test]
    fn hints_name_the_package_or_the_stand_in_command() {
        assert!(install_hint("vector", Some(15)).contains("postgresql-15-pgvector"));
        assert!(install_hint("pg_net", None).contains("db extensions --install"));
        assert!(install_hint("plv8", None).contains("no stand-in"));
    }
}
