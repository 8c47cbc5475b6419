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
use testcontainers::{ContainerAsync, GenericImage, ImageExt, ReuseDirective};

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
/// Settings for a disposable server: durability off, room for parallel tests.
const SETTINGS: [&str; 4] = [
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=300",
];

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
    /// Port 5432 published on a random host port (bridge networking).
    #[default]
    Mapped,
    /// Host networking; the server listens on 127.0.0.1 at a free port chosen here.
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
    fn spec(&self) -> String {
        format!(
            "{} network={} bare={}",
            self.descriptor(),
            self.network.as_str(),
            self.bare
        )
    }

    fn is_supabase(&self) -> bool {
        self.image.contains("supabase")
    }

    /// A password unless the server listens on loopback only with trust (a Supabase
    /// image always gets one: its setup scripts expect it).
    fn needs_password(&self) -> bool {
        self.network == Network::Mapped || (self.is_supabase() && !self.bare)
    }

    /// The container's command: listen on `port`, name the cluster after `token`.
    fn command(&self, port: u16, token: &str, password: bool) -> Vec<String> {
        let listen = match self.network {
            Network::Host => "127.0.0.1",
            Network::Mapped => "*",
        };
        let mut settings: Vec<String> = SETTINGS.iter().map(|s| s.to_string()).collect();
        settings.push(format!("cluster_name=plover-{token}"));
        if self.bare {
            // The data directory sits in the container's /tmp: it is thrown away with
            // the container. The password travels in the environment, never argv.
            let (auth, setup) = if password {
                (
                    "--pwfile=/tmp/pw -A scram-sha-256",
                    "rm -f /tmp/pw && echo 'host all all all scram-sha-256' >> /tmp/pgdata/pg_hba.conf && ",
                )
            } else {
                ("-A trust", "")
            };
            let save_password = if password {
                "printf %s \"$PLOVER_PASSWORD\" > /tmp/pw && "
            } else {
                ""
            };
            let options: String = settings.iter().map(|s| format!(" -c {s}")).collect();
            let script = format!(
                "{save_password}initdb -D /tmp/pgdata -U postgres -E UTF8 --locale=C --no-sync {auth} >/dev/null && {setup}\
                 exec postgres -D /tmp/pgdata -k /tmp -p {port} -c listen_addresses='{listen}'{options}"
            );
            return vec!["sh".into(), "-c".into(), script];
        }
        let mut cmd = vec!["postgres".to_string()];
        if self.is_supabase() {
            // Supabase's images load their extensions through this file.
            settings.insert(0, "config_file=/etc/postgresql/postgresql.conf".into());
        }
        if self.network == Network::Host {
            cmd.extend(["-p".into(), port.to_string()]);
            settings.push(format!("listen_addresses={listen}"));
        }
        for s in settings {
            cmd.extend(["-c".into(), s]);
        }
        cmd
    }

    /// The container's environment.
    fn env(&self, password: Option<&str>) -> Vec<(&'static str, String)> {
        match (self.bare, password) {
            (true, Some(p)) => vec![("PLOVER_PASSWORD", p.into())],
            (true, None) => vec![],
            (false, Some(p)) => vec![("POSTGRES_PASSWORD", p.into())],
            (false, None) => vec![("POSTGRES_HOST_AUTH_METHOD", "trust".into())],
        }
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
            && state.spec == self.spec()
            && state.probe(PROBE_TIMEOUT).await.is_ok()
        {
            return Ok(state.clone());
        }
        let engine = engine().await?;
        if let Some(state) = &previous
            && state.spec == self.spec()
            && is_running(&engine, &state.id).await
        {
            // Running but slow to answer (a busy machine): give it time before
            // replacing a server other processes may be using.
            if state.wait_ready(&engine, None, READY_TIMEOUT).await.is_ok() {
                return Ok(state.clone());
            }
        }
        let label = format!("{DIR_LABEL}={}", dir_hash(&dir));
        remove(&engine, &list(&engine, &label).await?).await?;
        let _ = fs::remove_file(dir.join(STATE_FILE));
        let mut attempt = 1;
        let state = loop {
            match self.start(&engine, &dir).await {
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

    async fn start(&self, engine: &bollard::Docker, dir: &Path) -> Result<State, TestingError> {
        let token = random_hex(8);
        let password = self.needs_password().then(|| random_hex(16));
        let port = match self.network {
            Network::Host => super::native::free_port()?,
            Network::Mapped => 5432,
        };
        let mut image = GenericImage::new(self.image.clone(), self.tag.clone());
        if self.network == Network::Mapped {
            image = image.with_exposed_port(5432.tcp());
        }
        let hash = dir_hash(dir);
        let mut request = image
            .with_cmd(self.command(port, &token, password.is_some()))
            .with_container_name(format!("plover-test-{hash}"))
            .with_label(LABEL, "1")
            .with_label(DIR_LABEL, hash)
            .with_label("plover.token", token.clone())
            .with_shm_size(256 * 1024 * 1024)
            .with_startup_timeout(READY_TIMEOUT)
            // Kept when the handle drops: later processes reuse it; stop() removes it.
            .with_reuse(ReuseDirective::Always);
        for (name, value) in self.env(password.as_deref()) {
            request = request.with_env_var(name, value);
        }
        if self.network == Network::Host {
            request = request.with_network("host");
        }
        let began = Instant::now();
        let container = request.start().await.map_err(|e| {
            TestingError::Docker(format!(
                "could not start a container of {}: {e}; check that the image exists \
                 (`docker image inspect {0}`; without a registry build one with .ci/docker-up) \
                 or set PLOVER_DOCKER_IMAGE and PLOVER_DOCKER_TAG{}",
                self.descriptor(),
                if self.network == Network::Mapped {
                    "; without bridge networking set PLOVER_DOCKER_NETWORK=host"
                } else {
                    ""
                }
            ))
        })?;
        let (host, port) = match self.network {
            Network::Host => ("127.0.0.1".to_string(), port),
            Network::Mapped => {
                let host = container
                    .get_host()
                    .await
                    .map_err(|e| {
                        TestingError::Docker(format!("reading the container's host: {e}"))
                    })?
                    .to_string();
                let port = container.get_host_port_ipv4(5432).await.map_err(|e| {
                    TestingError::Docker(format!(
                        "reading the container's mapped port: {e}; without bridge networking set PLOVER_DOCKER_NETWORK=host"
                    ))
                })?;
                let host = if host == "localhost" {
                    "127.0.0.1".into()
                } else {
                    host
                };
                (host, port)
            }
        };
        let state = State {
            id: container.id().to_owned(),
            host,
            port,
            password,
            token,
            spec: self.spec(),
        };
        state
            .wait_ready(engine, Some(&container), READY_TIMEOUT)
            .await
            .map_err(|reason| {
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
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect_timeout(timeout);
        if let Some(p) = &self.password {
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
            if name == format!("plover-{}", self.token) {
                Ok(())
            } else {
                Err(format!(
                    "port {} is served by another server ({name:?})",
                    self.port
                ))
            }
        };
        tokio::time::timeout(timeout, check)
            .await
            .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
    }

    /// Polls until the server answers; fails early if the container exits (with its
    /// output when the handle is at hand).
    async fn wait_ready(
        &self,
        engine: &bollard::Docker,
        container: Option<&ContainerAsync<GenericImage>>,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.probe(PROBE_TIMEOUT).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if !is_running(engine, &self.id).await {
                let Some(c) = container else {
                    return Err("the container exited".into());
                };
                let logs = c.stderr_to_vec().await.unwrap_or_default();
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
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The engine, pinged: an error says how to get one.
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
    fn official_image_in_mapped_mode_gets_a_password_and_default_port() {
        let d = Docker::new("postgres", "17");
        assert!(d.needs_password());
        assert_eq!(
            d.command(5432, "t", true).join(" "),
            "postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=300 -c cluster_name=plover-t"
        );
        assert_eq!(d.env(Some("pw")), [("POSTGRES_PASSWORD", "pw".to_string())]);
    }

    #[test]
    fn host_mode_listens_on_loopback_at_the_chosen_port_with_trust() {
        let d = Docker {
            network: Network::Host,
            ..Docker::new("postgres", "17")
        };
        assert!(!d.needs_password());
        let cmd = d.command(40123, "t", false).join(" ");
        assert!(cmd.starts_with("postgres -p 40123 -c fsync=off"), "{cmd}");
        assert!(cmd.ends_with("-c listen_addresses=127.0.0.1"), "{cmd}");
        assert_eq!(
            d.env(None),
            [("POSTGRES_HOST_AUTH_METHOD", "trust".to_string())]
        );
    }

    #[test]
    fn bare_images_run_initdb_then_postgres_and_keep_passwords_out_of_argv() {
        let cmd = bare_host().command(40123, "t", false);
        assert_eq!(cmd[..2], ["sh", "-c"]);
        assert_eq!(
            cmd[2],
            "initdb -D /tmp/pgdata -U postgres -E UTF8 --locale=C --no-sync -A trust >/dev/null && \
             exec postgres -D /tmp/pgdata -k /tmp -p 40123 -c listen_addresses='127.0.0.1' \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=300 -c cluster_name=plover-t"
        );
        let mapped = Docker {
            network: Network::Mapped,
            ..bare_host()
        };
        let script = &mapped.command(5432, "t", true)[2];
        assert!(script.contains("\"$PLOVER_PASSWORD\""), "{script}");
        assert!(
            script.contains("host all all all scram-sha-256"),
            "{script}"
        );
        assert!(script.contains("listen_addresses='*'"), "{script}");
        assert_eq!(
            mapped.env(Some("secret")),
            [("PLOVER_PASSWORD", "secret".to_string())]
        );
    }

    #[test]
    fn supabase_images_keep_their_configuration_file() {
        let d = Docker::new("supabase/postgres", "15.8.1.060");
        assert!(d.needs_password());
        let cmd = d.command(5432, "t", true).join(" ");
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
            spec: bare_host().spec(),
        };
        state.write(&dir).unwrap();
        assert_eq!(State::read(&dir), Some(state));
        fs::write(dir.join(STATE_FILE), "id=abc\nport=1\n").unwrap();
        assert_eq!(State::read(&dir), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_spec_tells_configurations_apart() {
        assert_ne!(bare_host().spec(), Docker::new("postgres", "17").spec());
        assert_eq!(
            bare_host().spec(),
            "plover-postgres:15 network=host bare=true"
        );
    }
}
