//! The schema model a run tracks across files: the tables (RLS, policies, new columns,
//! `NOT NULL` checks), functions and views that the replay has seen so far, each with
//! where it was created and whether that was in the change. Statements update it as
//! they are checked; the end-of-change rules and `--live` read it.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::Pos;

/// What the replay knows of the database so far.
#[derive(Default)]
pub(super) struct Model {
    /// By `schema.name`.
    pub(super) tables: HashMap<String, Table>,
    /// By `schema.name` (overloads are one entry).
    pub(super) functions: HashMap<String, Function>,
    /// By `schema.name`.
    pub(super) views: HashMap<String, View>,
    /// Schemas created in the change.
    pub(super) new_schemas: HashSet<String>,
}

impl Model {
    /// The table, made up (state unknown) when the replay never created it.
    pub(super) fn table(&mut self, name: &str) -> &mut Table {
        self.tables.entry(name.to_owned()).or_default()
    }

    /// Whether the table was created in the change (so it holds no rows yet).
    pub(super) fn is_new_table(&self, name: &str) -> bool {
        self.tables.get(name).is_some_and(|t| t.new)
    }
}

#[derive(Default)]
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
}

pub(super) struct Function {
    pub(super) created: Pos,
    /// Created in the change.
    pub(super) new: bool,
    pub(super) security_definer: bool,
    /// Has a `SET search_path`.
    pub(super) search_path: bool,
}

pub(super) struct View {
    pub(super) created: Pos,
    /// Created in the change.
    pub(super) new: bool,
    pub(super) security_invoker: bool,
}
