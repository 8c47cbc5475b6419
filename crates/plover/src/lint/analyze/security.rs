//! Checks on what decides who sees what: policies (`CREATE`/`ALTER POLICY`),
//! functions (`SECURITY DEFINER`, `search_path`), views (`security_invoker`, reads of
//! `auth.users`) and grants to `anon` or `PUBLIC`; each recorded in the model for the
//! end-of-change rules.

use pg_query::NodeEnum;
use pg_query::protobuf::{self, GrantTargetType, ObjectType, RoleSpecType};

use super::ast::{
    bare_auth_calls, func_calls, function_options, function_signature, is_storage_table,
    is_true_constant, qname, qualified, reads_auth_users, schema_of, security_invoker_option,
    str_list, strings, to_json,
};
use super::model::{Access, Function, Grant, View};
use super::{Linter, RuleId, Stmt};

/// The roles the Data API runs requests as (with `PUBLIC`, which they belong to).
const API_ROLES: &[&str] = &["anon", "authenticated"];

/// Roles for which an always-true write policy is fine.
const TRUSTED_ROLES: &[&str] = &["service_role", "postgres", "supabase_admin"];

impl Linter<'_> {
    pub(super) fn create_policy(&mut self, p: &protobuf::CreatePolicyStmt, s: &Stmt<'_>) {
        let table = p.table.as_ref().map(qname).unwrap_or_default();
        if !is_storage_table(&table) {
            self.managed(s, schema_of(&table), "CREATE POLICY");
        }
        if !self
            .dropped_policies
            .contains(&(table.clone(), p.policy_name.clone()))
        {
            self.stmt_report(
                RuleId::CreatePolicyWithoutDrop,
                s,
                0,
                format!(
                    "CREATE POLICY \"{}\" on {table} without a DROP POLICY IF EXISTS before it",
                    p.policy_name
                ),
            );
        }
        let no_role = p
            .roles
            .iter()
            .all(|r| matches!(r.node.as_ref(), Some(NodeEnum::RoleSpec(rs)) if rs.location < 0));
        if no_role {
            self.stmt_report(
                RuleId::PolicyWithoutRole,
                s,
                0,
                format!(
                    "policy \"{}\" on {table} has no TO clause, so it applies to anon too",
                    p.policy_name
                ),
            );
        }
        self.policy_expressions(
            s,
            &p.policy_name,
            Some(&p.cmd_name),
            &p.roles,
            p.qual.as_deref(),
            p.with_check.as_deref(),
        );
        let pos = s.pos(0);
        let in_change = s.in_change;
        let t = self.model.table(&table);
        t.policies.insert(p.policy_name.clone(), in_change);
        if in_change {
            t.touched_in_change = true;
            t.first_new_policy.get_or_insert(pos);
        }
    }

    pub(super) fn policy_expressions(
        &mut self,
        s: &Stmt<'_>,
        policy: &str,
        command: Option<&str>,
        roles: &[protobuf::Node],
        qual: Option<&protobuf::Node>,
        with_check: Option<&protobuf::Node>,
    ) {
        for expr in [qual, with_check].into_iter().flatten() {
            func_calls(&to_json(expr), &mut |names, _| {
                self.model.policy_calls.insert(qualified(names));
            });
        }
        if !s.in_change {
            return;
        }
        let writes = command.is_none_or(|c| matches!(c, "all" | "insert" | "update" | "delete"));
        let trusted = !roles.is_empty()
            && roles.iter().all(|r| {
                matches!(r.node.as_ref(), Some(NodeEnum::RoleSpec(rs))
                    if rs.location >= 0 && TRUSTED_ROLES.contains(&rs.rolename.as_str()))
            });
        let always_true = [qual, with_check]
            .into_iter()
            .flatten()
            .any(is_true_constant);
        if writes && always_true && !trusted && command.is_some() {
            self.stmt_report(
                RuleId::WritePolicyAlwaysTrue,
                s,
                0,
                format!("policy \"{policy}\" lets every row be written (true)"),
            );
        }
        for expr in [qual, with_check].into_iter().flatten() {
            let json = to_json(expr);
            let mut metadata = false;
            strings(&json, &mut |v| metadata |= is_user_metadata(v));
            if metadata {
                self.stmt_report(
                    RuleId::PolicyUserMetadata,
                    s,
                    0,
                    format!("policy \"{policy}\" trusts user metadata, which users can edit"),
                );
            }
            let mut calls = Vec::new();
            bare_auth_calls(&json, false, &mut calls);
            if let Some((name, location)) = calls.first() {
                self.stmt_report(
                    RuleId::AuthFunctionPerRow,
                    s,
                    i32::try_from(*location).unwrap_or(0),
                    format!("auth.{name}() in policy \"{policy}\" is evaluated for every row"),
                );
            }
        }
    }

    pub(super) fn create_function(&mut self, f: &protobuf::CreateFunctionStmt, s: &Stmt<'_>) {
        let name = qualified(&str_list(&f.funcname));
        if !f.replace {
            self.stmt_report(
                RuleId::CreateWithoutOrReplace,
                s,
                0,
                format!("CREATE FUNCTION {name} without OR REPLACE"),
            );
        }
        self.managed(s, schema_of(&name), "CREATE FUNCTION");
        let (definer, search_path) = function_options(&f.options);
        let returns = f
            .return_type
            .as_ref()
            .filter(|t| !t.setof && t.array_bounds.is_empty())
            .map(|t| str_list(&t.names))
            .and_then(|names| names.last().cloned())
            .unwrap_or_default();
        // CREATE OR REPLACE keeps the privileges of the function it replaces.
        let (execute, chosen) = self
            .model
            .functions
            .get(&name)
            .filter(|_| f.replace)
            .map_or_else(
                || {
                    (
                        self.model.defaults.execute(schema_of(&name)),
                        Access::default(),
                    )
                },
                |old| (old.execute, old.chosen),
            );
        self.model.functions.insert(
            name,
            Function {
                created: s.pos(0),
                new: s.in_change,
                security_definer: definer.unwrap_or(false),
                search_path,
                signature: function_signature(&f.parameters),
                callable: !f.is_procedure
                    && !matches!(returns.as_str(), "trigger" | "event_trigger"),
                returns_bool: returns == "bool",
                user_metadata: body_reads_user_metadata(f),
                text: s.sql.into(),
                execute,
                chosen,
                opened: s.in_change.then(|| s.pos(0)),
            },
        );
    }

    pub(super) fn create_view(&mut self, v: &protobuf::ViewStmt, s: &Stmt<'_>) {
        let Some(rv) = &v.view else { return };
        let name = qname(rv);
        if !v.replace {
            self.stmt_report(
                RuleId::CreateWithoutOrReplace,
                s,
                0,
                format!("CREATE VIEW {name} without OR REPLACE"),
            );
        }
        self.managed(s, schema_of(&name), "CREATE VIEW");
        let invoker = v
            .options
            .iter()
            .filter_map(|o| o.node.as_ref())
            .find_map(security_invoker_option)
            .unwrap_or(false);
        if self.is_exposed(&name)
            && let Some(query) = v.query.as_deref()
        {
            let json = to_json(query);
            if reads_auth_users(&json) {
                self.stmt_report(
                    RuleId::ViewReadsAuthUsers,
                    s,
                    0,
                    format!("the exposed view {name} reads auth.users"),
                );
            }
        }
        self.model.views.insert(
            name,
            View {
                created: s.pos(0),
                new: s.in_change,
                security_invoker: invoker,
            },
        );
    }

    /// A `GRANT` on tables to an API role (`anon`, `authenticated`, `PUBLIC`) is
    /// recorded with the tables it covers; `end_of_change` reports the ones left
    /// without row level security. Default privileges, sequences and functions are
    /// not judged here (see `broad-grant`'s reason in the registry).
    pub(super) fn grant(&mut self, g: &protobuf::GrantStmt, s: &Stmt<'_>) {
        if !g.is_grant || !s.in_change {
            return;
        }
        let objtype = ObjectType::try_from(g.objtype).unwrap_or(ObjectType::Undefined);
        if objtype != ObjectType::ObjectTable {
            return;
        }
        let grantees: Vec<String> = g
            .grantees
            .iter()
            .filter_map(|r| match r.node.as_ref() {
                Some(NodeEnum::RoleSpec(rs))
                    if rs.roletype == RoleSpecType::RolespecPublic as i32 =>
                {
                    Some("PUBLIC".to_owned())
                }
                Some(NodeEnum::RoleSpec(rs)) if API_ROLES.contains(&rs.rolename.as_str()) => {
                    Some(rs.rolename.clone())
                }
                _ => None,
            })
            .collect();
        if grantees.is_empty() {
            return;
        }
        let all_in_schema = g.targtype == GrantTargetType::AclTargetAllInSchema as i32;
        let privileges: Vec<String> = g
            .privileges
            .iter()
            .filter_map(|p| match p.node.as_ref() {
                Some(NodeEnum::AccessPriv(a)) => Some(a.priv_name.to_uppercase()),
                _ => None,
            })
            .collect();
        let what = if privileges.is_empty() {
            "ALL".to_owned()
        } else {
            privileges.join(", ")
        };
        let mut tables = Vec::new();
        for object in &g.objects {
            match object.node.as_ref() {
                Some(NodeEnum::RangeVar(rv)) => tables.push(qname(rv)),
                Some(NodeEnum::String(schema)) if all_in_schema => {
                    let mut in_schema: Vec<String> = self
                        .model
                        .tables
                        .iter()
                        .filter(|(name, t)| schema_of(name) == schema.sval && t.rls.is_some())
                        .map(|(name, _)| name.clone())
                        .collect();
                    in_schema.sort();
                    tables.extend(in_schema);
                }
                _ => {}
            }
        }
        self.model.grants.push(Grant {
            pos: s.pos(0),
            what: format!("GRANT {what}"),
            to: grantees.join(", "),
            tables,
        });
    }
}

/// Whether a function's body names the metadata users can edit themselves:
/// `raw_user_meta_data` (a column of `auth.users`) or `user_metadata` (the JWT's
/// claim). A `BEGIN ATOMIC` body is parsed; any other body (SQL or PL/pgSQL text) is
/// token-scanned, not parsed, after a cheap check for the bytes `user_meta`.
fn body_reads_user_metadata(f: &protobuf::CreateFunctionStmt) -> bool {
    if let Some(body) = f.sql_body.as_deref() {
        let mut found = false;
        strings(&to_json(body), &mut |v| found |= is_user_metadata(v));
        return found;
    }
    let body = f
        .options
        .iter()
        .filter_map(|o| match o.node.as_ref() {
            Some(NodeEnum::DefElem(d)) if d.defname == "as" => d.arg.as_deref(),
            _ => None,
        })
        .find_map(|arg| match arg.node.as_ref() {
            Some(NodeEnum::List(l)) => str_list(&l.items).into_iter().next(),
            _ => None,
        });
    let Some(body) = body else { return false };
    if !body
        .as_bytes()
        .windows(9)
        .any(|w| w.eq_ignore_ascii_case(b"user_meta"))
    {
        return false;
    }
    let Ok(scan) = pg_query::scan(&body) else {
        return false;
    };
    scan.tokens.iter().any(|token| {
        let (Ok(start), Ok(end)) = (usize::try_from(token.start), usize::try_from(token.end))
        else {
            return false;
        };
        let Some(text) = body.get(start..end) else {
            return false;
        };
        if token.token == protobuf::Token::Ident as i32 {
            is_user_metadata(&text.trim_matches('"').to_lowercase())
        } else if token.token == protobuf::Token::Sconst as i32 {
            text.contains("user_metadata") || text.contains("raw_user_meta_data")
        } else {
            false
        }
    })
}

/// `user_metadata` or `raw_user_meta_data`.
fn is_user_metadata(name: &str) -> bool {
    name == "user_metadata" || name == "raw_user_meta_data"
}
