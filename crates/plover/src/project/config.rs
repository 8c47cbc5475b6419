//! The project's configuration files: what plover reads of `supabase/config.toml`
//! (the Supabase CLI's) and plover's own `supabase/plover.toml`. Pure: text in,
//! settings out.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ProjectError;

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
    /// `[grants.SCHEMA]`: the privileges of roles on an app schema's objects, applied
    /// after each push that applies something.
    #[serde(default)]
    pub grants: BTreeMap<String, super::grants::SchemaGrants>,
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
        let schemas = config
            .schemas
            .clone()
            .unwrap_or_else(|| vec!["public".to_owned()]);
        for (schema, grants) in &config.grants {
            if !schemas.contains(schema) {
                return Err(ProjectError::Config {
                    file: line_of(&format!("[grants.{schema}]")),
                    message: format!(
                        "[grants.{schema}]: {schema} is not one of the app's schemas ({}); add it to `schemas` or name one of them",
                        schemas.join(", ")
                    ),
                });
            }
            grants
                .check(schema)
                .map_err(|message| ProjectError::Config {
                    file: line_of(&format!("[grants.{schema}]")),
                    message,
                })?;
        }
        Ok(config)
    }
}

/// `file:line: message` for a TOML error.
pub(super) fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> ProjectError {
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
