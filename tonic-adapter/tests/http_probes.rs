//! The HTTP probes and the JSON `Check` / `List` of the standalone server, over real TCP:
//! HTTP/1.1 with a raw client (what Kubernetes' `httpGet` and `curl` send), and h2c with the
//! `h2` crate; the probe port, the drain, and a tonic host with the probe layer mounted.

mod common;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use common::{TestRegistry, TIMEOUT};
use dubbo_health_core::ServingStatus;
use dubbo_health_tonic::{
    probe::{ProbeBodies, ProbeLayer, Probes},
    HealthService, Standalone,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// One HTTP/1.1 answer: status, headers (lower-cased names), body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A keep-alive HTTP/1.1 client over one TCP connection, reading `content-length` bodies.
struct Http1 {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Http1 {
    async fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        Self {
            tcp,
            buf: Vec::new(),
        }
    }

    async fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut request = format!("{method} {target} HTTP/1.1\r\nhost: test\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            request.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.tcp.write_all(&bytes).await.unwrap();
        tokio::time::timeout(TIMEOUT, self.read(method == "HEAD"))
            .await
            .expect("an answer in time")
    }

    async fn get(&mut self, target: &str) -> Answer {
        self.send("GET", target, &[], b"").await
    }

    async fn json(&mut self, path: &str, body: &str) -> Answer {
        self.send(
            "POST",
            path,
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await
    }

    async fn read(&mut self, head_only: bool) -> Answer {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(self.buf[..end].to_vec()).unwrap();
                let mut lines = head.split("\r\n");
                let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
                let headers: Vec<(String, String)> = lines
                    .map(|l| {
                        let (n, v) = l.split_once(':').unwrap();
                        (n.trim().to_ascii_lowercase(), v.trim().to_owned())
                    })
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                let len = if head_only { 0 } else { len };
                while self.buf.len() < end + 4 + len {
                    self.fill().await;
                }
                let body = String::from_utf8(self.buf[end + 4..end + 4 + len].to_vec()).unwrap();
                self.buf.drain(..end + 4 + len);
                return Answer {
                    status,
                    headers,
                    body,
                };
            }
            self.fill().await;
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-answer");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

/// One request on a fresh connection (as Kubernetes probes do).
async fn get(addr: SocketAddr, target: &str) -> Answer {
    Http1::connect(addr).await.get(target).await
}

fn start(registry: &Arc<TestRegistry>) -> Standalone {
    Standalone::builder(Arc::clone(registry)).start().unwrap()
}

const GREETER: &str = "org.apache.dubbogo.samples.api.Greeter";
const KEYED: &str = "grp/org.apache.Foo:1.0.0";

#[tokio::test]
async fn probes_follow_the_registry_over_http1() {
    let registry = Arc::new(TestRegistry::new());
    registry.set(GREETER, ServingStatus::Serving).unwrap();
    registry.set(KEYED, ServingStatus::NotServing).unwrap();
    let server = start(&registry);
    let addr = server.local_addr();
    let mut http = Http1::connect(addr).await;

    for path in ["/live", "/ready", "/startup"] {
        let answer = http.get(path).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "true"),
            "{path}"
        );
        assert_eq!(
            answer.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
    }
    // One service, by query and by path; its key may hold `/` and `:`, percent-encoded or not.
    assert_eq!(
        http.get(&format!("/ready?service={GREETER}")).await.status,
        200
    );
    assert_eq!(http.get(&format!("/ready/{GREETER}")).await.status, 200);
    let answer = http
        .get("/ready?service=grp%2Forg.apache.Foo%3A1.0.0")
        .await;
    assert_eq!((answer.status, answer.body.as_str()), (503, "false"));
    assert_eq!(http.get(&format!("/ready/{KEYED}")).await.status, 503);
    assert_eq!(http.get("/ready?service=nope").await.status, 404);
    assert_eq!(http.get("/ready/nope").await.status, 404);
    assert_eq!(
        http.get(&format!("/ready?service={}", "n".repeat(201)))
            .await
            .status,
        400
    );
    // `service=` (empty) is the empty name.
    assert_eq!(http.get("/ready?service=").await.status, 200);

    // `""` drives /ready; /live does not care.
    registry.set("", ServingStatus::NotServing).unwrap();
    let answer = http.get("/ready").await;
    assert_eq!((answer.status, answer.body.as_str()), (503, "false"));
    assert_eq!(http.get("/live").await.status, 200);
    registry.shutdown();
    assert_eq!(http.get("/ready").await.status, 503);
    assert_eq!(http.get(&format!("/ready/{GREETER}")).await.status, 503);
    registry.resume();
    registry.set("", ServingStatus::Serving).unwrap();
    assert_eq!(http.get("/ready").await.status, 200);

    // HEAD: the status and headers, no body; other methods: 405 with Allow.
    let answer = http.send("HEAD", "/ready", &[], b"").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-length"), Some("4"));
    let answer = http.send("POST", "/ready", &[], b"").await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("allow"), Some("GET, HEAD"));
    assert_eq!(http.send("DELETE", "/live", &[], b"").await.status, 405);
    // Paths that are not probes are 404, and the connection still serves.
    assert_eq!(http.get("/").await.status, 404);
    assert_eq!(http.get("/readyz").await.status, 404);
    assert_eq!(http.get("/live").await.status, 200);
    server.stop(Duration::from_secs(1)).unwrap();
}

#[tokio::test]
async fn json_check_and_list_over_http1() {
    let registry = Arc::new(TestRegistry::new());
    registry
        .set("greet.GreetService", ServingStatus::Serving)
        .unwrap();
    registry.set(KEYED, ServingStatus::NotServing).unwrap();
    let server = start(&registry);
    let mut http = Http1::connect(server.local_addr()).await;
    const CHECK: &str = "/grpc.health.v1.Health/Check";

    let answer = http
        .json(CHECK, r#"{"service":"greet.GreetService"}"#)
        .await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, r#"{"status":"SERVING"}"#)
    );
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let answer = http
        .json(CHECK, &format!(r#"{{"service":"{KEYED}"}}"#))
        .await;
    assert_eq!(answer.body, r#"{"status":"NOT_SERVING"}"#);
    // `{}` and a null service are the empty name; unknown fields are ignored.
    assert_eq!(http.json(CHECK, "{}").await.body, r#"{"status":"SERVING"}"#);
    assert_eq!(http.json(CHECK, r#"{"service":null}"#).await.status, 200);
    assert_eq!(
        http.json(CHECK, r#"{"service":"","extra":1}"#).await.status,
        200
    );
    // charset parameters are fine.
    let answer = http
        .send(
            "POST",
            CHECK,
            &[("content-type", "application/json; charset=utf-8")],
            b"{}",
        )
        .await;
    assert_eq!(answer.status, 200);

    let answer = http.json(CHECK, r#"{"service":"nope"}"#).await;
    assert_eq!(answer.status, 404);
    let error: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(error["code"], "not_found");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("unknown service"));
    for bad in ["{", "[]", r#"{"service":5}"#, "", "null"] {
        let answer = http.json(CHECK, bad).await;
        assert_eq!(answer.status, 400, "{bad:?}");
        let error: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(error["code"], "invalid_argument", "{bad:?}");
    }
    let long = format!(r#"{{"service":"{}"}}"#, "n".repeat(201));
    let answer = http.json(CHECK, &long).await;
    assert_eq!(answer.status, 400);
    assert!(answer.body.contains("201 bytes"), "{}", answer.body);
    // Other content types, methods and streaming.
    let answer = http
        .send("POST", CHECK, &[("content-type", "text/plain")], b"{}")
        .await;
    assert_eq!(answer.status, 415);
    assert_eq!(http.get(CHECK).await.status, 405);
    let answer = http.json("/grpc.health.v1.Health/Watch", "{}").await;
    assert_eq!(answer.status, 501);
    assert!(answer.body.contains(r#""code":"unimplemented""#));
    // Connect's protobuf codec: raw message bytes.
    let answer = http
        .send("POST", CHECK, &[("content-type", "application/proto")], b"")
        .await;
    assert_eq!(
        (answer.status, answer.body.as_bytes()),
        (200, &b"\x08\x01"[..])
    );
    // A body past 64 KiB is refused before any parsing.
    let big = format!(r#"{{"service":"{}"}}"#, "n".repeat(70_000));
    assert_eq!(http.json(CHECK, &big).await.status, 413);

    let answer = http.json("/grpc.health.v1.Health/List", "{}").await;
    assert_eq!(answer.status, 200);
    let list: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(
        list,
        serde_json::json!({"statuses": {
            "": {"status": "SERVING"},
            "greet.GreetService": {"status": "SERVING"},
            KEYED: {"status": "NOT_SERVING"},
        }})
    );
    for i in 0..100 {
        registry
            .set(&format!("svc.{i}"), ServingStatus::Serving)
            .unwrap();
    }
    let answer = http.json("/grpc.health.v1.Health/List", "{}").await;
    assert_eq!(answer.status, 429);
    assert!(answer.body.contains(r#""code":"resource_exhausted""#));
    server.stop(Duration::from_secs(1)).unwrap();
}

/// h2c: plain HTTP/2 requests (not gRPC) on the gRPC port get the same answers.
#[tokio::test]
async fn probes_and_json_over_h2c() {
    let registry = Arc::new(TestRegistry::new());
    registry
        .set("greet.GreetService", ServingStatus::Serving)
        .unwrap();
    let server = start(&registry);
    let tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    let mut call = async |method: &str, path: &str, ct: Option<&str>, body: &'static [u8]| {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("http://test{path}"));
        if let Some(ct) = ct {
            request = request.header("content-type", ct);
        }
        let (response, mut send) = client
            .send_request(request.body(()).unwrap(), body.is_empty())
            .unwrap();
        if !body.is_empty() {
            send.send_data(Bytes::from_static(body), true).unwrap();
        }
        let response = tokio::time::timeout(TIMEOUT, response)
            .await
            .unwrap()
            .unwrap();
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut all = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            body.flow_control().release_capacity(chunk.len()).unwrap();
            all.extend_from_slice(&chunk);
        }
        (status, String::from_utf8(all).unwrap())
    };
    assert_eq!(call("GET", "/ready", None, b"").await, (200, "true".into()));
    assert_eq!(call("HEAD", "/live", None, b"").await, (200, String::new()));
    assert_eq!(
        call(
            "POST",
            "/grpc.health.v1.Health/Check",
            Some("application/json"),
            br#"{"service":"greet.GreetService"}"#
        )
        .await,
        (200, r#"{"status":"SERVING"}"#.into())
    );
    let (status, body) = call(
        "POST",
        "/grpc.health.v1.Health/Check",
        Some("application/json"),
        br#"{"service":"nope"}"#,
    )
    .await;
    assert_eq!(status, 404);
    assert!(body.contains(r#""code":"not_found""#));
    registry.set("", ServingStatus::NotServing).unwrap();
    assert_eq!(
        call("GET", "/ready", None, b"").await,
        (503, "false".into())
    );
    server.stop(Duration::from_secs(1)).unwrap();
}

#[tokio::test]
async fn startup_waits_for_mark_started_and_bodies_can_be_dubbo_go() {
    let registry = Arc::new(TestRegistry::new());
    let server = Standalone::builder(Arc::clone(&registry))
        .started(false)
        .probe_bodies(ProbeBodies::DubboGo)
        .start()
        .unwrap();
    let addr = server.local_addr();
    let answer = get(addr, "/startup").await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (503, "probe startup: not started")
    );
    server.mark_started();
    let answer = get(addr, "/startup").await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok"));
    registry.set("", ServingStatus::NotServing).unwrap();
    let answer = get(addr, "/ready").await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (503, "probe ready: not serving")
    );
    server.stop(Duration::from_secs(1)).unwrap();
}

#[tokio::test]
async fn probes_can_be_turned_off_and_a_host_handler_gets_the_rest() {
    let registry = Arc::new(TestRegistry::new());
    let off = Standalone::builder(Arc::clone(&registry))
        .probes(false)
        .start()
        .unwrap();
    assert_eq!(get(off.local_addr(), "/ready").await.status, 404);
    off.stop(Duration::from_secs(1)).unwrap();

    let on = Standalone::builder(Arc::clone(&registry))
        .http_handler(|request: http::Request<Bytes>| {
            let body = format!("host {}", request.uri().path());
            http::Response::new(Bytes::from(body))
        })
        .start()
        .unwrap();
    assert_eq!(get(on.local_addr(), "/ready").await.body, "true");
    assert_eq!(get(on.local_addr(), "/metrics").await.body, "host /metrics");
    on.stop(Duration::from_secs(1)).unwrap();
}

/// The probe port keeps answering through the drain: `/ready` turns 503 the moment the
/// server begins to stop, though the registry still says SERVING; the gRPC port stops
/// accepting. Once the server has stopped, the probe port is closed too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_port_says_503_during_the_drain() {
    let registry = Arc::new(TestRegistry::new());
    let server = Standalone::builder(Arc::clone(&registry))
        .probe_addr("127.0.0.1:0")
        .start()
        .unwrap();
    let probe = server.probe_addr().unwrap();
    assert_ne!(probe, server.local_addr());
    assert_eq!(get(probe, "/ready").await.status, 200);
    assert_eq!(get(probe, "/live").await.status, 200);
    let mut http = Http1::connect(probe).await;
    assert_eq!(
        http.json("/grpc.health.v1.Health/Check", "{}").await.status,
        200
    );

    // A Watch on the gRPC port holds the drain open for its grace period.
    let mut client = dubbo_health_tonic::pb::health_client::HealthClient::connect(format!(
        "http://{}",
        server.local_addr()
    ))
    .await
    .unwrap();
    let mut watch = client
        .watch(common::request(""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(common::next(&mut watch).await, Some(ServingStatus::Serving));

    // A Check whose request never ends holds the drain open for its grace period.
    let tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    let (h2, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut h2 = h2.ready().await.unwrap();
    let request = http::Request::post(format!(
        "http://{}/grpc.health.v1.Health/Check",
        server.local_addr()
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let (_pending, _send) = h2.send_request(request, false).unwrap();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while server.open_calls() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Watch and the Check are held"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let stopping = std::thread::spawn(move || server.stop(Duration::from_secs(2)));
    // The Watch hears NOT_SERVING; by then /ready already says 503 on the probe port.
    assert_eq!(
        common::next(&mut watch).await,
        Some(ServingStatus::NotServing)
    );
    let answer = get(probe, "/ready").await;
    assert_eq!((answer.status, answer.body.as_str()), (503, "false"));
    assert_eq!(get(probe, "/live").await.status, 200);
    assert_eq!(http.get("/ready").await.status, 503);
    assert_eq!(registry.get(""), Some(ServingStatus::Serving));
    assert!(
        !stopping.is_finished(),
        "the unfinished Check holds the drain open"
    );
    stopping.join().unwrap().unwrap();
    assert!(
        TcpStream::connect(probe).await.is_err(),
        "the probe port closes with the server"
    );
}

/// A tonic host: the probe layer on its own server, HTTP/1.1 on; gRPC passes through.
#[tokio::test]
async fn a_tonic_host_mounts_the_probe_layer() {
    let registry = Arc::new(TestRegistry::new());
    registry
        .set("greet.GreetService", ServingStatus::Serving)
        .unwrap();
    let probes = Probes::new(Arc::clone(&registry));
    let state = probes.state().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(
        tonic::transport::Server::builder()
            .accept_http1(true)
            .layer(ProbeLayer::new(probes))
            .add_service(HealthService::new(Arc::clone(&registry)).server())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let mut http = Http1::connect(addr).await;
    assert_eq!(http.get("/startup").await.status, 503);
    state.mark_started();
    assert_eq!(http.get("/startup").await.status, 200);
    assert_eq!(http.get("/ready").await.body, "true");
    let answer = http
        .json(
            "/grpc.health.v1.Health/Check",
            r#"{"service":"greet.GreetService"}"#,
        )
        .await;
    assert_eq!(answer.body, r#"{"status":"SERVING"}"#);
    // The host's own routes still answer gRPC.
    let mut client =
        dubbo_health_tonic::pb::health_client::HealthClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
    assert_eq!(
        common::status_of(&mut client, "greet.GreetService").await,
        ServingStatus::Serving
    );
    state.mark_stopping();
    assert_eq!(http.get("/ready").await.status, 503);
    serving.abort();
}

/// The bare tower service: what a host with its own HTTP router calls.
#[tokio::test]
async fn probes_as_a_tower_service() {
    use tower::ServiceExt;
    let registry = Arc::new(TestRegistry::new());
    let probes = Probes::new(Arc::clone(&registry));
    let request = http::Request::post("/grpc.health.v1.Health/Check")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let response = probes.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], br#"{"status":"SERVING"}"#);
    let request = http::Request::get("/elsewhere")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    assert_eq!(probes.oneshot(request).await.unwrap().status(), 404);
}
