//! `cargo xtask db lint`: migration safety and Supabase security findings, before merge.
//!
//! Glue only: this file reads the migration files, works out what is already applied
//! (from git with `--base`, from the database with `--env`), and prints what
//! `plover::lint` finds. The rules and the schema model live in the library.

use std::io::IsTerminal;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use plover::lint::{
    Baseline, BaselineFile, Config, Input, InputFile, LiveFinding, ObjectKind, RuleId, Severity,
};
use plover::{Checksum, parse_file_name};

use super::{Ctx, EXIT_ATTENTION, connect};
use crate::flags::{DbLint, LintFormat};

impl DbLint {
    pub async fn run(self, ctx: &Ctx) -> Result<ExitCode> {
        if self.list_rules {
            print!("{}", plover::lint::rules_markdown());
            return Ok(ExitCode::SUCCESS);
        }
        let project = &ctx.project;
        let dir = project.migrations_dir();
        let shown = dir
            .strip_prefix(project.workdir())
            .unwrap_or(&dir)
            .to_path_buf();
        let files = read_files(&dir, &shown)?;

        let baseline = match (&self.base, &ctx.env) {
            (Some(base), _) => git_baseline(&dir, &shown, base)?,
            (None, Some(_)) => env_baseline(ctx, &shown).await?,
            (None, None) => Baseline::None,
        };

        let mut config = Config::default();
        for (rule, level) in &project.plover().lint.rules {
            config
                .set(rule, level)
                .context("reading [lint.rules] of supabase/plover.toml")?;
        }
        let input = Input {
            files,
            baseline,
            exposed_schemas: project.config().api_schemas.clone(),
            granted_schemas: project.plover().grants.keys().cloned().collect(),
        };
        let report = if self.live {
            let live = live_findings(ctx, &input.exposed_schemas).await?;
            plover::lint::lint_live(&input, &config, &live)
        } else {
            plover::lint::lint(&input, &config)
        };

        let format = self.format.unwrap_or_else(|| {
            if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
                LintFormat::Github
            } else {
                LintFormat::Human
            }
        });
        let text = match format {
            LintFormat::Human => {
                let color =
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                plover::lint::render_human(&report, color)
            }
            LintFormat::Json => plover::lint::render_json(&report),
            LintFormat::Github => plover::lint::render_github(&report),
        };
        print!("{text}");

        let failed =
            report.has_errors() || (self.deny_warnings && report.count(Severity::Warning) > 0);
        Ok(if failed {
            ExitCode::from(EXIT_ATTENTION)
        } else {
            ExitCode::SUCCESS
        })
    }
}

/// Every file of the migrations directory (the linter skips what is not `.sql`),
/// named `<shown>/<file>` in findings.
fn read_files(dir: &Path, shown: &Path) -> Result<Vec<InputFile>> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // Symlinks are followed, as `Source::from_dir` and the embed do; a dangling
        // one is an error naming it. Hidden entries (editor lock files) are skipped.
        if name.starts_with('.') {
            continue;
        }
        let meta = std::fs::metadata(&path).with_context(|| {
            format!(
                "{}: a symbolic link that leads nowhere, or unreadable; point it at an existing migration file or remove it",
                path.display()
            )
        })?;
        if !meta.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        files.push(InputFile::new(
            shown.join(&name).display().to_string(),
            bytes,
        ));
    }
    Ok(files)
}

/// The migrations as they are at the merge base of HEAD and `base`.
fn git_baseline(dir: &Path, shown: &Path, base: &str) -> Result<Baseline> {
    let merge_base = git(dir, &["merge-base", "HEAD", base])
        .with_context(|| format!("finding the merge base of HEAD and {base}"))?;
    let merge_base = String::from_utf8_lossy(&merge_base).trim().to_owned();
    let listing = git(dir, &["ls-tree", "--name-only", &merge_base, "--", "."])
        .with_context(|| format!("listing the migrations at {merge_base}"))?;
    let mut files = Vec::new();
    for name in String::from_utf8_lossy(&listing).lines() {
        let Some((version, _)) = parse_file_name(name) else {
            continue;
        };
        let Ok(version) = version.parse::<i64>() else {
            continue;
        };
        let bytes = git(dir, &["show", &format!("{merge_base}:./{name}")])
            .with_context(|| format!("reading {name} at {merge_base}"))?;
        files.push(BaselineFile {
            version,
            name: shown.join(name).display().to_string(),
            checksum: Some(Checksum::of(&bytes)),
            sql: String::from_utf8(bytes).ok(),
        });
    }
    Ok(Baseline::Files(files))
}

/// Runs git in `dir`; its stdout, or an error with its stderr.
fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// The versions applied on `--env`, with their recorded checksums.
async fn env_baseline(ctx: &Ctx, shown: &Path) -> Result<Baseline> {
    let target = ctx.target()?;
    let migrator = ctx.migrator()?;
    let client = connect(&target).await?;
    let plan = migrator
        .plan(&client)
        .await
        .with_context(|| format!("reading the history on {target}"))?;
    let files = plan
        .entries()
        .iter()
        .filter_map(|e| {
            let row = e.applied.as_ref()?;
            let name = match e.migration {
                Some(m) => shown
                    .join(m.file().rsplit('/').next().unwrap_or(m.file()))
                    .display()
                    .to_string(),
                None => shown
                    .join(format!("{}_{}.sql", e.version, row.name))
                    .display()
                    .to_string(),
            };
            Some(BaselineFile {
                version: e.version,
                name,
                checksum: row.checksum,
                sql: None,
            })
        })
        .collect();
    Ok(Baseline::Files(files))
}

/// A catalog check of `--live`: rows of (`schema.name`, message), `$1` the exposed
/// schemas.
struct Check {
    rule: RuleId,
    kind: ObjectKind,
    sql: &'static str,
}

/// Objects an extension owns are not the migrations' doing.
const CHECKS: &[Check] = &[
    Check {
        rule: RuleId::LiveRlsDisabled,
        kind: ObjectKind::Table,
        sql: "SELECT n.nspname || '.' || c.relname,
                     n.nspname || '.' || c.relname || ' has row level security off'
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[])
                AND NOT c.relrowsecurity
                AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')",
    },
    Check {
        rule: RuleId::LivePolicyWithoutRls,
        kind: ObjectKind::Table,
        sql: "SELECT DISTINCT n.nspname || '.' || c.relname,
                     n.nspname || '.' || c.relname || ' has policies but row level security is off'
              FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE NOT c.relrowsecurity AND n.nspname = ANY($1::text[])",
    },
    Check {
        rule: RuleId::LiveFunctionSearchPath,
        kind: ObjectKind::Function,
        sql: "SELECT n.nspname || '.' || p.proname,
                     'function ' || n.nspname || '.' || p.proname || ' has no fixed search_path'
                     || CASE WHEN p.prosecdef THEN ' and is SECURITY DEFINER' ELSE '' END
              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = ANY($1::text[])
                AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) AS c(setting)
                                WHERE c.setting LIKE 'search_path=%')
                AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')",
    },
    Check {
        rule: RuleId::LiveSecurityDefinerView,
        kind: ObjectKind::View,
        sql: "SELECT n.nspname || '.' || c.relname,
                     'the view ' || n.nspname || '.' || c.relname || ' runs with its owner''s rights'
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind = 'v' AND n.nspname = ANY($1::text[])
                AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(c.reloptions, '{}')) AS o(option)
                                WHERE lower(o.option) IN ('security_invoker=true', 'security_invoker=on',
                                                          'security_invoker=1', 'security_invoker=yes'))
                AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')",
    },
    Check {
        rule: RuleId::LiveFkWithoutIndex,
        kind: ObjectKind::Table,
        sql: "SELECT n.nspname || '.' || c.relname,
                     'foreign key ' || con.conname || ' of ' || n.nspname || '.' || c.relname
                     || ' has no index starting with its first column'
              FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE con.contype = 'f' AND n.nspname = ANY($1::text[])
                AND NOT EXISTS (SELECT 1 FROM pg_index i
                                WHERE i.indrelid = con.conrelid
                                  AND (string_to_array(i.indkey::text, ' ')::int2[])[1] = con.conkey[1])",
    },
    Check {
        rule: RuleId::LiveTableWithoutPrimaryKey,
        kind: ObjectKind::Table,
        sql: "SELECT n.nspname || '.' || c.relname,
                     n.nspname || '.' || c.relname || ' has no primary key'
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[])
                AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p')
                AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')",
    },
];

/// `--live`: the migrations applied (through `Migrator`, after the Supabase shim) to a
/// disposable database, then the catalog checks. The database is dropped afterwards.
async fn live_findings(ctx: &Ctx, exposed: &[String]) -> Result<Vec<LiveFinding>> {
    let migrator = ctx.migrator()?;
    let db = plover::testing::TestDatabase::with_supabase_shim()
        .await
        .context("creating a disposable database for --live")?;
    let mut client = db.client().await?;
    migrator
        .run(&mut client)
        .await
        .context("applying the migrations to a disposable database (--live)")?;
    let mut findings = Vec::new();
    for check in CHECKS {
        let rows = client
            .query(check.sql, &[&exposed])
            .await
            .with_context(|| format!("running the {} check", check.rule))?;
        for row in rows {
            findings.push(LiveFinding {
                rule: check.rule,
                kind: check.kind,
                object: row.try_get(0)?,
                message: row.try_get(1)?,
            });
        }
    }
    Ok(findings)
}
