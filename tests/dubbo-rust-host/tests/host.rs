//! `dubbo-rust-host` (a real dubbo-rust 0.4 triple server with health mounted beside its
//! Greeter) against real clients: grpc-health-probe, the grpc-go client of the interop suite
//! (`tests/interop/bin/goclient`, `make interop-goclient`) and a tonic client. A missing
//! client fails the test; nothing is skipped.

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use bytes::{Buf, BufMut, Bytes};
use dubbo_health_proto::pb::{health_client::HealthClient, HealthCheckRequest, HealthListRequest};
use tonic::{
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
    Code, Status,
};

const GREETER: &str = "org.apache.dubbogo.samples.api.Greeter";
const SERVING: i32 = 1;
const NOT_SERVING: i32 = 2;
const SERVICE_UNKNOWN: i32 = 3;

struct Host {
    child: Child,
    stdin: Option<ChildStdin>,
    answers: BufReader<ChildStdout>,
    addr: String,
}

impl Host {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dubbo-rust-host"))
            .args(["--addr", "127.0.0.1:0", "--control-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dubbo-rust-host");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening ") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("dubbo-rust-host printed no `listening ADDR`");
        Self {
            stdin: child.stdin.take(),
            answers: BufReader::new(child.stdout.take().expect("stdout")),
            child,
            addr,
        }
    }

    fn control(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write control line");
        stdin.flush().expect("flush");
        let mut answer = String::new();
        self.answers.read_line(&mut answer).expect("read answer");
        assert!(answer.starts_with("ok"), "{line:?} → {answer:?}");
    }

    /// Closes stdin: the host drains (NOT_SERVING, Watch streams end) and exits.
    fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "dubbo-rust-host did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    async fn health(&self) -> HealthClient<Channel> {
        HealthClient::connect(format!("http://{}", self.addr))
            .await
            .expect("connect")
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A program from `~/go/bin` or PATH.
fn go_tool(name: &str) -> PathBuf {
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join("go/bin");
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([home])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found on PATH or in ~/go/bin (ci/install-20-tonic.sh)")
        })
}

fn goclient() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../interop/bin/goclient");
    assert!(
        exe.is_file(),
        "{} is missing: run `make interop-goclient`",
        exe.display()
    );
    exe
}

fn probe(host: &Host, service: &str, extra: &[&str]) -> i32 {
    Command::new(go_tool("grpc-health-probe"))
        .arg(format!("-addr={}", host.addr))
        .arg(format!("-service={service}"))
        .args(extra)
        .output()
        .expect("run grpc-health-probe")
        .status
        .code()
        .expect("exit code")
}

fn go(args: &[&str]) -> String {
    let out = Command::new(goclient())
        .args(args)
        .output()
        .expect("run goclient");
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn grpc_health_probe_exit_codes() {
    let mut host = Host::start();
    assert_eq!(probe(&host, "", &[]), 0);
    assert_eq!(probe(&host, GREETER, &[]), 0);
    assert_eq!(probe(&host, GREETER, &["-gzip"]), 0);
    assert_eq!(probe(&host, "nope", &[]), 3, "NOT_FOUND is an RPC failure");
    host.control(&format!("set {GREETER} NOT_SERVING"));
    assert_eq!(probe(&host, GREETER, &[]), 4);
    host.control("shutdown");
    assert_eq!(probe(&host, "", &[]), 4);
    assert!(host.finish().success());
}

#[test]
fn grpc_go_check_watch_list() {
    let mut host = Host::start();
    let addr = host.addr.clone();
    assert_eq!(
        go(&["check", "-addr", &addr, "-service", GREETER]),
        "SERVING\n"
    );
    assert!(go(&["check", "-addr", &addr, "-service", "nope"]).starts_with("ERROR NOT_FOUND"));
    assert_eq!(
        go(&["list", "-addr", &addr]),
        format!("{{\"\":\"SERVING\",\"{GREETER}\":\"SERVING\"}}\n")
    );
    let mut watch = Command::new(goclient())
        .args([
            "watch", "-addr", &addr, "-service", "flip", "-timeout", "20s",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("goclient watch");
    let mut lines = BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let mut next = || lines.next().expect("a Watch line").expect("read");
    assert_eq!(next(), "SERVICE_UNKNOWN");
    host.control("set flip SERVING");
    assert_eq!(next(), "SERVING");
    host.control("set flip NOT_SERVING");
    assert_eq!(next(), "NOT_SERVING");
    host.control("clear flip");
    assert_eq!(next(), "SERVICE_UNKNOWN");
    // The drain ends the stream with status OK, carried in the trailers through the adapter;
    // grpc-go reports that end as io.EOF, which the client prints as UNKNOWN EOF (a cut
    // connection would be UNAVAILABLE).
    assert!(host.finish().success());
    assert_eq!(next(), "END UNKNOWN EOF");
    watch.wait().expect("goclient exits");
}

async fn next_status(
    watch: &mut tonic::Streaming<dubbo_health_proto::pb::HealthCheckResponse>,
) -> i32 {
    let message = tokio::time::timeout(Duration::from_secs(5), watch.message()).await;
    message
        .expect("a Watch message within 5 s")
        .expect("no error")
        .expect("the stream did not end")
        .status
}

#[tokio::test(flavor = "current_thread")]
async fn tonic_client_check_watch_list_and_errors() {
    let mut host = Host::start();
    let mut health = host.health().await;
    let check = |service: &str| HealthCheckRequest {
        service: service.into(),
    };
    let status = health
        .check(check(""))
        .await
        .expect("Check")
        .into_inner()
        .status;
    assert_eq!(status, SERVING);
    let err = health.check(check("nope")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = health.check(check(&"x".repeat(201))).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("201 bytes"), "{}", err.message());

    let mut watch = health
        .watch(check(GREETER))
        .await
        .expect("watch")
        .into_inner();
    assert_eq!(next_status(&mut watch).await, SERVING);
    host.control(&format!("set {GREETER} NOT_SERVING"));
    assert_eq!(next_status(&mut watch).await, NOT_SERVING);
    host.control(&format!("clear {GREETER}"));
    assert_eq!(next_status(&mut watch).await, SERVICE_UNKNOWN);

    let list = health
        .list(HealthListRequest {})
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.statuses.len(), 1);
    for i in 0..100 {
        host.control(&format!("set n{i} SERVING"));
    }
    let err = health.list(HealthListRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
}

/// Raw bytes in and out, for malformed requests and for the Greeter's hand-encoded messages.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

async fn raw_unary(channel: Channel, path: &'static str, body: &[u8]) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    grpc.unary(
        tonic::Request::new(Bytes::copy_from_slice(body)),
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        Raw,
    )
    .await
    .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "current_thread")]
async fn greeter_answers_beside_health_and_bad_bytes_are_invalid_argument() {
    let mut host = Host::start();
    let channel = Channel::from_shared(format!("http://{}", host.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    const SAY_HELLO: &str = "/org.apache.dubbogo.samples.api.Greeter/SayHello";
    let reply = raw_unary(channel.clone(), SAY_HELLO, b"\x0a\x05dubbo").await;
    assert_eq!(reply.expect("SayHello").as_ref(), b"\x0a\x0bHello dubbo");
    host.control(&format!("set {GREETER} NOT_SERVING"));
    let err = raw_unary(channel.clone(), SAY_HELLO, b"\x0a\x05dubbo")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);

    const CHECK: &str = "/grpc.health.v1.Health/Check";
    for body in [&b"\x0a\x05ab"[..], b"\x0a\x02\xff\xfe", b"\x0b", b"\x80"] {
        let err = raw_unary(channel.clone(), CHECK, body).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{body:?}: {err}");
    }
    // Unknown fields around the name are skipped.
    let ok = raw_unary(channel.clone(), CHECK, b"\x10\x07\x0a\x00\x1a\x01x").await;
    assert_eq!(ok.expect("Check").as_ref(), b"\x08\x01");
    let err = raw_unary(channel.clone(), "/grpc.health.v1.Health/Nope", b"")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
}

#[tokio::test(flavor = "current_thread")]
async fn watch_streams_opened_and_cancelled_leave_check_fast() {
    let host = Host::start();
    let health = host.health().await;
    for _round in 0..3 {
        let mut streams = Vec::new();
        for _ in 0..300 {
            let mut h = health.clone();
            let request = HealthCheckRequest {
                service: GREETER.into(),
            };
            let mut stream = h.watch(request).await.expect("watch").into_inner();
            let first = stream.message().await.expect("message").expect("first");
            assert_eq!(first.status, SERVING);
            streams.push(stream);
        }
        drop(streams); // cancels every stream (RST_STREAM)
    }
    let mut h = health.clone();
    let t0 = Instant::now();
    let status = h
        .check(HealthCheckRequest {
            service: GREETER.into(),
        })
        .await
        .expect("check")
        .into_inner()
        .status;
    assert_eq!(status, SERVING);
    assert!(
        t0.elapsed() < Duration::from_millis(100),
        "{:?}",
        t0.elapsed()
    );
    assert!(host.finish().success());
}
