//! `app serve`: migrate, connect, bind, announce the address on stdout, and serve
//! until SIGTERM or ctrl-c, letting requests in flight finish.
//!
//! The one line on stdout, `listening on http://<addr>`, is the contract tests and
//! scripts rely on to find the port; everything else goes to the log on stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use plover::ConnInfo;
use tokio::net::TcpListener;

use crate::cli::Serve;
use crate::db::Db;
use crate::http::{self, AppState};
use crate::migrate;

pub async fn run(conn: &ConnInfo, args: Serve) -> Result<()> {
    migrate::apply(conn).await?;
    let db = Db::connect(conn).await?;
    let listener = TcpListener::bind(args.bind.as_str())
        .await
        .with_context(|| {
            format!(
                "binding {}; pass a free host:port with --bind or BIND",
                args.bind
            )
        })?;
    let addr = listener.local_addr().context("reading the bound address")?;
    announce(addr)?;
    tracing::info!(%addr, "serving");
    let state = AppState {
        db: Arc::new(db),
        app: migrate::APP,
    };
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
}

fn announce(addr: SocketAddr) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{addr}")
        .and_then(|()| out.flush())
        .context("writing the listening address to stdout")
}

/// Resolves on the first SIGTERM or ctrl-c.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received; finishing requests in flight"),
        () = terminate => tracing::info!("SIGTERM received; finishing requests in flight"),
    }
}
