use std::io::Write;

use dubbo_health_core::{HeapRegistry, LIST_LIMIT, MAX_NAME};

use super::*;

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(*k, HeaderValue::from_static(v));
    }
    map
}

fn grpc_headers(extra: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = headers(&[("content-type", "application/grpc")]);
    for (k, v) in extra {
        map.append(*k, HeaderValue::from_static(v));
    }
    map
}

const CHECK: &str = "/grpc.health.v1.Health/Check";

fn accept_post(path: &str, headers: &HeaderMap) -> Result<Call, Status> {
    accept(&http::Method::POST, path, headers)
}

fn frame(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Pushes `chunks` and finishes; the message or the first error.
fn gather(encoding: Encoding, limit: usize, chunks: &[&[u8]]) -> Result<Vec<u8>, Status> {
    let mut body = RequestBody::new(encoding, limit);
    for chunk in chunks {
        body.push(chunk)?;
    }
    body.finish().map(<[u8]>::to_vec)
}

// === headers ===

#[test]
fn a_plain_grpc_request_is_accepted_with_every_method() {
    for (path, method) in [
        (CHECK, Method::Check),
        ("/grpc.health.v1.Health/Watch", Method::Watch),
        ("/grpc.health.v1.Health/List", Method::List),
    ] {
        let call = accept_post(path, &grpc_headers(&[])).unwrap();
        assert_eq!(
            call,
            Call {
                method,
                encoding: Encoding::Identity,
                timeout: None
            }
        );
        assert_eq!(method.path(), path);
    }
}

#[test]
fn content_types_of_grpc_proto_are_accepted_and_others_are_415() {
    for ok in [
        "application/grpc",
        "application/grpc+proto",
        "application/grpc;charset=utf-8",
        "application/grpc+proto; foo=bar",
        "Application/GRPC",
    ] {
        let h = headers(&[("content-type", ok)]);
        assert!(accept_post(CHECK, &h).is_ok(), "{ok}");
    }
    for bad in [
        "application/json",
        "text/plain",
        "application/grpc+json",
        "application/grpc-web",
        "application/grpcx",
        "application/grp",
        "",
    ] {
        let err = accept_post(CHECK, &headers(&[("content-type", bad)])).unwrap_err();
        assert_eq!(
            err.http_status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{bad}"
        );
        assert_eq!(err.code(), GrpcCode::InvalidArgument, "{bad}");
        assert!(err.message().contains("content-type"), "{}", err.message());
    }
    let err = accept_post(CHECK, &HeaderMap::new()).unwrap_err();
    assert_eq!(err.http_status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(err.message().contains("none"), "{}", err.message());
}

#[test]
fn methods_other_than_post_are_405() {
    let err = accept(&http::Method::GET, CHECK, &grpc_headers(&[])).unwrap_err();
    assert_eq!(err.http_status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(err.code(), GrpcCode::InvalidArgument);
}

#[test]
fn unknown_paths_are_unimplemented() {
    for path in [
        "/grpc.health.v1.Health/Frobnicate",
        "/grpc.health.v2.Health/Check",
        "/grpc.health.v1.Health/check",
        "/",
    ] {
        let err = accept_post(path, &grpc_headers(&[])).unwrap_err();
        assert_eq!(err.code(), GrpcCode::Unimplemented, "{path}");
        assert_eq!(err.http_status(), StatusCode::OK);
        assert_eq!(Method::from_path(path), None);
    }
}

#[test]
fn identity_and_gzip_encodings_are_accepted_and_others_unimplemented() {
    for (value, want) in [
        ("identity", Encoding::Identity),
        ("gzip", Encoding::Gzip),
        ("GZIP", Encoding::Gzip),
        ("", Encoding::Identity),
    ] {
        let call = accept_post(CHECK, &grpc_headers(&[("grpc-encoding", value)])).unwrap();
        assert_eq!(call.encoding, want);
    }
    for bad in ["br", "deflate", "snappy", "zstd", "gzip,br"] {
        let err = accept_post(CHECK, &grpc_headers(&[("grpc-encoding", bad)])).unwrap_err();
        assert_eq!(err.code(), GrpcCode::Unimplemented, "{bad}");
        let response = err.trailers_only(());
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["grpc-accept-encoding"],
            "gzip,identity",
            "{bad}"
        );
        assert_eq!(response.headers()["grpc-status"], "12");
    }
}

#[test]
fn grpc_timeout_parses_every_unit() {
    let cases: [(&[u8], Duration); 8] = [
        (b"1H", Duration::from_secs(3600)),
        (b"2M", Duration::from_secs(120)),
        (b"3S", Duration::from_secs(3)),
        (b"250m", Duration::from_millis(250)),
        (b"7u", Duration::from_micros(7)),
        (b"9n", Duration::from_nanos(9)),
        (b"0S", Duration::ZERO),
        (b"99999999H", Duration::from_secs(99_999_999 * 3600)),
    ];
    for (value, want) in cases {
        assert_eq!(
            parse_timeout(value),
            Some(want),
            "{}",
            String::from_utf8_lossy(value)
        );
    }
    let call = accept_post(CHECK, &grpc_headers(&[("grpc-timeout", "1500m")])).unwrap();
    assert_eq!(call.timeout, Some(Duration::from_millis(1500)));
}

#[test]
fn malformed_grpc_timeouts_are_400_internal() {
    for bad in [
        "",
        "S",
        "10",
        "10s",
        "10x",
        "123456789S",
        "-1S",
        "+1S",
        " 1S",
        "1 S",
        "1.5S",
        "1SS",
    ] {
        assert_eq!(parse_timeout(bad.as_bytes()), None, "{bad:?}");
        let err = accept_post(CHECK, &grpc_headers(&[("grpc-timeout", bad)])).unwrap_err();
        assert_eq!(err.code(), GrpcCode::Internal, "{bad:?}");
        assert_eq!(err.http_status(), StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(err.message().contains("grpc-timeout"), "{}", err.message());
    }
}

#[test]
fn header_checks_run_in_grpc_go_order() {
    // A bad content type wins over a bad timeout, which wins over an unknown path, which
    // wins over a bad encoding.
    let h = headers(&[
        ("content-type", "text/plain"),
        ("grpc-timeout", "x"),
        ("grpc-encoding", "br"),
    ]);
    assert_eq!(
        accept_post("/nope", &h).unwrap_err().http_status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let h = grpc_headers(&[("grpc-timeout", "x"), ("grpc-encoding", "br")]);
    assert_eq!(
        accept_post("/nope", &h).unwrap_err().http_status(),
        StatusCode::BAD_REQUEST
    );
    let h = grpc_headers(&[("grpc-encoding", "br")]);
    let err = accept_post("/nope", &h).unwrap_err();
    assert!(
        err.message().contains("unknown method"),
        "{}",
        err.message()
    );
}

// === answers ===

#[test]
fn status_frames_are_the_wire_messages_with_their_prefix() {
    for status in ServingStatus::ALL {
        let message = wire::check_response_bytes(status);
        let mut want = wire::grpc_frame_header(message.len() as u32).to_vec();
        want.extend_from_slice(message);
        assert_eq!(status_frame(status), &want[..], "{status:?}");
        assert_eq!(status_bytes(status), want);
    }
}

#[test]
fn trailers_carry_the_code_and_a_percent_encoded_message() {
    let status = Status::new(GrpcCode::NotFound, "unknown service");
    let trailers = status.trailers();
    assert_eq!(trailers["grpc-status"], "5");
    assert_eq!(trailers["grpc-message"], "unknown service");
    assert!(trailers.get("grpc-accept-encoding").is_none());

    let status = Status::new(GrpcCode::InvalidArgument, "100% naïve\nname 健");
    assert_eq!(
        status.trailers()["grpc-message"],
        "100%25 na%C3%AFve%0Aname %E5%81%A5"
    );
    assert_eq!(status.message(), "100% naïve\nname 健");

    for code in 0..=16 {
        let code = GrpcCode::from_u32(code).unwrap();
        assert_eq!(
            Status::new(code, "x").trailers()["grpc-status"],
            code.as_u32().to_string().as_str()
        );
    }
    assert_eq!(ok_trailers()["grpc-status"], "0");
    assert_eq!(ok_trailers().len(), 1);
}

#[test]
fn trailers_only_answers_carry_status_and_content_type() {
    let response = Status::deadline_exceeded().trailers_only("body");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/grpc");
    assert_eq!(response.headers()["grpc-status"], "4");
    assert_eq!(response.headers()["grpc-message"], "deadline exceeded");
    assert_eq!(*response.body(), "body");

    let response = accept_post(CHECK, &headers(&[("content-type", "text/html")]))
        .unwrap_err()
        .trailers_only(());
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(response.headers()["grpc-status"], "3");
}

#[test]
fn response_headers_say_grpc_and_the_accepted_encodings() {
    let response = response(());
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/grpc");
    assert_eq!(response.headers()["grpc-accept-encoding"], "gzip,identity");
    assert!(response.headers().get("grpc-status").is_none());
}

#[test]
fn check_answers_from_the_registry() {
    let registry = HeapRegistry::new();
    registry.set("svc", ServingStatus::NotServing).unwrap();
    assert_eq!(
        check(&registry, b"\x0a\x03svc").unwrap(),
        &[0, 0, 0, 0, 2, 0x08, 0x02]
    );
    assert_eq!(
        check(&registry, b"").unwrap(),
        status_frame(ServingStatus::Serving)
    );
    let err = check(&registry, b"\x0a\x01x").unwrap_err();
    assert_eq!(err.code(), GrpcCode::NotFound);
    let err = check(&registry, b"\x0a\x05ab").unwrap_err();
    assert_eq!(err.code(), GrpcCode::InvalidArgument);
    let long = [&[0x0a, 0xc9, 0x01][..], &[b'x'; MAX_NAME + 1]].concat();
    let err = check(&registry, &long).unwrap_err();
    assert_eq!(err.code(), GrpcCode::InvalidArgument);
    assert!(err.message().contains("201"), "{}", err.message());
}

#[test]
fn malformed_messages_are_invalid_argument() {
    for bad in [
        &b"\x0a\x05ab"[..],
        b"\x0a\x02\xc3\x28",
        b"\x08\x01",
        b"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
        b"\x00\x01",
        b"\xff",
    ] {
        assert_eq!(
            decode_name(bad).unwrap_err().code(),
            GrpcCode::InvalidArgument,
            "{bad:?}"
        );
    }
    let registry = HeapRegistry::new();
    assert_eq!(
        list(&registry, b"\x0a\x05ab").unwrap_err().code(),
        GrpcCode::InvalidArgument
    );
    // Unknown fields are skipped.
    assert_eq!(decode_name(b"\x10\x07\x1a\x01z").unwrap(), "");
    assert!(list(&registry, b"\x10\x07").is_ok());
}

#[test]
fn list_frames_every_name_up_to_the_limit() {
    let registry = dubbo_health_core::FixedRegistry::<256>::new();
    assert_eq!(
        &list(&registry, b"").unwrap()[..],
        b"\x00\x00\x00\x00\x06\x0a\x04\x12\x02\x08\x01"
    );
    registry.clear("").unwrap();
    for i in 0..LIST_LIMIT {
        let name = format!("{i:03}{}", "é".repeat((MAX_NAME - 3) / 2));
        registry.set(&name, ServingStatus::Serving).unwrap();
    }
    let frame = list_frame(&registry).unwrap();
    let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
    assert_eq!(frame[0], 0);
    assert_eq!(frame.len(), 5 + len);
    assert!(len <= wire::MAX_LIST_RESPONSE);
    registry
        .set("one-too-many", ServingStatus::Serving)
        .unwrap();
    assert_eq!(
        list_frame(&registry).unwrap_err().code(),
        GrpcCode::ResourceExhausted
    );
}

// === request body ===

#[test]
fn one_message_in_any_chunking_is_gathered() {
    let message = b"\x0a\x03svc";
    let framed = frame(0, message);
    // Whole, byte by byte, and split at every point.
    assert_eq!(gather(Encoding::Identity, 64, &[&framed]).unwrap(), message);
    let bytes: Vec<&[u8]> = framed.chunks(1).collect();
    assert_eq!(gather(Encoding::Identity, 64, &bytes).unwrap(), message);
    for split in 0..=framed.len() {
        let (a, b) = framed.split_at(split);
        assert_eq!(
            gather(Encoding::Identity, 64, &[a, &[], b, &[]]).unwrap(),
            message,
            "split at {split}"
        );
    }
}

#[test]
fn a_frame_of_length_zero_is_one_empty_message() {
    assert_eq!(
        gather(Encoding::Identity, 64, &[&[0, 0, 0, 0, 0]]).unwrap(),
        b""
    );
}

#[test]
fn no_message_at_all_is_unimplemented() {
    for chunks in [&[][..], &[&b""[..]][..], &[&b""[..], &b""[..]][..]] {
        let err = gather(Encoding::Identity, 64, chunks).unwrap_err();
        assert_eq!(err.code(), GrpcCode::Unimplemented);
        assert!(
            err.message().contains("no request message"),
            "{}",
            err.message()
        );
    }
}

#[test]
fn a_second_message_is_unimplemented_as_soon_as_it_starts() {
    let one = frame(0, b"\x0a\x01a");
    let mut body = RequestBody::new(Encoding::Identity, 64);
    body.push(&one).unwrap();
    let err = body.push(&[0]).unwrap_err();
    assert_eq!(err.code(), GrpcCode::Unimplemented);
    assert!(err.message().contains("more than one"), "{}", err.message());
    // Two in one chunk, and a second empty message.
    let two = [one.clone(), one.clone()].concat();
    assert_eq!(
        gather(Encoding::Identity, 64, &[&two]).unwrap_err().code(),
        GrpcCode::Unimplemented
    );
    let two = [frame(0, b""), frame(0, b"")].concat();
    assert_eq!(
        gather(Encoding::Identity, 64, &[&two]).unwrap_err().code(),
        GrpcCode::Unimplemented
    );
}

#[test]
fn a_stream_ending_inside_a_frame_is_internal() {
    let framed = frame(0, b"\x0a\x03svc");
    for cut in 1..framed.len() {
        let err = gather(Encoding::Identity, 64, &[&framed[..cut]]).unwrap_err();
        assert_eq!(err.code(), GrpcCode::Internal, "cut at {cut}");
        assert!(err.message().contains("ended inside"), "{}", err.message());
    }
}

#[test]
fn a_message_over_the_limit_is_resource_exhausted_from_its_prefix() {
    let mut body = RequestBody::new(Encoding::Identity, 16);
    // Only the prefix has arrived: it is refused before any of the 17 bytes.
    let err = body.push(&[0, 0, 0, 0, 17]).unwrap_err();
    assert_eq!(err.code(), GrpcCode::ResourceExhausted);
    assert!(err.message().contains("17"), "{}", err.message());
    // Exactly the limit is fine.
    let message = [0x10u8; 16];
    assert_eq!(
        gather(Encoding::Identity, 16, &[&frame(0, &message)]).unwrap(),
        message
    );
    // The default: 4 MiB + 1.
    let mut body = RequestBody::new(Encoding::Identity, DEFAULT_MAX_MESSAGE);
    let err = body
        .push(&wire::grpc_frame_header(DEFAULT_MAX_MESSAGE as u32 + 1))
        .unwrap_err();
    assert_eq!(err.code(), GrpcCode::ResourceExhausted);
    // A length the platform cannot hold either.
    let mut body = RequestBody::new(Encoding::Identity, DEFAULT_MAX_MESSAGE);
    assert_eq!(
        body.push(&[0, 0xff, 0xff, 0xff, 0xff]).unwrap_err().code(),
        GrpcCode::ResourceExhausted
    );
}

#[test]
fn messages_longer_than_the_inline_buffer_are_gathered_too() {
    // A valid request with an unknown field that makes it 1,000 bytes.
    let mut message = vec![0x12, 0xe5, 0x07];
    message.resize(3 + 997, b'p');
    message.extend_from_slice(b"\x0a\x01a");
    let framed = frame(0, &message);
    let chunks: Vec<&[u8]> = framed.chunks(7).collect();
    let got = gather(Encoding::Identity, 4096, &chunks).unwrap();
    assert_eq!(got, message);
    assert_eq!(decode_name(&got).unwrap(), "a");
}

#[test]
fn flag_bytes_other_than_0_and_1_are_internal() {
    for flag in [2u8, 0x80, 0xff] {
        let err = gather(Encoding::Gzip, 64, &[&frame(flag, b"")]).unwrap_err();
        assert_eq!(err.code(), GrpcCode::Internal, "{flag}");
    }
}

#[test]
fn the_compressed_flag_without_gzip_is_internal() {
    let err = gather(Encoding::Identity, 64, &[&frame(1, &gzip(b"\x0a\x01a"))]).unwrap_err();
    assert_eq!(err.code(), GrpcCode::Internal);
    assert!(err.message().contains("grpc-encoding"), "{}", err.message());
}

#[test]
fn gzip_messages_are_decompressed_and_plain_ones_pass_with_gzip_encoding() {
    let message = b"\x0a\x26org.apache.dubbogo.samples.api.Greeter";
    let got = gather(Encoding::Gzip, 64, &[&frame(1, &gzip(message))]).unwrap();
    assert_eq!(got, message);
    // finish() may be asked twice.
    let mut body = RequestBody::new(Encoding::Gzip, 64);
    body.push(&frame(1, &gzip(message))).unwrap();
    assert_eq!(body.finish().unwrap(), message);
    assert_eq!(body.finish().unwrap(), message);
    // An uncompressed message on a gzip call is fine.
    assert_eq!(
        gather(Encoding::Gzip, 64, &[&frame(0, message)]).unwrap(),
        message
    );
    // Two gzip members are one message, as Go's gzip reader reads them.
    let two = [gzip(b"\x0a\x01"), gzip(b"a")].concat();
    assert_eq!(
        gather(Encoding::Gzip, 64, &[&frame(1, &two)]).unwrap(),
        b"\x0a\x01a"
    );
}

#[test]
fn gzip_that_does_not_decompress_is_internal() {
    let good = gzip(b"\x0a\x01a");
    let mut corrupt = good.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    let bad: [&[u8]; 5] = [
        b"",
        b"not gzip at all",
        &good[..good.len() - 3],
        &corrupt,
        &[good.as_slice(), b"trailing"].concat(),
    ];
    for (i, bytes) in bad.iter().enumerate() {
        let err = gather(Encoding::Gzip, 64, &[&frame(1, bytes)]).unwrap_err();
        assert_eq!(
            err.code(),
            GrpcCode::Internal,
            "case {i}: {}",
            err.message()
        );
        assert!(err.message().contains("decompress"), "{}", err.message());
    }
}

#[test]
fn a_gzip_bomb_stops_at_the_limit() {
    // 64 MiB of zeros compress to about 64 KiB: within the framed limit, far over it
    // decompressed.
    let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
    assert!(bomb.len() < 128 * 1024);
    let err = gather(Encoding::Gzip, DEFAULT_MAX_MESSAGE, &[&frame(1, &bomb)]).unwrap_err();
    assert_eq!(err.code(), GrpcCode::ResourceExhausted);
    // Exactly the limit decompressed is fine.
    let exact = gzip(&vec![0u8; 1024]);
    assert_eq!(
        gather(Encoding::Gzip, 1024, &[&frame(1, &exact)])
            .unwrap()
            .len(),
        1024
    );
    let over = gzip(&vec![0u8; 1025]);
    assert_eq!(
        gather(Encoding::Gzip, 1024, &[&frame(1, &over)])
            .unwrap_err()
            .code(),
        GrpcCode::ResourceExhausted
    );
}

#[test]
fn a_normal_request_stays_inline() {
    let mut body = RequestBody::new(Encoding::Identity, DEFAULT_MAX_MESSAGE);
    let message = [&[0x0a, 0xc8, 0x01][..], &[b'n'; MAX_NAME]].concat();
    body.push(&frame(0, &message)).unwrap();
    assert_eq!(
        body.heap.capacity(),
        0,
        "no allocation for a {}-byte request",
        message.len()
    );
    assert_eq!(decode_name(body.finish().unwrap()).unwrap().len(), MAX_NAME);
}

#[test]
fn grpc_requests_are_told_from_plain_http_by_content_type() {
    let with = |ct: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        headers
    };
    assert!(is_grpc_request(&with("application/grpc")));
    assert!(is_grpc_request(&with("application/grpc+proto; charset=x")));
    assert!(!is_grpc_request(&with("application/json")));
    assert!(!is_grpc_request(&with("application/grpc-web")));
    assert!(!is_grpc_request(&HeaderMap::new()));
}
