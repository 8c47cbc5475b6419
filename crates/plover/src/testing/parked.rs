//! A connection opened on one runtime and driven by another: the pool thread opens and
//! warms a held clone's connection, then leaves it idle, not driven by anything; the
//! runtime that takes it over drives it, its socket registered with that runtime's
//! reactor, so the test talks to the server with no other thread in between. Its
//! socket is plover's (tokio-postgres's `connect_raw`), so the client's
//! `cancel_token()` has no address to cancel with.
//!
//! Must not: let two tasks drive one connection (one owns the [`Connection`] at a
//! time); put the URL's text in an error (only its `host:port/database`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::Host;
use tokio_postgres::tls::{NoTls, NoTlsStream};
use tokio_postgres::{Client, Config, Connection};

use super::TestingError;

/// An open session and its connection, which nothing drives until [`Parked::drive`].
pub(crate) struct Parked {
    client: Client,
    connection: Connection<Movable, NoTlsStream>,
    rehome: Arc<AtomicBool>,
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parked").finish_non_exhaustive()
    }
}

impl Parked {
    /// Connects to `url` (TCP or a Unix socket, as its first reachable host says) and
    /// leaves the connection undriven.
    pub async fn open(url: &str) -> Result<Parked, TestingError> {
        let info = crate::ConnInfo::parse(url).map_err(crate::Error::from)?;
        let config = info.config();
        let stream = socket(config)
            .await
            .map_err(TestingError::io(format!("connecting to {}", info.server())))?;
        let rehome = Arc::new(AtomicBool::new(false));
        let movable = Movable {
            stream: Some(stream),
            rehome: rehome.clone(),
        };
        let (client, connection) = config
            .connect_raw(movable, NoTls)
            .await
            .map_err(crate::Error::db("connecting to the database"))?;
        Ok(Parked {
            client,
            connection,
            rehome,
        })
    }

    /// Runs `query` on the current runtime, driving the connection only until it is
    /// answered.
    pub async fn execute(&mut self, query: &str) -> Result<(), tokio_postgres::Error> {
        self.rehome.store(true, Ordering::Release);
        let answered = self.client.batch_execute(query);
        tokio::pin!(answered);
        tokio::select! {
            answer = &mut answered => answer,
            ended = &mut self.connection => match ended {
                // The server closed the session: the query says why.
                Ok(()) => answered.await,
                Err(e) => Err(e),
            },
        }
    }

    /// Hands the connection to the current runtime to drive; the client is usable from
    /// then on like any other.
    pub fn drive(self) -> Client {
        self.rehome.store(true, Ordering::Release);
        let connection = self.connection;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "database connection closed");
            }
        });
        self.client
    }
}

/// The first host of `config` that accepts a connection, as tokio-postgres tries them
/// (`hostaddr` before `host`; one port for all, or one each).
async fn socket(config: &Config) -> io::Result<Stream> {
    let addrs = config.get_hostaddrs();
    let hosts = config.get_hosts();
    let mut last = None;
    for i in 0..hosts.len().max(addrs.len()) {
        let port = config
            .get_ports()
            .get(i)
            .or_else(|| config.get_ports().first())
            .copied()
            .unwrap_or(5432);
        let opened = match (addrs.get(i), hosts.get(i)) {
            (Some(ip), _) => tcp((*ip, port)).await,
            (None, Some(Host::Tcp(host))) => tcp((host.as_str(), port)).await,
            (None, Some(Host::Unix(dir))) => {
                tokio::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}")))
                    .await
                    .map(Stream::Unix)
            }
            (None, None) => continue,
        };
        match opened {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host given")))
}

async fn tcp<A: tokio::net::ToSocketAddrs>(addr: A) -> io::Result<Stream> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(Stream::Tcp(stream))
}

enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

/// A socket that moves to the reactor of the runtime polling it, once asked to.
struct Movable {
    stream: Option<Stream>,
    rehome: Arc<AtomicBool>,
}

impl Movable {
    fn stream(&mut self) -> io::Result<&mut Stream> {
        if self.rehome.swap(false, Ordering::AcqRel) {
            self.stream = Some(match self.stream.take() {
                Some(Stream::Tcp(s)) => {
                    Stream::Tcp(tokio::net::TcpStream::from_std(s.into_std()?)?)
                }
                Some(Stream::Unix(s)) => {
                    Stream::Unix(tokio::net::UnixStream::from_std(s.into_std()?)?)
                }
                None => return Err(io::Error::other("the socket was lost moving it")),
            });
        }
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::other("the socket was lost moving it"))
    }
}

macro_rules! each {
    ($s:expr, $f:ident($($a:expr),*)) => {
        match $s {
            Stream::Tcp(s) => Pin::new(s).$f($($a),*),
            Stream::Unix(s) => Pin::new(s).$f($($a),*),
        }
    };
}

impl AsyncRead for Movable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(s) => each!(s, poll_read(cx, buf)),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Movable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().stream() {
            Ok(s) => each!(s, poll_write(cx, buf)),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(s) => each!(s, poll_flush(cx)),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(s) => each!(s, poll_shutdown(cx)),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}
