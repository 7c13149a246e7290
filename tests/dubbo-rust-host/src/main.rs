//! A dubbo-rust triple server (crate `dubbo` 0.4) serving its own
//! `org.apache.dubbogo.samples.api.Greeter` and, beside it, `grpc.health.v1.Health` from
//! dubbo-health, mounted through [`dubbo_health_dubbo_rust::health_service`].
//!
//! ```text
//! dubbo-rust-host --addr 127.0.0.1:20000 [--control-stdin]
//! grpc-health-probe -addr=127.0.0.1:20000 -service org.apache.dubbogo.samples.api.Greeter
//! ```
//!
//! Prints `listening ADDR` on stderr once the server accepts connections. With
//! `--control-stdin` it takes `set NAME STATUS`, `clear NAME`, `toggle NAME`, `shutdown`,
//! `resume` lines on stdin (see `dubbo_health_cli::control`); end of stdin, or Ctrl-C
//! without it, drains (every service NOT_SERVING, Watch streams end) and stops. While the
//! Greeter is not SERVING its `SayHello` answers UNAVAILABLE.

use std::{
    convert::Infallible,
    error::Error,
    future::Future,
    net::{SocketAddr, TcpListener},
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use clap::Parser;
use dubbo::{
    codegen::{Request, Response, TripleServer},
    status::{Code, Status},
    triple::transport::DubboServer,
    BoxBody,
};
use dubbo_health_core::{FixedRegistry, ServingStatus};
use dubbo_health_dubbo_rust::{health_service, SERVICE_NAME};
use dubbo_health_tonic::HealthService;
use tokio::{sync::watch, task::JoinHandle};

const GREETER: &str = "org.apache.dubbogo.samples.api.Greeter";

static HEALTH: FixedRegistry<1024> = FixedRegistry::new();

/// How long the drain leaves open connections to send their last frames.
const FLUSH_DELAY: Duration = Duration::from_millis(200);

#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on (port 0: a free port picked here, as dubbo-rust cannot report one).
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: SocketAddr,
    /// Take statuses from stdin (`set NAME STATUS`, `clear NAME`, `toggle NAME`, `shutdown`,
    /// `resume`); end of stdin drains and stops.
    #[arg(long)]
    control_stdin: bool,
}

/// `HelloRequest { string name = 1; }`, as dubbo-build generates it (prost + serde, for the
/// protobuf and JSON codecs of dubbo-rust).
#[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
struct HelloRequest {
    #[prost(string, tag = "1")]
    name: String,
}

/// `HelloReply { string message = 1; }`
#[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
struct HelloReply {
    #[prost(string, tag = "1")]
    message: String,
}

/// `SayHello` as a dubbo-rust unary method.
#[derive(Clone, Copy, Debug)]
struct SayHello;

impl tower_service::Service<Request<HelloRequest>> for SayHello {
    type Response = Response<HelloReply>;
    type Error = Status;
    type Future = std::future::Ready<Result<Response<HelloReply>, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<HelloRequest>) -> Self::Future {
        std::future::ready(if HEALTH.get(GREETER) == Some(ServingStatus::Serving) {
            Ok(Response::new(HelloReply {
                message: format!("Hello {}", request.into_inner().name),
            }))
        } else {
            Err(Status::new(
                Code::Unavailable,
                "Greeter is not serving".to_string(),
            ))
        })
    }
}

/// The Greeter service as dubbo-rust mounts services: routed here by its path prefix.
#[derive(Clone, Copy, Debug)]
struct GreeterServer;

impl tower_service::Service<http02::Request<hyper::Body>> for GreeterServer {
    type Response = http02::Response<BoxBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http02::Request<hyper::Body>) -> Self::Future {
        Box::pin(async move {
            if req.uri().path() == "/org.apache.dubbogo.samples.api.Greeter/SayHello" {
                let mut server = TripleServer::<HelloRequest, HelloReply>::new();
                Ok(server.unary(SayHello, req).await)
            } else {
                Ok(Status::new(Code::Unimplemented, "unknown method".to_string()).to_http())
            }
        })
    }
}

type ServeResult = Result<(), Box<dyn Error + Send + Sync>>;

/// A port nobody listens on right now.
fn free_port(ip: std::net::IpAddr) -> std::io::Result<SocketAddr> {
    TcpListener::bind((ip, 0))?.local_addr()
}

/// Starts dubbo-rust's server on `addr` (a free port for port 0) and returns once it accepts
/// connections.
async fn start(
    addr: SocketAddr,
    stop: &watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<ServeResult>), Box<dyn Error + Send + Sync>> {
    for _ in 0..5 {
        let bind = if addr.port() == 0 {
            free_port(addr.ip())?
        } else {
            addr
        };
        let mut stop = stop.clone();
        let server = DubboServer::new()
            .with_listener("tcp".to_string())
            .add_service(
                SERVICE_NAME.to_string(),
                health_service(&HealthService::new(&HEALTH)),
            )
            .add_service(GREETER.to_string(), GreeterServer);
        let task = tokio::spawn(server.serve_with_graceful(bind, async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        }));
        for _ in 0..500 {
            if task.is_finished() {
                break;
            }
            if tokio::net::TcpStream::connect(bind).await.is_ok() {
                return Ok((bind, task));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        match task.await? {
            // Another process took the free port first: pick again.
            Err(e) if addr.port() == 0 => eprintln!("bind {bind}: {e}; trying another port"),
            Err(e) => return Err(e),
            Ok(()) => return Err("the server stopped before it accepted a connection".into()),
        }
    }
    Err(format!("no free port found for {addr}").into())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let args = Args::parse();
    HEALTH.set(GREETER, ServingStatus::Serving)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (addr, server) = start(args.addr, &stop_rx).await?;
    eprintln!("listening {addr}");

    if args.control_stdin {
        dubbo_health_cli::control::run_stdin(&HEALTH).await;
    } else {
        tokio::signal::ctrl_c().await?;
    }
    // Drain: every watcher hears NOT_SERVING, Watch streams end, then the server stops.
    HEALTH.shutdown();
    HEALTH.end_watches();
    // dubbo-rust's graceful stop only stops accepting: connections end with the process. Give
    // them a moment to send the ended streams' last messages and trailers.
    tokio::time::sleep(FLUSH_DELAY).await;
    stop_tx.send_replace(true);
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(joined) => joined?,
        Err(_) => Err("the server did not stop within 5 s".into()),
    }
}
