//! `HealthService` (the generated `Health` trait) and `HealthServer` (a tower service built on
//! the core codec).

use std::{
    convert::Infallible,
    fmt,
    future::{ready, Future, Ready},
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use dubbo_health_core::{wire, GrpcCode, Registry, StableDeref, Storage, LIST_LIMIT};
use dubbo_health_proto::pb::{
    health_server::{self, Health},
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use http_body::Body;
use tonic::{
    body::Body as TonicBody,
    codec::{CompressionEncoding, EnabledCompressionEncodings},
    server::{Grpc, NamedService, ServerStreamingService, UnaryService},
    Code, Request, Response, Status,
};

use crate::{
    codec::{ListRequest, Name, RawCodec},
    watch::{WatchBytes, WatchStream},
};

/// The largest request message accepted, as gRPC's default: 4 MiB. Larger requests are
/// answered `RESOURCE_EXHAUSTED`.
pub const MAX_REQUEST_SIZE: usize = 4 * 1024 * 1024;

/// The `grpc.health.v1.Health` service over a shared [`Registry`].
///
/// `R` is a handle to the registry that can be cloned into every call: `&'static Registry<S>`
/// (a `static`) or `Arc<Registry<S>>`. The host keeps its own handle and calls
/// [`Registry::set`] as its services come and go; nothing here copies a status.
///
/// Two ways to mount it:
/// - [`HealthService::server`] gives a [`HealthServer`], this crate's own tower service: it
///   decodes requests with the core's allocation-free codec (so malformed bytes are
///   `INVALID_ARGUMENT` and an oversized request `RESOURCE_EXHAUSTED`, as the gRPC spec
///   says) and sends pre-encoded responses. Use this one.
/// - `HealthService` implements the generated [`Health`] trait, so
///   `dubbo_health_proto::pb::health_server::HealthServer::new(service)` works too, with
///   tonic's prost codec and its error codes.
///
/// ```no_run
/// use dubbo_health_core::{FixedRegistry, ServingStatus};
/// use dubbo_health_tonic::HealthService;
///
/// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// HEALTH.set("org.apache.dubbogo.samples.api.Greeter", ServingStatus::Serving)?;
/// tonic::transport::Server::builder()
///     .add_service(HealthService::new(&HEALTH).server())
///     // .add_service(GreeterServer::new(my_greeter))
///     .serve("127.0.0.1:20000".parse()?)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HealthService<R> {
    registry: R,
}

impl<S: Storage, R> HealthService<R>
where
    R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
{
    /// The service over `registry`.
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
        Self { registry }
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
            .finish()
    }
}

fn code_of(code: GrpcCode) -> Code {
    Code::from_i32(code.as_u32() as i32)
}

fn check<S: Storage>(
    registry: &Registry<S>,
    name: &str,
) -> Result<dubbo_health_core::ServingStatus, Status> {
    registry
        .check(name)
        .map_err(|e| Status::new(code_of(e.grpc_code()), e.to_string()))
}

/// Encodes the `List` answer with the core encoder, growing the buffer as the names need.
fn list_bytes<S: Storage>(registry: &Registry<S>) -> Result<Bytes, Status> {
    let mut stack = [0u8; 1024];
    match wire::handle_list(registry, b"", &mut stack) {
        Ok(n) => return Ok(Bytes::copy_from_slice(&stack[..n])),
        Err(wire::RpcError::BufferTooSmall { .. }) => {}
        Err(e) => return Err(Status::new(code_of(e.code()), e.to_string())),
    }
    // At most LIST_LIMIT names of MAX_NAME bytes, each with a few bytes of framing.
    let mut buf = vec![0u8; LIST_LIMIT * (dubbo_health_core::MAX_NAME + 16)];
    match wire::handle_list(registry, b"", &mut buf) {
        Ok(n) => {
            buf.truncate(n);
            Ok(Bytes::from(buf))
        }
        Err(e) => Err(Status::new(code_of(e.code()), e.to_string())),
    }
}

#[tonic::async_trait]
impl<S: Storage, R> Health for HealthService<R>
where
    R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
{
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let name = &request.get_ref().service;
        if name.len() > dubbo_health_core::MAX_NAME {
            return Err(Status::invalid_argument(
                dubbo_health_core::Error::NameTooLong { len: name.len() }.to_string(),
            ));
        }
        let status = check(&self.registry, name)?;
        Ok(Response::new(HealthCheckResponse {
            status: status.as_i32(),
        }))
    }

    async fn list(
        &self,
        _request: Request<HealthListRequest>,
    ) -> Result<Response<HealthListResponse>, Status> {
        let mut out = HealthListResponse::default();
        for entry in self.registry.iter() {
            if out.statuses.len() == LIST_LIMIT {
                let e = wire::RpcError::TooMany {
                    count: LIST_LIMIT + 1,
                };
                return Err(Status::new(code_of(e.code()), e.to_string()));
            }
            out.statuses.insert(
                entry.name().to_owned(),
                HealthCheckResponse {
                    status: entry.status().as_i32(),
                },
            );
        }
        Ok(Response::new(out))
    }

    type WatchStream = WatchStream<R>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<WatchStream<R>>, Status> {
        let stream = WatchStream::new(self.registry.clone(), &request.get_ref().service)
            .map_err(|e| Status::new(code_of(e.grpc_code()), e.to_string()))?;
        Ok(Response::new(stream))
    }
}

/// The tower service for `grpc.health.v1.Health` returned by [`HealthService::server`].
///
/// - Requests (plain or gzip-compressed) are decoded by the core's `wire` codec: malformed bytes and names over
///   [`MAX_NAME`](dubbo_health_core::MAX_NAME) bytes are `INVALID_ARGUMENT`; a request over
///   [`max_request_size`](Self::max_request_size) (4 MiB by default) is
///   `RESOURCE_EXHAUSTED`; any other method is `UNIMPLEMENTED`.
/// - `Check` answers are static pre-encoded bytes; `Watch` streams are the core stream
///   mapped to those bytes (no task, channel or status copy per watcher).
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
    max_request_size: usize,
}

impl<R> HealthServer<R> {
    /// Sets the largest request accepted, in bytes (default [`MAX_REQUEST_SIZE`]).
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
            .finish_non_exhaustive()
    }
}

impl<R> NamedService for HealthServer<R> {
    const NAME: &'static str = health_server::SERVICE_NAME;
}

struct CheckSvc<R>(R);

impl<S: Storage, R> UnaryService<Name> for CheckSvc<R>
where
    R: StableDeref<Target = Registry<S>>,
{
    type Response = Bytes;
    type Future = Ready<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Name>) -> Self::Future {
        ready(
            check(&self.0, request.get_ref().as_str())
                .map(|s| Response::new(Bytes::from_static(wire::check_response_bytes(s)))),
        )
    }
}

struct ListSvc<R>(R);

impl<S: Storage, R> UnaryService<ListRequest> for ListSvc<R>
where
    R: StableDeref<Target = Registry<S>>,
{
    type Response = Bytes;
    type Future = Ready<Result<Response<Bytes>, Status>>;

    fn call(&mut self, _request: Request<ListRequest>) -> Self::Future {
        ready(list_bytes(&self.0).map(Response::new))
    }
}

struct WatchSvc<R>(R);

impl<S: Storage, R> ServerStreamingService<Name> for WatchSvc<R>
where
    R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
{
    type Response = Bytes;
    type ResponseStream = WatchBytes<R>;
    type Future = Ready<Result<Response<WatchBytes<R>>, Status>>;

    fn call(&mut self, request: Request<Name>) -> Self::Future {
        ready(
            WatchBytes::new(self.0.clone(), request.get_ref().as_str())
                .map(Response::new)
                .map_err(|e| Status::new(code_of(e.grpc_code()), e.to_string())),
        )
    }
}

/// tonic answers a request over the size limit with `OUT_OF_RANGE`; the gRPC status-code
/// guide (and every other gRPC server) says `RESOURCE_EXHAUSTED`. The health handlers never
/// produce `OUT_OF_RANGE` themselves, so any such answer is that limit.
fn fix_limit_status(mut response: http::Response<TonicBody>) -> http::Response<TonicBody> {
    let headers = response.headers_mut();
    if headers
        .get(Status::GRPC_STATUS)
        .map(http::HeaderValue::as_bytes)
        == Some(b"11")
    {
        headers.insert(Status::GRPC_STATUS, http::HeaderValue::from_static("8"));
    }
    response
}

fn unimplemented() -> http::Response<TonicBody> {
    let mut response = http::Response::new(TonicBody::default());
    let headers = response.headers_mut();
    headers.insert(Status::GRPC_STATUS, http::HeaderValue::from_static("12"));
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

/// The future of one call to [`HealthServer`].
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = http::Response<TonicBody>> + Send>>,
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<http::Response<TonicBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx).map(Ok)
    }
}

impl<S: Storage, R, B> tower_service::Service<http::Request<B>> for HealthServer<R>
where
    R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
    B: Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<TonicBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> ResponseFuture {
        let limit = Some(self.max_request_size);
        let registry = self.registry.clone();
        // gzip-compressed requests are accepted (`grpc-health-probe -gzip`); answers are a
        // few bytes and go out uncompressed.
        let mut accept = EnabledCompressionEncodings::default();
        accept.enable(CompressionEncoding::Gzip);
        let send = EnabledCompressionEncodings::default();
        let inner: Pin<Box<dyn Future<Output = _> + Send>> = match req.uri().path() {
            "/grpc.health.v1.Health/Check" => Box::pin(async move {
                let mut grpc = Grpc::new(RawCodec::<Name>::new())
                    .apply_compression_config(accept, send)
                    .apply_max_message_size_config(limit, None);
                fix_limit_status(grpc.unary(CheckSvc(registry), req).await)
            }),
            "/grpc.health.v1.Health/Watch" => Box::pin(async move {
                let mut grpc = Grpc::new(RawCodec::<Name>::new())
                    .apply_compression_config(accept, send)
                    .apply_max_message_size_config(limit, None);
                fix_limit_status(grpc.server_streaming(WatchSvc(registry), req).await)
            }),
            "/grpc.health.v1.Health/List" => Box::pin(async move {
                let mut grpc = Grpc::new(RawCodec::<ListRequest>::new())
                    .apply_compression_config(accept, send)
                    .apply_max_message_size_config(limit, None);
                fix_limit_status(grpc.unary(ListSvc(registry), req).await)
            }),
            _ => Box::pin(ready(unimplemented())),
        };
        ResponseFuture { inner }
    }
}
