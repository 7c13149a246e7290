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
