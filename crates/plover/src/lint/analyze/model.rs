//! The schema model a run tracks across files: the tables (RLS, policies, new columns,
//! `NOT NULL` checks, enum columns), functions, views, materialized views and enum
//! types that the replay has seen so far, each with where it was created and whether
//! that was in the change (followed through renames and `SET SCHEMA`), the change's
//! grants to API roles on tables, which API roles may execute each function and read
//! each materialized view (from default privileges, `GRANT` and `REVOKE`), and the
//! functions policies call. Statements update it as they are checked; the
//! end-of-change rules and `--live` read it.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::Pos;

/// What the replay knows of the database so far.
#[derive(Clone, Default)]
pub(super) struct Model {
    /// By `schema.name`.
    pub(super) tables: HashMap<String, Table>,
    /// By `schema.name` (overloads are one entry).
    pub(super) functions: HashMap<String, Function>,
    /// By `schema.name`.
    pub(super) views: HashMap<String, View>,
    /// Materialized views by `schema.name`.
    pub(super) materialized_views: HashMap<String, MatView>,
    /// Enum types (`CREATE TYPE ... AS ENUM`) by `schema.name`.
    pub(super) enums: HashSet<String>,
    /// Schemas created in the change.
    pub(super) new_schemas: HashSet<String>,
    /// Grants of the change to an API role on tables, judged at the end of the change.
    pub(super) grants: Vec<Grant>,
    /// What new functions and materialized views give the API roles.
    pub(super) defaults: Defaults,
    /// Functions called from a policy expression (by `schema.name`, unqualified names
    /// as `public.name`): the policy trusts what they return.
    pub(super) policy_calls: HashSet<String>,
}

impl Model {
    /// The table, made up (state unknown) when the replay never created it.
    pub(super) fn table(&mut self, name: &str) -> &mut Table {
        self.tables.entry(name.to_owned()).or_default()
    }

    /// A table created by the statement at `pos` (anew, also when it was known). A
    /// temporary table is new but no API ever sees it, so its RLS is left unknown.
    pub(super) fn create_table(
        &mut self,
        name: &str,
        pos: Pos,
        in_change: bool,
        persistence: Persistence,
    ) {
        let schema = name.split_once('.').map_or("public", |(s, _)| s);
        let api_grant = self.defaults.table_grants.contains(schema);
        *self.table(name) = Table {
            new: in_change,
            api_grant,
            rls: match persistence {
                Persistence::Permanent => Some(false),
                Persistence::Temporary => None,
            },
            created: Some(pos),
            touched_in_change: in_change,
            ..Table::default()
        };
    }

    /// Whether the table was created in the change (so it holds no rows yet).
    pub(super) fn is_new_table(&self, name: &str) -> bool {
        self.tables.get(name).is_some_and(|t| t.new)
    }

    /// Whether the table or materialized view was created in the change (so an
    /// index on it locks out no one).
    pub(super) fn is_new_relation(&self, name: &str) -> bool {
        self.is_new_table(name) || self.materialized_views.get(name).is_some_and(|m| m.new)
    }

    /// A table, view or materialized view renamed or moved to another schema: it
    /// keeps what the model knows of it (new in the change, RLS, policies) under its
    /// new name. Returns whether the model knew it and it was created in the change.
    pub(super) fn move_relation(&mut self, from: &str, to: &str) -> bool {
        let mut new = false;
        if let Some(t) = self.tables.remove(from) {
            new |= t.new;
            self.tables.insert(to.to_owned(), t);
        }
        if let Some(v) = self.views.remove(from) {
            new |= v.new;
            self.views.insert(to.to_owned(), v);
        }
        if let Some(m) = self.materialized_views.remove(from) {
            new |= m.new;
            self.materialized_views.insert(to.to_owned(), m);
        }
        new
    }
}

/// Whether a created table outlives its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Persistence {
    Permanent,
    Temporary,
}

impl Persistence {
    /// From a `RangeVar`'s `relpersistence`.
    pub(super) fn of(rv: &pg_query::protobuf::RangeVar) -> Persistence {
        if rv.relpersistence == "t" {
            Persistence::Temporary
        } else {
            Persistence::Permanent
        }
    }
}

/// A `GRANT` on tables to `anon`, `authenticated` or `PUBLIC` in the change.
#[derive(Clone)]
pub(super) struct Grant {
    pub(super) pos: Pos,
    /// `GRANT SELECT, INSERT`, for the message.
    pub(super) what: String,
    /// `anon, authenticated`, for the message.
    pub(super) to: String,
    /// The tables it covers, by `schema.name` (every table of the schema known at the
    /// time for `ALL TABLES IN SCHEMA`).
    pub(super) tables: Vec<String>,
}

#[derive(Clone, Default)]
pub(super) struct Table {
    /// Created in the change.
    pub(super) new: bool,
    /// `None` when the table was never created in the replay (its state is unknown).
    pub(super) rls: Option<bool>,
    pub(super) created: Option<Pos>,
    /// Policy name -> created in the change.
    pub(super) policies: BTreeMap<String, bool>,
    /// The first policy created in the change.
    pub(super) first_new_policy: Option<Pos>,
    /// The last DROP POLICY in the change of a policy that existed before it.
    pub(super) dropped_existing_policy: Option<Pos>,
    pub(super) touched_in_change: bool,
    /// CHECK (col IS NOT NULL) constraints: name -> column.
    pub(super) not_null_checks: HashMap<String, String>,
    pub(super) validated_not_null: HashSet<String>,
    pub(super) new_columns: HashSet<String>,
    /// Column -> its type (`schema.name`), for columns whose type is a known enum.
    pub(super) enum_columns: HashMap<String, String>,
    /// An API role (`anon`, `authenticated`, `service_role`, `PUBLIC`) holds a privilege
    /// on it: granted by name or on all tables of its schema, or by its schema's default
    /// privileges when it was created.
    pub(super) api_grant: bool,
}

#[derive(Clone)]
pub(super) struct Function {
    pub(super) created: Pos,
    /// Created in the change.
    pub(super) new: bool,
    pub(super) security_definer: bool,
    /// Has a `SET search_path`.
    pub(super) search_path: bool,
    /// Its input argument types (`int4,text`), to tell a `DROP` of another overload.
    pub(super) signature: String,
    /// A function the API can call: not a procedure, not a trigger or event trigger
    /// function (those cannot be called directly).
    pub(super) callable: bool,
    /// Returns `boolean` (a check, as `is_admin()`).
    pub(super) returns_bool: bool,
    /// Its body names `raw_user_meta_data` or `user_metadata`, which users can edit.
    pub(super) user_metadata: bool,
    /// The `CREATE FUNCTION` statement's text, for [`super::privileges::reach`] at the
    /// end of the change (only for the few functions anon may call: scanning every
    /// body would cost more than the rest of the lint of a function-heavy project).
    pub(super) text: std::sync::Arc<str>,
    /// Who may execute it (kept by `CREATE OR REPLACE`, forgotten by `DROP`).
    pub(super) execute: Access,
    /// The API roles a `GRANT EXECUTE` named it for: a decision, unlike a default or
    /// `GRANT ALL` (as pg_dump restates Supabase's defaults).
    pub(super) chosen: Access,
    /// The statement of the change that created it or, for a function created before
    /// the change, the first that made it `SECURITY DEFINER` or granted `EXECUTE` on
    /// it to an API role.
    pub(super) opened: Option<Pos>,
}

/// A materialized view: it cannot have row level security, so its grants decide.
#[derive(Clone)]
pub(super) struct MatView {
    pub(super) created: Pos,
    /// Created in the change.
    pub(super) new: bool,
    /// Who may `SELECT` from it.
    pub(super) select: Access,
    /// The API roles a `GRANT SELECT` named it for (see [`Function::chosen`]).
    pub(super) chosen: Access,
}

/// A privilege held by the API roles: by `PUBLIC` (every role), `anon` and
/// `authenticated`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Access {
    pub(super) public: bool,
    pub(super) anon: bool,
    pub(super) authenticated: bool,
}

impl Access {
    /// Whether `anon` holds it (itself or through `PUBLIC`).
    pub(super) fn anon(self) -> bool {
        self.public || self.anon
    }

    /// Whether `authenticated` holds it (itself or through `PUBLIC`).
    pub(super) fn authenticated(self) -> bool {
        self.public || self.authenticated
    }

    /// The API roles that hold it but were not `chosen` for it by name (nor through
    /// `PUBLIC`): `anon`, `authenticated`, both or none.
    pub(super) fn unchosen(self, chosen: Access) -> Vec<&'static str> {
        let mut roles = Vec::new();
        if self.anon() && !chosen.anon() {
            roles.push("anon");
        }
        if self.authenticated() && !chosen.authenticated() {
            roles.push("authenticated");
        }
        roles
    }

    /// Sets the privilege of `role` (`public`, `anon` or `authenticated`; any other
    /// role is no API role and changes nothing).
    pub(super) fn set(&mut self, role: &str, held: bool) {
        match role {
            "public" => self.public = held,
            "anon" => self.anon = held,
            "authenticated" => self.authenticated = held,
            _ => {}
        }
    }
}

/// Default privileges for the objects the migrations create, as on Supabase: `EXECUTE`
/// on functions to `PUBLIC` (Postgres's own default, changed only by an `ALTER DEFAULT
/// PRIVILEGES` without `IN SCHEMA`), and in schema `public` everything on functions and
/// tables (so materialized views) to `anon` and `authenticated` (changed only by one
/// `IN SCHEMA public`).
#[derive(Clone)]
pub(super) struct Defaults {
    /// `EXECUTE` to `PUBLIC` on new functions.
    pub(super) execute_public: bool,
    /// Per schema, `EXECUTE` on new functions for `anon`/`authenticated`, where an
    /// `ALTER DEFAULT PRIVILEGES ... IN SCHEMA` changed it.
    pub(super) execute: HashMap<String, Access>,
    /// Per schema, `SELECT` on new tables and materialized views, where changed.
    pub(super) select: HashMap<String, Access>,
    /// Schemas whose default privileges grant something on new tables to an API role
    /// (`service_role` too): Supabase's `public`, and those an `ALTER DEFAULT
    /// PRIVILEGES ... IN SCHEMA` grants in.
    pub(super) table_grants: HashSet<String>,
}

impl Default for Defaults {
    fn default() -> Defaults {
        Defaults {
            execute_public: true,
            execute: HashMap::new(),
            select: HashMap::new(),
            table_grants: HashSet::from(["public".to_owned()]),
        }
    }
}

impl Defaults {
    /// Supabase's grants in `schema` before any change: `anon` and `authenticated` in
    /// `public`, no one elsewhere.
    fn supabase(schema: &str) -> Access {
        let public = schema == "public";
        Access {
            public: false,
            anon: public,
            authenticated: public,
        }
    }

    /// Who may execute a new function of `schema`.
    pub(super) fn execute(&self, schema: &str) -> Access {
        let mut access = self
            .execute
            .get(schema)
            .copied()
            .unwrap_or_else(|| Defaults::supabase(schema));
        access.public = self.execute_public;
        access
    }

    /// Who may select from a new materialized view of `schema`.
    pub(super) fn select(&self, schema: &str) -> Access {
        self.select
            .get(schema)
            .copied()
            .unwrap_or_else(|| Defaults::supabase(schema))
    }
}

#[derive(Clone)]
pub(super) struct View {
    pub(super) created: Pos,
    /// Created in the change.
    pub(super) new: bool,
    pub(super) security_invoker: bool,
}
