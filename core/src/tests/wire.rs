//! The codec and the bytes-level handlers.

use super::Reg;
use crate::{wire, FixedRegistry, ServingStatus::*, LIST_LIMIT};

#[test]
fn decode_requests() {
    assert_eq!(wire::decode_check_request(b""), Ok(""));
    assert_eq!(wire::decode_check_request(b"\x0a\x03abc"), Ok("abc"));
    // last value wins
    assert_eq!(wire::decode_check_request(b"\x0a\x01a\x0a\x01b"), Ok("b"));
    // unknown fields of every wire type are skipped
    let skip = b"\x10\x96\x01\x19\x01\x02\x03\x04\x05\x06\x07\x08\x22\x02hi\x2d\x01\x02\x03\x04\x33\x08\x01\x34\x0a\x01z";
    assert_eq!(wire::decode_check_request(skip), Ok("z"));
    use wire::DecodeError::*;
    assert_eq!(wire::decode_check_request(b"\x0a"), Err(Truncated));
    assert_eq!(wire::decode_check_request(b"\x0a\x80"), Err(Truncated));
    assert_eq!(wire::decode_check_request(b"\x00"), Err(BadKey));
    assert_eq!(wire::decode_check_request(b"\x0e"), Err(BadKey));
    assert_eq!(wire::decode_check_request(b"\x14"), Err(BadGroup));
    assert_eq!(
        wire::decode_check_request(b"\x0c"),
        Err(WrongWireType {
            field: 1,
            wire_type: 4
        })
    );
    assert_eq!(wire::decode_check_request(b"\x13\x1c"), Err(BadGroup));
    assert_eq!(wire::decode_check_request(b"\x13"), Err(Truncated));
    assert_eq!(
        wire::decode_check_request(b"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
        Ok("")
    );
    assert_eq!(
        wire::decode_check_request(b"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"),
        Err(BadVarint)
    );
    assert_eq!(
        wire::decode_check_request(b"\x0d\x00\x00\x00\x00"),
        Err(WrongWireType {
            field: 1,
            wire_type: 5
        })
    );
    let mut long = vec![0x0a, 201, 1];
    long.extend(std::iter::repeat_n(b'a', 201));
    assert_eq!(
        wire::decode_check_request(&long),
        Err(NameTooLong { len: 201 })
    );
    assert_eq!(wire::decode_list_request(b"\x08\x01"), Ok(()));
    assert_eq!(wire::decode_list_request(b"\x08"), Err(Truncated));
}

#[test]
fn handlers_answer_like_grpc() {
    let r = Reg::new();
    let mut out = [0u8; 256];
    assert_eq!(wire::handle_check(&r, b"", &mut out), Ok(2));
    assert_eq!(&out[..2], b"\x08\x01");
    let err = wire::handle_check(&r, b"\x0a\x01x", &mut out).unwrap_err();
    assert_eq!(err.code(), crate::GrpcCode::NotFound);
    let err = wire::handle_check(&r, b"\xff", &mut out).unwrap_err();
    assert_eq!(err.code(), crate::GrpcCode::InvalidArgument);
    r.set("a", Unknown).unwrap();
    assert_eq!(wire::handle_check(&r, b"\x0a\x01a", &mut out), Ok(0));
    let n = wire::handle_list(&r, b"", &mut out).unwrap();
    assert!(n > 0);
    let mut small = [0u8; 3];
    assert!(matches!(
        wire::handle_list(&r, b"", &mut small),
        Err(wire::RpcError::BufferTooSmall { needed }) if needed == n
    ));
}

#[test]
fn list_over_limit_is_resource_exhausted() {
    let r = FixedRegistry::<256>::new();
    for i in 0..LIST_LIMIT - 1 {
        r.set(&format!("s{i}"), Serving).unwrap();
    }
    let mut out = vec![0u8; 8192];
    assert!(wire::handle_list(&r, b"", &mut out).is_ok());
    r.set("one-too-many", Serving).unwrap();
    let err = wire::handle_list(&r, b"", &mut out).unwrap_err();
    assert_eq!(err.code(), crate::GrpcCode::ResourceExhausted);
}

#[test]
#[cfg(feature = "std")]
fn handlers_serve_a_heap_registry() {
    let r = crate::HeapRegistry::with_capacity(4).unwrap();
    r.set("svc", NotServing).unwrap();
    let mut out = [0u8; 64];
    assert_eq!(wire::handle_check(&r, b"\x0a\x03svc", &mut out), Ok(2));
    assert_eq!(&out[..2], b"\x08\x02");
    let n = wire::handle_list(&r, b"", &mut out).unwrap();
    assert!(n > 0);
}
