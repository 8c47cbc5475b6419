//! Where test databases live: one [`Provider`] trait, three providers (native server
//! binaries, Docker through testcontainers, an existing server by URL), and the
//! choice between them.

use std::future::Future;
use std::str::FromStr;

use super::TestingError;
use super::native::{self, NativeServer};

/// A running PostgreSQL on which test databases are created, as a superuser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: Option<String>,
    pub(crate) provider: &'static str,
}

impl Server {
    /// A connection string for `database` on this server (it holds the password:
    /// show [`Server::conninfo`]'s `redacted()` instead of printing it).
    pub fn url(&self, database: &str) -> String {
        self.conninfo(database).to_url()
    }

    /// `database` on this server, parsed: the one source of its URL, its redacted
    /// display and a child tool's libpq variables.
    pub fn conninfo(&self, database: &str) -> crate::ConnInfo {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(database);
        if let Some(password) = &self.password {
            config.password(password);
        }
        crate::ConnInfo::from_config(config)
    }

    /// Which provider runs it: `native`, `docker` or `url`.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Something that can start (or find) a server for test databases.
pub trait Provider {
    /// The provider's name, as `PLOVER_TEST_PROVIDER` spells it.
    fn name(&self) -> &'static str;

    /// The server: started if needed, shared by every test process of the machine
    /// (or workspace), health-checked and restarted if it died.
    fn server(&self) -> impl Future<Output = Result<Server, TestingError>> + Send;

    /// Stops the shared server if this provider started one; whether it did.
    fn stop(&self) -> Result<bool, TestingError>;
}

/// System server binaries (`initdb`, `pg_ctl`): see [`NativeServer`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Native;

impl Provider for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    async fn server(&self) -> Result<Server, TestingError> {
        let s = NativeServer::shared().await?;
        Ok(Server {
            host: "127.0.0.1".into(),
            port: s.port(),
            user: "postgres".into(),
            password: None,
            provider: "native",
        })
    }

    fn stop(&self) -> Result<bool, TestingError> {
        native::stop_shared()
    }
}

/// An existing server (`PLOVER_TEST_DATABASE_URL`); databases are created on it, the
/// server itself is never started or stopped.
#[derive(Clone, Debug)]
pub struct Url {
    url: String,
}

impl Url {
    /// A provider for the server of `url` (its database name is ignored).
    pub fn new(url: impl Into<String>) -> Url {
        Url { url: url.into() }
    }
}

impl Provider for Url {
    fn name(&self) -> &'static str {
        "url"
    }

    async fn server(&self) -> Result<Server, TestingError> {
        let config =
            tokio_postgres::Config::from_str(&self.url).map_err(|e| TestingError::BadUrl {
                url: crate::redact(&self.url),
                reason: e.to_string(),
            })?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        Ok(Server {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            user: config.get_user().unwrap_or("postgres").to_owned(),
            password: config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            provider: "url",
        })
    }

    fn stop(&self) -> Result<bool, TestingError> {
        Ok(false)
    }
}

/// Any of the providers, as [`choose`] picks one.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyProvider {
    Native(Native),
    Url(Url),
    #[cfg(feature = "docker")]
    Docker(super::docker::Docker),
}

impl Provider for AnyProvider {
    fn name(&self) -> &'static str {
        match self {
            AnyProvider::Native(p) => p.name(),
            AnyProvider::Url(p) => p.name(),
            #[cfg(feature = "docker")]
            AnyProvider::Docker(p) => p.name(),
        }
    }

    async fn server(&self) -> Result<Server, TestingError> {
        match self {
            AnyProvider::Native(p) => p.server().await,
            AnyProvider::Url(p) => p.server().await,
            #[cfg(feature = "docker")]
            AnyProvider::Docker(p) => p.server().await,
        }
    }

    fn stop(&self) -> Result<bool, TestingError> {
        match self {
            AnyProvider::Native(p) => p.stop(),
            AnyProvider::Url(p) => p.stop(),
            #[cfg(feature = "docker")]
            AnyProvider::Docker(p) => p.stop(),
        }
    }
}

/// Picks the provider: `PLOVER_TEST_PROVIDER` (`native`, `docker`, `url`) if set;
/// else `url` if `PLOVER_TEST_DATABASE_URL` is set; else native if server binaries
/// are found; else Docker if an engine answers; else an error saying how to get
/// either.
pub fn choose() -> Result<AnyProvider, TestingError> {
    let url = std::env::var("PLOVER_TEST_DATABASE_URL").ok();
    match std::env::var("PLOVER_TEST_PROVIDER").ok().as_deref() {
        Some("native") => return Ok(AnyProvider::Native(Native)),
        Some("url") => {
            return url
                .map(|u| AnyProvider::Url(Url::new(u)))
                .ok_or(TestingError::NoProvider {
                    reason: "PLOVER_TEST_PROVIDER=url needs PLOVER_TEST_DATABASE_URL".into(),
                });
        }
        #[cfg(feature = "docker")]
        Some("docker") => return Ok(AnyProvider::Docker(super::docker::Docker::from_env())),
        Some(other) => {
            return Err(TestingError::NoProvider {
                reason: format!(
                    "PLOVER_TEST_PROVIDER={other} is not one of native, url{}",
                    if cfg!(feature = "docker") {
                        ", docker"
                    } else {
                        " (docker needs plover's `docker` feature)"
                    }
                ),
            });
        }
        None => {}
    }
    if let Some(u) = url {
        return Ok(AnyProvider::Url(Url::new(u)));
    }
    let native = native::find_binaries();
    if native.is_ok() {
        return Ok(AnyProvider::Native(Native));
    }
    #[cfg(feature = "docker")]
    if super::docker::engine_answers() {
        return Ok(AnyProvider::Docker(super::docker::Docker::from_env()));
    }
    Err(TestingError::NoProvider {
        reason: format!(
            "{}; or install Docker (and enable plover's `docker` feature), or set PLOVER_TEST_DATABASE_URL to a server the tests may create databases on",
            native.err().map(|e| e.to_string()).unwrap_or_default()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_credentials_and_names() {
        let s = Server {
            host: "127.0.0.1".into(),
            port: 5432,
            user: "post gres".into(),
            password: Some("p@ss:w/rd".into()),
            provider: "url",
        };
        assert_eq!(
            s.url("db"),
            "postgres://post%20gres:p%40ss%3Aw%2Frd@127.0.0.1:5432/db"
        );
    }
}
