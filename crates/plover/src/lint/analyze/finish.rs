//! The last step of a run: ignores applied (and unused ones reported), levels turned
//! into severities, findings placed at line and column and sorted.

use std::collections::HashSet;

use super::{
    Config, File, Finding, Group, Level, Linter, Report, RuleId, Severity, Status, Unloadable,
};
use crate::split::line_col;

impl Linter<'_> {
    /// Applies ignores and levels, reports unused ignores, sorts.
    pub(super) fn finish(
        self,
        files: Vec<File<'_>>,
        unloadable: Vec<Unloadable>,
        total_files: usize,
    ) -> Report {
        let config = self.config;
        let mut used: HashSet<(usize, usize)> = HashSet::new();
        let mut findings = Vec::new();
        // The start lines of the statements inside bodies, for the files with ignores.
        let inner_lines: Vec<Vec<usize>> = files
            .iter()
            .map(|f| {
                if f.ignores.is_empty() {
                    Vec::new()
                } else {
                    lines_of(f.migration.sql(), &f.inner_starts)
                }
            })
            .collect();
        for raw in self.raw {
            let file = &files[raw.pos.file];
            // Only the change is reported (end-of-change rules may point at an applied
            // file); history findings are about applied files by design.
            if file.status == Status::Applied && raw.rule.rule().group != Group::History {
                continue;
            }
            let suppressible = !matches!(
                raw.rule,
                RuleId::LintIgnoreInvalid | RuleId::LintIgnoreUnused
            );
            let stmt_line = raw.pos.stmt.and_then(|i| file.stmt_lines.get(i)).copied();
            let inner = &inner_lines[raw.pos.file];
            // An ignore before a `DO` block or function covers what is inside it; one
            // inside the body, the statement after it there.
            let inner_line = raw
                .pos
                .inner
                .filter(|_| !file.ignores.is_empty())
                .map(|i| line_col(file.migration.sql(), i.start).0);
            let ignored = suppressible
                && file.ignores.iter().enumerate().any(|(i, ig)| {
                    let target = target_statement(&file.stmt_lines, inner, ig.line);
                    let applies = ig.rules.contains(&raw.rule)
                        && (ig.whole_file
                            || target
                                .is_some_and(|t| stmt_line == Some(t) || inner_line == Some(t)));
                    if applies {
                        used.insert((raw.pos.file, i));
                    }
                    applies
                });
            if ignored {
                continue;
            }
            let (line, column) = line_col(file.migration.sql(), raw.pos.offset);
            let mut found = finding(
                config,
                raw.rule,
                file.migration.file(),
                line,
                column,
                raw.message,
            );
            found.inside = raw
                .pos
                .inner
                .and_then(|i| self.body_labels.get(i.body))
                .cloned();
            findings.push(found);
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
            bodies: self.body_labels.len(),
            body_statements: self.body_statements,
            dynamic_skipped: self.dynamic_skipped,
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
        inside: None,
    }
}

/// The start line of the statement an ignore on `line` covers: the first that starts
/// after it, in the file or inside a body (`inner`).
fn target_statement(stmt_lines: &[usize], inner: &[usize], line: usize) -> Option<usize> {
    let first = |lines: &[usize]| lines.iter().copied().find(|&l| l > line);
    match (first(stmt_lines), first(inner)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The 1-based lines of byte offsets of `text`, in order.
fn lines_of(text: &str, offsets: &[usize]) -> Vec<usize> {
    let mut sorted = offsets.to_vec();
    sorted.sort_unstable();
    let mut lines = Vec::with_capacity(sorted.len());
    let (mut line, mut from) = (1, 0);
    for offset in sorted {
        let offset = offset.min(text.len());
        line += text.as_bytes()[from..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        from = offset;
        lines.push(line);
    }
    lines
}
