//! The gRPC Health Checking Protocol (`grpc.health.v1.Health`: `Check`, `Watch`, `List`) for
//! [tonic](https://docs.rs/tonic), over the `dubbo-health-core` registry.
//!
//! - [`HealthService`] serves a shared [`Registry`](dubbo_health_core::Registry)
//!   (`&'static` or `Arc`): mount [`HealthService::server`] next to your own services, or use
//!   it through the generated `Health` trait.
//! - [`serve`], [`serve_with_shutdown`] and [`Standalone`] run a health-only server, the
//!   last on its own thread and runtime (what the C ABI, Python and the `dubbo-health` CLI use).
//! - [`WatchStream`] is the core `Watch` stream mapped to messages: an open Watch costs no
//!   task, channel or status copy.
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

mod codec;
pub mod control;
mod service;
mod standalone;
mod watch;

pub use service::{HealthServer, HealthService, ResponseFuture, MAX_REQUEST_SIZE};
pub use standalone::{
    serve, serve_with_shutdown, server_builder, Standalone, CONNECTION_WINDOW, KEEPALIVE_INTERVAL,
    KEEPALIVE_TIMEOUT, MAX_CONCURRENT_STREAMS, STREAM_WINDOW,
};
pub use watch::WatchStream;

#[doc(no_inline)]
pub use dubbo_health_core as core;
#[doc(no_inline)]
pub use dubbo_health_proto::pb;
