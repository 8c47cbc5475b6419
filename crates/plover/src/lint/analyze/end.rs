//! The rules on the state at the end of the change (RLS, policies, `SECURITY DEFINER`
//! functions, exposed views, grants to API roles on tables left without RLS), and `--live` catalog findings placed at the statement
//! that created their object.

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
