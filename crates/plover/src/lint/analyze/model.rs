//! The schema model a run tracks across files: the tables (RLS, policies, new columns,
//! `NOT NULL` checks, enum columns), functions, views, materialized views and enum
//! types that the replay has seen so far, each with where it was created and whether
//! that was in the change (followed through renames and `SET SCHEMA`), and the
//! change's grants to API roles. Statements update it as they are checked; the
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
    /// Materialized views by `schema.name`: created in the change?
    pub(super) materialized_views: HashMap<String, bool>,
    /// Enum types (`CREATE TYPE ... AS ENUM`) by `schema.name`.
    pub(super) enums: HashSet<String>,
    /// Schemas created in the change.
    pub(super) new_schemas: HashSet<String>,
    /// Grants of the change to an API role on tables, judged at the end of the change.
    pub(super) grants: Vec<Grant>,
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
        *self.table(name) = Table {
            new: in_change,
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
        self.is_new_table(name) || self.materialized_views.get(name) == Some(&true)
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
            new |= m;
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
}

#[derive(Clone)]
pub(super) struct Function {
    pub(super) created: Pos,
    /// Created in the change.
    pub(super) new: bool,
    pub(super) security_definer: bool,
    /// Has a `SET search_path`.
    pub(super) search_path: bool,
}

#[derive(Clone)]
pub(super) struct View {
    pub(super) created: Pos,
    /// Created in the change.
    pub(super) new: bool,
    pub(super) security_invoker: bool,
}
