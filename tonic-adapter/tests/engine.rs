//! The standalone engine's own behaviour: per-server drain, Watch deadlines, freeing what
//! clients give up, the plain-HTTP handler, the fallback route and other I/O.

mod common;

use std::{
    convert::Infallible,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use common::{request, status_of, watch, TestRegistry, TIMEOUT};
use dubbo_health_core::ServingStatus::{self, NotServing, Serving};
use dubbo_health_proto::pb::health_client::HealthClient;
use dubbo_health_tonic::{
    server::{Engine, RequestBody},
    Standalone,
};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

async fn client_for(server: &Standalone) -> HealthClient<Channel> {
    let channel = tokio::time::timeout(
        TIMEOUT,
        Channel::from_shared(format!("http://{}", server.local_addr()))
            .unwrap()
            .connect(),
    )
    .await
    .expect("connect timed out")
    .expect("connect");
    HealthClient::new(channel)
}

async fn next_status(
    stream: &mut tonic::Streaming<dubbo_health_proto::pb::HealthCheckResponse>,
) -> Option<ServingStatus> {
    tokio::time::timeout(TIMEOUT, stream.message())
        .await
        .expect("no message in time")
        .expect("stream failed")
        .map(|m| ServingStatus::from_i32(m.status).unwrap())
}

/// Stops `server` on a blocking thread (stop waits) and returns how long it took.
async fn stop(server: Standalone, grace: Duration) -> Duration {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        server.stop(grace).expect("stop");
        started.elapsed()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_one_server_ends_its_watches_only_and_leaves_the_registry_alone() {
    let registry = Arc::new(TestRegistry::new());
    registry.set("svc", Serving).unwrap();
    let one = Standalone::start("127.0.0.1:0", Arc::clone(&registry)).unwrap();
    let two = Standalone::start("127.0.0.1:0", Arc::clone(&registry)).unwrap();
    let mut client_one = client_for(&one).await;
    let mut client_two = client_for(&two).await;
    let (mut on_one, first) = watch(&mut client_one, "svc").await;
    assert_eq!(first, Serving);
    let (mut unknown_on_one, first) = watch(&mut client_one, "not-registered").await;
    assert_eq!(first, ServingStatus::ServiceUnknown);
    let (mut on_two, first) = watch(&mut client_two, "svc").await;
    assert_eq!(first, Serving);

    let took = stop(one, Duration::from_secs(5)).await;
    // Each of the stopped server's watchers hears NOT_SERVING, then its stream ends well.
    assert_eq!(next_status(&mut on_one).await, Some(NotServing));
    assert_eq!(next_status(&mut on_one).await, None);
    assert_eq!(next_status(&mut unknown_on_one).await, Some(NotServing));
    assert_eq!(next_status(&mut unknown_on_one).await, None);
    assert!(
        took < Duration::from_secs(5),
        "stop took {took:?} with a 5 s grace"
    );

    // The registry is untouched, and the other server goes on serving it.
    assert_eq!(registry.get("svc"), Some(Serving));
    assert!(!registry.is_shut_down());
    assert_eq!(status_of(&mut client_two, "svc").await, Serving);
    registry.set("svc", NotServing).unwrap();
    assert_eq!(next_status(&mut on_two).await, Some(NotServing));
    registry.set("svc", Serving).unwrap();
    assert_eq!(next_status(&mut on_two).await, Some(Serving));
    two.stop(Duration::from_secs(1)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_heard_not_serving_last_gets_no_second_one() {
    let registry = Arc::new(TestRegistry::new());
    registry.set("svc", NotServing).unwrap();
    let server = Standalone::start("127.0.0.1:0", Arc::clone(&registry)).unwrap();
    let mut client = client_for(&server).await;
    let (mut stream, first) = watch(&mut client, "svc").await;
    assert_eq!(first, NotServing);
    stop(server, Duration::from_secs(5)).await;
    assert_eq!(next_status(&mut stream).await, None);
}

/// A raw HTTP/2 client, so a request can be held half-sent.
async fn h2_client(addr: std::net::SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A large connection window, so thousands of unread first messages stay within the
    // client's own small-frame budget.
    let (send, conn) = h2::client::Builder::new()
        .initial_connection_window_size(16 << 20)
        .handshake(tcp)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

fn grpc_request(path: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

fn framed(message: &[u8]) -> Bytes {
    let mut out = vec![0u8];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    Bytes::from(out)
}

fn name_request(name: &str) -> Bytes {
    let mut message = vec![0x0a, name.len() as u8];
    message.extend_from_slice(name.as_bytes());
    framed(&message)
}

/// Reads a whole response: its head, its body bytes, its trailers.
async fn read_response(
    response: h2::client::ResponseFuture,
) -> (http::response::Parts, Vec<u8>, Option<http::HeaderMap>) {
    let response = tokio::time::timeout(TIMEOUT, response)
        .await
        .unwrap()
        .unwrap();
    let (head, mut body) = response.into_parts();
    let mut bytes = Vec::new();
    while let Some(chunk) = tokio::time::timeout(TIMEOUT, body.data()).await.unwrap() {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    let trailers = tokio::time::timeout(TIMEOUT, body.trailers())
        .await
        .unwrap()
        .unwrap();
    (head, bytes, trailers)
}

fn grpc_status(head: &http::response::Parts, trailers: &Option<http::HeaderMap>) -> String {
    let headers = trailers.as_ref().unwrap_or(&head.headers);
    headers
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_else(|| "none".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_starts_during_the_drain_gets_not_serving_and_ends() {
    let registry = Arc::new(TestRegistry::new());
    registry.set("svc", Serving).unwrap();
    let server = Standalone::start("127.0.0.1:0", Arc::clone(&registry)).unwrap();
    let mut client = h2_client(server.local_addr()).await;
    // The Watch's HEADERS are in, its request message is not: the server cannot start it.
    let (response, mut body) = client
        .send_request(grpc_request("/grpc.health.v1.Health/Watch"), false)
        .unwrap();
    tokio::time::timeout(TIMEOUT, async {
        while server.open_calls() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the server never saw the Watch");
    let stopping = tokio::spawn(stop(server, Duration::from_secs(5)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Now, during the drain, the request arrives and the Watch starts.
    body.send_data(name_request("svc"), true).unwrap();
    let (head, bytes, trailers) = read_response(response).await;
    assert_eq!(bytes, b"\0\0\0\0\x02\x08\x02", "one NOT_SERVING message");
    assert_eq!(grpc_status(&head, &trailers), "0");
    let took = stopping.await.unwrap();
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    assert_eq!(registry.get("svc"), Some(Serving));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_returns_within_its_grace_when_a_call_never_finishes() {
    let registry = Arc::new(TestRegistry::new());
    let server = Standalone::start("127.0.0.1:0", Arc::clone(&registry)).unwrap();
    let mut client = h2_client(server.local_addr()).await;
    // A Check whose request never ends holds its connection open through the drain.
    let (_response, _body) = client
        .send_request(grpc_request("/grpc.health.v1.Health/Check"), false)
        .unwrap();
    tokio::time::timeout(TIMEOUT, async {
        while server.open_calls() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    let took = stop(server, Duration::from_millis(300)).await;
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "stop with a 300 ms grace took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_deadline_ends_it_with_deadline_exceeded() {
    let registry = Arc::new(TestRegistry::new());
    let server = Standalone::start("127.0.0.1:0", Arc::clone(&registry)).unwrap();
    let mut client = client_for(&server).await;
    let mut req = tonic::Request::new(request(""));
    req.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let mut stream = client.watch(req).await.unwrap().into_inner();
    assert_eq!(next_status_raw(&mut stream).await, Ok(Some(Serving)));
    let end = next_status_raw(&mut stream).await;
    let took = started.elapsed();
    assert_eq!(end, Err(tonic::Code::DeadlineExceeded));
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "a 300 ms Watch deadline ended it after {took:?}"
    );
    // Many deadlines on one connection share its one timer, and each fires.
    let mut streams = Vec::new();
    for i in 0..50u64 {
        let mut req = tonic::Request::new(request(""));
        req.set_timeout(Duration::from_millis(100 + 10 * i));
        streams.push(client.watch(req).await.unwrap().into_inner());
    }
    for mut stream in streams {
        assert_eq!(next_status_raw(&mut stream).await, Ok(Some(Serving)));
        assert_eq!(
            next_status_raw(&mut stream).await,
            Err(tonic::Code::DeadlineExceeded)
        );
    }
    assert_eq!(server.open_calls(), 0);
}

async fn next_status_raw(
    stream: &mut tonic::Streaming<dubbo_health_proto::pb::HealthCheckResponse>,
) -> Result<Option<ServingStatus>, tonic::Code> {
    match tokio::time::timeout(TIMEOUT, stream.message())
        .await
        .expect("nothing in time")
    {
        Ok(m) => Ok(m.map(|m| ServingStatus::from_i32(m.status).unwrap())),
        Err(status) => Err(status.code()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_watches_free_their_calls() {
    let registry = Arc::new(TestRegistry::new());
    let server = Standalone::start("127.0.0.1:0", Arc::clone(&registry)).unwrap();
    let mut client = client_for(&server).await;
    let mut streams = Vec::new();
    for _ in 0..500 {
        streams.push(watch(&mut client, "svc").await.0);
    }
    assert_eq!(server.open_calls(), 500);
    drop(streams); // RST_STREAM for each
    wait_for_open_calls(&server, 0).await;

    // Check still answers on the first connection.
    assert_eq!(status_of(&mut client, "").await, Serving);
}

async fn wait_for_open_calls(server: &Standalone, want: usize) {
    let deadline = Instant::now() + TIMEOUT;
    while server.open_calls() != want {
        assert!(
            Instant::now() < deadline,
            "{} calls open, expected {want}",
            server.open_calls()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_connection_frees_its_watches() {
    let registry = Arc::new(TestRegistry::new());
    let server = Standalone::start("127.0.0.1:0", Arc::clone(&registry)).unwrap();
    let mut client = h2_client(server.local_addr()).await;
    let mut responses = Vec::new();
    for _ in 0..3000 {
        let (response, mut body) = client
            .send_request(grpc_request("/grpc.health.v1.Health/Watch"), false)
            .unwrap();
        if let Err(e) = body.send_data(name_request("svc"), true) {
            let got = tokio::time::timeout(TIMEOUT, response).await;
            panic!("stream {} of 3000: {e}; response: {got:?}", responses.len());
        }
        responses.push((response, body));
    }
    wait_for_open_calls(&server, 3000).await;
    // Closing the TCP connection (dropping every handle ends the client's connection task).
    drop(responses);
    drop(client);
    wait_for_open_calls(&server, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_goes_to_the_handler_on_http1_and_http2() {
    let registry = Arc::new(TestRegistry::new());
    let handled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&handled);
    // The bare hook: the built-in probes (which would claim /live and /ready) off.
    let server = Standalone::builder(Arc::clone(&registry))
        .probes(false)
        .http_handler(move |request: http::Request<Bytes>| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let body = format!(
                "{} {} {}",
                request.method(),
                request.uri().path(),
                request.body().len()
            );
            http::Response::builder()
                .status(if request.uri().path() == "/live" {
                    200
                } else {
                    404
                })
                .body(Bytes::from(body))
                .unwrap()
        })
        .start()
        .unwrap();

    // HTTP/1.1, keep-alive: two requests on one connection.
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    tcp.write_all(b"GET /live HTTP/1.1\r\nhost: x\r\n\r\nPOST /ready HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc")
        .await
        .unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while !String::from_utf8_lossy(&got).contains("POST /ready 3") {
        assert!(
            Instant::now() < deadline,
            "HTTP/1.1 answers: {:?}",
            String::from_utf8_lossy(&got)
        );
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(TIMEOUT, tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("GET /live 0"), "{text}");
    assert!(text.contains("HTTP/1.1 404"), "{text}");

    // HTTP/2 with a non-gRPC content type goes to the same handler; gRPC still works.
    let mut client = h2_client(server.local_addr()).await;
    let request = http::Request::builder()
        .method("POST")
        .uri("http://localhost/live")
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (response, mut body) = client.send_request(request, false).unwrap();
    body.send_data(Bytes::from_static(b"{}"), true).unwrap();
    let (head, bytes, _) = read_response(response).await;
    assert_eq!(head.status, 200);
    assert_eq!(bytes, b"POST /live 2");
    assert_eq!(handled.load(std::sync::atomic::Ordering::Relaxed), 3);
    let mut grpc = client_for(&server).await;
    assert_eq!(status_of(&mut grpc, "").await, Serving);
    server.stop(Duration::from_secs(1)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_handler_plain_http_is_404_and_unknown_grpc_methods_unimplemented() {
    let registry = Arc::new(TestRegistry::new());
    let server = Standalone::builder(Arc::clone(&registry))
        .reflection(false)
        .probes(false)
        .start()
        .unwrap();
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    tcp.write_all(b"GET /ready HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 12];
    tokio::time::timeout(TIMEOUT, tcp.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"HTTP/1.1 404");

    let mut client = h2_client(server.local_addr()).await;
    for path in [
        "/foo.Bar/Baz",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    ] {
        let (response, mut body) = client.send_request(grpc_request(path), false).unwrap();
        let _ = body.send_data(name_request(""), true);
        let (head, _, trailers) = read_response(response).await;
        assert_eq!(grpc_status(&head, &trailers), "12", "{path}");
    }
    let request = http::Request::builder()
        .uri("http://localhost/x")
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let (head, _, _) = read_response(response).await;
    assert_eq!(head.status, 404);
    server.stop(Duration::from_secs(1)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_grpc_paths_go_to_the_fallback_with_both_bodies_bridged() {
    // A stand-in fallback: echoes the request body back, with the path in a trailer.
    let echo = tower::service_fn(|request: http::Request<RequestBody>| async move {
        let path = request.uri().path().to_owned();
        let body = request.into_body().collect().await?.to_bytes();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        trailers.insert("x-path", http::HeaderValue::from_str(&path).unwrap());
        let body = http_body_util::Full::new(body)
            .map_err(|e: Infallible| match e {})
            .with_trailers(async move { Some(Ok::<_, h2::Error>(trailers)) });
        let mut response = http::Response::new(body);
        response.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("application/grpc"),
        );
        Ok::<_, h2::Error>(response)
    });
    let registry = Arc::new(TestRegistry::new());
    let server = Standalone::builder(Arc::clone(&registry))
        .fallback(echo)
        .start()
        .unwrap();
    let mut client = h2_client(server.local_addr()).await;
    // 3 MiB each way: more than both HTTP/2 windows, so flow control must work in both.
    let payload: Bytes = (0..3u32 << 20).map(|i| i as u8).collect::<Vec<u8>>().into();
    let (response, mut body) = client
        .send_request(grpc_request("/test.Echo/Echo"), false)
        .unwrap();
    let sending = tokio::spawn({
        let payload = payload.clone();
        async move {
            let mut rest = payload;
            while !rest.is_empty() {
                body.reserve_capacity(rest.len());
                let n = std::future::poll_fn(|cx| body.poll_capacity(cx))
                    .await
                    .unwrap()
                    .unwrap();
                let chunk = rest.split_to(n.min(rest.len()));
                body.send_data(chunk, rest.is_empty()).unwrap();
            }
        }
    });
    let (head, bytes, trailers) = read_response(response).await;
    sending.await.unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(bytes.len(), payload.len());
    assert!(bytes == payload[..], "echoed bytes differ");
    let trailers = trailers.expect("trailers");
    assert_eq!(trailers["x-path"], "/test.Echo/Echo");
    // The health service itself is still ours.
    let mut grpc = client_for(&server).await;
    assert_eq!(status_of(&mut grpc, "").await, Serving);
    server.stop(Duration::from_secs(1)).unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn an_engine_serves_any_async_io() {
    let registry = Arc::new(TestRegistry::new());
    registry.set("svc", NotServing).unwrap();
    let engine: Engine<Arc<TestRegistry>> = Standalone::builder(Arc::clone(&registry)).engine();
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let serving = tokio::spawn(engine.serve_connection(server_io));
    let (mut client, conn) = h2::client::handshake(client_io).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let (response, mut body) = client
        .send_request(grpc_request("/grpc.health.v1.Health/Check"), false)
        .unwrap();
    body.send_data(name_request("svc"), true).unwrap();
    let (_, bytes, trailers) = read_response(response).await;
    assert_eq!(bytes, b"\0\0\0\0\x02\x08\x02");
    assert_eq!(trailers.unwrap()["grpc-status"], "0");
    // Draining the engine closes the connection once its calls are done.
    engine.drain();
    drop(client);
    tokio::time::timeout(TIMEOUT, serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// Server-side I/O that counts the writes that reached it.
struct CountedWrites {
    io: tokio::io::DuplexStream,
    writes: Arc<std::sync::atomic::AtomicUsize>,
}

impl tokio::io::AsyncRead for CountedWrites {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CountedWrites {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(poll, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        poll
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

// A prober sends its preface, SETTINGS and Check in one flight: the server's SETTINGS, its
// ACK and the answer leave in one write (one segment, one wake-up of the prober), where
// `h2` alone would make three.
#[tokio::test(flavor = "current_thread")]
async fn a_probe_s_check_is_answered_in_one_write() {
    let registry = Arc::new(TestRegistry::new());
    registry.set("svc", Serving).unwrap();
    let engine: Engine<Arc<TestRegistry>> = Standalone::builder(Arc::clone(&registry)).engine();
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let (mut client, conn) = h2::client::handshake(client_io).await.unwrap();
    let (response, mut body) = client
        .send_request(grpc_request("/grpc.health.v1.Health/Check"), false)
        .unwrap();
    body.send_data(name_request("svc"), true).unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    // The whole flight is in the pipe before the server reads anything.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let io = CountedWrites {
        io: server_io,
        writes: Arc::clone(&writes),
    };
    tokio::spawn(engine.serve_connection(io));
    let (_, bytes, trailers) = tokio::time::timeout(TIMEOUT, read_response(response))
        .await
        .expect("no answer");
    assert_eq!(bytes, b"\0\0\0\0\x02\x08\x01");
    assert_eq!(trailers.unwrap()["grpc-status"], "0");
    assert_eq!(writes.load(std::sync::atomic::Ordering::Relaxed), 1);
}

// A client that waits for the server's SETTINGS before its first request (grpc-go does)
// gets them at once: what the server holds back during a wake-up leaves at its end.
#[tokio::test(flavor = "current_thread")]
async fn a_client_waiting_for_the_server_settings_gets_them() {
    let registry = Arc::new(TestRegistry::new());
    let engine: Engine<Arc<TestRegistry>> = Standalone::builder(Arc::clone(&registry)).engine();
    let (mut client_io, server_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(engine.serve_connection(server_io));
    // The preface and an empty SETTINGS frame, and nothing more.
    client_io
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut head = [0u8; 9];
    tokio::time::timeout(TIMEOUT, client_io.read_exact(&mut head))
        .await
        .expect("the server held its SETTINGS back")
        .unwrap();
    // A SETTINGS frame (type 4) without the ACK flag, on stream 0.
    assert_eq!(head[3], 4);
    assert_eq!(head[4] & 1, 0);
    assert_eq!(&head[5..], &[0, 0, 0, 0]);
}

// The Watch streams of one connection on one name share one registry waiter (a group);
// each stream still keeps its own state: what it sent, its window, its end.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_of_one_name_on_one_connection_each_get_every_change() {
    let registry = Arc::new(TestRegistry::new());
    registry.set("svc", Serving).unwrap();
    let server = Standalone::start("127.0.0.1:0", Arc::clone(&registry)).unwrap();
    let mut client = client_for(&server).await;
    let (mut a, first_a) = watch(&mut client, "svc").await;
    let (b, _) = watch(&mut client, "svc").await;
    let (mut c, first_c) = watch(&mut client, "svc").await;
    let (mut other, first_other) = watch(&mut client, "other").await;
    assert_eq!(
        (first_a, first_c, first_other),
        (Serving, Serving, ServingStatus::ServiceUnknown)
    );
    drop(b); // cancelled: the others keep going
    wait_for_open_calls(&server, 3).await;

    registry.set("svc", NotServing).unwrap();
    assert_eq!(next_status(&mut a).await, Some(NotServing));
    assert_eq!(next_status(&mut c).await, Some(NotServing));
    // One that joins after the flip starts from the current status, not an older one.
    let (mut d, first_d) = watch(&mut client, "svc").await;
    assert_eq!(first_d, NotServing);

    registry.set("svc", Serving).unwrap();
    registry.set("other", NotServing).unwrap();
    for stream in [&mut a, &mut c, &mut d] {
        assert_eq!(next_status(stream).await, Some(Serving));
    }
    // The other name's stream heard its own name only.
    assert_eq!(next_status(&mut other).await, Some(NotServing));

    drop((a, c, d, other));
    wait_for_open_calls(&server, 0).await;
    // With every stream of a name gone, a new one starts afresh.
    let (_e, first_e) = watch(&mut client, "svc").await;
    assert_eq!(first_e, Serving);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_opened_after_end_watches_is_not_ended_by_it() {
    let registry = Arc::new(TestRegistry::new());
    registry.set("svc", Serving).unwrap();
    let server = Standalone::start("127.0.0.1:0", Arc::clone(&registry)).unwrap();
    let mut client = client_for(&server).await;
    let (mut before, _) = watch(&mut client, "svc").await;
    registry.end_watches();
    assert_eq!(next_status(&mut before).await, None);
    // Same connection, same name: a Watch opened now follows the name as usual.
    let (mut after, first) = watch(&mut client, "svc").await;
    assert_eq!(first, Serving);
    registry.set("svc", NotServing).unwrap();
    assert_eq!(next_status(&mut after).await, Some(NotServing));
    assert_eq!(server.open_calls(), 1);
}

/// The next status message on a raw stream, without giving its bytes back to the window.
async fn next_unreleased(body: &mut h2::RecvStream) -> Vec<u8> {
    tokio::time::timeout(TIMEOUT, body.data())
        .await
        .expect("no message in time")
        .expect("the stream ended")
        .expect("the stream failed")
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_does_not_read_holds_no_one_up_and_gets_the_latest_status() {
    const SERVING: &[u8] = b"\0\0\0\0\x02\x08\x01";
    const NOT_SERVING: &[u8] = b"\0\0\0\0\x02\x08\x02";
    let registry = Arc::new(TestRegistry::new());
    registry.set("svc", Serving).unwrap();
    let server = Standalone::start("127.0.0.1:0", Arc::clone(&registry)).unwrap();
    // A 16-byte window per stream: two 7-byte status messages fit, a third does not until
    // the client gives the first ones back.
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let (mut client, conn) = h2::client::Builder::new()
        .initial_window_size(16)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut open = || {
        let (response, mut body) = client
            .send_request(grpc_request("/grpc.health.v1.Health/Watch"), false)
            .unwrap();
        body.send_data(name_request("svc"), true).unwrap();
        response
    };
    let (stalled, reader) = (open(), open());
    let mut stalled = tokio::time::timeout(TIMEOUT, stalled)
        .await
        .unwrap()
        .unwrap()
        .into_body();
    let mut reader = tokio::time::timeout(TIMEOUT, reader)
        .await
        .unwrap()
        .unwrap()
        .into_body();
    let mut held = next_unreleased(&mut stalled).await;
    assert_eq!(held, SERVING);
    let read = |chunk: Vec<u8>, body: &mut h2::RecvStream| {
        let _ = body.flow_control().release_capacity(chunk.len());
        chunk
    };
    let first = next_unreleased(&mut reader).await;
    assert_eq!(read(first, &mut reader), SERVING);
    // Ten flips, ending SERVING: the reader hears every one.
    for round in 0..10 {
        let (status, frame) = if round % 2 == 0 {
            (NotServing, NOT_SERVING)
        } else {
            (Serving, SERVING)
        };
        registry.set("svc", status).unwrap();
        let got = next_unreleased(&mut reader).await;
        assert_eq!(read(got, &mut reader), frame, "flip {round}");
    }
    // The stalled stream got what its window took (the first flip), nothing since.
    held.extend(next_unreleased(&mut stalled).await);
    assert_eq!(held, [SERVING, NOT_SERVING].concat());
    assert!(
        tokio::time::timeout(Duration::from_millis(200), stalled.data())
            .await
            .is_err(),
        "a third message does not fit its window"
    );
    // Its window opens: the latest status comes, once, and no backlog of the flips between.
    let _ = stalled.flow_control().release_capacity(held.len());
    assert_eq!(next_unreleased(&mut stalled).await, SERVING);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stalled.data())
            .await
            .is_err(),
        "nothing but the latest status"
    );
    assert_eq!(server.open_calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flip_reaches_thousands_of_watchers_on_one_connection() {
    const SERVING: &[u8] = b"\0\0\0\0\x02\x08\x01";
    const NOT_SERVING: &[u8] = b"\0\0\0\0\x02\x08\x02";
    let registry = Arc::new(TestRegistry::new());
    registry.set("svc", Serving).unwrap();
    let server = Standalone::start("127.0.0.1:0", Arc::clone(&registry)).unwrap();
    let mut client = h2_client(server.local_addr()).await;
    // More streams than the engine polls between two writes: the opening and each flip go
    // out in several writes, with new frames read in between.
    let mut pending = Vec::new();
    for _ in 0..2000 {
        let (response, mut body) = client
            .send_request(grpc_request("/grpc.health.v1.Health/Watch"), false)
            .unwrap();
        body.send_data(name_request("svc"), true).unwrap();
        pending.push((response, body));
    }
    let mut streams = Vec::new();
    for (response, _body) in pending {
        let mut body = tokio::time::timeout(TIMEOUT, response)
            .await
            .unwrap()
            .unwrap()
            .into_body();
        assert_eq!(next_unreleased(&mut body).await, SERVING);
        streams.push(body);
    }
    for (status, frame) in [(NotServing, NOT_SERVING), (Serving, SERVING)] {
        registry.set("svc", status).unwrap();
        for body in &mut streams {
            let got = next_unreleased(body).await;
            let _ = body.flow_control().release_capacity(got.len());
            assert_eq!(got, frame);
        }
    }
    assert_eq!(server.open_calls(), 2000);
}
