//! The statements inside `DO` blocks and function bodies: a PL/pgSQL body is parsed
//! once (`pg_query::parse_plpgsql`), each of its statements with constant SQL (plain
//! SQL, `PERFORM`, `RETURN QUERY`, `FOR ... IN query`, `EXECUTE` of a constant string)
//! is parsed with the Postgres grammar and handed to `Linter::statement` like a
//! statement of the file, at its own place in the file; a SQL function's string body
//! is parsed as SQL. Every branch, loop and exception handler is walked, in the
//! order of the text. A `DO` block runs with the migration; a function body runs
//! when called, so it is judged by the `Scope::Always` rules only and the model is
//! put back after it. Other languages, dynamic SQL and bodies pg_query cannot compile
//! are skipped without a finding (a syntax error is one, when the migration would
//! fail on it).

use std::collections::HashSet;

use pg_query::NodeEnum;
use pg_query::protobuf;
use serde_json::Value;

use super::ast::{qualified, str_list};
use super::model::Model;
use super::replay::error_location;
use super::{Inner, Linter, RuleId, Runs, Stmt};

/// How deeply bodies are followed into bodies (a `DO` block that creates a function).
const MAX_DEPTH: usize = 4;

/// What the walk puts back after a function body: the model as it was.
pub(super) struct Saved {
    model: Model,
    enum_values: Vec<(String, String)>,
    dropped_policies: HashSet<(String, String)>,
}

/// A statement of a PL/pgSQL body's tree.
struct Found<'j> {
    /// 1-based line in the body.
    lineno: usize,
    /// Its SQL, or for `EXECUTE` the expression.
    text: &'j str,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// SQL as written (an `INTO` clause blanked out).
    Sql,
    /// `PERFORM ...`, which PL/pgSQL hands on as `SELECT ...`.
    Perform,
    /// `EXECUTE expr`: SQL only when the expression is a constant string.
    Dynamic,
}

/// A statement to check: its SQL, where it is in the statement that holds the body,
/// and whether that place is its text verbatim.
struct Embedded<'t> {
    sql: std::borrow::Cow<'t, str>,
    rel: usize,
    exact: bool,
}

impl Linter<'_> {
    /// Walks the body of a `DO` block or function (any other statement is left alone;
    /// a `SET check_function_bodies` is noted).
    pub(super) fn bodies(&mut self, node: &NodeEnum, s: &Stmt<'_>) {
        self.bodies_at(node, s, 0);
    }

    fn bodies_at(&mut self, node: &NodeEnum, s: &Stmt<'_>, depth: usize) {
        let (definition, runs) = match node {
            NodeEnum::VariableSetStmt(v)
                if s.runs == Runs::Migration
                    && v.name.eq_ignore_ascii_case("check_function_bodies") =>
            {
                self.check_function_bodies = !is_off(v);
                return;
            }
            NodeEnum::DoStmt(d) => (definition(&d.args, "plpgsql"), s.runs),
            // `BEGIN ATOMIC` bodies hold only queries, which no `Scope::Always` rule judges.
            NodeEnum::CreateFunctionStmt(f) if f.sql_body.is_none() => {
                (definition(&f.options, ""), Runs::Called)
            }
            _ => return,
        };
        let Some((language, body)) = definition else {
            return;
        };
        let plpgsql = language.eq_ignore_ascii_case("plpgsql");
        // A function body outside the change can neither be reported nor change the model.
        if (runs == Runs::Called && !s.in_change)
            || depth >= MAX_DEPTH
            || body.trim().is_empty()
            || !(plpgsql || language.eq_ignore_ascii_case("sql"))
        {
            return;
        }
        // Most function bodies hold queries only, which no rule that judges function
        // bodies looks at: those are not compiled at all.
        if runs == Runs::Called && !may_hold_utility(body) {
            return;
        }
        let label = match node {
            NodeEnum::CreateFunctionStmt(f) => format!(
                "{} {}",
                if f.is_procedure {
                    "procedure"
                } else {
                    "function"
                },
                qualified(&str_list(&f.funcname))
            ),
            _ => "DO block".to_owned(),
        };
        let id = self.body_labels.len();
        self.body_labels.push(label);
        // Where the body is in the statement: it is there verbatim when dollar-quoted.
        let at = if s.exact { s.sql.find(body) } else { None };
        let outermost_call = runs == Runs::Called && s.runs == Runs::Migration;
        // A syntax error fails the migration: always in a `DO` block, in a function
        // only while `check_function_bodies` is on.
        let fails = s.runs == Runs::Migration
            && (matches!(node, NodeEnum::DoStmt(_)) || self.check_function_bodies);
        if plpgsql {
            self.plpgsql(s, body, at, runs, id, fails, depth);
        } else {
            match super::ahead::parse(body) {
                Ok(parsed) => {
                    let (offset, exact) = place(s, at.unwrap_or(0), at.is_some());
                    self.run_parsed(&parsed.stmts, body, offset, exact, s, runs, id, depth);
                }
                Err(e) if fails => self.body_error(s, body, at, id, &e),
                Err(_) => {}
            }
        }
        if outermost_call && let Some(saved) = self.saved.take() {
            // Grants are judged at the end of the change: a function that grants, grants.
            let grants = self.model.grants.split_off(saved.model.grants.len());
            self.model = saved.model;
            self.model.grants.extend(grants);
            self.enum_values = saved.enum_values;
            self.dropped_policies = saved.dropped_policies;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn plpgsql(
        &mut self,
        s: &Stmt<'_>,
        body: &str,
        at: Option<usize>,
        runs: Runs,
        id: usize,
        fails: bool,
        depth: usize,
    ) {
        let json = match pg_query::parse_plpgsql(s.sql) {
            Ok(json) => json,
            Err(e) => {
                if fails {
                    self.body_error(s, body, at, id, &e);
                }
                return;
            }
        };
        let Some(function) = json.get(0) else { return };
        let mut found = Vec::new();
        collect(function, &mut found);
        if found.is_empty() {
            return;
        }
        let line_starts: Vec<usize> = std::iter::once(0)
            .chain(body.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        // No rule that judges function bodies looks at a query or data change: they
        // are not parsed there (most of a function's statements are).
        if runs == Runs::Called {
            found.retain(|f| f.kind == Kind::Dynamic || !is_query(f.text));
        }
        let mut embedded = Vec::with_capacity(found.len());
        for f in found {
            let located = at.and_then(|at| {
                locate(body, &line_starts, &f).map(|(start, exact)| (at + start, exact))
            });
            let (rel, exact) = located.unwrap_or((at.unwrap_or(0), false));
            match f.kind {
                Kind::Sql | Kind::Perform => embedded.push(Embedded {
                    sql: f.text.into(),
                    rel,
                    exact,
                }),
                Kind::Dynamic => match constant(f.text) {
                    Some((sql, Some(content))) if exact => embedded.push(Embedded {
                        sql: sql.into(),
                        rel: rel + content,
                        exact: true,
                    }),
                    Some((sql, _)) => embedded.push(Embedded {
                        sql: sql.into(),
                        rel,
                        exact: false,
                    }),
                    None => self.dynamic_skipped += 1,
                },
            }
        }
        if runs == Runs::Called {
            embedded.retain(|e| !is_query(&e.sql));
        }
        embedded.sort_by_key(|e| e.rel);
        for e in embedded {
            let (offset, exact) = place(s, e.rel, e.exact);
            match super::ahead::parse(&e.sql) {
                Ok(parsed) => {
                    self.run_parsed(&parsed.stmts, &e.sql, offset, exact, s, runs, id, depth);
                }
                // SQL the body compiled with that does not parse: an `EXECUTE` string,
                // which fails when it runs.
                Err(err) if runs == Runs::Migration && s.in_change => {
                    let message = parse_message(&err);
                    let inner = Stmt {
                        offset,
                        sql: &e.sql,
                        exact,
                        inner: Some(Inner {
                            body: id,
                            start: offset,
                        }),
                        ..*s
                    };
                    let location = error_location(&e.sql, &message);
                    self.stmt_report(RuleId::SyntaxError, &inner, location, message);
                }
                Err(_) => {}
            }
        }
    }

    /// Checks the parsed statements of a body, each at its place in the file.
    #[allow(clippy::too_many_arguments)]
    fn run_parsed(
        &mut self,
        stmts: &[protobuf::RawStmt],
        sql: &str,
        offset: usize,
        exact: bool,
        s: &Stmt<'_>,
        runs: Runs,
        id: usize,
        depth: usize,
    ) {
        for raw in stmts {
            let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
                continue;
            };
            let start = usize::try_from(raw.stmt_location).unwrap_or(0);
            let Some(text) = sql.get(start..) else {
                continue;
            };
            let offset = if exact { offset + start } else { offset };
            let inner = Stmt {
                offset,
                sql: text,
                runs,
                exact,
                inner: Some(Inner {
                    body: id,
                    start: offset,
                }),
                ..*s
            };
            self.body_statements += 1;
            if s.in_change {
                self.inner_starts.push(offset);
                self.long_identifiers(&inner);
            }
            if runs == Runs::Called && self.saved.is_none() && !leaves_model(node) {
                self.saved = Some(Saved {
                    model: self.model.clone(),
                    enum_values: self.enum_values.clone(),
                    dropped_policies: self.dropped_policies.clone(),
                });
            }
            self.statement(node, &inner);
            self.bodies_at(node, &inner, depth + 1);
        }
    }

    /// A body that does not compile, as a `syntax-error` at the place it names.
    fn body_error(
        &mut self,
        s: &Stmt<'_>,
        body: &str,
        at: Option<usize>,
        id: usize,
        error: &pg_query::Error,
    ) {
        let message = parse_message(error);
        // Only syntax: pg_query cannot resolve types and names as the server would.
        if !message.starts_with("syntax error") {
            return;
        }
        let (offset, exact) = place(s, at.unwrap_or(0), at.is_some());
        let inner = Stmt {
            offset,
            sql: body,
            exact,
            inner: Some(Inner {
                body: id,
                start: offset,
            }),
            ..*s
        };
        self.stmt_report(
            RuleId::SyntaxError,
            &inner,
            error_location(body, &message),
            message,
        );
    }
}

/// The file offset of a place `rel` bytes into the statement `s`, and whether a
/// location from there is exact.
fn place(s: &Stmt<'_>, rel: usize, exact: bool) -> (usize, bool) {
    if s.exact {
        (s.offset + rel.min(s.sql.len()), exact)
    } else {
        (s.offset, false)
    }
}

fn parse_message(error: &pg_query::Error) -> String {
    match error {
        pg_query::Error::Parse(m) => m.clone(),
        other => other.to_string(),
    }
}

/// The language and the body (`AS '...'`) of a `DO` or `CREATE FUNCTION`'s options;
/// `None` for a body in an object file (C) or none at all.
fn definition<'n>(options: &'n [protobuf::Node], default: &'n str) -> Option<(&'n str, &'n str)> {
    let mut language = default;
    let mut body = None;
    for option in options {
        let Some(NodeEnum::DefElem(d)) = option.node.as_ref() else {
            continue;
        };
        let arg = d.arg.as_deref().and_then(|a| a.node.as_ref());
        match (d.defname.as_str(), arg) {
            ("language", Some(NodeEnum::String(l))) => language = &l.sval,
            ("as", Some(NodeEnum::String(b))) => body = Some(b.sval.as_str()),
            ("as", Some(NodeEnum::List(l))) => {
                if let [item] = l.items.as_slice()
                    && let Some(NodeEnum::String(b)) = item.node.as_ref()
                {
                    body = Some(b.sval.as_str());
                }
            }
            _ => {}
        }
    }
    body.map(|b| (language, b))
}

/// Whether a `SET check_function_bodies` turns it off.
fn is_off(v: &protobuf::VariableSetStmt) -> bool {
    let Some(arg) = v.args.first().and_then(|a| a.node.as_ref()) else {
        return false;
    };
    match arg {
        NodeEnum::AConst(c) => match &c.val {
            Some(protobuf::a_const::Val::Sval(s)) => {
                matches!(
                    s.sval.to_ascii_lowercase().as_str(),
                    "off" | "false" | "no" | "0"
                )
            }
            Some(protobuf::a_const::Val::Boolval(b)) => !b.boolval,
            Some(protobuf::a_const::Val::Ival(i)) => i.ival == 0,
            _ => false,
        },
        _ => false,
    }
}

/// The first words of the SQL statements that are not queries or data changes
/// (`BEGIN`, `END`, `DECLARE`, cursors and transaction control left out: in PL/pgSQL
/// they are its own syntax), and `EXECUTE` (dynamic SQL).
const UTILITY_WORDS: &[&str] = &[
    "alter",
    "analyse",
    "analyze",
    "call",
    "checkpoint",
    "cluster",
    "comment",
    "copy",
    "create",
    "deallocate",
    "discard",
    "do",
    "drop",
    "execute",
    "explain",
    "grant",
    "import",
    "listen",
    "load",
    "lock",
    "notify",
    "prepare",
    "reassign",
    "refresh",
    "reindex",
    "reset",
    "revoke",
    "security",
    "set",
    "show",
    "truncate",
    "unlisten",
    "vacuum",
];

/// Whether a body has a word that can start a statement other than a query: a cheap
/// test before compiling it (a word in a string or comment only costs the compile).
fn may_hold_utility(body: &str) -> bool {
    let bytes = body.as_bytes();
    let word_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    let mut i = 0;
    while i < bytes.len() {
        if !word_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && word_byte(bytes[i]) {
            i += 1;
        }
        let word = &bytes[start..i];
        if (2..=10).contains(&word.len())
            && UTILITY_WORDS
                .iter()
                .any(|w| w.as_bytes().eq_ignore_ascii_case(word))
        {
            return true;
        }
    }
    false
}

/// Whether SQL is a query or data change, from its first word (`PERFORM` comes as
/// `SELECT`).
fn is_query(sql: &str) -> bool {
    let word: String = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .take(8)
        .collect();
    [
        "select", "insert", "update", "delete", "with", "merge", "values", "table",
    ]
    .iter()
    .any(|q| word.eq_ignore_ascii_case(q))
}

/// Whether checking the statement cannot change the model (a query or data change).
fn leaves_model(node: &NodeEnum) -> bool {
    matches!(
        node,
        NodeEnum::SelectStmt(_)
            | NodeEnum::InsertStmt(_)
            | NodeEnum::UpdateStmt(_)
            | NodeEnum::DeleteStmt(_)
            | NodeEnum::MergeStmt(_)
            | NodeEnum::CallStmt(_)
            | NodeEnum::NotifyStmt(_)
            | NodeEnum::VariableSetStmt(_)
            | NodeEnum::TransactionStmt(_)
    )
}

/// The statements of a PL/pgSQL function's tree that hold SQL, in any order.
fn collect<'j>(v: &'j Value, out: &mut Vec<Found<'j>>) {
    match v {
        Value::Object(map) => {
            for (key, child) in map {
                if let Some(kind) = key.strip_prefix("PLpgSQL_stmt_") {
                    let lineno = child
                        .get("lineno")
                        .and_then(Value::as_u64)
                        .and_then(|l| usize::try_from(l).ok())
                        .unwrap_or(0);
                    let expr = |field: &str| {
                        child
                            .get(field)
                            .and_then(|e| e.get("PLpgSQL_expr"))
                            .and_then(|e| e.get("query"))
                            .and_then(Value::as_str)
                    };
                    let statement = match kind {
                        "execsql" => expr("sqlstmt").map(|t| (t, Kind::Sql)),
                        "perform" => expr("expr").map(|t| (t, Kind::Perform)),
                        "return_query" => expr("query")
                            .map(|t| (t, Kind::Sql))
                            .or_else(|| expr("dynquery").map(|t| (t, Kind::Dynamic))),
                        "fors" => expr("query").map(|t| (t, Kind::Sql)),
                        "dynexecute" | "dynfors" => expr("query").map(|t| (t, Kind::Dynamic)),
                        _ => None,
                    };
                    if let Some((text, kind)) = statement {
                        out.push(Found { lineno, text, kind });
                    }
                }
                collect(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        _ => {}
    }
}

/// Where a statement of the tree starts in the body (it starts on its `lineno`), and
/// whether its text is there verbatim (an `INTO` clause is blanked out, so the rest
/// still lines up). Failing that, the start of its line's text.
fn locate(body: &str, line_starts: &[usize], f: &Found<'_>) -> Option<(usize, bool)> {
    let line_start = *line_starts.get(f.lineno.checked_sub(1)?)?;
    let line_end = line_starts.get(f.lineno).copied().unwrap_or(body.len());
    let line = body.get(line_start..line_end)?;
    let rest = body.get(line_start..)?;
    let on_line = |i: usize| line_start + i < line_end;
    match f.kind {
        Kind::Sql | Kind::Dynamic => {
            if let Some(i) = rest.find(f.text).filter(|&i| on_line(i)) {
                return Some((line_start + i, true));
            }
            if let Some(first) = f.text.split_whitespace().next()
                && let Some(i) = rest.find(first).filter(|&i| on_line(i))
            {
                let start = line_start + i;
                let exact = body.get(start..start + f.text.len()).is_some_and(|b| {
                    b.bytes()
                        .zip(f.text.bytes())
                        .all(|(x, y)| x == y || y == b' ')
                });
                return Some((start, exact));
            }
        }
        Kind::Perform => {
            if let Some(i) = line.to_ascii_lowercase().find("perform") {
                return Some((line_start + i, false));
            }
        }
    }
    Some((line_start + line.len() - line.trim_start().len(), false))
}

/// The SQL of a constant string expression: `'...'`, `$tag$...$tag$`, or such strings
/// joined by `||`; with the offset of the SQL in `text` when it is one string written
/// as is (no doubled quotes). `None` for anything else (`format()`, variables, `E''`).
fn constant(text: &str) -> Option<(String, Option<usize>)> {
    let mut sql = String::new();
    let mut pieces = 0;
    let mut verbatim;
    let mut i = 0;
    let bytes = text.as_bytes();
    let skip_space = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    loop {
        i = skip_space(i);
        match bytes.get(i) {
            Some(b'\'') => {
                let start = i + 1;
                let mut j = start;
                let mut doubled = false;
                loop {
                    let k = j + text.get(j..)?.find('\'')?;
                    sql.push_str(text.get(j..k)?);
                    if bytes.get(k + 1) == Some(&b'\'') {
                        sql.push('\'');
                        doubled = true;
                        j = k + 2;
                    } else {
                        i = k + 1;
                        break;
                    }
                }
                verbatim = (!doubled).then_some(start);
            }
            Some(b'$') => {
                let tag_end = i + 1 + text.get(i + 1..)?.find('$')?;
                let tag = text.get(i..=tag_end)?;
                if !tag[1..tag.len() - 1]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return None;
                }
                let start = tag_end + 1;
                let end = start + text.get(start..)?.find(tag)?;
                sql.push_str(text.get(start..end)?);
                verbatim = Some(start);
                i = end + tag.len();
            }
            _ => return None,
        }
        pieces += 1;
        i = skip_space(i);
        if i >= bytes.len() {
            break;
        }
        if text.get(i..)?.starts_with("||") {
            i += 2;
        } else {
            return None;
        }
    }
    Some((sql, if pieces == 1 { verbatim } else { None }))
}

#[cfg(test)]
mod tests {
    use super::{constant, may_hold_utility};

    #[test]
    fn bodies_of_queries_only_are_told_apart() {
        assert!(!may_hold_utility(
            "begin update t set_x = 1; insert into t select * from created; return; end"
        ));
        assert!(may_hold_utility("begin\n  grant select on t to anon;\nend"));
        assert!(may_hold_utility("BEGIN EXECUTE 'x'; END"));
        assert!(may_hold_utility("begin update t set x = 1; end"));
    }

    #[test]
    fn constant_strings_and_their_place() {
        assert_eq!(constant("'select 1'"), Some(("select 1".into(), Some(1))));
        assert_eq!(
            constant(" $q$select 'a'$q$"),
            Some(("select 'a'".into(), Some(4)))
        );
        assert_eq!(
            constant("'select ''a'''"),
            Some(("select 'a'".into(), None))
        );
        assert_eq!(
            constant("'select ' || 'a' || $$b$$"),
            Some(("select ab".into(), None))
        );
        assert_eq!(constant("format('drop table %I', t)"), None);
        assert_eq!(constant("'select ' || t"), None);
        assert_eq!(constant("E'select\\n1'"), None);
        assert_eq!(constant("'unterminated"), None);
    }
}
