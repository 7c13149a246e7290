//! The service mounted on a plain tonic host, as a user mounts it: its drain on the host's
//! stop path, a Watch's `grpc-timeout`, and two mounts over one registry.

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use common::{next, request, status_of, watch, TestRegistry, TIMEOUT};
use dubbo_health_core::ServingStatus::{NotServing, ServiceUnknown, Serving};
use dubbo_health_proto::pb::{health_client::HealthClient, HealthListRequest};
use dubbo_health_tonic::HealthService;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{transport::Channel, Code};

const GREETER: &str = "org.apache.dubbogo.samples.api.Greeter";

/// A tonic host serving the health service (and reflection) as the README shows, stopped
/// through `serve_with_shutdown(.., health.drain_after(..))`.
struct Host {
    addr: std::net::SocketAddr,
    health: HealthService<Arc<TestRegistry>>,
    stop: Option<oneshot::Sender<()>>,
    serving: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl Host {
    async fn start(registry: &Arc<TestRegistry>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let health = HealthService::new(Arc::clone(registry));
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health.server())
                .add_service(dubbo_health_tonic::reflection::v1())
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    health.drain_after(async {
                        stopped.await.ok();
                    }),
                ),
        );
        Self {
            addr,
            health,
            stop: Some(stop),
            serving: Some(serving),
        }
    }

    async fn client(&self) -> HealthClient<Channel> {
        let channel = tokio::time::timeout(
            TIMEOUT,
            Channel::from_shared(format!("http://{}", self.addr))
                .unwrap()
                .connect(),
        )
        .await
        .expect("connect timed out")
        .expect("connect");
        HealthClient::new(channel)
    }

    /// Stops the host and waits for `serve_with_shutdown` to return: how long it took.
    async fn stop(&mut self) -> Duration {
        let started = Instant::now();
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(TIMEOUT, self.serving.take().unwrap())
            .await
            .expect("the host's graceful stop hung")
            .unwrap()
            .unwrap();
        started.elapsed()
    }
}

#[tokio::test]
async fn drain_after_ends_this_mounts_watches_and_nothing_else() {
    let registry = Arc::new(TestRegistry::new());
    registry.set(GREETER, Serving).unwrap();
    registry.set("already.down", NotServing).unwrap();
    let mut first = Host::start(&registry).await;
    let second = Host::start(&registry).await;

    let mut a = first.client().await;
    let (mut greeter, s) = watch(&mut a, GREETER).await;
    assert_eq!(s, Serving);
    let (mut unknown, s) = watch(&mut a, "never.registered").await;
    assert_eq!(s, ServiceUnknown);
    let (mut down, s) = watch(&mut a, "already.down").await;
    assert_eq!(s, NotServing);
    let mut b = second.client().await;
    let (mut other, s) = watch(&mut b, GREETER).await;
    assert_eq!(s, Serving);

    let took = first.stop().await;
    assert!(
        took < Duration::from_secs(5),
        "open Watches held the host's stop up for {took:?}"
    );

    // Each watcher of the stopped mount hears NOT_SERVING, then its stream ends with OK.
    assert_eq!(next(&mut greeter).await, Some(NotServing));
    assert_eq!(next(&mut greeter).await, None);
    assert_eq!(next(&mut unknown).await, Some(NotServing));
    assert_eq!(next(&mut unknown).await, None);
    // Its last message was NOT_SERVING already: it just ends.
    assert_eq!(next(&mut down).await, None);
    assert!(
        tokio::net::TcpStream::connect(first.addr).await.is_err(),
        "the stopped host still listens"
    );

    // The registry was not drained ...
    assert_eq!(registry.get(GREETER), Some(Serving));
    assert_eq!(registry.get(""), Some(Serving));
    // ... and the other mount goes on: its watcher follows changes, its Check answers.
    registry.set(GREETER, NotServing).unwrap();
    assert_eq!(next(&mut other).await, Some(NotServing));
    assert_eq!(status_of(&mut b, GREETER).await, NotServing);
    assert!(!second.health.drain().is_draining());
}

#[tokio::test]
async fn a_watch_opened_after_the_drain_began_gets_not_serving_and_ends() {
    let registry = Arc::new(TestRegistry::new());
    registry.set(GREETER, Serving).unwrap();
    let host = Host::start(&registry).await;
    let mut client = host.client().await;
    // The drain begins while the host still takes calls (as between the stop signal and
    // GOAWAY): new Watch streams are answered NOT_SERVING and ended at once.
    host.health.drain().start();
    let (mut stream, first) = watch(&mut client, GREETER).await;
    assert_eq!(first, NotServing);
    assert_eq!(next(&mut stream).await, None);
    // Check and List still answer from the registry, which is untouched.
    assert_eq!(status_of(&mut client, GREETER).await, Serving);
    let list = client
        .list(HealthListRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.statuses.len(), 2);
}

#[tokio::test]
async fn registry_shutdown_and_drain_together_send_one_not_serving() {
    let registry = Arc::new(TestRegistry::new());
    registry.set(GREETER, Serving).unwrap();
    let mut host = Host::start(&registry).await;
    let mut client = host.client().await;
    let (mut stream, first) = watch(&mut client, GREETER).await;
    assert_eq!(first, Serving);
    // The CLI's SIGTERM order: the registry drain, then the server's.
    registry.shutdown();
    assert_eq!(next(&mut stream).await, Some(NotServing));
    host.stop().await;
    assert_eq!(
        next(&mut stream).await,
        None,
        "a second NOT_SERVING in a row"
    );
    assert_eq!(registry.get(GREETER), Some(NotServing));
}

#[tokio::test]
async fn a_watch_ends_with_deadline_exceeded_at_its_grpc_timeout() {
    let registry = Arc::new(TestRegistry::new());
    registry.set(GREETER, Serving).unwrap();
    let host = Host::start(&registry).await;
    let mut client = host.client().await;

    let mut req = tonic::Request::new(request(GREETER));
    // tonic's client only sends the header; it never cancels on its own, so the server
    // must end the stream.
    req.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let mut stream = client.watch(req).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.status, Serving.as_i32());
    registry.set(GREETER, NotServing).unwrap();
    let second = stream.message().await.unwrap().unwrap();
    assert_eq!(second.status, NotServing.as_i32());
    let err = tokio::time::timeout(TIMEOUT, stream.message())
        .await
        .expect("the Watch outlived its grpc-timeout")
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(5),
        "ended after {took:?}"
    );

    // Without the header a Watch stays open.
    let (mut open, s) = watch(&mut client, GREETER).await;
    assert_eq!(s, NotServing);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), open.message())
            .await
            .is_err(),
        "a Watch without grpc-timeout ended"
    );
    // A Check with a grpc-timeout answers as usual.
    let mut req = tonic::Request::new(request(GREETER));
    req.set_timeout(Duration::from_millis(300));
    assert_eq!(
        client.check(req).await.unwrap().into_inner().status,
        NotServing.as_i32()
    );
}

#[tokio::test]
async fn the_mount_serves_check_watch_list_and_gzip_like_the_standalone_server() {
    use tonic::codec::CompressionEncoding;
    let registry = Arc::new(TestRegistry::new());
    registry.set(GREETER, NotServing).unwrap();
    let host = Host::start(&registry).await;
    let mut client = host.client().await;
    assert_eq!(status_of(&mut client, GREETER).await, NotServing);
    assert_eq!(
        client.check(request("nope")).await.unwrap_err().code(),
        Code::NotFound
    );
    let list = client
        .list(HealthListRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.statuses[GREETER].status, NotServing.as_i32());
    let mut gzip = client.clone().send_compressed(CompressionEncoding::Gzip);
    assert_eq!(status_of(&mut gzip, "").await, Serving);
    let (mut stream, first) = watch(&mut gzip, GREETER).await;
    assert_eq!(first, NotServing);
    registry.set(GREETER, Serving).unwrap();
    assert_eq!(next(&mut stream).await, Some(Serving));
}
