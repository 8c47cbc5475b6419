//! Every command line flag of `cargo xtask`, in one place.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// plover's developer commands.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
pub struct Xtask {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The project's migrations: create, inspect, apply; which database to talk to.
    ///
    /// Every command works on the Supabase project under --workdir (default: this
    /// workspace), its `supabase/migrations`, `supabase/config.toml` and
    /// `supabase/plover.toml` (the app name and the environments), and reads `.env`
    /// there without overriding variables already set.
    ///
    /// Targets (--env): `local` is DATABASE_URL, else the local database on
    /// `[db] port` of supabase/config.toml. Another name, e.g. `staging`, is
    /// STAGING_DATABASE_URL, else SUPABASE_PROJECT_REF_STAGING +
    /// SUPABASE_DB_PASSWORD_STAGING, else the variable `url_env` names in
    /// supabase/plover.toml. Names are case-insensitive (PROD is prod). Without --env:
    /// the environment `db link` recorded, else `local`. Connection strings are always
    /// shown with the password hidden; pass secrets through variables, never on the
    /// command line.
    ///
    /// Exit codes: 0 success; 1 `db status` found something that needs attention, or
    /// `db lint` an error-level finding; 2 the command failed or was refused; 141 the
    /// reader of stdout went away (`| head`).
    Db(Db),
    /// Run the whole test suite on this machine, as CI does.
    ///
    /// Starts what the tests need and stops it afterwards: libclang for the lint's
    /// parser (`.ci/libclang-up`, which installs it as root); when no Docker engine
    /// answers and this runs as root, `.ci/docker-up` installs and starts one
    /// (otherwise the Docker provider's tests are skipped, with a note); the local
    /// Postgres image of `cargo xtask db image` for this workspace's `[db]
    /// major_version` (built when missing, as root), which the Docker provider's
    /// tests then run on host networking; then `cargo test --workspace`, a check that
    /// no test database was left behind, and the test servers stopped.
    Test(Test),
    /// The shared disposable Postgres server that test suites use.
    #[command(subcommand)]
    TestServer(TestServer),
    /// Run the example app on a local PostgreSQL, migrated on boot.
    ///
    /// Starts (or reuses) the local development database of `cargo xtask db start`
    /// (127.0.0.1:<[db] port>, native where server binaries exist), applies the
    /// Supabase baseline, lets the app apply `supabase/migrations` (a no-op after `cargo
    /// xtask db reset-local`), loads `supabase/seed.sql` (idempotent), and serves
    /// until interrupted. `cargo xtask db stop` stops the PostgreSQL.
    Dev(Dev),
    /// Measure plover, side by side with its peers, on the same generated migrations.
    ///
    /// The benchmarks are a crate of their own (bench/, package plover-bench), so
    /// that building the xtask builds none of their dependencies: this runs it with
    /// the same arguments, built in release (speed is measured in release builds;
    /// `cargo run -p plover-bench -- ARGS` runs a dev one). `cargo xtask bench --help`
    /// lists its sub-commands (`fresh`, `peers`, `boot`, `lint`) and flags.
    #[command(disable_help_flag = true)]
    Bench(Bench),
    /// The same as `cargo xtask bench fresh`.
    #[command(disable_help_flag = true)]
    BenchFresh(BenchFresh),
    /// Print a shell completion script for these commands (bash, zsh, fish, ...).
    ///
    /// The script completes a command named `xtask`: alias it to cargo's and load the
    /// script, e.g. for bash `alias xtask='cargo xtask'` and
    /// `source <(cargo xtask completions bash)` in ~/.bashrc; for zsh, the same alias and
    /// the script saved as `_xtask` in a directory of `$fpath`; for fish,
    /// `alias xtask 'cargo xtask'` and the script in
    /// ~/.config/fish/completions/xtask.fish.
    Completions(Completions),
}

#[derive(Debug, Args)]
pub struct Completions {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct Test {
    /// Skip the Docker provider's tests.
    #[arg(long)]
    pub no_docker: bool,
    /// Leave the shared test server running afterwards (faster reruns).
    #[arg(long)]
    pub keep_server: bool,
    /// Arguments for `cargo test` (after `--`), e.g. `-- --test e2e -- engine::`.
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Dev {
    /// Where the app listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Skip loading supabase/seed.sql.
    #[arg(long)]
    pub no_seed: bool,
}

#[derive(Debug, Args)]
pub struct Bench {
    /// The benchmark's arguments (`cargo xtask bench --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct BenchFresh {
    /// The benchmark's arguments (`cargo xtask bench fresh --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

#[derive(Debug, Subcommand)]
pub enum TestServer {
    /// Start it (or find it running) and print its connection string.
    Start,
    /// Stop it and remove its data directory (and the Docker provider's container).
    Stop,
    /// Drop the unused clones that ended test processes made ahead, then list the
    /// test databases still left on it (handed out to a test that did not end
    /// cleanly); fails if there are any.
    Leftovers,
}

#[derive(Debug, Args)]
pub struct Db {
    #[command(subcommand)]
    pub command: DbCommand,
    /// The directory holding the project's `supabase/` folder [default: the workspace root].
    #[arg(long, global = true, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// The environment to talk to: `local`, or a name such as `staging` or `prod`
    /// [default: the linked environment, else `local`].
    #[arg(long, global = true, value_name = "NAME")]
    pub env: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create a migration file: supabase/migrations/<UTC YYYYMMDDHHMMSS>_<name>.sql.
    ///
    /// The name is written in snake_case. The version is the current UTC time, or one
    /// past the newest existing version when the clock is not past it, so it never
    /// reuses or goes below one. SQL piped to stdin becomes the body. Prints the path.
    New(DbNew),
    /// Show every migration's state on the target.
    ///
    /// States: applied (when, by whom), pending, out-of-order (older than the newest
    /// applied one), modified (changed after it was applied), missing locally
    /// (applied, but the file is gone), dirty (a no-transaction run stopped midway),
    /// applied-by-supabase-cli (`db push` adopts it: records it without running it),
    /// supabase-cli-differs (the Supabase CLI applied other statements: `db adopt`).
    /// With --drift, also whether the target's schemas are what its applied
    /// migrations create (changes made by hand, in a dashboard, or by another tool).
    ///
    /// Exit codes: 0 when everything is applied or only pending (and, with --drift,
    /// nothing drifted); 1 when anything else needs attention or the schemas drifted;
    /// 2 when the status could not be read.
    Status(DbStatus),
    /// Lint the migrations: migration safety and Supabase security, before merge.
    ///
    /// Parses every file of supabase/migrations with the Postgres grammar and replays
    /// them in version order into a schema model (tables, RLS, policies, grants,
    /// functions, views), so rules see across files: a table created in the change
    /// takes no lock warnings, RLS enabled in a later file of the change counts.
    /// Exposed schemas come from `[api] schemas` of supabase/config.toml.
    ///
    /// Which files are in the change (reported on; the others only feed the model):
    /// with --base REF, the files added or changed since the merge base of HEAD and
    /// REF (files on the base that were edited or deleted are reported too); with
    /// --env NAME, the files not applied there (edited or missing applied files are
    /// reported); with neither, every file, as for a project never deployed.
    ///
    /// Suppress a finding with a reason: `-- plover:lint-ignore RULE[, RULE] -- why`
    /// on the line(s) before a statement, or `-- plover:lint-ignore-file RULE -- why`
    /// for the whole file; ignores that suppress nothing are reported. Turn rules off
    /// or change their severity in the `[lint.rules]` table of supabase/plover.toml,
    /// e.g. `rename = "error"`; the style rules are off unless turned on there, e.g.
    /// `create-without-if-not-exists = "warning"`.
    /// --list-rules prints every rule with its severity, reason and fix.
    ///
    /// The parser (pg_query) needs libclang to build. `cargo xtask db lint` runs an
    /// optimized (release) build of the xtask with it, in target/lint: minutes the
    /// first time, with cargo's progress, then only when the code changes.
    ///
    /// --env is used only when given on the command line (the linked environment is
    /// not consulted), so the lint works offline by default.
    ///
    /// Exit codes: 0 no error-level finding (warnings allowed, unless
    /// --deny-warnings); 1 error-level findings; 2 the lint could not run (unreadable
    /// directory, bad configuration, git or database failure).
    Lint(DbLint),
    /// Apply pending migrations to the target.
    ///
    /// Prints the plan, then applies under the migration lock, each migration in its
    /// own transaction, with per-migration timings. On a protected environment (prod
    /// by default; `protected` in supabase/plover.toml) it asks for the environment's
    /// name at a terminal, or needs --confirm NAME; without a terminal and without
    /// --confirm it refuses.
    ///
    /// Exit codes: 0 applied (or nothing to do); 2 refused or failed (nothing of a
    /// failed migration remains).
    Push(DbPush),
    /// Start the local development database (or find it running) and print its URL.
    ///
    /// Listens on 127.0.0.1:<[db] port of supabase/config.toml> (default 54322), user
    /// `postgres`, password `postgres`: the database `--env local` means.
    ///
    /// Native mode (the default where PostgreSQL's server binaries are installed): a
    /// cluster under supabase/.temp/plover-db/ (ignored by git), kept between starts.
    /// As root the server runs as the `postgres` account (else `nobody`); when it
    /// cannot reach that directory (e.g. under a private home), the data lives in
    /// /var/tmp/plover-db-<hash>/ instead, and the command says so.
    ///
    /// Docker mode (the default where only a Docker engine answers): a container
    /// `plover-db-<project_id>` of the local image of `cargo xtask db image` for
    /// `[db] major_version` (PostgreSQL with pgvector, pg_cron, pgTAP and the other
    /// extensions Debian ships, plus plover's stand-ins; built first when missing,
    /// which needs root), port published on 127.0.0.1, or host networking with
    /// PLOVER_DOCKER_NETWORK=host. --image (or PLOVER_DOCKER_IMAGE and
    /// PLOVER_DOCKER_TAG) runs another image instead; --bare (or
    /// PLOVER_DOCKER_BARE=1) for one without an entrypoint.
    ///
    /// `start`, `stop` and `reset-local` take turns on supabase/.temp/plover-db/lock:
    /// a second one says whom it waits for. What an interrupted run left (a data
    /// directory without a finished initdb, a stale postmaster.pid, a missing
    /// `postgres` database) is repaired on start, and each repair printed.
    Start(DbStart),
    /// Run the pgTAP tests of supabase/tests on a freshly migrated database.
    ///
    /// Every `*.sql` file under supabase/tests (recursively, in path order), or the
    /// FILES given, runs with psql on a database of its own: a clone of a template
    /// holding the Supabase baseline and every migration of supabase/migrations, on
    /// the test server (`cargo xtask test-server`; --native or --docker, else
    /// PLOVER_TEST_PROVIDER, else native where server binaries exist; --docker runs
    /// plover's local image, which has pgTAP). pgTAP is created in schema `extensions` and the search path is
    /// Supabase's (`"$user", public, extensions`), so tests call `plan()`, `ok()`,
    /// `policies_are()`… unqualified, as with `supabase test db`. Prints the TAP
    /// stream of each file and a summary.
    ///
    /// Exit codes: 0 every test passed; 1 a test failed, a plan was not met, or a
    /// file stopped on an error; 2 the tests could not run (no files, no pgTAP on
    /// the server: the message names the package).
    Test(DbTest),
    /// Show which extensions of Supabase projects the native server has; --install
    /// adds plover's stand-ins.
    ///
    /// Real extensions (vector, pg_cron, http, pgtap, plpgsql_check…) come from your
    /// distribution's packages (the command names them). The Supabase-only ones
    /// (pg_net, pg_graphql, supabase_vault, pgsodium, pgjwt, wrappers,
    /// pg_jsonschema, pgmq) have plover stand-ins: control and SQL files with the objects
    /// and signatures migrations use, inert where the real one reaches the network.
    /// --install writes them into the server's `$(pg_config --sharedir)/extension`
    /// (root needed there; a real build already installed is kept). plover's local
    /// image (`db reset-local --docker`) has both kinds.
    ///
    /// Exit codes: 0 every packaged extension and stand-in is present; 1 some are
    /// missing; 2 the command failed.
    Extensions(DbExtensions),
    /// Generate code from the schema: `db gen types --lang rust|typescript`.
    Gen(DbGen),
    /// Stop the local development database, whichever mode runs it.
    ///
    /// The data is kept for the next `db start` unless --no-backup.
    Stop(DbStop),
    /// Recreate the local development database: migrations, then seed files.
    ///
    /// Starts it if needed (see `db start`), drops and recreates the `postgres`
    /// database, applies the Supabase baseline (on plain Postgres; Supabase images have the
    /// real thing), every migration through plover (the app of supabase/plover.toml),
    /// then the files of `[db.seed] sql_paths` in supabase/config.toml (relative to
    /// supabase/, `*` allowed in file names) unless --no-seed or `[db.seed] enabled =
    /// false`. Only ever touches the local database, never DATABASE_URL or --env.
    /// Waits for another `start`, `stop` or `reset-local` of this project to finish.
    ResetLocal(DbResetLocal),
    /// Build the local PostgreSQL image (or find it built) and print its name.
    ///
    /// `plover-postgres:<major>-<hash>`: Debian's PostgreSQL (15 from Debian 12, 17
    /// from Debian 13) with the Supabase extensions Debian packages (17: pgvector,
    /// pg_cron, http, pgTAP, plpgsql_check, pg_partman, hypopg, pg_repack, pgaudit,
    /// rum, wal2json; 15: the same but pgvector and http), pg_cron and pgaudit
    /// preloaded, plus plover's stand-ins for Supabase-only extensions (every
    /// `*.control` and `*.sql` of crates/plover/extensions/). No registry is used:
    /// debootstrap and apt-get from Debian's archive (the mirror apt uses here), then
    /// `docker import`. The default image of `db start --docker`, `db reset-local
    /// --docker` and `cargo xtask test`.
    ///
    /// Cached by content hash: the tag's hash covers the recipe (release, packages,
    /// configuration, builder version) and the stand-ins' bytes, so an unchanged
    /// recipe reuses the image and a changed stand-in rebuilds it in seconds. The
    /// root filesystem is cached as a tarball in /var/cache/plover by its own hash,
    /// so debootstrap runs again only when the packages change. The first build
    /// takes a few minutes and needs root (debootstrap, chroot) and a Docker engine
    /// (as root, `.ci/docker-up` starts one). Progress goes to stderr, the image's
    /// name to stdout.
    Image(DbImage),
    /// Reset the app on a target: drop exactly what its migrations made, back up,
    /// re-apply every migration.
    ///
    /// What is dropped is learned, not assumed: the migrations are replayed on a
    /// scratch database (the test server of `cargo xtask test`, started if needed)
    /// and the objects they make are compared by name with the target's. Then:
    ///
    /// 1. the plan is printed, object by object. Anything in the app's schemas
    ///    (`schemas` in supabase/plover.toml, default `public`) that the migrations
    ///    do not make (another app's table, a hand-made index) makes it refuse and
    ///    list them, unless each is named with --also-drop; so does anything outside
    ///    the app that the drop would take with it (found by a dry run that is rolled
    ///    back). In Supabase's schemas (auth, storage, ...) only the app's policies,
    ///    triggers and rules are dropped;
    /// 2. it asks for the environment's name at a terminal, on every target but the
    ///    plover-managed local cluster, or needs --confirm NAME;
    /// 3. a backup of the app's schemas (pg_dump, rows as INSERTs), of the app's
    ///    policies and triggers on Supabase's tables and of its history rows, to
    ///    supabase/.temp/backups/<env>-<UTC timestamp>.sql (mode 0600; `db restore`
    ///    puts it back);
    /// 4. under the app's migration lock, in one transaction: the plan's objects and
    ///    the app's history rows go, after checking the database still matches the
    ///    plan and that nothing else went; other apps' objects and history rows stay;
    /// 5. every migration is applied again; seed files only with --include-seed.
    ///
    /// For the local database, `db reset-local` recreates the whole database instead.
    Reset(DbReset),
    /// Put a backup taken by `db reset` back in place of the app.
    ///
    /// Into the database it came from (after the reset: the re-applied objects and
    /// history rows are dropped first, exactly as `db reset` would, with the same
    /// refusals), or into a fresh database (on plain Postgres the Supabase baseline is
    /// applied first when schema `auth` is missing). One transaction under the app's
    /// migration lock: it all goes in or nothing changes. A foreign key to a table
    /// outside the backup (e.g. auth.users) whose rows are missing here is added NOT
    /// VALID and named. Asks like `db reset`.
    Restore(DbRestore),
    /// Dump the target's schema, data or roles with pg_dump.
    ///
    /// Like `supabase db dump`: the schema by default (the same as --schema-only),
    /// rows with --data-only (as COPY), roles with --roles; to FILE with -f, else to
    /// stdout. The file is meant for psql (`psql -v ON_ERROR_STOP=1 -f FILE`).
    ///
    /// Left out unless named with --schema: Supabase's managed schemas (auth,
    /// storage, realtime, extensions, graphql, vault, supabase_migrations, ...),
    /// `pg_*`, and plover's own history schema `plover`. A data dump keeps the rows
    /// of auth, storage, supabase_functions, cron, net and pgmq (users and files move
    /// with the project) but never the history tables (auth.schema_migrations,
    /// storage.migrations, supabase_functions.migrations). A roles dump has no
    /// passwords and none of Supabase's reserved roles (postgres, anon,
    /// authenticated, service_role, authenticator, supabase_*, pgbouncer, ...), so
    /// it applies to another project.
    ///
    /// Which pg_dump: a local one whose major version is at least the server's
    /// (PLOVER_PG_BIN when it holds a pg_dump, else the PostgreSQL binaries found
    /// as for `db start`: pg_config, then /usr/lib/postgresql/<newest>), else the
    /// postgres:<server major> Docker image run with host networking
    /// (PLOVER_DUMP_IMAGE names another image; PLOVER_PG_DUMP=docker uses Docker
    /// even when the local one would do), else it fails naming both versions. Says
    /// on stderr which one ran. The password goes through PGPASSWORD, never the
    /// command line.
    Dump(DbDump),
    /// Print the SQL that turns one schema into another, with its hazards.
    ///
    /// Compares the app's schemas (`schemas` in supabase/plover.toml, default
    /// `public`) of two sides, read from the catalogs (no pg_dump, no Docker):
    /// `migrations` (the project's migrations replayed, after the Supabase baseline,
    /// into a shadow database `plover_shadow_<pid>` on the local development server,
    /// started if needed and dropped afterwards), an environment name (`local`,
    /// `staging`, `prod`, … resolved as for every command), or a URL without a
    /// password (PGPASSWORD gives one). By default from `migrations` to the target
    /// (--env, the linked environment, else `local`): what was changed there outside
    /// the migrations.
    ///
    /// The SQL is ordered so that each statement finds what it needs: what goes
    /// away first (dependents before what they rest on), then what comes
    /// (dependencies first). Each statement that can lose data, rewrite a table, hold
    /// a long lock, build an index, fail on dependents elsewhere or widen access has a
    /// `-- hazard KIND: …` comment above it, and the header counts them. Changes no
    /// statement can make (an enum value removed, a partition key changed) are
    /// listed as `-- manual:`; extensions and publications are never dropped (other
    /// apps may use them), only noted. Equal schemas print nothing but a comment.
    /// Reads both sides; changes neither.
    Diff(DbDiff),
    /// Make the target's schemas equal to --from's, optionally with some tables' rows.
    ///
    /// Reads the app's schemas of both, prints the SQL that turns the target's into
    /// the source's (`db diff --from <target> --to <source>`, hazards marked), then
    /// runs it in one transaction on the target; with --data, the named tables are
    /// emptied and filled with the source's rows in the same transaction (COPY,
    /// columns by name), sequences their columns own set to the largest value, and
    /// the row counts compared with the source's before anything is kept. A
    /// difference no statement can make (`-- manual:`) refuses before anything runs.
    /// The source is only read. On every target but the local development database
    /// it asks for the environment's name at a terminal, or needs --confirm NAME.
    Sync(DbSync),
    /// Copy one schema, objects and rows, from one database to another (OLD or OLD:NEW).
    ///
    /// In one transaction on --to: pg_dump's pre-data section of OLD (types, tables,
    /// functions, views, grants; no owners), the rows of every table streamed with COPY
    /// from --from (binary where every column has a built-in type), then indexes,
    /// constraints and foreign keys (checked once, on the full tables), triggers and
    /// policies; sequences set to the source's value or past the largest copied value;
    /// the row counts of both sides compared table by table; then OLD renamed to NEW.
    /// The source is only read, in one read-only snapshot that pg_dump shares. Any
    /// error, a count that differs, or an interruption keeps nothing. Refuses when NEW
    /// exists on --to (it never drops or replaces). Like reset, asks for --to's name on
    /// every target but the local development database, or needs --confirm NAME
    /// (`given` for a URL). Prints a summary table.
    CopySchema(DbCopySchema),
    /// Capture schema changes made outside migrations as a new migration file.
    ///
    /// The migrations are applied (after the Supabase baseline) to a shadow database
    /// `plover_shadow_<pid>` on the local development server (started if needed; see
    /// `db start`; dropped afterwards), the app's schemas (`schemas` in
    /// supabase/plover.toml, default `public`) of both are read from the catalogs,
    /// and the new file is `db diff --from migrations --to <target>`: every CREATE,
    /// ALTER and DROP that turns the migrations' schema into the target's, ordered so
    /// that each statement finds what it needs, with the hazards of each as comments
    /// (see `db diff --help`). With no migration yet, the whole schema becomes the
    /// first one. It writes nothing when there is no difference. Owners are left out
    /// (whoever runs the migrations owns what they create); grants are kept.
    ///
    /// The file is written as supabase/migrations/<version>_<name>.sql (the version
    /// as `db new` picks it) and checked with the parser `db push` uses.
    ///
    /// Then it offers to record the new migration as applied on the target (it is
    /// already there): at a terminal it asks; --record records without asking (on a
    /// protected environment, after its name is typed back); --no-record (or no
    /// terminal) leaves it pending and prints the `db repair` command that would
    /// record it.
    Pull(DbPull),
    /// Record versions as applied or reverted without running anything.
    ///
    /// For a no-transaction migration left dirty and finished by hand (`--status
    /// applied`), or a history row to forget (`--status reverted`). Takes the migration
    /// lock. On every target but the local development database it asks for the
    /// environment's name at a terminal, or needs --confirm NAME.
    Repair(DbRepair),
    /// Roll back the newest applied migrations with their down files.
    ///
    /// A migration's down file is `<version>_<name>.down.sql` beside it (or
    /// `<version>_<name>_down.sql`). Undoes the newest applied migration (--last N: the N
    /// newest; --to VERSION: every one newer than VERSION, which stays applied), newest
    /// first, each down file in a transaction with the deletion of its history rows
    /// (plover's and the Supabase CLI's). Shows the plan and the statements that drop
    /// or delete, then refuses before running anything when a version to undo has no
    /// down file, its file changed since it was applied, or the history is dirty. A
    /// down file that fails is rolled back and stops the rollback. On every target but
    /// the local development database it asks for the environment's name at a
    /// terminal, or needs --confirm NAME.
    Down(DbDown),
    /// Mark a database built by other means as migrated up to VERSION.
    ///
    /// Every local migration up to VERSION without a history row is recorded as applied
    /// (with its file's checksum, and in the Supabase CLI's history), in one
    /// transaction, without running anything: for a database restored from a dump, made
    /// by hand or by another tool. Later `db push` applies the rest. Refuses, recording
    /// nothing, when VERSION is not a local migration or the history is dirty. On every
    /// target but the local development database it asks for the environment's name at
    /// a terminal, or needs --confirm NAME.
    Baseline(DbBaseline),
    /// Make the migrations up to VERSION one baseline file, and rewrite histories.
    ///
    /// The migrations up to VERSION are replayed into a shadow database on the local
    /// development server; the schema diff from an empty database to it becomes
    /// `<VERSION>_baseline.sql` (a header lists every squashed migration with its
    /// checksum), which is checked by replaying it alone and diffing again. Refuses,
    /// changing nothing, when the squashed files write rows (--without-data to squash
    /// anyway), make objects the diff does not model, or the baseline would build
    /// another schema. Then the squashed files (and their down files) are replaced by
    /// the baseline, and on each --on ENV the app's history rows of the squashed
    /// migrations are replaced by the baseline's in one transaction (asking as
    /// destructive commands do). Once squashed, `db squash --to VERSION --on ENV`
    /// rewrites another database's history from the baseline's header.
    Squash(DbSquash),
    /// Take over another tool's migration history without re-running anything.
    ///
    /// Every local migration that the Supabase CLI (supabase_migrations.schema_migrations),
    /// sqlx (_sqlx_migrations) or refinery (refinery_schema_history) recorded as
    /// applied is recorded in plover's history with the local file's checksum. Prints
    /// what was adopted, what plover already had, and versions the tool applied that
    /// have no local file. Later `db push` applies only the rest. On every target but
    /// the local development database it asks for the environment's name at a
    /// terminal, or needs --confirm NAME.
    Adopt(DbAdopt),
    /// Remember --env NAME as the default target of later commands.
    ///
    /// Written to supabase/.temp/plover-link (ignored by git). `--env local` goes back
    /// to the local database.
    Link(DbLink),
}

#[derive(Debug, Args)]
pub struct DbNew {
    /// What the migration does, e.g. `add_budgets` or "add budgets".
    pub name: String,
}

#[derive(Debug, Args)]
pub struct DbStatus {
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also check for drift: replay the migrations the target recorded as applied into
    /// a shadow database on the local development server (as `db diff` does) and
    /// compare its schemas with the target's; a difference is listed, statement by
    /// statement, and exits 1.
    #[arg(long)]
    pub drift: bool,
}

#[derive(Debug, Args)]
pub struct DbLint {
    /// Lint the files added or changed since the merge base of HEAD and this git
    /// ref, e.g. `origin/main`.
    #[arg(long, value_name = "GIT_REF", conflicts_with = "env")]
    pub base: Option<String>,
    /// How to print findings [default: github when GITHUB_ACTIONS=true, else human].
    #[arg(long, value_enum)]
    pub format: Option<LintFormat>,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Print the rules (id, severity, reason, fix) as a Markdown table and exit.
    #[arg(long)]
    pub list_rules: bool,
    /// Also apply the migrations to a disposable database (the test server of
    /// `plover::testing`, with the Supabase baseline) and run catalog checks there: RLS
    /// off on exposed tables, policies with RLS off, functions without a fixed
    /// search_path, views without security_invoker, foreign keys without an index,
    /// tables without a primary key. Each finding is placed at the statement that
    /// created the object; a migration that fails to apply fails the command (exit 2).
    #[arg(long)]
    pub live: bool,
}

/// Output of `db lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LintFormat {
    /// `file:line:col: severity[rule]: message` and a hint (coloured at a terminal).
    Human,
    /// One JSON document: findings and counts.
    Json,
    /// GitHub Actions annotations (`::error file=…,line=…,col=…::…`).
    Github,
}

#[derive(Debug, Args)]
pub struct DbPush {
    /// Print the plan and the SQL that would run; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also apply pending migrations older than the newest applied one.
    #[arg(long)]
    pub include_all: bool,
    /// After applying, load the seed files (`[db.seed] sql_paths` of
    /// supabase/config.toml) into the target.
    #[arg(long)]
    pub include_seed: bool,
    /// Confirm a push to a protected environment without a prompt (for CI): the
    /// environment's name.
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
    /// How long to wait for the migration lock while another run (or session)
    /// holds it; the wait names the holder. 0 gives up at once.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub lock_wait: u64,
    /// Push to every target of FILE instead (one environment name or URL without a
    /// password per line, `#` comments): the canary first, then --concurrency at a
    /// time, stopping at the first failure, with a summary table and a state file.
    #[arg(long, value_name = "FILE", conflicts_with = "include_seed")]
    pub fleet: Option<PathBuf>,
    /// With --fleet: how many targets are pushed at once after the canary.
    #[arg(long, value_name = "N", default_value_t = 4, requires = "fleet")]
    pub concurrency: usize,
    /// With --fleet: how many targets, from the top of the file, are pushed first and
    /// one at a time; a failure among them stops the fleet before the rest.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "fleet")]
    pub canary: usize,
    /// With --fleet: the state file that records the targets pushed with this
    /// migration set, so that a run after a failure skips them (default FILE.state.json).
    #[arg(long, value_name = "PATH", requires = "fleet")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DbLink {}

#[derive(Debug, Args)]
pub struct DbReset {
    /// After re-applying the migrations, load the seed files (`[db.seed] sql_paths`).
    #[arg(long)]
    pub include_seed: bool,
    /// Drop this object too although the app's migrations do not make it, as the
    /// refusal lists it: `public.notes` or `table public.notes` (repeatable).
    #[arg(long, value_name = "IDENTITY")]
    pub also_drop: Vec<String>,
    /// Confirm the reset without a prompt (for CI): the environment's name. Needed
    /// on every target but the local development database when there is no terminal.
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
}

#[derive(Debug, Args)]
pub struct DbRestore {
    /// The backup `db reset` wrote (supabase/.temp/backups/<env>-<timestamp>.sql).
    pub file: PathBuf,
    /// Drop this object too although the app's migrations do not make it (as for
    /// `db reset`; repeatable).
    #[arg(long, value_name = "IDENTITY")]
    pub also_drop: Vec<String>,
    /// Confirm without a prompt (for CI): the environment's name.
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").multiple(false))]
pub struct DbDump {
    /// Only the schema: tables, functions, policies, grants; no rows.
    #[arg(long, group = "what")]
    pub schema_only: bool,
    /// Only the rows (as COPY), no DDL.
    #[arg(long, group = "what")]
    pub data_only: bool,
    /// Only the roles the project created (pg_dumpall --roles-only, without
    /// passwords and without Supabase's reserved roles).
    #[arg(long, group = "what")]
    pub roles: bool,
    /// Write to FILE instead of stdout.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Dump only this schema (repeatable) [default: every schema but Supabase's
    /// managed ones].
    #[arg(long = "schema", short = 's', value_name = "SCHEMA")]
    pub schemas: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DbDiff {
    /// The schema to start from: `migrations`, an environment name or a URL without a
    /// password [default: migrations].
    #[arg(long, value_name = "SIDE")]
    pub from: Option<String>,
    /// The schema to arrive at: `migrations`, an environment name or a URL without a
    /// password [default: the target: --env, the linked environment, else local].
    #[arg(long, value_name = "SIDE")]
    pub to: Option<String>,
    /// Also write the SQL as a new migration supabase/migrations/<version>_<NAME>.sql
    /// (when there is something to run).
    #[arg(short = 'f', long = "file", value_name = "NAME")]
    pub file: Option<String>,
    /// How to print the diff.
    #[arg(long, value_enum, default_value = "sql")]
    pub format: DiffFormat,
}

/// Output of `db diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    /// The SQL script with the hazards as comments.
    Sql,
    /// One JSON document: statements with their hazards, manual changes, notes.
    Json,
}

#[derive(Debug, Args)]
pub struct DbSync {
    /// The environment (or URL without a password) whose schemas the target takes.
    #[arg(long, value_name = "ENV")]
    pub from: String,
    /// Also replace the rows of these tables with the source's: `schema.table`, or a
    /// table of the first app schema (comma-separated or repeated).
    #[arg(long, value_name = "TABLE", value_delimiter = ',')]
    pub data: Vec<String>,
    /// Print what would run and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm without a prompt (for CI): the target environment's name.
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
}

#[derive(Debug, Args)]
pub struct DbCopySchema {
    /// Where the schema is read: an environment, or a URL without a password.
    #[arg(long, value_name = "ENV")]
    pub from: String,
    /// Where it is created: an environment, or a URL without a password.
    #[arg(long, value_name = "ENV")]
    pub to: String,
    /// The schema, and its name on --to when it changes: `billing` or `billing:billing_v2`.
    #[arg(long, value_name = "OLD[:NEW]")]
    pub schema: String,
    /// Show what would be copied and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm without a prompt (for CI): the --to environment's name (`given` for a
    /// URL). Needed on every target but the local development database when there is
    /// no terminal.
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
}

#[derive(Debug, Args)]
pub struct DbPull {
    /// The new migration's name.
    #[arg(default_value = "remote_schema")]
    pub name: String,
    /// Record the new migration as applied on the target without asking.
    #[arg(long, conflicts_with = "no_record")]
    pub record: bool,
    /// Do not record it as applied, and do not ask.
    #[arg(long)]
    pub no_record: bool,
}

/// Where the local development database runs.
#[derive(Debug, Default, Args)]
pub struct LocalMode {
    /// A cluster from the system's PostgreSQL server binaries.
    #[arg(long, conflicts_with = "docker")]
    pub native: bool,
    /// A Docker container.
    #[arg(long)]
    pub docker: bool,
    /// The Docker image (`name` or `name:tag`) [default: PLOVER_DOCKER_IMAGE and
    /// PLOVER_DOCKER_TAG, else the local image of `cargo xtask db image`].
    #[arg(long, value_name = "IMAGE", requires = "docker")]
    pub image: Option<String>,
    /// The Docker image has no entrypoint: the container runs initdb, then postgres
    /// [default: PLOVER_DOCKER_BARE].
    #[arg(long, requires = "docker")]
    pub bare: bool,
}

#[derive(Debug, Args)]
pub struct DbStart {
    #[command(flatten)]
    pub mode: LocalMode,
}

#[derive(Debug, Args)]
pub struct DbTest {
    /// pgTAP files to run (default: every *.sql under supabase/tests).
    pub files: Vec<PathBuf>,
    /// Where the test server runs [default: as the test provider picks it: native
    /// where server binaries exist]. With --docker, plover's local image for `[db]
    /// major_version` (built when missing), which has pgTAP and the other extensions.
    #[command(flatten)]
    pub mode: LocalMode,
}

#[derive(Debug, Args)]
pub struct DbExtensions {
    /// Write plover's stand-ins into the native server's extension directory.
    #[arg(long)]
    pub install: bool,
}

#[derive(Debug, Args)]
pub struct DbImage {
    /// The PostgreSQL major version, 15 or 17 [default: `[db] major_version` of
    /// supabase/config.toml, else 17 as for the Supabase CLI].
    #[arg(long, value_name = "MAJOR")]
    pub major: Option<u16>,
    /// The Debian mirror for debootstrap [default: the one apt uses on this machine,
    /// else http://deb.debian.org/debian].
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
}

#[derive(Debug, Args)]
pub struct DbStop {
    /// Also delete the data (the native data directory, or the container).
    #[arg(long)]
    pub no_backup: bool,
}

#[derive(Debug, Args)]
pub struct DbResetLocal {
    #[command(flatten)]
    pub mode: LocalMode,
    /// Skip the seed files.
    #[arg(long)]
    pub no_seed: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RepairStatus {
    /// Record as applied (with the local file's checksum) without running it.
    Applied,
    /// Delete the history row, so the version counts as not applied.
    Reverted,
}

#[derive(Debug, Args)]
pub struct DbRepair {
    /// What to record.
    #[arg(long, value_enum)]
    pub status: RepairStatus,
    /// The versions, e.g. 20250114093012.
    #[arg(required = true, value_name = "VERSION")]
    pub versions: Vec<i64>,
    /// Confirm the repair without a prompt (for CI): the environment's name. Needed
    /// on every target but the local development database when there is no terminal.
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
}

#[derive(Debug, Args)]
pub struct DbBaseline {
    /// The newest migration the database already has, e.g. 20250224113540.
    pub version: i64,
    /// Confirm without a prompt (for CI): the environment's name. Needed on every
    /// target but the local development database when there is no terminal.
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
}

#[derive(Debug, Args)]
pub struct DbGen {
    #[command(subcommand)]
    pub command: GenCommand,
}

#[derive(Debug, Subcommand)]
pub enum GenCommand {
    /// Types of the app's tables, views, enums and functions.
    ///
    /// Read from the catalogs of the migrations replayed into a shadow database on the
    /// local development server (or of --from ENV|URL). `--lang rust`: a module per
    /// schema with an enum per enum type (postgres-types derives) and a struct per
    /// table and view with `TryFrom<&tokio_postgres::Row>`. `--lang typescript`: the
    /// `Database` type in the shape of the Supabase CLI's `gen types typescript`
    /// (Tables with Row/Insert/Update/Relationships, Views, Functions, Enums).
    Types(GenTypes),
}

/// The language of `db gen types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GenLang {
    Rust,
    Typescript,
}

#[derive(Debug, Args)]
pub struct GenTypes {
    /// Which language.
    #[arg(long, value_enum)]
    pub lang: GenLang,
    /// Where the schema comes from: `migrations` (replayed), an environment or a URL
    /// without a password [default: migrations].
    #[arg(long, value_name = "SIDE")]
    pub from: Option<String>,
    /// The schemas (repeatable) [default: the app's schemas of plover.toml].
    #[arg(long, value_name = "SCHEMA")]
    pub schema: Vec<String>,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DbSquash {
    /// The newest migration to squash, e.g. 20250224113540 (the baseline keeps its version).
    #[arg(long, value_name = "VERSION")]
    pub to: i64,
    /// Rewrite the history of this environment (or URL without a password); repeatable.
    #[arg(long, value_name = "ENV")]
    pub on: Vec<String>,
    /// Squash even though the squashed files write rows (the baseline will not).
    #[arg(long)]
    pub without_data: bool,
    /// Write nothing: show the baseline and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm without a prompt (for CI): an --on environment's name; repeatable.
    #[arg(long, value_name = "NAME")]
    pub confirm: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DbDown {
    /// Undo the N newest applied migrations (default: 1).
    #[arg(long, value_name = "N", conflicts_with = "to")]
    pub last: Option<usize>,
    /// Undo every applied migration newer than VERSION (it stays applied; 0 undoes all).
    #[arg(long, value_name = "VERSION")]
    pub to: Option<i64>,
    /// Show what would be undone and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Touch no environment: check every down file in a shadow database on the local
    /// development server (each run right after its migration, the app's schemas
    /// compared with those from before it, the migration applied again); exit 2 on a
    /// down file that fails, leaves a difference, or after which its migration does not
    /// apply again.
    #[arg(long, conflicts_with_all = ["last", "to", "dry_run", "confirm"])]
    pub check: bool,
    /// Confirm without a prompt (for CI): the environment's name. Needed on every
    /// target but the local development database when there is no terminal.
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AdoptFrom {
    /// The Supabase CLI's supabase_migrations.schema_migrations.
    Supabase,
    /// sqlx's _sqlx_migrations.
    Sqlx,
    /// refinery's refinery_schema_history.
    Refinery,
}

#[derive(Debug, Args)]
pub struct DbAdopt {
    /// Whose history to take over.
    #[arg(long, value_enum)]
    pub from: AdoptFrom,
    /// Confirm without a prompt (for CI): the environment's name. Needed on every
    /// target but the local development database when there is no terminal.
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
}
