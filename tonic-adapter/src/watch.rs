//! The `Watch` response streams: the core [`Watch`] mapped to messages, nothing more.

use std::{
    fmt,
    ops::Deref,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use dubbo_health_core::{wire, Registry, ServingStatus, StableDeref, Storage, Watch};
use dubbo_health_proto::pb::HealthCheckResponse;
use futures_core::Stream;
use pin_project_lite::pin_project;
use tonic::Status;

pin_project! {
    /// The response stream of [`Health::watch`](dubbo_health_proto::pb::health_server::Health::watch):
    /// one `HealthCheckResponse` per status the core [`Watch`] yields.
    ///
    /// It holds the core stream itself (its wait node lives inside it), so an open Watch
    /// costs no task, channel or copy of the status. It ends when the registry's
    /// [`end_watches`](Registry::end_watches) runs, and unregisters when dropped.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use dubbo_health_core::{HeapRegistry, ServingStatus};
    /// use dubbo_health_tonic::WatchStream;
    /// use futures::{executor::block_on, StreamExt};
    ///
    /// let registry = Arc::new(HeapRegistry::new());
    /// let mut stream = Box::pin(WatchStream::new(Arc::clone(&registry), "svc").unwrap());
    /// let first = block_on(stream.next()).unwrap().unwrap();
    /// assert_eq!(first.status, ServingStatus::ServiceUnknown.as_i32());
    /// assert_eq!(format!("{stream:?}"), r#"WatchStream { name: "svc", last: Some(ServiceUnknown) }"#);
    /// ```
    pub struct WatchStream<R> {
        #[pin]
        inner: Watch<R, Box<str>>,
    }
}

impl<S: Storage, R> WatchStream<R>
where
    R: StableDeref<Target = Registry<S>>,
{
    /// A stream of `name`'s statuses in `registry`.
    ///
    /// # Errors
    ///
    /// [`dubbo_health_core::Error::NameTooLong`] over [`MAX_NAME`](dubbo_health_core::MAX_NAME) bytes.
    ///
    /// ```
    /// use dubbo_health_core::{FixedRegistry, Error};
    /// use dubbo_health_tonic::WatchStream;
    ///
    /// static REGISTRY: FixedRegistry<64> = FixedRegistry::new();
    /// let err = WatchStream::new(&REGISTRY, &"x".repeat(201)).unwrap_err();
    /// assert_eq!(err, Error::NameTooLong { len: 201 });
    /// ```
    pub fn new(registry: R, name: &str) -> Result<Self, dubbo_health_core::Error> {
        Ok(Self {
            inner: Watch::new(registry, Box::from(name))?,
        })
    }
}

impl<R> WatchStream<R> {
    /// The watched name.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static REGISTRY: FixedRegistry<64> = FixedRegistry::new();
    /// let stream = dubbo_health_tonic::WatchStream::new(&REGISTRY, "svc").unwrap();
    /// assert_eq!(stream.name(), "svc");
    /// ```
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The status sent last, if any.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # static REGISTRY: FixedRegistry<64> = FixedRegistry::new();
    /// let stream = dubbo_health_tonic::WatchStream::new(&REGISTRY, "svc").unwrap();
    /// assert_eq!(stream.last(), None);
    /// ```
    pub fn last(&self) -> Option<ServingStatus> {
        self.inner.last()
    }
}

impl<S: Storage, R> Stream for WatchStream<R>
where
    R: StableDeref<Target = Registry<S>>,
{
    type Item = Result<HealthCheckResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.project()
            .inner
            .poll_next(cx)
            .map(|s| s.map(|s| Ok(HealthCheckResponse { status: s.as_i32() })))
    }
}

impl<R> fmt::Debug for WatchStream<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchStream")
            .field("name", &self.name())
            .field("last", &self.last())
            .finish()
    }
}

pin_project! {
    /// The response stream of [`HealthServer`](crate::HealthServer)'s Watch: the core
    /// [`Watch`] mapped to pre-encoded `HealthCheckResponse` bytes (static, never allocated).
    pub(crate) struct WatchBytes<R> {
        #[pin]
        inner: Watch<R, Box<str>>,
    }
}

impl<S: Storage, R> WatchBytes<R>
where
    R: StableDeref<Target = Registry<S>>,
{
    pub(crate) fn new(registry: R, name: &str) -> Result<Self, dubbo_health_core::Error> {
        Ok(Self {
            inner: Watch::new(registry, Box::from(name))?,
        })
    }
}

impl<S: Storage, R> Stream for WatchBytes<R>
where
    R: StableDeref + Deref<Target = Registry<S>>,
{
    type Item = Result<Bytes, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.project()
            .inner
            .poll_next(cx)
            .map(|s| s.map(|s| Ok(Bytes::from_static(wire::check_response_bytes(s)))))
    }
}

impl<R> fmt::Debug for WatchBytes<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchBytes")
            .field("name", &self.inner.name())
            .field("last", &self.inner.last())
            .finish()
    }
}
