//! The standalone health server: an HTTP/2 engine on the `h2` crate, [`serve`] on the
//! caller's runtime, [`Standalone`] on a thread and runtime of its own.
//!
//! # How it works
//!
//! - An accept loop hands each connection to [`Engine::serve_connection`], which takes any
//!   `AsyncRead + AsyncWrite` I/O: TCP or a Unix domain socket ([`Listener`]).
//! - The first bytes are sniffed: the HTTP/2 preface goes to the HTTP/2 engine, anything
//!   else to HTTP/1.1 (hyper), whose requests go to the [`HttpHandler`] (404 without one).
//! - An HTTP/2 connection is one task. Its streams live inside it: each stream has a waker
//!   that queues it on the connection, and each wake-up polls only the queued streams, then
//!   flushes once. A status flip seen by 10,000 watchers on one connection is one pass and a
//!   few `writev` calls, and a probe (connect, Check, close) gets the server's SETTINGS,
//!   the ACK of its own and the answer in one write. The Watch streams of one connection on
//!   one name share one registry waiter, so a flip wakes each connection once, not each
//!   stream. Check and Watch answers
//!   are static frames; an open Watch holds the `h2` send handle, its waker, the status it
//!   sent last and its place among its name's streams, nothing else.
//! - gRPC calls to `grpc.health.v1.Health/{Check,Watch,List}` are served here; other gRPC
//!   paths go to the fallback service (reflection by default on [`Standalone`]) or are
//!   answered `UNIMPLEMENTED`; requests that are not gRPC go to the [`HttpHandler`].
//! - Stopping drains *this server's* streams only: every Watch gets a last `NOT_SERVING`
//!   and ends, GOAWAY goes out, and what is still open when the grace period ends is closed.
//!   The registry is not touched.

mod answer;
mod conn;
mod cork;
mod fallback;
mod http1;
mod listen;
mod ready;
mod tls;

use std::{
    fmt, io,
    net::{SocketAddr, TcpListener as StdTcpListener, ToSocketAddrs},
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc, Arc,
    },
    thread,
    time::Duration,
};

use bytes::Bytes;
use dubbo_health_core::{Registry, StableDeref, Storage};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::oneshot,
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

use crate::probe::{ProbeBodies, ProbeHandler, ProbeState, Probes};

pub use fallback::{BoxError, RequestBody};
pub use listen::{ListenAddress, Listener};
pub use tls::{TlsConfig, TLS_RELOAD_POLL};

/// HTTP/2 streams one connection may have open at once: 100,000.
///
/// gRPC clients multiplex every Watch of a process onto one connection (grpc-go, grpc-java
/// and Envoy all do), so a proxy or a client-side health checker with tens of thousands of
/// watched backends needs that many streams on a single connection. An open Watch costs well
/// under a kilobyte here (see `docs/bench.md`), so the cap bounds one connection to some
/// tens of megabytes, and keeps a misbehaving client from taking the process down.
pub const MAX_CONCURRENT_STREAMS: u32 = 100_000;

/// HTTP/2 PING interval: 60 s. Long-lived Watch connections through NATs and load balancers
/// stay open, and dead peers are found (and their Watch streams dropped) without waiting for
/// TCP. It is longer than grpc-go clients' minimum accepted interval, so clients never answer
/// with `ENHANCE_YOUR_CALM`.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);

/// How long an HTTP/2 PING may go unanswered before the connection is closed: 20 s. Also
/// how long a new connection may take to send its first bytes (the HTTP/2 preface).
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Receive window per connection: 1 MiB, so thousands of streams opening at once (each
/// sends a request of a few dozen bytes) are never held back by flow control.
pub const CONNECTION_WINDOW: u32 = 1024 * 1024;

/// Receive window per stream: 64 KiB, HTTP/2's default. Health requests are tiny, and the
/// window is a credit, not a buffer: it costs no memory until data arrives.
pub const STREAM_WINDOW: u32 = 64 * 1024;

/// Largest header block a request may send: 16 KiB (hyper's and grpc-go's default is in the
/// same range). Health requests send a handful of short headers.
pub const MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;

/// Largest body a plain-HTTP request (HTTP/1.1, or an HTTP/2 request that is not gRPC) may
/// send before it is answered `413 Payload Too Large`: 64 KiB.
pub const PLAIN_BODY_LIMIT: usize = 64 * 1024;

/// Streams a client may reset before the server has even seen them, per connection, before
/// the connection is closed (the HTTP/2 "rapid reset" attack, CVE-2023-44487): 20, as hyper.
const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;

/// How much framing overhead of small DATA frames a connection may have buffered before the
/// server reads them (h2 counts 256 bytes less the payload per small frame, and closes the
/// connection with `ENHANCE_YOUR_CALM` past the budget): room for one small request frame
/// on every one of [`MAX_CONCURRENT_STREAMS`] streams. h2's default (25,600, about 100
/// frames) would close a connection on which a client opens a few hundred Watch streams in
/// one burst, which grpc-go and grpc-java clients do; every request frame is read in the
/// same wake-up it arrives in, so the budget is only ever used for that long.
const SMALL_DATA_FRAME_BUDGET: usize = MAX_CONCURRENT_STREAMS as usize * 256;

/// A tonic server builder with the settings this crate's own servers use: TCP_NODELAY on (a
/// `Check` answer is one small write; Nagle would hold it back), HTTP/2
/// [`MAX_CONCURRENT_STREAMS`], [`KEEPALIVE_INTERVAL`] / [`KEEPALIVE_TIMEOUT`],
/// [`CONNECTION_WINDOW`] and [`STREAM_WINDOW`] — chosen for tens of thousands of open Watch
/// streams. Hosts that mount the health service beside their own may start from it.
///
/// ```
/// let builder = dubbo_health_tonic::server_builder();
/// # drop(builder);
/// ```
pub fn server_builder() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .initial_connection_window_size(CONNECTION_WINDOW)
        .initial_stream_window_size(STREAM_WINDOW)
}

/// Answers plain HTTP: HTTP/1.1 requests, and HTTP/2 requests whose `content-type` is not
/// `application/grpc*`, on the standalone server's port.
///
/// The body is read in full first (at most [`PLAIN_BODY_LIMIT`] bytes; larger bodies are
/// answered `413` without a call). The handler runs on the server's thread, so it must not
/// block: reading the registry is what it is for (probes such as `/ready`, a JSON Check).
/// Without a handler, every plain request is answered `404 Not Found`.
///
/// ```
/// use bytes::Bytes;
/// use dubbo_health_tonic::server::HttpHandler;
///
/// struct Live;
///
/// impl HttpHandler for Live {
///     fn handle(&self, request: http::Request<Bytes>) -> http::Response<Bytes> {
///         let status = if request.uri().path() == "/live" { 200 } else { 404 };
///         http::Response::builder().status(status).body(Bytes::new()).unwrap()
///     }
/// }
/// # let _ = Live.handle(http::Request::new(Bytes::new()));
/// ```
pub trait HttpHandler: Send + Sync + 'static {
    /// The response to one plain-HTTP request.
    fn handle(&self, request: http::Request<Bytes>) -> http::Response<Bytes>;
}

impl<F> HttpHandler for F
where
    F: Fn(http::Request<Bytes>) -> http::Response<Bytes> + Send + Sync + 'static,
{
    fn handle(&self, request: http::Request<Bytes>) -> http::Response<Bytes> {
        self(request)
    }
}

/// What every connection of one server shares.
struct Shared<R> {
    registry: R,
    max_request_size: usize,
    http: Option<Arc<dyn HttpHandler>>,
    fallback: Option<fallback::Fallback>,
    drain: CancellationToken,
    probe_state: ProbeState,
    /// The probes (tied to `drain`), for a probe port.
    probes: Probes<R>,
    /// Whether serving marks the host started (`/startup`).
    auto_start: bool,
    h2: h2::server::Builder,
    /// Streams being read or watched, over all connections.
    open_calls: Arc<AtomicUsize>,
    /// TLS on every accepted connection.
    tls: Option<TlsConfig>,
}

fn h2_builder() -> h2::server::Builder {
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(MAX_HEADER_LIST_SIZE)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
        .data_frame_budget(SMALL_DATA_FRAME_BUDGET);
    builder
}

/// The health server's engine: its settings, handlers and drain switch, shared by all of its
/// connections. [`Standalone`] runs one on its own thread; [`Engine::serve_connection`] and
/// [`Engine::serve`] run one on the caller's tokio runtime.
///
/// Cloning gives another handle to the same engine.
///
/// ```no_run
/// use dubbo_health_core::FixedRegistry;
/// use dubbo_health_tonic::Standalone;
///
/// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> std::io::Result<()> {
///     let engine = Standalone::builder(&HEALTH).engine();
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
///     loop {
///         let (tcp, _) = listener.accept().await?;
///         tcp.set_nodelay(true)?;
///         // Any AsyncRead + AsyncWrite works here: a TLS stream, a Unix socket.
///         tokio::spawn(engine.serve_connection(tcp));
///     }
/// }
/// ```
pub struct Engine<R> {
    shared: Arc<Shared<R>>,
}

impl<R> Clone for Engine<R> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<R> fmt::Debug for Engine<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("max_request_size", &self.shared.max_request_size)
            .field("http_handler", &self.shared.http.is_some())
            .field("fallback", &self.shared.fallback.is_some())
            .field("draining", &self.is_draining())
            .finish_non_exhaustive()
    }
}

impl<R> Engine<R> {
    /// Starts this engine's drain: every Watch stream it serves (and every one that opens
    /// from now on) gets a last `NOT_SERVING` and ends, each connection gets GOAWAY and
    /// closes once its calls are done, and [`Engine::serve`] stops accepting. The registry
    /// is not touched, nor other servers on it.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let engine = dubbo_health_tonic::Standalone::builder(&HEALTH).engine();
    /// engine.drain();
    /// assert!(engine.is_draining());
    /// ```
    pub fn drain(&self) {
        self.shared.drain.cancel();
    }

    /// Whether [`drain`](Self::drain) was called.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let engine = dubbo_health_tonic::Standalone::builder(&HEALTH).engine();
    /// assert!(!engine.is_draining());
    /// ```
    pub fn is_draining(&self) -> bool {
        self.shared.drain.is_cancelled()
    }

    /// The calls this engine holds right now, over all its connections: Watch streams,
    /// and calls whose request is still arriving. A cancelled Watch, a reset stream or a
    /// closed connection leaves this count at once.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let engine = dubbo_health_tonic::Standalone::builder(&HEALTH).engine();
    /// assert_eq!(engine.open_calls(), 0);
    /// ```
    pub fn open_calls(&self) -> usize {
        self.shared.open_calls.load(Ordering::Relaxed)
    }

    /// The state this engine's probes read: mark the host started here (`/startup`).
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let engine = dubbo_health_tonic::Standalone::builder(&HEALTH).engine();
    /// engine.probe_state().mark_started();
    /// ```
    pub fn probe_state(&self) -> &ProbeState {
        &self.shared.probe_state
    }
}

impl<S: Storage, R> Engine<R>
where
    R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
{
    /// Serves one connection on the current tokio runtime until it closes: HTTP/2 (gRPC
    /// health, the fallback, plain HTTP) if it starts with the HTTP/2 preface, HTTP/1.1
    /// otherwise. The future needs a runtime with timers enabled.
    ///
    /// # Errors
    ///
    /// The connection failed with an I/O error, or sent nothing within
    /// [`KEEPALIVE_TIMEOUT`].
    ///
    /// ```
    /// use dubbo_health_core::FixedRegistry;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    ///
    /// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let engine = dubbo_health_tonic::Standalone::builder(&HEALTH).engine();
    /// let (mut client, server) = tokio::io::duplex(4096);
    /// tokio::spawn(engine.serve_connection(server));
    /// client.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    /// let mut answer = [0u8; 12];
    /// client.read_exact(&mut answer).await.unwrap();
    /// assert_eq!(&answer, b"HTTP/1.1 404"); // not a probe path, and no plain-HTTP handler
    /// # });
    /// ```
    pub fn serve_connection<IO>(
        &self,
        io: IO,
    ) -> impl std::future::Future<Output = io::Result<()>> + Send + 'static
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        async move {
            let start = async {
                let (is_h2, io) = http1::sniff(io).await?;
                if !is_h2 {
                    return Ok(Err(io));
                }
                // The cork is held from the start: the server SETTINGS leave with the
                // first answers, in the connection's first write.
                let (io, cork) = cork::Corked::new(io);
                let h2 = shared
                    .h2
                    .handshake::<_, Bytes>(io)
                    .await
                    .map_err(|e| io::Error::other(e.to_string()))?;
                Ok::<_, io::Error>(Ok((h2, cork)))
            };
            let started = tokio::time::timeout(KEEPALIVE_TIMEOUT, start)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no HTTP preface"))??;
            match started {
                Ok((h2, cork)) => conn::H2Conn::new(h2, cork, shared).await,
                Err(io) => http1::serve(io, shared.http.clone(), shared.drain.clone()).await,
            }
        }
    }

    /// An engine for a probe port (as Dubbo's QoS uses 22222): the probes and JSON calls of
    /// this engine, whose `/ready` says `503` as soon as *this* engine drains, and gRPC
    /// health, without the fallback, in plaintext even when this engine serves TLS. Its own
    /// drain is separate, so it keeps answering through this engine's drain: run it until
    /// the process ends.
    ///
    /// ```no_run
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// # async fn run() -> std::io::Result<()> {
    /// let engine = dubbo_health_tonic::Standalone::builder(&HEALTH).engine();
    /// let probes = tokio::net::TcpListener::bind("127.0.0.1:22222").await?;
    /// let probe_server = engine.probe_server();
    /// tokio::spawn(async move {
    ///     probe_server.serve(probes, std::future::pending(), std::time::Duration::ZERO).await
    /// });
    /// # Ok(()) }
    /// ```
    pub fn probe_server(&self) -> Engine<R> {
        Engine {
            shared: Arc::new(Shared {
                registry: self.shared.registry.clone(),
                max_request_size: self.shared.max_request_size,
                http: Some(Arc::new(ProbeHandler {
                    probes: self.shared.probes.clone(),
                    next: None,
                })),
                fallback: None,
                drain: CancellationToken::new(),
                probe_state: self.shared.probe_state.clone(),
                probes: self.shared.probes.clone(),
                auto_start: false,
                h2: h2_builder(),
                open_calls: Arc::default(),
                // The probe port speaks plaintext, as Dubbo's QoS port and a kubelet's
                // default `httpGet` scheme do, whether or not the main port serves TLS.
                tls: None,
            }),
        }
    }

    /// Accepts connections on `listener` (a tokio `TcpListener`, or a [`Listener`]: TCP or
    /// a Unix domain socket, whose file is removed when this returns) until `signal` completes or [`drain`](Self::drain)
    /// is called, then drains: stops accepting, ends this engine's Watch streams (each after
    /// a last `NOT_SERVING`), sends GOAWAY, waits up to `grace` for the connections to
    /// close, and closes whatever is left. TCP_NODELAY is set on every connection.
    ///
    /// # Errors
    ///
    /// None so far: accept errors (such as running out of file descriptors) are waited
    /// out, not returned.
    ///
    /// ```no_run
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// # async fn run() -> std::io::Result<()> {
    /// let engine = dubbo_health_tonic::Standalone::builder(&HEALTH).engine();
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// engine
    ///     .serve(listener, async { tokio::signal::ctrl_c().await.ok(); }, std::time::Duration::from_secs(5))
    ///     .await
    /// # }
    /// ```
    pub async fn serve<L, F>(&self, listener: L, signal: F, grace: Duration) -> io::Result<()>
    where
        L: Into<Listener>,
        F: std::future::Future<Output = ()>,
    {
        self.serve_until(listener.into(), async {
            signal.await;
            grace
        })
        .await
    }

    /// Serves an accepted connection in `conns`: through a TLS handshake first when the
    /// engine has TLS (bounded by [`KEEPALIVE_TIMEOUT`]; a failed handshake just closes it).
    fn spawn_connection<IO>(&self, conns: &mut JoinSet<io::Result<()>>, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Some(tls) = &self.shared.tls else {
            conns.spawn(self.serve_connection(io));
            return;
        };
        let acceptor = tls.acceptor();
        let engine = Engine {
            shared: Arc::clone(&self.shared),
        };
        conns.spawn(async move {
            let stream = tokio::time::timeout(KEEPALIVE_TIMEOUT, acceptor.accept(io))
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
                })??;
            engine.serve_connection(stream).await
        });
    }

    /// [`serve`](Self::serve) with the grace period given by the signal itself.
    async fn serve_until<F>(&self, listener: Listener, signal: F) -> io::Result<()>
    where
        F: std::future::Future<Output = Duration>,
    {
        if self.shared.auto_start {
            self.shared.probe_state.mark_started();
        }
        let mut conns = JoinSet::new();
        let mut signal = std::pin::pin!(signal);
        let drain = self.shared.drain.clone();
        let grace = loop {
            tokio::select! {
                grace = &mut signal => break grace,
                () = drain.cancelled() => break Duration::MAX,
                accepted = listener.accept() => match accepted {
                    Ok(listen::Accepted::Tcp(tcp)) => self.spawn_connection(&mut conns, tcp),
                    #[cfg(unix)]
                    Ok(listen::Accepted::Unix(unix)) => self.spawn_connection(&mut conns, unix),
                    // Out of file descriptors, or a connection reset before it was
                    // accepted: wait a little rather than spin, and go on.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        };
        drop(listener);
        self.drain();
        let deadline = tokio::time::Instant::now()
            .checked_add(grace)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
        let wait = async { while conns.join_next().await.is_some() {} };
        if tokio::time::timeout_at(deadline, wait).await.is_err() {
            conns.shutdown().await;
        }
        Ok(())
    }
}

/// Serves `grpc.health.v1.Health` for `registry` on `addr`, on the current tokio runtime,
/// until an I/O error. Use [`serve_with_shutdown`] to stop it, or [`Standalone`] for a server
/// with its own runtime.
///
/// # Errors
///
/// The address cannot be bound.
///
/// ```no_run
/// use dubbo_health_core::FixedRegistry;
///
/// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> std::io::Result<()> {
///     dubbo_health_tonic::serve("127.0.0.1:50051".parse().unwrap(), &HEALTH).await
/// }
/// ```
pub async fn serve<S: Storage, R>(addr: SocketAddr, registry: R) -> io::Result<()>
where
    R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
{
    let listener = TcpListener::bind(addr).await?;
    serve_with_shutdown(listener, registry, std::future::pending(), Duration::ZERO).await
}

/// Serves `grpc.health.v1.Health` for `registry` on `listener` until `signal` completes,
/// then drains this server: it stops accepting, each of its Watch streams gets a last
/// `NOT_SERVING` (unless that is what it sent last) and ends, GOAWAY goes out, and after
/// `grace` whatever is still open is closed. The registry is not touched: call
/// [`Registry::shutdown`] first for a drain that every door and every watcher sees (the CLI
/// does so on SIGTERM).
///
/// # Errors
///
/// None so far (see [`Engine::serve`]).
///
/// ```no_run
/// use std::time::Duration;
/// use dubbo_health_core::FixedRegistry;
///
/// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> std::io::Result<()> {
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
///     eprintln!("listening {}", listener.local_addr()?);
///     let signal = async {
///         tokio::signal::ctrl_c().await.ok();
///         HEALTH.shutdown(); // every door says NOT_SERVING
///     };
///     dubbo_health_tonic::serve_with_shutdown(listener, &HEALTH, signal, Duration::from_secs(5)).await
/// }
/// ```
pub async fn serve_with_shutdown<S: Storage, R, F>(
    listener: TcpListener,
    registry: R,
    signal: F,
    grace: Duration,
) -> io::Result<()>
where
    R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = ()>,
{
    Standalone::builder(registry)
        .engine()
        .serve(listener, signal, grace)
        .await
}

enum Bind {
    Addrs(io::Result<Vec<SocketAddr>>),
    Listener(StdTcpListener),
    Address(io::Result<ListenAddress>),
}

impl Bind {
    /// The listener, bound if need be, non-blocking.
    fn bind(self) -> io::Result<listen::Bound> {
        Ok(match self {
            Bind::Listener(l) => {
                l.set_nonblocking(true)?;
                listen::Bound::Tcp(l)
            }
            Bind::Addrs(addrs) => ListenAddress::Tcp(addrs?).bind()?,
            Bind::Address(address) => address?.bind()?,
        })
    }
}

/// Options of a [`Standalone`] server (and of an [`Engine`]), made by
/// [`Standalone::builder`].
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use dubbo_health_core::HeapRegistry;
/// use dubbo_health_tonic::Standalone;
///
/// let registry = Arc::new(HeapRegistry::new());
/// let server = Standalone::builder(registry)
///     .addr("127.0.0.1:0")
///     .max_request_size(64 * 1024)
///     .reflection(false)
///     .start()
///     .unwrap();
/// server.stop(Duration::from_secs(1)).unwrap();
/// ```
pub struct StandaloneBuilder<R> {
    registry: R,
    bind: Bind,
    max_request_size: usize,
    http: Option<Arc<dyn HttpHandler>>,
    fallback: Option<fallback::Fallback>,
    reflection: bool,
    tls: Option<TlsConfig>,
    probes: bool,
    probe_bind: Option<Bind>,
    probe_bodies: ProbeBodies,
    started: bool,
}

impl<R> fmt::Debug for StandaloneBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandaloneBuilder")
            .field("max_request_size", &self.max_request_size)
            .field("http_handler", &self.http.is_some())
            .field("fallback", &self.fallback.is_some())
            .field("reflection", &self.reflection)
            .field("tls", &self.tls)
            .field("probes", &self.probes)
            .field("probe_addr", &self.probe_bind.is_some())
            .field("probe_bodies", &self.probe_bodies)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl<St: Storage, R> StandaloneBuilder<R>
where
    R: StableDeref<Target = Registry<St>> + Clone + Send + Sync + 'static,
{
    /// The address to listen on (port 0 picks a free port). The default is
    /// `127.0.0.1:0`.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let server = dubbo_health_tonic::Standalone::builder(&HEALTH).addr("[::1]:0").start();
    /// # drop(server);
    /// ```
    #[must_use]
    pub fn addr<A: ToSocketAddrs>(mut self, addr: A) -> Self {
        self.bind = Bind::Addrs(addr.to_socket_addrs().map(Iterator::collect));
        self
    }

    /// The address to listen on, as text: `host:port` (host names resolve; the first address
    /// that binds is used), or `unix:PATH` / `unix:///PATH` for a Unix domain socket (see
    /// [`ListenAddress`]). A Unix socket file is removed when the server stops; a stale one
    /// (nothing accepts on it) is replaced at start, a live one is `AddrInUse`.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let path = std::env::temp_dir().join(format!("dh-doc-{}.sock", std::process::id()));
    /// let server = dubbo_health_tonic::Standalone::builder(&HEALTH)
    ///     .address(&format!("unix:{}", path.display()))
    ///     .start()
    ///     .unwrap();
    /// assert_eq!(server.unix_path(), Some(path.as_path()));
    /// server.stop(std::time::Duration::from_secs(1)).unwrap();
    /// assert!(!path.exists());
    /// ```
    #[must_use]
    pub fn address(mut self, address: &str) -> Self {
        self.bind = Bind::Address(ListenAddress::parse(address));
        self
    }

    /// Listens on a Unix domain socket at `path` (`address("unix:PATH")`).
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let path = std::env::temp_dir().join(format!("dh-doc-unix-{}.sock", std::process::id()));
    /// let server = dubbo_health_tonic::Standalone::builder(&HEALTH).unix(&path).start().unwrap();
    /// assert!(path.exists());
    /// drop(server);
    /// assert!(!path.exists());
    /// ```
    #[must_use]
    pub fn unix(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.bind = Bind::Address(Ok(ListenAddress::Unix(path.into())));
        self
    }

    /// Serves on a listener the caller bound already (instead of [`addr`](Self::addr)).
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let port = listener.local_addr().unwrap().port();
    /// let server = dubbo_health_tonic::Standalone::builder(&HEALTH).listener(listener).start().unwrap();
    /// assert_eq!(server.local_addr().port(), port);
    /// ```
    #[must_use]
    pub fn listener(mut self, listener: StdTcpListener) -> Self {
        self.bind = Bind::Listener(listener);
        self
    }

    /// The largest request message accepted (default
    /// [`MAX_REQUEST_SIZE`](crate::MAX_REQUEST_SIZE), 4 MiB); larger ones are answered
    /// `RESOURCE_EXHAUSTED`.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let builder = dubbo_health_tonic::Standalone::builder(&HEALTH).max_request_size(1024);
    /// # drop(builder);
    /// ```
    #[must_use]
    pub fn max_request_size(mut self, bytes: usize) -> Self {
        self.max_request_size = bytes;
        self
    }

    /// The handler of plain-HTTP requests (see [`HttpHandler`]).
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// use bytes::Bytes;
    ///
    /// let builder = dubbo_health_tonic::Standalone::builder(&HEALTH).http_handler(
    ///     |_request: http::Request<Bytes>| http::Response::new(Bytes::from_static(b"ok\n")),
    /// );
    /// # drop(builder);
    /// ```
    #[must_use]
    pub fn http_handler(mut self, handler: impl HttpHandler) -> Self {
        self.http = Some(Arc::new(handler));
        self
    }

    /// The service that gets gRPC calls to any path but `grpc.health.v1.Health/*` (instead
    /// of the built-in reflection service). Each such call runs in a task of its own, with
    /// its request and response bodies bridged to the HTTP/2 stream (flow control
    /// respected).
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// use std::convert::Infallible;
    /// use dubbo_health_tonic::server::RequestBody;
    ///
    /// let unimplemented = tower::service_fn(|_request: http::Request<RequestBody>| async {
    ///     Ok::<_, Infallible>(tonic::Status::unimplemented("nothing here").into_http::<tonic::body::Body>())
    /// });
    /// let builder = dubbo_health_tonic::Standalone::builder(&HEALTH).fallback(unimplemented);
    /// # drop(builder);
    /// ```
    #[must_use]
    pub fn fallback<S, B>(mut self, service: S) -> Self
    where
        S: tower_service::Service<http::Request<RequestBody>, Response = http::Response<B>>
            + Clone
            + Send
            + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.fallback = Some(fallback::Fallback::new(service));
        self
    }

    /// Whether the server answers gRPC reflection (`grpc.reflection.v1` and `v1alpha`, so
    /// `grpcurl` can list and describe the health service) when no other
    /// [`fallback`](Self::fallback) is set. On by default.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let builder = dubbo_health_tonic::Standalone::builder(&HEALTH).reflection(false);
    /// # drop(builder);
    /// ```
    #[must_use]
    pub fn reflection(mut self, on: bool) -> Self {
        self.reflection = on;
        self
    }

    /// Serves TLS (or mTLS, when the [`TlsConfig`] has a client CA) on every connection the
    /// server accepts, with ALPN `h2` and `http/1.1`. Certificates are reloaded when their
    /// files change. [`Engine::serve_connection`] stays plaintext: it serves the I/O it is
    /// given.
    ///
    /// ```no_run
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// use dubbo_health_tonic::server::TlsConfig;
    ///
    /// let tls = TlsConfig::from_pem_files("server.pem", "server.key", None::<&str>).unwrap();
    /// let builder = dubbo_health_tonic::Standalone::builder(&HEALTH).tls(tls);
    /// # drop(builder);
    /// ```
    #[must_use]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The engine with these options, to serve connections on the caller's runtime. (The
    /// address, if any, is not used.)
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let engine = dubbo_health_tonic::Standalone::builder(&HEALTH).engine();
    /// # drop(engine);
    /// ```
    pub fn engine(self) -> Engine<R> {
        let fallback = self
            .fallback
            .or_else(|| self.reflection.then(reflection_fallback).flatten());
        let drain = CancellationToken::new();
        let probe_state = ProbeState::new();
        let probes = Probes::new(self.registry.clone())
            .bodies(self.probe_bodies)
            .with_state(probe_state.clone())
            .with_drain(drain.clone());
        let http: Option<Arc<dyn HttpHandler>> = if self.probes {
            Some(Arc::new(ProbeHandler {
                probes: probes.clone(),
                next: self.http,
            }))
        } else {
            self.http
        };
        Engine {
            shared: Arc::new(Shared {
                registry: self.registry,
                max_request_size: self.max_request_size,
                http,
                fallback,
                drain,
                probe_state,
                probes: probes.clone(),
                auto_start: self.started,
                h2: h2_builder(),
                open_calls: Arc::default(),
                tls: self.tls,
            }),
        }
    }

    /// Whether the server's own port answers the HTTP probes (`/live`, `/ready`,
    /// `/startup`, `/ready?service=NAME`) and the JSON `Check` / `List` (see
    /// [`probe`](crate::probe)). On by default; paths they do not claim go to the
    /// [`http_handler`](Self::http_handler). A [`probe_addr`](Self::probe_addr) serves
    /// them whatever this says.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let builder = dubbo_health_tonic::Standalone::builder(&HEALTH).probes(false);
    /// # drop(builder);
    /// ```
    #[must_use]
    pub fn probes(mut self, on: bool) -> Self {
        self.probes = on;
        self
    }

    /// A second port for the probes and JSON calls (as Dubbo's QoS uses 22222). It keeps
    /// answering while the server drains — `/ready` is then `503`, `/live` `200` — until
    /// the server has stopped. (It is the same engine without the fallback: gRPC health
    /// answers there too.)
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let server = dubbo_health_tonic::Standalone::builder(&HEALTH)
    ///     .probe_addr("127.0.0.1:0")
    ///     .start()
    ///     .unwrap();
    /// assert!(server.probe_addr().is_some());
    /// ```
    #[must_use]
    pub fn probe_addr<A: ToSocketAddrs>(mut self, addr: A) -> Self {
        self.probe_bind = Some(Bind::Addrs(addr.to_socket_addrs().map(Iterator::collect)));
        self
    }

    /// The probe port on a listener the caller bound already.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let builder = dubbo_health_tonic::Standalone::builder(&HEALTH).probe_listener(listener);
    /// # drop(builder);
    /// ```
    #[must_use]
    pub fn probe_listener(mut self, listener: StdTcpListener) -> Self {
        self.probe_bind = Some(Bind::Listener(listener));
        self
    }

    /// The probe bodies: Dubbo Java QoS's `true` / `false` (the default) or dubbo-go's
    /// `ok`.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// use dubbo_health_tonic::probe::ProbeBodies;
    /// let builder = dubbo_health_tonic::Standalone::builder(&HEALTH).probe_bodies(ProbeBodies::DubboGo);
    /// # drop(builder);
    /// ```
    #[must_use]
    pub fn probe_bodies(mut self, bodies: ProbeBodies) -> Self {
        self.probe_bodies = bodies;
        self
    }

    /// Whether [`start`](Self::start) (or [`Engine::serve`]) marks the host started
    /// (`/startup` → `200`) once it listens. On by default; with `false`, call
    /// [`Standalone::mark_started`] (or `engine.probe_state().mark_started()`) when the
    /// host is ready to be probed for readiness.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let server = dubbo_health_tonic::Standalone::builder(&HEALTH).started(false).start().unwrap();
    /// assert!(!server.probe_state().is_started());
    /// server.mark_started();
    /// assert!(server.probe_state().is_started());
    /// ```
    #[must_use]
    pub fn started(mut self, started: bool) -> Self {
        self.started = started;
        self
    }

    /// Binds the address and starts serving on a new thread with its own single-threaded
    /// tokio runtime.
    ///
    /// # Errors
    ///
    /// The address does not resolve or cannot be bound, or the runtime or thread cannot be
    /// created.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let server = dubbo_health_tonic::Standalone::builder(&HEALTH).start().unwrap();
    /// assert!(server.local_addr().ip().is_loopback());
    /// ```
    pub fn start(mut self) -> io::Result<Standalone> {
        let bind = std::mem::replace(&mut self.bind, Bind::Addrs(Ok(Vec::new())));
        let bound = bind.bind()?;
        let probe_bound = self.probe_bind.take().map(Bind::bind).transpose()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (listener, probe_listener) = {
            let _guard = runtime.enter();
            (
                bound.into_tokio()?,
                probe_bound.map(listen::Bound::into_tokio).transpose()?,
            )
        };
        let local_addr = listener
            .tcp_addr()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        let unix_path = listener.unix_path().map(Into::into);
        let probe_addr = probe_listener.as_ref().and_then(Listener::tcp_addr);
        let started = self.started;
        let engine = self.engine();
        let probe_state = engine.shared.probe_state.clone();
        if started {
            probe_state.mark_started();
        }
        let probe_engine = probe_listener.map(|listener| (engine.probe_server(), listener));
        let open_calls = Arc::clone(&engine.shared.open_calls);
        let (stop_tx, stop_rx) = oneshot::channel::<Duration>();
        let (force_tx, force_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("dubbo-health-server".into())
            .spawn(move || {
                let result = runtime.block_on(async move {
                    if let Some((probe_engine, listener)) = probe_engine {
                        tokio::spawn(async move {
                            probe_engine
                                .serve_until(listener, std::future::pending())
                                .await
                        });
                    }
                    let serve = engine.serve_until(listener, async {
                        match stop_rx.await {
                            Ok(grace) => grace,
                            // Dropped without stop(): `force` ends it.
                            Err(_) => std::future::pending().await,
                        }
                    });
                    tokio::select! {
                        biased;
                        _ = force_rx => Ok(()),
                        result = serve => result,
                    }
                });
                // Whatever is still open is dropped with the runtime.
                drop(runtime);
                let _ = done_tx.send(());
                result
            })?;
        Ok(Standalone {
            local_addr,
            unix_path,
            probe_addr,
            probe_state,
            open_calls,
            stop: Some(stop_tx),
            force: Some(force_tx),
            done: done_rx,
            thread: Some(thread),
        })
    }
}

/// The built-in fallback: gRPC reflection (`grpc.reflection.v1` and `v1alpha`); other paths
/// are answered `UNIMPLEMENTED` by it.
fn reflection_fallback() -> Option<fallback::Fallback> {
    Some(fallback::Fallback::new(crate::reflection::service()))
}

/// A health server running on its own thread with its own single-threaded tokio runtime: what
/// a host without a Rust gRPC server of its own uses (the C ABI, Python, the CLI).
///
/// Dropping a `Standalone` without [`stop`](Self::stop) stops it at once.
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use dubbo_health_core::{HeapRegistry, ServingStatus};
/// use dubbo_health_tonic::Standalone;
///
/// let registry = Arc::new(HeapRegistry::new());
/// let server = Standalone::start("127.0.0.1:0", Arc::clone(&registry)).unwrap();
/// assert_ne!(server.local_addr().port(), 0);
/// server.stop(Duration::from_secs(5)).unwrap();
/// // stop() drained the server's own streams; the registry is as the host left it.
/// assert_eq!(registry.get(""), Some(ServingStatus::Serving));
/// ```
pub struct Standalone {
    local_addr: SocketAddr,
    unix_path: Option<std::path::PathBuf>,
    probe_addr: Option<SocketAddr>,
    probe_state: ProbeState,
    open_calls: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<Duration>>,
    force: Option<oneshot::Sender<()>>,
    done: mpsc::Receiver<()>,
    thread: Option<thread::JoinHandle<io::Result<()>>>,
}

impl Standalone {
    /// The options of a new server over `registry`: `.addr(..)`, handlers, then
    /// [`start`](StandaloneBuilder::start).
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let server = dubbo_health_tonic::Standalone::builder(&HEALTH).addr("127.0.0.1:0").start().unwrap();
    /// # drop(server);
    /// ```
    pub fn builder<S: Storage, R>(registry: R) -> StandaloneBuilder<R>
    where
        R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
    {
        StandaloneBuilder {
            registry,
            bind: Bind::Addrs(Ok(vec![SocketAddr::from(([127, 0, 0, 1], 0))])),
            max_request_size: crate::MAX_REQUEST_SIZE,
            http: None,
            fallback: None,
            reflection: true,
            tls: None,
            probes: true,
            probe_bind: None,
            probe_bodies: ProbeBodies::default(),
            started: true,
        }
    }

    /// Binds `addr` (port 0 picks a free port) and starts serving `registry` on a new thread:
    /// `Standalone::builder(registry).addr(addr).start()`.
    ///
    /// # Errors
    ///
    /// The address does not resolve or cannot be bound, or the runtime or thread cannot be
    /// created.
    ///
    /// ```
    /// use dubbo_health_core::FixedRegistry;
    ///
    /// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let server = dubbo_health_tonic::Standalone::start("127.0.0.1:0", &HEALTH).unwrap();
    /// println!("health on {}", server.local_addr());
    /// # drop(server);
    /// ```
    pub fn start<S: Storage, A, R>(addr: A, registry: R) -> io::Result<Self>
    where
        A: ToSocketAddrs,
        R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
    {
        Self::builder(registry).addr(addr).start()
    }

    /// The TCP address the server listens on; `0.0.0.0:0` (port 0) for a Unix domain
    /// socket (see [`unix_path`](Self::unix_path)).
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let server = dubbo_health_tonic::Standalone::start("127.0.0.1:0", &HEALTH).unwrap();
    /// assert!(server.local_addr().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The Unix domain socket path the server listens on, or `None` for TCP.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let server = dubbo_health_tonic::Standalone::start("127.0.0.1:0", &HEALTH).unwrap();
    /// assert_eq!(server.unix_path(), None);
    /// ```
    pub fn unix_path(&self) -> Option<&std::path::Path> {
        self.unix_path.as_deref()
    }

    /// The address of the probe port, if [`probe_addr`](StandaloneBuilder::probe_addr)
    /// asked for one.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let server = dubbo_health_tonic::Standalone::start("127.0.0.1:0", &HEALTH).unwrap();
    /// assert_eq!(server.probe_addr(), None);
    /// ```
    pub fn probe_addr(&self) -> Option<SocketAddr> {
        self.probe_addr
    }

    /// Marks the host started: `/startup` answers `200` from now on (for a server built
    /// with [`started(false)`](StandaloneBuilder::started)).
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let server = dubbo_health_tonic::Standalone::builder(&HEALTH).started(false).start().unwrap();
    /// server.mark_started();
    /// ```
    pub fn mark_started(&self) {
        self.probe_state.mark_started();
    }

    /// The state the server's probes read (started, stopping); clones share it.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let server = dubbo_health_tonic::Standalone::start("127.0.0.1:0", &HEALTH).unwrap();
    /// assert!(server.probe_state().is_started());
    /// ```
    pub fn probe_state(&self) -> &ProbeState {
        &self.probe_state
    }

    /// The calls the server holds right now: open Watch streams, and calls whose request
    /// is still arriving (see [`Engine::open_calls`]).
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let server = dubbo_health_tonic::Standalone::start("127.0.0.1:0", &HEALTH).unwrap();
    /// assert_eq!(server.open_calls(), 0);
    /// ```
    pub fn open_calls(&self) -> usize {
        self.open_calls.load(Ordering::Relaxed)
    }

    /// Stops the server gracefully, and only this server: it stops accepting, each of its
    /// Watch streams (including ones that open during the drain) gets a last `NOT_SERVING`
    /// (unless that is what it sent last) and ends, GOAWAY goes out, and whatever is still
    /// open after `grace` is closed. Returns once the server thread has exited, within about
    /// `grace`. The registry, and other servers and mounts on it, are not touched; call
    /// [`Registry::shutdown`] first for that.
    ///
    /// # Errors
    ///
    /// The server had failed with an I/O error, or its thread panicked.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let server = dubbo_health_tonic::Standalone::start("127.0.0.1:0", &HEALTH).unwrap();
    /// server.stop(std::time::Duration::from_secs(1)).unwrap();
    /// ```
    pub fn stop(mut self, grace: Duration) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(grace);
        }
        // The server closes what is left at `grace` itself; the margin covers the closing.
        self.join(grace.saturating_add(Duration::from_millis(500)))
    }

    /// Waits up to `grace` for the server thread, then forces it to stop, and joins it.
    fn join(&mut self, grace: Duration) -> io::Result<()> {
        if self.done.recv_timeout(grace).is_err() {
            if let Some(force) = self.force.take() {
                let _ = force.send(());
            }
        }
        match self.thread.take().map(thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("health server thread panicked")),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Standalone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Standalone")
            .field("local_addr", &self.local_addr)
            .field("unix_path", &self.unix_path)
            .field("running", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.join(Duration::ZERO);
        }
    }
}
