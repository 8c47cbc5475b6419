//! `cargo xtask …` (the alias in .cargo/config.toml) runs this first: it runs the
//! xtask through `cargo run`, with the xtask's `lint` feature where libclang is
//! installed, so the parser is built with the xtask. `db lint` itself runs an
//! optimized build of the xtask, in target/lint ([`lint_build`]). Where libclang is
//! missing every other command still builds, and `db lint` says what to install.

use std::path::Path;
use std::process::{Command, ExitCode};

use xtask_launch::{exec, forget_crate_env, lint_build};

fn main() -> ExitCode {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(".."));
    let root = xtask_dir.parent().unwrap_or(Path::new("."));
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let mut run = Command::new(cargo);
    forget_crate_env(&mut run);
    run.arg("run");
    let libclang = libclang_installed();
    if libclang && lint_build::is_lint(&args) {
        if !lint_build::binary(root).exists() {
            eprintln!(
                "building an optimized `db lint` into {} once: minutes the first time",
                lint_build::target_dir(root).display()
            );
        }
        run.args(lint_build::cargo_args(root));
    } else {
        run.arg("--manifest-path").arg(xtask_dir.join("Cargo.toml"));
        if libclang {
            run.args(["--features", "lint"]);
        }
    }
    run.arg("--").args(args);
    match exec(run) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: running cargo for the xtask: {error}");
            ExitCode::from(2)
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
