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
