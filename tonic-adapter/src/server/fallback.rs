//! The fallback route: gRPC calls to methods other than `grpc.health.v1.Health/*`, handed to
//! a tower service in a task of their own, with the bodies bridged to and from `h2`.

use std::{
    fmt,
    future::{poll_fn, Future},
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
};

use bytes::{Buf, Bytes};
use h2::{server::SendResponse, RecvStream};
use http::Request;
use http_body::{Body, Frame};

use crate::grpc::Status;

/// The error type of a fallback service or body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, BoxError>> + Send>>;

/// A type-erased fallback service, cloned per call as tower services are.
#[derive(Clone)]
pub(super) struct Fallback(Arc<dyn Fn(Request<RequestBody>) -> ResponseFuture + Send + Sync>);

impl fmt::Debug for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback").finish_non_exhaustive()
    }
}

impl Fallback {
    pub(super) fn new<S, B>(service: S) -> Self
    where
        S: tower_service::Service<Request<RequestBody>, Response = http::Response<B>>
            + Clone
            + Send
            + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let service = Mutex::new(service);
        Self(Arc::new(move |request| {
            let mut service = service
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            Box::pin(async move {
                poll_fn(|cx| service.poll_ready(cx))
                    .await
                    .map_err(Into::into)?;
                let response = service.call(request).await.map_err(Into::into)?;
                Ok(response.map(tonic::body::Body::new))
            })
        }))
    }
}

/// The request body a fallback service reads: the HTTP/2 stream's DATA (and trailers), with
/// flow-control window handed back as it is read.
pub struct RequestBody {
    recv: RecvStream,
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("end_stream", &self.recv.is_end_stream())
            .finish()
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let recv = &mut self.recv;
        match recv.poll_data(cx) {
            Poll::Ready(Some(Ok(data))) => {
                let _ = recv.flow_control().release_capacity(data.len());
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => match recv.poll_trailers(cx) {
                Poll::Ready(Ok(Some(trailers))) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
                Poll::Ready(Ok(None)) => Poll::Ready(None),
                Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
                Poll::Pending => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}

/// Runs one fallback call to its end (in its own task).
pub(super) async fn run(
    fallback: Fallback,
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
) {
    let (head, recv) = request.into_parts();
    let call = (fallback.0)(Request::from_parts(head, RequestBody { recv }));
    // The client may give up while the service works: stop then.
    let mut call = std::pin::pin!(call);
    let response = poll_fn(|cx| {
        if respond.poll_reset(cx).is_ready() {
            return Poll::Ready(None);
        }
        call.as_mut().poll(cx).map(Some)
    })
    .await;
    let response = match response {
        None => return,
        Some(Ok(response)) => response,
        Some(Err(e)) => {
            let status = Status::new(dubbo_health_core::GrpcCode::Unknown, e.to_string());
            let _ = respond.send_response(status.trailers_only(()), true);
            return;
        }
    };
    let (head, mut body) = response.into_parts();
    let end = body.is_end_stream();
    let Ok(mut send) = respond.send_response(http::Response::from_parts(head, ()), end) else {
        return;
    };
    if end {
        return;
    }
    loop {
        let frame = poll_fn(|cx| {
            if send.poll_reset(cx).is_ready() {
                return Poll::Ready(None);
            }
            Pin::new(&mut body).poll_frame(cx).map(Some)
        })
        .await;
        let frame = match frame {
            None => return, // reset by the client
            Some(None) => {
                let _ = send.send_data(Bytes::new(), true);
                return;
            }
            Some(Some(Err(_))) => {
                send.send_reset(h2::Reason::INTERNAL_ERROR);
                return;
            }
            Some(Some(Ok(frame))) => frame,
        };
        match frame.into_data() {
            Ok(mut data) => {
                // Respect the client's flow-control window: send what it allows, wait for more.
                while data.has_remaining() {
                    send.reserve_capacity(data.remaining());
                    match poll_fn(|cx| send.poll_capacity(cx)).await {
                        Some(Ok(n)) if n > 0 => {
                            let chunk = data.copy_to_bytes(n.min(data.remaining()));
                            if send.send_data(chunk, false).is_err() {
                                return;
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => return,
                    }
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    let _ = send.send_trailers(trailers);
                    return;
                }
            }
        }
    }
}
