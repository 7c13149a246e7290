//! One gRPC call of `grpc.health.v1.Health`, with plain `http` and `bytes` types and no
//! runtime: the header checks, the request-body accumulator, request decoding and the answer
//! building that every server of this crate shares (the tonic mount and the standalone
//! engine).
//!
//! # The rules, and where they come from
//!
//! Checked in this order on the request headers ([`accept`]), as grpc-go checks them:
//!
//! | input | answer |
//! |---|---|
//! | `:method` other than `POST` | HTTP 405, `grpc-status` `INVALID_ARGUMENT` |
//! | `content-type` not `application/grpc` or `application/grpc+proto` (a `;` parameter may follow) | HTTP 415, `grpc-status` `INVALID_ARGUMENT` (the gRPC HTTP/2 spec's SHOULD, and grpc-go's answer) |
//! | `grpc-timeout` not `1*8DIGIT` + one of `H M S m u n` | HTTP 400, `grpc-status` `INTERNAL` (grpc-go) |
//! | a path that is not `Check`, `Watch` or `List` | `UNIMPLEMENTED` |
//! | `grpc-encoding` not absent, empty, `identity` or `gzip` | `UNIMPLEMENTED` with `grpc-accept-encoding: gzip,identity` (gRPC's compression spec) |
//!
//! Then on the body ([`RequestBody`]), from gRPC's status-code guide and grpc-go:
//!
//! | input | answer |
//! |---|---|
//! | a message over the size limit (4 MiB by default), compressed or not | `RESOURCE_EXHAUSTED` |
//! | no message at all (a frame of length 0 is one message) | `UNIMPLEMENTED` (cardinality) |
//! | a second message starting | `UNIMPLEMENTED` (cardinality) |
//! | the stream ends inside a frame | `INTERNAL` (grpc-go's answer to an unexpected EOF) |
//! | compressed flag set without `grpc-encoding: gzip` | `INTERNAL` |
//! | a flag byte other than 0 or 1 | `INTERNAL` |
//! | gzip that does not decompress | `INTERNAL` |
//! | malformed protobuf, a name over 200 bytes | `INVALID_ARGUMENT` |
//!
//! Errors are answered "trailers-only": one HEADERS frame with `grpc-status` and a
//! percent-encoded `grpc-message`, as grpc-go does.

use std::{borrow::Cow, io::Read, time::Duration};

use bytes::Bytes;
use dubbo_health_core::{wire, GrpcCode, Registry, ServingStatus, Storage};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use percent_encoding::{AsciiSet, CONTROLS};

/// The largest request message accepted by default, as gRPC's default: 4 MiB.
pub(crate) const DEFAULT_MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// What `grpc-accept-encoding` lists: the request encodings this crate decodes.
pub(crate) const ACCEPT_ENCODING: &str = "gzip,identity";

/// Request messages up to this size are gathered without allocating: a `HealthCheckRequest`
/// with a name of [`MAX_NAME`](dubbo_health_core::MAX_NAME) bytes is 203 bytes.
pub(crate) const INLINE: usize = 256;

const GRPC_STATUS: &str = "grpc-status";
const GRPC_MESSAGE: &str = "grpc-message";
const GRPC_ENCODING: &str = "grpc-encoding";
const GRPC_ACCEPT_ENCODING: &str = "grpc-accept-encoding";
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// `grpc-message` is percent-encoded: everything but space and visible ASCII, and `%`.
const MESSAGE_ESCAPES: &AsciiSet = &CONTROLS.add(b'%');

// === methods ===

/// The three methods of `grpc.health.v1.Health`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Method {
    /// Unary `Check`.
    Check,
    /// Server-streaming `Watch`.
    Watch,
    /// Unary `List`.
    List,
}

impl Method {
    /// The method a request path names, if it is one of the three.
    pub(crate) fn from_path(path: &str) -> Option<Self> {
        match path {
            "/grpc.health.v1.Health/Check" => Some(Self::Check),
            "/grpc.health.v1.Health/Watch" => Some(Self::Watch),
            "/grpc.health.v1.Health/List" => Some(Self::List),
            _ => None,
        }
    }

    /// The request path of the method.
    #[allow(dead_code)] // for servers that route by method (the standalone engine)
    pub(crate) const fn path(self) -> &'static str {
        match self {
            Self::Check => "/grpc.health.v1.Health/Check",
            Self::Watch => "/grpc.health.v1.Health/Watch",
            Self::List => "/grpc.health.v1.Health/List",
        }
    }
}

/// How the request message is encoded (`grpc-encoding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Encoding {
    /// Absent or `identity`: messages must not have the compressed flag.
    Identity,
    /// `gzip`: messages with the compressed flag are gzip.
    Gzip,
}

/// A call whose headers passed [`accept`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    /// The method called.
    pub(crate) method: Method,
    /// The request message encoding.
    pub(crate) encoding: Encoding,
    /// The client's `grpc-timeout`, if it sent one.
    pub(crate) timeout: Option<Duration>,
}

/// Checks a request's headers, in grpc-go's order: `POST`, `content-type`, `grpc-timeout`,
/// the path, `grpc-encoding`. See the [module docs](self) for each answer.
///
/// # Errors
///
/// The [`Status`] to answer trailers-only with.
pub(crate) fn accept(
    method: &http::Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Call, Status> {
    if method != http::Method::POST {
        return Err(Status::with_http(
            GrpcCode::InvalidArgument,
            "gRPC requests must use POST",
            StatusCode::METHOD_NOT_ALLOWED,
        ));
    }
    match headers.get(header::CONTENT_TYPE) {
        Some(v) if is_grpc_content_type(v.as_bytes()) => {}
        other => {
            let shown = other.map_or(Cow::Borrowed("none"), |v| {
                Cow::Owned(format!("{:?}", String::from_utf8_lossy(v.as_bytes())))
            });
            return Err(Status::with_http(
                GrpcCode::InvalidArgument,
                format!("invalid gRPC request content-type {shown}; expected application/grpc or application/grpc+proto"),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ));
        }
    }
    let timeout = match headers.get(GRPC_TIMEOUT) {
        None => None,
        Some(v) => Some(parse_timeout(v.as_bytes()).ok_or_else(|| {
            Status::with_http(
                GrpcCode::Internal,
                format!(
                    "malformed grpc-timeout {:?}",
                    String::from_utf8_lossy(v.as_bytes())
                ),
                StatusCode::BAD_REQUEST,
            )
        })?),
    };
    let method = Method::from_path(path).ok_or_else(|| {
        Status::new(
            GrpcCode::Unimplemented,
            format!("unknown method {}", path.escape_debug()),
        )
    })?;
    let encoding = match headers.get(GRPC_ENCODING).map(HeaderValue::as_bytes) {
        // An empty value is identity too, as grpc-go reads it.
        None => Encoding::Identity,
        Some(b"") => Encoding::Identity,
        Some(v) if v.eq_ignore_ascii_case(b"identity") => Encoding::Identity,
        Some(v) if v.eq_ignore_ascii_case(b"gzip") => Encoding::Gzip,
        Some(v) => {
            let mut status = Status::new(
                GrpcCode::Unimplemented,
                format!(
                    "grpc-encoding {:?} is not supported; supported: {ACCEPT_ENCODING}",
                    String::from_utf8_lossy(v)
                ),
            );
            status.accept_encoding = true;
            return Err(status);
        }
    };
    Ok(Call {
        method,
        encoding,
        timeout,
    })
}

/// Whether a request's `content-type` makes it a gRPC call (see [`accept`]): how a server
/// that also answers plain HTTP on the same port tells the two apart.
pub(crate) fn is_grpc_request(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| is_grpc_content_type(v.as_bytes()))
}

/// `application/grpc` or `application/grpc+proto`, optionally followed by `;` parameters
/// (grpc-go accepts them), in any ASCII case.
fn is_grpc_content_type(value: &[u8]) -> bool {
    const BASE: &[u8] = b"application/grpc";
    if value.len() < BASE.len() || !value[..BASE.len()].eq_ignore_ascii_case(BASE) {
        return false;
    }
    let mut rest = &value[BASE.len()..];
    if rest.len() >= 6 && rest[..6].eq_ignore_ascii_case(b"+proto") {
        rest = &rest[6..];
    }
    rest.is_empty() || rest[0] == b';'
}

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits and a unit (`H`, `M`, `S`, `m`, `u`,
/// `n`), as the gRPC HTTP/2 spec writes it. `None` when it is malformed. `0` is accepted
/// (a deadline that has passed), as grpc-go does.
pub(crate) fn parse_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

// === status ===

/// A gRPC status to answer with: the code, a message, and the HTTP status of the response
/// (200 but for the header errors of [`accept`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Status {
    code: GrpcCode,
    message: Cow<'static, str>,
    http: StatusCode,
    /// Adds `grpc-accept-encoding` to the answer (an unsupported `grpc-encoding`).
    accept_encoding: bool,
}

impl Status {
    /// A status answered with HTTP 200.
    pub(crate) fn new(code: GrpcCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::with_http(code, message, StatusCode::OK)
    }

    fn with_http(code: GrpcCode, message: impl Into<Cow<'static, str>>, http: StatusCode) -> Self {
        Self {
            code,
            message: message.into(),
            http,
            accept_encoding: false,
        }
    }

    /// `DEADLINE_EXCEEDED`: the call's `grpc-timeout` passed.
    pub(crate) fn deadline_exceeded() -> Self {
        Self::new(GrpcCode::DeadlineExceeded, "deadline exceeded")
    }

    /// The gRPC status code.
    #[allow(dead_code)] // for servers that build their own answers (the standalone engine)
    pub(crate) fn code(&self) -> GrpcCode {
        self.code
    }

    /// The message, as it was before percent-encoding.
    #[allow(dead_code)] // for servers that build their own answers (the standalone engine)
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status of a trailers-only answer.
    #[allow(dead_code)] // for servers that build their own answers (the standalone engine)
    pub(crate) fn http_status(&self) -> StatusCode {
        self.http
    }

    fn insert_into(&self, headers: &mut HeaderMap) {
        headers.insert(GRPC_STATUS, code_value(self.code));
        headers.insert(GRPC_MESSAGE, encode_message(&self.message));
        if self.accept_encoding {
            headers.insert(
                GRPC_ACCEPT_ENCODING,
                HeaderValue::from_static(ACCEPT_ENCODING),
            );
        }
    }

    /// The trailers that end a stream with this status (after response headers were sent).
    pub(crate) fn trailers(&self) -> HeaderMap {
        let mut trailers = HeaderMap::with_capacity(3);
        self.insert_into(&mut trailers);
        trailers
    }

    /// The whole answer, trailers-only: the response headers carry the status, and `body`
    /// must be empty and end at once.
    pub(crate) fn trailers_only<B>(&self, body: B) -> http::Response<B> {
        let mut response = http::Response::new(body);
        *response.status_mut() = self.http;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        self.insert_into(headers);
        response
    }
}

impl From<wire::DecodeError> for Status {
    fn from(e: wire::DecodeError) -> Self {
        Self::new(GrpcCode::InvalidArgument, e.to_string())
    }
}

impl From<wire::RpcError> for Status {
    fn from(e: wire::RpcError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

impl From<dubbo_health_core::Error> for Status {
    fn from(e: dubbo_health_core::Error) -> Self {
        Self::new(e.grpc_code(), e.to_string())
    }
}

fn code_value(code: GrpcCode) -> HeaderValue {
    const CODES: [&str; 17] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    ];
    CODES.get(code.as_u32() as usize).map_or_else(
        || HeaderValue::from(code.as_u32()),
        |s| HeaderValue::from_static(s),
    )
}

/// Percent-encodes a `grpc-message` (space and visible ASCII but `%` stay as they are).
fn encode_message(message: &str) -> HeaderValue {
    let encoded = percent_encoding::utf8_percent_encode(message, MESSAGE_ESCAPES).to_string();
    // Only space, visible ASCII and `%XX` remain, which are all valid in a header value.
    HeaderValue::try_from(encoded).unwrap_or_else(|_| HeaderValue::from_static("invalid message"))
}

// === answers ===

/// The response headers of a call that goes on to send messages: HTTP 200,
/// `content-type: application/grpc`, and the encodings this server decodes.
pub(crate) fn response<B>(body: B) -> http::Response<B> {
    let mut response = http::Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(
        GRPC_ACCEPT_ENCODING,
        HeaderValue::from_static(ACCEPT_ENCODING),
    );
    response
}

/// The trailers of a call that ended well: `grpc-status: 0`.
pub(crate) fn ok_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert(GRPC_STATUS, HeaderValue::from_static("0"));
    trailers
}

/// Each `HealthCheckResponse` as a whole gRPC message: the 5-byte prefix (uncompressed,
/// big-endian length) and [`wire::check_response_bytes`]. Indexed by the status's wire number.
const STATUS_FRAMES: [&[u8]; 4] = [
    &[0, 0, 0, 0, 0],
    &[0, 0, 0, 0, 2, 0x08, 0x01],
    &[0, 0, 0, 0, 2, 0x08, 0x02],
    &[0, 0, 0, 0, 2, 0x08, 0x03],
];

/// The `Check` answer and each `Watch` message for `status`, framed: static bytes, never
/// allocated.
pub(crate) const fn status_frame(status: ServingStatus) -> &'static [u8] {
    STATUS_FRAMES[status as usize]
}

/// [`status_frame`] as [`Bytes`] (no copy, no allocation).
pub(crate) fn status_bytes(status: ServingStatus) -> Bytes {
    Bytes::from_static(status_frame(status))
}

/// Decodes a `Check` request and answers it: the framed `HealthCheckResponse`.
///
/// # Errors
///
/// `INVALID_ARGUMENT` for a malformed request or a name over 200 bytes, `NOT_FOUND` for a
/// name that is not registered.
pub(crate) fn check<S: Storage>(
    registry: &Registry<S>,
    message: &[u8],
) -> Result<&'static [u8], Status> {
    let name = decode_name(message)?;
    let status = registry.check(name)?;
    Ok(status_frame(status))
}

/// Decodes a `HealthCheckRequest` (`Check` and `Watch`) into its name.
///
/// # Errors
///
/// `INVALID_ARGUMENT` for malformed bytes or a name over 200 bytes.
pub(crate) fn decode_name(message: &[u8]) -> Result<&str, Status> {
    Ok(wire::decode_check_request(message)?)
}

/// Decodes a `List` request and answers it: the framed `HealthListResponse`.
///
/// # Errors
///
/// `INVALID_ARGUMENT` for malformed bytes, `RESOURCE_EXHAUSTED` over
/// [`LIST_LIMIT`](dubbo_health_core::LIST_LIMIT) names.
pub(crate) fn list<S: Storage>(registry: &Registry<S>, message: &[u8]) -> Result<Bytes, Status> {
    wire::decode_list_request(message)?;
    list_frame(registry)
}

/// The framed `List` answer for `registry`.
///
/// # Errors
///
/// `RESOURCE_EXHAUSTED` over [`LIST_LIMIT`](dubbo_health_core::LIST_LIMIT) names.
pub(crate) fn list_frame<S: Storage>(registry: &Registry<S>) -> Result<Bytes, Status> {
    let mut buf = vec![0u8; 5 + wire::MAX_LIST_RESPONSE];
    let n = wire::handle_list(registry, b"", &mut buf[5..])?;
    // `n` is at most MAX_LIST_RESPONSE (21,000), so it fits the prefix's u32.
    buf[..5].copy_from_slice(&wire::grpc_frame_header(n as u32));
    buf.truncate(5 + n);
    Ok(Bytes::from(buf))
}

// === request body ===

/// Where a [`RequestBody`] is in the stream of DATA bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Reading the 5-byte prefix; `have` bytes of it so far.
    Prefix { have: u8 },
    /// Reading the message of `len` bytes; `have` so far.
    Message {
        compressed: bool,
        len: usize,
        have: usize,
    },
    /// One whole message read.
    Done { compressed: bool, len: usize },
}

/// Gathers a request's DATA chunks into its one message, checking gRPC's framing as the
/// bytes arrive (so an oversized or second message is refused at once, before the rest is
/// read). Small messages (up to [`INLINE`] bytes, every normal request) are kept inline
/// without allocating.
///
/// Feed every DATA chunk to [`push`](Self::push), then call [`finish`](Self::finish) at
/// the end of the stream.
pub(crate) struct RequestBody {
    encoding: Encoding,
    limit: usize,
    stage: Stage,
    prefix: [u8; 5],
    inline: [u8; INLINE],
    /// The message when it is longer than `INLINE`.
    heap: Vec<u8>,
    /// The message after decompression.
    gunzipped: Option<Vec<u8>>,
}

impl RequestBody {
    /// An empty body for a request in `encoding`, refusing messages over `limit` bytes.
    pub(crate) fn new(encoding: Encoding, limit: usize) -> Self {
        Self {
            encoding,
            limit,
            stage: Stage::Prefix { have: 0 },
            prefix: [0; 5],
            inline: [0; INLINE],
            heap: Vec::new(),
            gunzipped: None,
        }
    }

    /// Takes the next DATA bytes.
    ///
    /// # Errors
    ///
    /// `RESOURCE_EXHAUSTED` for a message over the limit, `UNIMPLEMENTED` when a second
    /// message starts, `INTERNAL` for a bad flag byte or a compressed message without gzip.
    /// The call must be answered with it, and the body given up.
    pub(crate) fn push(&mut self, mut chunk: &[u8]) -> Result<(), Status> {
        while !chunk.is_empty() {
            match self.stage {
                Stage::Prefix { have } => {
                    let have = usize::from(have);
                    let take = chunk.len().min(5 - have);
                    self.prefix[have..have + take].copy_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    if have + take < 5 {
                        // Fewer than 5 bytes, so this fits a u8.
                        self.stage = Stage::Prefix {
                            have: (have + take) as u8,
                        };
                        continue;
                    }
                    self.start_message()?;
                }
                Stage::Message {
                    compressed,
                    len,
                    have,
                } => {
                    let take = chunk.len().min(len - have);
                    if len <= INLINE {
                        self.inline[have..have + take].copy_from_slice(&chunk[..take]);
                    } else {
                        self.heap.extend_from_slice(&chunk[..take]);
                    }
                    chunk = &chunk[take..];
                    self.stage = if have + take == len {
                        Stage::Done { compressed, len }
                    } else {
                        Stage::Message {
                            compressed,
                            len,
                            have: have + take,
                        }
                    };
                }
                Stage::Done { .. } => {
                    return Err(Status::new(
                        GrpcCode::Unimplemented,
                        "cardinality violation: more than one request message on a unary or server-streaming call",
                    ))
                }
            }
        }
        Ok(())
    }

    /// The prefix is complete: check it and start the message.
    fn start_message(&mut self) -> Result<(), Status> {
        let compressed = match self.prefix[0] {
            0 => false,
            1 if self.encoding == Encoding::Gzip => true,
            1 => {
                return Err(Status::new(
                    GrpcCode::Internal,
                    "compressed flag set without a grpc-encoding",
                ))
            }
            flag => {
                return Err(Status::new(
                    GrpcCode::Internal,
                    format!("unexpected message flag {flag}"),
                ))
            }
        };
        let len = u32::from_be_bytes([
            self.prefix[1],
            self.prefix[2],
            self.prefix[3],
            self.prefix[4],
        ]);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > self.limit {
            return Err(self.too_large(len));
        }
        if len > INLINE {
            self.heap = Vec::with_capacity(len);
        }
        self.stage = if len == 0 {
            Stage::Done { compressed, len }
        } else {
            Stage::Message {
                compressed,
                len,
                have: 0,
            }
        };
        Ok(())
    }

    fn too_large(&self, len: usize) -> Status {
        Status::new(
            GrpcCode::ResourceExhausted,
            format!(
                "request message is {len} bytes; the limit is {}",
                self.limit
            ),
        )
    }

    /// The stream ended: the one request message, decompressed.
    ///
    /// # Errors
    ///
    /// `UNIMPLEMENTED` when no message came, `INTERNAL` when the stream ended inside one
    /// or gzip did not decompress, `RESOURCE_EXHAUSTED` when it decompresses to more than
    /// the limit.
    pub(crate) fn finish(&mut self) -> Result<&[u8], Status> {
        let (compressed, len) =
            match self.stage {
                Stage::Prefix { have: 0 } => return Err(Status::new(
                    GrpcCode::Unimplemented,
                    "cardinality violation: no request message on a unary or server-streaming call",
                )),
                Stage::Prefix { .. } | Stage::Message { .. } => {
                    return Err(Status::new(
                        GrpcCode::Internal,
                        "request stream ended inside a message",
                    ))
                }
                Stage::Done { compressed, len } => (compressed, len),
            };
        if compressed && self.gunzipped.is_some() {
            return Ok(self.gunzipped.as_deref().unwrap_or_default());
        }
        if !compressed {
            return Ok(if len <= INLINE {
                &self.inline[..len]
            } else {
                &self.heap
            });
        }
        let mut out = Vec::new();
        let read = {
            let input: &[u8] = if len <= INLINE {
                &self.inline[..len]
            } else {
                &self.heap
            };
            if input.is_empty() {
                // grpc-go: an empty gzip stream is an error, not an empty message.
                Err(std::io::ErrorKind::UnexpectedEof.into())
            } else {
                let limit = u64::try_from(self.limit).unwrap_or(u64::MAX);
                flate2::read::MultiGzDecoder::new(input)
                    .take(limit.saturating_add(1))
                    .read_to_end(&mut out)
            }
        };
        match read {
            Err(e) => Err(Status::new(
                GrpcCode::Internal,
                format!("request message does not decompress: {e}"),
            )),
            Ok(n) if n > self.limit => Err(Status::new(
                GrpcCode::ResourceExhausted,
                format!(
                    "request message decompresses to more than the limit of {} bytes",
                    self.limit
                ),
            )),
            Ok(_) => Ok(self.gunzipped.insert(out)),
        }
    }
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("encoding", &self.encoding)
            .field("limit", &self.limit)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
