//! Checks on tables: `CREATE TABLE`, `CREATE INDEX`, `ALTER TABLE` (RLS, columns,
//! constraints, `SET NOT NULL`, types) and renames, weighed by whether the table is
//! new in the change (then it takes no lock warnings) or already there.

use pg_query::NodeEnum;
use pg_query::protobuf::{self, AlterTableType, ConstrType, ObjectType};

use super::ast::{
    constraint_kind, is_not_null_check, qname, qualified, schema_of, security_invoker_option,
    str_list, volatile_call,
};
use super::model::Persistence;
use super::{Linter, RuleId, Stmt};
use crate::source::Transaction;

/// Column types that imply a `nextval()` default.
const SERIAL: &[&str] = &[
    "serial",
    "bigserial",
    "smallserial",
    "serial2",
    "serial4",
    "serial8",
];

impl Linter<'_> {
    pub(super) fn create_table(&mut self, c: &protobuf::CreateStmt, s: &Stmt<'_>) {
        let Some(rv) = &c.relation else { return };
        let name = qname(rv);
        if !c.if_not_exists {
            self.stmt_report(
                RuleId::CreateWithoutIfNotExists,
                s,
                rv.location,
                format!("CREATE TABLE {name} without IF NOT EXISTS"),
            );
        }
        self.managed(s, schema_of(&name), "CREATE TABLE");
        let existed = self
            .model
            .tables
            .get(&name)
            .is_some_and(|t| t.rls.is_some());
        if existed && c.if_not_exists {
            return;
        }
        self.model
            .create_table(&name, s.pos(0), s.in_change, Persistence::of(rv));
        for element in &c.table_elts {
            if let Some(NodeEnum::ColumnDef(col)) = element.node.as_ref() {
                self.column_type(&name, &col.colname, col.type_name.as_ref());
            }
        }
    }

    pub(super) fn create_index(&mut self, i: &protobuf::IndexStmt, s: &Stmt<'_>) {
        let table = i.relation.as_ref().map(qname).unwrap_or_default();
        // `CREATE INDEX name` or, for an unnamed index, `CREATE INDEX on table`.
        let index = if i.idxname.is_empty() {
            format!("CREATE INDEX on {table}")
        } else {
            format!("CREATE INDEX {}", i.idxname)
        };
        if i.concurrent {
            self.needs_no_transaction(s, "CREATE INDEX CONCURRENTLY");
            if !i.if_not_exists && s.transaction == Transaction::None {
                let message = if i.idxname.is_empty() {
                    format!(
                        "CREATE INDEX CONCURRENTLY on {table} without a name cannot take IF NOT EXISTS"
                    )
                } else {
                    format!(
                        "CREATE INDEX CONCURRENTLY {} without IF NOT EXISTS",
                        i.idxname
                    )
                };
                self.stmt_report(RuleId::ConcurrentlyNotIdempotent, s, 0, message);
            }
        } else if !self.model.is_new_relation(&table) {
            let on = if i.idxname.is_empty() {
                format!("CREATE INDEX on the existing table {table}")
            } else {
                format!("{index} on the existing table {table}")
            };
            self.stmt_report(
                RuleId::IndexWithoutConcurrently,
                s,
                0,
                format!("{on} blocks writes while it builds"),
            );
        }
        if !i.if_not_exists {
            self.stmt_report(
                RuleId::CreateWithoutIfNotExists,
                s,
                0,
                format!("{index} without IF NOT EXISTS"),
            );
        }
        self.managed(s, schema_of(&table), "CREATE INDEX");
    }

    pub(super) fn alter_table(&mut self, a: &protobuf::AlterTableStmt, s: &Stmt<'_>) {
        let Some(rv) = &a.relation else { return };
        let name = qname(rv);
        let objtype = ObjectType::try_from(a.objtype).unwrap_or(ObjectType::Undefined);
        if objtype == ObjectType::ObjectView {
            for cmd in &a.cmds {
                if let Some(NodeEnum::AlterTableCmd(c)) = cmd.node.as_ref()
                    && let Some(invoker) = c
                        .def
                        .as_deref()
                        .and_then(|d| d.node.as_ref())
                        .and_then(security_invoker_option)
                    && let Some(view) = self.model.views.get_mut(&name)
                {
                    view.security_invoker = invoker;
                }
            }
            self.managed(s, schema_of(&name), "ALTER VIEW");
            return;
        }
        if objtype != ObjectType::ObjectTable {
            return;
        }
        self.managed(s, schema_of(&name), "ALTER TABLE");
        // pg_dump writes `ALTER TABLE ... OWNER TO` for views and materialized views.
        if self.model.views.contains_key(&name) || self.model.materialized_views.contains_key(&name)
        {
            return;
        }
        let new = self.model.is_new_table(&name);
        if s.in_change {
            self.model.table(&name).touched_in_change = true;
        }
        let fk_checked = adds_column_with_default(a);
        for cmd in &a.cmds {
            let Some(NodeEnum::AlterTableCmd(c)) = cmd.node.as_ref() else {
                continue;
            };
            let subtype = AlterTableType::try_from(c.subtype).unwrap_or(AlterTableType::Undefined);
            match subtype {
                AlterTableType::AtEnableRowSecurity => {
                    self.model.table(&name).rls = Some(true);
                }
                AlterTableType::AtDisableRowSecurity => {
                    self.model.table(&name).rls = Some(false);
                    self.stmt_report(
                        RuleId::RlsDisabled,
                        s,
                        0,
                        format!("row level security disabled on {name}"),
                    );
                }
                AlterTableType::AtAddColumn => {
                    if let Some(NodeEnum::ColumnDef(col)) =
                        c.def.as_deref().and_then(|d| d.node.as_ref())
                    {
                        self.add_column(&name, new, col, fk_checked, s);
                    }
                }
                AlterTableType::AtAddConstraint => {
                    if let Some(NodeEnum::Constraint(con)) =
                        c.def.as_deref().and_then(|d| d.node.as_ref())
                    {
                        self.add_constraint(&name, new, con, s);
                    }
                }
                AlterTableType::AtValidateConstraint => {
                    let table = self.model.table(&name);
                    if let Some(col) = table.not_null_checks.get(&c.name).cloned() {
                        table.validated_not_null.insert(col);
                    }
                }
                AlterTableType::AtSetNotNull => {
                    let validated = self.model.tables.get(&name).is_some_and(|t| {
                        t.validated_not_null.contains(&c.name) || t.new_columns.contains(&c.name)
                    });
                    if !new && !validated {
                        self.stmt_report(
                            RuleId::SetNotNull,
                            s,
                            0,
                            format!(
                                "SET NOT NULL on {name}.{} scans the table under an exclusive lock",
                                c.name
                            ),
                        );
                    }
                }
                AlterTableType::AtAlterColumnType
                    if let Some(NodeEnum::ColumnDef(col)) =
                        c.def.as_deref().and_then(|d| d.node.as_ref()) =>
                {
                    self.column_type(&name, &c.name, col.type_name.as_ref());
                    let column_new = self
                        .model
                        .tables
                        .get(&name)
                        .is_some_and(|t| t.new_columns.contains(&c.name));
                    if !new && !column_new {
                        self.stmt_report(
                            RuleId::TableRewrite,
                            s,
                            0,
                            format!("changing the type of {name}.{} rewrites the table", c.name),
                        );
                    }
                }
                AlterTableType::AtDropColumn => {
                    let column_new = self
                        .model
                        .tables
                        .get(&name)
                        .is_some_and(|t| t.new_columns.contains(&c.name));
                    if !new && !column_new {
                        self.stmt_report(
                            RuleId::DropColumn,
                            s,
                            0,
                            format!("DROP COLUMN {name}.{}", c.name),
                        );
                    }
                }
                _ => {}
            }
        }
    }

    /// Records the column's type when it is a known enum (for
    /// `enum-value-same-transaction`).
    pub(super) fn column_type(
        &mut self,
        table: &str,
        column: &str,
        type_name: Option<&protobuf::TypeName>,
    ) {
        let Some(type_name) = type_name else { return };
        let type_name = qualified(&str_list(&type_name.names));
        if self.model.enums.contains(&type_name) {
            self.model
                .table(table)
                .enum_columns
                .insert(column.to_owned(), type_name);
        } else if let Some(t) = self.model.tables.get_mut(table) {
            t.enum_columns.remove(column);
        }
    }

    /// `fk_checked`: whether Postgres validates a `REFERENCES` written on the new
    /// column, which it skips (the column is all NULL) unless a column the statement
    /// adds has a default.
    fn add_column(
        &mut self,
        table: &str,
        table_new: bool,
        col: &protobuf::ColumnDef,
        fk_checked: bool,
        s: &Stmt<'_>,
    ) {
        self.column_type(table, &col.colname, col.type_name.as_ref());
        if s.in_change {
            self.model
                .table(table)
                .new_columns
                .insert(col.colname.clone());
        }
        if table_new {
            return;
        }
        let column = format!("{table}.{}", col.colname);
        let mut not_null = col.is_not_null;
        let mut default = col.raw_default.is_some();
        let mut rewrite: Option<&str> = None;
        if col.type_name.as_ref().is_some_and(|t| {
            str_list(&t.names)
                .last()
                .is_some_and(|n| SERIAL.contains(&n.as_str()))
        }) {
            rewrite = Some("a serial column fills every row from a sequence");
            default = true;
        }
        for con in &col.constraints {
            let Some(NodeEnum::Constraint(con)) = con.node.as_ref() else {
                continue;
            };
            let kind = ConstrType::try_from(con.contype).unwrap_or(ConstrType::Undefined);
            match kind {
                ConstrType::ConstrNotnull => not_null = true,
                ConstrType::ConstrDefault => {
                    default = true;
                    if let Some(expr) = con.raw_expr.as_deref()
                        && let Some(f) = volatile_call(expr)
                    {
                        rewrite = Some(if f == "nextval" {
                            "a nextval() default fills every row"
                        } else {
                            "a volatile default is computed for every row"
                        });
                    }
                }
                ConstrType::ConstrGenerated => {
                    default = true;
                    if con.generated_kind != "v" {
                        rewrite = Some("a STORED generated column is computed for every row");
                    }
                }
                ConstrType::ConstrIdentity => {
                    default = true;
                    rewrite = Some("an identity column fills every row");
                }
                ConstrType::ConstrPrimary | ConstrType::ConstrUnique => {
                    self.stmt_report(
                        RuleId::UniqueWithoutIndex,
                        s,
                        con.location,
                        format!("a UNIQUE/PRIMARY KEY column on {table} builds its index under an exclusive lock"),
                    );
                }
                ConstrType::ConstrForeign if !fk_checked => {}
                ConstrType::ConstrForeign | ConstrType::ConstrCheck if !con.skip_validation => {
                    self.stmt_report(
                        RuleId::ConstraintWithoutNotValid,
                        s,
                        con.location,
                        format!(
                            "a {} on the new column {column} is checked against every row",
                            constraint_kind(kind)
                        ),
                    );
                }
                _ => {}
            }
        }
        if let Some(why) = rewrite {
            self.stmt_report(
                RuleId::TableRewrite,
                s,
                col.location,
                format!("ADD COLUMN {column} rewrites the table: {why}"),
            );
        }
        if not_null && !default {
            self.stmt_report(
                RuleId::AddNotNullColumnWithoutDefault,
                s,
                col.location,
                format!("ADD COLUMN {column} NOT NULL without a default fails if {table} has rows"),
            );
        }
    }

    fn add_constraint(
        &mut self,
        table: &str,
        table_new: bool,
        con: &protobuf::Constraint,
        s: &Stmt<'_>,
    ) {
        let kind = ConstrType::try_from(con.contype).unwrap_or(ConstrType::Undefined);
        if kind == ConstrType::ConstrCheck
            && let Some(col) = con.raw_expr.as_deref().and_then(is_not_null_check)
        {
            let t = self.model.table(table);
            t.not_null_checks.insert(con.conname.clone(), col.clone());
            if !con.skip_validation {
                t.validated_not_null.insert(col);
            }
        }
        if table_new {
            return;
        }
        let name = if con.conname.is_empty() {
            String::new()
        } else {
            format!("{} ", con.conname)
        };
        match kind {
            ConstrType::ConstrForeign | ConstrType::ConstrCheck if !con.skip_validation => {
                self.stmt_report(
                    RuleId::ConstraintWithoutNotValid,
                    s,
                    con.location,
                    format!(
                        "{} {name}on the existing table {table} is validated under a lock that blocks writes",
                        constraint_kind(kind)
                    ),
                );
            }
            ConstrType::ConstrPrimary | ConstrType::ConstrUnique if con.indexname.is_empty() => {
                self.stmt_report(
                    RuleId::UniqueWithoutIndex,
                    s,
                    con.location,
                    format!(
                        "{} {name}on the existing table {table} builds its index under an exclusive lock",
                        constraint_kind(kind)
                    ),
                );
            }
            _ => {}
        }
    }

    pub(super) fn rename(&mut self, r: &protobuf::RenameStmt, s: &Stmt<'_>) {
        let kind = ObjectType::try_from(r.rename_type).unwrap_or(ObjectType::Undefined);
        let Some(rv) = &r.relation else { return };
        let name = qname(rv);
        self.managed(s, schema_of(&name), "RENAME");
        match kind {
            ObjectType::ObjectTable | ObjectType::ObjectView | ObjectType::ObjectMatview => {
                let new_name = format!("{}.{}", schema_of(&name), r.newname);
                if self.model.move_relation(&name, &new_name) {
                    return;
                }
                self.stmt_report(
                    RuleId::Rename,
                    s,
                    0,
                    format!(
                        "renaming {name} to {} breaks code that uses the old name",
                        r.newname
                    ),
                );
            }
            ObjectType::ObjectColumn => {
                let column_new = self
                    .model
                    .tables
                    .get(&name)
                    .is_some_and(|t| t.new || t.new_columns.contains(&r.subname));
                if !column_new {
                    self.stmt_report(
                        RuleId::Rename,
                        s,
                        0,
                        format!(
                            "renaming {name}.{} to {} breaks code that uses the old name",
                            r.subname, r.newname
                        ),
                    );
                }
            }
            _ => {}
        }
    }
}

/// Whether an `ALTER TABLE` adds a column with a default (`DEFAULT`, even `NULL`, a
/// generated or identity column, a serial type): then Postgres validates the
/// `REFERENCES` written on its new columns against every row; otherwise the new columns
/// are all NULL and it marks them valid without a scan.
fn adds_column_with_default(a: &protobuf::AlterTableStmt) -> bool {
    a.cmds.iter().any(|cmd| {
        let Some(NodeEnum::AlterTableCmd(c)) = cmd.node.as_ref() else {
            return false;
        };
        let Some(NodeEnum::ColumnDef(col)) = c.def.as_deref().and_then(|d| d.node.as_ref()) else {
            return false;
        };
        col.raw_default.is_some()
            || col.type_name.as_ref().is_some_and(|t| {
                str_list(&t.names)
                    .last()
                    .is_some_and(|n| SERIAL.contains(&n.as_str()))
            })
            || col.constraints.iter().any(|con| {
                matches!(con.node.as_ref(), Some(NodeEnum::Constraint(k))
                if matches!(
                    ConstrType::try_from(k.contype),
                    Ok(ConstrType::ConstrDefault
                        | ConstrType::ConstrGenerated
                        | ConstrType::ConstrIdentity)
                ))
            })
    })
}
