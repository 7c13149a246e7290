//! Mounts `dubbo_health_tonic`'s `grpc.health.v1.Health` service in dubbo-rust's triple
//! server (crate `dubbo` 0.4).
//!
//! dubbo-rust routes each request by path to a service of type
//! `BoxCloneService<http::Request<hyper::Body>, http::Response<dubbo::BoxBody>, Infallible>`,
//! on http 0.2, http-body 0.4 and hyper 0.14. `HealthService::server()` is a tower service on
//! http 1 and http-body 1. [`Http1Service`] converts between the two: the request and
//! response heads, the bodies frame by frame, and the trailers, where gRPC carries its status.
//!
//! ```no_run
//! use dubbo::triple::transport::DubboServer;
//! use dubbo_health_core::{FixedRegistry, ServingStatus};
//! use dubbo_health_dubbo_rust::{health_service, SERVICE_NAME};
//! use dubbo_health_tonic::HealthService;
//!
//! static HEALTH: FixedRegistry<64> = FixedRegistry::new();
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! HEALTH.set("org.apache.dubbogo.samples.api.Greeter", ServingStatus::Serving)?;
//! DubboServer::new()
//!     .with_listener("tcp".to_string())
//!     .add_service(SERVICE_NAME.to_string(), health_service(&HealthService::new(&HEALTH)))
//!     // .add_service("org.apache.dubbogo.samples.api.Greeter".to_string(), greeter)
//!     .serve("127.0.0.1:20000".parse()?)
//!     .await?;
//! # Ok(()) }
//! ```

use std::{
    convert::Infallible,
    error::Error,
    fmt,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
};

use bytes::Bytes;
use dubbo::{
    protocol::triple::GrpcBoxCloneService,
    status::{Code, Status},
    utils::boxed_clone::BoxCloneService,
    BoxBody,
};
use dubbo_health_core::{Registry, StableDeref, Storage};
use dubbo_health_tonic::HealthService;
use http_body::Body as _;
use http_body04::Body as _;

/// The path prefix dubbo-rust routes to the health service: its gRPC service name.
pub const SERVICE_NAME: &str = "grpc.health.v1.Health";

/// The health service of `health`, as dubbo-rust's server and its `TRIPLE_SERVICES`
/// registry hold services. Mount it under [`SERVICE_NAME`].
///
/// ```
/// # use dubbo_health_core::FixedRegistry;
/// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
/// let service = dubbo_health_dubbo_rust::health_service(&dubbo_health_tonic::HealthService::new(&HEALTH));
/// # drop(service);
/// ```
pub fn health_service<S: Storage, R>(health: &HealthService<R>) -> GrpcBoxCloneService
where
    R: StableDeref<Target = Registry<S>> + Clone + Send + Sync + 'static,
{
    BoxCloneService::new(Http1Service::new(health.server()))
}

/// A tower service on http 1 (a tonic service) seen as a dubbo-rust service on http 0.2 and
/// hyper 0.14.
///
/// ```
/// # use dubbo_health_core::FixedRegistry;
/// static HEALTH: FixedRegistry<64> = FixedRegistry::new();
/// let server = dubbo_health_tonic::HealthService::new(&HEALTH).server();
/// let service = dubbo_health_dubbo_rust::Http1Service::new(server);
/// # drop(service);
/// ```
#[derive(Clone, Debug)]
pub struct Http1Service<S> {
    inner: S,
}

impl<S> Http1Service<S> {
    /// Wraps `inner`.
    ///
    /// ```
    /// let service = dubbo_health_dubbo_rust::Http1Service::new(());
    /// # drop(service);
    /// ```
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl<S, B> tower_service::Service<http02::Request<hyper::Body>> for Http1Service<S>
where
    S: tower_service::Service<
        http::Request<IncomingBody>,
        Response = http::Response<B>,
        Error = Infallible,
    >,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    type Response = http02::Response<BoxBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http02::Request<hyper::Body>) -> Self::Future {
        let req = match request_to_http1(req) {
            Ok(req) => req,
            Err(message) => {
                let status = Status::new(Code::Internal, message);
                return Box::pin(std::future::ready(Ok(status.to_http())));
            }
        };
        let response = self.inner.call(req);
        Box::pin(async move {
            let Ok(response) = response.await;
            Ok(response_to_http02(response))
        })
    }
}

fn headers_to_http1(headers: http02::HeaderMap) -> http::HeaderMap {
    let mut out = http::HeaderMap::with_capacity(headers.len());
    let mut name = None;
    for (next, value) in headers {
        // `into_iter` names a header once, before the first of its values.
        if let Some(next) = next {
            name = http::HeaderName::from_bytes(next.as_str().as_bytes()).ok();
        }
        if let (Some(name), Ok(value)) = (&name, http::HeaderValue::from_bytes(value.as_bytes())) {
            out.append(name.clone(), value);
        }
    }
    out
}

fn headers_to_http02(headers: http::HeaderMap) -> http02::HeaderMap {
    let mut out = http02::HeaderMap::with_capacity(headers.len());
    let mut name = None;
    for (next, value) in headers {
        if let Some(next) = next {
            name = http02::HeaderName::from_bytes(next.as_str().as_bytes()).ok();
        }
        if let (Some(name), Ok(value)) = (&name, http02::HeaderValue::from_bytes(value.as_bytes()))
        {
            out.append(name.clone(), value);
        }
    }
    out
}

fn request_to_http1(
    req: http02::Request<hyper::Body>,
) -> Result<http::Request<IncomingBody>, String> {
    let (parts, body) = req.into_parts();
    let mut out = http::Request::new(IncomingBody::new(body));
    *out.method_mut() = http::Method::from_bytes(parts.method.as_str().as_bytes())
        .map_err(|e| format!("request method: {e}"))?;
    *out.uri_mut() = http::Uri::try_from(parts.uri.to_string().as_str())
        .map_err(|e| format!("request URI: {e}"))?;
    *out.version_mut() = match parts.version {
        http02::Version::HTTP_09 => http::Version::HTTP_09,
        http02::Version::HTTP_10 => http::Version::HTTP_10,
        http02::Version::HTTP_11 => http::Version::HTTP_11,
        http02::Version::HTTP_3 => http::Version::HTTP_3,
        _ => http::Version::HTTP_2,
    };
    *out.headers_mut() = headers_to_http1(parts.headers);
    Ok(out)
}

fn response_to_http02<B>(response: http::Response<B>) -> http02::Response<BoxBody>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let (parts, body) = response.into_parts();
    let mut out = http02::Response::new(BoxBody::new(OutgoingBody {
        inner: Box::pin(body),
        trailers: None,
        data_done: false,
    }));
    *out.status_mut() = http02::StatusCode::from_u16(parts.status.as_u16())
        .unwrap_or(http02::StatusCode::INTERNAL_SERVER_ERROR);
    *out.headers_mut() = headers_to_http02(parts.headers);
    out
}

/// A hyper 0.14 request body read as an http-body 1 body: its data, then its trailers.
pub struct IncomingBody {
    inner: hyper::Body,
    data_done: bool,
    done: bool,
}

impl IncomingBody {
    fn new(inner: hyper::Body) -> Self {
        Self {
            inner,
            data_done: false,
            done: false,
        }
    }
}

impl fmt::Debug for IncomingBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingBody")
            .field("data_done", &self.data_done)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl http_body::Body for IncomingBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if !this.data_done {
            match ready!(Pin::new(&mut this.inner).poll_data(cx)) {
                Some(Ok(data)) => return Poll::Ready(Some(Ok(http_body::Frame::data(data)))),
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => this.data_done = true,
            }
        }
        let trailers = ready!(Pin::new(&mut this.inner).poll_trailers(cx));
        this.done = true;
        Poll::Ready(match trailers {
            Ok(Some(t)) => Some(Ok(http_body::Frame::trailers(headers_to_http1(t)))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.done || http_body04::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let hint = http_body04::Body::size_hint(&self.inner);
        let mut out = http_body::SizeHint::new();
        out.set_lower(hint.lower());
        if let Some(upper) = hint.upper() {
            out.set_upper(upper);
        }
        out
    }
}

/// An http-body 1 response body (tonic's) written as an http-body 0.4 body: data frames
/// through `poll_data`, the trailers frame through `poll_trailers`.
struct OutgoingBody<B> {
    inner: Pin<Box<B>>,
    trailers: Option<http02::HeaderMap>,
    data_done: bool,
}

impl<B> OutgoingBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    /// The next data frame; a trailers frame is kept for `poll_trailers` and ends the data.
    fn poll_next_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Status>>> {
        while !self.data_done {
            match ready!(self.inner.as_mut().poll_frame(cx)) {
                None => self.data_done = true,
                Some(Err(e)) => {
                    self.data_done = true;
                    let message = e.into().to_string();
                    return Poll::Ready(Some(Err(Status::new(Code::Internal, message))));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => return Poll::Ready(Some(Ok(data))),
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            self.trailers = Some(headers_to_http02(trailers));
                            self.data_done = true;
                        }
                    }
                },
            }
        }
        Poll::Ready(None)
    }
}

impl<B> http_body04::Body for OutgoingBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_data(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Status>>> {
        self.get_mut().poll_next_data(cx)
    }

    fn poll_trailers(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<http02::HeaderMap>, Status>> {
        let this = self.get_mut();
        // Data not read to the end (hyper reads it first): skip it to reach the trailers.
        while !this.data_done {
            if let Some(Err(e)) = ready!(this.poll_next_data(cx)) {
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(this.trailers.take()))
    }

    fn is_end_stream(&self) -> bool {
        if self.data_done {
            self.trailers.is_none()
        } else {
            self.inner.is_end_stream()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::VecDeque, future::poll_fn};

    use super::*;

    /// An http-body 1 body made of the given frames, as tonic's response bodies are.
    struct Frames(VecDeque<http_body::Frame<Bytes>>);

    impl http_body::Body for Frames {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
        fn is_end_stream(&self) -> bool {
            self.0.is_empty()
        }
    }

    fn trailers(status: &'static str) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        map.insert("grpc-status", http::HeaderValue::from_static(status));
        map.append("x-many", http::HeaderValue::from_static("one"));
        map.append("x-many", http::HeaderValue::from_static("two"));
        map
    }

    #[test]
    fn headers_keep_every_value_in_order() {
        let there = headers_to_http02(trailers("5"));
        let values: Vec<_> = there.get_all("x-many").iter().collect();
        assert_eq!(values, ["one", "two"]);
        let back = headers_to_http1(there);
        assert_eq!(back, trailers("5"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn response_body_gives_its_data_then_its_trailers() {
        let body = Frames(VecDeque::from([
            http_body::Frame::data(Bytes::from_static(b"\x00\x00\x00\x00\x02\x08\x01")),
            http_body::Frame::data(Bytes::from_static(b"\x00\x00\x00\x00\x02\x08\x02")),
            http_body::Frame::trailers(trailers("0")),
        ]));
        let response = response_to_http02(http::Response::new(body));
        let mut body = response.into_body();
        assert!(!http_body04::Body::is_end_stream(&body));
        let mut data = Vec::new();
        while let Some(chunk) = poll_fn(|cx| Pin::new(&mut body).poll_data(cx)).await {
            data.push(chunk.expect("data"));
        }
        assert_eq!(data.len(), 2);
        assert_eq!(data[1].as_ref(), b"\x00\x00\x00\x00\x02\x08\x02");
        let got = poll_fn(|cx| Pin::new(&mut body).poll_trailers(cx)).await;
        let got = got.expect("trailers").expect("some trailers");
        assert_eq!(got.get("grpc-status").expect("grpc-status"), "0");
        assert_eq!(got.get_all("x-many").iter().count(), 2);
        assert!(http_body04::Body::is_end_stream(&body));
    }

    #[test]
    fn trailers_only_response_ends_with_its_headers() {
        // tonic answers errors with the status in the headers and an empty body: hyper must
        // see the end at once, so it sends one HEADERS frame with END_STREAM.
        let mut response = http::Response::new(Frames(VecDeque::new()));
        response
            .headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static("5"));
        let response = response_to_http02(response);
        assert_eq!(response.headers()["grpc-status"], "5");
        assert!(http_body04::Body::is_end_stream(response.body()));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn request_body_gives_its_data_then_its_trailers() {
        let (mut tx, body) = hyper::Body::channel();
        let mut trailer_map = http02::HeaderMap::new();
        trailer_map.insert("x-end", http02::HeaderValue::from_static("yes"));
        tokio::spawn(async move {
            tx.send_data(Bytes::from_static(b"hello"))
                .await
                .expect("send");
            tx.send_trailers(trailer_map).await.expect("trailers");
        });
        let mut body = IncomingBody::new(body);
        let data = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let data = data
            .expect("a frame")
            .expect("ok")
            .into_data()
            .expect("data");
        assert_eq!(data.as_ref(), b"hello");
        let trailers = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let trailers = trailers.expect("a frame").expect("ok").into_trailers();
        assert_eq!(trailers.expect("trailers")["x-end"], "yes");
        assert!(poll_fn(|cx| Pin::new(&mut body).poll_frame(cx))
            .await
            .is_none());
        assert!(http_body::Body::is_end_stream(&body));
    }

    #[test]
    fn request_heads_convert() {
        let req = http02::Request::post("http://127.0.0.1:1/grpc.health.v1.Health/Check?x=1")
            .version(http02::Version::HTTP_2)
            .header("content-type", "application/grpc")
            .header("grpc-timeout", "1S")
            .body(hyper::Body::empty())
            .expect("request");
        let req = request_to_http1(req).expect("converts");
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri().path(), "/grpc.health.v1.Health/Check");
        assert_eq!(req.uri().query(), Some("x=1"));
        assert_eq!(req.version(), http::Version::HTTP_2);
        assert_eq!(req.headers()["grpc-timeout"], "1S");
    }
}
