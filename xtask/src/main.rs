//! `cargo xtask`: parses the command line, makes the one [`xshell::Shell`] (rooted
//! at the workspace) every command gets, and dispatches; each command lives in a
//! module of its own (the benchmarks in a crate of their own, bench/).

mod bench;
mod db;
mod dev;
mod flags;
mod image;
mod test;
mod test_server;

use std::process::ExitCode;

/// The lint parses every statement into a tree on every core and frees it on the
/// replaying thread: with glibc's allocator those frees contend for the parsing
/// thread's arena lock (about 12% of `db lint`'s time on a 350-file project);
/// mimalloc frees across threads without that lock and allocates faster.
#[cfg(feature = "lint")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Result;
use clap::Parser;

/// The exit code when stdout is closed early (`... | head`): 128 + SIGPIPE, what a
/// shell reports for a program a closed pipe stopped.
const EXIT_CLOSED_STDOUT: i32 = 141;

#[tokio::main]
async fn main() -> Result<ExitCode> {
    quiet_on_closed_stdout();
    let flags = flags::Xtask::parse();
    let sh = xshell::Shell::new()?;
    sh.change_dir(project_root());
    let done = match flags.command {
        // `db` commands have exit codes of their own (see `cargo xtask db --help`).
        flags::Command::Db(cmd) => return Ok(cmd.run(sh).await),
        flags::Command::Dev(cmd) => cmd.run(&sh).await,
        flags::Command::Test(cmd) => cmd.run(&sh).await,
        flags::Command::TestServer(cmd) => cmd.run(&sh).await,
        flags::Command::Bench(cmd) => return cmd.run(&sh),
        flags::Command::BenchFresh(cmd) => return cmd.run(&sh),
        flags::Command::Completions(cmd) => {
            // Through print!, so that a reader that stops early ends it quietly.
            print!("{}", completions(cmd.shell));
            Ok(())
        }
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// The completion script of every command for `shell`, for a command named `xtask`
/// (an alias of `cargo xtask`: completion cannot hang off cargo's own).
fn completions(shell: clap_complete::Shell) -> String {
    let mut command = <flags::Xtask as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "xtask", &mut script);
    String::from_utf8_lossy(&script).into_owned()
}

/// A reader that stops early (`cargo xtask db status --json | head -c 10`) ends the
/// command quietly with [`EXIT_CLOSED_STDOUT`]: Rust ignores SIGPIPE, so `println!`
/// panics on EPIPE; the hook turns that one panic into an exit without a message.
/// Every other panic is reported as usual.
fn quiet_on_closed_stdout() {
    // EPIPE is 32 on Linux, macOS and the BSDs; the text is the system's own.
    let broken_pipe = std::io::Error::from_raw_os_error(32).to_string();
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.ends_with(&broken_pipe) {
            std::process::exit(EXIT_CLOSED_STDOUT);
        }
        report(info);
    }));
}

/// The workspace root: xtask's manifest directory's parent. Only `main` asks: every
/// command gets it as the shell's current directory.
fn project_root() -> std::path::PathBuf {
    let xtask = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_scripts_know_every_command() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let script = completions(shell);
            for word in ["reset-local", "down", "confirm", "completions", "lint"] {
                assert!(script.contains(word), "{shell}: no {word}");
            }
        }
    }
}
