//! Plain-HTTP answers of the engine (the gRPC ones are built by [`crate::grpc`]).

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

/// A plain HTTP answer with a text body.
pub(super) fn plain(status: StatusCode, body: &'static str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(body.as_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
