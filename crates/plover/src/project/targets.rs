//! Environments and targets: the variables a target is resolved from (`.env` and the
//! process), environment names, and [`Target`], a resolved database with where its
//! connection came from and whether it is protected.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::conninfo::ConnInfo;

use super::ProjectError;

/// The environment name of the local development database.
pub const LOCAL: &str = "local";

/// Where `db link` records the default environment, relative to the work directory.
pub const LINK_FILE: &str = "supabase/.temp/plover-link";

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
pub(super) fn dotenv_line(all: &str, text: &str) -> Option<usize> {
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
    pub(super) env: String,
    pub(super) conninfo: ConnInfo,
    pub(super) origin: Origin,
    pub(super) protection: Protection,
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

pub(super) fn check_env_name(env: &str) -> Result<(), ProjectError> {
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
pub(super) fn env_key(env: &str) -> String {
    env.to_ascii_uppercase().replace('-', "_")
}
