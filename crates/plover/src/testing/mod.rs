//! Disposable Postgres for test suites: a shared native server and a fresh database
//! per test, with the Supabase shim.
//!
//! The server is started once per state directory (by default under the workspace's
//! `target/`) and shared by every test process; a file lock serialises its start.
//! Each [`TestDatabase`] is created empty and dropped with its handle.
//!
//! Architecture invariant: this module only provides servers and databases; it
//! migrates through [`Migrator`](crate::Migrator) like everyone else.

mod native;

use std::sync::atomic::{AtomicU64, Ordering};

use tokio_postgres::Client;

pub use native::{NativeServer, find_binaries, state_dir, stop_shared};

/// The Supabase shim for plain Postgres: roles, `auth`/`storage`/`extensions`
/// schemas, `auth.users` and `auth.uid()`/`role()`/`jwt()`/`email()`.
pub const SUPABASE_SHIM: &str = include_str!("supabase_shim.sql");

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
}

impl TestingError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestingError {
        let what = what.into();
        move |source| TestingError::Io { what, source }
    }
}

/// A database of its own for one test, on the shared server; dropped with the handle.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestDatabase {
    /// Creates an empty database on the shared native server (started if needed).
    pub async fn create() -> Result<TestDatabase, TestingError> {
        let server = NativeServer::shared().await?;
        Self::create_on(&server).await
    }

    /// Creates an empty database with the Supabase shim applied.
    pub async fn with_supabase_shim() -> Result<TestDatabase, TestingError> {
        let db = Self::create().await?;
        let client = db.client().await?;
        apply_supabase_shim(&client).await?;
        Ok(db)
    }

    async fn create_on(server: &NativeServer) -> Result<TestDatabase, TestingError> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!("plover_test_{}_{n}_{nanos:x}", std::process::id());
        let admin_url = server.url("postgres");
        let admin = crate::connect(&admin_url).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .await
            .map_err(crate::Error::db("creating a test database"))?;
        Ok(TestDatabase {
            url: server.url(&name),
            name,
            admin_url,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection string for it (superuser `postgres`, no password).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new connection to it.
    pub async fn client(&self) -> Result<Client, TestingError> {
        Ok(crate::connect(&self.url).await?)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        );
        // Drop may run inside or outside a runtime; a thread of its own works in both.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let client = crate::connect(&admin_url).await.ok()?;
                client.batch_execute(&sql).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("plover: could not drop test database {}", self.name);
        }
    }
}

/// Applies the Supabase shim (idempotent).
pub async fn apply_supabase_shim(client: &Client) -> Result<(), TestingError> {
    client
        .batch_execute(SUPABASE_SHIM)
        .await
        .map_err(crate::Error::db("applying the Supabase shim"))?;
    Ok(())
}

/// Quotes an identifier for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
