//! `grpc-health-probe` (installed by `ci/install-20-tonic.sh`; missing, these tests fail)
//! against a tonic host that mounts the service: its exit codes, plain and with `-gzip`.

mod common;

use std::{path::PathBuf, process::Command, sync::Arc};

use common::{TestRegistry, TIMEOUT};
use dubbo_health_core::ServingStatus;
use dubbo_health_tonic::HealthService;

fn probe() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("grpc-health-probe"))
        .find(|p| p.is_file());
    let go_bin =
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join("go/bin/grpc-health-probe"));
    on_path
        .or(go_bin.filter(|p| p.is_file()))
        .expect("grpc-health-probe is missing: run ci/install-20-tonic.sh")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn grpc_health_probe_exit_codes_plain_and_gzip() {
    let registry = Arc::new(TestRegistry::new());
    registry
        .set(
            "org.apache.dubbogo.samples.api.Greeter",
            ServingStatus::Serving,
        )
        .unwrap();
    registry.set("down", ServingStatus::NotServing).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(HealthService::new(Arc::clone(&registry)).server())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    // grpc-health-probe's exit codes: 0 SERVING, 3 RPC failed (NOT_FOUND), 4 not SERVING.
    for (service, want) in [
        ("", 0),
        ("org.apache.dubbogo.samples.api.Greeter", 0),
        ("down", 4),
        ("not.registered", 3),
    ] {
        for gzip in [false, true] {
            let mut cmd = Command::new(probe());
            cmd.arg(format!("-addr={addr}"))
                .arg(format!("-service={service}"))
                .arg("-rpc-timeout=5s");
            if gzip {
                cmd.arg("-gzip");
            }
            let output = tokio::time::timeout(
                TIMEOUT,
                tokio::task::spawn_blocking(move || cmd.output().unwrap()),
            )
            .await
            .expect("grpc-health-probe hung")
            .unwrap();
            assert_eq!(
                output.status.code(),
                Some(want),
                "service {service:?}, gzip {gzip}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}
