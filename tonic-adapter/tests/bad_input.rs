//! Bad requests get the gRPC status the spec names, and the server keeps answering.

mod common;

use bytes::{Buf, BufMut};
use common::{request, Server, TIMEOUT};
use dubbo_health_core::ServingStatus;
use tonic::{
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
    Code, Status,
};

/// Sends request bytes as they are and returns response bytes as they are.
#[derive(Clone, Copy, Default)]
struct RawBytes;

impl Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;
    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }
    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

impl Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

async fn call(channel: &Channel, path: &'static str, body: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    tokio::time::timeout(TIMEOUT, async {
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        grpc.unary(
            tonic::Request::new(body),
            http::uri::PathAndQuery::from_static(path),
            RawBytes,
        )
        .await
        .map(tonic::Response::into_inner)
    })
    .await
    .expect("call timed out")
}

async fn still_serving(server: &Server) {
    let mut client = server.client().await;
    let response = client
        .check(request(""))
        .await
        .expect("server still answers");
    assert_eq!(
        response.into_inner().status,
        ServingStatus::Serving.as_i32()
    );
}

const CHECK: &str = "/grpc.health.v1.Health/Check";

#[tokio::test]
async fn well_formed_raw_bytes_get_the_pre_encoded_answer() {
    let server = Server::start();
    let channel = server.channel().await;
    assert_eq!(
        call(&channel, CHECK, b"".to_vec()).await.unwrap(),
        b"\x08\x01"
    );
    // Unknown fields are skipped.
    assert_eq!(
        call(&channel, CHECK, b"\x10\x07\x1a\x01z".to_vec())
            .await
            .unwrap(),
        b"\x08\x01"
    );
    assert_eq!(
        call(&channel, "/grpc.health.v1.Health/List", b"".to_vec())
            .await
            .unwrap(),
        b"\x0a\x04\x12\x02\x08\x01"
    );
}

#[tokio::test]
async fn malformed_requests_are_invalid_argument() {
    let server = Server::start();
    let channel = server.channel().await;
    let cases: &[(&str, &[u8])] = &[
        ("truncated string", b"\x0a\x05ab"),
        ("bad UTF-8", b"\x0a\x02\xc3\x28"),
        ("wrong wire type for service", b"\x08\x01"),
        (
            "overlong varint",
            b"\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
        ),
        ("field number zero", b"\x00\x01"),
        ("bare key byte", b"\xff"),
    ];
    for (what, body) in cases {
        for path in [CHECK, "/grpc.health.v1.Health/Watch"] {
            let err = match call(&channel, path, body.to_vec()).await {
                Err(e) => e,
                Ok(bytes) => panic!("{what} on {path}: answered {bytes:?}"),
            };
            assert_eq!(
                err.code(),
                Code::InvalidArgument,
                "{what} on {path}: {err:?}"
            );
        }
    }
    let err = call(
        &channel,
        "/grpc.health.v1.Health/List",
        b"\x0a\x05ab".to_vec(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    still_serving(&server).await;
}

#[tokio::test]
async fn a_request_over_4_mib_is_resource_exhausted() {
    let server = Server::start();
    let channel = server.channel().await;
    // A valid HealthCheckRequest whose unknown field makes it 4 MiB + a few bytes.
    let pad = 4 * 1024 * 1024;
    let mut body = vec![0x12]; // field 2, length-delimited
    let mut len = pad;
    while len >= 0x80 {
        body.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    body.push(len as u8);
    body.resize(body.len() + pad, b'p');
    let err = call(&channel, CHECK, body).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    still_serving(&server).await;
}

#[tokio::test]
async fn unknown_methods_and_services_are_unimplemented() {
    let server = Server::start();
    let channel = server.channel().await;
    for path in [
        "/grpc.health.v1.Health/Frobnicate",
        "/grpc.health.v2.Health/Check",
        "/org.apache.dubbogo.samples.api.Greeter/SayHello",
    ] {
        let err = call(&channel, path, b"".to_vec()).await.unwrap_err();
        assert_eq!(err.code(), Code::Unimplemented, "{path}");
    }
    still_serving(&server).await;
}

#[tokio::test]
async fn gzip_compressed_requests_are_accepted() {
    use tonic::codec::CompressionEncoding;
    let server = Server::start();
    server.set("svc", ServingStatus::NotServing);
    let mut client =
        dubbo_health_proto::pb::health_client::HealthClient::new(server.channel().await)
            .send_compressed(CompressionEncoding::Gzip);
    let response = client.check(request("svc")).await.unwrap().into_inner();
    assert_eq!(response.status, ServingStatus::NotServing.as_i32());
    let (_stream, first) = common::watch(&mut client, "svc").await;
    assert_eq!(first, ServingStatus::NotServing);
    assert_eq!(
        client.check(request("nope")).await.unwrap_err().code(),
        Code::NotFound
    );
}

// === the bad-input table (docs/bad-input.md), row by row, on the tonic mount ===
//
// Each request is sent as raw HTTP/2 (the `h2` client), so the bytes are exactly what the
// row names, and each answer is read as a gRPC client would: the HTTP status, then
// `grpc-status` / `grpc-message` from the trailers (or the headers of a trailers-only
// answer).

mod wire {
    use std::{net::SocketAddr, sync::Arc, time::Duration};

    use bytes::Bytes;
    use dubbo_health_tonic::HealthService;
    use tokio::net::{TcpListener, TcpStream};

    use super::common::{TestRegistry, TIMEOUT};

    pub(super) const WATCH: &str = "/grpc.health.v1.Health/Watch";
    pub(super) const LIST: &str = "/grpc.health.v1.Health/List";

    /// A tonic host with the health service mounted as the README shows.
    pub(super) struct Mount {
        pub(super) addr: SocketAddr,
        pub(super) registry: Arc<TestRegistry>,
        _serving: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    }

    impl Mount {
        pub(super) async fn start() -> Self {
            let registry = Arc::new(TestRegistry::new());
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let health = HealthService::new(Arc::clone(&registry));
            let serving = tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(health.server())
                    .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
            );
            Self {
                addr,
                registry,
                _serving: serving,
            }
        }
    }

    /// One request, byte for byte.
    pub(super) struct Raw {
        pub(super) method: &'static str,
        pub(super) path: &'static str,
        pub(super) headers: Vec<(&'static str, String)>,
        pub(super) chunks: Vec<Vec<u8>>,
        /// Whether the request stream is ended (END_STREAM) after the chunks.
        pub(super) end: bool,
    }

    impl Raw {
        /// A well-formed gRPC request to `path` carrying `chunks` as DATA frames.
        pub(super) fn grpc(path: &'static str, chunks: Vec<Vec<u8>>) -> Self {
            Self {
                method: "POST",
                path,
                headers: vec![
                    ("content-type", "application/grpc".into()),
                    ("te", "trailers".into()),
                ],
                chunks,
                end: true,
            }
        }

        pub(super) fn header(mut self, name: &'static str, value: &str) -> Self {
            self.headers.retain(|(n, _)| *n != name);
            self.headers.push((name, value.into()));
            self
        }
    }

    /// What came back.
    #[derive(Debug)]
    pub(super) struct Answer {
        pub(super) http: u16,
        pub(super) grpc_status: Option<String>,
        pub(super) grpc_message: Option<String>,
        pub(super) accept_encoding: Option<String>,
        pub(super) data: Vec<u8>,
    }

    impl Answer {
        /// Asserts the HTTP status and `grpc-status`, and that `grpc-message` contains `msg`.
        pub(super) fn assert(&self, http: u16, grpc: u32, msg: &str) {
            assert_eq!(self.http, http, "{self:?}");
            assert_eq!(
                self.grpc_status.as_deref(),
                Some(grpc.to_string().as_str()),
                "{self:?}"
            );
            let message = self.grpc_message.as_deref().unwrap_or_default();
            assert!(
                message.contains(msg),
                "grpc-message {message:?} lacks {msg:?}"
            );
        }
    }

    /// Sends `raw` on a fresh connection and reads the whole answer.
    pub(super) async fn send(addr: SocketAddr, raw: Raw) -> Answer {
        tokio::time::timeout(TIMEOUT, async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let (client, connection) = h2::client::handshake(tcp).await.unwrap();
            tokio::spawn(connection);
            let mut client = client.ready().await.unwrap();
            let mut request = http::Request::builder()
                .method(raw.method)
                .uri(format!("http://{addr}{}", raw.path));
            for (name, value) in &raw.headers {
                request = request.header(*name, value);
            }
            let headers_end = raw.end && raw.chunks.is_empty();
            let (response, mut send) = client
                .send_request(request.body(()).unwrap(), headers_end)
                .unwrap();
            let count = raw.chunks.len();
            for (i, chunk) in raw.chunks.into_iter().enumerate() {
                // The server may answer (and reset the stream) before it has read it all.
                if send
                    .send_data(Bytes::from(chunk), raw.end && i + 1 == count)
                    .is_err()
                {
                    break;
                }
            }
            let response = response.await.unwrap();
            let (parts, mut body) = response.into_parts();
            let header = |name: &str, map: &http::HeaderMap| {
                map.get(name).map(|v| v.to_str().unwrap().to_owned())
            };
            let mut answer = Answer {
                http: parts.status.as_u16(),
                grpc_status: header("grpc-status", &parts.headers),
                grpc_message: header("grpc-message", &parts.headers),
                accept_encoding: header("grpc-accept-encoding", &parts.headers),
                data: Vec::new(),
            };
            if answer.grpc_status.is_none() {
                while let Some(chunk) = body.data().await {
                    let chunk = chunk.unwrap();
                    let _ = body.flow_control().release_capacity(chunk.len());
                    answer.data.extend_from_slice(&chunk);
                }
                let trailers = body.trailers().await.unwrap().unwrap_or_default();
                answer.grpc_status = header("grpc-status", &trailers);
                answer.grpc_message = header("grpc-message", &trailers);
            }
            // Keep the request stream open until the answer is in (`end: false` rows).
            drop(send);
            answer
        })
        .await
        .expect("no answer in time")
    }

    /// `message` as one gRPC frame with flag byte `flag`.
    pub(super) fn frame(flag: u8, message: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&(message.len() as u32).to_be_bytes());
        out.extend_from_slice(message);
        out
    }

    /// A `HealthCheckRequest` for `name`, framed.
    pub(super) fn check_request(name: &str) -> Vec<u8> {
        use prost::Message;
        let message = dubbo_health_proto::pb::HealthCheckRequest {
            service: name.into(),
        }
        .encode_to_vec();
        frame(0, &message)
    }

    pub(super) fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    pub(super) const SHORT: Duration = Duration::from_millis(200);
}

use wire::{check_request, frame, gzip, send, Mount, Raw, LIST, WATCH};

#[tokio::test]
async fn row_content_type_not_grpc() {
    let mount = Mount::start().await;
    for ct in ["application/json", "text/plain", "application/grpc+json"] {
        let raw = Raw::grpc(CHECK, vec![check_request("")]).header("content-type", ct);
        send(mount.addr, raw).await.assert(415, 3, "content-type");
    }
    // Without any content-type at all.
    let mut raw = Raw::grpc(CHECK, vec![check_request("")]);
    raw.headers.retain(|(n, _)| *n != "content-type");
    send(mount.addr, raw).await.assert(415, 3, "content-type");
    // application/grpc+proto is gRPC.
    let raw =
        Raw::grpc(CHECK, vec![check_request("")]).header("content-type", "application/grpc+proto");
    send(mount.addr, raw).await.assert(200, 0, "");
}

#[tokio::test]
async fn row_method_not_post() {
    let mount = Mount::start().await;
    let mut raw = Raw::grpc(CHECK, vec![]);
    raw.method = "GET";
    send(mount.addr, raw).await.assert(405, 3, "POST");
}

#[tokio::test]
async fn row_malformed_grpc_timeout() {
    let mount = Mount::start().await;
    for bad in ["soon", "10", "123456789S", "1.5S", "10x"] {
        let raw = Raw::grpc(CHECK, vec![check_request("")]).header("grpc-timeout", bad);
        send(mount.addr, raw).await.assert(400, 13, "grpc-timeout");
    }
}

#[tokio::test]
async fn row_unknown_method() {
    let mount = Mount::start().await;
    for path in [
        "/grpc.health.v1.Health/Frobnicate",
        "/grpc.health.v1.Health/check",
    ] {
        send(mount.addr, Raw::grpc(path, vec![check_request("")]))
            .await
            .assert(200, 12, "unknown method");
    }
}

#[tokio::test]
async fn row_unsupported_grpc_encoding() {
    let mount = Mount::start().await;
    for encoding in ["br", "deflate", "snappy"] {
        let raw = Raw::grpc(CHECK, vec![frame(1, b"")]).header("grpc-encoding", encoding);
        let answer = send(mount.addr, raw).await;
        answer.assert(200, 12, "grpc-encoding");
        assert_eq!(answer.accept_encoding.as_deref(), Some("gzip,identity"));
    }
}

#[tokio::test]
async fn row_no_request_message() {
    let mount = Mount::start().await;
    for path in [CHECK, WATCH, LIST] {
        // END_STREAM on the HEADERS frame, and an empty DATA frame with END_STREAM.
        send(mount.addr, Raw::grpc(path, vec![]))
            .await
            .assert(200, 12, "no request message");
        send(mount.addr, Raw::grpc(path, vec![vec![]]))
            .await
            .assert(200, 12, "no request message");
    }
}

#[tokio::test]
async fn row_two_request_messages() {
    let mount = Mount::start().await;
    for path in [CHECK, WATCH, LIST] {
        let one = if path == LIST {
            frame(0, b"")
        } else {
            check_request("")
        };
        send(mount.addr, Raw::grpc(path, vec![one.clone(), one.clone()]))
            .await
            .assert(200, 12, "more than one");
        // In one DATA frame, and a second message that is only a prefix.
        send(
            mount.addr,
            Raw::grpc(path, vec![[one.clone(), one.clone()].concat()]),
        )
        .await
        .assert(200, 12, "more than one");
        send(mount.addr, Raw::grpc(path, vec![one, vec![0, 0]]))
            .await
            .assert(200, 12, "more than one");
    }
}

#[tokio::test]
async fn row_empty_frame_is_the_empty_name() {
    let mount = Mount::start().await;
    let answer = send(mount.addr, Raw::grpc(CHECK, vec![frame(0, b"")])).await;
    answer.assert(200, 0, "");
    assert_eq!(answer.data, b"\0\0\0\0\x02\x08\x01", "\"\" is SERVING");
}

#[tokio::test]
async fn row_stream_ends_inside_a_frame() {
    let mount = Mount::start().await;
    let whole = check_request("svc");
    for cut in [1, 4, 5, whole.len() - 1] {
        send(mount.addr, Raw::grpc(CHECK, vec![whole[..cut].to_vec()]))
            .await
            .assert(200, 13, "ended inside");
    }
}

#[tokio::test]
async fn row_compressed_flag_without_grpc_encoding() {
    let mount = Mount::start().await;
    let body = frame(1, &gzip(&check_request("")[5..]));
    send(mount.addr, Raw::grpc(CHECK, vec![body.clone()]))
        .await
        .assert(200, 13, "compressed flag");
    let raw = Raw::grpc(CHECK, vec![body]).header("grpc-encoding", "identity");
    send(mount.addr, raw)
        .await
        .assert(200, 13, "compressed flag");
}

#[tokio::test]
async fn row_gzip_that_does_not_decompress() {
    let mount = Mount::start().await;
    let mut corrupt = gzip(b"\x0a\x03svc");
    let n = corrupt.len();
    corrupt[n - 6] ^= 0xff; // the CRC
    for payload in [b"not gzip".to_vec(), corrupt, Vec::new()] {
        let raw = Raw::grpc(CHECK, vec![frame(1, &payload)]).header("grpc-encoding", "gzip");
        send(mount.addr, raw).await.assert(200, 13, "decompress");
    }
    // Well-formed gzip is fine (grpc-health-probe -gzip).
    mount
        .registry
        .set("svc", ServingStatus::NotServing)
        .unwrap();
    let raw =
        Raw::grpc(CHECK, vec![frame(1, &gzip(b"\x0a\x03svc"))]).header("grpc-encoding", "gzip");
    let answer = send(mount.addr, raw).await;
    answer.assert(200, 0, "");
    assert_eq!(answer.data, b"\0\0\0\0\x02\x08\x02");
}

#[tokio::test]
async fn row_gzip_bomb() {
    let mount = Mount::start().await;
    let bomb = gzip(&vec![0u8; 16 * 1024 * 1024]);
    let raw = Raw::grpc(CHECK, vec![frame(1, &bomb)]).header("grpc-encoding", "gzip");
    send(mount.addr, raw)
        .await
        .assert(200, 8, "decompresses to more");
}

#[tokio::test]
async fn row_message_over_4_mib() {
    let mount = Mount::start().await;
    // Only the prefix is sent and the stream left open: the answer comes from the prefix.
    let mut raw = Raw::grpc(CHECK, vec![vec![0, 0, 0x40, 0, 1]]);
    raw.end = false;
    send(mount.addr, raw).await.assert(200, 8, "4194305");
}

#[tokio::test]
async fn row_malformed_protobuf() {
    let mount = Mount::start().await;
    for path in [CHECK, WATCH, LIST] {
        send(mount.addr, Raw::grpc(path, vec![frame(0, b"\x0a\x05ab")]))
            .await
            .assert(200, 3, "malformed request");
    }
    send(
        mount.addr,
        Raw::grpc(CHECK, vec![frame(0, b"\x0a\x02\xc3\x28")]),
    )
    .await
    .assert(200, 3, "UTF-8");
}

#[tokio::test]
async fn row_name_over_200_bytes() {
    let mount = Mount::start().await;
    let long = "x".repeat(201);
    for path in [CHECK, WATCH] {
        send(mount.addr, Raw::grpc(path, vec![check_request(&long)]))
            .await
            .assert(200, 3, "201 bytes");
    }
}

#[tokio::test]
async fn row_check_on_an_unknown_name() {
    let mount = Mount::start().await;
    send(mount.addr, Raw::grpc(CHECK, vec![check_request("nope")]))
        .await
        .assert(200, 5, "unknown service");
}

#[tokio::test]
async fn row_list_over_100_names() {
    let mount = Mount::start().await;
    for i in 0..100 {
        mount
            .registry
            .set(&format!("svc-{i}"), ServingStatus::Serving)
            .unwrap();
    }
    send(mount.addr, Raw::grpc(LIST, vec![frame(0, b"")]))
        .await
        .assert(200, 8, "limit 100");
}

#[tokio::test]
async fn row_watch_past_its_grpc_timeout() {
    let mount = Mount::start().await;
    // The client never cancels: the server ends the stream at the deadline.
    let raw = Raw::grpc(WATCH, vec![check_request("")]).header("grpc-timeout", "200m");
    let started = std::time::Instant::now();
    let answer = send(mount.addr, raw).await;
    answer.assert(200, 4, "deadline");
    assert_eq!(
        answer.data, b"\0\0\0\0\x02\x08\x01",
        "the first message came first"
    );
    assert!(started.elapsed() >= wire::SHORT, "{:?}", started.elapsed());
}

#[tokio::test]
async fn row_request_never_ends_before_its_grpc_timeout() {
    let mount = Mount::start().await;
    // The message arrives but the request stream is never closed.
    for path in [CHECK, WATCH] {
        let mut raw = Raw::grpc(path, vec![check_request("")]).header("grpc-timeout", "200m");
        raw.end = false;
        send(mount.addr, raw).await.assert(200, 4, "deadline");
    }
}
