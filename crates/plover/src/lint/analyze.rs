//! The lint run: load the files, replay them into the schema model statement by
//! statement, check each statement of the change, then the end state of the change;
//! finally apply ignores and the configured levels.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use pg_query::NodeEnum;
use pg_query::protobuf::{
    self, AlterTableType, ConstrType, GrantTargetType, ObjectType, RoleSpecType,
};
use serde_json::Value;

use super::suppress::{self, Ignore};
use super::{
    Baseline, Config, Finding, Input, Level, LiveFinding, ObjectKind, Report, RuleId, Severity,
};
use crate::source::{Migration, Transaction};
use crate::split::{self, line_col};

/// Postgres's identifier limit (NAMEDATALEN - 1).
const MAX_IDENTIFIER: usize = 63;

/// Schemas Supabase owns, where apps must not run DDL.
const MANAGED: &[&str] = &[
    "auth",
    "storage",
    "realtime",
    "vault",
    "supabase_functions",
    "supabase_migrations",
];

/// Functions whose value differs per row: a default calling one rewrites the table.
const VOLATILE: &[&str] = &[
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "gen_random_bytes",
];

/// Column types that imply a `nextval()` default.
const SERIAL: &[&str] = &[
    "serial",
    "bigserial",
    "smallserial",
    "serial2",
    "serial4",
    "serial8",
];

/// `auth.*` functions that read the request: cheap once, costly per row.
const AUTH_FUNCTIONS: &[&str] = &["uid", "jwt", "role", "email"];

/// Roles for which an always-true write policy is fine.
const TRUSTED_ROLES: &[&str] = &["service_role", "postgres", "supabase_admin"];

/// A position: which file, which statement, which byte of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pos {
    file: usize,
    stmt: Option<usize>,
    offset: usize,
}

/// A finding before ignores and levels are applied.
struct Raw {
    rule: RuleId,
    pos: Pos,
    message: String,
}

/// Where a file stands against the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// New or not applied: reported on, its objects are new.
    InChange,
    /// Applied (or on the base): feeds the model only.
    Applied,
}

struct File {
    migration: Migration,
    status: Status,
    /// Start line of each statement, once split.
    stmt_lines: Vec<usize>,
    ignores: Vec<Ignore>,
}

#[derive(Default)]
struct Table {
    new: bool,
    /// `None` when the table was never created in the replay (its state is unknown).
    rls: Option<bool>,
    created: Option<Pos>,
    /// Policy name -> created in the change.
    policies: BTreeMap<String, bool>,
    /// The first policy created in the change.
    first_new_policy: Option<Pos>,
    /// The last DROP POLICY in the change of a policy that existed before it.
    dropped_existing_policy: Option<Pos>,
    touched_in_change: bool,
    /// CHECK (col IS NOT NULL) constraints: name -> column.
    not_null_checks: HashMap<String, String>,
    validated_not_null: HashSet<String>,
    new_columns: HashSet<String>,
}

struct Function {
    created: Pos,
    new: bool,
    security_definer: bool,
    search_path: bool,
}

struct View {
    created: Pos,
    new: bool,
    security_invoker: bool,
}

/// Per statement: where it is and how its file runs.
#[derive(Clone, Copy)]
struct Stmt<'a> {
    file: usize,
    index: usize,
    /// Byte offset of the statement in the file.
    offset: usize,
    sql: &'a str,
    in_change: bool,
    transaction: Transaction,
}

impl Stmt<'_> {
    fn pos(&self, location: i32) -> Pos {
        let rel = usize::try_from(location).unwrap_or(0).min(self.sql.len());
        Pos {
            file: self.file,
            stmt: Some(self.index),
            offset: self.offset + rel,
        }
    }
}

struct Linter<'c> {
    config: &'c Config,
    exposed: HashSet<String>,
    raw: Vec<Raw>,
    tables: HashMap<String, Table>,
    functions: HashMap<String, Function>,
    views: HashMap<String, View>,
    new_schemas: HashSet<String>,
    /// Enum values added earlier in the current transactional file.
    enum_values: Vec<String>,
    /// `DROP POLICY IF EXISTS` seen in the current file: (table, policy).
    dropped_policies: HashSet<(String, String)>,
    statements: usize,
}

pub(super) fn run(input: &Input, config: &Config, live: &[LiveFinding]) -> Report {
    let mut linter = Linter {
        config,
        exposed: input.exposed_schemas.iter().cloned().collect(),
        raw: Vec::new(),
        tables: HashMap::new(),
        functions: HashMap::new(),
        views: HashMap::new(),
        new_schemas: HashSet::new(),
        enum_values: Vec::new(),
        dropped_policies: HashSet::new(),
        statements: 0,
    };
    // Findings that name a file plover could not load: (path, message).
    let mut unloadable: Vec<(RuleId, String, String)> = Vec::new();

    let mut migrations: Vec<Migration> = Vec::new();
    for f in &input.files {
        let base = f.path.rsplit('/').next().unwrap_or(&f.path);
        if base.starts_with('.') || !base.ends_with(".sql") {
            continue;
        }
        match Migration::parse(&f.path, &f.bytes) {
            Ok(m) => migrations.push(m),
            Err(e) => unloadable.push((RuleId::FileInvalid, f.path.clone(), e.to_string())),
        }
    }
    migrations.sort_by(|a, b| (a.version(), a.file()).cmp(&(b.version(), b.file())));
    let mut files: Vec<File> = Vec::new();
    for m in migrations {
        if let Some(prev) = files.last()
            && prev.migration.version() == m.version()
        {
            unloadable.push((
                RuleId::DuplicateVersion,
                m.file().to_owned(),
                format!(
                    "version {} is also used by {}; this file is skipped",
                    m.version(),
                    prev.migration.file()
                ),
            ));
            continue;
        }
        files.push(File {
            migration: m,
            status: Status::InChange,
            stmt_lines: Vec::new(),
            ignores: Vec::new(),
        });
    }

    let total_files = files.len();
    linter.history(&mut files, &input.baseline, &mut unloadable);

    for (index, file) in files.iter_mut().enumerate() {
        linter.replay(index, file);
    }
    linter.end_of_change();
    linter.live(live, &files);
    linter.finish(files, unloadable, total_files)
}

impl Linter<'_> {
    fn report(&mut self, rule: RuleId, pos: Pos, message: String) {
        if self.config.level(rule) != Level::Off {
            self.raw.push(Raw { rule, pos, message });
        }
    }

    fn stmt_report(&mut self, rule: RuleId, s: &Stmt<'_>, location: i32, message: String) {
        if s.in_change {
            self.report(rule, s.pos(location), message);
        }
    }

    /// Marks files as applied or in the change; reports edited, deleted and
    /// out-of-order versions.
    fn history(
        &mut self,
        files: &mut [File],
        baseline: &Baseline,
        unloadable: &mut Vec<(RuleId, String, String)>,
    ) {
        let Baseline::Files(applied) = baseline else {
            return;
        };
        let by_version: BTreeMap<i64, &super::BaselineFile> =
            applied.iter().map(|b| (b.version, b)).collect();
        let newest = by_version.keys().next_back().copied();
        let local: BTreeSet<i64> = files.iter().map(|f| f.migration.version()).collect();
        for (index, file) in files.iter_mut().enumerate() {
            let m = &file.migration;
            let pos = Pos {
                file: index,
                stmt: None,
                offset: 0,
            };
            match by_version.get(&m.version()) {
                Some(b) => {
                    file.status = Status::Applied;
                    let edited = match (&b.sql, b.checksum) {
                        (Some(old), _) => old != m.sql(),
                        (None, Some(sum)) => sum != m.checksum(),
                        (None, None) => false,
                    };
                    if !edited {
                        continue;
                    }
                    let comments_only = b
                        .sql
                        .as_deref()
                        .is_some_and(|old| without_comments(old) == without_comments(m.sql()));
                    if comments_only {
                        self.report(
                            RuleId::HistoryCommentEdited,
                            pos,
                            format!("{} was applied; only its comments changed since", m.name()),
                        );
                    } else {
                        self.report(
                            RuleId::HistoryEdited,
                            pos,
                            format!(
                                "{} was applied (or is on the base branch) and has been changed since",
                                m.name()
                            ),
                        );
                    }
                }
                None => {
                    if let Some(newest) = newest
                        && m.version() < newest
                    {
                        self.report(
                            RuleId::HistoryOutOfOrder,
                            pos,
                            format!(
                                "version {} is older than {newest}, the newest applied (or base) version",
                                m.version()
                            ),
                        );
                    }
                }
            }
        }
        for b in applied {
            if !local.contains(&b.version)
                && self.config.level(RuleId::HistoryDeleted) != Level::Off
            {
                unloadable.push((
                    RuleId::HistoryDeleted,
                    b.name.clone(),
                    format!(
                        "version {} was applied (or is on the base branch) but its file is gone",
                        b.version
                    ),
                ));
            }
        }
    }

    /// Splits, parses and checks one file, updating the model.
    fn replay(&mut self, index: usize, file: &mut File) {
        let in_change = file.status == Status::InChange;
        let sql = file.migration.sql();
        let transaction = file.migration.transaction();
        self.enum_values.clear();
        self.dropped_policies.clear();
        if in_change {
            let (ignores, problems) = suppress::parse(sql);
            file.ignores = ignores;
            for (line, column, message) in problems {
                let offset = offset_of(sql, line, column);
                self.report(
                    RuleId::LintIgnoreInvalid,
                    Pos {
                        file: index,
                        stmt: None,
                        offset,
                    },
                    message,
                );
            }
        }
        let statements = match split::split(sql) {
            Ok(s) => s,
            Err(e) => {
                if in_change {
                    let split::SplitError::Unterminated { line, column, .. } = &e;
                    let offset = offset_of(sql, *line, *column);
                    self.report(
                        RuleId::SyntaxError,
                        Pos {
                            file: index,
                            stmt: None,
                            offset,
                        },
                        e.to_string(),
                    );
                }
                return;
            }
        };
        file.stmt_lines = statements.iter().map(|s| s.line).collect();
        let mut rerunnable = true;
        for (i, st) in statements.iter().enumerate() {
            self.statements += 1;
            let s = Stmt {
                file: index,
                index: i,
                offset: st.offset,
                sql: st.sql,
                in_change,
                transaction,
            };
            if let Some(rel) = meta_command(st.sql) {
                self.stmt_report(
                    RuleId::PsqlMetaCommand,
                    &s,
                    i32::try_from(rel).unwrap_or(0),
                    "psql meta-command: it only works in psql".to_owned(),
                );
                rerunnable = false;
                continue;
            }
            if in_change {
                self.long_identifiers(&s);
            }
            let parsed = match pg_query::parse(st.sql, 0) {
                Ok(p) => p,
                Err(e) => {
                    let message = match &e {
                        pg_query::Error::Parse(m) => m.clone(),
                        other => other.to_string(),
                    };
                    let location = error_location(st.sql, &message);
                    self.stmt_report(RuleId::SyntaxError, &s, location, message);
                    rerunnable = false;
                    continue;
                }
            };
            for raw in &parsed.protobuf.stmts {
                let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
                    continue;
                };
                let mut sub = s;
                let start = usize::try_from(raw.stmt_location).unwrap_or(0);
                if start > 0
                    && let Some(rest) = st.sql.get(start..)
                {
                    sub.offset += start;
                    sub.sql = rest;
                }
                rerunnable &= is_rerunnable(node);
                self.statement(node, &sub);
            }
        }
        if in_change
            && transaction == Transaction::None
            && statements.len() > 1
            && !rerunnable
            && let Some(second) = statements.get(1)
        {
            self.report(
                RuleId::NoTransactionMultipleStatements,
                Pos {
                    file: index,
                    stmt: Some(1),
                    offset: second.offset,
                },
                format!(
                    "{} statements in a no-transaction file, and not all of them can be re-run",
                    statements.len()
                ),
            );
        }
    }

    fn long_identifiers(&mut self, s: &Stmt<'_>) {
        // Fast path: no run of identifier characters longer than the limit.
        let mut run = 0usize;
        let mut long = false;
        for b in s.sql.bytes() {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80 {
                run += 1;
                if run > MAX_IDENTIFIER {
                    long = true;
                    break;
                }
            } else {
                run = 0;
            }
        }
        if !long {
            return;
        }
        let Ok(scan) = pg_query::scan(s.sql) else {
            return;
        };
        for token in scan.tokens {
            if token.token != protobuf::Token::Ident as i32 {
                continue;
            }
            let (Ok(start), Ok(end)) = (usize::try_from(token.start), usize::try_from(token.end))
            else {
                continue;
            };
            let Some(text) = s.sql.get(start..end) else {
                continue;
            };
            let name = text.trim_matches('"');
            if name.len() > MAX_IDENTIFIER {
                self.stmt_report(
                    RuleId::IdentifierTooLong,
                    s,
                    token.start,
                    format!(
                        "identifier of {} bytes is cut to {MAX_IDENTIFIER}: {}",
                        name.len(),
                        name
                    ),
                );
            }
        }
    }

    fn table(&mut self, name: &str) -> &mut Table {
        self.tables.entry(name.to_owned()).or_default()
    }

    fn is_new_table(&self, name: &str) -> bool {
        self.tables.get(name).is_some_and(|t| t.new)
    }

    fn is_exposed(&self, qualified: &str) -> bool {
        let schema = qualified.split('.').next().unwrap_or("public");
        self.exposed.contains(schema)
    }

    /// Checks one statement and applies it to the model.
    fn statement(&mut self, node: &NodeEnum, s: &Stmt<'_>) {
        if !self.enum_values.is_empty() && s.in_change {
            let json = to_json(node);
            let mut hits = Vec::new();
            strings(&json, &mut |v| {
                if self.enum_values.iter().any(|e| e == v) {
                    hits.push(v.to_owned());
                }
            });
            if let Some(value) = hits.first() {
                self.stmt_report(
                    RuleId::EnumValueSameTransaction,
                    s,
                    0,
                    format!("enum value '{value}' is used in the transaction that adds it"),
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
                if plain && !v.is_local {
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
            NodeEnum::AlterEnumStmt(e)
                if !e.new_val.is_empty() && s.transaction == Transaction::Wrapped =>
            {
                self.enum_values.push(e.new_val.clone());
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
                    self.new_schemas.insert(c.schemaname.clone());
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
                let name = c
                    .into
                    .as_ref()
                    .and_then(|i| i.rel.as_ref())
                    .map(qname)
                    .unwrap_or_default();
                if !c.if_not_exists {
                    self.stmt_report(
                        RuleId::CreateWithoutIfNotExists,
                        s,
                        0,
                        format!("CREATE ... AS {name} without IF NOT EXISTS"),
                    );
                }
                self.managed(s, schema_of(&name), "CREATE TABLE AS");
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
                if let Some(func) = self.functions.get_mut(&name) {
                    if let Some(d) = definer {
                        func.security_definer = d;
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
                if table != "auth.users" {
                    self.managed(s, schema_of(&table), "CREATE TRIGGER");
                }
            }
            NodeEnum::GrantStmt(g) => self.grant(g, s),
            NodeEnum::AlterDefaultPrivilegesStmt(a) => {
                if let Some(g) = &a.action {
                    self.grant(g, s);
                }
            }
            NodeEnum::DropStmt(d) => self.drop(d, s),
            NodeEnum::TruncateStmt(t) => {
                for rel in &t.relations {
                    if let Some(NodeEnum::RangeVar(rv)) = rel.node.as_ref() {
                        let name = qname(rv);
                        if !self.is_new_table(&name) {
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

    fn needs_no_transaction(&mut self, s: &Stmt<'_>, what: &str) {
        if s.transaction == Transaction::Wrapped {
            self.stmt_report(
                RuleId::NeedsNoTransaction,
                s,
                0,
                format!("{what} cannot run inside a transaction, and this file runs in one"),
            );
        }
    }

    fn managed(&mut self, s: &Stmt<'_>, schema: &str, what: &str) {
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
        if !self.is_new_table(&name) {
            self.stmt_report(
                RuleId::MutationWithoutWhere,
                s,
                0,
                format!("{what} {name} without WHERE touches every row"),
            );
        }
    }

    fn create_table(&mut self, c: &protobuf::CreateStmt, s: &Stmt<'_>) {
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
        let temporary = rv.relpersistence == "t";
        if temporary {
            return;
        }
        let existed = self.tables.get(&name).is_some_and(|t| t.rls.is_some());
        if existed && c.if_not_exists {
            return;
        }
        let pos = s.pos(0);
        let table = self.table(&name);
        *table = Table {
            new: s.in_change,
            rls: Some(false),
            created: Some(pos),
            touched_in_change: s.in_change,
            ..Table::default()
        };
    }

    fn create_index(&mut self, i: &protobuf::IndexStmt, s: &Stmt<'_>) {
        let table = i.relation.as_ref().map(qname).unwrap_or_default();
        if i.concurrent {
            self.needs_no_transaction(s, "CREATE INDEX CONCURRENTLY");
            if !i.if_not_exists && s.transaction == Transaction::None {
                self.stmt_report(
                    RuleId::ConcurrentlyNotIdempotent,
                    s,
                    0,
                    format!(
                        "CREATE INDEX CONCURRENTLY {} without IF NOT EXISTS",
                        i.idxname
                    ),
                );
            }
        } else if !self.is_new_table(&table) {
            self.stmt_report(
                RuleId::IndexWithoutConcurrently,
                s,
                0,
                format!(
                    "CREATE INDEX {} on the existing table {table} blocks writes while it builds",
                    i.idxname
                ),
            );
        }
        if !i.if_not_exists {
            self.stmt_report(
                RuleId::CreateWithoutIfNotExists,
                s,
                0,
                format!("CREATE INDEX {} without IF NOT EXISTS", i.idxname),
            );
        }
        self.managed(s, schema_of(&table), "CREATE INDEX");
    }

    fn alter_table(&mut self, a: &protobuf::AlterTableStmt, s: &Stmt<'_>) {
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
                    && let Some(view) = self.views.get_mut(&name)
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
        let new = self.is_new_table(&name);
        if s.in_change {
            self.table(&name).touched_in_change = true;
        }
        for cmd in &a.cmds {
            let Some(NodeEnum::AlterTableCmd(c)) = cmd.node.as_ref() else {
                continue;
            };
            let subtype = AlterTableType::try_from(c.subtype).unwrap_or(AlterTableType::Undefined);
            match subtype {
                AlterTableType::AtEnableRowSecurity => {
                    self.table(&name).rls = Some(true);
                }
                AlterTableType::AtDisableRowSecurity => {
                    self.table(&name).rls = Some(false);
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
                        self.add_column(&name, new, col, s);
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
                    let table = self.table(&name);
                    if let Some(col) = table.not_null_checks.get(&c.name).cloned() {
                        table.validated_not_null.insert(col);
                    }
                }
                AlterTableType::AtSetNotNull => {
                    let validated = self.tables.get(&name).is_some_and(|t| {
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
                    if !new
                        && !self
                            .tables
                            .get(&name)
                            .is_some_and(|t| t.new_columns.contains(&c.name)) =>
                {
                    self.stmt_report(
                        RuleId::TableRewrite,
                        s,
                        0,
                        format!("changing the type of {name}.{} rewrites the table", c.name),
                    );
                }
                AlterTableType::AtDropColumn => {
                    let column_new = self
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

    fn add_column(
        &mut self,
        table: &str,
        table_new: bool,
        col: &protobuf::ColumnDef,
        s: &Stmt<'_>,
    ) {
        if s.in_change {
            self.table(table).new_columns.insert(col.colname.clone());
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
            let t = self.table(table);
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

    fn create_policy(&mut self, p: &protobuf::CreatePolicyStmt, s: &Stmt<'_>) {
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
        let t = self.table(&table);
        t.policies.insert(p.policy_name.clone(), in_change);
        if in_change {
            t.touched_in_change = true;
            t.first_new_policy.get_or_insert(pos);
        }
    }

    fn policy_expressions(
        &mut self,
        s: &Stmt<'_>,
        policy: &str,
        command: Option<&str>,
        roles: &[protobuf::Node],
        qual: Option<&protobuf::Node>,
        with_check: Option<&protobuf::Node>,
    ) {
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
            strings(&json, &mut |v| {
                metadata |= v == "user_metadata" || v == "raw_user_meta_data";
            });
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

    fn create_function(&mut self, f: &protobuf::CreateFunctionStmt, s: &Stmt<'_>) {
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
        self.functions.insert(
            name,
            Function {
                created: s.pos(0),
                new: s.in_change,
                security_definer: definer.unwrap_or(false),
                search_path,
            },
        );
    }

    fn create_view(&mut self, v: &protobuf::ViewStmt, s: &Stmt<'_>) {
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
        self.views.insert(
            name,
            View {
                created: s.pos(0),
                new: s.in_change,
                security_invoker: invoker,
            },
        );
    }

    fn grant(&mut self, g: &protobuf::GrantStmt, s: &Stmt<'_>) {
        if !g.is_grant {
            return;
        }
        let objtype = ObjectType::try_from(g.objtype).unwrap_or(ObjectType::Undefined);
        if objtype != ObjectType::ObjectTable {
            return;
        }
        let grantee = g.grantees.iter().find_map(|r| match r.node.as_ref() {
            Some(NodeEnum::RoleSpec(rs)) if rs.roletype == RoleSpecType::RolespecPublic as i32 => {
                Some("PUBLIC".to_owned())
            }
            Some(NodeEnum::RoleSpec(rs)) if rs.rolename == "anon" => Some("anon".to_owned()),
            _ => None,
        });
        let Some(grantee) = grantee else { return };
        let all_in_schema = g.targtype == GrantTargetType::AclTargetAllInSchema as i32;
        let privileges: Vec<String> = g
            .privileges
            .iter()
            .filter_map(|p| match p.node.as_ref() {
                Some(NodeEnum::AccessPriv(a)) => Some(a.priv_name.to_lowercase()),
                _ => None,
            })
            .collect();
        let writes =
            privileges.is_empty() || privileges.iter().any(|p| !matches!(p.as_str(), "select"));
        if writes || all_in_schema {
            let what = if privileges.is_empty() {
                "ALL".to_owned()
            } else {
                privileges.join(", ").to_uppercase()
            };
            let objects: Vec<String> = g
                .objects
                .iter()
                .filter_map(|o| match o.node.as_ref() {
                    Some(NodeEnum::RangeVar(rv)) => Some(qname(rv)),
                    Some(NodeEnum::String(schema)) => Some(schema.sval.clone()),
                    _ => None,
                })
                .collect();
            let on = match (all_in_schema, objects.is_empty()) {
                (_, true) => " on tables created from now on".to_owned(),
                (true, false) => format!(" on every table of {}", objects.join(", ")),
                (false, false) => format!(" on {}", objects.join(", ")),
            };
            self.stmt_report(
                RuleId::BroadGrant,
                s,
                0,
                format!("GRANT {what}{on} to {grantee}"),
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
                    if !self.is_new_table(&name) {
                        self.stmt_report(RuleId::DropTable, s, 0, format!("DROP TABLE {name}"));
                    }
                    self.tables.remove(&name);
                }
                ObjectType::ObjectSchema => {
                    let name = parts.join(".");
                    self.managed(s, &name, "DROP SCHEMA");
                    if !self.new_schemas.contains(&name) {
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
                    let t = self.table(&table);
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
                    self.views.remove(&name);
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
                    self.functions.remove(&name);
                }
            }
        }
    }

    fn rename(&mut self, r: &protobuf::RenameStmt, s: &Stmt<'_>) {
        let kind = ObjectType::try_from(r.rename_type).unwrap_or(ObjectType::Undefined);
        let Some(rv) = &r.relation else { return };
        let name = qname(rv);
        self.managed(s, schema_of(&name), "RENAME");
        match kind {
            ObjectType::ObjectTable | ObjectType::ObjectView | ObjectType::ObjectMatview => {
                let new_name = format!("{}.{}", schema_of(&name), r.newname);
                if let Some(t) = self.tables.remove(&name) {
                    let was_new = t.new;
                    self.tables.insert(new_name, t);
                    if was_new {
                        return;
                    }
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

    /// Rules on the state at the end of the change.
    fn end_of_change(&mut self) {
        let mut found: Vec<(RuleId, Pos, String)> = Vec::new();
        for (name, t) in &self.tables {
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
        for (name, f) in &self.functions {
            if f.new && f.security_definer && !f.search_path {
                found.push((
                    RuleId::SecurityDefinerSearchPath,
                    f.created,
                    format!("SECURITY DEFINER function {name} has no fixed search_path"),
                ));
            }
        }
        for (name, v) in &self.views {
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
        for (rule, pos, message) in found {
            self.report(rule, pos, message);
        }
    }

    /// Places catalog findings at the statement that created their object.
    fn live(&mut self, live: &[LiveFinding], files: &[File]) {
        let fallback = files
            .iter()
            .rposition(|f| f.status == Status::InChange)
            .map(|file| Pos {
                file,
                stmt: None,
                offset: 0,
            });
        for finding in live {
            let created = match finding.kind {
                ObjectKind::Table => self.tables.get(&finding.object).and_then(|t| t.created),
                ObjectKind::Function => self.functions.get(&finding.object).map(|f| f.created),
                ObjectKind::View => self.views.get(&finding.object).map(|v| v.created),
            };
            let (pos, message) = match (created, fallback) {
                (Some(pos), _) => (pos, finding.message.clone()),
                (None, Some(pos)) => (
                    pos,
                    format!(
                        "{} (created by no statement plover can see, e.g. in a DO block)",
                        finding.message
                    ),
                ),
                (None, None) => continue,
            };
            self.report(finding.rule, pos, message);
        }
    }

    /// Applies ignores and levels, reports unused ignores, sorts.
    fn finish(
        self,
        files: Vec<File>,
        unloadable: Vec<(RuleId, String, String)>,
        total_files: usize,
    ) -> Report {
        let config = self.config;
        let mut used: HashSet<(usize, usize)> = HashSet::new();
        let mut findings = Vec::new();
        for raw in self.raw {
            let file = &files[raw.pos.file];
            // Only the change is reported (end-of-change rules may point at an applied
            // file); history findings are about applied files by design.
            if file.status == Status::Applied && raw.rule.rule().group != super::Group::History {
                continue;
            }
            let suppressible = !matches!(
                raw.rule,
                RuleId::LintIgnoreInvalid | RuleId::LintIgnoreUnused
            );
            let stmt_line = raw.pos.stmt.and_then(|i| file.stmt_lines.get(i)).copied();
            let ignored = suppressible
                && file.ignores.iter().enumerate().any(|(i, ig)| {
                    let applies = ig.rules.contains(&raw.rule)
                        && (ig.whole_file
                            || stmt_line.is_some_and(|line| {
                                target_statement(&file.stmt_lines, ig.line) == Some(line)
                            }));
                    if applies {
                        used.insert((raw.pos.file, i));
                    }
                    applies
                });
            if ignored {
                continue;
            }
            let (line, column) = line_col(file.migration.sql(), raw.pos.offset);
            findings.push(finding(
                config,
                raw.rule,
                file.migration.file(),
                line,
                column,
                raw.message,
            ));
        }
        for (index, file) in files.iter().enumerate() {
            for (i, ig) in file.ignores.iter().enumerate() {
                if !used.contains(&(index, i)) {
                    let names: Vec<&str> = ig.rules.iter().map(|r| r.id()).collect();
                    if config.level(RuleId::LintIgnoreUnused) != Level::Off {
                        findings.push(finding(
                            config,
                            RuleId::LintIgnoreUnused,
                            file.migration.file(),
                            ig.line,
                            ig.column,
                            format!("lint-ignore {} suppresses nothing", names.join(", ")),
                        ));
                    }
                }
            }
        }
        for (rule, path, message) in unloadable {
            if config.level(rule) != Level::Off {
                findings.push(finding(config, rule, &path, 1, 1, message));
            }
        }
        findings.sort_by(|a, b| {
            (&a.file, a.line, a.column, a.rule).cmp(&(&b.file, b.line, b.column, b.rule))
        });
        findings.dedup();
        Report {
            findings,
            files_checked: files
                .iter()
                .filter(|f| f.status == Status::InChange)
                .count(),
            files_total: total_files,
            statements: self.statements,
        }
    }
}

fn finding(
    config: &Config,
    rule: RuleId,
    file: &str,
    line: usize,
    column: usize,
    message: String,
) -> Finding {
    let severity = match config.level(rule) {
        Level::Warning => Severity::Warning,
        _ => Severity::Error,
    };
    Finding {
        rule,
        severity,
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

/// The start line of the statement an ignore on `line` covers: the first that starts
/// after it.
fn target_statement(stmt_lines: &[usize], line: usize) -> Option<usize> {
    stmt_lines.iter().copied().find(|&l| l > line)
}

/// The byte offset of a 1-based line and column (characters).
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let col = l
                .char_indices()
                .nth(column.saturating_sub(1))
                .map_or(l.len(), |(b, _)| b);
            return offset + col;
        }
        offset += l.len();
    }
    text.len()
}

/// The byte offset in `sql` of a line that is a psql meta-command (`\...`).
fn meta_command(sql: &str) -> Option<usize> {
    let mut offset = 0;
    for line in sql.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('\\') {
            return Some(offset + line.len() - trimmed.len());
        }
        offset += line.len();
    }
    None
}

/// Where in the statement pg_query's error points: the token after "at or near".
fn error_location(sql: &str, message: &str) -> i32 {
    let position = if let Some(rest) = message.split("at or near \"").nth(1) {
        let token = rest.rsplit_once('"').map_or(rest, |(t, _)| t);
        find_token(sql, token)
    } else if message.contains("at end of input") {
        Some(sql.trim_end().len())
    } else {
        None
    };
    position.and_then(|p| i32::try_from(p).ok()).unwrap_or(0)
}

/// The first occurrence of `token` in `sql` outside comments, as a whole word when it
/// is one.
fn find_token(sql: &str, token: &str) -> Option<usize> {
    if token.is_empty() {
        return None;
    }
    let word = token.chars().all(|c| c.is_alphanumeric() || c == '_');
    let lower = sql.to_lowercase();
    let needle = token.to_lowercase();
    if lower.len() != sql.len() {
        return sql.find(token);
    }
    let mut from = 0;
    while let Some(i) = lower[from..].find(&needle) {
        let start = from + i;
        let end = start + needle.len();
        let before_ok = !word
            || !lower[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let after_ok = !word
            || !lower[end..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if before_ok && after_ok {
            return Some(start);
        }
        from = end;
    }
    None
}

/// The token stream without comments and whitespace: equal for two texts that differ
/// only in comments and layout.
fn without_comments(sql: &str) -> Option<Vec<String>> {
    let scan = pg_query::scan(sql).ok()?;
    Some(
        scan.tokens
            .iter()
            .filter(|t| {
                t.token != protobuf::Token::SqlComment as i32
                    && t.token != protobuf::Token::CComment as i32
            })
            .filter_map(|t| {
                let start = usize::try_from(t.start).ok()?;
                let end = usize::try_from(t.end).ok()?;
                sql.get(start..end).map(str::to_owned)
            })
            .collect(),
    )
}

/// Whether running the statement a second time is harmless.
fn is_rerunnable(node: &NodeEnum) -> bool {
    match node {
        NodeEnum::IndexStmt(i) => i.if_not_exists,
        NodeEnum::DropStmt(d) => d.missing_ok,
        NodeEnum::CreateStmt(c) => c.if_not_exists,
        NodeEnum::CreateSchemaStmt(c) => c.if_not_exists,
        NodeEnum::CreateExtensionStmt(c) => c.if_not_exists,
        NodeEnum::CreateSeqStmt(c) => c.if_not_exists,
        NodeEnum::CreateFunctionStmt(f) => f.replace,
        NodeEnum::ViewStmt(v) => v.replace,
        NodeEnum::CreateTrigStmt(t) => t.replace,
        NodeEnum::ReindexStmt(_)
        | NodeEnum::VacuumStmt(_)
        | NodeEnum::AlterSystemStmt(_)
        | NodeEnum::VariableSetStmt(_)
        | NodeEnum::CommentStmt(_)
        | NodeEnum::GrantStmt(_)
        | NodeEnum::SelectStmt(_) => true,
        NodeEnum::AlterTableStmt(a) => a.cmds.iter().all(|c| match c.node.as_ref() {
            Some(NodeEnum::AlterTableCmd(c)) => {
                c.missing_ok
                    || matches!(
                        AlterTableType::try_from(c.subtype),
                        Ok(AlterTableType::AtEnableRowSecurity
                            | AlterTableType::AtValidateConstraint
                            | AlterTableType::AtSetNotNull
                            | AlterTableType::AtDropNotNull)
                    )
            }
            _ => false,
        }),
        _ => false,
    }
}

fn qname(rv: &protobuf::RangeVar) -> String {
    let schema = if rv.schemaname.is_empty() {
        "public"
    } else {
        &rv.schemaname
    };
    format!("{schema}.{}", rv.relname)
}

/// `schema.name` from name parts (`public` when unqualified).
fn qualified(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [name] => format!("public.{name}"),
        [.., schema, name] => format!("{schema}.{name}"),
    }
}

fn schema_of(qualified: &str) -> &str {
    qualified.split('.').next().unwrap_or("")
}

fn is_storage_table(table: &str) -> bool {
    matches!(table, "storage.objects" | "storage.buckets")
}

fn str_list(nodes: &[protobuf::Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match n.node.as_ref() {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

/// The dotted name of a COMMENT's object, when it is a list of names.
fn object_name(node: &protobuf::Node) -> String {
    match node.node.as_ref() {
        Some(NodeEnum::List(l)) => str_list(&l.items).join("."),
        Some(NodeEnum::ObjectWithArgs(o)) => str_list(&o.objname).join("."),
        _ => String::new(),
    }
}

fn constraint_kind(kind: ConstrType) -> &'static str {
    match kind {
        ConstrType::ConstrForeign => "FOREIGN KEY",
        ConstrType::ConstrCheck => "CHECK",
        ConstrType::ConstrPrimary => "PRIMARY KEY",
        ConstrType::ConstrUnique => "UNIQUE",
        _ => "constraint",
    }
}

/// Whether a VACUUM/REINDEX option list holds `name`.
fn has_option(options: &[protobuf::Node], name: &str) -> bool {
    options.iter().any(|o| {
        matches!(o.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case(name))
    })
}

/// `(SECURITY DEFINER?, SET search_path?)` from function options.
fn function_options(options: &[protobuf::Node]) -> (Option<bool>, bool) {
    let mut definer = None;
    let mut search_path = false;
    for o in options {
        let Some(NodeEnum::DefElem(d)) = o.node.as_ref() else {
            continue;
        };
        let arg = d.arg.as_deref().and_then(|a| a.node.as_ref());
        match (d.defname.as_str(), arg) {
            ("security", Some(NodeEnum::Boolean(b))) => definer = Some(b.boolval),
            ("set", Some(NodeEnum::VariableSetStmt(v))) if v.name == "search_path" => {
                search_path = true;
            }
            _ => {}
        }
    }
    (definer, search_path)
}

/// `security_invoker = …` in a view's options; `None` when it is not this option.
fn security_invoker_option(node: &NodeEnum) -> Option<bool> {
    match node {
        NodeEnum::DefElem(d) if d.defname == "security_invoker" => {
            Some(match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
                None => true,
                Some(arg) => truthy(arg),
            })
        }
        NodeEnum::List(l) => l
            .items
            .iter()
            .filter_map(|i| i.node.as_ref())
            .find_map(security_invoker_option),
        _ => None,
    }
}

fn truthy(node: &NodeEnum) -> bool {
    match node {
        NodeEnum::String(s) => {
            matches!(s.sval.to_lowercase().as_str(), "true" | "on" | "yes" | "1")
        }
        NodeEnum::Integer(i) => i.ival != 0,
        NodeEnum::Boolean(b) => b.boolval,
        NodeEnum::AConst(c) => match &c.val {
            Some(protobuf::a_const::Val::Boolval(b)) => b.boolval,
            Some(protobuf::a_const::Val::Ival(i)) => i.ival != 0,
            Some(protobuf::a_const::Val::Sval(s)) => {
                matches!(s.sval.to_lowercase().as_str(), "true" | "on" | "yes" | "1")
            }
            _ => false,
        },
        _ => false,
    }
}

fn is_true_constant(node: &protobuf::Node) -> bool {
    match node.node.as_ref() {
        Some(NodeEnum::AConst(c)) => {
            matches!(&c.val, Some(protobuf::a_const::Val::Boolval(b)) if b.boolval)
        }
        Some(NodeEnum::TypeCast(t)) => t.arg.as_deref().is_some_and(|a| {
            matches!(a.node.as_ref(), Some(NodeEnum::AConst(c))
                if matches!(&c.val, Some(protobuf::a_const::Val::Sval(s)) if s.sval.eq_ignore_ascii_case("true")))
        }),
        _ => false,
    }
}

/// The column of a `col IS NOT NULL` check.
fn is_not_null_check(node: &protobuf::Node) -> Option<String> {
    let Some(NodeEnum::NullTest(t)) = node.node.as_ref() else {
        return None;
    };
    if t.nulltesttype != protobuf::NullTestType::IsNotNull as i32 {
        return None;
    }
    match t.arg.as_deref().and_then(|a| a.node.as_ref()) {
        Some(NodeEnum::ColumnRef(c)) => str_list(&c.fields).last().cloned(),
        _ => None,
    }
}

/// The first volatile function an expression calls.
fn volatile_call(node: &protobuf::Node) -> Option<String> {
    let json = to_json(node);
    let mut found = None;
    func_calls(&json, &mut |name, _| {
        if found.is_none() && VOLATILE.contains(&name.last().map_or("", String::as_str)) {
            found = name.last().cloned();
        }
    });
    found
}

fn to_json(node: &(impl serde::Serialize + ?Sized)) -> Value {
    serde_json::to_value(node).unwrap_or(Value::Null)
}

/// Every `sval` string (identifiers and string constants) under `v`.
fn strings(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "sval"
                    && let Value::String(s) = child
                {
                    f(s);
                }
                strings(child, f);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| strings(i, f)),
        _ => {}
    }
}

fn json_names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.pointer("/node/String/sval").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Calls `f(name parts, location)` for every function call under `v`.
fn func_calls(v: &Value, f: &mut impl FnMut(&[String], i64)) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "FuncCall" {
                    let names = json_names(&child["funcname"]);
                    f(&names, child["location"].as_i64().unwrap_or(0));
                }
                func_calls(child, f);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| func_calls(i, f)),
        _ => {}
    }
}

/// `auth.uid()` and friends called outside any sub-select.
fn bare_auth_calls(v: &Value, in_subselect: bool, out: &mut Vec<(String, i64)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "FuncCall" && !in_subselect {
                    let names = json_names(&child["funcname"]);
                    if let [schema, name] = names.as_slice()
                        && schema == "auth"
                        && AUTH_FUNCTIONS.contains(&name.as_str())
                    {
                        out.push((name.clone(), child["location"].as_i64().unwrap_or(0)));
                    }
                }
                bare_auth_calls(child, in_subselect || k == "SubLink", out);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|i| bare_auth_calls(i, in_subselect, out)),
        _ => {}
    }
}

fn reads_auth_users(v: &Value) -> bool {
    match v {
        Value::Object(map) => map.iter().any(|(k, child)| {
            (k == "RangeVar"
                && child["schemaname"].as_str() == Some("auth")
                && child["relname"].as_str() == Some("users"))
                || reads_auth_users(child)
        }),
        Value::Array(items) => items.iter().any(reads_auth_users),
        _ => false,
    }
}
