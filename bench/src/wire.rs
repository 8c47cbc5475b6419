//! A loopback TCP proxy for `cargo xtask bench peers`: every tool connects to the
//! test server through it, and it counts the sync points (the server's ReadyForQuery
//! messages, one per simple query or Sync) and the network turns (how many times the
//! client waited for the server's answer before it went on: messages pipelined in one
//! burst are one turn), and reads each backend's CPU time when its client says goodbye.
//!
//! A turn is counted when the server answers a client that has sent a message since
//! the server's previous answer. An answer is what hands the conversation back to the
//! client: ReadyForQuery, an authentication request, CopyInResponse, CopyBothResponse,
//! ErrorResponse, the one byte answering SSLRequest or GSSENCRequest, or any message
//! after the client sent Flush. Messages the server streams in between (rows, notices,
//! ParseComplete without a Flush) are not answers, and neither is one that arrives
//! while the client is in the middle of writing a message: a client never waits
//! half-way through its own message, so it is still writing its burst. Terminate is
//! answered by nothing, so it is no turn. The proxy sees the bytes in the order they
//! pass it, and an answer reaches the client only after the proxy has counted it: every
//! turn a client waited for is counted; a pipelining client whose next write happens to
//! come after an answer it did not wait for is counted a turn too (never fewer turns
//! than it waited).
//!
//! The proxy runs on a thread of its own (a current-thread runtime), so its CPU can be
//! taken out of the bench process's: [`Proxy::cpu`]. The protocol parsing is pure and
//! unit-tested on byte streams ([`ClientStream`], [`ServerStream`]).
//!
//! What it must not do: listen on or connect to anything but 127.0.0.1, change a byte
//! it forwards, or parse past an encrypted stream (a server that accepts TLS makes the
//! count unknown, reported as such).

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// The request codes of the untyped packets a client may send before its startup
/// message; the server answers each with one byte.
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

/// What a client's bytes mean to the proxy.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClientEvent {
    /// The client sent one or more whole messages (at most once per chunk, before the
    /// chunk's other events).
    Sent,
    /// A Flush message: the server's next message answers it.
    Flush,
    /// An SSLRequest or GSSENCRequest: the server answers with a single byte.
    ExpectReply,
    /// A Terminate message: the session is over.
    Terminate,
}

/// The client's side of a connection: untyped startup packets, then typed messages.
#[derive(Default)]
pub(crate) struct ClientStream {
    buf: Vec<u8>,
    typed: bool,
}

impl ClientStream {
    /// Takes the next bytes the client sent; returns what complete packets among them
    /// mean to the proxy.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<ClientEvent> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut pos = 0;
        loop {
            let rest = &self.buf[pos..];
            if !self.typed {
                let (Some(len), Some(code)) = (be_u32(rest, 0), be_u32(rest, 4)) else {
                    break;
                };
                let len = len as usize;
                if rest.len() < len {
                    break;
                }
                match code {
                    SSL_REQUEST | GSSENC_REQUEST => events.push(ClientEvent::ExpectReply),
                    _ => self.typed = true,
                }
                pos += len.max(8);
            } else {
                let Some(len) = be_u32(rest, 1) else { break };
                let len = len as usize + 1;
                if rest.len() < len {
                    break;
                }
                match rest[0] {
                    b'X' => events.push(ClientEvent::Terminate),
                    b'H' => events.push(ClientEvent::Flush),
                    _ => {}
                }
                pos += len.max(5);
            }
        }
        self.buf.drain(..pos);
        if pos > 0 {
            events.insert(0, ClientEvent::Sent);
        }
        events
    }
}

/// The server's side of a connection: typed messages, and a single byte in answer to
/// each SSLRequest or GSSENCRequest.
#[derive(Default)]
pub(crate) struct ServerStream {
    buf: Vec<u8>,
    pending_replies: u32,
    /// The server accepted TLS or GSS encryption: nothing after it can be read.
    pub(crate) encrypted: bool,
    /// ReadyForQuery messages seen: the sync points.
    pub(crate) sync_points: u64,
    /// Answers to a client that had begun a message since the previous answer: the
    /// network turns.
    pub(crate) turns: u64,
    /// The client sent a message since the server's last answer.
    asked: bool,
    /// The client sent Flush since the server's last message.
    flushed: bool,
    /// The client is in the middle of writing a message.
    client_writing: bool,
    /// The backend's process id, from BackendKeyData.
    pub(crate) backend_pid: Option<u32>,
}

impl ServerStream {
    /// The client asked for encryption: the server's next byte is its answer.
    pub(crate) fn expect_reply(&mut self) {
        self.pending_replies += 1;
    }

    /// The server handed the conversation back to the client.
    fn answered(&mut self) {
        if self.asked && !self.client_writing {
            self.turns += 1;
            self.asked = false;
        }
    }

    /// Takes the next bytes the server sent.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        if self.encrypted {
            return;
        }
        self.buf.extend_from_slice(bytes);
        let mut pos = 0;
        while pos < self.buf.len() {
            let rest = &self.buf[pos..];
            if self.pending_replies > 0 {
                let accepted = matches!(rest[0], b'S' | b'G');
                self.pending_replies -= 1;
                pos += 1;
                self.answered();
                if accepted {
                    self.encrypted = true;
                    break;
                }
                continue;
            }
            let Some(len) = be_u32(rest, 1) else { break };
            let len = len as usize + 1;
            if rest.len() < len {
                break;
            }
            let tag = rest[0];
            match tag {
                b'Z' => self.sync_points += 1,
                b'K' => self.backend_pid = be_u32(rest, 5),
                _ => {}
            }
            // ReadyForQuery, an authentication request, CopyInResponse,
            // CopyBothResponse, ErrorResponse, or anything after a Flush.
            if std::mem::take(&mut self.flushed) || matches!(tag, b'Z' | b'R' | b'G' | b'W' | b'E')
            {
                self.answered();
            }
            pos += len.max(5);
        }
        if self.encrypted {
            self.buf.clear();
        } else {
            self.buf.drain(..pos);
        }
    }
}

/// Both sides of a connection, in the order their bytes pass the proxy.
#[derive(Default)]
pub(crate) struct Conversation {
    client: ClientStream,
    pub(crate) server: ServerStream,
}

impl Conversation {
    /// Takes the next bytes the client sent; true when they end with a Terminate.
    pub(crate) fn client_sent(&mut self, bytes: &[u8]) -> bool {
        let mut terminated = false;
        for event in self.client.feed(bytes) {
            match event {
                ClientEvent::Sent => self.server.asked = true,
                ClientEvent::Flush => self.server.flushed = true,
                ClientEvent::ExpectReply => self.server.expect_reply(),
                ClientEvent::Terminate => terminated = true,
            }
        }
        self.server.client_writing = !self.client.buf.is_empty();
        terminated
    }

    /// Takes the next bytes the server sent.
    pub(crate) fn server_sent(&mut self, bytes: &[u8]) {
        self.server.feed(bytes);
    }
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// What the connections closed since the last [`Proxy::settle`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) connections: u64,
    /// ReadyForQuery messages (one per simple query or Sync).
    pub(crate) sync_points: u64,
    /// Network turns: the times a client waited for the server.
    pub(crate) turns: u64,
    /// The CPU time of the backends that served them.
    pub(crate) server_cpu: Duration,
    /// Connections whose backend CPU could not be read (no BackendKeyData, or no
    /// /proc entry for it).
    pub(crate) cpu_unknown: u64,
    /// Connections the server encrypted: their sync points and turns are not counted
    /// past the encryption's start.
    pub(crate) encrypted: u64,
}

/// The proxy: a listener on 127.0.0.1 in front of the server's port.
pub(crate) struct Proxy {
    port: u16,
    tally: Arc<Mutex<Tally>>,
    open: watch::Receiver<usize>,
    /// The proxy thread's /proc entry, for its CPU time.
    thread: PathBuf,
    _stop: oneshot::Sender<()>,
}

impl Proxy {
    /// Starts the proxy thread in front of 127.0.0.1:`upstream`.
    pub(crate) fn start(upstream: u16) -> Result<Proxy> {
        let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context("binding the counting proxy to 127.0.0.1")?;
        listener
            .set_nonblocking(true)
            .context("setting up the counting proxy")?;
        let port = listener.local_addr()?.port();
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (open_tx, open) = watch::channel(0usize);
        let (stop, stopped) = oneshot::channel::<()>();
        let (thread_tx, thread_rx) = std::sync::mpsc::channel();
        let shared = Arc::clone(&tally);
        std::thread::Builder::new()
            .name("bench-proxy".into())
            .spawn(move || {
                let _ = thread_tx.send(std::fs::read_link("/proc/thread-self"));
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => return eprintln!("warning: the counting proxy did not start: {e}"),
                };
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            return eprintln!("warning: the counting proxy did not start: {e}");
                        }
                    };
                    let open = Arc::new(open_tx);
                    let accept = async {
                        loop {
                            let client = match listener.accept().await {
                                Ok((client, _)) => client,
                                Err(e) => {
                                    eprintln!("warning: the counting proxy stopped accepting: {e}");
                                    break;
                                }
                            };
                            open.send_modify(|n| *n += 1);
                            let open = Arc::clone(&open);
                            let tally = Arc::clone(&shared);
                            tokio::spawn(async move {
                                let t = relay(client, upstream).await;
                                let mut all = tally.lock().unwrap_or_else(PoisonError::into_inner);
                                all.connections += t.connections;
                                all.sync_points += t.sync_points;
                                all.turns += t.turns;
                                all.server_cpu += t.server_cpu;
                                all.cpu_unknown += t.cpu_unknown;
                                all.encrypted += t.encrypted;
                                drop(all);
                                open.send_modify(|n| *n -= 1);
                            });
                        }
                    };
                    tokio::select! {
                        () = accept => {}
                        _ = stopped => {}
                    }
                });
            })
            .context("starting the counting proxy thread")?;
        let thread = thread_rx
            .recv()
            .map_err(|_| anyhow!("the counting proxy thread stopped at once"))?
            .context("reading /proc/thread-self for the proxy thread")?;
        Ok(Proxy {
            port,
            tally,
            open,
            thread: PathBuf::from("/proc").join(thread),
            _stop: stop,
        })
    }

    /// The proxy's port on 127.0.0.1.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Waits until every connection made through the proxy has closed, then returns
    /// what they did since the last call and starts a new count.
    pub(crate) async fn settle(&mut self) -> Result<Tally> {
        tokio::time::timeout(Duration::from_secs(30), self.open.wait_for(|n| *n == 0))
            .await
            .context("a connection through the counting proxy stayed open for 30 s after its tool finished")?
            .context("the counting proxy stopped")?;
        let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(std::mem::take(&mut *tally))
    }

    /// The CPU time the proxy thread has used so far.
    pub(crate) fn cpu(&self) -> Duration {
        schedstat(&self.thread.join("schedstat")).unwrap_or_default()
    }
}

/// Relays one client connection to the server until either side closes; returns
/// what it saw.
async fn relay(client: TcpStream, upstream: u16) -> Tally {
    let mut tally = Tally {
        connections: 1,
        ..Tally::default()
    };
    let server = match TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, upstream))).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: the counting proxy could not reach the server: {e}");
            tally.cpu_unknown = 1;
            return tally;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let state = Mutex::new(Conversation::default());
    let lock = || state.lock().unwrap_or_else(PoisonError::into_inner);
    let backend_cpu = Mutex::new(None::<Option<Duration>>);
    // The backend's CPU, read once: when the client terminates or hangs up, before
    // the server hears of it.
    let read_backend_cpu = || {
        let mut cpu = backend_cpu.lock().unwrap_or_else(PoisonError::into_inner);
        if cpu.is_none() {
            let pid = lock().server.backend_pid;
            *cpu = Some(
                pid.and_then(|pid| schedstat(&PathBuf::from(format!("/proc/{pid}/schedstat")))),
            );
        }
    };
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    read_backend_cpu();
                    let _ = server_write.shutdown().await;
                    break;
                }
                Ok(n) => n,
            };
            if lock().client_sent(&buf[..n]) {
                read_backend_cpu();
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = client_write.shutdown().await;
                    break;
                }
                Ok(n) => n,
            };
            lock().server_sent(&buf[..n]);
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::join!(up, down);
    let server = &lock().server;
    tally.sync_points = server.sync_points;
    tally.turns = server.turns;
    tally.encrypted = u64::from(server.encrypted);
    match backend_cpu
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .flatten()
    {
        Some(cpu) => tally.server_cpu = cpu,
        None => tally.cpu_unknown = 1,
    }
    tally
}

/// A task's time on a CPU so far, from its /proc `schedstat` (nanoseconds).
fn schedstat(path: &std::path::Path) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    let ns = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn untyped(code: u32, body: &[u8]) -> Vec<u8> {
        let mut m = (body.len() as u32 + 8).to_be_bytes().to_vec();
        m.extend_from_slice(&code.to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    /// A server's answer to a startup then two simple queries, fed in chunks of
    /// every size: three ReadyForQuery and the backend's pid, whatever the split.
    #[test]
    fn counts_ready_for_query_across_any_split() {
        let mut stream = Vec::new();
        stream.extend(message(b'R', &0u32.to_be_bytes()));
        stream.extend(message(b'S', b"server_version\x0015.14\x00"));
        stream.extend(message(b'K', &[0, 0, 0x30, 0x39, 1, 2, 3, 4]));
        stream.extend(message(b'Z', b"I"));
        stream.extend(message(b'C', b"CREATE TABLE\x00"));
        // A message whose body holds a 'Z' byte, which is not a message.
        stream.extend(message(b'N', b"ZZZZ Z\x00"));
        stream.extend(message(b'Z', b"T"));
        stream.extend(message(b'C', b"COMMIT\x00"));
        stream.extend(message(b'Z', b"I"));
        for chunk in 1..=stream.len() {
            let mut s = ServerStream::default();
            for part in stream.chunks(chunk) {
                s.feed(part);
            }
            assert_eq!(s.sync_points, 3, "chunks of {chunk}");
            assert_eq!(s.backend_pid, Some(12345));
            assert!(!s.encrypted);
        }
    }

    /// An SSLRequest refused with 'N': the byte is not taken for a message's tag.
    #[test]
    fn a_refused_ssl_request_is_one_byte() {
        let mut client = ClientStream::default();
        let mut hello = untyped(SSL_REQUEST, &[]);
        hello.extend(untyped(196_608, b"user\x00postgres\x00\x00"));
        hello.extend(message(b'Q', b"select 1\x00"));
        hello.extend(message(b'X', &[]));
        let mut events = Vec::new();
        for b in &hello {
            events.extend(client.feed(std::slice::from_ref(b)));
        }
        events.retain(|e| *e != ClientEvent::Sent);
        assert_eq!(events, [ClientEvent::ExpectReply, ClientEvent::Terminate]);

        let mut server = ServerStream::default();
        server.expect_reply();
        let mut answer = vec![b'N'];
        answer.extend(message(b'Z', b"I"));
        answer.extend(message(b'Z', b"I"));
        server.feed(&answer);
        assert_eq!(server.sync_points, 2);
        assert!(!server.encrypted);
    }

    /// A server that accepts TLS: the rest is not parsed.
    #[test]
    fn an_accepted_ssl_request_stops_the_count() {
        let mut server = ServerStream::default();
        server.expect_reply();
        let mut answer = vec![b'S'];
        answer.extend(message(b'Z', b"I"));
        server.feed(&answer);
        assert!(server.encrypted);
        assert_eq!(server.sync_points, 0);
    }

    /// A 'X' inside a query's text is not a Terminate.
    #[test]
    fn terminate_is_a_message_not_a_byte() {
        let mut client = ClientStream::default();
        let mut bytes = untyped(196_608, b"user\x00X\x00\x00");
        bytes.extend(message(b'Q', b"select 'X'\x00"));
        assert_eq!(client.feed(&bytes), [ClientEvent::Sent]);
        assert_eq!(
            client.feed(&message(b'X', &[])),
            [ClientEvent::Sent, ClientEvent::Terminate]
        );
    }

    /// Who sent a part of a conversation.
    #[derive(Clone, Copy)]
    enum Side {
        Client,
        Server,
    }

    /// Plays `conversation` through the two streams as the proxy does, each part fed
    /// in chunks of every size; checks that every split gives `(sync points, turns)`.
    fn check_turns(conversation: &[(Side, Vec<u8>)], expected: (u64, u64)) {
        let longest = conversation.iter().map(|(_, b)| b.len()).max().unwrap_or(1);
        for chunk in 1..=longest {
            let mut c = Conversation::default();
            for (side, bytes) in conversation {
                for part in bytes.chunks(chunk) {
                    match side {
                        Side::Client => {
                            c.client_sent(part);
                        }
                        Side::Server => c.server_sent(part),
                    }
                }
            }
            assert_eq!(
                (c.server.sync_points, c.server.turns),
                expected,
                "(sync points, turns) in chunks of {chunk}"
            );
        }
    }

    fn startup() -> Vec<u8> {
        untyped(196_608, b"user\x00postgres\x00database\x00db\x00\x00")
    }

    /// The server's answer to a trusted startup: AuthenticationOk to ReadyForQuery.
    fn ready() -> Vec<u8> {
        let mut m = message(b'R', &0u32.to_be_bytes());
        m.extend(message(b'S', b"server_version\x0015.14\x00"));
        m.extend(message(b'K', &[0, 0, 0x30, 0x39, 1, 2, 3, 4]));
        m.extend(message(b'Z', b"I"));
        m
    }

    fn query(sql: &str) -> Vec<u8> {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        message(b'Q', &body)
    }

    fn done(tag: &str, status: u8) -> Vec<u8> {
        let mut body = tag.as_bytes().to_vec();
        body.push(0);
        let mut m = message(b'C', &body);
        m.extend(message(b'Z', &[status]));
        m
    }

    /// Parse, Bind, Execute and Sync of one statement, as drivers send it.
    fn extended(sql: &str) -> Vec<u8> {
        let mut parse = b"\x00".to_vec();
        parse.extend_from_slice(sql.as_bytes());
        parse.extend_from_slice(b"\x00\x00\x00");
        let mut m = message(b'P', &parse);
        m.extend(message(b'B', b"\x00\x00\x00\x00\x00\x00\x00\x00"));
        m.extend(message(b'E', b"\x00\x00\x00\x00\x00"));
        m.extend(message(b'S', &[]));
        m
    }

    fn extended_done() -> Vec<u8> {
        let mut m = message(b'1', &[]);
        m.extend(message(b'2', &[]));
        m.extend(done("CREATE TABLE", b'I'));
        m
    }

    /// Connecting, one query at a time, then Terminate: a turn for the startup and
    /// one per query; the Terminate waits for nothing.
    #[test]
    fn each_query_waited_for_is_a_turn() {
        use Side::{Client, Server};
        check_turns(
            &[
                (Client, startup()),
                (Server, ready()),
                (Client, query("begin")),
                (Server, done("BEGIN", b'T')),
                (Client, query("create table t ()")),
                (Server, done("CREATE TABLE", b'T')),
                (Client, query("commit")),
                (Server, done("COMMIT", b'I')),
                (Client, message(b'X', &[])),
            ],
            (4, 4),
        );
    }

    /// Three statements pipelined in one burst, answered together: three sync points,
    /// one turn.
    #[test]
    fn a_pipelined_burst_is_one_turn() {
        use Side::{Client, Server};
        let burst = [extended("a"), extended("b"), extended("c")].concat();
        let answers = [extended_done(), extended_done(), extended_done()].concat();
        check_turns(
            &[
                (Client, startup()),
                (Server, ready()),
                (Client, burst),
                (Server, answers),
                (Client, message(b'X', &[])),
            ],
            (4, 2),
        );
    }

    /// The server answers the first of two pipelined queries while the client is
    /// still writing the second: the client was not waiting, the burst goes on, and
    /// the turn ends with the last answer.
    #[test]
    fn an_answer_while_the_client_writes_ends_no_turn() {
        use Side::{Client, Server};
        let second = extended("b");
        let (head, tail) = second.split_at(7);
        check_turns(
            &[
                (Client, startup()),
                (Server, ready()),
                (Client, [query("a"), head.to_vec()].concat()),
                (Server, done("SELECT 1", b'I')),
                (Client, tail.to_vec()),
                (Server, extended_done()),
            ],
            (3, 2),
        );
    }

    /// Rows and notices streamed before ReadyForQuery do not answer: a query the
    /// client sends meanwhile is pipelined.
    #[test]
    fn streamed_rows_are_not_an_answer() {
        use Side::{Client, Server};
        let mut rows = message(b'T', b"\x00\x00");
        rows.extend(message(b'D', b"\x00\x00"));
        rows.extend(message(b'N', b"Mnotice\x00\x00"));
        check_turns(
            &[
                (Client, startup()),
                (Server, ready()),
                (Client, query("select")),
                (Server, rows),
                (Client, query("select 2")),
                (
                    Server,
                    [done("SELECT 1", b'I'), done("SELECT 1", b'I')].concat(),
                ),
            ],
            (3, 2),
        );
    }

    /// After a Flush, whatever the server sends answers: Parse and Flush, then the
    /// rest of the statement once ParseComplete is back, are two turns (after the
    /// startup's).
    #[test]
    fn a_flush_is_answered_by_any_message() {
        use Side::{Client, Server};
        let mut parse = message(b'P', b"\x00select 1\x00\x00\x00");
        parse.extend(message(b'H', &[]));
        let mut rest = message(b'B', b"\x00\x00\x00\x00\x00\x00\x00\x00");
        rest.extend(message(b'E', b"\x00\x00\x00\x00\x00"));
        rest.extend(message(b'S', &[]));
        check_turns(
            &[
                (Client, startup()),
                (Server, ready()),
                (Client, parse),
                (Server, message(b'1', &[])),
                (Client, rest),
                (
                    Server,
                    [message(b'2', &[]), done("SELECT 1", b'I')].concat(),
                ),
            ],
            (2, 3),
        );
    }

    /// SCRAM: the startup, the client's first and final messages are a turn each;
    /// SASLFinal, AuthenticationOk and the rest up to ReadyForQuery answer the last.
    /// An SSLRequest refused first adds one.
    #[test]
    fn authentication_and_ssl_exchanges_are_turns() {
        use Side::{Client, Server};
        let auth = |code: u32, data: &[u8]| {
            let mut body = code.to_be_bytes().to_vec();
            body.extend_from_slice(data);
            message(b'R', &body)
        };
        check_turns(
            &[
                (Client, untyped(SSL_REQUEST, &[])),
                (Server, b"N".to_vec()),
                (Client, startup()),
                (Server, auth(10, b"SCRAM-SHA-256\x00\x00")),
                (
                    Client,
                    message(b'p', b"SCRAM-SHA-256\x00\x00\x00\x00\x04n,,x"),
                ),
                (Server, auth(11, b"r=abc,s=xyz,i=4096")),
                (Client, message(b'p', b"c=biws,r=abc,p=proof")),
                (Server, [auth(12, b"v=sig"), ready()].concat()),
                (Client, message(b'X', &[])),
            ],
            (1, 4),
        );
    }
}
