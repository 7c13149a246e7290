//! A `tonic` codec that decodes requests with the core's allocation-free `wire` codec and sends
//! responses that are already encoded.

use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes};
use dubbo_health_core::{wire, MAX_NAME};
use tonic::{
    codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    Status,
};

/// Decode buffer per request: a health request is at most a few hundred bytes.
const DECODE_BUFFER: usize = 256;
/// Encode buffer per response stream: a `HealthCheckResponse` frame is 7 bytes. Larger
/// messages (`List`) grow it on demand.
const ENCODE_BUFFER: usize = 64;
/// How many encoded bytes a stream may gather before they are handed to HTTP/2.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// A request message the health service accepts, decoded from its protobuf bytes.
pub(crate) trait HealthRequest: Sized + Send + 'static {
    fn decode(bytes: &[u8]) -> Result<Self, Status>;
}

/// The `service` of a `HealthCheckRequest`, held inline (no allocation): at most
/// [`MAX_NAME`] bytes of UTF-8, checked by the core decoder.
pub(crate) struct Name {
    len: u8,
    buf: [u8; MAX_NAME],
}

impl Name {
    pub(crate) fn as_str(&self) -> &str {
        // The bytes were checked to be UTF-8 by `wire::decode_check_request`, so this never
        // takes the fallback; it keeps the code free of `unsafe`.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl HealthRequest for Name {
    fn decode(bytes: &[u8]) -> Result<Self, Status> {
        let name = wire::decode_check_request(bytes)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let mut buf = [0u8; MAX_NAME];
        buf[..name.len()].copy_from_slice(name.as_bytes());
        let len = u8::try_from(name.len())
            .map_err(|_| Status::invalid_argument("service name too long"))?;
        Ok(Self { len, buf })
    }
}

/// A `HealthListRequest` (no fields).
pub(crate) struct ListRequest;

impl HealthRequest for ListRequest {
    fn decode(bytes: &[u8]) -> Result<Self, Status> {
        wire::decode_list_request(bytes).map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Self)
    }
}

/// Decodes `Req` with the core codec (malformed bytes → `INVALID_ARGUMENT`) and encodes
/// responses given as encoded protobuf bytes.
pub(crate) struct RawCodec<Req>(PhantomData<fn() -> Req>);

impl<Req> RawCodec<Req> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<Req: HealthRequest> Codec for RawCodec<Req> {
    type Encode = Bytes;
    type Decode = Req;
    type Encoder = BytesEncoder;
    type Decoder = RequestDecoder<Req>;

    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> RequestDecoder<Req> {
        RequestDecoder(PhantomData)
    }
}

/// Writes already-encoded response bytes.
pub(crate) struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(ENCODE_BUFFER, YIELD_THRESHOLD)
    }
}

/// Decodes one request message with the core codec.
pub(crate) struct RequestDecoder<Req>(PhantomData<fn() -> Req>);

impl<Req: HealthRequest> Decoder for RequestDecoder<Req> {
    type Item = Req;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Req>, Status> {
        let len = src.remaining();
        // tonic hands over one contiguous buffer for an uncompressed message; copy only when
        // it did not (a decompressed message split over chunks).
        let req = if src.chunk().len() == len {
            let req = Req::decode(src.chunk());
            src.advance(len);
            req
        } else {
            Req::decode(&src.copy_to_bytes(len))
        };
        req.map(Some)
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(DECODE_BUFFER, YIELD_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_keeps_the_decoded_service() {
        let name = Name::decode(b"\x0a\x03svc").unwrap();
        assert_eq!(name.as_str(), "svc");
        let long = [&[0x0a, 0xc9, 0x01][..], &[b'x'; 201]].concat();
        let err = Name::decode(&long).err().unwrap();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        let full = [&[0x0a, 0xc8, 0x01][..], &[b'y'; 200]].concat();
        assert_eq!(Name::decode(&full).unwrap().as_str(), "y".repeat(200));
    }

    #[test]
    fn malformed_requests_are_invalid_argument() {
        for bad in [&b"\x0a\x05ab"[..], b"\x0a\x01\xff", b"\x08\x01", b"\xff"] {
            let err = Name::decode(bad).err().unwrap();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad:?}");
        }
        assert!(ListRequest::decode(b"").is_ok());
        assert!(ListRequest::decode(b"\x0a\x05ab").is_err());
    }
}
