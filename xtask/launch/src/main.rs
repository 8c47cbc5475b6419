//! `cargo xtask …` (the alias in .cargo/config.toml) runs this first: it runs the
//! xtask through `cargo run`, with the xtask's `lint` feature where libclang is
//! installed, so `db lint` is part of the one xtask build instead of a second full
//! build on its first use. Where libclang is missing every other command still
//! builds, and `db lint` says what to install.

use std::path::Path;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut run = Command::new(cargo);
    forget_crate_env(&mut run);
    run.args(["run", "--manifest-path"]).arg(&manifest);
    if libclang_installed() {
        run.args(["--features", "lint"]);
    }
    run.arg("--").args(std::env::args_os().skip(1));
    exec(run)
}

/// Leaves out of `command`'s environment what cargo set for this crate's run
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...). Build scripts that watch those
/// (ring's does) would otherwise see them change between a `cargo build` from a
/// shell and this nested one, and rebuild, with everything above them, on every
/// switch. The xtask does the same for the cargo it runs (`bench`).
fn forget_crate_env(command: &mut Command) {
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

/// Where clang-sys (pg_query's build) finds libclang: `LIBCLANG_PATH`, or the
/// distribution's LLVM directories, with the headers clang needs.
fn libclang_installed() -> bool {
    if let Some(dir) = std::env::var_os("LIBCLANG_PATH") {
        return has_libclang(Path::new(&dir));
    }
    let llvm = Path::new("/usr/lib")
        .read_dir()
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("llvm-"))
        .map(|e| e.path().join("lib"));
    llvm.into_iter()
        .any(|lib| has_libclang(&lib) && lib.join("clang").is_dir())
}

fn has_libclang(dir: &Path) -> bool {
    dir.read_dir().into_iter().flatten().flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name.starts_with("libclang") && name.contains(".so")
    })
}

#[cfg(unix)]
fn exec(mut command: Command) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let error = command.exec();
    eprintln!("error: running cargo for the xtask: {error}");
    ExitCode::from(2)
}

#[cfg(not(unix))]
fn exec(mut command: Command) -> ExitCode {
    match command.status() {
        Ok(status) => ExitCode::from(
            status
                .code()
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(2),
        ),
        Err(error) => {
            eprintln!("error: running cargo for the xtask: {error}");
            ExitCode::from(2)
        }
    }
}
