//! The core's hand-written codec against prost, for arbitrary inputs: encodings must be
//! byte-identical, and request decoding must accept exactly what prost accepts, with the same
//! result (plus the core's one extra rule: names over `MAX_NAME` bytes are refused).

use std::collections::BTreeMap;

use dubbo_health_core::{wire, FixedRegistry, ServingStatus, MAX_NAME};
use dubbo_health_proto::pb::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use proptest::prelude::*;
use prost::Message;

fn status() -> impl Strategy<Value = ServingStatus> {
    prop::sample::select(ServingStatus::ALL.to_vec())
}

/// Well-formed requests with unknown fields of every wire type mixed in.
fn request_bytes() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        ".{0,60}".prop_map(|s| {
            let mut v = vec![0x0a];
            prost::encoding::encode_varint(s.len() as u64, &mut v);
            v.extend(s.as_bytes());
            v
        }),
        (2u32..1000, any::<u64>()).prop_map(|(f, x)| {
            let mut v = Vec::new();
            prost::encoding::encode_key(f, prost::encoding::WireType::Varint, &mut v);
            prost::encoding::encode_varint(x, &mut v);
            v
        }),
        (2u32..1000, any::<[u8; 8]>()).prop_map(|(f, x)| {
            let mut v = Vec::new();
            prost::encoding::encode_key(f, prost::encoding::WireType::SixtyFourBit, &mut v);
            v.extend(x);
            v
        }),
        (2u32..1000, prop::collection::vec(any::<u8>(), 0..20)).prop_map(|(f, x)| {
            let mut v = Vec::new();
            prost::encoding::encode_key(f, prost::encoding::WireType::LengthDelimited, &mut v);
            prost::encoding::encode_varint(x.len() as u64, &mut v);
            v.extend(x);
            v
        }),
        (2u32..1000, any::<[u8; 4]>()).prop_map(|(f, x)| {
            let mut v = Vec::new();
            prost::encoding::encode_key(f, prost::encoding::WireType::ThirtyTwoBit, &mut v);
            v.extend(x);
            v
        }),
        (2u32..1000, any::<u32>()).prop_map(|(f, x)| {
            let mut v = Vec::new();
            prost::encoding::encode_key(f, prost::encoding::WireType::StartGroup, &mut v);
            prost::encoding::encode_key(f + 1, prost::encoding::WireType::Varint, &mut v);
            prost::encoding::encode_varint(u64::from(x), &mut v);
            prost::encoding::encode_key(f, prost::encoding::WireType::EndGroup, &mut v);
            v
        }),
    ];
    prop::collection::vec(field, 0..6).prop_map(|fields| fields.concat())
}

fn same_as_prost_check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let ours = wire::decode_check_request(bytes);
    let theirs = HealthCheckRequest::decode(bytes);
    match (&ours, &theirs) {
        (Ok(name), Ok(req)) => prop_assert_eq!(*name, req.service.as_str()),
        (Err(wire::DecodeError::NameTooLong { len }), Ok(req)) => {
            prop_assert_eq!(*len, req.service.len());
            prop_assert!(req.service.len() > MAX_NAME);
        }
        (Err(_), Err(_)) => {}
        _ => prop_assert!(false, "core {ours:?} vs prost {theirs:?} for {bytes:02x?}"),
    }
    let ours = wire::decode_list_request(bytes);
    let theirs = HealthListRequest::decode(bytes);
    prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "list request {:02x?}", bytes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn check_request_decodes_like_prost(bytes in request_bytes()) {
        same_as_prost_check(&bytes)?;
    }

    #[test]
    fn arbitrary_bytes_decode_like_prost_and_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        same_as_prost_check(&bytes)?;
    }

    #[test]
    fn mutated_requests_decode_like_prost(bytes in request_bytes(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = bytes;
        if !bytes.is_empty() {
            for (i, b) in flips {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
        }
        same_as_prost_check(&bytes)?;
        let cut = bytes.len() / 2;
        same_as_prost_check(&bytes[..cut])?;
    }

    #[test]
    fn check_response_encodes_like_prost(s in status()) {
        let expected = HealthCheckResponse { status: s.as_i32() }.encode_to_vec();
        let mut out = [0u8; 2];
        let n = wire::encode_check_response(s, &mut out).unwrap();
        prop_assert_eq!(&out[..n], expected.as_slice());
        prop_assert_eq!(wire::check_response_bytes(s), expected.as_slice());
        let decoded = HealthCheckResponse::decode(&out[..n]).unwrap();
        prop_assert_eq!(decoded.status, s.as_i32());
    }

    #[test]
    fn list_response_encodes_like_prost(entries in prop::collection::btree_map(".{0,40}", status(), 0..20)) {
        let expected = HealthListResponse {
            statuses: entries
                .iter()
                .map(|(k, v)| (k.clone(), HealthCheckResponse { status: v.as_i32() }))
                .collect::<BTreeMap<_, _>>(),
        }
        .encode_to_vec();
        let mut out = vec![0u8; expected.len()];
        let mut list = wire::ListEncoder::new(&mut out);
        for (name, s) in &entries {
            list.push(name, *s);
        }
        let n = list.finish().unwrap();
        prop_assert_eq!(&out[..n], expected.as_slice());
        // One byte short: the exact size is reported.
        if !expected.is_empty() {
            let mut short = vec![0u8; expected.len() - 1];
            let mut list = wire::ListEncoder::new(&mut short);
            for (name, s) in &entries {
                list.push(name, *s);
            }
            prop_assert_eq!(list.finish(), Err(wire::EncodeError::BufferTooSmall { needed: expected.len() }));
        }
    }

    #[test]
    fn handle_list_decodes_with_prost(names in prop::collection::btree_set("[a-z./:]{1,30}", 0..50)) {
        let registry = Box::new(FixedRegistry::<128>::new());
        for (i, name) in names.iter().enumerate() {
            let s = if i % 2 == 0 { ServingStatus::Serving } else { ServingStatus::NotServing };
            registry.set(name, s).unwrap();
        }
        let mut out = vec![0u8; 8192];
        let n = wire::handle_list(&registry, b"", &mut out).unwrap();
        let decoded = HealthListResponse::decode(&out[..n]).unwrap();
        prop_assert_eq!(decoded.statuses.len(), registry.len());
        for entry in registry.iter() {
            prop_assert_eq!(decoded.statuses[entry.name()].status, entry.status().as_i32());
        }
    }
}
