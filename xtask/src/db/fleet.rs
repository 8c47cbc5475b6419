//! `cargo xtask db push --fleet FILE`: the project's migrations pushed to many
//! databases (tenants, regions): the canary first and alone, then the rest at most
//! `--concurrency` at a time; the first failure stops new pushes (the running ones
//! finish, each under its own lock and transactions). A state file records each
//! target pushed with this migration set as soon as its push ends, so that a run
//! after a failure or an interruption skips them. A target whose migration lock is
//! held says so, naming the holder, as `db push` does.
//!
//! Must not: start a push after a failure; push anything when the file names a
//! target twice or one that does not resolve (checked before the first push); print a
//! password (a URL that holds one is refused; targets show as `host:port/database`).

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use plover::project::{Protection, Target};
use plover::{Checksum, Migrator, OutOfOrder, Source};
use serde_json::json;

use super::Ctx;
use crate::flags::DbPush;

/// One line of the fleet file.
struct Entry {
    /// As written: an environment name or a URL.
    given: String,
    line: usize,
    target: Target,
}

/// How one target's push ended.
enum Outcome {
    Pushed {
        applied: usize,
        version: Option<i64>,
    },
    UpToDate {
        version: Option<i64>,
    },
    Failed(String),
    /// `--dry-run`: this many would be applied.
    WouldApply(usize),
    /// Recorded as pushed with this migration set by an earlier run.
    DoneBefore,
    /// Not started: an earlier push failed.
    NotStarted,
}

pub async fn push(flags: &DbPush, ctx: &Ctx, file: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the fleet file {}", file.display()))?;
    let entries = parse(ctx, file, &text)?;
    if entries.is_empty() {
        bail!("{} names no target", file.display());
    }
    let migrator = ctx.migrator()?;
    let source = migrator.source().clone();
    let app = migrator.app_name().to_owned();
    let set = set_digest(&source);
    let state_path = flags
        .state
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.state.json", file.display())));
    let state = State::load(&state_path, &set)?;
    println!(
        "fleet: {} target(s) from {}, app {app}, {} migration(s); canary {}, then {} at a time",
        entries.len(),
        file.display(),
        source.migrations().len(),
        flags.canary,
        flags.concurrency
    );
    let done_before = entries
        .iter()
        .filter(|e| state.done.contains_key(&key(&e.target)))
        .count();
    if done_before > 0 {
        println!(
            "{done_before} target(s) pushed with this migration set by an earlier run ({}): skipped",
            state_path.display()
        );
    }
    let protected: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.target.protection() == Protection::Protected)
        .collect();
    if !flags.dry_run && !protected.is_empty() {
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        confirm_fleet(&name, protected.len(), flags.confirm.as_deref())?;
    }
    if !flags.dry_run {
        // Written now, so that a state file that cannot be written stops the run
        // before the first push, not after it.
        state
            .save(&state_path)
            .with_context(|| format!("writing the fleet state {}", state_path.display()))?;
    }

    let stop = AtomicBool::new(false);
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(entries.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let run = Run {
        flags,
        project: &ctx.project,
        source: &source,
        app: &app,
        stop: &stop,
        bar: &bar,
        state: Mutex::new(state),
        state_path: &state_path,
        state_error: Mutex::new(None),
    };

    let canary = flags.canary.min(entries.len());
    let mut results: Vec<(Outcome, Duration)> = Vec::with_capacity(entries.len());
    for entry in &entries[..canary] {
        results.push(run.one(entry).await);
    }
    let rest: Vec<(Outcome, Duration)> = futures_util::stream::iter(&entries[canary..])
        .map(|e| run.one(e))
        .buffered(flags.concurrency.max(1))
        .collect()
        .await;
    results.extend(rest);
    bar.finish_and_clear();

    summary(&entries, &results);
    let done = run
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .done
        .len();
    if let Some(e) = run
        .state_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        println!(
            "stopped: the fleet state {} could not be written ({e}); the pushes above are done, a run after this one pushes again to those missing from it (already applied migrations are skipped)",
            state_path.display()
        );
        return Ok(ExitCode::from(super::EXIT_FAILED));
    }
    let failed = results
        .iter()
        .filter(|(o, _)| matches!(o, Outcome::Failed(_)))
        .count();
    if failed > 0 {
        println!(
            "stopped after a failure; fix it, then run the same command again: the {done} target(s) done are skipped ({})",
            state_path.display()
        );
        return Ok(ExitCode::from(super::EXIT_FAILED));
    }
    if flags.dry_run {
        println!("dry run: nothing was applied");
    }
    Ok(ExitCode::SUCCESS)
}

/// What every target's push shares.
struct Run<'a> {
    flags: &'a DbPush,
    project: &'a plover::project::Project,
    source: &'a Source,
    app: &'a str,
    /// Set by the first failure: no push starts after it.
    stop: &'a AtomicBool,
    bar: &'a indicatif::ProgressBar,
    /// The targets done: read before each push, written to `state_path` after each
    /// push that ends well (not in a dry run).
    state: Mutex<State>,
    state_path: &'a Path,
    /// The first failure to write the state file (it stops new pushes too).
    state_error: Mutex<Option<String>>,
}

impl Run<'_> {
    /// Pushes to one target, unless the state file has it or a push failed before.
    async fn one(&self, entry: &Entry) -> (Outcome, Duration) {
        let t0 = Instant::now();
        let done_before = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .done
            .contains_key(&key(&entry.target));
        let outcome = if done_before {
            Outcome::DoneBefore
        } else if self.stop.load(Ordering::SeqCst) {
            Outcome::NotStarted
        } else {
            let out_of_order = if self.flags.include_all {
                OutOfOrder::Allow
            } else {
                OutOfOrder::Refuse
            };
            let migrator = Migrator::new(self.source.clone())
                .app(self.app)
                .out_of_order(out_of_order)
                .lock_wait(Duration::from_secs(self.flags.lock_wait))
                .on_event(self.lock_waits(&entry.target));
            let outcome = push_to(&migrator, self.project, &entry.target, self.flags.dry_run).await;
            match &outcome {
                Outcome::Failed(_) => self.stop.store(true, Ordering::SeqCst),
                Outcome::Pushed { version, .. } | Outcome::UpToDate { version }
                    if !self.flags.dry_run =>
                {
                    self.record(&entry.target, *version)
                }
                _ => {}
            }
            outcome
        };
        self.bar.inc(1);
        let line = describe(&outcome);
        self.bar
            .suspend(|| println!("{}: {line}", shown(&entry.target)));
        (outcome, t0.elapsed())
    }

    /// Records `target` as pushed in the state file, at once.
    fn record(&self, target: &Target, version: Option<i64>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.done.insert(key(target), version);
        if let Err(e) = state.save(self.state_path) {
            self.stop.store(true, Ordering::SeqCst);
            let mut first = self.state_error.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert_with(|| format!("{e:#}"));
        }
    }

    /// A migrator's `on_event` for one target: a line naming the target and the
    /// lock's holder when a wait for its migration lock starts or changes holder.
    fn lock_waits(&self, target: &Target) -> impl Fn(&plover::Event) + Send + Sync + 'static {
        let bar = self.bar.clone();
        let label = shown(target);
        let seen = Mutex::new(super::progress::Shown::default());
        move |event| {
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            if let plover::Event::LockTaken { waited, .. } = event {
                seen.taken();
                bar.suspend(|| {
                    println!(
                        "{label}: took the migration lock after {:.1} s",
                        waited.as_secs_f64()
                    )
                });
            } else if let Some(line) = seen.wait_line(event) {
                bar.suspend(|| println!("{label}: {line}"));
            }
        }
    }
}

/// The fleet file: one environment name or URL (without a password) per line; blank
/// lines and `#` comments skipped. Every target resolves, and none twice, or nothing runs.
fn parse(ctx: &Ctx, file: &Path, text: &str) -> Result<Vec<Entry>> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let given = raw.split('#').next().unwrap_or_default().trim();
        if given.is_empty() {
            continue;
        }
        let target = ctx
            .target_of(given)
            .with_context(|| format!("{}:{line}: {given}", file.display()))?;
        if let Some(first) = entries.iter().find(|e| key(&e.target) == key(&target)) {
            bail!(
                "{}:{line}: {} is the target of line {} already; nothing was pushed",
                file.display(),
                shown(&target),
                first.line
            );
        }
        entries.push(Entry {
            given: given.to_owned(),
            line,
            target,
        });
    }
    Ok(entries)
}

/// One target's push: the plan's refusals as a failure, else `Migrator::run`, then
/// `[grants]` when it applied something.
async fn push_to(
    migrator: &Migrator,
    project: &plover::project::Project,
    target: &Target,
    dry_run: bool,
) -> Outcome {
    let result = async {
        let mut client = super::connect(target).await?;
        if dry_run {
            let plan = migrator.plan(&client).await?;
            let problems = plan.problems(OutOfOrder::Refuse, plover::Missing::Refuse);
            if let Some(p) = problems.first() {
                bail!("{p}");
            }
            let pending = plan.pending().count();
            return Ok(if pending == 0 {
                Outcome::UpToDate {
                    version: plan
                        .entries()
                        .iter()
                        .filter(|e| e.applied.is_some())
                        .map(|e| e.version)
                        .max(),
                }
            } else {
                Outcome::WouldApply(pending)
            });
        }
        let report = migrator.run(&mut client).await?;
        if !report.applied.is_empty() {
            super::grants::apply(project, &mut client).await?;
        }
        Ok(if report.applied.is_empty() && report.adopted.is_empty() {
            Outcome::UpToDate {
                version: report.version,
            }
        } else {
            Outcome::Pushed {
                applied: report.applied.len(),
                version: report.version,
            }
        })
    }
    .await;
    result.unwrap_or_else(|e: anyhow::Error| Outcome::Failed(format!("{e:#}").replace('\n', " ")))
}

fn describe(outcome: &Outcome) -> String {
    let version = |v: &Option<i64>| v.map_or_else(|| "none".to_owned(), |v| v.to_string());
    match outcome {
        Outcome::Pushed {
            applied,
            version: v,
        } => {
            format!("applied {applied}, version now {}", version(v))
        }
        Outcome::UpToDate { version: v } => format!("up to date (version {})", version(v)),
        Outcome::Failed(why) => format!("FAILED: {why}"),
        Outcome::WouldApply(n) => format!("would apply {n} (dry run)"),
        Outcome::DoneBefore => "done by an earlier run (state file)".to_owned(),
        Outcome::NotStarted => "not started (an earlier push failed)".to_owned(),
    }
}

fn summary(entries: &[Entry], results: &[(Outcome, Duration)]) {
    let width = entries
        .iter()
        .map(|e| e.given.len())
        .chain([6])
        .max()
        .unwrap_or(6)
        .min(60);
    println!("{:<width$}  {:>9}  result", "target", "time");
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (e, (outcome, took)) in entries.iter().zip(results) {
        let label = match outcome {
            Outcome::Pushed { .. } => "pushed",
            Outcome::UpToDate { .. } => "up to date",
            Outcome::Failed(_) => "failed",
            Outcome::WouldApply(_) => "to push",
            Outcome::DoneBefore => "done before",
            Outcome::NotStarted => "not started",
        };
        *counts.entry(label).or_default() += 1;
        let time = match outcome {
            Outcome::DoneBefore | Outcome::NotStarted => String::new(),
            _ => format!("{} ms", took.as_millis()),
        };
        println!("{:<width$}  {time:>9}  {}", e.given, describe(outcome));
    }
    let list: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!("{} target(s): {}", entries.len(), list.join(", "));
}

/// A target as the state file and the duplicate check know it: its server
/// (`host:port/database`) and user.
fn key(target: &Target) -> String {
    format!(
        "{}@{}",
        target.conninfo().config().get_user().unwrap_or_default(),
        target.server()
    )
}

fn shown(target: &Target) -> String {
    match target.env() {
        "given" => target.server(),
        env => format!("{env} ({})", target.server()),
    }
}

/// The migration set's identity: SHA-256 over each migration's version and checksum.
fn set_digest(source: &Source) -> String {
    let lines: String = source
        .migrations()
        .iter()
        .map(|m| format!("{} {}\n", m.version(), m.checksum().to_hex()))
        .collect();
    Checksum::of(lines.as_bytes()).to_hex()
}

/// The targets pushed with one migration set.
struct State {
    set: String,
    done: BTreeMap<String, Option<i64>>,
}

impl State {
    /// The state at `path` when it is of migration set `set`; else a new one (a
    /// state of another set is replaced: its targets need this set pushed).
    fn load(path: &Path, set: &str) -> Result<State> {
        let mut state = State {
            set: set.to_owned(),
            done: BTreeMap::new(),
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            return Ok(state);
        };
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("reading the fleet state {}", path.display()))?;
        if value["set"].as_str() != Some(set) {
            println!(
                "{} is the state of another migration set: every target is pushed",
                path.display()
            );
            return Ok(state);
        }
        if let Some(done) = value["done"].as_object() {
            for (k, v) in done {
                state.done.insert(k.clone(), v["version"].as_i64());
            }
        }
        Ok(state)
    }

    fn save(&self, path: &Path) -> Result<()> {
        let done: serde_json::Map<String, serde_json::Value> = self
            .done
            .iter()
            .map(|(k, v)| (k.clone(), json!({ "version": v })))
            .collect();
        let text = serde_json::to_string_pretty(&json!({ "set": self.set, "done": done }))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

/// A fleet with protected targets asks once: the fleet file's name typed back, or
/// `--confirm NAME`.
fn confirm_fleet(name: &str, protected: usize, given: Option<&str>) -> Result<()> {
    if let Some(given) = given {
        if given == name {
            return Ok(());
        }
        bail!("--confirm {given} does not match the fleet {name}; nothing was pushed");
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || !std::io::stderr().is_terminal() {
        bail!(
            "the fleet names {protected} protected target(s) and there is no terminal to confirm at; nothing was pushed (pass --confirm {name})"
        );
    }
    eprint!(
        "the fleet names {protected} protected target(s); type the fleet's name ({name}) to push: "
    );
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the confirmation")?;
    if line.trim() != name {
        bail!("the confirmation did not match {name}; nothing was pushed");
    }
    Ok(())
}
