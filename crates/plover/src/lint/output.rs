//! Rendering a [`Report`]: for people, for machines, for GitHub annotations.

use serde_json::json;

use super::{Finding, Report, Severity};

/// `file:line:col: error[rule]: message` then the hint, and a summary line. With
/// `color`, severities and rule ids are coloured with ANSI escapes.
pub fn render_human(report: &Report, color: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    let mut out = String::new();
    for f in &report.findings {
        let severity = match f.severity {
            Severity::Error => paint("1;31", "error"),
            Severity::Warning => paint("1;33", "warning"),
        };
        out.push_str(&format!(
            "{}:{}:{}: {severity}[{}]: {}\n  {} {}\n",
            f.file,
            f.line,
            f.column,
            paint("1", f.rule.id()),
            message(f),
            paint("36", "hint:"),
            f.hint()
        ));
    }
    out.push_str(&summary(report));
    out.push('\n');
    out
}

/// One JSON document: the findings (with `inside` for a finding inside a `DO` block or
/// function body) and the counts.
pub fn render_json(report: &Report) -> String {
    let findings: Vec<_> = report
        .findings
        .iter()
        .map(|f| {
            let mut finding = json!({
                "file": f.file,
                "line": f.line,
                "column": f.column,
                "rule": f.rule.id(),
                "severity": f.severity.as_str(),
                "message": f.message,
                "hint": f.hint(),
            });
            if let Some(inside) = &f.inside {
                finding["inside"] = json!(inside);
            }
            finding
        })
        .collect();
    let doc = json!({
        "findings": findings,
        "errors": report.count(Severity::Error),
        "warnings": report.count(Severity::Warning),
        "files_checked": report.files_checked,
        "files_total": report.files_total,
        "statements": report.statements,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string());
    text.push('\n');
    text
}

/// GitHub Actions workflow commands: one `::error`/`::warning` annotation per finding,
/// then the summary as a plain line.
pub fn render_github(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let command = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        out.push_str(&format!(
            "::{command} file={},line={},col={},title={}::{}\n",
            escape_property(&f.file),
            f.line,
            f.column,
            escape_property(&format!("plover lint: {}", f.rule.id())),
            escape_data(&format!("{}\nhint: {}", message(f), f.hint())),
        ));
    }
    out.push_str(&summary(report));
    out.push('\n');
    out
}

/// The message, with the body it is in for a statement inside one.
fn message(f: &Finding) -> String {
    match &f.inside {
        Some(inside) => format!("{} (inside {inside})", f.message),
        None => f.message.clone(),
    }
}

fn summary(report: &Report) -> String {
    format!(
        "{} error(s), {} warning(s) in {} file(s) checked ({} read, {} statements)",
        report.count(Severity::Error),
        report.count(Severity::Warning),
        report.files_checked,
        report.files_total,
        report.statements
    )
}

/// Escapes a workflow command's message.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}
