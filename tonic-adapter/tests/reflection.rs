//! Server reflection with the real `grpcurl` (installed by `ci/install-20-tonic.sh`; a
//! missing grpcurl fails these tests), against a tonic host that mounts the health service
//! and `reflection::v1()` / `v1alpha()`.

mod common;

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Command, Output},
    sync::Arc,
};

use common::{TestRegistry, TIMEOUT};
use dubbo_health_core::ServingStatus;
use dubbo_health_tonic::{reflection, HealthService};
use tokio::net::TcpListener;

/// `grpcurl` from `$GRPCURL`, `$PATH` or `~/go/bin` (where `go install` puts it).
fn grpcurl() -> PathBuf {
    if let Some(path) = std::env::var_os("GRPCURL") {
        return path.into();
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("grpcurl"))
        .find(|p| p.is_file());
    let go_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join("go/bin/grpcurl"));
    on_path
        .or(go_bin.filter(|p| p.is_file()))
        .expect("grpcurl is missing: run ci/install-20-tonic.sh")
}

/// Runs grpcurl with `args` (bounded by `-max-time`), off the runtime's threads.
async fn run(args: Vec<String>) -> Output {
    let grpcurl = grpcurl();
    tokio::time::timeout(
        TIMEOUT,
        tokio::task::spawn_blocking(move || {
            Command::new(&grpcurl)
                .args(["-max-time", "5"])
                .args(&args)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", grpcurl.display()))
        }),
    )
    .await
    .expect("grpcurl hung")
    .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "grpcurl failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

enum Versions {
    Both,
    V1alphaOnly,
}

/// A tonic host with the health service and reflection, until the test ends.
async fn host(registry: &Arc<TestRegistry>, versions: Versions) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let health = HealthService::new(Arc::clone(registry));
    let router = tonic::transport::Server::builder().add_service(health.server());
    let router = match versions {
        Versions::Both => router
            .add_service(reflection::v1())
            .add_service(reflection::v1alpha()),
        Versions::V1alphaOnly => router.add_service(reflection::v1alpha()),
    };
    tokio::spawn(
        router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

fn args(addr: SocketAddr, rest: &[&str]) -> Vec<String> {
    let mut out = vec!["-plaintext".to_owned()];
    out.extend(rest.iter().map(|s| s.replace("ADDR", &addr.to_string())));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn grpcurl_lists_describes_and_calls_check() {
    let registry = Arc::new(TestRegistry::new());
    registry
        .set(
            "org.apache.dubbogo.samples.api.Greeter",
            ServingStatus::NotServing,
        )
        .unwrap();
    let addr = host(&registry, Versions::Both).await;

    let list = stdout(&run(args(addr, &["ADDR", "list"])).await);
    let services: Vec<&str> = list.lines().collect();
    assert!(services.contains(&"grpc.health.v1.Health"), "{list}");
    assert!(
        services.contains(&"grpc.reflection.v1.ServerReflection"),
        "{list}"
    );

    let describe = stdout(&run(args(addr, &["ADDR", "describe", "grpc.health.v1.Health"])).await);
    assert!(
        describe.contains("grpc.health.v1.Health is a service"),
        "{describe}"
    );
    for rpc in [
        "rpc Check ( .grpc.health.v1.HealthCheckRequest ) returns ( .grpc.health.v1.HealthCheckResponse );",
        "rpc List ( .grpc.health.v1.HealthListRequest ) returns ( .grpc.health.v1.HealthListResponse );",
        "rpc Watch ( .grpc.health.v1.HealthCheckRequest ) returns ( stream .grpc.health.v1.HealthCheckResponse );",
    ] {
        assert!(describe.contains(rpc), "{rpc} missing from:\n{describe}");
    }
    let message = stdout(
        &run(args(
            addr,
            &["ADDR", "describe", "grpc.health.v1.HealthCheckResponse"],
        ))
        .await,
    );
    assert!(message.contains("SERVICE_UNKNOWN = 3;"), "{message}");

    let check = stdout(
        &run(args(
            addr,
            &[
                "-d",
                r#"{"service":""}"#,
                "ADDR",
                "grpc.health.v1.Health/Check",
            ],
        ))
        .await,
    );
    assert!(check.contains(r#""status": "SERVING""#), "{check}");
    let check = stdout(
        &run(args(
            addr,
            &[
                "-d",
                r#"{"service":"org.apache.dubbogo.samples.api.Greeter"}"#,
                "ADDR",
                "grpc.health.v1.Health/Check",
            ],
        ))
        .await,
    );
    assert!(check.contains(r#""status": "NOT_SERVING""#), "{check}");

    // An unknown name is NOT_FOUND, which grpcurl reports with a failing exit.
    let missing = run(args(
        addr,
        &[
            "-d",
            r#"{"service":"nope"}"#,
            "ADDR",
            "grpc.health.v1.Health/Check",
        ],
    ))
    .await;
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("NotFound"), "{stderr}");

    let list = stdout(&run(args(addr, &["ADDR", "grpc.health.v1.Health/List"])).await);
    assert!(
        list.contains("org.apache.dubbogo.samples.api.Greeter"),
        "{list}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn grpcurl_falls_back_to_v1alpha() {
    let registry = Arc::new(TestRegistry::new());
    let addr = host(&registry, Versions::V1alphaOnly).await;
    let list = stdout(&run(args(addr, &["ADDR", "list"])).await);
    assert!(list.lines().any(|l| l == "grpc.health.v1.Health"), "{list}");
    let check = stdout(
        &run(args(
            addr,
            &[
                "-d",
                r#"{"service":""}"#,
                "ADDR",
                "grpc.health.v1.Health/Check",
            ],
        ))
        .await,
    );
    assert!(check.contains(r#""status": "SERVING""#), "{check}");
}

/// `reflection::service()`, the one tower service for a server's fallback route, answers
/// both versions by path and nothing else.
#[tokio::test]
async fn the_routing_service_answers_both_versions() {
    use http_body_util::BodyExt;
    use prost::Message;
    use tower::ServiceExt;

    fn framed(message: &impl Message) -> bytes::Bytes {
        let bytes = message.encode_to_vec();
        let mut out = vec![0];
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(&bytes);
        out.into()
    }

    async fn call(path: &str, body: bytes::Bytes) -> (http::HeaderMap, Vec<u8>) {
        let request = http::Request::post(path)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(http_body_util::Full::new(body))
            .unwrap();
        let response = reflection::service().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let collected = tokio::time::timeout(TIMEOUT, body.collect())
            .await
            .unwrap()
            .unwrap();
        let mut headers = parts.headers;
        if let Some(trailers) = collected.trailers() {
            headers.extend(trailers.clone());
        }
        (headers, collected.to_bytes().to_vec())
    }

    use tonic_reflection::pb::{v1, v1alpha};
    let (headers, body) = call(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        framed(&v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
        }),
    )
    .await;
    assert_eq!(headers["grpc-status"], "0");
    let response = v1::ServerReflectionResponse::decode(&body[5..]).unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("not a list: {response:?}")
    };
    assert!(list
        .service
        .iter()
        .any(|s| s.name == "grpc.health.v1.Health"));

    let (headers, body) = call(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        framed(&v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                    "grpc.health.v1.Health".into(),
                ),
            ),
        }),
    )
    .await;
    assert_eq!(headers["grpc-status"], "0");
    let response = v1alpha::ServerReflectionResponse::decode(&body[5..]).unwrap();
    assert!(
        matches!(
            response.message_response,
            Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
        ),
        "{response:?}"
    );

    let (headers, _) = call("/grpc.health.v1.Health/Check", framed(&())).await;
    assert_eq!(headers["grpc-status"], "12");
}
