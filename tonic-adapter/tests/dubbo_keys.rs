//! Dubbo exports and `""` derived from required services, over the wire: what a dubbo-go
//! consumer (Watch on the service key) and a Dubbo Java one (Check on the bare interface or
//! the `:0.0.0` key) see from a tonic client against the standalone server.

mod common;

use common::{next, request, status_of, watch, Server};
use dubbo_health_tonic::{service_key, KeyForm};
use tonic::Code;

use dubbo_health_core::ServingStatus::{NotServing, Serving};

const FOO: &str = "org.apache.Foo";

#[tokio::test]
async fn export_and_unexport_as_consumers_of_both_hosts_see_them() {
    let server = Server::start();
    let mut client = server.client().await;
    let go = service_key(FOO, "grp", "0.0.0", KeyForm::DubboGo).unwrap();
    let java = service_key(FOO, "grp", "0.0.0", KeyForm::DubboJava).unwrap();
    assert_eq!(
        (&*go, &*java),
        ("grp/org.apache.Foo", "grp/org.apache.Foo:0.0.0")
    );

    // A dubbo-go consumer watches its key before the provider exports it.
    let (mut key_watch, first) = watch(&mut client, &go).await;
    assert_eq!(first, dubbo_health_core::ServingStatus::ServiceUnknown);
    server.registry.require(FOO).unwrap();
    assert_eq!(status_of(&mut client, "").await, NotServing);

    server
        .registry
        .export(FOO, "grp", "0.0.0", Serving)
        .unwrap();
    assert_eq!(next(&mut key_watch).await, Some(Serving));
    assert_eq!(status_of(&mut client, &java).await, Serving);
    assert_eq!(status_of(&mut client, FOO).await, Serving);
    assert_eq!(status_of(&mut client, "").await, Serving);

    // A second export keeps the interface (and "") up while the first one goes.
    server
        .registry
        .export(FOO, "grp", "2.0.0", Serving)
        .unwrap();
    server.registry.unexport(FOO, "grp", "0.0.0").unwrap();
    assert_eq!(next(&mut key_watch).await, Some(NotServing));
    assert_eq!(status_of(&mut client, FOO).await, Serving);
    assert_eq!(status_of(&mut client, "").await, Serving);
    server.registry.unexport(FOO, "grp", "2.0.0").unwrap();
    assert_eq!(status_of(&mut client, FOO).await, NotServing);
    assert_eq!(status_of(&mut client, "").await, NotServing);

    // The required interface is invisible until registered, then Check finds it.
    server.registry.clear(FOO).unwrap();
    let err = client.check(request(FOO)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    server.set(FOO, Serving);
    assert_eq!(status_of(&mut client, "").await, Serving);
}
