//! Splitting and parsing run ahead of the replay, on every core: they depend on a
//! file's text alone, while the replay (the model, the rules) must see the files in
//! order. Worker threads take the next file to parse; the replaying thread takes each
//! file's result in order and, while the one it needs is not ready, parses the next
//! unclaimed file itself, so it never waits while work is left. Workers stay at most
//! [`WINDOW`] files ahead of the replay, which bounds the parse trees held at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use pg_query::protobuf;

use crate::split;

/// How many files the parse may run ahead of the replay.
const WINDOW: usize = 64;

/// One statement of a file as the splitter found it, parsed unless it holds a psql
/// meta-command (`meta` is then where the command starts in it).
pub(super) struct Parsed<'s> {
    pub(super) statement: split::Statement<'s>,
    pub(super) meta: Option<usize>,
    pub(super) tree: Result<protobuf::ParseResult, pg_query::Error>,
}

/// A file split and parsed, or the splitter's error.
pub(super) type FileParse<'s> = Result<Vec<Parsed<'s>>, split::SplitError>;

/// Splits and parses one file.
pub(super) fn file(sql: &str) -> FileParse<'_> {
    let statements = split::split(sql)?;
    Ok(statements
        .into_iter()
        .map(|statement| {
            let meta = super::replay::meta_command(statement.sql);
            let tree = match meta {
                Some(_) => Ok(protobuf::ParseResult::default()),
                None => parse(statement.sql),
            };
            Parsed {
                statement,
                meta,
                tree,
            }
        })
        .collect())
}

/// Parses SQL with the Postgres grammar into its tree.
pub(super) fn parse(sql: &str) -> Result<protobuf::ParseResult, pg_query::Error> {
    pg_query::parse(sql, 0).map(|p| p.protobuf)
}

enum Slot<'s> {
    Waiting,
    Done(FileParse<'s>),
    /// The worker panicked: the replay parses the file itself (and panics there).
    Lost,
}

struct State<'s> {
    done: Vec<Slot<'s>>,
    /// Files handed to the replay so far.
    taken: usize,
}

struct Shared<'a, 's> {
    sqls: &'a [&'s str],
    /// The next file nobody has claimed.
    next: AtomicUsize,
    state: Mutex<State<'s>>,
    changed: Condvar,
}

impl<'s> Shared<'_, 's> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<'s>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn put(&self, index: usize, parsed: Slot<'s>) {
        self.lock().done[index] = parsed;
        self.changed.notify_all();
    }

    /// A worker: parse the next unclaimed file, staying within the window.
    fn work(&self) {
        loop {
            {
                let mut state = self.lock();
                while self.next.load(Ordering::Acquire) >= state.taken + WINDOW
                    && state.taken < self.sqls.len()
                {
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
            let index = self.next.fetch_add(1, Ordering::AcqRel);
            let Some(sql) = self.sqls.get(index) else {
                return;
            };
            let parsed = std::panic::catch_unwind(|| file(sql));
            self.put(index, parsed.map_or(Slot::Lost, Slot::Done));
        }
    }

    /// The replay: file `index`'s result, parsing others meanwhile.
    fn take(&self, index: usize) -> FileParse<'s> {
        loop {
            {
                let mut state = self.lock();
                match std::mem::replace(&mut state.done[index], Slot::Waiting) {
                    Slot::Waiting => {}
                    done => {
                        state.taken = index + 1;
                        drop(state);
                        self.changed.notify_all();
                        return match done {
                            Slot::Done(parsed) => parsed,
                            _ => file(self.sqls[index]),
                        };
                    }
                }
            }
            let claimed = self.next.fetch_add(1, Ordering::AcqRel);
            if claimed == index {
                let mut state = self.lock();
                state.taken = index + 1;
                drop(state);
                self.changed.notify_all();
                return file(self.sqls[index]);
            }
            if let Some(sql) = self.sqls.get(claimed) {
                self.put(claimed, Slot::Done(file(sql)));
                continue;
            }
            // Every file is claimed: wait for the one we need.
            let mut state = self.lock();
            while matches!(state.done[index], Slot::Waiting) {
                state = self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}

/// Runs `replay` with a function giving each file's split and parse, in order (each
/// index once, ascending), parsed ahead on the other cores.
pub(super) fn run<'s, R>(
    sqls: &[&'s str],
    replay: impl FnOnce(&mut dyn FnMut(usize) -> FileParse<'s>) -> R,
) -> R {
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .saturating_sub(1)
        .min(sqls.len().saturating_sub(1));
    let shared = Shared {
        sqls,
        next: AtomicUsize::new(0),
        state: Mutex::new(State {
            done: (0..sqls.len()).map(|_| Slot::Waiting).collect(),
            taken: 0,
        }),
        changed: Condvar::new(),
    };
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| shared.work());
        }
        let result = replay(&mut |index| shared.take(index));
        // Let waiting workers see the end even if the replay stopped early.
        shared.next.store(sqls.len(), Ordering::Release);
        shared.lock().taken = sqls.len();
        shared.changed.notify_all();
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the threads do, the replay gets each file's own parse, in order, and
    /// the same as parsing it alone.
    #[test]
    fn the_replay_gets_every_file_in_order() {
        let texts: Vec<String> = (0..300)
            .map(|i| match i % 3 {
                0 => format!("create table t{i} (id int);\ncreate index on t{i} (id);"),
                1 => format!("select {i};\n\\echo meta\n"),
                _ => format!("alter table t{i} add column"),
            })
            .collect();
        let sqls: Vec<&str> = texts.iter().map(String::as_str).collect();
        let seen = run(&sqls, |parsed| {
            (0..sqls.len())
                .map(|i| describe(&parsed(i)))
                .collect::<Vec<_>>()
        });
        let alone: Vec<String> = sqls.iter().map(|sql| describe(&file(sql))).collect();
        assert_eq!(seen, alone);
        assert!(seen[0].contains("t0") && seen[299].contains("error"));
    }

    fn describe(parsed: &FileParse<'_>) -> String {
        match parsed {
            Err(e) => format!("split error {e}"),
            Ok(statements) => statements
                .iter()
                .map(|p| match &p.tree {
                    Ok(tree) => format!(
                        "{} meta {:?} {} stmts {:?};",
                        p.statement.sql,
                        p.meta,
                        tree.stmts.len(),
                        tree.stmts.first().map(|s| s.stmt_len)
                    ),
                    Err(e) => format!("{} error {e};", p.statement.sql),
                })
                .collect(),
        }
    }
}
