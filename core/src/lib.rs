//! The core of dubbo-health: the gRPC Health Checking Protocol (`grpc.health.v1.Health`)
//! as a status registry, a watch notifier and a wire codec, with no `std`, no allocator and
//! no runtime.
//!
//! - [`Registry`] holds up to `N` service names with their [`ServingStatus`]. `new` is a
//!   `const fn`, so it can be a `static`. `""` (the whole server) starts as `SERVING`.
//! - [`Watch`] is a [`futures_core::Stream`] of one name's statuses, driven by
//!   [`core::task::Waker`] alone; waiters park in intrusive lists inside the streams
//!   themselves, so watching allocates nothing.
//! - [`wire`] encodes and decodes exactly the health messages, into caller buffers, and
//!   answers `Check` and `List` from request bytes: what a C or Python host needs to serve
//!   the health service from any gRPC server.
//!
//! ```
//! use futures::{executor::block_on, StreamExt};
//! use dubbo_health_core::{Registry, ServingStatus};
//!
//! static HEALTH: Registry<128> = Registry::new();
//!
//! HEALTH.set("org.apache.dubbogo.samples.api.Greeter", ServingStatus::Serving).unwrap();
//! let mut watch = Box::pin(HEALTH.watch("org.apache.dubbogo.samples.api.Greeter").unwrap());
//! assert_eq!(block_on(watch.next()), Some(ServingStatus::Serving));
//!
//! HEALTH.shutdown(); // graceful drain: everything NOT_SERVING
//! assert_eq!(block_on(watch.next()), Some(ServingStatus::NotServing));
//! ```
//!
//! # Locking
//!
//! Reads (`get`, `check`, iteration) take no lock: every slot is a sequence lock over atomic
//! words, so readers on many threads never write shared memory and never contend. Writes
//! (`set`, `clear`, `shutdown`, `resume`) and watchers parking take one short spin lock per
//! registry — the only lock available without an OS — held for one slot update or for at
//! most 16 wait-list operations, never while a waker runs. With the `std` feature (on by
//! default) a thread that cannot get it soon yields to the scheduler.
//!
//! # Features
//!
//! - `std` (default): the spin lock yields to the OS scheduler, `Arc`, `Rc` and `Box`
//!   become [`StableDeref`] registry handles, and [`bridge`] turns a watch into a
//!   latest-wins channel for threads, callbacks and foreign event loops (on
//!   `async-channel`). Without it the crate is `no_std`, uses no allocator and depends on
//!   `futures-core` alone.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(all(feature = "std", not(loom)))]
pub mod bridge;
mod list;
mod lock;
mod loom;
mod registry;
mod status;
mod watch;
pub mod wire;

pub use registry::{Entry, Iter, Registry};
pub use status::{Error, GrpcCode, ServingStatus, SetOutcome};
pub use watch::{StableDeref, Watch};

/// The longest service name, in bytes (as grpc C++'s `MAX_SERVICE_NAME_LENGTH`).
pub const MAX_NAME: usize = 200;

/// The most names `List` answers with; more is `RESOURCE_EXHAUSTED` (gRFC A90, grpc-go).
pub const LIST_LIMIT: usize = 100;

/// The capacity the bindings (C, Python, the CLI) use.
pub const DEFAULT_CAPACITY: usize = 1024;

/// A registry of [`DEFAULT_CAPACITY`] names.
pub type DefaultRegistry = Registry<DEFAULT_CAPACITY>;

#[cfg(test)]
mod tests;
