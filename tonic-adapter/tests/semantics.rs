//! Every rule of the health semantics, over the wire with a tonic client against the
//! standalone server.

mod common;

use std::time::{Duration, Instant};

use common::{next, request, status_of, watch, Server, TIMEOUT};
use dubbo_health_core::{ServingStatus, LIST_LIMIT, MAX_NAME};
use dubbo_health_proto::pb::HealthListRequest;
use tonic::Code;

use ServingStatus::{NotServing, ServiceUnknown, Serving, Unknown};

const GREETER: &str = "org.apache.dubbogo.samples.api.Greeter";

#[tokio::test]
async fn check_answers_known_names_and_not_found_for_unknown_or_cleared() {
    let server = Server::start();
    let mut client = server.client().await;

    let root = client.check(request("")).await.unwrap().into_inner();
    assert_eq!(root.status, Serving.as_i32(), "\"\" starts SERVING");

    let err = client.check(request(GREETER)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    server.set(GREETER, NotServing);
    assert_eq!(status_of(&mut client, GREETER).await, NotServing);
    server.set(GREETER, Serving);
    assert_eq!(status_of(&mut client, GREETER).await, Serving);
    server.set(GREETER, Unknown);
    assert_eq!(status_of(&mut client, GREETER).await, Unknown);

    assert!(server.registry.clear(GREETER).unwrap());
    assert_eq!(
        client.check(request(GREETER)).await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn watch_sends_current_status_at_once_then_each_change() {
    let server = Server::start();
    server.set(GREETER, Serving);
    let mut client = server.client().await;

    let (mut stream, first) = watch(&mut client, GREETER).await;
    assert_eq!(first, Serving);

    server.set(GREETER, NotServing);
    assert_eq!(next(&mut stream).await, Some(NotServing));
    server.set(GREETER, Serving);
    assert_eq!(next(&mut stream).await, Some(Serving));
}

#[tokio::test]
async fn watch_on_unknown_name_follows_register_clear_register() {
    let server = Server::start();
    let mut client = server.client().await;

    let (mut stream, first) = watch(&mut client, GREETER).await;
    assert_eq!(
        first, ServiceUnknown,
        "an unregistered name is SERVICE_UNKNOWN, and the call stays open"
    );

    server.set(GREETER, NotServing);
    assert_eq!(next(&mut stream).await, Some(NotServing));
    server.registry.clear(GREETER).unwrap();
    assert_eq!(next(&mut stream).await, Some(ServiceUnknown));
    server.set(GREETER, Serving);
    assert_eq!(next(&mut stream).await, Some(Serving));
}

#[tokio::test]
async fn watch_never_repeats_a_status() {
    let server = Server::start();
    server.set(GREETER, Serving);
    let mut client = server.client().await;
    let (mut stream, first) = watch(&mut client, GREETER).await;
    assert_eq!(first, Serving);

    // Setting the same status again is not a change: nothing is sent for it, so the next
    // message is the real change.
    server.set(GREETER, Serving);
    server.set(GREETER, Serving);
    server.set(GREETER, NotServing);
    assert_eq!(next(&mut stream).await, Some(NotServing));
}

#[tokio::test]
async fn watch_latest_wins_under_a_burst() {
    let server = Server::start();
    server.set(GREETER, Serving);
    let mut client = server.client().await;
    let (mut stream, first) = watch(&mut client, GREETER).await;
    assert_eq!(first, Serving);

    for i in 0..1000 {
        server.set(GREETER, if i % 2 == 0 { NotServing } else { Serving });
    }
    server.set(GREETER, Unknown);
    // End the streams after what is pending: whatever follows UNKNOWN would show up here.
    server.registry.end_watches();

    let mut seen = vec![first];
    while let Some(status) = next(&mut stream).await {
        seen.push(status);
    }
    assert_eq!(
        seen.last(),
        Some(&Unknown),
        "the final status is delivered last: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] != w[1]),
        "two equal messages in a row: {seen:?}"
    );
    assert!(seen.len() <= 1002);
}

#[tokio::test]
async fn shutdown_sends_not_serving_to_every_watcher_and_ignores_sets_until_resume() {
    let server = Server::start();
    server.set(GREETER, Serving);
    server.set("group/org.apache.Foo:1.0.0", NotServing);
    let mut client = server.client().await;

    let (mut root, s) = watch(&mut client, "").await;
    assert_eq!(s, Serving);
    let (mut greeter, s) = watch(&mut client, GREETER).await;
    assert_eq!(s, Serving);
    let (mut foo, s) = watch(&mut client, "group/org.apache.Foo:1.0.0").await;
    assert_eq!(s, NotServing);
    let (mut unknown, s) = watch(&mut client, "not.registered").await;
    assert_eq!(s, ServiceUnknown);

    server.registry.shutdown();
    assert_eq!(next(&mut root).await, Some(NotServing));
    assert_eq!(next(&mut greeter).await, Some(NotServing));
    assert_eq!(status_of(&mut client, GREETER).await, NotServing);

    // Later sets are ignored (reported to the caller, not an error).
    assert_eq!(
        server.registry.set(GREETER, Serving),
        Ok(dubbo_health_core::SetOutcome::Ignored)
    );
    assert_eq!(status_of(&mut client, GREETER).await, NotServing);

    server.registry.resume();
    assert_eq!(next(&mut root).await, Some(Serving));
    assert_eq!(next(&mut greeter).await, Some(Serving));
    assert_eq!(next(&mut foo).await, Some(Serving));
    assert_eq!(status_of(&mut client, "").await, Serving);

    // The unknown-name watcher saw nothing of it, and still follows a registration.
    server.set("not.registered", NotServing);
    assert_eq!(next(&mut unknown).await, Some(NotServing));
}

#[tokio::test]
async fn list_answers_every_name_up_to_the_limit() {
    let server = Server::start();
    let mut client = server.client().await;
    server.set(GREETER, Serving);
    server.set("group/org.apache.Foo:1.0.0", NotServing);

    let list = client
        .list(HealthListRequest {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<(&str, i32)> = list
        .statuses
        .iter()
        .map(|(k, v)| (k.as_str(), v.status))
        .collect();
    assert_eq!(
        names,
        [("", 1), ("group/org.apache.Foo:1.0.0", 2), (GREETER, 1)],
        "every registered name with its status"
    );

    // Exactly LIST_LIMIT names is fine ...
    for i in server.registry.len()..LIST_LIMIT {
        server.set(&format!("svc-{i:03}-{}", "n".repeat(150)), Serving);
    }
    assert_eq!(server.registry.len(), LIST_LIMIT);
    let list = client
        .list(HealthListRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.statuses.len(), LIST_LIMIT);
    assert!(list
        .statuses
        .values()
        .all(|v| v.status == 1 || v.status == 2));

    // ... one more is RESOURCE_EXHAUSTED, as grpc-go answers.
    server.set("one-too-many", Serving);
    let err = client.list(HealthListRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);

    server.registry.clear("one-too-many").unwrap();
    assert_eq!(
        client
            .list(HealthListRequest {})
            .await
            .unwrap()
            .into_inner()
            .statuses
            .len(),
        LIST_LIMIT
    );
}

#[tokio::test]
async fn names_up_to_200_bytes_work_and_longer_are_invalid_argument() {
    let server = Server::start();
    let mut client = server.client().await;

    let longest = "é".repeat(MAX_NAME / 2); // 200 bytes of UTF-8
    assert_eq!(longest.len(), MAX_NAME);
    server.set(&longest, Serving);
    assert_eq!(status_of(&mut client, &longest).await, Serving);
    let (_stream, first) = watch(&mut client, &longest).await;
    assert_eq!(first, Serving);

    let too_long = "x".repeat(MAX_NAME + 1);
    let err = client.check(request(&too_long)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("201"), "{}", err.message());
    let err = client.watch(request(&too_long)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // The server is still answering.
    assert_eq!(status_of(&mut client, "").await, Serving);
}

#[tokio::test]
async fn dubbo_service_keys_and_utf8_names_are_plain_names() {
    let server = Server::start();
    let mut client = server.client().await;
    let names = [
        "group/org.apache.Foo:1.0.0",
        "org.apache.dubbo.demo.DemoService:2.0.0",
        "dubbo/org.apache.dubbogo.samples.api.Greeter:v1",
        "健康检查服务",
        "naïve service with spaces",
        "emoji 🚀",
    ];
    for (i, name) in names.iter().enumerate() {
        server.set(name, if i % 2 == 0 { Serving } else { NotServing });
    }
    for (i, name) in names.iter().enumerate() {
        let want = if i % 2 == 0 { Serving } else { NotServing };
        assert_eq!(
            client
                .check(request(name))
                .await
                .unwrap()
                .into_inner()
                .status,
            want.as_i32(),
            "{name}"
        );
        let (_s, first) = watch(&mut client, name).await;
        assert_eq!(first, want, "{name}");
    }
    let list = client
        .list(HealthListRequest {})
        .await
        .unwrap()
        .into_inner();
    for name in names {
        assert!(list.statuses.contains_key(name), "{name} missing from List");
    }
    // A near miss is a different name.
    assert_eq!(
        client
            .check(request("group/org.apache.Foo:1.0.1"))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn stop_drains_watchers_and_is_not_held_up_by_open_watches() {
    let mut server = Server::start();
    server.set(GREETER, Serving);
    let mut client = server.client().await;
    let (mut greeter, s) = watch(&mut client, GREETER).await;
    assert_eq!(s, Serving);
    let (mut unknown, s) = watch(&mut client, "never.registered").await;
    assert_eq!(s, ServiceUnknown);

    let standalone = server.server.take().unwrap();
    let started = Instant::now();
    let stop = tokio::task::spawn_blocking(move || standalone.stop(Duration::from_secs(30)));

    // Watchers see NOT_SERVING before their stream ends, the unknown-name watcher too.
    assert_eq!(next(&mut greeter).await, Some(NotServing));
    assert_eq!(next(&mut greeter).await, None);
    assert_eq!(next(&mut unknown).await, Some(NotServing));
    assert_eq!(next(&mut unknown).await, None);

    tokio::time::timeout(TIMEOUT, stop)
        .await
        .expect("stop timed out")
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stop waited {:?}",
        started.elapsed()
    );
    // Stopping one server drains that server only: the registry is as it was.
    assert_eq!(server.registry.get(GREETER), Some(Serving));
}

#[tokio::test]
async fn dropping_a_standalone_closes_its_port() {
    let mut server = Server::start();
    let addr = server.server.as_ref().unwrap().local_addr();
    assert_eq!(
        server
            .client()
            .await
            .check(request(""))
            .await
            .unwrap()
            .into_inner()
            .status,
        Serving.as_i32()
    );
    drop(server.server.take());
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "port still open after drop"
    );
    // Dropping does not drain: the registry is as the host left it.
    assert_eq!(server.registry.get(""), Some(Serving));
}

#[tokio::test]
async fn serve_runs_on_the_callers_runtime() {
    use std::sync::Arc;
    let registry = Arc::new(common::TestRegistry::new());
    registry.set(GREETER, NotServing).unwrap();
    // `serve` takes an address; find a free port first.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let serving = tokio::spawn(dubbo_health_tonic::serve(addr, Arc::clone(&registry)));
    let deadline = Instant::now() + TIMEOUT;
    let channel = loop {
        match tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
        {
            Ok(c) => break c,
            Err(e) if Instant::now() > deadline => panic!("serve never listened: {e}"),
            Err(_) => tokio::task::yield_now().await,
        }
    };
    let mut client = dubbo_health_proto::pb::health_client::HealthClient::new(channel);
    assert_eq!(status_of(&mut client, GREETER).await, NotServing);
    serving.abort();
}
