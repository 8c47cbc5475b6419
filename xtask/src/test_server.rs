//! `cargo xtask test-server`: start or stop the shared test server.

use anyhow::{Context, Result};
use plover::testing::{NativeServer, stop_shared};

use crate::flags::TestServer;

impl TestServer {
    pub async fn run(self) -> Result<()> {
        match self {
            TestServer::Start => {
                let server = NativeServer::shared()
                    .await
                    .context("starting the shared test server")?;
                println!("{}", server.url("postgres"));
            }
            TestServer::Stop => {
                if stop_shared().context("stopping the shared test server")? {
                    println!("stopped the shared test server");
                } else {
                    println!("no shared test server was running");
                }
            }
        }
        Ok(())
    }
}
