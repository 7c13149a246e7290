//! Response heads, trailers and the static message frames the engine sends.

use bytes::Bytes;
use dubbo_health_core::{wire, ServingStatus};
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

/// Length of a `HealthCheckResponse` frame at most: the 5-byte gRPC prefix and 2 bytes.
pub(super) const STATUS_FRAME_MAX: usize = 7;

const fn frame(status: ServingStatus) -> ([u8; STATUS_FRAME_MAX], usize) {
    let msg = wire::check_response_bytes(status);
    let mut out = [0u8; STATUS_FRAME_MAX];
    out[4] = msg.len() as u8;
    let mut i = 0;
    while i < msg.len() {
        out[5 + i] = msg[i];
        i += 1;
    }
    (out, 5 + msg.len())
}

static FRAMES: [([u8; STATUS_FRAME_MAX], usize); 4] = [
    frame(ServingStatus::Unknown),
    frame(ServingStatus::Serving),
    frame(ServingStatus::NotServing),
    frame(ServingStatus::ServiceUnknown),
];

/// The whole gRPC frame of the `HealthCheckResponse` for `status`: static bytes, never
/// allocated or encoded per message.
pub(super) fn status_frame(status: ServingStatus) -> Bytes {
    let (bytes, len) = &FRAMES[status as usize];
    Bytes::from_static(&bytes[..*len])
}

/// The response head of a gRPC call that goes on to send messages.
pub(super) fn grpc_head() -> Response<()> {
    let mut response = Response::new(());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

/// The trailers of a call that succeeded.
pub(super) fn ok_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    trailers
}

/// Trailers with a gRPC status code other than OK, and its message.
pub(super) fn error_trailers(code: u8, message: &str) -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(3);
    insert_status(&mut trailers, code, message);
    trailers
}

/// A trailers-only answer: the head carries the gRPC status and ends the stream.
pub(super) fn error_head(code: u8, message: &str) -> Response<()> {
    let mut response = grpc_head();
    insert_status(response.headers_mut(), code, message);
    if code == super::request::UNIMPLEMENTED {
        // For an unsupported grpc-encoding; harmless on the other UNIMPLEMENTED answers.
        response.headers_mut().insert(
            "grpc-accept-encoding",
            HeaderValue::from_static("gzip,identity"),
        );
    }
    response
}

fn insert_status(headers: &mut HeaderMap, code: u8, message: &str) {
    headers.insert("grpc-status", HeaderValue::from(u16::from(code)));
    if let Ok(value) = HeaderValue::from_str(&percent_encode(message)) {
        headers.insert("grpc-message", value);
    }
}

/// `grpc-message` is percent-encoded: every byte outside printable ASCII, and `%`.
fn percent_encode(message: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_frames_are_prefixed_messages() {
        assert_eq!(
            &status_frame(ServingStatus::Serving)[..],
            b"\0\0\0\0\x02\x08\x01"
        );
        assert_eq!(&status_frame(ServingStatus::Unknown)[..], b"\0\0\0\0\0");
        assert_eq!(
            &status_frame(ServingStatus::ServiceUnknown)[..],
            b"\0\0\0\0\x02\x08\x03"
        );
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(percent_encode("a b%\n✓"), "a b%25%0A%E2%9C%93");
    }
}
