//! The native provider: system server binaries, one shared cluster per state
//! directory, run as an unprivileged user when the caller is root.

use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::TestingError;

/// A running server.
#[derive(Debug, Clone)]
pub struct NativeServer {
    port: u16,
    data_dir: PathBuf,
    bin_dir: PathBuf,
}

const STATE_FILE: &str = "server.state";
const LOCK_FILE: &str = "server.lock";

impl NativeServer {
    /// The shared server of [`state_dir`]: reused if it answers, started otherwise.
    /// Concurrent callers (threads or processes) serialise on a file lock.
    pub async fn shared() -> Result<NativeServer, TestingError> {
        let dir = state_dir();
        tokio::task::spawn_blocking(move || Self::shared_in(&dir))
            .await
            .map_err(|e| TestingError::Io {
                what: "starting the test server".into(),
                source: std::io::Error::other(e),
            })?
    }

    fn shared_in(dir: &Path) -> Result<NativeServer, TestingError> {
        fs::create_dir_all(dir).map_err(TestingError::io(format!("creating {}", dir.display())))?;
        let lock = File::create(dir.join(LOCK_FILE))
            .map_err(TestingError::io("creating the server lock file"))?;
        lock.lock()
            .map_err(TestingError::io("locking the server lock file"))?;
        if let Some(server) = Self::read_state(dir) {
            if server.is_alive() {
                return Ok(server);
            }
            server.stop_quietly();
        }
        let server = Self::start(dir)?;
        fs::write(
            dir.join(STATE_FILE),
            format!(
                "{}\n{}\n{}\n",
                server.port,
                server.data_dir.display(),
                server.bin_dir.display()
            ),
        )
        .map_err(TestingError::io("writing the server state file"))?;
        Ok(server)
    }

    /// The shared server of [`state_dir`] if it runs; never starts one.
    pub fn running() -> Option<NativeServer> {
        Self::read_state(&state_dir()).filter(NativeServer::is_alive)
    }

    fn read_state(dir: &Path) -> Option<NativeServer> {
        let text = fs::read_to_string(dir.join(STATE_FILE)).ok()?;
        let mut lines = text.lines();
        Some(NativeServer {
            port: lines.next()?.parse().ok()?,
            data_dir: lines.next()?.into(),
            bin_dir: lines.next()?.into(),
        })
    }

    /// Whether the server accepts connections (pg_ctl status plus a TCP connect).
    fn is_alive(&self) -> bool {
        self.data_dir.join("postmaster.pid").exists()
            && std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok()
    }

    fn start(dir: &Path) -> Result<NativeServer, TestingError> {
        let bin_dir = find_binaries()?;
        let user = RunAs::current();
        // Data lives in memory where the machine has /dev/shm: test clusters are
        // disposable, and file creation on a busy disk makes DDL timings erratic. It
        // also keeps the data reachable by the unprivileged user when we are root
        // (the state directory may sit under a home it cannot enter).
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let root = base.join(format!(
            "plover-pg-{}",
            &crate::source::Checksum::of(dir.as_os_str().as_encoded_bytes()).to_hex()[..12]
        ));
        if root.exists() {
            fs::remove_dir_all(&root)
                .map_err(TestingError::io(format!("removing {}", root.display())))?;
        }
        fs::create_dir_all(&root)
            .map_err(TestingError::io(format!("creating {}", root.display())))?;
        user.chown(&root)?;
        let data_dir = root.join("data");
        let mut initdb = Command::new(bin_dir.join("initdb"));
        initdb.arg("-D").arg(&data_dir).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        ]);
        run(user.apply(&mut initdb), "initdb")?;
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            let server = NativeServer {
                port,
                data_dir: data_dir.clone(),
                bin_dir: bin_dir.clone(),
            };
            let options = format!(
                "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
                 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
                 -c max_connections=300 -c shared_buffers=128MB",
                root.display()
            );
            let mut pg_ctl = Command::new(bin_dir.join("pg_ctl"));
            pg_ctl
                .arg("-D")
                .arg(&data_dir)
                .arg("-l")
                .arg(root.join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"]);
            match run(user.apply(&mut pg_ctl), "pg_ctl start") {
                Ok(()) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| TestingError::Command {
            what: "pg_ctl start".into(),
            status: "no attempt".into(),
            output: String::new(),
        }))
    }

    fn stop_quietly(&self) {
        let mut pg_ctl = Command::new(self.bin_dir.join("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = run(RunAs::current().apply(&mut pg_ctl), "pg_ctl stop");
    }

    /// A connection string for `database` (user `postgres`, trust authentication).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The server's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the server binaries in use.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }
}

/// A persistent cluster, such as a project's local development database: data kept
/// between starts, a fixed port, password authentication for user `postgres`.
///
/// Runs as the caller, or as root as the `postgres` account (else `nobody`), which
/// must be able to reach the data directory: see [`persistent_data_dir`].
impl NativeServer {
    /// Starts the cluster of `data_dir` on 127.0.0.1:`port` (no Unix socket), after
    /// `initdb` when the directory holds no cluster yet: user `postgres` with
    /// `password` (handed over in a file, never argv), scram-sha-256 over TCP. Does
    /// nothing but return it when it already answers on that port.
    ///
    /// Heals what an interrupted run leaves, and returns one sentence per repair for
    /// the user: a directory without `PG_VERSION` is removed (it holds no cluster); a
    /// cluster whose `initdb` did not finish (no plover settings in its
    /// `postgresql.conf`) is moved aside, never deleted; a `postmaster.pid` whose
    /// process is not this cluster's server is removed.
    ///
    /// Callers serialise: two processes starting one data directory at once race in
    /// `initdb` (the xtask holds a lock file around it).
    pub fn start_persistent(
        data_dir: &Path,
        port: u16,
        password: &str,
    ) -> Result<(NativeServer, Vec<String>), TestingError> {
        let bin_dir = find_binaries()?;
        let user = RunAs::current();
        let server = NativeServer {
            port,
            data_dir: data_dir.to_owned(),
            bin_dir: bin_dir.clone(),
        };
        if server.is_alive() {
            return Ok((server, Vec::new()));
        }
        let root = data_dir.parent().ok_or_else(|| TestingError::Io {
            what: format!("{} has no parent directory", data_dir.display()),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
        fs::create_dir_all(root)
            .map_err(TestingError::io(format!("creating {}", root.display())))?;
        user.chown(root)?;
        let mut repairs = Vec::new();
        repairs.extend(clear_unfinished(data_dir)?);
        if !data_dir.join("PG_VERSION").is_file() {
            let pwfile = root.join("initdb.pw");
            let written = {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let _ = fs::remove_file(&pwfile);
                fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&pwfile)
                    .and_then(|mut f| f.write_all(password.as_bytes()))
                    .map_err(TestingError::io(format!("writing {}", pwfile.display())))
                    .and_then(|()| user.chown(&pwfile))
            };
            let mut initdb = Command::new(bin_dir.join("initdb"));
            initdb
                .arg("-D")
                .arg(data_dir)
                .arg(format!("--pwfile={}", pwfile.display()))
                .args([
                    "-U",
                    "postgres",
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]);
            let done = written.and_then(|()| run(user.apply(&mut initdb), "initdb"));
            let _ = fs::remove_file(&pwfile);
            done?;
            let mut conf = fs::OpenOptions::new()
                .append(true)
                .open(data_dir.join("postgresql.conf"))
                .map_err(TestingError::io("opening postgresql.conf"))?;
            std::io::Write::write_all(
                &mut conf,
                format!(
                    "\n{PLOVER_SETTINGS}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                )
                .as_bytes(),
            )
            .map_err(TestingError::io("writing postgresql.conf"))?;
        }
        repairs.extend(clear_stale_pid(data_dir)?);
        let mut pg_ctl = Command::new(bin_dir.join("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(data_dir)
            .arg("-l")
            .arg(root.join("server.log"))
            .args([
                "-w",
                "-t",
                "60",
                "-o",
                &format!("-p {port}{}", preload_options(&bin_dir)),
                "start",
            ]);
        run(user.apply(&mut pg_ctl), "pg_ctl start")?;
        Ok((server, repairs))
    }

    /// The cluster of `data_dir` as last started on `port`, without starting it.
    pub fn persistent(data_dir: &Path, port: u16) -> Result<NativeServer, TestingError> {
        Ok(NativeServer {
            port,
            data_dir: data_dir.to_owned(),
            bin_dir: find_binaries()?,
        })
    }

    /// Whether it runs and accepts TCP connections.
    pub fn is_running(&self) -> bool {
        self.is_alive()
    }

    /// Stops it (fast shutdown: sessions are ended); the data stays. Returns whether
    /// it was running.
    pub fn stop(&self) -> Result<bool, TestingError> {
        if !self.data_dir.join("postmaster.pid").exists() {
            return Ok(false);
        }
        let mut pg_ctl = Command::new(self.bin_dir.join("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "fast", "-w", "-t", "60", "stop"]);
        run(RunAs::current().apply(&mut pg_ctl), "pg_ctl stop")?;
        Ok(true)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// The line plover appends to a persistent cluster's `postgresql.conf` once `initdb`
/// has finished: a cluster without it was interrupted while being created.
/// Server options for the extensions that must be loaded at start, when the
/// server has them: pg_cron (scheduling in database `postgres`, as on Supabase).
fn preload_options(bin_dir: &Path) -> String {
    let pkglibdir = Command::new(bin_dir.join("pg_config"))
        .arg("--pkglibdir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    match pkglibdir {
        Some(dir) if dir.join("pg_cron.so").is_file() => {
            " -c shared_preload_libraries=pg_cron -c cron.database_name=postgres".to_owned()
        }
        _ => String::new(),
    }
}

const PLOVER_SETTINGS: &str = "# plover: a local development database";

/// Clears what an interrupted `initdb` left in `data_dir`: a directory without
/// `PG_VERSION` holds no cluster and is removed; one with `PG_VERSION` but without
/// [`PLOVER_SETTINGS`] is moved aside (it might hold something). Returns what it did.
fn clear_unfinished(data_dir: &Path) -> Result<Option<String>, TestingError> {
    let empty = match fs::read_dir(data_dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(TestingError::Io {
                what: format!("reading {}", data_dir.display()),
                source: e,
            });
        }
    };
    if empty {
        return Ok(None);
    }
    if !data_dir.join("PG_VERSION").is_file() {
        fs::remove_dir_all(data_dir)
            .map_err(TestingError::io(format!("removing {}", data_dir.display())))?;
        return Ok(Some(format!(
            "removed {}: it held files but no cluster (no PG_VERSION; an initdb that did not finish), so it is initialised again",
            data_dir.display()
        )));
    }
    let conf = fs::read_to_string(data_dir.join("postgresql.conf")).unwrap_or_default();
    if conf.contains(PLOVER_SETTINGS) {
        return Ok(None);
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut aside = data_dir.as_os_str().to_owned();
    aside.push(format!(".unfinished-{stamp}"));
    let aside = PathBuf::from(aside);
    fs::rename(data_dir, &aside).map_err(TestingError::io(format!(
        "moving {} aside to {}",
        data_dir.display(),
        aside.display()
    )))?;
    Ok(Some(format!(
        "moved {} aside to {}: its initdb did not finish (postgresql.conf lacks plover's settings), so a new cluster is initialised; delete the old one once you know it holds nothing you need",
        data_dir.display(),
        aside.display()
    )))
}

/// Removes `data_dir/postmaster.pid` when its process is not this cluster's server
/// (gone, or another program that got the pid after a crash or a reboot): the
/// server refuses to start while the file names a live process. Returns what it did.
fn clear_stale_pid(data_dir: &Path) -> Result<Option<String>, TestingError> {
    let file = data_dir.join("postmaster.pid");
    let Ok(text) = fs::read_to_string(&file) else {
        return Ok(None);
    };
    let pid = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<u32>().ok());
    if let Some(pid) = pid
        && is_server_of(pid, data_dir)
    {
        return Ok(None);
    }
    fs::remove_file(&file).map_err(TestingError::io(format!("removing {}", file.display())))?;
    Ok(Some(format!(
        "removed a stale {}: {} is not this cluster's server (a crash or a reboot left the file)",
        file.display(),
        pid.map_or_else(
            || "it names no process, so it".to_owned(),
            |p| format!("process {p}")
        )
    )))
}

/// Whether process `pid` may be the server of `data_dir`: a `postgres` process whose
/// working directory is `data_dir` (the server works there), or whose working
/// directory we may not read (then it is left to the server to decide).
fn is_server_of(pid: u32, data_dir: &Path) -> bool {
    let Ok(comm) = fs::read_to_string(format!("/proc/{pid}/comm")) else {
        return false;
    };
    if !matches!(comm.trim(), "postgres" | "postmaster") {
        return false;
    }
    match fs::read_link(format!("/proc/{pid}/cwd")) {
        Ok(cwd) => fs::canonicalize(data_dir).is_ok_and(|dir| dir == cwd),
        Err(_) => true,
    }
}

/// Where a persistent cluster keeps its data: `preferred` when the user that runs
/// the server can reach it (always, unless we are root), else a directory under
/// `/var/tmp` named after `preferred` (as root, a project under a home directory or a
/// private temporary directory is out of the `postgres` account's reach).
pub fn persistent_data_dir(preferred: &Path) -> PathBuf {
    let RunAs::User { uid, gid } = RunAs::current() else {
        return preferred.to_owned();
    };
    let reachable = preferred.ancestors().skip(1).all(|dir| {
        use std::os::unix::fs::MetadataExt;
        match fs::metadata(dir) {
            // Not created yet: made by us, 0755 under the umask, chowned when needed.
            Err(_) => true,
            Ok(m) => {
                let mode = m.mode();
                mode & 0o001 != 0
                    || (m.uid() == uid && mode & 0o100 != 0)
                    || (m.gid() == gid && mode & 0o010 != 0)
            }
        }
    });
    if reachable {
        return preferred.to_owned();
    }
    let key = &crate::source::Checksum::of(preferred.as_os_str().as_encoded_bytes()).to_hex()[..12];
    PathBuf::from("/var/tmp")
        .join(format!("plover-db-{key}"))
        .join(preferred.file_name().unwrap_or("data".as_ref()))
}

/// Stops the shared server of [`state_dir`], if one runs. Returns whether it did.
pub fn stop_shared() -> Result<bool, TestingError> {
    let dir = state_dir();
    let Some(server) = NativeServer::read_state(&dir) else {
        return Ok(false);
    };
    let running = server.data_dir.join("postmaster.pid").exists();
    if running {
        let mut pg_ctl = Command::new(server.bin_dir.join("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(&server.data_dir)
            .args(["-m", "fast", "-w", "stop"]);
        run(RunAs::current().apply(&mut pg_ctl), "pg_ctl stop")?;
    }
    let _ = fs::remove_file(dir.join(STATE_FILE));
    if let Some(root) = server.data_dir.parent() {
        let _ = fs::remove_dir_all(root);
    }
    Ok(running)
}

/// Where the shared server keeps its state: `PLOVER_STATE_DIR`, else
/// `<target dir>/plover`, found from `CARGO_TARGET_DIR` or the running executable's
/// path, else a directory under the system temp dir.
pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PLOVER_STATE_DIR") {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("plover");
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(target) = exe
            .ancestors()
            .find(|p| p.file_name().is_some_and(|n| n == "target"))
    {
        return target.join("plover");
    }
    std::env::temp_dir().join("plover")
}

/// The directory holding `initdb` and `pg_ctl`: `PLOVER_PG_BIN`, `pg_config
/// --bindir`, the newest `/usr/lib/postgresql/<major>/bin`, then `PATH`.
pub fn find_binaries() -> Result<PathBuf, TestingError> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    let mut searched = Vec::new();
    if let Some(dir) = std::env::var_os("PLOVER_PG_BIN") {
        let dir = PathBuf::from(dir);
        if has(&dir) {
            return Ok(dir);
        }
        searched.push(format!("PLOVER_PG_BIN={}", dir.display()));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has(&dir) {
            return Ok(dir);
        }
        searched.push("pg_config --bindir".into());
    }
    let mut majors: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, d)| has(d))
        .collect();
    majors.sort();
    if let Some((_, dir)) = majors.pop() {
        return Ok(dir);
    }
    searched.push("/usr/lib/postgresql/*/bin".into());
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if has(&dir) {
            return Ok(dir);
        }
    }
    searched.push("PATH".into());
    Err(TestingError::NoBinaries {
        searched: searched.join(", "),
    })
}

/// Who runs the server: ourselves, or (as root) an unprivileged account.
enum RunAs {
    Myself,
    User { uid: u32, gid: u32 },
}

impl RunAs {
    fn current() -> RunAs {
        if !is_root() {
            return RunAs::Myself;
        }
        let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
        for name in ["postgres", "nobody"] {
            for line in passwd.lines() {
                let f: Vec<&str> = line.split(':').collect();
                if f.len() > 3
                    && f[0] == name
                    && let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse())
                {
                    return RunAs::User { uid, gid };
                }
            }
        }
        RunAs::User {
            uid: 65534,
            gid: 65534,
        }
    }

    fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        if let RunAs::User { uid, gid } = self {
            cmd.uid(*uid).gid(*gid).current_dir("/");
        }
        cmd
    }

    fn chown(&self, path: &Path) -> Result<(), TestingError> {
        if let RunAs::User { uid, gid } = self {
            std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
                .map_err(TestingError::io(format!("chown {}", path.display())))?;
        }
        Ok(())
    }
}

fn is_root() -> bool {
    // The owner of /proc/self is our effective uid.
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> Result<u16, TestingError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(TestingError::io("finding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(TestingError::io("finding a free port"))?
        .port())
}

fn run(cmd: &mut Command, what: &str) -> Result<(), TestingError> {
    let out = cmd.output().map_err(TestingError::io(what.to_owned()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(TestingError::Command {
        what: what.into(),
        status: out.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}
