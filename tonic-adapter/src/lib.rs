//! The gRPC Health Checking Protocol (`grpc.health.v1.Health`: `Check`, `Watch`, `List`) for
//! [tonic](https://docs.rs/tonic), over the `dubbo-health-core` registry.
//!
//! - [`HealthService`] serves a shared [`Registry`](dubbo_health_core::Registry)
//!   (`&'static` or `Arc`): mount [`HealthService::server`] next to your own services, and
//!   pass [`HealthService::drain_after`] to the host's `serve_with_shutdown` so its open
//!   Watches end (after a last `NOT_SERVING`) when it stops.
//! - [`reflection::v1`] and [`reflection::v1alpha`] add gRPC server reflection for
//!   `grpc.health.v1` (what `grpcurl` asks), one `add_service` each.
//! - [`serve`], [`serve_with_shutdown`] and [`Standalone`] run a health-only server, the
//!   last on its own thread and runtime (what the C ABI, Python and the `dubbo-health` CLI use).
//! - [`WatchBody`] is the core `Watch` stream framed as a response body: an open Watch costs
//!   no task, channel, encoder or status copy.
//!
//! Every bad request gets the answer gRPC's status-code guide names (the repository's
//! `docs/bad-input.md` has the table): malformed bytes or a name over 200 bytes
//! `INVALID_ARGUMENT`, no message or two `UNIMPLEMENTED`, over 4 MiB `RESOURCE_EXHAUSTED`, an
//! unknown `grpc-encoding` `UNIMPLEMENTED`, gzip that does not decompress `INTERNAL`, a Watch
//! past its `grpc-timeout` `DEADLINE_EXCEEDED`.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use dubbo_health_core::{HeapRegistry, ServingStatus};
//! use dubbo_health_proto::pb::{health_client::HealthClient, HealthCheckRequest};
//! use dubbo_health_tonic::Standalone;
//!
//! let registry = Arc::new(HeapRegistry::new());
//! registry.set("org.apache.dubbogo.samples.api.Greeter", ServingStatus::Serving).unwrap();
//! let server = Standalone::start("127.0.0.1:0", Arc::clone(&registry)).unwrap();
//!
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! rt.block_on(async {
//!     let mut client = HealthClient::connect(format!("http://{}", server.local_addr())).await.unwrap();
//!     let request = HealthCheckRequest { service: "org.apache.dubbogo.samples.api.Greeter".into() };
//!     let response = client.check(request).await.unwrap().into_inner();
//!     assert_eq!(response.status, ServingStatus::Serving.as_i32());
//! });
//! server.stop(Duration::from_secs(1)).unwrap();
//! ```

mod drain;
mod grpc;
pub mod probe;
pub mod reflection;
pub mod server;
mod service;
mod watch;

pub use drain::{Drain, DrainSignal};
pub use server::{
    serve, serve_with_shutdown, server_builder, Standalone, StandaloneBuilder, CONNECTION_WINDOW,
    KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT, MAX_CONCURRENT_STREAMS, STREAM_WINDOW,
};
pub use service::{HealthBody, HealthServer, HealthService, ResponseFuture, MAX_REQUEST_SIZE};
pub use watch::WatchBody;

/// Dubbo service keys (`group/interface:version`, in dubbo-go's or Dubbo Java's form), for
/// [`Registry::export`](dubbo_health_core::Registry::export) and friends.
///
/// ```
/// use std::sync::Arc;
/// use dubbo_health_core::{HeapRegistry, ServingStatus::*};
/// use dubbo_health_tonic::{service_key, KeyForm};
///
/// let registry = Arc::new(HeapRegistry::new());
/// registry.require("org.apache.Foo").unwrap(); // "" follows the interface
/// registry.export("org.apache.Foo", "grp", "1.0.0", Serving).unwrap(); // on start
/// let key = service_key("org.apache.Foo", "grp", "1.0.0", KeyForm::DubboGo).unwrap();
/// assert_eq!(registry.get(&key), Some(Serving));
/// registry.unexport("org.apache.Foo", "grp", "1.0.0").unwrap(); // on stop
/// assert_eq!(registry.get(""), Some(NotServing));
/// ```
pub use dubbo_health_core::{service_key, KeyForm, ServiceKey};

#[doc(no_inline)]
pub use dubbo_health_core as core;
#[doc(no_inline)]
pub use dubbo_health_proto::pb;
#[doc(no_inline)]
pub use tonic;

/// The README's Rust snippets, compiled (and, unless marked `no_run`, run) as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
