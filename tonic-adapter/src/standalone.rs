//! A health-only gRPC server: [`serve`] on the caller's runtime, [`Standalone`] on its own.

use std::{
    fmt, io,
    net::{SocketAddr, TcpListener as StdTcpListener, ToSocketAddrs},
    sync::mpsc,
    thread,
    time::Duration,
};

use dubbo_health_core::{Registry, StableDeref, Storage};
use tokio::{net::TcpListener, sync::oneshot};
use tonic::transport::server::TcpIncoming;

use crate::HealthService;

/// HTTP/2 streams one connection may have open at once: 100,000.
///
/// gRPC clients multiplex every Watch of a process onto one connection (grpc-go, grpc-java
/// and Envoy all do), so a proxy or a client-side health checker with tens of thousands of
/// watched backends needs that many streams on a single connection; hyper's default (200)
/// would queue them. Each open Watch costs about a kilobyte here, so the cap bounds one
/// connection to roughly 100 MB, which keeps a misbehaving client from taking the process
/// down (grpc-go's own default is unlimited).
pub const MAX_CONCURRENT_STREAMS: u32 = 100_000;

/// HTTP/2 PING interval on idle connections: 60 s. Long-lived Watch connections through
/// NATs and load balancers stay open, and dead peers are found (and their Watch streams
/// dropped) without waiting for TCP. It is longer than grpc-go clients' minimum accepted
/// interval, so clients never answer with `ENHANCE_YOUR_CALM`.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);

/// How long an HTTP/2 PING may go unanswered before the connection is closed: 20 s.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Receive window per connection: 1 MiB, so thousands of streams opening at once (each
/// sends a request of a few dozen bytes) are never held back by flow control.
pub const CONNECTION_WINDOW: u32 = 1024 * 1024;

/// Receive window per stream: 64 KiB, HTTP/2's default. Health requests are tiny, and the
/// window is a credit, not a buffer: it costs no memory until data arrives.
pub const STREAM_WINDOW: u32 = 64 * 1024;

/// A tonic server builder with the settings this crate uses for its own servers: TCP_NODELAY
/// on (a `Check` answer is one small write; Nagle would hold it back), HTTP/2
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

/// Serves `grpc.health.v1.Health` for `registry` on `addr`, on the current tokio runtime,
/// until an I/O error. Use [`serve_with_shutdown`] to stop it, or [`Standalone`] for a server
/// with its own runtime.
///
/// # Errors
///
/// The address cannot be bound, or the server fails.
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
    serve_with_shutdown(listener, registry, std::future::pending()).await
}

/// Serves `grpc.health.v1.Health` for `registry` on `listener` until `signal` completes, then
/// drains: the registry is [shut down](Registry::shutdown) (every watcher is sent
/// `NOT_SERVING`), every open Watch stream is [ended](Registry::end_watches), and the server
/// stops once the calls in flight have finished.
///
/// # Errors
///
/// The server fails.
///
/// ```no_run
/// use dubbo_health_core::FixedRegistry;
///
/// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> std::io::Result<()> {
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
///     eprintln!("listening {}", listener.local_addr()?);
///     dubbo_health_tonic::serve_with_shutdown(listener, &HEALTH, async {
///         tokio::signal::ctrl_c().await.ok();
///     })
///     .await
/// }
/// ```
pub async fn serve_with_shutdown<S: Storage, R, F>(
    listener: TcpListener,
    registry: R,
    signal: F,
) -> io::Result<()>
where
    R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = ()>,
{
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let service = HealthService::new(registry.clone()).server();
    let drained = async move {
        signal.await;
        registry.shutdown();
        registry.end_watches();
    };
    server_builder()
        .serve_with_incoming_shutdown(service, incoming, drained)
        .await
        .map_err(io::Error::other)
}

/// A health server running on its own thread with its own single-threaded tokio runtime: what
/// a host without a Rust gRPC server of its own uses (the C ABI, Python, the CLI).
///
/// A single-threaded (current-thread) runtime batches writes: when a status changes, every
/// woken Watch stream queues its message before a connection flushes, so a flip seen by
/// 10,000 watchers on one connection becomes a few `writev` calls instead of 10,000.
///
/// Dropping a `Standalone` without [`stop`](Self::stop) stops it at once, leaving the
/// registry as it is.
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
/// // stop() drained the registry first: every name is NOT_SERVING.
/// assert_eq!(registry.get(""), Some(ServingStatus::NotServing));
/// ```
pub struct Standalone {
    local_addr: SocketAddr,
    drain: Box<dyn Fn() + Send + Sync>,
    graceful: Option<oneshot::Sender<()>>,
    force: Option<oneshot::Sender<()>>,
    done: mpsc::Receiver<()>,
    thread: Option<thread::JoinHandle<io::Result<()>>>,
}

impl Standalone {
    /// Binds `addr` (port 0 picks a free port) and starts serving `registry` on a new thread.
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
        let std_listener = StdTcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let local_addr = std_listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(std_listener)?
        };
        let (graceful_tx, graceful_rx) = oneshot::channel::<()>();
        let (force_tx, force_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        let drain_registry = registry.clone();
        let thread = thread::Builder::new()
            .name("dubbo-health-server".into())
            .spawn(move || {
                let result = runtime.block_on(async move {
                    let serve = serve_with_shutdown(listener, registry, async {
                        // Only `stop` drains; a dropped handle stops through `force` alone.
                        if graceful_rx.await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    });
                    // `force` first: once forced, the serve branch (which may drain the
                    // registry on its shutdown signal) must not run again.
                    tokio::select! {
                        biased;
                        _ = force_rx => Ok(()),
                        result = serve => result,
                    }
                });
                // Open connections and streams are dropped with the runtime.
                drop(runtime);
                let _ = done_tx.send(());
                result
            })?;
        Ok(Self {
            local_addr,
            drain: Box::new(move || {
                drain_registry.shutdown();
                drain_registry.end_watches();
            }),
            graceful: Some(graceful_tx),
            force: Some(force_tx),
            done: done_rx,
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
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

    /// Stops the server gracefully: runs the registry's [`shutdown`](Registry::shutdown)
    /// (watchers see `NOT_SERVING`), [ends every Watch stream](Registry::end_watches), stops
    /// accepting connections and waits up to `grace` for calls in flight to finish; whatever
    /// is still open then is closed. Returns once the server thread has exited.
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
        (self.drain)();
        self.finish(grace)
    }

    fn finish(&mut self, grace: Duration) -> io::Result<()> {
        if let Some(graceful) = self.graceful.take() {
            let _ = graceful.send(());
        }
        self.join(grace)
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
            .field("running", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // No drain: the registry is left as the host had it.
            let _ = self.join(Duration::ZERO);
        }
    }
}
