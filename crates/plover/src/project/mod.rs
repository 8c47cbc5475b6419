//! A Supabase project on disk, as developer tools see it (feature `project`): the
//! layout under a work directory, `supabase/config.toml`, plover's own
//! `supabase/plover.toml`, `.env`, the linked environment, and which database an
//! environment name means.
//!
//! The parsing and the target resolution are pure: they take file contents and a
//! [`Vars`] map, so they are tested without touching files or the process
//! environment. This module must not connect to a database, and must never put a
//! password into an error message or a [`Target`]'s description (use
//! [`Target::redacted`] to show one).
//!
//! # `supabase/plover.toml`
//!
//! Optional; the Supabase CLI ignores it.
//!
//! ```toml
//! # The history namespace of this project's migrations (default "default").
//! app = "money_tracker"
//!
//! [environments.staging]
//! # A variable holding the connection string, tried after STAGING_DATABASE_URL and
//! # the SUPABASE_PROJECT_REF_STAGING + SUPABASE_DB_PASSWORD_STAGING pair.
//! url_env = "MY_STAGING_URL"
//! protected = false
//!
//! [environments.prod]
//! # Destructive commands need the name typed back, or --confirm prod.
//! # `prod` and `production` are protected unless this says otherwise.
//! protected = true
//! ```
//!
//! # Targets
//!
//! Environment names are case-insensitive: `PROD` and `Prod` are `prod` (names are
//! lower-cased once, by [`canonical_env`], and so are the `[environments.NAME]` keys).
//!
//! `local` is the local development database: `DATABASE_URL` when set, else the
//! plover-managed local cluster, `postgres://postgres:postgres@127.0.0.1:<[db]
//! port>/postgres` ([`Origin::LocalCluster`]). Any other name `NAME` (upper-cased, `-`
//! read as `_`) is, in order: `NAME_DATABASE_URL`; the Supabase pair
//! `SUPABASE_PROJECT_REF_NAME` + `SUPABASE_DB_PASSWORD_NAME` (user `postgres` at
//! `db.<ref>.supabase.co:5432`, database `postgres`; the password may hold any
//! character); the variable named by `url_env`. Variables come from the process
//! environment, then from `.env` in the work directory (which never overrides the
//! process). A variable's value is parsed once ([`ConnInfo`]); one that does not parse
//! is an error naming the variable, never showing the value.
//!
//! ```
//! use plover::project::{Origin, Project, Vars};
//!
//! let project = Project::parse("/work/app", Some("[db]\nport = 5433\n"), None).unwrap();
//! let target = project.target("local", &Vars::default()).unwrap();
//! assert_eq!(target.origin(), &Origin::LocalCluster);
//! assert_eq!(target.redacted(), "postgres://postgres:****@127.0.0.1:5433/postgres");
//! assert_eq!(target.server(), "127.0.0.1:5433/postgres");
//! ```

mod config;
mod files;
mod grants;
pub mod reset;
mod targets;

use std::path::{Path, PathBuf};

use crate::conninfo::{ConnInfo, ConnInfoError};
use targets::env_key;

pub use config::{DEFAULT_MAJOR_VERSION, Environment, LintSettings, PloverConfig, SupabaseConfig};
pub use files::{next_version, snake_name, utc_rfc3339, utc_version};
pub use grants::SchemaGrants;
pub use reset::{AppObjects, Catalog, Object, Reset, ResetPlan, Restored};
pub use targets::{LINK_FILE, LOCAL, Origin, Protection, Target, Vars, canonical_env};

/// What can go wrong reading a project or resolving a target. Messages never hold a
/// password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectError {
    /// The work directory has no `supabase/` folder.
    #[error("{workdir} has no supabase/ folder; run from a Supabase project or pass --workdir DIR")]
    NoSupabaseDir { workdir: PathBuf },

    /// A file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `config.toml` or `plover.toml` is not valid TOML or has a wrong type.
    #[error("{file}: {message}")]
    Config { file: String, message: String },

    /// A `.env` line that does not parse (its content is not shown: it may hold a secret).
    #[error("{file}:{line}: cannot parse this line; write it as NAME=value")]
    DotEnv { file: PathBuf, line: usize },

    /// An environment name with characters other than letters, digits, `-` and `_`.
    #[error("invalid environment name {name:?}; use letters, digits, `-` and `_`")]
    InvalidEnvName { name: String },

    /// A variable whose value is not a usable connection string (the value is not
    /// shown: it may be a password).
    #[error("{var} {source}")]
    ConnectionString {
        var: String,
        #[source]
        source: ConnInfoError,
    },

    /// A Supabase project ref that cannot be part of a host name.
    #[error(
        "{var} is not a Supabase project ref (letters and digits, as in db.<ref>.supabase.co); set it to the project's ref"
    )]
    InvalidProjectRef { var: String },

    /// No variable gives a database for this environment.
    #[error("no database for environment {env}: set {tried}{hint}")]
    NoTarget {
        env: String,
        /// The variables tried, in order, as "A, or B + C, or D".
        tried: String,
        hint: String,
    },
}

/// A Supabase project under a work directory.
#[derive(Clone, Debug)]
pub struct Project {
    workdir: PathBuf,
    config: SupabaseConfig,
    plover: PloverConfig,
}

impl Project {
    /// Reads `<workdir>/supabase/config.toml` and `<workdir>/supabase/plover.toml`
    /// (both optional; the `supabase/` folder is not).
    pub fn load(workdir: impl Into<PathBuf>) -> Result<Project, ProjectError> {
        let workdir = workdir.into();
        let supabase = workdir.join("supabase");
        if !supabase.is_dir() {
            return Err(ProjectError::NoSupabaseDir { workdir });
        }
        let read = |name: &str| -> Result<Option<String>, ProjectError> {
            let path = supabase.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(ProjectError::Io {
                    action: "read",
                    path,
                    source,
                }),
            }
        };
        let config = read("config.toml")?;
        let plover = read("plover.toml")?;
        Project::parse(workdir, config.as_deref(), plover.as_deref())
    }

    /// A project from the two files' contents (`None` for a missing file).
    pub fn parse(
        workdir: impl Into<PathBuf>,
        config_toml: Option<&str>,
        plover_toml: Option<&str>,
    ) -> Result<Project, ProjectError> {
        let config = config_toml
            .map(|t| SupabaseConfig::parse("supabase/config.toml", t))
            .transpose()?
            .unwrap_or_default();
        let plover = plover_toml
            .map(|t| PloverConfig::parse("supabase/plover.toml", t))
            .transpose()?
            .unwrap_or_default();
        Ok(Project {
            workdir: workdir.into(),
            config,
            plover,
        })
    }

    /// The work directory (it holds `supabase/`).
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }
    /// `<workdir>/supabase/migrations`.
    pub fn migrations_dir(&self) -> PathBuf {
        self.workdir.join("supabase").join("migrations")
    }
    /// What plover reads of `supabase/config.toml`.
    pub fn config(&self) -> &SupabaseConfig {
        &self.config
    }
    /// `supabase/plover.toml`.
    pub fn plover(&self) -> &PloverConfig {
        &self.plover
    }
    /// The history namespace of this project's migrations.
    pub fn app(&self) -> &str {
        self.plover
            .app
            .as_deref()
            .unwrap_or(crate::migrator::DEFAULT_APP)
    }

    /// The schemas this app owns: `schemas` of plover.toml, else `public`.
    pub fn app_schemas(&self) -> Vec<String> {
        self.plover
            .schemas
            .clone()
            .unwrap_or_else(|| vec!["public".to_owned()])
    }

    /// The environment `db link` recorded, if any (lower-cased).
    pub fn linked_env(&self) -> Result<Option<String>, ProjectError> {
        let path = self.workdir.join(LINK_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => match text.trim() {
                "" => Ok(None),
                env => canonical_env(env).map(Some),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ProjectError::Io {
                action: "read",
                path,
                source,
            }),
        }
    }

    /// Records `env` (lower-cased) as the default environment (in [`LINK_FILE`],
    /// git-ignored).
    pub fn link(&self, env: &str) -> Result<PathBuf, ProjectError> {
        let env = canonical_env(env)?;
        let path = self.workdir.join(LINK_FILE);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ProjectError::Io {
                action: "write",
                path,
                source,
            }
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        std::fs::write(&path, format!("{env}\n")).map_err(io(&path))?;
        Ok(path)
    }

    /// The environment a command talks to (lower-cased): `explicit` (`--env`), else
    /// the linked one, else `local`.
    pub fn choose_env(&self, explicit: Option<&str>) -> Result<String, ProjectError> {
        match explicit {
            Some(env) => canonical_env(env),
            None => Ok(self.linked_env()?.unwrap_or_else(|| LOCAL.to_owned())),
        }
    }

    /// Whether `env` (in any case) is protected: `protected` in plover.toml, else
    /// true for `prod` and `production`.
    pub fn protection(&self, env: &str) -> Protection {
        let env = env.to_ascii_lowercase();
        let configured = self.plover.environments.get(&env).and_then(|e| e.protected);
        let protected = configured.unwrap_or(matches!(env.as_str(), "prod" | "production"));
        if protected {
            Protection::Protected
        } else {
            Protection::Unprotected
        }
    }

    /// A database on the local development server (`cargo xtask db start`):
    /// `postgres://postgres:postgres@127.0.0.1:<[db] port>/<database>`.
    ///
    /// ```
    /// let project = plover::project::Project::parse("/w", Some("[db]\nport = 5433\n"), None).unwrap();
    /// assert_eq!(project.local_url("template1"), "postgres://postgres:postgres@127.0.0.1:5433/template1");
    /// ```
    pub fn local_url(&self, database: &str) -> String {
        self.local_conninfo(database).to_url()
    }

    /// [`Project::local_url`], parsed.
    pub fn local_conninfo(&self, database: &str) -> ConnInfo {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.config.db_port)
            .user("postgres")
            .password("postgres")
            .dbname(database);
        ConnInfo::from_config(config)
    }

    /// The database `env` (in any case) means (see the module docs for the order).
    pub fn target(&self, env: &str, vars: &Vars) -> Result<Target, ProjectError> {
        let env = canonical_env(env)?;
        let protection = self.protection(&env);
        let target = |conninfo: ConnInfo, origin: Origin| Target {
            env: env.clone(),
            conninfo,
            origin,
            protection,
        };
        let parse = |var: &str, text: &str| {
            ConnInfo::parse(text).map_err(|source| ProjectError::ConnectionString {
                var: var.to_owned(),
                source,
            })
        };
        if env == LOCAL {
            return Ok(match vars.get("DATABASE_URL") {
                Some(url) => target(
                    parse("DATABASE_URL", url)?,
                    Origin::Variable("DATABASE_URL".into()),
                ),
                None => target(self.local_conninfo("postgres"), Origin::LocalCluster),
            });
        }
        let key = env_key(&env);
        let url_var = format!("{key}_DATABASE_URL");
        if let Some(url) = vars.get(&url_var) {
            return Ok(target(parse(&url_var, url)?, Origin::Variable(url_var)));
        }
        let ref_var = format!("SUPABASE_PROJECT_REF_{key}");
        let pw_var = format!("SUPABASE_DB_PASSWORD_{key}");
        let mut hint = String::new();
        match (vars.get(&ref_var), vars.get(&pw_var)) {
            (Some(project_ref), Some(password)) => {
                if !project_ref.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(ProjectError::InvalidProjectRef { var: ref_var });
                }
                let mut config = tokio_postgres::Config::new();
                config
                    .host(format!("db.{project_ref}.supabase.co"))
                    .port(5432)
                    .user("postgres")
                    .password(password)
                    .dbname("postgres");
                return Ok(target(
                    ConnInfo::from_config(config),
                    Origin::Variable(format!("{ref_var} + {pw_var}")),
                ));
            }
            (Some(_), None) => hint = format!(" ({ref_var} is set but {pw_var} is not)"),
            (None, Some(_)) => hint = format!(" ({pw_var} is set but {ref_var} is not)"),
            (None, None) => {}
        }
        let mut tried = format!("{url_var}, or {ref_var} + {pw_var}");
        match self
            .plover
            .environments
            .get(&env)
            .and_then(|e| e.url_env.as_deref())
        {
            Some(var) => {
                if let Some(url) = vars.get(var) {
                    return Ok(target(parse(var, url)?, Origin::Variable(var.to_owned())));
                }
                tried.push_str(&format!(", or {var} (url_env in supabase/plover.toml)"));
            }
            None => tried.push_str(", or name a variable with url_env in supabase/plover.toml"),
        }
        Err(ProjectError::NoTarget { env, tried, hint })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const PLOVER_TOML: &str = r#"
app = "money_tracker"

[environments.staging]
url_env = "MY_STAGING_URL"

[environments.prod]

[environments.qa]
protected = true
"#;

    fn project() -> Project {
        Project::parse("/w", Some("[db]\nport = 6000\n"), Some(PLOVER_TOML)).unwrap()
    }

    fn resolve(env: &str, vars: &[(&str, &str)]) -> Result<(String, String), String> {
        project()
            .target(env, &Vars::from_pairs(vars.iter().copied()))
            .map(|t| (t.redacted(), t.from().to_owned()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn config_toml_defaults_and_values() {
        let empty = SupabaseConfig::parse("c", "").unwrap();
        assert_eq!(empty, SupabaseConfig::default());
        assert_eq!(empty.db_port, 54322);
        assert_eq!(empty.seed_paths, ["./seed.sql"]);
        assert_eq!(empty.api_schemas, ["public"]);
        assert_eq!(empty.db_major_version, 17);

        let repo = include_str!("../../../../supabase/config.toml");
        let c = SupabaseConfig::parse("c", repo).unwrap();
        assert_eq!(c.project_id.as_deref(), Some("money-tracker"));
        assert_eq!(c.db_port, 54322);
        assert_eq!(c.api_schemas, ["public", "graphql_public"]);

        let c = SupabaseConfig::parse(
            "c",
            "[db]\nport = 1\n[db.seed]\nsql_paths = [\"a.sql\", \"b/*.sql\"]\n",
        )
        .unwrap();
        assert_eq!(
            (c.db_port, c.seed_paths.len(), c.seed_enabled),
            (1, 2, true)
        );
        let c = SupabaseConfig::parse("c", "[db]\nmajor_version = 15\n").unwrap();
        assert_eq!(c.db_major_version, 15);
        let c = SupabaseConfig::parse("c", "[db.seed]\nenabled = false\n").unwrap();
        assert!(!c.seed_enabled);

        let e = SupabaseConfig::parse("supabase/config.toml", "[db]\nport = \"x\"\n").unwrap_err();
        assert!(e.to_string().starts_with("supabase/config.toml:2: "), "{e}");
    }

    #[test]
    fn plover_toml_rejects_unknown_keys() {
        let p = project();
        assert_eq!(p.app(), "money_tracker");
        assert_eq!(p.config().db_port, 6000);
        assert_eq!(
            Project::parse("/w", None, None).unwrap().app(),
            crate::migrator::DEFAULT_APP
        );
        let e = PloverConfig::parse(
            "supabase/plover.toml",
            "[environments.prod]\nprotect = false\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("protect"), "{e}");
    }

    #[test]
    fn prod_is_protected_by_default() {
        let p = project();
        assert_eq!(p.protection("prod"), Protection::Protected);
        assert_eq!(p.protection("production"), Protection::Protected);
        assert_eq!(p.protection("qa"), Protection::Protected);
        assert_eq!(p.protection("staging"), Protection::Unprotected);
        assert_eq!(p.protection("local"), Protection::Unprotected);
        let unprotected =
            Project::parse("/w", None, Some("[environments.prod]\nprotected = false\n")).unwrap();
        assert_eq!(unprotected.protection("prod"), Protection::Unprotected);
    }

    #[test]
    fn local_is_database_url_or_the_configured_port() {
        assert_eq!(
            resolve("local", &[]).unwrap(),
            (
                "postgres://postgres:****@127.0.0.1:6000/postgres".into(),
                "supabase/config.toml [db] port".into()
            )
        );
        let p = project();
        assert!(
            p.target("local", &Vars::default())
                .unwrap()
                .is_local_cluster()
        );
        let t = p
            .target(
                "local",
                &Vars::from_pairs([("DATABASE_URL", "postgres://x/y")]),
            )
            .unwrap();
        assert_eq!(t.origin(), &Origin::Variable("DATABASE_URL".into()));
        assert!(!t.is_local_cluster());
        assert_eq!(
            resolve(
                "local",
                &[
                    ("DATABASE_URL", "postgres://x/y"),
                    ("LOCAL_DATABASE_URL", "z")
                ]
            )
            .unwrap()
            .0,
            "postgres://x:5432/y"
        );
        // An empty variable counts as unset.
        assert_eq!(
            resolve("local", &[("DATABASE_URL", "")]).unwrap().1,
            "supabase/config.toml [db] port"
        );
    }

    #[test]
    fn named_environments_try_variables_in_order() {
        let all = [
            ("STAGING_DATABASE_URL", "postgres://a/a"),
            ("SUPABASE_PROJECT_REF_STAGING", "abcd"),
            ("SUPABASE_DB_PASSWORD_STAGING", "p@ss/w:rd"),
            ("MY_STAGING_URL", "postgres://c/c"),
        ];
        assert_eq!(resolve("staging", &all).unwrap().1, "STAGING_DATABASE_URL");
        assert_eq!(
            resolve("staging", &all[1..]).unwrap(),
            (
                "postgres://postgres:****@db.abcd.supabase.co:5432/postgres".into(),
                "SUPABASE_PROJECT_REF_STAGING + SUPABASE_DB_PASSWORD_STAGING".into()
            )
        );
        // The pair's password is kept as it is, whatever it holds.
        let t = project()
            .target("staging", &Vars::from_pairs(all[1..3].iter().copied()))
            .unwrap();
        assert_eq!(
            t.conninfo().config().get_password(),
            Some(&b"p@ss/w:rd"[..])
        );
        let e = resolve(
            "staging",
            &[
                ("SUPABASE_PROJECT_REF_STAGING", "ab/cd"),
                ("SUPABASE_DB_PASSWORD_STAGING", "pw"),
            ],
        )
        .unwrap_err();
        assert!(
            e.starts_with("SUPABASE_PROJECT_REF_STAGING is not a Supabase project ref"),
            "{e}"
        );
        assert_eq!(resolve("staging", &all[3..]).unwrap().1, "MY_STAGING_URL");
        assert_eq!(
            resolve("eu-west", &[("EU_WEST_DATABASE_URL", "postgres://e/e")])
                .unwrap()
                .0,
            "postgres://e:5432/e"
        );
    }

    #[test]
    fn unresolved_environments_name_what_was_tried() {
        assert_eq!(
            resolve("staging", &[]).unwrap_err(),
            "no database for environment staging: set STAGING_DATABASE_URL, or SUPABASE_PROJECT_REF_STAGING + SUPABASE_DB_PASSWORD_STAGING, or MY_STAGING_URL (url_env in supabase/plover.toml)"
        );
        let e = resolve("prod", &[("SUPABASE_DB_PASSWORD_PROD", "s3cr3t")]).unwrap_err();
        assert_eq!(
            e,
            "no database for environment prod: set PROD_DATABASE_URL, or SUPABASE_PROJECT_REF_PROD + SUPABASE_DB_PASSWORD_PROD, or name a variable with url_env in supabase/plover.toml (SUPABASE_DB_PASSWORD_PROD is set but SUPABASE_PROJECT_REF_PROD is not)"
        );
        assert!(!e.contains("s3cr3t"));
        assert_eq!(
            resolve("st/aging", &[]).unwrap_err(),
            "invalid environment name \"st/aging\"; use letters, digits, `-` and `_`"
        );
    }

    #[test]
    fn targets_show_only_redacted_urls() {
        let t = project()
            .target(
                "prod",
                &Vars::from_pairs([("PROD_DATABASE_URL", "postgres://u:s3cr3t@h/d")]),
            )
            .unwrap();
        let shown = format!("{t} {t:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert_eq!(
            t.to_string(),
            "prod postgres://u:****@h:5432/d (from PROD_DATABASE_URL, protected)"
        );
    }

    #[test]
    fn values_that_are_not_connection_strings_are_never_shown() {
        for (value, says) in [
            (
                "hunter2-s3cr3t",
                "STAGING_DATABASE_URL does not parse as a connection string",
            ),
            (
                "s3cr3t=hunter2",
                "STAGING_DATABASE_URL does not parse as a connection string",
            ),
            (
                "postgres://u:s3cr3t@hunter2@h/d",
                "STAGING_DATABASE_URL does not parse: its password seems to hold an unencoded `@`; percent-encode",
            ),
        ] {
            let e = resolve("staging", &[("STAGING_DATABASE_URL", value)]).unwrap_err();
            assert!(e.starts_with(says), "{e}");
            assert!(!e.contains("s3cr3t") && !e.contains("hunter2"), "{e}");
        }
        let e = resolve("staging", &[("MY_STAGING_URL", "hunter2")]).unwrap_err();
        assert!(e.starts_with("MY_STAGING_URL does not parse"), "{e}");
    }

    #[test]
    fn environment_names_are_case_insensitive() {
        let p = project();
        for name in ["PROD", "Prod", "prod"] {
            assert_eq!(p.protection(name), Protection::Protected, "{name}");
            let t = p
                .target(
                    name,
                    &Vars::from_pairs([("PROD_DATABASE_URL", "postgres://h/d")]),
                )
                .unwrap();
            assert_eq!((t.env(), t.protection()), ("prod", Protection::Protected));
            assert_eq!(p.choose_env(Some(name)).unwrap(), "prod");
        }
        assert_eq!(p.protection("QA"), Protection::Protected);
        // Keys of [environments] in any case, url_env found whatever the case asked.
        let p = Project::parse(
            "/w",
            None,
            Some("[environments.Staging]\nprotected = true\nurl_env = \"S\"\n"),
        )
        .unwrap();
        assert_eq!(p.protection("staging"), Protection::Protected);
        let t = p
            .target("STAGING", &Vars::from_pairs([("S", "postgres://h/d")]))
            .unwrap();
        assert_eq!((t.env(), t.from()), ("staging", "S"));
        let e = PloverConfig::parse(
            "supabase/plover.toml",
            "[environments.prod]\n[environments.PROD]\nprotected = false\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("two [environments] tables name `prod`"),
            "{e}"
        );
    }

    #[test]
    fn empty_app_names_are_refused() {
        for text in ["app = \"\"\n", "# x\napp = \"  \"\n"] {
            let e = PloverConfig::parse("supabase/plover.toml", text)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("supabase/plover.toml:"), "{e}");
            assert!(e.contains("app is empty"), "{e}");
        }
        assert!(
            PloverConfig::parse("supabase/plover.toml", "# x\napp = \"\"\n")
                .unwrap_err()
                .to_string()
                .starts_with("supabase/plover.toml:2: ")
        );
    }

    #[test]
    fn names_become_snake_case() {
        let check = |input: &str, expected: Option<&str>| {
            assert_eq!(snake_name(input).as_deref(), expected, "{input:?}")
        };
        check("add_budgets", Some("add_budgets"));
        check("Add Budgets", Some("add_budgets"));
        check("add-budget--lines.v2", Some("add_budget_lines_v2"));
        check("createHTTPLog", Some("create_httplog"));
        check("__x__", Some("x"));
        check("ünïcode", Some("n_code"));
        check("", None);
        check("???", None);
    }

    #[test]
    fn versions_are_utc_timestamps_and_monotonic() {
        assert_eq!(utc_version(UNIX_EPOCH), 19700101000000);
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_version(leap), 20000229000000);
        let t = UNIX_EPOCH + Duration::from_secs(1_767_225_599); // 2025-12-31 23:59:59
        assert_eq!(utc_version(t), 20251231235959);
        assert_eq!(utc_rfc3339(t), "2025-12-31T23:59:59Z");
        assert_eq!(next_version(5, None), 5);
        assert_eq!(next_version(5, Some(4)), 5);
        assert_eq!(next_version(5, Some(5)), 6);
        assert_eq!(next_version(5, Some(9)), 10);
    }

    #[test]
    fn link_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("plover-project-{}", std::process::id()));
        let p = Project::parse(&dir, None, None).unwrap();
        assert_eq!(p.choose_env(None).unwrap(), "local");
        p.link("STAGING").unwrap();
        assert_eq!(p.linked_env().unwrap().as_deref(), Some("staging"));
        assert_eq!(p.choose_env(None).unwrap(), "staging");
        assert_eq!(p.choose_env(Some("prod")).unwrap(), "prod");
        assert!(p.link("a b").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dotenv_never_overrides_the_process() {
        let dir = std::env::temp_dir().join(format!("plover-dotenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // PATH is set in every test process; the file must not win over it.
        std::fs::write(
            dir.join(".env"),
            "PLOVER_DOTENV_ONLY=from-file\nPATH=from-file\n",
        )
        .unwrap();
        let vars = Vars::from_process_and_dotenv(&dir).unwrap();
        assert_eq!(vars.get("PLOVER_DOTENV_ONLY"), Some("from-file"));
        assert_ne!(vars.get("PATH"), Some("from-file"));
        std::fs::write(dir.join(".env"), "OK=1\nthis is not a line with s3cr3t\n").unwrap();
        let e = Vars::from_process_and_dotenv(&dir).unwrap_err().to_string();
        assert!(
            e.ends_with(".env:2: cannot parse this line; write it as NAME=value"),
            "{e}"
        );
        assert!(!e.contains("s3cr3t"));
        // Errors found in the value (an unquoted space, a bad escape) and after
        // comments and blank lines.
        for (text, line) in [
            ("OK=1\nURL=postgres://u:s3cr3t pw@h/d\n", 2),
            ("# c\n\nOK=1\nA=\"x\"\nB=s3cr3t\\q\n", 5),
            ("OK=1\n\n  export  bad key=s3cr3t\n", 3),
        ] {
            std::fs::write(dir.join(".env"), text).unwrap();
            let e = Vars::from_process_and_dotenv(&dir).unwrap_err().to_string();
            assert!(e.contains(&format!(".env:{line}: ")), "{text:?}: {e}");
            assert!(!e.contains("s3cr3t"));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
