//! [`WatchBody`]: a `Watch` call's response body, the core [`Watch`] framed, nothing more.

use std::{
    fmt,
    future::Future as _,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use dubbo_health_core::{Registry, ServingStatus, StableDeref, Storage, Watch};
use futures_core::Stream as _;
use http::HeaderMap;
use http_body::{Body, Frame};
use pin_project_lite::pin_project;

use crate::{
    drain::{Drain, DrainSignal},
    grpc,
};

/// How a [`WatchBody`] goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Streaming statuses.
    Open,
    /// The next frame is the trailers: OK, or `DEADLINE_EXCEEDED`.
    Trailers { deadline: bool },
    /// Ended.
    Done,
}

pin_project! {
    /// The response body of a `Watch` call on [`HealthServer`](crate::HealthServer): one
    /// gRPC message per status the core [`Watch`] yields, each a static pre-encoded frame (no
    /// encoder, no allocation per message), then the trailers.
    ///
    /// It holds the core stream itself (its wait node lives inside it), so an open Watch costs
    /// no task, channel or copy of the status. It ends, with status OK:
    /// - when its service's [`Drain`] starts, after a last `NOT_SERVING` (unless that is what
    ///   it sent last);
    /// - after the registry's [`end_watches`](Registry::end_watches), with what it had not
    ///   sent yet.
    ///
    /// With `DEADLINE_EXCEEDED` when the call's `grpc-timeout` passes. Dropping it (the
    /// client went away) unregisters it at once.
    ///
    /// ```
    /// use dubbo_health_core::{FixedRegistry, ServingStatus};
    /// use dubbo_health_tonic::HealthService;
    /// use futures::executor::block_on;
    /// use http_body::Body;
    /// use tower_service::Service;
    ///
    /// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// let health = HealthService::new(&HEALTH);
    /// let request = http::Request::post("/grpc.health.v1.Health/Watch")
    ///     .header("content-type", "application/grpc")
    ///     .body(http_body_util::Full::new(bytes::Bytes::from_static(b"\0\0\0\0\x05\x0a\x03svc")))
    ///     .unwrap();
    /// let response = block_on(health.server().call(request)).unwrap();
    /// let mut body = Box::pin(response.into_body());
    /// let mut next = || block_on(std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)));
    ///
    /// let first = next().unwrap().unwrap().into_data().unwrap();
    /// assert_eq!(&first[..], b"\0\0\0\0\x02\x08\x03"); // SERVICE_UNKNOWN
    /// HEALTH.set("svc", ServingStatus::Serving).unwrap();
    /// let second = next().unwrap().unwrap().into_data().unwrap();
    /// assert_eq!(&second[..], b"\0\0\0\0\x02\x08\x01"); // SERVING
    ///
    /// health.drain().start(); // the host stops: a last NOT_SERVING, then OK
    /// let last = next().unwrap().unwrap().into_data().unwrap();
    /// assert_eq!(&last[..], b"\0\0\0\0\x02\x08\x02");
    /// let trailers = next().unwrap().unwrap().into_trailers().unwrap();
    /// assert_eq!(trailers["grpc-status"], "0");
    /// assert!(next().is_none());
    /// ```
    pub struct WatchBody<R> {
        #[pin]
        watch: Watch<R, Box<str>>,
        #[pin]
        drain: DrainSignal,
        // Boxed: only calls with a `grpc-timeout` pay for a timer.
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
        end: End,
    }
}

impl<S: Storage, R> WatchBody<R>
where
    R: StableDeref<Target = Registry<S>>,
{
    /// A body for the statuses of `name` in `registry`, ended by `drain` and at `deadline`.
    ///
    /// A deadline needs a tokio runtime with timers; without one it is not enforced.
    pub(crate) fn new(
        registry: R,
        name: &str,
        drain: &Drain,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Self, dubbo_health_core::Error> {
        let deadline = deadline
            .filter(|_| tokio::runtime::Handle::try_current().is_ok())
            .map(|at| Box::pin(tokio::time::sleep_until(at)));
        Ok(Self {
            watch: Watch::new(registry, Box::from(name))?,
            drain: drain.signal(),
            deadline,
            end: End::Open,
        })
    }
}

impl<R> WatchBody<R> {
    /// The watched name.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # use dubbo_health_tonic::HealthService;
    /// # use futures::executor::block_on;
    /// # use tower_service::Service;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// # let request = http::Request::post("/grpc.health.v1.Health/Watch")
    /// #     .header("content-type", "application/grpc")
    /// #     .body(http_body_util::Full::new(bytes::Bytes::from_static(b"\0\0\0\0\x05\x0a\x03svc")))
    /// #     .unwrap();
    /// let response = block_on(HealthService::new(&HEALTH).server().call(request)).unwrap();
    /// let watch = response.body().watch().unwrap();
    /// assert_eq!(watch.name(), "svc");
    /// assert_eq!(watch.last(), None);
    /// ```
    pub fn name(&self) -> &str {
        self.watch.name()
    }

    /// The status sent last, if any.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// # use dubbo_health_tonic::HealthService;
    /// # use futures::executor::block_on;
    /// # use tower_service::Service;
    /// # static HEALTH: FixedRegistry<64> = FixedRegistry::new();
    /// # let request = http::Request::post("/grpc.health.v1.Health/Watch")
    /// #     .header("content-type", "application/grpc")
    /// #     .body(http_body_util::Full::new(bytes::Bytes::from_static(b"\0\0\0\0\x05\x0a\x03svc")))
    /// #     .unwrap();
    /// let response = block_on(HealthService::new(&HEALTH).server().call(request)).unwrap();
    /// assert_eq!(response.body().watch().unwrap().last(), None); // nothing sent yet
    /// ```
    pub fn last(&self) -> Option<ServingStatus> {
        self.watch.last()
    }
}

impl<S: Storage, R> Body for WatchBody<R>
where
    R: StableDeref<Target = Registry<S>>,
{
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let data = |status| Poll::Ready(Some(Ok(Frame::data(grpc::status_bytes(status)))));
        let trailers = |end: &mut End, headers: HeaderMap| {
            *end = End::Done;
            Poll::Ready(Some(Ok(Frame::trailers(headers))))
        };
        match *this.end {
            End::Done => return Poll::Ready(None),
            End::Trailers { deadline: false } => return trailers(this.end, grpc::ok_trailers()),
            End::Trailers { deadline: true } => {
                return trailers(this.end, grpc::Status::deadline_exceeded().trailers())
            }
            End::Open => {}
        }
        if let Some(sleep) = this.deadline.as_mut() {
            if sleep.as_mut().poll(cx).is_ready() {
                return trailers(this.end, grpc::Status::deadline_exceeded().trailers());
            }
        }
        if this.drain.poll(cx).is_ready() {
            if this.watch.last() == Some(ServingStatus::NotServing) {
                return trailers(this.end, grpc::ok_trailers());
            }
            *this.end = End::Trailers { deadline: false };
            return data(ServingStatus::NotServing);
        }
        match this.watch.poll_next(cx) {
            Poll::Ready(Some(status)) => data(status),
            Poll::Ready(None) => trailers(this.end, grpc::ok_trailers()),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.end == End::Done
    }
}

impl<R> fmt::Debug for WatchBody<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchBody")
            .field("name", &self.name())
            .field("last", &self.last())
            .field("deadline", &self.deadline.as_ref().map(|s| s.deadline()))
            .field("draining", &self.drain.has_fired())
            .finish()
    }
}
