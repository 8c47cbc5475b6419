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
        supabase_cli(sh)?;
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

/// The real Supabase CLI for tests/tests/e2e/supabase_cli.rs: installed by npm outside the
/// repository (`.ci/supabase-cli-up`) and passed in `PLOVER_SUPABASE_CLI`; without npm,
/// those tests are skipped with a note.
fn supabase_cli(sh: &Shell) -> Result<()> {
    let set = |name| std::env::var_os(name).is_some();
    if set("PLOVER_SUPABASE_CLI") || set("PLOVER_SKIP_SUPABASE_CLI_TESTS") {
        return Ok(());
    }
    if cmd!(sh, "npm --version")
        .quiet()
        .ignore_stdout()
        .run()
        .is_err()
    {
        eprintln!(
            "note: npm is missing, so the Supabase CLI interop tests are skipped \
             (PLOVER_SKIP_SUPABASE_CLI_TESTS=1); install npm to run them"
        );
        sh.set_var("PLOVER_SKIP_SUPABASE_CLI_TESTS", "1");
        return Ok(());
    }
    let dir = std::env::temp_dir().join("plover-supabase-cli");
    let cli = cmd!(sh, ".ci/supabase-cli-up {dir}")
        .read()
        .context("installing the Supabase CLI for the interop tests (.ci/supabase-cli-up)")?;
    eprintln!("the Supabase CLI interop tests use {}", cli.trim());
    sh.set_var("PLOVER_SUPABASE_CLI", cli.trim());
    Ok(())
}
