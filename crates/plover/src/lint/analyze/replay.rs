//! Replaying one file: split it as psql does, parse each statement with the Postgres
//! grammar, report what fails to parse or only psql understands, and hand each parsed
//! statement to `Linter::statement` (and its `DO` block or function body to
//! `Linter::bodies`); plus where in the text a parse error points.

use pg_query::NodeEnum;
use pg_query::protobuf::{self, AlterTableType};

use super::ahead::FileParse;
use super::{File, Linter, Pos, RuleId, Runs, Status, Stmt};
use crate::lint::suppress;
use crate::source::Transaction;
use crate::split;

/// Postgres's identifier limit (NAMEDATALEN - 1).
const MAX_IDENTIFIER: usize = 63;

impl Linter<'_> {
    /// Splits, parses and checks one file, updating the model.
    pub(super) fn replay(&mut self, index: usize, file: &mut File<'_>, parsed: FileParse<'_>) {
        let in_change = file.status == Status::InChange;
        let sql = file.migration.sql();
        let transaction = file.migration.transaction();
        self.enum_values.clear();
        self.dropped_policies.clear();
        self.check_function_bodies = true;
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
                        inner: None,
                    },
                    message,
                );
            }
        }
        let statements = match parsed {
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
                            inner: None,
                        },
                        e.to_string(),
                    );
                }
                return;
            }
        };
        file.stmt_lines = statements.iter().map(|p| p.statement.line).collect();
        if in_change {
            self.secrets(index, sql, &statements);
        }
        let mut rerunnable = true;
        let count = statements.len();
        let second = statements.get(1).map(|p| p.statement.offset);
        for (i, parsed) in statements.into_iter().enumerate() {
            let st = &parsed.statement;
            self.statements += 1;
            let s = Stmt {
                file: index,
                index: i,
                offset: st.offset,
                sql: st.sql,
                in_change,
                transaction,
                runs: Runs::Migration,
                exact: true,
                inner: None,
            };
            if let Some(rel) = parsed.meta {
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
            let tree = match parsed.tree {
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
            for raw in &tree.stmts {
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
                self.bodies(node, &sub);
            }
        }
        file.inner_starts = std::mem::take(&mut self.inner_starts);
        if in_change
            && transaction == Transaction::None
            && count > 1
            && !rerunnable
            && let Some(second) = second
        {
            self.report(
                RuleId::NoTransactionMultipleStatements,
                Pos {
                    file: index,
                    stmt: Some(1),
                    offset: second,
                    inner: None,
                },
                format!(
                    "{count} statements in a no-transaction file, and not all of them can be re-run"
                ),
            );
        }
    }

    pub(super) fn long_identifiers(&mut self, s: &Stmt<'_>) {
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
pub(super) fn meta_command(sql: &str) -> Option<usize> {
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
pub(super) fn error_location(sql: &str, message: &str) -> i32 {
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
