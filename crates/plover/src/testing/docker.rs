//! The Docker provider: one PostgreSQL container per state directory, started through
//! testcontainers, shared by every test process and kept for later runs until
//! [`Docker::stop`] (or `cargo xtask test-server stop`) removes it.
//!
//! The container is found again through a state file (`docker.state`, written under a
//! file lock) and health-checked by a real connection that must see the server's own
//! `cluster_name`, so a recycled port never passes for it. A dead or differently
//! configured container is replaced.
//!
//! Two network modes: `mapped` (the default: the image's port 5432 published on a
//! random host port, with a random password since the port may be reachable beyond
//! loopback) and `host` (host networking, Postgres on 127.0.0.1 at a port chosen
//! here; for machines without bridge networking).
//!
//! How a PostgreSQL container starts has one owner here, [`ContainerSpec`]: the
//! command (for an image without an entrypoint, a script that runs `initdb` once,
//! then `postgres`), the environment, the network, the port, the password and the
//! wait until the server answers. The provider's shared test server, `cargo xtask db
//! start --docker` (a persistent named container, [`ContainerSpec::start_named`]) and
//! `cargo xtask bench fresh` (a container per sample, [`ContainerSpec::launch`]) all
//! go through it.
//!
//! Must not: pull any image but the configured one, leave a container without the
//! `plover.test-server` label, or send a password in a command line.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use testcontainers::bollard;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use testcontainers::core::IntoContainerPort;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ContainerRequest, GenericImage, ImageExt, ReuseDirective};

use super::provider::{Provider, Server};
use super::{TestingError, state_dir};

/// The label every container of this provider carries (`docker ps -a --filter
/// label=plover.test-server` lists leftovers).
pub const LABEL: &str = "plover.test-server";
/// The label naming the state directory a container belongs to (a hash of its path).
const DIR_LABEL: &str = "plover.state-dir";
const STATE_FILE: &str = "docker.state";
const LOCK_FILE: &str = "docker.lock";
/// How long a new container may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a health check of a running server may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the engine may take to answer a ping.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a starting server is asked whether it answers.
const READY_POLL: Duration = Duration::from_millis(20);
/// The shared memory a container gets (parallel queries need more than Docker's 64 MB).
const SHM_BYTES: u64 = 256 * 1024 * 1024;
/// The port the server listens on inside a container whose port is published.
const CONTAINER_PORT: u16 = 5432;
/// Settings for a disposable server: durability off, room for parallel tests.
pub const DISPOSABLE_SETTINGS: [&str; 4] = [
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=300",
];

/// How a PostgreSQL container starts: image, network, port, password, settings.
///
/// The password travels to the container in its environment (`PLOVER_PASSWORD` for an
/// image without an entrypoint, `POSTGRES_PASSWORD` for the official image's), never
/// in a command line. The superuser is `postgres`.
///
/// ```no_run
/// # async fn f() -> Result<(), plover::testing::TestingError> {
/// use plover::testing::docker::{ContainerSpec, Network};
///
/// let spec = ContainerSpec {
///     network: Network::Host,
///     bare: true,
///     port: 40123,
///     ..ContainerSpec::new("plover-postgres", "17-0123456789ab")
/// };
/// let launched = spec.launch(spec.request(), std::time::Duration::from_secs(60)).await?;
/// let client = plover::connect(&launched.url("postgres")).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Image name.
    pub image: String,
    /// Image tag.
    pub tag: String,
    /// How the server is reached.
    pub network: Network,
    /// The image has no entrypoint (such as an image imported from a Debian root
    /// filesystem, like `cargo xtask db image`'s): the container runs `initdb` (once,
    /// into its own `/tmp/pgdata`), then `postgres`.
    pub bare: bool,
    /// The port on the host. With [`Network::Host`] the server listens on
    /// 127.0.0.1 there; with [`Network::Mapped`] the container's port 5432 is
    /// published on 127.0.0.1 there, or on a random port of every interface when 0.
    pub port: u16,
    /// Server settings, `name=value`, passed as `-c` options.
    pub settings: Vec<String>,
    /// The `postgres` user's password; `None` for trust authentication (only
    /// sensible when the server listens on loopback).
    pub password: Option<String>,
}

impl ContainerSpec {
    /// `image:tag` with a published random port, no settings, no password.
    pub fn new(image: impl Into<String>, tag: impl Into<String>) -> ContainerSpec {
        ContainerSpec {
            image: image.into(),
            tag: tag.into(),
            network: Network::Mapped,
            bare: false,
            port: 0,
            settings: Vec::new(),
            password: None,
        }
    }

    /// `image:tag`.
    pub fn descriptor(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }

    /// A Supabase image: it keeps its own configuration file.
    pub fn is_supabase(&self) -> bool {
        self.image.contains("supabase")
    }

    /// Whether the server should get a password: when its port is published (it may be
    /// reachable beyond loopback), or for a Supabase image with its entrypoint (its
    /// setup scripts expect one).
    pub fn needs_password(&self) -> bool {
        self.network == Network::Mapped || (self.is_supabase() && !self.bare)
    }

    /// The port `postgres` listens on inside the container.
    fn server_port(&self) -> u16 {
        match self.network {
            Network::Host => self.port,
            Network::Mapped => CONTAINER_PORT,
        }
    }

    /// The container's command.
    pub fn command(&self) -> Vec<String> {
        let listen = match self.network {
            Network::Host => "127.0.0.1",
            Network::Mapped => "*",
        };
        let port = self.server_port();
        if self.bare {
            // The data directory sits in the container's /tmp: it lives as long as the
            // container, and a restarted container keeps it (initdb runs once). The
            // password comes from the environment, never argv.
            let init = if self.password.is_some() {
                "printf %s \"$PLOVER_PASSWORD\" > /tmp/pw && \
                 initdb -D /tmp/pgdata -U postgres -E UTF8 --locale=C --no-sync --pwfile=/tmp/pw \
                 --auth-local=trust --auth-host=scram-sha-256 >/dev/null && rm -f /tmp/pw && \
                 echo 'host all all all scram-sha-256' >> /tmp/pgdata/pg_hba.conf"
            } else {
                "initdb -D /tmp/pgdata -U postgres -E UTF8 --locale=C --no-sync -A trust >/dev/null"
            };
            let options: String = self.settings.iter().map(|s| format!(" -c {s}")).collect();
            let script = format!(
                "if [ ! -s /tmp/pgdata/PG_VERSION ]; then {init}; fi && \
                 exec postgres -D /tmp/pgdata -k /tmp -p {port} -c listen_addresses='{listen}'{options}"
            );
            return vec!["sh".into(), "-c".into(), script];
        }
        let mut cmd = vec!["postgres".to_string()];
        let mut settings = Vec::new();
        if self.is_supabase() {
            // Supabase's images load their extensions through this file.
            settings.push("config_file=/etc/postgresql/postgresql.conf".to_string());
        }
        settings.extend(self.settings.iter().cloned());
        if self.network == Network::Host {
            cmd.extend(["-p".into(), port.to_string()]);
            settings.push(format!("listen_addresses={listen}"));
        }
        for s in settings {
            cmd.extend(["-c".into(), s]);
        }
        cmd
    }

    /// The container's environment (values go to the engine, never into argv).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match (self.bare, &self.password) {
            (true, Some(p)) => vec![("PLOVER_PASSWORD", p.clone())],
            (true, None) => vec![],
            (false, Some(p)) => vec![("POSTGRES_PASSWORD", p.clone())],
            (false, None) => vec![("POSTGRES_HOST_AUTH_METHOD", "trust".into())],
        }
    }

    /// The testcontainers request: command, environment, network, port, shared
    /// memory. Callers add labels, a name, a reuse directive.
    pub fn request(&self) -> ContainerRequest<GenericImage> {
        let mut image = GenericImage::new(self.image.clone(), self.tag.clone());
        if self.network == Network::Mapped && self.port == 0 {
            image = image.with_exposed_port(CONTAINER_PORT.tcp());
        }
        let mut request = image.with_cmd(self.command()).with_shm_size(SHM_BYTES);
        for (name, value) in self.env() {
            request = request.with_env_var(name, value);
        }
        match self.network {
            Network::Host => request.with_network("host"),
            Network::Mapped if self.port == 0 => request,
            Network::Mapped => request
                .with_mapped_port(self.port, CONTAINER_PORT.tcp())
                // Published on loopback only.
                .with_host_config_modifier(|config| {
                    for bindings in config.port_bindings.iter_mut().flat_map(|b| b.values_mut()) {
                        for binding in bindings.iter_mut().flatten() {
                            binding.host_ip = Some("127.0.0.1".into());
                        }
                    }
                }),
        }
    }

    /// Starts `request` (made from [`ContainerSpec::request`]) and waits until its
    /// server accepts a connection as `postgres` and answers a query, at most
    /// `timeout`. A container that exits fails at once, with its last output. The
    /// container is removed when the returned handle drops, unless the request says
    /// otherwise.
    pub async fn launch(
        &self,
        request: ContainerRequest<GenericImage>,
        timeout: Duration,
    ) -> Result<Launched, TestingError> {
        let began = Instant::now();
        if self.network == Network::Mapped {
            ports_can_be_published(&engine().await?).await?;
        }
        let container = request
            .with_startup_timeout(timeout)
            .start()
            .await
            .map_err(|e| TestingError::Docker(self.start_error(&e.to_string())))?;
        let (host, port) = self.address(&container).await?;
        let launched = Launched {
            container,
            host,
            port,
            password: self.password.clone(),
        };
        let left = timeout.saturating_sub(began.elapsed());
        launched.wait_ready(left).await.map_err(|reason| {
            TestingError::Docker(format!(
                "the container of {} did not accept connections: {reason}{}",
                self.descriptor(),
                if self.bare {
                    ""
                } else {
                    "; for an image without an entrypoint set PLOVER_DOCKER_BARE=1"
                }
            ))
        })?;
        Ok(launched)
    }

    /// Starts the container called `name` with this spec: found running, started
    /// again when stopped (a bare image's data directory survives), else created
    /// with `labels` and kept when this returns. Does not wait for the server.
    pub fn start_named(&self, name: &str, labels: &[(&str, &str)]) -> Result<Named, TestingError> {
        let spec = self.clone();
        let name = name.to_owned();
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        blocking(async move {
            let engine = engine().await?;
            match engine.inspect_container(&name, None).await {
                Ok(c) if c.state.as_ref().and_then(|s| s.running) == Some(true) => {
                    return Ok(Named::Running);
                }
                Ok(_) => {
                    engine.start_container(&name, None).await.map_err(|e| {
                        TestingError::Docker(format!("starting container {name}: {e}"))
                    })?;
                    return Ok(Named::Restarted);
                }
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(e) => {
                    return Err(TestingError::Docker(format!(
                        "inspecting container {name}: {e}"
                    )));
                }
            }
            if spec.network == Network::Mapped {
                ports_can_be_published(&engine).await?;
            }
            let mut request = spec
                .request()
                .with_container_name(name)
                // Kept when the handle drops: `cargo xtask db stop` stops or removes it.
                .with_reuse(ReuseDirective::Always);
            for (key, value) in labels {
                request = request.with_label(key, value);
            }
            request
                .start()
                .await
                .map_err(|e| TestingError::Docker(spec.start_error(&e.to_string())))?;
            Ok(Named::Created)
        })
    }

    /// Where the started container's server is reached.
    async fn address(
        &self,
        container: &ContainerAsync<GenericImage>,
    ) -> Result<(String, u16), TestingError> {
        if self.network == Network::Host {
            return Ok(("127.0.0.1".into(), self.port));
        }
        let host = container
            .get_host()
            .await
            .map_err(|e| TestingError::Docker(format!("reading the container's host: {e}")))?
            .to_string();
        let port = container
            .get_host_port_ipv4(CONTAINER_PORT)
            .await
            .map_err(|e| {
                TestingError::Docker(format!(
                    "reading the container's mapped port: {e}; without bridge networking set PLOVER_DOCKER_NETWORK=host"
                ))
            })?;
        let host = if host == "localhost" {
            "127.0.0.1".into()
        } else {
            host
        };
        Ok((host, port))
    }

    fn start_error(&self, e: &str) -> String {
        format!(
            "could not start a container of {}: {e}; check that the image exists \
             (`docker image inspect {0}`; without a registry build the local one with \
             `cargo xtask db image`) or set PLOVER_DOCKER_IMAGE and PLOVER_DOCKER_TAG{}",
            self.descriptor(),
            if self.network == Network::Mapped {
                "; without bridge networking set PLOVER_DOCKER_NETWORK=host"
            } else {
                ""
            }
        )
    }
}

/// What [`ContainerSpec::start_named`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Named {
    /// The container was running already.
    Running,
    /// The container existed, stopped, and was started again.
    Restarted,
    /// The container was created.
    Created,
}

/// A container started by [`ContainerSpec::launch`], its server answering.
pub struct Launched {
    /// The container (removed on drop unless its request said to keep it).
    pub container: ContainerAsync<GenericImage>,
    /// Where the server is reached.
    pub host: String,
    /// The server's port on `host`.
    pub port: u16,
    password: Option<String>,
}

impl std::fmt::Debug for Launched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launched")
            .field("id", &self.container.id())
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Launched {
    /// `postgres://postgres[:password]@host:port/database` (show it through
    /// [`crate::redact`]).
    pub fn url(&self, database: &str) -> String {
        let password = self
            .password
            .as_deref()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        format!(
            "postgres://postgres{password}@{}:{}/{database}",
            self.host, self.port
        )
    }

    /// The server's password, if it has one.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Polls until the server answers; fails early if the container exits.
    async fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match probe(
                &self.host,
                self.port,
                self.password.as_deref(),
                PROBE_TIMEOUT,
            )
            .await
            {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if !self.container.is_running().await.unwrap_or(false) {
                let logs = self.container.stderr_to_vec().await.unwrap_or_default();
                let logs = String::from_utf8_lossy(&logs);
                let tail: Vec<&str> = logs.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(format!(
                    "the container exited; its last output:\n{}",
                    tail.join("\n")
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!("after {} s: {last}", timeout.as_secs()));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }
}

/// Connects as `postgres` and reads the server's `cluster_name`.
async fn probe(
    host: &str,
    port: u16,
    password: Option<&str>,
    timeout: Duration,
) -> Result<String, String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(host)
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .connect_timeout(timeout);
    if let Some(p) = password {
        config.password(p);
    }
    let check = async {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        let connection = tokio::spawn(connection);
        let name: String = client
            .query_one("SELECT current_setting('cluster_name')", &[])
            .await
            .map_err(|e| e.to_string())?
            .get(0);
        drop(client);
        let _ = connection.await;
        Ok(name)
    };
    tokio::time::timeout(timeout, check)
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
}

/// A PostgreSQL container for tests: which image, and how it is reached.
///
/// ```no_run
/// # async fn f() -> Result<(), plover::testing::TestingError> {
/// use plover::testing::Provider;
/// use plover::testing::docker::Docker;
///
/// let server = Docker::from_env().server().await?; // started, or found running
/// let admin = plover::connect(&server.url("postgres")).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Docker {
    /// Image name: `postgres` (the official image), a Supabase image (its own
    /// configuration is kept; the shim skips itself there), or a local image.
    pub image: String,
    /// Image tag.
    pub tag: String,
    /// How the server is reached.
    pub network: Network,
    /// The image has no entrypoint (such as an image imported from a Debian root
    /// filesystem): the container runs `initdb`, then `postgres`, itself.
    pub bare: bool,
    /// Where the state file and lock live; `None` for [`state_dir`]. A directory of
    /// its own gives a container of its own.
    pub state_dir: Option<PathBuf>,
}

/// How a container's server is reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// Port 5432 published on a host port (bridge networking).
    #[default]
    Mapped,
    /// Host networking; the server listens on 127.0.0.1 at a port chosen by the caller.
    Host,
}

impl Network {
    fn as_str(self) -> &'static str {
        match self {
            Network::Mapped => "mapped",
            Network::Host => "host",
        }
    }
}

impl Docker {
    /// The official image `image:tag`, mapped port, default state directory.
    pub fn new(image: impl Into<String>, tag: impl Into<String>) -> Docker {
        Docker {
            image: image.into(),
            tag: tag.into(),
            network: Network::Mapped,
            bare: false,
            state_dir: None,
        }
    }

    /// From the environment: `PLOVER_DOCKER_IMAGE` (default `postgres`),
    /// `PLOVER_DOCKER_TAG` (default `17`), `PLOVER_DOCKER_NETWORK=host|mapped`
    /// (default `mapped`), `PLOVER_DOCKER_BARE=1` for an image without an entrypoint.
    /// The state directory is [`state_dir`] (`PLOVER_STATE_DIR` moves it). An
    /// unknown value is reported on stderr and the default used.
    pub fn from_env() -> Docker {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let network = match var("PLOVER_DOCKER_NETWORK").as_deref() {
            None | Some("mapped") => Network::Mapped,
            Some("host") => Network::Host,
            Some(other) => {
                warn(&format!(
                    "PLOVER_DOCKER_NETWORK={other} is neither `host` nor `mapped`; using mapped"
                ));
                Network::Mapped
            }
        };
        let bare = match var("PLOVER_DOCKER_BARE").as_deref() {
            None | Some("0" | "false" | "no") => false,
            Some("1" | "true" | "yes") => true,
            Some(other) => {
                warn(&format!(
                    "PLOVER_DOCKER_BARE={other} is not 1 or 0; treating the image as having an entrypoint"
                ));
                false
            }
        };
        Docker {
            image: var("PLOVER_DOCKER_IMAGE").unwrap_or_else(|| "postgres".into()),
            tag: var("PLOVER_DOCKER_TAG").unwrap_or_else(|| "17".into()),
            network,
            bare,
            state_dir: None,
        }
    }

    /// `image:tag`.
    pub fn descriptor(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }

    /// The spec of a new container of these settings, without port, password or
    /// settings yet.
    pub fn container_spec(&self) -> ContainerSpec {
        ContainerSpec {
            network: self.network,
            bare: self.bare,
            ..ContainerSpec::new(self.image.clone(), self.tag.clone())
        }
    }

    /// The ids of this state directory's containers (normally none or one), running
    /// or not.
    pub fn containers(&self) -> Result<Vec<String>, TestingError> {
        let label = format!("{DIR_LABEL}={}", dir_hash(&self.dir()));
        blocking(async move {
            let engine = engine().await?;
            list(&engine, &label).await
        })
    }

    fn dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(state_dir)
    }

    /// Everything a running container must match to be reused.
    fn fingerprint(&self) -> String {
        format!(
            "{} network={} bare={}",
            self.descriptor(),
            self.network.as_str(),
            self.bare
        )
    }

    /// A throwaway server's spec: disposable settings (and the cluster named after
    /// `token`), on `port` (host networking) or a random published port.
    fn spec(&self, port: u16, token: Option<&str>, password: Option<String>) -> ContainerSpec {
        let mut settings: Vec<String> = DISPOSABLE_SETTINGS.iter().map(|s| s.to_string()).collect();
        if let Some(token) = token {
            settings.push(format!("cluster_name=plover-{token}"));
        }
        ContainerSpec {
            port: if self.network == Network::Host {
                port
            } else {
                0
            },
            settings,
            password,
            ..self.container_spec()
        }
    }

    /// The spec of a new throwaway container of these settings: durability off
    /// ([`DISPOSABLE_SETTINGS`]); with host networking a free port of 127.0.0.1, else
    /// a random published port; a random password when it needs one.
    pub fn disposable_spec(&self) -> Result<ContainerSpec, TestingError> {
        self.disposable_named(None)
    }

    fn disposable_named(&self, token: Option<&str>) -> Result<ContainerSpec, TestingError> {
        let port = match self.network {
            Network::Host => super::native::free_port()?,
            Network::Mapped => 0,
        };
        let mut spec = self.spec(port, token, None);
        if spec.needs_password() {
            spec.password = Some(random_hex(16));
        }
        Ok(spec)
    }

    /// Finds the running container of the state directory or starts one, under the
    /// directory's lock.
    async fn shared(&self) -> Result<State, TestingError> {
        let dir = self.dir();
        let lock_dir = dir.clone();
        let _lock = tokio::task::spawn_blocking(move || lock(&lock_dir))
            .await
            .map_err(|e| TestingError::Io {
                what: "locking the docker state".into(),
                source: std::io::Error::other(e),
            })??;
        let previous = State::read(&dir);
        if let Some(state) = &previous
            && state.spec == self.fingerprint()
            && state.probe(PROBE_TIMEOUT).await.is_ok()
        {
            return Ok(state.clone());
        }
        let engine = engine().await?;
        if let Some(state) = &previous
            && state.spec == self.fingerprint()
            && is_running(&engine, &state.id).await
        {
            // Running but slow to answer (a busy machine): give it time before
            // replacing a server other processes may be using.
            if state.wait_ready(&engine, READY_TIMEOUT).await.is_ok() {
                return Ok(state.clone());
            }
        }
        let label = format!("{DIR_LABEL}={}", dir_hash(&dir));
        remove(&engine, &list(&engine, &label).await?).await?;
        let _ = fs::remove_file(dir.join(STATE_FILE));
        let mut attempt = 1;
        let state = loop {
            match self.start(&dir).await {
                Ok(state) => break state,
                Err(e) => {
                    // Nothing half-started stays behind.
                    if let Ok(ids) = list(&engine, &label).await {
                        let _ = remove(&engine, &ids).await;
                    }
                    // In host mode another process may take the free port first.
                    let port_taken = e.to_string().contains("Address already in use");
                    if !(self.network == Network::Host && port_taken && attempt < 3) {
                        return Err(e);
                    }
                    attempt += 1;
                }
            }
        };
        state.write(&dir)?;
        Ok(state)
    }

    async fn start(&self, dir: &Path) -> Result<State, TestingError> {
        let token = random_hex(8);
        let spec = self.disposable_named(Some(&token))?;
        let hash = dir_hash(dir);
        let request = spec
            .request()
            .with_container_name(format!("plover-test-{hash}"))
            .with_label(LABEL, "1")
            .with_label(DIR_LABEL, hash)
            .with_label("plover.token", token.clone())
            // Kept when the handle drops: later processes reuse it; stop() removes it.
            .with_reuse(ReuseDirective::Always);
        let began = Instant::now();
        let launched = spec.launch(request, READY_TIMEOUT).await?;
        let state = State {
            id: launched.container.id().to_owned(),
            host: launched.host.clone(),
            port: launched.port,
            password: spec.password.clone(),
            token,
            spec: self.fingerprint(),
        };
        // The server that answered is this container's (not another on a recycled port).
        state.probe(PROBE_TIMEOUT).await.map_err(|reason| {
            TestingError::Docker(format!(
                "the container of {} did not answer as itself: {reason}",
                self.descriptor()
            ))
        })?;
        tracing::debug!(
            id = %state.id,
            port = state.port,
            elapsed_ms = began.elapsed().as_millis() as u64,
            "docker test server started"
        );
        Ok(state)
    }
}

impl Provider for Docker {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn server(&self) -> Result<Server, TestingError> {
        let state = self.shared().await?;
        Ok(Server {
            host: state.host,
            port: state.port,
            user: "postgres".into(),
            password: state.password,
            provider: "docker",
        })
    }

    /// Removes the state directory's container(s) and state file; whether there was
    /// a container. Without a state file and without an engine there is nothing to do.
    fn stop(&self) -> Result<bool, TestingError> {
        let dir = self.dir();
        let _lock = lock(&dir)?;
        let state = State::read(&dir);
        let label = format!("{DIR_LABEL}={}", dir_hash(&dir));
        let removed = blocking(async move {
            let engine = match engine().await {
                Ok(engine) => engine,
                Err(_) if state.is_none() => return Ok(0),
                Err(e) => {
                    let reason = match e {
                        TestingError::Docker(m) => m,
                        other => other.to_string(),
                    };
                    return Err(TestingError::Docker(format!(
                        "could not remove container {}: {reason}",
                        state.map(|s| s.id).unwrap_or_default()
                    )));
                }
            };
            let ids = list(&engine, &label).await?;
            remove(&engine, &ids).await?;
            Ok(ids.len())
        });
        // Whatever happened, the state no longer describes a usable server.
        let _ = fs::remove_file(dir.join(STATE_FILE));
        Ok(removed? > 0)
    }
}

/// Stops the shared container of [`state_dir`] (whatever its image): what `cargo
/// xtask test-server stop` calls. Returns whether there was one.
pub fn stop_shared() -> Result<bool, TestingError> {
    Docker::from_env().stop()
}

/// Whether a Docker engine answers (a ping through the configured socket or
/// `DOCKER_HOST`), within a few seconds.
pub fn engine_answers() -> bool {
    check_engine().is_ok()
}

/// Like [`engine_answers`], with the reason and what to do when none answers.
pub fn check_engine() -> Result<(), TestingError> {
    blocking(async { engine().await.map(|_| ()) })
}

/// Removes every container carrying `label` (`key=value`), running or not, with its
/// anonymous volumes: what a program that launched containers of its own
/// ([`ContainerSpec::launch`] with a label of its own) sweeps on an error path.
/// Returns how many there were.
pub fn remove_labelled(label: &str) -> Result<usize, TestingError> {
    let label = label.to_owned();
    blocking(async move {
        let engine = engine().await?;
        let ids = list(&engine, &label).await?;
        remove(&engine, &ids).await?;
        Ok(ids.len())
    })
}

/// What a running container is, as the state file records it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    id: String,
    host: String,
    port: u16,
    password: Option<String>,
    token: String,
    spec: String,
}

impl State {
    fn read(dir: &Path) -> Option<State> {
        let text = fs::read_to_string(dir.join(STATE_FILE)).ok()?;
        let fields: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        Some(State {
            id: fields.get("id")?.to_string(),
            host: fields.get("host")?.to_string(),
            port: fields.get("port")?.parse().ok()?,
            password: fields
                .get("password")
                .filter(|p| !p.is_empty())
                .map(|p| p.to_string()),
            token: fields.get("token")?.to_string(),
            spec: fields.get("spec")?.to_string(),
        })
    }

    fn write(&self, dir: &Path) -> Result<(), TestingError> {
        let text = format!(
            "id={}\nhost={}\nport={}\npassword={}\ntoken={}\nspec={}\n",
            self.id,
            self.host,
            self.port,
            self.password.as_deref().unwrap_or(""),
            self.token,
            self.spec
        );
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        fs::write(&tmp, text).map_err(TestingError::io("writing the docker state file"))?;
        fs::rename(&tmp, dir.join(STATE_FILE))
            .map_err(TestingError::io("writing the docker state file"))
    }

    /// Connects and checks the server is this container's (its `cluster_name`).
    async fn probe(&self, timeout: Duration) -> Result<(), String> {
        let name = probe(&self.host, self.port, self.password.as_deref(), timeout).await?;
        if name == format!("plover-{}", self.token) {
            Ok(())
        } else {
            Err(format!(
                "port {} is served by another server ({name:?})",
                self.port
            ))
        }
    }

    /// Polls until the server answers; fails early if the container exits.
    async fn wait_ready(&self, engine: &bollard::Docker, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.probe(PROBE_TIMEOUT).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if !is_running(engine, &self.id).await {
                return Err("the container exited".into());
            }
            if Instant::now() >= deadline {
                return Err(format!("after {} s: {last}", timeout.as_secs()));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }
}

/// The engine, pinged: an error says how to get one.
/// A published port needs the engine's `bridge` network; an engine started with
/// `--bridge=none` has none, and the container's port could never be reached.
async fn ports_can_be_published(engine: &bollard::Docker) -> Result<(), TestingError> {
    match engine.inspect_network("bridge", None).await {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Err(TestingError::Docker(
            "this Docker engine has no `bridge` network (it was started with --bridge=none?), so a container's published port cannot be reached; set PLOVER_DOCKER_NETWORK=host to run the container on the host's network (listening on 127.0.0.1)".into(),
        )),
        _ => Ok(()),
    }
}

async fn engine() -> Result<bollard::Docker, TestingError> {
    let how = "start a Docker engine (e.g. `systemctl start docker`; on CI `.ci/docker-up`), \
               point DOCKER_HOST at one, or use PLOVER_TEST_PROVIDER=native";
    let engine = testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| TestingError::Docker(format!("no docker engine: {e}; {how}")))?;
    match tokio::time::timeout(ENGINE_TIMEOUT, engine.ping()).await {
        Ok(Ok(_)) => Ok(engine),
        Ok(Err(e)) => Err(TestingError::Docker(format!(
            "the docker engine does not answer: {e}; {how}"
        ))),
        Err(_) => Err(TestingError::Docker(format!(
            "the docker engine did not answer within {} s; {how}",
            ENGINE_TIMEOUT.as_secs()
        ))),
    }
}

/// Ids of the containers carrying `label` (`key=value`), running or not.
async fn list(engine: &bollard::Docker, label: &str) -> Result<Vec<String>, TestingError> {
    let filters = HashMap::from([("label", vec![label])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let containers = engine
        .list_containers(Some(options))
        .await
        .map_err(|e| TestingError::Docker(format!("listing containers labelled {label}: {e}")))?;
    Ok(containers.into_iter().filter_map(|c| c.id).collect())
}

/// Removes containers, with their anonymous volumes (the official image declares one).
async fn remove(engine: &bollard::Docker, ids: &[String]) -> Result<(), TestingError> {
    for id in ids {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match engine.remove_container(id, Some(options)).await {
            Ok(()) => {}
            // Already gone (removed by someone else meanwhile).
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => {
                return Err(TestingError::Docker(format!(
                    "removing container {id}: {e}; remove it with `docker rm -f -v {id}`"
                )));
            }
        }
    }
    Ok(())
}

async fn is_running(engine: &bollard::Docker, id: &str) -> bool {
    engine
        .inspect_container(id, None)
        .await
        .ok()
        .and_then(|c| c.state?.running)
        .unwrap_or(false)
}

/// Runs `f` to completion on a runtime of its own, on a thread of its own, so it
/// works inside and outside a caller's runtime.
fn blocking<T: Send + 'static>(
    f: impl Future<Output = Result<T, TestingError>> + Send + 'static,
) -> Result<T, TestingError> {
    let joined = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(TestingError::io("starting a runtime for docker"))?
            .block_on(f)
    })
    .join();
    joined.unwrap_or_else(|_| Err(TestingError::Docker("the docker call panicked".into())))
}

/// Takes the state directory's lock (released when the file closes).
fn lock(dir: &Path) -> Result<File, TestingError> {
    fs::create_dir_all(dir).map_err(TestingError::io(format!("creating {}", dir.display())))?;
    let file = File::create(dir.join(LOCK_FILE))
        .map_err(TestingError::io("creating the docker lock file"))?;
    file.lock()
        .map_err(TestingError::io("locking the docker lock file"))?;
    Ok(file)
}

fn dir_hash(dir: &Path) -> String {
    crate::source::Checksum::of(dir.as_os_str().as_encoded_bytes()).to_hex()[..12].to_owned()
}

/// `bytes` random bytes as hex, from the system's generator (or, lacking one, from
/// the time and process: unique, if not secret).
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let read = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if read.is_err() {
        let seed = format!(
            "{:?} {} {:?}",
            std::time::SystemTime::now(),
            std::process::id(),
            std::thread::current().id()
        );
        let sum = crate::source::Checksum::of(seed.as_bytes());
        buf = sum.0.iter().copied().cycle().take(bytes).collect();
    }
    hex::encode(buf)
}

fn warn(message: &str) {
    tracing::warn!("{message}");
    eprintln!("plover: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare_host() -> Docker {
        Docker {
            image: "plover-postgres".into(),
            tag: "15".into(),
            network: Network::Host,
            bare: true,
            state_dir: None,
        }
    }

    #[test]
    fn official_image_in_mapped_mode_gets_a_password_and_a_random_port() {
        let mut spec = Docker::new("postgres", "17").spec(40123, Some("t"), None);
        assert!(spec.needs_password());
        assert_eq!(spec.port, 0);
        spec.password = Some("pw".into());
        assert_eq!(
            spec.command().join(" "),
            "postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=300 -c cluster_name=plover-t"
        );
        assert_eq!(spec.env(), [("POSTGRES_PASSWORD", "pw".to_string())]);
    }

    #[test]
    fn host_mode_listens_on_loopback_at_the_chosen_port_with_trust() {
        let d = Docker {
            network: Network::Host,
            ..Docker::new("postgres", "17")
        };
        let spec = d.spec(40123, Some("t"), None);
        assert!(!spec.needs_password());
        let cmd = spec.command().join(" ");
        assert!(cmd.starts_with("postgres -p 40123 -c fsync=off"), "{cmd}");
        assert!(cmd.ends_with("-c listen_addresses=127.0.0.1"), "{cmd}");
        assert_eq!(
            spec.env(),
            [("POSTGRES_HOST_AUTH_METHOD", "trust".to_string())]
        );
    }

    #[test]
    fn bare_images_run_initdb_once_then_postgres_and_keep_passwords_out_of_argv() {
        let cmd = bare_host().spec(40123, Some("t"), None).command();
        assert_eq!(cmd[..2], ["sh", "-c"]);
        assert_eq!(
            cmd[2],
            "if [ ! -s /tmp/pgdata/PG_VERSION ]; then \
             initdb -D /tmp/pgdata -U postgres -E UTF8 --locale=C --no-sync -A trust >/dev/null; fi && \
             exec postgres -D /tmp/pgdata -k /tmp -p 40123 -c listen_addresses='127.0.0.1' \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=300 -c cluster_name=plover-t"
        );
        let mapped = ContainerSpec {
            network: Network::Mapped,
            port: 54322,
            password: Some("secret".into()),
            ..bare_host().container_spec()
        };
        let script = &mapped.command()[2];
        assert!(script.contains("\"$PLOVER_PASSWORD\""), "{script}");
        assert!(!script.contains("secret"), "{script}");
        assert!(
            script.contains("host all all all scram-sha-256"),
            "{script}"
        );
        assert!(
            script.contains("-p 5432 -c listen_addresses='*'"),
            "{script}"
        );
        assert_eq!(mapped.env(), [("PLOVER_PASSWORD", "secret".to_string())]);
    }

    #[test]
    fn supabase_images_keep_their_configuration_file() {
        let spec = Docker::new("supabase/postgres", "15.8.1.060").spec(0, Some("t"), None);
        assert!(spec.needs_password());
        let cmd = spec.command().join(" ");
        assert!(
            cmd.starts_with("postgres -c config_file=/etc/postgresql/postgresql.conf -c fsync=off"),
            "{cmd}"
        );
    }

    #[test]
    fn the_state_file_round_trips_and_a_partial_one_is_ignored() {
        let dir = std::env::temp_dir().join(format!("plover-docker-state-{}", random_hex(6)));
        fs::create_dir_all(&dir).unwrap();
        let state = State {
            id: "abc".into(),
            host: "127.0.0.1".into(),
            port: 40123,
            password: None,
            token: "t".into(),
            spec: bare_host().fingerprint(),
        };
        state.write(&dir).unwrap();
        assert_eq!(State::read(&dir), Some(state));
        fs::write(dir.join(STATE_FILE), "id=abc\nport=1\n").unwrap();
        assert_eq!(State::read(&dir), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_fingerprint_tells_configurations_apart() {
        assert_ne!(
            bare_host().fingerprint(),
            Docker::new("postgres", "17").fingerprint()
        );
        assert_eq!(
            bare_host().fingerprint(),
            "plover-postgres:15 network=host bare=true"
        );
    }
}
