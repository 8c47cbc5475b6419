//! Who of the API roles (`PUBLIC`, `anon`, `authenticated`) may execute each function
//! and read each materialized view: `GRANT`/`REVOKE` of `EXECUTE` on functions (by name
//! or `ALL FUNCTIONS IN SCHEMA`) and of `SELECT` on materialized views, and `ALTER
//! DEFAULT PRIVILEGES` for the ones created later, applied to the model. Reports
//! nothing itself: `end` judges the state at the end of the change.

use pg_query::NodeEnum;
use pg_query::protobuf::{self, GrantTargetType, ObjectType, RoleSpecType};

use super::ast::{qname, qualified, schema_of, str_list};
use super::model::{Access, MatView};
use super::{Linter, Stmt};

/// What a `GRANT`/`REVOKE` is about, for the model.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `EXECUTE` on functions.
    Execute,
    /// `SELECT` on tables, which covers materialized views.
    Select,
}

impl Target {
    /// The target of a statement on `objtype` naming `privileges` (none: `ALL`), if it
    /// changes a privilege the model follows.
    fn of(objtype: i32, privileges: &[protobuf::Node]) -> Option<Target> {
        let (target, name) = match ObjectType::try_from(objtype).ok()? {
            ObjectType::ObjectFunction | ObjectType::ObjectRoutine => (Target::Execute, "execute"),
            ObjectType::ObjectTable => (Target::Select, "select"),
            _ => return None,
        };
        let named = privileges.is_empty()
            || privileges.iter().any(|p| {
                matches!(p.node.as_ref(), Some(NodeEnum::AccessPriv(a))
                    if a.priv_name.is_empty() || a.priv_name.eq_ignore_ascii_case(name))
            });
        named.then_some(target)
    }
}

/// The API roles among a statement's grantees, lowercase (`public` for `PUBLIC`).
fn api_roles(grantees: &[protobuf::Node]) -> Vec<&'static str> {
    grantees
        .iter()
        .filter_map(|r| match r.node.as_ref() {
            Some(NodeEnum::RoleSpec(rs)) if rs.roletype == RoleSpecType::RolespecPublic as i32 => {
                Some("public")
            }
            Some(NodeEnum::RoleSpec(rs)) => match rs.rolename.as_str() {
                "anon" => Some("anon"),
                "authenticated" => Some("authenticated"),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Whether a statement's grantees include a role the Data API acts as (`anon`,
/// `authenticated`, `service_role`) or `PUBLIC`.
fn reaches_api(grantees: &[protobuf::Node]) -> bool {
    grantees.iter().any(|r| match r.node.as_ref() {
        Some(NodeEnum::RoleSpec(rs)) => {
            rs.roletype == RoleSpecType::RolespecPublic as i32
                || matches!(
                    rs.rolename.as_str(),
                    "anon" | "authenticated" | "service_role"
                )
        }
        _ => false,
    })
}

/// The schemas (`IN SCHEMA`; empty: all) an `ALTER DEFAULT PRIVILEGES` changes for the
/// migration role, or `None` when it is `FOR ROLE` another role.
fn migration_role_schemas(a: &protobuf::AlterDefaultPrivilegesStmt) -> Option<Vec<String>> {
    let mut schemas = Vec::new();
    for option in &a.options {
        let Some(NodeEnum::DefElem(d)) = option.node.as_ref() else {
            continue;
        };
        let Some(NodeEnum::List(list)) = d.arg.as_deref().and_then(|n| n.node.as_ref()) else {
            continue;
        };
        match d.defname.as_str() {
            "schemas" => schemas = str_list(&list.items),
            "roles" => {
                let migration_role = list.items.iter().any(|r| {
                    matches!(r.node.as_ref(), Some(NodeEnum::RoleSpec(rs))
                        if rs.rolename == "postgres"
                            || rs.roletype == RoleSpecType::RolespecCurrentUser as i32)
                });
                if !migration_role {
                    return None;
                }
            }
            _ => {}
        }
    }
    Some(schemas)
}

impl Linter<'_> {
    /// A `GRANT` of any privilege on tables (by name or all of a schema's) to an API
    /// role: those tables can be reached ([`Table::api_grant`](super::model::Table)).
    pub(super) fn table_grant(&mut self, g: &protobuf::GrantStmt) {
        if !g.is_grant || g.objtype != ObjectType::ObjectTable as i32 || !reaches_api(&g.grantees) {
            return;
        }
        let all_in_schema = g.targtype == GrantTargetType::AclTargetAllInSchema as i32;
        for object in &g.objects {
            match object.node.as_ref() {
                Some(NodeEnum::RangeVar(rv)) => {
                    if let Some(t) = self.model.tables.get_mut(&qname(rv)) {
                        t.api_grant = true;
                    }
                }
                Some(NodeEnum::String(schema)) if all_in_schema => {
                    for (name, t) in &mut self.model.tables {
                        if schema_of(name) == schema.sval {
                            t.api_grant = true;
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// `ALTER DEFAULT PRIVILEGES IN SCHEMA ... GRANT ... ON TABLES` to an API role (for
    /// the migration role): tables created there later can be reached; a `REVOKE` of
    /// all privileges undoes it.
    pub(super) fn default_table_grants(&mut self, a: &protobuf::AlterDefaultPrivilegesStmt) {
        let Some(g) = &a.action else { return };
        if g.objtype != ObjectType::ObjectTable as i32 || !reaches_api(&g.grantees) {
            return;
        }
        let Some(schemas) = migration_role_schemas(a) else {
            return;
        };
        for schema in schemas {
            if g.is_grant {
                self.model.defaults.table_grants.insert(schema);
            } else if g.privileges.is_empty() && !g.grant_option {
                self.model.defaults.table_grants.remove(&schema);
            }
        }
    }

    /// A materialized view created by the statement: the default privileges of its
    /// schema decide who may read it until a `GRANT` or `REVOKE`.
    pub(super) fn create_materialized_view(&mut self, name: String, s: &Stmt<'_>) {
        let select = self.model.defaults.select(schema_of(&name));
        self.model.materialized_views.insert(
            name,
            MatView {
                created: s.pos(0),
                new: s.in_change,
                select,
                chosen: Access::default(),
            },
        );
    }

    /// `GRANT`/`REVOKE` of `EXECUTE` on functions or `SELECT` on materialized views to
    /// or from an API role, and whether the grant was a decision (see
    /// [`Function::chosen`](super::model::Function::chosen)). `REVOKE GRANT OPTION FOR`
    /// leaves the privilege.
    pub(super) fn privileges(&mut self, g: &protobuf::GrantStmt, s: &Stmt<'_>) {
        let Some(target) = Target::of(g.objtype, &g.privileges) else {
            return;
        };
        if !g.is_grant && g.grant_option {
            return;
        }
        let roles = api_roles(&g.grantees);
        if roles.is_empty() {
            return;
        }
        let all_in_schema = g.targtype == GrantTargetType::AclTargetAllInSchema as i32;
        let mut names = Vec::new();
        for object in &g.objects {
            match (target, object.node.as_ref()) {
                (Target::Execute, Some(NodeEnum::ObjectWithArgs(o))) => {
                    names.push(qualified(&str_list(&o.objname)));
                }
                (Target::Select, Some(NodeEnum::RangeVar(rv))) => names.push(qname(rv)),
                (_, Some(NodeEnum::String(schema))) if all_in_schema => {
                    let in_schema = |name: &String| schema_of(name) == schema.sval;
                    match target {
                        Target::Execute => names.extend(
                            self.model
                                .functions
                                .keys()
                                .filter(|n| in_schema(n))
                                .cloned(),
                        ),
                        Target::Select => names.extend(
                            self.model
                                .materialized_views
                                .keys()
                                .filter(|n| in_schema(n))
                                .cloned(),
                        ),
                    }
                }
                _ => {}
            }
        }
        // `GRANT EXECUTE` (or `SELECT`) on a function (or view) by name is a decision;
        // `GRANT ALL`, which pg_dump writes for Supabase's defaults, and grants on
        // everything in a schema are not.
        let deliberate = g.is_grant && !g.privileges.is_empty() && !all_in_schema;
        let pos = s.pos(0);
        for name in names {
            let (held, chosen) = match target {
                Target::Execute => {
                    let Some(f) = self.model.functions.get_mut(&name) else {
                        continue;
                    };
                    if g.is_grant && s.in_change {
                        f.opened.get_or_insert(pos);
                    }
                    (&mut f.execute, &mut f.chosen)
                }
                Target::Select => {
                    let Some(m) = self.model.materialized_views.get_mut(&name) else {
                        continue;
                    };
                    (&mut m.select, &mut m.chosen)
                }
            };
            for role in &roles {
                held.set(role, g.is_grant);
                if deliberate || !g.is_grant {
                    chosen.set(role, g.is_grant);
                }
            }
        }
    }

    /// `ALTER DEFAULT PRIVILEGES` on functions or tables for the migration role (no
    /// `FOR ROLE`, or `FOR ROLE postgres`). As in Postgres, `PUBLIC`'s `EXECUTE` changes
    /// only without `IN SCHEMA`, and the grants Supabase makes in schema `public` only
    /// with `IN SCHEMA public`; a default granted to `anon` or `authenticated` without
    /// `IN SCHEMA` is not followed.
    pub(super) fn default_privileges(&mut self, a: &protobuf::AlterDefaultPrivilegesStmt) {
        let Some(g) = &a.action else { return };
        let Some(target) = Target::of(g.objtype, &g.privileges) else {
            return;
        };
        if !g.is_grant && g.grant_option {
            return;
        }
        let Some(schemas) = migration_role_schemas(a) else {
            return;
        };
        let defaults = &mut self.model.defaults;
        for role in api_roles(&g.grantees) {
            if schemas.is_empty() {
                if role == "public" && target == Target::Execute {
                    defaults.execute_public = g.is_grant;
                }
                continue;
            }
            for schema in &schemas {
                let mut access = match target {
                    Target::Execute => defaults.execute(schema),
                    Target::Select => defaults.select(schema),
                };
                access.set(role, g.is_grant);
                let map = match target {
                    Target::Execute => &mut defaults.execute,
                    Target::Select => &mut defaults.select,
                };
                map.insert(schema.clone(), access);
            }
        }
    }
}

/// Schemas whose objects only the service should reach: a function that anon may call
/// and that reaches them without looking at the caller hands them to everyone.
/// `auth`'s caller functions (`auth.uid()` and friends) are a check, not a reach.
const PRIVILEGED_SCHEMAS: &[&str] = &[
    "vault",
    "auth",
    "cron",
    "net",
    "pgmq",
    "pgsodium",
    "supabase_functions",
];

/// Functions of `auth` that name the caller.
const CALLER_FUNCTIONS: &[&str] = &["uid", "jwt", "role", "email"];

/// What a `SECURITY DEFINER` function's text shows about its body, from its tokens (not
/// parsed): whether it looks at the caller, and the first privileged object it names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Reach {
    /// Names `auth.uid()`/`jwt()`/`role()`/`email()`, `current_user`, `session_user`
    /// or the `request.jwt` settings.
    pub(super) checks_caller: bool,
    /// The first object of a [`PRIVILEGED_SCHEMAS`] schema it names (but
    /// `vault.decrypted_secrets`, which it may only read), or
    /// `storage.objects`/`storage.buckets`.
    pub(super) privileged: Option<String>,
    /// The functions it names with a call (`schema.name(` or `name(`, then taken as
    /// `public.name`), for a caller check made by a helper (`is_org_member(...)`).
    pub(super) calls: Vec<String>,
}

/// The [`Reach`] of a `CREATE FUNCTION` statement's text.
pub(super) fn reach(sql: &str) -> Reach {
    let mut reach = Reach::default();
    let Ok(scan) = pg_query::scan(sql) else {
        return reach;
    };
    let text = |t: &protobuf::ScanToken| -> String {
        let (Ok(start), Ok(end)) = (usize::try_from(t.start), usize::try_from(t.end)) else {
            return String::new();
        };
        sql.get(start..end)
            .unwrap_or_default()
            .trim_matches('"')
            .to_lowercase()
    };
    let words: Vec<String> = scan.tokens.iter().map(text).collect();
    for (i, token) in scan.tokens.iter().enumerate() {
        let word = words[i].as_str();
        if token.token == protobuf::Token::Sconst as i32 {
            reach.checks_caller |= word.contains("request.jwt");
            // A dollar-quoted body is one string token: its own tokens count.
            if let Some(inner) = dollar_quoted(word_raw(sql, token)) {
                let inner = self::reach(inner);
                reach.checks_caller |= inner.checks_caller;
                if reach.privileged.is_none() {
                    reach.privileged = inner.privileged;
                }
                reach.calls.extend(inner.calls);
            }
            continue;
        }
        if matches!(word, "current_user" | "session_user") {
            reach.checks_caller = true;
            continue;
        }
        if token.token == protobuf::Token::Ident as i32
            && words.get(i + 1).is_some_and(|w| w == "(")
        {
            let qualified = match (
                i.checked_sub(2).map(|j| &words[j]),
                i.checked_sub(1).map(|j| &words[j]),
            ) {
                (Some(schema), Some(dot)) if dot == "." => format!("{schema}.{word}"),
                _ => format!("public.{word}"),
            };
            reach.calls.push(qualified);
        }
        let (Some(dot), Some(object)) = (words.get(i + 1), words.get(i + 2)) else {
            continue;
        };
        if dot != "." {
            continue;
        }
        if word == "auth" && CALLER_FUNCTIONS.contains(&object.as_str()) {
            reach.checks_caller = true;
        } else if reach.privileged.is_none()
            // Reading a Vault secret may be the point of an RPC (a public URL, checking
            // a token against it); returning it is the hole, which tokens cannot tell.
            && !(word == "vault" && object == "decrypted_secrets" && !written(&words, i))
            && (PRIVILEGED_SCHEMAS.contains(&word)
                || (word == "storage" && matches!(object.as_str(), "objects" | "buckets")))
        {
            reach.privileged = Some(format!("{word}.{object}"));
        }
    }
    reach
}

/// A token's text as written.
fn word_raw<'s>(sql: &'s str, t: &protobuf::ScanToken) -> &'s str {
    match (usize::try_from(t.start), usize::try_from(t.end)) {
        (Ok(start), Ok(end)) => sql.get(start..end).unwrap_or_default(),
        _ => "",
    }
}

/// The text inside `$tag$ ... $tag$`, if `literal` is dollar-quoted.
fn dollar_quoted(literal: &str) -> Option<&str> {
    let rest = literal.strip_prefix('$')?;
    let tag_end = rest.find('$')?;
    let tag = &literal[..tag_end + 2];
    literal.get(tag.len()..literal.len().checked_sub(tag.len())?)
}

/// Whether the object named at `words[i]` is the target of a DELETE, UPDATE or INSERT.
fn written(words: &[String], i: usize) -> bool {
    let before = |n: usize| {
        i.checked_sub(n)
            .and_then(|j| words.get(j))
            .map(String::as_str)
    };
    matches!(before(1), Some("update"))
        || matches!((before(2), before(1)), (Some("delete"), Some("from")))
        || matches!((before(2), before(1)), (Some("insert"), Some("into")))
}
