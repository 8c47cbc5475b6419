//! What a `Migrator` run shows, for every command that runs one (`push`,
//! `reset-local`, `reset`): a line on stdout per applied migration, a bar at a
//! terminal, a notice on stderr for a file that runs without a transaction because a
//! statement cannot run in one, and the wait for the migration lock. The wait prints a line on stderr
//! naming the holder (pid, application_name, state, statement) when it starts and
//! whenever the holder changes, and at a terminal a spinner with the time waited.
//!
//! It only prints: the engine decides what runs and how long to wait.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use plover::Session;
use plover::{Event, Migrator};

const BAR: &str = "{bar:30} {pos}/{len} {msg} [{elapsed}]";
const SPINNER: &str = "{spinner} {msg}";

/// The progress display of one run: [`Progress::watch`] the migrator, run it, then
/// [`Progress::finish`].
///
/// ```ignore
/// let progress = Progress::new(pending);
/// let report = progress.watch(migrator).run(&mut client).await;
/// progress.finish();
/// ```
pub struct Progress {
    bar: ProgressBar,
}

/// What a lock wait has shown so far: the holder of the last line printed.
#[derive(Default)]
pub struct Shown {
    holder: Option<Option<(i32, String, String)>>,
}

impl Shown {
    /// The line to print for a `LockWait` event: when the wait starts and whenever
    /// its holder changes; `None` while the same holder keeps it.
    pub fn wait_line(&mut self, event: &Event) -> Option<String> {
        let Event::LockWait {
            app, holder, limit, ..
        } = event
        else {
            return None;
        };
        let key = holder
            .as_ref()
            .map(|s| (s.pid, s.state.clone(), s.query.clone()));
        if self.holder.as_ref() == Some(&key) {
            return None;
        }
        let line = wait_line(app, holder.as_ref(), *limit, self.holder.is_some());
        self.holder = Some(key);
        Some(line)
    }

    /// The wait is over (`LockTaken`): the next wait prints its first line again.
    pub fn taken(&mut self) {
        self.holder = None;
    }
}

impl Progress {
    /// A display for a run of about `expected` migrations (the `Planned` event
    /// corrects it); the bar shows only when stderr is a terminal.
    pub fn new(expected: usize) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(expected as u64)
        } else {
            ProgressBar::hidden()
        };
        set_style(&bar, BAR);
        Progress { bar }
    }

    /// `migrator` reporting to this display (it replaces the migrator's `on_event`).
    pub fn watch(&self, migrator: Migrator) -> Migrator {
        let bar = self.bar.clone();
        let shown = Arc::new(Mutex::new(Shown::default()));
        migrator.on_event(move |event| {
            let mut shown = shown.lock().unwrap_or_else(|e| e.into_inner());
            show(&bar, &mut shown, event);
        })
    }

    /// Clears the bar or spinner.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn show(bar: &ProgressBar, shown: &mut Shown, event: &Event) {
    match event {
        Event::Planned { total } => bar.set_length(*total as u64),
        Event::Applying { version, name, .. } => bar.set_message(format!("{version}_{name}")),
        Event::Applied {
            version,
            name,
            duration,
        } => {
            bar.suspend(|| println!("applied {version}  {name}  ({} ms)", duration.as_millis()));
            bar.inc(1);
        }
        Event::Undoing { version, name, .. } => {
            bar.set_message(format!("undoing {version}_{name}"))
        }
        Event::Undone {
            version,
            name,
            duration,
        } => {
            bar.suspend(|| println!("undone {version}  {name}  ({} ms)", duration.as_millis()));
            bar.inc(1);
        }
        Event::LockWait {
            holder,
            waited,
            limit,
            ..
        } => {
            if let Some(line) = shown.wait_line(event) {
                bar.suspend(|| eprintln!("{line}"));
                set_style(bar, SPINNER);
            }
            bar.set_message(format!(
                "waiting for the migration lock: {} of {} s{}",
                seconds(*waited),
                limit.as_secs(),
                holder
                    .as_ref()
                    .map(|s| format!(
                        ", held by pid {} ({}, {})",
                        s.pid, s.application_name, s.state
                    ))
                    .unwrap_or_default()
            ));
            bar.tick();
        }
        Event::OutsideTransaction(outside) => {
            bar.suspend(|| eprintln!("notice: {outside}"));
        }
        Event::OwnTransactions(own) => {
            bar.suspend(|| eprintln!("notice: {own}"));
        }
        Event::LockTaken { waited, .. } => {
            bar.suspend(|| eprintln!("took the migration lock after {} s", seconds(*waited)));
            shown.taken();
            set_style(bar, BAR);
            bar.set_message("");
        }
        _ => {}
    }
}

/// The line printed when a wait starts (or its holder changes).
fn wait_line(app: &str, holder: Option<&Session>, limit: Duration, again: bool) -> String {
    let held = match holder {
        Some(s) => format!("held by {s}"),
        None => "held by a session this role cannot see (look in pg_locks)".to_owned(),
    };
    if again {
        format!("the migration lock of app `{app}` is now {held}; still waiting")
    } else {
        format!(
            "waiting up to {} s for the migration lock of app `{app}`, {held}",
            limit.as_secs()
        )
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64())
}

fn set_style(bar: &ProgressBar, template: &str) {
    // Both templates are constants that parse; a failure would only lose the style.
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
}
