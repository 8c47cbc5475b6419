//! What the `cargo xtask` launcher and the xtask share for running a nested cargo:
//! an environment without the running crate's cargo variables, and handing the
//! process over. No dependencies, so the launcher still builds in a second.

use std::process::{Command, ExitCode};

/// Leaves out of `command`'s environment what cargo set for the running crate
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...). Build scripts that watch those
/// (ring's does) would otherwise see them change between a `cargo build` from a
/// shell and this nested one, and rebuild, with everything above them, on every
/// switch. Used by the launcher for the xtask's
/// build and by the xtask for the bench's.
pub fn forget_crate_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_MANIFEST_LINKS",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&name.as_ref())
        {
            command.env_remove(name.as_ref());
        }
    }
}

/// Runs `command` in place of this process (Unix: `exec`, so its output, exit code
/// and signals are its own); elsewhere waits for it and returns its exit code. Returns
/// only when it could not be run (or, elsewhere, when it ended).
#[cfg(unix)]
pub fn exec(mut command: Command) -> std::io::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    Err(command.exec())
}

/// Runs `command` and returns its exit code (2 when it has none).
#[cfg(not(unix))]
pub fn exec(mut command: Command) -> std::io::Result<ExitCode> {
    let status = command.status()?;
    Ok(ExitCode::from(
        status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(2),
    ))
}

/// Where `db lint` runs from: an optimized build of the xtask (release, with the
/// `lint` feature) in a target directory of its own. The lint parses every statement
/// of every migration, which a debug build does about 2.5 times slower; every other
/// command waits on a database or on files and runs the debug build. The bench
/// (`bench lint`) measures this binary, as the command runs it.
pub mod lint_build {
    use std::ffi::{OsStr, OsString};
    use std::path::{Path, PathBuf};

    /// The target directory, under the workspace root.
    pub fn target_dir(root: &Path) -> PathBuf {
        root.join("target").join("lint")
    }

    /// The binary `cargo build` with [`cargo_args`] makes.
    pub fn binary(root: &Path) -> PathBuf {
        target_dir(root).join("release").join("xtask")
    }

    /// The arguments after `cargo build` or `cargo run` that build it.
    pub fn cargo_args(root: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = ["--release", "--package", "xtask", "--features", "lint"]
            .iter()
            .map(OsString::from)
            .collect();
        args.push("--manifest-path".into());
        args.push(root.join("Cargo.toml").into());
        args.push("--target-dir".into());
        args.push(target_dir(root).into());
        args
    }

    /// Whether the xtask's arguments ask for `db lint`: `db`, then `lint` after the
    /// options `db` takes before its command (`--workdir DIR`, `--env NAME`).
    pub fn is_lint<S: AsRef<OsStr>>(args: &[S]) -> bool {
        let mut rest = args.iter().map(AsRef::as_ref);
        if rest.next() != Some(OsStr::new("db")) {
            return false;
        }
        while let Some(arg) = rest.next() {
            match arg.to_str() {
                Some("--workdir" | "--env") => {
                    rest.next();
                }
                Some(a) if a.starts_with("--workdir=") || a.starts_with("--env=") => {}
                Some(a) => return a == "lint",
                None => return false,
            }
        }
        false
    }

    #[cfg(test)]
    mod tests {
        use super::is_lint;

        #[test]
        fn finds_db_lint_after_the_options_of_db() {
            assert!(is_lint(&["db", "lint"]));
            assert!(is_lint(&["db", "lint", "--format", "json"]));
            assert!(is_lint(&["db", "--workdir", "x", "--env=prod", "lint"]));
            assert!(is_lint(&["db", "--workdir=x", "lint"]));
            assert!(!is_lint(&["db", "status"]));
            assert!(!is_lint(&["db", "--workdir", "lint"]));
            assert!(!is_lint(&["lint"]));
            assert!(!is_lint(&["bench", "lint"]));
            assert!(!is_lint::<&str>(&[]));
        }
    }
}
