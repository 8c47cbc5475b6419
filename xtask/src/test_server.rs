//! `cargo xtask test-server`: start, stop or inspect the shared test server.

use anyhow::{Context, Result};
use plover::testing::{NativeServer, left_behind, quote_ident, state_dir, stop_shared};
use xshell::{Shell, cmd};

use crate::flags::TestServer;

/// The label the Docker provider puts on its containers.
const DOCKER_LABEL: &str = "label=plover.test-server";

impl TestServer {
    pub async fn run(self, sh: &Shell) -> Result<()> {
        match self {
            TestServer::Start => {
                let server = NativeServer::shared()
                    .await
                    .context("starting the shared test server")?;
                println!("{}", server.url("postgres"));
            }
            TestServer::Stop => stop_all(sh)?,
            TestServer::Leftovers => {
                let left = leftovers().await?;
                if left.is_empty() {
                    println!("no test database left behind");
                } else {
                    anyhow::bail!("test databases left behind: {}", left.join(", "));
                }
            }
        }
        Ok(())
    }
}

/// Stops the native test server and removes the Docker provider's containers.
pub fn stop_all(sh: &Shell) -> Result<()> {
    if stop_shared().context("stopping the shared test server")? {
        println!("stopped the shared test server");
    } else {
        println!("no shared test server was running");
    }
    let containers = cmd!(sh, "docker ps -aq --filter {DOCKER_LABEL}")
        .quiet()
        .ignore_stderr()
        .read()
        .unwrap_or_default();
    let ids: Vec<&str> = containers.split_whitespace().collect();
    if !ids.is_empty() {
        cmd!(sh, "docker rm -f -v {ids...}")
            .quiet()
            .ignore_stdout()
            .run()
            .context("removing the Docker test server")?;
        let _ = std::fs::remove_file(state_dir().join("docker.state"));
        println!("removed the Docker test server");
    }
    Ok(())
}

/// Test databases handed out to tests and still on the native test server, if it
/// runs ([`plover::testing::left_behind`]: the clones ended test processes made for
/// themselves and never handed out are dropped first, not reported).
pub async fn leftovers() -> Result<Vec<String>> {
    let Some(url) = running_native_url() else {
        return Ok(Vec::new());
    };
    let client = plover::connect(&url).await?;
    let left = left_behind(&client)
        .await
        .context("listing the test databases left behind")?;
    Ok(left.iter().map(|n| quote_ident(n)).collect())
}

/// The native test server's admin URL, when one runs.
fn running_native_url() -> Option<String> {
    NativeServer::running().map(|s| s.url("postgres"))
}
