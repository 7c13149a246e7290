//! Helpers shared by the integration tests: a standalone server over a fresh registry, and
//! tonic clients for it.
#![allow(dead_code, unreachable_pub)]

use std::{sync::Arc, time::Duration};

use dubbo_health_core::{FixedRegistry, ServingStatus};
use dubbo_health_proto::pb::{
    health_client::HealthClient, HealthCheckRequest, HealthCheckResponse,
};
use dubbo_health_tonic::Standalone;
use tonic::{transport::Channel, Streaming};

/// Room for more than `LIST_LIMIT` names.
pub type TestRegistry = FixedRegistry<256>;

/// Every wait in these tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Server {
    pub registry: Arc<TestRegistry>,
    pub server: Option<Standalone>,
}

impl Server {
    pub fn start() -> Self {
        let registry = Arc::new(TestRegistry::new());
        let server = Standalone::start("127.0.0.1:0", Arc::clone(&registry)).expect("start server");
        Self {
            registry,
            server: Some(server),
        }
    }

    pub fn uri(&self) -> String {
        format!("http://{}", self.server.as_ref().unwrap().local_addr())
    }

    pub async fn channel(&self) -> Channel {
        tokio::time::timeout(TIMEOUT, Channel::from_shared(self.uri()).unwrap().connect())
            .await
            .expect("connect timed out")
            .expect("connect")
    }

    pub async fn client(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel().await)
    }

    pub fn set(&self, name: &str, status: ServingStatus) {
        self.registry.set(name, status).expect("set");
    }
}

pub fn request(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.into(),
    }
}

/// `Check` on `service`, which must succeed: its status.
pub async fn status_of(client: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    let response = tokio::time::timeout(TIMEOUT, client.check(request(service)))
        .await
        .expect("Check timed out")
        .expect("Check failed")
        .into_inner();
    ServingStatus::from_i32(response.status).expect("valid status")
}

/// Opens a Watch and returns it with its first message (sent at once by the server).
pub async fn watch(
    client: &mut HealthClient<Channel>,
    service: &str,
) -> (Streaming<HealthCheckResponse>, ServingStatus) {
    let mut stream = tokio::time::timeout(TIMEOUT, client.watch(request(service)))
        .await
        .expect("watch timed out")
        .expect("watch")
        .into_inner();
    let first = next(&mut stream).await.expect("first message");
    (stream, first)
}

/// The next status on a Watch stream, or `None` when it ended.
pub async fn next(stream: &mut Streaming<HealthCheckResponse>) -> Option<ServingStatus> {
    let message = tokio::time::timeout(TIMEOUT, stream.message())
        .await
        .expect("no Watch message in time")
        .expect("Watch stream failed")?;
    Some(ServingStatus::from_i32(message.status).expect("valid status"))
}
