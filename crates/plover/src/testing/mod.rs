//! Disposable Postgres for test suites: a shared native server and a fresh database
//! per test, with the Supabase baseline.
//!
//! The server is started once per state directory (by default under the workspace's
//! `target/`) and shared by every test process; a file lock serialises its start.
//! Each [`TestDatabase`] is created empty and dropped with its handle.
//!
//! Architecture invariant: this module only provides servers and databases; it
//! migrates through [`Migrator`](crate::Migrator) like everyone else.

#[cfg(feature = "docker")]
pub mod docker;
mod native;
mod parked;
mod pool;
mod provider;
mod roles;

use tokio_postgres::Client;

pub use native::{NativeServer, find_binaries, persistent_data_dir, state_dir, stop_shared};
pub use pool::{Claimed, Pool, SHIM_VERSION, Shim, clean_up, left_behind, template_key};
pub use provider::{AnyProvider, Native, Provider, Server, Url, choose};
pub use roles::User;

/// The Supabase baseline for plain Postgres (`supabase_baseline.sql`): what a local
/// Supabase project's database has before the app's migrations. Supabase's roles and
/// memberships; the schemas `auth`, `storage`, `realtime`, `graphql_public`,
/// `supabase_functions` and `extensions` (pgcrypto, uuid-ossp, pgjwt's functions);
/// the publication `supabase_realtime`; the default privileges of the API roles; the
/// search path `"$user", public, extensions` (set on the database and on the session
/// applying it); pg_graphql, supabase_vault and pg_net when the server has them.
/// Idempotent, and it changes nothing on a real Supabase database. Its version is
/// [`SHIM_VERSION`].
pub const SUPABASE_SHIM: &str = include_str!("supabase_baseline.sql");

/// Errors of the testing providers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestingError {
    /// No server binaries were found.
    #[error(
        "no PostgreSQL server binaries found (looked in: {searched}); install them (Debian/Ubuntu: `apt-get install postgresql`) or set PLOVER_PG_BIN to the directory holding initdb and pg_ctl"
    )]
    NoBinaries { searched: String },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A server command exited with an error.
    #[error("{what} failed ({status}): {output}")]
    Command {
        what: String,
        status: String,
        output: String,
    },
    /// A database call failed.
    #[error(transparent)]
    Database(#[from] crate::Error),
    /// No provider can be used.
    #[error("no PostgreSQL for tests: {reason}")]
    NoProvider { reason: String },
    /// `PLOVER_TEST_DATABASE_URL` does not parse.
    #[error("cannot use {url} as a test server: {reason}")]
    BadUrl { url: String, reason: String },
    /// The Docker provider failed.
    #[error("docker: {0}")]
    Docker(String),
}

impl TestingError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestingError {
        let what = what.into();
        move |source| TestingError::Io { what, source }
    }
}

/// A database of its own for one test, on the shared server (or a scratch database
/// on a server of the caller's, [`TestDatabase::create_named`]); dropped with the
/// handle, or by [`TestDatabase::close`], its connections terminated.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
    claimed: Option<Claimed>,
    /// The open connection that warmed a held clone, handed out by the first
    /// [`TestDatabase::client`].
    warm: std::sync::Mutex<Option<parked::Parked>>,
    /// [`TestDatabase::close`] dropped it already.
    closed: bool,
}

/// The provider [`use_provider`] set for this process, if any.
static CHOSEN: std::sync::OnceLock<AnyProvider> = std::sync::OnceLock::new();

/// Makes `provider` this process's provider instead of [`choose`]'s pick, for a
/// program that decides itself (e.g. `cargo xtask db test --docker`). Only before the
/// first [`server`] call; a second call returns the provider it was given back.
pub fn use_provider(provider: AnyProvider) -> Result<(), AnyProvider> {
    CHOSEN.set(provider)
}

/// The server of this process's provider ([`use_provider`]'s, else [`choose`]'s),
/// started or found once.
pub async fn server() -> Result<Server, TestingError> {
    static SERVER: tokio::sync::OnceCell<Server> = tokio::sync::OnceCell::const_new();
    SERVER
        .get_or_try_init(|| async {
            match CHOSEN.get() {
                Some(provider) => provider.server().await,
                None => choose()?.server().await,
            }
        })
        .await
        .cloned()
}

/// A freshly migrated database (with the Supabase baseline) for one test:
/// `let db = plover::testing::fresh(&MIGRATIONS).await?;`
///
/// The set is applied once into a template; each call hands out a clone made ready in
/// the background (see [`TestDatabase::fresh`]). The database is dropped with the
/// handle.
pub async fn fresh(migrations: &crate::Embedded) -> Result<TestDatabase, TestingError> {
    TestDatabase::fresh(&crate::Migrator::new(migrations.load()?), Shim::Apply).await
}

impl TestDatabase {
    /// Creates an empty database on the test server (started if needed).
    pub async fn create() -> Result<TestDatabase, TestingError> {
        let server = server().await?;
        let admin_url = server.url("postgres");
        let admin = crate::connect(&admin_url).await?;
        pool::clean_up_once(&admin).await?;
        let name = pool::test_database_name();
        admin
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .await
            .map_err(crate::Error::db("creating a test database"))?;
        Ok(TestDatabase {
            url: server.url(&name),
            name,
            admin_url,
            claimed: None,
            warm: Default::default(),
            closed: false,
        })
    }

    /// Creates the empty database `name` on `server`, a scratch database on a server
    /// of the caller's (such as `cargo xtask db pull`'s shadow database on the local
    /// development server); one of that name left by a crashed run is dropped first.
    /// The test server's cleanup never touches it: it goes with the handle.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), plover::testing::TestingError> {
    /// use plover::testing::{Provider, TestDatabase, Url};
    ///
    /// let server = Url::new("postgres://postgres@127.0.0.1:54322/postgres").server().await?;
    /// let shadow = TestDatabase::create_named(&server, "my_shadow").await?;
    /// let client = shadow.client().await?;
    /// // ...
    /// shadow.close().await?; // or let it drop
    /// # Ok(()) }
    /// ```
    pub async fn create_named(server: &Server, name: &str) -> Result<TestDatabase, TestingError> {
        let admin_url = server.url("postgres");
        let admin = crate::connect(&admin_url).await?;
        pool::drop_database(&admin, name, "dropping an old database of the same name").await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(name)))
            .await
            .map_err(crate::Error::db("creating a scratch database"))?;
        Ok(TestDatabase {
            url: server.url(name),
            name: name.to_owned(),
            admin_url,
            claimed: None,
            warm: Default::default(),
            closed: false,
        })
    }

    /// Creates an empty database with the Supabase baseline ([`SUPABASE_SHIM`]) applied.
    pub async fn with_supabase_shim() -> Result<TestDatabase, TestingError> {
        let db = Self::create().await?;
        let client = db.client().await?;
        apply_supabase_shim(&client).await?;
        Ok(db)
    }

    /// A database migrated by `migrator` (its set and app name), with or without the
    /// Supabase baseline: a clone of the set's template (with the template's database
    /// settings). Once this process has taken [`Pool::HELD_AFTER`] of the set, it is
    /// one the process made ahead for itself when one is ready ([`Claimed::Held`]:
    /// handing it out costs one round trip, and its first
    /// [`client`](TestDatabase::client) is the connection that warmed it); else one
    /// from the pool shared by every process, when one is ready; else a clone made now.
    pub async fn fresh(
        migrator: &crate::Migrator,
        shim: Shim,
    ) -> Result<TestDatabase, TestingError> {
        let server = server().await?;
        let template = pool::known_template(&server, migrator, shim).await?;
        let handed = pool::claim(&server, &template).await?;
        Ok(TestDatabase {
            url: server.url(&handed.name),
            name: handed.name,
            admin_url: server.url("postgres"),
            claimed: Some(handed.claimed),
            warm: std::sync::Mutex::new(handed.warm),
            closed: false,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection string for it (as the server's superuser).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether it was made ahead for this process, came from the shared pool or was
    /// cloned on the spot (`None` for an empty database).
    pub fn claimed(&self) -> Option<Claimed> {
        self.claimed
    }

    /// A new connection to it, as the superuser (RLS does not apply), driven by the
    /// current runtime. The first one of a held clone ([`Claimed::Held`]) is already
    /// open: the connection that warmed it, opened over a socket of plover's, so its
    /// `cancel_token()` cannot cancel (take a second client for a query to cancel).
    pub async fn client(&self) -> Result<Client, TestingError> {
        let warm = self.warm.lock().ok().and_then(|mut w| w.take());
        match warm {
            Some(warm) => Ok(warm.drive()),
            None => Ok(crate::connect(&self.url).await?),
        }
    }

    /// Drops it now, its connections terminated, and says whether that failed
    /// (dropping the handle only prints a warning). Either way it is not tried again.
    pub async fn close(mut self) -> Result<(), TestingError> {
        self.closed = true;
        self.drop_warm();
        drop_now(&self.admin_url, &self.name).await
    }

    /// Closes the warm connection no test asked for, before the database is dropped.
    fn drop_warm(&mut self) {
        if let Ok(mut warm) = self.warm.lock() {
            warm.take();
        }
    }
}

async fn drop_now(admin_url: &str, name: &str) -> Result<(), TestingError> {
    let admin = crate::connect(admin_url).await?;
    pool::drop_database(&admin, name, "dropping a test database").await
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        self.drop_warm();
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside or outside a runtime; a thread of its own works in both.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(drop_now(&admin_url, &name)).ok()
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("plover: could not drop test database {}", self.name);
        }
    }
}

/// Applies the Supabase baseline ([`SUPABASE_SHIM`]; idempotent, a no-op on a real
/// Supabase database) in one transaction. The session's search path becomes Supabase's
/// when it was the server's default.
pub async fn apply_supabase_shim(client: &Client) -> Result<(), TestingError> {
    client
        .batch_execute(SUPABASE_SHIM)
        .await
        .map_err(crate::Error::db("applying the Supabase baseline"))?;
    Ok(())
}

/// Quotes an identifier for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests;
