//! `cargo xtask test`: the whole test suite on a fresh machine, with what it needs
//! started first and stopped after.

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use crate::flags::Test;
use crate::image::{self, Missing};
use crate::test_server;
use plover::project::Project;

impl Test {
    pub async fn run(self, sh: &Shell) -> Result<()> {
        let mut started_engine = None;
        if self.no_docker {
            sh.set_var("PLOVER_SKIP_DOCKER_TESTS", "1");
        } else if !image::engine_answers(sh) {
            if image::is_root() && sh.path_exists(".ci/docker-up") {
                // docker-down needs the pid file docker-up leaves in this directory.
                let dir =
                    std::env::temp_dir().join(format!("plover-docker-{}", std::process::id()));
                cmd!(sh, ".ci/docker-up {dir}")
                    .run()
                    .context("starting a Docker engine (.ci/docker-up)")?;
                started_engine = Some(dir);
            } else {
                eprintln!(
                    "note: no Docker engine answers, so the Docker provider's tests are skipped \
                     (PLOVER_SKIP_DOCKER_TESTS=1); start one (as root: .ci/docker-up) to run them"
                );
                sh.set_var("PLOVER_SKIP_DOCKER_TESTS", "1");
            }
        }
        if !self.no_docker
            && (started_engine.is_some() || image::engine_answers(sh))
            && std::env::var_os("PLOVER_DOCKER_IMAGE").is_none()
        {
            // No registry here: the local image (built when missing, as root), on the
            // host network. Without it the provider's default (postgres:17) is pulled.
            let major = Project::load(sh.current_dir())
                .context("reading supabase/config.toml for `[db] major_version`")?
                .config()
                .db_major_version;
            if let Some(reference) = image::ensure(sh, major, None, Missing::BuildIfPossible)?
                && let Some((name, tag)) = reference.split_once(':')
            {
                eprintln!("the Docker provider's tests run on {reference}");
                sh.set_var("PLOVER_DOCKER_IMAGE", name);
                sh.set_var("PLOVER_DOCKER_TAG", tag);
                sh.set_var("PLOVER_DOCKER_NETWORK", "host");
                sh.set_var("PLOVER_DOCKER_BARE", "1");
            }
        }

        // The stand-ins for Supabase-only extensions, which the tests create on the
        // native test server.
        if image::is_root() {
            crate::db::install_stand_ins(sh).context(
                "installing the stand-in extensions (cargo xtask db extensions --install)",
            )?;
        } else {
            eprintln!(
                "note: not root, so the stand-in extensions are not installed; the tests that create them fail unless `sudo cargo xtask db extensions --install` was run"
            );
        }

        // The lint's Postgres parser (pg_query) needs libclang to build.
        if sh.path_exists(".ci/libclang-up") {
            cmd!(sh, ".ci/libclang-up")
                .run()
                .context("installing libclang for the lint's parser (.ci/libclang-up)")?;
        }
        npm_tools(sh)?;
        let args = &self.args;
        let tested = cmd!(sh, "cargo test --workspace {args...}")
            .run()
            .context("cargo test --workspace");
        let leftovers = test_server::leftovers().await;
        if !self.keep_server
            && let Err(e) = test_server::stop_all(sh)
        {
            eprintln!("warning: {e:#}");
        }
        if let Some(dir) = started_engine {
            cmd!(sh, ".ci/docker-down {dir}")
                .run()
                .context("stopping the Docker engine (.ci/docker-down)")?;
        }
        tested?;
        let leftovers = leftovers?;
        if !leftovers.is_empty() {
            bail!(
                "the tests left {} database(s) behind: {}",
                leftovers.len(),
                leftovers.join(", ")
            );
        }
        println!("no test database left behind");
        Ok(())
    }
}

/// The npm tools some tests run, installed by npm outside the repository and passed in
/// variables: the real Supabase CLI for tests/tests/e2e/supabase_cli.rs
/// (`.ci/supabase-cli-up`, `PLOVER_SUPABASE_CLI`) and the TypeScript compiler for the
/// generated types' test (`.ci/tsc-up`, `PLOVER_TSC`). Without npm, those tests are
/// skipped with a note.
fn npm_tools(sh: &Shell) -> Result<()> {
    let tools = [
        (
            "PLOVER_SUPABASE_CLI",
            "PLOVER_SKIP_SUPABASE_CLI_TESTS",
            ".ci/supabase-cli-up",
            "plover-supabase-cli",
            "the Supabase CLI interop tests",
        ),
        (
            "PLOVER_TSC",
            "PLOVER_SKIP_TSC_TESTS",
            ".ci/tsc-up",
            "plover-tsc",
            "the TypeScript tests of the generated types",
        ),
    ];
    let set = |name| std::env::var_os(name).is_some();
    let npm = cmd!(sh, "npm --version")
        .quiet()
        .ignore_stdout()
        .run()
        .is_ok();
    for (var, skip, script, dir, what) in tools {
        if set(var) || set(skip) {
            continue;
        }
        if !npm {
            eprintln!(
                "note: npm is missing, so {what} are skipped ({skip}=1); install npm to run them"
            );
            sh.set_var(skip, "1");
            continue;
        }
        let dir = std::env::temp_dir().join(dir);
        let bin = cmd!(sh, "{script} {dir}")
            .read()
            .with_context(|| format!("installing what {what} need ({script})"))?;
        eprintln!("{what} use {}", bin.trim());
        sh.set_var(var, bin.trim());
    }
    Ok(())
}
