//! The rules on the state at the end of the change (RLS, policies, `SECURITY DEFINER`
//! functions and who may call them, functions that trust user metadata, exposed views
//! and materialized views, grants to API roles on tables left without RLS), and
//! `--live` catalog findings placed at the statement that created their object.

use std::collections::HashSet;

use super::model::Function;
use super::privileges::{Reach, reach};
use super::{File, Linter, LiveFinding, ObjectKind, Pos, RuleId, Status};

impl Linter<'_> {
    /// Rules on the state at the end of the change.
    pub(super) fn end_of_change(&mut self) {
        let mut found: Vec<(RuleId, Pos, String)> = Vec::new();
        for (name, t) in &self.model.tables {
            if !t.touched_in_change {
                continue;
            }
            let exposed = self.is_exposed(name);
            if t.new
                && exposed
                && t.rls == Some(false)
                && let Some(pos) = t.created
            {
                found.push((
                    RuleId::TableWithoutRls,
                    pos,
                    format!("{name} is exposed through the API and has no row level security by the end of the change"),
                ));
            }
            let schema = name.split_once('.').map_or("public", |(s, _)| s);
            if t.new
                && exposed
                && t.rls.is_some()
                && !t.api_grant
                && !self.granted.contains(schema)
                && let Some(pos) = t.created
            {
                found.push((
                    RuleId::ExposedTableWithoutGrants,
                    pos,
                    format!(
                        "{name} is in the exposed schema {schema}, but no API role (anon, authenticated, service_role) has a privilege on it by the end of the change: every API request on it is denied"
                    ),
                ));
            }
            if t.rls == Some(false) && !t.policies.is_empty() {
                let pos = t.first_new_policy.or(t.created);
                if let Some(pos) = pos {
                    found.push((
                        RuleId::PolicyWithoutRls,
                        pos,
                        format!("{name} has policies but row level security is off"),
                    ));
                }
            }
            if t.rls != Some(false)
                && t.policies.is_empty()
                && let Some(pos) = t.dropped_existing_policy
            {
                found.push((
                    RuleId::LastPolicyDropped,
                    pos,
                    format!(
                        "the last policy of {name} is dropped; with RLS on, the API sees no rows"
                    ),
                ));
            }
        }
        for (name, f) in &self.model.functions {
            if f.new && f.security_definer && !f.search_path {
                found.push((
                    RuleId::SecurityDefinerSearchPath,
                    f.created,
                    format!("SECURITY DEFINER function {name} has no fixed search_path"),
                ));
            }
        }
        for (name, f) in &self.model.functions {
            if let Some(finding) = self.executable(name, f) {
                found.push(finding);
            }
            if f.new && f.callable && f.user_metadata {
                let why = if self.model.policy_calls.contains(name) {
                    Some("a policy calls it")
                } else if f.returns_bool && self.is_exposed(name) {
                    Some("it returns boolean, as an authorization check does")
                } else {
                    None
                };
                if let Some(why) = why {
                    found.push((
                        RuleId::FunctionUserMetadata,
                        f.created,
                        format!("{name} reads user metadata, which users can edit, and {why}"),
                    ));
                }
            }
        }
        for (name, m) in &self.model.materialized_views {
            let roles = m.select.unchosen(m.chosen);
            if m.new && self.is_exposed(name) && !roles.is_empty() {
                found.push((
                    RuleId::MaterializedViewExposed,
                    m.created,
                    format!(
                        "the materialized view {name} has no row level security, and {} can read all of it through the API",
                        roles.join(" and ")
                    ),
                ));
            }
        }
        for (name, v) in &self.model.views {
            if v.new && !v.security_invoker && self.is_exposed(name) {
                found.push((
                    RuleId::ViewWithoutSecurityInvoker,
                    v.created,
                    format!(
                        "the exposed view {name} runs with its owner's rights (no security_invoker)"
                    ),
                ));
            }
        }
        for grant in &self.model.grants {
            let open: Vec<&str> = grant
                .tables
                .iter()
                .filter(|name| {
                    // A table created in the change is table-without-rls's finding.
                    self.is_exposed(name)
                        && self
                            .model
                            .tables
                            .get(name.as_str())
                            .is_some_and(|t| t.rls == Some(false) && !t.new)
                })
                .map(String::as_str)
                .collect();
            if !open.is_empty() {
                let on = match open.as_slice() {
                    [a, b, c, d, rest @ ..] if !rest.is_empty() => {
                        format!("{a}, {b}, {c}, {d} and {} more tables", rest.len())
                    }
                    _ => open.join(", "),
                };
                found.push((
                    RuleId::BroadGrant,
                    grant.pos,
                    format!(
                        "{} on {on} to {}: no row level security there by the end of the change",
                        grant.what, grant.to
                    ),
                ));
            }
        }
        for (rule, pos, message) in found {
            self.report(rule, pos, message);
        }
    }

    /// `security-definer-anon-executable` for a `SECURITY DEFINER` function the change
    /// opened (created, made `SECURITY DEFINER`, granted) that anon may execute at the
    /// end of the change, whose body does not look at the caller and reaches a
    /// privileged object (Vault, auth's tables, cron, net, ...): what anon can then do
    /// is what the service can. Any other such function that an API role may execute
    /// is `security-definer-authenticated-executable`'s (opt-in: an RPC that checks
    /// `auth.uid()`, or reaches nothing privileged, is usually intended). Neither fires
    /// when a `GRANT EXECUTE` named the role: the rules are after the privilege nobody
    /// chose (PUBLIC's, Supabase's defaults, `GRANT ALL` as pg_dump restates them).
    fn executable(&self, name: &str, f: &Function) -> Option<(RuleId, Pos, String)> {
        let pos = f.opened?;
        if !(f.security_definer && f.callable && self.is_exposed(name)) {
            return None;
        }
        let how = if f.execute.public {
            "PUBLIC holds EXECUTE"
        } else if f.execute.anon {
            "anon holds EXECUTE"
        } else {
            "authenticated holds EXECUTE"
        };
        let roles = f.execute.unchosen(f.chosen);
        let anon = roles.contains(&"anon");
        let reach = if anon {
            reach(&f.text)
        } else {
            Reach::default()
        };
        if anon
            && !reach.checks_caller
            && let Some(object) = &reach.privileged
            && !self.callee_checks_caller(&reach.calls, &mut HashSet::from([name.to_owned()]), 3)
        {
            return Some((
                RuleId::SecurityDefinerAnonExecutable,
                pos,
                format!(
                    "SECURITY DEFINER function {name} can be called by anon through the API ({how}), checks no caller and reaches {object}"
                ),
            ));
        }
        let who = if anon {
            "anon"
        } else if roles.contains(&"authenticated") {
            "every signed-in user"
        } else {
            return None;
        };
        Some((
            RuleId::SecurityDefinerAuthenticatedExecutable,
            pos,
            format!(
                "SECURITY DEFINER function {name} can be called by {who} through the API ({how})"
            ),
        ))
    }

    /// Whether a function of the model that `calls` names looks at the caller, itself or
    /// through the functions it calls, up to `depth` calls deep (`seen`: those already
    /// looked at). A `SECURITY DEFINER` RPC often checks its caller through a helper
    /// (`check_min_rights(...)`, `is_member_of(...)`) rather than `auth.uid()` itself.
    fn callee_checks_caller(
        &self,
        calls: &[String],
        seen: &mut HashSet<String>,
        depth: usize,
    ) -> bool {
        if depth == 0 {
            return false;
        }
        calls.iter().any(|call| {
            if !seen.insert(call.clone()) {
                return false;
            }
            let Some(f) = self.model.functions.get(call) else {
                return false;
            };
            let callee = reach(&f.text);
            callee.checks_caller || self.callee_checks_caller(&callee.calls, seen, depth - 1)
        })
    }

    /// Places catalog findings at the statement that created their object.
    pub(super) fn live(&mut self, live: &[LiveFinding], files: &[File<'_>]) {
        let fallback = files
            .iter()
            .rposition(|f| f.status == Status::InChange)
            .map(|file| Pos {
                file,
                stmt: None,
                offset: 0,
                inner: None,
            });
        for finding in live {
            let created = match finding.kind {
                ObjectKind::Table => self
                    .model
                    .tables
                    .get(&finding.object)
                    .and_then(|t| t.created),
                ObjectKind::Function => {
                    self.model.functions.get(&finding.object).map(|f| f.created)
                }
                ObjectKind::View => self.model.views.get(&finding.object).map(|v| v.created),
            };
            let (pos, message) = match (created, fallback) {
                (Some(pos), _) => (pos, finding.message.clone()),
                (None, Some(pos)) => (
                    pos,
                    format!(
                        "{} (created by no statement plover can see, e.g. by dynamic SQL)",
                        finding.message
                    ),
                ),
                (None, None) => continue,
            };
            self.report(finding.rule, pos, message);
        }
    }
}
