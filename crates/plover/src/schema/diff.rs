//! Two [`Catalog`]s in, the ordered DDL that turns the first into the second out,
//! each statement with its hazards.
//!
//! The order is fixed by phase, so that every statement finds what it needs and
//! nothing it removes is still used: first what goes away, dependents first
//! (policies, triggers, views, foreign keys, other constraints, indexes, functions
//! that cannot be replaced in place, tables, columns); then what comes, dependencies
//! first (extensions, schemas, default privileges, types, sequences, functions,
//! tables and columns, constraints, foreign keys, indexes, views, functions over row
//! types, triggers, policies, RLS, ownership of sequences, grants, comments,
//! publications); last what goes once no column uses it any more (functions,
//! sequences, types, schemas).
//!
//! Must not: drop an extension or a publication (other apps may use them: it says so
//! in a note instead); emit a statement without the hazards it carries; depend on
//! anything but the two catalogs (pure, deterministic: equal inputs, equal output).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::model::*;

/// What a statement can cost beyond its own work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HazardKind {
    /// Rows or values are gone for good (a dropped table or column, a narrowed type).
    DataLoss,
    /// The table is rewritten under an ACCESS EXCLUSIVE lock.
    TableRewrite,
    /// Every row is scanned or validated under a lock that blocks writes (or reads).
    LongLock,
    /// An index is built, blocking writes to the table while it builds.
    IndexBuild,
    /// Fails if something not in the schemas compared still uses the object.
    Dependents,
    /// Changes who can see or do what (RLS disabled, privileges granted broadly).
    Security,
    /// Must be committed before a later statement of the diff can run (an enum value
    /// a later statement uses): run it in a migration of its own, before the rest.
    OwnTransaction,
}

impl HazardKind {
    /// The name in comments and in `--format json`.
    pub fn slug(self) -> &'static str {
        match self {
            HazardKind::DataLoss => "data-loss",
            HazardKind::TableRewrite => "table-rewrite",
            HazardKind::LongLock => "long-lock",
            HazardKind::IndexBuild => "index-build",
            HazardKind::Dependents => "dependents",
            HazardKind::Security => "security",
            HazardKind::OwnTransaction => "own-transaction",
        }
    }
}

/// One hazard of one statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hazard {
    pub kind: HazardKind,
    pub message: String,
}

/// One statement of a diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// One SQL statement, ending with `;`.
    pub sql: String,
    pub hazards: Vec<Hazard>,
}

/// The statements that turn one catalog into another, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub changes: Vec<Change>,
    /// Differences no statement here resolves (a removed enum value, a changed
    /// partition key): a human must write them. They make the diff non-empty.
    pub manual: Vec<String>,
    /// Differences left alone on purpose (an extension only the source has, another
    /// extension version): information, not a difference of the app's schemas.
    pub notes: Vec<String>,
}

impl Diff {
    /// No statement to run and nothing for a human to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.manual.is_empty()
    }

    /// How many statements carry each kind of hazard.
    pub fn hazard_counts(&self) -> BTreeMap<HazardKind, usize> {
        let mut counts = BTreeMap::new();
        for change in &self.changes {
            let kinds: BTreeSet<HazardKind> = change.hazards.iter().map(|h| h.kind).collect();
            for kind in kinds {
                *counts.entry(kind).or_insert(0) += 1;
            }
        }
        counts
    }

    /// The SQL script: a summary in comments, then each statement with its hazards
    /// as comments above it. Nothing but comments when the diff is empty.
    pub fn to_sql(&self) -> String {
        let mut out = String::new();
        if self.changes.is_empty() && self.manual.is_empty() {
            out.push_str("-- plover diff: no differences\n");
        } else if self.changes.is_empty() {
            let _ = writeln!(
                out,
                "-- plover diff: no statement, {} manual change{}",
                self.manual.len(),
                if self.manual.len() == 1 { "" } else { "s" }
            );
        } else {
            let _ = writeln!(
                out,
                "-- plover diff: {} statement{}",
                self.changes.len(),
                if self.changes.len() == 1 { "" } else { "s" }
            );
            let counts = self.hazard_counts();
            if !counts.is_empty() {
                let list: Vec<String> = counts
                    .iter()
                    .map(|(k, n)| format!("{n} {}", k.slug()))
                    .collect();
                let _ = writeln!(out, "-- hazards: {}", list.join(", "));
            }
        }
        for m in &self.manual {
            let _ = writeln!(out, "-- manual: {}", one_line(m));
        }
        for n in &self.notes {
            let _ = writeln!(out, "-- note: {}", one_line(n));
        }
        for change in &self.changes {
            out.push('\n');
            for h in &change.hazards {
                let _ = writeln!(out, "-- hazard {}: {}", h.kind.slug(), one_line(&h.message));
            }
            out.push_str(&change.sql);
            out.push('\n');
        }
        out
    }
}

fn one_line(text: &str) -> String {
    text.replace('\n', " ")
}

/// The statements that turn `from` into `to`.
pub fn diff(from: &Catalog, to: &Catalog) -> Diff {
    let mut d = Differ {
        from,
        to,
        out: Diff::default(),
        new_tables: to
            .tables
            .keys()
            .filter(|n| !from.tables.contains_key(*n))
            .cloned()
            .collect(),
        recreated_views: BTreeSet::new(),
        recreated_policies: BTreeSet::new(),
        recreated_functions: BTreeSet::new(),
        added_values: BTreeMap::new(),
    };
    d.plan_recreations();
    d.drops();
    d.creates();
    d.enum_values_used_later();
    d.out
}

struct Differ<'a> {
    from: &'a Catalog,
    to: &'a Catalog,
    out: Diff,
    /// Tables only `to` has: statements on them carry no lock or build hazard.
    new_tables: BTreeSet<Name>,
    /// Views both sides have that are dropped and created again (changed, or over
    /// something that changes).
    recreated_views: BTreeSet<Name>,
    /// Policies (table, name) dropped and created again.
    recreated_policies: BTreeSet<(Name, String)>,
    /// Functions both sides have that `CREATE OR REPLACE` cannot change.
    recreated_functions: BTreeSet<FunctionId>,
    /// The `ADD VALUE` statements, by index in `out.changes`: the value as a use of it
    /// reads (`'label'::schema.type`).
    added_values: BTreeMap<usize, String>,
}

fn hazard(kind: HazardKind, message: impl Into<String>) -> Hazard {
    Hazard {
        kind,
        message: message.into(),
    }
}

/// `definition` as one statement ending with `;`.
fn statement(definition: &str) -> String {
    let t = definition.trim_end();
    let t = t.strip_suffix(';').unwrap_or(t).trim_end();
    format!("{t};")
}

/// The identifiers (and numbers) of `text`, as [`mentions`] sees them: runs of
/// letters, digits, `_` and `$`.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty())
}

/// Whether `word` occurs in `text` as a whole identifier.
fn mentions(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

impl Differ<'_> {
    fn push(&mut self, sql: impl Into<String>, hazards: Vec<Hazard>) {
        self.out.changes.push(Change {
            sql: sql.into(),
            hazards,
        });
    }

    /// Decides what must be dropped and created again because something it rests on
    /// changes: views (changed, or over a changed view or a column that changes type
    /// or goes), policies that mention such a column, functions whose signature
    /// `CREATE OR REPLACE` cannot change.
    fn plan_recreations(&mut self) {
        // Columns that change type or go, per table.
        let mut touched: BTreeMap<&Name, BTreeSet<&str>> = BTreeMap::new();
        for (name, before) in &self.from.tables {
            let Some(after) = self.to.tables.get(name) else {
                continue;
            };
            for col in &before.columns {
                let changes = match after.column(&col.name) {
                    None => true,
                    Some(c) => {
                        c.data_type != col.data_type
                            || c.collation != col.collation
                            || c.generated != col.generated
                    }
                };
                if changes {
                    touched.entry(name).or_default().insert(&col.name);
                }
            }
        }
        // Views: changed ones, then whatever reads a touched table or a recreated
        // view, until nothing more is added.
        for (name, before) in &self.from.views {
            if let Some(after) = self.to.views.get(name)
                && (before.definition != after.definition
                    || before.materialized != after.materialized
                    || before.columns != after.columns)
            {
                self.recreated_views.insert(name.clone());
            }
        }
        loop {
            let mut added = false;
            for (name, before) in &self.from.views {
                if self.recreated_views.contains(name) || !self.to.views.contains_key(name) {
                    continue;
                }
                let rests_on_change = before.depends_on.iter().any(|dep| {
                    touched.contains_key(dep)
                        || self.recreated_views.contains(dep)
                        || (self.from.views.contains_key(dep) && !self.to.views.contains_key(dep))
                });
                if rests_on_change {
                    self.recreated_views.insert(name.clone());
                    added = true;
                }
            }
            if !added {
                break;
            }
        }
        // Policies that mention a column changing type (Postgres refuses the change
        // while a policy uses the column).
        for (table, columns) in &touched {
            let (Some(before), Some(after)) =
                (self.from.tables.get(*table), self.to.tables.get(*table))
            else {
                continue;
            };
            for (pname, policy) in &before.policies {
                if !after.policies.contains_key(pname) {
                    continue;
                }
                let uses = columns.iter().any(|c| {
                    policy.using.as_deref().is_some_and(|e| mentions(e, c))
                        || policy.check.as_deref().is_some_and(|e| mentions(e, c))
                });
                if uses {
                    self.recreated_policies
                        .insert(((*table).clone(), pname.clone()));
                }
            }
        }
        for (id, before) in &self.from.functions {
            if let Some(after) = self.to.functions.get(id)
                && before.definition != after.definition
                && (before.kind != after.kind
                    || before.result != after.result
                    || before.arguments != after.arguments
                    || before.kind == FunctionKind::Aggregate)
            {
                self.recreated_functions.insert(id.clone());
            }
        }
    }

    // ---------------------------------------------------------------- drops

    fn drops(&mut self) {
        let (from, to) = (self.from, self.to);
        // Policies.
        for (table, before) in &from.tables {
            let after = to.tables.get(table);
            for (pname, policy) in &before.policies {
                let drop = match after.and_then(|t| t.policies.get(pname)) {
                    None => after.is_some(),
                    Some(p) => {
                        self.recreated_policies
                            .contains(&(table.clone(), pname.clone()))
                            || !policy_alterable(policy, p)
                    }
                };
                if drop {
                    self.push(format!("DROP POLICY {} ON {table};", ident(pname)), vec![]);
                }
            }
        }
        // Triggers.
        for (table, before) in &from.tables {
            let Some(after) = to.tables.get(table) else {
                continue;
            };
            for (tname, trigger) in &before.triggers {
                if after
                    .triggers
                    .get(tname)
                    .is_none_or(|t| t.definition != trigger.definition)
                {
                    self.push(format!("DROP TRIGGER {} ON {table};", ident(tname)), vec![]);
                }
            }
        }
        // Views, readers first.
        let doomed: BTreeSet<&Name> = from
            .views
            .keys()
            .filter(|n| !to.views.contains_key(*n) || self.recreated_views.contains(*n))
            .collect();
        for name in topological(&from.views, &doomed).into_iter().rev() {
            let view = &from.views[name];
            let kind = if view.materialized {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            };
            let hazards = if to.views.contains_key(name) {
                vec![]
            } else {
                vec![hazard(
                    HazardKind::Dependents,
                    format!(
                        "drops {kind} {name}: fails while something outside these schemas reads it"
                    ),
                )]
            };
            self.push(format!("DROP {kind} {name};"), hazards);
        }
        // Foreign keys (all of them on tables that go, so that tables drop in any
        // order), then the other constraints.
        for pass_fk in [true, false] {
            for (table, before) in &from.tables {
                let after = to.tables.get(table);
                for (cname, con) in &before.constraints {
                    if (con.kind == ConstraintKind::ForeignKey) != pass_fk {
                        continue;
                    }
                    let drop = match after {
                        None => pass_fk,
                        Some(a) => match a.constraints.get(cname) {
                            None => true,
                            Some(c) => c.definition != con.definition && !validates_only(con, c),
                        },
                    };
                    if drop {
                        self.push(
                            format!("ALTER TABLE {table} DROP CONSTRAINT {};", ident(cname)),
                            vec![],
                        );
                    }
                }
            }
        }
        // Indexes (of tables, and of materialized views kept).
        for (table, before) in &from.tables {
            if let Some(after) = to.tables.get(table) {
                self.drop_changed_indexes(&table.schema, &before.indexes, &after.indexes);
            }
        }
        for (view, before) in &from.views {
            if let Some(after) = to.views.get(view)
                && !self.recreated_views.contains(view)
            {
                self.drop_changed_indexes(&view.schema, &before.indexes, &after.indexes);
            }
        }
        // Functions that cannot be replaced in place (those that go go last, once no
        // default or column uses them).
        for (id, f) in &from.functions {
            if self.recreated_functions.contains(id) {
                self.drop_function(id, f);
            }
        }
        // Tables (a partition goes with its parent).
        for (name, table) in &from.tables {
            if to.tables.contains_key(name) {
                continue;
            }
            if let Some((parent, _)) = &table.partition_of
                && !to.tables.contains_key(parent)
                && from.tables.contains_key(parent)
            {
                continue;
            }
            self.push(
                format!("DROP TABLE {name};"),
                vec![hazard(
                    HazardKind::DataLoss,
                    format!("drops table {name} and every row in it"),
                )],
            );
        }
        // Columns.
        for (name, before) in &from.tables {
            let Some(after) = to.tables.get(name) else {
                continue;
            };
            if after.partition_of.is_some() {
                continue;
            }
            for col in &before.columns {
                let gone = after.column(&col.name).is_none();
                let regenerated = !gone
                    && col.generated.is_some()
                    && after
                        .column(&col.name)
                        .is_some_and(|c| c.generated != col.generated);
                if gone || regenerated {
                    let hazards = if gone {
                        vec![hazard(
                            HazardKind::DataLoss,
                            format!(
                                "drops column {}.{} and the values in it",
                                name,
                                ident(&col.name)
                            ),
                        )]
                    } else {
                        vec![hazard(
                            HazardKind::TableRewrite,
                            format!(
                                "generated column {}.{} changes its expression: dropped and added again, which rewrites the table",
                                name,
                                ident(&col.name)
                            ),
                        )]
                    };
                    self.push(
                        format!("ALTER TABLE {name} DROP COLUMN {};", ident(&col.name)),
                        hazards,
                    );
                }
            }
        }
        // Extensions and publications are never dropped.
        for (name, ext) in &from.extensions {
            match to.extensions.get(name) {
                None => self.out.notes.push(format!(
                    "extension {name} is installed on the source only; a diff never drops an extension (other apps may use it)"
                )),
                Some(e) if e.version != ext.version => self.out.notes.push(format!(
                    "extension {name} is version {} on the source, {} on the target; a diff leaves versions alone",
                    ext.version, e.version
                )),
                Some(_) => {}
            }
        }
    }

    /// What goes once everything that used it changed: functions (aggregates before
    /// the functions they call), sequences, types, schemas. Column defaults and types
    /// change in the creates, so a sequence, a function or a type a column leaves is
    /// free by then.
    fn late_drops(&mut self) {
        let (from, to) = (self.from, self.to);
        let mut gone: Vec<(&FunctionId, &Function)> = from
            .functions
            .iter()
            .filter(|(id, _)| !to.functions.contains_key(*id))
            .collect();
        gone.sort_by_key(|(_, f)| f.kind != FunctionKind::Aggregate);
        for (id, f) in gone {
            self.drop_function(id, f);
        }
        // Sequences, but an identity column's and those owned by a column that went
        // (they went with it).
        for (name, s) in &from.sequences {
            let owner_went = s.owned_by.as_ref().is_some_and(|(table, column)| {
                to.tables
                    .get(table)
                    .is_none_or(|t| t.column(column).is_none())
            });
            if !to.sequences.contains_key(name) && !s.identity && !owner_went {
                self.push(
                    format!("DROP SEQUENCE {name};"),
                    vec![hazard(
                        HazardKind::DataLoss,
                        format!("drops sequence {name} and its current value"),
                    )],
                );
            }
        }
        // Types: ranges and composites before the domains and enums they may use.
        let mut gone: Vec<(&Name, &Type)> = from
            .types
            .iter()
            .filter(|(n, _)| !to.types.contains_key(*n))
            .collect();
        gone.sort_by_key(|(_, t)| match t.kind {
            TypeKind::Range { .. } | TypeKind::Composite { .. } => 0,
            TypeKind::Domain { .. } => 1,
            TypeKind::Enum { .. } => 2,
        });
        for (name, t) in gone {
            let kind = if matches!(t.kind, TypeKind::Domain { .. }) {
                "DOMAIN"
            } else {
                "TYPE"
            };
            self.push(
                format!("DROP {kind} {name};"),
                vec![hazard(
                    HazardKind::Dependents,
                    format!(
                        "drops {} {name}: fails while a column or function elsewhere uses it",
                        kind.to_lowercase()
                    ),
                )],
            );
        }
        // Schemas.
        for name in from.schemas.keys() {
            if !to.schemas.contains_key(name) {
                self.push(
                    format!("DROP SCHEMA {};", ident(name)),
                    vec![hazard(
                        HazardKind::DataLoss,
                        format!(
                            "drops schema {}: fails while anything is left in it",
                            ident(name)
                        ),
                    )],
                );
            }
        }
    }

    fn drop_function(&mut self, id: &FunctionId, f: &Function) {
        let kind = match f.kind {
            FunctionKind::Procedure => "PROCEDURE",
            FunctionKind::Aggregate => "AGGREGATE",
            FunctionKind::Function | FunctionKind::Window => "FUNCTION",
        };
        self.push(
            format!("DROP {kind} {id};"),
            vec![hazard(
                HazardKind::Dependents,
                format!(
                    "drops {} {id}: fails while a default, check, trigger or policy elsewhere uses it",
                    kind.to_lowercase()
                ),
            )],
        );
    }

    /// `DROP INDEX` for each index of `before` that `after` lacks or defines otherwise.
    fn drop_changed_indexes(
        &mut self,
        schema: &str,
        before: &BTreeMap<String, Index>,
        after: &BTreeMap<String, Index>,
    ) {
        for (iname, index) in before {
            if after
                .get(iname)
                .is_none_or(|i| i.definition != index.definition)
            {
                self.push(format!("DROP INDEX {};", Name::new(schema, iname)), vec![]);
            }
        }
    }

    // ---------------------------------------------------------------- creates

    fn creates(&mut self) {
        let (from, to) = (self.from, self.to);
        // Schemas first: an extension may be created into one.
        for name in to.schemas.keys() {
            if !from.schemas.contains_key(name) {
                self.push(format!("CREATE SCHEMA {};", ident(name)), vec![]);
            }
        }
        for (name, ext) in &to.extensions {
            if !from.extensions.contains_key(name) {
                self.push(
                    format!(
                        "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {};",
                        ident(name),
                        ident(&ext.schema)
                    ),
                    vec![],
                );
            }
        }
        self.default_privileges();
        self.types();
        self.sequences();
        // Bodies are checked when created (SQL statements, PL/pgSQL declarations such
        // as `t%rowtype`); the tables they read come later, as in pg_dump's scripts.
        let created_functions: Vec<&FunctionId> = to
            .functions
            .keys()
            .filter(|id| {
                !from.functions.contains_key(*id) || self.recreated_functions.contains(*id)
            })
            .collect();
        let relations: BTreeSet<&str> = to
            .tables
            .keys()
            .chain(to.views.keys())
            .filter(|n| !from.tables.contains_key(*n) && !from.views.contains_key(*n))
            .map(|n| n.name.as_str())
            .collect();
        // A function whose signature names a relation made here waits for it.
        // Names that are not one word (`"Order Items"`) are looked for whole.
        let (plain, spaced): (BTreeSet<&str>, BTreeSet<&str>) = relations
            .iter()
            .partition(|r| words(r).eq(std::iter::once(**r)));
        let over_rows = |f: &Function| {
            let texts = || std::iter::once(f.arguments.as_str()).chain(f.result.as_deref());
            texts().flat_map(words).any(|w| plain.contains(w))
                || spaced.iter().any(|r| texts().any(|t| mentions(t, r)))
        };
        let changed_functions: Vec<&FunctionId> = to
            .functions
            .iter()
            .filter(|(id, f)| {
                from.functions
                    .get(*id)
                    .is_some_and(|b| b.definition != f.definition)
                    && !self.recreated_functions.contains(*id)
            })
            .map(|(id, _)| id)
            .collect();
        if created_functions
            .iter()
            .chain(&changed_functions)
            .any(|id| {
                let f = &to.functions[*id];
                f.kind != FunctionKind::Aggregate
                    && !matches!(f.language.as_str(), "c" | "internal")
            })
        {
            self.push("SET check_function_bodies = off;", vec![]);
        }
        for id in &created_functions {
            let f = &to.functions[*id];
            if !over_rows(f) {
                self.create_function(id, f);
            }
        }
        for id in &changed_functions {
            let f = &to.functions[*id];
            self.push(statement(&f.definition), vec![]);
        }
        self.tables();
        self.constraints();
        self.indexes();
        self.views();
        for id in &created_functions {
            let f = &to.functions[*id];
            if over_rows(f) {
                self.create_function(id, f);
            }
        }
        self.triggers();
        self.policies();
        self.sequence_owners();
        self.grants();
        self.comments();
        self.publications();
        self.late_drops();
    }

    fn create_function(&mut self, id: &FunctionId, f: &Function) {
        if f.kind == FunctionKind::Aggregate {
            self.push(
                format!(
                    "CREATE AGGREGATE {}.{}({}) ({});",
                    ident(&id.schema),
                    ident(&id.name),
                    id.arguments,
                    f.definition
                ),
                vec![],
            );
        } else {
            self.push(statement(&f.definition), vec![]);
        }
    }

    fn default_privileges(&mut self) {
        let (from, to) = (self.from, self.to);
        let keys: BTreeSet<&DefaultPrivilegeKey> = from
            .default_privileges
            .keys()
            .chain(to.default_privileges.keys())
            .collect();
        for key in keys {
            // Absent: nothing in a schema; the built-in defaults for no schema.
            let absent = match key.schema {
                Some(_) => Grants::new(),
                None => builtin_grants(&key.objects),
            };
            let before = from.default_privileges.get(key).unwrap_or(&absent);
            let after = to.default_privileges.get(key).unwrap_or(&absent);
            let prefix = match &key.schema {
                Some(s) => format!(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {}",
                    ident(&key.role),
                    ident(s)
                ),
                None => format!("ALTER DEFAULT PRIVILEGES FOR ROLE {}", ident(&key.role)),
            };
            for (sql, broad) in grant_statements(&key.objects, None, before, after) {
                let sql = format!("{prefix} {sql}");
                let hazards = broad
                    .then(|| {
                        hazard(
                            HazardKind::Security,
                            "every new object of this kind gets this privilege for an API role",
                        )
                    })
                    .into_iter()
                    .collect();
                self.push(sql, hazards);
            }
        }
    }

    fn types(&mut self) {
        let (from, to) = (self.from, self.to);
        let mut created: Vec<(&Name, &Type)> = to
            .types
            .iter()
            .filter(|(n, _)| !from.types.contains_key(*n))
            .collect();
        created.sort_by_key(|(_, t)| match t.kind {
            TypeKind::Enum { .. } => 0,
            TypeKind::Domain { .. } => 1,
            TypeKind::Composite { .. } | TypeKind::Range { .. } => 2,
        });
        for (name, t) in created {
            self.push(create_type(name, &t.kind), vec![]);
        }
        for (name, after) in &to.types {
            let Some(before) = from.types.get(name) else {
                continue;
            };
            match (&before.kind, &after.kind) {
                (TypeKind::Enum { labels: old }, TypeKind::Enum { labels: new }) => {
                    self.enum_values(name, old, new);
                }
                (
                    TypeKind::Domain {
                        base: b0,
                        not_null: n0,
                        default: d0,
                        collation: c0,
                        checks: k0,
                    },
                    TypeKind::Domain {
                        base: b1,
                        not_null: n1,
                        default: d1,
                        collation: c1,
                        checks: k1,
                    },
                ) => {
                    if b0 != b1 || c0 != c1 {
                        self.out.manual.push(format!(
                            "domain {name} changes its base type or collation ({b0} to {b1}): create a new domain and move the columns to it"
                        ));
                        continue;
                    }
                    if d0 != d1 {
                        match d1 {
                            Some(d) => {
                                self.push(format!("ALTER DOMAIN {name} SET DEFAULT {d};"), vec![])
                            }
                            None => self.push(format!("ALTER DOMAIN {name} DROP DEFAULT;"), vec![]),
                        }
                    }
                    if n0 != n1 {
                        let (sql, hazards) = if *n1 {
                            (
                                format!("ALTER DOMAIN {name} SET NOT NULL;"),
                                vec![hazard(
                                    HazardKind::LongLock,
                                    "checks every column of the domain's type for nulls",
                                )],
                            )
                        } else {
                            (format!("ALTER DOMAIN {name} DROP NOT NULL;"), vec![])
                        };
                        self.push(sql, hazards);
                    }
                    for (cname, def) in k0 {
                        if k1.get(cname) != Some(def) {
                            self.push(
                                format!("ALTER DOMAIN {name} DROP CONSTRAINT {};", ident(cname)),
                                vec![],
                            );
                        }
                    }
                    for (cname, def) in k1 {
                        if k0.get(cname) != Some(def) {
                            self.push(
                                format!(
                                    "ALTER DOMAIN {name} ADD CONSTRAINT {} {def};",
                                    ident(cname)
                                ),
                                vec![hazard(
                                    HazardKind::LongLock,
                                    "checks every value of the domain's type in use",
                                )],
                            );
                        }
                    }
                }
                (
                    TypeKind::Composite { attributes: a0 },
                    TypeKind::Composite { attributes: a1 },
                ) => {
                    for (attr, _) in a0 {
                        if !a1.iter().any(|(n, _)| n == attr) {
                            self.push(
                                format!("ALTER TYPE {name} DROP ATTRIBUTE {};", ident(attr)),
                                vec![],
                            );
                        }
                    }
                    for (attr, ty) in a1 {
                        match a0.iter().find(|(n, _)| n == attr) {
                            None => self.push(
                                format!("ALTER TYPE {name} ADD ATTRIBUTE {} {ty};", ident(attr)),
                                vec![],
                            ),
                            Some((_, old)) if old != ty => self.push(
                                format!(
                                    "ALTER TYPE {name} ALTER ATTRIBUTE {} TYPE {ty};",
                                    ident(attr)
                                ),
                                vec![],
                            ),
                            Some(_) => {}
                        }
                    }
                }
                (b, a) if b != a => {
                    self.out.manual.push(format!(
                        "type {name} changes kind or range definition: create a new type and move its users to it"
                    ));
                }
                _ => {}
            }
        }
    }

    /// Marks each `ADD VALUE` whose value a later statement uses (as the server renders
    /// a use: `'label'::type`): Postgres refuses that use before the `ADD VALUE`
    /// commits.
    fn enum_values_used_later(&mut self) {
        for i in 0..self.out.changes.len() {
            let Some(used) = self.added_values.get(&i) else {
                continue;
            };
            if self.out.changes[i + 1..]
                .iter()
                .any(|c| c.sql.contains(used.as_str()))
            {
                self.out.changes[i].hazards.push(hazard(
                    HazardKind::OwnTransaction,
                    format!(
                        "a later statement uses {used}, which Postgres refuses before this ADD VALUE commits: run it in a migration of its own, before the rest"
                    ),
                ));
            }
        }
    }

    /// Labels added in place (`ADD VALUE … BEFORE/AFTER`); a removed or reordered
    /// label is a manual change.
    fn enum_values(&mut self, name: &Name, old: &[String], new: &[String]) {
        // The old labels must stay, in their order, within the new ones.
        let mut it = new.iter();
        let kept_in_order = old.iter().all(|o| it.any(|n| n == o));
        if !kept_in_order {
            self.out.manual.push(format!(
                "enum {name} loses or reorders values ({} to {}): Postgres cannot remove an enum value; create a new type, move the columns with USING col::text::new_type, drop the old one",
                old.join(", "),
                new.join(", ")
            ));
            return;
        }
        let mut present: Vec<&String> = old.iter().collect();
        for (i, label) in new.iter().enumerate() {
            if present.contains(&label) {
                continue;
            }
            // Place it after the label before it in `new`, or before the next.
            let sql = match i.checked_sub(1).map(|j| &new[j]) {
                Some(prev) => format!(
                    "ALTER TYPE {name} ADD VALUE {} AFTER {};",
                    literal(label),
                    literal(prev)
                ),
                None => match present.first() {
                    Some(next) => format!(
                        "ALTER TYPE {name} ADD VALUE {} BEFORE {};",
                        literal(label),
                        literal(next)
                    ),
                    None => format!("ALTER TYPE {name} ADD VALUE {};", literal(label)),
                },
            };
            self.added_values.insert(
                self.out.changes.len(),
                format!("{}::{name}", literal(label)),
            );
            self.push(sql, vec![]);
            present.push(label);
        }
    }

    fn sequences(&mut self) {
        let (from, to) = (self.from, self.to);
        for (name, s) in &to.sequences {
            match from.sequences.get(name) {
                // An identity column's is made by its column, with these options.
                None if s.identity => {}
                None => self.push(
                    format!(
                        "CREATE SEQUENCE {name} AS {} {};",
                        s.data_type,
                        sequence_options(s)
                    ),
                    vec![],
                ),
                Some(b) => {
                    let mut parts = Vec::new();
                    if b.data_type != s.data_type {
                        parts.push(format!("AS {}", s.data_type));
                    }
                    if b.increment != s.increment {
                        parts.push(format!("INCREMENT BY {}", s.increment));
                    }
                    if b.min != s.min {
                        parts.push(format!("MINVALUE {}", s.min));
                    }
                    if b.max != s.max {
                        parts.push(format!("MAXVALUE {}", s.max));
                    }
                    if b.start != s.start {
                        parts.push(format!("START WITH {}", s.start));
                    }
                    if b.cache != s.cache {
                        parts.push(format!("CACHE {}", s.cache));
                    }
                    if b.cycle != s.cycle {
                        parts.push(if s.cycle { "CYCLE" } else { "NO CYCLE" }.to_owned());
                    }
                    if !parts.is_empty() {
                        self.push(
                            format!("ALTER SEQUENCE {name} {};", parts.join(" ")),
                            vec![],
                        );
                    }
                }
            }
        }
    }

    fn tables(&mut self) {
        let (from, to) = (self.from, self.to);
        // Parents before their partitions.
        let mut created: Vec<(&Name, &Table)> = to
            .tables
            .iter()
            .filter(|(n, _)| !from.tables.contains_key(*n))
            .collect();
        created.sort_by_key(|(n, t)| (t.partition_of.is_some(), (*n).clone()));
        for (name, t) in created {
            self.push(create_table(to, name, t), vec![]);
            if t.rls_enabled {
                self.push(
                    format!("ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;"),
                    vec![],
                );
            }
            if t.rls_forced {
                self.push(
                    format!("ALTER TABLE {name} FORCE ROW LEVEL SECURITY;"),
                    vec![],
                );
            }
            if t.replica_identity != 'd' && t.replica_identity != 'i' {
                self.push(
                    format!(
                        "ALTER TABLE {name} REPLICA IDENTITY {};",
                        replica_identity(t.replica_identity)
                    ),
                    vec![],
                );
            }
        }
        for (name, after) in &to.tables {
            let Some(before) = from.tables.get(name) else {
                continue;
            };
            self.alter_table(name, before, after);
        }
    }

    fn alter_table(&mut self, name: &Name, before: &Table, after: &Table) {
        if before.partition_key != after.partition_key {
            self.out.manual.push(format!(
                "table {name} changes its partitioning ({} to {}): create a new table and move the rows",
                before.partition_key.as_deref().unwrap_or("none"),
                after.partition_key.as_deref().unwrap_or("none")
            ));
        }
        if before.partition_of != after.partition_of {
            if let Some((parent, _)) = &before.partition_of {
                self.push(
                    format!("ALTER TABLE {parent} DETACH PARTITION {name};"),
                    vec![hazard(
                        HazardKind::LongLock,
                        "detaching takes an ACCESS EXCLUSIVE lock on the parent",
                    )],
                );
            }
            if let Some((parent, bound)) = &after.partition_of {
                self.push(
                    format!("ALTER TABLE {parent} ATTACH PARTITION {name} {bound};"),
                    vec![hazard(
                        HazardKind::LongLock,
                        "attaching scans the partition to check its bound unless a matching CHECK constraint exists",
                    )],
                );
            }
        }
        if before.unlogged != after.unlogged {
            self.push(
                format!(
                    "ALTER TABLE {name} SET {};",
                    if after.unlogged { "UNLOGGED" } else { "LOGGED" }
                ),
                vec![hazard(
                    HazardKind::TableRewrite,
                    "changing persistence rewrites the table",
                )],
            );
        }
        if after.partition_of.is_none() {
            for col in &after.columns {
                match before.column(&col.name) {
                    None => {
                        let hazards = add_column_hazards(name, col);
                        self.push(
                            format!(
                                "ALTER TABLE {name} ADD COLUMN {};",
                                column_def(self.to, name, col)
                            ),
                            hazards,
                        );
                    }
                    Some(old) if old.generated.is_some() && old.generated != col.generated => {
                        // Dropped among the drops; added back here.
                        let hazards = add_column_hazards(name, col);
                        self.push(
                            format!(
                                "ALTER TABLE {name} ADD COLUMN {};",
                                column_def(self.to, name, col)
                            ),
                            hazards,
                        );
                    }
                    Some(old) => self.alter_column(name, old, col),
                }
            }
        }
        if before.options != after.options {
            let keys = |o: &[String]| -> BTreeMap<String, String> {
                o.iter()
                    .map(|kv| match kv.split_once('=') {
                        Some((k, v)) => (k.to_owned(), v.to_owned()),
                        None => (kv.clone(), String::new()),
                    })
                    .collect()
            };
            let (b, a) = (keys(&before.options), keys(&after.options));
            let reset: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
            if !reset.is_empty() {
                let list: Vec<&str> = reset.iter().map(|s| s.as_str()).collect();
                self.push(
                    format!("ALTER TABLE {name} RESET ({});", list.join(", ")),
                    vec![],
                );
            }
            let set: Vec<String> = a
                .iter()
                .filter(|(k, v)| b.get(*k) != Some(*v))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if !set.is_empty() {
                self.push(
                    format!("ALTER TABLE {name} SET ({});", set.join(", ")),
                    vec![],
                );
            }
        }
        if before.rls_enabled != after.rls_enabled {
            if after.rls_enabled {
                self.push(
                    format!("ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;"),
                    vec![],
                );
            } else {
                self.push(
                    format!("ALTER TABLE {name} DISABLE ROW LEVEL SECURITY;"),
                    vec![hazard(
                        HazardKind::Security,
                        format!("row level security off: roles with privileges on {name} see and change every row"),
                    )],
                );
            }
        }
        if before.rls_forced != after.rls_forced {
            self.push(
                format!(
                    "ALTER TABLE {name} {} ROW LEVEL SECURITY;",
                    if after.rls_forced {
                        "FORCE"
                    } else {
                        "NO FORCE"
                    }
                ),
                vec![],
            );
        }
        if before.replica_identity != after.replica_identity {
            if after.replica_identity == 'i' {
                self.out.manual.push(format!(
                    "table {name} uses an index as its replica identity: set it with ALTER TABLE … REPLICA IDENTITY USING INDEX"
                ));
            } else {
                self.push(
                    format!(
                        "ALTER TABLE {name} REPLICA IDENTITY {};",
                        replica_identity(after.replica_identity)
                    ),
                    vec![],
                );
            }
        }
    }

    fn alter_column(&mut self, table: &Name, old: &Column, new: &Column) {
        let col = ident(&new.name);
        let type_changes = old.data_type != new.data_type || old.collation != new.collation;
        let default_changes = old.default != new.default;
        if default_changes && old.default.is_some() && (type_changes || new.default.is_none()) {
            self.push(
                format!("ALTER TABLE {table} ALTER COLUMN {col} DROP DEFAULT;"),
                vec![],
            );
        }
        if type_changes {
            let collate = new
                .collation
                .as_ref()
                .map(|c| format!(" COLLATE {c}"))
                .unwrap_or_default();
            let using = if old.data_type != new.data_type {
                format!(" USING {col}::{}", new.data_type)
            } else {
                String::new()
            };
            let mut hazards = Vec::new();
            if !binary_compatible(&old.data_type, &new.data_type) {
                hazards.push(hazard(
                    HazardKind::TableRewrite,
                    format!(
                        "{table}.{col} changes type from {} to {}: the table and its indexes are rewritten under an ACCESS EXCLUSIVE lock; check the USING expression",
                        old.data_type, new.data_type
                    ),
                ));
            }
            if narrows(&old.data_type, &new.data_type) {
                hazards.push(hazard(
                    HazardKind::DataLoss,
                    format!("{table}.{col} narrows from {} to {}: values that do not fit fail or are cut", old.data_type, new.data_type),
                ));
            }
            self.push(
                format!(
                    "ALTER TABLE {table} ALTER COLUMN {col} TYPE {}{collate}{using};",
                    new.data_type
                ),
                hazards,
            );
        }
        if default_changes && let Some(d) = &new.default {
            self.push(
                format!("ALTER TABLE {table} ALTER COLUMN {col} SET DEFAULT {d};"),
                vec![],
            );
        }
        match (old.identity, new.identity) {
            (None, Some(kind)) => self.push(
                format!(
                    "ALTER TABLE {table} ALTER COLUMN {col} ADD GENERATED {} AS IDENTITY{};",
                    identity(kind),
                    identity_options(self.to, table, &new.name)
                ),
                vec![],
            ),
            (Some(_), None) => self.push(
                format!("ALTER TABLE {table} ALTER COLUMN {col} DROP IDENTITY;"),
                vec![],
            ),
            (Some(a), Some(b)) if a != b => self.push(
                format!(
                    "ALTER TABLE {table} ALTER COLUMN {col} SET GENERATED {};",
                    identity(b)
                ),
                vec![],
            ),
            _ => {}
        }
        if old.not_null != new.not_null {
            if new.not_null {
                let hazards = if self.new_tables.contains(table) {
                    vec![]
                } else {
                    vec![hazard(
                        HazardKind::LongLock,
                        format!(
                            "SET NOT NULL scans {table} under an ACCESS EXCLUSIVE lock; on a large table add CHECK ({col} IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL"
                        ),
                    )]
                };
                self.push(
                    format!("ALTER TABLE {table} ALTER COLUMN {col} SET NOT NULL;"),
                    hazards,
                );
            } else {
                self.push(
                    format!("ALTER TABLE {table} ALTER COLUMN {col} DROP NOT NULL;"),
                    vec![],
                );
            }
        }
    }

    fn constraints(&mut self) {
        let (from, to) = (self.from, self.to);
        for pass_fk in [false, true] {
            for (table, after) in &to.tables {
                let before = from.tables.get(table);
                for (cname, con) in &after.constraints {
                    if (con.kind == ConstraintKind::ForeignKey) != pass_fk {
                        continue;
                    }
                    let old = before.and_then(|b| b.constraints.get(cname));
                    match old {
                        Some(o) if o.definition == con.definition => {}
                        Some(o) if validates_only(o, con) => self.push(
                            format!("ALTER TABLE {table} VALIDATE CONSTRAINT {};", ident(cname)),
                            vec![hazard(
                                HazardKind::LongLock,
                                format!("validates every row of {table} (SHARE UPDATE EXCLUSIVE: writes go on)"),
                            )],
                        ),
                        _ => {
                            let hazards = self.constraint_hazards(table, con);
                            self.push(
                                format!(
                                    "ALTER TABLE {table} ADD CONSTRAINT {} {};",
                                    ident(cname),
                                    con.definition
                                ),
                                hazards,
                            );
                        }
                    }
                }
            }
        }
    }

    fn constraint_hazards(&self, table: &Name, con: &Constraint) -> Vec<Hazard> {
        if self.new_tables.contains(table) {
            return vec![];
        }
        match con.kind {
            ConstraintKind::PrimaryKey | ConstraintKind::Unique | ConstraintKind::Exclusion => {
                vec![hazard(
                    HazardKind::IndexBuild,
                    format!(
                        "builds an index on {table} under an ACCESS EXCLUSIVE lock; on a large table build a unique index CONCURRENTLY first and add the constraint USING INDEX"
                    ),
                )]
            }
            ConstraintKind::Check | ConstraintKind::ForeignKey | ConstraintKind::NotNull
                if con.validated =>
            {
                vec![hazard(
                    HazardKind::LongLock,
                    format!(
                        "validates every row of {table} while holding a lock that blocks writes; on a large table add it NOT VALID, then VALIDATE CONSTRAINT"
                    ),
                )]
            }
            _ => vec![],
        }
    }

    fn indexes(&mut self) {
        let (from, to) = (self.from, self.to);
        for (table, after) in &to.tables {
            let before = from.tables.get(table);
            for (iname, index) in &after.indexes {
                if before
                    .and_then(|b| b.indexes.get(iname))
                    .is_some_and(|i| i.definition == index.definition)
                {
                    continue;
                }
                let hazards = if self.new_tables.contains(table) {
                    vec![]
                } else {
                    vec![hazard(
                        HazardKind::IndexBuild,
                        format!(
                            "builds {} on {table}, blocking writes while it builds; on a large table use CREATE INDEX CONCURRENTLY in a file of its own (-- plover:no-transaction)",
                            ident(iname)
                        ),
                    )]
                };
                self.push(statement(&index.definition), hazards);
            }
        }
    }

    fn views(&mut self) {
        let (from, to) = (self.from, self.to);
        let created: BTreeSet<&Name> = to
            .views
            .keys()
            .filter(|n| !from.views.contains_key(*n) || self.recreated_views.contains(*n))
            .collect();
        for name in topological(&to.views, &created) {
            let v = &to.views[name];
            let with = if v.options.is_empty() {
                String::new()
            } else {
                format!(" WITH ({})", v.options.join(", "))
            };
            let body = v.definition.trim().trim_end_matches(';').trim_end();
            let kind = if v.materialized {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            };
            self.push(format!("CREATE {kind} {name}{with} AS\n{body};"), vec![]);
            for index in v.indexes.values() {
                self.push(statement(&index.definition), vec![]);
            }
        }
        // Options and indexes of views kept.
        for (name, after) in &to.views {
            let Some(before) = from.views.get(name) else {
                continue;
            };
            if self.recreated_views.contains(name) {
                continue;
            }
            if before.options != after.options {
                let kind = if after.materialized {
                    "MATERIALIZED VIEW"
                } else {
                    "VIEW"
                };
                let (b, a): (BTreeSet<&String>, BTreeSet<&String>) = (
                    before.options.iter().collect(),
                    after.options.iter().collect(),
                );
                let reset: Vec<&str> = b
                    .difference(&a)
                    .filter_map(|kv| kv.split('=').next())
                    .filter(|k| !a.iter().any(|x| x.split('=').next() == Some(k)))
                    .collect();
                if !reset.is_empty() {
                    self.push(
                        format!("ALTER {kind} {name} RESET ({});", reset.join(", ")),
                        vec![],
                    );
                }
                let set: Vec<&str> = a.difference(&b).map(|s| s.as_str()).collect();
                if !set.is_empty() {
                    let hazards = if set.contains(&"security_invoker=false") {
                        vec![hazard(
                            HazardKind::Security,
                            format!(
                                "{name} runs with its owner's rights: it reads past the row level security of the tables under it"
                            ),
                        )]
                    } else {
                        vec![]
                    };
                    self.push(
                        format!("ALTER {kind} {name} SET ({});", set.join(", ")),
                        hazards,
                    );
                }
            }
            for (iname, index) in &after.indexes {
                if before
                    .indexes
                    .get(iname)
                    .is_none_or(|i| i.definition != index.definition)
                {
                    self.push(
                        statement(&index.definition),
                        vec![hazard(
                            HazardKind::IndexBuild,
                            format!("builds {} on {name}", ident(iname)),
                        )],
                    );
                }
            }
        }
    }

    fn triggers(&mut self) {
        let (from, to) = (self.from, self.to);
        for (table, after) in &to.tables {
            let before = from.tables.get(table);
            for (tname, trigger) in &after.triggers {
                let old = before.and_then(|b| b.triggers.get(tname));
                let recreated = old.is_none_or(|o| o.definition != trigger.definition);
                if recreated {
                    self.push(statement(&trigger.definition), vec![]);
                }
                let was = if recreated {
                    'O'
                } else {
                    old.map_or('O', |o| o.enabled)
                };
                if was != trigger.enabled {
                    let state = match trigger.enabled {
                        'D' => "DISABLE TRIGGER",
                        'R' => "ENABLE REPLICA TRIGGER",
                        'A' => "ENABLE ALWAYS TRIGGER",
                        _ => "ENABLE TRIGGER",
                    };
                    self.push(
                        format!("ALTER TABLE {table} {state} {};", ident(tname)),
                        vec![],
                    );
                }
            }
        }
    }

    fn policies(&mut self) {
        let (from, to) = (self.from, self.to);
        for (table, after) in &to.tables {
            let before = from.tables.get(table);
            for (pname, policy) in &after.policies {
                let old = before.and_then(|b| b.policies.get(pname));
                let recreate = match old {
                    None => true,
                    Some(o) => {
                        self.recreated_policies
                            .contains(&(table.clone(), pname.clone()))
                            || !policy_alterable(o, policy)
                    }
                };
                if recreate {
                    let hazards = policy_hazards(table, policy);
                    self.push(create_policy(table, pname, policy), hazards);
                } else if let Some(o) = old
                    && o != policy
                    && (o.roles != policy.roles
                        || o.using != policy.using
                        || o.check != policy.check)
                {
                    let mut sql = format!("ALTER POLICY {} ON {table}", ident(pname));
                    if o.roles != policy.roles {
                        let _ = write!(sql, " TO {}", roles(&policy.roles));
                    }
                    if o.using != policy.using
                        && let Some(u) = &policy.using
                    {
                        let _ = write!(sql, " USING ({u})");
                    }
                    if o.check != policy.check
                        && let Some(c) = &policy.check
                    {
                        let _ = write!(sql, " WITH CHECK ({c})");
                    }
                    sql.push(';');
                    let hazards = policy_hazards(table, policy);
                    self.push(sql, hazards);
                }
            }
        }
    }

    fn sequence_owners(&mut self) {
        let (from, to) = (self.from, self.to);
        for (name, s) in &to.sequences {
            let old = from.sequences.get(name);
            if s.identity || old.is_some_and(|b| b.identity) {
                continue;
            }
            if old.and_then(|b| b.owned_by.as_ref()) == s.owned_by.as_ref() {
                continue;
            }
            match &s.owned_by {
                Some((table, column)) => self.push(
                    format!("ALTER SEQUENCE {name} OWNED BY {table}.{};", ident(column)),
                    vec![],
                ),
                None => self.push(format!("ALTER SEQUENCE {name} OWNED BY NONE;"), vec![]),
            }
        }
    }

    /// The privileges a new object of `objects` kind in `schema` has right after its
    /// CREATE, made by the role the script runs as (`from.user`, the role that read the
    /// database the script is for): the role's default privileges of no schema in the
    /// target, else the built-in ones (EXECUTE on functions and USAGE on types for
    /// PUBLIC), plus its default privileges in `schema`; the role's own (as the owner,
    /// implicit) left out. Revoking what is not there does nothing, so the script stays
    /// exact where this over-counts.
    fn creation_grants(&self, objects: &str, schema: &str) -> Grants {
        let creator = if self.from.user.is_empty() {
            &self.to.user
        } else {
            &self.from.user
        };
        let mine = |s: Option<&str>| DefaultPrivilegeKey {
            role: creator.clone(),
            schema: s.map(str::to_owned),
            objects: objects.to_owned(),
        };
        let mut base = match self.to.default_privileges.get(&mine(None)) {
            Some(grants) => grants.clone(),
            None => builtin_grants(objects),
        };
        if let Some(grants) = self.to.default_privileges.get(&mine(Some(schema))) {
            base.extend(grants.iter().cloned());
        }
        base.retain(|g| g.grantee != *creator);
        base
    }

    fn grants(&mut self) {
        let (from, to) = (self.from, self.to);
        let mut statements: Vec<(String, bool)> = Vec::new();
        let none = Grants::new();
        for (name, s) in &to.schemas {
            let before = from.schemas.get(name).map_or(&none, |b| &b.grants);
            statements.extend(grant_statements(
                &format!("SCHEMA {}", ident(name)),
                None,
                before,
                &s.grants,
            ));
        }
        for (name, t) in &to.types {
            let base;
            let before = match from.types.get(name) {
                Some(b) => &b.grants,
                None => {
                    base = self.creation_grants("TYPES", &name.schema);
                    &base
                }
            };
            statements.extend(grant_statements(
                &format!("TYPE {name}"),
                None,
                before,
                &t.grants,
            ));
        }
        for (name, s) in &to.sequences {
            let base;
            let before = match from.sequences.get(name) {
                Some(b) => &b.grants,
                None => {
                    base = self.creation_grants("SEQUENCES", &name.schema);
                    &base
                }
            };
            statements.extend(grant_statements(
                &format!("SEQUENCE {name}"),
                None,
                before,
                &s.grants,
            ));
        }
        for (name, t) in &to.tables {
            let old = from.tables.get(name);
            let base;
            let before = match old {
                Some(b) => &b.grants,
                None => {
                    base = self.creation_grants("TABLES", &name.schema);
                    &base
                }
            };
            statements.extend(grant_statements(
                &format!("TABLE {name}"),
                None,
                before,
                &t.grants,
            ));
            for col in &t.columns {
                let before = old
                    .and_then(|b| b.column(&col.name))
                    .map_or(&none, |c| &c.grants);
                statements.extend(grant_statements(
                    &format!("TABLE {name}"),
                    Some(&col.name),
                    before,
                    &col.grants,
                ));
            }
        }
        for (name, v) in &to.views {
            let base;
            let before = match from.views.get(name) {
                Some(b) if !self.recreated_views.contains(name) => &b.grants,
                _ => {
                    base = self.creation_grants("TABLES", &name.schema);
                    &base
                }
            };
            statements.extend(grant_statements(
                &format!("TABLE {name}"),
                None,
                before,
                &v.grants,
            ));
        }
        for (id, f) in &to.functions {
            let base;
            let before = match from.functions.get(id) {
                Some(b) if !self.recreated_functions.contains(id) => &b.grants,
                _ => {
                    base = self.creation_grants("FUNCTIONS", &id.schema);
                    &base
                }
            };
            let kind = if f.kind == FunctionKind::Procedure {
                "PROCEDURE"
            } else {
                "FUNCTION"
            };
            statements.extend(grant_statements(
                &format!("{kind} {id}"),
                None,
                before,
                &f.grants,
            ));
        }
        for (sql, broad) in statements {
            let hazards = if broad {
                vec![hazard(
                    HazardKind::Security,
                    "grants an API role (anon, authenticated) or PUBLIC a privilege",
                )]
            } else {
                vec![]
            };
            self.push(sql, hazards);
        }
    }

    fn comments(&mut self) {
        let (from, to) = (self.from, self.to);
        let mut out: Vec<String> = Vec::new();
        let mut comment =
            |what: String, before: Option<&Option<String>>, after: &Option<String>| {
                let before = before.cloned().flatten();
                if before != *after && !(before.is_none() && after.is_none()) {
                    out.push(format!(
                        "COMMENT ON {what} IS {};",
                        after.as_deref().map_or("NULL".to_owned(), literal)
                    ));
                }
            };
        for (name, s) in &to.schemas {
            comment(
                format!("SCHEMA {}", ident(name)),
                from.schemas.get(name).map(|b| &b.comment),
                &s.comment,
            );
        }
        for (name, t) in &to.types {
            let kind = if matches!(t.kind, TypeKind::Domain { .. }) {
                "DOMAIN"
            } else {
                "TYPE"
            };
            comment(
                format!("{kind} {name}"),
                from.types.get(name).map(|b| &b.comment),
                &t.comment,
            );
        }
        for (name, s) in &to.sequences {
            comment(
                format!("SEQUENCE {name}"),
                from.sequences.get(name).map(|b| &b.comment),
                &s.comment,
            );
        }
        for (name, t) in &to.tables {
            let old = from.tables.get(name);
            comment(format!("TABLE {name}"), old.map(|b| &b.comment), &t.comment);
            for col in &t.columns {
                let before = old.and_then(|b| b.column(&col.name)).map(|c| &c.comment);
                comment(
                    format!("COLUMN {name}.{}", ident(&col.name)),
                    before,
                    &col.comment,
                );
            }
            for (cname, con) in &t.constraints {
                let before = old
                    .and_then(|b| b.constraints.get(cname))
                    .filter(|b| b.definition == con.definition || validates_only(b, con))
                    .map(|c| &c.comment);
                comment(
                    format!("CONSTRAINT {} ON {name}", ident(cname)),
                    before,
                    &con.comment,
                );
            }
            for (iname, index) in &t.indexes {
                let before = old
                    .and_then(|b| b.indexes.get(iname))
                    .filter(|b| b.definition == index.definition)
                    .map(|i| &i.comment);
                comment(
                    format!("INDEX {}", Name::new(&name.schema, iname)),
                    before,
                    &index.comment,
                );
            }
            for (tname, trigger) in &t.triggers {
                let before = old
                    .and_then(|b| b.triggers.get(tname))
                    .filter(|b| b.definition == trigger.definition)
                    .map(|x| &x.comment);
                comment(
                    format!("TRIGGER {} ON {name}", ident(tname)),
                    before,
                    &trigger.comment,
                );
            }
            for (pname, policy) in &t.policies {
                let recreated = self
                    .recreated_policies
                    .contains(&(name.clone(), pname.clone()))
                    || old
                        .and_then(|b| b.policies.get(pname))
                        .is_some_and(|o| !policy_alterable(o, policy));
                let before = old
                    .and_then(|b| b.policies.get(pname))
                    .filter(|_| !recreated)
                    .map(|p| &p.comment);
                comment(
                    format!("POLICY {} ON {name}", ident(pname)),
                    before,
                    &policy.comment,
                );
            }
        }
        for (name, v) in &to.views {
            let kind = if v.materialized {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            };
            let old = from
                .views
                .get(name)
                .filter(|_| !self.recreated_views.contains(name));
            comment(
                format!("{kind} {name}"),
                old.map(|b| &b.comment),
                &v.comment,
            );
            for (iname, index) in &v.indexes {
                let before = old
                    .and_then(|b| b.indexes.get(iname))
                    .filter(|b| b.definition == index.definition)
                    .map(|i| &i.comment);
                comment(
                    format!("INDEX {}", Name::new(&name.schema, iname)),
                    before,
                    &index.comment,
                );
            }
        }
        for (id, f) in &to.functions {
            let kind = match f.kind {
                FunctionKind::Procedure => "PROCEDURE",
                FunctionKind::Aggregate => "AGGREGATE",
                FunctionKind::Function | FunctionKind::Window => "FUNCTION",
            };
            let old = from
                .functions
                .get(id)
                .filter(|_| !self.recreated_functions.contains(id));
            comment(format!("{kind} {id}"), old.map(|b| &b.comment), &f.comment);
        }
        for sql in out {
            self.push(sql, vec![]);
        }
    }

    fn publications(&mut self) {
        let (from, to) = (self.from, self.to);
        let none = BTreeSet::new();
        for (pubname, tables) in &to.publications {
            let before = match from.publications.get(pubname) {
                Some(b) => b,
                None => {
                    self.push(format!("CREATE PUBLICATION {};", ident(pubname)), vec![]);
                    &none
                }
            };
            for table in tables.difference(before) {
                self.push(
                    format!("ALTER PUBLICATION {} ADD TABLE {table};", ident(pubname)),
                    vec![],
                );
            }
            for table in before.difference(tables) {
                if to.tables.contains_key(table) {
                    self.push(
                        format!("ALTER PUBLICATION {} DROP TABLE {table};", ident(pubname)),
                        vec![],
                    );
                }
            }
        }
        for (pubname, tables) in &from.publications {
            if !to.publications.contains_key(pubname) && !tables.is_empty() {
                self.out.notes.push(format!(
                    "publication {} exists on the source only; a diff never drops a publication",
                    ident(pubname)
                ));
            }
        }
    }
}

/// The privileges Postgres gives a new object of `objects` kind beyond its owner's
/// when no default privileges say otherwise: EXECUTE on functions and USAGE on
/// types for PUBLIC.
fn builtin_grants(objects: &str) -> Grants {
    let privilege = match objects {
        "FUNCTIONS" => "EXECUTE",
        "TYPES" => "USAGE",
        _ => return Grants::new(),
    };
    Grants::from([Grant {
        grantee: "PUBLIC".into(),
        privilege: privilege.into(),
        grantable: false,
    }])
}

/// The views of `set` in an order where each comes after the views of `set` it reads.
fn topological<'a>(views: &'a BTreeMap<Name, View>, set: &BTreeSet<&'a Name>) -> Vec<&'a Name> {
    let mut done: BTreeSet<&Name> = BTreeSet::new();
    let mut order = Vec::new();
    fn visit<'a>(
        name: &'a Name,
        views: &'a BTreeMap<Name, View>,
        set: &BTreeSet<&'a Name>,
        done: &mut BTreeSet<&'a Name>,
        order: &mut Vec<&'a Name>,
        depth: usize,
    ) {
        if done.contains(name) || depth > views.len() {
            return;
        }
        done.insert(name);
        if let Some(v) = views.get(name) {
            for dep in &v.depends_on {
                if let Some((key, _)) = views.get_key_value(dep)
                    && set.contains(key)
                {
                    visit(key, views, set, done, order, depth + 1);
                }
            }
        }
        order.push(name);
    }
    for name in set {
        visit(name, views, set, &mut done, &mut order, 0);
    }
    order
}

/// The constraint differs only in being validated now (`… NOT VALID` before).
fn validates_only(before: &Constraint, after: &Constraint) -> bool {
    !before.validated
        && after.validated
        && before
            .definition
            .strip_suffix(" NOT VALID")
            .is_some_and(|d| d == after.definition)
}

/// `ALTER POLICY` can make `before` into `after`: same command and kind, and no
/// expression removed (ALTER POLICY can set USING and WITH CHECK, not drop them).
fn policy_alterable(before: &Policy, after: &Policy) -> bool {
    before.command == after.command
        && before.permissive == after.permissive
        && !(before.using.is_some() && after.using.is_none())
        && !(before.check.is_some() && after.check.is_none())
}

fn roles(roles: &[String]) -> String {
    roles
        .iter()
        .map(|r| {
            if r == "public" {
                "PUBLIC".to_owned()
            } else {
                ident(r)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn create_policy(table: &Name, name: &str, p: &Policy) -> String {
    let mut sql = format!(
        "CREATE POLICY {} ON {table} AS {} FOR {} TO {}",
        ident(name),
        if p.permissive {
            "PERMISSIVE"
        } else {
            "RESTRICTIVE"
        },
        p.command,
        roles(&p.roles)
    );
    if let Some(u) = &p.using {
        let _ = write!(sql, " USING ({u})");
    }
    if let Some(c) = &p.check {
        let _ = write!(sql, " WITH CHECK ({c})");
    }
    sql.push(';');
    sql
}

fn policy_hazards(table: &Name, p: &Policy) -> Vec<Hazard> {
    let always = |e: &Option<String>| e.as_deref().is_some_and(|x| x.trim() == "true");
    let writes = p.command != "SELECT";
    let api = p
        .roles
        .iter()
        .any(|r| r == "public" || r == "anon" || r == "authenticated");
    if p.permissive && api && writes && (always(&p.using) || always(&p.check)) {
        vec![hazard(
            HazardKind::Security,
            format!(
                "a {} policy on {table} that is always true lets API roles write every row",
                p.command
            ),
        )]
    } else {
        vec![]
    }
}

fn create_type(name: &Name, kind: &TypeKind) -> String {
    match kind {
        TypeKind::Enum { labels } => format!(
            "CREATE TYPE {name} AS ENUM ({});",
            labels
                .iter()
                .map(|l| literal(l))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TypeKind::Domain {
            base,
            not_null,
            default,
            collation,
            checks,
        } => {
            let mut sql = format!("CREATE DOMAIN {name} AS {base}");
            if let Some(c) = collation {
                let _ = write!(sql, " COLLATE {c}");
            }
            if let Some(d) = default {
                let _ = write!(sql, " DEFAULT {d}");
            }
            if *not_null {
                sql.push_str(" NOT NULL");
            }
            for (cname, def) in checks {
                let _ = write!(sql, " CONSTRAINT {} {def}", ident(cname));
            }
            sql.push(';');
            sql
        }
        TypeKind::Composite { attributes } => format!(
            "CREATE TYPE {name} AS ({});",
            attributes
                .iter()
                .map(|(a, t)| format!("{} {t}", ident(a)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TypeKind::Range { subtype, options } => {
            let mut parts = vec![format!("SUBTYPE = {subtype}")];
            parts.extend(options.iter().cloned());
            format!("CREATE TYPE {name} AS RANGE ({});", parts.join(", "))
        }
    }
}

fn identity(kind: Identity) -> &'static str {
    match kind {
        Identity::Always => "ALWAYS",
        Identity::ByDefault => "BY DEFAULT",
    }
}

fn replica_identity(c: char) -> &'static str {
    match c {
        'n' => "NOTHING",
        'f' => "FULL",
        _ => "DEFAULT",
    }
}

/// The options of `s` as `CREATE SEQUENCE` and an identity column take them.
fn sequence_options(s: &Sequence) -> String {
    format!(
        "START WITH {} INCREMENT BY {} MINVALUE {} MAXVALUE {} CACHE {}{}",
        s.start,
        s.increment,
        s.min,
        s.max,
        s.cache,
        if s.cycle { " CYCLE" } else { "" }
    )
}

/// ` (SEQUENCE NAME … START WITH …)` for the identity column `column` of `table`, as
/// `catalog` has its sequence (nothing when it has none).
fn identity_options(catalog: &Catalog, table: &Name, column: &str) -> String {
    catalog
        .sequences
        .iter()
        .find(|(_, s)| {
            s.identity
                && s.owned_by
                    .as_ref()
                    .is_some_and(|(t, c)| t == table && c == column)
        })
        .map(|(name, s)| format!(" (SEQUENCE NAME {name} {})", sequence_options(s)))
        .unwrap_or_default()
}

/// A column of `table` as in `CREATE TABLE` or `ADD COLUMN`, as `catalog` has it.
fn column_def(catalog: &Catalog, table: &Name, c: &Column) -> String {
    let mut sql = format!("{} {}", ident(&c.name), c.data_type);
    if let Some(coll) = &c.collation {
        let _ = write!(sql, " COLLATE {coll}");
    }
    if let Some(expr) = &c.generated {
        let _ = write!(sql, " GENERATED ALWAYS AS ({expr}) STORED");
    }
    if let Some(kind) = c.identity {
        let _ = write!(
            sql,
            " GENERATED {} AS IDENTITY{}",
            identity(kind),
            identity_options(catalog, table, &c.name)
        );
    }
    if let Some(d) = &c.default {
        let _ = write!(sql, " DEFAULT {d}");
    }
    if c.not_null {
        sql.push_str(" NOT NULL");
    }
    sql
}

fn add_column_hazards(table: &Name, c: &Column) -> Vec<Hazard> {
    let volatile_default = c
        .default
        .as_deref()
        .is_some_and(|d| d.contains('(') && !d.starts_with("nextval("));
    if c.generated.is_some() || c.identity.is_some() || volatile_default {
        vec![hazard(
            HazardKind::TableRewrite,
            format!(
                "adding {}.{} with a computed value may rewrite the table to fill it (a volatile default, an identity or a generated column)",
                table,
                ident(&c.name)
            ),
        )]
    } else if c.not_null && c.default.is_none() {
        vec![hazard(
            HazardKind::LongLock,
            format!(
                "{table}.{} is NOT NULL with no default: fails if the table has rows",
                ident(&c.name)
            ),
        )]
    } else {
        vec![]
    }
}

fn create_table(catalog: &Catalog, name: &Name, t: &Table) -> String {
    if let Some((parent, bound)) = &t.partition_of {
        return format!("CREATE TABLE {name} PARTITION OF {parent} {bound};");
    }
    let mut sql = format!(
        "CREATE {}TABLE {name} (",
        if t.unlogged { "UNLOGGED " } else { "" }
    );
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("    {}", column_def(catalog, name, c)))
        .collect();
    if cols.is_empty() {
        sql.push(')');
    } else {
        let _ = write!(sql, "\n{}\n)", cols.join(",\n"));
    }
    if let Some(key) = &t.partition_key {
        let _ = write!(sql, " PARTITION BY {key}");
    }
    if !t.options.is_empty() {
        let _ = write!(sql, " WITH ({})", t.options.join(", "));
    }
    sql.push(';');
    sql
}

/// Whether changing `from` to `to` keeps the stored bytes (no rewrite): to `text`
/// from a character type, or a `varchar` widened or freed of its limit.
fn binary_compatible(from: &str, to: &str) -> bool {
    let limit = |t: &str| -> Option<Option<u32>> {
        if t == "character varying" {
            return Some(None);
        }
        t.strip_prefix("character varying(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|n| n.parse().ok())
            .map(Some)
    };
    match (limit(from), to) {
        (Some(_), "text") => true,
        _ => match (limit(from), limit(to)) {
            (Some(Some(a)), Some(Some(b))) => b >= a,
            (Some(_), Some(None)) => true,
            _ => from == to,
        },
    }
}

/// Whether `to` holds less than `from` in the common cases (a shorter varchar, a
/// smaller integer, text to a limited varchar).
fn narrows(from: &str, to: &str) -> bool {
    let rank = |t: &str| match t {
        "smallint" => Some(1),
        "integer" => Some(2),
        "bigint" => Some(3),
        _ => None,
    };
    if let (Some(a), Some(b)) = (rank(from), rank(to)) {
        return b < a;
    }
    let limit = |t: &str| {
        t.strip_prefix("character varying(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|n| n.parse::<u32>().ok())
    };
    match (limit(from), limit(to)) {
        (Some(a), Some(b)) => b < a,
        (None, Some(_)) => from == "text" || from == "character varying",
        _ => false,
    }
}

/// GRANT and REVOKE statements that turn `before` into `after` on `object` (e.g.
/// `TABLE public.t`), for a column when given. Each with whether it grants an API
/// role or PUBLIC something.
fn grant_statements(
    object: &str,
    column: Option<&str>,
    before: &Grants,
    after: &Grants,
) -> Vec<(String, bool)> {
    let key = |g: &Grant| (g.grantee.clone(), g.privilege.clone());
    let b: BTreeMap<(String, String), bool> =
        before.iter().map(|g| (key(g), g.grantable)).collect();
    let a: BTreeMap<(String, String), bool> = after.iter().map(|g| (key(g), g.grantable)).collect();
    let privilege = |p: &str| match column {
        Some(c) => format!("{p} ({})", ident(c)),
        None => p.to_owned(),
    };
    let grantee = |g: &str| {
        if g == "PUBLIC" {
            g.to_owned()
        } else {
            ident(g)
        }
    };
    // (grantee, with grant option) -> privileges.
    let mut revoke: BTreeMap<(String, bool), Vec<String>> = BTreeMap::new();
    let mut grant: BTreeMap<(String, bool), Vec<String>> = BTreeMap::new();
    for ((who, p), grantable) in &b {
        match a.get(&(who.clone(), p.clone())) {
            None => revoke
                .entry((who.clone(), false))
                .or_default()
                .push(privilege(p)),
            Some(false) if *grantable => revoke
                .entry((who.clone(), true))
                .or_default()
                .push(privilege(p)),
            _ => {}
        }
    }
    for ((who, p), grantable) in &a {
        match b.get(&(who.clone(), p.clone())) {
            None => grant
                .entry((who.clone(), *grantable))
                .or_default()
                .push(privilege(p)),
            Some(false) if *grantable => grant
                .entry((who.clone(), true))
                .or_default()
                .push(privilege(p)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for ((who, option_only), privileges) in revoke {
        out.push((
            format!(
                "REVOKE {}{} ON {object} FROM {};",
                if option_only { "GRANT OPTION FOR " } else { "" },
                privileges.join(", "),
                grantee(&who)
            ),
            false,
        ));
    }
    for ((who, with_option), privileges) in grant {
        let broad = matches!(who.as_str(), "PUBLIC" | "anon" | "authenticated");
        out.push((
            format!(
                "GRANT {} ON {object} TO {}{};",
                privileges.join(", "),
                grantee(&who),
                if with_option {
                    " WITH GRANT OPTION"
                } else {
                    ""
                }
            ),
            broad,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_catalogs_diff_to_nothing_but_a_comment() {
        let c = Catalog::default();
        let d = diff(&c, &c);
        assert!(d.is_empty());
        assert_eq!(d.to_sql(), "-- plover diff: no differences\n");
    }

    #[test]
    fn words_are_matched_whole() {
        let found: Vec<&str> = words("SETOF public.\"Order\"(x_1 int)").collect();
        assert_eq!(found, ["SETOF", "public", "Order", "x_1", "int"]);
        assert!(mentions("(user_id = auth.uid())", "user_id"));
        assert!(!mentions("(owner_user_id = 1)", "user_id"));
        assert!(!mentions("(user_id2 = 1)", "user_id"));
    }

    #[test]
    fn widening_a_varchar_keeps_the_bytes_and_narrowing_loses_data() {
        assert!(binary_compatible("character varying(10)", "text"));
        assert!(binary_compatible(
            "character varying(10)",
            "character varying(20)"
        ));
        assert!(!binary_compatible("integer", "bigint"));
        assert!(narrows("bigint", "integer"));
        assert!(narrows("text", "character varying(5)"));
        assert!(!narrows("integer", "bigint"));
    }
}
