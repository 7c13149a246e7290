//! A tonic server hosting its own `org.apache.dubbogo.samples.api.Greeter` service and
//! `grpc.health.v1.Health` from `dubbo-health-tonic` on one port: the way a Rust Dubbo host
//! mounts the health service.
//!
//! ```text
//! interop-tonic-host --addr 127.0.0.1:0      # prints "listening 127.0.0.1:PORT" on stderr
//! ```
//!
//! Control lines on stdin, each answered with `ok` or `error: ...` on stdout:
//! `set NAME STATUS`, `clear NAME`, `shutdown`, `resume` (`""` is the empty name). End of
//! stdin drains (shutdown, end every Watch) and stops the server.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use dubbo_health_core::{DefaultRegistry, ServingStatus};
use dubbo_health_tonic::HealthService;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tonic::{
    server::{Grpc, NamedService, UnaryService},
    Request, Response, Status,
};

const GREETER: &str = "org.apache.dubbogo.samples.api.Greeter";

static HEALTH: DefaultRegistry = DefaultRegistry::new();

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

/// The host's own service: `SayHello`, UNAVAILABLE while the Greeter is not SERVING.
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

fn run(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let name = |w: &str| {
        if w == "\"\"" {
            String::new()
        } else {
            w.to_owned()
        }
    };
    let result = match words.as_slice() {
        ["set", n, s] => match ServingStatus::from_str_name(s) {
            Some(status) => HEALTH.set(&name(n), status).map(|_| ()),
            None => return format!("error: unknown status {s}"),
        },
        ["clear", n] => HEALTH.clear(&name(n)).map(|_| ()),
        ["shutdown"] => {
            HEALTH.shutdown();
            Ok(())
        }
        ["resume"] => {
            HEALTH.resume();
            Ok(())
        }
        _ => return format!("error: unknown command {line:?}"),
    };
    match result {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("error: {e}"),
    }
}

async fn control() {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let answer = run(line.trim()) + "\n";
        if out.write_all(answer.as_bytes()).await.is_err() || out.flush().await.is_err() {
            break;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = match (args.next().as_deref(), args.next()) {
        (Some("--addr"), Some(a)) => a,
        (None, _) => "127.0.0.1:0".to_owned(),
        _ => return Err("usage: interop-tonic-host [--addr HOST:PORT]".into()),
    };
    HEALTH.set(GREETER, ServingStatus::Serving)?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("listening {}", listener.local_addr()?);
    dubbo_health_tonic::server_builder()
        .add_service(HealthService::new(&HEALTH).server())
        .add_service(Greeter)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            async {
                control().await;
                HEALTH.shutdown();
                HEALTH.end_watches();
            },
        )
        .await?;
    Ok(())
}
