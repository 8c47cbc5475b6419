//! `[grants.SCHEMA]` of `supabase/plover.toml`: which roles get what on an app
//! schema's tables, sequences and functions, written once instead of a `GRANT` block
//! after every new table, and the statements that apply it (run by `db push` after
//! a run that applied something, and by `db reset-local`).
//!
//! ```toml
//! [grants.billing]
//! tables = { authenticated = ["select", "insert", "update", "delete"], service_role = ["all"] }
//! sequences = { authenticated = ["usage", "select"], service_role = ["all"] }
//! functions = { authenticated = ["execute"], service_role = ["execute"] }
//! ```
//!
//! Every role named gets `USAGE` on the schema. With `default_privileges` (on unless
//! set to false) the same privileges are granted by default on what the role running
//! the migrations creates there later.
//!
//! Must not: revoke anything (a grant made elsewhere stays); accept a privilege that
//! does not apply to the object kind (refused when plover.toml is read, naming it).

use std::collections::BTreeMap;

use serde::Deserialize;

/// One `[grants.SCHEMA]` table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaGrants {
    /// Role -> privileges on every table and view of the schema.
    #[serde(default)]
    pub tables: BTreeMap<String, Vec<String>>,
    /// Role -> privileges on every sequence.
    #[serde(default)]
    pub sequences: BTreeMap<String, Vec<String>>,
    /// Role -> privileges on every function and procedure.
    #[serde(default)]
    pub functions: BTreeMap<String, Vec<String>>,
    /// Also `ALTER DEFAULT PRIVILEGES` for what is created later (default true).
    #[serde(default = "yes")]
    pub default_privileges: bool,
}

fn yes() -> bool {
    true
}

/// The object kinds of a `[grants]` table: the key, the SQL of `ON ALL … IN SCHEMA`,
/// of `ALTER DEFAULT PRIVILEGES … ON`, and the privileges that apply.
const KINDS: [(&str, &str, &str, &[&str]); 3] = [
    (
        "tables",
        "TABLES",
        "TABLES",
        &[
            "select",
            "insert",
            "update",
            "delete",
            "truncate",
            "references",
            "trigger",
            "all",
        ],
    ),
    (
        "sequences",
        "SEQUENCES",
        "SEQUENCES",
        &["usage", "select", "update", "all"],
    ),
    ("functions", "ROUTINES", "FUNCTIONS", &["execute", "all"]),
];

impl SchemaGrants {
    fn by_kind(&self) -> [&BTreeMap<String, Vec<String>>; 3] {
        [&self.tables, &self.sequences, &self.functions]
    }

    /// Why the table is wrong (`[grants.SCHEMA] KIND.ROLE: …`), if it is.
    pub fn check(&self, schema: &str) -> Result<(), String> {
        for ((key, _, _, allowed), map) in KINDS.iter().zip(self.by_kind()) {
            for (role, privileges) in map {
                if role.trim().is_empty() {
                    return Err(format!("[grants.{schema}] {key}: a role name is empty"));
                }
                if privileges.is_empty() {
                    return Err(format!(
                        "[grants.{schema}] {key}.{role}: no privilege listed (one of {})",
                        allowed.join(", ")
                    ));
                }
                for p in privileges {
                    if !allowed.contains(&p.to_ascii_lowercase().as_str()) {
                        return Err(format!(
                            "[grants.{schema}] {key}.{role}: `{p}` does not apply to {key} (one of {})",
                            allowed.join(", ")
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every role named, in order.
    pub fn roles(&self) -> Vec<&str> {
        let mut roles: Vec<&str> = self
            .by_kind()
            .iter()
            .flat_map(|m| m.keys().map(String::as_str))
            .collect();
        roles.sort_unstable();
        roles.dedup();
        roles
    }

    /// The statements that apply the table to `schema`: `USAGE` on it for every role
    /// named, then the privileges on everything in it, then (with
    /// `default_privileges`) on what is created there later.
    pub fn statements(&self, schema: &str) -> Vec<String> {
        let q = crate::schema::ident;
        let mut out = Vec::new();
        let roles: Vec<String> = self.roles().into_iter().map(q).collect();
        if roles.is_empty() {
            return out;
        }
        out.push(format!(
            "GRANT USAGE ON SCHEMA {} TO {}",
            q(schema),
            roles.join(", ")
        ));
        let privileges = |list: &[String]| {
            list.iter()
                .map(|p| p.to_ascii_uppercase())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for ((_, all, _, _), map) in KINDS.iter().zip(self.by_kind()) {
            for (role, list) in map {
                out.push(format!(
                    "GRANT {} ON ALL {all} IN SCHEMA {} TO {}",
                    privileges(list),
                    q(schema),
                    q(role)
                ));
            }
        }
        if self.default_privileges {
            for ((_, _, default, _), map) in KINDS.iter().zip(self.by_kind()) {
                for (role, list) in map {
                    out.push(format!(
                        "ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT {} ON {default} TO {}",
                        q(schema),
                        privileges(list),
                        q(role)
                    ));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SchemaGrants {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn statements_grant_usage_then_everything_then_defaults() {
        let g = parse(
            r#"tables = { authenticated = ["select", "insert"], service_role = ["all"] }
               functions = { authenticated = ["execute"] }"#,
        );
        assert_eq!(g.check("billing"), Ok(()));
        assert_eq!(
            g.statements("billing"),
            [
                "GRANT USAGE ON SCHEMA billing TO authenticated, service_role",
                "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA billing TO authenticated",
                "GRANT ALL ON ALL TABLES IN SCHEMA billing TO service_role",
                "GRANT EXECUTE ON ALL ROUTINES IN SCHEMA billing TO authenticated",
                "ALTER DEFAULT PRIVILEGES IN SCHEMA billing GRANT SELECT, INSERT ON TABLES TO authenticated",
                "ALTER DEFAULT PRIVILEGES IN SCHEMA billing GRANT ALL ON TABLES TO service_role",
                "ALTER DEFAULT PRIVILEGES IN SCHEMA billing GRANT EXECUTE ON FUNCTIONS TO authenticated",
            ]
        );
        let without = parse(
            r#"default_privileges = false
               sequences = { "Odd Role" = ["usage"] }"#,
        );
        assert_eq!(
            without.statements("Billing"),
            [
                "GRANT USAGE ON SCHEMA \"Billing\" TO \"Odd Role\"",
                "GRANT USAGE ON ALL SEQUENCES IN SCHEMA \"Billing\" TO \"Odd Role\"",
            ]
        );
    }

    #[test]
    fn a_privilege_of_another_kind_is_refused_naming_it() {
        let g = parse(r#"sequences = { authenticated = ["execute"] }"#);
        let e = g.check("billing").unwrap_err();
        assert!(
            e.starts_with("[grants.billing] sequences.authenticated: `execute` does not apply"),
            "{e}"
        );
        assert!(parse(r#"tables = { anon = [] }"#).check("s").is_err());
    }
}
