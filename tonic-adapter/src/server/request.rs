//! The gRPC request rules the engine applies before a health handler runs.
// Stand-in until the shared `grpc` module lands; the engine calls only what is here.

use std::{io::Read, time::Duration};

use bytes::{Buf, BytesMut};
use http::HeaderMap;

/// A gRPC status code and message, for an answer that ends a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    pub(super) code: u8,
    pub(super) message: &'static str,
}

pub(super) const UNIMPLEMENTED: u8 = 12;
pub(super) const INTERNAL: u8 = 13;
pub(super) const RESOURCE_EXHAUSTED: u8 = 8;

const fn fail(code: u8, message: &'static str) -> Failure {
    Failure { code, message }
}

/// What the request headers of a gRPC call said.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CallHeaders {
    pub(super) gzip: bool,
    pub(super) timeout: Option<Duration>,
}

/// Whether `headers` name a gRPC content type.
pub(super) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.strip_prefix("application/grpc").is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('+') || rest.starts_with(';')
            })
        })
}

/// The encoding and deadline of a gRPC call.
pub(super) fn call_headers(headers: &HeaderMap) -> Result<CallHeaders, Failure> {
    let gzip = match headers.get("grpc-encoding").map(|v| v.as_bytes()) {
        None | Some(b"identity") => false,
        Some(b"gzip") => true,
        Some(_) => return Err(fail(UNIMPLEMENTED, "unsupported grpc-encoding")),
    };
    let timeout = headers
        .get("grpc-timeout")
        .and_then(|v| parse_timeout(v.as_bytes()));
    Ok(CallHeaders { gzip, timeout })
}

/// `grpc-timeout`: 1 to 8 digits and a unit (H, M, S, m, u, n). Anything else is ignored.
fn parse_timeout(v: &[u8]) -> Option<Duration> {
    let (&unit, digits) = v.split_last()?;
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

/// Gathers the request body of a unary or server-streaming call: one length-prefixed
/// message, at most `limit` bytes.
#[derive(Debug, Default)]
pub(super) struct Body {
    buf: BytesMut,
}

impl Body {
    /// Adds a DATA chunk.
    pub(super) fn push(&mut self, chunk: &[u8], limit: usize) -> Result<(), Failure> {
        self.buf.extend_from_slice(chunk);
        if self.buf.len() >= 5 {
            let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
            if len as usize > limit {
                return Err(fail(
                    RESOURCE_EXHAUSTED,
                    "request message larger than the limit",
                ));
            }
            if self.buf.len() > 5 + len as usize {
                return Err(fail(UNIMPLEMENTED, "more than one request message"));
            }
        }
        Ok(())
    }

    /// Bytes gathered so far (plain-HTTP bodies, no gRPC framing).
    pub(super) fn raw_len(&self) -> usize {
        self.buf.len()
    }

    /// Adds a chunk of a plain-HTTP body.
    pub(super) fn push_raw(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The plain-HTTP body gathered.
    pub(super) fn take_raw(&mut self) -> bytes::Bytes {
        self.buf.split().freeze()
    }

    /// The message, once the stream ended.
    pub(super) fn finish(&mut self, gzip: bool, limit: usize) -> Result<Vec<u8>, Failure> {
        if self.buf.is_empty() {
            return Err(fail(UNIMPLEMENTED, "no request message"));
        }
        if self.buf.len() < 5 {
            return Err(fail(INTERNAL, "truncated request message"));
        }
        let flag = self.buf[0];
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if self.buf.len() < 5 + len {
            return Err(fail(INTERNAL, "truncated request message"));
        }
        self.buf.advance(5);
        match flag {
            0 => Ok(self.buf.to_vec()),
            1 if gzip => {
                let mut out = Vec::new();
                let mut decoder =
                    flate2::read::GzDecoder::new(&self.buf[..]).take(limit as u64 + 1);
                decoder
                    .read_to_end(&mut out)
                    .map_err(|_| fail(INTERNAL, "request message does not decompress"))?;
                if out.len() > limit {
                    return Err(fail(
                        RESOURCE_EXHAUSTED,
                        "request message larger than the limit",
                    ));
                }
                Ok(out)
            }
            1 => Err(fail(INTERNAL, "compressed message without grpc-encoding")),
            _ => Err(fail(INTERNAL, "bad message flag")),
        }
    }
}
