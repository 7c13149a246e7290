//! The core of dubbo-health: the gRPC Health Checking Protocol (`grpc.health.v1.Health`)
//! as a status registry, a watch notifier and a wire codec, with no `std`, no allocator and
//! no runtime.
//!
//! - [`Registry`] holds service names with their [`ServingStatus`], over a [`Storage`]:
//!   [`FixedRegistry<N>`] keeps `N` names inside itself and `new` is a `const fn`, so it can
//!   be a `static`; [`HeapRegistry`] (feature `std`) takes its capacity at run time. `""`
//!   (the whole server) starts as `SERVING`.
//! - [`Watch`] is a [`futures_core::Stream`] of one name's statuses, driven by
//!   [`core::task::Waker`] alone; waiters park in intrusive lists inside the streams
//!   themselves, so watching allocates nothing.
//! - [`wire`] encodes and decodes exactly the health messages, into caller buffers, and
//!   answers `Check` and `List` from request bytes: what a C or Python host needs to serve
//!   the health service from any gRPC server.
//!
//! ```
//! use futures::{executor::block_on, StreamExt};
//! use dubbo_health_core::{FixedRegistry, ServingStatus};
//!
//! static HEALTH: FixedRegistry<128> = FixedRegistry::new();
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
//! (`set`, `clear`, `shutdown`, `resume`, `end_watches`) and watchers parking take one short
//! spin lock per registry — the only lock available without an OS — held for one name's
//! update or for at most 16 wait-list operations (`shutdown`/`resume` excepted: they change
//! every name in one hold), never while a waker runs. With the `std` feature (on by
//! default) a thread that cannot get it soon yields to the scheduler.
//!
//! # Features
//!
//! - `std` (default): [`HeapRegistry`] (capacity at run time, random hash seed), the spin
//!   lock yields to the OS scheduler, a panicking waker is caught so the others are still
//!   woken, `Arc`, `Rc` and `Box` become [`StableDeref`] registry handles, and [`bridge`]
//!   turns a watch into a latest-wins channel for threads, callbacks and foreign event loops
//!   (on `async-channel`). Without it the crate is `no_std`, uses no allocator and depends on
//!   `futures-core` alone.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(all(feature = "std", not(loom)))]
pub mod bridge;
mod dubbo;
mod hash;
mod index;
mod iter;
mod list;
mod lock;
mod locked;
mod loom;
mod registry;
mod slot;
mod status;
mod storage;
mod ties;
mod wake;
mod watch;
pub mod wire;

pub use dubbo::{service_key, KeyForm, ServiceKey};
pub use iter::{Entry, Iter};
#[cfg(feature = "std")]
pub use registry::HeapRegistry;
pub use registry::{FixedRegistry, Registry};
pub use status::{CapacityError, Error, GrpcCode, ServingStatus, SetOutcome};
#[cfg(feature = "std")]
pub use storage::Heap;
pub use storage::{Inline, Storage};
pub use watch::{StableDeref, Watch};

/// The longest service name, in bytes (as grpc C++'s `MAX_SERVICE_NAME_LENGTH`).
pub const MAX_NAME: usize = 200;

/// The most names `List` answers with; more is `RESOURCE_EXHAUSTED` (gRFC A90, grpc-go).
pub const LIST_LIMIT: usize = 100;

/// The capacity the doors (C, Python, the CLI) give a registry unless told otherwise: room
/// for 10,000 names and `""` with headroom.
///
/// ```
/// assert!(dubbo_health_core::DEFAULT_CAPACITY > 10_000);
/// ```
pub const DEFAULT_CAPACITY: usize = 16_384;

/// The largest capacity a registry can have (2²⁴ − 1 names: index words address slots in 24
/// bits).
///
/// ```
/// assert_eq!(dubbo_health_core::MAX_CAPACITY, 16_777_215);
/// ```
pub const MAX_CAPACITY: usize = index::MAX_SLOTS;

#[cfg(test)]
mod tests;
