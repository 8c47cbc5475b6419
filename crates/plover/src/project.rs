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

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use crate::conninfo::{ConnInfo, ConnInfoError};

/// The environment name of the local development database.
pub const LOCAL: &str = "local";

/// Where `db link` records the default environment, relative to the work directory.
pub const LINK_FILE: &str = "supabase/.temp/plover-link";

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

/// Environment variables: a snapshot, never the live process environment, so that
/// resolution is a pure function of it.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    vars: BTreeMap<String, String>,
}

impl Vars {
    /// Exactly these variables (for tests and embedding tools).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Vars {
        Vars {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The process environment, over the variables of `<workdir>/.env` when that file
    /// exists: a variable set in the process always wins. The process environment is
    /// not changed.
    pub fn from_process_and_dotenv(workdir: &Path) -> Result<Vars, ProjectError> {
        let file = workdir.join(".env");
        let mut vars = BTreeMap::new();
        match dotenvy::from_path_iter(&file) {
            Ok(iter) => {
                for item in iter {
                    let (k, v) = item.map_err(|e| dotenv_error(&file, e))?;
                    vars.insert(k, v);
                }
            }
            Err(e) if e.not_found() => {}
            Err(e) => return Err(dotenv_error(&file, e)),
        }
        for (k, v) in std::env::vars_os() {
            if let (Ok(k), Ok(v)) = (k.into_string(), v.into_string()) {
                vars.insert(k, v);
            }
        }
        Ok(Vars { vars })
    }

    /// A variable's value; an empty value counts as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

fn dotenv_error(file: &Path, e: dotenvy::Error) -> ProjectError {
    match e {
        // dotenvy gives the logical line's text (from the line's start, past any
        // `export`) and a byte offset in it; find the physical line it starts on.
        dotenvy::Error::LineParse(text, _) => ProjectError::DotEnv {
            file: file.to_owned(),
            line: std::fs::read_to_string(file)
                .ok()
                .and_then(|all| dotenv_line(&all, &text))
                .unwrap_or(0),
        },
        dotenvy::Error::Io(source) => ProjectError::Io {
            action: "read",
            path: file.to_owned(),
            source,
        },
        // Variable substitution failures; the value is not shown.
        _ => ProjectError::DotEnv {
            file: file.to_owned(),
            line: 0,
        },
    }
}

/// The 1-based line of `all` that dotenvy's error `text` comes from: the line itself
/// (a bad key, an unterminated quote: the logical line from its start) or only its
/// value (a value with an unquoted space or a bad escape).
fn dotenv_line(all: &str, text: &str) -> Option<usize> {
    let first = text.lines().next().unwrap_or("").trim();
    if first.is_empty() {
        return None;
    }
    let lines: Vec<&str> = all.lines().map(str::trim).collect();
    let whole =
        |l: &&str| *l == first || l.strip_prefix("export").is_some_and(|r| r.trim() == first);
    let value = |l: &&str| {
        l.split_once('=')
            .is_some_and(|(_, v)| v.trim_start().starts_with(first))
    };
    lines
        .iter()
        .position(whole)
        .or_else(|| lines.iter().position(value))
        .map(|i| i + 1)
}

/// The Supabase CLI's `[db] major_version` when `config.toml` has none (its
/// `supabase init` template's value).
pub const DEFAULT_MAJOR_VERSION: u16 = 17;

/// What plover reads of `supabase/config.toml` (the Supabase CLI's file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupabaseConfig {
    /// `project_id`.
    pub project_id: Option<String>,
    /// `[db] port` (default 54322): the local database's port.
    pub db_port: u16,
    /// `[db] major_version` (default 17, as the Supabase CLI's template has it): the
    /// PostgreSQL major of the local Docker database (`cargo xtask db image`).
    pub db_major_version: u16,
    /// `[db.seed] sql_paths` (default `["./seed.sql"]`), relative to `supabase/`.
    pub seed_paths: Vec<String>,
    /// `[db.seed] enabled` (default true): whether a local reset loads the seed files.
    pub seed_enabled: bool,
    /// `[api] schemas` (default `["public"]`).
    pub api_schemas: Vec<String>,
}

impl Default for SupabaseConfig {
    fn default() -> Self {
        SupabaseConfig {
            project_id: None,
            db_port: 54322,
            db_major_version: DEFAULT_MAJOR_VERSION,
            seed_paths: vec!["./seed.sql".into()],
            seed_enabled: true,
            api_schemas: vec!["public".into()],
        }
    }
}

#[derive(Deserialize, Default)]
struct RawConfig {
    project_id: Option<String>,
    #[serde(default)]
    db: RawDb,
    #[serde(default)]
    api: RawApi,
}

#[derive(Deserialize, Default)]
struct RawDb {
    port: Option<u16>,
    major_version: Option<u16>,
    #[serde(default)]
    seed: RawSeed,
}

#[derive(Deserialize, Default)]
struct RawSeed {
    enabled: Option<bool>,
    sql_paths: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
struct RawApi {
    schemas: Option<Vec<String>>,
}

impl SupabaseConfig {
    /// Parses `config.toml`; sections and keys plover does not use are ignored.
    pub fn parse(file: &str, text: &str) -> Result<SupabaseConfig, ProjectError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        let default = SupabaseConfig::default();
        Ok(SupabaseConfig {
            project_id: raw.project_id,
            db_port: raw.db.port.unwrap_or(default.db_port),
            db_major_version: raw.db.major_version.unwrap_or(default.db_major_version),
            seed_paths: raw.db.seed.sql_paths.unwrap_or(default.seed_paths),
            seed_enabled: raw.db.seed.enabled.unwrap_or(default.seed_enabled),
            api_schemas: raw.api.schemas.unwrap_or(default.api_schemas),
        })
    }
}

/// Schemas that Supabase (or an extension it installs) owns and maintains: `db dump`
/// leaves them out unless asked, `db reset --env` never drops them, and no app may
/// claim them in plover.toml `schemas`. `pg_*` schemas are excluded everywhere too.
pub const SUPABASE_MANAGED_SCHEMAS: &[&str] = &[
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
    schema.starts_with("pg_") || SUPABASE_MANAGED_SCHEMAS.contains(&schema)
}

/// plover's settings for a project: `supabase/plover.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PloverConfig {
    /// The history namespace (default [`DEFAULT_APP`](crate::migrator::DEFAULT_APP)).
    pub app: Option<String>,
    /// The schemas this app owns (default `["public"]`): what `db reset --env` drops
    /// and recreates, and what `db pull` compares. Never a Supabase-managed schema.
    pub schemas: Option<Vec<String>>,
    /// Named environments.
    #[serde(default)]
    pub environments: BTreeMap<String, Environment>,
    /// `[lint]`: settings of `cargo xtask db lint`.
    #[serde(default)]
    pub lint: LintSettings,
}

/// The `[lint]` table: `[lint.rules]` maps a rule id to `"off"`, `"warning"` or `"error"`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintSettings {
    /// Rule id -> level.
    #[serde(default)]
    pub rules: BTreeMap<String, String>,
}

/// One `[environments.NAME]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// A variable holding this environment's connection string.
    pub url_env: Option<String>,
    /// Whether destructive commands need the name typed back (default: true for
    /// `prod` and `production`, false otherwise).
    pub protected: Option<bool>,
}

impl PloverConfig {
    /// Parses `plover.toml`; unknown keys are errors (a typo must not unprotect prod).
    /// An empty `app` is refused; `[environments.NAME]` keys are lower-cased (two
    /// that differ only in case are refused).
    pub fn parse(file: &str, text: &str) -> Result<PloverConfig, ProjectError> {
        let mut config: PloverConfig =
            toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        let line_of = |key: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(key))
                .map_or_else(|| file.to_owned(), |i| format!("{file}:{}", i + 1))
        };
        if config.app.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return Err(ProjectError::Config {
                file: line_of("app"),
                message: "app is empty; name the app (e.g. app = \"money_tracker\") or remove the line to use \"default\"".to_owned(),
            });
        }
        let mut environments = BTreeMap::new();
        for (name, env) in std::mem::take(&mut config.environments) {
            let canonical = name.to_ascii_lowercase();
            if environments.insert(canonical.clone(), env).is_some() {
                return Err(ProjectError::Config {
                    file: file.to_owned(),
                    message: format!(
                        "two [environments] tables name `{canonical}` (names are case-insensitive); merge them"
                    ),
                });
            }
        }
        config.environments = environments;
        Ok(config)
    }
}

/// `file:line: message` for a TOML error.
fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> ProjectError {
    let file = match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{file}:{line}")
        }
        None => file.to_owned(),
    };
    ProjectError::Config {
        file,
        message: e.message().trim().to_owned(),
    }
}

/// Whether destructive commands on a target need confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// No confirmation.
    Unprotected,
    /// The environment's name typed back, or `--confirm NAME`.
    Protected,
}

/// Where a target's connection came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The plover-managed local cluster: `local` without `DATABASE_URL`, built from
    /// `supabase/config.toml` `[db] port`. The only target destructive commands may
    /// touch without asking.
    LocalCluster,
    /// A variable, or the Supabase pair, named as shown (e.g. `STAGING_DATABASE_URL`).
    Variable(String),
}

/// A resolved database: the environment, its parsed connection, and where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    env: String,
    conninfo: ConnInfo,
    origin: Origin,
    protection: Protection,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("env", &self.env)
            .field("conninfo", &self.conninfo)
            .field("origin", &self.origin)
            .field("protection", &self.protection)
            .finish()
    }
}

impl Target {
    /// The environment's name in lower case, e.g. `local` or `staging`.
    pub fn env(&self) -> &str {
        &self.env
    }
    /// The parsed connection, password included: connect with it, hand it to child
    /// tools with [`ConnInfo::libpq_env`]; show [`Target::redacted`] or
    /// [`Target::server`].
    pub fn conninfo(&self) -> &ConnInfo {
        &self.conninfo
    }
    /// The connection with its password hidden, for output.
    pub fn redacted(&self) -> String {
        self.conninfo.redacted()
    }
    /// Where it points, for prompts: `host:port/database`.
    pub fn server(&self) -> String {
        self.conninfo.server()
    }
    /// Where the connection came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }
    /// Where the connection came from, for output: a variable, e.g.
    /// `STAGING_DATABASE_URL`, or `supabase/config.toml [db] port`.
    pub fn from(&self) -> &str {
        match &self.origin {
            Origin::LocalCluster => "supabase/config.toml [db] port",
            Origin::Variable(var) => var,
        }
    }
    /// Whether this is the plover-managed local cluster ([`Origin::LocalCluster`]).
    pub fn is_local_cluster(&self) -> bool {
        self.origin == Origin::LocalCluster
    }
    /// Whether destructive commands need confirmation.
    pub fn protection(&self) -> Protection {
        self.protection
    }
}

impl fmt::Display for Target {
    /// `staging postgres://u:****@host:5432/db (from STAGING_DATABASE_URL, protected)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (from {}", self.env, self.redacted(), self.from())?;
        if self.protection == Protection::Protected {
            write!(f, ", protected")?;
        }
        write!(f, ")")
    }
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
        format!(
            "postgres://postgres:postgres@127.0.0.1:{}/{database}",
            self.config.db_port
        )
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

/// An environment name as plover compares it: checked (letters, digits, `-`, `_`) and
/// lower-cased, so `PROD` and `Prod` are `prod`.
///
/// ```
/// assert_eq!(plover::project::canonical_env("PROD").unwrap(), "prod");
/// assert!(plover::project::canonical_env("st/aging").is_err());
/// ```
pub fn canonical_env(env: &str) -> Result<String, ProjectError> {
    check_env_name(env)?;
    Ok(env.to_ascii_lowercase())
}

fn check_env_name(env: &str) -> Result<(), ProjectError> {
    if env.is_empty()
        || !env
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ProjectError::InvalidEnvName {
            name: env.to_owned(),
        });
    }
    Ok(())
}

/// `staging-eu` → `STAGING_EU`, as environment variable names are written.
fn env_key(env: &str) -> String {
    env.to_ascii_uppercase().replace('-', "_")
}

/// A migration name as it goes into a file name: lower snake case, runs of anything
/// but ASCII letters and digits folded into one `_`. `None` when nothing is left.
///
/// ```
/// use plover::project::snake_name;
/// assert_eq!(snake_name("Add budgets!").as_deref(), Some("add_budgets"));
/// assert_eq!(snake_name("addBudgetLines").as_deref(), Some("add_budget_lines"));
/// assert_eq!(snake_name(" -- "), None);
/// ```
pub fn snake_name(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && prev_lower && !out.ends_with('_') {
                out.push('_');
            }
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c.to_ascii_lowercase());
        } else {
            prev_lower = false;
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
        }
    }
    let out = out.trim_end_matches('_').to_owned();
    Some(out).filter(|s| !s.is_empty())
}

/// The version for a new migration: the UTC time as `YYYYMMDDHHMMSS`, or one past the
/// newest existing version when the clock is not past it (never reuses or goes below
/// a version).
///
/// ```
/// use plover::project::next_version;
/// assert_eq!(next_version(20250101120000, Some(20240101000000)), 20250101120000);
/// assert_eq!(next_version(20250101120000, Some(20250101120000)), 20250101120001);
/// assert_eq!(next_version(20250101120000, Some(20990101000000)), 20990101000001);
/// ```
pub fn next_version(now: i64, newest: Option<i64>) -> i64 {
    match newest {
        Some(n) if n >= now => n.saturating_add(1),
        _ => now,
    }
}

/// UTC date and time of `t`: (year, month, day, hour, minute, second).
fn utc_parts(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let rem = rem as u32;
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `t` as a migration version, `YYYYMMDDHHMMSS` in UTC (the Supabase CLI's format).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_secs(1_736_847_012);
/// assert_eq!(plover::project::utc_version(t), 20250114093012);
/// ```
pub fn utc_version(t: SystemTime) -> i64 {
    let (y, mo, d, h, mi, s) = utc_parts(t);
    ((((y * 100 + i64::from(mo)) * 100 + i64::from(d)) * 100 + i64::from(h)) * 100 + i64::from(mi))
        * 100
        + i64::from(s)
}

/// `t` for people and JSON: `2025-01-14T09:30:12Z`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_secs(1_736_847_012);
/// assert_eq!(plover::project::utc_rfc3339(t), "2025-01-14T09:30:12Z");
/// ```
pub fn utc_rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
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

        let repo = include_str!("../../../supabase/config.toml");
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
