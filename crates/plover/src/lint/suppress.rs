//! `-- plover:lint-ignore` comments: which rules they silence, where, and why.

use super::RuleId;

const NEXT: &str = "-- plover:lint-ignore";
const FILE: &str = "-- plover:lint-ignore-file";

/// One ignore comment of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Ignore {
    /// 1-based line and column of the comment.
    pub line: usize,
    pub column: usize,
    pub rules: Vec<RuleId>,
    /// `lint-ignore-file`: the whole file; otherwise the next statement.
    pub whole_file: bool,
}

/// A malformed ignore comment: (line, column, message).
pub(super) type Problem = (usize, usize, String);

/// Reads every ignore comment of `sql` (comment lines starting with `-- plover:lint-ignore`).
pub(super) fn parse(sql: &str) -> (Vec<Ignore>, Vec<Problem>) {
    let mut ignores = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in sql.lines().enumerate() {
        let trimmed = line.trim_start();
        let column = line[..line.len() - trimmed.len()].chars().count() + 1;
        let (rest, whole_file) = if let Some(rest) = trimmed.strip_prefix(FILE) {
            (rest, true)
        } else if let Some(rest) = trimmed.strip_prefix(NEXT) {
            (rest, false)
        } else {
            continue;
        };
        // `lint-ignore-files` or `lint-ignorex` are not ours to judge here.
        if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
            continue;
        }
        let (names, reason) = match rest.split_once("--") {
            Some((names, reason)) => (names, reason.trim()),
            None => (rest, ""),
        };
        let mut rules = Vec::new();
        let mut bad = Vec::new();
        for name in names
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|n| !n.is_empty())
        {
            match RuleId::from_id(name) {
                Some(rule) => rules.push(rule),
                None => bad.push(name.to_owned()),
            }
        }
        let line_no = i + 1;
        if !bad.is_empty() {
            problems.push((
                line_no,
                column,
                format!("lint-ignore names unknown rule(s): {}", bad.join(", ")),
            ));
        }
        if rules.is_empty() && bad.is_empty() {
            problems.push((line_no, column, "lint-ignore names no rule".to_owned()));
        }
        if reason.is_empty() {
            problems.push((
                line_no,
                column,
                "lint-ignore without a reason (write `-- plover:lint-ignore RULE -- why`); it is not applied".to_owned(),
            ));
            continue;
        }
        if !rules.is_empty() {
            ignores.push(Ignore {
                line: line_no,
                column,
                rules,
                whole_file,
            });
        }
    }
    (ignores, problems)
}
