//! The API apps, the xtask and tests call: [`Migrator`] (policy and settings),
//! [`Report`] (what a run did).
//!
//! One code path: every caller plans and applies through this type, under the lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

use crate::adopt::{self, Adopted, SupabaseCliAdopted};
use crate::apply::{self, Applied, Event, Prepared, Settings};
use crate::conninfo::ConnInfo;
use crate::error::Error;
use crate::history;
use crate::lock;
use crate::plan::{self, DownTo, Plan, Renamed};
use crate::settings::{Adopt, Missing, OutOfOrder, SupabaseCli, SupabaseHistory, TransactionMode};
use crate::source::{Checksum, Migration, Source, Transaction};

/// What to record for a version with [`Migrator::repair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Record it as applied (with the local file's checksum) without running it.
    Applied,
    /// Delete its history row, so it counts as not applied.
    Reverted,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Migrations applied by this run, in order, with their execution time.
    pub applied: Vec<Applied>,
    /// How many local migrations were already applied.
    pub already_applied: usize,
    /// How long the run waited for the lock.
    pub lock_wait: Duration,
    /// The whole run, lock wait included.
    pub total: Duration,
    /// The newest applied version after the run.
    pub version: Option<i64>,
    /// Applied migrations whose file was renamed since (a warning, also logged).
    pub renamed: Vec<Renamed>,
    /// Versions the Supabase CLI had applied with the files' statements, recorded in
    /// plover's history by this run without running them (also logged), in order.
    pub adopted: Vec<SupabaseCliAdopted>,
}

/// What [`Migrator::squash_history`] did to one database's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SquashOutcome {
    /// The squashed migrations' rows were replaced by the baseline's.
    Rewritten {
        /// How many rows were deleted.
        removed: usize,
    },
    /// None of the squashed migrations is applied: nothing to rewrite (a run applies
    /// the baseline).
    NothingApplied,
    /// The history already records the baseline in their place.
    AlreadyRewritten,
}

/// What a rollback ([`Migrator::down`]) did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct DownReport {
    /// Migrations undone, newest first, with the time their down files took.
    pub undone: Vec<Applied>,
    /// How long the rollback waited for the lock.
    pub lock_wait: Duration,
    /// The newest version still applied after it (`None`: none is).
    pub version: Option<i64>,
}

type OnEvent = Arc<dyn Fn(&Event) + Send + Sync>;

/// Plans and applies a set of migrations for one app.
///
/// ```no_run
/// # async fn boot(client: &mut tokio_postgres::Client) -> Result<(), plover::Error> {
/// static MIGRATIONS: plover::Embedded =
///     plover::embed_migrations!("$CARGO_MANIFEST_DIR/../../supabase/migrations");
///
/// let report = plover::Migrator::new(MIGRATIONS.load()?)
///     .app("money_tracker")
///     .run(client)
///     .await?;
/// println!("applied {} migrations", report.applied.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Migrator {
    source: Source,
    app: String,
    out_of_order: OutOfOrder,
    missing: Missing,
    lock_wait: Duration,
    lock_timeout: Duration,
    statement_timeout: Option<Duration>,
    transaction_mode: TransactionMode,
    notify_pgrst: bool,
    supabase_history: SupabaseHistory,
    supabase_cli: SupabaseCli,
    applied_by: String,
    on_event: OnEvent,
    history_digest: std::sync::OnceLock<[u8; 32]>,
}

impl std::fmt::Debug for Migrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migrator")
            .field("origin", &self.source.origin())
            .field("migrations", &self.source.len())
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

/// The app name used when none is set.
pub const DEFAULT_APP: &str = "default";

impl Migrator {
    /// A migrator with safe defaults: app `default`, out-of-order and missing
    /// migrations refused, lock wait 5 minutes, `lock_timeout` 5 s, no
    /// `statement_timeout`, one transaction per migration, PostgREST notified, the
    /// Supabase CLI's history kept for a Supabase project, and what the Supabase CLI
    /// applied with the files' statements adopted ([`SupabaseCli::Adopt`]).
    pub fn new(source: Source) -> Migrator {
        Migrator {
            source,
            app: DEFAULT_APP.to_owned(),
            out_of_order: OutOfOrder::Refuse,
            missing: Missing::Refuse,
            lock_wait: Duration::from_secs(300),
            lock_timeout: Duration::from_secs(5),
            statement_timeout: None,
            transaction_mode: TransactionMode::PerMigration,
            notify_pgrst: true,
            supabase_history: SupabaseHistory::Auto,
            supabase_cli: SupabaseCli::Adopt,
            applied_by: default_applied_by(),
            on_event: Arc::new(|_| {}),
            history_digest: std::sync::OnceLock::new(),
        }
    }

    /// The app whose history this migrator reads and writes. Several apps can share
    /// a database; each sees and locks only its own rows.
    pub fn app(mut self, app: impl Into<String>) -> Self {
        self.app = app.into();
        self
    }
    /// Whether pending migrations older than the newest applied one may run.
    pub fn out_of_order(mut self, policy: OutOfOrder) -> Self {
        self.out_of_order = policy;
        self
    }
    /// Whether applied migrations without a local file are tolerated.
    pub fn missing(mut self, policy: Missing) -> Self {
        self.missing = policy;
        self
    }
    /// How long to wait for another run's lock before giving up.
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }
    /// `lock_timeout` while migrations run (reset afterwards).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }
    /// `statement_timeout` while migrations run (reset afterwards); `None` for none.
    pub fn statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.statement_timeout = timeout;
        self
    }
    /// One transaction per migration (default) or one for all.
    pub fn transaction_mode(mut self, mode: TransactionMode) -> Self {
        self.transaction_mode = mode;
        self
    }
    /// Whether to `NOTIFY pgrst, 'reload schema'` after applying anything.
    pub fn notify_pgrst(mut self, notify: bool) -> Self {
        self.notify_pgrst = notify;
        self
    }
    /// Whether to keep `supabase_migrations.schema_migrations` in step.
    pub fn supabase_history(mut self, mode: SupabaseHistory) -> Self {
        self.supabase_history = mode;
        self
    }
    /// What a run does with versions the Supabase CLI applied that this app's history
    /// lacks: adopt them when the CLI recorded the files' statements (the default), or
    /// refuse. Never re-run. Only while the Supabase CLI's history is kept
    /// ([`Migrator::supabase_history`]): with it off, plover neither reads nor writes
    /// the CLI's table.
    pub fn supabase_cli(mut self, policy: SupabaseCli) -> Self {
        self.supabase_cli = policy;
        self
    }
    /// What to record as `applied_by` (default: program@host).
    pub fn applied_by(mut self, who: impl Into<String>) -> Self {
        self.applied_by = who.into();
        self
    }
    /// Called as the run progresses (for progress bars).
    pub fn on_event(mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.on_event = Arc::new(f);
        self
    }

    /// The history digest of this app's files all applied ([`history::digest_of`]),
    /// computed once: by `embed_migrations!` at build time for an embedded set (from
    /// the very files the run would apply), else here.
    fn history_digest(&self) -> [u8; 32] {
        *self.history_digest.get_or_init(|| {
            self.source.embedded_history_digest().unwrap_or_else(|| {
                history::digest_of(
                    self.source
                        .migrations()
                        .iter()
                        .map(|m| (m.version(), m.name(), m.checksum())),
                )
            })
        })
    }

    /// The migration set.
    pub fn source(&self) -> &Source {
        &self.source
    }
    /// The app name.
    pub fn app_name(&self) -> &str {
        &self.app
    }

    /// How long to wait for the lock (for other modules that run under it).
    pub(crate) fn lock_wait_setting(&self) -> Duration {
        self.lock_wait
    }
    /// What runs record as `applied_by`.
    #[cfg(feature = "project")]
    pub(crate) fn lock_timeout_setting(&self) -> Duration {
        self.lock_timeout
    }

    /// The progress callback, for other modules that take the lock
    /// ([`lock::with_lock_watched`]).
    pub(crate) fn on_event_setting(&self) -> &(dyn Fn(&Event) + Send + Sync) {
        &*self.on_event
    }

    pub(crate) fn applied_by_setting(&self) -> &str {
        &self.applied_by
    }

    /// Whether `supabase_migrations.schema_migrations` is kept in step.
    pub(crate) fn supabase(&self) -> bool {
        match self.supabase_history {
            SupabaseHistory::Auto => self.source.is_supabase(),
            SupabaseHistory::On => true,
            SupabaseHistory::Off => false,
        }
    }

    /// Adopts another tool's history: records every local migration that `from`
    /// recorded as applied in plover's history (with the local file's checksum),
    /// without running anything, in one transaction under the migration lock.
    /// plover's history tables are created if missing.
    ///
    /// With the Supabase history kept (see [`SupabaseHistory`](crate::SupabaseHistory)),
    /// versions adopted from sqlx or refinery are written to
    /// `supabase_migrations.schema_migrations` too.
    ///
    /// Unlike the adoption that runs do on their own (see
    /// [`SupabaseCli`](crate::SupabaseCli)), this records what the tool recorded
    /// whatever the statements it ran: it is the way to take over versions whose files
    /// changed since, once the database is checked.
    ///
    /// Fails, writing nothing, when the tool's table does not exist, when sqlx
    /// recorded a failed migration, or when the tool recorded versions but none of
    /// them has a local file (the wrong directory or database, most likely).
    ///
    /// ```no_run
    /// # async fn switch(client: &mut tokio_postgres::Client) -> Result<(), plover::Error> {
    /// let migrator = plover::Migrator::new(plover::Source::from_dir("supabase/migrations")?);
    /// let adopted = migrator.adopt(client, plover::Adopt::Sqlx).await?;
    /// if !adopted.unknown.is_empty() {
    ///     eprintln!("sqlx applied versions with no local file: {:?}", adopted.unknown);
    /// }
    /// migrator.run(client).await?; // applies only what sqlx had not
    /// # Ok(()) }
    /// ```
    pub async fn adopt(&self, client: &mut Client, from: Adopt) -> Result<Adopted, Error> {
        let app = self.app_name();
        // The Supabase CLI's own history needs no mirror: it is where the rows came from.
        let mirror = self.supabase() && from != Adopt::Supabase;
        let applied_by = format!(
            "adopted from {} by {}",
            from.key(),
            self.applied_by_setting()
        );
        let (adopted, _) = lock::with_lock_watched(
            client,
            app,
            self.lock_wait_setting(),
            self.on_event_setting(),
            async |client| {
                let tx = client
                    .transaction()
                    .await
                    .map_err(Error::db("starting a transaction"))?;
                let (rows, bootstrap) = history::inspect(&tx, app, mirror).await?;
                let recorded = adopt::recorded(&tx, from).await?;
                let sorted = adopt::sort(self.source(), &recorded.versions, &rows);
                if sorted.adopt.is_empty()
                    && sorted.already.is_empty()
                    && (!sorted.unknown.is_empty() || !recorded.unreadable.is_empty())
                {
                    return Err(Error::AdoptNoLocalFiles {
                        from,
                        versions: sorted
                            .unknown
                            .iter()
                            .map(i64::to_string)
                            .chain(recorded.unreadable.iter().map(|v| format!("{v:?}")))
                            .collect(),
                    });
                }
                if !sorted.adopt.is_empty() {
                    bootstrap.run(&tx).await?;
                }
                for m in &sorted.adopt {
                    history::insert_applied(&tx, app, m, 0, &applied_by).await?;
                    if mirror {
                        history::mirror(&tx, m, &apply::mirror_statements(m)).await?;
                    }
                }
                tx.commit()
                    .await
                    .map_err(Error::db("committing the adopted history"))?;
                Ok(Adopted {
                    adopted: sorted.adopt.iter().map(|m| m.version()).collect(),
                    already: sorted.already,
                    unknown: sorted.unknown,
                    unreadable: recorded.unreadable,
                })
            },
        )
        .await?;
        Ok(adopted)
    }

    /// The plan as the database stands now (read-only, no lock taken), with what the
    /// Supabase CLI applied when its history is kept ([`Plan::with_supabase_cli`]).
    pub async fn plan(&self, client: &Client) -> Result<Plan<'_>, Error> {
        let (rows, bootstrap) = history::inspect(client, &self.app, false).await?;
        self.plan_with(client, &rows, !bootstrap.plover).await
    }

    /// The plan for `rows` (this app's history), reading the Supabase CLI's rows when
    /// its history is kept.
    async fn plan_with(
        &self,
        client: &Client,
        rows: &[plan::AppliedRow],
        plover_exists: bool,
    ) -> Result<Plan<'_>, Error> {
        let cli = match self.supabase() {
            true => history::supabase_cli(client, &self.app, plover_exists).await?,
            false => Vec::new(),
        };
        Ok(Plan::with_supabase_cli(
            &self.source,
            rows,
            &cli,
            self.supabase_cli,
        ))
    }

    /// Takes the lock, re-plans, and applies what is pending.
    ///
    /// Refuses, applying nothing, when the plan has problems (modified, missing,
    /// out-of-order or dirty migrations, versions the Supabase CLI applied with other
    /// statements than the file's) or a pending file cannot run (it fails to split,
    /// holds transaction control, a NUL byte or a `COPY … FROM STDIN`). The lock is
    /// released on every path.
    ///
    /// Versions the Supabase CLI applied with the files' statements (see
    /// [`SupabaseCli`]) are adopted first, in a transaction of their own: recorded in
    /// plover's history without running them, logged, and listed in
    /// [`Report::adopted`]. They are never run again.
    ///
    /// Each migration starts with the session as the caller handed it over (plus the
    /// timeouts): settings made by one file do not reach the next, nor the caller.
    /// A file renamed after it was applied is logged as a warning and listed in
    /// [`Report::renamed`]; so are the `.sql` files that are not migrations
    /// ([`Source::skipped`]), and the files that run without a transaction because a
    /// statement cannot run in one ([`Event::OutsideTransaction`]).
    pub async fn run(&self, client: &mut Client) -> Result<Report, Error> {
        for warning in self.source.skipped_warnings() {
            tracing::warn!(app = self.app, "{warning}");
        }
        let started = Instant::now();
        if history::is_up_to_date(client, &self.app, &self.history_digest()).await? {
            (self.on_event)(&Event::Planned { total: 0 });
            return Ok(Report {
                already_applied: self.source.len(),
                version: self.source.latest(),
                total: started.elapsed(),
                ..Report::default()
            });
        }
        let (mut report, lock_wait) = lock::with_lock_watched(
            client,
            &self.app,
            self.lock_wait,
            self.on_event_setting(),
            async |client| self.run_locked(client).await,
        )
        .await?;
        report.lock_wait = lock_wait;
        report.total = started.elapsed();
        Ok(report)
    }

    async fn run_locked(&self, client: &mut Client) -> Result<Report, Error> {
        let supabase = self.supabase();
        let (rows, mut bootstrap) = history::inspect(&*client, &self.app, supabase).await?;
        let missing_at_start = bootstrap;
        let plan = self.plan_with(client, &rows, !bootstrap.plover).await?;
        let renamed = plan.renamed();
        for r in &renamed {
            tracing::warn!(
                app = self.app,
                version = r.version,
                recorded = r.recorded,
                name = r.name,
                "{r}"
            );
        }
        let pending = plan.check(self.out_of_order, self.missing)?;
        let prepared: Vec<Prepared<'_>> = pending
            .iter()
            .map(|m| apply::prepare(m))
            .collect::<Result<_, _>>()?;
        for own in prepared.iter().filter_map(|p| p.own.as_ref()) {
            tracing::warn!(
                app = self.app,
                version = own.version,
                file = own.file,
                "{own}"
            );
        }
        for outside in prepared.iter().filter_map(|p| p.outside.as_ref()) {
            tracing::warn!(
                app = self.app,
                version = outside.version,
                file = outside.file,
                line = outside.line,
                "{outside}"
            );
        }
        let adoptable: Vec<_> = plan.adoptable().collect();
        let adopted =
            adopt::adopt_supabase_cli(client, &self.app, &adoptable, bootstrap, &self.applied_by)
                .await?;
        if !adopted.is_empty() {
            // The adoption created the tables (the Supabase CLI's existed: its rows were read).
            bootstrap = history::Bootstrap::default();
        }
        for a in &adopted {
            tracing::info!(app = self.app, version = a.version, name = a.name, "{a}");
        }
        if bootstrap.down_checksum && !bootstrap.plover && !prepared.is_empty() {
            // A history table from an older plover gets its column in a short
            // transaction of its own, not in the first migration's (which may be long
            // and would hold the table's lock throughout).
            history::Bootstrap {
                down_checksum: true,
                ..history::Bootstrap::default()
            }
            .run_alone(client)
            .await?;
            bootstrap.down_checksum = false;
        }
        let settings = self.settings(supabase, bootstrap, prepared.len());
        let applied = apply::run(client, &settings, &prepared, self.transaction_mode).await?;
        if self.notify_pgrst && !applied.is_empty() {
            history::notify_pgrst(&*client).await?;
        }
        // Nothing is left to do: the next run may see so in one query. Not before the
        // history table exists (nothing was ever applied here).
        let history_exists = !missing_at_start.plover || !applied.is_empty() || !adopted.is_empty();
        if history_exists {
            // Created with the history table, else here (a history from before it).
            let create = missing_at_start.digests && !missing_at_start.plover;
            history::remember_digest(client, &self.app, create).await;
        }
        let already_applied = plan.entries().len() - pending.len() - adopted.len();
        Ok(Report {
            version: applied.last().map(|a| a.version).or(plan.newest_applied()),
            applied,
            already_applied,
            renamed,
            adopted,
            ..Report::default()
        })
    }

    /// The migrations a rollback to `to` would undo, newest first, each with its down
    /// file (read-only, no lock: for showing the plan before asking). Refuses as
    /// [`Migrator::down`] would, naming every problem.
    pub async fn down_plan(&self, client: &Client, to: DownTo) -> Result<Vec<&Migration>, Error> {
        let (rows, _) = history::inspect(client, &self.app, false).await?;
        let undo = plan::down(&self.source, &rows, to, &self.app)?;
        self.prepare_downs(&undo)?;
        Ok(undo)
    }

    /// Rolls back to `version`: every applied migration newer than it is undone with its
    /// down file (`<version>_<name>.down.sql` beside it), newest first. See
    /// [`Migrator::down`].
    pub async fn down_to(&self, client: &mut Client, version: i64) -> Result<DownReport, Error> {
        self.down(client, DownTo::Version(version)).await
    }

    /// Takes the lock, re-plans the rollback and runs it: each down file, newest first,
    /// in a transaction of its own with the deletion of its history rows (and of the
    /// Supabase CLI's row when its history is kept). Refuses before running anything
    /// when a version to undo has no down file, no file, a file edited since it was
    /// applied, a down file that cannot run in a transaction, or when the history is
    /// dirty ([`Error::DownRefused`]); a down file that fails is rolled back and stops
    /// the rollback, the ones before it stay undone ([`Error::DownFailed`]).
    pub async fn down(&self, client: &mut Client, to: DownTo) -> Result<DownReport, Error> {
        let supabase = self.supabase();
        let on_event = self.on_event_setting();
        let ((undone, version), lock_wait) = lock::with_lock_watched(
            client,
            &self.app,
            self.lock_wait,
            on_event,
            async |client| {
                let (rows, _) = history::inspect(&*client, &self.app, supabase).await?;
                let undo = plan::down(&self.source, &rows, to, &self.app)?;
                let prepared = self.prepare_downs(&undo)?;
                (self.on_event)(&Event::Planned {
                    total: prepared.len(),
                });
                let settings =
                    self.settings(supabase, history::Bootstrap::default(), prepared.len());
                let undone = apply::run_down(client, &settings, &prepared).await?;
                let gone: Vec<i64> = undone.iter().map(|a| a.version).collect();
                let version = rows
                    .iter()
                    .map(|r| r.version)
                    .filter(|v| !gone.contains(v))
                    .max();
                Ok((undone, version))
            },
        )
        .await?;
        if self.notify_pgrst && !undone.is_empty() {
            history::notify_pgrst(&*client).await?;
        }
        Ok(DownReport {
            undone,
            lock_wait,
            version,
        })
    }

    /// Marks the database as migrated up to `version` without running anything: every
    /// local migration up to it that has no history row is recorded as applied (with
    /// its file's checksum, and in the Supabase CLI's history when that is kept), in
    /// one transaction under the lock, for a database built by other means (a restore,
    /// a dump, another tool). Returns the versions recorded. Refuses, recording
    /// nothing, when `version` is not a local migration or the app's history is dirty.
    pub async fn baseline(&self, client: &mut Client, version: i64) -> Result<Vec<i64>, Error> {
        let supabase = self.supabase();
        let on_event = self.on_event_setting();
        let (recorded, _) = lock::with_lock_watched(
            client,
            &self.app,
            self.lock_wait,
            on_event,
            async |client| {
                let (rows, bootstrap) = history::inspect(&*client, &self.app, supabase).await?;
                let mut problems = Vec::new();
                if self.source.get(version).is_none() {
                    problems.push(format!(
                        "version {version} is not a migration of {}; baseline names the newest one the database already has",
                        self.source.origin()
                    ));
                }
                if let Some(dirty) = rows.iter().find(|r| r.state != plan::RowState::Applied) {
                    problems.push(format!(
                        "version {} ({}) is dirty; finish or undo it by hand, then `db repair`",
                        dirty.version, dirty.name
                    ));
                }
                if !problems.is_empty() {
                    return Err(Error::BaselineRefused {
                        app: self.app.clone(),
                        problems,
                    });
                }
                let todo: Vec<&Migration> = self
                    .source
                    .migrations()
                    .iter()
                    .filter(|m| m.version() <= version)
                    .filter(|m| !rows.iter().any(|r| r.version == m.version()))
                    .collect();
                bootstrap.run_alone(client).await?;
                let tx = client
                    .transaction()
                    .await
                    .map_err(Error::db("starting a transaction"))?;
                for m in &todo {
                    history::insert_applied(&tx, &self.app, m, 0, &self.applied_by).await?;
                    if supabase {
                        history::mirror(&tx, m, &apply::mirror_statements(m)).await?;
                    }
                }
                tx.commit()
                    .await
                    .map_err(Error::db("committing the baseline"))?;
                Ok(todo.iter().map(|m| m.version()).collect::<Vec<i64>>())
            },
        )
        .await?;
        Ok(recorded)
    }

    /// Rewrites the history after a squash: the migrations `squashed` (version and the
    /// checksum each had) became the one file of version `baseline` (a migration of
    /// this migrator's source). Under the lock, in one transaction: their rows are
    /// deleted and the baseline's recorded as applied (in the Supabase CLI's history
    /// too when it is kept). Nothing changes when none of them is applied (a new
    /// database: a run applies the baseline) or when the history already records the
    /// baseline alone. Refuses, changing nothing, when only some are applied, one was
    /// applied from other text than the one squashed, or the history is dirty.
    pub async fn squash_history(
        &self,
        client: &mut Client,
        baseline: i64,
        squashed: &[(i64, Checksum)],
    ) -> Result<SquashOutcome, Error> {
        let supabase = self.supabase();
        let on_event = self.on_event_setting();
        let (outcome, _) = lock::with_lock_watched(
            client,
            &self.app,
            self.lock_wait,
            on_event,
            async |client| {
                let (rows, bootstrap) = history::inspect(&*client, &self.app, supabase).await?;
                let refuse = |problems: Vec<String>| Error::SquashRefused {
                    app: self.app.clone(),
                    problems,
                };
                let Some(m) = self.source.get(baseline) else {
                    return Err(refuse(vec![format!(
                        "version {baseline} is not a migration of {}",
                        self.source.origin()
                    )]));
                };
                let row = |v: i64| rows.iter().find(|r| r.version == v);
                let applied: Vec<i64> = squashed
                    .iter()
                    .map(|(v, _)| *v)
                    .filter(|v| row(*v).is_some())
                    .collect();
                let baseline_row = row(baseline);
                if baseline_row.is_some_and(|r| r.checksum == Some(m.checksum()))
                    && applied.len() == 1
                {
                    return Ok(SquashOutcome::AlreadyRewritten);
                }
                if applied.is_empty() {
                    return Ok(SquashOutcome::NothingApplied);
                }
                let mut problems = Vec::new();
                if let Some(dirty) = rows.iter().find(|r| r.state != plan::RowState::Applied) {
                    problems.push(format!(
                        "version {} ({}) is dirty; finish or undo it by hand, then `db repair`",
                        dirty.version, dirty.name
                    ));
                }
                let missing: Vec<String> = squashed
                    .iter()
                    .filter(|(v, _)| row(*v).is_none())
                    .map(|(v, _)| v.to_string())
                    .collect();
                if !missing.is_empty() {
                    problems.push(format!(
                        "{} of the {} squashed migrations are not applied here ({}): apply them first, from the files before the squash, then rewrite",
                        missing.len(),
                        squashed.len(),
                        missing.join(", ")
                    ));
                }
                for (v, checksum) in squashed {
                    if let Some(r) = row(*v)
                        && r.checksum.is_some_and(|c| c != *checksum)
                    {
                        problems.push(format!(
                            "version {v} ({}) was applied from other text than the file squashed",
                            r.name
                        ));
                    }
                }
                if !problems.is_empty() {
                    return Err(refuse(problems));
                }
                bootstrap.run_alone(client).await?;
                let tx = client
                    .transaction()
                    .await
                    .map_err(Error::db("starting a transaction"))?;
                for (v, _) in squashed {
                    history::delete(&tx, &self.app, *v).await?;
                    if supabase {
                        let text = row(*v)
                            .and_then(|_| self.source.get(*v))
                            .map_or_else(|| v.to_string(), |m| m.version_text().to_owned());
                        history::unmirror(&tx, &text).await?;
                    }
                }
                history::insert_applied(&tx, &self.app, m, 0, &self.applied_by).await?;
                if supabase {
                    history::mirror(&tx, m, &apply::mirror_statements(m)).await?;
                }
                tx.commit()
                    .await
                    .map_err(Error::db("committing the rewritten history"))?;
                Ok(SquashOutcome::Rewritten {
                    removed: applied.len(),
                })
            },
        )
        .await?;
        Ok(outcome)
    }

    /// What `apply` needs of this migrator for a run of `total` files.
    fn settings(
        &self,
        supabase: bool,
        bootstrap: history::Bootstrap,
        total: usize,
    ) -> Settings<'_> {
        Settings {
            app: &self.app,
            applied_by: &self.applied_by,
            lock_timeout: self.lock_timeout,
            statement_timeout: self.statement_timeout,
            supabase,
            bootstrap: std::sync::Mutex::new(bootstrap),
            recorder: tokio::sync::OnceCell::new(),
            total,
            on_event: &*self.on_event,
        }
    }

    /// The down files of `undo`, split and checked; a down file must run in a
    /// transaction (its history rows are deleted in it).
    fn prepare_downs<'m>(&self, undo: &[&'m Migration]) -> Result<Vec<Prepared<'m>>, Error> {
        let mut prepared = Vec::with_capacity(undo.len());
        let mut problems = Vec::new();
        for m in undo {
            let Some(down) = m.down() else { continue };
            let p = apply::prepare(down)?;
            if p.transaction != Transaction::Wrapped {
                problems.push(format!(
                    "{} cannot run in a transaction (a no-transaction directive, a statement such as CREATE INDEX CONCURRENTLY, or BEGIN/COMMIT blocks): down files run in one, with their history rows; undo it by hand, then `db repair --status reverted {}`",
                    down.file(),
                    m.version()
                ));
                continue;
            }
            prepared.push(p);
        }
        if problems.is_empty() {
            Ok(prepared)
        } else {
            Err(Error::DownRefused {
                app: self.app.clone(),
                problems,
            })
        }
    }

    /// Connects to `url` on a dedicated connection, runs, and disconnects.
    pub async fn run_url(&self, url: &str) -> Result<Report, Error> {
        let mut client = connect(url).await?;
        self.run(&mut client).await
    }

    /// Records `version` as applied or reverted without running anything, under the
    /// lock; for dirty no-transaction runs fixed by hand, or adopted histories.
    pub async fn repair(
        &self,
        client: &mut Client,
        version: i64,
        repair: Repair,
    ) -> Result<(), Error> {
        let supabase = self.supabase();
        let on_event = self.on_event_setting();
        lock::with_lock_watched(
            client,
            &self.app,
            self.lock_wait,
            on_event,
            async |client| {
                let (_, bootstrap) = history::inspect(&*client, &self.app, supabase).await?;
                bootstrap.run_alone(client).await?;
                let local = self.source.get(version);
                match repair {
                    Repair::Applied => {
                        let Some(m) = local else {
                            return Err(Error::NothingToRepair {
                                app: self.app.clone(),
                                version,
                            });
                        };
                        if !history::mark_applied(&*client, &self.app, m).await? {
                            history::insert_applied(&*client, &self.app, m, 0, &self.applied_by)
                                .await?;
                        }
                        if supabase {
                            history::mirror(&*client, m, &apply::mirror_statements(m)).await?;
                        }
                    }
                    Repair::Reverted => {
                        if !history::delete(&*client, &self.app, version).await? {
                            return Err(Error::NothingToRepair {
                                app: self.app.clone(),
                                version,
                            });
                        }
                        if supabase {
                            let text = local
                                .map(|m| m.version_text().to_owned())
                                .unwrap_or_else(|| version.to_string());
                            history::unmirror(&*client, &text).await?;
                        }
                    }
                }
                Ok(())
            },
        )
        .await
        .map(|_| ())
    }
}

// `ConnInfo` is a leaf (errors name its parse error); its `connect`, which returns
// the engine's `Error`, lives here beside `connect`.
impl ConnInfo {
    /// Opens a connection (no TLS: plover talks to loopback and in-cluster servers) and
    /// drives it on the current runtime.
    pub async fn connect(&self) -> Result<Client, Error> {
        let (client, connection) = self
            .config()
            .connect(NoTls)
            .await
            .map_err(Error::db("connecting to the database"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "database connection closed");
            }
        });
        Ok(client)
    }
}

/// Parses `url` ([`ConnInfo::parse`](crate::conninfo::ConnInfo::parse): a
/// `postgres://` URL or `key=value` pairs) and connects (no TLS: plover talks to
/// loopback and in-cluster servers), driving the connection on the current runtime.
/// A text that does not parse is never shown in the error.
pub async fn connect(url: &str) -> Result<Client, Error> {
    ConnInfo::parse(url)?.connect().await
}

fn default_applied_by() -> String {
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "plover".into());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("{program}@{host}")
}
