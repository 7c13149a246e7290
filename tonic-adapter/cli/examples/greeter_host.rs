//! A host serving its own `org.apache.dubbogo.samples.api.Greeter` plus
//! `grpc.health.v1.Health` on one port, flipping the Greeter's health every few seconds (as
//! a host would while it reloads or drains).
//!
//! ```text
//! cargo run -p dubbo-health-cli --example greeter_host -- --addr 127.0.0.1:20000
//! grpc-health-probe -addr=127.0.0.1:20000 -service org.apache.dubbogo.samples.api.Greeter
//! ```
//!
//! While the Greeter is NOT_SERVING its `SayHello` answers UNAVAILABLE. Server reflection is
//! on, so `grpcurl -plaintext 127.0.0.1:20000 list` works too. The probe layer answers
//! Kubernetes' HTTP probes and the JSON Check on the same port (HTTP/1.1 is on for them):
//! `curl -f http://127.0.0.1:20000/ready`.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use clap::Parser;
use dubbo_health_core::{FixedRegistry, ServingStatus};
use dubbo_health_tonic::{
    probe::{ProbeLayer, Probes},
    HealthService,
};
use tonic::{
    server::{Grpc, NamedService, UnaryService},
    Request, Response, Status,
};

const GREETER: &str = "org.apache.dubbogo.samples.api.Greeter";

static HEALTH: FixedRegistry<1024> = FixedRegistry::new();

#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: std::net::SocketAddr,
    /// Seconds between Greeter health flips.
    #[arg(long, default_value_t = 5.0)]
    flip_every: f64,
    /// Stop after this many flips (default: run until interrupted).
    #[arg(long)]
    flips: Option<u64>,
    /// Take statuses from stdin instead of flipping on a timer (`set NAME STATUS`, `clear NAME`,
    /// `toggle NAME`, `shutdown`, `resume`; see `dubbo_health_cli::control`). End of stdin
    /// drains and stops the host.
    #[arg(long)]
    control_stdin: bool,
}

/// `HelloRequest { string name = 1; }`
#[derive(Clone, PartialEq, prost::Message)]
struct HelloRequest {
    #[prost(string, tag = "1")]
    name: String,
}

/// `HelloReply { string message = 1; }`
#[derive(Clone, PartialEq, prost::Message)]
struct HelloReply {
    #[prost(string, tag = "1")]
    message: String,
}

/// The host's own service: one unary method, `SayHello`.
#[derive(Clone, Debug)]
struct Greeter;

impl NamedService for Greeter {
    const NAME: &'static str = GREETER;
}

impl UnaryService<HelloRequest> for Greeter {
    type Response = HelloReply;
    type Future = std::future::Ready<Result<Response<HelloReply>, Status>>;

    fn call(&mut self, request: Request<HelloRequest>) -> Self::Future {
        std::future::ready(if HEALTH.get(GREETER) == Some(ServingStatus::Serving) {
            Ok(Response::new(HelloReply {
                message: format!("Hello {}", request.get_ref().name),
            }))
        } else {
            Err(Status::unavailable("Greeter is not serving"))
        })
    }
}

impl<B> tower_service::Service<http::Request<B>> for Greeter
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        Box::pin(async move {
            if req.uri().path() == "/org.apache.dubbogo.samples.api.Greeter/SayHello" {
                let mut grpc = Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(Greeter, req).await)
            } else {
                Ok(Status::unimplemented("unknown method").into_http())
            }
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    HEALTH.set(GREETER, ServingStatus::Serving)?;

    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    println!("listening {addr}");
    println!("try: grpc-health-probe -addr={addr} -service {GREETER}");

    let flip_every = Duration::try_from_secs_f64(args.flip_every)?;
    let flips = args.flips;
    let control_stdin = args.control_stdin;
    let flipper = async move {
        if control_stdin {
            // The host's own operator decides; stop when they close stdin.
            dubbo_health_cli::control::run_stdin(&HEALTH).await;
            return;
        }
        let mut done = 0;
        while flips.is_none_or(|n| done < n) {
            tokio::time::sleep(flip_every).await;
            let next = match HEALTH.get(GREETER) {
                Some(ServingStatus::Serving) => ServingStatus::NotServing,
                _ => ServingStatus::Serving,
            };
            HEALTH.set(GREETER, next).ok();
            println!("{GREETER} is now {next}");
            done += 1;
        }
    };

    let health = HealthService::new(&HEALTH);
    let probes = Probes::new(&HEALTH);
    let state = probes.state().clone();
    state.mark_started(); // listening: /startup says 200
    dubbo_health_tonic::server_builder()
        .accept_http1(true)
        .layer(ProbeLayer::new(probes))
        .add_service(health.server())
        .add_service(dubbo_health_tonic::reflection::v1())
        .add_service(dubbo_health_tonic::reflection::v1alpha())
        .add_service(Greeter)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            // Drain on the way out: every open Watch hears NOT_SERVING and ends, so the
            // graceful stop is not held up by them.
            health.drain_after(async {
                tokio::select! {
                    () = flipper => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                state.mark_stopping(); // /ready says 503 from here on
            }),
        )
        .await?;
    Ok(())
}
