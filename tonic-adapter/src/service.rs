//! `HealthService` (the handle a host keeps) and `HealthServer` (the tower service it mounts),
//! answering every call through the [`grpc`](crate::grpc) rules.

use std::{
    convert::Infallible,
    fmt,
    future::{poll_fn, Future},
    pin::{pin, Pin},
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Buf, Bytes};
use dubbo_health_core::{Registry, StableDeref, Storage};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::server::NamedService;

use crate::{
    drain::Drain,
    grpc::{self, Call, Method, RequestBody, Status},
    watch::WatchBody,
};

/// The largest request message accepted, as gRPC's default: 4 MiB. Larger requests are
/// answered `RESOURCE_EXHAUSTED`.
pub const MAX_REQUEST_SIZE: usize = grpc::DEFAULT_MAX_MESSAGE;

/// The `grpc.health.v1.Health` service over a shared [`Registry`], and the [`Drain`] of its
/// Watch streams.
///
/// `R` is a handle to the registry that can be cloned into every call: `&'static Registry<S>`
/// (a `static`) or `Arc<Registry<S>>`. The host keeps its own handle and calls
/// [`Registry::set`] as its services come and go; nothing here copies a status. Mount
/// [`server`](Self::server) beside the host's own services, and pass
/// [`drain_after`](Self::drain_after) to the host's `serve_with_shutdown` so open Watches
/// end when it stops.
///
/// ```no_run
/// use dubbo_health_core::{FixedRegistry, ServingStatus};
/// use dubbo_health_tonic::HealthService;
///
/// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// HEALTH.set("org.apache.dubbogo.samples.api.Greeter", ServingStatus::Serving)?;
/// let health = HealthService::new(&HEALTH);
/// tonic::transport::Server::builder()
///     .add_service(health.server())
///     // .add_service(GreeterServer::new(my_greeter))
///     .serve_with_shutdown(
///         "127.0.0.1:20000".parse()?,
///         health.drain_after(async { tokio::signal::ctrl_c().await.unwrap_or(()) }),
///     )
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HealthService<R> {
    registry: R,
    drain: Drain,
}

impl<S: Storage, R> HealthService<R>
where
    R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
{
    /// The service over `registry`, with a drain of its own.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use dubbo_health_core::HeapRegistry;
    /// use dubbo_health_tonic::HealthService;
    ///
    /// let registry = Arc::new(HeapRegistry::new());
    /// let service = HealthService::new(Arc::clone(&registry));
    /// assert!(Arc::ptr_eq(service.registry(), &registry));
    /// ```
    pub fn new(registry: R) -> Self {
        Self {
            registry,
            drain: Drain::new(),
        }
    }

    /// The registry handle.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let service = dubbo_health_tonic::HealthService::new(&HEALTH);
    /// assert!(std::ptr::eq(*service.registry(), &HEALTH));
    /// ```
    pub fn registry(&self) -> &R {
        &self.registry
    }

    /// The [`Drain`] of this service's Watch streams (shared by its clones and every
    /// [`server`](Self::server) it made).
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let service = dubbo_health_tonic::HealthService::new(&HEALTH);
    /// service.drain().start();
    /// assert!(service.clone().drain().is_draining());
    /// // The registry is untouched.
    /// assert_eq!(HEALTH.get(""), Some(dubbo_health_core::ServingStatus::Serving));
    /// ```
    pub fn drain(&self) -> &Drain {
        &self.drain
    }

    /// The future for the host's stop path: waits for `signal`, then ends this service's
    /// Watch streams — each sends a last `NOT_SERVING` (unless it sent that last) and ends
    /// with OK, and streams that open afterwards do the same at once — and resolves, so
    /// tonic's `serve_with_shutdown` goes on to its graceful stop without waiting on them.
    ///
    /// The registry, and other services over it, are untouched; call
    /// [`Registry::shutdown`] as well to turn every status `NOT_SERVING` everywhere.
    ///
    /// # Cancellation
    ///
    /// Dropped before `signal` completes, nothing happens.
    ///
    /// ```no_run
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// # async fn run() -> Result<(), tonic::transport::Error> {
    /// let health = dubbo_health_tonic::HealthService::new(&HEALTH);
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// # drop(stop);
    /// tonic::transport::Server::builder()
    ///     .add_service(health.server())
    ///     .serve_with_shutdown("127.0.0.1:0".parse().unwrap(), health.drain_after(async {
    ///         stopped.await.ok();
    ///     }))
    ///     .await
    /// # }
    /// ```
    pub fn drain_after<F>(&self, signal: F) -> impl Future<Output = ()>
    where
        F: Future<Output = ()>,
    {
        self.drain.after(signal)
    }

    /// This crate's tower service for `grpc.health.v1.Health`, to pass to
    /// `tonic::transport::Server::builder().add_service(..)`.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// use tonic::server::NamedService;
    /// use dubbo_health_tonic::{HealthServer, HealthService};
    ///
    /// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let server = HealthService::new(&HEALTH).server();
    /// assert_eq!(<HealthServer<&FixedRegistry<64>> as NamedService>::NAME, "grpc.health.v1.Health");
    /// # drop(server);
    /// ```
    pub fn server(&self) -> HealthServer<R> {
        HealthServer {
            registry: self.registry.clone(),
            drain: self.drain.clone(),
            max_request_size: MAX_REQUEST_SIZE,
        }
    }
}

impl<S: Storage, R> fmt::Debug for HealthService<R>
where
    R: StableDeref<Target = Registry<S>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthService")
            .field("registry", &*self.registry)
            .field("drain", &self.drain)
            .finish()
    }
}

/// The tower service for `grpc.health.v1.Health` returned by [`HealthService::server`].
///
/// - Requests (plain or gzip) are checked and decoded by the core's `wire` codec: malformed
///   bytes and names over [`MAX_NAME`](dubbo_health_core::MAX_NAME) bytes are
///   `INVALID_ARGUMENT`; a request over [`max_request_size`](Self::max_request_size) (4 MiB
///   by default) `RESOURCE_EXHAUSTED`; no request message or two `UNIMPLEMENTED`; an
///   unsupported `grpc-encoding` `UNIMPLEMENTED`; gzip that does not decompress `INTERNAL`;
///   any other method `UNIMPLEMENTED`. Every row, for every door: the repository's
///   `docs/bad-input.md`.
/// - `Check` answers are static pre-encoded frames; `Watch` bodies ([`WatchBody`]) are the
///   core stream mapped to those frames (no task, channel, encoder or status copy per
///   watcher), ended by the service's [`Drain`], or with `DEADLINE_EXCEEDED` at the call's
///   `grpc-timeout`.
///
/// ```
/// # use dubbo_health_core::FixedRegistry;
/// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
/// let server = dubbo_health_tonic::HealthService::new(&HEALTH).server().max_request_size(64 * 1024);
/// # drop(server);
/// ```
#[derive(Clone)]
pub struct HealthServer<R> {
    registry: R,
    drain: Drain,
    max_request_size: usize,
}

impl<R> HealthServer<R> {
    /// Sets the largest request message accepted, in bytes (default [`MAX_REQUEST_SIZE`]);
    /// it bounds gzip requests once decompressed too.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let server = dubbo_health_tonic::HealthService::new(&HEALTH).server().max_request_size(1024);
    /// # drop(server);
    /// ```
    #[must_use]
    pub fn max_request_size(mut self, bytes: usize) -> Self {
        self.max_request_size = bytes;
        self
    }
}

impl<R> fmt::Debug for HealthServer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthServer")
            .field("max_request_size", &self.max_request_size)
            .field("drain", &self.drain)
            .finish_non_exhaustive()
    }
}

impl<R> NamedService for HealthServer<R> {
    const NAME: &'static str = dubbo_health_proto::SERVICE_NAME;
}

pin_project! {
    #[project = KindProj]
    enum Kind<R> {
        /// Trailers-only: the status is in the response headers.
        Empty,
        /// One message, then OK trailers.
        Unary { frame: Option<Bytes>, trailers: bool },
        /// A Watch stream.
        Watch { #[pin] body: WatchBody<R> },
    }
}

pin_project! {
    /// The response body of [`HealthServer`]: empty for a trailers-only answer, one message
    /// and OK trailers for `Check` and `List`, a [`WatchBody`] for `Watch`.
    ///
    /// ```
    /// use dubbo_health_core::FixedRegistry;
    /// use dubbo_health_tonic::HealthService;
    /// use futures::executor::block_on;
    /// use http_body::Body;
    /// use tower_service::Service;
    ///
    /// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let request = http::Request::post("/grpc.health.v1.Health/Check")
    ///     .header("content-type", "application/grpc")
    ///     .body(http_body_util::Full::new(bytes::Bytes::from_static(b"\0\0\0\0\0")))
    ///     .unwrap();
    /// let response = block_on(HealthService::new(&HEALTH).server().call(request)).unwrap();
    /// assert_eq!(response.headers()["content-type"], "application/grpc");
    /// let mut body = Box::pin(response.into_body());
    /// let mut next = || block_on(std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)));
    /// let message = next().unwrap().unwrap().into_data().unwrap();
    /// assert_eq!(&message[..], b"\0\0\0\0\x02\x08\x01"); // "" is SERVING
    /// assert_eq!(next().unwrap().unwrap().into_trailers().unwrap()["grpc-status"], "0");
    /// assert!(next().is_none());
    /// ```
    pub struct HealthBody<R> {
        #[pin]
        kind: Kind<R>,
    }
}

impl<R> HealthBody<R> {
    fn empty() -> Self {
        Self { kind: Kind::Empty }
    }

    fn unary(frame: Bytes) -> Self {
        Self {
            kind: Kind::Unary {
                frame: Some(frame),
                trailers: true,
            },
        }
    }

    /// The Watch stream, when this is a `Watch` answer.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # use dubbo_health_tonic::HealthService;
    /// # use futures::executor::block_on;
    /// # use tower_service::Service;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let request = http::Request::post("/grpc.health.v1.Health/Check")
    ///     .header("content-type", "application/grpc")
    ///     .body(http_body_util::Full::new(bytes::Bytes::from_static(b"\0\0\0\0\0")))
    ///     .unwrap();
    /// let response = block_on(HealthService::new(&HEALTH).server().call(request)).unwrap();
    /// assert!(response.body().watch().is_none());
    /// ```
    pub fn watch(&self) -> Option<&WatchBody<R>> {
        match &self.kind {
            Kind::Watch { body } => Some(body),
            _ => None,
        }
    }
}

impl<S: Storage, R> Body for HealthBody<R>
where
    R: StableDeref<Target = Registry<S>>,
{
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.project().kind.project() {
            KindProj::Empty => Poll::Ready(None),
            KindProj::Unary { frame, trailers } => {
                if let Some(frame) = frame.take() {
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
                if std::mem::take(trailers) {
                    return Poll::Ready(Some(Ok(Frame::trailers(grpc::ok_trailers()))));
                }
                Poll::Ready(None)
            }
            KindProj::Watch { body } => body.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Unary { frame, trailers } => frame.is_none() && !trailers,
            Kind::Watch { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Unary { frame, .. } => {
                SizeHint::with_exact(frame.as_ref().map_or(0, |f| f.len() as u64))
            }
            Kind::Watch { .. } => SizeHint::default(),
        }
    }
}

impl<R> fmt::Debug for HealthBody<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Empty => f.write_str("HealthBody::Empty"),
            Kind::Unary { frame, .. } => f
                .debug_struct("HealthBody::Unary")
                .field("frame", frame)
                .finish(),
            Kind::Watch { body } => f.debug_tuple("HealthBody::Watch").field(body).finish(),
        }
    }
}

/// The future of one call to [`HealthServer`]: reads the request message, then answers. A
/// request refused on its headers is answered at once.
///
/// ```
/// use dubbo_health_core::FixedRegistry;
/// use futures::executor::block_on;
/// use tower_service::Service;
///
/// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
/// let request = http::Request::post("/grpc.health.v1.Health/Check")
///     .header("content-type", "text/plain")
///     .body(http_body_util::Empty::<bytes::Bytes>::new())
///     .unwrap();
/// let future = dubbo_health_tonic::HealthService::new(&HEALTH).server().call(request);
/// let response = block_on(future).unwrap();
/// assert_eq!(response.status(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
/// assert_eq!(response.headers()["grpc-status"], "3");
/// ```
pub struct ResponseFuture<R> {
    inner: Pin<Box<dyn Future<Output = http::Response<HealthBody<R>>> + Send>>,
}

impl<R> fmt::Debug for ResponseFuture<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<R> Future for ResponseFuture<R> {
    type Output = Result<http::Response<HealthBody<R>>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx).map(Ok)
    }
}

/// Feeds the request's DATA frames to `message` until the end of the stream.
async fn read_body<B>(body: B, message: &mut RequestBody) -> Result<(), Status>
where
    B: Body,
    B::Error: fmt::Display,
{
    let mut body = pin!(body);
    while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|e| {
            Status::new(
                dubbo_health_core::GrpcCode::Cancelled,
                format!("request stream failed: {e}"),
            )
        })?;
        if let Ok(mut data) = frame.into_data() {
            while data.has_remaining() {
                let chunk = data.chunk();
                let n = chunk.len();
                message.push(chunk)?;
                data.advance(n);
            }
        }
    }
    Ok(())
}

/// Answers one accepted call.
async fn answer<S: Storage, R, B>(
    registry: R,
    drain: Drain,
    limit: usize,
    call: Call,
    deadline: Option<tokio::time::Instant>,
    body: B,
) -> Result<http::Response<HealthBody<R>>, Status>
where
    R: StableDeref<Target = Registry<S>>,
    B: Body,
    B::Error: fmt::Display,
{
    let mut message = RequestBody::new(call.encoding, limit);
    match deadline {
        Some(at) => tokio::time::timeout_at(at, read_body(body, &mut message))
            .await
            .map_err(|_| Status::deadline_exceeded())??,
        None => read_body(body, &mut message).await?,
    }
    let message = message.finish()?;
    let body = match call.method {
        Method::Check => HealthBody::unary(Bytes::from_static(grpc::check(&registry, message)?)),
        Method::List => HealthBody::unary(grpc::list(&registry, message)?),
        Method::Watch => {
            let name = grpc::decode_name(message)?;
            HealthBody {
                kind: Kind::Watch {
                    body: WatchBody::new(registry, name, &drain, deadline)?,
                },
            }
        }
    };
    Ok(grpc::response(body))
}

impl<S: Storage, R, B> tower_service::Service<http::Request<B>> for HealthServer<R>
where
    R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: fmt::Display,
{
    type Response = http::Response<HealthBody<R>>;
    type Error = Infallible;
    type Future = ResponseFuture<R>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> ResponseFuture<R> {
        let call = match grpc::accept(req.method(), req.uri().path(), req.headers()) {
            Ok(call) => call,
            Err(status) => {
                let response = status.trailers_only(HealthBody::empty());
                return ResponseFuture {
                    inner: Box::pin(std::future::ready(response)),
                };
            }
        };
        // The deadline runs from the request headers; tonic's own grpc-timeout layer starts
        // its timer later, so this one always answers first (DEADLINE_EXCEEDED, not tonic's
        // CANCELLED).
        let deadline = call.timeout.and_then(deadline_after);
        let registry = self.registry.clone();
        let drain = self.drain.clone();
        let limit = self.max_request_size;
        let body = req.into_body();
        ResponseFuture {
            inner: Box::pin(async move {
                answer(registry, drain, limit, call, deadline, body)
                    .await
                    .unwrap_or_else(|status| status.trailers_only(HealthBody::empty()))
            }),
        }
    }
}

/// `now + timeout`, or none for a timeout too far away to be an instant (years of
/// `99999999H`): such a call never times out.
fn deadline_after(timeout: Duration) -> Option<tokio::time::Instant> {
    tokio::time::Instant::now().checked_add(timeout)
}
