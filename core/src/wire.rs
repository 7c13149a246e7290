//! An allocation-free protobuf codec for exactly the `grpc.health.v1` messages, and the
//! `Check` / `List` handlers built on it.
//!
//! Byte-for-byte the same as prost's encoding (a test in `dubbo-health-proto` compares them
//! for arbitrary inputs), and it accepts and rejects the same request bytes prost does, with
//! one addition: a `service` longer than [`MAX_NAME`] is refused.
//!
//! ```
//! use dubbo_health_core::{wire, FixedRegistry, ServingStatus};
//!
//! let registry = FixedRegistry::<8>::new();
//! let request = b"\x0a\x03svc"; // HealthCheckRequest { service: "svc" }
//! assert_eq!(wire::decode_check_request(request), Ok("svc"));
//!
//! registry.set("svc", ServingStatus::Serving).unwrap();
//! let mut out = [0u8; 2];
//! let n = wire::handle_check(&registry, request, &mut out).unwrap();
//! assert_eq!(&out[..n], b"\x08\x01"); // HealthCheckResponse { status: SERVING }
//! ```

use core::fmt;

use crate::{GrpcCode, Registry, ServingStatus, Storage, LIST_LIMIT, MAX_NAME};

/// Why request bytes were refused. Each maps to gRPC `INVALID_ARGUMENT`.
///
/// ```
/// use dubbo_health_core::wire::{decode_check_request, DecodeError};
///
/// assert_eq!(decode_check_request(b"\x0a\x05ab"), Err(DecodeError::Truncated));
/// assert_eq!(decode_check_request(b"\x0a\x01\xff"), Err(DecodeError::InvalidUtf8));
/// assert_eq!(decode_check_request(b"\x08\x01"), Err(DecodeError::WrongWireType { field: 1, wire_type: 0 }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends inside a field.
    Truncated,
    /// A varint is longer than 10 bytes or overflows 64 bits.
    BadVarint,
    /// A field key is zero, too large, or uses wire type 6 or 7.
    BadKey,
    /// A known field arrived with the wrong wire type.
    WrongWireType {
        /// The field number.
        field: u32,
        /// The wire type found.
        wire_type: u8,
    },
    /// A group ends with the wrong field number, ends without starting, or never ends.
    BadGroup,
    /// Groups nest deeper than 100 levels.
    TooDeep,
    /// The service name is not UTF-8.
    InvalidUtf8,
    /// The service name is longer than [`MAX_NAME`] bytes.
    NameTooLong {
        /// Its length in bytes.
        len: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("malformed request: truncated"),
            Self::BadVarint => f.write_str("malformed request: invalid varint"),
            Self::BadKey => f.write_str("malformed request: invalid field key"),
            Self::WrongWireType { field, wire_type } => write!(
                f,
                "malformed request: field {field} has wire type {wire_type}"
            ),
            Self::BadGroup => f.write_str("malformed request: unbalanced group"),
            Self::TooDeep => f.write_str("malformed request: groups nested too deep"),
            Self::InvalidUtf8 => f.write_str("malformed request: service name is not UTF-8"),
            Self::NameTooLong { len } => {
                write!(f, "service name is {len} bytes; the limit is {MAX_NAME}")
            }
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a response could not be encoded.
///
/// ```
/// use dubbo_health_core::{wire, ServingStatus};
///
/// let mut out = [0u8; 1];
/// assert_eq!(
///     wire::encode_check_response(ServingStatus::Serving, &mut out),
///     Err(wire::EncodeError::BufferTooSmall { needed: 2 })
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is too small; `needed` bytes would do.
    BufferTooSmall {
        /// The size that would have fit.
        needed: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
        }
    }
}

impl core::error::Error for EncodeError {}

/// Why a `Check` or `List` call fails, with the gRPC code and message to answer.
///
/// ```
/// use dubbo_health_core::{wire, FixedRegistry, GrpcCode};
///
/// let registry = FixedRegistry::<8>::new();
/// let mut out = [0u8; 8];
/// let err = wire::handle_check(&registry, b"\x0a\x01x", &mut out).unwrap_err();
/// assert_eq!(err, wire::RpcError::NotFound);
/// assert_eq!(err.code(), GrpcCode::NotFound);
/// assert_eq!(err.to_string(), "unknown service");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RpcError {
    /// The request bytes were refused (`INVALID_ARGUMENT`).
    Decode(DecodeError),
    /// `Check` on a name that is not registered (`NOT_FOUND`).
    NotFound,
    /// `List` with more than [`LIST_LIMIT`] names (`RESOURCE_EXHAUSTED`).
    TooMany {
        /// How many names were counted.
        count: usize,
    },
    /// The caller's output buffer is too small (`INTERNAL`): retry with `needed` bytes.
    BufferTooSmall {
        /// The size that would have fit (for `List`, at the time of the call).
        needed: usize,
    },
}

impl RpcError {
    /// The gRPC status code to answer with.
    ///
    /// ```
    /// # use dubbo_health_core::{wire::RpcError, GrpcCode};
    /// assert_eq!(RpcError::TooMany { count: 101 }.code(), GrpcCode::ResourceExhausted);
    /// ```
    #[must_use]
    pub const fn code(&self) -> GrpcCode {
        match self {
            Self::Decode(_) => GrpcCode::InvalidArgument,
            Self::NotFound => GrpcCode::NotFound,
            Self::TooMany { .. } => GrpcCode::ResourceExhausted,
            Self::BufferTooSmall { .. } => GrpcCode::Internal,
        }
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => e.fmt(f),
            Self::NotFound => f.write_str("unknown service"),
            Self::TooMany { count } => write!(
                f,
                "server health list exceeds maximum capacity: {count} services, limit {LIST_LIMIT}"
            ),
            Self::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
        }
    }
}

impl core::error::Error for RpcError {}

impl From<DecodeError> for RpcError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

impl From<EncodeError> for RpcError {
    fn from(e: EncodeError) -> Self {
        match e {
            EncodeError::BufferTooSmall { needed } => Self::BufferTooSmall { needed },
        }
    }
}

// === decoding ===

const WT_VARINT: u8 = 0;
const WT_I64: u8 = 1;
const WT_LEN: u8 = 2;
const WT_SGROUP: u8 = 3;
const WT_EGROUP: u8 = 4;
const WT_I32: u8 = 5;
const MAX_DEPTH: u32 = 100;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(DecodeError::Truncated);
            };
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(DecodeError::BadVarint);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint)
    }

    fn key(&mut self) -> Result<(u32, u8), DecodeError> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(DecodeError::BadKey);
        }
        let wire_type = (key & 7) as u8;
        let field = (key >> 3) as u32;
        if wire_type > WT_I32 || field == 0 {
            return Err(DecodeError::BadKey);
        }
        Ok((field, wire_type))
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        let rest = self.buf.len() - self.pos;
        if n > rest as u64 {
            return Err(DecodeError::Truncated);
        }
        let out = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(out)
    }

    fn len_delimited(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()?;
        self.bytes(n)
    }

    /// Skips a field's value, groups included (as prost does), without recursion.
    fn skip(&mut self, field: u32, wire_type: u8) -> Result<(), DecodeError> {
        match wire_type {
            WT_VARINT => self.varint().map(drop),
            WT_I64 => self.bytes(8).map(drop),
            WT_LEN => self.len_delimited().map(drop),
            WT_I32 => self.bytes(4).map(drop),
            WT_SGROUP => self.skip_group(field),
            _ => Err(DecodeError::BadGroup),
        }
    }

    fn skip_group(&mut self, field: u32) -> Result<(), DecodeError> {
        // Open groups' field numbers; prost allows 100 levels of message/group nesting.
        let mut open = [0u32; MAX_DEPTH as usize];
        let mut depth = 1usize;
        open[0] = field;
        while depth > 0 {
            if self.pos == self.buf.len() {
                return Err(DecodeError::Truncated);
            }
            let (f, wt) = self.key()?;
            match wt {
                WT_SGROUP => {
                    if depth >= MAX_DEPTH as usize - 1 {
                        return Err(DecodeError::TooDeep);
                    }
                    open[depth] = f;
                    depth += 1;
                }
                WT_EGROUP => {
                    if open[depth - 1] != f {
                        return Err(DecodeError::BadGroup);
                    }
                    depth -= 1;
                }
                _ => self.skip(f, wt)?,
            }
        }
        Ok(())
    }
}

/// Decodes a `HealthCheckRequest` (also the `Watch` request) into its `service` name,
/// borrowed from `buf`.
///
/// Unknown fields are skipped; the last `service` wins, as in every protobuf decoder.
///
/// # Errors
///
/// A [`DecodeError`] for truncated input, bad varints or keys, a `service` that is not a
/// length-delimited field or not UTF-8, unbalanced groups, and names over [`MAX_NAME`].
///
/// ```
/// use dubbo_health_core::wire::decode_check_request;
///
/// assert_eq!(decode_check_request(b""), Ok(""));
/// // Unknown field 2 (varint 7) is skipped.
/// assert_eq!(decode_check_request(b"\x10\x07\x0a\x01a"), Ok("a"));
/// ```
pub fn decode_check_request(buf: &[u8]) -> Result<&str, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let mut service: &[u8] = b"";
    while r.pos < buf.len() {
        let (field, wire_type) = r.key()?;
        if field == 1 {
            if wire_type != WT_LEN {
                return Err(DecodeError::WrongWireType { field, wire_type });
            }
            service = r.len_delimited()?;
            // Checked as each value is read, as prost does, so a bad value is an error even
            // if a later one would replace it.
            core::str::from_utf8(service).map_err(|_| DecodeError::InvalidUtf8)?;
        } else {
            r.skip(field, wire_type)?;
        }
    }
    if service.len() > MAX_NAME {
        return Err(DecodeError::NameTooLong { len: service.len() });
    }
    core::str::from_utf8(service).map_err(|_| DecodeError::InvalidUtf8)
}

/// Checks a `HealthListRequest` (a message with no fields): any unknown fields are skipped.
///
/// # Errors
///
/// A [`DecodeError`] when the bytes are not a well-formed protobuf message.
///
/// ```
/// use dubbo_health_core::wire::decode_list_request;
///
/// assert_eq!(decode_list_request(b""), Ok(()));
/// assert!(decode_list_request(b"\x0a").is_err());
/// ```
pub fn decode_list_request(buf: &[u8]) -> Result<(), DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    while r.pos < buf.len() {
        let (field, wire_type) = r.key()?;
        r.skip(field, wire_type)?;
    }
    Ok(())
}

// === encoding ===

const fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Appends to a caller buffer, counting what would not fit.
struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.out.get_mut(self.len) {
            *slot = b;
        }
        self.len += 1;
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.out.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.len += bytes.len();
    }

    fn finish(self) -> Result<usize, EncodeError> {
        if self.len <= self.out.len() {
            Ok(self.len)
        } else {
            Err(EncodeError::BufferTooSmall { needed: self.len })
        }
    }
}

const CHECK_RESPONSES: [&[u8]; 4] = [b"", b"\x08\x01", b"\x08\x02", b"\x08\x03"];

/// The encoded `HealthCheckResponse` for `status` (0 or 2 bytes; `UNKNOWN` is the empty
/// message, as proto3 omits default values). Also each `Watch` message.
///
/// ```
/// use dubbo_health_core::{wire, ServingStatus};
///
/// assert_eq!(wire::check_response_bytes(ServingStatus::NotServing), b"\x08\x02");
/// assert_eq!(wire::check_response_bytes(ServingStatus::Unknown), b"");
/// ```
#[must_use]
pub const fn check_response_bytes(status: ServingStatus) -> &'static [u8] {
    CHECK_RESPONSES[status as usize]
}

/// Encodes a `HealthCheckResponse` into `out`, returning its length (at most 2).
///
/// # Errors
///
/// [`EncodeError::BufferTooSmall`] when `out` is shorter than the encoding.
///
/// ```
/// use dubbo_health_core::{wire, ServingStatus};
///
/// let mut out = [0u8; 2];
/// assert_eq!(wire::encode_check_response(ServingStatus::ServiceUnknown, &mut out), Ok(2));
/// assert_eq!(out, *b"\x08\x03");
/// ```
pub fn encode_check_response(status: ServingStatus, out: &mut [u8]) -> Result<usize, EncodeError> {
    let bytes = check_response_bytes(status);
    let dst = out
        .get_mut(..bytes.len())
        .ok_or(EncodeError::BufferTooSmall {
            needed: bytes.len(),
        })?;
    dst.copy_from_slice(bytes);
    Ok(bytes.len())
}

/// Encodes a `HealthListResponse` (`map<string, HealthCheckResponse> statuses = 1`) entry by
/// entry into a caller buffer. When the buffer runs out it keeps counting, so
/// [`finish`](Self::finish) can say how large a buffer would have fit.
///
/// ```
/// use dubbo_health_core::{wire::ListEncoder, ServingStatus};
///
/// let mut out = [0u8; 64];
/// let mut list = ListEncoder::new(&mut out);
/// list.push("a", ServingStatus::Serving);
/// assert_eq!(list.count(), 1);
/// let n = list.finish().unwrap();
/// assert_eq!(&out[..n], b"\x0a\x07\x0a\x01a\x12\x02\x08\x01");
/// ```
#[derive(Debug)]
pub struct ListEncoder<'a> {
    w: Writer<'a>,
    count: usize,
}

impl fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("len", &self.len)
            .field("cap", &self.out.len())
            .finish()
    }
}

impl<'a> ListEncoder<'a> {
    /// An encoder writing into `out`.
    ///
    /// ```
    /// # use dubbo_health_core::wire::ListEncoder;
    /// let mut out = [0u8; 0];
    /// assert_eq!(ListEncoder::new(&mut out).finish(), Ok(0)); // an empty list is empty
    /// ```
    pub fn new(out: &'a mut [u8]) -> Self {
        Self {
            w: Writer { out, len: 0 },
            count: 0,
        }
    }

    /// Appends one map entry, in prost's form: an empty name or an `UNKNOWN` status is left
    /// out of the entry, as proto3 leaves out default values.
    ///
    /// ```
    /// # use dubbo_health_core::{wire::ListEncoder, ServingStatus};
    /// let mut out = [0u8; 8];
    /// let mut list = ListEncoder::new(&mut out);
    /// list.push("", ServingStatus::Unknown);
    /// assert_eq!(list.finish(), Ok(2));
    /// assert_eq!(&out[..2], b"\x0a\x00");
    /// ```
    pub fn push(&mut self, name: &str, status: ServingStatus) {
        let key_len = if name.is_empty() {
            0
        } else {
            1 + varint_len(name.len() as u64) + name.len()
        };
        let value = check_response_bytes(status);
        let value_len = if value.is_empty() { 0 } else { 2 + value.len() };
        self.w.byte(0x0a);
        self.w.varint((key_len + value_len) as u64);
        if key_len > 0 {
            self.w.byte(0x0a);
            self.w.varint(name.len() as u64);
            self.w.bytes(name.as_bytes());
        }
        if value_len > 0 {
            self.w.byte(0x12);
            self.w.byte(value.len() as u8);
            self.w.bytes(value);
        }
        self.count += 1;
    }

    /// How many entries were pushed.
    ///
    /// ```
    /// # use dubbo_health_core::wire::ListEncoder;
    /// let mut out = [0u8; 8];
    /// assert_eq!(ListEncoder::new(&mut out).count(), 0);
    /// ```
    #[must_use]
    pub fn count(&self) -> usize {
        self.count
    }

    /// The encoded length.
    ///
    /// # Errors
    ///
    /// [`EncodeError::BufferTooSmall`] with the length that would have fit.
    ///
    /// ```
    /// # use dubbo_health_core::{wire::{EncodeError, ListEncoder}, ServingStatus};
    /// let mut out = [0u8; 4];
    /// let mut list = ListEncoder::new(&mut out);
    /// list.push("abc", ServingStatus::Serving);
    /// assert_eq!(list.finish(), Err(EncodeError::BufferTooSmall { needed: 11 }));
    /// ```
    pub fn finish(self) -> Result<usize, EncodeError> {
        self.w.finish()
    }
}

/// The largest encoded `HealthListResponse`: [`LIST_LIMIT`] entries whose names are
/// [`MAX_NAME`] bytes, none `UNKNOWN` (21,000 bytes). A buffer of this size always holds a
/// [`handle_list`] answer, since a longer list is refused.
///
/// ```
/// use dubbo_health_core::{wire, FixedRegistry, ServingStatus, LIST_LIMIT, MAX_NAME};
///
/// let registry = FixedRegistry::<128>::new();
/// registry.clear("").unwrap();
/// for i in 0..LIST_LIMIT {
///     registry.set(&format!("{i:03}{}", "x".repeat(MAX_NAME - 3)), ServingStatus::NotServing).unwrap();
/// }
/// let mut out = vec![0u8; wire::MAX_LIST_RESPONSE];
/// assert_eq!(wire::handle_list(&registry, b"", &mut out), Ok(wire::MAX_LIST_RESPONSE));
/// ```
pub const MAX_LIST_RESPONSE: usize = LIST_LIMIT * {
    // Entry: key (tag, length, name) and value (tag, length, a 2-byte HealthCheckResponse).
    let entry = 1 + varint_len(MAX_NAME as u64) + MAX_NAME + 1 + 1 + 2;
    1 + varint_len(entry as u64) + entry
};

/// The 5-byte gRPC message prefix (uncompressed flag, big-endian length).
///
/// ```
/// assert_eq!(dubbo_health_core::wire::grpc_frame_header(2), [0, 0, 0, 0, 2]);
/// ```
#[must_use]
pub const fn grpc_frame_header(len: u32) -> [u8; 5] {
    let b = len.to_be_bytes();
    [0, b[0], b[1], b[2], b[3]]
}

// === handlers ===

/// Answers a `Check` from request bytes: decodes the request, reads the registry, and writes
/// the encoded `HealthCheckResponse` into `out` (2 bytes always suffice).
///
/// # Errors
///
/// [`RpcError::Decode`] for bad request bytes or a name over [`MAX_NAME`]
/// (`INVALID_ARGUMENT`), [`RpcError::NotFound`], [`RpcError::BufferTooSmall`].
///
/// ```
/// use dubbo_health_core::{wire, FixedRegistry};
///
/// let registry = FixedRegistry::<8>::new();
/// let mut out = [0u8; 2];
/// assert_eq!(wire::handle_check(&registry, b"", &mut out), Ok(2));
/// assert_eq!(out, *b"\x08\x01");
/// ```
pub fn handle_check<S: Storage>(
    registry: &Registry<S>,
    request: &[u8],
    out: &mut [u8],
) -> Result<usize, RpcError> {
    let name = decode_check_request(request)?;
    let status = registry.get(name).ok_or(RpcError::NotFound)?;
    Ok(encode_check_response(status, out)?)
}

/// Answers a `List` from request bytes: every registered name with its status, or
/// `RESOURCE_EXHAUSTED` above [`LIST_LIMIT`] names (as grpc-go does).
///
/// # Errors
///
/// [`RpcError::Decode`], [`RpcError::TooMany`], [`RpcError::BufferTooSmall`] (retry with
/// `needed`; names may change between calls).
///
/// ```
/// use dubbo_health_core::{wire, FixedRegistry};
///
/// let registry = FixedRegistry::<8>::new();
/// let mut out = [0u8; 16];
/// let n = wire::handle_list(&registry, b"", &mut out).unwrap();
/// assert_eq!(&out[..n], b"\x0a\x04\x12\x02\x08\x01"); // { "": SERVING }
/// ```
pub fn handle_list<S: Storage>(
    registry: &Registry<S>,
    request: &[u8],
    out: &mut [u8],
) -> Result<usize, RpcError> {
    decode_list_request(request)?;
    let mut list = ListEncoder::new(out);
    for entry in registry.iter() {
        if list.count() == LIST_LIMIT {
            return Err(RpcError::TooMany {
                count: LIST_LIMIT + 1,
            });
        }
        list.push(entry.name(), entry.status());
    }
    Ok(list.finish()?)
}
