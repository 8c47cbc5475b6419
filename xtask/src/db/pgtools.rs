//! pg_dump and pg_dumpall for a target: a local binary whose major version is at
//! least the server's, else the matching Docker image. The connection goes through
//! libpq's environment variables ([`ConnInfo::libpq_env`]: PGHOST, PGPORT, PGUSER,
//! PGPASSWORD, ...), never argv, so `ps` shows no password; what they write is created
//! readable by its owner only (0600): dumps hold the app's rows.
//!
//! Which dumper runs is decided by [`choose`], a pure function; this module only
//! finds the candidates (a local binary's version, whether a Docker engine answers)
//! and runs the one chosen. It must never print a connection string unredacted.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use plover::project::Target;
use plover::redact;
use plover::{ConnInfo, LIBPQ_ENV_VARS};

use super::connect;

/// The Docker image that runs pg_dump when no local one is recent enough: the whole
/// image name, e.g. `postgres:17` (default `postgres:<server major>`).
const IMAGE_VAR: &str = "PLOVER_DUMP_IMAGE";
/// `docker` forces the Docker image even when a local pg_dump would do.
const FORCE_VAR: &str = "PLOVER_PG_DUMP";

/// A pg_dump/pg_dumpall able to dump one server.
#[derive(Debug)]
pub struct Tools {
    dumper: Dumper,
    /// The dumper's major version (for Docker: the server's, which the image is named after).
    major: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Dumper {
    /// Binaries in `dir`, `version` as `pg_dump --version` prints it.
    Local {
        dir: PathBuf,
        version: String,
    },
    Docker {
        image: String,
    },
}

/// A local pg_dump: where, and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Local {
    dir: PathBuf,
    version: String,
    major: u32,
}

/// What [`choose`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    Local,
    Docker,
    /// Nothing can dump this server.
    None,
}

/// Whether to use the local pg_dump or Docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefer {
    /// The local pg_dump when it is recent enough, else Docker.
    Local,
    /// Docker only (`PLOVER_PG_DUMP=docker`).
    Docker,
}

/// The decision: a local pg_dump of the server's major version or newer wins (pg_dump
/// refuses servers newer than itself), else Docker when an engine answers. `docker`
/// is asked only when needed (pinging an engine takes time).
fn choose(
    server_major: u32,
    local_major: Option<u32>,
    prefer: Prefer,
    docker: impl FnOnce() -> bool,
) -> Choice {
    if prefer == Prefer::Local && local_major.is_some_and(|m| m >= server_major) {
        Choice::Local
    } else if docker() {
        Choice::Docker
    } else {
        Choice::None
    }
}

impl Tools {
    /// Connects to the target, reads its server major version, and picks a local
    /// pg_dump whose major is >= it (PLOVER_PG_BIN when it holds a pg_dump, else the
    /// directory of `plover::testing::find_binaries()`), else the Docker image
    /// postgres:<major> (PLOVER_DUMP_IMAGE overrides the whole image name) when a
    /// Docker engine answers, else an error naming both versions and how to fix it.
    /// PLOVER_PG_DUMP=docker skips the local binary.
    pub async fn for_target(target: &Target) -> Result<Tools> {
        let client = connect(target).await?;
        let row = client
            .query_one(
                "SELECT current_setting('server_version_num'), current_setting('server_version')",
                &[],
            )
            .await
            .with_context(|| format!("reading the server version of {target}"))?;
        let num: String = row.try_get(0).context("reading server_version_num")?;
        let server_version: String = row.try_get(1).context("reading server_version")?;
        drop(client);
        let server_major = num
            .trim()
            .parse::<u32>()
            .map(|n| n / 10000)
            .with_context(|| {
                format!("{target} reported server_version_num {num:?}, which is not a number")
            })?;
        let prefer = match std::env::var(FORCE_VAR).as_deref() {
            Err(_) | Ok("") | Ok("local") => Prefer::Local,
            Ok("docker") => Prefer::Docker,
            Ok(other) => {
                bail!("{FORCE_VAR}={other:?} is not understood; use `docker` or leave it unset")
            }
        };
        let image = std::env::var(IMAGE_VAR)
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("postgres:{server_major}"));
        let local = find_local();
        let local_major = local.as_ref().ok().map(|l| l.major);
        match choose(
            server_major,
            local_major,
            prefer,
            plover::testing::docker::engine_answers,
        ) {
            Choice::Local => {
                let Ok(Local {
                    dir,
                    version,
                    major,
                }) = local
                else {
                    bail!("no local pg_dump (internal error)");
                };
                Ok(Tools {
                    dumper: Dumper::Local { dir, version },
                    major,
                })
            }
            Choice::Docker => Ok(Tools {
                dumper: Dumper::Docker { image },
                major: server_major,
            }),
            Choice::None if prefer == Prefer::Docker => bail!(
                "{FORCE_VAR}=docker, but no Docker engine answers to run {image}; start Docker (or check DOCKER_HOST), or unset {FORCE_VAR} to use a local pg_dump"
            ),
            Choice::None => {
                let found = match &local {
                    Ok(l) => format!("the local pg_dump is {} ({})", l.version, l.dir.display()),
                    Err(why) => format!("no local pg_dump was found ({why})"),
                };
                bail!(
                    "{target} runs PostgreSQL {server_version} (major {server_major}) but {found}, and pg_dump cannot dump a server newer than itself; no Docker engine answers to run {image} instead. Install the PostgreSQL {server_major} client (e.g. postgresql-client-{server_major}) and point PLOVER_PG_BIN at its bin directory, or start Docker"
                )
            }
        }
    }

    /// Runs pg_dump with `args` against the target's database, writing its stdout
    /// to `out` (parent directories created; the file is 0600). The connection goes
    /// through libpq's environment ([`ConnInfo::libpq_env`]), never argv; errors are
    /// redacted.
    pub fn pg_dump(&self, target: &Target, args: &[String], out: &Path) -> Result<()> {
        self.run("pg_dump", target, args, out)
    }

    /// Like [`Tools::pg_dump`], for pg_dumpall (e.g. `--roles-only`).
    pub fn pg_dumpall(&self, target: &Target, args: &[String], out: &Path) -> Result<()> {
        self.run("pg_dumpall", target, args, out)
    }

    /// Which dumper runs, e.g. `pg_dump 15.18 (/usr/lib/postgresql/15/bin)` or
    /// `docker postgres:17`.
    pub fn describe(&self) -> String {
        match &self.dumper {
            Dumper::Local { dir, version } => format!("pg_dump {version} ({})", dir.display()),
            Dumper::Docker { image } => format!("docker {image}"),
        }
    }

    /// The major version of the pg_dump that runs (for Docker, the server's).
    pub fn major(&self) -> u32 {
        self.major
    }

    fn run(&self, program: &str, target: &Target, args: &[String], out: &Path) -> Result<()> {
        let conn = target.conninfo();
        let env = conn.libpq_env();
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let file = create_private(out)?;
        let mut cmd = match &self.dumper {
            Dumper::Local { dir, .. } => Command::new(dir.join(program)),
            Dumper::Docker { image } => {
                let mut cmd = Command::new("docker");
                cmd.args(["run", "--rm", "--network", "host"]);
                for (name, _) in &env {
                    // The value comes from docker's own environment, never argv.
                    cmd.args(["-e", name]);
                }
                cmd.arg(image).arg(program);
                cmd
            }
        };
        for name in LIBPQ_ENV_VARS {
            cmd.env_remove(name);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.args(args);
        // pg_dumpall reads no PGDATABASE: name the database it connects to (as a
        // connection string of one key, so no name is read as one).
        if program == "pg_dumpall"
            && let Some(db) = conn.config().get_dbname()
        {
            let quoted = db.replace('\\', "\\\\").replace('\'', "\\'");
            cmd.arg(format!("--database=dbname='{quoted}'"));
        }
        cmd.stdin(Stdio::null()).stdout(file).stderr(Stdio::piped());
        let shown = format!("{program} ({})", self.describe());
        let done = cmd
            .output()
            .with_context(|| format!("starting {shown}"))
            .and_then(|output| {
                let stderr = hide(&String::from_utf8_lossy(&output.stderr), conn);
                if output.status.success() {
                    // Warnings (e.g. circular foreign keys in a data dump) still matter.
                    if !stderr.trim().is_empty() {
                        eprint!("{stderr}");
                    }
                    Ok(())
                } else {
                    bail!(
                        "{shown} failed on {} ({}): {}",
                        target.redacted(),
                        output.status,
                        stderr.trim()
                    )
                }
            });
        if done.is_err() {
            let _ = std::fs::remove_file(out);
        }
        done
    }
}

/// Creates (or truncates) `path` readable and writable by its owner only: a dump
/// holds the app's rows. An existing file is narrowed to 0600 too.
pub fn create_private(path: &Path) -> Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private (0600)", path.display()))?;
    }
    Ok(file)
}

/// Writes `bytes` to `path` through [`create_private`].
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut file = create_private(path)?;
    file.write_all(bytes)
        .and_then(|()| file.flush())
        .with_context(|| format!("writing {}", path.display()))
}

/// A schema name as a pg_dump pattern that matches only itself: double-quoted, so
/// `*`, `?`, `.` and spaces are literal and case is kept.
pub fn pattern_quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The local pg_dump: PLOVER_PG_BIN when it holds one (an explicit choice is the
/// only candidate), else the server binaries' directory that tests use, else PATH.
fn find_local() -> Result<Local, String> {
    let dir = match std::env::var_os("PLOVER_PG_BIN")
        .map(PathBuf::from)
        .filter(|d| d.join("pg_dump").is_file())
    {
        Some(dir) => dir,
        None => match plover::testing::find_binaries() {
            Ok(dir) if dir.join("pg_dump").is_file() => dir,
            // A client-only installation: the pg_dump on PATH.
            found => std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .find(|d| d.join("pg_dump").is_file())
                .ok_or_else(|| match found {
                    Ok(dir) => format!("{} has no pg_dump, nor has PATH", dir.display()),
                    Err(e) => format!("{e}; no pg_dump on PATH either"),
                })?,
        },
    };
    let bin = dir.join("pg_dump");
    let out = Command::new(&bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {} --version: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (version, major) = parse_version(&text)
        .ok_or_else(|| format!("{} --version printed {:?}", bin.display(), text.trim()))?;
    Ok(Local {
        dir,
        version,
        major,
    })
}

/// `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → (`15.18`, 15);
/// `9.6.24` → (`9.6.24`, 9).
fn parse_version(text: &str) -> Option<(String, u32)> {
    let token = text
        .split_whitespace()
        .find(|t| t.starts_with(|c: char| c.is_ascii_digit()))?;
    let digits: String = token.chars().take_while(char::is_ascii_digit).collect();
    Some((token.to_owned(), digits.parse().ok()?))
}

/// A tool's message with connection strings redacted and `conn`'s password hidden.
fn hide(text: &str, conn: &ConnInfo) -> String {
    let password = conn
        .config()
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let mut out: String = text
        .split_inclusive(char::is_whitespace)
        .map(|word| {
            if word.contains("://") {
                let trimmed = word.trim_end();
                format!("{}{}", redact(trimmed), &word[trimmed.len()..])
            } else {
                word.to_owned()
            }
        })
        .collect();
    if let Some(pw) = password.filter(|p| !p.is_empty()) {
        out = out.replace(&pw, "****");
    }
    out
}

/// A scratch file removed on drop, e.g. a dump to post-process before it is shown.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// A path in the system's temporary directory, unique to this process and `what`.
    pub fn new(what: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!(
            "plover-{what}-{}-{}.sql",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        Scratch { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text (pg_dump writes the database's encoding; UTF-8 expected).
    pub fn read(&self) -> Result<String> {
        std::fs::read_to_string(&self.path)
            .with_context(|| format!("reading {}", self.path.display()))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_prefers_a_recent_enough_local_pg_dump() {
        let no_docker = || false;
        let docker = || true;
        let asked = std::cell::Cell::new(false);
        let spy = || {
            asked.set(true);
            true
        };
        // Equal or newer: local, without asking Docker.
        assert_eq!(choose(15, Some(15), Prefer::Local, spy), Choice::Local);
        assert_eq!(choose(15, Some(17), Prefer::Local, spy), Choice::Local);
        assert!(!asked.get(), "docker was pinged though the local one does");
        // Older or missing: Docker when it answers, else nothing.
        assert_eq!(choose(17, Some(15), Prefer::Local, docker), Choice::Docker);
        assert_eq!(choose(17, Some(15), Prefer::Local, no_docker), Choice::None);
        assert_eq!(choose(15, None, Prefer::Local, docker), Choice::Docker);
        assert_eq!(choose(15, None, Prefer::Local, no_docker), Choice::None);
        // Forced Docker ignores the local one.
        assert_eq!(choose(15, Some(17), Prefer::Docker, docker), Choice::Docker);
        assert_eq!(
            choose(15, Some(17), Prefer::Docker, no_docker),
            Choice::None
        );
    }

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n"),
            Some(("15.18".into(), 15))
        );
        assert_eq!(
            parse_version("pg_dump (PostgreSQL) 9.6"),
            Some(("9.6".into(), 9))
        );
        assert_eq!(
            parse_version("pg_dump (PostgreSQL) 17devel"),
            Some(("17devel".into(), 17))
        );
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn patterns_match_only_the_name() {
        assert_eq!(pattern_quote("public"), "\"public\"");
        assert_eq!(pattern_quote("a\"b*"), "\"a\"\"b*\"");
        assert_eq!(pattern_quote("My Schema"), "\"My Schema\"");
    }

    #[test]
    fn messages_hide_secrets() {
        let conn = ConnInfo::parse("postgres://u:p%20w@h/db").unwrap();
        assert_eq!(
            hide("pg_dump: error: postgres://u:x@h/db failed: p w\n", &conn),
            "pg_dump: error: postgres://u:****@h:5432/db failed: ****\n"
        );
    }
}
