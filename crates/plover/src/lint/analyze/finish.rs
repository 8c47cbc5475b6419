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
