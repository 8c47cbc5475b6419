//! The checks of one statement: the dispatch by kind, and the statements that are
//! about no single table or security object (transaction control, `SET`,
//! maintenance, schemas, extensions, sequences, triggers, `DROP`, data changes), each
//! applied to the model as it is checked.

use std::collections::HashMap;

use pg_query::NodeEnum;
use pg_query::protobuf::{self, ObjectType};
use serde_json::Value;

use super::ast::{
    function_options, has_option, is_storage_table, json_names, object_name, object_signature,
    qname, qualified, schema_of, str_list, to_json,
};
use super::model::Persistence;
use super::{Linter, RuleId, Stmt};
use crate::source::Transaction;

/// Schemas Supabase owns, where apps must not run DDL.
const MANAGED: &[&str] = &[
    "auth",
    "storage",
    "realtime",
    "vault",
    "supabase_functions",
    "supabase_migrations",
];

/// Session settings that a plain `SET` may leave behind: pg_dump's header (and that of
/// `db diff`'s output), which only relaxes checks or restates the defaults of a
/// migration connection. `None` for the value: any value.
const HARMLESS_SETS: &[(&str, Option<&[&str]>)] = &[
    ("statement_timeout", Some(&["0"])),
    ("lock_timeout", Some(&["0"])),
    ("idle_in_transaction_session_timeout", Some(&["0"])),
    ("transaction_timeout", Some(&["0"])),
    ("client_encoding", None),
    ("standard_conforming_strings", Some(&["on", "true"])),
    ("check_function_bodies", Some(&["off", "false"])),
    ("xmloption", Some(&["content"])),
    ("client_min_messages", None),
    ("row_security", Some(&["off", "false"])),
    ("default_tablespace", Some(&[""])),
    ("default_table_access_method", Some(&["heap"])),
    ("default_with_oids", Some(&["off", "false"])),
    ("escape_string_warning", Some(&["off", "false"])),
];

/// Whether a plain `SET` is one of [`HARMLESS_SETS`].
fn is_harmless_set(v: &protobuf::VariableSetStmt) -> bool {
    let Some((_, values)) = HARMLESS_SETS
        .iter()
        .find(|(name, _)| v.name.eq_ignore_ascii_case(name))
    else {
        return false;
    };
    let Some(values) = values else { return true };
    let [arg] = v.args.as_slice() else {
        return false;
    };
    let value = match arg.node.as_ref() {
        Some(NodeEnum::AConst(c)) => match &c.val {
            Some(protobuf::a_const::Val::Ival(i)) => i.ival.to_string(),
            Some(protobuf::a_const::Val::Sval(s)) => s.sval.to_lowercase(),
            Some(protobuf::a_const::Val::Boolval(b)) => b.boolval.to_string(),
            _ => return false,
        },
        _ => return false,
    };
    values.contains(&value.as_str())
}

impl Linter<'_> {
    /// Checks one statement and applies it to the model.
    pub(super) fn statement(&mut self, node: &NodeEnum, s: &Stmt<'_>) {
        if !self.enum_values.is_empty() && s.in_change {
            let json = to_json(node);
            // The enum columns of the tables the statement names.
            let mut columns: HashMap<String, String> = HashMap::new();
            relations(&json, &mut |table| {
                if let Some(t) = self.model.tables.get(&table) {
                    columns.extend(t.enum_columns.iter().map(|(c, e)| (c.clone(), e.clone())));
                }
            });
            let mut hits = Vec::new();
            enum_uses(&json, &columns, &mut |enum_type, value| {
                if self
                    .enum_values
                    .iter()
                    .any(|(t, v)| t == enum_type && v == value)
                {
                    hits.push((enum_type.to_owned(), value.to_owned()));
                }
            });
            if let Some((enum_type, value)) = hits.first() {
                self.stmt_report(
                    RuleId::EnumValueSameTransaction,
                    s,
                    0,
                    format!(
                        "enum value '{value}' of {enum_type} is used in the transaction that adds it"
                    ),
                );
            }
        }
        match node {
            NodeEnum::TransactionStmt(t) => {
                self.stmt_report(
                    RuleId::TransactionControl,
                    s,
                    t.location,
                    "transaction control statement in a migration file".to_owned(),
                );
            }
            NodeEnum::VariableSetStmt(v) => {
                let plain = matches!(
                    protobuf::VariableSetKind::try_from(v.kind),
                    Ok(protobuf::VariableSetKind::VarSetValue
                        | protobuf::VariableSetKind::VarSetDefault
                        | protobuf::VariableSetKind::VarSetCurrent)
                );
                if plain && !v.is_local && !is_harmless_set(v) {
                    self.stmt_report(
                        RuleId::SessionSet,
                        s,
                        0,
                        format!("SET {} lasts for the whole session", v.name),
                    );
                }
            }
            NodeEnum::AlterSystemStmt(_) => self.needs_no_transaction(s, "ALTER SYSTEM"),
            NodeEnum::CreatedbStmt(_) => self.needs_no_transaction(s, "CREATE DATABASE"),
            NodeEnum::DropdbStmt(_) => self.needs_no_transaction(s, "DROP DATABASE"),
            NodeEnum::VacuumStmt(v) if v.is_vacuumcmd => {
                self.needs_no_transaction(s, "VACUUM");
                if has_option(&v.options, "full") {
                    self.stmt_report(
                        RuleId::ExclusiveMaintenance,
                        s,
                        0,
                        "VACUUM FULL locks the table for its whole run".to_owned(),
                    );
                }
            }
            NodeEnum::ClusterStmt(c) => {
                let name = c.relation.as_ref().map(qname).unwrap_or_default();
                self.stmt_report(
                    RuleId::ExclusiveMaintenance,
                    s,
                    0,
                    format!("CLUSTER {name} locks the table for its whole run"),
                );
            }
            NodeEnum::ReindexStmt(r) => {
                if has_option(&r.params, "concurrently") {
                    self.needs_no_transaction(s, "REINDEX CONCURRENTLY");
                } else {
                    self.stmt_report(
                        RuleId::ExclusiveMaintenance,
                        s,
                        0,
                        "REINDEX without CONCURRENTLY blocks writes to the table".to_owned(),
                    );
                }
            }
            NodeEnum::CopyStmt(c) if c.is_from && !c.is_program && c.filename.is_empty() => {
                self.stmt_report(
                    RuleId::PsqlMetaCommand,
                    s,
                    0,
                    "COPY FROM STDIN needs psql to send the data".to_owned(),
                );
            }
            NodeEnum::AlterEnumStmt(e) if !e.new_val.is_empty() => {
                let name = qualified(&str_list(&e.type_name));
                self.model.enums.insert(name.clone());
                if s.transaction == Transaction::Wrapped {
                    self.enum_values.push((name, e.new_val.clone()));
                }
            }
            NodeEnum::CreateEnumStmt(e) => {
                self.model.enums.insert(qualified(&str_list(&e.type_name)));
            }
            NodeEnum::CreateSchemaStmt(c) => {
                if !c.if_not_exists {
                    self.stmt_report(
                        RuleId::CreateWithoutIfNotExists,
                        s,
                        0,
                        format!("CREATE SCHEMA {} without IF NOT EXISTS", c.schemaname),
                    );
                }
                if s.in_change {
                    self.model.new_schemas.insert(c.schemaname.clone());
                }
                self.managed(s, &c.schemaname, "CREATE SCHEMA");
            }
            NodeEnum::CreateExtensionStmt(c) if !c.if_not_exists => {
                self.stmt_report(
                    RuleId::CreateWithoutIfNotExists,
                    s,
                    0,
                    format!("CREATE EXTENSION {} without IF NOT EXISTS", c.extname),
                );
            }
            NodeEnum::CreateSeqStmt(c) if !c.if_not_exists && !c.for_identity => {
                let name = c.sequence.as_ref().map(qname).unwrap_or_default();
                self.stmt_report(
                    RuleId::CreateWithoutIfNotExists,
                    s,
                    0,
                    format!("CREATE SEQUENCE {name} without IF NOT EXISTS"),
                );
            }
            NodeEnum::CreateStmt(c) => self.create_table(c, s),
            NodeEnum::CreateTableAsStmt(c) => {
                let rel = c.into.as_ref().and_then(|i| i.rel.as_ref());
                let name = rel.map(qname).unwrap_or_default();
                let persistence = rel.map_or(Persistence::Permanent, Persistence::of);
                if !c.if_not_exists {
                    self.stmt_report(
                        RuleId::CreateWithoutIfNotExists,
                        s,
                        0,
                        format!("CREATE ... AS {name} without IF NOT EXISTS"),
                    );
                }
                self.managed(s, schema_of(&name), "CREATE TABLE AS");
                let known = self.model.tables.contains_key(&name)
                    || self.model.materialized_views.contains_key(&name);
                if !(c.if_not_exists && known) {
                    if ObjectType::try_from(c.objtype) == Ok(ObjectType::ObjectMatview) {
                        self.create_materialized_view(name, s);
                    } else {
                        self.model
                            .create_table(&name, s.pos(0), s.in_change, persistence);
                    }
                }
            }
            NodeEnum::AlterObjectSchemaStmt(a) => {
                let kind = ObjectType::try_from(a.object_type).unwrap_or(ObjectType::Undefined);
                if let Some(rv) = &a.relation
                    && matches!(
                        kind,
                        ObjectType::ObjectTable
                            | ObjectType::ObjectView
                            | ObjectType::ObjectMatview
                    )
                {
                    let name = qname(rv);
                    self.managed(s, schema_of(&name), "ALTER ... SET SCHEMA");
                    self.managed(s, &a.newschema, "ALTER ... SET SCHEMA");
                    self.model
                        .move_relation(&name, &format!("{}.{}", a.newschema, rv.relname));
                }
            }
            NodeEnum::IndexStmt(i) => self.create_index(i, s),
            NodeEnum::AlterTableStmt(a) => self.alter_table(a, s),
            NodeEnum::CreatePolicyStmt(p) => self.create_policy(p, s),
            NodeEnum::AlterPolicyStmt(p) => {
                let table = p.table.as_ref().map(qname).unwrap_or_default();
                self.policy_expressions(
                    s,
                    &p.policy_name,
                    None,
                    &p.roles,
                    p.qual.as_deref(),
                    p.with_check.as_deref(),
                );
                if !is_storage_table(&table) {
                    self.managed(s, schema_of(&table), "ALTER POLICY");
                }
            }
            NodeEnum::CreateFunctionStmt(f) => self.create_function(f, s),
            NodeEnum::AlterFunctionStmt(f) => {
                let name = f
                    .func
                    .as_ref()
                    .map(|o| qualified(&str_list(&o.objname)))
                    .unwrap_or_default();
                let (definer, path) = function_options(&f.actions);
                if let Some(func) = self.model.functions.get_mut(&name) {
                    if let Some(d) = definer {
                        func.security_definer = d;
                        if d && s.in_change {
                            func.opened.get_or_insert(s.pos(0));
                        }
                    }
                    func.search_path |= path;
                }
                self.managed(s, schema_of(&name), "ALTER FUNCTION");
            }
            NodeEnum::ViewStmt(v) => self.create_view(v, s),
            NodeEnum::CreateTrigStmt(t) => {
                let table = t.relation.as_ref().map(qname).unwrap_or_default();
                if !t.replace && !t.isconstraint {
                    self.stmt_report(
                        RuleId::CreateWithoutOrReplace,
                        s,
                        0,
                        format!("CREATE TRIGGER {} without OR REPLACE", t.trigname),
                    );
                }
                // Triggers on new users and on uploads are how Supabase's docs react
                // to sign-ups and to storage; they survive upgrades.
                if table != "auth.users" && !is_storage_table(&table) {
                    self.managed(s, schema_of(&table), "CREATE TRIGGER");
                }
            }
            NodeEnum::GrantStmt(g) => {
                self.grant(g, s);
                self.privileges(g, s);
                self.table_grant(g);
            }
            NodeEnum::AlterDefaultPrivilegesStmt(a) => {
                if let Some(g) = &a.action {
                    self.grant(g, s);
                }
                self.default_privileges(a);
                self.default_table_grants(a);
            }
            NodeEnum::DropStmt(d) => self.drop(d, s),
            NodeEnum::TruncateStmt(t) => {
                for rel in &t.relations {
                    if let Some(NodeEnum::RangeVar(rv)) = rel.node.as_ref() {
                        let name = qname(rv);
                        if !self.model.is_new_table(&name) {
                            self.stmt_report(
                                RuleId::Truncate,
                                s,
                                rv.location,
                                format!("TRUNCATE {name} deletes every row"),
                            );
                        }
                    }
                }
            }
            NodeEnum::UpdateStmt(u) => {
                if u.where_clause.is_none()
                    && let Some(rv) = &u.relation
                {
                    self.mutation(s, rv, "UPDATE");
                }
            }
            NodeEnum::DeleteStmt(d) => {
                if d.where_clause.is_none()
                    && let Some(rv) = &d.relation
                {
                    self.mutation(s, rv, "DELETE");
                }
            }
            NodeEnum::RenameStmt(r) => self.rename(r, s),
            NodeEnum::CommentStmt(c) => {
                if let Some(object) = c.object.as_deref() {
                    let name = object_name(object);
                    if !name.is_empty() && name.contains('.') {
                        self.managed(s, schema_of(&name), "COMMENT");
                    }
                }
            }
            _ => {}
        }
    }

    pub(super) fn needs_no_transaction(&mut self, s: &Stmt<'_>, what: &str) {
        if s.transaction == Transaction::Wrapped {
            self.stmt_report(
                RuleId::NeedsNoTransaction,
                s,
                0,
                format!("{what} cannot run inside a transaction, and this file runs in one"),
            );
        }
    }

    pub(super) fn managed(&mut self, s: &Stmt<'_>, schema: &str, what: &str) {
        if MANAGED.contains(&schema) {
            self.stmt_report(
                RuleId::ManagedSchemaDdl,
                s,
                0,
                format!("{what} in the Supabase-managed schema {schema}"),
            );
        }
    }

    fn mutation(&mut self, s: &Stmt<'_>, rv: &protobuf::RangeVar, what: &str) {
        let name = qname(rv);
        if !self.model.is_new_table(&name) {
            self.stmt_report(
                RuleId::MutationWithoutWhere,
                s,
                0,
                format!("{what} {name} without WHERE touches every row"),
            );
        }
    }

    fn drop(&mut self, d: &protobuf::DropStmt, s: &Stmt<'_>) {
        let kind = ObjectType::try_from(d.remove_type).unwrap_or(ObjectType::Undefined);
        for object in &d.objects {
            let parts = match object.node.as_ref() {
                Some(NodeEnum::List(l)) => str_list(&l.items),
                Some(NodeEnum::String(st)) => vec![st.sval.clone()],
                _ => continue,
            };
            match kind {
                ObjectType::ObjectTable => {
                    let name = qualified(&parts);
                    self.managed(s, schema_of(&name), "DROP TABLE");
                    if !self.model.is_new_table(&name) {
                        self.stmt_report(RuleId::DropTable, s, 0, format!("DROP TABLE {name}"));
                    }
                    self.model.tables.remove(&name);
                }
                ObjectType::ObjectSchema => {
                    let name = parts.join(".");
                    self.managed(s, &name, "DROP SCHEMA");
                    if !self.model.new_schemas.contains(&name) {
                        self.stmt_report(RuleId::DropSchema, s, 0, format!("DROP SCHEMA {name}"));
                    }
                }
                ObjectType::ObjectIndex if d.concurrent => {
                    self.needs_no_transaction(s, "DROP INDEX CONCURRENTLY");
                    if !d.missing_ok && s.transaction == Transaction::None {
                        self.stmt_report(
                            RuleId::ConcurrentlyNotIdempotent,
                            s,
                            0,
                            format!(
                                "DROP INDEX CONCURRENTLY {} without IF EXISTS",
                                parts.join(".")
                            ),
                        );
                    }
                }
                ObjectType::ObjectPolicy => {
                    let Some((policy, table)) = parts.split_last() else {
                        continue;
                    };
                    let table = qualified(table);
                    if !is_storage_table(&table) {
                        self.managed(s, schema_of(&table), "DROP POLICY");
                    }
                    if d.missing_ok {
                        self.dropped_policies
                            .insert((table.clone(), policy.clone()));
                    }
                    let pos = s.pos(0);
                    let in_change = s.in_change;
                    let t = self.model.table(&table);
                    t.touched_in_change |= in_change;
                    if let Some(was_new) = t.policies.remove(policy)
                        && !was_new
                        && in_change
                    {
                        t.dropped_existing_policy = Some(pos);
                    }
                }
                ObjectType::ObjectFunction | ObjectType::ObjectProcedure => {}
                ObjectType::ObjectView => {
                    let name = qualified(&parts);
                    self.model.views.remove(&name);
                }
                ObjectType::ObjectMatview => {
                    let name = qualified(&parts);
                    self.model.materialized_views.remove(&name);
                }
                _ => {}
            }
        }
        // DROP FUNCTION's objects are ObjectWithArgs nodes.
        if matches!(
            kind,
            ObjectType::ObjectFunction | ObjectType::ObjectProcedure
        ) {
            for object in &d.objects {
                if let Some(NodeEnum::ObjectWithArgs(o)) = object.node.as_ref() {
                    let name = qualified(&str_list(&o.objname));
                    self.managed(s, schema_of(&name), "DROP FUNCTION");
                    // Overloads are one entry: dropping another one than the last
                    // created keeps it.
                    let other = object_signature(o).is_some_and(|sig| {
                        self.model
                            .functions
                            .get(&name)
                            .is_some_and(|f| f.signature != sig)
                    });
                    if !other {
                        self.model.functions.remove(&name);
                    }
                }
            }
        }
    }
}

/// Calls `f` with `schema.name` of every table a statement's tree names.
fn relations(v: &Value, f: &mut impl FnMut(String)) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(relname)) = map.get("relname") {
                let schema = match map.get("schemaname").and_then(Value::as_str) {
                    Some("") | None => "public",
                    Some(schema) => schema,
                };
                f(format!("{schema}.{relname}"));
            }
            map.values().for_each(|child| relations(child, f));
        }
        Value::Array(items) => items.iter().for_each(|i| relations(i, f)),
        _ => {}
    }
}

/// The string of a string constant node (`{"node": {"AConst": ...}}` or the bare
/// `AConst` object).
fn string_constant(v: &Value) -> Option<&str> {
    let c = v.pointer("/node/AConst").or_else(|| v.get("AConst"))?;
    c.pointer("/val/Sval/sval").and_then(Value::as_str)
}

/// The last name of a column reference node.
fn column_name(v: &Value) -> Option<&str> {
    v.pointer("/node/ColumnRef/fields")?
        .as_array()?
        .last()?
        .pointer("/node/String/sval")
        .and_then(Value::as_str)
}

/// Calls `f(enum type, value)` for every string constant a statement uses as a value of
/// an enum: cast to it (`'v'::mood`), compared with (`=`, `IN`), assigned to
/// (`SET col =`, `INSERT (col) VALUES`, `DEFAULT`) a column of `columns` (column ->
/// enum type), or the default of a column declared with the enum type. A string that
/// is only equal to a value is no use of it.
fn enum_uses(v: &Value, columns: &HashMap<String, String>, f: &mut impl FnMut(&str, &str)) {
    let of_column = |col: Option<&str>| col.and_then(|c| columns.get(c));
    match v {
        Value::Object(map) => {
            for (key, child) in map {
                match key.as_str() {
                    "TypeCast" => {
                        let names = json_names(&child["type_name"]["names"]);
                        let array = child["type_name"]["array_bounds"]
                            .as_array()
                            .is_some_and(|b| !b.is_empty());
                        if let Some(value) = string_constant(&child["arg"])
                            && !array
                        {
                            f(&qualified(&names), value);
                        }
                    }
                    "AExpr" => {
                        for (col, other) in [("lexpr", "rexpr"), ("rexpr", "lexpr")] {
                            let Some(enum_type) = of_column(column_name(&child[col])) else {
                                continue;
                            };
                            let other = &child[other];
                            let items = other
                                .pointer("/node/List/items")
                                .and_then(Value::as_array)
                                .map_or_else(|| vec![other], |items| items.iter().collect());
                            for item in items {
                                if let Some(value) = string_constant(item) {
                                    f(enum_type, value);
                                }
                            }
                        }
                    }
                    "ResTarget" => {
                        if let Some(enum_type) = of_column(child["name"].as_str())
                            && let Some(value) = string_constant(&child["val"])
                        {
                            f(enum_type, value);
                        }
                    }
                    "InsertStmt" => {
                        let cols: Vec<Option<&str>> = child["cols"]
                            .as_array()
                            .map(|cols| {
                                cols.iter()
                                    .map(|c| c.pointer("/node/ResTarget/name")?.as_str())
                                    .collect()
                            })
                            .unwrap_or_default();
                        let rows = child
                            .pointer("/select_stmt/node/SelectStmt/values_lists")
                            .and_then(Value::as_array);
                        for row in rows.into_iter().flatten() {
                            let items = row.pointer("/node/List/items").and_then(Value::as_array);
                            for (col, item) in cols.iter().zip(items.into_iter().flatten()) {
                                if let Some(enum_type) = of_column(*col)
                                    && let Some(value) = string_constant(item)
                                {
                                    f(enum_type, value);
                                }
                            }
                        }
                    }
                    "ColumnDef" => {
                        let names = json_names(&child["type_name"]["names"]);
                        let defaults = child["constraints"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|c| &c["node"]["Constraint"]["raw_expr"])
                            .chain([&child["raw_default"]]);
                        for default in defaults {
                            if let Some(value) = string_constant(default) {
                                f(&qualified(&names), value);
                            }
                        }
                    }
                    "AlterTableCmd" => {
                        let column_default =
                            child["subtype"] == protobuf::AlterTableType::AtColumnDefault as i32;
                        if column_default
                            && let Some(enum_type) = of_column(child["name"].as_str())
                            && let Some(value) = string_constant(&child["def"])
                        {
                            f(enum_type, value);
                        }
                    }
                    _ => {}
                }
                enum_uses(child, columns, f);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| enum_uses(i, columns, f)),
        _ => {}
    }
}
